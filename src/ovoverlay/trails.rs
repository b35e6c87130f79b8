//! Track trails: where each tracked object's reference point (the middle of its box's bottom
//! edge) was on the last frames, kept per tracking id and drawn as a polyline behind the object.
//!
//! [`Trails`] keeps, for each id, its points of the last `length` frames (every frame counts,
//! also those without objects), so an id not seen for `length` frames is forgotten and the
//! memory stays bounded by the ids seen in that window.

use std::collections::{HashMap, VecDeque};

use super::annotate::Style;
use super::surface::{Pt, Surface};
use crate::meta::Roi;

/// The reference point of an object whose box is `rect` (x, y, w, h in pixels): the middle of
/// its bottom edge, where it stands on the ground (`ovanalytics`' default anchor).
pub fn reference_point(rect: (u32, u32, u32, u32)) -> Pt {
    let (x, y, w, h) = rect;
    Pt::new(
        f64::from(x) + f64::from(w) / 2.0,
        f64::from(y) + f64::from(h),
    )
}

/// The recent points of every track.
#[derive(Debug, Default)]
pub struct Trails {
    /// Frames seen so far.
    frame: u64,
    /// Per id: (frame, point), oldest first.
    tracks: HashMap<String, VecDeque<(u64, Pt)>>,
}

impl Trails {
    /// One frame: the tracked objects on it (id, reference point; a second point of an id on
    /// the same frame is ignored). Keeps each id's points of the last `length` frames, this one
    /// included; ids without any are forgotten.
    pub fn update(&mut self, length: u32, objects: impl IntoIterator<Item = (String, Pt)>) {
        self.frame += 1;
        let frame = self.frame;
        for (id, p) in objects {
            let points = self.tracks.entry(id).or_default();
            if points.back().is_none_or(|(f, _)| *f != frame) {
                points.push_back((frame, p));
            }
        }
        let oldest = frame.saturating_sub(u64::from(length));
        self.tracks.retain(|_, points| {
            while points.front().is_some_and(|(f, _)| *f <= oldest) {
                points.pop_front();
            }
            !points.is_empty()
        });
    }

    /// The points of a track, oldest first (empty for an unknown id).
    pub fn trail(&self, id: &str) -> Vec<Pt> {
        self.tracks
            .get(id)
            .map(|points| points.iter().map(|(_, p)| *p).collect())
            .unwrap_or_default()
    }

    /// The number of tracks kept.
    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }

    /// Forgets every track (after a flush, or a change of frame size).
    pub fn clear(&mut self) {
        self.tracks.clear();
    }
}

/// The tracked objects of a frame as [`Trails::update`] takes them.
pub fn tracked_points(rois: &[Roi]) -> Vec<(String, Pt)> {
    rois.iter()
        .filter_map(|roi| Some((roi.tracking_id()?, reference_point(roi.rect))))
        .collect()
}

/// Draws the trail of each tracked object of `rois`, in its track's colour, `line_width` wide.
pub fn draw(surface: &mut Surface, trails: &Trails, rois: &[Roi], style: &Style<'_>) {
    for roi in rois {
        if let Some(id) = roi.tracking_id() {
            let colour = style.colours.of_track(&id);
            surface.polyline(&trails.trail(&id), f64::from(style.line_width), colour);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(id: &str, x: f64) -> (String, Pt) {
        (id.to_string(), Pt::new(x, 10.0))
    }

    fn xs(trails: &Trails, id: &str) -> Vec<f64> {
        trails.trail(id).iter().map(|p| p.x).collect()
    }

    #[test]
    fn trails_keep_the_last_frames_points_and_forget_ids_gone_that_long() {
        let mut t = Trails::default();
        t.update(3, [at("1", 1.0), at("2", 5.0), at("1", 99.0)]);
        t.update(3, [at("1", 2.0)]);
        assert_eq!(xs(&t, "1"), [1.0, 2.0], "the second point of id 1 ignored");
        t.update(3, [at("1", 3.0)]);
        t.update(3, [at("1", 4.0)]);
        assert_eq!(xs(&t, "1"), [2.0, 3.0, 4.0]);
        // Id 2, last seen 3 frames ago, is out of the window: forgotten.
        assert_eq!((t.len(), xs(&t, "2")), (1, vec![]));
        // Frames without objects count too.
        t.update(3, []);
        t.update(3, []);
        assert_eq!(xs(&t, "1"), [4.0]);
        t.update(3, []);
        assert!(t.is_empty());
        // A shorter length applies at once; 0 keeps nothing.
        t.update(5, [at("1", 1.0)]);
        t.update(5, [at("1", 2.0)]);
        t.update(1, [at("1", 3.0)]);
        assert_eq!(xs(&t, "1"), [3.0]);
        t.update(0, [at("1", 4.0)]);
        assert!(t.is_empty());
        t.update(5, [at("7", 1.0)]);
        t.clear();
        assert!(t.is_empty());
    }

    #[test]
    fn memory_is_bounded_by_the_window() {
        let mut t = Trails::default();
        for frame in 0..1000u32 {
            t.update(
                10,
                [at(&frame.to_string(), 1.0), at("stays", f64::from(frame))],
            );
        }
        assert_eq!(t.len(), 11);
        assert_eq!(t.trail("stays").len(), 10);
    }

    #[test]
    fn the_reference_point_is_the_bottom_centre() {
        assert_eq!(reference_point((10, 20, 30, 40)), Pt::new(25.0, 60.0));
        gst::init().unwrap();
        let roi = |id: Option<i32>| Roi {
            roi_type: "car".into(),
            rect: (10, 20, 30, 40),
            id: 0,
            detection: None,
            attributes: id
                .map(|id| gst::Structure::builder("object_id").field("id", id).build())
                .into_iter()
                .collect(),
        };
        assert_eq!(
            tracked_points(&[roi(Some(4)), roi(None)]),
            [("4".to_string(), Pt::new(25.0, 60.0))]
        );
    }
}
