//! lvahttpsink throughput: documents per second delivered to a local HTTP server, and the
//! frame rate of bikes.mp4 → ovinfer → lvajson with and without the sink (same run).
//!
//! cargo bench --bench lvahttpsink   (after `make setup`, for the model and the video)

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

const DOCS: usize = 5000;

/// A tiny_http receiver answering 204 to everything; counts requests.
fn receiver() -> (String, Arc<AtomicU64>, Arc<AtomicBool>) {
    let server = tiny_http::Server::http("127.0.0.1:0").expect("server");
    let port = server.server_addr().to_ip().expect("ip").port();
    let (count, stop) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let (c, s) = (count.clone(), stop.clone());
    std::thread::spawn(move || {
        while !s.load(Ordering::SeqCst) {
            if let Ok(Some(mut request)) = server.recv_timeout(Duration::from_millis(50)) {
                let mut body = Vec::new();
                let _ = request.as_reader().read_to_end(&mut body);
                c.fetch_add(1, Ordering::SeqCst);
                let _ = request.respond(tiny_http::Response::empty(204));
            }
        }
    });
    (format!("http://127.0.0.1:{port}/events"), count, stop)
}

/// Seconds to push `DOCS` documents through `lvahttpsink` to EOS (all delivered).
fn deliver(url: &str) -> f64 {
    common::deliver(
        &format!("lvahttpsink name=sink location={url} max-queue={DOCS}"),
        DOCS,
    )
}

/// Seconds for bikes.mp4 through ovinfer and lvajson into `tail`.
fn bikes(tail: &str) -> f64 {
    common::pipeline_time(&common::bikes(tail), |_| {})
}

fn main() {
    common::init();
    let (url, received, stop) = receiver();
    deliver(&url); // warm-up
    let rounds = 3;
    let seconds: f64 = (0..rounds).map(|_| deliver(&url)).sum();
    let rate = (rounds * DOCS) as f64 / seconds;
    println!(
        "lvahttpsink to a local tiny_http server: {rate:.0} documents/s ({:.0} µs each; {} requests received)",
        1e6 / rate,
        received.load(Ordering::SeqCst)
    );

    let frames = 250.0;
    bikes("fakesink sync=false"); // warm-up
    let (mut without, mut with) = (0.0, 0.0);
    for _ in 0..2 {
        without += bikes("fakesink sync=false");
        with += bikes(&format!("lvahttpsink location={url}"));
    }
    println!(
        "bikes.mp4 -> ovinfer -> lvajson: {:.1} fps into fakesink, {:.1} fps into lvahttpsink, ratio {:.3}",
        2.0 * frames / without,
        2.0 * frames / with,
        without / with
    );
    stop.store(true, Ordering::SeqCst);
}
