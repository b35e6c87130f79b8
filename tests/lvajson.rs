//! `lvajson` on synthetic meta (exact documents, empty frames, bad numbers, properties), on a
//! real photo through `ovinfer`, and on bikes.mp4 into a JSON Lines file. Every document is
//! checked against tests/lva_inference.schema.json.

mod common;

use std::sync::{Arc, Mutex};

use common::{Outcome, check_lva_schema, run_prepared, run_sinks, text};
use gst::prelude::*;
use gstovlva::meta::{self, DetectionInfo, FRAME_META};
use serde_json::{Value, json};

fn parse(doc: &str) -> Value {
    serde_json::from_str(doc).unwrap_or_else(|e| panic!("not JSON ({e}): {doc}"))
}

fn valid(doc: &str) -> Value {
    let v = parse(doc);
    if let Err(e) = check_lva_schema(&v) {
        panic!("not an LVA document: {e}\n{doc}");
    }
    v
}

#[test]
fn the_schema_accepts_the_contract_examples_and_rejects_broken_documents() {
    // The two examples of the LVA contract (the second one's trailing comma removed).
    let car = json!({"inferences": [
        {"type": "entity", "entity": {"tag": {"value": "car", "confidence": 0.9048132},
            "box": {"l": 0.42681578, "t": 0.47660735, "w": 0.019501392, "h": 0.020954132}}}]});
    let all = json!({"inferences": [
        {"type": "classification", "subtype": "lightDetection", "classification": {
            "tag": {"value": "daylight", "confidence": 0.86},
            "attributes": [{"name": "isBlackAndWhite", "value": "false", "confidence": 0.71}]}},
        {"type": "motion", "subtype": "motionDetection",
            "motion": {"box": {"l": 0.0, "t": 0.0, "w": 0.0, "h": 0.0}}},
        {"type": "entity", "subtype": "peopleIdentification", "entity": {
            "tag": {"value": "Erwin Schrödinger", "confidence": 0.50},
            "attributes": [{"name": "age", "value": "73", "confidence": 0.87}],
            "box": {"l": 0.0, "t": 0.0, "w": 0.0, "h": 0.0}}}]});
    check_lva_schema(&car).unwrap();
    check_lva_schema(&all).unwrap();

    let entity = |e: Value| json!({"inferences": [{"type": "entity", "entity": e}]});
    let tag = json!({"value": "car", "confidence": 0.5});
    let rect = json!({"l": 0.1, "t": 0.1, "w": 0.2, "h": 0.2});
    let broken = [
        json!({"inferences": []}),
        json!({"inferences": [{"type": "entity"}]}),
        entity(json!({"tag": tag})),
        entity(json!({"tag": tag, "bbox": rect, "box": rect})),
        entity(json!({"tag": {"value": "car", "confidence": "0.5"}, "box": rect})),
        entity(json!({"tag": tag, "box": {"l": 1.5, "t": 0, "w": 0, "h": 0}})),
        entity(json!({"tag": tag, "box": rect, "id": 7})),
        json!({"inferences": [{"type": "motion", "entity": {"tag": tag, "box": rect}}]}),
        json!({"inferences": [{"type": "entity", "entity": {"tag": tag, "box": rect},
            "motion": {"box": rect}}]}),
        json!({"inferences": [{"type": "entity", "entity": {"tag": tag, "box": rect},
            "extensions": {"frame": 3}}]}),
        json!({"inferences": [{"type": "sound"}]}),
    ];
    for doc in broken {
        assert!(check_lva_schema(&doc).is_err(), "accepted: {doc}");
    }
}

/// A 320x240 videotestsrc of `frames` frames through `identity name=tag ! lvajson {props}`;
/// `attach(n, buffer)` adds meta to frame n.
fn synthetic(
    frames: u32,
    props: &str,
    attach: impl Fn(u64, &mut gst::BufferRef) + Send + Sync + 'static,
) -> (Outcome, Vec<gst::ClockTime>) {
    let description = format!(
        "videotestsrc num-buffers={frames} ! video/x-raw,format=I420,width=320,height=240,framerate=25/1 \
         ! identity name=tag ! lvajson name=json {props} ! appsink name=sink"
    );
    let gaps = Arc::new(Mutex::new(Vec::new()));
    let seen = gaps.clone();
    let outcome = run_prepared(&description, &["sink"], move |pipeline| {
        let tag = pipeline.by_name("tag").unwrap().static_pad("src").unwrap();
        let frame = std::sync::atomic::AtomicU64::new(0);
        tag.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(buffer) = info.buffer_mut() {
                let n = frame.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                attach(n, buffer.make_mut());
            }
            gst::PadProbeReturn::Ok
        });
        let sink = pipeline
            .by_name("sink")
            .unwrap()
            .static_pad("sink")
            .unwrap();
        sink.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
            if let Some(gst::EventView::Gap(g)) = info.event().map(|e| e.view()) {
                seen.lock().unwrap().push(g.get().0);
            }
            gst::PadProbeReturn::Ok
        });
    });
    assert!(outcome.errors.is_empty(), "{}", outcome.error_text());
    let gaps = gaps.lock().unwrap().clone();
    (outcome, gaps)
}

