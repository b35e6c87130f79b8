//! The LVA inference document, one Rust type per object of the "Inference metadata schema" of
//! the LVA HTTP extension contract (plus `inferenceId`, `relatedInferences`, `entity.id`,
//! `event` and `other` from Azure's `inferencing.proto`). Serialised with serde only.

use std::collections::BTreeMap;

use serde::Serialize;

/// `{"inferences":[...]}`: the body of one frame's result.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Document {
    pub inferences: Vec<Inference>,
}

/// How a document is written out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Format {
    /// Indented, several lines.
    pub pretty: bool,
    /// A newline after the document (JSON Lines when not pretty).
    pub json_lines: bool,
}

impl Document {
    pub fn to_bytes(&self, format: Format) -> Result<Vec<u8>, serde_json::Error> {
        let mut out = Vec::with_capacity(64 + 192 * self.inferences.len());
        if format.pretty {
            serde_json::to_writer_pretty(&mut out, self)?;
        } else {
            serde_json::to_writer(&mut out, self)?;
        }
        if format.json_lines {
            out.push(b'\n');
        }
        Ok(out)
    }
}

/// One inference: `type`, optional `subtype`, ids, at most one value object, `extensions`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Inference {
    #[serde(rename = "type")]
    kind: Kind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subtype: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inference_id: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub related_inferences: Vec<String>,
    #[serde(flatten)]
    value: Value,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub extensions: BTreeMap<String, String>,
}

impl Inference {
    /// An inference whose `type` matches its value object.
    pub fn new(value: Value) -> Inference {
        Inference {
            kind: value.kind(),
            subtype: None,
            inference_id: None,
            related_inferences: Vec::new(),
            value,
            extensions: BTreeMap::new(),
        }
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn value(&self) -> &Value {
        &self.value
    }
}

/// The `type` of an inference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Classification,
    Motion,
    Entity,
    Text,
    Event,
    Other,
}

/// The one value object of an inference, written under the key named like its type.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Value {
    Classification(Classification),
    Motion(Motion),
    Entity(Entity),
    Text(Text),
    Event(Event),
    Other(Other),
}

impl Value {
    pub fn kind(&self) -> Kind {
        match self {
            Value::Classification(_) => Kind::Classification,
            Value::Motion(_) => Kind::Motion,
            Value::Entity(_) => Kind::Entity,
            Value::Text(_) => Kind::Text,
            Value::Event(_) => Kind::Event,
            Value::Other(_) => Kind::Other,
        }
    }
}

/// A label and how sure the model is of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tag {
    pub value: String,
    pub confidence: f32,
}

/// A further property of a result (colour, make, age, ...).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attribute {
    pub name: String,
    pub value: String,
    pub confidence: f32,
}

/// A rectangle normalised to the frame: left, top, width, height, all in 0..1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rect {
    pub l: f32,
    pub t: f32,
    pub w: f32,
    pub h: f32,
}

impl Rect {
    /// The rectangle between two normalised corners, clipped to the frame.
    pub fn from_corners(x_min: f64, y_min: f64, x_max: f64, y_max: f64) -> Rect {
        let clip = |v: f64| v.clamp(0.0, 1.0);
        let (l, t) = (clip(x_min), clip(y_min));
        Rect {
            l: l as f32,
            t: t as f32,
            w: (clip(x_max) - l).max(0.0) as f32,
            h: (clip(y_max) - t).max(0.0) as f32,
        }
    }
}

/// A label for the whole frame.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Classification {
    pub tag: Tag,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<Attribute>,
}

/// Motion in a region of the frame.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Motion {
    #[serde(rename = "box")]
    pub rect: Rect,
}

/// A detected object: label, attributes, box and tracking id.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entity {
    pub tag: Tag,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<Attribute>,
    #[serde(rename = "box")]
    pub rect: Rect,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// Recognised text.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Text {
    pub value: String,
    /// BCP 47 language code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_timestamp: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_timestamp: Option<u64>,
}

/// Something that happened (a line crossed, a zone entered).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub name: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,
}

