//! The routes on axum, and around them: trailing slashes trimmed, the access log line and the
//! headers every answer carries, handler panics answered 500, and the credentials every route
//! but `/healthz` and the console's files needs.
//!
//! - `POST /<model>` with an image → 200 `{"inferences":[...]}`, or 204 when nothing is found;
//! - `GET /` or `GET /models` → the models with their labels, settings and counters (`GET /`
//!   from a browser, `Accept: text/html`, → the console instead);
//! - `GET /console`, `GET /console/{file}` → the web console ([`crate::console`]), open to all;
//! - `GET /healthz` → 200 while the server runs (never needs credentials);
//! - `/streams...`: the streams API ([`crate::streams_api`]);
//! - `/v2...`: the KServe v2 REST API ([`crate::kserve::rest`]; `/v2/health/*` needs no
//!   credentials, as `/healthz`);
//! - `GET /openapi.json` → the OpenAPI 3.1 description of all of them (`openapi.json`).

use std::any::Any;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Version, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{any, get, post, put};
use http_body_util::BodyExt;
use tokio::sync::watch;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::normalize_path::NormalizePath;

use crate::conn::{FramingConflict, Peer};
use crate::console;
use crate::http::{self, Framing};
use crate::kserve::{self, Kserve};
use crate::reply::{error, json, with_header};
use crate::service::{Service, not_allowed};
use crate::streams::Registry;
use crate::streams_api;

/// The OpenAPI 3.1 description of every route, served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

/// What the handlers share.
pub struct App {
    pub service: Service,
    /// The streams of `/streams`.
    pub registry: Registry,
    /// The KServe v2 API (`/v2`, and gRPC).
    pub kserve: Arc<Kserve>,
    pub body_timeout: Duration,
    pub busy_delay: Duration,
    /// Turns true on SIGTERM/SIGINT.
    pub shutdown: watch::Sender<bool>,
}

/// The routes with their middleware, paths' trailing slashes trimmed before routing.
pub type Routes = NormalizePath<Router>;

/// Set on an answer when the handler read the request body (else the connection closes).
#[derive(Clone, Copy)]
pub struct BodyRead;

/// The model an admitted request went to, for the access log.
#[derive(Clone)]
pub struct ModelName(pub String);

pub fn routes(app: Arc<App>) -> Routes {
    let router = Router::new()
        .route("/healthz", get(healthz).fallback(not_allowed_get))
        .route("/", get(root).fallback(not_allowed_get))
        .route("/console", get(console::page).fallback(not_allowed_get))
        .route(
            "/console/{file}",
            get(console::file).fallback(not_allowed_get),
        )
        .route("/models", get(list).fallback(not_allowed_get))
        .route("/openapi.json", get(openapi).fallback(not_allowed_get))
        .route("/streams", get(streams_api::list).fallback(not_allowed_get))
        .route(
            "/streams/{id}",
            put(streams_api::put)
                .get(streams_api::show)
                .delete(streams_api::delete)
                .fallback(|| async { not_allowed("GET, HEAD, PUT, DELETE") }),
        )
        .route(
            "/streams/{id}/results",
            get(streams_api::results).fallback(not_allowed_get),
        )
        .route(
            "/streams/{id}/events",
            get(streams_api::events).fallback(not_allowed_get),
        )
        .route(
            "/streams/{id}/hls/{file}",
            get(streams_api::hls).fallback(not_allowed_get),
        )
        .route(
            "/v2",
            get(kserve::rest::server_metadata).fallback(not_allowed_get),
        )
        .route(
            "/v2/health/live",
            get(kserve::rest::live).fallback(not_allowed_get),
        )
        .route(
            "/v2/health/ready",
            get(kserve::rest::ready).fallback(not_allowed_get),
        )
        .route(
            "/v2/models/{model}",
            get(kserve::rest::model_metadata).fallback(not_allowed_get),
        )
        .route(
            "/v2/models/{model}/versions/{version}",
            get(kserve::rest::model_metadata).fallback(not_allowed_get),
        )
        .route(
            "/v2/models/{model}/ready",
            get(kserve::rest::model_ready).fallback(not_allowed_get),
        )
        .route(
            "/v2/models/{model}/versions/{version}/ready",
            get(kserve::rest::model_ready).fallback(not_allowed_get),
        )
        .route(
            "/v2/models/{model}/infer",
            post(kserve::rest::infer).fallback(|| async { not_allowed("POST") }),
        )
        .route(
            "/v2/models/{model}/versions/{version}/infer",
            post(kserve::rest::infer).fallback(|| async { not_allowed("POST") }),
        )
        .route("/{model}", any(model))
        .fallback(no_route)
        .layer(middleware::from_fn_with_state(app.clone(), authenticate))
        .layer(middleware::from_fn(refuse_conflicting_framing))
        .layer(CatchPanicLayer::custom(panicked))
        .layer(middleware::from_fn_with_state(app.clone(), access))
        .with_state(app);
    NormalizePath::trim_trailing_slash(router)
}

