//! One frame's meta (the contract in `crate::meta`) → its LVA inference document.
//!
//! * ROI with a `detection` structure → `entity` (tag from `label`, box from the normalised
//!   corners); an ROI without one (e.g. from `facedetect`) → `entity` tagged with its roi type,
//!   confidence 1, box from its pixel rectangle.
//! * Further ROI param structures with a `label` → `entity.attributes` (name = structure name);
//!   the `object_id` structure → `entity.id`, and the inference's `inferenceId` is
//!   [`entity_inference_id`] of it (`track-42`), so that other results (e.g. `ovanalytics`'
//!   events) can name the object in `relatedInferences`; a second entity with the same tracking
//!   id in one document gets `track-42-2`, then `-3`, .... Entities without a tracking id get no
//!   `inferenceId`.
//! * Whole-frame results → `classification`, `motion`, `text`, `event` or `other`.
//!
//! Results with a non-finite confidence or box, or a confidence outside 0..1 (the schema's range;
//! a finite f64 too large for the document's f32 is outside it too), are left out and reported
//! in [`Mapped::dropped`].

use super::Extensions;
use super::document::{
    Attribute, Classification, Document, Entity, Event, Inference, Motion, Other, Rect, Tag, Text,
    Value,
};
use crate::meta::{self, Roi};

/// What is known about the frame besides its meta.
#[derive(Debug, Clone, Default)]
pub struct FrameFacts {
    pub pts: Option<gst::ClockTime>,
    /// Frames seen by the element since it started, from 0.
    pub frame_number: u64,
    pub stream_id: Option<String>,
    pub width: u32,
    pub height: u32,
}

/// The element's settings that shape the document.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Replaces every inference's subtype (default: the subtype the result carries, else the
    /// name of the model that produced it).
    pub subtype: Option<String>,
    /// Frame facts written into every inference's `extensions`.
    pub extensions: Extensions,
}

/// A frame's document and what had to be left out of it (one reason each).
#[derive(Debug, Clone, Default)]
pub struct Mapped {
    pub document: Document,
    pub dropped: Vec<String>,
}

/// An inference with what decides its subtype and `model` extension.
struct Pending {
    inference: Inference,
    model: Option<String>,
    subtype: Option<String>,
}

/// The `inferenceId` of the entity of a tracked object: `track-` and its tracking id.
pub fn entity_inference_id(object_id: &str) -> String {
    format!("track-{object_id}")
}

pub fn map_frame(buffer: &gst::BufferRef, facts: &FrameFacts, options: &Options) -> Mapped {
    let mut dropped = Vec::new();
    let mut pending: Vec<_> = meta::rois(buffer)
        .iter()
        .map(|roi| entity(roi, facts, &mut dropped))
        .collect();
    pending.extend(meta::frame_results(buffer).iter().map(|s| frame_result(s)));
    let mut inferences = Vec::with_capacity(pending.len());
    let mut ids = std::collections::HashSet::new();
    for p in pending {
        match p {
            Ok(mut p) => {
                // Entity ids are unique within the document.
                if let (Some(id), Value::Entity(_)) =
                    (&p.inference.inference_id, p.inference.value())
                {
                    let mut unique = id.clone();
                    let mut n = 1;
                    while !ids.insert(unique.clone()) {
                        n += 1;
                        unique = format!("{id}-{n}");
                    }
                    p.inference.inference_id = Some(unique);
                }
                inferences.push(finish(p, facts, options))
            }
            Err(reason) => dropped.push(reason),
        }
    }
    Mapped {
        document: Document { inferences },
        dropped,
    }
}

