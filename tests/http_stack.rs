//! The HTTP stack of `lva-server` against hostile clients, over real TCP on 127.0.0.1 with the
//! real binary (issue 20's battery): a panic or a malformed request never costs a connection
//! slot; slow heads and bodies are cut at their timeouts; an endless header line is refused
//! without being buffered; conflicting body framings are refused and the connection closed.
//! Each of these failed on the hand-written HTTP layer.
//!
//! To run them against another build of the server: `LVA_SERVER_BIN=path cargo test --test
//! http_stack`.

mod common;
#[allow(dead_code)]
#[path = "hostile/server.rs"]
mod server;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use serde_json::json;

use server::{Server, ssd};

fn connect(server: &Server) -> TcpStream {
    let s = TcpStream::connect(&server.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s
}

/// Every byte the server sends until it closes the connection (or 30 s pass).
fn read_all(s: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// What the server sends until `end` appears in it, or it closes the connection.
fn read_until(s: &mut TcpStream, end: &str) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    while !String::from_utf8_lossy(&got).contains(end) {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// The status of the first answer in `text`, 0 if there is none.
fn status(text: &str) -> u16 {
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|t| t.get(..3))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// How many answers `text` holds.
fn answers(text: &str) -> usize {
    text.matches("HTTP/1.1 ").count()
}

/// Sends `request`, optionally half-closes, and returns all the server sent back.
fn exchange(server: &Server, request: &[u8], half_close: bool) -> String {
    let mut s = connect(server);
    let _ = s.write_all(request);
    if half_close {
        let _ = s.shutdown(Shutdown::Write);
    }
    read_all(&mut s)
}

// ---------------------------------------------------------------------------------------------
// (a) No connection slot is ever lost.

#[test]
fn panics_bad_targets_and_endless_chunks_leak_no_connection_slot() {
    let server = Server::start(
        json!({"max-connections": 128, "models": {"ssd": ssd()}}),
        &[("LVA_SERVER_TEST_PANICS", "1")],
    );
    let bad_target =
        b"POST %C3%A9 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    // A first chunk, then a chunk size of 2^64 - 1: the old layer's sum overflowed and panicked.
    let endless_chunk = b"POST /ssd HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n\
        Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nFFFFFFFFFFFFFFFF\r\nsome bytes";
    let panic = |place: &str| {
        format!(
            "POST /ssd?panic={place} HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n\
             Content-Length: 5\r\nConnection: close\r\n\r\nhello"
        )
    };
    for i in 0..200 {
        let r = exchange(&server, bad_target, false);
        assert_eq!(status(&r), 400, "{i}: {r}");
        let r = exchange(&server, endless_chunk, true);
        assert_eq!(status(&r), 400, "{i}: {r}");
        assert!(r.contains("the body ended before"), "{i}: {r}");
        if i % 20 == 0 {
            for place in ["handler", "worker"] {
                let r = exchange(&server, panic(place).as_bytes(), false);
                assert_eq!(status(&r), 500, "{place}: {r}");
                assert!(r.contains("{\"error\":"), "{place}: {r}");
            }
        }
    }
    // Every slot is free: 127 idle connections and a 128th with a request fill the 128 exactly.
    // A slot goes back just after its connection closes, so the last few may still be on their
    // way: a 503 is tried again a little later.
    let idle: Vec<TcpStream> = (0..127).map(|_| connect(&server)).collect();
    let started = Instant::now();
    let (mut last, r) = loop {
        let mut s = connect(&server);
        let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        let r = read_until(&mut s, "{\"status\":\"ok\"}");
        if status(&r) != 503 || started.elapsed() > Duration::from_secs(3) {
            break (s, r);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status(&r), 200, "{r}\n{}", server.log_text());
    // ... and while they stay open, the 129th is over the limit: answered at once, before it
    // sends anything.
    let r = read_all(&mut connect(&server));
    assert_eq!(status(&r), 503, "{r}");
    assert!(r.contains("Retry-After: 1"), "{r}");
    let _ = last.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status(&read_until(&mut last, "ok")), 200);
    drop((idle, last));
    let log = server.log_text();
    assert!(log.contains("a request handler panicked"), "{log}");
    assert!(log.contains("inference panicked"), "{log}");
    // The pool got its places back after the worker panics (once the slots are back too).
    let started = Instant::now();
    let list = b"GET /models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let mut r = exchange(&server, list, false);
    while status(&r) == 503 && started.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(100));
        r = exchange(&server, list, false);
    }
    assert_eq!(status(&r), 200, "{r}");
    assert!(r.contains("\"in-flight\":0"), "{r}");
}

// ---------------------------------------------------------------------------------------------
// (b) Slowloris: heads and bodies trickled one byte every 150 ms.

/// Trickles `bytes` one every 150 ms until the server closes the connection; returns when it
/// closed (from the first byte) and what it sent.
fn trickle(s: &mut TcpStream, bytes: &[u8]) -> (Duration, String) {
    s.set_read_timeout(Some(Duration::from_millis(150)))
        .unwrap();
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let mut next = bytes.iter();
    while started.elapsed() < Duration::from_secs(20) {
        if let Some(b) = next.next()
            && s.write_all(&[*b]).is_err()
        {
            break;
        }
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    (
        started.elapsed(),
        String::from_utf8_lossy(&got).into_owned(),
    )
}

#[test]
fn slow_heads_and_bodies_are_cut_at_their_timeouts_and_idle_connections_at_theirs() {
    let server = Server::start(
        json!({
            "header-timeout-ms": 1000, "body-timeout-ms": 1500, "idle-timeout-ms": 2500,
            "models": {"ssd": ssd()}
        }),
        &[],
    );
    let head = b"POST /ssd HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n\
        Content-Length: 1000\r\n\r\n";
    // The head would take 13 s at this pace.
    let (closed, got) = trickle(&mut connect(&server), head);
    assert!(
        closed >= Duration::from_millis(900) && closed < Duration::from_millis(2500),
        "head: closed after {closed:?}"
    );
    assert!(got.is_empty(), "{got}");

    // The body (1000 bytes) would take 150 s.
    let mut s = connect(&server);
    s.write_all(head).unwrap();
    let (closed, got) = trickle(&mut s, &[b'x'; 1000]);
    assert_eq!(status(&got), 408, "{got}");
    assert!(got.contains("body-timeout-ms"), "{got}");
    // Answered at 1.5 s, then closed: at once, or after the lingering close of up to 2 s.
    assert!(
        closed >= Duration::from_millis(1400) && closed < Duration::from_millis(5000),
        "body: closed after {closed:?}"
    );

    // An idle keep-alive connection outlives the head timeout, and is closed at the idle one.
    let mut s = connect(&server);
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let started = Instant::now();
    let (closed, got) = trickle(&mut s, b"");
    assert_eq!((status(&got), answers(&got)), (200, 1), "{got}");
    assert!(
        closed >= Duration::from_millis(2300) && closed < Duration::from_millis(4000),
        "idle: closed after {:?}",
        started.elapsed()
    );
    let log = server.log_text();
    assert!(log.contains("header-timeout-ms"), "{log}");
}

// ---------------------------------------------------------------------------------------------
// (c) A header line without end.

#[test]
fn an_endless_header_line_is_refused_without_buffering_it() {
    let mut server = Server::start(json!({"models": {"ssd": ssd()}}), &[]);
    let before = server.rss_kb();
    let mut s = connect(&server);
    let writer = {
        let mut s = s.try_clone().unwrap();
        std::thread::spawn(move || {
            // 64 MB of one header line (of the 512 MB a client might announce).
            let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: ");
            let chunk = vec![b'a'; 64 * 1024];
            let mut sent = 0usize;
            while sent < 64 << 20 && s.write_all(&chunk).is_ok() {
                sent += chunk.len();
            }
            sent
        })
    };
    let mut peak = before;
    let sampler = Instant::now();
    while !writer.is_finished() && sampler.elapsed() < Duration::from_secs(30) {
        peak = peak.max(server.rss_kb());
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent = writer.join().unwrap();
    let r = read_all(&mut s);
    peak = peak.max(server.rss_kb());
    eprintln!("sent {} MB, RSS {before} -> peak {peak} kB", sent >> 20);
    assert_eq!(status(&r), 431, "{r}");
    assert!(
        peak < before + 64 * 1024,
        "RSS {before} -> {peak} kB while sending {sent} bytes of a header"
    );
    server.assert_alive();
    let r = exchange(
        &server,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        false,
    );
    assert_eq!(status(&r), 200, "{r}");
}

// ---------------------------------------------------------------------------------------------
// (d) Conflicting body framings (RFC 9112 §6.3): 400, and nothing after it is read.

#[test]
fn conflicting_or_signed_content_lengths_are_refused_and_the_connection_closed() {
    let server = Server::start(json!({"models": {"ssd": ssd()}}), &[]);
    // A second request pipelined after each: a server that read the first body by the wrong
    // framing would answer it (or one smuggled inside the body).
    let next = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let post = "POST /ssd HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n";
    let cases = [
        (
            "two different Content-Lengths",
            format!("{post}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!{next}"),
        ),
        (
            "Content-Length then Transfer-Encoding",
            format!(
                "{post}Content-Length: 38\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{next}"
            ),
        ),
        (
            "Transfer-Encoding then Content-Length",
            format!(
                "{post}Transfer-Encoding: chunked\r\nContent-Length: 38\r\n\r\n0\r\n\r\n{next}"
            ),
        ),
        (
            "a signed Content-Length",
            format!("{post}Content-Length: +5\r\n\r\nhello{next}"),
        ),
    ];
    for (what, request) in &cases {
        let r = exchange(&server, request.as_bytes(), false);
        assert_eq!((status(&r), answers(&r)), (400, 1), "{what}: {r}");
        assert!(r.contains("Connection: close"), "{what}: {r}");
    }
    let log = server.log_text();
    assert!(!log.contains(" 200 GET /healthz"), "{log}");
}

// ---------------------------------------------------------------------------------------------
// (e) The 503 of a busy model: decided from the head, held back busy-delay-ms (the overload
// figures are in benches/lva_server.rs).

#[test]
fn a_busy_model_answers_503_after_the_busy_delay_without_reading_the_body() {
    let mut model = ssd();
    model["max-queue"] = json!(0);
    let server = Server::start(json!({"busy-delay-ms": 300, "models": {"ssd": model}}), &[]);
    // The only worker's place is taken by a request whose body has not come yet.
    let mut holder = connect(&server);
    holder
        .write_all(
            b"POST /ssd HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n\
              Content-Length: 100000\r\n\r\n",
        )
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let r = exchange(
        &server,
        b"POST /ssd HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n\
          Content-Length: 100000\r\nExpect: 100-continue\r\n\r\n",
        false,
    );
    let took = started.elapsed();
    assert_eq!((status(&r), answers(&r)), (503, 1), "{r}");
    assert!(!r.contains("100 Continue"), "{r}");
    assert!(r.contains("Retry-After: 1"), "{r}");
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "{took:?}"
    );
    drop(holder);
}