async fn healthz() -> Response {
    json(StatusCode::OK, r#"{"status":"ok"}"#)
}

async fn list(State(app): State<Arc<App>>) -> Response {
    app.service.list()
}

/// `GET /`: the console for a browser (`Accept: text/html`), the models for anyone else.
async fn root(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if console::wants_html(&headers) {
        console::page().await
    } else {
        app.service.list()
    }
}

async fn openapi() -> Response {
    json(StatusCode::OK, OPENAPI)
}

async fn not_allowed_get() -> Response {
    not_allowed("GET, HEAD")
}

async fn no_route(State(app): State<Arc<App>>, req: Request) -> Response {
    let path = http::percent_decode(req.uri().path(), false);
    if path.starts_with("/streams/") {
        return error(
            StatusCode::NOT_FOUND,
            "no such route: GET /openapi.json lists the routes",
        );
    }
    if path.starts_with("/v2/") {
        return kserve::rest::no_route(&path);
    }
    app.service
        .no_model(path.strip_prefix('/').unwrap_or(&path))
}

/// `POST /<model>`: admitted from the head, then the body is read, then the inference runs on
/// the blocking pool.
async fn model(State(app): State<Arc<App>>, req: Request) -> Response {
    let (head, body) = req.into_parts();
    let path = http::percent_decode(head.uri.path(), false);
    let name = path.strip_prefix('/').unwrap_or(&path).to_string();
    let pending = match app.service.admit(&name, &head) {
        Ok(pending) => pending,
        Err(resp) if resp.status() == StatusCode::SERVICE_UNAVAILABLE => {
            // Cheap as it is (no body read, no pipeline), a 503 resent at once by a client
            // that ignores Retry-After, in a loop, would take the CPU the inference needs: the
            // answer waits a little, without a thread.
            tokio::time::sleep(app.busy_delay).await;
            return resp;
        }
        Err(resp) => return resp,
    };
    let max = app.service.max_body();
    let mut resp = match read_body(body, http::framing(&head.headers), max, app.body_timeout).await
    {
        Ok(body) => {
            let worker = app.clone();
            let mut resp = tokio::task::spawn_blocking(move || worker.service.infer(pending, body))
                .await
                .unwrap_or_else(|e| {
                    eprintln!("lva-server: model {name}: inference panicked: {e}");
                    error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "inference failed: the worker panicked",
                    )
                });
            resp.extensions_mut().insert(BodyRead);
            resp
        }
        Err(resp) => resp,
    };
    resp.extensions_mut().insert(ModelName(name));
    resp
}

/// The whole body, at most `max` bytes, within `timeout`; else the answer to give.
pub async fn read_body(
    mut body: Body,
    framing: Framing,
    max: u64,
    timeout: Duration,
) -> Result<Vec<u8>, Response> {
    let collect = async {
        let expected = match framing {
            Framing::Length(n) => n.min(max),
            Framing::Chunked => 0,
        };
        let mut out = Vec::with_capacity(usize::try_from(expected).unwrap_or(0));
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| body_error(&e))?;
            if let Ok(data) = frame.into_data() {
                if (out.len() + data.len()) as u64 > max {
                    return Err(error(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        &format!("the body is over the limit of {max} bytes"),
                    ));
                }
                out.extend_from_slice(&data);
            }
        }
        Ok(out)
    };
    tokio::time::timeout(timeout, collect)
        .await
        .unwrap_or_else(|_| {
            Err(error(
                StatusCode::REQUEST_TIMEOUT,
                &format!(
                    "the body did not arrive within body-timeout-ms ({} ms)",
                    timeout.as_millis()
                ),
            ))
        })
}

