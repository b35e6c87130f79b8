//! A stream's definition as the client writes it ([`StreamSpec`], JSON with kebab-case keys;
//! unknown keys refused) and its checked form ([`Checked`]), with every reason it is refused.
//!
//! The shape (see the module doc of [`super`] for an example):
//!
//! | key | type | default | meaning |
//! |---|---|---|---|
//! | `source.uri` | string | | `file:///abs/path`, `rtsp://`, `rtsps://`, `rtspt://`, `http://`, `https://` |
//! | `source.pipeline` | string | | a GStreamer source fragment, e.g. `v4l2src device=/dev/video0` (exactly one of `uri`, `pipeline`; one way out, no sink element) |
//! | `source.loop` | bool | `false` | start again at the end (not for `rtsp`: an RTSP source that ends is reconnected) |
//! | `source.realtime` | bool | `false` for `file://`, `true` otherwise | follow the source's clock; frames inference cannot take are dropped and counted |
//! | `source.source-timeout-ms` | integer | `10000` | no frame for this long = the source is lost (0: never) |
//! | `model` | string | (required) | a model name of the configuration |
//! | `ovinfer` | object | `{}` | `ovinfer` properties for this stream (`threshold`, `interval`, ...); not `model`, `model-instance-id` |
//! | `outputs.jsonl.path` | string | | absolute path of a JSON Lines file, appended to |
//! | `outputs.http` | object | | `location` (required) and any other `lvahttpsink` property; `spool-dir` absolute |
//! | `outputs.mqtt` | object | | `host` (required) and any other `lvamqttsink` property; `stream-id` defaults to the stream's id, `topic` to `lva/{stream}`; `spool-dir` absolute |
//! | `outputs.kafka` | object | | `brokers`, `topic` (required) and any other `lvakafkasink` property (`properties`: librdkafka settings as an object or the element's structure text); `stream-id` (so the records' key) defaults to the stream's id; `spool-dir` absolute |
//! | `track` | bool or object | `false` | follow the objects (`ovtrack` after `ovinfer`): `true`, or an object of `ovtrack` properties (`tracking-type`, `max-age`, ...); `predict-on-empty` defaults to `ovinfer`'s `interval` > 1 |
//! | `analytics` | object | | line crossings and zones (`ovanalytics` after `ovtrack`; needs `track`): `ovanalytics` properties, `rules` as the rules' JSON (an object, or its text) or `rules-file` (an absolute path); the rules are checked here |
//! | `outputs.video` | object | | the annotated video: see [`super::video`] |

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gst::glib;
use gst::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use gstovlva::ovanalytics::rules::Rules;

use super::video::{VideoOut, VideoSpec};
use crate::config::ModelConfig;

/// Default of `source-timeout-ms`.
pub const DEFAULT_SOURCE_TIMEOUT_MS: u64 = 10_000;
/// Largest `source-timeout-ms`: one hour.
const MAX_SOURCE_TIMEOUT_MS: u64 = 3_600_000;
/// Smallest non-zero `source-timeout-ms`.
const MIN_SOURCE_TIMEOUT_MS: u64 = 100;
/// `ovinfer` properties a stream may not set: the model is the configuration's, and the stream
/// machinery names the shared instance.
const RESERVED_OVINFER: [&str; 2] = ["model", "model-instance-id"];
/// `ovinfer` properties that may change while playing: they do not split the shared instance.
const LIVE_OVINFER: [&str; 3] = ["threshold", "interval", "stats-interval"];
/// What a stop may take beyond the longest `flush-timeout` of the outputs: the rest of the
/// pipeline draining, the sinks stopping.
const STOP_MARGIN: Duration = Duration::from_secs(5);
/// The MQTT output's topic unless given: one topic per stream (the element's own default,
/// `lva/{element}`, would be the same for every stream).
pub const DEFAULT_MQTT_TOPIC: &str = "lva/{stream}";

/// A stream as the client defines it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct StreamSpec {
    pub source: SourceSpec,
    pub model: String,
    /// Per-stream `ovinfer` properties (JSON strings, numbers or booleans).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ovinfer: BTreeMap<String, Value>,
    /// Object tracking (`ovtrack`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track: Option<Track>,
    /// Line crossings and zones (`ovanalytics` properties; `rules` may be a JSON object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analytics: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    pub outputs: OutputsSpec,
}

/// `track`: `true`/`false`, or the `ovtrack` properties to track with (tracking on).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    untagged,
    expecting = "`track` to be true, false or an object of ovtrack properties"
)]
pub enum Track {
    On(bool),
    With(BTreeMap<String, Value>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SourceSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
    #[serde(default, rename = "loop", skip_serializing_if = "std::ops::Not::not")]
    pub loop_: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realtime: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct OutputsSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jsonl: Option<JsonlSpec>,
    /// `location` and other `lvahttpsink` properties.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<BTreeMap<String, Value>>,
    /// `host` and other `lvamqttsink` properties.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mqtt: Option<BTreeMap<String, Value>>,
    /// `brokers`, `topic` and other `lvakafkasink` properties.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka: Option<BTreeMap<String, Value>>,
    /// The annotated video ([`super::video`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<VideoSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct JsonlSpec {
    pub path: PathBuf,
}

/// Why a definition is refused: one reason per problem found (a 400's body).
#[derive(Debug, Clone, PartialEq)]
pub struct SpecError(pub Vec<String>);

impl std::fmt::Display for SpecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("; "))
    }
}

