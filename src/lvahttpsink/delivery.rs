//! Sending documents: the HTTP client (TLS roots, headers, auth, timeouts) and the worker loop
//! that takes documents from the queue and applies the retry policy of `retry`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use ureq::http::{HeaderName, HeaderValue};

use super::queue::{Counters, Doc, Queue};
use super::retry::{self, Backoff, Verdict};

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

/// What the worker tells the element (to log, and to post statistics).
pub trait Report: Send {
    fn delivered(&self, sequence: u64, attempts: u32);
    fn retrying(&self, sequence: u64, reason: &str, wait: Duration);
    fn failed(&self, sequence: u64, reason: &str);
    /// Called at least every `next` wait while idle or between documents.
    fn tick(&self);
}

/// Delivers documents from `queue` until it is stopped.
pub fn run<T: AsRef<[u8]>>(
    queue: Arc<Queue<T>>,
    client: Client,
    policy: Policy,
    report: impl Report,
) {
    while !queue.is_stopped() {
        report.tick();
        let Some(doc) = queue.next(Duration::from_millis(200)) else {
            continue;
        };
        deliver(&queue, &client, &policy, &doc, &report);
        queue.done();
    }
}

fn deliver<T: AsRef<[u8]>>(
    queue: &Queue<T>,
    client: &Client,
    policy: &Policy,
    doc: &Doc<T>,
    report: &impl Report,
) {
    let counters = &queue.counters;
    let id = retry::request_id();
    let mut backoff = Backoff::new(
        policy.retry_delay,
        policy.max_retry_delay,
        retry::random_u64(),
    );
    let (mut attempts, mut failures) = (0u32, 0i32);
    loop {
        attempts += 1;
        let verdict = match client.post(doc, &id) {
            Ok((status, retry_after)) => {
                retry::classify(status, retry_after.as_deref(), SystemTime::now())
            }
            Err(NoAnswer::Timeout) => {
                Counters::add(&counters.timeouts, 1);
                Verdict::Retry {
                    after: None,
                    limited: false,
                    reason: format!("no answer within {:?}", client.endpoint.timeout),
                }
            }
            Err(NoAnswer::Transport(e)) => Verdict::Retry {
                after: None,
                limited: false,
                reason: e,
            },
            Err(NoAnswer::Invalid(e)) => Verdict::Fail(e),
        };
        // A stop gives up the document in flight and counts it as dropped.
        let given_up = queue.is_stopped();
        match verdict {
            Verdict::Delivered => {
                if given_up {
                    counters.dropped.fetch_sub(1, Ordering::Relaxed);
                }
                Counters::add(&counters.sent, 1);
                report.delivered(doc.sequence, attempts);
                return;
            }
            Verdict::Fail(reason) => {
                if !given_up {
                    Counters::add(&counters.failed, 1);
                }
                report.failed(doc.sequence, &reason);
                return;
            }
            Verdict::Retry {
                after,
                limited,
                reason,
            } => {
                if given_up {
                    return;
                }
                failures += i32::from(limited);
                if limited && policy.max_retries >= 0 && failures > policy.max_retries {
                    Counters::add(&counters.failed, 1);
                    let why = format!("{reason}, {} retries", policy.max_retries);
                    report.failed(doc.sequence, &why);
                    return;
                }
                Counters::add(&counters.retried, 1);
                // The back-off is the floor: a Retry-After of 0 or a date in the past must not
                // turn into a flood of retries.
                let floor = backoff.next_delay();
                let wait = after.map_or(floor, |after| after.max(floor));
                report.retrying(doc.sequence, &reason, wait);
                if queue.sleep(wait) {
                    return;
                }
            }
        }
    }
}
