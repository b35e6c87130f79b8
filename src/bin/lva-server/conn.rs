//! One client connection: hyper's HTTP/1.1 on a TCP or TLS stream, plus what hyper leaves to
//! its user: the idle keep-alive timeout, a whole-head timeout counted from the head's first
//! byte (hyper's own would also cut idle keep-alive connections), a timeout on answers the
//! client does not read, and a lingering close.
//!
//! A request is in flight from its head to its answer's last byte: a long answer (the
//! server-sent events of `/streams/{id}/events`, open for hours) is never an idle connection,
//! and only the answer timeout ends it, when the client stops reading.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::header::TRANSFER_ENCODING;
use axum::http::{Request, Response};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::watch;
use tower::ServiceExt;

use crate::http::{self, MAX_HEAD_BYTES};
use crate::routes::Routes;

/// The client's address, in every request's extensions.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// In the extensions of a request whose head had both Content-Length and Transfer-Encoding
/// (hyper drops the Content-Length and reads the body as chunked; we refuse it).
#[derive(Debug, Clone, Copy)]
pub struct FramingConflict;

/// The connection timeouts.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Between requests, with nothing received.
    pub idle: Duration,
    /// From a head's first byte to its end.
    pub header: Duration,
    /// An answer the client does not take.
    pub write: Duration,
}

/// What the connection is doing, kept by its stream and its service, read by its watchdog.
struct State {
    /// Requests handed to the router whose answer is not written whole yet.
    requests: usize,
    idle_since: Instant,
    /// When the first byte of the next head came, while no request was in flight.
    head_since: Option<Instant>,
    /// Since when a write has been waiting for the client to read.
    write_stalled_since: Option<Instant>,
    /// The bytes read since the last request started (its head first), up to MAX_HEAD_BYTES.
    head: Vec<u8>,
}

#[derive(Clone)]
struct Activity(Arc<Mutex<State>>);

/// Why the watchdog ends a connection.
enum Verdict {
    Fine,
    /// Idle longer than allowed: close it between requests.
    Idle,
    /// Drop it now.
    Expired(&'static str),
}

impl Activity {
    fn new() -> Activity {
        Activity(Arc::new(Mutex::new(State {
            requests: 0,
            idle_since: Instant::now(),
            head_since: None,
            write_stalled_since: None,
            head: Vec::new(),
        })))
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn read(&self, bytes: &[u8]) {
        self.with(|s| {
            if s.requests == 0 {
                s.head_since.get_or_insert_with(Instant::now);
                let room = MAX_HEAD_BYTES.saturating_sub(s.head.len());
                s.head.extend_from_slice(&bytes[..bytes.len().min(room)]);
            }
        });
    }

    fn wrote(&self, stalled: bool) {
        self.with(|s| match (stalled, s.write_stalled_since) {
            (true, None) => s.write_stalled_since = Some(Instant::now()),
            (false, Some(_)) => s.write_stalled_since = None,
            _ => {}
        });
    }

    /// A request is in: the bytes its head came in, and a guard that marks it answered when
    /// dropped.
    fn request(&self) -> (Vec<u8>, InFlight) {
        let head = self.with(|s| {
            s.requests += 1;
            s.head_since = None;
            std::mem::take(&mut s.head)
        });
        (head, InFlight(self.clone()))
    }

    fn verdict(&self, limits: &Limits) -> Verdict {
        let now = Instant::now();
        self.with(|s| {
            if s.write_stalled_since
                .is_some_and(|t| now - t >= limits.write)
            {
                return Verdict::Expired(
                    "the client did not read the answer within body-timeout-ms",
                );
            }
            if s.requests > 0 {
                return Verdict::Fine;
            }
            match s.head_since {
                Some(t) if now - t >= limits.header => {
                    Verdict::Expired("the request head did not arrive within header-timeout-ms")
                }
                Some(_) => Verdict::Fine,
                None if now - s.idle_since >= limits.idle => Verdict::Idle,
                None => Verdict::Fine,
            }
        })
    }
}

/// A request in flight: its answer's body holds it until the last byte is handed to hyper.
struct InFlight(Activity);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.with(|s| {
            s.requests -= 1;
            s.idle_since = Instant::now();
        });
    }
}

