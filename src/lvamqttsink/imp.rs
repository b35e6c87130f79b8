use std::path::PathBuf;
use std::sync::{LazyLock, Mutex, MutexGuard};
use std::time::Duration;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;
use rumqttc::QoS;

use super::transport::{MqttConfig, MqttTransport, tls_config};
use crate::properties::optional_string;
use crate::publish::backoff::random_u64;
use crate::publish::settings::PublishSettings;
use crate::publish::sink::{BROKER, Publisher};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "lvamqttsink",
        gst::DebugColorFlags::empty(),
        Some("Publishes LVA documents to an MQTT broker"),
    )
});

const DEFAULT_PORT: u32 = 1883;
const DEFAULT_TOPIC: &str = "lva/{element}";
const DEFAULT_QOS: u32 = 1;
const DEFAULT_KEEP_ALIVE: u32 = 30;
const DEFAULT_CLEAN_SESSION: bool = true;
/// The most QoS 2 publishes in flight: what brokers take by default (mosquitto's
/// `max_inflight_messages`); beyond it they drop QoS 2 publishes without telling a 3.1.1 client.
const MAX_IN_FLIGHT_QOS2: u32 = 20;

// No Debug: it holds the password, which must never reach a log.
#[derive(Clone)]
struct Settings {
    host: Option<String>,
    port: u32,
    topic: Option<String>,
    stream_id: Option<String>,
    qos: u32,
    retain: bool,
    client_id: Option<String>,
    username: Option<String>,
    password: Option<String>,
    tls: bool,
    ca_file: Option<PathBuf>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    keep_alive: u32,
    clean_session: bool,
    publish: PublishSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            host: None,
            port: DEFAULT_PORT,
            topic: Some(DEFAULT_TOPIC.into()),
            stream_id: None,
            qos: DEFAULT_QOS,
            retain: false,
            client_id: None,
            username: None,
            password: None,
            tls: false,
            ca_file: None,
            cert_file: None,
            key_file: None,
            keep_alive: DEFAULT_KEEP_ALIVE,
            clean_session: DEFAULT_CLEAN_SESSION,
            publish: PublishSettings::default(),
        }
    }
}

/// The topic from its template: `{element}` → the element's name, `{stream}` → `stream-id`.
fn topic(template: Option<&str>, element: &str, stream_id: Option<&str>) -> Result<String, String> {
    let template = template
        .ok_or("topic is empty: set topic to the MQTT topic to publish to, e.g. lva/{element}")?;
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..]
            .find('}')
            .map(|c| open + c)
            .ok_or_else(|| format!("topic '{template}' has a '{{' without '}}'"))?;
        match &rest[open + 1..close] {
            "element" => out.push_str(element),
            "stream" => out.push_str(stream_id.ok_or_else(|| {
                format!(
                    "topic '{template}' uses {{stream}} but stream-id is not set: set stream-id \
                     (the camera's or stream's name)"
                )
            })?),
            other => {
                return Err(format!(
                    "topic '{template}' has an unknown placeholder {{{other}}}: use {{element}} or \
                     {{stream}}"
                ));
            }
        }
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    if out.is_empty() {
        return Err("topic is empty: set topic, e.g. lva/{element}".into());
    }
    if out.contains(['+', '#', '\0']) {
        return Err(format!(
            "topic '{out}' holds '+', '#' or NUL: MQTT allows wildcards only in subscriptions; \
             publish to a plain topic"
        ));
    }
    if out.len() > 65_535 {
        return Err("topic is longer than MQTT's 65535 bytes".into());
    }
    Ok(out)
}