fn person(confidence: f64) -> DetectionInfo {
    DetectionInfo {
        label: "person".into(),
        label_id: 1,
        confidence,
        bbox: [0.25, 0.5, 0.75, 1.0],
        model: "ssd".into(),
    }
}

/// Frame 0: a person with a colour and a tracking id; frame 1: nothing; frame 2: a
/// classification and an event.
fn three_frames(n: u64, b: &mut gst::BufferRef) {
    match n {
        0 => {
            meta::add_detection(b, 320, 240, &person(0.875));
            let mut roi = b
                .meta_mut::<gst_video::VideoRegionOfInterestMeta>()
                .unwrap();
            roi.add_param(
                gst::Structure::builder("color")
                    .field("label", "grün \"hell\"")
                    .field("confidence", 0.5f64)
                    .build(),
            );
            roi.add_param(
                gst::Structure::builder("object_id")
                    .field("id", 7i32)
                    .build(),
            );
        }
        2 => {
            meta::add_frame_result(
                b,
                &gst::Structure::builder(FRAME_META)
                    .field("type", "classification")
                    .field("label", "daylight")
                    .field("confidence", 0.25f64)
                    .field("model", "light")
                    .build(),
            );
            meta::add_frame_result(
                b,
                &gst::Structure::builder(FRAME_META)
                    .field("type", "event")
                    .field("name", "zoneEnter")
                    .build(),
            );
        }
        _ => {}
    }
}

const FRAME_0: &str = r#"{"inferences":[{"type":"entity","subtype":"ssd","inferenceId":"track-7","entity":{"tag":{"value":"person","confidence":0.875},"attributes":[{"name":"color","value":"grün \"hell\"","confidence":0.5}],"box":{"l":0.25,"t":0.5,"w":0.5,"h":0.5},"id":"7"}}]}"#;
const FRAME_2: &str = r#"{"inferences":[{"type":"classification","subtype":"light","classification":{"tag":{"value":"daylight","confidence":0.25}}},{"type":"event","event":{"name":"zoneEnter"}}]}"#;

#[test]
fn one_exact_document_per_frame_with_results_and_a_gap_for_the_empty_one() {
    let (outcome, gaps) = synthetic(3, "", three_frames);
    let samples = outcome.samples("sink");
    let docs: Vec<String> = samples.iter().map(text).collect();
    assert_eq!(docs, vec![FRAME_0, FRAME_2]);
    for d in &docs {
        valid(d);
    }
    let caps = samples[0].caps().unwrap();
    assert_eq!(caps.structure(0).unwrap().name(), "application/json");
    // Timestamps are the frames' (25 fps), and the skipped frame is announced as a gap.
    let frame_time = gst::ClockTime::from_mseconds(40);
    let times: Vec<_> = samples
        .iter()
        .map(|s| {
            let b = s.buffer().unwrap();
            (b.pts(), b.dts(), b.duration())
        })
        .collect();
    assert_eq!(
        times,
        vec![
            (Some(gst::ClockTime::ZERO), None, Some(frame_time)),
            (Some(frame_time * 2), None, Some(frame_time))
        ]
    );
    assert_eq!(gaps, vec![frame_time]);
    let json = outcome.element("json");
    assert_eq!(json.property::<u64>("documents"), 2);
    assert_eq!(json.property::<u64>("empty-frames"), 1);
    assert_eq!(json.property::<u64>("dropped"), 0);
}

#[test]
fn empty_frames_become_empty_documents_when_asked() {
    let (outcome, gaps) = synthetic(3, "skip-empty=false json-lines=true", three_frames);
    let docs: Vec<String> = outcome.samples("sink").iter().map(text).collect();
    assert_eq!(
        docs,
        vec![
            format!("{FRAME_0}\n"),
            "{\"inferences\":[]}\n".to_string(),
            format!("{FRAME_2}\n")
        ]
    );
    assert!(gaps.is_empty());
    assert_eq!(outcome.element("json").property::<u64>("empty-frames"), 1);
}

#[test]
fn subtype_extensions_and_pretty_printing() {
    let (outcome, _) = synthetic(
        2,
        "subtype=objectDetection extensions=pts+frame-number+stream-id+resolution+model pretty=true",
        |n, b| {
            if n == 1 {
                meta::add_detection(b, 320, 240, &person(0.5));
            }
        },
    );
    let samples = outcome.samples("sink");
    assert_eq!(samples.len(), 1);
    let doc = text(&samples[0]);
    assert!(doc.starts_with("{\n  \"inferences\": [\n"), "{doc}");
    let v = valid(&doc);
    let inference = &v["inferences"][0];
    assert_eq!(inference["subtype"], "objectDetection");
    let ext = &inference["extensions"];
    assert_eq!(ext["pts"], "40000000");
    assert_eq!(ext["frameNumber"], "1");
    assert_eq!(ext["resolution"], "320x240");
    assert_eq!(ext["model"], "ssd");
    assert!(
        ext["streamId"].as_str().is_some_and(|s| !s.is_empty()),
        "{ext}"
    );
}

