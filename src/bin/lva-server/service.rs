//! The LVA HTTP extension contract (seed 001) behind the routes: admission from the request
//! head, inference, status codes and per-model counters.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gstovlva::ovinfer::labels::Labels;
use serde_json::json;

use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::response::Response;

use crate::auth::Authenticator;
use crate::config::{Config, ModelConfig};
use crate::engine::{Failure, Image, Outcome, Pool, Ticket};
use crate::http::{self, Framing};
use crate::image::{self, Kind};
use crate::reply::{error, json, with_header};

/// Set (to anything) in the environment, the server skips its early `max-pixels` check of image
/// headers, so tests can show that the check on the decoder's output holds by itself.
pub const HEADER_CHECK_OFF: &str = "LVA_SERVER_TEST_NO_HEADER_CHECK";

/// Set (to anything) in the environment, `?panic=handler` or `?panic=worker` on a model request
/// panics there, so tests can show that a panic costs that request a 500 and nothing more.
pub const TEST_PANICS: &str = "LVA_SERVER_TEST_PANICS";

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
    /// See `TEST_PANICS`.
    test_panics: bool,
    queue_timeout: Duration,
    retry_after: u32,
}

/// An admitted inference request waiting for its body.
pub struct Pending {
    ticket: Ticket,
    model: String,
    kind: Kind,
    raw: Option<gst_video::VideoInfo>,
    threshold: Option<f64>,
    /// See `TEST_PANICS`.
    panic_in_worker: bool,
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
            test_panics: std::env::var_os(TEST_PANICS).is_some(),
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

    /// The credentials every route but `/healthz` asks for, if configured.
    pub fn auth(&self) -> Option<&Authenticator> {
        self.auth.as_ref()
    }

