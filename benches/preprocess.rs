//! What `pre-process-backend=ovinfer` costs per frame: a 1920x1080 frame converted to the SSD's
//! 300x300 RGB picture (colour conversion and bilinear resize in one pass), for I420, NV12,
//! YUY2 and BGRx, and a 640x272 I420 frame (bikes.mp4's), against OpenCV doing the same in the
//! same run (`cv2.cvtColor` to RGB at full size, then `cv2.resize(INTER_LINEAR)`, timed in
//! Python with OpenCV's own threads).
//!
//! cargo bench --bench preprocess

mod common;

use std::time::Duration;

use common::per_call;
use gst_video::VideoFormat;
use gstovlva::ovinfer::convert::{Converter, Layout, YuvMatrix};

const DST: (usize, usize) = (300, 300);

/// A pseudo-random frame of `layout`, planes packed.
fn frame(layout: Layout, src: (usize, usize)) -> Vec<Vec<u8>> {
    let mut seed = 7u32;
    layout
        .planes(src.0, src.1)
        .into_iter()
        .map(|(row, rows)| {
            (0..row * rows)
                .map(|_| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (seed >> 16) as u8
                })
                .collect()
        })
        .collect()
}

fn ours(format: VideoFormat, src: (usize, usize)) -> Duration {
    let layout = Layout::of(format).expect("a format ovinfer converts");
    let converter = Converter::new(layout, src, DST, YuvMatrix::new(0.299, 0.114, false), false)
        .expect("sizes");
    let planes = frame(layout, src);
    let strides: Vec<usize> = layout.planes(src.0, src.1).iter().map(|p| p.0).collect();
    let views: Vec<(&[u8], usize)> = planes
        .iter()
        .zip(&strides)
        .map(|(p, &s)| (p.as_slice(), s))
        .collect();
    let mut out = vec![0u8; converter.dst_len()];
    per_call(Duration::from_secs(2), || {
        assert!(converter.convert(&views, &mut out));
    })
}

/// OpenCV's time per frame for each format (name:width:height), from one Python run.
fn opencv(cases: &[String]) -> Vec<Duration> {
    let script = r#"
import sys, time, cv2, numpy as np
def codes(w, h): return {"I420": (cv2.COLOR_YUV2RGB_I420, (h * 3 // 2, w)), "NV12": (cv2.COLOR_YUV2RGB_NV12, (h * 3 // 2, w)),
         "YUY2": (cv2.COLOR_YUV2RGB_YUY2, (h, w, 2)), "BGRx": (cv2.COLOR_BGRA2RGB, (h, w, 4))}
rng = np.random.default_rng(7)
for case in sys.argv[1:]:
    name, w, h = case.split(":")
    code, shape = codes(int(w), int(h))[name]
    frame = rng.integers(0, 256, shape, dtype=np.uint8)
    run = lambda: cv2.resize(cv2.cvtColor(frame, code), (300, 300), interpolation=cv2.INTER_LINEAR)
    run()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < 2 or n < 100:
        run(); n += 1
    print((time.perf_counter() - start) / n)
"#;
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .args(cases)
        .output()
        .expect("the project's Python (make setup)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| Duration::from_secs_f64(l.trim().parse().expect("seconds")))
        .collect()
}

fn main() {
    common::init();
    let full = (1920, 1080);
    let cases = [
        ("I420", VideoFormat::I420, full),
        ("NV12", VideoFormat::Nv12, full),
        ("YUY2", VideoFormat::Yuy2, full),
        ("BGRx", VideoFormat::Bgrx, full),
        ("I420", VideoFormat::I420, (640, 272)),
    ];
    let names: Vec<String> = cases
        .iter()
        .map(|(name, _, (w, h))| format!("{name}:{w}:{h}"))
        .collect();
    let reference = opencv(&names);
    println!(
        "to 300x300 RGB, per frame               ovinfer    OpenCV (cvtColor + resize)   ovinfer/OpenCV"
    );
    for ((name, format, src), opencv) in cases.iter().zip(reference) {
        let t = ours(*format, *src);
        println!(
            "{:<40} {:>6.3} ms {:>12.3} ms {:>20.2}",
            format!("{name} {}x{}", src.0, src.1),
            t.as_secs_f64() * 1e3,
            opencv.as_secs_f64() * 1e3,
            t.as_secs_f64() / opencv.as_secs_f64()
        );
    }
}