fn finish(p: Pending, facts: &FrameFacts, options: &Options) -> Inference {
    let Pending {
        mut inference,
        model,
        subtype,
    } = p;
    let model = model.filter(|m| !m.is_empty());
    inference.subtype = options
        .subtype
        .clone()
        .or(subtype)
        .or_else(|| model.clone())
        .filter(|s| !s.is_empty());
    let wanted = options.extensions;
    let mut put = |key: &str, value: Option<String>| {
        if let Some(value) = value {
            inference.extensions.entry(key.into()).or_insert(value);
        }
    };
    if wanted.contains(Extensions::PTS) {
        put("pts", facts.pts.map(|p| p.nseconds().to_string()));
    }
    if wanted.contains(Extensions::FRAME_NUMBER) {
        put("frameNumber", Some(facts.frame_number.to_string()));
    }
    if wanted.contains(Extensions::STREAM_ID) {
        put("streamId", facts.stream_id.clone());
    }
    if wanted.contains(Extensions::RESOLUTION) {
        put(
            "resolution",
            Some(format!("{}x{}", facts.width, facts.height)),
        );
    }
    if wanted.contains(Extensions::MODEL) {
        put("model", model);
    }
    inference
}

fn finite(what: &str, v: f64) -> Result<f64, String> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(format!("{what} is {v}"))
    }
}

/// A confidence for the document: finite and within 0..1, else the reason it is left out.
fn confidence(what: &str, v: f64) -> Result<f32, String> {
    let v = finite(what, v)?;
    if (0.0..=1.0).contains(&v) {
        Ok(v as f32)
    } else {
        Err(format!("{what} is {v}, outside 0..1"))
    }
}

fn corners(what: &str, b: [f64; 4]) -> Result<Rect, String> {
    for v in b {
        finite(&format!("the box of {what}"), v)?;
    }
    Ok(Rect::from_corners(b[0], b[1], b[2], b[3]))
}

fn entity(roi: &Roi, facts: &FrameFacts, dropped: &mut Vec<String>) -> Result<Pending, String> {
    let (tag, rect, model) = match &roi.detection {
        Some(d) => {
            let value = if d.label.is_empty() {
                roi.roi_type.clone()
            } else {
                d.label.clone()
            };
            let what = format!("'{value}'");
            let confidence = confidence(&format!("the confidence of {what}"), d.confidence)?;
            let tag = Tag { value, confidence };
            (tag, corners(&what, d.bbox)?, Some(d.model.clone()))
        }
        None => {
            let (w, h) = (facts.width.max(1) as f64, facts.height.max(1) as f64);
            let (x, y, rw, rh) = roi.rect;
            let (x, y) = (x as f64 / w, y as f64 / h);
            let rect = Rect::from_corners(x, y, x + rw as f64 / w, y + rh as f64 / h);
            let tag = Tag {
                value: roi.roi_type.clone(),
                confidence: 1.0,
            };
            (tag, rect, None)
        }
    };
    let mut attributes = Vec::new();
    for a in roi.attribute_infos() {
        let what = format!("the confidence of attribute '{}'", a.name);
        match confidence(&what, a.confidence.unwrap_or(1.0)) {
            Ok(c) => attributes.push(Attribute {
                name: a.name,
                value: a.label,
                confidence: c,
            }),
            Err(reason) => dropped.push(reason),
        }
    }
    let id = roi.tracking_id();
    let mut inference = Inference::new(Value::Entity(Entity {
        tag,
        attributes,
        rect,
        id: id.clone(),
    }));
    inference.inference_id = id.as_deref().map(entity_inference_id);
    Ok(Pending {
        inference,
        model,
        subtype: None,
    })
}

fn string_map(s: &gst::StructureRef) -> std::collections::BTreeMap<String, String> {
    s.iter()
        .map(|(k, v)| (k.to_string(), meta::field_text(v)))
        .collect()
}

fn required(s: &gst::StructureRef, kind: &str, field: &str) -> Result<String, String> {
    s.get::<String>(field)
        .map_err(|_| format!("a {kind} result without a `{field}` string"))
}

