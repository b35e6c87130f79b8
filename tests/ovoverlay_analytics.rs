//! `ovoverlay` drawing what tracking and counting add, on synthetic frames through the real
//! elements: the counting line and zone `ovanalytics` attaches (`OvlvaAnalyticsMeta`) drawn on
//! the segment and outline and nowhere else, in packed and YUV formats; `show-analytics=false`
//! draws nothing; a track's trail between its past positions (`trail-length`), forgotten beyond
//! it; a predicted box dashed (`show-predicted`), or hidden; the meta's counts frame by frame and
//! `lvajson`'s documents byte-equal with and without it; and bikes.mp4 through the SSD,
//! `ovtrack`, `ovanalytics` and `ovoverlay` (the line on every frame, its count equal to the
//! `LineCrossing` events).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use common::{Outcome, run_prepared, text};
use gst::prelude::*;
use gst_video::VideoRegionOfInterestMeta;
use gstovlva::meta::{self, AnalyticsInfo, DetectionInfo};
use gstovlva::ovoverlay::annotate::Colours;
use gstovlva::ovoverlay::surface::Rgb;

const W: u32 = 320;
const H: u32 = 240;
const MAGENTA: Rgb = Rgb(255, 0, 255);
const CYAN: Rgb = Rgb(0, 255, 255);
const BLACK: Rgb = Rgb(0, 0, 0);

/// A line from (0.2, 0.2) to (0.8, 0.8), a zone from (0.6, 0.1) to (0.9, 0.4), in magenta and
/// cyan.
const RULES: &str = r#"{"lines": [{"name": "door", "points": [[0.2, 0.2], [0.8, 0.8]]}], "zones": [{"name": "lot", "polygon": [[0.6, 0.1], [0.9, 0.1], [0.9, 0.4], [0.6, 0.4]]}]}"#;
const RULE_COLOURS: &str = "label-colors=door=magenta,lot=cyan";

/// One tracked object: id, label, normalised box, predicted by a tracker.
#[derive(Clone)]
struct Object {
    id: i32,
    label: &'static str,
    bbox: [f64; 4],
    predicted: bool,
}

fn attach(b: &mut gst::BufferRef, o: &Object) {
    let d = DetectionInfo {
        label: o.label.into(),
        label_id: 1,
        confidence: 0.9,
        bbox: o.bbox,
        model: "synthetic".into(),
    };
    meta::add_detection(b, W, H, &d);
    let Some(mut roi) = b.iter_meta_mut::<VideoRegionOfInterestMeta>().last() else {
        panic!("the ROI just added");
    };
    roi.add_param(
        gst::Structure::builder(meta::TRACKING)
            .field("id", o.id)
            .build(),
    );
    if o.predicted {
        roi.add_param(
            gst::Structure::builder(meta::TRACKING_STATE)
                .field("predicted", true)
                .build(),
        );
    }
}

/// Attaches `objects(n)` to the n-th frame leaving the pipeline's element named `tag`.
fn attach_to_frames(
    pipeline: &gst::Pipeline,
    objects: impl Fn(usize) -> Vec<Object> + Send + Sync + 'static,
) {
    let next = AtomicUsize::new(0);
    let pad = pipeline.by_name("tag").unwrap().static_pad("src").unwrap();
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let n = next.fetch_add(1, Ordering::SeqCst);
        if let Some(b) = info.buffer_mut() {
            let b = b.make_mut();
            for o in objects(n) {
                attach(b, &o);
            }
        }
        gst::PadProbeReturn::Ok
    });
}

/// Black `format` frames, with `objects(n)` attached to frame n, through `{middle} ! appsink
/// name=sink`, converted to RGBx for reading.
fn run(
    format: &str,
    frames: usize,
    middle: &str,
    objects: impl Fn(usize) -> Vec<Object> + Send + Sync + 'static,
) -> Outcome {
    let description = format!(
        "videotestsrc num-buffers={frames} pattern=black \
         ! video/x-raw,format={format},width={W},height={H},framerate=10/1 \
         ! identity name=tag ! {middle} ! videoconvert ! video/x-raw,format=RGBx \
         ! appsink name=sink"
    );
    let outcome = run_prepared(&description, &["sink"], |p| attach_to_frames(p, objects));
    assert!(
        outcome.errors.is_empty(),
        "{middle}: {}",
        outcome.error_text()
    );
    assert_eq!(outcome.samples("sink").len(), frames, "{middle}");
    outcome
}

/// `ovanalytics` with `rules` (JSON on one line), quoted for a pipeline description.
fn ovanalytics(rules: &str, props: &str) -> String {
    format!("ovanalytics rules={rules:?} {props}")
}

