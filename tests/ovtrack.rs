//! `ovtrack` as an element: ids reach `lvajson`'s `entity.id`, frames without ROIs get predicted
//! boxes, bad settings are errors on the bus, and docs/ovtrack.md lists every property with its
//! default (tests/docs.rs does the same for the other elements through gst-inspect).

mod common;

use gst::prelude::*;
use gstovlva::meta::{self, DetectionInfo};

fn person(x: f64, confidence: f64) -> DetectionInfo {
    DetectionInfo {
        label: "person".into(),
        label_id: 1,
        confidence,
        bbox: [x, 0.2, x + 0.2, 0.8],
        model: "ssd".into(),
    }
}

/// `frames` 320x240 frames through `identity ! ovtrack {props} ! tail`; `attach(n, buffer)` adds
/// meta to frame n.
fn run(
    frames: u32,
    props: &str,
    tail: &str,
    attach: impl Fn(u64, &mut gst::BufferRef) + Send + Sync + 'static,
) -> common::Outcome {
    let description = format!(
        "videotestsrc num-buffers={frames} ! video/x-raw,format=GRAY8,width=320,height=240,framerate=25/1 \
         ! identity name=tag ! ovtrack name=track {props} ! {tail}"
    );
    common::run_prepared(&description, &["sink"], move |pipeline| {
        let tag = pipeline.by_name("tag").unwrap().static_pad("src").unwrap();
        let frame = std::sync::atomic::AtomicU64::new(0);
        tag.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(buffer) = info.buffer_mut() {
                let n = frame.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                attach(n, buffer.make_mut());
            }
            gst::PadProbeReturn::Ok
        });
    })
}

#[test]
fn ids_reach_lvajson_as_entity_ids() {
    let outcome = run(
        6,
        "",
        "lvajson json-lines=true ! appsink name=sink",
        |n, b| {
            meta::add_detection(b, 320, 240, &person(0.1 + 0.01 * n as f64, 0.9));
            meta::add_detection(b, 320, 240, &person(0.6, 0.8));
        },
    );
    assert!(outcome.errors.is_empty(), "{}", outcome.error_text());
    let docs: Vec<serde_json::Value> = outcome
        .samples("sink")
        .iter()
        .map(|s| {
            let map = s.buffer().unwrap().map_readable().unwrap();
            serde_json::from_slice(&map).unwrap()
        })
        .collect();
    assert_eq!(docs.len(), 6);
    for doc in &docs {
        let ids: Vec<&str> = doc["inferences"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["entity"]["id"].as_str().unwrap_or("none"))
            .collect();
        assert_eq!(ids, ["1", "2"], "{doc}");
    }
    let track = outcome.element("track");
    assert_eq!(track.property::<u64>("tracks-created"), 2);
    assert_eq!(track.property::<u32>("active-tracks"), 2);
}

#[test]
fn skipped_frames_get_predicted_boxes_with_ids() {
    // Detections on frames 0, 3, 6 (ovinfer interval=3), moving right by 0.03 a frame.
    let outcome = run(9, "", "appsink name=sink", |n, b| {
        if n % 3 == 0 {
            meta::add_detection(b, 320, 240, &person(0.1 + 0.03 * n as f64, 0.9));
        }
    });
    assert!(outcome.errors.is_empty(), "{}", outcome.error_text());
    let samples = outcome.samples("sink");
    assert_eq!(samples.len(), 9);
    for (n, s) in samples.iter().enumerate() {
        let rois = meta::rois(s.buffer().unwrap());
        assert_eq!(rois.len(), 1, "frame {n}");
        assert_eq!(rois[0].tracking_id().as_deref(), Some("1"), "frame {n}");
        let predicted = rois[0]
            .attributes
            .iter()
            .any(|a| a.name() == "tracking" && a.get::<bool>("predicted").unwrap_or(false));
        assert_eq!(predicted, n % 3 != 0, "frame {n}");
        let d = rois[0].detection.as_ref().expect("a detection structure");
        assert_eq!(d.label, "person");
        if n >= 4 && n % 3 != 0 {
            // The motion is learnt: the prediction is near the true place.
            let want = 0.1 + 0.03 * n as f64;
            assert!((d.bbox[0] - want).abs() < 0.03, "frame {n}: {:?}", d.bbox);
        }
    }
    // Without predict-on-empty, skipped frames stay empty.
    let outcome = run(6, "predict-on-empty=false", "appsink name=sink", |n, b| {
        if n % 3 == 0 {
            meta::add_detection(b, 320, 240, &person(0.1, 0.9));
        }
    });
    let counts: Vec<usize> = outcome
        .samples("sink")
        .iter()
        .map(|s| meta::rois(s.buffer().unwrap()).len())
        .collect();
    assert_eq!(counts, [1, 0, 0, 1, 0, 0]);
}

#[test]
fn low_threshold_above_high_threshold_is_an_error_on_the_bus() {
    let outcome = run(
        3,
        "low-threshold=0.6 high-threshold=0.5",
        "appsink name=sink",
        |_, _| {},
    );
    assert!(
        outcome.error_text().contains("low-threshold"),
        "errors: {}",
        outcome.error_text()
    );
}

#[test]
fn garbage_meta_passes_without_ids_or_panics() {
    let outcome = run(5, "", "appsink name=sink", |_, b| {
        let mut bad = person(0.1, f64::NAN);
        meta::add_detection(b, 320, 240, &bad);
        bad.confidence = 0.9;
        bad.bbox = [0.5, 0.5, 0.4, f64::INFINITY];
        meta::add_detection(b, 320, 240, &bad);
        // An ROI without a detection structure is tracked by its rectangle.
        gst_video::VideoRegionOfInterestMeta::add(b, "face", (10, 10, 50, 50));
    });
    assert!(outcome.errors.is_empty(), "{}", outcome.error_text());
    let last = outcome.samples("sink").last().unwrap();
    let ids: Vec<Option<String>> = meta::rois(last.buffer().unwrap())
        .iter()
        .map(|r| r.tracking_id())
        .collect();
    assert_eq!(ids, [None, None, Some("1".to_string())]);
}
