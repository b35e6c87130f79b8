//! The second-stage benchmark (issue 19): `ovinfer inference-region=roi-list` on frames with 10
//! ROIs each, the ROIs inferred one at a time (`nireq=1`, the latency hint: one OpenVINO stream
//! with every core on each inference) against the pool (`nireq=4`, the throughput hint: one
//! stream per core, ROIs in parallel), and the pool with batches of 4 ROIs where the model can
//! batch. Three models: BlazeFace (a real detector, 128x128, faces inside the boxes), the SSD
//! (a real detector, 300x300, the heaviest) and the tiny colour classifier (16x16: what is left
//! is the element's own cost per ROI).
//!
//! Frames are 1280x720 I420 from videotestsrc (a grey frame: cheap to make, and a CNN costs the
//! same whatever the pixels) with 10 ROIs of 200x160 attached by a pad probe;
//! the clock runs from PLAYING (after pre-roll: compilation and the warm-up excluded) to EOS.
//! The CPU time of the process over the same span (from /proc/self/stat) divided by the wall
//! time says how many of the cores were busy, and per ROI what an ROI costs. OpenVINO's own
//! `benchmark_app -hint throughput` on each real model, run in the same rounds, is the ceiling
//! at that moment: on a shared machine the other processes take their share of the cores from
//! both alike. Runs are interleaved in rounds (the machine is noisy); the ratios are of the
//! means, and the load average before and after is printed.
//!
//! `cargo bench --bench roi`; OVLVA_BENCH_ROUNDS (default 3) and OVLVA_BENCH_SCALE (default 1,
//! multiplies the frames per run) change the length.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use gst::prelude::*;

/// ROIs per frame.
const ROIS: u32 = 10;

fn root(path: &str) -> String {
    format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU seconds this process has used (user + system).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command's closing bracket: state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let hz = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0);
    (ticks(11) + ticks(12)) / hz
}

/// The 10 ROIs: two rows of five 200x160 boxes.
fn attach(buffer: &mut gst::BufferRef) {
    for i in 0..ROIS {
        let rect = (40 + (i % 5) * 240, 120 + (i / 5) * 280, 200, 160);
        gst_video::VideoRegionOfInterestMeta::add(buffer, "thing", rect);
    }
}

/// The settings compared: (label, ovinfer properties).
const SERIAL: (&str, &str) = ("serial", "nireq=1 performance-hint=latency");
const POOL: (&str, &str) = ("pool", "nireq=4 performance-hint=throughput");
const BATCHED: (&str, &str) = (
    "pool+batch",
    "nireq=2 batch-size=4 performance-hint=throughput",
);

/// The label of whole frames of the model's size, inferred with the pool's settings.
const WHOLE: &str = "whole frames (pool)";

/// A model benchmarked, with its frames per run and the settings compared.
struct Case {
    name: &'static str,
    model: &'static str,
    frames: u64,
    settings: &'static [(&'static str, &'static str)],
    /// Whether benchmark_app runs it too (a real model).
    ceiling: bool,
    /// The model's input size: whole frames of it are inferred too (`pool` settings).
    input: (u32, u32),
}

/// One run's measure.
#[derive(Debug, Clone, Copy)]
struct Measure {
    rois_per_second: f64,
    /// CPU seconds per wall second: 2.0 is both cores busy.
    cores: f64,
}

impl Measure {
    /// CPU milliseconds per ROI.
    fn cpu_ms(&self) -> f64 {
        self.cores / self.rois_per_second * 1000.0
    }
}

/// OpenVINO's `benchmark_app -hint throughput` on `model` for `seconds`: inferences per second.
fn benchmark_app(model: &str, seconds: u32) -> f64 {
    let out = std::process::Command::new(root(".venv/bin/benchmark_app"))
        .args(["-m", &root(model), "-d", "CPU", "-hint", "throughput", "-t"])
        .arg(seconds.to_string())
        .output()
        .expect("benchmark_app runs (make setup installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.split("Throughput:").nth(1))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no throughput in benchmark_app's output:\n{text}"))
}

/// The 1-minute load average.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or("?")
        .to_string()
}

