//! `ovinfer inference-region=roi-list` through the real OpenVINO runtime: the model runs on each
//! ROI of a frame (ROIs attached here by a pad probe, as any upstream element would), classes
//! become attributes of their ROIs and detections new ROIs in the frame's coordinates;
//! `object-class`, `min-roi-size`, clipping and empty ROIs; `reclassify-interval` with tracking
//! ids; the LVA document; and OpenVINO's Python API fed by OpenCV crops as the independent
//! reference (class and confidence per ROI, detections in a crop).

mod common;

use common::reference::{self, Case, Tolerance};
use common::{asset, tiny};
use gst::prelude::*;
use gstovlva::meta::{self, Roi};

const W: usize = 96;
const H: usize = 64;

/// A 96x64 RGB frame: red, green and blue squares side by side on the top half, black below.
fn squares() -> Vec<u8> {
    let mut frame = vec![0u8; W * H * 3];
    for y in 0..H / 2 {
        for x in 0..W {
            frame[(y * W + x) * 3 + x / 32] = 255;
        }
    }
    frame
}

/// An ROI to attach: label, rectangle, optional tracking id.
#[derive(Clone)]
struct Tag {
    label: &'static str,
    rect: (u32, u32, u32, u32),
    id: Option<i32>,
}

fn tag(label: &'static str, rect: (u32, u32, u32, u32)) -> Tag {
    Tag {
        label,
        rect,
        id: None,
    }
}

fn tracked(label: &'static str, rect: (u32, u32, u32, u32), id: i32) -> Tag {
    Tag {
        label,
        rect,
        id: Some(id),
    }
}

/// Runs `frames` (96x64 RGB) from an appsrc through `videoconvert ! {caps}`, a probe attaching
/// `tags(n)` to frame n, `ovinfer name=infer {props}` and `tail` (ending in `appsink
/// name=sink`).
fn run(
    frames: Vec<Vec<u8>>,
    format: &str,
    props: &str,
    tail: &str,
    tags: impl Fn(u64) -> Vec<Tag> + Send + Sync + 'static,
) -> common::Outcome {
    let description = format!(
        "appsrc name=src format=time max-bytes=0 \
           caps=video/x-raw,format=RGB,width={W},height={H},framerate=25/1 \
         ! videoconvert ! video/x-raw,format={format} ! identity name=tag \
         ! ovinfer name=infer {props} ! {tail}"
    );
    common::run_prepared(&description, &["sink"], move |pipeline| {
        let pad = pipeline.by_name("tag").unwrap().static_pad("src").unwrap();
        let counter = std::sync::atomic::AtomicU64::new(0);
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(buffer) = info.buffer_mut() {
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let buffer = buffer.make_mut();
                for t in tags(n) {
                    let mut roi =
                        gst_video::VideoRegionOfInterestMeta::add(buffer, t.label, t.rect);
                    if let Some(id) = t.id {
                        roi.add_param(
                            gst::Structure::builder(meta::TRACKING)
                                .field("id", id)
                                .build(),
                        );
                    }
                }
            }
            gst::PadProbeReturn::Ok
        });
        let src = pipeline
            .by_name("src")
            .and_downcast::<gst_app::AppSrc>()
            .expect("appsrc");
        for (i, data) in frames.into_iter().enumerate() {
            let mut buffer = gst::Buffer::from_mut_slice(data);
            let b = buffer.get_mut().unwrap();
            b.set_pts(gst::ClockTime::from_mseconds(40 * i as u64));
            b.set_duration(gst::ClockTime::from_mseconds(40));
            src.push_buffer(buffer).expect("queued");
        }
        src.end_of_stream().expect("EOS queued");
    })
}

/// Each frame's ROIs as they left.
fn rois(outcome: &common::Outcome) -> Vec<Vec<Roi>> {
    outcome
        .samples("sink")
        .iter()
        .map(|s| meta::rois(s.buffer().expect("buffer")))
        .collect()
}

/// An ROI's attributes as (name, label, confidence).
fn attributes(roi: &Roi) -> Vec<(String, String, f64)> {
    roi.attribute_infos()
        .into_iter()
        .map(|a| (a.name, a.label, a.confidence.unwrap_or(-1.0)))
        .collect()
}

