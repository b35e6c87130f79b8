//! ovoverlay cost per 1920x1080 frame with 10 labelled boxes, for BGRx, I420 and NV12.
//!
//! cargo bench --bench ovoverlay
//!
//! For each format, the same videotestsrc frames (with the same 10 ROIs attached by a probe) go
//! through `ovoverlay` and, in the same run, through a plain `identity`; the difference is what
//! drawing costs per frame.

mod common;

use std::time::Duration;

use common::{compare, per_call};
use gstovlva::meta::{self, DetectionInfo};
use gstovlva::ovoverlay::annotate::{self, Colours, Style};
use gstovlva::ovoverlay::surface::{Layout, Plane, Surface, YuvMatrix};
use gstovlva::ovoverlay::text::TextRenderer;

const OBJECTS: usize = 10;
const FRAMES: u32 = 300;
const ROUNDS: u32 = 3;

fn attach(buffer: &mut gst::BufferRef) {
    for i in 0..OBJECTS {
        let f = i as f64 / OBJECTS as f64;
        let (label, label_id) = if i % 2 == 0 {
            ("person", 1)
        } else {
            ("car", 3)
        };
        meta::add_detection(
            buffer,
            1920,
            1080,
            &DetectionInfo {
                label: label.into(),
                label_id,
                confidence: 0.5 + f / 4.0,
                bbox: [f * 0.9, 0.1 + f * 0.3, f * 0.9 + 0.12, 0.5 + f * 0.4],
                model: "ssd_mobilenet_v2_coco".into(),
            },
        );
    }
}

/// Drawing alone: `annotate::draw` on an I420 frame in memory, without GStreamer.
fn draw_only() -> Duration {
    let mut buffer = gst::Buffer::with_size(16).expect("buffer");
    attach(buffer.get_mut().expect("writable"));
    let rois = meta::rois(&buffer);
    let (w, h) = (1920usize, 1080usize);
    let mut y = vec![0u8; w * h];
    let mut u = vec![128u8; w * h / 4];
    let mut v = vec![128u8; w * h / 4];
    let colours = Colours::default();
    let style = Style {
        line_width: annotate::auto_line_width(1080),
        show_labels: true,
        show_confidence: true,
        colours: &colours,
    };
    let mut text = TextRenderer::new(annotate::auto_font_px(1080)).expect("font");
    let matrix = YuvMatrix {
        bt709: true,
        full_range: false,
    };
    per_call(Duration::from_secs(2), || {
        let planes = vec![
            Plane {
                data: &mut y,
                stride: w,
            },
            Plane {
                data: &mut u,
                stride: w / 2,
            },
            Plane {
                data: &mut v,
                stride: w / 2,
            },
        ];
        let mut surface = Surface::new(w, h, Layout::I420, matrix, planes).expect("surface");
        annotate::draw(&mut surface, &rois, &[], &style, &mut text);
    })
}

fn main() {
    common::init();
    println!(
        "drawing alone (annotate::draw, I420 1920x1080, {OBJECTS} boxes): {:.1} µs/frame",
        draw_only().as_secs_f64() * 1e6
    );
    println!(
        "ovoverlay, 1920x1080, {OBJECTS} boxes with labels per frame ({FRAMES} frames x {ROUNDS}):"
    );
    println!("  format   identity µs/frame   ovoverlay µs/frame   drawing µs/frame   ratio");
    for format in ["BGRx", "I420", "NV12"] {
        let pipeline = |element: &str| {
            format!(
                "videotestsrc num-buffers={FRAMES} pattern=black \
                 ! video/x-raw,format={format},width=1920,height=1080 ! identity name=tag \
                 ! {element} ! fakesink sync=false"
            )
        };
        let (identity, overlay) = compare(
            &pipeline("identity"),
            &pipeline("ovoverlay"),
            ROUNDS,
            attach,
        );
        let n = f64::from(FRAMES * ROUNDS);
        println!(
            "  {format:6} {:18.1} {:20.1} {:18.1} {:7.3}",
            identity / n * 1e6,
            overlay / n * 1e6,
            (overlay - identity) / n * 1e6,
            overlay / identity
        );
    }
    let plain = |element: &str| {
        format!(
            "videotestsrc num-buffers={FRAMES} pattern=black \
             ! video/x-raw,format=NV12,width=1920,height=1080 ! identity name=tag \
             ! {element} ! fakesink sync=false"
        )
    };
    let (identity, overlay) = compare(&plain("identity"), &plain("ovoverlay"), ROUNDS, |_| {});
    let n = f64::from(FRAMES * ROUNDS);
    println!(
        "frames without results (NV12): identity {:.1} µs/frame, ovoverlay {:.1} µs/frame, ratio {:.3}",
        identity / n * 1e6,
        overlay / n * 1e6,
        overlay / identity
    );
}
