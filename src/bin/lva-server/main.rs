//! `lva-server`: the Live Video Analytics HTTP extension contract served by ovlva's elements.
//!
//! `POST /<model>` with a JPEG, PNG, BMP or raw image → `{"inferences":[...]}` (200), or 204 when
//! nothing is found. Configuration: docs/lva-server.md.

mod alloc;
mod auth;
mod config;
mod engine;
mod http;
mod image;
mod service;
mod streams;

use std::io::{BufReader, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

use config::{Args, Config};
use http::{BodyError, HeadError, Response};
use service::{Service, Step};

/// How often an idle connection looks at the shutdown flag.
const POLL: Duration = Duration::from_millis(200);
/// How long a started request head or body may take to arrive.
const PATIENCE: Duration = Duration::from_secs(30);

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// Open connections, so that shutdown can wait for them.
#[derive(Default)]
struct Connections {
    open: Mutex<usize>,
    closed: Condvar,
}

impl Connections {
    fn try_open(&self, max: usize) -> bool {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if *open >= max {
            return false;
        }
        *open += 1;
        true
    }

    fn close(&self) {
        *self.open.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        self.closed.notify_all();
    }

    /// The open slot of one connection, given back when dropped: also when its thread unwinds
    /// from a panic, so a panicking handler cannot leak slots until every client gets 503.
    fn slot(self: &Arc<Self>) -> Slot {
        Slot(self.clone())
    }

    #[cfg(test)]
    fn open_count(&self) -> usize {
        *self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until every connection is closed or `timeout` passes; returns those still open.
    fn wait_all(&self, timeout: Duration) -> usize {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let (open, _) = self
            .closed
            .wait_timeout_while(open, timeout, |n| *n > 0)
            .unwrap_or_else(|e| e.into_inner());
        *open
    }
}

struct Slot(Arc<Connections>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.close();
    }
}

struct Server {
    service: Service,
    config: Config,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: AtomicBool,
    connections: Arc<Connections>,
}

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("lva-server: {e}");
            }
            eprintln!("{}", config::USAGE);
            return ExitCode::from(if e.is_empty() { 0 } else { 2 });
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lva-server: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(args: Args) -> Result<(), String> {
    let (mut config, models) = Config::load(&args.config)?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    gst::init().map_err(|e| format!("GStreamer: {e}"))?;
    gstovlva::plugin_register_static().map_err(|e| format!("registering ovlva: {e}"))?;
    alloc::install(alloc::ceiling(config.max_pixels, config.max_body_bytes))?;
    let tls = config.tls.as_ref().map(load_tls).transpose()?;
    let service = Service::new(&config, models)?;
    let listener = TcpListener::bind(&config.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    eprintln!(
        "lva-server: listening on {}://{addr}, models: {}",
        if tls.is_some() { "https" } else { "http" },
        service.model_names().join(", ")
    );
    let server = Arc::new(Server {
        service,
        config,
        tls,
        shutdown: AtomicBool::new(false),
        connections: Arc::default(),
    });
    watch_signals(server.clone(), addr)?;
    for stream in listener.incoming() {
        if server.shutdown.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        if !server.connections.try_open(server.config.max_connections) {
            refuse(stream, &server);
            continue;
        }
        let slot = server.connections.slot();
        let server = server.clone();
        std::thread::spawn(move || {
            let _slot = slot;
            serve(stream, &server);
        });
    }
    drop(listener);
    let grace = Duration::from_millis(server.config.shutdown_timeout_ms);
    eprintln!("lva-server: shutting down: finishing requests in flight (up to {grace:?})");
    let left = server.connections.wait_all(grace);
    if left > 0 {
        eprintln!("lva-server: {left} connections still open after {grace:?}; exiting anyway");
    }
    eprintln!("lva-server: stopped");
    Ok(())
}

/// On SIGTERM or SIGINT: stop accepting, let in-flight requests finish.
fn watch_signals(server: Arc<Server>, addr: SocketAddr) -> Result<(), String> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])
        .map_err(|e| format!("cannot watch signals: {e}"))?;
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            server.shutdown.store(true, Ordering::SeqCst);
            // Wake the accept loop so it sees the flag.
            let mut wake = addr;
            if wake.ip().is_unspecified() {
                wake.set_ip(if addr.is_ipv4() {
                    Ipv4Addr::LOCALHOST.into()
                } else {
                    Ipv6Addr::LOCALHOST.into()
                });
            }
            let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        }
    });
    Ok(())
}