impl std::error::Error for SpecError {}

/// Where frames come from.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceKind {
    /// A local file (`file://`): its errors are final, its end is the stream's end.
    File(PathBuf),
    /// `http://` or `https://`: errors are retried; the end is the stream's end.
    Http,
    /// `rtsp://` and its variants: errors and the end are a loss, retried.
    Rtsp,
    /// A GStreamer fragment: errors are retried; the end is the stream's end.
    Pipeline,
}

/// A checked source.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub kind: SourceKind,
    /// The URI, or the pipeline fragment.
    pub location: String,
    pub looping: bool,
    pub realtime: bool,
    /// `None`: no stall detection.
    pub timeout: Option<Duration>,
}

impl Source {
    /// Whether the source's end ends the stream (else it is a loss, and retried).
    pub fn ends(&self) -> bool {
        !matches!(self.kind, SourceKind::Rtsp)
    }

    /// Whether errors are final (a missing or broken local file does not come back).
    pub fn errors_are_final(&self) -> bool {
        matches!(self.kind, SourceKind::File(_))
    }

    /// Whether `duration − position` means something (a file played once).
    pub fn has_remaining_time(&self) -> bool {
        matches!(self.kind, SourceKind::File(_)) && !self.looping
    }
}

/// A definition checked against the configuration and the real elements.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    /// As given, for persistence and for `GET`.
    pub spec: StreamSpec,
    pub source: Source,
    pub model: String,
    /// lvajson's `subtype` (the model's).
    pub subtype: Option<String>,
    /// `ovinfer` properties in the order to set them: the model's, then the stream's.
    pub ovinfer: Vec<(String, String)>,
    /// `model-instance-id` to share one compiled model and its requests with the other streams
    /// of the same model and settings; `None` when the frames' size must be part of the instance
    /// (`pre-process-backend=openvino`).
    pub instance_id: Option<String>,
    pub jsonl: Option<PathBuf>,
    /// The document sinks (`http`, `mqtt`, `kafka`), in that order.
    pub sinks: Vec<SinkOutput>,
    /// `ovtrack` properties when tracking.
    pub track: Option<Vec<(String, String)>>,
    /// `ovanalytics` properties (the rules as text), with `track` only.
    pub analytics: Option<Vec<(String, String)>>,
    pub video: Option<VideoOut>,
}

impl Checked {
    /// How long a stop may wait for the outputs to be flushed: the longest `flush-timeout` of
    /// the document sinks (they flush at once, each on its own branch) and a margin for the
    /// rest of the pipeline.
    pub fn stop_timeout(&self) -> Duration {
        let flush = self.sinks.iter().map(|s| s.flush_timeout).max();
        flush.unwrap_or(Duration::ZERO) + STOP_MARGIN
    }
}

/// The outputs that are a document sink element fed by the outputs' `tee`: the same checks
/// (properties set on a real element), the same place in the pipeline, the same way of stopping
/// (EOS, flushed within the element's `flush-timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    Http,
    Mqtt,
    Kafka,
}

impl Sink {
    pub const ALL: [Sink; 3] = [Sink::Http, Sink::Mqtt, Sink::Kafka];

    /// Its key under `outputs`, also its element's name in the pipeline.
    pub fn key(self) -> &'static str {
        match self {
            Sink::Http => "http",
            Sink::Mqtt => "mqtt",
            Sink::Kafka => "kafka",
        }
    }

    pub fn factory(self) -> &'static str {
        match self {
            Sink::Http => "lvahttpsink",
            Sink::Mqtt => "lvamqttsink",
            Sink::Kafka => "lvakafkasink",
        }
    }

    /// Where its reasons point: `outputs.mqtt`.
    pub fn at(self) -> String {
        format!("outputs.{}", self.key())
    }

    /// The properties a definition must give, each with what it is.
    fn required(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Sink::Http => &[("location", "a \"location\" (the receiver's URL)")],
            Sink::Mqtt => &[("host", "a \"host\" (the MQTT broker's name or address)")],
            Sink::Kafka => &[
                (
                    "brokers",
                    "\"brokers\" (the Kafka bootstrap servers, host:port[,host:port...])",
                ),
                ("topic", "a \"topic\" (the Kafka topic the documents go to)"),
            ],
        }
    }

    /// Properties whose value is a secret, shown as `***`.
    fn is_secret(self, key: &str) -> bool {
        match self {
            Sink::Http => matches!(key, "user-pw" | "bearer-token"),
            Sink::Mqtt => key == "password",
            Sink::Kafka => false,
        }
    }

    /// Properties a stream sets unless the definition does: the stream's id as `stream-id`
    /// (`{stream}` in topics, Kafka's record key), and one MQTT topic per stream.
    fn stream_defaults(self, id: &str) -> Vec<(&'static str, String)> {
        match self {
            Sink::Http => Vec::new(),
            Sink::Mqtt => vec![
                ("stream-id", id.to_string()),
                ("topic", DEFAULT_MQTT_TOPIC.to_string()),
            ],
            Sink::Kafka => vec![("stream-id", id.to_string())],
        }
    }

    fn given(self, outputs: &OutputsSpec) -> Option<&BTreeMap<String, Value>> {
        match self {
            Sink::Http => outputs.http.as_ref(),
            Sink::Mqtt => outputs.mqtt.as_ref(),
            Sink::Kafka => outputs.kafka.as_ref(),
        }
    }

    fn given_mut(self, outputs: &mut OutputsSpec) -> Option<&mut BTreeMap<String, Value>> {
        match self {
            Sink::Http => outputs.http.as_mut(),
            Sink::Mqtt => outputs.mqtt.as_mut(),
            Sink::Kafka => outputs.kafka.as_mut(),
        }
    }
}

