//! `inference-region=roi-list`: which ROIs of a frame the model runs on (`object-class`,
//! `min-roi-size`, ROIs clipped to the frame), what is counted, and how the results come back
//! to the frame: a class as an attribute structure on its ROI, detections found inside an ROI
//! moved into the frame's coordinates.

use super::decode::{Classification, Detection};

/// A pixel rectangle: x, y, width, height.
pub type Rect = (u32, u32, u32, u32);

/// Names of param structures the meta contract gives another meaning: never an attribute's.
const RESERVED: [&str; 3] = [
    crate::meta::DETECTION,
    crate::meta::TRACKING,
    crate::meta::TRACKING_STATE,
];

/// `object-class`: the labels of the ROIs to infer on; empty, every ROI.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectClasses(Vec<String>);

impl ObjectClasses {
    /// Comma-separated labels, each trimmed; empty items are ignored (`""`: every ROI).
    pub fn parse(list: &str) -> ObjectClasses {
        ObjectClasses(
            list.split(',')
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect(),
        )
    }

    /// Whether an ROI with these labels (its ROI type, its detection's label) is to be inferred.
    pub fn matches(&self, labels: &[&str]) -> bool {
        self.0.is_empty() || self.0.iter().any(|c| labels.contains(&c.as_str()))
    }
}

/// What becomes of one ROI of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// Inferred on this rectangle (the ROI clipped to the frame).
    Infer(Rect),
    /// Its label is not in `object-class`: left untouched.
    OtherClass,
    /// Nothing of it inside the frame (zero width or height, or wholly outside).
    Empty,
    /// Its smaller side inside the frame is below `min-roi-size`.
    TooSmall,
}

/// The part of `rect` inside a `width` x `height` frame, if any.
pub fn clip((x, y, w, h): Rect, width: u32, height: u32) -> Option<Rect> {
    let (x0, y0) = (x.min(width), y.min(height));
    let (x1, y1) = (
        x.saturating_add(w).min(width),
        y.saturating_add(h).min(height),
    );
    (x1 > x0 && y1 > y0).then_some((x0, y0, x1 - x0, y1 - y0))
}

/// Which ROIs are inferred: by label first (others are untouched), then what lies inside the
/// frame, then its size.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub classes: ObjectClasses,
    /// Smallest side, in pixels, of an ROI inferred (after clipping); 0: no minimum.
    pub min_size: u32,
}

impl Selection {
    pub fn choose(&self, labels: &[&str], rect: Rect, frame: (u32, u32)) -> Choice {
        if !self.classes.matches(labels) {
            return Choice::OtherClass;
        }
        match clip(rect, frame.0, frame.1) {
            None => Choice::Empty,
            Some(r) if r.2.min(r.3) < self.min_size => Choice::TooSmall,
            Some(r) => Choice::Infer(r),
        }
    }
}

/// What happened to the ROIs of the frames, for the statistics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RoiCounts {
    /// ROIs the model ran on.
    pub inferred: u64,
    /// ROIs given the result of their track's last inference (`reclassify-interval`).
    pub reused: u64,
    pub other_class: u64,
    pub empty: u64,
    pub too_small: u64,
}

impl RoiCounts {
    /// Counts an ROI left out.
    pub fn skipped(&mut self, choice: Choice) {
        match choice {
            Choice::OtherClass => self.other_class += 1,
            Choice::Empty => self.empty += 1,
            Choice::TooSmall => self.too_small += 1,
            Choice::Infer(_) => {}
        }
    }

    pub fn add(&mut self, other: &RoiCounts) {
        self.inferred += other.inferred;
        self.reused += other.reused;
        self.other_class += other.other_class;
        self.empty += other.empty;
        self.too_small += other.too_small;
    }
}

/// Whether `name` can name an attribute: a valid GStreamer structure name (a letter, then
/// letters, digits and `/-_.:+`), not one the meta contract reserves.
pub fn valid_attribute_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "/-_.:+".contains(c));
    if !valid {
        return Err(format!(
            "attribute-name {name:?} is not a valid name: a letter, then letters, digits and \
             / - _ . : + only"
        ));
    }
    if RESERVED.contains(&name) {
        return Err(format!(
            "attribute-name {name:?} is reserved by the meta contract (detection, object_id, \
             tracking): choose another"
        ));
    }
    Ok(())
}

/// The attribute's name when `attribute-name` is not set: the model file's stem, made a valid
/// structure name (other characters become `_`, and a stem not starting with a letter is
/// prefixed with `model_`).
pub fn default_attribute_name(stem: &str) -> String {
    let name: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.:+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        name
    } else {
        format!("model_{name}")
    }
}

