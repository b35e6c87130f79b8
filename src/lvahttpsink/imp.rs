use std::path::PathBuf;
use std::sync::{LazyLock, Mutex, MutexGuard};
use std::time::Duration;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;
use ureq::http::{HeaderName, HeaderValue};

use super::delivery::{Client, Endpoint, HttpTransport, Policy};
use crate::properties::optional_string;
use crate::publish::settings::{self, PublishSettings, counter_properties, uint};
use crate::publish::sink::{Flavour, Publisher, fate};

const NAME: &str = "lvahttpsink";

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        NAME,
        gst::DebugColorFlags::empty(),
        Some("Delivers LVA documents over HTTP"),
    )
});

const DEFAULT_MAX_RETRIES: i32 = 3;

/// The counters: HTTP's own, then the backlog's and the spool's of the publishing core.
static COUNTERS: LazyLock<Vec<(&str, &str)>> = LazyLock::new(|| {
    let mut counters = vec![
        ("sent", "Documents delivered (2xx)"),
        (
            "failed",
            "Documents given up: refused (4xx) or failing past max-retries",
        ),
        ("retried", "Retries made"),
        ("timeouts", "Requests that got no answer within timeout"),
    ];
    counters.extend(settings::COUNTERS.iter().filter(|(name, _)| {
        matches!(
            *name,
            "dropped" | "queued" | "undelivered" | "recovered" | "discarded"
        )
    }));
    counters
});

/// What the receiver's answers and the flush say, as documented in docs/lvahttpsink.md.
static HTTP: LazyLock<Flavour> = LazyLock::new(|| Flavour {
    counters: COUNTERS.as_slice(),
    peer: "receiver",
    later: "failures",
    eos_left: |n, flush_timeout, kept| {
        format!(
            "{n} documents were not delivered within flush-timeout ({flush_timeout:?}); {}",
            fate(kept)
        )
    },
    stop_left: |n, kept| {
        format!(
            "stopped with {n} documents undelivered (no EOS, or before they could be sent); {}",
            fate(kept)
        )
    },
});

// No Debug: it holds secrets, which must never reach a log.
#[derive(Clone)]
struct Settings {
    location: Option<String>,
    user_id: Option<String>,
    user_pw: Option<String>,
    bearer_token: Option<String>,
    extra_headers: Option<gst::Structure>,
    ca_file: Option<PathBuf>,
    max_retries: i32,
    /// The queue, spool, flush and statistics; `timeout`, `retry-delay` and `max-retry-delay`
    /// (HTTP's own meaning, the same defaults).
    publish: PublishSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            location: None,
            user_id: None,
            user_pw: None,
            bearer_token: None,
            extra_headers: None,
            ca_file: None,
            max_retries: DEFAULT_MAX_RETRIES,
            publish: PublishSettings::default(),
        }
    }
}

pub struct LvaHttpSink {
    settings: Mutex<Settings>,
    publisher: Publisher,
}

impl Default for LvaHttpSink {
    fn default() -> Self {
        LvaHttpSink {
            settings: Mutex::new(Settings::default()),
            publisher: Publisher::new(NAME, *CAT, &HTTP),
        }
    }
}

/// `location` without user information, for logs.
fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}{path}"),
        None => url.to_string(),
    }
}

fn settings_error(text: String) -> gst::ErrorMessage {
    gst::error_msg!(gst::ResourceError::Settings, ("{text}"))
}

/// The endpoint from the settings, or what is wrong with them.
fn endpoint(s: &Settings) -> Result<Endpoint, String> {
    let url = s
        .location
        .clone()
        .ok_or("no location set: set it to the receiver's http:// or https:// URL")?;
    let uri = url
        .parse::<ureq::http::Uri>()
        .map_err(|e| format!("location '{}' is not a URL: {e}", redacted(&url)))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
        return Err(format!(
            "location '{}' must be an http:// or https:// URL with a host",
            redacted(&url)
        ));
    }
    let mut headers = Vec::new();
    let header = |name: &str, value: &str| -> Result<(HeaderName, HeaderValue), String> {
        let n = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("'{name}' is not a valid HTTP header name"))?;
        let v = HeaderValue::from_str(value).map_err(|_| {
            format!("the value of header '{name}' is not a valid HTTP header value")
        })?;
        Ok((n, v))
    };
    if let Some(extra) = &s.extra_headers {
        for (name, value) in extra.iter() {
            headers.push(header(name, &crate::meta::field_text(value))?);
        }
    }
    let auth = match (&s.user_id, &s.user_pw, &s.bearer_token) {
        (Some(_), _, Some(_)) => {
            return Err("set either user-id/user-pw (Basic) or bearer-token, not both".into());
        }
        (None, Some(_), _) => return Err("user-pw is set without user-id".into()),
        (Some(user), pw, None) => {
            let pair = format!("{user}:{}", pw.as_deref().unwrap_or_default());
            Some(format!("Basic {}", glib::base64_encode(pair.as_bytes())))
        }
        (None, None, Some(token)) => Some(format!("Bearer {token}")),
        (None, None, None) => None,
    };
    if let Some(auth) = auth {
        let mut value = HeaderValue::from_str(&auth)
            .map_err(|_| "the credentials hold characters not allowed in an HTTP header")?;
        value.set_sensitive(true);
        headers.push((ureq::http::header::AUTHORIZATION, value));
    }
    Ok(Endpoint {
        url,
        headers,
        timeout: s.publish.connect_timeout(),
        ca_file: s.ca_file.clone(),
    })
}

impl LvaHttpSink {
    fn settings(&self) -> MutexGuard<'_, Settings> {
        self.settings.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn element(&self) -> gst::Element {
        self.obj().clone().upcast()
    }
}

