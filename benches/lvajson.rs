//! lvajson cost per frame with 10 objects (each with an attribute and a tracking id).
//!
//! cargo bench --bench lvajson
//!
//! Prints (1) meta → document → JSON bytes, and the serialisation alone, in µs/frame and
//! frames/s; (2) a pipeline that attaches the same meta to 320x240 frames, through `lvajson`
//! versus through `identity` in the same run, and the ratio of the two.

use std::hint::black_box;
use std::time::{Duration, Instant};

use gst::prelude::*;
use gstovlva::lvajson::document::Format;
use gstovlva::lvajson::mapping::{self, FrameFacts, Options};
use gstovlva::meta::{self, DetectionInfo};

const OBJECTS: usize = 10;

fn attach(buffer: &mut gst::BufferRef) {
    for i in 0..OBJECTS {
        let f = i as f64 / OBJECTS as f64;
        meta::add_detection(
            buffer,
            320,
            240,
            &DetectionInfo {
                label: "person".into(),
                label_id: 1,
                confidence: 0.5 + f / 4.0,
                bbox: [f * 0.9, 0.1, f * 0.9 + 0.1, 0.6],
                model: "ssd_mobilenet_v2_coco".into(),
            },
        );
    }
    for (i, mut roi) in buffer
        .iter_meta_mut::<gst_video::VideoRegionOfInterestMeta>()
        .enumerate()
    {
        roi.add_param(
            gst::Structure::builder("color")
                .field("label", "red")
                .field("confidence", 0.75f64)
                .build(),
        );
        roi.add_param(
            gst::Structure::builder(meta::TRACKING)
                .field("id", i as i32)
                .build(),
        );
    }
}

/// Mean time per call of `f`, over at least `min` of wall time.
fn per_call(min: Duration, mut f: impl FnMut()) -> Duration {
    let (start, mut n) = (Instant::now(), 0u32);
    while start.elapsed() < min || n < 100 {
        f();
        n += 1;
    }
    start.elapsed() / n
}

/// Seconds a pipeline of `frames` frames takes, with the meta attached upstream of `element`.
fn pipeline_time(element: &str, frames: u32) -> f64 {
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers={frames} pattern=black ! video/x-raw,format=I420,width=320,height=240 \
         ! identity name=tag ! {element} ! fakesink sync=false"
    ))
    .expect("pipeline");
    let pipeline = pipeline.downcast::<gst::Pipeline>().expect("a pipeline");
    let tag = pipeline
        .by_name("tag")
        .expect("tag")
        .static_pad("src")
        .expect("pad");
    tag.add_probe(gst::PadProbeType::BUFFER, |_, info| {
        if let Some(b) = info.buffer_mut() {
            attach(b.make_mut());
        }
        gst::PadProbeReturn::Ok
    });
    let start = Instant::now();
    pipeline.set_state(gst::State::Playing).expect("playing");
    let msg = pipeline.bus().expect("bus").timed_pop_filtered(
        gst::ClockTime::NONE,
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let elapsed = start.elapsed().as_secs_f64();
    pipeline.set_state(gst::State::Null).expect("null");
    if let Some(gst::MessageView::Error(e)) = msg.as_ref().map(|m| m.view()) {
        panic!("{element}: {}", e.error());
    }
    elapsed
}

fn main() {
    gst::init().expect("gst");
    gstovlva::plugin_register_static().expect("plugin");
    let mut buffer = gst::Buffer::with_size(16).expect("buffer");
    attach(buffer.get_mut().expect("writable"));
    let facts = FrameFacts {
        width: 320,
        height: 240,
        ..Default::default()
    };
    let options = Options::default();
    let min = Duration::from_secs(2);

    let document = mapping::map_frame(&buffer, &facts, &options).document;
    let bytes = document.to_bytes(Format::default()).expect("json").len();
    let full = per_call(min, || {
        let m = mapping::map_frame(black_box(&buffer), &facts, &options);
        black_box(m.document.to_bytes(Format::default()).expect("json"));
    });
    let serialise = per_call(min, || {
        black_box(
            black_box(&document)
                .to_bytes(Format::default())
                .expect("json"),
        );
    });
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!("lvajson, {OBJECTS} objects per frame ({bytes} bytes of JSON):");
    println!(
        "  meta -> document -> JSON: {:8.2} µs/frame  {:9.0} frames/s",
        us(full),
        1.0 / full.as_secs_f64()
    );
    println!(
        "  JSON serialisation only:  {:8.2} µs/frame  {:9.0} frames/s",
        us(serialise),
        1.0 / serialise.as_secs_f64()
    );

    let frames = 5000;
    // Warm up once, then alternate so that machine noise hits both alike.
    pipeline_time("identity", 200);
    let (mut identity, mut lvajson) = (0.0, 0.0);
    for _ in 0..3 {
        identity += pipeline_time("identity", frames);
        lvajson += pipeline_time("lvajson", frames);
    }
    let n = 3.0 * frames as f64;
    println!("pipeline, 320x240 frames with {OBJECTS} objects attached ({frames} frames x 3):");
    println!(
        "  ... ! identity ! fakesink: {:8.2} µs/frame  {:9.0} frames/s",
        identity / n * 1e6,
        n / identity
    );
    println!(
        "  ... ! lvajson ! fakesink:  {:8.2} µs/frame  {:9.0} frames/s",
        lvajson / n * 1e6,
        n / lvajson
    );
    println!(
        "  lvajson / identity frame rate: {:.2}  (lvajson adds {:.2} µs/frame)",
        identity / lvajson,
        (lvajson - identity) / n * 1e6
    );
}
