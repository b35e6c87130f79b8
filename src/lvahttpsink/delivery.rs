//! Sending documents: the HTTP client (TLS roots, headers, auth, timeouts) and the
//! [`Transport`] the publishing core's worker drives, which applies the retry policy of `retry`
//! to each document.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use gst::glib;
use ureq::http::{HeaderName, HeaderValue};

use super::retry::{self, Backoff, Verdict};
use crate::publish::Body;
use crate::publish::queue::Doc;
use crate::publish::worker::{Outcome, Transport, TransportError};

/// Where and how documents are sent.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub url: String,
    /// Sent with every request: extra headers and authorization.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// For one request, connection included.
    pub timeout: Duration,
    /// A PEM file of CA certificates trusted besides the system's.
    pub ca_file: Option<PathBuf>,
}

/// How failures are retried.
#[derive(Debug, Clone)]
pub struct Policy {
    pub retry_delay: Duration,
    pub max_retry_delay: Duration,
    /// Retries of a document the receiver failed on (5xx other than 503); negative: no limit.
    pub max_retries: i32,
}

/// The system's CA bundles, tried in order when a CA file is added.
const SYSTEM_CA_BUNDLES: [&str; 3] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

fn read_certificates(
    path: &std::path::Path,
) -> Result<Vec<ureq::tls::Certificate<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs: Vec<_> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

/// The HTTP client for an endpoint.
pub struct Client {
    agent: ureq::Agent,
    endpoint: Endpoint,
}

/// Why an attempt got no HTTP answer.
#[derive(Debug)]
pub enum NoAnswer {
    Timeout,
    /// Connection refused or reset, DNS, TLS: worth retrying.
    Transport(String),
    /// The request itself is wrong: not worth retrying.
    Invalid(String),
}

impl Client {
    pub fn new(endpoint: Endpoint) -> Result<Client, String> {
        let roots = match &endpoint.ca_file {
            None => ureq::tls::RootCerts::PlatformVerifier,
            Some(ca) => {
                let mut certs = read_certificates(ca)?;
                if let Some(system) = SYSTEM_CA_BUNDLES
                    .iter()
                    .map(std::path::Path::new)
                    .find(|p| p.is_file())
                {
                    certs.extend(read_certificates(system).unwrap_or_default());
                }
                ureq::tls::RootCerts::new_with_certs(&certs)
            }
        };
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(endpoint.timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(concat!("ovlva-lvahttpsink/", env!("CARGO_PKG_VERSION")))
            .tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build())
            .build();
        Ok(Client {
            agent: ureq::Agent::new_with_config(config),
            endpoint,
        })
    }

    /// One POST of a document: the status and `Retry-After` header of the answer.
    pub fn post<T: AsRef<[u8]>>(
        &self,
        doc: &Doc<T>,
        request_id: &str,
    ) -> Result<(u16, Option<String>), NoAnswer> {
        let mut request = self
            .agent
            .post(&self.endpoint.url)
            .header("content-type", "application/json")
            .header("x-ms-client-request-id", request_id)
            .header("x-ovlva-sequence", doc.sequence.to_string());
        if let Some(pts) = doc.pts {
            request = request.header("x-ovlva-pts", pts.to_string());
        }
        for (name, value) in &self.endpoint.headers {
            request = request.header(name, value);
        }
        match request.send(doc.body.as_ref()) {
            Ok(mut response) => {
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                // Read the answer so that the connection can be used again.
                let _ = response
                    .body_mut()
                    .with_config()
                    .limit(1 << 20)
                    .read_to_vec();
                Ok((response.status().as_u16(), retry_after))
            }
            Err(ureq::Error::Timeout(_)) => Err(NoAnswer::Timeout),
            Err(e @ (ureq::Error::Http(_) | ureq::Error::BadUri(_))) => {
                Err(NoAnswer::Invalid(e.to_string()))
            }
            Err(e) => Err(NoAnswer::Transport(e.to_string())),
        }
    }
}

/// One document being delivered: the same request id on every attempt, its own back-off.
struct Delivery {
    doc: Doc<Body>,
    request_id: String,
    backoff: Backoff,
    /// Attempts made so far.
    attempts: u32,
    /// Retries that count against `max-retries` (5xx other than 503).
    failures: i32,
    /// When the next attempt is due.
    due: Instant,
}

