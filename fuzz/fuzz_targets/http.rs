//! What the server still reads of a request itself once hyper has parsed its head: the path
//! (percent-decoded into a model name), the query parameters, the body framing, Content-Type and
//! the Authorization header. The input is a raw request; httparse (hyper's parser) splits its
//! head, as hyper does before the server sees it.
#![no_main]

use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use ovlva_fuzz::auth::Authenticator;
use ovlva_fuzz::config::{Auth, BasicUser};
use ovlva_fuzz::http::{Framing, framing, percent_decode, query_param};
use ovlva_fuzz::image::Kind;

fuzz_target!(|data: &[u8]| {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    let Ok(httparse::Status::Complete(_)) = req.parse(data) else {
        return;
    };
    let target = req.path.unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    assert!(percent_decode(path, false).len() <= path.len());
    for name in ["width", "height", "format", "threshold"] {
        if let Some(value) = query_param(query, name) {
            assert!(value.len() <= query.len());
        }
    }
    let mut map = HeaderMap::new();
    for h in req.headers.iter() {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(h.name.as_bytes()),
            HeaderValue::from_bytes(h.value),
        ) {
            map.append(n, v);
        }
    }
    if let Framing::Length(n) = framing(&map) {
        assert!(n == 0 || map.contains_key(http::header::CONTENT_LENGTH));
    }
    if let Some(content_type) = map.get(CONTENT_TYPE) {
        let _ = Kind::from_content_type(&String::from_utf8_lossy(content_type.as_bytes()));
    }
    let auth = Authenticator::new(&Auth {
        basic: vec![BasicUser {
            user: "lva".into(),
            password: "s3cret".into(),
        }],
        bearer: vec!["token".into()],
    });
    let _ = auth.allows(map.get(AUTHORIZATION).and_then(|v| v.to_str().ok()));
    let _ = auth.challenge();
});