/// Runs `frames` frames through `ovinfer {props}`: 1280x720 with the ROIs attached, or
/// (`whole`: the model's input size) frames of that size inferred whole, `ROIS` times as many,
/// for the element's cost per inference on whole frames.
fn run(model: &str, props: &str, frames: u64, whole: Option<(u32, u32)>) -> Measure {
    let ((width, height), region, frames, per_frame) = match whole {
        None => ((1280, 720), "roi-list", frames, u64::from(ROIS)),
        Some(size) => (size, "full-frame", frames * u64::from(ROIS), 1),
    };
    let description = format!(
        "videotestsrc num-buffers={frames} pattern=solid-color foreground-color=0xff808080 \
         ! video/x-raw,format=I420,width={width},height={height},framerate=25/1 ! identity name=tag \
         ! ovinfer name=infer model={} inference-region={region} {props} ! fakesink",
        root(model)
    );
    let pipeline = gst::parse::launch(&description)
        .expect("pipeline")
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
    let tag = pipeline.by_name("tag").and_then(|t| t.static_pad("src"));
    tag.expect("identity tag")
        .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(b) = info.buffer_mut()
                && whole.is_none()
            {
                attach(b.make_mut());
            }
            gst::PadProbeReturn::Ok
        });
    let left = Arc::new(AtomicU64::new(0));
    let counted = left.clone();
    let out = pipeline.by_name("infer").and_then(|i| i.static_pad("src"));
    out.expect("ovinfer")
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            counted.fetch_add(1, Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        });
    let bus = pipeline.bus().expect("bus");
    let wait = |kind: gst::MessageType| {
        let msg = bus
            .timed_pop_filtered(
                gst::ClockTime::from_seconds(600),
                &[kind, gst::MessageType::Error],
            )
            .expect("the pipeline answers");
        if let gst::MessageView::Error(e) = msg.view() {
            panic!("{description}: {} ({:?})", e.error(), e.debug());
        }
    };
    pipeline.set_state(gst::State::Paused).expect("paused");
    wait(gst::MessageType::AsyncDone);
    let before = left.load(Ordering::Relaxed);
    let (start, cpu) = (Instant::now(), cpu_seconds());
    pipeline.set_state(gst::State::Playing).expect("playing");
    wait(gst::MessageType::Eos);
    let (seconds, cpu) = (start.elapsed().as_secs_f64(), cpu_seconds() - cpu);
    let infer = pipeline.by_name("infer").expect("ovinfer");
    let inferred = infer.property::<u64>("rois-inferred") + infer.property::<u64>("inferences")
        - if whole.is_none() { frames } else { 0 };
    pipeline.set_state(gst::State::Null).expect("null");
    assert_eq!(inferred, frames * per_frame, "every ROI or frame inferred");
    let frames_timed = left.load(Ordering::Relaxed) - before;
    Measure {
        rois_per_second: (frames_timed * per_frame) as f64 / seconds,
        cores: cpu / seconds,
    }
}

fn main() {
    gst::init().expect("GStreamer initialises");
    gstovlva::plugin_register_static().expect("the ovlva plugin registers");
    let rounds = env_u64("OVLVA_BENCH_ROUNDS", 3);
    let scale = env_u64("OVLVA_BENCH_SCALE", 1).max(1);
    let cases = [
        Case {
            name: "BlazeFace",
            model: "models/blazeface/face_detection_short_range.tflite",
            frames: 60,
            settings: &[SERIAL, POOL, BATCHED],
            ceiling: true,
            input: (128, 128),
        },
        Case {
            name: "SSD",
            model: "models/ssd_mobilenet_v2_coco/ssd_mobilenet_v2_coco.xml",
            frames: 12,
            // The SSD IR cannot be reshaped to a batch.
            settings: &[SERIAL, POOL],
            ceiling: true,
            input: (300, 300),
        },
        Case {
            name: "colour",
            model: "models/tiny/colour_classifier.onnx",
            frames: 300,
            settings: &[SERIAL, POOL, BATCHED],
            ceiling: false,
            input: (16, 16),
        },
    ];
    let mut results: BTreeMap<(&str, &str), Vec<Measure>> = BTreeMap::new();
    let mut ceilings: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let load_before = load();
    for round in 1..=rounds {
        for Case {
            name,
            model,
            frames,
            settings,
            ceiling,
            input,
        } in &cases
        {
            if *ceiling {
                let fps = benchmark_app(model, 6);
                eprintln!("round {round}: {name} benchmark_app -hint throughput: {fps:.0}/s");
                ceilings.entry(name).or_default().push(fps);
            }
            let whole = run(model, POOL.1, frames * scale, Some(*input));
            eprintln!(
                "round {round}: {name} whole frames (pool): {:.0}/s, {:.2} cores",
                whole.rois_per_second, whole.cores
            );
            results.entry((name, WHOLE)).or_default().push(whole);
            for (label, props) in settings.iter() {
                let m = run(model, props, frames * scale, None);
                eprintln!(
                    "round {round}: {name} {label}: {:.0} ROIs/s, {:.2} cores",
                    m.rois_per_second, m.cores
                );
                results.entry((name, label)).or_default().push(m);
            }
        }
    }
    let mean =
        |v: &[Measure], f: fn(&Measure) -> f64| v.iter().map(f).sum::<f64>() / v.len() as f64;
    println!(
        "\nload average (1 min) {load_before} before, {} after",
        load()
    );
    println!(
        "\n{ROIS} ROIs per 1280x720 I420 frame, {rounds} rounds (means); serial = `{}`, \
         pool = `{}`, pool+batch = `{}`\n",
        SERIAL.1, POOL.1, BATCHED.1
    );
    println!(
        "| model | settings | ROIs/s | frames/s | cores busy | CPU ms per ROI | vs serial | of benchmark_app |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for Case { name, settings, .. } in &cases {
        let base = mean(&results[&(*name, SERIAL.0)], |m| m.rois_per_second);
        let ceiling = ceilings
            .get(name)
            .map(|v| v.iter().sum::<f64>() / v.len() as f64);
        if let Some(c) = ceiling {
            println!("| {name} | benchmark_app -hint throughput | {c:.0} | | | | | 1.00 |");
        }
        for label in settings.iter().map(|s| s.0).chain([WHOLE]) {
            let runs = &results[&(*name, label)];
            let rate = mean(runs, |m| m.rois_per_second);
            println!(
                "| {name} | {label} | {rate:.0} | {:.1} | {:.2} | {:.2} | {:.2}x | {} |",
                rate / f64::from(ROIS),
                mean(runs, |m| m.cores),
                mean(runs, Measure::cpu_ms),
                rate / base,
                ceiling.map_or("-".to_string(), |c| format!("{:.2}", rate / c))
            );
        }
    }
}