/// The colour given to each ROI ("-" for none).
fn colours(frame: &[Roi]) -> Vec<String> {
    frame
        .iter()
        .map(|r| match attributes(r).as_slice() {
            [] => "-".to_string(),
            [(_, label, _)] => label.clone(),
            more => panic!("several attributes: {more:?}"),
        })
        .collect()
}

fn classifier() -> String {
    format!(
        "model={} labels={} inference-region=roi-list",
        tiny("colour_classifier.onnx"),
        tiny("colours.txt")
    )
}

fn counter(outcome: &common::Outcome, name: &str) -> u64 {
    outcome.element("infer").property::<u64>(name)
}

/// The ROIs of the selection test: in order, red, green, a blue person, blue half outside the
/// frame, zero width, 4x4, wholly outside.
fn selection_tags() -> Vec<Tag> {
    vec![
        tag("car", (8, 8, 16, 16)),
        tag("car", (40, 4, 20, 24)),
        tag("person", (68, 4, 20, 20)),
        tag("car", (80, 10, 40, 20)),
        tag("car", (10, 40, 0, 10)),
        tag("car", (50, 40, 4, 4)),
        tag("car", (100, 10, 5, 5)),
    ]
}

#[test]
fn each_roi_gets_its_own_class_and_the_others_are_untouched() {
    // Odd-sized and odd-placed ROIs read 4:2:0 chroma shared with their neighbours: every
    // format, both backends (openvino falls back to ovinfer's cropping), batches and requests
    // in parallel give the same classes.
    let variants = [
        ("RGB", ""),
        ("I420", ""),
        ("NV12", "pre-process-backend=openvino"),
        ("BGRx", "nireq=3 performance-hint=throughput"),
        ("YUY2", "batch-size=4 nireq=2"),
    ];
    for (format, extra) in variants {
        let outcome = run(
            vec![squares(); 3],
            format,
            &format!("{} object-class=car min-roi-size=8 {extra}", classifier()),
            "appsink name=sink",
            |_| selection_tags(),
        );
        let what = format!("{format} {extra}");
        assert!(
            outcome.errors.is_empty(),
            "{what}: {}",
            outcome.error_text()
        );
        let frames = rois(&outcome);
        assert_eq!(frames.len(), 3, "{what}");
        for frame in &frames {
            assert_eq!(
                colours(frame),
                ["red", "green", "-", "blue", "-", "-", "-"],
                "{what}"
            );
            let (name, _, confidence) = &attributes(&frame[0])[0];
            assert_eq!(name, "colour_classifier", "the model file's name");
            assert!(*confidence > 0.99, "{what}: {confidence}");
            // The rest of the ROI is as it came.
            assert_eq!(frame[3].rect, (80, 10, 40, 20), "{what}");
            assert!(frame[2].attributes.is_empty(), "{what}");
        }
        assert_eq!(counter(&outcome, "rois-inferred"), 9, "{what}");
        assert_eq!(counter(&outcome, "rois-skipped-class"), 3, "{what}");
        assert_eq!(counter(&outcome, "rois-skipped-size"), 3, "{what}");
        assert_eq!(counter(&outcome, "rois-skipped-empty"), 6, "{what}");
        assert_eq!(counter(&outcome, "rois-reused"), 0, "{what}");
        assert_eq!(counter(&outcome, "inferences"), 3, "{what}");
    }
}

#[test]
fn without_object_class_every_roi_is_inferred_and_frames_without_rois_pass() {
    let outcome = run(
        vec![squares(); 4],
        "RGB",
        &format!("{} attribute-name=color interval=2", classifier()),
        "appsink name=sink",
        |n| {
            if n == 2 {
                vec![]
            } else {
                vec![tag("person", (68, 4, 20, 20)), tag("car", (4, 36, 20, 20))]
            }
        },
    );
    assert!(outcome.errors.is_empty(), "{}", outcome.error_text());
    let frames = rois(&outcome);
    // Frame 1 and 3: skipped by interval. Frame 2: no ROI. The black ROI: no class reaches
    // the threshold (a third each).
    let got: Vec<Vec<String>> = frames.iter().map(|f| colours(f)).collect();
    assert_eq!(
        got,
        [vec!["blue", "-"], vec!["-", "-"], vec![], vec!["-", "-"]]
    );
    assert_eq!(attributes(&frames[0][0])[0].0, "color");
    assert_eq!(counter(&outcome, "rois-inferred"), 2);
    assert_eq!(counter(&outcome, "inferences"), 2);
    assert_eq!(counter(&outcome, "frames"), 4);
}

