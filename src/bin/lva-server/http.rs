//! What the server still reads of a request itself, on top of hyper: query parameters,
//! percent-decoding and the body framing hyper has checked.

use http::{HeaderMap, header};

/// Longest request head accepted (request line and headers); hyper answers 431 above.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// How a request body is delimited, as hyper parsed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Length(u64),
    Chunked,
}

/// The framing of a request whose head hyper accepted: hyper has already refused invalid or
/// conflicting Content-Length values and Transfer-Encodings other than chunked.
pub fn framing(headers: &HeaderMap) -> Framing {
    if headers.contains_key(header::TRANSFER_ENCODING) {
        return Framing::Chunked;
    }
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    Framing::Length(length.unwrap_or(0))
}

/// Whether the request head at the start of `raw` has a Content-Length field: hyper drops it
/// when Transfer-Encoding is there too, which RFC 9112 §6.3 allows a server to refuse.
pub fn has_content_length(raw: &[u8]) -> bool {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(raw) {
        Ok(httparse::Status::Complete(_)) => req
            .headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case("content-length")),
        _ => false,
    }
}

/// A query parameter of `query` (without '?'), percent-decoded ('+' is a space); the first
/// one of that name wins.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k, true) == name).then(|| percent_decode(v, true))
    })
}

/// Decodes %XX escapes (and '+' as a space when `plus` is set, as in a query); invalid escapes
/// are kept as they are, invalid UTF-8 replaced.
pub fn percent_decode(s: &str, plus: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' if plus => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn reads_query_parameters() {
        let q = "threshold=0.7&x=a+b&x=second&e=%E2%82%AC";
        assert_eq!(query_param(q, "threshold").as_deref(), Some("0.7"));
        assert_eq!(query_param(q, "x").as_deref(), Some("a b"));
        assert_eq!(query_param(q, "e").as_deref(), Some("€"));
        assert_eq!(query_param(q, "y"), None);
        assert_eq!(query_param("flag", "flag").as_deref(), Some(""));
    }

    #[test]
    fn framing_follows_the_headers_hyper_kept() {
        let mut h = HeaderMap::new();
        assert_eq!(framing(&h), Framing::Length(0));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("12"));
        assert_eq!(framing(&h), Framing::Length(12));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        assert_eq!(framing(&h), Framing::Chunked);
    }

    #[test]
    fn finds_content_length_in_a_raw_head() {
        let head = |h: &str| format!("POST / HTTP/1.1\r\nHost: x\r\n{h}\r\nbody");
        assert!(has_content_length(
            head("Transfer-Encoding: chunked\r\ncontent-LENGTH: 5\r\n").as_bytes()
        ));
        assert!(!has_content_length(
            head("Transfer-Encoding: chunked\r\n").as_bytes()
        ));
        assert!(!has_content_length(
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\n"
        ));
        assert!(!has_content_length(b"\x16\x03 junk"));
    }

    #[test]
    fn percent_decoding_keeps_invalid_escapes() {
        assert_eq!(percent_decode("a%2Fb%zz%4", false), "a/b%zz%4");
        assert_eq!(percent_decode("%E2%82%AC+", false), "€+");
        assert_eq!(percent_decode("%E2%82%AC+", true), "€ ");
    }
}

/// Property tests of the query parsing (`cargo test`; fuzzing of the same code: fuzz/).
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    fn text() -> impl Strategy<Value = String> {
        proptest::collection::vec(any::<char>(), 0..12).prop_map(|c| c.into_iter().collect())
    }

    fn token() -> impl Strategy<Value = String> {
        proptest::collection::vec(prop::sample::select(b"abcxyzXYZ019-_.!~".to_vec()), 1..10)
            .prop_map(|b| String::from_utf8(b).unwrap())
    }

    fn encode(s: &str) -> String {
        s.bytes().map(|b| format!("%{b:02X}")).collect()
    }

    proptest! {
        #[test]
        fn percent_decoding_inverts_encoding_and_never_grows(s in text(), raw in text()) {
            prop_assert_eq!(percent_decode(&encode(&s), true), s);
            prop_assert!(percent_decode(&raw, true).len() <= raw.len());
        }

        #[test]
        fn query_params_come_back_decoded(
            pairs in proptest::collection::vec((token(), text()), 1..6),
            extra in proptest::collection::vec(token(), 0..3),
        ) {
            let mut query: Vec<String> =
                pairs.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
            query.extend(extra.iter().map(|k| format!("zz{k}")));
            let query = query.join("&");
            for (k, _) in &pairs {
                // The first pair with that name wins.
                let first = pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                prop_assert_eq!(query_param(&query, k), first);
            }
            prop_assert_eq!(query_param(&query, "not-a-token-here"), None);
        }
    }
}
