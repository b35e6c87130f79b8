//! The tracker: detections of each frame in, a stable id per detection out.
//!
//! * `iou`: no motion model; each track is its last box. Detections of at least `low_threshold`
//!   are matched greedily (highest IoU first, at least `iou_threshold`); unmatched ones of at least
//!   `high_threshold` start tracks.
//! * `bytetrack`: each track's box is predicted by a constant-velocity Kalman filter; detections
//!   of at least `high_threshold` are matched first (Hungarian on 1 − IoU, at least
//!   `iou_threshold`), then the detections between `low_threshold` and `high_threshold` against
//!   the tracks left (same gate; ByteTrack only tries the tracks seen on the previous frame and
//!   asks IoU 0.5, which scored lower on the MOT test of tests/ovtrack_mot.rs); only unmatched
//!   high ones start tracks.
//!
//! A new track is tentative: it is confirmed (and gets its id) after `min_hits` consecutive
//! matches, or at once on the first `min_hits` detection frames of the run (as SORT does); a
//! tentative track that misses a frame is dropped. A confirmed track keeps its id while unseen
//! and is deleted after more than `max_age` frames without a match. Ids count from 1, one per
//! confirmed track, never reused within a run. With `per_class`, a track only matches detections
//! of its `label_id`.

use super::assign::{greedy, hungarian};
use super::geometry::BBox;
use super::kalman::KalmanBox;

/// Which tracker runs (the element's `tracking-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kind {
    Iou,
    #[default]
    ByteTrack,
}

/// The tracker's parameters (the element's properties of the same names).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub kind: Kind,
    pub min_hits: u32,
    pub max_age: u32,
    pub iou_threshold: f64,
    pub high_threshold: f64,
    pub low_threshold: f64,
    pub per_class: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            kind: Kind::ByteTrack,
            min_hits: 3,
            max_age: 30,
            iou_threshold: 0.3,
            high_threshold: 0.5,
            low_threshold: 0.1,
            per_class: true,
        }
    }
}

impl Config {
    /// Why these parameters cannot work, if they cannot.
    pub fn check(&self) -> Result<(), String> {
        let unit = |name: &str, v: f64| {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(format!("{name} must be within 0..1, not {v}"))
            }
        };
        unit("iou-threshold", self.iou_threshold)?;
        unit("high-threshold", self.high_threshold)?;
        unit("low-threshold", self.low_threshold)?;
        if self.low_threshold > self.high_threshold {
            return Err(format!(
                "low-threshold ({}) is above high-threshold ({})",
                self.low_threshold, self.high_threshold
            ));
        }
        Ok(())
    }
}

/// One detection of a frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    pub bbox: BBox,
    pub confidence: f64,
    pub label_id: i32,
    pub label: String,
    pub model: String,
}

/// A confirmed track's predicted box on a frame without detections.
#[derive(Debug, Clone, PartialEq)]
pub struct Predicted {
    pub id: u64,
    pub bbox: BBox,
    /// The last matched detection's confidence, label and model.
    pub confidence: f64,
    pub label_id: i32,
    pub label: String,
    pub model: String,
}

#[derive(Debug, Clone)]
struct Track {
    id: Option<u64>,
    kalman: Option<KalmanBox>,
    /// The last matched detection's box.
    last: BBox,
    confidence: f64,
    label_id: i32,
    label: String,
    model: String,
    /// Consecutive matched detection frames.
    hits: u32,
    /// Frames (of any kind) since the last match.
    since_update: u32,
    /// Detection frames since the last match.
    missed: u32,
}

impl Track {
    fn new(d: &Detection, kind: Kind) -> Track {
        Track {
            id: None,
            kalman: (kind == Kind::ByteTrack).then(|| KalmanBox::new(d.bbox.to_xyah())),
            last: d.bbox,
            confidence: d.confidence,
            label_id: d.label_id,
            label: d.label.clone(),
            model: d.model.clone(),
            hits: 1,
            since_update: 0,
            missed: 0,
        }
    }

    /// Where the track is expected on the current frame.
    fn bbox(&self) -> BBox {
        match &self.kalman {
            Some(k) => BBox::from_xyah(k.measurement()),
            None => self.last,
        }
    }

    fn advance(&mut self) {
        if let Some(k) = &mut self.kalman {
            k.predict();
        }
        self.since_update = self.since_update.saturating_add(1);
    }

