//! Continuous timestamps for the processing half.
//!
//! The processing pipeline lives as long as the stream, while its source may be rebuilt (a
//! loop, a reconnection): each source run starts its timestamps again, often at zero. The
//! [`Retimer`] maps every run onto one timeline that never goes back: a run starts where the
//! previous one ended (after its last frame's duration) or, for live sources, at the time that
//! has really passed since the stream started, whichever is later; so a gap in a camera's
//! frames is a gap in the timestamps, and a file that loops plays on without a jump back.

use std::time::Duration;

#[derive(Debug, Clone, Default)]
pub struct Retimer {
    /// Where the current run's first frame goes.
    base: Option<u64>,
    /// The current run's first input timestamp.
    first: Option<u64>,
    /// The end of the last frame mapped (timestamp + duration), ns.
    end: u64,
    /// The last timestamp mapped, ns.
    last: Option<u64>,
    /// `elapsed` given to [`Retimer::restart`], for the next run's first frame.
    floor: u64,
}

/// A frame's duration when it has none: 1/25 s.
const DEFAULT_DURATION: u64 = 40_000_000;

impl Retimer {
    /// A new source run starts. `elapsed` is the time since the stream started for live
    /// sources (so the gap shows), `None` for the others.
    pub fn restart(&mut self, elapsed: Option<Duration>) {
        self.base = None;
        self.first = None;
        self.floor = elapsed.map_or(0, |e| u64::try_from(e.as_nanos()).unwrap_or(u64::MAX));
    }

    /// The output timestamp of a frame with input timestamp `pts` (its running time in its
    /// run, ns; `None` if it has none) and `duration`; never before the previous frame's.
    pub fn map(&mut self, pts: Option<u64>, duration: Option<u64>) -> u64 {
        let base = *self.base.get_or_insert(self.end.max(self.floor));
        let out = match (pts, self.first) {
            (Some(pts), Some(first)) => base.saturating_add(pts.saturating_sub(first)),
            (Some(pts), None) => {
                self.first = Some(pts);
                base
            }
            // No timestamp: right after the previous frame.
            (None, _) => self.end.max(base),
        };
        let out = self.last.map_or(out, |last| out.max(last));
        self.last = Some(out);
        self.end = self
            .end
            .max(out.saturating_add(duration.unwrap_or(DEFAULT_DURATION)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn one_run_keeps_its_spacing_from_zero() {
        let mut r = Retimer::default();
        r.restart(None);
        let out: Vec<u64> = [1000, 1040, 1080]
            .iter()
            .map(|t| r.map(Some(t * MS), Some(40 * MS)))
            .collect();
        assert_eq!(out, vec![0, 40 * MS, 80 * MS]);
    }

    #[test]
    fn a_loop_continues_after_the_last_frame() {
        let mut r = Retimer::default();
        r.restart(None);
        for t in [0, 40, 80] {
            r.map(Some(t * MS), Some(40 * MS));
        }
        r.restart(None);
        assert_eq!(r.map(Some(0), Some(40 * MS)), 120 * MS);
        assert_eq!(r.map(Some(40 * MS), Some(40 * MS)), 160 * MS);
    }

    #[test]
    fn a_live_reconnection_shows_the_time_lost() {
        let mut r = Retimer::default();
        r.restart(Some(Duration::ZERO));
        r.map(Some(5_000 * MS), Some(40 * MS));
        r.map(Some(5_040 * MS), Some(40 * MS));
        // The camera is back 7 s after the stream started, its clock restarted at 0.
        r.restart(Some(Duration::from_secs(7)));
        assert_eq!(r.map(Some(0), None), 7_000 * MS);
        assert_eq!(r.map(Some(40 * MS), None), 7_040 * MS);
    }

    #[test]
    fn timestamps_never_go_back_and_missing_ones_follow_on() {
        let mut r = Retimer::default();
        r.restart(None);
        assert_eq!(r.map(Some(100 * MS), Some(10 * MS)), 0);
        assert_eq!(r.map(Some(50 * MS), Some(10 * MS)), 0, "clamped");
        assert_eq!(r.map(None, Some(10 * MS)), 10 * MS);
        assert_eq!(r.map(None, None), 20 * MS);
    }
}
