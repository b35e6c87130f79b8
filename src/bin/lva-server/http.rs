//! A small HTTP/1.1 server side: request heads parsed with `httparse`, bodies by Content-Length or
//! chunked, `Expect: 100-continue`, keep-alive, and responses. No routing: see `service`.
//!
//! The server owns the connection loop so that it decides, per request and before reading a
//! byte of the body, whether to answer 401, 404, 413, 415 or 503.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::time::{Duration, Instant};

/// Longest request head accepted (request line and headers).
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
const MAX_HEADERS: usize = 64;

/// A parsed request line and headers.
#[derive(Debug, Clone, PartialEq)]
pub struct Head {
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query string without '?', or "".
    pub query: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// First value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the client wants the connection kept open after this request.
    pub fn keep_alive(&self) -> bool {
        let connection = self.header("connection").unwrap_or("").to_ascii_lowercase();
        let has = |token: &str| connection.split(',').any(|t| t.trim() == token);
        if self.minor_version == 0 {
            has("keep-alive")
        } else {
            !has("close")
        }
    }

    /// How the body is framed.
    pub fn body_framing(&self) -> Result<Framing, String> {
        if let Some(te) = self.header("transfer-encoding") {
            return if te.trim().eq_ignore_ascii_case("chunked") {
                Ok(Framing::Chunked)
            } else {
                Err(format!("unsupported Transfer-Encoding '{te}'"))
            };
        }
        match self.header("content-length") {
            None => Ok(Framing::Length(0)),
            Some(v) => v
                .trim()
                .parse()
                .map(Framing::Length)
                .map_err(|_| format!("invalid Content-Length '{v}'")),
        }
    }

    /// A query parameter, percent-decoded ('+' is a space).
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k) == name).then(|| percent_decode(v))
        })
    }
}

/// How a request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Length(u64),
    Chunked,
}

/// Why no request head could be read.
#[derive(Debug)]
pub enum HeadError {
    /// The client closed the connection between requests.
    Closed,
    /// Nothing arrived within one read timeout; call again to keep waiting.
    Idle,
    /// Not HTTP, or a head over `MAX_HEAD_BYTES`: answer 400 (or 431) and close.
    Bad(String),
    TooLarge,
    Io(io::Error),
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Reads one request head. The stream should have a short read timeout: when nothing at all has
/// arrived this returns `Idle`, so the caller can check for shutdown and idle limits; once a head
/// has started it waits up to `patience` for the rest.
pub fn read_head(r: &mut impl BufRead, patience: Duration) -> Result<Head, HeadError> {
    let mut buf = Vec::with_capacity(1024);
    let started = Instant::now();
    loop {
        match r.read_until(b'\n', &mut buf) {
            Ok(0) if buf.is_empty() => return Err(HeadError::Closed),
            Ok(0) => {
                return Err(HeadError::Bad(
                    "connection closed inside the request head".into(),
                ));
            }
            Ok(_) => {
                if buf.len() > MAX_HEAD_BYTES {
                    return Err(HeadError::TooLarge);
                }
                // Blank lines before a request line are allowed (RFC 9112 §2.2).
                if buf == b"\r\n" || buf == b"\n" {
                    buf.clear();
                    continue;
                }
                if buf.ends_with(b"\r\n\r\n") || buf.ends_with(b"\n\n") {
                    return parse_head(&buf);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if is_timeout(&e) => {
                if buf.is_empty() {
                    return Err(HeadError::Idle);
                }
                if started.elapsed() > patience {
                    return Err(HeadError::Io(e));
                }
            }
            Err(e) => return Err(HeadError::Io(e)),
        }
    }
}

fn parse_head(buf: &[u8]) -> Result<Head, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(HeadError::Bad("incomplete request".into())),
        Err(e) => return Err(HeadError::Bad(format!("malformed request: {e}"))),
    }
    let target = req.path.unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Ok(Head {
        method: req.method.unwrap_or("").to_string(),
        path: percent_decode(path),
        query: query.to_string(),
        minor_version: req.version.unwrap_or(1),
        headers: req
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect(),
    })
}

/// Decodes %XX escapes and '+'; invalid escapes are kept as they are.
pub fn percent_decode(s: &str) -> String {
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
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Why a body could not be read.
#[derive(Debug)]
pub enum BodyError {
    /// Over the limit: answer 413 and close.
    TooLarge,
    /// Broken chunked framing: answer 400 and close.
    Bad(String),
    Io(io::Error),
}

/// Reads the body announced by `head`, at most `max` bytes. Answers `Expect: 100-continue` first,
/// so clients that wait for it send the body. Read timeouts are retried until `patience` runs out.
pub fn read_body<S: Read + Write>(
    r: &mut BufReader<S>,
    head: &Head,
    max: u64,
    patience: Duration,
) -> Result<Vec<u8>, BodyError> {
    let framing = head.body_framing().map_err(BodyError::Bad)?;
    if let Framing::Length(n) = framing
        && n > max
    {
        return Err(BodyError::TooLarge);
    }
    if head
        .header("expect")
        .is_some_and(|e| e.trim().eq_ignore_ascii_case("100-continue"))
        && head.minor_version >= 1
    {
        let w = r.get_mut();
        w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .and_then(|_| w.flush())
            .map_err(BodyError::Io)?;
    }
    let deadline = Instant::now() + patience;
    let mut reader = Patient { inner: r, deadline };
    match framing {
        Framing::Length(n) => {
            let mut body = vec![0; n as usize];
            reader.read_exact(&mut body).map_err(BodyError::Io)?;
            Ok(body)
        }
        Framing::Chunked => read_chunked(&mut reader, max),
    }
}

/// Retries reads that time out until a deadline.
struct Patient<'a, R> {
    inner: &'a mut R,
    deadline: Instant,
}

impl<R: BufRead> Patient<'_, R> {
    fn retry<T>(&mut self, mut f: impl FnMut(&mut R) -> io::Result<T>) -> io::Result<T> {
        loop {
            match f(self.inner) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) && Instant::now() < self.deadline => {}
                other => return other,
            }
        }
    }

    fn read_exact(&mut self, mut buf: &mut [u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = self.retry(|r| r.read(buf))?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            buf = &mut buf[n..];
        }
        Ok(())
    }

    fn read_line(&mut self, limit: usize) -> Result<Vec<u8>, BodyError> {
        let mut line = Vec::new();
        loop {
            let available = self.retry(|r| r.fill_buf().map(|b| b.to_vec()));
            let available = available.map_err(BodyError::Io)?;
            if available.is_empty() {
                return Err(BodyError::Io(io::ErrorKind::UnexpectedEof.into()));
            }
            let end = available.iter().position(|&b| b == b'\n');
            let take = end.map_or(available.len(), |i| i + 1);
            line.extend_from_slice(&available[..take]);
            self.inner.consume(take);
            if line.len() > limit {
                return Err(BodyError::Bad("chunk header line too long".into()));
            }
            if end.is_some() {
                return Ok(line);
            }
        }
    }
}