/// A stream that reports its reads and stalled writes to the connection's `Activity`.
struct Tracked<S> {
    inner: S,
    activity: Activity,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(poll, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read(&buf.filled()[before..]);
        }
        poll
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.activity.wrote(poll.is_pending());
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.activity.wrote(poll.is_pending());
        poll
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.activity.wrote(poll.is_pending());
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// An answer's body with its request's [`InFlight`]: dropped by hyper once written whole (or
/// when the connection ends).
struct Answer {
    body: Body,
    _in_flight: InFlight,
}

impl hyper::body::Body for Answer {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The router as hyper calls it for one connection: the peer's address added, the request
/// counted in flight until its answer is written. Its future is boxed, as hyper needs it
/// `Unpin` to hand the stream back for the lingering close.
struct ConnService {
    router: Routes,
    peer: Peer,
    activity: Activity,
}

type BoxFuture =
    Pin<Box<dyn Future<Output = Result<Response<Body>, std::convert::Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response<Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        req.extensions_mut().insert(self.peer);
        let (head, in_flight) = self.activity.request();
        // Only a head read alone is seen whole here (not one pipelined behind a request in
        // flight); hyper closes the connection after such a request in any case.
        if req.headers().contains_key(TRANSFER_ENCODING) && http::has_content_length(&head) {
            req.extensions_mut().insert(FramingConflict);
        }
        let router = self.router.clone();
        Box::pin(async move {
            let resp = router.oneshot(req.map(Body::new)).await;
            resp.map(|resp| {
                resp.map(|body| {
                    Body::new(Answer {
                        body,
                        _in_flight: in_flight,
                    })
                })
            })
        })
    }
}

/// Serves one connection until the client leaves, a timeout ends it, or `shutdown` turns true
/// and its request in flight is answered.
pub async fn serve<S>(
    stream: S,
    peer: SocketAddr,
    router: Routes,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Activity::new();
    let io = Tracked {
        inner: stream,
        activity: activity.clone(),
    };
    let service = ConnService {
        router,
        peer: Peer(peer),
        activity: activity.clone(),
    };
    let mut conn = hyper::server::conn::http1::Builder::new()
        // A head over this is refused with 431 as it arrives, never buffered whole.
        .max_buf_size(MAX_HEAD_BYTES)
        // A client that half-closes after its body still gets the answer.
        .half_close(true)
        .title_case_headers(true)
        // The head timeout is the watchdog's (from the head's first byte).
        .header_read_timeout(None)
        .serve_connection(TokioIo::new(io), service);
    let tick = (limits.idle.min(limits.header).min(limits.write) / 4)
        .clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut watchdog = tokio::time::interval(tick);
    let mut stopping = false;
    loop {
        tokio::select! {
            // Also after hyper's own 400 or 431 to a malformed head: linger below.
            _ = std::future::poll_fn(|cx| conn.poll_without_shutdown(cx)) => break,
            _ = shutdown.wait_for(|stop| *stop), if !stopping => {
                stopping = true;
                Pin::new(&mut conn).graceful_shutdown();
            }
            _ = watchdog.tick() => match activity.verdict(&limits) {
                Verdict::Fine => {}
                Verdict::Idle => Pin::new(&mut conn).graceful_shutdown(),
                Verdict::Expired(why) => {
                    eprintln!("lva-server: {peer}: closing: {why}");
                    return;
                }
            },
        }
    }
    linger(conn.into_parts().io.into_inner().inner).await;
}

