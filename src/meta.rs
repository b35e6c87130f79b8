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
//! * A tracker's state of an object = a param structure named [`TRACKING_STATE`] (`tracking`)
//!   on its ROI; `predicted=true` marks a box the tracker predicted on a frame the detector
//!   skipped.
//! * A counting element's rules and live counts = a `GstCustomMeta` named [`ANALYTICS_META`] on
//!   every frame it passes (see [`AnalyticsInfo`]): what `ovoverlay` draws as lines and zones.
//!   `lvajson` does not read it.

use gst_video::VideoRegionOfInterestMeta;

/// Name of the ROI param structure of a detection.
pub const DETECTION: &str = "detection";
/// Name of the custom meta carrying one whole-frame result.
pub const FRAME_META: &str = "OvlvaFrameInferenceMeta";
/// Name of the ROI param structure carrying a tracking id (field `id`).
pub const TRACKING: &str = "object_id";
/// Name of the ROI param structure carrying a tracker's state of the object (field `predicted`).
pub const TRACKING_STATE: &str = "tracking";
/// Name of the ROI param structure carrying a text detector's rotated rectangle (fields `x0`,
/// `y0` .. `x3`, `y3`: its corners normalised to the frame, from the top-left one around).
pub const ROTATED_BOX: &str = "rotated_box";
/// Name of the custom meta carrying a counting element's lines, zones and counts.
pub const ANALYTICS_META: &str = "OvlvaAnalyticsMeta";

/// Registers the custom meta types (idempotent, also from several threads at once). Called by
/// the plugin's init.
pub fn register() {
    static REGISTER: std::sync::Once = std::sync::Once::new();
    REGISTER.call_once(|| {
        for name in [FRAME_META, ANALYTICS_META] {
            if !gst::meta::CustomMeta::is_registered(name) {
                gst::meta::CustomMeta::register(name, &[]);
            }
        }
    });
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
    /// The corners of the rotated rectangle its box is upright around (a [`ROTATED_BOX`]
    /// structure, every field a double), normalised to the frame.
    pub fn rotated_box(&self) -> Option<[f64; 8]> {
        let s = self.attributes.iter().find(|s| s.name() == ROTATED_BOX)?;
        let mut corners = [0.0; 8];
        for (i, v) in corners.iter_mut().enumerate() {
            *v = s.get::<f64>(rotated_box_field(i).as_str()).ok()?;
        }
        corners.iter().all(|v| v.is_finite()).then_some(corners)
    }

    /// The tracking id of the object (the `id` of its [`TRACKING`] structure), as text.
    pub fn tracking_id(&self) -> Option<String> {
        self.attributes
            .iter()
            .find(|s| s.name() == TRACKING)
            .and_then(|s| s.value("id").ok())
            .map(field_text)
    }

    /// Whether a tracker predicted this box (its [`TRACKING_STATE`] structure has
    /// `predicted=true`) rather than a detector finding it.
    pub fn predicted(&self) -> bool {
        self.attributes
            .iter()
            .any(|s| s.name() == TRACKING_STATE && s.get::<bool>("predicted").unwrap_or(false))
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
    add_rotated_detection(buffer, width, height, d, None);
}

/// [`add_detection`], with the rotated rectangle the box is upright around when there is one
/// (`corners`: x, y of each, normalised to the frame, from the top-left one around): a
/// [`ROTATED_BOX`] structure.
pub fn add_rotated_detection(
    buffer: &mut gst::BufferRef,
    width: u32,
    height: u32,
    d: &DetectionInfo,
    corners: Option<[f64; 8]>,
) {
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
    if let Some(c) = corners {
        let mut s = gst::Structure::builder(ROTATED_BOX);
        for (i, v) in c.iter().enumerate() {
            s = s.field(rotated_box_field(i).as_str(), *v);
        }
        meta.add_param(s.build());
    }
}

/// The name of the `i`th value of a [`ROTATED_BOX`]: `x0`, `y0`, `x1`, ...
fn rotated_box_field(i: usize) -> String {
    format!("{}{}", if i.is_multiple_of(2) { "x" } else { "y" }, i / 2)
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
    read_custom(buffer, FRAME_META, |s| s.to_owned())
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

/// Which crossings of a counting line are counted, as the rules say (`direction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Counted {
    #[default]
    Both,
    Clockwise,
    Counterclockwise,
}

impl Counted {
    /// The name in the rules and in the meta: `both`, `clockwise` or `counterclockwise`.
    pub fn name(self) -> &'static str {
        match self {
            Counted::Both => "both",
            Counted::Clockwise => "clockwise",
            Counted::Counterclockwise => "counterclockwise",
        }
    }

    pub fn from_name(name: &str) -> Option<Counted> {
        [Counted::Both, Counted::Clockwise, Counted::Counterclockwise]
            .into_iter()
            .find(|c| c.name() == name)
    }

    /// Whether clockwise crossings count.
    pub fn clockwise(self) -> bool {
        self != Counted::Counterclockwise
    }

    /// Whether counterclockwise crossings count.
    pub fn counterclockwise(self) -> bool {
        self != Counted::Clockwise
    }
}

