//! The meta contract between ovlva elements, compatible with Intel DL Streamer.
//!
//! * One detected object = one `GstVideoRegionOfInterestMeta` (x, y, w, h in frame pixels,
//!   roi_type = label) carrying a param structure named `detection` with
//!   `x_min`, `y_min`, `x_max`, `y_max` (double, normalised 0..1), `confidence` (double),
//!   `label_id` (int), `label` (string) and `model` (string, the model file's stem).
//! * A classification of an object (an attribute such as colour) = a further param structure on
//!   that ROI, named after the attribute, with `label`, `confidence`, `label_id`.
//! * A tracking id of an object = a param structure named [`TRACKING`] (`object_id`, as DL
//!   Streamer's tracker writes it) with an int field `id`.
//! * A whole-frame result = a `GstCustomMeta` named [`FRAME_META`] per result. Its structure has
//!   `type` (string: "classification", "motion", "text", "event" or "other") and, by type:
//!   * classification: `label` (string), `label_id` (int), `confidence` (double);
//!   * motion: `x_min`, `y_min`, `x_max`, `y_max` (double, normalised 0..1);
//!   * text: `value` (string), optional `language` (string, BCP 47), `start_timestamp`,
//!     `end_timestamp` (uint64);
//!   * event: `name` (string), optional `properties` (structure; each field becomes a string);
//!   * other: `content_type` (string), `content` (bytes).
//!
//!   Optional on every type: `model` (string), `subtype` (string), `inference_id` (string),
//!   `related_inferences` (array of strings), `extensions` (structure; each field a string).

use gst_video::VideoRegionOfInterestMeta;

/// Name of the ROI param structure of a detection.
pub const DETECTION: &str = "detection";
/// Name of the custom meta carrying one whole-frame result.
pub const FRAME_META: &str = "OvlvaFrameInferenceMeta";
/// Name of the ROI param structure carrying a tracking id (field `id`).
pub const TRACKING: &str = "object_id";

/// Registers the custom meta type (idempotent). Called by the plugin's init.
pub fn register() {
    if !gst::meta::CustomMeta::is_registered(FRAME_META) {
        gst::meta::CustomMeta::register(FRAME_META, &[]);
    }
}

/// A detection as carried by the `detection` param structure.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectionInfo {
    pub label: String,
    pub label_id: i32,
    pub confidence: f64,
    /// Normalised box (0..1): x_min, y_min, x_max, y_max.
    pub bbox: [f64; 4],
    pub model: String,
}

/// One ROI read back from a buffer.
#[derive(Debug, Clone, PartialEq)]
pub struct Roi {
    pub roi_type: String,
    /// x, y, w, h in frame pixels.
    pub rect: (u32, u32, u32, u32),
    /// The ROI's id (tracking id when a tracker set one).
    pub id: i32,
    pub detection: Option<DetectionInfo>,
    /// Every further param structure (attributes), as is.
    pub attributes: Vec<gst::Structure>,
}

/// A classification of an object, carried by its ROI (an attribute such as colour).
#[derive(Debug, Clone, PartialEq)]
pub struct AttributeInfo {
    /// The param structure's name (e.g. `color`).
    pub name: String,
    pub label: String,
    pub confidence: Option<f64>,
}

impl Roi {
    /// The tracking id of the object (the `id` of its [`TRACKING`] structure), as text.
    pub fn tracking_id(&self) -> Option<String> {
        self.attributes
            .iter()
            .find(|s| s.name() == TRACKING)
            .and_then(|s| s.value("id").ok())
            .map(field_text)
    }

    /// The object's attributes: its param structures with a `label` string, in order.
    pub fn attribute_infos(&self) -> Vec<AttributeInfo> {
        self.attributes
            .iter()
            .filter(|s| s.name() != TRACKING)
            .filter_map(|s| {
                Some(AttributeInfo {
                    name: s.name().to_string(),
                    label: s.get::<String>("label").ok()?,
                    confidence: s.get::<f64>("confidence").ok(),
                })
            })
            .collect()
    }
}

/// A structure field's value as text: strings as they are, anything else in GStreamer's notation.
pub fn field_text(v: &gst::glib::SendValue) -> String {
    use gst::prelude::*;
    v.get::<String>()
        .unwrap_or_else(|_| v.serialize().map(|s| s.to_string()).unwrap_or_default())
}

/// Pixel rectangle of a normalised box on a `width`x`height` frame, inside the frame.
pub fn pixel_rect(bbox: [f64; 4], width: u32, height: u32) -> (u32, u32, u32, u32) {
    let px = |v: f64, size: u32| (v.clamp(0.0, 1.0) * size as f64).round() as u32;
    let (x0, y0) = (px(bbox[0], width), px(bbox[1], height));
    let (x1, y1) = (px(bbox[2], width), px(bbox[3], height));
    (x0, y0, x1.saturating_sub(x0), y1.saturating_sub(y0))
}

