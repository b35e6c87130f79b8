//! The tracking benchmark (issue 18), two parts:
//!
//! - `tracker`: the cost per frame of the tracker alone (`gstovlva::ovtrack::tracker`, no
//!   GStreamer), with 50 objects moving across the frame with noisy boxes and confidences, for
//!   `bytetrack` and `iou`: the median (and p99) of the time of `Tracker::update` over 20 000
//!   frames, against the goal of under 50 µs per frame; then with detections on every
//!   third frame, the others `Tracker::predict` (as after `ovinfer interval=3`).
//! - `density`: what detecting on every third frame and tracking buys, on the SSD and
//!   bikes.mp4 (looped without a gap to OVLVA_BENCH_FRAMES, default 1000): the frames per second
//!   of `ovinfer interval=1 ! fakesink` against `ovinfer interval=3 ! ovtrack ! fakesink` (and
//!   `ovinfer interval=3 ! fakesink`, to see what the tracker costs), decoding included,
//!   `fakesink sync=false`, timed from PLAYING to EOS after pre-roll (compilation excluded),
//!   taking turns in OVLVA_BENCH_ROUNDS rounds (default 3). The ratio of the rates is how many
//!   more streams of the same kind one machine can follow.
//!
//! `cargo bench --locked --bench ovtrack` runs both; `-- tracker` or `-- density` one of them.

mod common;

use common::{env_u64, mean, root};

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use gst::prelude::*;
use gstovlva::ovtrack::geometry::BBox;
use gstovlva::ovtrack::tracker::{Config, Detection, Kind, Tracker};

const MODEL: &str = "models/ssd_mobilenet_v2_coco/ssd_mobilenet_v2_coco.xml";
const VIDEO: &str = "media/bikes.mp4";
/// Frames in bikes.mp4.
const VIDEO_FRAMES: u64 = 250;
/// Objects per frame in the tracker part.
const OBJECTS: usize = 50;
/// Issue 18's goal for the tracker's cost per frame.
const GOAL_US: f64 = 50.0;

/// xorshift64*: the same pseudo-random scene on every run, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in -1..1.
    fn signed(&mut self) -> f64 {
        2.0 * self.next() - 1.0
    }
}

/// One object of the synthetic scene: a box of its own size moving at its own speed, bouncing
/// off the frame's edges.
struct Object {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
    vx: f64,
    vy: f64,
    label_id: i32,
}

/// `OBJECTS` objects (a 4×4 % to 10×20 % box each, moving by up to 0.4 % of the frame's width
/// and 0.2 % of its height per frame, about 2.5 px at 640×360, and crossing each other) and the
/// detections of each frame: every corner moved by up to 0.2 % of the frame, a confidence of
/// 0.4–1 (1 in 6 under the high threshold, to the second stage), 5 % of the objects missed on
/// each frame.
struct Scene {
    rng: Rng,
    objects: Vec<Object>,
}

impl Scene {
    fn new(seed: u64) -> Scene {
        let mut rng = Rng(seed);
        let objects = (0..OBJECTS)
            .map(|i| {
                let w = 0.04 + 0.06 * rng.next();
                let h = 0.04 + 0.16 * rng.next();
                Object {
                    x: rng.next() * (1.0 - w),
                    y: rng.next() * (1.0 - h),
                    w,
                    h,
                    vx: 0.004 * rng.signed(),
                    vy: 0.002 * rng.signed(),
                    label_id: [1, 2, 3][i % 3],
                }
            })
            .collect();
        Scene { rng, objects }
    }

