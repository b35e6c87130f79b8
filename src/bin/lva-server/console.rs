//! The web console (docs/console.md): a page that lists the models and streams, creates and
//! deletes streams, plays a stream's HLS video beside its documents and tries an image on a
//! model. Its files are plain HTML, JavaScript and CSS, embedded in the binary:
//!
//! - `GET /` with `Accept: text/html` (a browser), and `GET /console` → the page;
//! - `GET /console/{file}` → `index.html` (the page), `console.js`, `console.css`, `hls.min.js` (hls.js as
//!   `scripts/setup.sh` installed it, or, without it, a stand-in that says how to get it).
//!
//! The files hold no data and need no credentials; every API call the page makes does.

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;

use crate::reply::error;

const INDEX: &str = include_str!("console/index.html");
const SCRIPT: &str = include_str!("console/console.js");
const STYLE: &str = include_str!("console/console.css");
/// hls.js, or the stand-in `build.rs` wrote without it.
const HLS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/hls.min.js"));

const HTML: &str = "text/html; charset=utf-8";

/// The files under `/console/`, with their content types.
const FILES: [(&str, &str, &[u8]); 4] = [
    ("index.html", HTML, INDEX.as_bytes()),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        SCRIPT.as_bytes(),
    ),
    ("console.css", "text/css; charset=utf-8", STYLE.as_bytes()),
    ("hls.min.js", "text/javascript; charset=utf-8", HLS),
];

/// What the page may load: its own files, the API, and hls.js's media and worker blobs.
const POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
                      img-src 'self' blob: data:; media-src 'self' blob:; worker-src 'self' blob:; \
                      connect-src 'self'; object-src 'none'; base-uri 'none'; \
                      frame-ancestors 'none'; form-action 'none'";

/// Whether the client asked for HTML: an `Accept` media range `text/html` (any case, with
/// parameters) not refused with `q=0`. Browsers send it when they load a page; API clients
/// (curl's `*/*`, `application/json`, none) get the models as before.
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|range| {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("");
            let refused = parts.any(|p| {
                p.split_once('=').is_some_and(|(k, v)| {
                    k.trim().eq_ignore_ascii_case("q") && v.trim().parse::<f32>() == Ok(0.0)
                })
            });
            media.eq_ignore_ascii_case("text/html") && !refused
        })
}

/// Whether a request is for a console file, which needs no credentials: `GET`/`HEAD` of
/// `/console`, `/console/{file}` (one segment: a deeper path is no console route, and its 404
/// would name the models), or of `/` asking for HTML. The page holds no data; what it shows
/// comes from API calls made with credentials.
pub fn is_public(method: &Method, path: &str, headers: &HeaderMap) -> bool {
    let console_file = path
        .strip_prefix("/console/")
        .is_some_and(|file| !file.is_empty() && !file.contains('/'));
    (method == Method::GET || method == Method::HEAD)
        && (path == "/console" || console_file || (path == "/" && wants_html(headers)))
}

/// `GET /console`, and `GET /` from a browser: the page.
pub async fn page() -> Response {
    file_answer(HTML, INDEX.as_bytes())
}

/// `GET /console/{file}`.
pub async fn file(Path(name): Path<String>) -> Response {
    match FILES.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, body)) => file_answer(content_type, body),
        None => error(
            StatusCode::NOT_FOUND,
            &format!(
                "no console file '{name}': the console is at / (from a browser) and its files are /console/{}",
                FILES.map(|(n, _, _)| n).join(", /console/")
            ),
        ),
    }
}

fn file_answer(content_type: &'static str, body: &'static [u8]) -> Response {
    let mut resp = Response::new(body.into());
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Revalidated on every load: a new server's console is used at once.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if content_type == HTML {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(POLICY),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        // `/` answers JSON or HTML by `Accept`: caches must keep them apart.
        headers.insert(header::VARY, HeaderValue::from_static("Accept"));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn html_is_what_browsers_ask_for() {
        let chromium = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,\
                        image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7";
        assert!(wants_html(&accept(&[chromium])));
        assert!(wants_html(&accept(&[
            "application/json",
            " Text/HTML ; q=0.5"
        ])));
        assert!(!wants_html(&accept(&[])));
        assert!(!wants_html(&accept(&["*/*"])));
        assert!(!wants_html(&accept(&["application/json"])));
        assert!(!wants_html(&accept(&["text/html;q=0", "application/json"])));
        assert!(!wants_html(&accept(&["text/htmlx"])));
    }

    #[test]
    fn only_the_console_files_are_public() {
        let html = accept(&["text/html"]);
        let json = accept(&["application/json"]);
        assert!(is_public(&Method::GET, "/", &html));
        assert!(is_public(&Method::HEAD, "/", &html));
        assert!(is_public(&Method::GET, "/console", &json));
        assert!(is_public(&Method::GET, "/console/console.js", &json));
        assert!(!is_public(&Method::GET, "/", &json));
        assert!(!is_public(&Method::POST, "/", &html));
        assert!(!is_public(&Method::POST, "/console", &html));
        assert!(!is_public(&Method::GET, "/models", &html));
        assert!(!is_public(&Method::GET, "/consoles", &html));
        assert!(!is_public(&Method::GET, "/console/a/b", &html));
        assert!(!is_public(&Method::GET, "/console//", &html));
        assert!(!is_public(&Method::GET, "/streams", &html));
    }

    #[tokio::test]
    async fn files_have_their_types_and_unknown_ones_404() {
        for (name, content_type) in [
            ("console.js", "text/javascript; charset=utf-8"),
            ("console.css", "text/css; charset=utf-8"),
            ("hls.min.js", "text/javascript; charset=utf-8"),
        ] {
            let resp = file(Path(name.to_string())).await;
            assert_eq!(resp.status(), 200, "{name}");
            assert_eq!(resp.headers()[header::CONTENT_TYPE], content_type);
            assert_eq!(resp.headers()[header::CACHE_CONTROL], "no-cache");
        }
        let resp = page().await;
        assert_eq!(
            resp.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        assert!(resp.headers().contains_key(header::CONTENT_SECURITY_POLICY));
        assert_eq!(file(Path("../main.rs".into())).await.status(), 404);
        assert_eq!(file(Path("index.html".into())).await.status(), 200);
        assert_eq!(file(Path("console".into())).await.status(), 404);
    }
}
