//! The listener: connections accepted up to `max-connections` (503 above), TLS, and the
//! graceful stop on SIGTERM or SIGINT (requests in flight finished, streams stopped with their
//! outputs flushed, their definitions kept for the next start).

use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use crate::config::Config;
use crate::conn::{self, Limits};
use crate::routes::{App, Routes};

/// Serves until SIGTERM or SIGINT, then lets the requests in flight finish and stops the
/// streams (both within `shutdown-timeout-ms`).
pub async fn run(
    config: &Config,
    app: Arc<App>,
    routes: Routes,
    tls: Option<TlsAcceptor>,
) -> Result<(), String> {
    let listener = TcpListener::bind(&config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let mut term = signal(SignalKind::terminate()).map_err(|e| format!("signals: {e}"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| format!("signals: {e}"))?;
    eprintln!(
        "lva-server: listening on {}://{addr}, models: {}",
        if tls.is_some() { "https" } else { "http" },
        app.service.model_names().join(", ")
    );
    let limits = Limits {
        idle: config.idle_timeout(),
        header: config.header_timeout(),
        write: config.body_timeout(),
    };
    // More connections than that cannot be open anyway (file descriptors).
    let max = config.max_connections.min(u32::MAX as usize);
    let slots = Arc::new(Semaphore::new(max));
    loop {
        let (tcp, peer) = tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, most likely: let some connections end.
                    eprintln!("lva-server: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // The slot is held by the connection's task, and given back however it ends.
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            if tls.is_none() {
                tokio::spawn(refuse(tcp, config.retry_after_s));
            }
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let routes = routes.clone();
        let shutdown = app.shutdown.subscribe();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _slot = slot;
            match tls {
                None => conn::serve(tcp, peer, routes, limits, shutdown).await,
                Some(tls) => {
                    if let Ok(Ok(stream)) =
                        tokio::time::timeout(limits.header, tls.accept(tcp)).await
                    {
                        conn::serve(stream, peer, routes, limits, shutdown).await;
                    }
                }
            }
        });
    }
    drop(listener);
    let grace = config.shutdown_timeout();
    eprintln!(
        "lva-server: shutting down: finishing requests in flight, stopping the streams (up to \
         {grace:?})"
    );
    app.shutdown.send_replace(true);
    // Stopping the streams also ends their event streams (`end`) and waits.
    let running = app.registry.list().len();
    let stopping = app.clone();
    let streams = tokio::task::spawn_blocking(move || stopping.registry.shutdown());
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    let (connections, streams) = tokio::join!(
        tokio::time::timeout(grace, slots.acquire_many(all)),
        tokio::time::timeout(grace, streams),
    );
    match streams {
        Ok(_) if running > 0 => eprintln!(
            "lva-server: {running} streams stopped (their definitions are kept for the next \
             start)"
        ),
        Ok(_) => {}
        Err(_) => eprintln!(
            "lva-server: streams still stopping after {grace:?}; exiting anyway (their \
             definitions are kept)"
        ),
    }
    if connections.is_err() {
        let left = max - slots.available_permits();
        eprintln!("lva-server: {left} connections still open after {grace:?}; exiting anyway");
    }
    eprintln!("lva-server: stopped");
    Ok(())
}

/// Over `max-connections`: a quick 503 and close, without reading the request.
async fn refuse(mut tcp: TcpStream, retry_after: u32) {
    let body = r#"{"error":"too many connections: retry after the Retry-After delay"}"#;
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\nServer: lva-server/{}\r\nDate: {}\r\n\
         Content-Type: application/json\r\nRetry-After: {retry_after}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        env!("CARGO_PKG_VERSION"),
        httpdate::fmt_http_date(std::time::SystemTime::now()),
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), tcp.write_all(answer.as_bytes())).await;
}
