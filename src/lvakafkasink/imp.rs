use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};

use super::transport::{
    self, KafkaSettings, KafkaTransport, Prepared, Route, Template, is_secret, topic_name,
};
use super::{Acks, Compression};
use crate::properties::optional_string;
use crate::publish::settings::PublishSettings;
use crate::publish::sink::{BROKER, Publisher};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "lvakafkasink",
        gst::DebugColorFlags::empty(),
        Some("Publishes LVA documents to Kafka"),
    )
});

const NAME: &str = "lvakafkasink";
const DEFAULT_IDEMPOTENCE: bool = true;
const DEFAULT_MESSAGE_TIMEOUT: u32 = 30_000;

// No Debug: `properties` may hold secrets, which must never reach a log.
#[derive(Clone)]
struct Settings {
    brokers: Option<String>,
    topic: Option<String>,
    stream_id: Option<String>,
    key: Option<String>,
    acks: Acks,
    idempotence: bool,
    compression: Compression,
    properties: Option<gst::Structure>,
    message_timeout: u32,
    publish: PublishSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            brokers: None,
            topic: None,
            stream_id: None,
            key: None,
            acks: Acks::All,
            idempotence: DEFAULT_IDEMPOTENCE,
            compression: Compression::None,
            properties: None,
            message_timeout: DEFAULT_MESSAGE_TIMEOUT,
            publish: PublishSettings::default(),
        }
    }
}

/// Per-run state, from `start` to `stop`.
struct State {
    config: ClientConfig,
    /// The producer `start` made (checking the settings), for the first connection; taken when
    /// the publisher starts.
    first: Option<Prepared>,
    route: Arc<Mutex<Route>>,
    /// The key is the stream-start event's stream id (neither `key` nor `stream-id` set): the
    /// publisher starts at the first stream-start.
    key_from_stream_start: bool,
    /// Where the documents go, for the log: brokers and the extra settings, secrets masked.
    target: String,
}

pub struct LvaKafkaSink {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
    publisher: Publisher,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn settings_error(text: String) -> gst::ErrorMessage {
    gst::error_msg!(gst::ResourceError::Settings, ("{text}"))
}

/// The `properties` structure as librdkafka settings (every value as its text).
fn extra_settings(properties: Option<&gst::Structure>) -> Result<Vec<(String, String)>, String> {
    let Some(s) = properties else {
        return Ok(Vec::new());
    };
    s.iter()
        .map(|(name, value)| {
            let text = match value.get::<String>() {
                Ok(text) => text,
                Err(_) => value
                    .serialize()
                    .map(|t| t.to_string())
                    .map_err(|_| format!("properties: the value of {name} has no text form"))?,
            };
            Ok((name.to_string(), text))
        })
        .collect()
}

/// librdkafka's log level for what our debug category shows.
fn log_level() -> RDKafkaLogLevel {
    match CAT.threshold() {
        l if l >= gst::DebugLevel::Debug => RDKafkaLogLevel::Debug,
        l if l >= gst::DebugLevel::Info => RDKafkaLogLevel::Info,
        _ => RDKafkaLogLevel::Warning,
    }
}

impl LvaKafkaSink {
    fn settings(&self) -> MutexGuard<'_, Settings> {
        lock(&self.settings)
    }

    /// Checks the settings and makes the producer (librdkafka checks every setting).
    fn prepare(&self, s: &Settings) -> Result<State, String> {
        let name = self.obj().name();
        let brokers = s.brokers.clone().ok_or(
            "brokers: not set; set it to the Kafka bootstrap servers, e.g. brokers=127.0.0.1:9092",
        )?;
        let topic = s
            .topic
            .as_deref()
            .ok_or("topic: not set; set the Kafka topic the documents go to, e.g. topic=lva")?;
        let topic = Template::parse(topic)
            .and_then(|t| t.render(s.stream_id.as_deref(), &name))
            .and_then(|t| topic_name(&t))
            .map_err(|e| format!("topic: {e}"))?;
        let key = match (&s.key, &s.stream_id) {
            (Some(key), _) => Some(
                Template::parse(key)
                    .and_then(|t| t.render(s.stream_id.as_deref(), &name))
                    .map_err(|e| format!("key: {e}"))?,
            ),
            (None, Some(stream)) => Some(stream.clone()),
            (None, None) => None,
        };
        let extra = extra_settings(s.properties.as_ref())?;
        let kafka = KafkaSettings {
            brokers,
            acks: s.acks,
            idempotence: s.idempotence,
            compression: s.compression,
            message_timeout: s.message_timeout,
            extra,
        };
        let config = kafka.client_config(log_level())?;
        let first = transport::create(&config, self.obj().upcast_ref(), *CAT)?;
        let shown: Vec<String> = kafka
            .extra
            .iter()
            .map(|(k, v)| {
                if is_secret(k) {
                    format!("{k}=***")
                } else {
                    format!("{k}={v}")
                }
            })
            .collect();
        let target = format!(
            "topic {topic} on brokers {} (acks={}, idempotence={}, compression={}{}{})",
            kafka.brokers,
            kafka.acks.setting(),
            kafka.idempotence,
            kafka.compression.setting(),
            if shown.is_empty() { "" } else { ", " },
            shown.join(", ")
        );
        Ok(State {
            config,
            first: Some(first),
            key_from_stream_start: key.is_none(),
            route: Arc::new(Mutex::new(Route {
                topic,
                key: key.map(String::into_bytes),
            })),
            target,
        })
    }