#[test]
fn reclassify_interval_infers_a_track_one_frame_in_n_and_copies_its_class_between() {
    // Track 1 is red on frames 0, 5, 10, 15 and blue on the others: reused results keep it red.
    // Track 2 (green) is tracked too; the untracked ROI over the same green is inferred on
    // every frame.
    let frames: Vec<Vec<u8>> = (0..20)
        .map(|n| {
            let mut f = squares();
            if n % 5 != 0 {
                for y in 0..H / 2 {
                    for x in 0..32 {
                        f[(y * W + x) * 3..(y * W + x) * 3 + 3].copy_from_slice(&[0, 0, 255]);
                    }
                }
            }
            f
        })
        .collect();
    for props in ["", "nireq=4 performance-hint=throughput batch-size=2"] {
        let outcome = run(
            frames.clone(),
            "I420",
            &format!(
                "{} reclassify-interval=5 stats-interval=100000 {props}",
                classifier()
            ),
            "appsink name=sink",
            |_| {
                vec![
                    tracked("car", (4, 4, 24, 24), 1),
                    tracked("car", (36, 4, 24, 24), 2),
                    tag("car", (40, 8, 16, 16)),
                ]
            },
        );
        assert!(
            outcome.errors.is_empty(),
            "{props}: {}",
            outcome.error_text()
        );
        let got = rois(&outcome);
        assert_eq!(got.len(), 20, "{props}");
        for (n, frame) in got.iter().enumerate() {
            assert_eq!(
                colours(frame),
                ["red", "green", "green"],
                "{props} frame {n}"
            );
            // A copied result is the inferred one, confidence included.
            let first = &got[n - n % 5][0];
            assert_eq!(
                attributes(&frame[0]),
                attributes(first),
                "{props} frame {n}"
            );
            assert_eq!(frame[0].tracking_id().as_deref(), Some("1"));
        }
        assert_eq!(counter(&outcome, "rois-inferred"), 2 * 4 + 20, "{props}");
        assert_eq!(counter(&outcome, "rois-reused"), 2 * 16, "{props}");
    }
    // Every frame (the default): the blue frames are blue.
    let outcome = run(frames, "RGB", &classifier(), "appsink name=sink", |_| {
        vec![tracked("car", (4, 4, 24, 24), 1)]
    });
    assert!(outcome.errors.is_empty(), "{}", outcome.error_text());
    let got: Vec<String> = rois(&outcome)
        .iter()
        .map(|f| colours(f)[0].clone())
        .collect();
    assert_eq!(got[..6], ["red", "blue", "blue", "blue", "blue", "red"]);
    assert_eq!(counter(&outcome, "rois-inferred"), 20);
}