/// The checked connection settings, or what is wrong with them.
fn config(s: &Settings, element: &str) -> Result<MqttConfig, String> {
    let host = s
        .host
        .clone()
        .ok_or("no host set: set host to the MQTT broker's name or address")?;
    let port = u16::try_from(s.port)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("port {} is not a TCP port: set port to 1-65535", s.port))?;
    let topic = topic(s.topic.as_deref(), element, s.stream_id.as_deref())?;
    let qos = match s.qos {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        2 => QoS::ExactlyOnce,
        other => {
            return Err(format!(
                "qos {other} is not an MQTT QoS level: set qos to 0 (at most once), 1 (at least \
                 once) or 2 (exactly once)"
            ));
        }
    };
    let keep_alive = u16::try_from(s.keep_alive).map_err(|_| {
        format!(
            "keep-alive {} is above MQTT's 65535 s: set keep-alive to 0-65535",
            s.keep_alive
        )
    })?;
    let client_id = match &s.client_id {
        Some(id) => id.clone(),
        None if !s.clean_session => {
            return Err(
                "clean-session=false needs a stable client-id (the broker keeps the session \
                 under it): set client-id"
                    .into(),
            );
        }
        None => format!("ovlva-{element}-{:08x}", random_u64() as u32),
    };
    if client_id.len() > 65_535 {
        return Err("client-id is longer than MQTT's 65535 bytes".into());
    }
    let credentials = match (&s.username, &s.password) {
        (Some(user), password) => Some((user.clone(), password.clone().unwrap_or_default())),
        (None, Some(_)) => return Err("password is set without username: set username".into()),
        (None, None) => None,
    };
    let client_cert = match (&s.cert_file, &s.key_file) {
        (Some(c), Some(k)) => Some((c.as_path(), k.as_path())),
        (None, None) => None,
        (Some(_), None) => return Err("cert-file is set without key-file: set key-file".into()),
        (None, Some(_)) => return Err("key-file is set without cert-file: set cert-file".into()),
    };
    let tls = if s.tls {
        Some(tls_config(s.ca_file.as_deref(), client_cert)?)
    } else {
        if let Some(name) = [
            ("ca-file", s.ca_file.is_some()),
            ("cert-file", s.cert_file.is_some()),
            ("key-file", s.key_file.is_some()),
        ]
        .iter()
        .find_map(|(n, set)| set.then_some(*n))
        {
            return Err(format!(
                "{name} is set but tls is false: set tls=true (and the broker's TLS port, often \
                 8883)"
            ));
        }
        None
    };
    Ok(MqttConfig {
        host,
        port,
        topic,
        qos,
        retain: s.retain,
        client_id,
        credentials,
        tls,
        keep_alive: Duration::from_secs(u64::from(keep_alive)),
        clean_session: s.clean_session,
        max_in_flight: u16::try_from(s.publish.max_in_flight).unwrap_or(u16::MAX),
    })
}

pub struct LvaMqttSink {
    settings: Mutex<Settings>,
    publisher: Publisher,
}

impl Default for LvaMqttSink {
    fn default() -> Self {
        LvaMqttSink {
            settings: Mutex::new(Settings::default()),
            publisher: Publisher::new("lvamqttsink", *CAT, &BROKER),
        }
    }
}

impl LvaMqttSink {
    fn settings(&self) -> MutexGuard<'_, Settings> {
        self.settings.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn element(&self) -> gst::Element {
        self.obj().clone().upcast()
    }
}

#[glib::object_subclass]
impl ObjectSubclass for LvaMqttSink {
    const NAME: &'static str = "GstLvaMqttSink";
    type Type = super::LvaMqttSink;
    type ParentType = gst_base::BaseSink;
}