    fn hit(&mut self, d: &Detection) {
        if let Some(k) = &mut self.kalman {
            k.update(d.bbox.to_xyah());
        }
        self.last = d.bbox;
        self.confidence = d.confidence;
        self.label_id = d.label_id;
        self.label.clone_from(&d.label);
        self.model.clone_from(&d.model);
        self.hits = self.hits.saturating_add(1);
        self.since_update = 0;
        self.missed = 0;
    }
}

/// The state of one run of tracking.
#[derive(Debug, Clone)]
pub struct Tracker {
    config: Config,
    tracks: Vec<Track>,
    next_id: u64,
    detection_frames: u64,
}

impl Tracker {
    pub fn new(config: Config) -> Tracker {
        Tracker {
            config,
            tracks: Vec::new(),
            next_id: 1,
            detection_frames: 0,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Forgets every track (after a flush); ids keep counting, so none is reused in the run.
    pub fn clear(&mut self) {
        self.tracks.clear();
        self.detection_frames = 0;
    }

    /// Ids given so far (confirmed tracks).
    pub fn tracks_created(&self) -> u64 {
        self.next_id - 1
    }

    /// Confirmed tracks alive (seen or not).
    pub fn active_tracks(&self) -> usize {
        self.tracks.iter().filter(|t| t.id.is_some()).count()
    }

    fn cost(&self, tracks: &[usize], dets: &[usize], all: &[Detection]) -> Vec<Vec<f64>> {
        tracks
            .iter()
            .map(|&t| {
                let track = &self.tracks[t];
                let expected = track.bbox();
                dets.iter()
                    .map(|&d| {
                        if self.config.per_class && all[d].label_id != track.label_id {
                            f64::INFINITY
                        } else {
                            1.0 - expected.iou(&all[d].bbox)
                        }
                    })
                    .collect()
            })
            .collect()
    }

    /// Matches `tracks` with `dets`; returns the pairs as (track index, detection index).
    fn associate(
        &self,
        tracks: &[usize],
        dets: &[usize],
        all: &[Detection],
        min_iou: f64,
        optimal: bool,
    ) -> Vec<(usize, usize)> {
        let cost = self.cost(tracks, dets, all);
        let max_cost = 1.0 - min_iou;
        let pairs = if optimal {
            hungarian(&cost, max_cost)
        } else {
            greedy(&cost, max_cost)
        };
        pairs
            .into_iter()
            .map(|(t, d)| (tracks[t], dets[d]))
            .collect()
    }

    /// One frame with the detector's results: the id of each detection, `None` for those not
    /// (yet) on a confirmed track.
    pub fn update(&mut self, detections: &[Detection]) -> Vec<Option<u64>> {
        let cfg = self.config.clone();
        self.detection_frames += 1;
        for t in &mut self.tracks {
            t.advance();
        }
        let usable = |d: &Detection| {
            d.bbox.is_valid() && d.confidence.is_finite() && d.confidence >= cfg.low_threshold
        };
        let high: Vec<usize> = (0..detections.len())
            .filter(|&i| usable(&detections[i]) && detections[i].confidence >= cfg.high_threshold)
            .collect();
        let low: Vec<usize> = (0..detections.len())
            .filter(|&i| usable(&detections[i]) && detections[i].confidence < cfg.high_threshold)
            .collect();
        let all_tracks: Vec<usize> = (0..self.tracks.len()).collect();
        let mut matches = Vec::new();
        match cfg.kind {
            Kind::Iou => {
                let candidates: Vec<usize> = {
                    let mut c: Vec<usize> = high.iter().chain(&low).copied().collect();
                    c.sort_unstable();
                    c
                };
                matches = self.associate(
                    &all_tracks,
                    &candidates,
                    detections,
                    cfg.iou_threshold,
                    false,
                );
            }
            Kind::ByteTrack => {
                let first = self.associate(&all_tracks, &high, detections, cfg.iou_threshold, true);
                let left: Vec<usize> = all_tracks
                    .iter()
                    .copied()
                    .filter(|t| !first.iter().any(|m| m.0 == *t))
                    .collect();
                let second =
                    self.associate(&left, &low, detections, cfg.iou_threshold.max(0.5), true);
                matches.extend(first);
                matches.extend(second);
            }
        }
        let mut det_track = vec![None; detections.len()];
        let mut matched = vec![false; self.tracks.len()];
        for &(t, d) in &matches {
            self.tracks[t].hit(&detections[d]);
            matched[t] = true;
            det_track[d] = Some(t);
        }
        for (t, track) in self.tracks.iter_mut().enumerate() {
            if !matched[t] {
                track.missed = track.missed.saturating_add(1);
                track.hits = 0;
            }
        }
        // New tracks from the unmatched confident detections.
        for &d in &high {
            if det_track[d].is_none() {
                det_track[d] = Some(self.tracks.len());
                self.tracks.push(Track::new(&detections[d], cfg.kind));
                matched.push(true);
            }
        }
        // Confirmation, in track order so that ids follow the order tracks started.
        let warm_up = self.detection_frames <= u64::from(cfg.min_hits);
        for (t, track) in self.tracks.iter_mut().enumerate() {
            if matched[t] && track.id.is_none() && (track.hits >= cfg.min_hits || warm_up) {
                track.id = Some(self.next_id);
                self.next_id += 1;
            }
        }
        let ids = det_track
            .iter()
            .map(|t| t.and_then(|t| self.tracks[t].id))
            .collect();
        // Tentative tracks that missed, and tracks unseen for too long, go.
        self.tracks
            .retain(|t| (t.id.is_some() || t.missed == 0) && t.since_update <= cfg.max_age);
        ids
    }

    /// One frame the detector did not run on: every track moves on by its motion, and the
    /// confirmed tracks seen on the last detection frame are returned with their predicted boxes.
    pub fn predict(&mut self) -> Vec<Predicted> {
        let max_age = self.config.max_age;
        for t in &mut self.tracks {
            t.advance();
        }
        self.tracks.retain(|t| t.since_update <= max_age);
        self.tracks
            .iter()
            .filter(|t| t.missed == 0)
            .filter_map(|t| {
                let bbox = t.bbox();
                Some(Predicted {
                    id: t.id?,
                    bbox,
                    confidence: t.confidence,
                    label_id: t.label_id,
                    label: t.label.clone(),
                    model: t.model.clone(),
                })
            })
            .filter(|p| p.bbox.is_valid())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(x: f64, y: f64, confidence: f64, label_id: i32) -> Detection {
        Detection {
            bbox: BBox::new(x, y, x + 0.1, y + 0.2),
            confidence,
            label_id,
            label: format!("class{label_id}"),
            model: "m".into(),
        }
    }

    fn both() -> [Config; 2] {
        [
            Config {
                kind: Kind::Iou,
                ..Config::default()
            },
            Config::default(),
        ]
    }

    #[test]
    fn two_moving_objects_keep_their_ids() {
        for cfg in both() {
            let mut t = Tracker::new(cfg.clone());
            for f in 0..50 {
                let x = 0.1 + 0.005 * f as f64;
                let ids = t.update(&[det(x, 0.1, 0.9, 1), det(0.8 - x, 0.6, 0.8, 1)]);
                assert_eq!(ids, vec![Some(1), Some(2)], "{cfg:?} frame {f}");
            }
            assert_eq!(t.tracks_created(), 2);
            assert_eq!(t.active_tracks(), 2);
        }
    }

    #[test]
    fn a_track_is_confirmed_after_min_hits_once_warm_and_ids_are_not_reused() {
        for cfg in both() {
            let mut t = Tracker::new(cfg.clone());
            for _ in 0..5 {
                assert_eq!(t.update(&[det(0.1, 0.1, 0.9, 1)]), vec![Some(1)]);
            }
            // A second object: no id for two frames, then id 2 on the third.
            let frames: Vec<Vec<Option<u64>>> = (0..4)
                .map(|_| t.update(&[det(0.1, 0.1, 0.9, 1), det(0.6, 0.6, 0.9, 1)]))
                .collect();
            assert_eq!(frames[0], vec![Some(1), None], "{cfg:?}");
            assert_eq!(frames[1], vec![Some(1), None], "{cfg:?}");
            assert_eq!(frames[2], vec![Some(1), Some(2)], "{cfg:?}");
            assert_eq!(frames[3], vec![Some(1), Some(2)], "{cfg:?}");
            // A tentative track that misses one frame is dropped.
            t.update(&[det(0.1, 0.1, 0.9, 1), det(0.3, 0.7, 0.9, 1)]);
            t.update(&[det(0.1, 0.1, 0.9, 1)]);
            let ids = (0..3)
                .map(|_| t.update(&[det(0.1, 0.1, 0.9, 1), det(0.3, 0.7, 0.9, 1)]))
                .last();
            assert_eq!(ids, Some(vec![Some(1), Some(3)]), "{cfg:?}");
        }
    }

    #[test]
    fn a_track_survives_max_age_frames_unseen_and_not_one_more() {
        for cfg in both() {
            let cfg = Config { max_age: 5, ..cfg };
            let mut t = Tracker::new(cfg.clone());
            for _ in 0..3 {
                t.update(&[det(0.1, 0.1, 0.9, 1)]);
            }
            for _ in 0..5 {
                t.update(&[]);
            }
            assert_eq!(t.update(&[det(0.1, 0.1, 0.9, 1)]), vec![Some(1)], "{cfg:?}");
            for _ in 0..6 {
                t.update(&[]);
            }
            assert_eq!(t.active_tracks(), 0, "{cfg:?}");
            let later: Vec<_> = (0..3).map(|_| t.update(&[det(0.1, 0.1, 0.9, 1)])).collect();
            assert_eq!(later[2], vec![Some(2)], "{cfg:?}");
        }
    }

    #[test]
    fn per_class_keeps_classes_apart() {
        let mut t = Tracker::new(Config::default());
        for _ in 0..3 {
            t.update(&[det(0.1, 0.1, 0.9, 1)]);
        }
        // Same place, another class: not track 1.
        assert_eq!(t.update(&[det(0.1, 0.1, 0.9, 2)]), vec![None]);
        let mut t = Tracker::new(Config {
            per_class: false,
            ..Config::default()
        });
        for _ in 0..3 {
            t.update(&[det(0.1, 0.1, 0.9, 1)]);
        }
        assert_eq!(t.update(&[det(0.1, 0.1, 0.9, 2)]), vec![Some(1)]);
    }

    #[test]
    fn bytetrack_keeps_a_track_through_low_confidence_and_starts_none_from_them() {
        let mut t = Tracker::new(Config::default());
        for _ in 0..4 {
            t.update(&[det(0.1, 0.1, 0.9, 1)]);
        }
        // Occluded: confidence drops to 0.3, the track goes on; a lone low one starts nothing.
        for _ in 0..5 {
            assert_eq!(
                t.update(&[det(0.1, 0.1, 0.3, 1), det(0.7, 0.7, 0.3, 1)]),
                vec![Some(1), None]
            );
        }
        // Below low-threshold: ignored.
        assert_eq!(t.update(&[det(0.1, 0.1, 0.05, 1)]), vec![None]);
        assert_eq!(t.tracks_created(), 1);
    }

    #[test]
    fn bytetrack_follows_motion_the_iou_tracker_loses() {
        // 0.03 per frame, then 0.07 per frame on a 0.1 wide box (IoU 0.18 with the last box).
        for cfg in both() {
            let mut t = Tracker::new(cfg.clone());
            let mut last = Vec::new();
            for f in 0u32..18 {
                let x = 0.01 + 0.03 * f.min(10) as f64 + 0.07 * f.saturating_sub(10) as f64;
                last = t.update(&[det(x, 0.3, 0.9, 1)]);
            }
            match cfg.kind {
                Kind::ByteTrack => assert_eq!(last, vec![Some(1)]),
                Kind::Iou => assert_eq!(last, vec![None]),
            }
        }
    }

    #[test]
    fn predicted_frames_carry_confirmed_tracks_along() {
        let mut t = Tracker::new(Config::default());
        for f in 0..10 {
            t.update(&[det(0.1 + 0.01 * f as f64, 0.1, 0.9, 1)]);
        }
        let p = t.predict();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].id, 1);
        assert!((p[0].bbox.x0 - 0.2).abs() < 0.01, "{:?}", p[0].bbox);
        let p = t.predict();
        assert!((p[0].bbox.x0 - 0.21).abs() < 0.01, "{:?}", p[0].bbox);
        assert_eq!(t.update(&[det(0.22, 0.1, 0.9, 1)]), vec![Some(1)]);
        // A track missed on the last detection frame is not shown on predicted ones.
        t.update(&[]);
        assert!(t.predict().is_empty());
    }

    #[test]
    fn garbage_detections_get_no_id_and_break_nothing() {
        let mut t = Tracker::new(Config::default());
        let mut bad = vec![det(0.1, 0.1, f64::NAN, 1), det(0.1, 0.1, 0.9, 1)];
        bad[1].bbox = BBox::new(0.5, 0.5, 0.5, f64::INFINITY);
        let mut inverted = det(0.2, 0.2, 0.9, 1);
        inverted.bbox = BBox::new(0.3, 0.3, 0.2, 0.2);
        bad.push(inverted);
        for _ in 0..5 {
            assert_eq!(t.update(&bad), vec![None, None, None]);
        }
        assert_eq!(t.tracks_created(), 0);
        assert!(Config::default().check().is_ok());
        let wrong = Config {
            low_threshold: 0.6,
            ..Config::default()
        };
        assert!(wrong.check().unwrap_err().contains("low-threshold"));
    }
}
