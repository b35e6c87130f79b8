//! Counters and timings of one `ovinfer`: frames, inferences, frame rate, the time frames
//! spend inside the element (from arrival to results attached) and what became of ROIs with
//! `inference-region=roi-list`; the `ovinfer-stats` message's structure made of them.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::roi::RoiCounts;

/// How many recent frame latencies the percentiles are taken over.
const WINDOW: usize = 1024;

#[derive(Debug, Default)]
pub struct Stats {
    first: Option<Instant>,
    frames: u64,
    inferences: u64,
    recent: VecDeque<Duration>,
    total: Duration,
    rois: RoiCounts,
    /// Inferences on a server that gave no results (`remote-failures`).
    remote_failures: u64,
}

/// What the read-only properties and the `ovinfer-stats` message report.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Snapshot {
    pub frames: u64,
    pub inferences: u64,
    /// Frames out per second since the first frame came in.
    pub fps: f64,
    pub elapsed: Duration,
    /// Mean over all inferred frames; percentiles over the last `WINDOW`.
    pub latency_mean: Duration,
    pub latency_p50: Duration,
    pub latency_p99: Duration,
    /// ROIs inferred, reused and skipped (`inference-region=roi-list`).
    pub rois: RoiCounts,
    /// Inferences on a server that gave no results.
    pub remote_failures: u64,
}

impl Snapshot {
    /// The `ovinfer-stats` element message's structure (`eos`: the last one, posted at EOS).
    pub fn structure(&self, eos: bool) -> gst::Structure {
        let s = self;
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        gst::Structure::builder("ovinfer-stats")
            .field("frames", s.frames)
            .field("inferences", s.inferences)
            .field("fps", s.fps)
            .field(
                "elapsed",
                gst::ClockTime::from_nseconds(s.elapsed.as_nanos() as u64),
            )
            .field("latency-mean-ms", ms(s.latency_mean))
            .field("latency-p50-ms", ms(s.latency_p50))
            .field("latency-p99-ms", ms(s.latency_p99))
            .field("rois-inferred", s.rois.inferred)
            .field("rois-reused", s.rois.reused)
            .field("rois-skipped-class", s.rois.other_class)
            .field("rois-skipped-size", s.rois.too_small)
            .field("rois-skipped-empty", s.rois.empty)
            .field("remote-failures", s.remote_failures)
            .field("eos", eos)
            .build()
    }
}

impl Stats {
    /// A frame came in.
    pub fn arrived(&mut self, now: Instant) {
        self.first.get_or_insert(now);
    }

    /// A frame left; `latency` is set when it was inferred.
    pub fn left(&mut self, latency: Option<Duration>) {
        self.frames += 1;
        if let Some(l) = latency {
            self.inferences += 1;
            self.total += l;
            if self.recent.len() == WINDOW {
                self.recent.pop_front();
            }
            self.recent.push_back(l);
        }
    }

    /// What became of a frame's ROIs (counted when it leaves).
    pub fn rois(&mut self, counts: &RoiCounts) {
        self.rois.add(counts);
    }

    /// Frames inferred so far.
    /// A remote inference that gave no results.
    pub fn remote_failed(&mut self) {
        self.remote_failures += 1;
    }

    pub fn inferences(&self) -> u64 {
        self.inferences
    }

    pub fn snapshot(&self, now: Instant) -> Snapshot {
        let elapsed = self.first.map_or(Duration::ZERO, |f| now.duration_since(f));
        let mut sorted: Vec<Duration> = self.recent.iter().copied().collect();
        sorted.sort_unstable();
        let pick = |q: f64| -> Duration {
            if sorted.is_empty() {
                return Duration::ZERO;
            }
            let i = ((sorted.len() - 1) as f64 * q).round() as usize;
            sorted[i]
        };
        Snapshot {
            frames: self.frames,
            inferences: self.inferences,
            fps: if elapsed.is_zero() {
                0.0
            } else {
                self.frames as f64 / elapsed.as_secs_f64()
            },
            elapsed,
            latency_mean: if self.inferences == 0 {
                Duration::ZERO
            } else {
                self.total / self.inferences as u32
            },
            latency_p50: pick(0.5),
            latency_p99: pick(0.99),
            rois: self.rois,
            remote_failures: self.remote_failures,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_frames_inferences_rate_and_latencies() {
        let mut s = Stats::default();
        let t0 = Instant::now();
        assert_eq!(s.snapshot(t0), Snapshot::default());
        s.arrived(t0);
        for ms in 1..=100 {
            s.left(Some(Duration::from_millis(ms)));
        }
        s.left(None); // skipped by interval
        let snap = s.snapshot(t0 + Duration::from_secs(2));
        assert_eq!((snap.frames, snap.inferences), (101, 100));
        assert!((snap.fps - 50.5).abs() < 1e-9);
        assert_eq!(snap.elapsed, Duration::from_secs(2));
        assert_eq!(snap.latency_mean, Duration::from_micros(50_500));
        assert_eq!(snap.latency_p50, Duration::from_millis(51));
        assert_eq!(snap.latency_p99, Duration::from_millis(99));
        assert_eq!(snap.rois, RoiCounts::default());
    }

    #[test]
    fn roi_counts_add_up_and_reach_the_message() {
        gst::init().unwrap();
        let mut s = Stats::default();
        let frame = RoiCounts {
            inferred: 3,
            reused: 2,
            other_class: 1,
            empty: 1,
            too_small: 4,
        };
        s.rois(&frame);
        s.rois(&frame);
        let snap = s.snapshot(Instant::now());
        assert_eq!(snap.rois.inferred, 6);
        let m = snap.structure(false);
        assert_eq!(m.get::<u64>("rois-inferred"), Ok(6));
        assert_eq!(m.get::<u64>("rois-reused"), Ok(4));
        assert_eq!(m.get::<u64>("rois-skipped-class"), Ok(2));
        assert_eq!(m.get::<u64>("rois-skipped-size"), Ok(8));
        assert_eq!(m.get::<u64>("rois-skipped-empty"), Ok(2));
    }

    #[test]
    fn percentiles_follow_the_recent_window() {
        let mut s = Stats::default();
        s.arrived(Instant::now());
        for _ in 0..WINDOW {
            s.left(Some(Duration::from_millis(100)));
        }
        for _ in 0..WINDOW {
            s.left(Some(Duration::from_millis(10)));
        }
        let snap = s.snapshot(Instant::now());
        assert_eq!(snap.latency_p99, Duration::from_millis(10));
        assert_eq!(snap.latency_mean, Duration::from_millis(55));
    }
}