#[test]
fn the_stats_message_and_properties_count_rois() {
    let messages = std::sync::Arc::new(std::sync::Mutex::new(Vec::<gst::Structure>::new()));
    let seen = messages.clone();
    let description = format!(
        "videotestsrc num-buffers=2 pattern=red ! video/x-raw,format=RGB,width={W},height={H} \
         ! identity name=tag ! ovinfer name=infer {} object-class=car min-roi-size=8 \
         stats-interval=100000 ! appsink name=sink",
        classifier()
    );
    let outcome = common::run_prepared(&description, &["sink"], move |pipeline| {
        let bus = pipeline.bus().expect("bus");
        bus.set_sync_handler(move |_, message| {
            if let gst::MessageView::Element(e) = message.view()
                && let Some(s) = e.structure().filter(|s| s.name() == "ovinfer-stats")
            {
                seen.lock().unwrap().push(s.to_owned());
            }
            gst::BusSyncReply::Pass
        });
        let pad = pipeline.by_name("tag").unwrap().static_pad("src").unwrap();
        pad.add_probe(gst::PadProbeType::BUFFER, |_, info| {
            if let Some(buffer) = info.buffer_mut() {
                let buffer = buffer.make_mut();
                for t in selection_tags() {
                    gst_video::VideoRegionOfInterestMeta::add(buffer, t.label, t.rect);
                }
            }
            gst::PadProbeReturn::Ok
        });
    });
    assert!(outcome.errors.is_empty(), "{}", outcome.error_text());
    let names = [
        "rois-inferred",
        "rois-reused",
        "rois-skipped-class",
        "rois-skipped-size",
        "rois-skipped-empty",
    ];
    let infer = outcome.element("infer");
    let properties: Vec<u64> = names.iter().map(|p| infer.property::<u64>(p)).collect();
    assert_eq!(properties, [6, 0, 2, 2, 4]);
    let messages = messages.lock().unwrap();
    let last = messages
        .iter()
        .find(|m| m.get::<bool>("eos") == Ok(true))
        .unwrap_or_else(|| panic!("a last message at EOS among {messages:?}"));
    let counted: Vec<u64> = names.iter().map(|n| last.get::<u64>(*n).unwrap()).collect();
    assert_eq!(counted, properties);
}

#[test]
fn classes_reach_lvajson_as_entity_attributes() {
    let outcome = run(
        vec![squares()],
        "RGB",
        &format!("{} attribute-name=color", classifier()),
        "lvajson ! appsink name=sink",
        |_| {
            vec![
                tracked("car", (8, 8, 16, 16), 7),
                tag("car", (40, 4, 20, 24)),
            ]
        },
    );
    assert!(outcome.errors.is_empty(), "{}", outcome.error_text());
    let doc: serde_json::Value =
        serde_json::from_str(&common::text(&outcome.samples("sink")[0])).expect("JSON");
    common::check_lva_schema(&doc).expect("a valid LVA document");
    let entities = doc["inferences"].as_array().expect("inferences");
    assert_eq!(entities.len(), 2, "{doc}");
    let attribute = |i: usize| &entities[i]["entity"]["attributes"][0];
    assert_eq!(attribute(0)["name"], "color");
    assert_eq!(attribute(0)["value"], "red");
    assert!(attribute(0)["confidence"].as_f64().unwrap() > 0.99);
    assert_eq!(entities[0]["entity"]["id"], "7");
    assert_eq!(entities[0]["entity"]["tag"]["value"], "car");
    assert_eq!(attribute(1)["value"], "green");
}

#[test]
fn a_detector_on_rois_adds_its_detections_in_frame_coordinates() {
    // tiny_ssd finds fixed boxes in whatever it sees, confident on bright pictures: class 1 at
    // (0.1,0.2)-(0.5,0.6) of its input, class 2 at (-0.1,0.5)-(1.2,1.3), clipped to the ROI.
    let white = vec![255u8; W * H * 3];
    let outcome = run(
        vec![white],
        "RGB",
        &format!(
            "model={} labels={} inference-region=roi-list",
            tiny("tiny_ssd.onnx"),
            tiny("tiny_ssd_labels.txt")
        ),
        "appsink name=sink",
        |_| vec![tag("box", (16, 8, 40, 30)), tag("box", (60, 30, 20, 20))],
    );
    assert!(outcome.errors.is_empty(), "{}", outcome.error_text());
    let frame = &rois(&outcome)[0];
    let found: Vec<(String, (u32, u32, u32, u32))> =
        frame.iter().map(|r| (r.roi_type.clone(), r.rect)).collect();
    assert_eq!(
        found,
        [
            ("box".to_string(), (16, 8, 40, 30)),
            ("box".to_string(), (60, 30, 20, 20)),
            // 16 + 0.1 * 40 = 20 .. 16 + 0.5 * 40 = 36; 8 + 0.2 * 30 = 14 .. 8 + 0.6 * 30 = 26
            ("cat".to_string(), (20, 14, 16, 12)),
            // x 0..1 and y 0.5..1 of the ROI: 16..56, 23..38
            ("dog".to_string(), (16, 23, 40, 15)),
            ("cat".to_string(), (62, 34, 8, 8)),
            ("dog".to_string(), (60, 40, 20, 10)),
        ]
    );
    let d = frame[2].detection.as_ref().expect("a detection structure");
    assert_eq!(d.model, "tiny_ssd");
    let close = |a: f64, b: f64| (a - b).abs() < 1e-6;
    assert!(
        close(d.bbox[0], 20.0 / 96.0) && close(d.bbox[3], 26.0 / 64.0),
        "{d:?}"
    );
    assert!(
        frame[0].attributes.is_empty(),
        "the ROI itself is not changed"
    );
}