/// The attribute an orientation classifier gives text ROIs (PP-OCR's `0`/`180` classifier with
/// `attribute-name=orientation`).
pub const ORIENTATION: &str = "orientation";

/// The confidence from which a text crop classified `180` is turned over before it is read
/// (PaddleOCR's `cls_thresh`).
pub const TURN_CONFIDENCE: f64 = 0.9;

/// Whether an ROI's text is upside down: its `orientation` attribute is `180` with a confidence
/// of at least `TURN_CONFIDENCE`.
pub fn upside_down(attributes: &[crate::meta::AttributeInfo]) -> bool {
    attributes.iter().any(|a| {
        a.name == ORIENTATION && a.label == "180" && a.confidence.unwrap_or(0.0) >= TURN_CONFIDENCE
    })
}

/// The attribute structure of a class given to an ROI (the meta contract's classification of
/// an object): named after the attribute, with `label`, `confidence` and `label_id`.
pub fn attribute(name: &str, label: &str, c: &Classification) -> gst::Structure {
    gst::Structure::builder(name)
        .field("label", label)
        .field("confidence", f64::from(c.confidence))
        .field("label_id", c.label_id)
        .build()
}

/// The structure text read on an ROI becomes (`name`, by default `text`): the text as its
/// `label` and its confidence, as a class's (without a `label_id`: text has no class).
pub fn text_attribute(name: &str, text: &str, confidence: f32) -> gst::Structure {
    gst::Structure::builder(name)
        .field("label", text)
        .field("confidence", f64::from(confidence))
        .build()
}

/// The whole-frame result of text read on a whole frame: a `text` result (LVA's `text`
/// inference) with the text as `value`, the confidence in its `extensions`.
pub fn frame_text(text: &str, confidence: f32, model: &str) -> gst::Structure {
    gst::Structure::builder(crate::meta::FRAME_META)
        .field("type", "text")
        .field("model", model)
        .field("value", text)
        .field(
            "extensions",
            gst::Structure::builder("extensions")
                .field("confidence", format!("{confidence:.4}"))
                .build(),
        )
        .build()
}