fn analytics(props: &str) -> String {
    ovanalytics(RULES, props)
}

/// The pixels of an RGBx sample.
struct Image {
    data: Vec<u8>,
    stride: usize,
}

impl Image {
    fn new(sample: &gst::Sample) -> Image {
        let info = gst_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
        let map = sample.buffer().unwrap().map_readable().unwrap();
        Image {
            data: map.to_vec(),
            stride: info.stride()[0] as usize,
        }
    }

    fn last(outcome: &Outcome) -> Image {
        Image::new(outcome.samples("sink").last().expect("a frame"))
    }

    fn at(&self, x: f64, y: f64) -> Rgb {
        let i = y as usize * self.stride + x as usize * 4;
        Rgb(self.data[i], self.data[i + 1], self.data[i + 2])
    }

    /// Whether (x, y) has about `c` (YUV frames come back from 4:2:0 chroma).
    fn is(&self, x: f64, y: f64, c: Rgb) -> bool {
        let p = self.at(x, y);
        [(p.0, c.0), (p.1, c.1), (p.2, c.2)]
            .iter()
            .all(|&(a, b)| a.abs_diff(b) <= 60)
    }

    fn count(&self, c: Rgb) -> usize {
        (0..H)
            .flat_map(|y| (0..W).map(move |x| (x, y)))
            .filter(|&(x, y)| self.at(x as f64, y as f64) == c)
            .count()
    }
}

#[test]
fn the_counting_line_and_zone_are_drawn_where_the_rules_put_them() {
    for format in ["RGBx", "BGR", "I420", "NV12"] {
        let outcome = run(
            format,
            2,
            &format!("{} ! ovoverlay {RULE_COLOURS}", analytics("")),
            |_| vec![],
        );
        let img = Image::last(&outcome);
        // The line from (64, 48) to (256, 192), 4 px wide: on it at 30..40 % and 60..70 % of
        // its length (its label is at the start, its arrows in the middle), black 12 px beside.
        let (ux, uy) = (0.8, 0.6); // its direction
        for t in [0.3, 0.35, 0.4, 0.6, 0.65, 0.7] {
            let (x, y) = (64.0 + 192.0 * t, 48.0 + 144.0 * t);
            assert!(img.is(x, y, MAGENTA), "{format}: ({x},{y}) on the line");
            for side in [-12.0, 12.0] {
                let (bx, by) = (x - side * uy, y + side * ux);
                assert!(img.is(bx, by, BLACK), "{format}: ({bx},{by}) beside it");
            }
        }
        // The zone's outline, (192, 24) to (288, 96), 2 px wide; its inside black.
        for (x, y) in [(192.0, 60.0), (287.5, 60.0), (240.0, 95.5), (240.0, 24.0)] {
            assert!(img.is(x, y, CYAN), "{format}: ({x},{y}) on the zone's edge");
        }
        for (x, y) in [(240.0, 60.0), (196.0, 60.0), (283.0, 60.0), (240.0, 100.0)] {
            assert!(
                img.is(x, y, BLACK),
                "{format}: ({x},{y}) off the zone's edge"
            );
        }
        // Far from both: black.
        assert!(img.is(300.0, 200.0, BLACK) && img.is(20.0, 220.0, BLACK));
    }
}

#[test]
fn labels_and_arrows_show_the_counts() {
    let with = Image::last(&run(
        "RGBx",
        1,
        &format!("{} ! ovoverlay {RULE_COLOURS}", analytics("")),
        |_| vec![],
    ));
    let without = Image::last(&run(
        "RGBx",
        1,
        &format!(
            "{} ! ovoverlay {RULE_COLOURS} show-labels=false",
            analytics("")
        ),
        |_| vec![],
    ));
    // The arrows at the line's middle (160, 120) point across it, both ways (both counted).
    for side in [-14.0, 14.0] {
        let (x, y) = (160.0 - side * 0.6, 120.0 + side * 0.8);
        assert!(without.is(x, y, MAGENTA), "arrow at ({x},{y})");
    }
    // Labels: the line's name and count, two counts, the zone's name and count; their glyphs
    // are drawn over label backgrounds of the rule's colour.
    let labelled = with.count(MAGENTA) + with.count(CYAN);
    let bare = without.count(MAGENTA) + without.count(CYAN);
    assert!(labelled > bare + 500, "{labelled} {bare}");
    // White text on the magenta labels (nothing else is white).
    let white = Rgb(255, 255, 255);
    assert!(with.count(white) > 30 && without.count(white) == 0);
}

