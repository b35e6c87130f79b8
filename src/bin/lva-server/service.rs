//! The LVA HTTP extension contract (seed 001): routes, status codes and per-model counters.
//!
//! - `POST /<model>` with an image → 200 `{"inferences":[...]}`, or 204 when nothing is found;
//! - `GET /` or `GET /models` → the models with their labels, settings and counters;
//! - `GET /healthz` → 200 while the server runs (never needs credentials).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gstovlva::ovinfer::labels::Labels;
use serde_json::json;

use crate::auth::Authenticator;
use crate::config::{Config, ModelConfig};
use crate::engine::{Failure, Image, Outcome, Pool, Ticket};
use crate::http::{Framing, Head, Response};
use crate::image::{self, Kind};

/// Set (to anything) in the environment, the server skips its early `max-pixels` check of image
/// headers, so tests can show that the check on the decoder's output holds by itself.
pub const HEADER_CHECK_OFF: &str = "LVA_SERVER_TEST_NO_HEADER_CHECK";

/// Counters of one model, shown by `GET /models`.
#[derive(Default)]
struct Stats {
    requests: AtomicU64,
    found: AtomicU64,
    empty: AtomicU64,
    bad_request: AtomicU64,
    busy: AtomicU64,
    failed: AtomicU64,
    /// Sum of the time from admission to answer, µs.
    busy_us: AtomicU64,
}

struct Model {
    pool: Arc<Pool>,
    labels: Labels,
    stats: Stats,
}

pub struct Service {
    models: BTreeMap<String, Model>,
    auth: Option<Authenticator>,
    max_body: u64,
    max_pixels: u64,
    /// Whether `max-pixels` is also checked on the image header before decoding (always, but
    /// for the tests of the decoder-output check: see `HEADER_CHECK_OFF`).
    header_check: bool,
    queue_timeout: Duration,
    retry_after: u32,
}

/// What to do with a request whose head has been read.
pub enum Step {
    /// Answer now, without reading the body.
    Reply(Response),
    /// Read the body (up to `max_body`), then call `Service::infer`.
    Infer(Pending),
}

/// An admitted inference request waiting for its body.
pub struct Pending {
    ticket: Ticket,
    model: String,
    kind: Kind,
    raw: Option<gst_video::VideoInfo>,
    threshold: Option<f64>,
}

impl Pending {
    pub fn model(&self) -> &str {
        &self.model
    }
}

fn category(decoder: Option<&str>) -> &'static str {
    match decoder.map(str::to_ascii_lowercase).as_deref() {
        Some("ssd" | "yolo" | "blazeface") => "detection",
        Some("classification") => "classification",
        _ => "unknown",
    }
}

impl Service {
    /// Starts every model's pool (each warms up one pipeline).
    pub fn new(config: &Config, models: Vec<ModelConfig>) -> Result<Service, String> {
        let mut started = BTreeMap::new();
        for m in models {
            let labels = match m.property("labels") {
                Some(path) => Labels::read(std::path::Path::new(path))
                    .map_err(|e| format!("model \"{}\": labels {path}: {e}", m.name))?,
                None => Labels::default(),
            };
            let name = m.name.clone();
            let pool = Pool::new(m, (640, 480), config.max_pixels)
                .map_err(|e| format!("model \"{name}\": {e}"))?;
            started.insert(
                name,
                Model {
                    pool,
                    labels,
                    stats: Stats::default(),
                },
            );
        }
        Ok(Service {
            models: started,
            auth: config.auth.as_ref().map(Authenticator::new),
            max_body: config.max_body_bytes,
            max_pixels: config.max_pixels,
            header_check: std::env::var_os(HEADER_CHECK_OFF).is_none(),
            queue_timeout: config.queue_timeout(),
            retry_after: config.retry_after_s,
        })
    }

    pub fn max_body(&self) -> u64 {
        self.max_body
    }

    pub fn model_names(&self) -> Vec<&str> {
        self.models.keys().map(String::as_str).collect()
    }

