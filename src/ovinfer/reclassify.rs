//! `reclassify-interval`: the results of tracked objects are reused between inferences, as DL
//! Streamer's `gvaclassify` does with `gvatrack`.
//!
//! An ROI with a tracking id (the `object_id` structure a tracker writes) is inferred when its
//! track is new or its last inference was `interval` or more frames ago; in between it gets the
//! result of that last inference. Frames are counted as the element looks at them (those that
//! `interval` selects). ROIs without an id are inferred on every frame. `interval` 0 infers a
//! track once and keeps its result while the track lives.
//!
//! Decisions are made as frames come in, while their inferences are still running: each
//! inference gets a [`ResultCell`] that the frame fills when it leaves, and frames reusing it
//! hold the same cell. Frames leave in order, so a cell is filled before any later frame reads
//! it, whatever the pool does meanwhile.
//!
//! Memory is bounded: a track unseen for `forget_after` frames is forgotten (it is inferred
//! again if it comes back), and at most [`MAX_TRACKS`] are kept (the least recently seen go
//! first).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// Tracks remembered at most.
pub const MAX_TRACKS: usize = 4096;
/// Frames a track is remembered unseen, at least.
pub const MIN_FORGET_AFTER: u64 = 50;

/// The result of one inference, filled when its frame leaves the element.
pub type ResultCell<T> = Arc<OnceLock<T>>;

/// Whether an ROI is inferred (and fills the cell) or reuses its track's result (the cell an
/// earlier frame fills).
#[derive(Debug)]
pub enum Decision<T> {
    Infer(ResultCell<T>),
    Reuse(ResultCell<T>),
}

struct Track<T> {
    /// Frame of its last inference.
    inferred: u64,
    last_seen: u64,
    result: ResultCell<T>,
}

/// The tracks of one stream and their last results.
pub struct Tracks<T> {
    interval: u32,
    forget_after: u64,
    /// Frames begun.
    frame: u64,
    tracks: HashMap<String, Track<T>>,
}

impl<T> Tracks<T> {
    pub fn new(interval: u32) -> Self {
        Tracks {
            interval,
            forget_after: (2 * u64::from(interval)).max(MIN_FORGET_AFTER),
            frame: 0,
            tracks: HashMap::new(),
        }
    }

    /// A new frame is looked at: tracks unseen too long are forgotten.
    pub fn begin_frame(&mut self) {
        self.frame += 1;
        let frame = self.frame;
        let forget_after = self.forget_after;
        // Every few frames is enough to keep the bound; over the cap, at once.
        if frame.is_multiple_of(16) || self.tracks.len() > MAX_TRACKS {
            self.tracks
                .retain(|_, t| frame - t.last_seen <= forget_after);
        }
        if self.tracks.len() > MAX_TRACKS {
            let mut seen: Vec<u64> = self.tracks.values().map(|t| t.last_seen).collect();
            seen.sort_unstable_by(|a, b| b.cmp(a));
            let oldest_kept = seen[MAX_TRACKS - 1];
            self.tracks.retain(|_, t| t.last_seen >= oldest_kept);
            // Ties at the cut: drop any of them until the cap holds.
            let excess = self.tracks.len().saturating_sub(MAX_TRACKS);
            let drop: Vec<String> = self
                .tracks
                .iter()
                .filter(|(_, t)| t.last_seen == oldest_kept)
                .map(|(k, _)| k.clone())
                .take(excess)
                .collect();
            for k in drop {
                self.tracks.remove(&k);
            }
        }
    }

    /// Whether the ROI of track `id` (None: untracked) in the current frame is inferred.
    pub fn decide(&mut self, id: Option<&str>) -> Decision<T> {
        let Some(id) = id else {
            return Decision::Infer(Arc::default());
        };
        let frame = self.frame;
        if let Some(track) = self.tracks.get_mut(id) {
            track.last_seen = frame;
            let due = self.interval != 0 && frame - track.inferred >= u64::from(self.interval);
            if !due {
                return Decision::Reuse(track.result.clone());
            }
            track.inferred = frame;
            track.result = Arc::default();
            return Decision::Infer(track.result.clone());
        }
        let result: ResultCell<T> = Arc::default();
        self.tracks.insert(
            id.to_string(),
            Track {
                inferred: frame,
                last_seen: frame,
                result: result.clone(),
            },
        );
        Decision::Infer(result)
    }