/// A detection found in the crop `rect` of a `frame`-sized frame (normalised to the crop),
/// normalised to the frame.
pub fn to_frame(d: &Detection, rect: Rect, frame: (u32, u32)) -> Detection {
    let (x, y, w, h) = (rect.0 as f32, rect.1 as f32, rect.2 as f32, rect.3 as f32);
    let (fw, fh) = (frame.0.max(1) as f32, frame.1.max(1) as f32);
    d.moved(|v| (x + v * w) / fw, |v| (y + v * h) / fh)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rois_are_clipped_to_the_frame() {
        assert_eq!(clip((10, 20, 30, 40), 64, 48), Some((10, 20, 30, 28)));
        assert_eq!(clip((48, 0, 32, 48), 64, 48), Some((48, 0, 16, 48)));
        assert_eq!(clip((0, 0, 64, 48), 64, 48), Some((0, 0, 64, 48)));
        assert_eq!(clip((64, 0, 10, 10), 64, 48), None, "right of the frame");
        assert_eq!(clip((0, 47, 10, 0), 64, 48), None, "no height");
        assert_eq!(clip((5, 5, 0, 3), 64, 48), None, "no width");
        assert_eq!(
            clip((u32::MAX - 1, 3, u32::MAX, u32::MAX), 64, 48),
            None,
            "no overflow"
        );
        assert_eq!(
            clip((63, 3, u32::MAX, u32::MAX), 64, 48),
            Some((63, 3, 1, 45))
        );
    }

    #[test]
    fn object_classes_select_by_roi_type_or_detection_label() {
        let all = ObjectClasses::parse("");
        assert!(all.matches(&["anything"]) && all.matches(&[]));
        let some = ObjectClasses::parse(" car, truck ,,");
        assert_eq!(some, ObjectClasses(vec!["car".into(), "truck".into()]));
        assert!(some.matches(&["truck"]));
        assert!(some.matches(&["face", "car"]));
        assert!(!some.matches(&["person"]));
        assert!(!some.matches(&["Car"]), "labels are compared as they are");
    }

    #[test]
    fn selection_by_class_then_inside_then_size() {
        let s = Selection {
            classes: ObjectClasses::parse("car"),
            min_size: 10,
        };
        let frame = (64, 48);
        assert_eq!(
            s.choose(&["car"], (0, 0, 20, 20), frame),
            Choice::Infer((0, 0, 20, 20))
        );
        assert_eq!(
            s.choose(&["person"], (0, 0, 0, 0), frame),
            Choice::OtherClass
        );
        assert_eq!(s.choose(&["car"], (0, 0, 0, 20), frame), Choice::Empty);
        assert_eq!(s.choose(&["car"], (0, 0, 20, 9), frame), Choice::TooSmall);
        // The size counts inside the frame: 30 wide, 6 of it inside.
        assert_eq!(s.choose(&["car"], (58, 0, 30, 30), frame), Choice::TooSmall);
        assert_eq!(
            s.choose(&["car"], (50, 0, 30, 30), frame),
            Choice::Infer((50, 0, 14, 30))
        );
        let any = Selection::default();
        assert_eq!(
            any.choose(&[], (63, 47, 1, 1), frame),
            Choice::Infer((63, 47, 1, 1))
        );
        let mut counts = RoiCounts::default();
        for c in [
            Choice::OtherClass,
            Choice::Empty,
            Choice::Empty,
            Choice::TooSmall,
            Choice::Infer((0, 0, 1, 1)),
        ] {
            counts.skipped(c);
        }
        let mut total = RoiCounts {
            inferred: 1,
            ..RoiCounts::default()
        };
        total.add(&counts);
        assert_eq!(
            total,
            RoiCounts {
                inferred: 1,
                reused: 0,
                other_class: 1,
                empty: 2,
                too_small: 1
            }
        );
    }

    #[test]
    fn text_is_upside_down_when_its_orientation_says_180_surely() {
        let info = |name: &str, label: &str, confidence| crate::meta::AttributeInfo {
            name: name.into(),
            label: label.into(),
            confidence,
        };
        assert!(upside_down(&[info("orientation", "180", Some(0.95))]));
        assert!(upside_down(&[
            info("colour", "red", Some(0.99)),
            info("orientation", "180", Some(0.9))
        ]));
        assert!(!upside_down(&[info("orientation", "180", Some(0.89))]));
        assert!(!upside_down(&[info("orientation", "180", None)]));
        assert!(!upside_down(&[info("orientation", "0", Some(0.99))]));
        assert!(!upside_down(&[info("angle", "180", Some(0.99))]));
        assert!(!upside_down(&[]));
    }

    #[test]
    fn attribute_names_are_valid_structure_names() {
        assert!(valid_attribute_name("color").is_ok());
        assert!(valid_attribute_name("vehicle-type_2:a.b+c/d").is_ok());
        for bad in ["", "2color", "col or", "färg", "-x"] {
            let e = valid_attribute_name(bad).unwrap_err();
            assert!(e.contains("not a valid name"), "{bad}: {e}");
        }
        for reserved in ["detection", "object_id", "tracking"] {
            assert!(
                valid_attribute_name(reserved)
                    .unwrap_err()
                    .contains("reserved")
            );
        }
        assert_eq!(
            default_attribute_name("colour_classifier"),
            "colour_classifier"
        );
        assert_eq!(default_attribute_name("320n"), "model_320n");
        assert_eq!(default_attribute_name("my model (v2)"), "my_model__v2_");
        for stem in ["320n", "my model (v2)", "", "ĉu"] {
            let name = default_attribute_name(stem);
            assert!(valid_attribute_name(&name).is_ok(), "{stem} -> {name}");
        }
    }

    #[test]
    fn attribute_structures_follow_the_meta_contract() {
        gst::init().unwrap();
        let s = attribute(
            "color",
            "red",
            &Classification {
                label_id: 0,
                confidence: 0.75,
            },
        );
        assert_eq!(s.name(), "color");
        assert_eq!(s.get::<String>("label").as_deref(), Ok("red"));
        assert_eq!(s.get::<f64>("confidence"), Ok(0.75));
        assert_eq!(s.get::<i32>("label_id"), Ok(0));
    }

    #[test]
    fn detections_in_a_crop_move_into_the_frame() {
        let d = Detection {
            quad: None,
            label_id: 0,
            confidence: 0.9,
            x_min: 0.25,
            y_min: 0.5,
            x_max: 0.75,
            y_max: 1.25,
        };
        // The crop (100, 50) 200x100 of a 400x200 frame.
        let f = to_frame(&d, (100, 50, 200, 100), (400, 200));
        assert_eq!(
            (f.x_min, f.y_min, f.x_max, f.y_max),
            (0.375, 0.5, 0.625, 0.875)
        );
        assert_eq!((f.label_id, f.confidence), (0, 0.9));
        // A box going out of the crop still maps (the frame clips it later).
        let whole = to_frame(&d, (0, 0, 400, 200), (400, 200));
        assert_eq!(whole, d);
    }
}