#[test]
fn show_analytics_false_draws_no_line() {
    let props = format!(
        "{} ! ovoverlay {RULE_COLOURS} show-analytics=false",
        analytics("")
    );
    let img = Image::last(&run("RGBx", 2, &props, |_| vec![]));
    assert_eq!(img.count(BLACK), (W * H) as usize, "nothing drawn");
    // The same without ovanalytics' meta.
    let props = format!(
        "{} ! ovoverlay {RULE_COLOURS}",
        analytics("attach-overlay-meta=false")
    );
    let img = Image::last(&run("RGBx", 2, &props, |_| vec![]));
    assert_eq!(img.count(BLACK), (W * H) as usize, "nothing to draw");
}

/// Track 3, a 20x40 px box moving 25 px right a frame, its bottom centre at (30 + 25 n, 190).
fn walker(n: usize) -> Vec<Object> {
    let x = 20.0 + 25.0 * n as f64;
    vec![Object {
        id: 3,
        label: "person",
        bbox: [x / 320.0, 150.0 / 240.0, (x + 20.0) / 320.0, 190.0 / 240.0],
        predicted: false,
    }]
}

#[test]
fn trails_run_through_past_positions_and_are_forgotten_beyond_their_length() {
    let colour = Colours::default().of_track("3");
    let trail = |props: &str| Image::last(&run("RGBx", 8, &format!("ovoverlay {props}"), walker));
    // On the last frame (n = 7, box from x 195 to 215) the trail passes between the bottom
    // centres of frames 2 and 3 (80, 190) and (105, 190), and of frames 5 and 6.
    let long = trail("trail-length=10");
    for x in [92.0, 170.0] {
        assert_eq!(long.at(x, 190.0), colour, "({x}, 190) on the trail");
    }
    assert_eq!(long.at(92.0, 195.0), BLACK, "below the trail");
    // With 3 frames the trail goes back to frame 5 only; without, there is none.
    let short = trail("trail-length=3");
    assert_eq!(
        (short.at(92.0, 190.0), short.at(170.0, 190.0)),
        (BLACK, colour)
    );
    let none = trail("");
    assert_eq!(
        (none.at(92.0, 190.0), none.at(170.0, 190.0)),
        (BLACK, BLACK)
    );
}

#[test]
fn predicted_boxes_are_dashed_or_hidden() {
    // A person box from (40, 60) to (140, 140), detected or predicted.
    let person = |predicted: bool| {
        move |_| {
            vec![Object {
                id: 1,
                label: "person",
                bbox: [40.0 / 320.0, 60.0 / 240.0, 140.0 / 320.0, 140.0 / 240.0],
                predicted,
            }]
        }
    };
    let draw = |props: &str, predicted: bool| {
        let props = format!("ovoverlay label-colors=person=magenta {props}");
        Image::last(&run("RGBx", 1, &props, person(predicted)))
    };
    // Bottom edge (rows 138 and 139) and left edge (columns 40 and 41).
    let bottom = |img: &Image| {
        (40..140)
            .filter(|&x| img.at(x as f64, 139.0) == MAGENTA)
            .count()
    };
    let left = |img: &Image| {
        (60..140)
            .filter(|&y| img.at(40.0, y as f64) == MAGENTA)
            .count()
    };
    let solid = draw("", false);
    assert_eq!((bottom(&solid), left(&solid)), (100, 80));
    let dashed = draw("", true);
    let (b, l) = (bottom(&dashed), left(&dashed));
    assert!((30..=70).contains(&b) && (25..=60).contains(&l), "{b} {l}");
    for (x, y) in [(40.0, 60.0), (139.0, 60.0), (40.0, 139.0), (139.0, 139.0)] {
        assert_eq!(dashed.at(x, y), MAGENTA, "corner ({x},{y})");
    }
    // The label ("person 0.90 #1") is drawn as for a detected box.
    assert!(dashed.count(MAGENTA) > b * 2 + l * 2 + 500);
    let hidden = draw("show-predicted=false", true);
    assert_eq!(hidden.count(MAGENTA), 0);
    assert_eq!(
        bottom(&draw("show-predicted=false", false)),
        100,
        "detected boxes are still drawn"
    );
}

/// Track 1 walks right, its bottom centre at x = 0.15 + 0.1 n, y = 0.7: it crosses the line
/// x = 0.5 (drawn top to bottom: counterclockwise) on frame 4 and is in the zone from frame 5.
fn crosser(n: usize) -> Vec<Object> {
    let x = 0.15 + 0.1 * n as f64;
    vec![Object {
        id: 1,
        label: "person",
        bbox: [x - 0.05, 0.5, x + 0.05, 0.7],
        predicted: false,
    }]
}

