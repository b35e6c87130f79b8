//! The second-stage benchmark (issue 19): `ovinfer inference-region=roi-list` on frames with 10
//! ROIs each, the ROIs inferred one at a time (`nireq=1`, the latency hint: one OpenVINO stream
//! with every core on each inference) against the pool (`nireq=4`, the throughput hint: one
//! stream per core, ROIs in parallel), and the pool with batches of 4 ROIs where the model can
//! batch. Four models: PP-OCRv4's text recogniser (reading ten signs: its default 320x48 input,
//! each crop fitted to height 48), BlazeFace (a real detector, 128x128), the SSD (a real
//! detector, 300x300, the heaviest) and the tiny colour classifier (16x16: what is left is the
//! element's own cost per ROI).
//!
//! The recogniser's frame is real text: benches/roi_text.py draws ten signs of printed text on a
//! photo (1280x720, made into a scratch folder and removed at the end), decoded and converted to
//! I420 once and repeated by imagefreeze, the ROIs on the signs; every run must read every sign
//! as printed on every frame, so that a fast but wrong path cannot win. The other models get
//! grey 1280x720 I420 frames from videotestsrc (cheap to make, and a CNN costs the same whatever
//! the pixels) with 10 ROIs of 200x160. ROIs are attached by a pad probe; the clock runs from
//! PLAYING (after pre-roll: compilation and the warm-up excluded) to EOS. The CPU time of the
//! process over the same span (from /proc/self/stat) divided by the wall time says how many of
//! the cores were busy, and per ROI what an ROI costs. OpenVINO's own `benchmark_app -hint
//! throughput` on each real model (the recogniser at `-shape [1,3,48,320]`), run in the same
//! rounds, is the ceiling at that moment: on a shared machine the other processes take their
//! share of the cores from both alike. Runs are interleaved in rounds (the machine is noisy);
//! the ratios are of the means, and the load average is printed before, after and with each run.
//!
//! `cargo bench --bench roi`; OVLVA_BENCH_ROUNDS (default 3) and OVLVA_BENCH_SCALE (default 1,
//! multiplies the frames per run) change the length, OVLVA_BENCH_MODELS (e.g. `PP-OCR` or
//! `SSD,colour`) picks the models by name.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use common::{cpu_seconds, env_u64, load, root};
use gst::prelude::*;

/// ROIs per frame.
const ROIS: u32 = 10;

/// An ROI: x, y, width, height in pixels.
type Rect = (u32, u32, u32, u32);

/// The frames of a case and the ROIs on them.
enum Scene {
    /// videotestsrc's grey 1280x720 frames with two rows of five 200x160 ROIs.
    Grey,
    /// The picture benches/roi_text.py makes: ten signs of printed text on a photo, with the
    /// ROIs on the signs.
    Signs,
}

/// A scene made: the source's gst-launch description (`{frames}` for the number of frames),
/// the ROIs, and what the signs say (empty for the grey frames).
struct Made {
    source: String,
    rois: Vec<Rect>,
    texts: Vec<String>,
}

impl Scene {
    /// Makes the scene's frames; the picture goes into `dir`.
    fn make(&self, dir: &std::path::Path) -> Made {
        match self {
            Scene::Grey => Made {
                source: "videotestsrc num-buffers={frames} pattern=solid-color \
                         foreground-color=0xff808080 \
                         ! video/x-raw,format=I420,width=1280,height=720,framerate=25/1"
                    .to_string(),
                rois: (0..ROIS)
                    .map(|i| (40 + (i % 5) * 240, 120 + (i / 5) * 280, 200, 160))
                    .collect(),
                texts: Vec::new(),
            },
            Scene::Signs => {
                let picture = dir.join("signs.png");
                let out = std::process::Command::new(root(".venv/bin/python"))
                    .arg(root("benches/roi_text.py"))
                    .arg(&picture)
                    .output()
                    .expect("python runs (make setup)");
                assert!(
                    out.status.success(),
                    "roi_text.py: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let (mut rois, mut texts) = (Vec::new(), Vec::new());
                for line in String::from_utf8_lossy(&out.stdout).lines() {
                    let mut parts = line.splitn(5, ' ');
                    let mut number = || -> u32 {
                        parts
                            .next()
                            .and_then(|v| v.parse().ok())
                            .unwrap_or_else(|| panic!("roi_text.py: {line}"))
                    };
                    rois.push((number(), number(), number(), number()));
                    texts.push(parts.next().unwrap_or_default().to_string());
                }
                assert_eq!(rois.len(), ROIS as usize, "roi_text.py's signs");
                Made {
                    // Decoded and converted once: imagefreeze repeats the I420 frame.
                    source: format!(
                        "filesrc location={} ! pngdec ! videoconvert \
                         ! video/x-raw,format=I420,width=1280,height=720 \
                         ! imagefreeze num-buffers={{frames}}",
                        picture.display()
                    ),
                    rois,
                    texts,
                }
            }
        }
    }
}

/// A scratch folder for the scene's picture, removed when dropped (a failed run included).
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let dir = std::env::temp_dir().join(format!("ovlva-bench-roi-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch folder");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
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
    scene: Scene,
    frames: u64,
    settings: &'static [(&'static str, &'static str)],
    /// benchmark_app's further arguments for a real model (the input shape of a dynamic one);
    /// `None`: not run.
    ceiling: Option<&'static [&'static str]>,
    /// The model's input size: whole frames of it are inferred too (`pool` settings).
    input: (u32, u32),
}