/// A counting line and its counts so far, as carried by [`ANALYTICS_META`].
#[derive(Debug, Clone, PartialEq)]
pub struct LineInfo {
    pub name: String,
    /// The segment from `a` to `b`, normalised to the frame (x, y in 0..1).
    pub a: (f64, f64),
    pub b: (f64, f64),
    pub counted: Counted,
    pub clockwise: u64,
    pub counterclockwise: u64,
}

impl LineInfo {
    pub fn total(&self) -> u64 {
        self.clockwise + self.counterclockwise
    }
}

/// A zone and the number of objects inside it now, as carried by [`ANALYTICS_META`].
#[derive(Debug, Clone, PartialEq)]
pub struct ZoneInfo {
    pub name: String,
    /// The polygon's corners in order, normalised to the frame.
    pub polygon: Vec<(f64, f64)>,
    pub count: u64,
}

/// What one counting element (`ovanalytics`) attaches to every frame: its lines and zones with
/// their counts after the frame.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnalyticsInfo {
    pub lines: Vec<LineInfo>,
    pub zones: Vec<ZoneInfo>,
}

fn points_array(points: &[(f64, f64)]) -> gst::Array {
    gst::Array::new(points.iter().flat_map(|&(x, y)| [x, y]))
}

/// The points of an array of doubles x, y, x, y, ...; `None` unless it is one.
fn points_of(s: &gst::StructureRef) -> Option<Vec<(f64, f64)>> {
    let values = s.get::<gst::Array>("points").ok()?;
    let coords = values
        .iter()
        .map(|v| v.get::<f64>().ok())
        .collect::<Option<Vec<f64>>>()?;
    (coords.len() % 2 == 0).then(|| coords.chunks(2).map(|c| (c[0], c[1])).collect())
}

/// The structures of an array-of-structures field (none when it is missing or another type).
fn structures(s: &gst::StructureRef, field: &str) -> Vec<gst::Structure> {
    s.get::<gst::Array>(field)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.get::<gst::Structure>().ok())
                .collect()
        })
        .unwrap_or_default()
}

impl AnalyticsInfo {
    /// The meta's structure (see docs/meta-contract.md).
    pub fn to_structure(&self) -> gst::Structure {
        let lines = self.lines.iter().map(|l| {
            gst::Structure::builder("line")
                .field("name", l.name.as_str())
                .field("points", points_array(&[l.a, l.b]))
                .field("direction", l.counted.name())
                .field("clockwise", l.clockwise)
                .field("counterclockwise", l.counterclockwise)
                .field("total", l.total())
                .build()
        });
        let zones = self.zones.iter().map(|z| {
            gst::Structure::builder("zone")
                .field("name", z.name.as_str())
                .field("points", points_array(&z.polygon))
                .field("count", z.count)
                .build()
        });
        gst::Structure::builder(ANALYTICS_META)
            .field("lines", gst::Array::new(lines))
            .field("zones", gst::Array::new(zones))
            .build()
    }

