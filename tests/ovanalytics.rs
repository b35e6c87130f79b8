//! `ovanalytics` on synthetic tracked objects: an appsrc of blank frames carrying ROIs with
//! `object_id`s that cross a line both ways and go in and out of a zone (one vanishes), through
//! `lvajson`: the exact events, directions, counts, occupancy and dwell, every document valid
//! against tests/lva_inference.schema.json with every `relatedInferences` entry resolving, the
//! counters and the EOS message; bad rules give an error naming the rule and the fix; the
//! properties are those docs/ovanalytics.md lists.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use common::{Outcome, check_lva_schema, run_prepared, text};
use gst::prelude::*;
use gst_video::VideoRegionOfInterestMeta;
use serde_json::Value;

const W: u32 = 100;
const H: u32 = 100;
/// 100 ms a frame.
const FPS: u64 = 10;

const RULES: &str = r#"{"lines": [{"name": "door", "points": [[0.5, 0.0], [0.5, 1.0]]}],
  "zones": [{"name": "lot", "polygon": [[0.6, 0.2], [0.9, 0.2], [0.9, 0.8], [0.6, 0.8]]}]}"#;

/// One object on a frame: tracking id (none: untracked), label, bottom centre (x, y).
type Object = (Option<i32>, &'static str, f64, f64);

/// The scenario, frame by frame. Track 1 (a person) walks right across the door (frame 4,
/// counterclockwise for a line drawn top to bottom), into the lot (frame 5) and vanishes after
/// frame 6; track 2 (a car) is in the lot from frame 0, leaves it at frame 6 after 0.6 s and
/// crosses the door to the left at frame 7 (clockwise). An untracked ROI jumps across the door
/// every frame and is ignored.
fn scenario() -> Vec<Vec<Object>> {
    let person = [0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75];
    let car = [
        0.85, 0.85, 0.85, 0.85, 0.85, 0.85, 0.55, 0.45, 0.3, 0.3, 0.3, 0.3,
    ];
    (0..12)
        .map(|n| {
            let mut objects = Vec::new();
            if let Some(&x) = person.get(n) {
                objects.push((Some(1), "person", x, 0.5));
            }
            objects.push((Some(2), "car", car[n], 0.5));
            let x = if n % 2 == 0 { 0.2 } else { 0.8 };
            objects.push((None, "person", x, 0.5));
            objects
        })
        .collect()
}

fn frame(n: usize, objects: &[Object]) -> gst::Buffer {
    let mut buffer = gst::Buffer::from_mut_slice(vec![0u8; (W * H) as usize]);
    {
        let b = buffer.get_mut().expect("a new buffer is writable");
        b.set_pts(gst::ClockTime::from_mseconds(n as u64 * 1000 / FPS));
        b.set_duration(gst::ClockTime::from_mseconds(1000 / FPS));
        for &(id, label, x, y) in objects {
            let bbox = [x - 0.05, y - 0.2, x + 0.05, y];
            let rect = gstovlva::meta::pixel_rect(bbox, W, H);
            let mut roi = VideoRegionOfInterestMeta::add(b, label, rect);
            roi.add_param(
                gst::Structure::builder("detection")
                    .field("x_min", bbox[0])
                    .field("y_min", bbox[1])
                    .field("x_max", bbox[2])
                    .field("y_max", bbox[3])
                    .field("confidence", 0.9f64)
                    .field("label_id", 1i32)
                    .field("label", label)
                    .field("model", "synthetic")
                    .build(),
            );
            if let Some(id) = id {
                roi.add_param(gst::Structure::builder("object_id").field("id", id).build());
            }
        }
    }
    buffer
}

/// Runs the frames through `ovanalytics {props} ! lvajson` with `rules` set (when given),
/// returning the outcome and the element messages of ovanalytics.
fn run(
    frames: Vec<Vec<Object>>,
    rules: Option<&str>,
    props: &str,
) -> (Outcome, Vec<gst::Structure>) {
    let rules = rules.map(str::to_string);
    let description = format!(
        "appsrc name=src format=time caps=video/x-raw,format=GRAY8,width={W},height={H},framerate={FPS}/1 \
         ! ovanalytics name=a {props} ! lvajson json-lines=false ! appsink name=sink"
    );
    let messages = Arc::new(Mutex::new(Vec::new()));
    let seen = messages.clone();
    let outcome = run_prepared(&description, &["sink"], move |pipeline| {
        if let Some(rules) = rules {
            pipeline
                .by_name("a")
                .expect("ovanalytics")
                .set_property("rules", rules);
        }
        let src = pipeline
            .by_name("src")
            .and_downcast::<gst_app::AppSrc>()
            .expect("an appsrc");
        let next = Mutex::new(0usize);
        src.set_callbacks(
            gst_app::AppSrcCallbacks::builder()
                .need_data(move |src, _| {
                    let mut n = next.lock().unwrap();
                    match frames.get(*n) {
                        Some(objects) => {
                            let _ = src.push_buffer(frame(*n, objects));
                            *n += 1;
                        }
                        None => {
                            let _ = src.end_of_stream();
                        }
                    }
                })
                .build(),
        );
        pipeline
            .bus()
            .expect("bus")
            .set_sync_handler(move |_, msg| {
                if let gst::MessageView::Element(e) = msg.view()
                    && let Some(s) = e.structure()
                    && s.name() == "ovanalytics"
                {
                    seen.lock().unwrap().push(s.to_owned());
                }
                gst::BusSyncReply::Pass
            });
    });
    let messages = messages.lock().unwrap().clone();
    (outcome, messages)
}

/// Every document, parsed and checked: valid LVA JSON, every related inference resolving.
fn documents(outcome: &Outcome) -> Vec<(u64, Value)> {
    outcome
        .samples("sink")
        .iter()
        .map(|s| {
            let doc = text(s);
            let v: Value = serde_json::from_str(&doc).unwrap_or_else(|e| panic!("{e}: {doc}"));
            if let Err(e) = check_lva_schema(&v) {
                panic!("not an LVA document: {e}\n{doc}");
            }
            let inferences = v["inferences"].as_array().expect("inferences");
            let ids: BTreeSet<&str> = inferences
                .iter()
                .filter_map(|i| i["inferenceId"].as_str())
                .collect();
            for i in inferences {
                for r in i["relatedInferences"].as_array().into_iter().flatten() {
                    let r = r.as_str().expect("a string id");
                    assert!(ids.contains(r), "{r} does not resolve in {doc}");
                }
            }
            let pts = s.buffer().and_then(|b| b.pts()).expect("pts").mseconds();
            (pts / (1000 / FPS), v)
        })
        .collect()
}

/// (frame, event name, properties as "k=v" sorted, related inferences)
fn events(docs: &[(u64, Value)]) -> Vec<(u64, String, String, Vec<String>)> {
    let mut out = Vec::new();
    for (n, doc) in docs {
        for i in doc["inferences"].as_array().into_iter().flatten() {
            if i["type"] != "event" {
                continue;
            }
            let props = i["event"]["properties"]
                .as_object()
                .map(|p| {
                    p.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("?")))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            let related = i["relatedInferences"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r.as_str().map(str::to_string))
                .collect();
            let name = i["event"]["name"].as_str().unwrap_or_default().to_string();
            out.push((*n, name, props, related));
        }
    }
    out
}

#[test]
fn crossings_zones_occupancy_and_dwell_are_exact() {
    let (outcome, messages) = run(scenario(), Some(RULES), "dwell-interval=0.25 lost-frames=2");
    assert!(outcome.errors.is_empty(), "{}", outcome.error_text());
    let docs = documents(&outcome);
    assert_eq!(docs.len(), 12, "every frame has objects, so a document");
    let got = events(&docs);
    let e = |n: u64, name: &str, props: &str, related: &[&str]| {
        (
            n,
            name.to_string(),
            props.to_string(),
            related.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
        )
    };
    let want = vec![
        e(
            0,
            "ZoneEnter",
            "count=1 entries=1 label=car objectId=2 zone=lot",
            &["track-2"],
        ),
        e(
            0,
            "ZoneOccupancy",
            "count=1 previous=0 zone=lot",
            &["track-2"],
        ),
        e(
            3,
            "ZoneDwell",
            "dwell=0.3 final=false label=car objectId=2 zone=lot",
            &["track-2"],
        ),
        e(
            4,
            "LineCrossing",
            "clockwise=0 counterclockwise=1 direction=counterclockwise label=person line=door objectId=1 total=1",
            &["track-1"],
        ),
        e(
            5,
            "ZoneEnter",
            "count=2 entries=2 label=person objectId=1 zone=lot",
            &["track-1"],
        ),
        e(
            5,
            "ZoneDwell",
            "dwell=0.5 final=false label=car objectId=2 zone=lot",
            &["track-2"],
        ),
        e(
            5,
            "ZoneOccupancy",
            "count=2 previous=1 zone=lot",
            &["track-1", "track-2"],
        ),
        e(
            6,
            "ZoneExit",
            "count=1 dwell=0.6 exits=1 label=car objectId=2 reason=left zone=lot",
            &["track-2"],
        ),
        e(
            6,
            "ZoneDwell",
            "dwell=0.6 final=true label=car objectId=2 zone=lot",
            &["track-2"],
        ),
        e(
            6,
            "ZoneOccupancy",
            "count=1 previous=2 zone=lot",
            &["track-1"],
        ),
        e(
            7,
            "LineCrossing",
            "clockwise=1 counterclockwise=1 direction=clockwise label=car line=door objectId=2 total=2",
            &["track-2"],
        ),
        // track 1, last seen at frame 6, is lost at frame 9 (unseen for 3 > 2 frames)
        e(
            9,
            "ZoneExit",
            "count=0 dwell=0.1 exits=2 objectId=1 reason=lost zone=lot",
            &[],
        ),
        e(
            9,
            "ZoneDwell",
            "dwell=0.1 final=true objectId=1 zone=lot",
            &[],
        ),
        e(9, "ZoneOccupancy", "count=0 previous=1 zone=lot", &[]),
    ];
    assert_eq!(got, want);
    // Tracked entities carry their inferenceId; the untracked one has none.
    let first = docs[0].1["inferences"].as_array().unwrap();
    let ids: Vec<_> = first
        .iter()
        .filter(|i| i["type"] == "entity")
        .map(|i| i["inferenceId"].as_str())
        .collect();
    assert_eq!(ids, [Some("track-1"), Some("track-2"), None]);

    let a = outcome.element("a");
    assert_eq!(a.property::<u64>("crossings"), 2);
    assert_eq!(a.property::<u64>("events"), 14);
    assert_eq!(messages.len(), 1, "{messages:?}");
    let m = &messages[0];
    assert_eq!(m.get::<u64>("crossings").unwrap(), 2);
    assert_eq!(m.get::<u64>("events").unwrap(), 14);
    let lines = m.get::<gst::Array>("lines").unwrap();
    let door = lines.first().unwrap().get::<gst::Structure>().unwrap();
    assert_eq!(door.get::<String>("name").unwrap(), "door");
    assert_eq!(door.get::<u64>("clockwise").unwrap(), 1);
    assert_eq!(door.get::<u64>("counterclockwise").unwrap(), 1);
    let zones = m.get::<gst::Array>("zones").unwrap();
    let lot = zones.first().unwrap().get::<gst::Structure>().unwrap();
    assert_eq!(lot.get::<u64>("entries").unwrap(), 2);
    assert_eq!(lot.get::<u64>("exits").unwrap(), 2);
    assert_eq!(lot.get::<u64>("count").unwrap(), 0);
}

#[test]
fn direction_filters_anchor_and_label_filters() {
    // Only clockwise crossings of cars count on "door"; "low" spans only the height of the
    // boxes' bottom edges (y 0.5), so their centres (y 0.4) pass above it.
    let rules = r#"{"lines": [{"name": "door", "points": [[0.5, 0.0], [0.5, 1.0]],
        "direction": "clockwise", "labels": ["car"]},
        {"name": "low", "points": [[0.5, 0.45], [0.5, 0.55]]}]}"#;
    let frames: Vec<Vec<Object>> = [0.3, 0.7, 0.3, 0.7]
        .iter()
        .map(|&x| vec![(Some(4), "car", x, 0.5), (Some(5), "person", 1.0 - x, 0.5)])
        .collect();
    let (outcome, _) = run(frames, Some(rules), "anchor=center");
    assert!(outcome.errors.is_empty(), "{}", outcome.error_text());
    let got: Vec<_> = events(&documents(&outcome))
        .into_iter()
        .map(|(n, name, props, _)| (n, name, props))
        .collect();
    assert_eq!(
        got,
        [(
            2,
            "LineCrossing".to_string(),
            "clockwise=1 counterclockwise=0 direction=clockwise label=car line=door objectId=4 total=1"
                .to_string()
        )]
    );
}