#[test]
fn non_finite_confidences_are_dropped_counted_and_reported() {
    let (outcome, _) = synthetic(4, "", |n, b| {
        let confidence = if n % 2 == 0 { f64::NAN } else { 0.75 };
        meta::add_detection(b, 320, 240, &person(confidence));
        if n == 3 {
            meta::add_detection(b, 320, 240, &person(f64::INFINITY));
        }
    });
    let docs: Vec<String> = outcome.samples("sink").iter().map(text).collect();
    assert_eq!(docs.len(), 2);
    for d in &docs {
        let v = valid(d);
        assert_eq!(v["inferences"].as_array().unwrap().len(), 1, "{d}");
        assert_eq!(v["inferences"][0]["entity"]["tag"]["confidence"], 0.75);
    }
    let json = outcome.element("json");
    assert_eq!(json.property::<u64>("dropped"), 3);
    assert_eq!(json.property::<u64>("empty-frames"), 2);
    assert_eq!(outcome.warnings.len(), 1, "{:?}", outcome.warnings);
    assert!(
        outcome.warnings[0]
            .0
            .contains("the confidence of 'person' is NaN"),
        "{:?}",
        outcome.warnings
    );
}

#[test]
fn a_real_photo_gives_the_entity_ovinfer_attached() {
    let description = format!(
        "filesrc location={} ! decodebin ! videoconvert ! ovinfer model={} labels={} \
         ! tee name=t t. ! queue ! appsink name=frames t. ! queue ! lvajson ! appsink name=sink",
        common::asset("media/astronaut.png"),
        common::ssd_model(),
        common::ssd_labels()
    );
    let outcome = run_sinks(&description, &["frames", "sink"]);
    assert!(outcome.errors.is_empty(), "{}", outcome.error_text());
    let frame = common::frame(&outcome.samples("frames")[0]);
    let docs = outcome.samples("sink");
    assert_eq!(docs.len(), 1);
    let v = valid(&text(&docs[0]));
    let inferences = v["inferences"].as_array().unwrap();
    assert_eq!(inferences.len(), frame.rois.len());
    assert!(!inferences.is_empty());
    for (inference, roi) in inferences.iter().zip(&frame.rois) {
        let d = roi.detection.as_ref().unwrap();
        let entity = &inference["entity"];
        assert_eq!(inference["type"], "entity");
        assert_eq!(inference["subtype"], "ssd_mobilenet_v2_coco");
        assert_eq!(entity["tag"]["value"], d.label.as_str());
        let close = |a: &Value, b: f64| (a.as_f64().unwrap() - b).abs() < 1e-6;
        assert!(close(&entity["tag"]["confidence"], d.confidence));
        let b = &entity["box"];
        let [x0, y0, x1, y1] = d.bbox.map(|v| v.clamp(0.0, 1.0));
        assert!(
            close(&b["l"], x0) && close(&b["t"], y0),
            "{b} vs {:?}",
            d.bbox
        );
        assert!(
            close(&b["w"], x1 - x0) && close(&b["h"], y1 - y0),
            "{b} vs {:?}",
            d.bbox
        );
    }
    assert_eq!(inferences[0]["entity"]["tag"]["value"], "person");
}

/// Runs bikes.mp4 through ovinfer and lvajson into a JSON Lines file; returns its lines.
fn bikes_jsonl(props: &str) -> Vec<String> {
    let out = std::env::temp_dir().join(format!(
        "ovlva-bikes-{}-{}.jsonl",
        std::process::id(),
        props.len()
    ));
    let description = format!(
        "filesrc location={} ! decodebin ! videoconvert ! ovinfer model={} labels={} \
         ! lvajson json-lines=true {props} ! filesink location={}",
        common::asset("media/bikes.mp4"),
        common::ssd_model(),
        common::ssd_labels(),
        out.display()
    );
    common::run_to_eos(&description);
    let text = std::fs::read_to_string(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    assert!(text.ends_with('\n'));
    text.lines().map(str::to_string).collect()
}

#[test]
fn bikes_video_into_a_json_lines_file() {
    let all = bikes_jsonl("skip-empty=false");
    assert_eq!(all.len(), 250, "one line per frame");
    let non_empty: Vec<&String> = all
        .iter()
        .filter(|l| {
            parse(l)["inferences"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
        })
        .collect();
    assert!(
        non_empty.len() > 100,
        "{} frames with results",
        non_empty.len()
    );
    for line in &non_empty {
        let v = valid(line);
        for inference in v["inferences"].as_array().unwrap() {
            assert_eq!(inference["type"], "entity");
        }
    }
    let skipping = bikes_jsonl("");
    assert_eq!(
        skipping.len(),
        non_empty.len(),
        "one line per non-empty frame"
    );
    assert_eq!(skipping, non_empty.into_iter().cloned().collect::<Vec<_>>());
}