    /// Reads a meta's structure; lines and zones without a name or with unusable points are
    /// left out, missing counts are 0 and a missing or unknown direction is `both`.
    pub fn from_structure(s: &gst::StructureRef) -> AnalyticsInfo {
        let count = |s: &gst::StructureRef, f: &str| s.get::<u64>(f).unwrap_or(0);
        let lines = structures(s, "lines")
            .iter()
            .filter_map(|l| {
                let points = points_of(l)?;
                let [a, b] = points.as_slice() else {
                    return None;
                };
                Some(LineInfo {
                    name: l.get::<String>("name").ok()?,
                    a: *a,
                    b: *b,
                    counted: l
                        .get::<String>("direction")
                        .ok()
                        .and_then(|d| Counted::from_name(&d))
                        .unwrap_or_default(),
                    clockwise: count(l, "clockwise"),
                    counterclockwise: count(l, "counterclockwise"),
                })
            })
            .collect();
        let zones = structures(s, "zones")
            .iter()
            .filter_map(|z| {
                let polygon = points_of(z).filter(|p| p.len() >= 3)?;
                Some(ZoneInfo {
                    name: z.get::<String>("name").ok()?,
                    polygon,
                    count: count(z, "count"),
                })
            })
            .collect();
        AnalyticsInfo { lines, zones }
    }
}

/// Attaches the lines, zones and counts of a counting element.
pub fn add_analytics(buffer: &mut gst::BufferRef, info: &AnalyticsInfo) {
    match gst::meta::CustomMeta::add(buffer, ANALYTICS_META) {
        Ok(mut meta) => {
            let s = meta.mut_structure();
            for (name, value) in info.to_structure().iter() {
                s.set_value(name, value.clone());
            }
        }
        // Only possible if the plugin was not initialised, which registers the meta.
        Err(e) => gst::warning!(gst::CAT_RUST, "cannot add {ANALYTICS_META}: {e}"),
    }
}

/// `read` of the structure of each custom meta named `name` of a buffer, in the order attached.
fn read_custom<T>(
    buffer: &gst::BufferRef,
    name: &str,
    read: impl Fn(&gst::StructureRef) -> T,
) -> Vec<T> {
    buffer
        .iter_meta::<gst::Meta>()
        .filter_map(|m| {
            m.try_as_custom_meta()
                .filter(|c| c.has_name(name))
                .map(|c| read(c.structure()))
        })
        .collect()
}

/// Whether a buffer carries any [`ANALYTICS_META`].
pub fn has_analytics(buffer: &gst::BufferRef) -> bool {
    buffer.iter_meta::<gst::Meta>().any(|m| {
        m.try_as_custom_meta()
            .is_some_and(|c| c.has_name(ANALYTICS_META))
    })
}