    fn frame(&mut self) -> Vec<Detection> {
        let mut out = Vec::with_capacity(OBJECTS);
        for o in &mut self.objects {
            o.x += o.vx;
            o.y += o.vy;
            if o.x < 0.0 || o.x + o.w > 1.0 {
                o.vx = -o.vx;
                o.x = o.x.clamp(0.0, 1.0 - o.w);
            }
            if o.y < 0.0 || o.y + o.h > 1.0 {
                o.vy = -o.vy;
                o.y = o.y.clamp(0.0, 1.0 - o.h);
            }
        }
        for i in 0..self.objects.len() {
            if self.rng.next() < 0.05 {
                continue;
            }
            let o = &self.objects[i];
            let (x, y, w, h, label_id) = (o.x, o.y, o.w, o.h, o.label_id);
            let mut noise = || 0.002 * self.rng.signed();
            let bbox = BBox::new(x + noise(), y + noise(), x + w + noise(), y + h + noise());
            out.push(Detection {
                bbox,
                confidence: 0.4 + 0.6 * self.rng.next(),
                label_id,
                label: ["person", "bicycle", "car"][(label_id - 1) as usize].to_string(),
                model: "bench".to_string(),
            });
        }
        out
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

/// The tracker part: µs per frame of `update` (every frame detected) and of `update` + `predict`
/// with detections on every third frame.
fn tracker_part() {
    let frames = env_u64("OVLVA_BENCH_TRACKER_FRAMES", 20_000) as usize;
    println!(
        "ovtrack's tracker alone: {OBJECTS} objects moving with noise, {frames} frames, \
         default settings (min-hits 3, max-age 30)"
    );
    println!(
        "{:<30} {:>10} {:>10} {:>10} {:>10} {:>6} {:>6}",
        "run", "update µs", "p99 µs", "predict µs", "mean µs", "ids", "goal"
    );
    for kind in [Kind::ByteTrack, Kind::Iou] {
        for interval in [1usize, 3] {
            let mut scene = Scene::new(0x0ba5_eba1_1c0d_e5ee);
            // The detections are made beforehand: only the tracker is timed.
            let dets: Vec<Vec<Detection>> = (0..frames).map(|_| scene.frame()).collect();
            let mut tracker = Tracker::new(Config {
                kind,
                ..Config::default()
            });
            // Warm-up: the tracks exist and are confirmed before the timing.
            for d in dets.iter().take(100) {
                tracker.update(d);
            }
            let (mut updates, mut predicts) = (Vec::with_capacity(frames), Vec::new());
            let mut found = 0usize;
            for (n, d) in dets.iter().enumerate().skip(100) {
                let start = Instant::now();
                if n % interval == 0 {
                    let ids = tracker.update(d);
                    found += ids.iter().filter(|i| i.is_some()).count();
                    updates.push(start.elapsed());
                } else {
                    found += tracker.predict().len();
                    predicts.push(start.elapsed());
                }
                std::hint::black_box(&found);
            }
            let total: Duration = updates.iter().chain(&predicts).sum();
            let mean = total.as_secs_f64() * 1e6 / (updates.len() + predicts.len()) as f64;
            updates.sort();
            predicts.sort();
            let median = percentile(&updates, 0.5);
            let name = format!(
                "{} {}",
                match kind {
                    Kind::ByteTrack => "bytetrack",
                    Kind::Iou => "iou",
                },
                if interval == 1 {
                    "every frame".to_string()
                } else {
                    format!("detections every {interval}")
                }
            );
            println!(
                "{name:<30} {median:>10.1} {:>10.1} {:>10} {mean:>10.1} {:>6} {:>6}",
                percentile(&updates, 0.99),
                if predicts.is_empty() {
                    "-".to_string()
                } else {
                    format!("{:.1}", percentile(&predicts, 0.5))
                },
                tracker.tracks_created(),
                if median < GOAL_US { "met" } else { "MISSED" }
            );
        }
    }
    println!(
        "(update: median time of a frame with detections, p99 its 99th percentile; predict: \
         median of a skipped frame; mean: over all frames; ids: ids given for the {OBJECTS} \
         objects; goal: update under {GOAL_US} µs)"
    );
}

/// Frames per second of one looped run of `middle` (between the decoder and fakesink), timed from
/// PLAYING to EOS after pre-roll, frames counted at the fakesink.
fn looped_fps(middle: &str, loops: u64) -> f64 {
    let description = format!(
        "filesrc location={} ! decodebin ! videoconvert ! queue ! {middle} \
         ! fakesink name=out sync=false",
        root(VIDEO)
    );
    let pipeline = common::launch(&description);
    let count = common::count_buffers(&pipeline, "out", "sink");
    common::preroll(&pipeline);
    // Frames are counted from the rewind on (the pre-rolled one, which passes again, included).
    count.store(0, Ordering::Relaxed);
    common::rewind(&pipeline, loops);
    let seconds = common::play(&pipeline, loops);
    pipeline.set_state(gst::State::Null).expect("null");
    let frames = count.load(Ordering::Relaxed);
    assert!(
        frames >= loops * VIDEO_FRAMES - 2,
        "{middle}: {frames} frames out of {}",
        loops * VIDEO_FRAMES
    );
    frames as f64 / seconds
}

/// The density part: detect every frame against detect every third frame and track.
fn density_part() {
    let frames = env_u64("OVLVA_BENCH_FRAMES", 1000);
    let rounds = env_u64("OVLVA_BENCH_ROUNDS", 3) as usize;
    let loops = frames.div_ceil(VIDEO_FRAMES).max(1);
    let infer = |interval: u32| {
        format!(
            "ovinfer model={} performance-hint=throughput interval={interval}",
            root(MODEL)
        )
    };
    let runs = [
        ("(a) ovinfer interval=1", infer(1)),
        (
            "(b) ovinfer interval=3 ! ovtrack",
            format!("{} ! ovtrack", infer(3)),
        ),
        ("(c) ovinfer interval=3", infer(3)),
    ];
    println!(
        "\nDetect every frame or every third frame and track: SSD on {VIDEO} x{loops} \
         ({} frames), {rounds} rounds taking turns",
        loops * VIDEO_FRAMES
    );
    // Warm-up: the page cache, OpenVINO's plugin.
    looped_fps(&runs[0].1, 1);
    let mut fps = vec![Vec::new(); runs.len()];
    for _ in 0..rounds {
        for (i, (_, middle)) in runs.iter().enumerate() {
            fps[i].push(looped_fps(middle, loops));
        }
    }
    println!("{:<36} {:>9}  per round", "run", "mean fps");
    for ((name, _), f) in runs.iter().zip(&fps) {
        let each: Vec<String> = f.iter().map(|x| format!("{x:.1}")).collect();
        println!("{name:<36} {:>9.1}  {}", mean(f), each.join(", "));
    }
    let ratio = |a: usize, b: usize| {
        let each: Vec<String> = fps[a]
            .iter()
            .zip(&fps[b])
            .map(|(x, y)| format!("{:.2}", x / y))
            .collect();
        format!("{:.2} ({})", mean(&fps[a]) / mean(&fps[b]), each.join(", "))
    };
    println!(
        "(b)/(a): density gain of interval=3 + ovtrack  {}",
        ratio(1, 0)
    );
    println!(
        "(b)/(c): ovtrack's cost in the pipeline       {}",
        ratio(1, 2)
    );
}

fn main() {
    common::init();
    let parts = ["tracker", "density"];
    let asked: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| parts.contains(&a.as_str()))
        .collect();
    let run = |part: &str| asked.is_empty() || asked.iter().any(|a| a == part);
    if run("tracker") {
        tracker_part();
    }
    if run("density") {
        density_part();
    }
}
