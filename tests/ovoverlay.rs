//! `ovoverlay` on synthetic frames in every format it takes (box edges in the label's colour,
//! inside untouched, label text drawn, nothing drawn without meta, odd ROIs clipped), and on
//! bikes.mp4 through `ovinfer` (box edges on the detected objects; an annotated PNG and MP4).

mod common;

use common::{Outcome, run_prepared};
use gst::prelude::*;
use gst_video::prelude::*;
use gstovlva::meta::{self, DetectionInfo};
use gstovlva::ovoverlay::annotate::Colours;
use gstovlva::ovoverlay::surface::{Rgb, YuvMatrix};

const W: u32 = 320;
const H: u32 = 240;
const FORMATS: [&str; 12] = [
    "BGR", "RGB", "BGRx", "RGBx", "BGRA", "RGBA", "xRGB", "xBGR", "ARGB", "ABGR", "I420", "NV12",
];

fn person() -> DetectionInfo {
    DetectionInfo {
        label: "person".into(),
        label_id: 1,
        confidence: 0.87,
        bbox: [
            40.0 / W as f64,
            60.0 / H as f64,
            140.0 / W as f64,
            140.0 / H as f64,
        ],
        model: "test".into(),
    }
}

/// Black `format` frames through `identity name=tag ! ovoverlay {props} ! appsink`, with
/// `attach` adding meta to each frame.
fn overlay(
    format: &str,
    frames: u32,
    props: &str,
    attach: impl Fn(&mut gst::BufferRef) + Send + Sync + 'static,
) -> Outcome {
    let description = format!(
        "videotestsrc num-buffers={frames} pattern=black ! video/x-raw,format={format},width={W},height={H} \
         ! identity name=tag ! ovoverlay {props} ! appsink name=sink"
    );
    let outcome = run_prepared(&description, &["sink"], move |pipeline| {
        let pad = pipeline.by_name("tag").unwrap().static_pad("src").unwrap();
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(b) = info.buffer_mut() {
                attach(b.make_mut());
            }
            gst::PadProbeReturn::Ok
        });
    });
    assert!(
        outcome.errors.is_empty(),
        "{format}: {}",
        outcome.error_text()
    );
    outcome
}

/// Reads pixels of a sample: RGB for packed formats, Y (and U, V) for YUV ones.
struct Pixels {
    frame: gst_video::VideoFrame<gst_video::video_frame::Readable>,
}

impl Pixels {
    fn new(sample: &gst::Sample) -> Pixels {
        let info = gst_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
        let buffer = sample.buffer_owned().unwrap();
        Pixels {
            frame: gst_video::VideoFrame::from_buffer_readable(buffer, &info).unwrap(),
        }
    }

    fn yuv(&self) -> bool {
        self.frame.format_info().is_yuv()
    }

    /// R, G, B or Y at (x, y).
    fn at(&self, x: u32, y: u32) -> Vec<u8> {
        let f = &self.frame;
        let stride = f.plane_stride()[0] as usize;
        let data = f.plane_data(0).unwrap();
        if self.yuv() {
            return vec![data[y as usize * stride + x as usize]];
        }
        let info = f.format_info();
        let ps = info.pixel_stride()[0] as usize;
        let base = y as usize * stride + x as usize * ps;
        (0..3)
            .map(|c| data[base + info.poffset()[c] as usize])
            .collect()
    }

    /// What `colour` looks like in this frame's format.
    fn expect(&self, colour: Rgb) -> Vec<u8> {
        if self.yuv() {
            let m = YuvMatrix {
                bt709: false,
                full_range: false,
            };
            vec![colour.to_yuv(m)[0]]
        } else {
            vec![colour.0, colour.1, colour.2]
        }
    }

    fn black(&self) -> Vec<u8> {
        self.expect(Rgb(0, 0, 0))
    }
}

fn person_colour() -> Rgb {
    Colours::default().of("person", 1)
}

