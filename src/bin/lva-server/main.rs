//! `lva-server`: the Live Video Analytics HTTP extension contract served by ovlva's elements.
//!
//! `POST /<model>` with a JPEG, PNG, BMP or raw image → `{"inferences":[...]}` (200), or 204 when
//! nothing is found. Configuration: docs/lva-server.md.
//!
//! HTTP is hyper's (HTTP/1.1) on tokio, routed by axum; the GStreamer work runs on tokio's
//! blocking pool.

// `Result<_, Response>` (the answer to give instead, 128 bytes) is axum's idiom for refusals,
// built once per request: boxing it would buy nothing.
#![allow(clippy::result_large_err)]

mod alloc;
mod auth;
mod config;
mod conn;
mod engine;
mod http;
mod image;
mod reply;
mod routes;
mod server;
mod service;
mod streams;
mod tls;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use config::{Args, Config};
use routes::App;
use service::Service;

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
    let app = Arc::new(App {
        service: Service::new(&config, models)?,
        body_timeout: config.body_timeout(),
        busy_delay: config.busy_delay(),
        shutdown: tokio::sync::watch::Sender::new(false),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let routes = routes::routes(app.clone());
    let served = runtime.block_on(server::run(&config, app, routes, tls));
    // Inferences still running after shutdown-timeout-ms are not waited for.
    runtime.shutdown_timeout(Duration::from_millis(100));
    served
}