/// One run's measure.
#[derive(Debug, Clone)]
struct Measure {
    rois_per_second: f64,
    /// CPU seconds per wall second: 2.0 is both cores busy.
    cores: f64,
    /// The text read on each ROI of the frames (the same on every frame), "" where none.
    texts: Vec<String>,
}

impl Measure {
    /// CPU milliseconds per ROI.
    fn cpu_ms(&self) -> f64 {
        self.cores / self.rois_per_second * 1000.0
    }
}

/// Runs `frames` frames through `ovinfer {props}`: the scene's 1280x720 frames with its ROIs
/// attached, or (`whole`: the model's input size) grey frames of that size inferred whole,
/// `ROIS` times as many, for the element's cost per inference on whole frames.
fn run(model: &str, props: &str, frames: u64, scene: &Made, whole: Option<(u32, u32)>) -> Measure {
    let (source, region, frames, per_frame) = match whole {
        None => (
            scene.source.replace("{frames}", &frames.to_string()),
            "roi-list",
            frames,
            u64::from(ROIS),
        ),
        Some((width, height)) => (
            format!(
                "videotestsrc num-buffers={} pattern=solid-color foreground-color=0xff808080 \
                 ! video/x-raw,format=I420,width={width},height={height},framerate=25/1",
                frames * u64::from(ROIS)
            ),
            "full-frame",
            frames * u64::from(ROIS),
            1,
        ),
    };
    let description = format!(
        "{source} ! identity name=tag \
         ! ovinfer name=infer model={} inference-region={region} {props} ! fakesink",
        root(model)
    );
    let pipeline = common::launch(&description);
    let tag = pipeline.by_name("tag").and_then(|t| t.static_pad("src"));
    let rois = scene.rois.clone();
    tag.expect("identity tag")
        .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(b) = info.buffer_mut()
                && whole.is_none()
            {
                let b = b.make_mut();
                for &rect in &rois {
                    gst_video::VideoRegionOfInterestMeta::add(b, "text", rect);
                }
            }
            gst::PadProbeReturn::Ok
        });
    let left = common::count_buffers(&pipeline, "infer", "src");
    // The text read on each ROI of every frame.
    let read = Arc::new(Mutex::new(Vec::<Vec<String>>::new()));
    let reading = read.clone();
    pipeline
        .by_name("infer")
        .and_then(|i| i.static_pad("src"))
        .expect("ovinfer")
        .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(b) = info.buffer() {
                let texts = b
                    .iter_meta::<gst_video::VideoRegionOfInterestMeta>()
                    .map(|m| {
                        m.param("text")
                            .and_then(|s| s.get::<String>("label").ok())
                            .unwrap_or_default()
                    })
                    .collect();
                reading.lock().expect("reads").push(texts);
            }
            gst::PadProbeReturn::Ok
        });
    common::preroll(&pipeline);
    let before = left.load(std::sync::atomic::Ordering::Relaxed);
    let cpu = cpu_seconds();
    let seconds = common::play(&pipeline, 1);
    let cpu = cpu_seconds() - cpu;
    let infer = pipeline.by_name("infer").expect("ovinfer");
    let inferred = infer.property::<u64>("rois-inferred") + infer.property::<u64>("inferences")
        - if whole.is_none() { frames } else { 0 };
    pipeline.set_state(gst::State::Null).expect("null");
    assert_eq!(inferred, frames * per_frame, "every ROI or frame inferred");
    let frames_timed = left.load(std::sync::atomic::Ordering::Relaxed) - before;
    let read = read.lock().expect("reads");
    let texts = read.first().cloned().unwrap_or_default();
    if let Some(other) = read.iter().find(|t| **t != texts) {
        panic!("{props}: frames read differently: {texts:?} and {other:?}");
    }
    Measure {
        rois_per_second: (frames_timed * per_frame) as f64 / seconds,
        cores: cpu / seconds,
        texts,
    }
}