/// Attaches one detection as an ROI meta with its `detection` structure.
pub fn add_detection(buffer: &mut gst::BufferRef, width: u32, height: u32, d: &DetectionInfo) {
    let rect = pixel_rect(d.bbox, width, height);
    let mut meta = VideoRegionOfInterestMeta::add(buffer, &d.label, rect);
    meta.add_param(
        gst::Structure::builder(DETECTION)
            .field("x_min", d.bbox[0])
            .field("y_min", d.bbox[1])
            .field("x_max", d.bbox[2])
            .field("y_max", d.bbox[3])
            .field("confidence", d.confidence)
            .field("label_id", d.label_id)
            .field("label", d.label.as_str())
            .field("model", d.model.as_str())
            .build(),
    );
}

fn detection_info(s: &gst::StructureRef) -> Option<DetectionInfo> {
    Some(DetectionInfo {
        label: s.get::<String>("label").unwrap_or_default(),
        label_id: s.get::<i32>("label_id").unwrap_or(-1),
        confidence: s.get::<f64>("confidence").ok()?,
        bbox: [
            s.get::<f64>("x_min").ok()?,
            s.get::<f64>("y_min").ok()?,
            s.get::<f64>("x_max").ok()?,
            s.get::<f64>("y_max").ok()?,
        ],
        model: s.get::<String>("model").unwrap_or_default(),
    })
}

/// Every ROI of a buffer, in the order they were attached.
pub fn rois(buffer: &gst::BufferRef) -> Vec<Roi> {
    buffer
        .iter_meta::<VideoRegionOfInterestMeta>()
        .map(|m| Roi {
            roi_type: m.roi_type().to_string(),
            rect: m.rect(),
            id: m.id(),
            detection: m.param(DETECTION).and_then(detection_info),
            attributes: m
                .params()
                .filter(|p| p.name() != DETECTION)
                .map(|p| p.to_owned())
                .collect(),
        })
        .collect()
}

/// A whole-frame classification result.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameClassification {
    pub label: String,
    pub label_id: i32,
    pub confidence: f64,
    pub model: String,
}

/// Attaches a whole-frame classification.
pub fn add_frame_classification(buffer: &mut gst::BufferRef, c: &FrameClassification) {
    add_frame_result(
        buffer,
        &gst::Structure::builder(FRAME_META)
            .field("type", "classification")
            .field("model", c.model.as_str())
            .field("label", c.label.as_str())
            .field("label_id", c.label_id)
            .field("confidence", c.confidence)
            .build(),
    );
}

/// Attaches one whole-frame result: the fields of `result` (see the module documentation).
pub fn add_frame_result(buffer: &mut gst::BufferRef, result: &gst::StructureRef) {
    match gst::meta::CustomMeta::add(buffer, FRAME_META) {
        Ok(mut meta) => {
            let s = meta.mut_structure();
            for (name, value) in result.iter() {
                s.set_value(name, value.clone());
            }
        }
        // Only possible if the plugin was not initialised, which registers the meta.
        Err(e) => gst::warning!(gst::CAT_RUST, "cannot add {FRAME_META}: {e}"),
    }
}

/// Every whole-frame result structure of a buffer, in the order they were attached.
pub fn frame_results(buffer: &gst::BufferRef) -> Vec<gst::Structure> {
    buffer
        .iter_meta::<gst::Meta>()
        .filter_map(|m| {
            m.try_as_custom_meta()
                .filter(|c| c.has_name(FRAME_META))
                .map(|c| c.structure().to_owned())
        })
        .collect()
}

/// Whole-frame classifications of a buffer.
pub fn frame_classifications(buffer: &gst::BufferRef) -> Vec<FrameClassification> {
    frame_results(buffer)
        .iter()
        .filter(|s| s.get::<String>("type").is_ok_and(|t| t == "classification"))
        .map(|s| FrameClassification {
            label: s.get("label").unwrap_or_default(),
            label_id: s.get("label_id").unwrap_or(-1),
            confidence: s.get("confidence").unwrap_or(0.0),
            model: s.get("model").unwrap_or_default(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixel_rects_stay_inside_the_frame() {
        assert_eq!(pixel_rect([0.1, 0.2, 0.5, 0.6], 100, 50), (10, 10, 40, 20));
        assert_eq!(pixel_rect([-0.5, -0.5, 2.0, 2.0], 100, 50), (0, 0, 100, 50));
        assert_eq!(pixel_rect([0.7, 0.7, 0.2, 0.2], 100, 50), (70, 35, 0, 0));
    }

    #[test]
    fn detections_and_classifications_round_trip_through_a_buffer() {
        gst::init().unwrap();
        register();
        let mut buffer = gst::Buffer::with_size(16).unwrap();
        let d = DetectionInfo {
            label: "person".into(),
            label_id: 1,
            confidence: 0.875,
            bbox: [0.25, 0.5, 0.75, 1.0],
            model: "ssd".into(),
        };
        let c = FrameClassification {
            label: "red".into(),
            label_id: 0,
            confidence: 0.9,
            model: "colours".into(),
        };
        {
            let b = buffer.get_mut().unwrap();
            add_detection(b, 640, 480, &d);
            add_frame_classification(b, &c);
        }
        let rois = rois(&buffer);
        assert_eq!(rois.len(), 1);
        assert_eq!(rois[0].roi_type, "person");
        assert_eq!(rois[0].rect, (160, 240, 320, 240));
        assert_eq!(rois[0].detection.as_ref(), Some(&d));
        assert!(rois[0].attributes.is_empty());
        assert_eq!(frame_classifications(&buffer), vec![c]);
    }
}
