//! The lva-server modules the fuzz targets call, compiled here from the server's own source
//! files (`#[path]`), so that the server keeps them private to its binary and nothing moves.
//! They depend on nothing else of the server: `image` (GStreamer video info only), `http`
//! (the `http` crate's header map), `config` (serde) and `auth` (config's `Auth`).

#![allow(dead_code)]
// The server's own unit and property tests in those files run with the server (`cargo test
// --bin lva-server`), not here: this crate is never built as a test with them.
#![cfg(not(test))]

#[path = "../../src/bin/lva-server/auth.rs"]
pub mod auth;
#[path = "../../src/bin/lva-server/config.rs"]
pub mod config;
#[path = "../../src/bin/lva-server/http.rs"]
pub mod http;
#[path = "../../src/bin/lva-server/image.rs"]
pub mod image;

/// GStreamer initialised once (the video-info builders need it).
pub fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| gst::init().expect("gst::init"));
}