#[test]
fn boxes_and_labels_in_every_format() {
    for format in FORMATS {
        let outcome = overlay(format, 1, "", |b| meta::add_detection(b, W, H, &person()));
        let p = Pixels::new(&outcome.samples("sink")[0]);
        let (colour, black) = (p.expect(person_colour()), p.black());
        // Box (40, 60) to (140, 140): its edges take the colour (2 px lines at 240 lines)...
        for (x, y) in [
            (40, 100),
            (41, 100),
            (139, 100),
            (90, 60),
            (90, 139),
            (40, 139),
        ] {
            assert_eq!(p.at(x, y), colour, "{format}: edge ({x},{y})");
        }
        // ... the inside and the outside stay black.
        for (x, y) in [
            (42, 100),
            (90, 100),
            (137, 137),
            (150, 100),
            (300, 200),
            (39, 100),
        ] {
            assert_eq!(p.at(x, y), black, "{format}: ({x},{y}) untouched");
        }
        // The label "person 0.87" sits above the box on a background of the colour, and
        // inside that background there are glyph pixels.
        let label: Vec<(u32, u32)> = (30..60)
            .flat_map(|y| (30..200).map(move |x| (x, y)))
            .filter(|&(x, y)| p.at(x, y) == colour)
            .collect();
        let (x0, x1) = (
            label.iter().map(|c| c.0).min(),
            label.iter().map(|c| c.0).max(),
        );
        let (y0, y1) = (
            label.iter().map(|c| c.1).min(),
            label.iter().map(|c| c.1).max(),
        );
        let (Some(x0), Some(x1), Some(y0), Some(y1)) = (x0, x1, y0, y1) else {
            panic!("{format}: no label background");
        };
        assert_eq!(
            (x0, y1),
            (40, 59),
            "{format}: label above the box's left corner"
        );
        assert!(
            (60..=90).contains(&(x1 - x0)) && (12..=20).contains(&(y1 - y0)),
            "{format}"
        );
        let glyphs = (y0..=y1)
            .flat_map(|y| (x0..=x1).map(move |x| (x, y)))
            .filter(|&(x, y)| p.at(x, y) != colour)
            .count();
        assert!(glyphs > 100, "{format}: {glyphs} glyph pixels");
        if p.yuv() {
            // Chroma is drawn too: the 2x2 block at the left edge has the colour's U and V.
            let f = &p.frame;
            let [_, u, v] = person_colour().to_yuv(YuvMatrix {
                bt709: false,
                full_range: false,
            });
            let (cx, cy) = (20usize, 50usize);
            let uv = if format == "NV12" {
                let d = f.plane_data(1).unwrap();
                let s = f.plane_stride()[1] as usize;
                (d[cy * s + 2 * cx], d[cy * s + 2 * cx + 1])
            } else {
                let (du, dv) = (f.plane_data(1).unwrap(), f.plane_data(2).unwrap());
                let (su, sv) = (f.plane_stride()[1] as usize, f.plane_stride()[2] as usize);
                (du[cy * su + cx], dv[cy * sv + cx])
            };
            assert_eq!(uv, (u, v), "{format} chroma");
        }
    }
}

#[test]
fn frames_without_meta_or_when_disabled_pass_untouched() {
    for (props, with_meta) in [("", false), ("enabled=false", true)] {
        let description = format!(
            "videotestsrc num-buffers=3 pattern=smpte ! video/x-raw,format=NV12,width={W},height={H} \
             ! tee name=t t. ! queue ! appsink name=before t. ! queue ! identity name=tag \
             ! ovoverlay {props} ! appsink name=sink"
        );
        let outcome = run_prepared(&description, &["before", "sink"], move |pipeline| {
            let pad = pipeline.by_name("tag").unwrap().static_pad("src").unwrap();
            pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if let Some(b) = info.buffer_mut().filter(|_| with_meta) {
                    meta::add_detection(b.make_mut(), W, H, &person());
                }
                gst::PadProbeReturn::Ok
            });
        });
        assert!(outcome.errors.is_empty(), "{}", outcome.error_text());
        let bytes = |s: &gst::Sample| s.buffer().unwrap().map_readable().unwrap().to_vec();
        let (before, after) = (outcome.samples("before"), outcome.samples("sink"));
        assert_eq!(after.len(), 3);
        for (b, a) in before.iter().zip(after) {
            assert!(bytes(b) == bytes(a), "{props}: the frame changed");
        }
    }
}

#[test]
fn options_change_what_is_drawn() {
    let attach = |b: &mut gst::BufferRef| meta::add_detection(b, W, H, &person());
    let count_colour = |props: &str| {
        let outcome = overlay("RGBx", 1, props, attach);
        let p = Pixels::new(&outcome.samples("sink")[0]);
        let want = p.expect(Rgb(255, 0, 255));
        let mut n = 0;
        for y in 0..H {
            for x in 0..W {
                n += usize::from(p.at(x, y) == want);
            }
        }
        n
    };
    let boxes_only = count_colour("label-colors=person=magenta show-labels=false");
    // The 2 px outline of a 100x80 box.
    assert_eq!(boxes_only, 2 * 2 * (100 + 80) - 4 * 4);
    let thick = count_colour("label-colors=person=magenta show-labels=false line-width=6");
    assert_eq!(thick, 2 * 6 * (100 + 80) - 4 * 36);
    let labelled = count_colour("label-colors=person=magenta");
    let bare = count_colour("label-colors=person=magenta show-confidence=false");
    let big = count_colour("label-colors=person=magenta font-size=30");
    assert!(
        labelled > bare && bare > boxes_only,
        "{labelled} {bare} {boxes_only}"
    );
    assert!(big > labelled + 1000, "{big} {labelled}");
    let palette = count_colour("palette=00ff00,ff00ff show-labels=false");
    assert_eq!(
        palette, boxes_only,
        "label id 1 takes the palette's second colour"
    );
}