// ------------------------------------------------------------------------------------------
// The independent reference: OpenVINO's Python API on OpenCV crops of the same picture.

/// ROIs on the astronaut (512x512): the helmet, the flag's blue, the suit, the face, the dark
/// background, a 10x12 patch (enlarged to the model's 16x16), and one half outside the picture.
const ASTRONAUT_ROIS: [(u32, u32, u32, u32); 7] = [
    (150, 20, 200, 190),
    (0, 0, 60, 100),
    (100, 300, 300, 200),
    (180, 80, 90, 95),
    (420, 20, 80, 100),
    (300, 260, 10, 12),
    (470, 400, 100, 200),
];

/// Runs the astronaut through `ovinfer {props}` with `ASTRONAUT_ROIS` attached (in `format`).
fn astronaut(format: &str, props: &str) -> Vec<Roi> {
    let description = format!(
        "filesrc location={} ! pngdec ! videoconvert ! video/x-raw,format={format} \
         ! identity name=tag ! ovinfer name=infer {props} ! appsink name=sink",
        asset("media/astronaut.png")
    );
    let outcome = common::run_prepared(&description, &["sink"], |pipeline| {
        let pad = pipeline.by_name("tag").unwrap().static_pad("src").unwrap();
        pad.add_probe(gst::PadProbeType::BUFFER, |_, info| {
            if let Some(buffer) = info.buffer_mut() {
                let buffer = buffer.make_mut();
                for rect in ASTRONAUT_ROIS {
                    gst_video::VideoRegionOfInterestMeta::add(buffer, "thing", rect);
                }
            }
            gst::PadProbeReturn::Ok
        });
    });
    assert!(outcome.errors.is_empty(), "{}", outcome.error_text());
    rois(&outcome).remove(0)
}

#[test]
fn classes_equal_the_reference_on_opencv_crops() {
    let model = tiny("colour_classifier.onnx");
    let image = asset("media/astronaut.png");
    // The reference crops the picture to each ROI clipped to it.
    let cases: Vec<Case> = ASTRONAUT_ROIS
        .iter()
        .map(|&(x, y, w, h)| Case {
            crop: Some([x, y, w.min(512 - x), h.min(512 - y)]),
            threshold: 0.0,
            ..Case::photo("classification", &model, &image)
        })
        .collect();
    let dir = reference::scratch("roi-classes");
    let reference: Vec<(i32, f64)> = reference::run(&cases, &dir)
        .into_iter()
        .map(|(_, _, d)| (d[0].label_id, d[0].confidence))
        .collect();
    // Tolerance: the crops are OpenCV's pixels to the bit (shrinking, and here enlarging the
    // 10x12 ROI too), so only float rounding differs: u8 -> f32 and 1/255 in OpenVINO here, in
    // numpy there, and the reference's softmax check in f64 (seen: 4.4e-7).
    const TOLERANCE: f64 = 1e-5;
    let mut worst = 0.0f64;
    for (format, props) in [("RGB", ""), ("RGB", "batch-size=3 nireq=2")] {
        let ours = astronaut(
            format,
            &format!(
                "model={model} inference-region=roi-list threshold=0 attribute-name=colour {props}"
            ),
        );
        assert_eq!(ours.len(), ASTRONAUT_ROIS.len());
        let labels: Vec<i32> = reference.iter().map(|r| r.0).collect();
        assert!(
            labels.contains(&0) && labels.contains(&2),
            "the ROIs are not all one colour: {reference:?}"
        );
        for (i, (roi, (label_id, confidence))) in ours.iter().zip(&reference).enumerate() {
            let a = &roi.attributes[0];
            assert_eq!(a.name(), "colour");
            assert_eq!(a.get::<i32>("label_id"), Ok(*label_id), "ROI {i}");
            let ours = a.get::<f64>("confidence").expect("confidence");
            let diff = (ours - confidence).abs();
            assert!(
                diff <= TOLERANCE,
                "ROI {i} {:?}: {ours} against {confidence}",
                ASTRONAUT_ROIS[i]
            );
            worst = worst.max(diff);
        }
    }
    eprintln!("largest confidence difference to the reference: {worst:.2e}");
}