impl ObjectImpl for LvaMqttSink {
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
            let boolean = |name: &str, nick: &str, blurb: &str, default: bool| {
                glib::ParamSpecBoolean::builder(name)
                    .nick(nick)
                    .blurb(blurb)
                    .default_value(default)
                    .build()
            };
            // Ranges are checked at start, so that a wrong value is an error naming it rather
            // than GLib's warning and the default.
            let uint = |name: &str, nick: &str, blurb: &str, default: u32| {
                glib::ParamSpecUInt::builder(name)
                    .nick(nick)
                    .blurb(blurb)
                    .default_value(default)
                    .build()
            };
            let mut props = vec![
                string(
                    "host",
                    "Host",
                    "The MQTT broker's host name or address (required)",
                ),
                uint(
                    "port",
                    "Port",
                    "The broker's TCP port (1-65535; TLS brokers often 8883)",
                    DEFAULT_PORT,
                ),
                glib::ParamSpecString::builder("topic")
                    .nick("Topic")
                    .blurb(
                        "Topic to publish to; {element} is replaced by the element's name, \
                         {stream} by stream-id",
                    )
                    .default_value(Some(DEFAULT_TOPIC))
                    .build(),
                string(
                    "stream-id",
                    "Stream id",
                    "The stream's (camera's) name, for {stream} in topic",
                ),
                uint(
                    "qos",
                    "QoS",
                    "MQTT quality of service: 0 at most once, 1 at least once, 2 exactly once \
                     (within a connection)",
                    DEFAULT_QOS,
                ),
                boolean(
                    "retain",
                    "Retain",
                    "Publish with the retain flag: the broker keeps the last document for new \
                     subscribers",
                    false,
                ),
                string(
                    "client-id",
                    "Client id",
                    "MQTT client id; unset: ovlva-<element name>-<random> per start (needed with \
                     clean-session=false)",
                ),
                string("username", "User name", "User name to log in with"),
                string(
                    "password",
                    "Password",
                    "Password to log in with (never logged)",
                ),
                boolean("tls", "TLS", "Connect over TLS (MQTTS)", false),
                string(
                    "ca-file",
                    "CA file",
                    "PEM file of CA certificates to trust besides the system's (with tls)",
                ),
                string(
                    "cert-file",
                    "Client certificate",
                    "PEM file of the client certificate (chain) for TLS client authentication",
                ),
                string(
                    "key-file",
                    "Client key",
                    "PEM file of the client certificate's private key",
                ),
                uint(
                    "keep-alive",
                    "Keep-alive",
                    "Seconds between MQTT pings when idle (0: none; up to 65535)",
                    DEFAULT_KEEP_ALIVE,
                ),
                boolean(
                    "clean-session",
                    "Clean session",
                    "Start each connection with a clean MQTT session (the sink re-sends \
                     unconfirmed documents itself); false keeps the broker's session under \
                     client-id",
                    DEFAULT_CLEAN_SESSION,
                ),
            ];
            props.extend(PublishSettings::properties("lvamqttsink"));
            props
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings();
        let name = pspec.name();
        if s.publish.set_property(name, value) {
            return;
        }
        match name {
            "host" => s.host = optional_string(value),
            "port" => s.port = value.get().unwrap_or(DEFAULT_PORT),
            "topic" => s.topic = optional_string(value),
            "stream-id" => s.stream_id = optional_string(value),
            "qos" => s.qos = value.get().unwrap_or(DEFAULT_QOS),
            "retain" => s.retain = value.get().unwrap_or(false),
            "client-id" => s.client_id = optional_string(value),
            "username" => s.username = optional_string(value),
            "password" => s.password = optional_string(value),
            "tls" => s.tls = value.get().unwrap_or(false),
            "ca-file" => s.ca_file = optional_string(value).map(PathBuf::from),
            "cert-file" => s.cert_file = optional_string(value).map(PathBuf::from),
            "key-file" => s.key_file = optional_string(value).map(PathBuf::from),
            "keep-alive" => s.keep_alive = value.get().unwrap_or(DEFAULT_KEEP_ALIVE),
            "clean-session" => s.clean_session = value.get().unwrap_or(DEFAULT_CLEAN_SESSION),
            other => gst::warning!(CAT, imp = self, "no writable property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let name = pspec.name();
        if let Some(v) = self.publisher.counter(name) {
            return v;
        }
        let s = self.settings();
        if let Some(v) = s.publish.property(name) {
            return v;
        }
        let path = |p: &Option<PathBuf>| {
            p.as_ref()
                .map(|p| p.to_string_lossy().into_owned())
                .to_value()
        };
        match name {
            "host" => s.host.to_value(),
            "port" => s.port.to_value(),
            "topic" => s.topic.to_value(),
            "stream-id" => s.stream_id.to_value(),
            "qos" => s.qos.to_value(),
            "retain" => s.retain.to_value(),
            "client-id" => s.client_id.to_value(),
            "username" => s.username.to_value(),
            "password" => s.password.to_value(),
            "tls" => s.tls.to_value(),
            "ca-file" => path(&s.ca_file),
            "cert-file" => path(&s.cert_file),
            "key-file" => path(&s.key_file),
            "keep-alive" => s.keep_alive.to_value(),
            "clean-session" => s.clean_session.to_value(),
            other => {
                gst::warning!(CAT, imp = self, "no property {other}");
                pspec.default_value().clone()
            }
        }
    }
}

impl GstObjectImpl for LvaMqttSink {}

impl ElementImpl for LvaMqttSink {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "LVA MQTT sink",
                "Sink/Network",
                "Publishes each JSON document to an MQTT broker, in order, from a bounded queue \
                 or disk spool, reconnecting and re-sending what was not confirmed",
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

impl BaseSinkImpl for LvaMqttSink {
    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let mut s = self.settings().clone();
        if s.qos == 2 && s.publish.max_in_flight > MAX_IN_FLIGHT_QOS2 {
            // Brokers take only so many unfinished QoS 2 publishes (mosquitto: its
            // max_inflight_messages, 20 by default) and, in MQTT 3.1.1, silently drop the excess.
            gst::info!(
                CAT,
                imp = self,
                "qos=2: at most {MAX_IN_FLIGHT_QOS2} documents in flight (max-in-flight is {})",
                s.publish.max_in_flight
            );
            s.publish.max_in_flight = MAX_IN_FLIGHT_QOS2;
        }
        let name = self.obj().name();
        let config = config(&s, &name)
            .map_err(|e| gst::error_msg!(gst::ResourceError::Settings, ("{e}")))?;
        let target = format!(
            "mqtt{}://{}:{}/{} (qos {}, client id {})",
            if config.tls.is_some() { "s" } else { "" },
            config.host,
            config.port,
            config.topic,
            s.qos,
            config.client_id
        );
        self.publisher.start(
            &self.element(),
            &s.publish,
            MqttTransport::new(config),
            &target,
        )
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        self.publisher.stop(&self.element());
        Ok(())
    }

