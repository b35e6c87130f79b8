//! Shared helpers for the element tests: paths of the assets `scripts/setup.sh` installs, and a
//! pipeline runner that collects every frame's meta and every bus error.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Once;
use std::time::Duration;

use gst::prelude::*;
use gstovlva::meta::{self, FrameClassification, Roi};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A file installed by `make setup`; panics with the fix when it is missing.
pub fn asset(rel: &str) -> String {
    let p = root().join(rel);
    assert!(
        p.exists(),
        "{} is missing: run `make setup` first",
        p.display()
    );
    p.to_string_lossy().into_owned()
}

pub fn ssd_model() -> String {
    asset("models/ssd_mobilenet_v2_coco/ssd_mobilenet_v2_coco.xml")
}

pub fn ssd_labels() -> String {
    asset("models/ssd_mobilenet_v2_coco/labels.txt")
}

pub fn blazeface_model() -> String {
    asset("models/blazeface/face_detection_short_range.tflite")
}

pub fn tiny(name: &str) -> String {
    asset(&format!("models/tiny/{name}"))
}

pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().expect("GStreamer initialises");
        gstovlva::plugin_register_static().expect("the ovlva plugin registers");
    });
}

/// What one frame carried when it left the pipeline.
#[derive(Debug, Clone)]
pub struct Frame {
    pub pts: Option<gst::ClockTime>,
    pub width: u32,
    pub height: u32,
    pub rois: Vec<Roi>,
    pub classes: Vec<FrameClassification>,
}

/// The outcome of running a pipeline to its end.
#[derive(Debug)]
pub struct Run {
    pub frames: Vec<Frame>,
    /// Error messages posted on the bus (message, debug).
    pub errors: Vec<(String, String)>,
}

impl Run {
    pub fn error_text(&self) -> String {
        self.errors
            .iter()
            .map(|(m, d)| format!("{m} | {d}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Runs a gst-launch description ending in `appsink name=sink` until EOS or an error.
pub fn run(description: &str) -> Run {
    init();
    let pipeline = gst::parse::launch(description)
        .unwrap_or_else(|e| panic!("pipeline {description}: {e}"))
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
    let sink = pipeline
        .by_name("sink")
        .expect("an appsink named sink")
        .downcast::<gst_app::AppSink>()
        .expect("appsink");
    sink.set_property("sync", false);
    let frames = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let collected = frames.clone();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |s| {
                let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let caps = sample.caps().expect("caps");
                let info = gst_video::VideoInfo::from_caps(caps).expect("video caps");
                let buffer = sample.buffer().expect("buffer");
                collected.lock().unwrap().push(Frame {
                    pts: buffer.pts(),
                    width: info.width(),
                    height: info.height(),
                    rois: meta::rois(buffer),
                    classes: meta::frame_classifications(buffer),
                });
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    let bus = pipeline.bus().expect("bus");
    let mut errors = Vec::new();
    if pipeline.set_state(gst::State::Playing).is_err() {
        // The reason is on the bus; collect it below.
    }
    loop {
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_seconds(120)) else {
            errors.push(("timeout: no EOS within 120 s".to_string(), String::new()));
            break;
        };
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => {
                errors.push((
                    e.error().to_string(),
                    e.debug().map(|d| d.to_string()).unwrap_or_default(),
                ));
                break;
            }
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).expect("to NULL");
    // Give the streaming threads a moment to finish pushing what they hold.
    std::thread::sleep(Duration::from_millis(10));
    let frames = frames.lock().unwrap().clone();
    Run { frames, errors }
}

/// A detection as (label, confidence, x, y, w, h) in pixels, for readable assertions.
pub fn boxes(frame: &Frame) -> Vec<(String, f64, u32, u32, u32, u32)> {
    frame
        .rois
        .iter()
        .map(|r| {
            let d = r.detection.as_ref().expect("detection structure");
            (
                d.label.clone(),
                d.confidence,
                r.rect.0,
                r.rect.1,
                r.rect.2,
                r.rect.3,
            )
        })
        .collect()
}