#[test]
fn detections_in_rois_equal_the_reference_on_opencv_crops() {
    // BlazeFace on ROIs of the astronaut: the face ROI finds her face, the others nothing (or
    // what the reference finds there too), boxes moved into the picture's coordinates.
    let model = common::blazeface_model();
    let image = asset("media/astronaut.png");
    let cases: Vec<Case> = ASTRONAUT_ROIS
        .iter()
        .map(|&(x, y, w, h)| Case {
            crop: Some([x, y, w.min(512 - x), h.min(512 - y)]),
            ..Case::photo("blazeface", &model, &image)
        })
        .collect();
    let dir = reference::scratch("roi-faces");
    let mut reference = Vec::new();
    for ((_, _, found), case) in reference::run(&cases, &dir).into_iter().zip(&cases) {
        let [x, y, ..] = case.crop.expect("a crop");
        reference.extend(found.into_iter().map(|d| reference::Detection {
            x: d.x + f64::from(x),
            y: d.y + f64::from(y),
            ..d
        }));
    }
    assert!(!reference.is_empty(), "the reference finds the face");
    let ours = astronaut("RGB", &format!("model={model} inference-region=roi-list"));
    let added: Vec<Roi> = ours[ASTRONAUT_ROIS.len()..].to_vec();
    assert!(added.iter().all(|r| r.roi_type == "face"));
    let frame = common::Frame {
        pts: None,
        width: 512,
        height: 512,
        rois: added,
        classes: vec![],
    };
    // BlazeFace is a float model: the same pixels give the same scores up to float rounding
    // (seen: 0.04 px, 1.8e-5).
    let tolerance = Tolerance {
        edge_px: 0.1,
        confidence: 1e-4,
        above: 0.0,
    };
    let (edge, confidence) = reference::compare(&reference::ours(&frame), &reference, tolerance)
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "{} faces; largest differences to the reference: {edge:.2} px, confidence {confidence:.2e}",
        reference.len()
    );
}

// ------------------------------------------------------------------------------------------
// Bad settings: errors on the bus that say what to change.

#[test]
fn bad_attribute_names_are_refused() {
    for (name, expected) in [("2color", "not a valid name"), ("detection", "reserved")] {
        let outcome = run(
            vec![squares()],
            "RGB",
            &format!("{} attribute-name={name}", classifier()),
            "appsink name=sink",
            |_| vec![],
        );
        let e = outcome.error_text();
        assert!(e.contains(expected) && e.contains(name), "{name}: {e}");
    }
}

#[test]
fn roi_properties_have_their_defaults_and_keep_what_is_set() {
    common::init();
    let infer = gst::ElementFactory::make("ovinfer")
        .property_from_str("inference-region", "roi-list")
        .property("object-class", "car,truck")
        .property("min-roi-size", 12u32)
        .property("reclassify-interval", 0u32)
        .property("attribute-name", "color")
        .build()
        .expect("ovinfer");
    assert_eq!(
        infer
            .property_value("inference-region")
            .serialize()
            .unwrap(),
        "roi-list"
    );
    assert_eq!(infer.property::<String>("object-class"), "car,truck");
    assert_eq!(infer.property::<u32>("min-roi-size"), 12);
    assert_eq!(infer.property::<u32>("reclassify-interval"), 0);
    assert_eq!(
        infer
            .property::<Option<String>>("attribute-name")
            .as_deref(),
        Some("color")
    );
    let fresh = gst::ElementFactory::make("ovinfer").build().unwrap();
    assert_eq!(
        fresh
            .property_value("inference-region")
            .serialize()
            .unwrap(),
        "full-frame"
    );
    assert_eq!(fresh.property::<u32>("reclassify-interval"), 1);
    assert_eq!(fresh.property::<Option<String>>("attribute-name"), None);
}
