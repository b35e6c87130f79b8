//! The Kafka side of `lvakafkasink`: the librdkafka configuration built from the element's
//! settings (checked by librdkafka itself), the topic and key templates, and a librdkafka
//! producer driven as the publishing core's [`Transport`].
//!
//! How the producer maps onto the core's model:
//! * `connect` creates a fresh producer (a new producer id, so nothing of a failed one is sent
//!   again by librdkafka) and asks the broker for the topic's metadata: it succeeds once a broker
//!   answered for the topic;
//! * `send` hands the document to librdkafka (`rd_kafka_producev`, copied), the document's
//!   sequence as its opaque;
//! * `poll` serves librdkafka's delivery reports and errors: a delivered record is `Delivered`; a
//!   record the broker refuses for what it is (too large, invalid) is `Rejected`; anything else
//!   (no broker reachable, a timed out or purged record, a fatal idempotence error) is a lost
//!   connection, after which the core reconnects with back-off and sends again what was in
//!   flight;
//! * `disconnect` purges what librdkafka still holds and destroys the producer.
//!
//! librdkafka would ride out a short outage by itself, retrying within `message.timeout.ms`;
//! the sink instead treats "all brokers down" as a lost connection, so that an outage shows in
//! the counters (`disconnects`, `waited`, `resent`), its documents wait in the element's bounded
//! queue or disk spool (which survive a pipeline restart) rather than in librdkafka's memory,
//! and EOS is bounded by `flush-timeout`.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use rdkafka::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{
    BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext, PurgeConfig,
};

use super::{Acks, Compression};
use crate::publish::Body;
use crate::publish::queue::Doc;
use crate::publish::worker::{Outcome, Transport, TransportError};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// librdkafka settings that have an element property of their own: `properties` must not set
/// them (which one would win would be a guess).
const OWN_SETTINGS: [(&str, &str); 9] = [
    ("bootstrap.servers", "brokers"),
    ("metadata.broker.list", "brokers"),
    ("acks", "acks"),
    ("request.required.acks", "acks"),
    ("enable.idempotence", "idempotence"),
    ("compression.type", "compression"),
    ("compression.codec", "compression"),
    ("message.timeout.ms", "message-timeout"),
    ("delivery.timeout.ms", "message-timeout"),
];

/// How long one metadata request of a connection attempt may take before librdkafka's errors
/// are looked at.
const CONNECT_STEP: Duration = Duration::from_millis(250);

/// Whether a librdkafka setting holds a secret: its value is never logged nor put in a message.
pub fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.contains("password")
        || key.contains("secret")
        || key == "ssl.key.pem"
        || key == "sasl.oauthbearer.config"
}

/// The Kafka part of the element's settings (no `Debug`: `extra` may hold secrets).
#[derive(Clone)]
pub struct KafkaSettings {
    pub brokers: String,
    pub acks: Acks,
    pub idempotence: bool,
    pub compression: Compression,
    /// `message.timeout.ms`.
    pub message_timeout: u32,
    /// Further librdkafka settings (`properties`), passed through.
    pub extra: Vec<(String, String)>,
}

impl KafkaSettings {
    /// The librdkafka configuration, or what is wrong (naming the element property).
    pub fn client_config(&self, log_level: RDKafkaLogLevel) -> Result<ClientConfig, String> {
        let brokers = self.brokers.trim();
        if brokers.is_empty() || brokers.split(',').any(|b| b.trim().is_empty()) {
            return Err(format!(
                "brokers: '{brokers}' is not a list of host:port (e.g. \"kafka1:9092,kafka2:9092\")"
            ));
        }
        for (key, _) in &self.extra {
            if let Some((_, property)) = OWN_SETTINGS.iter().find(|(k, _)| k == key) {
                return Err(format!(
                    "properties: {key} has an element property of its own: set `{property}` instead"
                ));
            }
            if key == "transactional.id" {
                return Err(
                    "properties: transactional.id is not supported: lvakafkasink does not use \
                     transactions (it uses the idempotent producer, `idempotence`)"
                        .into(),
                );
            }
        }
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", brokers)
            .set("acks", self.acks.setting())
            .set("enable.idempotence", self.idempotence.to_string())
            .set("compression.type", self.compression.setting())
            .set("message.timeout.ms", self.message_timeout.to_string());
        for (key, value) in &self.extra {
            config.set(key, value);
        }
        config.set_log_level(log_level);
        Ok(config)
    }
}

