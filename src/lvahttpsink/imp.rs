use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;
use ureq::http::{HeaderName, HeaderValue};

use super::QueueFull;
use super::delivery::{self, Client, Endpoint, Policy, Report};
use super::queue::{Counters, Doc, Overflow, Queue};
use crate::properties::optional_string;
use crate::publish::Body;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "lvahttpsink",
        gst::DebugColorFlags::empty(),
        Some("Delivers LVA documents over HTTP"),
    )
});

const DEFAULT_TIMEOUT: u32 = 10;
const DEFAULT_RETRY_DELAY: u32 = 500;
const DEFAULT_MAX_RETRY_DELAY: u32 = 10_000;
const DEFAULT_MAX_RETRIES: i32 = 3;
const DEFAULT_MAX_QUEUE: u32 = 1000;
const DEFAULT_FLUSH_TIMEOUT: u32 = 5000;
const DEFAULT_STATS_INTERVAL: u32 = 0;

// No Debug: it holds secrets, which must never reach a log.
#[derive(Clone)]
struct Settings {
    location: Option<String>,
    user_id: Option<String>,
    user_pw: Option<String>,
    bearer_token: Option<String>,
    extra_headers: Option<gst::Structure>,
    ca_file: Option<PathBuf>,
    timeout: u32,
    retry_delay: u32,
    max_retry_delay: u32,
    max_retries: i32,
    max_queue: u32,
    queue_full: QueueFull,
    flush_timeout: u32,
    stats_interval: u32,
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
            timeout: DEFAULT_TIMEOUT,
            retry_delay: DEFAULT_RETRY_DELAY,
            max_retry_delay: DEFAULT_MAX_RETRY_DELAY,
            max_retries: DEFAULT_MAX_RETRIES,
            max_queue: DEFAULT_MAX_QUEUE,
            queue_full: QueueFull::DropOldest,
            flush_timeout: DEFAULT_FLUSH_TIMEOUT,
            stats_interval: DEFAULT_STATS_INTERVAL,
        }
    }
}

/// Per-run state: from `start` to `stop`.
struct State {
    worker: Option<JoinHandle<()>>,
    sequence: u64,
    flush_timeout: Duration,
    /// How long `stop` waits for a request in flight at most.
    timeout: Duration,
    /// When the flush that started at EOS runs out: `stop` waits for the worker no longer.
    flush_deadline: Option<Instant>,
}

#[derive(Default)]
pub struct LvaHttpSink {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
    /// The queue of the current (or last) run; its counters stay readable after `stop`.
    queue: Mutex<Option<Arc<Queue<Body>>>>,
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
        timeout: Duration::from_secs(u64::from(s.timeout.max(1))),
        ca_file: s.ca_file.clone(),
    })
}

/// The worker's link back to the element: logs, first-failure warning, periodic statistics.
struct Reporter {
    element: glib::WeakRef<super::LvaHttpSink>,
    interval: Option<Duration>,
    last: Mutex<Instant>,
    warned: AtomicBool,
}

impl Report for Reporter {
    fn delivered(&self, sequence: u64, attempts: u32) {
        if let Some(e) = self.element.upgrade() {
            gst::trace!(
                CAT,
                obj = e,
                "document {sequence} delivered ({attempts} attempts)"
            );
        }
    }

    fn retrying(&self, sequence: u64, reason: &str, wait: Duration) {
        if let Some(e) = self.element.upgrade() {
            gst::info!(
                CAT,
                obj = e,
                "document {sequence}: {reason}; again in {wait:?}"
            );
        }
    }

    fn failed(&self, sequence: u64, reason: &str) {
        let Some(e) = self.element.upgrade() else {
            return;
        };
        gst::warning!(CAT, obj = e, "document {sequence} not delivered: {reason}");
        if !self.warned.swap(true, Ordering::Relaxed) {
            gst::element_warning!(
                e,
                gst::ResourceError::Write,
                ("the receiver refused document {sequence}: {reason} (further failures are only counted, in the `failed` property)")
            );
        }
    }

    fn tick(&self) {
        let Some(interval) = self.interval else {
            return;
        };
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.elapsed() >= interval {
            *last = Instant::now();
            if let Some(e) = self.element.upgrade() {
                e.imp().post_stats();
            }
        }
    }
}

impl LvaHttpSink {
    fn settings(&self) -> MutexGuard<'_, Settings> {
        self.settings.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn queue(&self) -> Option<Arc<Queue<Body>>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn stats(&self) -> gst::Structure {
        let q = self.queue();
        let get = |f: fn(&Counters) -> &std::sync::atomic::AtomicU64| {
            q.as_ref()
                .map(|q| Counters::get(f(&q.counters)))
                .unwrap_or(0)
        };
        gst::Structure::builder("lvahttpsink-stats")
            .field("sent", get(|c| &c.sent))
            .field("failed", get(|c| &c.failed))
            .field("retried", get(|c| &c.retried))
            .field("timeouts", get(|c| &c.timeouts))
            .field("dropped", get(|c| &c.dropped))
            .field("queued", q.as_ref().map(|q| q.len() as u64).unwrap_or(0))
            .build()
    }

