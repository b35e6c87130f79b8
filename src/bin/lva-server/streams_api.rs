//! The streams API: the `/streams` routes over the streams engine ([`crate::streams`]).
//!
//! - `PUT /streams/{id}` with a definition → 201 (created, with `Location`) or 200 (replaced),
//!   the stream as `GET` shows it; 400 with `reasons` for a definition that does not check or
//!   start; 409 at `max-streams`, or while another change of this id is under way;
//! - `GET /streams` → `{"streams": [...]}`; `GET /streams/{id}` → the stream (also one deleted
//!   in the last 10 minutes), or 404;
//! - `DELETE /streams/{id}` → 200 with the stream as it ended (outputs flushed), or 404;
//! - `GET /streams/{id}/results` → 200 with the latest document, 204 while there is none;
//!   `?wait=true` → the next document within `timeout-ms` (else 204; 410 once the stream is
//!   over);
//! - `GET /streams/{id}/events` → server-sent events: every document (`id:` its `seq`),
//!   `lagged` (`{"missed": n}`) for a client that fell behind, `end` (the stream as it ended),
//!   and a keep-alive comment after [`KEEP_ALIVE`] without an event.
//!
//! The engine's blocking calls (create, replace, delete) run on tokio's blocking pool.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use serde_json::json;
use tokio::sync::broadcast::{self, error::RecvError};

use crate::http;
use crate::reply::{self, error, error_with_reasons, with_header};
use crate::routes::{App, BodyRead, read_body};
use crate::streams::registry::check_id;
use crate::streams::{Document, Put, Refused, StreamInfo, StreamSpec};

/// Largest definition accepted (413 above), bytes.
pub const MAX_DEFINITION_BYTES: u64 = 64 * 1024;
/// `timeout-ms` of `?wait=true` when not given.
pub const DEFAULT_WAIT_MS: u64 = 30_000;
/// Largest `timeout-ms` of `?wait=true`.
pub const MAX_WAIT_MS: u64 = 600_000;
/// An event stream with nothing to say for this long sends a comment, so that clients and
/// proxies see it alive.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

type Id = Result<Path<String>, PathRejection>;

/// The stream id of the path (404 for one that cannot be an id anyway).
fn id(path: Id) -> Result<String, Response> {
    path.map(|Path(id)| id)
        .map_err(|_| error(StatusCode::NOT_FOUND, "no such stream"))
}

fn not_found(id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        &format!("no stream '{id}': GET /streams lists them"),
    )
}

fn info(status: StatusCode, info: &StreamInfo) -> Response {
    match serde_json::to_string(info) {
        Ok(body) => reply::json(status, body),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// The answer to a refused create, replace or delete.
fn refused(id: &str, why: Refused) -> Response {
    let message = why.to_string();
    match why {
        Refused::Invalid(e) => error_with_reasons(StatusCode::BAD_REQUEST, &message, &e.0),
        Refused::BadId(e) | Refused::Start(e) => {
            error_with_reasons(StatusCode::BAD_REQUEST, &message, &[e])
        }
        Refused::Full { .. } | Refused::Busy => error(StatusCode::CONFLICT, &message),
        Refused::NotFound => not_found(id),
        Refused::Persist(_) => {
            eprintln!("lva-server: stream {id}: {message}");
            error(StatusCode::INTERNAL_SERVER_ERROR, &message)
        }
    }
}

/// Runs a blocking registry call on the blocking pool.
async fn blocking<T: Send + 'static>(
    id: &str,
    work: impl FnOnce() -> Result<T, Refused> + Send + 'static,
) -> Result<T, Response> {
    match tokio::task::spawn_blocking(work).await {
        Ok(done) => done.map_err(|why| refused(id, why)),
        Err(e) => {
            eprintln!("lva-server: stream {id}: the registry call panicked: {e}");
            Err(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error: the stream's change failed",
            ))
        }
    }
}