fn load_tls(tls: &config::Tls) -> Result<Arc<rustls::ServerConfig>, String> {
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| format!("TLS: cannot read {}: {e}", p.display()))
    };
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&read(&tls.cert)?) {
        if let Ok(ureq::tls::PemItem::Certificate(c)) = item {
            certs.push(rustls::pki_types::CertificateDer::from(c.der().to_vec()));
        }
    }
    if certs.is_empty() {
        return Err(format!("TLS: no certificate in {}", tls.cert.display()));
    }
    let key = ureq::tls::parse_pem(&read(&tls.key)?)
        .find_map(|item| match item {
            Ok(ureq::tls::PemItem::PrivateKey(k)) => {
                rustls::pki_types::PrivateKeyDer::try_from(k.der().to_vec()).ok()
            }
            _ => None,
        })
        .ok_or_else(|| format!("TLS: no private key in {}", tls.key.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS: {e}"))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| format!("TLS: certificate and key do not work together: {e}"))?;
    Ok(Arc::new(config))
}

/// Over `max-connections`: a quick 503 and close, from the accept loop.
fn refuse(mut stream: TcpStream, server: &Server) {
    if server.tls.is_some() {
        return; // no cheap way to answer in TLS: just close
    }
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let resp = Response::error(
        503,
        "too many connections: retry after the Retry-After delay",
    )
    .with_header("Retry-After", server.config.retry_after_s.to_string());
    let _ = stream.write_all(&http::encode(&resp, false, false));
}

fn serve(tcp: TcpStream, server: &Server) {
    let peer = tcp
        .peer_addr()
        .map_or_else(|_| "?".to_string(), |a| a.to_string());
    let _ = tcp.set_nodelay(true);
    let _ = tcp.set_read_timeout(Some(POLL));
    let _ = tcp.set_write_timeout(Some(PATIENCE));
    let stream: Box<dyn Stream> = match &server.tls {
        None => Box::new(tcp),
        Some(tls) => match rustls::ServerConnection::new(tls.clone()) {
            Ok(conn) => Box::new(rustls::StreamOwned::new(conn, tcp)),
            Err(_) => return,
        },
    };
    let mut reader = BufReader::with_capacity(64 * 1024, stream);
    let idle_timeout = Duration::from_millis(server.config.idle_timeout_ms);
    let mut idle_since = Instant::now();
    loop {
        let head = match http::read_head(&mut reader, PATIENCE) {
            Ok(h) => h,
            Err(HeadError::Idle) => {
                if server.shutdown.load(Ordering::SeqCst) || idle_since.elapsed() > idle_timeout {
                    return;
                }
                continue;
            }
            Err(HeadError::Closed) => return,
            Err(HeadError::Io(e)) => {
                eprintln!("lva-server: {peer}: closing, the request head did not arrive: {e}");
                return;
            }
            Err(HeadError::Bad(e)) => {
                let _ = send(reader.get_mut(), &Response::error(400, &e), false, false);
                return;
            }
            Err(HeadError::TooLarge) => {
                let resp = Response::error(431, "request head too large");
                let _ = send(reader.get_mut(), &resp, false, false);
                return;
            }
        };
        let started = Instant::now();
        let mut model = None;
        let (mut resp, body_done) = match server.service.route(&head) {
            Step::Reply(r) => {
                let no_body = matches!(head.body_framing(), Ok(http::Framing::Length(0)));
                (r, no_body)
            }
            Step::Infer(pending) => {
                model = Some(pending.model().to_string());
                match http::read_body(&mut reader, &head, server.service.max_body(), PATIENCE) {
                    Ok(body) => (server.service.infer(pending, body), true),
                    Err(BodyError::TooLarge) => (
                        Response::error(
                            413,
                            &format!(
                                "the body is over the limit of {} bytes",
                                server.service.max_body()
                            ),
                        ),
                        false,
                    ),
                    Err(BodyError::Bad(e)) => (Response::error(400, &e), false),
                    // The client stopped sending (half-closed) before the announced length:
                    // say so, the reply can still reach it.
                    Err(BodyError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => (
                        Response::error(
                            400,
                            "the body ended before the length it announced (Content-Length or \
                             chunk size): send the whole image",
                        ),
                        false,
                    ),
                    Err(BodyError::Io(e)) => {
                        eprintln!(
                            "lva-server: {peer}: {} {}: the body did not arrive: {e}",
                            head.method, head.path
                        );
                        return;
                    }
                }
            }
        };
        let request_id = head.header("x-ms-client-request-id").map(str::to_string);
        if let Some(id) = &request_id {
            resp = resp.with_header("x-ms-client-request-id", id.clone());
        }
        let keep_alive = head.keep_alive() && body_done && !server.shutdown.load(Ordering::SeqCst);
        let sent = send(reader.get_mut(), &resp, keep_alive, head.method == "HEAD");
        log(
            &head,
            &resp,
            model.as_deref(),
            started,
            request_id.as_deref(),
            &peer,
        );
        if sent.is_ok() && !body_done {
            linger(&mut reader);
        }
        if sent.is_err() || !keep_alive {
            return;
        }
        idle_since = Instant::now();
    }
}

/// After answering without reading the body (401, 413, 503...), reads and drops what the client
/// still sends for a while: closing at once would reset the connection before a client that is
/// still uploading reads the answer.
fn linger(reader: &mut BufReader<Box<dyn Stream>>) {
    const MAX: usize = 64 * 1024 * 1024;
    let until = Instant::now() + Duration::from_secs(2);
    let mut drained = 0;
    let mut buf = [0u8; 16 * 1024];
    while drained < MAX && Instant::now() < until {
        match reader.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => drained += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

fn send(
    stream: &mut dyn Stream,
    resp: &Response,
    keep_alive: bool,
    head_only: bool,
) -> std::io::Result<()> {
    stream.write_all(&http::encode(resp, keep_alive, head_only))?;
    stream.flush()
}

/// One line per request: time, status, method, path, model, latency, request id, peer.
fn log(
    head: &http::Head,
    resp: &Response,
    model: Option<&str>,
    started: Instant,
    request_id: Option<&str>,
    peer: &str,
) {
    let body = head.header("content-length").unwrap_or("0");
    eprintln!(
        "{} {} {} {} model={} bytes={body} ms={:.1} id={} peer={peer}",
        timestamp(SystemTime::now()),
        resp.status,
        head.method,
        head.path,
        model.unwrap_or("-"),
        started.elapsed().as_secs_f64() * 1000.0,
        request_id.unwrap_or("-"),
    );
}

/// RFC 3339 UTC time with milliseconds.
fn timestamp(t: SystemTime) -> String {
    let since = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_connection_gives_its_slot_back() {
        let connections: Arc<Connections> = Arc::default();
        assert!(connections.try_open(1));
        let slot = connections.slot();
        let handler = std::thread::spawn(move || {
            let _slot = slot;
            panic!("a handler bug");
        });
        assert!(handler.join().is_err());
        assert_eq!(connections.open_count(), 0);
        assert!(connections.try_open(1), "the slot is free again");
    }

    #[test]
    fn timestamps_are_rfc3339() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_267_478_123);
        assert_eq!(timestamp(t), "2026-11-21T13:24:38.123Z");
        assert_eq!(
            timestamp(SystemTime::UNIX_EPOCH),
            "1970-01-01T00:00:00.000Z"
        );
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(timestamp(leap), "2000-02-29T00:00:00.000Z");
    }
}