    fn busy(&self) -> Response {
        Response::error(
            503,
            "all workers are busy and the queue is full: retry after the Retry-After delay",
        )
        .with_header("Retry-After", self.retry_after.to_string())
    }

    /// Routes a request from its head alone.
    pub fn route(&self, head: &Head) -> Step {
        let path = head.path.trim_end_matches('/');
        if path == "/healthz" {
            return Step::Reply(match head.method.as_str() {
                "GET" | "HEAD" => Response::json(200, br#"{"status":"ok"}"#.to_vec()),
                _ => not_allowed("GET, HEAD"),
            });
        }
        if let Some(auth) = &self.auth
            && !auth.allows(head.header("authorization"))
        {
            return Step::Reply(
                Response::error(
                    401,
                    "credentials missing or wrong: send an Authorization header (Basic or Bearer)",
                )
                .with_header("WWW-Authenticate", auth.challenge()),
            );
        }
        if path.is_empty() || path == "/models" {
            return Step::Reply(match head.method.as_str() {
                "GET" | "HEAD" => self.list(),
                _ => not_allowed("GET, HEAD"),
            });
        }
        // Not `&path[1..]`: a path not starting with '/' (or with a multi-byte first character)
        // must not panic.
        let name = path.strip_prefix('/').unwrap_or(path);
        let Some(model) = self.models.get(name) else {
            return Step::Reply(Response::error(
                404,
                &format!(
                    "no model '{name}' here: POST to one of /{}",
                    self.model_names().join(", /")
                ),
            ));
        };
        if head.method != "POST" {
            return Step::Reply(not_allowed("POST"));
        }
        model.stats.requests.fetch_add(1, Ordering::Relaxed);
        match self.check(head, model) {
            Ok(step) => step,
            Err(resp) => {
                let counter = if resp.status == 503 {
                    &model.stats.busy
                } else {
                    &model.stats.bad_request
                };
                counter.fetch_add(1, Ordering::Relaxed);
                Step::Reply(resp)
            }
        }
    }

    fn check(&self, head: &Head, model: &Model) -> Result<Step, Response> {
        let content_type = head.header("content-type").unwrap_or("");
        let kind = Kind::from_content_type(content_type).ok_or_else(|| {
            Response::error(
                415,
                &format!(
                    "Content-Type '{content_type}' is not supported: send image/jpeg, image/png, \
                     image/bmp or image/x-raw"
                ),
            )
        })?;
        match head.body_framing() {
            Ok(Framing::Length(0)) => {
                return Err(Response::error(
                    400,
                    "the body is empty: send the image bytes",
                ));
            }
            Ok(Framing::Length(n)) if n > self.max_body => {
                return Err(Response::error(
                    413,
                    &format!(
                        "the body has {n} bytes, over the limit of {}",
                        self.max_body
                    ),
                ));
            }
            Ok(_) => {}
            Err(e) => return Err(Response::error(400, &e)),
        }
        let raw = match kind {
            Kind::Raw => Some(
                image::raw_info(
                    head.query_param("format").as_deref(),
                    head.query_param("width").as_deref(),
                    head.query_param("height").as_deref(),
                )
                .map_err(|e| Response::error(400, &e))?,
            ),
            _ => None,
        };
        let threshold = match head.query_param("threshold") {
            None => None,
            Some(t) => Some(
                t.parse::<f64>()
                    .ok()
                    .filter(|v| (0.0..=1.0).contains(v))
                    .ok_or_else(|| {
                        Response::error(400, &format!("threshold={t} is not a number from 0 to 1"))
                    })?,
            ),
        };
        let ticket = model.pool.admit().ok_or_else(|| self.busy())?;
        Ok(Step::Infer(Pending {
            ticket,
            model: model.pool.config.name.clone(),
            kind,
            raw,
            threshold,
        }))
    }

    /// Runs an admitted request on its body.
    pub fn infer(&self, pending: Pending, body: Vec<u8>) -> Response {
        let started = Instant::now();
        let Some(model) = self.models.get(&pending.model) else {
            return Response::error(500, "model vanished");
        };
        let stats = &model.stats;
        let response = self.answer(pending, body);
        let counter = match response.status {
            200 => &stats.found,
            204 => &stats.empty,
            503 => &stats.busy,
            400..=499 => &stats.bad_request,
            _ => &stats.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        stats
            .busy_us
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        response
    }

    fn answer(&self, pending: Pending, body: Vec<u8>) -> Response {
        let kind = pending.kind;
        if body.is_empty() {
            return Response::error(400, "the body is empty: send the image bytes");
        }
        if let Err(e) = kind.check_signature(&body) {
            return Response::error(400, &e);
        }
        // An early refusal from the header; the decoder's output is checked again (engine).
        if self.header_check
            && let Some((w, h)) = image::dimensions(kind, &body)
            && let Err(e) = image::check_pixels(w, h, self.max_pixels)
        {
            return Response::error(400, &e);
        }
        if kind == Kind::Jpeg
            && let Some(frame) = image::jpeg_frame(&body)
            && frame.components == 4
        {
            return Response::error(
                415,
                "CMYK JPEG is not supported (4 colour components): send an RGB (YCbCr) or \
                 greyscale JPEG, or a PNG",
            );
        }
        let data = match &pending.raw {
            Some(info) => match image::raw_frame(info, body) {
                Ok(d) => d,
                Err(e) => return Response::error(400, &e),
            },
            None => body,
        };
        let image = Image {
            kind,
            data,
            raw: pending.raw,
        };
        let deadline = Instant::now() + self.queue_timeout;
        match pending.ticket.infer(image, pending.threshold, deadline) {
            Ok(Outcome::Found(doc)) => Response::json(200, doc),
            Ok(Outcome::Nothing) => Response::new(204),
            Ok(Outcome::BadImage(e)) => Response::error(
                400,
                &format!("the {} body cannot be decoded: {e}", kind.name()),
            ),
            Err(Failure::Busy) => self.busy(),
            Err(Failure::Internal(e)) => {
                eprintln!("lva-server: model {}: pipeline failed: {e}", pending.model);
                Response::error(500, &format!("inference failed: {e}"))
            }
        }
    }

    /// `GET /models`.
    fn list(&self) -> Response {
        let models: Vec<serde_json::Value> = self
            .models
            .values()
            .map(|m| {
                let c = &m.pool.config;
                let s = &m.stats;
                let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
                let answered =
                    load(&s.found) + load(&s.empty) + load(&s.bad_request) + load(&s.failed);
                json!({
                    "name": c.name,
                    "description": c.description,
                    "category": category(c.property("decoder")),
                    "model": c.property("model"),
                    "decoder": c.property("decoder").unwrap_or("auto"),
                    "device": c.property("device").unwrap_or("CPU"),
                    "threshold": m.pool.default_threshold(),
                    "labels": m.labels.sorted().iter()
                        .map(|(id, name)| json!({"id": id, "name": name}))
                        .collect::<Vec<_>>(),
                    "workers": c.workers,
                    "max-queue": c.max_queue,
                    "in-flight": m.pool.in_flight(),
                    "stats": {
                        "requests": load(&s.requests),
                        "found": load(&s.found),
                        "empty": load(&s.empty),
                        "bad-request": load(&s.bad_request),
                        "busy": load(&s.busy),
                        "failed": load(&s.failed),
                        "mean-ms": if answered == 0 { 0.0 } else {
                            load(&s.busy_us) as f64 / answered as f64 / 1000.0
                        },
                    },
                })
            })
            .collect();
        let body = json!({ "models": models }).to_string();
        Response::json(200, body.into_bytes())
    }
}

fn not_allowed(allow: &str) -> Response {
    Response::error(405, &format!("method not allowed here; use {allow}"))
        .with_header("Allow", allow.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_follow_the_decoder() {
        assert_eq!(category(Some("ssd")), "detection");
        assert_eq!(category(Some("YOLO")), "detection");
        assert_eq!(category(Some("classification")), "classification");
        assert_eq!(category(Some("auto")), "unknown");
        assert_eq!(category(None), "unknown");
    }
}