/// Which element property a librdkafka setting comes from (for error messages).
fn property_of(key: &str) -> &'static str {
    OWN_SETTINGS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, p)| *p)
        .unwrap_or("properties")
}

/// A librdkafka error at producer creation as a message for the user: which property, which
/// setting, what librdkafka said (a secret's value replaced by `***`).
pub fn creation_error(e: &KafkaError) -> String {
    match e {
        KafkaError::ClientConfig(_, desc, key, value) => {
            let property = property_of(key);
            if is_secret(key) && !value.is_empty() {
                format!(
                    "{property}: librdkafka rejects {key}: {}",
                    desc.replace(value.as_str(), "***")
                )
            } else {
                format!("{property}: librdkafka rejects {key}={value:?}: {desc}")
            }
        }
        KafkaError::ClientCreation(text) => {
            // Names the settings in conflict, e.g. "`acks` must be set to `all` when
            // `enable.idempotence` is true".
            format!(
                "the Kafka settings do not fit together: {text} (set by the element: \
                 bootstrap.servers from brokers, acks, enable.idempotence from idempotence, \
                 compression.type from compression, message.timeout.ms from message-timeout; \
                 the others from properties)"
            )
        }
        other => format!("cannot create the Kafka producer: {other}"),
    }
}

/// A topic or key template: text with `{stream}` (the `stream-id` property) and `{element}`
/// (the element's name) in it, as `lvamqttsink`'s topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    text: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Stream,
    Element,
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let Some(close) = rest[open..].find('}') else {
                return Err(format!("'{text}' has a '{{' without '}}'"));
            };
            parts.push(match &rest[open + 1..open + close] {
                "stream" => Part::Stream,
                "element" => Part::Element,
                other => {
                    return Err(format!(
                        "'{text}' has an unknown placeholder {{{other}}}: use {{element}} or {{stream}}"
                    ));
                }
            });
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template {
            text: text.to_string(),
            parts,
        })
    }

    /// The text with the placeholders replaced; Err when it uses `{stream}` and there is no
    /// stream id.
    pub fn render(&self, stream_id: Option<&str>, element: &str) -> Result<String, String> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Element => out.push_str(element),
                Part::Stream => out.push_str(stream_id.ok_or_else(|| {
                    format!(
                        "'{}' uses {{stream}} but stream-id is not set: set stream-id (the \
                         camera's or stream's name)",
                        self.text
                    )
                })?),
            }
        }
        Ok(out)
    }
}

/// A Kafka topic name from a rendered template: characters Kafka does not allow in a topic
/// (anything but ASCII letters, digits, '.', '_', '-') become '_'. Err when empty, `.` or `..`,
/// or longer than 249.
pub fn topic_name(rendered: &str) -> Result<String, String> {
    let name: String = rendered
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() || name == "." || name == ".." {
        return Err(format!("'{rendered}' is not a usable topic name"));
    }
    if name.len() > 249 {
        return Err(format!(
            "'{name}' is {} characters long; Kafka allows 249",
            name.len()
        ));
    }
    Ok(name)
}

/// Where the documents go: resolved from the templates at stream-start, read by the worker at
/// each send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub topic: String,
    /// None: records without a key (librdkafka spreads them over the partitions).
    pub key: Option<Vec<u8>>,
}

/// What librdkafka reported, collected for the worker's `poll` (librdkafka calls back on the
/// thread that polls; its log callback may come from its own threads).
struct Shared {
    element: glib::WeakRef<gst::Element>,
    cat: gst::DebugCategory,
    deliveries: Mutex<Vec<(u64, Result<(), RDKafkaErrorCode>)>>,
    /// A failure of the whole client (no broker reachable, fatal error, authentication).
    failure: Mutex<Option<String>>,
    /// The last error librdkafka reported, to say why a connection attempt failed.
    last_error: Mutex<Option<String>>,
}

/// The producer's context: librdkafka's callbacks land here.
pub struct Context(Arc<Shared>);

/// Logs to the element's debug category, on the element while it exists.
macro_rules! log_on {
    ($level:ident, $cat:expr, $element:expr, $($args:tt)*) => {
        match $element.upgrade() {
            Some(e) => gst::$level!($cat, obj = e, $($args)*),
            None => gst::$level!($cat, $($args)*),
        }
    };
}