fn main() {
    common::init();
    let rounds = env_u64("OVLVA_BENCH_ROUNDS", 3);
    let scale = env_u64("OVLVA_BENCH_SCALE", 1).max(1);
    let only = std::env::var("OVLVA_BENCH_MODELS").unwrap_or_default();
    let cases = [
        Case {
            name: "PP-OCRv4 rec",
            model: "models/ppocr/ch_PP-OCRv4_rec_infer.onnx",
            scene: Scene::Signs,
            frames: 20,
            settings: &[SERIAL, POOL, BATCHED],
            ceiling: Some(&["-shape", "[1,3,48,320]"]),
            input: (320, 48),
        },
        Case {
            name: "BlazeFace",
            model: "models/blazeface/face_detection_short_range.tflite",
            scene: Scene::Grey,
            frames: 60,
            settings: &[SERIAL, POOL, BATCHED],
            ceiling: Some(&[]),
            input: (128, 128),
        },
        Case {
            name: "SSD",
            model: "models/ssd_mobilenet_v2_coco/ssd_mobilenet_v2_coco.xml",
            scene: Scene::Grey,
            frames: 12,
            // The SSD IR cannot be reshaped to a batch.
            settings: &[SERIAL, POOL],
            ceiling: Some(&[]),
            input: (300, 300),
        },
        Case {
            name: "colour",
            model: "models/tiny/colour_classifier.onnx",
            scene: Scene::Grey,
            frames: 300,
            settings: &[SERIAL, POOL, BATCHED],
            ceiling: None,
            input: (16, 16),
        },
    ];
    let cases: Vec<&Case> = cases
        .iter()
        .filter(|c| only.is_empty() || only.split(',').any(|o| c.name.contains(o.trim())))
        .collect();
    let dir = Scratch::new();
    let scenes: Vec<Made> = cases.iter().map(|c| c.scene.make(&dir.0)).collect();
    let mut results: BTreeMap<(&str, &str), Vec<Measure>> = BTreeMap::new();
    let mut ceilings: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    // What the first run of each model read (serial's, in the first round).
    let mut reads: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let load_before = load();
    for round in 1..=rounds {
        for (case, scene) in cases.iter().zip(&scenes) {
            let name = case.name;
            if let Some(extra) = case.ceiling {
                let fps = common::benchmark_app_rate(&root(case.model), "throughput", 6, extra);
                eprintln!("round {round}: {name} benchmark_app -hint throughput: {fps:.0}/s");
                ceilings.entry(name).or_default().push(fps);
            }
            let frames = case.frames * scale;
            let whole = run(case.model, POOL.1, frames, scene, Some(case.input));
            eprintln!(
                "round {round}: {name} whole frames (pool): {:.0}/s, {:.2} cores (load {})",
                whole.rois_per_second,
                whole.cores,
                load()
            );
            results.entry((name, WHOLE)).or_default().push(whole);
            for (label, props) in case.settings {
                let m = run(case.model, props, frames, scene, None);
                eprintln!(
                    "round {round}: {name} {label}: {:.0} ROIs/s, {:.2} cores (load {})",
                    m.rois_per_second,
                    m.cores,
                    load()
                );
                // Every setting reads what the signs say (the recogniser reads the margin of a
                // white sign as a space), the same to the space as serial does: a fast but
                // wrong path cannot win.
                if !scene.texts.is_empty() {
                    let trimmed: Vec<&str> = m.texts.iter().map(|t| t.trim()).collect();
                    assert_eq!(trimmed, scene.texts, "{name} {label}: the signs read");
                    let serial = reads.entry(name).or_insert_with(|| m.texts.clone());
                    assert_eq!(&m.texts, serial, "{name} {label}: read as serial reads");
                }
                results.entry((name, label)).or_default().push(m);
            }
        }
    }
    drop(dir);
    let mean =
        |v: &[Measure], f: fn(&Measure) -> f64| common::mean(&v.iter().map(f).collect::<Vec<_>>());
    println!(
        "\nload average (1 min) {load_before} before, {} after",
        load()
    );
    for (name, texts) in &reads {
        println!("{name} read the signs, every run on every frame: {texts:?}");
    }
    println!(
        "\n{ROIS} ROIs per 1280x720 I420 frame, {rounds} rounds (means); serial = `{}`, \
         pool = `{}`, pool+batch = `{}`\n",
        SERIAL.1, POOL.1, BATCHED.1
    );
    println!(
        "| model | settings | ROIs/s | frames/s | cores busy | CPU ms per ROI | vs serial | of benchmark_app |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for case in &cases {
        let name = case.name;
        let base = mean(&results[&(name, SERIAL.0)], |m| m.rois_per_second);
        let ceiling = ceilings.get(name).map(|v| common::mean(v));
        if let Some(c) = ceiling {
            println!("| {name} | benchmark_app -hint throughput | {c:.0} | | | | | 1.00 |");
        }
        for label in case.settings.iter().map(|s| s.0).chain([WHOLE]) {
            let runs = &results[&(name, label)];
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