/// Any other payload, base64-encoded.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Other {
    pub content_type: String,
    pub content_bytes: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(d: &Document) -> String {
        String::from_utf8(d.to_bytes(Format::default()).unwrap()).unwrap()
    }

    fn one(value: Value) -> Document {
        Document {
            inferences: vec![Inference::new(value)],
        }
    }

    fn tag(value: &str, confidence: f32) -> Tag {
        Tag {
            value: value.into(),
            confidence,
        }
    }

    #[test]
    fn entity_matches_the_contract_example() {
        let d = one(Value::Entity(Entity {
            tag: tag("car", 0.9048132),
            attributes: vec![],
            rect: Rect {
                l: 0.42681578,
                t: 0.47660735,
                w: 0.019501392,
                h: 0.020954132,
            },
            id: None,
        }));
        assert_eq!(
            json(&d),
            r#"{"inferences":[{"type":"entity","entity":{"tag":{"value":"car","confidence":0.9048132},"box":{"l":0.42681578,"t":0.47660735,"w":0.019501392,"h":0.020954132}}}]}"#
        );
    }

    #[test]
    fn entity_with_attributes_id_subtype_and_extensions() {
        let mut i = Inference::new(Value::Entity(Entity {
            tag: tag("007-SPY", 0.82),
            attributes: vec![Attribute {
                name: "color".into(),
                value: "black".into(),
                confidence: 0.9,
            }],
            rect: Rect::from_corners(0.25, 0.5, 0.75, 1.0),
            id: Some("17".into()),
        }));
        i.subtype = Some("vehicleIdentification".into());
        i.extensions.insert("pts".into(), "40000000".into());
        i.extensions.insert("frameNumber".into(), "1".into());
        assert_eq!(
            json(&Document {
                inferences: vec![i]
            }),
            r#"{"inferences":[{"type":"entity","subtype":"vehicleIdentification","entity":{"tag":{"value":"007-SPY","confidence":0.82},"attributes":[{"name":"color","value":"black","confidence":0.9}],"box":{"l":0.25,"t":0.5,"w":0.5,"h":0.5},"id":"17"},"extensions":{"frameNumber":"1","pts":"40000000"}}]}"#
        );
    }

    #[test]
    fn classification_and_motion() {
        let mut d = one(Value::Classification(Classification {
            tag: tag("daylight", 0.86),
            attributes: vec![Attribute {
                name: "isBlackAndWhite".into(),
                value: "false".into(),
                confidence: 0.71,
            }],
        }));
        d.inferences.push(Inference::new(Value::Motion(Motion {
            rect: Rect::from_corners(0.0, 0.0, 0.5, 0.25),
        })));
        assert_eq!(
            json(&d),
            r#"{"inferences":[{"type":"classification","classification":{"tag":{"value":"daylight","confidence":0.86},"attributes":[{"name":"isBlackAndWhite","value":"false","confidence":0.71}]}},{"type":"motion","motion":{"box":{"l":0.0,"t":0.0,"w":0.5,"h":0.25}}}]}"#
        );
    }

    #[test]
    fn text_event_and_other_with_ids() {
        let mut text = Inference::new(Value::Text(Text {
            value: "STOP".into(),
            language: Some("en".into()),
            start_timestamp: Some(10),
            end_timestamp: None,
        }));
        text.inference_id = Some("a1".into());
        let mut event = Inference::new(Value::Event(Event {
            name: "LineCrossing1".into(),
            properties: [("total".to_string(), "38".to_string())].into(),
        }));
        event.related_inferences = vec!["a1".into()];
        let other = Inference::new(Value::Other(Other {
            content_type: "text/plain".into(),
            content_bytes: "aGk=".into(),
        }));
        assert_eq!(
            json(&Document {
                inferences: vec![text, event, other]
            }),
            r#"{"inferences":[{"type":"text","inferenceId":"a1","text":{"value":"STOP","language":"en","startTimestamp":10}},{"type":"event","relatedInferences":["a1"],"event":{"name":"LineCrossing1","properties":{"total":"38"}}},{"type":"other","other":{"contentType":"text/plain","contentBytes":"aGk="}}]}"#
        );
    }

    #[test]
    fn unicode_and_characters_needing_escapes() {
        let d = one(Value::Classification(Classification {
            tag: tag("Erwin Schrödinger \"the\" cat\\\n\t\u{1}🐈", 0.5),
            attributes: vec![],
        }));
        let text = json(&d);
        assert_eq!(
            text,
            "{\"inferences\":[{\"type\":\"classification\",\"classification\":{\"tag\":{\"value\":\"Erwin Schrödinger \\\"the\\\" cat\\\\\\n\\t\\u0001🐈\",\"confidence\":0.5}}}]}"
        );
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            back["inferences"][0]["classification"]["tag"]["value"],
            "Erwin Schrödinger \"the\" cat\\\n\t\u{1}🐈"
        );
    }

    #[test]
    fn rectangles_are_clipped_to_the_frame() {
        assert_eq!(
            Rect::from_corners(-0.5, 0.9, 0.5, 1.5),
            Rect {
                l: 0.0,
                t: 0.9,
                w: 0.5,
                h: 0.1
            }
        );
        let r = Rect::from_corners(0.8, 0.8, 0.2, 0.2);
        assert_eq!((r.w, r.h), (0.0, 0.0));
    }

    #[test]
    fn formats_pretty_and_json_lines() {
        let d = Document::default();
        let f = |pretty, json_lines| {
            String::from_utf8(d.to_bytes(Format { pretty, json_lines }).unwrap()).unwrap()
        };
        assert_eq!(f(false, false), r#"{"inferences":[]}"#);
        assert_eq!(f(false, true), "{\"inferences\":[]}\n");
        assert_eq!(f(true, false), "{\n  \"inferences\": []\n}");
    }
}