    /// Posts the counters as an element message named `lvahttpsink-stats`.
    fn post_stats(&self) {
        let s = self.stats();
        gst::debug!(CAT, imp = self, "{s}");
        let _ = self
            .obj()
            .post_message(gst::message::Element::builder(s).src(&*self.obj()).build());
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
            let uint = |name: &str, nick: &str, blurb: &str, min: u32, max: u32, default: u32| {
                glib::ParamSpecUInt::builder(name)
                    .nick(nick)
                    .blurb(blurb)
                    .minimum(min)
                    .maximum(max)
                    .default_value(default)
                    .build()
            };
            let counter = |name: &str, blurb: &str| {
                glib::ParamSpecUInt64::builder(name)
                    .nick(name)
                    .blurb(blurb)
                    .read_only()
                    .build()
            };
            vec![
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
                    DEFAULT_TIMEOUT,
                ),
                uint(
                    "retry-delay",
                    "Retry delay",
                    "Milliseconds before the first retry; doubles each time (with jitter)",
                    1,
                    3_600_000,
                    DEFAULT_RETRY_DELAY,
                ),
                uint(
                    "max-retry-delay",
                    "Maximum retry delay",
                    "Longest wait between retries, in milliseconds",
                    1,
                    3_600_000,
                    DEFAULT_MAX_RETRY_DELAY,
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
                uint(
                    "max-queue",
                    "Maximum queue",
                    "Documents waiting for delivery at most",
                    1,
                    1_000_000,
                    DEFAULT_MAX_QUEUE,
                ),
                glib::ParamSpecEnum::builder_with_default("queue-full", QueueFull::DropOldest)
                    .nick("Queue full")
                    .blurb(
                        "When the queue is full: drop the oldest document, or block the pipeline",
                    )
                    .build(),
                uint(
                    "flush-timeout",
                    "Flush timeout",
                    "At EOS, milliseconds to wait for the queue to be delivered; what is left is \
                     counted as dropped. A stop waits no longer for a request in flight",
                    0,
                    3_600_000,
                    DEFAULT_FLUSH_TIMEOUT,
                ),
                uint(
                    "stats-interval",
                    "Statistics interval",
                    "Milliseconds between lvahttpsink-stats element messages; 0: only at EOS",
                    0,
                    3_600_000,
                    DEFAULT_STATS_INTERVAL,
                ),
                counter("sent", "Documents delivered (2xx)"),
                counter(
                    "failed",
                    "Documents given up: refused (4xx) or failing past max-retries",
                ),
                counter("retried", "Retries made"),
                counter("timeouts", "Requests that got no answer within timeout"),
                counter(
                    "dropped",
                    "Documents dropped: queue full, or undelivered at EOS or stop",
                ),
                counter("queued", "Documents waiting now"),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings();
        match pspec.name() {
            "location" => s.location = optional_string(value),
            "user-id" => s.user_id = optional_string(value),
            "user-pw" => s.user_pw = optional_string(value),
            "bearer-token" => s.bearer_token = optional_string(value),
            "extra-headers" => s.extra_headers = value.get().ok().flatten(),
            "ca-file" => s.ca_file = optional_string(value).map(PathBuf::from),
            "timeout" => s.timeout = value.get().unwrap_or(DEFAULT_TIMEOUT),
            "retry-delay" => s.retry_delay = value.get().unwrap_or(DEFAULT_RETRY_DELAY),
            "max-retry-delay" => s.max_retry_delay = value.get().unwrap_or(DEFAULT_MAX_RETRY_DELAY),
            "max-retries" => s.max_retries = value.get().unwrap_or(DEFAULT_MAX_RETRIES),
            "max-queue" => s.max_queue = value.get().unwrap_or(DEFAULT_MAX_QUEUE),
            "queue-full" => s.queue_full = value.get().unwrap_or_default(),
            "flush-timeout" => s.flush_timeout = value.get().unwrap_or(DEFAULT_FLUSH_TIMEOUT),
            "stats-interval" => s.stats_interval = value.get().unwrap_or(DEFAULT_STATS_INTERVAL),
            other => gst::warning!(CAT, imp = self, "no writable property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings();
        match pspec.name() {
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
            "timeout" => s.timeout.to_value(),
            "retry-delay" => s.retry_delay.to_value(),
            "max-retry-delay" => s.max_retry_delay.to_value(),
            "max-retries" => s.max_retries.to_value(),
            "max-queue" => s.max_queue.to_value(),
            "queue-full" => s.queue_full.to_value(),
            "flush-timeout" => s.flush_timeout.to_value(),
            "stats-interval" => s.stats_interval.to_value(),
            counter @ ("sent" | "failed" | "retried" | "timeouts" | "dropped" | "queued") => {
                drop(s);
                let stats = self.stats();
                stats.get::<u64>(counter).unwrap_or(0).to_value()
            }
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
                "POSTs each JSON document to an HTTP endpoint, from a bounded queue, with \
                 retries (Retry-After honoured) and counted drops",
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
        let timeout = endpoint.timeout;
        let client = Client::new(endpoint).map_err(settings_error)?;
        let overflow = match s.queue_full {
            QueueFull::DropOldest => Overflow::DropOldest,
            QueueFull::Block => Overflow::Block,
        };
        let queue = Arc::new(Queue::new(s.max_queue as usize, overflow));
        let policy = Policy {
            retry_delay: Duration::from_millis(u64::from(s.retry_delay)),
            max_retry_delay: Duration::from_millis(u64::from(s.max_retry_delay)),
            max_retries: s.max_retries,
        };
        let reporter = Reporter {
            element: self.obj().downgrade(),
            interval: (s.stats_interval > 0)
                .then(|| Duration::from_millis(u64::from(s.stats_interval))),
            last: Mutex::new(Instant::now()),
            warned: AtomicBool::new(false),
        };
        let worker_queue = queue.clone();
        let worker = std::thread::Builder::new()
            .name("lvahttpsink".into())
            .spawn(move || delivery::run(worker_queue, client, policy, reporter))
            .map_err(|e| {
                gst::error_msg!(
                    gst::CoreError::Thread,
                    ("cannot start the delivery thread: {e}")
                )
            })?;
        gst::info!(CAT, imp = self, "delivering to {url}");
        *self.queue.lock().unwrap_or_else(|e| e.into_inner()) = Some(queue);
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = Some(State {
            worker: Some(worker),
            sequence: 0,
            flush_timeout: Duration::from_millis(u64::from(s.flush_timeout)),
            timeout,
            flush_deadline: None,
        });
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(queue) = self.queue() {
            let lost = queue.stop().lost;
            if lost > 0 {
                // A stop without EOS (or before the EOS flush was over): as documented, the
                // loss is counted and said on the bus.
                gst::element_imp_warning!(
                    self,
                    gst::ResourceError::Write,
                    ("stopped with {lost} documents undelivered (no EOS, or before they could be \
                      sent); counted as dropped")
                );
            }
        }
        if let Some(mut state) = state {
            // The stop waits for a request in flight within flush-timeout, counted from EOS when
            // the flush started there (so it is already spent), else from now; never more than
            // the request's own timeout. A worker still in its request after that is left to
            // end it on its own: the queue is stopped, so it exits when the request returns.
            let now = Instant::now();
            let deadline = state
                .flush_deadline
                .unwrap_or(now + state.flush_timeout)
                .min(now + state.timeout + Duration::from_secs(1));
            if let Some(worker) = state.worker.take() {
                while !worker.is_finished() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(10));
                }
                if worker.is_finished() {
                    let _ = worker.join();
                } else {
                    gst::info!(
                        CAT,
                        imp = self,
                        "the delivery thread is still in a request; it ends within timeout on its own"
                    );
                }
            }
        }
        Ok(())
    }

    fn render(&self, buffer: &gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        let queue = self.queue().ok_or(gst::FlowError::Flushing)?;
        let sequence = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let state = state.as_mut().ok_or(gst::FlowError::Flushing)?;
            state.sequence += 1;
            state.sequence - 1
        };
        let body = Body::from_buffer(buffer.clone()).map_err(|_| {
            gst::element_imp_error!(
                self,
                gst::StreamError::Failed,
                ("cannot read a document buffer")
            );
            gst::FlowError::Error
        })?;
        let doc = Doc {
            body,
            pts: buffer.pts().map(|p| p.nseconds()),
            sequence,
        };
        queue.push(doc).map_err(|_| gst::FlowError::Flushing)?;
        Ok(gst::FlowSuccess::Ok)
    }

    fn event(&self, event: gst::Event) -> bool {
        if let gst::EventView::Eos(_) = event.view() {
            let flush_timeout = self
                .state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_mut()
                .map(|s| {
                    s.flush_deadline = Some(Instant::now() + s.flush_timeout);
                    s.flush_timeout
                })
                .unwrap_or_default();
            if let Some(queue) = self.queue()
                && !queue.wait_drained(flush_timeout)
            {
                let lost = queue.stop().lost;
                gst::element_imp_warning!(
                    self,
                    gst::ResourceError::Write,
                    ("{lost} documents were not delivered within flush-timeout ({flush_timeout:?}); counted as dropped")
                );
            }
            self.post_stats();
        }
        self.parent_event(event)
    }

    fn unlock(&self) -> Result<(), gst::ErrorMessage> {
        if let Some(q) = self.queue() {
            q.set_flushing(true);
        }
        Ok(())
    }

    fn unlock_stop(&self) -> Result<(), gst::ErrorMessage> {
        if let Some(q) = self.queue() {
            q.set_flushing(false);
        }
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
