//! The server's answers: JSON documents and `{"error": ...}` bodies (with `"reasons"` when a
//! stream definition is refused).

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;

/// A JSON answer.
pub fn json(status: StatusCode, body: impl Into<Body>) -> Response {
    let mut resp = Response::new(body.into());
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// `{"error": message}` with `status`.
pub fn error(status: StatusCode, message: &str) -> Response {
    let mut resp = json(status, serde_json::json!({ "error": message }).to_string());
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        // RFC 9110's name, as the server always said (the http crate has RFC 7231's).
        resp.extensions_mut()
            .insert(hyper::ext::ReasonPhrase::from_static(b"Content Too Large"));
    }
    resp
}

/// `{"error": message, "reasons": [...]}` with `status`: every problem found, one per reason.
pub fn error_with_reasons(status: StatusCode, message: &str, reasons: &[String]) -> Response {
    json(
        status,
        serde_json::json!({ "error": message, "reasons": reasons }).to_string(),
    )
}

/// Adds a header whose value we made (numbers, our own text), dropped if it is not a valid
/// header value.
pub fn with_header(mut resp: Response, name: HeaderName, value: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, value);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_json() {
        let e = error(StatusCode::BAD_REQUEST, "bad \"image\"");
        assert_eq!(e.status(), 400);
        assert_eq!(e.headers()[header::CONTENT_TYPE], "application/json");
        let r = error_with_reasons(StatusCode::BAD_REQUEST, "bad", &["a".into(), "b".into()]);
        assert_eq!(r.status(), 400);
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
    }
}
