//! Helpers shared by the benchmarks: paths and settings, CPU time and load, OpenVINO's
//! `benchmark_app`, and running pipelines (pre-rolled, timed, looped).
#![allow(dead_code)]

use std::ffi::OsStr;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gst::prelude::*;

pub fn init() {
    gst::init().expect("GStreamer initialises");
    gstovlva::plugin_register_static().expect("the ovlva plugin registers");
}

/// A path below the repository's root.
pub fn root(path: &str) -> String {
    format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))
}

/// The environment variable `name` as a number, or `default`.
pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// CPU seconds (user + system) from `/proc/{pid}/stat` (`pid` a number or `self`): the
/// process's own, or with `children` its finished and waited-for children's. 0 if it is gone.
pub fn proc_cpu(pid: &str, children: bool) -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    let per_second = *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    });
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command's closing bracket (the command may hold spaces): the state
    // is the first; utime, stime, cutime and cstime the 12th to the 15th.
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
    let first = if children { 13 } else { 11 };
    (ticks(first) + ticks(first + 1)) / per_second
}

/// CPU seconds this process has used so far, all threads: unlike wall time, not inflated by
/// other processes on a shared machine.
pub fn cpu_seconds() -> f64 {
    proc_cpu("self", false)
}

/// The 1-minute load average.
pub fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or("?")
        .to_string()
}