fn read_chunked<R: BufRead>(r: &mut Patient<'_, R>, max: u64) -> Result<Vec<u8>, BodyError> {
    let mut body = Vec::new();
    loop {
        let line = r.read_line(1024)?;
        let text = String::from_utf8_lossy(&line);
        let size_text = text.trim().split(';').next().unwrap_or("").trim();
        let size = u64::from_str_radix(size_text, 16)
            .map_err(|_| BodyError::Bad(format!("invalid chunk size '{size_text}'")))?;
        if size == 0 {
            // Trailer fields, up to the blank line.
            while r.read_line(MAX_HEAD_BYTES)?.len() > 2 {}
            return Ok(body);
        }
        if body.len() as u64 + size > max {
            return Err(BodyError::TooLarge);
        }
        let start = body.len();
        body.resize(start + size as usize, 0);
        r.read_exact(&mut body[start..]).map_err(BodyError::Io)?;
        let crlf = r.read_line(4)?;
        if crlf != b"\r\n" && crlf != b"\n" {
            return Err(BodyError::Bad("chunk not followed by CRLF".into()));
        }
    }
}

/// A response to write.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn json(status: u16, body: Vec<u8>) -> Response {
        Response::new(status)
            .with_header("Content-Type", "application/json")
            .with_body(body)
    }

    /// `{"error": message}` with `status`.
    pub fn error(status: u16, message: &str) -> Response {
        let body = serde_json::json!({ "error": message }).to_string();
        Response::json(status, body.into_bytes())
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    pub fn with_body(mut self, body: Vec<u8>) -> Response {
        self.body = body;
        self
    }
}

pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// Serialises a response. 204 and HEAD responses carry no body (and 204 no Content-Length).
pub fn encode(resp: &Response, keep_alive: bool, head_only: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + resp.body.len());
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\nServer: lva-server/{}\r\nDate: {}\r\n",
        resp.status,
        reason(resp.status),
        env!("CARGO_PKG_VERSION"),
        httpdate::fmt_http_date(std::time::SystemTime::now())
    );
    for (name, value) in &resp.headers {
        let _ = write!(out, "{name}: {value}\r\n");
    }
    if resp.status != 204 {
        let _ = write!(out, "Content-Length: {}\r\n", resp.body.len());
    }
    if !keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if resp.status != 204 && !head_only {
        out.extend_from_slice(&resp.body);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Head {
        read_head(&mut BufReader::new(text.as_bytes()), Duration::from_secs(1)).unwrap()
    }

    #[test]
    fn parses_request_line_headers_and_query() {
        let h = head(
            "POST /vehicle%20detection?threshold=0.7&x=a+b HTTP/1.1\r\nHost: localhost\r\n\
             Content-Type: image/jpeg\r\nx-ms-client-request-id: abc\r\n\r\n",
        );
        assert_eq!(h.method, "POST");
        assert_eq!(h.path, "/vehicle detection");
        assert_eq!(h.query_param("threshold").as_deref(), Some("0.7"));
        assert_eq!(h.query_param("x").as_deref(), Some("a b"));
        assert_eq!(h.query_param("y"), None);
        assert_eq!(h.header("CONTENT-TYPE"), Some("image/jpeg"));
        assert_eq!(h.header("X-MS-Client-Request-Id"), Some("abc"));
        assert!(h.keep_alive());
        assert_eq!(h.body_framing(), Ok(Framing::Length(0)));
    }

    #[test]
    fn keep_alive_follows_version_and_connection_header() {
        assert!(!head("GET / HTTP/1.0\r\n\r\n").keep_alive());
        assert!(head("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive());
        assert!(!head("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").keep_alive());
    }

    #[test]
    fn rejects_garbage_closed_and_oversized_heads() {
        let read = |bytes: &[u8]| read_head(&mut BufReader::new(bytes), Duration::from_secs(1));
        assert!(matches!(read(b""), Err(HeadError::Closed)));
        assert!(matches!(
            read(b"\x16\x03\x01 hello\r\n\r\n"),
            Err(HeadError::Bad(_))
        ));
        assert!(matches!(
            read(b"GET / HTTP/1.1\r\nHost"),
            Err(HeadError::Bad(_))
        ));
        let big = format!(
            "GET / HTTP/1.1\r\nX: {}\r\n\r\n",
            "a".repeat(MAX_HEAD_BYTES)
        );
        assert!(matches!(read(big.as_bytes()), Err(HeadError::TooLarge)));
    }

    /// A connection: what the client sent, and what the server wrote back.
    struct Duplex {
        input: io::Cursor<Vec<u8>>,
        output: Vec<u8>,
    }

    impl Read for Duplex {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.input.read(buf)
        }
    }

    impl Write for Duplex {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.output.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn body(text: &str, max: u64) -> (Result<Vec<u8>, BodyError>, Vec<u8>) {
        let mut r = BufReader::new(Duplex {
            input: io::Cursor::new(text.as_bytes().to_vec()),
            output: Vec::new(),
        });
        let h = read_head(&mut r, Duration::from_secs(1)).unwrap();
        let b = read_body(&mut r, &h, max, Duration::from_secs(1));
        (b, r.into_inner().output)
    }

    #[test]
    fn reads_length_and_chunked_bodies() {
        let (b, w) = body("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloNEXT", 10);
        assert_eq!(b.unwrap(), b"hello");
        assert!(w.is_empty());
        let (b, _) = body(
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n",
            100,
        );
        assert_eq!(b.unwrap(), b"hello world");
    }

    #[test]
    fn answers_expect_continue_and_enforces_the_limit() {
        let (b, w) = body(
            "POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
            10,
        );
        assert_eq!(b.unwrap(), b"hi");
        assert_eq!(w, b"HTTP/1.1 100 Continue\r\n\r\n");
        // Over the limit by Content-Length: refused before 100 Continue, nothing read.
        let (b, w) = body(
            "POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\nhello world",
            10,
        );
        assert!(matches!(b, Err(BodyError::TooLarge)));
        assert!(w.is_empty());
        let (b, _) = body(
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n",
            10,
        );
        assert!(matches!(b, Err(BodyError::TooLarge)));
    }

    #[test]
    fn rejects_broken_framing() {
        let (b, _) = body("POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n", 10);
        assert!(matches!(b, Err(BodyError::Bad(_))));
        let (b, _) = body("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 10);
        assert!(matches!(b, Err(BodyError::Bad(_))));
        let (b, _) = body(
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            10,
        );
        assert!(matches!(b, Err(BodyError::Bad(_))));
        let (b, _) = body("POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\nshort", 10);
        assert!(matches!(b, Err(BodyError::Io(_))));
    }

    #[test]
    fn encodes_responses() {
        let r = Response::json(200, b"{}".to_vec()).with_header("x-ms-client-request-id", "id1");
        let text = String::from_utf8(encode(&r, true, false)).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(text.contains("\r\nContent-Type: application/json\r\n"));
        assert!(text.contains("\r\nx-ms-client-request-id: id1\r\n"));
        assert!(text.ends_with("\r\nContent-Length: 2\r\n\r\n{}"));
        let text = String::from_utf8(encode(&Response::new(204), false, false)).unwrap();
        assert!(text.starts_with("HTTP/1.1 204 No Content\r\n"));
        assert!(!text.contains("Content-Length"));
        assert!(text.ends_with("Connection: close\r\n\r\n"));
        let e = Response::error(400, "bad \"image\"");
        assert_eq!(e.body, br#"{"error":"bad \"image\""}"#);
    }

    #[test]
    fn percent_decoding_keeps_invalid_escapes() {
        assert_eq!(percent_decode("a%2Fb%zz%4"), "a/b%zz%4");
        assert_eq!(percent_decode("%E2%82%AC"), "€");
    }
}

/// Property tests of the request parsing (`cargo test`; fuzzing of the same code: fuzz/).
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

    /// A duplex stream over bytes, the writes kept.
    struct Conn(io::Cursor<Vec<u8>>, Vec<u8>);
    impl Read for Conn {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.0.read(buf)
        }
    }
    impl Write for Conn {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.1.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    proptest! {
        #[test]
        fn percent_decoding_inverts_encoding_and_never_grows(s in text(), raw in text()) {
            prop_assert_eq!(percent_decode(&encode(&s)), s);
            prop_assert!(percent_decode(&raw).len() <= raw.len());
        }

        #[test]
        fn query_params_come_back_decoded(
            pairs in proptest::collection::vec((token(), text()), 1..6),
            extra in proptest::collection::vec(token(), 0..3),
        ) {
            let mut query: Vec<String> =
                pairs.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
            query.extend(extra.iter().map(|k| format!("zz{k}")));
            let head = Head {
                method: "POST".into(),
                path: "/".into(),
                query: query.join("&"),
                minor_version: 1,
                headers: vec![],
            };
            for (k, _) in &pairs {
                // The first pair with that name wins.
                let first = pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                prop_assert_eq!(head.query_param(k), first);
            }
            prop_assert_eq!(head.query_param("not-a-token-here"), None);
        }

        #[test]
        fn heads_and_bodies_read_back_in_both_framings(
            method in prop::sample::select(vec!["GET", "POST", "PUT", "HEAD"]),
            path in token(), query in token(),
            headers in proptest::collection::vec((token(), token()), 0..5),
            body in proptest::collection::vec(any::<u8>(), 0..300),
            chunks in proptest::collection::vec(1usize..64, 1..8),
            chunked in any::<bool>(), http10 in any::<bool>(),
        ) {
            let headers: Vec<(String, String)> = headers
                .into_iter()
                .filter(|(n, _)| {
                    !["content-length", "transfer-encoding", "expect", "connection"]
                        .contains(&n.to_ascii_lowercase().as_str())
                })
                .collect();
            let mut req = format!(
                "{method} /{path}?{query} HTTP/1.{}\r\n",
                if http10 { 0 } else { 1 }
            );
            for (n, v) in &headers {
                req.push_str(&format!("{n}: {v}\r\n"));
            }
            let mut bytes = req.into_bytes();
            if chunked {
                bytes.extend(b"Transfer-Encoding: chunked\r\n\r\n");
                let mut rest = &body[..];
                for size in chunks.iter().cycle() {
                    if rest.is_empty() {
                        break;
                    }
                    let (chunk, tail) = rest.split_at((*size).min(rest.len()));
                    bytes.extend(format!("{:x}\r\n", chunk.len()).as_bytes());
                    bytes.extend(chunk);
                    bytes.extend(b"\r\n");
                    rest = tail;
                }
                bytes.extend(b"0\r\n\r\n");
            } else {
                bytes.extend(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
                bytes.extend(&body);
            }
            let mut r = BufReader::new(Conn(io::Cursor::new(bytes), Vec::new()));
            let head = read_head(&mut r, Duration::from_millis(10)).expect("a head");
            prop_assert_eq!(&head.method, method);
            prop_assert_eq!(&head.path, &format!("/{path}"));
            prop_assert_eq!(&head.query, &query);
            prop_assert_eq!(head.minor_version, if http10 { 0 } else { 1 });
            for (n, _) in &headers {
                let first = headers.iter().find(|(m, _)| m.eq_ignore_ascii_case(n));
                prop_assert_eq!(head.header(n), first.map(|(_, v)| v.as_str()));
            }
            prop_assert_eq!(head.keep_alive(), !http10);
            let read = read_body(&mut r, &head, 300, Duration::from_millis(10));
            prop_assert_eq!(read.expect("the body"), body);
        }
    }
}
