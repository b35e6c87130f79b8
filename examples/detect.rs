//! Runs `ovinfer` over a video file and prints each frame's detections as one JSON line.
//!
//! usage: cargo run --release --example detect -- VIDEO MODEL [LABELS] [THRESHOLD]
//!
//! The pipeline is the same as
//! `filesrc ! decodebin ! videoconvert ! ovinfer model=... labels=... ! appsink`;
//! the plugin is registered from this binary, so no GST_PLUGIN_PATH is needed.

use std::io::Write;

use gst::prelude::*;
use gstovlva::meta;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [video, model, rest @ ..] = args.as_slice() else {
        eprintln!("usage: detect VIDEO MODEL [LABELS] [THRESHOLD]");
        std::process::exit(2);
    };
    gst::init()?;
    gstovlva::plugin_register_static()?;

    let labels = rest
        .first()
        .map(|l| format!("labels={l}"))
        .unwrap_or_default();
    let threshold = rest
        .get(1)
        .map(|t| format!("threshold={t}"))
        .unwrap_or_default();
    let pipeline = gst::parse::launch(&format!(
        "filesrc location={video} ! decodebin ! videoconvert ! ovinfer name=infer model={model} \
         {labels} {threshold} ! appsink name=sink sync=false"
    ))?
    .downcast::<gst::Pipeline>()
    .map_err(|_| "not a pipeline")?;
    let sink = pipeline
        .by_name("sink")
        .ok_or("no sink")?
        .downcast::<gst_app::AppSink>()
        .map_err(|_| "not an appsink")?;

    let mut frame = 0u64;
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |s| {
                let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let Some(buffer) = sample.buffer() else {
                    return Ok(gst::FlowSuccess::Ok);
                };
                let objects: Vec<serde_json::Value> = meta::rois(buffer)
                    .iter()
                    .filter_map(|r| r.detection.as_ref().map(|d| (r, d)))
                    .map(|(r, d)| {
                        serde_json::json!({
                            "label": d.label,
                            "confidence": (d.confidence * 1000.0).round() / 1000.0,
                            "box_px": [r.rect.0, r.rect.1, r.rect.2, r.rect.3],
                        })
                    })
                    .collect();
                let line = serde_json::json!({
                    "frame": frame,
                    "pts_ms": buffer.pts().map(|p| p.mseconds()),
                    "detections": objects,
                });
                frame += 1;
                // A closed stdout (e.g. piped to head) ends the pipeline.
                writeln!(std::io::stdout(), "{line}").map_err(|_| gst::FlowError::Eos)?;
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );

    pipeline.set_state(gst::State::Playing)?;
    let bus = pipeline.bus().ok_or("no bus")?;
    let mut result = Ok(());
    for msg in bus.iter_timed(gst::ClockTime::NONE) {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => {
                result = Err(format!(
                    "{}: {}",
                    e.error(),
                    e.debug().map(|d| d.to_string()).unwrap_or_default()
                ));
                break;
            }
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null)?;
    result.map_err(Into::into)
}