/// A checked document sink output.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkOutput {
    pub sink: Sink,
    /// The properties as given, as texts (checked on a real element).
    pub properties: Vec<(String, String)>,
    /// Its `flush-timeout` (given or the element's default).
    pub flush_timeout: Duration,
}

impl SinkOutput {
    /// The properties to set on the element of stream `id`: the stream's defaults for those
    /// not given ([`Sink::stream_defaults`]), then those given.
    pub fn properties(&self, id: &str) -> Vec<(String, String)> {
        let given = |key: &str| self.properties.iter().any(|(k, _)| k == key);
        let mut all: Vec<(String, String)> = self
            .sink
            .stream_defaults(id)
            .into_iter()
            .filter(|(k, _)| !given(k))
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        all.extend(self.properties.iter().cloned());
        all
    }
}

impl StreamSpec {
    /// Reads a definition from JSON: syntax, types and unknown keys (serde's message says where).
    pub fn from_json(text: &[u8]) -> Result<StreamSpec, SpecError> {
        serde_json::from_slice(text).map_err(|e| SpecError(vec![e.to_string()]))
    }

    /// The definition with its credentials hidden (`user-pw`, `bearer-token`, a `user:pw@` in
    /// the source's URI or the location), for showing.
    pub fn redacted(&self) -> StreamSpec {
        let mut spec = self.clone();
        if let Some(uri) = spec.source.uri.as_mut() {
            *uri = super::processing::without_credentials(uri);
        }
        for sink in Sink::ALL {
            let Some(props) = sink.given_mut(&mut spec.outputs) else {
                continue;
            };
            for (key, value) in props.iter_mut() {
                match (sink, key.as_str()) {
                    (_, key) if sink.is_secret(key) => *value = Value::String("***".into()),
                    (Sink::Http, "location") => {
                        if let Value::String(l) = value {
                            *l = super::processing::without_credentials(l);
                        }
                    }
                    (Sink::Kafka, "properties") => {
                        *value =
                            structure_redacted(value, gstovlva::lvakafkasink::transport::is_secret)
                    }
                    (Sink::Http, "extra-headers") => {
                        *value = structure_redacted(value, is_secret_header)
                    }
                    _ => {}
                }
            }
        }
        spec
    }

    /// Checks the definition against the configured models and the real elements' properties.
    /// GStreamer must be initialised and the ovlva plugin registered.
    pub fn check(&self, models: &BTreeMap<String, ModelConfig>) -> Result<Checked, SpecError> {
        let mut reasons = Vec::new();
        let source = match check_source(&self.source) {
            Ok(s) => Some(s),
            Err(mut r) => {
                reasons.append(&mut r);
                None
            }
        };
        let model = models.get(&self.model);
        if model.is_none() {
            let known: Vec<&str> = models.keys().map(String::as_str).collect();
            reasons.push(format!(
                "model \"{}\" is not configured; the models are: {}",
                self.model,
                known.join(", ")
            ));
        }
        let mut ovinfer = Vec::new();
        let mut overrides = Vec::new();
        for (key, value) in &self.ovinfer {
            match scalar(value) {
                Some(_) if RESERVED_OVINFER.contains(&key.as_str()) => reasons.push(format!(
                    "ovinfer.{key} cannot be set per stream: the model's comes from the configuration"
                )),
                Some(v) => overrides.push((key.clone(), v)),
                None => reasons.push(format!(
                    "ovinfer.{key} must be a string, number or boolean"
                )),
            }
        }
        if let Some(model) = model {
            ovinfer.extend(model.properties.iter().map(|(k, v)| (k.clone(), v.clone())));
            ovinfer.extend(overrides.iter().cloned());
            match element("ovinfer") {
                Ok(infer) => {
                    for (key, value) in &ovinfer {
                        if let Err(e) = set_own(&infer, key, value) {
                            reasons.push(format!("ovinfer.{key}: {e}"));
                        }
                    }
                }
                Err(e) => reasons.push(e),
            }
        }
        let track = check_track(self.track.as_ref(), &ovinfer, &mut reasons);
        let analytics = self
            .analytics
            .as_ref()
            .and_then(|a| check_analytics(a, track.is_some(), &mut reasons));
        let jsonl = self.outputs.jsonl.as_ref().and_then(|j| {
            check_jsonl(&j.path)
                .map_err(|e| reasons.push(format!("outputs.jsonl.path: {e}")))
                .ok()
        });
        let sinks: Vec<SinkOutput> = Sink::ALL
            .into_iter()
            .filter_map(|sink| {
                let props = sink.given(&self.outputs)?;
                check_sink(sink, props)
                    .map_err(|mut r| reasons.append(&mut r))
                    .ok()
            })
            .collect();
        let video = self
            .outputs
            .video
            .as_ref()
            .and_then(|v| v.check().map_err(|mut r| reasons.append(&mut r)).ok());
        match (source, model) {
            (Some(source), Some(model)) if reasons.is_empty() => Ok(Checked {
                spec: self.clone(),
                source,
                model: self.model.clone(),
                subtype: model.subtype.clone(),
                instance_id: instance_id(&self.model, &ovinfer),
                ovinfer,
                jsonl,
                sinks,
                track,
                analytics,
                video,
            }),
            _ => Err(SpecError(reasons)),
        }
    }
}