    fn render(&self, buffer: &gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        self.publisher.render(&self.element(), buffer)
    }

    fn event(&self, event: gst::Event) -> bool {
        if let gst::EventView::Eos(_) = event.view() {
            self.publisher.eos(&self.element());
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

    #[test]
    fn topic_templates() {
        assert_eq!(
            topic(Some("lva/{element}"), "sink0", None).unwrap(),
            "lva/sink0"
        );
        assert_eq!(
            topic(Some("cams/{stream}/{element}"), "s", Some("door")).unwrap(),
            "cams/door/s"
        );
        let no_stream = topic(Some("cams/{stream}"), "s", None).unwrap_err();
        assert!(no_stream.contains("set stream-id"), "{no_stream}");
        assert!(
            topic(Some("a/{x}"), "s", None)
                .unwrap_err()
                .contains("unknown placeholder")
        );
        assert!(topic(Some("a/{element"), "s", None).is_err());
        assert!(
            topic(Some("a/#"), "s", None)
                .unwrap_err()
                .contains("wildcards")
        );
        assert!(
            topic(None, "s", None)
                .unwrap_err()
                .contains("topic is empty")
        );
    }

    #[test]
    fn settings_errors_name_the_property() {
        let ok = Settings {
            host: Some("127.0.0.1".into()),
            ..Settings::default()
        };
        assert!(config(&ok, "s").is_ok());
        let err = |s: Settings| config(&s, "s").err().unwrap_or_default();
        assert!(err(Settings::default()).contains("no host set"));
        assert!(
            err(Settings {
                qos: 3,
                ..ok.clone()
            })
            .contains("qos 3")
        );
        assert!(
            err(Settings {
                port: 70000,
                ..ok.clone()
            })
            .contains("port 70000")
        );
        assert!(
            err(Settings {
                clean_session: false,
                ..ok.clone()
            })
            .contains("client-id")
        );
        assert!(
            err(Settings {
                password: Some("x".into()),
                ..ok.clone()
            })
            .contains("password is set without username")
        );
        assert!(
            err(Settings {
                ca_file: Some("/x".into()),
                ..ok.clone()
            })
            .contains("tls is false")
        );
        assert!(
            err(Settings {
                tls: true,
                ca_file: Some("/nonexistent/ca.pem".into()),
                ..ok.clone()
            })
            .contains("cannot read ca-file /nonexistent/ca.pem")
        );
        let id = config(&ok, "sink0").unwrap().client_id;
        assert!(id.starts_with("ovlva-sink0-"), "{id}");
    }
}