    /// 503 with `Retry-After`.
    pub fn busy(&self) -> Response {
        with_header(
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "all workers are busy and the queue is full: retry after the Retry-After delay",
            ),
            header::RETRY_AFTER,
            &self.retry_after.to_string(),
        )
    }

    /// 404 for a path that names no model.
    pub fn no_model(&self, name: &str) -> Response {
        error(
            StatusCode::NOT_FOUND,
            &format!(
                "no model '{name}' here: POST to one of /{}",
                self.model_names().join(", /")
            ),
        )
    }

    /// Admits `POST /<name>` from its head alone, before a byte of the body is read: every
    /// refusal (404, 405, 415, 400, 413, 503) costs no body and no pipeline.
    pub fn admit(&self, name: &str, head: &Parts) -> Result<Pending, Response> {
        let Some(model) = self.models.get(name) else {
            return Err(self.no_model(name));
        };
        if head.method != Method::POST {
            return Err(not_allowed("POST"));
        }
        model.stats.requests.fetch_add(1, Ordering::Relaxed);
        self.check(head, model).inspect_err(|resp| {
            let counter = if resp.status() == StatusCode::SERVICE_UNAVAILABLE {
                &model.stats.busy
            } else {
                &model.stats.bad_request
            };
            counter.fetch_add(1, Ordering::Relaxed);
        })
    }

    fn check(&self, head: &Parts, model: &Model) -> Result<Pending, Response> {
        let content_type = head
            .headers
            .get(header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        let kind = Kind::from_content_type(&content_type).ok_or_else(|| {
            error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                &format!(
                    "Content-Type '{content_type}' is not supported: send image/jpeg, image/png, \
                     image/bmp or image/x-raw"
                ),
            )
        })?;
        match http::framing(&head.headers) {
            Framing::Length(0) => {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "the body is empty: send the image bytes",
                ));
            }
            Framing::Length(n) if n > self.max_body => {
                return Err(error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!(
                        "the body has {n} bytes, over the limit of {}",
                        self.max_body
                    ),
                ));
            }
            Framing::Length(_) | Framing::Chunked => {}
        }
        let query = head.uri.query().unwrap_or("");
        let param = |name: &str| http::query_param(query, name);
        let panic_at = param("panic").filter(|_| self.test_panics);
        if panic_at.as_deref() == Some("handler") {
            panic!("{TEST_PANICS}: a panic in the request handler");
        }
        let raw = match kind {
            Kind::Raw => Some(
                image::raw_info(
                    param("format").as_deref(),
                    param("width").as_deref(),
                    param("height").as_deref(),
                )
                .map_err(|e| error(StatusCode::BAD_REQUEST, &e))?,
            ),
            _ => None,
        };
        let threshold = match param("threshold") {
            None => None,
            Some(t) => Some(
                t.parse::<f64>()
                    .ok()
                    .filter(|v| (0.0..=1.0).contains(v))
                    .ok_or_else(|| {
                        error(
                            StatusCode::BAD_REQUEST,
                            &format!("threshold={t} is not a number from 0 to 1"),
                        )
                    })?,
            ),
        };
        let ticket = model.pool.admit().ok_or_else(|| self.busy())?;
        Ok(Pending {
            ticket,
            model: model.pool.config.name.clone(),
            kind,
            raw,
            threshold,
            panic_in_worker: panic_at.as_deref() == Some("worker"),
        })
    }

    /// Runs an admitted request on its body. Blocks until a worker has run it: call it off the
    /// async workers.
    pub fn infer(&self, pending: Pending, body: Vec<u8>) -> Response {
        let started = Instant::now();
        let Some(model) = self.models.get(&pending.model) else {
            return error(StatusCode::INTERNAL_SERVER_ERROR, "model vanished");
        };
        let stats = &model.stats;
        let response = self.answer(pending, body);
        let counter = match response.status().as_u16() {
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
        if pending.panic_in_worker {
            panic!("{TEST_PANICS}: a panic in the inference worker");
        }
        let kind = pending.kind;
        if body.is_empty() {
            return error(
                StatusCode::BAD_REQUEST,
                "the body is empty: send the image bytes",
            );
        }
        if let Err(e) = kind.check_signature(&body) {
            return error(StatusCode::BAD_REQUEST, &e);
        }
        // An early refusal from the header; the decoder's output is checked again (engine).
        if self.header_check
            && let Some((w, h)) = image::dimensions(kind, &body)
            && let Err(e) = image::check_pixels(w, h, self.max_pixels)
        {
            return error(StatusCode::BAD_REQUEST, &e);
        }
        if kind == Kind::Jpeg
            && let Some(frame) = image::jpeg_frame(&body)
            && frame.components == 4
        {
            return error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "CMYK JPEG is not supported (4 colour components): send an RGB (YCbCr) or \
                 greyscale JPEG, or a PNG",
            );
        }
        let data = match &pending.raw {
            Some(info) => match image::raw_frame(info, body) {
                Ok(d) => d,
                Err(e) => return error(StatusCode::BAD_REQUEST, &e),
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
            Ok(Outcome::Found(doc)) => json(StatusCode::OK, doc),
            Ok(Outcome::Nothing) => {
                let mut resp = Response::default();
                *resp.status_mut() = StatusCode::NO_CONTENT;
                resp
            }
            Ok(Outcome::BadImage(e)) => error(
                StatusCode::BAD_REQUEST,
                &format!("the {} body cannot be decoded: {e}", kind.name()),
            ),
            Err(Failure::Busy) => self.busy(),
            Err(Failure::Internal(e)) => {
                eprintln!("lva-server: model {}: pipeline failed: {e}", pending.model);
                error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("inference failed: {e}"),
                )
            }
        }
    }

    /// `GET /models`.
    pub fn list(&self) -> Response {
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
        json(StatusCode::OK, body)
    }
}

/// 405 with `Allow`.
pub fn not_allowed(allow: &str) -> Response {
    with_header(
        error(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("method not allowed here; use {allow}"),
        ),
        header::ALLOW,
        allow,
    )
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