    /// Starts the publisher (the worker connects and delivers) unless it runs already.
    fn start_publisher(&self, state: &mut State) -> Result<(), gst::ErrorMessage> {
        let Some(first) = state.first.take() else {
            return Ok(());
        };
        let transport = KafkaTransport::new(
            state.config.clone(),
            first,
            self.obj().upcast_ref(),
            *CAT,
            state.route.clone(),
        );
        let publish = self.settings().publish.clone();
        let key = lock(&state.route)
            .key
            .as_deref()
            .map(String::from_utf8_lossy)
            .unwrap_or_default()
            .into_owned();
        self.publisher.start(
            self.obj().upcast_ref(),
            &publish,
            transport,
            &format!("{}, key {key}", state.target),
        )
    }

    /// At stream-start: with the key from the event, this stream's key (the first one starts
    /// the publisher).
    fn stream_start(&self, stream_id: &str) -> Result<(), gst::ErrorMessage> {
        let mut state = lock(&self.state);
        let Some(state) = state.as_mut() else {
            return Ok(());
        };
        if !state.key_from_stream_start {
            return Ok(());
        }
        gst::info!(CAT, imp = self, "stream {stream_id}: the records' key");
        // A new stream in the same run: the documents not yet sent go with its key too.
        lock(&state.route).key = Some(stream_id.as_bytes().to_vec());
        self.start_publisher(state)
    }
}

#[glib::object_subclass]
impl ObjectSubclass for LvaKafkaSink {
    const NAME: &'static str = "GstLvaKafkaSink";
    type Type = super::LvaKafkaSink;
    type ParentType = gst_base::BaseSink;

    fn new() -> Self {
        LvaKafkaSink {
            settings: Mutex::new(Settings::default()),
            state: Mutex::new(None),
            publisher: Publisher::new(NAME, *CAT, &BROKER),
        }
    }
}