/// Closes our side, then reads and drops what the client still sends for a while: closing
/// with unread data would reset the connection before a client that is still uploading (after
/// a 401, 413 or 503 decided from the head) reads the answer.
async fn linger<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) {
    const MAX: usize = 64 * 1024 * 1024;
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.shutdown()).await;
    let drain = async {
        let mut buf = vec![0u8; 16 * 1024];
        let mut drained = 0;
        while drained < MAX {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => drained += n,
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        idle: Duration::from_secs(60),
        header: Duration::from_secs(10),
        write: Duration::from_secs(30),
    };

    fn ago(secs: u64) -> Instant {
        Instant::now() - Duration::from_secs(secs)
    }

    #[test]
    fn idle_connections_close_at_the_idle_timeout_only() {
        let a = Activity::new();
        assert!(matches!(a.verdict(&LIMITS), Verdict::Fine));
        a.with(|s| s.idle_since = ago(61));
        assert!(matches!(a.verdict(&LIMITS), Verdict::Idle));
        // A request in flight (until its answer's last byte) is never idle, however long it
        // takes.
        let (_, in_flight) = a.request();
        assert!(matches!(a.verdict(&LIMITS), Verdict::Fine));
        drop(in_flight);
        assert!(
            matches!(a.verdict(&LIMITS), Verdict::Fine),
            "idle again from now"
        );
    }

    #[test]
    fn a_head_must_arrive_within_the_header_timeout_from_its_first_byte() {
        let a = Activity::new();
        a.read(b"POST / HT");
        assert!(matches!(a.verdict(&LIMITS), Verdict::Fine));
        a.with(|s| s.head_since = Some(ago(11)));
        assert!(matches!(a.verdict(&LIMITS), Verdict::Expired(_)));
        // The head's bytes go to the request that starts, and the clock stops.
        let (head, _in_flight) = a.request();
        assert_eq!(head, b"POST / HT");
        assert!(matches!(a.verdict(&LIMITS), Verdict::Fine));
        // Body bytes read while the request is in flight are not kept.
        a.read(b"body");
        assert!(a.with(|s| s.head.is_empty() && s.head_since.is_none()));
    }

    #[test]
    fn an_answer_the_client_does_not_take_expires() {
        let a = Activity::new();
        let (_, _in_flight) = a.request();
        a.wrote(true);
        assert!(matches!(a.verdict(&LIMITS), Verdict::Fine));
        a.with(|s| s.write_stalled_since = Some(ago(31)));
        assert!(matches!(a.verdict(&LIMITS), Verdict::Expired(_)));
        a.wrote(false);
        assert!(matches!(a.verdict(&LIMITS), Verdict::Fine));
    }

    #[test]
    fn an_answer_holds_its_request_in_flight_until_it_is_written() {
        let a = Activity::new();
        let (_, in_flight) = a.request();
        let answer = Answer {
            body: Body::from("data"),
            _in_flight: in_flight,
        };
        a.with(|s| s.idle_since = ago(61));
        assert!(matches!(a.verdict(&LIMITS), Verdict::Fine));
        drop(answer);
        assert!(a.with(|s| s.requests == 0));
    }

    const SHORT: Limits = Limits {
        idle: Duration::from_millis(100),
        header: Duration::from_millis(100),
        write: Duration::from_millis(100),
    };

    /// A server whose `GET /` answer is `chunks` pieces of `size` bytes, one every `every`
    /// (server-sent events, say), on one end of an in-memory connection of `buffer` bytes.
    fn serve_slow_answer(
        chunks: usize,
        size: usize,
        every: Duration,
        buffer: usize,
        limits: Limits,
    ) -> (tokio::io::DuplexStream, tokio::task::JoinHandle<()>) {
        let router = axum::Router::new().route(
            "/",
            axum::routing::get(move || async move {
                let pieces = futures_util::stream::unfold(0, move |n| async move {
                    if n == chunks {
                        return None;
                    }
                    tokio::time::sleep(every).await;
                    let piece = format!("{n:>size$}\n");
                    Some((Ok::<_, std::convert::Infallible>(piece), n + 1))
                });
                Body::from_stream(pieces)
            }),
        );
        let (client, server) = tokio::io::duplex(buffer);
        let peer = SocketAddr::from(([127, 0, 0, 1], 1));
        let (stop, shutdown) = watch::channel(false);
        let served = tokio::spawn(async move {
            // Held while serving: a dropped sender reads as a shutdown.
            let _stop = stop;
            let routes = tower_http::normalize_path::NormalizePath::trim_trailing_slash(router);
            serve(server, peer, routes, limits, shutdown).await;
        });
        (client, served)
    }

    #[tokio::test]
    async fn a_long_answer_to_a_client_that_reads_outlasts_every_timeout() {
        // Pauses of 2.5 s between pieces, each limit 1 s: the answer goes on. (Limits of a
        // second, not SHORT's 100 ms: on a loaded machine the head alone may wait that long.)
        let limits = Limits {
            idle: Duration::from_secs(1),
            header: Duration::from_secs(1),
            write: Duration::from_secs(1),
        };
        let (mut client, served) =
            serve_slow_answer(3, 8, Duration::from_millis(2500), 64 * 1024, limits);
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).await.unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(
            answer.contains("       2\n") && answer.ends_with("0\r\n\r\n"),
            "{answer}"
        );
        served.await.unwrap();
    }

    #[tokio::test]
    async fn a_long_answer_to_a_client_that_stops_reading_is_cut_at_the_answer_timeout() {
        // 10 s of answer, which the client never reads beyond 1 KiB of buffer.
        let t0 = Instant::now();
        let (mut client, served) =
            serve_slow_answer(1000, 1000, Duration::from_millis(10), 1024, SHORT);
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(5), served)
            .await
            .expect("the connection is closed")
            .unwrap();
        assert!(t0.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn the_kept_head_is_bounded() {
        let a = Activity::new();
        a.read(&vec![b'a'; MAX_HEAD_BYTES + 100]);
        a.read(b"more");
        assert_eq!(a.request().0.len(), MAX_HEAD_BYTES);
    }
}