impl ClientContext for Context {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        let s = &self.0;
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error
            | RDKafkaLogLevel::Warning => {
                log_on!(warning, s.cat, s.element, "librdkafka {fac}: {message}")
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                log_on!(info, s.cat, s.element, "librdkafka {fac}: {message}")
            }
            RDKafkaLogLevel::Debug => {
                log_on!(debug, s.cat, s.element, "librdkafka {fac}: {message}")
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let s = &self.0;
        let code = error.rdkafka_error_code();
        let text = match code {
            Some(code) => format!("{code}: {reason}"),
            None => format!("{error}: {reason}"),
        };
        log_on!(debug, s.cat, s.element, "librdkafka error: {text}");
        if code != Some(RDKafkaErrorCode::AllBrokersDown) {
            *lock(&s.last_error) = Some(reason.to_string());
        }
        if matches!(
            code,
            Some(
                RDKafkaErrorCode::AllBrokersDown
                    | RDKafkaErrorCode::Fatal
                    | RDKafkaErrorCode::Authentication
                    | RDKafkaErrorCode::SaslAuthenticationFailed
            )
        ) {
            lock(&s.failure).get_or_insert(text);
        }
    }

    fn stats_raw(&self, _statistics: &[u8]) {}
}

impl ProducerContext for Context {
    type DeliveryOpaque = Box<u64>;

    fn delivery(&self, result: &DeliveryResult<'_>, sequence: Box<u64>) {
        let outcome = match result {
            Ok(_) => Ok(()),
            Err((KafkaError::MessageProduction(code), _)) => Err(*code),
            Err((other, _)) => Err(other.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Fail)),
        };
        lock(&self.0.deliveries).push((*sequence, outcome));
    }
}

/// Whether a record's delivery error is about the record itself (refused for good: counted in
/// `failed`, not sent again) rather than about the connection.
fn refused_for_good(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::MessageSizeTooLarge
            | RDKafkaErrorCode::InvalidMessageSize
            | RDKafkaErrorCode::InvalidMessage
            | RDKafkaErrorCode::InvalidRecord
            | RDKafkaErrorCode::MessageBatchTooLarge
            | RDKafkaErrorCode::PolicyViolation
    )
}

/// A producer made from checked settings, to be the first connection's.
pub struct Prepared {
    producer: BaseProducer<Context>,
    shared: Arc<Shared>,
}

/// Creates a producer (librdkafka checks every setting; nothing connects yet).
pub fn create(
    config: &ClientConfig,
    element: &gst::Element,
    cat: gst::DebugCategory,
) -> Result<Prepared, String> {
    let shared = Arc::new(Shared {
        element: element.downgrade(),
        cat,
        deliveries: Mutex::new(Vec::new()),
        failure: Mutex::new(None),
        last_error: Mutex::new(None),
    });
    let producer = config
        .create_with_context(Context(shared.clone()))
        .map_err(|e| creation_error(&e))?;
    Ok(Prepared { producer, shared })
}

/// The element's librdkafka producer as the worker's [`Transport`].
pub struct KafkaTransport {
    config: ClientConfig,
    /// `bootstrap.servers`, for messages.
    brokers: String,
    element: glib::WeakRef<gst::Element>,
    cat: gst::DebugCategory,
    route: Arc<Mutex<Route>>,
    current: Option<Prepared>,
    /// Documents librdkafka refused at `send` (too large): reported at the next `poll`.
    refused: Vec<Outcome>,
}

impl KafkaTransport {
    pub fn new(
        config: ClientConfig,
        first: Prepared,
        element: &gst::Element,
        cat: gst::DebugCategory,
        route: Arc<Mutex<Route>>,
    ) -> KafkaTransport {
        KafkaTransport {
            brokers: config
                .get("bootstrap.servers")
                .unwrap_or_default()
                .to_string(),
            config,
            element: element.downgrade(),
            cat,
            route,
            current: Some(first),
            refused: Vec::new(),
        }
    }

    fn prepared(&mut self) -> Result<&Prepared, TransportError> {
        if self.current.is_none() {
            let element = self
                .element
                .upgrade()
                .ok_or_else(|| TransportError("the element is gone".into()))?;
            self.current = Some(create(&self.config, &element, self.cat).map_err(TransportError)?);
        }
        self.current
            .as_ref()
            .ok_or_else(|| TransportError("no producer".into()))
    }
}