#[glib::object_subclass]
impl ObjectSubclass for LvaHttpSink {
    const NAME: &'static str = "GstLvaHttpSink";
    type Type = super::LvaHttpSink;
    type ParentType = gst_base::BaseSink;
}

impl ObjectImpl for LvaHttpSink {
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
                    "location",
                    "Location",
                    "URL to POST each document to (http:// or https://)",
                ),
                string(
                    "user-id",
                    "User id",
                    "User name for HTTP Basic authentication",
                ),
                string(
                    "user-pw",
                    "User password",
                    "Password for HTTP Basic authentication",
                ),
                string(
                    "bearer-token",
                    "Bearer token",
                    "Token sent as 'Authorization: Bearer TOKEN' (not with user-id)",
                ),
                glib::ParamSpecBoxed::builder::<gst::Structure>("extra-headers")
                    .nick("Extra headers")
                    .blurb(
                        "Headers added to every request, as a structure whose fields are the \
                         headers, e.g. \"headers, x-camera=door, x-site=hq\"",
                    )
                    .build(),
                string(
                    "ca-file",
                    "CA file",
                    "PEM file of CA certificates to trust besides the system's (for https)",
                ),
                uint(
                    "timeout",
                    "Timeout",
                    "Seconds one request may take, connection included",
                    1,
                    3600,
                    settings::DEFAULT_TIMEOUT,
                ),
                uint(
                    "retry-delay",
                    "Retry delay",
                    "Milliseconds before the first retry; doubles each time (with jitter)",
                    1,
                    3_600_000,
                    settings::DEFAULT_RETRY_DELAY,
                ),
                uint(
                    "max-retry-delay",
                    "Maximum retry delay",
                    "Longest wait between retries, in milliseconds",
                    1,
                    3_600_000,
                    settings::DEFAULT_MAX_RETRY_DELAY,
                ),
                glib::ParamSpecInt::builder("max-retries")
                    .nick("Maximum retries")
                    .blurb(
                        "Retries of a document the receiver failed on (5xx other than 503), then \
                         it counts as failed; -1: no limit. Connection errors, timeouts, 408, \
                         429 and 503 are retried until delivered or dropped",
                    )
                    .minimum(-1)
                    .default_value(DEFAULT_MAX_RETRIES)
                    .build(),
            ];
            props.extend(PublishSettings::queue_properties(NAME));
            props.extend(counter_properties(&COUNTERS));
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
            "location" => s.location = optional_string(value),
            "user-id" => s.user_id = optional_string(value),
            "user-pw" => s.user_pw = optional_string(value),
            "bearer-token" => s.bearer_token = optional_string(value),
            "extra-headers" => s.extra_headers = value.get().ok().flatten(),
            "ca-file" => s.ca_file = optional_string(value).map(PathBuf::from),
            "max-retries" => s.max_retries = value.get().unwrap_or(DEFAULT_MAX_RETRIES),
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
        match name {
            "location" => s.location.to_value(),
            "user-id" => s.user_id.to_value(),
            "user-pw" => s.user_pw.to_value(),
            "bearer-token" => s.bearer_token.to_value(),
            "extra-headers" => s.extra_headers.to_value(),
            "ca-file" => s
                .ca_file
                .as_ref()
                .map(|p| p.to_string_lossy().into_owned())
                .to_value(),
            "max-retries" => s.max_retries.to_value(),
            other => {
                gst::warning!(CAT, imp = self, "no property {other}");
                pspec.default_value().clone()
            }
        }
    }
}

impl GstObjectImpl for LvaHttpSink {}

impl ElementImpl for LvaHttpSink {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "LVA HTTP sink",
                "Sink/Network",
                "POSTs each JSON document to an HTTP endpoint, from a bounded queue (in memory \
                 or a disk spool), with retries (Retry-After honoured) and counted drops",
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

impl BaseSinkImpl for LvaHttpSink {
    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let s = self.settings().clone();
        let endpoint = endpoint(&s).map_err(settings_error)?;
        let url = redacted(&endpoint.url);
        let client = Client::new(endpoint).map_err(settings_error)?;
        let policy = Policy {
            retry_delay: Duration::from_millis(u64::from(s.publish.retry_delay)),
            max_retry_delay: Duration::from_millis(u64::from(s.publish.max_retry_delay)),
            max_retries: s.max_retries,
        };
        // One document at a time: the one in flight is retried until it is done, and every
        // other one waits in the queue, where queue-full applies.
        let mut publish = s.publish;
        publish.max_in_flight = 1;
        let transport = HttpTransport::new(client, policy, self.element().downgrade(), *CAT);
        self.publisher
            .start(&self.element(), &publish, transport, &url)
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
    fn user_information_is_masked_in_logged_urls() {
        assert_eq!(
            redacted("https://u:secret@host:8443/p?q=1"),
            "https://***@host:8443/p?q=1"
        );
        assert_eq!(redacted("http://host/a@b"), "http://host/a@b");
        assert_eq!(redacted("http://host"), "http://host");
    }

    #[test]
    fn credentials_become_one_sensitive_authorization_header() {
        gst::init().unwrap();
        let s = Settings {
            location: Some("http://127.0.0.1:9/x".into()),
            user_id: Some("user".into()),
            user_pw: Some("pass".into()),
            ..Settings::default()
        };
        let e = endpoint(&s).unwrap();
        assert_eq!(e.headers.len(), 1);
        assert_eq!(e.headers[0].1, "Basic dXNlcjpwYXNz");
        assert!(e.headers[0].1.is_sensitive());
    }
}