/// Runs OpenVINO's `benchmark_app` (`make setup` installs it) with `args`; its standard output.
pub fn benchmark_app<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) -> String {
    let out = std::process::Command::new(root(".venv/bin/benchmark_app"))
        .args(args)
        .output()
        .expect("benchmark_app runs (make setup installs it)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The number after `key` (e.g. `Throughput:`, `Count:`) in benchmark_app's output.
pub fn reported(output: &str, key: &str) -> f64 {
    output
        .lines()
        .find_map(|l| l.split(key).nth(1))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in benchmark_app's output:\n{output}"))
}

/// `benchmark_app -d CPU -hint {hint} -m {model}` for `seconds`, with `extra` arguments:
/// inferences per second.
pub fn benchmark_app_rate(model: &str, hint: &str, seconds: u32, extra: &[&str]) -> f64 {
    let seconds = seconds.to_string();
    let mut args = vec!["-m", model, "-d", "CPU", "-hint", hint, "-t", &seconds];
    args.extend_from_slice(extra);
    reported(&benchmark_app(args), "Throughput:")
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

/// A gst-launch description parsed into a pipeline.
pub fn launch(description: &str) -> gst::Pipeline {
    gst::parse::launch(description)
        .unwrap_or_else(|e| panic!("{description}: {e}"))
        .downcast::<gst::Pipeline>()
        .expect("a pipeline")
}

/// Waits (10 minutes at most) for a message of one of `kinds` on the pipeline's bus and
/// returns it; panics on an error message instead, naming the element and the description.
pub fn wait(pipeline: &gst::Pipeline, kinds: &[gst::MessageType]) -> gst::Message {
    let mut all = kinds.to_vec();
    all.push(gst::MessageType::Error);
    let msg = pipeline
        .bus()
        .expect("bus")
        .timed_pop_filtered(gst::ClockTime::from_seconds(600), &all)
        .unwrap_or_else(|| panic!("{}: no {kinds:?} in 10 minutes", pipeline.name()));
    if let gst::MessageView::Error(e) = msg.view() {
        panic!(
            "{}: {}: {} ({:?})",
            pipeline.name(),
            e.src().map(|s| s.path_string()).unwrap_or_default(),
            e.error(),
            e.debug()
        );
    }
    msg
}

/// Counts the buffers passing `pad` of the element named `element` (from 0 at the call).
pub fn count_buffers(pipeline: &gst::Pipeline, element: &str, pad: &str) -> Arc<AtomicU64> {
    let count = Arc::new(AtomicU64::new(0));
    let counted = count.clone();
    pipeline
        .by_name(element)
        .and_then(|e| e.static_pad(pad))
        .unwrap_or_else(|| panic!("no pad {element}.{pad}"))
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            counted.fetch_add(1, Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        });
    count
}

/// Brings the pipeline to PAUSED and waits for its pre-roll (models compiled, first frame in).
pub fn preroll(pipeline: &gst::Pipeline) {
    pipeline.set_state(gst::State::Paused).expect("paused");
    wait(pipeline, &[gst::MessageType::AsyncDone]);
}

fn segment(more: bool) -> gst::SeekFlags {
    if more {
        gst::SeekFlags::SEGMENT
    } else {
        gst::SeekFlags::empty()
    }
}

/// Seeks a pre-rolled pipeline back to the start, flushing, for `play(pipeline, loops)`: the
/// pre-rolled frame passes again.
pub fn rewind(pipeline: &gst::Pipeline, loops: u64) {
    pipeline
        .seek_simple(
            gst::SeekFlags::FLUSH | segment(loops > 1),
            gst::ClockTime::ZERO,
        )
        .expect("seekable");
    wait(pipeline, &[gst::MessageType::AsyncDone]);
}

/// Plays a pre-rolled pipeline to EOS, the media `loops` times without a gap (segment seeks:
/// every loop but the last ends in SEGMENT_DONE, after `rewind(pipeline, loops)`); the seconds
/// from PLAYING to EOS. The pipeline is left at EOS for its elements to be read.
pub fn play(pipeline: &gst::Pipeline, loops: u64) -> f64 {
    let start = Instant::now();
    pipeline.set_state(gst::State::Playing).expect("playing");
    for done in 1..loops {
        wait(pipeline, &[gst::MessageType::SegmentDone]);
        pipeline
            .seek_simple(segment(done + 1 < loops), gst::ClockTime::ZERO)
            .expect("seekable");
    }
    wait(pipeline, &[gst::MessageType::Eos]);
    start.elapsed().as_secs_f64()
}

/// Seconds a gst-launch description takes from PLAYING to EOS; `attach` is called on every
/// buffer leaving the element named `tag`, if there is one (to add meta).
pub fn pipeline_time(
    description: &str,
    attach: impl Fn(&mut gst::BufferRef) + Send + Sync + 'static,
) -> f64 {
    let pipeline = launch(description);
    if let Some(tag) = pipeline.by_name("tag").and_then(|t| t.static_pad("src")) {
        tag.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(b) = info.buffer_mut() {
                attach(b.make_mut());
            }
            gst::PadProbeReturn::Ok
        });
    }
    let elapsed = play(&pipeline, 1);
    pipeline.set_state(gst::State::Null).expect("null");
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

/// bikes.mp4 decoded, through the SSD (`ovinfer`) and `lvajson`, into `tail`.
pub fn bikes(tail: &str) -> String {
    format!(
        "filesrc location={} ! decodebin ! videoconvert \
         ! ovinfer model={} labels={} ! lvajson ! {tail}",
        root("media/bikes.mp4"),
        root("models/ssd_mobilenet_v2_coco/ssd_mobilenet_v2_coco.xml"),
        root("models/ssd_mobilenet_v2_coco/labels.txt"),
    )
}

/// A document as bikes.mp4 through the SSD makes them (195 bytes; their median is 196).
pub const DOC: &[u8] = br#"{"inferences":[{"type":"entity","subtype":"ssd_mobilenet_v2_coco","entity":{"tag":{"value":"person","confidence":0.73046875},"box":{"l":0.2542913,"t":0.004008293,"w":0.34160602,"h":0.9959917}}}]}"#;

/// Seconds to push `docs` copies of [`DOC`] from an appsrc into `sink` (a gst-launch sink
/// description with `name=sink` and a `sent` counter) to EOS; every one must be sent.
pub fn deliver(sink: &str, docs: usize) -> f64 {
    let pipeline = launch(&format!(
        "appsrc name=src format=time caps=application/json ! {sink}"
    ));
    let src = pipeline
        .by_name("src")
        .and_then(|s| s.downcast::<gst_app::AppSrc>().ok())
        .expect("appsrc");
    let start = Instant::now();
    pipeline.set_state(gst::State::Playing).expect("playing");
    for n in 0..docs {
        let mut b = gst::Buffer::from_slice(DOC);
        b.get_mut()
            .expect("writable")
            .set_pts(gst::ClockTime::from_mseconds(40 * n as u64));
        src.push_buffer(b).expect("push");
    }
    src.end_of_stream().expect("eos");
    wait(&pipeline, &[gst::MessageType::Eos]);
    let elapsed = start.elapsed().as_secs_f64();
    let sent = pipeline
        .by_name("sink")
        .expect("sink")
        .property::<u64>("sent");
    pipeline.set_state(gst::State::Null).expect("null");
    assert_eq!(sent, docs as u64, "{sink}: every document sent");
    elapsed
}