#[test]
fn regions_outside_empty_or_huge_are_clipped() {
    let outcome = overlay("I420", 2, "", |b| {
        use gst_video::VideoRegionOfInterestMeta as Roi;
        Roi::add(b, "partly-out", (300, 220, 100, 100));
        Roi::add(b, "empty", (100, 100, 0, 0));
        Roi::add(b, "huge", (0, 0, u32::MAX / 2, u32::MAX / 2));
        Roi::add(b, "far-away", (5000, 5000, 10, 10));
    });
    let samples = outcome.samples("sink");
    assert_eq!(samples.len(), 2);
    let p = Pixels::new(&samples[0]);
    let colours = Colours::default();
    assert_eq!(p.at(310, 221), p.expect(colours.of("partly-out", -1)));
    assert_eq!(p.at(0, 120), p.expect(colours.of("huge", -1)));
    assert_eq!(p.at(160, 120), p.black());
}

#[test]
fn bikes_annotated_png_and_mp4() {
    let snapshot = common::root().join("target/ovoverlay-bikes-frame30.png");
    let description = format!(
        "filesrc location={} ! decodebin ! videoconvert ! video/x-raw,format=RGB \
         ! ovinfer model={} labels={} threshold=0.4 ! ovoverlay ! appsink name=sink",
        common::asset("media/bikes.mp4"),
        common::ssd_model(),
        common::ssd_labels()
    );
    let outcome = common::run_sinks(&description, &["sink"]);
    assert!(outcome.errors.is_empty(), "{}", outcome.error_text());
    let samples = outcome.samples("sink");
    assert_eq!(samples.len(), 250);
    let colours = Colours::default();
    let mut checked = 0;
    for sample in samples {
        let p = Pixels::new(sample);
        for roi in meta::rois(sample.buffer().unwrap()) {
            let d = roi.detection.as_ref().unwrap();
            let (x, y, w, h) = roi.rect;
            if w < 8 || h < 8 {
                continue;
            }
            // The left and bottom edges (labels may cover top edges of other boxes).
            let want = p.expect(colours.of(&d.label, d.label_id));
            let left = p.at(x, y + h / 2) == want || p.at(x + 1, y + h / 2) == want;
            let bottom = p.at(x + w / 2, y + h - 1) == want;
            checked += usize::from(left || bottom);
        }
    }
    assert!(checked > 150, "{checked} boxes found drawn");
    write_png(&samples[30], &snapshot);
    assert!(std::fs::metadata(&snapshot).unwrap().len() > 10_000);

    // The README's recording pipeline: an annotated MP4 that decodes back to 250 frames.
    let mp4 = std::env::temp_dir().join(format!("ovlva-annotated-{}.mp4", std::process::id()));
    let record = format!(
        "filesrc location={} ! decodebin ! videoconvert ! ovinfer model={} labels={} \
         ! ovoverlay ! videoconvert ! x264enc ! mp4mux ! filesink location={}",
        common::asset("media/bikes.mp4"),
        common::ssd_model(),
        common::ssd_labels(),
        mp4.display()
    );
    common::run_to_eos(&record);
    let decoded = common::run(&format!(
        "filesrc location={} ! qtdemux ! h264parse ! avdec_h264 ! appsink name=sink",
        mp4.display()
    ));
    let _ = std::fs::remove_file(&mp4);
    assert_eq!(decoded.frames.len(), 250, "{}", decoded.error_text());
}

/// Writes a sample as a PNG for people to look at.
fn write_png(sample: &gst::Sample, path: &std::path::Path) {
    let (pipeline, src) = common::with_appsrc(&format!(
        "appsrc name=src num-buffers=1 ! videoconvert ! pngenc ! filesink location={}",
        path.display()
    ));
    src.set_caps(Some(&sample.caps().unwrap().to_owned()));
    pipeline.set_state(gst::State::Playing).unwrap();
    src.push_buffer(sample.buffer_owned().unwrap()).unwrap();
    src.end_of_stream().unwrap();
    let msg = pipeline
        .bus()
        .unwrap()
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(30),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .unwrap();
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(matches!(msg.view(), gst::MessageView::Eos(_)), "{msg:?}");
}