fn error_of(rules: Option<&str>, props: &str) -> String {
    let (outcome, _) = run(scenario(), rules, props);
    assert!(!outcome.errors.is_empty(), "no error for {rules:?} {props}");
    outcome.error_text()
}

#[test]
fn bad_rules_are_an_error_naming_the_rule_and_the_fix() {
    let e = error_of(
        Some(r#"{"lines": [{"name": "door", "points": [[0.5, 0.0]]}]}"#),
        "",
    );
    assert!(
        e.contains("rules: line \"door\": has 1 point; a line needs exactly 2 points"),
        "{e}"
    );
    let e = error_of(
        Some(
            r#"{"zones": [{"name": "bow", "polygon": [[0.1,0.1],[0.9,0.9],[0.9,0.1],[0.1,0.9]]}]}"#,
        ),
        "",
    );
    assert!(
        e.contains("zone \"bow\": its polygon intersects itself"),
        "{e}"
    );
    let e = error_of(None, "rules-file=/nonexistent/rules.json");
    assert!(
        e.contains("cannot read the rules file /nonexistent/rules.json")
            && e.contains("set rules-file to a readable JSON file"),
        "{e}"
    );
    let e = error_of(None, "");
    assert!(e.contains("no rules: set rules"), "{e}");
}

#[test]
fn rules_file_is_read() {
    let dir = common::reference::scratch("ovanalytics");
    let path = dir.join("rules.json");
    std::fs::write(&path, RULES).expect("the rules file is written");
    let (outcome, _) = run(scenario(), None, &format!("rules-file={}", path.display()));
    assert!(outcome.errors.is_empty(), "{}", outcome.error_text());
    assert_eq!(outcome.element("a").property::<u64>("crossings"), 2);
}

/// bikes.mp4 through `ovinfer ! ovtrack ! ovanalytics ! lvajson`: every document is valid with
/// every `relatedInferences` entry resolving, the events in the documents are the ones the
/// counters count, and the people and bikes of the clip cross the middle line.
#[test]
fn bikes_through_ovinfer_and_ovtrack() {
    let dir = common::reference::scratch("ovanalytics-bikes");
    let rules = dir.join("rules.json");
    std::fs::write(
        &rules,
        r#"{"lines": [{"name": "middle", "points": [[0.5, 0.0], [0.5, 1.0]]}],
            "zones": [{"name": "right", "polygon": [[0.5, 0.0], [1.0, 0.0], [1.0, 1.0], [0.5, 1.0]]}]}"#,
    )
    .expect("the rules file is written");
    let description = format!(
        "filesrc location={} ! decodebin ! videoconvert ! ovinfer model={} labels={} ! ovtrack \
         ! ovanalytics name=a rules-file={} ! lvajson ! appsink name=sink",
        common::asset("media/bikes.mp4"),
        common::ssd_model(),
        common::ssd_labels(),
        rules.display()
    );
    let outcome = common::run_sinks(&description, &["sink"]);
    assert!(outcome.errors.is_empty(), "{}", outcome.error_text());
    let docs = documents(&outcome);
    assert!(!docs.is_empty());
    let got = events(&docs);
    let a = outcome.element("a");
    assert_eq!(got.len() as u64, a.property::<u64>("events"));
    let crossings = got.iter().filter(|e| e.1 == "LineCrossing").count() as u64;
    assert_eq!(crossings, a.property::<u64>("crossings"));
    assert!(crossings >= 1, "{got:?}");
    assert!(got.iter().any(|e| e.1 == "ZoneEnter"), "{got:?}");
}
