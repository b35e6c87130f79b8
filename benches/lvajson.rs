//! lvajson cost per frame with 10 objects (each with an attribute and a tracking id).
//!
//! cargo bench --bench lvajson
//!
//! Prints (1) meta → document → JSON bytes, and the serialisation alone, in µs/frame and
//! frames/s; (2) a pipeline that attaches the same meta to 320x240 frames, through `lvajson`
//! versus through `identity` in the same run, and the ratio of the two.

mod common;

use std::hint::black_box;
use std::time::Duration;

use common::{compare, per_call};
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

fn main() {
    common::init();
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
    let pipeline = |element: &str| {
        format!(
            "videotestsrc num-buffers={frames} pattern=black \
             ! video/x-raw,format=I420,width=320,height=240 ! identity name=tag ! {element} \
             ! fakesink sync=false"
        )
    };
    let (identity, lvajson) = compare(&pipeline("identity"), &pipeline("lvajson"), 3, attach);
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