impl ObjectImpl for LvaKafkaSink {
    fn constructed(&self) {
        self.parent_constructed();
        // Results go out as soon as they exist, not at their frame's clock time.
        self.obj().set_sync(false);
    }

    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let string = |name: &str, nick: &str, blurb: &str| {
                glib::ParamSpecString::builder(name)
                    .nick(nick)
                    .blurb(blurb)
                    .build()
            };
            let mut props = vec![
                string(
                    "brokers",
                    "Brokers",
                    "Kafka bootstrap servers, host:port[,host:port...] (required)",
                ),
                string(
                    "topic",
                    "Topic",
                    "Topic of the records (required); {element} is replaced by the element's \
                     name, {stream} by stream-id; characters a Kafka topic cannot have become '_'",
                ),
                string(
                    "stream-id",
                    "Stream id",
                    "The stream's (camera's) name, for {stream} in topic and key, and the \
                     records' key when key is not set",
                ),
                string(
                    "key",
                    "Key",
                    "Key of the records, templated like topic; unset: stream-id, or when that is \
                     unset too the stream-start event's stream id, so that one stream's \
                     documents stay in one partition, in order",
                ),
                glib::ParamSpecEnum::builder_with_default("acks", Acks::All)
                    .nick("Acks")
                    .blurb("Which confirmation a record needs to count as sent")
                    .build(),
                glib::ParamSpecBoolean::builder("idempotence")
                    .nick("Idempotence")
                    .blurb(
                        "Idempotent producer (enable.idempotence): librdkafka's own retries \
                         neither duplicate nor reorder records; needs acks=all",
                    )
                    .default_value(DEFAULT_IDEMPOTENCE)
                    .build(),
                glib::ParamSpecEnum::builder_with_default("compression", Compression::None)
                    .nick("Compression")
                    .blurb("Compression of the record batches (compression.type)")
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("properties")
                    .nick("librdkafka properties")
                    .blurb(
                        "Further librdkafka settings, passed through (SASL, TLS, tuning), e.g. \
                         \"kafka,security.protocol=SASL_SSL,sasl.mechanism=PLAIN,\
                         sasl.username=u,sasl.password=p\"; secret values are never logged",
                    )
                    .build(),
                glib::ParamSpecUInt::builder("message-timeout")
                    .nick("Message timeout")
                    .blurb(
                        "Milliseconds librdkafka may try to deliver a record \
                         (message.timeout.ms); then the connection counts as lost and the \
                         record is sent again after reconnecting",
                    )
                    .minimum(1000)
                    .maximum(3_600_000)
                    .default_value(DEFAULT_MESSAGE_TIMEOUT)
                    .build(),
            ];
            props.extend(PublishSettings::properties(NAME));
            props
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings();
        match pspec.name() {
            "brokers" => s.brokers = optional_string(value),
            "topic" => s.topic = optional_string(value),
            "stream-id" => s.stream_id = optional_string(value),
            "key" => s.key = optional_string(value),
            "acks" => s.acks = value.get().unwrap_or_default(),
            "idempotence" => s.idempotence = value.get().unwrap_or(DEFAULT_IDEMPOTENCE),
            "compression" => s.compression = value.get().unwrap_or_default(),
            "properties" => s.properties = value.get().ok().flatten(),
            "message-timeout" => s.message_timeout = value.get().unwrap_or(DEFAULT_MESSAGE_TIMEOUT),
            name => {
                if !s.publish.set_property(name, value) {
                    gst::warning!(CAT, imp = self, "no writable property {name}");
                }
            }
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings();
        match pspec.name() {
            "brokers" => s.brokers.to_value(),
            "topic" => s.topic.to_value(),
            "stream-id" => s.stream_id.to_value(),
            "key" => s.key.to_value(),
            "acks" => s.acks.to_value(),
            "idempotence" => s.idempotence.to_value(),
            "compression" => s.compression.to_value(),
            "properties" => s.properties.to_value(),
            "message-timeout" => s.message_timeout.to_value(),
            name => {
                if let Some(v) = s.publish.property(name) {
                    return v;
                }
                drop(s);
                self.publisher.counter(name).unwrap_or_else(|| {
                    gst::warning!(CAT, imp = self, "no property {name}");
                    pspec.default_value().clone()
                })
            }
        }
    }
}

impl GstObjectImpl for LvaKafkaSink {}

impl ElementImpl for LvaKafkaSink {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "LVA Kafka sink",
                "Sink/Network",
                "Publishes each JSON document as a Kafka record (keyed by stream), in order, \
                 from a bounded queue or disk spool, with counted losses",
                "ovlva developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(crate::pads::json_sink);
        TEMPLATES.as_ref()
    }
}

impl BaseSinkImpl for LvaKafkaSink {
    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let s = self.settings().clone();
        let mut state = self.prepare(&s).map_err(settings_error)?;
        gst::debug!(CAT, imp = self, "ready: {}", state.target);
        if !state.key_from_stream_start {
            self.start_publisher(&mut state)?;
        }
        *lock(&self.state) = Some(state);
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        self.publisher.stop(self.obj().upcast_ref());
        lock(&self.state).take();
        Ok(())
    }

    fn render(&self, buffer: &gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        self.publisher.render(self.obj().upcast_ref(), buffer)
    }

    fn event(&self, event: gst::Event) -> bool {
        match event.view() {
            gst::EventView::StreamStart(s) => {
                if let Err(e) = self.stream_start(s.stream_id()) {
                    self.post_error_message(e);
                    return false;
                }
            }
            gst::EventView::Eos(_) => self.publisher.eos(self.obj().upcast_ref()),
            _ => {}
        }
        self.parent_event(event)
    }

    fn unlock(&self) -> Result<(), gst::ErrorMessage> {
        self.publisher.unlock();
        Ok(())
    }

    fn unlock_stop(&self) -> Result<(), gst::ErrorMessage> {
        self.publisher.unlock_stop();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn properties_structures_become_librdkafka_settings() {
        gst::init().unwrap();
        let s = gst::Structure::from_str(
            "kafka,security.protocol=SASL_SSL,sasl.username=u,sasl.password=\"p,w\",linger.ms=20,\
             enable.ssl.certificate.verification=false",
        )
        .unwrap();
        let extra = extra_settings(Some(&s)).unwrap();
        assert_eq!(
            extra,
            [
                ("security.protocol", "SASL_SSL"),
                ("sasl.username", "u"),
                ("sasl.password", "p,w"),
                ("linger.ms", "20"),
                ("enable.ssl.certificate.verification", "false"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        assert!(extra_settings(None).unwrap().is_empty());
    }
}