/// HTTP as a [`Transport`] of the publishing core: one POST per document, in order, one at a
/// time (the worker's window is 1, so the queue's bound and `queue-full` apply to every document
/// but the one in flight). Unlike a broker connection there is nothing to connect: a failed
/// attempt (no answer, busy, 5xx) is retried here, by the policy of [`retry`], and the document
/// stays in flight meanwhile ([`Outcome::Retrying`]); a failure never reaches the worker as a
/// lost connection.
pub struct HttpTransport {
    client: Client,
    policy: Policy,
    element: glib::WeakRef<gst::Element>,
    cat: gst::DebugCategory,
    /// Documents sent, in order; the first is being delivered.
    pending: VecDeque<Delivery>,
}

impl HttpTransport {
    pub fn new(
        client: Client,
        policy: Policy,
        element: glib::WeakRef<gst::Element>,
        cat: gst::DebugCategory,
    ) -> HttpTransport {
        HttpTransport {
            client,
            policy,
            element,
            cat,
            pending: VecDeque::new(),
        }
    }

    /// One attempt at the first pending document: its outcome, if it has one now.
    fn attempt(&mut self) -> Option<Outcome> {
        let d = self.pending.front_mut()?;
        d.attempts += 1;
        let sequence = d.doc.sequence;
        let (verdict, timed_out) = match self.client.post(&d.doc, &d.request_id) {
            Ok((status, retry_after)) => (
                retry::classify(status, retry_after.as_deref(), SystemTime::now()),
                false,
            ),
            Err(NoAnswer::Timeout) => (
                Verdict::Retry {
                    after: None,
                    limited: false,
                    reason: format!("no answer within {:?}", self.client.endpoint.timeout),
                },
                true,
            ),
            Err(NoAnswer::Transport(e)) => (
                Verdict::Retry {
                    after: None,
                    limited: false,
                    reason: e,
                },
                false,
            ),
            Err(NoAnswer::Invalid(e)) => (Verdict::Fail(e), false),
        };
        let element = self.element.upgrade();
        match verdict {
            Verdict::Delivered => {
                if let Some(e) = &element {
                    gst::trace!(
                        self.cat,
                        obj = e,
                        "document {sequence} delivered ({} attempts)",
                        d.attempts
                    );
                }
                self.pending.pop_front();
                Some(Outcome::Delivered(sequence))
            }
            Verdict::Fail(reason) => {
                self.pending.pop_front();
                Some(Outcome::Rejected(sequence, reason))
            }
            Verdict::Retry {
                after,
                limited,
                reason,
            } => {
                d.failures += i32::from(limited);
                let max = self.policy.max_retries;
                if limited && max >= 0 && d.failures > max {
                    self.pending.pop_front();
                    return Some(Outcome::Rejected(
                        sequence,
                        format!("{reason}, {max} retries"),
                    ));
                }
                // The back-off is the floor: a Retry-After of 0 or a date in the past must not
                // turn into a flood of retries.
                let floor = d.backoff.next_delay();
                let wait = after.map_or(floor, |after| after.max(floor));
                d.due = Instant::now() + wait;
                if let Some(e) = &element {
                    gst::info!(
                        self.cat,
                        obj = e,
                        "document {sequence}: {reason}; again in {wait:?}"
                    );
                }
                Some(Outcome::Retrying {
                    sequence,
                    timed_out,
                })
            }
        }
    }
}

impl Transport for HttpTransport {
    /// Nothing to open: each request connects (over the agent's reused connection).
    fn connect(&mut self, _timeout: Duration) -> Result<(), TransportError> {
        Ok(())
    }

    fn send(&mut self, doc: &Doc<Body>) -> Result<(), TransportError> {
        self.pending.push_back(Delivery {
            doc: doc.clone(),
            request_id: retry::request_id(),
            backoff: Backoff::new(
                self.policy.retry_delay,
                self.policy.max_retry_delay,
                retry::random_u64(),
            ),
            attempts: 0,
            failures: 0,
            due: Instant::now(),
        });
        Ok(())
    }

    /// Makes the next attempt when it is due (waiting up to `timeout` for it); the request
    /// itself may take up to the endpoint's `timeout`.
    fn poll(
        &mut self,
        timeout: Duration,
        outcomes: &mut Vec<Outcome>,
    ) -> Result<(), TransportError> {
        let Some(due) = self.pending.front().map(|d| d.due) else {
            return Ok(());
        };
        let wait = due.saturating_duration_since(Instant::now());
        if wait > timeout {
            std::thread::sleep(timeout);
            return Ok(());
        }
        std::thread::sleep(wait);
        outcomes.extend(self.attempt());
        Ok(())
    }

    fn disconnect(&mut self) {
        self.pending.clear();
    }
}