impl Transport for KafkaTransport {
    fn connect(&mut self, timeout: Duration) -> Result<(), TransportError> {
        let topic = lock(&self.route).topic.clone();
        let brokers = self.brokers.clone();
        let prepared = self.prepared()?;
        let shared = &prepared.shared;
        let why = |e: String| {
            // The errors librdkafka reported with the failure say which broker and why.
            prepared.producer.poll(Duration::ZERO);
            let last = lock(&shared.last_error).take();
            TransportError(match last {
                Some(last) if !e.contains(&last) => {
                    format!("brokers {brokers}: {e} (last: {last})")
                }
                _ => format!("brokers {brokers}: {e}"),
            })
        };
        // Asks in short steps, serving librdkafka's errors in between: a refused connection
        // ("all brokers down") ends the attempt at once instead of after the whole timeout.
        let deadline = Instant::now() + timeout;
        let metadata = loop {
            let step = deadline
                .saturating_duration_since(Instant::now())
                .min(CONNECT_STEP);
            match prepared
                .producer
                .client()
                .fetch_metadata(Some(&topic), step)
            {
                Ok(metadata) => break metadata,
                Err(e) => {
                    prepared.producer.poll(Duration::ZERO);
                    if let Some(failure) = lock(&shared.failure).take() {
                        return Err(why(failure));
                    }
                    if Instant::now() >= deadline {
                        return Err(why(format!("no answer within {timeout:?}: {e}")));
                    }
                }
            }
        };
        let Some(t) = metadata.topics().iter().find(|t| t.name() == topic) else {
            return Err(TransportError(format!(
                "the broker did not answer for topic {topic}"
            )));
        };
        if let Some(e) = t.error() {
            let code = RDKafkaErrorCode::from(e);
            return Err(TransportError(format!("topic {topic}: {code}")));
        }
        // Whatever failed before this connection is over.
        lock(&shared.failure).take();
        lock(&shared.last_error).take();
        log_on!(
            debug,
            self.cat,
            self.element,
            "topic {topic}: {} partitions, {} brokers",
            t.partitions().len(),
            metadata.brokers().len()
        );
        Ok(())
    }