/// Every [`ANALYTICS_META`] of a buffer (one per counting element), in the order attached.
pub fn analytics(buffer: &gst::BufferRef) -> Vec<AnalyticsInfo> {
    read_custom(buffer, ANALYTICS_META, AnalyticsInfo::from_structure)
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
        assert_eq!(rois[0].rotated_box(), None);
        assert_eq!(frame_classifications(&buffer), vec![c]);
        // A text box with its rotated rectangle: no attribute (no label), its corners back.
        let corners = [0.3, 0.5, 0.7, 0.6, 0.68, 0.7, 0.28, 0.6];
        let mut buffer = gst::Buffer::with_size(16).unwrap();
        add_rotated_detection(buffer.get_mut().unwrap(), 640, 480, &d, Some(corners));
        let rois = super::rois(&buffer);
        assert_eq!(rois[0].rotated_box(), Some(corners));
        assert!(rois[0].attribute_infos().is_empty());
        assert_eq!(
            rois[0].attributes[0].to_string(),
            "rotated_box, x0=(double)0.29999999999999999, y0=(double)0.5, x1=(double)0.69999999999999996, \
             y1=(double)0.59999999999999998, x2=(double)0.68000000000000005, y2=(double)0.69999999999999996, \
             x3=(double)0.28000000000000003, y3=(double)0.59999999999999998;"
        );
    }

    fn counting() -> AnalyticsInfo {
        AnalyticsInfo {
            lines: vec![LineInfo {
                name: "door".into(),
                a: (0.5, 0.0),
                b: (0.5, 1.0),
                counted: Counted::Clockwise,
                clockwise: 3,
                counterclockwise: 1,
            }],
            zones: vec![ZoneInfo {
                name: "lot".into(),
                polygon: vec![(0.1, 0.5), (0.9, 0.5), (0.9, 1.0), (0.1, 1.0)],
                count: 2,
            }],
        }
    }

    #[test]
    fn analytics_round_trip_and_stay_apart_from_frame_results() {
        gst::init().unwrap();
        register();
        let mut buffer = gst::Buffer::with_size(16).unwrap();
        assert!(!has_analytics(&buffer));
        let second = AnalyticsInfo {
            lines: vec![],
            zones: counting().zones,
        };
        {
            let b = buffer.get_mut().unwrap();
            add_analytics(b, &counting());
            add_analytics(b, &second);
        }
        assert!(has_analytics(&buffer));
        assert_eq!(analytics(&buffer), vec![counting(), second]);
        assert!(
            frame_results(&buffer).is_empty(),
            "lvajson reads none of it"
        );
        let s = counting().to_structure();
        assert_eq!(s.get::<u64>("lines").ok(), None);
        let line = &structures(&s, "lines")[0];
        assert_eq!(line.get::<u64>("total"), Ok(4));
        assert_eq!(line.get::<String>("direction").as_deref(), Ok("clockwise"));
    }

    #[test]
    fn unusable_lines_and_zones_are_left_out() {
        gst::init().unwrap();
        let line = |points: gst::Array| {
            gst::Structure::builder("line")
                .field("name", "l")
                .field("points", points)
                .build()
        };
        let s = gst::Structure::builder(ANALYTICS_META)
            .field(
                "lines",
                gst::Array::new([
                    line(gst::Array::new([0.0f64, 0.0, 1.0])),
                    line(gst::Array::new([0.0f64, 0.0, 1.0, 1.0, 0.5, 0.5])),
                    line(gst::Array::new([0i32, 0, 1, 1])),
                    gst::Structure::builder("line")
                        .field("points", gst::Array::new([0.0f64, 0.0, 1.0, 1.0]))
                        .build(),
                    line(gst::Array::new([0.0f64, 0.25, 1.0, 0.75])),
                ]),
            )
            .field("zones", "not an array")
            .build();
        let info = AnalyticsInfo::from_structure(&s);
        assert!(info.zones.is_empty());
        assert_eq!(
            info.lines,
            vec![LineInfo {
                name: "l".into(),
                a: (0.0, 0.25),
                b: (1.0, 0.75),
                counted: Counted::Both,
                clockwise: 0,
                counterclockwise: 0,
            }]
        );
        for c in [Counted::Both, Counted::Clockwise, Counted::Counterclockwise] {
            assert_eq!(Counted::from_name(c.name()), Some(c));
        }
        assert_eq!(Counted::from_name("up"), None);
        assert!(Counted::Both.clockwise() && Counted::Both.counterclockwise());
        assert!(!Counted::Clockwise.counterclockwise() && !Counted::Counterclockwise.clockwise());
    }

    #[test]
    fn predicted_boxes_are_told_apart() {
        gst::init().unwrap();
        let mut roi = Roi {
            roi_type: "car".into(),
            rect: (0, 0, 1, 1),
            id: 0,
            detection: None,
            attributes: vec![],
        };
        assert!(!roi.predicted());
        roi.attributes.push(
            gst::Structure::builder(TRACKING_STATE)
                .field("predicted", false)
                .build(),
        );
        assert!(!roi.predicted());
        roi.attributes[0].set("predicted", true);
        assert!(roi.predicted());
        assert!(roi.attribute_infos().is_empty());
    }
}