/// The shared instance's name: the model and every property that is read when the element
/// starts, so streams that would compile differently never share.
fn instance_id(model: &str, properties: &[(String, String)]) -> Option<String> {
    let effective: BTreeMap<&str, &str> = properties
        .iter()
        .filter(|(k, _)| !LIVE_OVINFER.contains(&k.as_str()))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if effective.get("pre-process-backend") == Some(&"openvino") {
        return None;
    }
    let settings: Vec<String> = effective
        .iter()
        .filter(|(k, _)| **k != "model")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    Some(format!("lva-server-stream:{model}:{}", settings.join(",")))
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn element(factory: &str) -> Result<gst::Element, String> {
    gst::ElementFactory::make(factory).build().map_err(|_| {
        format!("GStreamer element '{factory}' is missing: run scripts/setup.sh (or install its plugin package)")
    })
}

/// Sets one of the element's own properties (not those it inherits, such as `sync` or `qos`)
/// from its text, or says why not.
pub fn set_own(element: &gst::Element, name: &str, value: &str) -> Result<(), String> {
    let own = element.type_();
    let owned = |p: &glib::ParamSpec| {
        p.owner_type() == own && p.flags().contains(glib::ParamFlags::WRITABLE)
    };
    let factory = element.factory().map(|f| f.name().to_string());
    let factory = factory.as_deref().unwrap_or("the element");
    match element.find_property(name) {
        Some(p) if owned(&p) => crate::engine::set_from_str(element, name, value),
        Some(p) if p.owner_type() == own => Err(format!(
            "{factory}'s '{name}' is read-only: it is a figure the element reports, not a setting"
        )),
        _ => {
            let known: Vec<String> = element
                .list_properties()
                .iter()
                .filter(|p| owned(p))
                .map(|p| p.name().to_string())
                .collect();
            Err(format!(
                "{factory} has no property '{name}' to set; it has {}",
                known.join(", ")
            ))
        }
    }
}

fn check_source(spec: &SourceSpec) -> Result<Source, Vec<String>> {
    let mut reasons = Vec::new();
    let timeout = match spec.source_timeout_ms.unwrap_or(DEFAULT_SOURCE_TIMEOUT_MS) {
        0 => None,
        ms if (MIN_SOURCE_TIMEOUT_MS..=MAX_SOURCE_TIMEOUT_MS).contains(&ms) => {
            Some(Duration::from_millis(ms))
        }
        ms => {
            reasons.push(format!(
                "source.source-timeout-ms {ms} is not 0 (never) or {MIN_SOURCE_TIMEOUT_MS} to {MAX_SOURCE_TIMEOUT_MS}"
            ));
            None
        }
    };
    let kind = match (&spec.uri, &spec.pipeline) {
        (Some(uri), None) => check_uri(uri).map_err(|e| reasons.push(format!("source.uri: {e}"))),
        (None, Some(fragment)) => check_fragment(fragment)
            .map(|()| SourceKind::Pipeline)
            .map_err(|e| reasons.push(format!("source.pipeline: {e}"))),
        (Some(_), Some(_)) => {
            reasons.push("source: give either \"uri\" or \"pipeline\", not both".into());
            Err(())
        }
        (None, None) => {
            reasons.push("source: give a \"uri\" or a \"pipeline\"".into());
            Err(())
        }
    };
    if spec.loop_ && kind == Ok(SourceKind::Rtsp) {
        reasons.push(
            "source.loop is for sources that end (files, http, pipelines): an RTSP source that \
             ends is reconnected"
                .into(),
        );
    }
    match kind {
        Ok(kind) if reasons.is_empty() => Ok(Source {
            realtime: spec
                .realtime
                .unwrap_or(!matches!(kind, SourceKind::File(_))),
            kind,
            location: spec
                .uri
                .clone()
                .or(spec.pipeline.clone())
                .unwrap_or_default(),
            looping: spec.loop_,
            timeout,
        }),
        _ => Err(reasons),
    }
}

fn check_uri(uri: &str) -> Result<SourceKind, String> {
    let parsed = glib::Uri::parse(uri, glib::UriFlags::NONE)
        .map_err(|e| format!("'{uri}' is not a URI: {e}"))?;
    let scheme = parsed.scheme().to_ascii_lowercase();
    let has_host = parsed.host().is_some_and(|h| !h.is_empty());
    match scheme.as_str() {
        "file" => {
            let (path, _) = glib::filename_from_uri(uri)
                .map_err(|e| format!("'{uri}' is not a file URI: {e}"))?;
            if !path.is_file() {
                return Err(format!(
                    "{} does not exist or is not a file",
                    path.display()
                ));
            }
            Ok(SourceKind::File(path))
        }
        "rtsp" | "rtsps" | "rtspt" if has_host => Ok(SourceKind::Rtsp),
        "http" | "https" if has_host => Ok(SourceKind::Http),
        "rtsp" | "rtsps" | "rtspt" | "http" | "https" => Err(format!("'{uri}' has no host")),
        other => Err(format!(
            "scheme '{other}' is not supported: use file://, rtsp://, rtsps://, rtspt://, http:// or \
             https://, or a \"pipeline\""
        )),
    }
}

/// Parses a source fragment as the stream will (all errors fatal) and checks it has exactly one
/// way out: one unlinked source pad and no unlinked sink pad.
pub fn parse_fragment(fragment: &str) -> Result<gst::Bin, String> {
    if fragment.trim().is_empty() {
        return Err("the fragment is empty".into());
    }
    let parse = |description: &str| {
        gst::parse::bin_from_description_full(
            description,
            true,
            None,
            gst::ParseFlags::FATAL_ERRORS,
        )
    };
    // gst-launch syntax cannot end on caps (`v4l2src ! image/jpeg,width=1280`), the natural way
    // to ask a camera for a format: such a fragment gets a pass-through element after them.
    let element = parse(fragment)
        .or_else(|e| parse(&format!("{fragment} ! identity")).map_err(|_| e))
        .map_err(|e| format!("'{fragment}' does not parse: {e}"))?;
    let bin = element
        .downcast::<gst::Bin>()
        .map_err(|_| format!("'{fragment}' did not make a bin"))?;
    if bin.static_pad("sink").is_some() {
        return Err(format!(
            "'{fragment}' has an unlinked sink pad: it must start with a source element"
        ));
    }
    let mut elements = bin.iterate_recurse();
    while let Ok(Some(element)) = elements.next() {
        let sink = element
            .factory()
            .and_then(|f| f.metadata("klass").map(|k| k.contains("Sink")))
            .unwrap_or(false);
        if sink {
            return Err(format!(
                "'{fragment}' holds the sink {}: a source fragment may only produce video, not \
                 write or send it anywhere",
                element.name()
            ));
        }
        // The pad that leads out is ghosted, so linked: any other unlinked one is a second way
        // out, which would stop the stream with not-linked.
        let own = element.parent().as_ref() == Some(bin.upcast_ref::<gst::Object>());
        let unlinked = element.src_pads().into_iter().find(|p| !p.is_linked());
        if let Some(pad) = unlinked.filter(|_| own) {
            return Err(format!(
                "'{fragment}' has more than one unlinked source pad ({}:{} is one): link every \
                 branch but the one to decode",
                element.name(),
                pad.name()
            ));
        }
    }
    if bin.static_pad("src").is_none() {
        return Err(format!(
            "'{fragment}' has no unlinked source pad: end it with the element whose output the \
             stream should decode (no sink)"
        ));
    }
    Ok(bin)
}

fn check_fragment(fragment: &str) -> Result<(), String> {
    parse_fragment(fragment).map(drop)
}

fn check_jsonl(path: &Path) -> Result<PathBuf, String> {
    if !path.is_absolute() {
        return Err(format!("{} is not an absolute path", path.display()));
    }
    if path.is_dir() {
        return Err(format!("{} is a folder", path.display()));
    }
    match path.parent() {
        Some(dir) if dir.is_dir() => Ok(path.to_path_buf()),
        _ => Err(format!("the folder of {} does not exist", path.display())),
    }
}

/// JSON properties of a `factory` element, checked by setting them on a real one, as
/// `(name, value)` texts; each problem is a reason starting with `at` (`outputs.http`, ...).
pub fn element_properties(
    factory: &str,
    at: &str,
    props: &BTreeMap<String, Value>,
    reasons: &mut Vec<String>,
) -> Vec<(String, String)> {
    checked_element(factory, at, props, reasons).map_or_else(Vec::new, |(_, checked)| checked)
}

/// [`element_properties`], and the element they were set on (to read what follows from them,
/// defaults included); `None` when there is no such element.
fn checked_element(
    factory: &str,
    at: &str,
    props: &BTreeMap<String, Value>,
    reasons: &mut Vec<String>,
) -> Option<(gst::Element, Vec<(String, String)>)> {
    let element = match element(factory) {
        Ok(e) => e,
        Err(e) => {
            reasons.push(e);
            return None;
        }
    };
    let mut checked = Vec::new();
    for (key, value) in props {
        match scalar(value) {
            Some(v) => match set_own(&element, key, &v) {
                Ok(()) => checked.push((key.clone(), v)),
                Err(e) => reasons.push(format!("{at}.{key}: {e}")),
            },
            None => reasons.push(format!("{at}.{key} must be a string, number or boolean")),
        }
    }
    Some((element, checked))
}

/// Whether `location` is a URL of one of `schemes` with a host.
pub fn is_url(location: &str, schemes: &[&str]) -> bool {
    glib::Uri::parse(location, glib::UriFlags::NONE).is_ok_and(|u| {
        schemes.contains(&u.scheme().to_ascii_lowercase().as_str())
            && u.host().is_some_and(|h| !h.is_empty())
    })
}

/// A document sink output: its required properties, what only it checks (the HTTP
/// receiver's URL, an absolute `spool-dir`), then every property set on a real element.
fn check_sink(sink: Sink, props: &BTreeMap<String, Value>) -> Result<SinkOutput, Vec<String>> {
    let at = sink.at();
    let mut reasons = Vec::new();
    for (key, what) in sink.required() {
        if props
            .get(*key)
            .and_then(scalar)
            .is_none_or(|v| v.is_empty())
        {
            reasons.push(format!("{at} needs {what}"));
        }
    }
    if let (Sink::Http, Some(location)) = (sink, props.get("location").and_then(scalar))
        && !is_url(&location, &["http", "https"])
    {
        reasons.push(format!(
            "{at}.location '{location}' must be an http:// or https:// URL with a host"
        ));
    }
    if let Some(dir) = props.get("spool-dir").and_then(scalar)
        && !Path::new(&dir).is_absolute()
    {
        reasons.push(format!(
            "{at}.spool-dir '{dir}' is not an absolute path: give the absolute path of a folder \
             for this output alone (created if missing)"
        ));
    }
    let mut texts = props.clone();
    if let (Sink::Kafka, Some(Value::Object(settings))) = (sink, props.get("properties")) {
        match kafka_properties_text(settings) {
            Ok(text) => {
                texts.insert("properties".into(), Value::String(text));
            }
            Err(e) => {
                reasons.push(format!("{at}.properties: {e}"));
                texts.remove("properties");
            }
        }
    }
    let checked = checked_element(sink.factory(), &at, &texts, &mut reasons);
    match checked {
        Some((element, properties)) if reasons.is_empty() => {
            let flush_timeout = element
                .find_property("flush-timeout")
                .and_then(|_| element.property_value("flush-timeout").get::<u32>().ok())
                .map_or(Duration::ZERO, |ms| Duration::from_millis(u64::from(ms)));
            Ok(SinkOutput {
                sink,
                properties,
                flush_timeout,
            })
        }
        _ => Err(reasons),
    }
}

/// The Kafka output's librdkafka settings given as a JSON object (`{"security.protocol":
/// "SASL_SSL", ...}`), as the text of the element's `properties` structure.
fn kafka_properties_text(settings: &serde_json::Map<String, Value>) -> Result<String, String> {
    let mut structure = gst::Structure::new_empty("kafka");
    for (key, value) in settings {
        let text =
            scalar(value).ok_or_else(|| format!("{key} must be a string, number or boolean"))?;
        structure.set(key.as_str(), text);
    }
    Ok(structure.to_string())
}

/// A settings value with the secret fields hidden: a JSON object, or a GstStructure's text
/// (what cannot be read is hidden whole). `is_secret` says which field names hold secrets.
fn structure_redacted(value: &Value, is_secret: impl Fn(&str) -> bool) -> Value {
    match value {
        Value::Object(settings) => Value::Object(
            settings
                .iter()
                .map(|(k, v)| {
                    let v = if is_secret(k) {
                        "***".into()
                    } else {
                        v.clone()
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::String(text) => match text.parse::<gst::Structure>() {
            Ok(mut structure) => {
                let secrets: Vec<String> = structure
                    .fields()
                    .map(|f| f.to_string())
                    .filter(|f| is_secret(f))
                    .collect();
                for key in secrets {
                    structure.set(key.as_str(), "***");
                }
                Value::String(structure.to_string())
            }
            Err(_) => Value::String("***".into()),
        },
        _ => Value::String("***".into()),
    }
}

/// Whether an HTTP header (of lvahttpsink's `extra-headers`) may carry a credential.
fn is_secret_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "auth",
        "token",
        "key",
        "secret",
        "password",
        "cookie",
        "signature",
    ]
    .iter()
    .any(|word| name.contains(word))
}

/// `track`: the `ovtrack` properties when tracking is on. Unless given, `predict-on-empty`
/// follows `ovinfer`'s `interval` (the last of `ovinfer`, the stream's over the model's): with
/// a detection on every frame, a frame without objects is one where nothing was seen, not one
/// the detector skipped.
fn check_track(
    track: Option<&Track>,
    ovinfer: &[(String, String)],
    reasons: &mut Vec<String>,
) -> Option<Vec<(String, String)>> {
    let none = BTreeMap::new();
    let props = match track? {
        Track::On(false) => return None,
        Track::On(true) => &none,
        Track::With(props) => props,
    };
    let mut checked = element_properties("ovtrack", "track", props, reasons);
    if !props.contains_key("predict-on-empty") {
        let interval = ovinfer
            .iter()
            .rev()
            .find(|(k, _)| k == "interval")
            .and_then(|(_, v)| v.parse::<u32>().ok())
            .unwrap_or(1);
        checked.push(("predict-on-empty".into(), (interval > 1).to_string()));
    }
    Some(checked)
}

/// `analytics`: the `ovanalytics` properties, `rules` as text (a JSON object or list given is
/// written as its text), checked on a real element; the rules themselves are read here with the
/// element's own parser, so a bad rule is refused now with the element's reason.
fn check_analytics(
    props: &BTreeMap<String, Value>,
    tracked: bool,
    reasons: &mut Vec<String>,
) -> Option<Vec<(String, String)>> {
    if !tracked {
        reasons.push(
            "analytics needs tracked objects (ovanalytics follows objects by their tracking id): \
             add \"track\": true to the definition"
                .into(),
        );
    }
    let mut texts = props.clone();
    if let Some(rules @ (Value::Object(_) | Value::Array(_))) = props.get("rules") {
        texts.insert("rules".into(), Value::String(rules.to_string()));
    }
    let before = reasons.len();
    let checked = element_properties("ovanalytics", "analytics", &texts, reasons);
    if reasons.len() > before {
        // The property's own reason says it.
        return None;
    }
    let rules = |key: &str| checked.iter().find(|(k, _)| k == key).map(|(_, v)| v);
    let read = match (rules("rules"), rules("rules-file")) {
        (Some(_), Some(_)) => Err(
            "analytics: give either \"rules\" (the rules' JSON) or \"rules-file\" (a file \
             holding it), not both"
                .to_string(),
        ),
        (None, None) => Err(
            "analytics needs \"rules\", the lines and zones, e.g. {\"lines\": [{\"name\": \
             \"door\", \"points\": [[0.5, 0.0], [0.5, 1.0]]}]}, or \"rules-file\", the absolute \
             path of a file holding them (see docs/ovanalytics.md)"
                .to_string(),
        ),
        (Some(text), None) => Rules::from_json(text).map_err(|e| format!("analytics.rules: {e}")),
        (None, Some(path)) if !Path::new(path).is_absolute() => Err(format!(
            "analytics.rules-file {path} is not an absolute path"
        )),
        (None, Some(path)) => {
            Rules::from_file(Path::new(path)).map_err(|e| format!("analytics.rules-file: {e}"))
        }
    };
    match read {
        Ok(_) => Some(checked),
        Err(reason) => {
            reasons.push(reason);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Result<StreamSpec, SpecError> {
        StreamSpec::from_json(json.as_bytes())
    }

    #[test]
    fn reads_the_full_shape_and_writes_it_back() {
        let text = r#"{
            "source": {"uri": "rtsp://cam/1", "realtime": true, "source-timeout-ms": 5000},
            "model": "object-detection",
            "ovinfer": {"threshold": 0.6, "interval": 2},
            "outputs": {"jsonl": {"path": "/tmp/a.jsonl"},
                        "http": {"location": "http://127.0.0.1:1/x", "max-queue": 10}}
        }"#;
        let s = spec(text).unwrap();
        assert_eq!(s.source.uri.as_deref(), Some("rtsp://cam/1"));
        assert_eq!(s.source.source_timeout_ms, Some(5000));
        assert_eq!(s.ovinfer["interval"], 2);
        let back: StreamSpec = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["source"]["source-timeout-ms"], 5000);
        assert!(json["source"].get("loop").is_none(), "defaults left out");
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_refused_with_where() {
        let e = spec(r#"{"source": {"uri": "file:///a"}, "model": "m", "modle": 1}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `modle`"), "{e}");
        let e = spec(r#"{"source": {"uri": "file:///a", "lop": true}, "model": "m"}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `lop`"), "{e}");
        let e = spec(r#"{"source": {"uri": 3}, "model": "m"}"#).unwrap_err();
        assert!(e.to_string().contains("invalid type"), "{e}");
        let e = spec(r#"{"source": {}, "model": "m", "outputs": {"amqp": {}}}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `amqp`"), "{e}");
        let e = spec(r#"{"model": "m"}"#).unwrap_err();
        assert!(e.to_string().contains("missing field `source`"), "{e}");
    }

    #[test]
    fn sources_are_checked_without_gstreamer_elements() {
        let src = |json: &str| -> Result<Source, Vec<String>> {
            check_source(&serde_json::from_str(json).unwrap())
        };
        let file = std::env::current_exe().unwrap();
        let uri = format!("file://{}", file.display());
        let s = src(&format!(r#"{{"uri": "{uri}"}}"#)).unwrap();
        assert_eq!(s.kind, SourceKind::File(file.clone()));
        assert!(!s.realtime, "files follow the processing by default");
        assert_eq!(s.timeout, Some(Duration::from_secs(10)));
        assert!(s.ends() && s.errors_are_final() && s.has_remaining_time());
        let s = src(r#"{"uri": "rtsp://cam:8554/x", "source-timeout-ms": 0}"#).unwrap();
        assert!(s.realtime && !s.ends() && !s.errors_are_final() && s.timeout.is_none());
        assert_eq!(
            src(r#"{"uri": "https://h/v.mp4"}"#).unwrap().kind,
            SourceKind::Http
        );

        let reason = |json: &str| src(json).unwrap_err().join("; ");
        assert!(reason(r#"{"uri": "ftp://h/x"}"#).contains("scheme 'ftp' is not supported"));
        assert!(reason(r#"{"uri": "file:///no/such.mp4"}"#).contains("does not exist"));
        assert!(reason(r#"{"uri": "no uri"}"#).contains("is not a URI"));
        assert!(reason(r#"{"uri": "rtsp:///x"}"#).contains("has no host"));
        assert!(reason(r#"{}"#).contains("give a \"uri\" or a \"pipeline\""));
        assert!(reason(r#"{"uri": "rtsp://h/x", "pipeline": "x"}"#).contains("not both"));
        assert!(reason(r#"{"uri": "rtsp://h/x", "loop": true}"#).contains("reconnected"));
        assert!(
            reason(r#"{"uri": "rtsp://h/x", "source-timeout-ms": 5}"#).contains("100 to 3600000")
        );
    }

    #[test]
    fn jsonl_paths_must_be_absolute_in_an_existing_folder() {
        assert!(check_jsonl(Path::new("rel.jsonl")).is_err());
        assert!(check_jsonl(Path::new("/no/such/dir/a.jsonl")).is_err());
        assert!(check_jsonl(&std::env::temp_dir()).is_err());
        assert!(check_jsonl(&std::env::temp_dir().join("a.jsonl")).is_ok());
    }

    #[test]
    fn the_instance_id_splits_on_start_time_properties_only() {
        let props = |p: &[(&str, &str)]| -> Vec<(String, String)> {
            p.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let base = instance_id("m", &props(&[("model", "/m.xml"), ("threshold", "0.5")]));
        assert_eq!(
            base,
            instance_id("m", &props(&[("model", "/m.xml"), ("threshold", "0.9")]))
        );
        assert_ne!(
            base,
            instance_id("m", &props(&[("model", "/m.xml"), ("nireq", "2")]))
        );
        assert_eq!(
            instance_id("m", &props(&[("pre-process-backend", "openvino")])),
            None
        );
    }

    #[test]
    fn track_and_analytics_are_read_and_written_back() {
        let s = spec(
            r#"{"source": {"uri": "file:///a"}, "model": "m", "track": true,
                "analytics": {"rules": {"lines": [{"name": "door", "points": [[0.5, 0], [0.5, 1]]}]},
                              "dwell-interval": 2}}"#,
        )
        .unwrap();
        assert_eq!(s.track, Some(Track::On(true)));
        let analytics = s.analytics.as_ref().unwrap();
        assert_eq!(analytics["rules"]["lines"][0]["name"], "door");
        assert_eq!(analytics["dwell-interval"], 2);
        let back: StreamSpec = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);

        let s = spec(
            r#"{"source": {"uri": "file:///a"}, "model": "m",
                "track": {"tracking-type": "iou", "max-age": 30}}"#,
        )
        .unwrap();
        let Some(Track::With(props)) = &s.track else {
            panic!("{:?}", s.track)
        };
        assert_eq!(props["tracking-type"], "iou");
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["track"]["max-age"], 30);
        assert!(json.get("analytics").is_none(), "left out when not given");

        let e =
            spec(r#"{"source": {"uri": "file:///a"}, "model": "m", "track": "yes"}"#).unwrap_err();
        assert!(
            e.to_string()
                .contains("`track` to be true, false or an object of ovtrack properties"),
            "{e}"
        );
        let e = spec(r#"{"source": {"uri": "file:///a"}, "model": "m", "analytics": true}"#)
            .unwrap_err();
        assert!(e.to_string().contains("invalid type"), "{e}");
    }

    #[test]
    fn predict_on_empty_follows_the_interval_unless_given() {
        crate::streams::tests::init();
        let predict = |track: Track, ovinfer: &[(&str, &str)]| {
            let ovinfer: Vec<(String, String)> = ovinfer
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let mut reasons = Vec::new();
            let checked = check_track(Some(&track), &ovinfer, &mut reasons);
            assert!(reasons.is_empty(), "{reasons:?}");
            checked.map(|c| c.into_iter().find(|(k, _)| k == "predict-on-empty"))
        };
        let on = |v: &str| Some(Some(("predict-on-empty".to_string(), v.to_string())));
        assert_eq!(predict(Track::On(true), &[]), on("false"));
        assert_eq!(predict(Track::On(true), &[("interval", "1")]), on("false"));
        // The stream's interval comes after the model's.
        assert_eq!(
            predict(Track::On(true), &[("interval", "1"), ("interval", "3")]),
            on("true")
        );
        assert_eq!(predict(Track::On(false), &[("interval", "3")]), None);
    }
}