/// 400 for a body hyper could not read: cut short, or broken chunked framing.
fn body_error(e: &axum::Error) -> Response {
    let mut cause: &dyn std::error::Error = e;
    let mut short = false;
    while let Some(next) = cause.source() {
        cause = next;
        short |= cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::UnexpectedEof)
            || cause
                .downcast_ref::<hyper::Error>()
                .is_some_and(hyper::Error::is_incomplete_message);
    }
    let message = if short {
        "the body ended before the length it announced (Content-Length or chunk size): send \
         the whole image"
            .to_string()
    } else {
        format!("the body cannot be read: {cause}")
    };
    error(StatusCode::BAD_REQUEST, &message)
}

/// 400 for a head with both Content-Length and Transfer-Encoding (RFC 9112 §6.3): a sign of
/// request smuggling. The body is not read, so the connection closes.
async fn refuse_conflicting_framing(req: Request, next: Next) -> Response {
    if req.extensions().get::<FramingConflict>().is_some() {
        return error(
            StatusCode::BAD_REQUEST,
            "Content-Length and Transfer-Encoding together: send one of them",
        );
    }
    next.run(req).await
}

/// Paths open to all: the health checks, which container probes call without credentials.
const OPEN: [&str; 3] = ["/healthz", "/v2/health/live", "/v2/health/ready"];

/// 401 unless the request carries configured credentials; the health checks and the console's
/// files (which hold no data) need none.
async fn authenticate(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    if let Some(auth) = app.service.auth()
        && !OPEN.contains(&req.uri().path())
        && !console::is_public(req.method(), req.uri().path(), req.headers())
    {
        let credentials = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if !auth.allows(credentials) {
            return with_header(
                error(
                    StatusCode::UNAUTHORIZED,
                    "credentials missing or wrong: send an Authorization header (Basic or Bearer)",
                ),
                header::WWW_AUTHENTICATE,
                &auth.challenge(),
            );
        }
    }
    next.run(req).await
}

/// A panicking handler: 500, and the connection goes on.
fn panicked(panic: Box<dyn Any + Send>) -> Response {
    let what = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("?");
    eprintln!("lva-server: a request handler panicked: {what}");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error: the request handler failed",
    )
}