    fn send(&mut self, doc: &Doc<Body>) -> Result<(), TransportError> {
        let route = lock(&self.route).clone();
        let prepared = self.prepared()?;
        let payload: &[u8] = doc.body.as_ref();
        let mut record =
            BaseRecord::with_opaque_to(&route.topic, Box::new(doc.sequence)).payload(payload);
        if let Some(key) = &route.key {
            record = record.key(key.as_slice());
        }
        let mut attempts = 0;
        loop {
            match prepared.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(code), _)) if refused_for_good(code) => {
                    self.refused.push(Outcome::Rejected(
                        doc.sequence,
                        format!("{code} ({} bytes)", payload.len()),
                    ));
                    return Ok(());
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                    if attempts < 50 =>
                {
                    // librdkafka's own queue is full (queue.buffering.max.messages set below
                    // max-in-flight): serve its delivery reports, then try again.
                    attempts += 1;
                    prepared.producer.poll(Duration::from_millis(100));
                    record = back;
                }
                Err((e, _)) => return Err(TransportError(format!("cannot produce: {e}"))),
            }
        }
    }

    fn poll(
        &mut self,
        timeout: Duration,
        outcomes: &mut Vec<Outcome>,
    ) -> Result<(), TransportError> {
        let before = outcomes.len();
        outcomes.append(&mut self.refused);
        let prepared = self.prepared()?;
        let wait = if outcomes.len() > before || !lock(&prepared.shared.deliveries).is_empty() {
            Duration::ZERO
        } else {
            timeout
        };
        prepared.producer.poll(wait);
        let mut failure = None;
        for (sequence, result) in lock(&prepared.shared.deliveries).drain(..) {
            match result {
                Ok(()) => outcomes.push(Outcome::Delivered(sequence)),
                Err(code) if refused_for_good(code) => {
                    outcomes.push(Outcome::Rejected(sequence, code.to_string()))
                }
                Err(code) => {
                    failure.get_or_insert_with(|| format!("a record was not delivered: {code}"));
                }
            }
        }
        if let Some(f) = lock(&prepared.shared.failure).take() {
            let detail = match prepared.producer.client().fatal_error() {
                Some((code, why)) => format!("{f} (fatal: {code}: {why})"),
                None => f,
            };
            failure = Some(detail);
        }
        match failure {
            Some(f) => Err(TransportError(f)),
            None => Ok(()),
        }
    }

    fn disconnect(&mut self) {
        self.refused.clear();
        if let Some(prepared) = self.current.take() {
            // Nothing of this producer is to be sent again by librdkafka: the worker re-sends
            // what was in flight itself, with the next producer.
            prepared
                .producer
                .purge(PurgeConfig::default().queue().inflight().non_blocking());
            prepared.producer.poll(Duration::ZERO);
            lock(&prepared.shared.deliveries).clear();
            drop(prepared);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> KafkaSettings {
        KafkaSettings {
            brokers: "127.0.0.1:9".into(),
            acks: Acks::All,
            idempotence: true,
            compression: Compression::None,
            message_timeout: 30_000,
            extra: Vec::new(),
        }
    }

    fn config_error(s: &KafkaSettings) -> String {
        let config = match s.client_config(RDKafkaLogLevel::Error) {
            Ok(c) => c,
            Err(e) => return e,
        };
        match BaseProducer::<rdkafka::producer::DefaultProducerContext>::from_config(&config) {
            Ok(_) => String::new(),
            Err(e) => creation_error(&e),
        }
    }

    use rdkafka::config::FromClientConfig;

    #[test]
    fn templates_render_the_stream_id_and_the_element_name() {
        let t = Template::parse("lva.{element}.{stream}").unwrap();
        assert_eq!(t.render(Some("cam-1"), "k0").unwrap(), "lva.k0.cam-1");
        let e = t.render(None, "k0").unwrap_err();
        assert!(e.contains("set stream-id"), "{e}");
        let plain = Template::parse("plain").unwrap();
        assert_eq!(plain.render(None, "y").unwrap(), "plain");
        let e = Template::parse("a.{camera}").unwrap_err();
        assert!(e.contains("{camera}"), "{e}");
        assert!(Template::parse("a.{stream").is_err());
    }

    #[test]
    fn topic_names_keep_to_what_kafka_allows() {
        assert_eq!(topic_name("lva.04532f/001").unwrap(), "lva.04532f_001");
        assert_eq!(topic_name("a b:c").unwrap(), "a_b_c");
        assert!(topic_name("").is_err());
        assert!(topic_name("..").is_err());
        assert!(topic_name(&"x".repeat(250)).is_err());
        assert_eq!(topic_name(&"x".repeat(249)).unwrap().len(), 249);
    }

    #[test]
    fn settings_with_an_element_property_of_their_own_are_refused_in_properties() {
        let mut s = settings();
        s.extra = vec![("acks".into(), "1".into())];
        let e = config_error(&s);
        assert!(e.contains("set `acks`"), "{e}");
        s.extra = vec![("transactional.id".into(), "t".into())];
        assert!(config_error(&s).contains("transactional.id"));
    }

    #[test]
    fn librdkafka_names_what_it_rejects() {
        let mut s = settings();
        s.extra = vec![("no.such.setting".into(), "1".into())];
        let e = config_error(&s);
        assert!(e.starts_with("properties:"), "{e}");
        assert!(e.contains("no.such.setting"), "{e}");
        s.extra = vec![("security.protocol".into(), "bogus".into())];
        let e = config_error(&s);
        assert!(
            e.contains("security.protocol") && e.contains("bogus"),
            "{e}"
        );
        let mut s = settings();
        s.acks = Acks::Leader;
        let e = config_error(&s);
        assert!(e.contains("acks") && e.contains("idempotence"), "{e}");
        s.idempotence = false;
        assert_eq!(config_error(&s), "");
    }

    #[test]
    fn a_rejected_secret_is_not_repeated() {
        let e = creation_error(&KafkaError::ClientConfig(
            rdkafka::types::RDKafkaConfRes::RD_KAFKA_CONF_INVALID,
            "Invalid value \"hunter2\" for configuration property \"sasl.password\"".into(),
            "sasl.password".into(),
            "hunter2".into(),
        ));
        assert!(!e.contains("hunter2"), "{e}");
        assert!(e.contains("sasl.password"), "{e}");
        assert!(is_secret("ssl.key.password"));
        assert!(is_secret("sasl.oauthbearer.client.secret"));
        assert!(!is_secret("sasl.username"));
    }

    #[test]
    fn empty_brokers_are_refused() {
        let mut s = settings();
        s.brokers = " ".into();
        assert!(config_error(&s).starts_with("brokers:"));
        s.brokers = "a:1,,b:2".into();
        assert!(config_error(&s).starts_with("brokers:"));
    }

    #[test]
    fn every_compression_is_built_into_the_library() {
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let mut s = settings();
            s.compression = c;
            assert_eq!(config_error(&s), "", "{c:?}");
        }
    }
}