    /// Tracks remembered now.
    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }

    /// Forgets every track (a flush: results of frames dropped would never be filled).
    pub fn clear(&mut self) {
        self.tracks.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// For each frame, whether each of `ids` is inferred (true) or reused (false).
    fn run(tracks: &mut Tracks<u32>, frames: usize, ids: &[Option<&str>]) -> Vec<Vec<bool>> {
        (0..frames)
            .map(|_| {
                tracks.begin_frame();
                ids.iter()
                    .map(|id| matches!(tracks.decide(*id), Decision::Infer(_)))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn a_track_is_inferred_every_interval_frames_and_untracked_rois_always() {
        let mut tracks = Tracks::new(5);
        let got = run(&mut tracks, 11, &[Some("1"), None, Some("2")]);
        let column = |i: usize| got.iter().map(|f| f[i]).collect::<Vec<_>>();
        let every_fifth = [
            true, false, false, false, false, true, false, false, false, false, true,
        ];
        assert_eq!(column(0), every_fifth);
        assert_eq!(column(1), [true; 11]);
        assert_eq!(column(2), every_fifth);
        // 1: every frame; 0: once.
        assert_eq!(run(&mut Tracks::new(1), 3, &[Some("1")]), [[true]; 3]);
        let once = run(&mut Tracks::new(0), 4, &[Some("1")]);
        assert_eq!(once, [[true], [false], [false], [false]]);
    }

    #[test]
    fn reused_rois_read_the_cell_their_tracks_inference_fills() {
        let mut tracks = Tracks::new(3);
        tracks.begin_frame();
        let Decision::Infer(first) = tracks.decide(Some("7")) else {
            panic!("a new track is inferred");
        };
        // Frames 2 and 3 come while frame 1's inference still runs.
        let mut reused = Vec::new();
        for _ in 0..2 {
            tracks.begin_frame();
            let Decision::Reuse(cell) = tracks.decide(Some("7")) else {
                panic!("reused");
            };
            assert!(cell.get().is_none(), "not filled before frame 1 leaves");
            reused.push(cell);
        }
        first.set(42).unwrap();
        assert!(reused.iter().all(|c| c.get() == Some(&42)));
        // Frame 4 infers again into a new cell; frame 5 reads that one.
        tracks.begin_frame();
        let Decision::Infer(second) = tracks.decide(Some("7")) else {
            panic!("due again");
        };
        tracks.begin_frame();
        let Decision::Reuse(next) = tracks.decide(Some("7")) else {
            panic!("reused");
        };
        second.set(43).unwrap();
        assert_eq!(next.get(), Some(&43));
        assert_eq!(reused[0].get(), Some(&42), "earlier frames keep theirs");
    }

    #[test]
    fn a_track_seen_twice_in_a_frame_is_inferred_once() {
        let mut tracks = Tracks::<u32>::new(2);
        tracks.begin_frame();
        assert!(matches!(tracks.decide(Some("1")), Decision::Infer(_)));
        assert!(matches!(tracks.decide(Some("1")), Decision::Reuse(_)));
    }

    #[test]
    fn unseen_tracks_are_forgotten_and_the_count_is_capped() {
        let mut tracks = Tracks::<u32>::new(5);
        tracks.begin_frame();
        tracks.decide(Some("gone"));
        for _ in 0..MIN_FORGET_AFTER + 16 {
            tracks.begin_frame();
            tracks.decide(Some("stays"));
        }
        assert_eq!(tracks.len(), 1);
        assert!(
            matches!(tracks.decide(Some("gone")), Decision::Infer(_)),
            "a track that comes back is inferred again"
        );
        // A flood of ids: never more than the cap, the newest kept.
        let mut tracks = Tracks::<u32>::new(1000);
        for frame in 0..3 {
            tracks.begin_frame();
            for i in 0..MAX_TRACKS {
                tracks.decide(Some(&format!("{frame}-{i}")));
            }
        }
        tracks.begin_frame();
        assert_eq!(tracks.len(), MAX_TRACKS);
        assert!(matches!(tracks.decide(Some("2-0")), Decision::Reuse(_)));
        tracks.clear();
        assert!(tracks.is_empty());
    }
}