/// The headers of every answer (`Server`, the echoed `x-ms-client-request-id`, `Connection:
/// close` when the connection ends after it) and one log line per request.
async fn access(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    const REQUEST_ID: &str = "x-ms-client-request-id";
    let started = Instant::now();
    let method = req.method().clone();
    let path = http::percent_decode(req.uri().path(), false);
    let headers = req.headers();
    let bytes = headers.get(header::CONTENT_LENGTH).map_or_else(
        || "0".into(),
        |v| String::from_utf8_lossy(v.as_bytes()).into_owned(),
    );
    let request_id = headers.get(REQUEST_ID).cloned();
    let no_body = http::framing(headers) == Framing::Length(0);
    let keep_alive = wants_keep_alive(&req);
    let peer = req
        .extensions()
        .get::<Peer>()
        .map_or_else(|| "?".into(), |p| p.0.to_string());

    let mut resp = next.run(req).await;

    let body_done = no_body || resp.extensions().get::<BodyRead>().is_some();
    let model = resp.extensions().get::<ModelName>().map(|m| m.0.clone());
    let headers = resp.headers_mut();
    headers.insert(
        header::SERVER,
        HeaderValue::from_static(concat!("lva-server/", env!("CARGO_PKG_VERSION"))),
    );
    if let Some(id) = &request_id {
        headers.insert(REQUEST_ID, id.clone());
    }
    if !(keep_alive && body_done) || *app.shutdown.borrow() {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    let line = format!(
        "{} {} {method} {path} model={} bytes={bytes} ms={:.1} id={} peer={peer}\n",
        crate::rfc3339(SystemTime::now()),
        resp.status().as_u16(),
        model.as_deref().unwrap_or("-"),
        started.elapsed().as_secs_f64() * 1000.0,
        request_id
            .as_ref()
            .map_or_else(|| "-".into(), |v| String::from_utf8_lossy(v.as_bytes())),
    );
    // One write: stderr is unbuffered, and `eprintln!` writes each piece on its own.
    let _ = std::io::stderr().write_all(line.as_bytes());
    resp
}

/// Whether the client asked to keep the connection open (HTTP/1.1 unless `close`, HTTP/1.0
/// only with `keep-alive`).
fn wants_keep_alive(req: &Request) -> bool {
    let connection = req
        .headers()
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .collect::<Vec<_>>();
    let has = |token: &str| connection.iter().any(|t| t == token);
    if req.version() == Version::HTTP_10 {
        has("keep-alive")
    } else {
        !has("close")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `$ref` of `value` points into `doc`.
    fn check_refs(doc: &serde_json::Value, value: &serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(target) = map.get("$ref").and_then(|r| r.as_str()) {
                    let pointer = target.strip_prefix('#').expect("a local $ref");
                    assert!(doc.pointer(pointer).is_some(), "{target} points nowhere");
                }
                map.values().for_each(|v| check_refs(doc, v));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| check_refs(doc, v)),
            _ => {}
        }
    }

    fn keys(value: &serde_json::Value) -> Vec<String> {
        let mut keys: Vec<String> = value
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        keys.sort();
        keys
    }

    #[test]
    fn the_openapi_document_describes_every_route_and_the_streams_shapes() {
        use crate::streams::{StreamInfo, StreamSpec, stream::Stream};
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
        assert_eq!(doc["openapi"], "3.1.0");
        let routes: [(&str, &[&str]); 20] = [
            ("/{model}", &["post"]),
            ("/models", &["get"]),
            ("/healthz", &["get"]),
            ("/openapi.json", &["get"]),
            ("/console", &["get"]),
            ("/console/{file}", &["get"]),
            ("/streams", &["get"]),
            ("/streams/{id}", &["get", "put", "delete"]),
            ("/streams/{id}/results", &["get"]),
            ("/streams/{id}/events", &["get"]),
            ("/streams/{id}/hls/{file}", &["get"]),
            ("/v2", &["get"]),
            ("/v2/health/live", &["get"]),
            ("/v2/health/ready", &["get"]),
            ("/v2/models/{model}", &["get"]),
            ("/v2/models/{model}/versions/{version}", &["get"]),
            ("/v2/models/{model}/ready", &["get"]),
            ("/v2/models/{model}/versions/{version}/ready", &["get"]),
            ("/v2/models/{model}/infer", &["post"]),
            ("/v2/models/{model}/versions/{version}/infer", &["post"]),
        ];
        for (path, methods) in routes {
            for method in methods {
                let op = &doc["paths"][path][method];
                assert!(
                    op["responses"].is_object(),
                    "{method} {path} is not described"
                );
            }
        }
        assert_eq!(
            doc["paths"].as_object().map(|p| p.len()),
            Some(routes.len())
        );
        check_refs(&doc, &doc);

        // The definitions it shows are definitions; what the server shows is what it says.
        let schemas = &doc["components"]["schemas"];
        let examples = &doc["paths"]["/streams/{id}"]["put"]["requestBody"]["content"]["application/json"]
            ["examples"];
        let mut spec = None;
        for (name, example) in examples.as_object().expect("examples") {
            let text = example["value"].to_string();
            spec = Some(
                StreamSpec::from_json(text.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}")),
            );
        }
        let stream = Stream::failed("cam", spec.expect("an example"), "gone".into());
        let info = serde_json::to_value(StreamInfo::of(&stream)).expect("serialises");
        assert_eq!(keys(&info), keys(&schemas["StreamInfo"]["properties"]));
        let status = &info["status"];
        let described = keys(&schemas["StreamStatus"]["properties"]);
        for key in keys(status) {
            assert!(described.contains(&key), "status.{key} is not described");
        }
        for required in schemas["StreamStatus"]["required"]
            .as_array()
            .expect("required")
        {
            let required = required.as_str().expect("a name");
            assert!(
                status.get(required).is_some(),
                "status.{required} is not shown"
            );
        }
        let sub = &schemas["StreamStatus"]["properties"];
        assert_eq!(
            keys(&status["latency"]),
            keys(&sub["latency"]["properties"])
        );
        assert_eq!(keys(&status["gaps"]), keys(&sub["gaps"]["properties"]));
        let spec_keys = keys(&schemas["StreamDefinition"]["properties"]);
        for key in keys(&info["spec"]) {
            assert!(spec_keys.contains(&key), "spec.{key} is not described");
        }
    }

    #[test]
    fn keep_alive_follows_version_and_connection_header() {
        let req = |version, connection: Option<&str>| {
            let mut r = Request::new(Body::empty());
            *r.version_mut() = version;
            if let Some(c) = connection {
                r.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_str(c).unwrap());
            }
            wants_keep_alive(&r)
        };
        assert!(req(Version::HTTP_11, None));
        assert!(!req(Version::HTTP_11, Some("Close")));
        assert!(!req(Version::HTTP_10, None));
        assert!(req(Version::HTTP_10, Some("foo, Keep-Alive")));
    }
}