const DOOR: &str = r#"{"lines": [{"name": "door", "points": [[0.5, 0.0], [0.5, 1.0]]}], "zones": [{"name": "lot", "polygon": [[0.6, 0.5], [1.0, 0.5], [1.0, 1.0], [0.6, 1.0]]}]}"#;

/// The crosser through `ovanalytics {props} ! tee`: the raw frames and lvajson's documents.
fn counted(props: &str) -> (Vec<Vec<AnalyticsInfo>>, Vec<String>) {
    let description = format!(
        "videotestsrc num-buffers=8 pattern=black ! video/x-raw,format=I420,width={W},height={H} \
         ! identity name=tag ! {} ! tee name=t \
         t. ! queue ! appsink name=raw t. ! queue ! lvajson ! appsink name=json",
        ovanalytics(DOOR, props)
    );
    let outcome = run_prepared(&description, &["raw", "json"], |p| {
        attach_to_frames(p, crosser)
    });
    assert!(outcome.errors.is_empty(), "{}", outcome.error_text());
    let metas = outcome
        .samples("raw")
        .iter()
        .map(|s| meta::analytics(s.buffer().unwrap()))
        .collect();
    let documents = outcome.samples("json").iter().map(text).collect();
    (metas, documents)
}

#[test]
fn the_overlay_meta_carries_the_counts_and_lvajson_ignores_it() {
    let (metas, with) = counted("");
    assert_eq!(metas.len(), 8);
    for (n, frame) in metas.iter().enumerate() {
        let [info] = frame.as_slice() else {
            panic!("frame {n}: {frame:?}");
        };
        let (line, zone) = (&info.lines[0], &info.zones[0]);
        assert_eq!(
            (line.name.as_str(), line.a, line.b),
            ("door", (0.5, 0.0), (0.5, 1.0))
        );
        assert_eq!(zone.polygon.len(), 4);
        let crossed = u64::from(n >= 4);
        assert_eq!(
            (line.clockwise, line.counterclockwise, line.total()),
            (0, crossed, crossed),
            "frame {n}"
        );
        assert_eq!(zone.count, u64::from(n >= 5), "frame {n}");
    }
    let (metas, without) = counted("attach-overlay-meta=false");
    assert!(metas.iter().all(Vec::is_empty));
    assert_eq!(with.len(), 8);
    assert_eq!(with, without, "lvajson writes the same documents");
    assert!(with[4].contains("LineCrossing") && !with.concat().contains("points"));
}

#[test]
fn bikes_through_the_ssd_tracker_and_counter_show_the_line_and_its_count() {
    let rules = r#"{"lines": [{"name": "middle", "points": [[0.5, 0.0], [0.5, 1.0]], "labels": ["person", "bicycle"]}]}"#;
    let description = format!(
        "filesrc location={} ! decodebin ! videoconvert ! video/x-raw,format=RGBx \
         ! ovinfer model={} labels={} interval=3 ! ovtrack ! {} \
         ! tee name=t t. ! queue ! lvajson ! appsink name=json \
         t. ! queue ! ovoverlay trail-length=25 ! appsink name=sink",
        common::asset("media/bikes.mp4"),
        common::ssd_model(),
        common::ssd_labels(),
        ovanalytics(rules, "")
    );
    let outcome = common::run_sinks(&description, &["sink", "json"]);
    assert!(outcome.errors.is_empty(), "{}", outcome.error_text());
    let frames = outcome.samples("sink");
    assert_eq!(frames.len(), 250);
    // The line down the middle (columns 318 to 321) in its colour, but where a box's edge or a
    // label covers it: at least half of its width at 2 of 4 heights on every frame.
    let colour = Colours::default().of("middle", -1);
    for (n, sample) in frames.iter().enumerate() {
        let img = Image::new(sample);
        let on = [60.0, 100.0, 180.0, 250.0]
            .iter()
            .filter(|&&y| {
                (318..322)
                    .filter(|&x| img.at(x as f64, y) == colour)
                    .count()
                    >= 2
            })
            .count();
        assert!(on >= 2, "frame {n}: the line at {on} of 4 heights");
    }
    // The count the last frame carries is the number of LineCrossing events.
    let last = meta::analytics(frames[249].buffer().unwrap());
    let events: usize = outcome
        .samples("json")
        .iter()
        .map(|s| text(s).matches("\"LineCrossing\"").count())
        .sum();
    assert_eq!(last[0].lines[0].total(), events as u64);
    assert!(events >= 1, "the cyclist crosses the line");
}
