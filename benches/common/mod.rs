//! Timing helpers shared by the benchmarks.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use gst::prelude::*;

pub fn init() {
    gst::init().expect("GStreamer initialises");
    gstovlva::plugin_register_static().expect("the ovlva plugin registers");
}

/// Mean time per call of `f`, over at least `min` of wall time and 100 calls.
pub fn per_call(min: Duration, mut f: impl FnMut()) -> Duration {
    let (start, mut n) = (Instant::now(), 0u32);
    while start.elapsed() < min || n < 100 {
        f();
        n += 1;
    }
    start.elapsed() / n
}

/// Seconds a gst-launch description takes from PLAYING to EOS; `attach` is called on every
/// buffer leaving the element named `tag`, if there is one (to add meta).
pub fn pipeline_time(
    description: &str,
    attach: impl Fn(&mut gst::BufferRef) + Send + Sync + 'static,
) -> f64 {
    let pipeline = gst::parse::launch(description)
        .expect("pipeline")
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
    if let Some(tag) = pipeline.by_name("tag").and_then(|t| t.static_pad("src")) {
        tag.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(b) = info.buffer_mut() {
                attach(b.make_mut());
            }
            gst::PadProbeReturn::Ok
        });
    }
    let start = Instant::now();
    pipeline.set_state(gst::State::Playing).expect("playing");
    let msg = pipeline.bus().expect("bus").timed_pop_filtered(
        gst::ClockTime::NONE,
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let elapsed = start.elapsed().as_secs_f64();
    pipeline.set_state(gst::State::Null).expect("null");
    if let Some(gst::MessageView::Error(e)) = msg.as_ref().map(|m| m.view()) {
        panic!("{description}: {}", e.error());
    }
    elapsed
}

/// Times `a` and `b` (gst-launch descriptions with an element named `tag`) `rounds` times
/// each, alternating so that machine noise hits both alike; returns their total seconds.
pub fn compare(
    a: &str,
    b: &str,
    rounds: u32,
    attach: impl Fn(&mut gst::BufferRef) + Send + Sync + Clone + 'static,
) -> (f64, f64) {
    pipeline_time(a, attach.clone()); // warm-up
    let (mut ta, mut tb) = (0.0, 0.0);
    for _ in 0..rounds {
        ta += pipeline_time(a, attach.clone());
        tb += pipeline_time(b, attach.clone());
    }
    (ta, tb)
}
