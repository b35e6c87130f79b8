//! `lva-server`: the Live Video Analytics HTTP extension contract served by ovlva's elements.
//!
//! `POST /<model>` with a JPEG, PNG, BMP or raw image → `{"inferences":[...]}` (200), or 204 when
//! nothing is found; `/streams` runs models over videos and cameras (the streams API); `/v2` and,
//! on `grpc-listen`, gRPC serve the same models' raw tensors over KServe v2 (docs/kserve.md).
//! Every route: `GET /openapi.json`. Configuration: docs/lva-server.md.
//!
//! HTTP is hyper's (HTTP/1.1) on tokio, routed by axum; gRPC is tonic's on the same runtime; the
//! GStreamer and OpenVINO work runs on tokio's blocking pool.

// `Result<_, Response>` (the answer to give instead, 128 bytes) is axum's idiom for refusals,
// built once per request: boxing it would buy nothing.
#![allow(clippy::result_large_err)]

mod alloc;
mod auth;
mod config;
mod conn;
mod console;
mod engine;
mod http;
mod image;
mod kserve;
mod reply;
mod routes;
mod rtsp;
mod server;
mod service;
mod streams;
mod streams_api;
mod tls;
mod turns;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use config::{Args, Config};
use routes::App;
use service::Service;
use streams::Registry;

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
    let tls = config.tls.as_ref().map(tls::acceptor).transpose()?;
    let service = Service::new(&config, models.clone())?;
    let kserve = Arc::new(kserve::Kserve::new(&config, &models)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let video = streams::VideoEnv {
        rtsp: rtsp::RtspService::new(
            listen_host(&config.listen),
            config.streams.rtsp_port,
            config.auth.clone(),
        ),
        hls_root: config.streams.state_dir.as_ref().map_or_else(
            || std::env::temp_dir().join("lva-server-hls"),
            |d| d.join("hls"),
        ),
    };
    let registry = runtime.block_on(open_streams(models, config.streams.clone(), video))?;
    let app = Arc::new(App {
        service,
        registry,
        kserve: kserve.clone(),
        body_timeout: config.body_timeout(),
        busy_delay: config.busy_delay(),
        shutdown: tokio::sync::watch::Sender::new(false),
    });
    let routes = routes::routes(app.clone());
    let grpc = match &config.grpc_listen {
        Some(listen) => {
            let options = kserve::grpc::Options {
                listen: listen.clone(),
                max_connections: config.max_connections,
                handshake_timeout: config.header_timeout(),
                busy_delay: config.busy_delay(),
                idle_timeout: config.idle_timeout(),
                message_timeout: config.body_timeout(),
                place_timeout: config.queue_timeout(),
            };
            let auth = app.service.auth().cloned();
            let started = runtime.block_on(kserve::grpc::start(
                options,
                kserve,
                auth,
                tls.clone(),
                app.shutdown.subscribe(),
            ))?;
            eprintln!(
                "lva-server: KServe gRPC on {}://{}",
                if tls.is_some() { "grpcs" } else { "grpc" },
                started.0
            );
            Some(started.1)
        }
        None => None,
    };
    let served = runtime.block_on(server::run(&config, app, routes, tls));
    if let Some(grpc) = grpc {
        // server::run has set the shutdown flag: calls in flight finish within the grace time.
        let grace = config.shutdown_timeout();
        let finished = runtime.block_on(async { tokio::time::timeout(grace, grpc).await });
        if finished.is_err() {
            eprintln!("lva-server: gRPC calls still open after {grace:?}; exiting anyway");
        }
    }
    // Inferences still running after shutdown-timeout-ms are not waited for.
    runtime.shutdown_timeout(Duration::from_millis(100));
    served
}

/// The streams' registry, with the streams saved in its state folder started again (their
/// problems logged).
/// The host part of `listen` (`0.0.0.0:8080` → `0.0.0.0`, `[::1]:8080` → `::1`).
fn listen_host(listen: &str) -> &str {
    let host = listen.rsplit_once(':').map_or(listen, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

async fn open_streams(
    models: Vec<config::ModelConfig>,
    options: streams::Options,
    video: streams::VideoEnv,
) -> Result<Registry, String> {
    let folder = options
        .state_dir
        .as_ref()
        .map(|d| std::path::absolute(d).unwrap_or_else(|_| d.clone()));
    let max = options.max_streams;
    let (registry, notes) =
        tokio::task::spawn_blocking(move || Registry::open(models, options, video))
            .await
            .map_err(|e| format!("streams: starting the saved streams panicked: {e}"))??;
    for note in notes {
        eprintln!("lva-server: streams: {note}");
    }
    let streams = registry.list();
    let failed = streams
        .iter()
        .filter(|s| s.status.state == streams::State::Failed)
        .count();
    if let Some(folder) = folder {
        eprintln!(
            "lva-server: streams: {} restarted from {} ({failed} failed), max-streams {max}",
            streams.len() - failed,
            folder.display()
        );
    }
    Ok(registry)
}

/// RFC 3339 UTC time with milliseconds, e.g. `2026-11-21T13:24:38.123Z` (the access log, the
/// streams' gaps).
pub fn rfc3339(t: std::time::SystemTime) -> String {
    let since = t
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
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
    use std::time::{Duration, SystemTime};

    #[test]
    fn times_are_rfc3339() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_267_478_123);
        assert_eq!(super::rfc3339(t), "2026-11-21T13:24:38.123Z");
        assert_eq!(
            super::rfc3339(SystemTime::UNIX_EPOCH),
            "1970-01-01T00:00:00.000Z"
        );
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(super::rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }
}
