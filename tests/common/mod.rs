//! Shared helpers for the element tests: paths of the assets `scripts/setup.sh` installs, and a
//! pipeline runner that collects every frame's meta and every bus error.
#![allow(dead_code)]

pub mod kafka;
pub mod mqtt;
pub mod process;
pub mod reference;
pub mod server;
pub mod triton;

use std::path::PathBuf;
use std::sync::Once;
use std::time::Duration;

use gst::prelude::*;
use gstovlva::meta::{self, FrameClassification, Roi};

/// A self-signed certificate for `localhost` and 127.0.0.1 (EC P-256, two days) made by openssl
/// in `dir`: `(cert.pem, key.pem)`, for servers a test runs with TLS (the certificate is its own
/// CA for the clients).
pub fn self_signed_cert(dir: &std::path::Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .args(["-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl runs (scripts/setup.sh installs it)");
    assert!(made.success(), "openssl could not make a certificate");
    (cert, key)
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The project's virtualenv's Python (`make setup` makes it, with the reference packages).
pub fn python() -> PathBuf {
    let python = root().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `make setup`",
        python.display()
    );
    python
}

/// Runs the virtualenv's Python with `args` (a script and its arguments, or `-c CODE ...`),
/// which must succeed: what it printed.
pub fn python_out<S: AsRef<std::ffi::OsStr>>(args: impl IntoIterator<Item = S>) -> String {
    let args: Vec<S> = args.into_iter().collect();
    let shown: Vec<String> = args
        .iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect();
    let out = std::process::Command::new(python())
        .args(&args)
        .output()
        .unwrap_or_else(|e| panic!("python {shown:?} cannot run ({e}): run `make setup`"));
    assert!(
        out.status.success(),
        "python {shown:?} failed (run `make setup` if a package is missing): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
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

/// The SSD's label id of `name` (its labels file has "id name" lines).
pub fn ssd_label_id(name: &str) -> i32 {
    let labels = std::fs::read_to_string(ssd_labels()).expect("labels file");
    labels
        .lines()
        .filter_map(|l| l.trim().split_once(char::is_whitespace))
        .find(|(_, n)| n.trim() == name)
        .and_then(|(id, _)| id.parse().ok())
        .unwrap_or_else(|| panic!("label {name} is not in the labels file"))
}

pub fn blazeface_model() -> String {
    asset("models/blazeface/face_detection_short_range.tflite")
}

pub fn tiny(name: &str) -> String {
    asset(&format!("models/tiny/{name}"))
}

/// A pipeline from `description`, which names its `appsrc` "src", and that appsrc.
pub fn with_appsrc(description: &str) -> (gst::Pipeline, gst_app::AppSrc) {
    init();
    let pipeline = gst::parse::launch(description)
        .unwrap_or_else(|e| panic!("{description}: {e}"))
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
    let src = pipeline
        .by_name("src")
        .and_downcast::<gst_app::AppSrc>()
        .expect("an appsrc named src");
    (pipeline, src)
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
        error_text(&self.errors)
    }
}

fn error_text(errors: &[(String, String)]) -> String {
    errors
        .iter()
        .map(|(m, d)| format!("{m} | {d}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Everything a pipeline gave: the samples of each appsink, and the bus's errors and warnings.
pub struct Outcome {
    pub pipeline: gst::Pipeline,
    pub samples: std::collections::HashMap<String, Vec<gst::Sample>>,
    /// (message, debug) of each error and each warning.
    pub errors: Vec<(String, String)>,
    pub warnings: Vec<(String, String)>,
}

impl Outcome {
    pub fn error_text(&self) -> String {
        error_text(&self.errors)
    }

    pub fn samples(&self, sink: &str) -> &[gst::Sample] {
        self.samples
            .get(sink)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    pub fn element(&self, name: &str) -> gst::Element {
        self.pipeline
            .by_name(name)
            .expect("element in the pipeline")
    }
}

/// Runs a gst-launch description until EOS or an error, collecting what each appsink named in
/// `sinks` receives.
pub fn run_sinks(description: &str, sinks: &[&str]) -> Outcome {
    run_prepared(description, sinks, |_| {})
}

/// [`run_sinks`], with `prepare` called on the pipeline before it starts (to add pad probes).
pub fn run_prepared(
    description: &str,
    sinks: &[&str],
    prepare: impl FnOnce(&gst::Pipeline),
) -> Outcome {
    init();
    let pipeline = gst::parse::launch(description)
        .unwrap_or_else(|e| panic!("pipeline {description}: {e}"))
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
    prepare(&pipeline);
    let collected = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashMap::<
        String,
        Vec<gst::Sample>,
    >::new()));
    for name in sinks {
        let sink = pipeline
            .by_name(name)
            .unwrap_or_else(|| panic!("an appsink named {name}"))
            .downcast::<gst_app::AppSink>()
            .expect("appsink");
        sink.set_property("sync", false);
        let collected = collected.clone();
        let name = name.to_string();
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |s| {
                    let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let mut all = collected.lock().unwrap();
                    all.entry(name.clone()).or_default().push(sample);
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
    }
    let bus = pipeline.bus().expect("bus");
    let (mut errors, mut warnings) = (Vec::new(), Vec::new());
    let text = |e: &gst::glib::Error, d: Option<gst::glib::GString>| {
        (e.to_string(), d.map(|d| d.to_string()).unwrap_or_default())
    };
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
                errors.push(text(&e.error(), e.debug()));
                break;
            }
            gst::MessageView::Warning(w) => warnings.push(text(&w.error(), w.debug())),
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).expect("to NULL");
    // Give the streaming threads a moment to finish pushing what they hold.
    std::thread::sleep(Duration::from_millis(10));
    let samples = std::mem::take(&mut *collected.lock().unwrap());
    Outcome {
        pipeline,
        samples,
        errors,
        warnings,
    }
}

/// What a video sample carried.
pub fn frame(sample: &gst::Sample) -> Frame {
    let caps = sample.caps().expect("caps");
    let info = gst_video::VideoInfo::from_caps(caps).expect("video caps");
    let buffer = sample.buffer().expect("buffer");
    Frame {
        pts: buffer.pts(),
        width: info.width(),
        height: info.height(),
        rois: meta::rois(buffer),
        classes: meta::frame_classifications(buffer),
    }
}

/// Runs a gst-launch description ending in `appsink name=sink` until EOS or an error.
pub fn run(description: &str) -> Run {
    let outcome = run_sinks(description, &["sink"]);
    Run {
        frames: outcome.samples("sink").iter().map(frame).collect(),
        errors: outcome.errors,
    }
}

/// Runs a gst-launch description (ending in a sink that is not an appsink) to EOS; panics
/// with the error otherwise. Returns the pipeline, stopped, to read element properties.
pub fn run_to_eos(description: &str) -> gst::Pipeline {
    init();
    let pipeline = gst::parse::launch(description)
        .unwrap_or_else(|e| panic!("pipeline {description}: {e}"))
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
    play_to_eos(&pipeline);
    pipeline
}

/// Plays a built pipeline to EOS and stops it; panics with the error otherwise.
pub fn play_to_eos(pipeline: &gst::Pipeline) {
    pipeline.set_state(gst::State::Playing).expect("to PLAYING");
    let msg = pipeline
        .bus()
        .expect("bus")
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(120),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("EOS or an error within 120 s");
    pipeline.set_state(gst::State::Null).expect("to NULL");
    assert!(matches!(msg.view(), gst::MessageView::Eos(_)), "{msg:?}");
}

/// The text of a sample's buffer (a JSON document).
pub fn text(sample: &gst::Sample) -> String {
    let buffer = sample.buffer().expect("buffer");
    let map = buffer.map_readable().expect("readable buffer");
    String::from_utf8(map.to_vec()).expect("UTF-8")
}

/// Checks a document against tests/lva_inference.schema.json (written from the LVA contract).
pub fn check_lva_schema(document: &serde_json::Value) -> Result<(), String> {
    static SCHEMA: std::sync::OnceLock<(boon::Schemas, boon::SchemaIndex)> =
        std::sync::OnceLock::new();
    let (schemas, index) = SCHEMA.get_or_init(|| {
        let path = root().join("tests/lva_inference.schema.json");
        let text = std::fs::read_to_string(&path).expect("the schema file");
        let json = serde_json::from_str(&text).expect("the schema is JSON");
        let mut schemas = boon::Schemas::new();
        let mut compiler = boon::Compiler::new();
        compiler
            .add_resource("lva_inference.schema.json", json)
            .expect("schema resource");
        let index = compiler
            .compile("lva_inference.schema.json", &mut schemas)
            .expect("the schema compiles");
        (schemas, index)
    });
    schemas
        .validate(document, *index)
        .map_err(|e| format!("{e:#}"))
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

/// A TCP port free on 127.0.0.1 right now (for a child process that needs a port given).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}