fn frame_result(s: &gst::StructureRef) -> Result<Pending, String> {
    let kind = s
        .get::<String>("type")
        .map_err(|_| "a frame result without a `type` string".to_string())?;
    let k = kind.as_str();
    let value = match k {
        "classification" => {
            let value = required(s, k, "label")?;
            let what = format!("the confidence of '{value}'");
            let confidence = confidence(&what, s.get::<f64>("confidence").unwrap_or(1.0))?;
            Value::Classification(Classification {
                tag: Tag { value, confidence },
                attributes: Vec::new(),
            })
        }
        "motion" => {
            let field = |f: &str| {
                s.get::<f64>(f)
                    .map_err(|_| format!("a motion result without a `{f}` double"))
            };
            let b = [
                field("x_min")?,
                field("y_min")?,
                field("x_max")?,
                field("y_max")?,
            ];
            Value::Motion(Motion {
                rect: corners("a motion", b)?,
            })
        }
        "text" => Value::Text(Text {
            value: required(s, k, "value")?,
            language: s.get("language").ok(),
            start_timestamp: s.get("start_timestamp").ok(),
            end_timestamp: s.get("end_timestamp").ok(),
        }),
        "event" => Value::Event(Event {
            name: required(s, k, "name")?,
            properties: s
                .get::<gst::Structure>("properties")
                .map(|p| string_map(&p))
                .unwrap_or_default(),
        }),
        "other" => {
            let content = s
                .get::<gst::glib::Bytes>("content")
                .map_err(|_| "an other result without `content` bytes".to_string())?;
            Value::Other(Other {
                content_type: required(s, k, "content_type")?,
                content_bytes: gst::glib::base64_encode(&content).to_string(),
            })
        }
        _ => return Err(format!("a frame result of unknown type '{kind}'")),
    };
    let mut inference = Inference::new(value);
    inference.inference_id = s.get("inference_id").ok();
    inference.related_inferences = s
        .get::<gst::Array>("related_inferences")
        .map(|a| a.iter().map(meta::field_text).collect())
        .unwrap_or_default();
    inference.extensions = s
        .get::<gst::Structure>("extensions")
        .map(|e| string_map(&e))
        .unwrap_or_default();
    Ok(Pending {
        inference,
        model: s.get("model").ok(),
        subtype: s.get("subtype").ok(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lvajson::document::Format;
    use crate::meta::{DetectionInfo, FRAME_META, FrameClassification};

    fn buffer() -> gst::Buffer {
        gst::init().unwrap();
        meta::register();
        gst::Buffer::with_size(4).unwrap()
    }

    fn facts() -> FrameFacts {
        FrameFacts {
            pts: Some(gst::ClockTime::from_mseconds(40)),
            frame_number: 1,
            stream_id: Some("cam-1".into()),
            width: 640,
            height: 480,
        }
    }

    fn json(buffer: &gst::Buffer, options: &Options) -> (String, Vec<String>) {
        let m = map_frame(buffer, &facts(), options);
        let bytes = m.document.to_bytes(Format::default()).unwrap();
        (String::from_utf8(bytes).unwrap(), m.dropped)
    }

    fn person(confidence: f64) -> DetectionInfo {
        DetectionInfo {
            label: "person".into(),
            label_id: 1,
            confidence,
            bbox: [0.25, 0.5, 0.75, 1.25],
            model: "ssd".into(),
        }
    }

    #[test]
    fn detection_with_attribute_and_tracking_id() {
        let mut b = buffer();
        {
            let b = b.get_mut().unwrap();
            meta::add_detection(b, 640, 480, &person(0.875));
            let mut roi = b
                .meta_mut::<gst_video::VideoRegionOfInterestMeta>()
                .unwrap();
            roi.add_param(
                gst::Structure::builder("color")
                    .field("label", "red")
                    .field("confidence", 0.75f64)
                    .field("label_id", 3i32)
                    .build(),
            );
            roi.add_param(
                gst::Structure::builder("object_id")
                    .field("id", 42i32)
                    .build(),
            );
        }
        let (json, dropped) = json(&b, &Options::default());
        assert_eq!(
            json,
            r#"{"inferences":[{"type":"entity","subtype":"ssd","inferenceId":"track-42","entity":{"tag":{"value":"person","confidence":0.875},"attributes":[{"name":"color","value":"red","confidence":0.75}],"box":{"l":0.25,"t":0.5,"w":0.5,"h":0.5},"id":"42"}}]}"#
        );
        assert!(dropped.is_empty());
    }

    /// Text read by ovinfer: an attribute of its text box's entity (docs/lva-json.md, "Text
    /// read in a box"), and on a whole frame a `text` inference with the confidence in its
    /// extensions; the structures are the ones ovinfer attaches.
    #[test]
    fn text_read_in_a_box_and_on_a_whole_frame() {
        use crate::ovinfer::roi::{frame_text, text_attribute};
        let mut b = buffer();
        {
            let b = b.get_mut().unwrap();
            let text_box = DetectionInfo {
                label: "text".into(),
                label_id: 0,
                confidence: 0.75,
                bbox: [0.25, 0.5, 0.75, 0.625],
                model: "det".into(),
            };
            meta::add_detection(b, 640, 480, &text_box);
            let mut roi = b
                .meta_mut::<gst_video::VideoRegionOfInterestMeta>()
                .unwrap();
            roi.add_param(text_attribute("text", "KX 4821 \"é\"", 0.875));
            meta::add_frame_result(b, &frame_text("STOP", 0.5, "rec"));
        }
        let (json, dropped) = json(&b, &Options::default());
        assert_eq!(
            json,
            r#"{"inferences":[{"type":"entity","subtype":"det","entity":{"tag":{"value":"text","confidence":0.75},"attributes":[{"name":"text","value":"KX 4821 \"é\"","confidence":0.875}],"box":{"l":0.25,"t":0.5,"w":0.5,"h":0.125}}},{"type":"text","subtype":"rec","text":{"value":"STOP"},"extensions":{"confidence":"0.5000"}}]}"#
        );
        assert!(dropped.is_empty());
    }

    #[test]
    fn roi_without_detection_uses_its_pixel_rectangle() {
        let mut b = buffer();
        gst_video::VideoRegionOfInterestMeta::add(b.get_mut().unwrap(), "face", (64, 48, 320, 240));
        let (json, _) = json(&b, &Options::default());
        assert_eq!(
            json,
            r#"{"inferences":[{"type":"entity","entity":{"tag":{"value":"face","confidence":1.0},"box":{"l":0.1,"t":0.1,"w":0.5,"h":0.5}}}]}"#
        );
    }

    #[test]
    fn subtype_property_and_extensions() {
        let mut b = buffer();
        meta::add_detection(b.get_mut().unwrap(), 640, 480, &person(0.5));
        let options = Options {
            subtype: Some("objectDetection".into()),
            extensions: Extensions::all(),
        };
        let (json, _) = json(&b, &options);
        assert_eq!(
            json,
            r#"{"inferences":[{"type":"entity","subtype":"objectDetection","entity":{"tag":{"value":"person","confidence":0.5},"box":{"l":0.25,"t":0.5,"w":0.5,"h":0.5}},"extensions":{"frameNumber":"1","model":"ssd","pts":"40000000","resolution":"640x480","streamId":"cam-1"}}]}"#
        );
    }

    #[test]
    fn every_frame_result_type() {
        let mut b = buffer();
        {
            let b = b.get_mut().unwrap();
            meta::add_frame_classification(
                b,
                &FrameClassification {
                    label: "daylight".into(),
                    label_id: 0,
                    confidence: 0.86,
                    model: "light".into(),
                },
            );
            let result = |kind: &str| gst::Structure::builder(FRAME_META).field("type", kind);
            meta::add_frame_result(
                b,
                &result("motion")
                    .field("x_min", 0.0f64)
                    .field("y_min", 0.0f64)
                    .field("x_max", 0.5f64)
                    .field("y_max", 0.25f64)
                    .field("subtype", "motionDetection")
                    .build(),
            );
            meta::add_frame_result(
                b,
                &result("text")
                    .field("value", "STOP")
                    .field("language", "en")
                    .field("start_timestamp", 10u64)
                    .field("inference_id", "t1")
                    .build(),
            );
            meta::add_frame_result(
                b,
                &result("event")
                    .field("name", "LineCrossing1")
                    .field(
                        "properties",
                        gst::Structure::builder("p")
                            .field("total", 38i32)
                            .field("direction", "clockwise")
                            .build(),
                    )
                    .field("related_inferences", gst::Array::new(["t1"]))
                    .field(
                        "extensions",
                        gst::Structure::builder("e").field("zone", "door").build(),
                    )
                    .build(),
            );
            meta::add_frame_result(
                b,
                &result("other")
                    .field("content_type", "text/plain")
                    .field("content", gst::glib::Bytes::from_static(b"hi"))
                    .build(),
            );
        }
        let (json, dropped) = json(&b, &Options::default());
        assert_eq!(
            json,
            concat!(
                r#"{"inferences":["#,
                r#"{"type":"classification","subtype":"light","classification":{"tag":{"value":"daylight","confidence":0.86}}},"#,
                r#"{"type":"motion","subtype":"motionDetection","motion":{"box":{"l":0.0,"t":0.0,"w":0.5,"h":0.25}}},"#,
                r#"{"type":"text","inferenceId":"t1","text":{"value":"STOP","language":"en","startTimestamp":10}},"#,
                r#"{"type":"event","relatedInferences":["t1"],"event":{"name":"LineCrossing1","properties":{"direction":"clockwise","total":"38"}},"extensions":{"zone":"door"}},"#,
                r#"{"type":"other","other":{"contentType":"text/plain","contentBytes":"aGk="}}"#,
                r#"]}"#
            )
        );
        assert!(dropped.is_empty(), "{dropped:?}");
    }

    #[test]
    fn non_finite_numbers_and_unknown_types_are_dropped_and_reported() {
        let mut b = buffer();
        {
            let b = b.get_mut().unwrap();
            meta::add_detection(b, 640, 480, &person(f64::NAN));
            let mut inf = person(0.9);
            inf.bbox[2] = f64::INFINITY;
            meta::add_detection(b, 640, 480, &inf);
            meta::add_detection(b, 640, 480, &person(0.7));
            meta::add_frame_result(
                b,
                &gst::Structure::builder(FRAME_META)
                    .field("type", "sound")
                    .build(),
            );
        }
        let m = map_frame(&b, &facts(), &Options::default());
        assert_eq!(m.document.inferences.len(), 1);
        assert_eq!(
            m.dropped,
            vec![
                "the confidence of 'person' is NaN",
                "the box of 'person' is inf",
                "a frame result of unknown type 'sound'",
            ]
        );
    }

    #[test]
    fn confidences_outside_0_to_1_are_dropped_and_reported() {
        let mut b = buffer();
        {
            let b = b.get_mut().unwrap();
            meta::add_detection(b, 640, 480, &person(1e39));
            meta::add_detection(b, 640, 480, &person(-5.0));
            meta::add_detection(b, 640, 480, &person(1.0));
        }
        let m = map_frame(&b, &facts(), &Options::default());
        assert_eq!(m.document.inferences.len(), 1);
        assert_eq!(
            m.dropped,
            vec![
                "the confidence of 'person' is 1000000000000000000000000000000000000000, outside 0..1",
                "the confidence of 'person' is -5, outside 0..1",
            ]
        );
    }

    #[test]
    fn frame_without_meta_gives_an_empty_document() {
        let b = buffer();
        let m = map_frame(&b, &facts(), &Options::default());
        assert!(m.document.inferences.is_empty() && m.dropped.is_empty());
    }
}