/// `GET /streams`: `{"streams": [...]}`, each as `GET /streams/{id}` shows it (same key order).
pub async fn list(State(app): State<Arc<App>>) -> Response {
    #[derive(serde::Serialize)]
    struct List {
        streams: Vec<StreamInfo>,
    }
    let list = List {
        streams: app.registry.list(),
    };
    match serde_json::to_string(&list) {
        Ok(body) => reply::json(StatusCode::OK, body),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// `GET /streams/{id}/hls/{file}`: the HLS playlist (`index.m3u8`) or a segment of a stream
/// with `outputs.video.hls`, as written by `hlssink2`; 404 for any other name, another stream,
/// or a file not written yet or already deleted from the window.
pub async fn hls(
    State(app): State<Arc<App>>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Response {
    let Ok(Path((id, file))) = path else {
        return error(StatusCode::NOT_FOUND, "no such HLS file");
    };
    let Some(on_disk) = app.registry.hls_file(&id, &file) else {
        return error(
            StatusCode::NOT_FOUND,
            &format!("stream {id} has no HLS file {file}"),
        );
    };
    let content_type = if file.ends_with(".m3u8") {
        "application/vnd.apple.mpegurl"
    } else {
        "video/mp2t"
    };
    match tokio::fs::read(&on_disk).await {
        Ok(bytes) => {
            let mut resp = Response::new(axum::body::Body::from(bytes));
            let headers = resp.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static(content_type),
            );
            headers.insert(
                header::CACHE_CONTROL,
                header::HeaderValue::from_static("no-cache"),
            );
            resp
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => error(
            StatusCode::NOT_FOUND,
            &format!("stream {id} has no HLS file {file} (not written yet, or out of the window)"),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// `GET /streams/{id}`.
pub async fn show(State(app): State<Arc<App>>, path: Id) -> Response {
    let id = match id(path) {
        Ok(id) => id,
        Err(resp) => return resp,
    };
    match app.registry.info(&id) {
        Some(i) => info(StatusCode::OK, &i),
        None => not_found(&id),
    }
}

/// `PUT /streams/{id}`: the definition read (at most [`MAX_DEFINITION_BYTES`], within
/// `body-timeout-ms`), checked and started on the blocking pool.
pub async fn put(State(app): State<Arc<App>>, path: Id, req: Request) -> Response {
    let id = match id(path) {
        Ok(id) => id,
        Err(resp) => return resp,
    };
    // A bad id is refused before its body is read.
    if let Err(why) = check_id(&id) {
        return refused(&id, why);
    }
    let (head, body) = req.into_parts();
    let framing = http::framing(&head.headers);
    let body = match read_body(body, framing, MAX_DEFINITION_BYTES, app.body_timeout).await {
        Ok(body) => body,
        Err(resp) => return resp,
    };
    let mut resp = match StreamSpec::from_json(&body) {
        Err(e) => refused(&id, Refused::Invalid(e)),
        Ok(spec) => {
            let (worker, key) = (app.clone(), id.clone());
            match blocking(&id, move || worker.registry.put(&key, spec)).await {
                Ok((Put::Created, i)) => with_header(
                    info(StatusCode::CREATED, &i),
                    header::LOCATION,
                    &format!("/streams/{id}"),
                ),
                Ok((Put::Replaced, i)) => info(StatusCode::OK, &i),
                Err(resp) => resp,
            }
        }
    };
    resp.extensions_mut().insert(BodyRead);
    resp
}

/// `DELETE /streams/{id}`: EOS, outputs flushed, stopped; the stream as it ended.
pub async fn delete(State(app): State<Arc<App>>, path: Id) -> Response {
    let id = match id(path) {
        Ok(id) => id,
        Err(resp) => return resp,
    };
    let (worker, key) = (app.clone(), id.clone());
    match blocking(&id, move || worker.registry.delete(&key)).await {
        Ok(i) => info(StatusCode::OK, &i),
        Err(resp) => resp,
    }
}

/// `?wait=` and `?timeout-ms=` of `/results`: how long to wait for the next document, if at all.
fn wait_for(query: &str) -> Result<Option<Duration>, String> {
    let wait = match http::query_param(query, "wait").as_deref() {
        None | Some("false" | "0") => false,
        Some("true" | "1" | "") => true,
        Some(other) => return Err(format!("wait={other}: use wait=true or wait=false")),
    };
    let timeout = match http::query_param(query, "timeout-ms") {
        None => DEFAULT_WAIT_MS,
        Some(t) => t
            .parse::<u64>()
            .ok()
            .filter(|ms| *ms <= MAX_WAIT_MS)
            .ok_or_else(|| {
                format!("timeout-ms={t} is not a whole number from 0 to {MAX_WAIT_MS}")
            })?,
    };
    Ok(wait.then(|| Duration::from_millis(timeout)))
}

fn document(doc: &Document) -> Response {
    reply::json(StatusCode::OK, doc.json.to_string())
}

fn no_content() -> Response {
    let mut resp = Response::default();
    *resp.status_mut() = StatusCode::NO_CONTENT;
    resp
}

/// `GET /streams/{id}/results[?wait=true[&timeout-ms=N]]`.
pub async fn results(State(app): State<Arc<App>>, path: Id, req: Request) -> Response {
    let id = match id(path) {
        Ok(id) => id,
        Err(resp) => return resp,
    };
    let Some(stream) = app.registry.stream(&id) else {
        return not_found(&id);
    };
    let wait = match wait_for(req.uri().query().unwrap_or("")) {
        Ok(wait) => wait,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    let Some(timeout) = wait else {
        return stream.latest().as_ref().map_or_else(no_content, document);
    };
    let mut latest = stream.watch();
    latest.borrow_and_update();
    match tokio::time::timeout(timeout, latest.changed()).await {
        Ok(Ok(())) => latest
            .borrow_and_update()
            .as_ref()
            .map_or_else(no_content, document),
        Ok(Err(_)) => error(
            StatusCode::GONE,
            &format!(
                "stream '{id}' is over ({}): no document will come; GET /streams/{id}/results \
                 without wait has its last one",
                serde_json::to_value(stream.status().state)
                    .ok()
                    .and_then(|s| s.as_str().map(str::to_string))
                    .unwrap_or_default()
            ),
        ),
        Err(_) => no_content(),
    }
}

/// `GET /streams/{id}/events`: the documents from now on as server-sent events.
pub async fn events(State(app): State<Arc<App>>, path: Id) -> Response {
    let id = match id(path) {
        Ok(id) => id,
        Err(resp) => return resp,
    };
    let Some(stream) = app.registry.stream(&id) else {
        return not_found(&id);
    };
    let subscription = stream.subscribe();
    let end = move || serde_json::to_string(&StreamInfo::of(&stream)).unwrap_or_default();
    Sse::new(event_stream(subscription, KEEP_ALIVE, end)).into_response()
}

/// The events of a subscription: each document (`id:` its seq, `data:` the document), `lagged`
/// with `{"missed": n}` when the client fell more than the backlog behind, then `end` with
/// `end()` (the stream as it ended) once the stream is over; a `: keep-alive` comment after
/// `keep_alive` without anything to send.
fn event_stream<F>(
    subscription: broadcast::Receiver<Document>,
    keep_alive: Duration,
    end: F,
) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static
where
    F: FnOnce() -> String + Send + 'static,
{
    futures_util::stream::unfold(Some((subscription, end)), move |state| async move {
        let (mut subscription, end) = state?;
        let event = match tokio::time::timeout(keep_alive, subscription.recv()).await {
            Err(_) => Event::default().comment("keep-alive"),
            Ok(Ok(doc)) => Event::default().id(doc.seq.to_string()).data(&*doc.json),
            Ok(Err(RecvError::Lagged(missed))) => Event::default()
                .event("lagged")
                .data(json!({ "missed": missed }).to_string()),
            Ok(Err(RecvError::Closed)) => {
                return Some((Ok(Event::default().event("end").data(end())), None));
            }
        };
        Some((Ok(event), Some((subscription, end))))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::streams::results::{Hub, SUBSCRIBER_BACKLOG};
    use http_body_util::BodyExt;

    fn doc(seq: u64) -> Document {
        Document {
            seq,
            pts_ns: Some(seq * 40_000_000),
            json: Arc::from(format!(r#"{{"inferences":[{{"n":{seq}}}]}}"#)),
        }
    }

    /// The whole event stream as a client reads it.
    async fn text(hub: &Hub, keep_alive: Duration, publish: impl FnOnce(&Hub)) -> String {
        let events = event_stream(hub.subscribe(), keep_alive, || {
            r#"{"state":"finished"}"#.into()
        });
        publish(hub);
        let body = Sse::new(events).into_response().into_body();
        let bytes = body.collect().await.expect("the events").to_bytes();
        String::from_utf8(bytes.to_vec()).expect("UTF-8")
    }

    #[tokio::test]
    async fn documents_then_the_end_as_server_sent_events() {
        let hub = Hub::default();
        let text = text(&hub, KEEP_ALIVE, |hub| {
            hub.publish(doc(0));
            hub.publish(doc(1));
            hub.close();
        })
        .await;
        assert_eq!(
            text,
            "id: 0\ndata: {\"inferences\":[{\"n\":0}]}\n\n\
             id: 1\ndata: {\"inferences\":[{\"n\":1}]}\n\n\
             event: end\ndata: {\"state\":\"finished\"}\n\n"
        );
    }

    #[tokio::test]
    async fn a_client_that_fell_behind_learns_how_many_it_missed() {
        let hub = Hub::default();
        let over = 7;
        let text = text(&hub, KEEP_ALIVE, |hub| {
            for seq in 0..SUBSCRIBER_BACKLOG as u64 + over {
                hub.publish(doc(seq));
            }
            hub.close();
        })
        .await;
        assert!(
            text.starts_with(&format!(
                "event: lagged\ndata: {{\"missed\":{over}}}\n\nid: {over}\n"
            )),
            "{}",
            &text[..200]
        );
        assert!(text.ends_with("event: end\ndata: {\"state\":\"finished\"}\n\n"));
    }

    #[tokio::test]
    async fn a_quiet_stream_sends_keep_alive_comments() {
        let hub = Arc::new(Hub::default());
        let later = hub.clone();
        let publisher = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            later.publish(doc(0));
            later.close();
        });
        let text = text(&hub, Duration::from_millis(50), |_| {}).await;
        publisher.await.expect("the publisher");
        assert!(
            text.starts_with(": keep-alive\n\n: keep-alive\n\n"),
            "{text}"
        );
        assert!(text.ends_with("id: 0\ndata: {\"inferences\":[{\"n\":0}]}\n\nevent: end\ndata: {\"state\":\"finished\"}\n\n"), "{text}");
    }

    #[test]
    fn wait_and_its_timeout_are_read_from_the_query() {
        assert_eq!(wait_for(""), Ok(None));
        assert_eq!(wait_for("wait=false&timeout-ms=5"), Ok(None));
        assert_eq!(
            wait_for("wait=true"),
            Ok(Some(Duration::from_millis(DEFAULT_WAIT_MS)))
        );
        assert_eq!(
            wait_for("timeout-ms=250&wait=1"),
            Ok(Some(Duration::from_millis(250)))
        );
        assert!(wait_for("wait=yes").unwrap_err().contains("wait=true"));
        assert!(wait_for("wait=true&timeout-ms=-1").is_err());
        assert!(wait_for("wait=true&timeout-ms=600001").is_err());
    }
}
