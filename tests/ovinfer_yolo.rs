//! `ovinfer` on a real YOLOv8 export (nudenet's 320n.onnx: Ultralytics 8.2.46, YOLOv8n at
//! 320x320, 18 face and body-part classes; `scripts/setup.sh` puts it in models/yolov8n_nudenet/)
//! with `pre-process-resize` stretch, letterbox and letterbox-top-left, against Ultralytics-style
//! pre-processing and decoding in numpy on OpenVINO's Python API (`scripts/reference_yolo.py`,
//! which runs the export as shipped, its dynamic input fixed to its own imgsz).

mod common;

use common::reference::{self, Case, Detection, Tolerance};
use common::{Frame, asset, boxes, run};
use gst::prelude::*;
use gstovlva::meta::Roi;

const MODES: [&str; 3] = ["stretch", "letterbox", "letterbox-top-left"];

/// Ultralytics' default confidence threshold.
const THRESHOLD: f64 = 0.25;

/// The same pixels on both sides (PNGs: the reference saves what it read), a float model: the
/// scores agree to float rounding. Boxes differ by Ultralytics' `scale_boxes`, which divides by
/// the ratio r where ovinfer undoes the rounded size's own scale (under 1 px here).
const TOLERANCE: Tolerance = Tolerance {
    edge_px: 2.0,
    confidence: 1e-3,
    above: 0.0,
};

fn model() -> String {
    asset("models/yolov8n_nudenet/320n.onnx")
}

/// The export as shipped (dynamic input), for the reference.
fn shipped_model() -> String {
    asset("models/yolov8n_nudenet/320n_dynamic.onnx")
}

fn labels() -> String {
    asset("models/yolov8n_nudenet/labels.txt")
}

/// Label ids of nudenet's list (labels.txt, line numbers from 0).
const FACE_FEMALE: i32 = 1;
const FEET_COVERED: i32 = 9;
const FACE_MALE: i32 = 12;

/// One picture of the test: a file (or a crop of one, saved by the reference as PNG) and the
/// class expected as its most confident detection.
struct Picture {
    name: &'static str,
    image: &'static str,
    crop: Option<[u32; 4]>,
    expected: i32,
}

const PICTURES: [Picture; 5] = [
    Picture {
        name: "astronaut",
        image: "media/astronaut.png",
        crop: None,
        expected: FACE_FEMALE,
    },
    // Taller than wide: letterbox pads left and right.
    Picture {
        name: "astronaut-tall",
        image: "media/astronaut.png",
        crop: Some([100, 0, 300, 512]),
        expected: FACE_FEMALE,
    },
    // Wider than tall: letterbox pads above and below (odd sizes: 188.125 rounds to 188).
    Picture {
        name: "astronaut-wide",
        image: "media/astronaut.png",
        crop: Some([0, 40, 512, 301]),
        expected: FACE_FEMALE,
    },
    Picture {
        name: "cameraman",
        image: "media/camera.png",
        crop: None,
        expected: FACE_MALE,
    },
    // darknet's person.jpg (640x424), decoded by OpenCV and saved as PNG.
    Picture {
        name: "person",
        image: "media/person.jpg",
        crop: Some([0, 0, 640, 424]),
        expected: FEET_COVERED,
    },
];

/// The file the element reads for a picture: the photo, or the reference's PNG of it.
fn element_input(picture: &Picture, dir: &std::path::Path) -> String {
    match picture.crop {
        None => asset(picture.image),
        Some(_) => dir
            .join(format!("{}.png", picture.name))
            .to_string_lossy()
            .into_owned(),
    }
}

fn case(picture: &Picture, mode: &'static str, dir: &std::path::Path) -> Case {
    Case {
        crop: picture.crop,
        save: picture.crop.map(|_| element_input(picture, dir)),
        threshold: THRESHOLD,
        resize: Some(mode),
        ..Case::photo("yolo", &shipped_model(), &asset(picture.image))
    }
}

fn detect(image: &str, props: &str) -> Frame {
    let r = run(&format!(
        "filesrc location={image} ! decodebin ! videoconvert ! video/x-raw,format=RGB \
         ! ovinfer model={} labels={} threshold={THRESHOLD} {props} ! appsink name=sink",
        model(),
        labels()
    ));
    assert!(r.errors.is_empty(), "{}", r.error_text());
    assert_eq!(r.frames.len(), 1);
    r.frames.into_iter().next().unwrap()
}

fn most_confident(found: &[Detection]) -> Option<&Detection> {
    found
        .iter()
        .max_by(|a, b| a.confidence.total_cmp(&b.confidence))
}

#[test]
fn decoder_auto_reads_the_export_as_yolo() {
    let image = asset("media/astronaut.png");
    let auto = detect(&image, "");
    let yolo = detect(&image, "decoder=yolo");
    let got = boxes(&auto);
    assert_eq!(got, boxes(&yolo));
    assert_eq!(got.len(), 1, "{got:?}");
    let (label, confidence, x, y, w, h) = got[0].clone();
    assert_eq!(label, "FACE_FEMALE");
    assert!(confidence > 0.8, "{confidence}");
    // Her face: around x 175..275, y 80..180 of the 512x512 picture.
    assert!(
        (160..190).contains(&x)
            && (70..100).contains(&y)
            && (85..115).contains(&w)
            && (85..115).contains(&h),
        "{got:?}"
    );
}

/// Every picture in every mode: ours equal the reference's (same labels, edges within 2 px,
/// confidences within 1e-3), and each picture's expected class comes first.
#[test]
fn detections_equal_ultralytics_style_decoding_in_every_mode() {
    let dir = reference::scratch("yolo");
    let cases: Vec<Case> = PICTURES
        .iter()
        .flat_map(|p| MODES.map(|mode| case(p, mode, &dir)))
        .collect();
    let answers = reference::run_yolo(&cases, &dir);
    let (mut worst_edge, mut worst_confidence) = (0.0f64, 0.0f64);
    let mut face_confidence = std::collections::HashMap::new();
    for (i, (_, _, expected)) in answers.iter().enumerate() {
        let picture = &PICTURES[i / MODES.len()];
        let mode = MODES[i % MODES.len()];
        let what = format!("{} {mode}", picture.name);
        let best = most_confident(expected).unwrap_or_else(|| panic!("{what}: nothing found"));
        assert_eq!(best.label_id, picture.expected, "{what}: {expected:?}");
        let frame = detect(
            &element_input(picture, &dir),
            &format!("pre-process-resize={mode}"),
        );
        let ours = reference::ours(&frame);
        let (edge, confidence) = reference::compare(&ours, expected, TOLERANCE)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        eprintln!(
            "{what}: {} detections, best {} {:.4}; edges within {edge:.2} px, confidences {confidence:.1e}",
            ours.len(),
            best.label_id,
            best.confidence
        );
        worst_edge = worst_edge.max(edge);
        worst_confidence = worst_confidence.max(confidence);
        face_confidence.insert((picture.name, mode), best.confidence);
    }
    eprintln!("largest differences: {worst_edge:.2} px, confidence {worst_confidence:.1e}");
    // A square picture is not padded: letterbox is stretch.
    assert_eq!(
        face_confidence[&("astronaut", "stretch")],
        face_confidence[&("astronaut", "letterbox")]
    );
    // Squeezed, her face is found less surely than with its shape kept.
    for name in ["astronaut-tall", "astronaut-wide"] {
        let (stretch, letterbox) = (
            face_confidence[&(name, "stretch")],
            face_confidence[&(name, "letterbox")],
        );
        assert!(
            letterbox > stretch + 0.04,
            "{name}: letterbox {letterbox}, stretch {stretch}"
        );
    }
}

/// ROIs of the astronaut attached by a probe.
const ROIS: [(u32, u32, u32, u32); 2] = [(100, 0, 300, 512), (0, 40, 512, 301)];

/// The model on each ROI (`inference-region=roi-list`) takes the same resize mode: each crop
/// letterboxed by its own size, the faces found moved into the frame, equal to the reference
/// on the same crops.
#[test]
fn rois_are_letterboxed_by_their_own_size() {
    let image = asset("media/astronaut.png");
    let dir = reference::scratch("yolo-rois");
    for mode in ["letterbox", "stretch"] {
        let cases: Vec<Case> = ROIS
            .iter()
            .map(|&(x, y, w, h)| Case {
                crop: Some([x, y, w, h]),
                threshold: THRESHOLD,
                resize: Some(mode),
                ..Case::photo("yolo", &shipped_model(), &image)
            })
            .collect();
        let mut expected = Vec::new();
        for ((_, _, found), (x, y, _, _)) in reference::run_yolo(&cases, &dir).into_iter().zip(ROIS)
        {
            expected.extend(found.into_iter().map(|d| Detection {
                x: d.x + f64::from(x),
                y: d.y + f64::from(y),
                ..d
            }));
        }
        // Her face in each ROI (and, squeezed, more).
        let faces = expected
            .iter()
            .filter(|d| d.label_id == FACE_FEMALE)
            .count();
        assert_eq!(faces, 2, "{mode}: {expected:?}");
        let description = format!(
            "filesrc location={image} ! pngdec ! videoconvert ! video/x-raw,format=RGB \
             ! identity name=tag ! ovinfer model={} labels={} threshold={THRESHOLD} \
             inference-region=roi-list pre-process-resize={mode} ! appsink name=sink",
            model(),
            labels()
        );
        let outcome = common::run_prepared(&description, &["sink"], |pipeline| {
            let pad = pipeline.by_name("tag").unwrap().static_pad("src").unwrap();
            pad.add_probe(gst::PadProbeType::BUFFER, |_, info| {
                if let Some(buffer) = info.buffer_mut() {
                    let buffer = buffer.make_mut();
                    for rect in ROIS {
                        gst_video::VideoRegionOfInterestMeta::add(buffer, "person", rect);
                    }
                }
                gst::PadProbeReturn::Ok
            });
        });
        assert!(outcome.errors.is_empty(), "{}", outcome.error_text());
        let all = gstovlva::meta::rois(outcome.samples("sink")[0].buffer().expect("buffer"));
        let added: Vec<Roi> = all[ROIS.len()..].to_vec();
        let faces = added.iter().filter(|r| r.roi_type == "FACE_FEMALE").count();
        assert_eq!(faces, 2, "{mode}: {added:?}");
        let frame = Frame {
            pts: None,
            width: 512,
            height: 512,
            rois: added,
            classes: vec![],
        };
        let (edge, confidence) = reference::compare(&reference::ours(&frame), &expected, TOLERANCE)
            .unwrap_or_else(|e| panic!("{mode}: {e}"));
        eprintln!("ROIs {mode}: edges within {edge:.2} px, confidences {confidence:.1e}");
    }
}

#[test]
fn letterbox_of_whole_frames_needs_ovinfer_preprocessing() {
    let r = run(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! ovinfer model={} \
         pre-process-resize=letterbox pre-process-backend=openvino ! appsink name=sink",
        asset("media/camera.png"),
        model()
    ));
    let e = r.error_text();
    assert!(
        e.contains("pre-process-resize=letterbox needs pre-process-backend=ovinfer"),
        "{e}"
    );
    // With roi-list, ROIs are ovinfer's whatever the backend: accepted.
    let r = run(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! ovinfer model={} \
         inference-region=roi-list pre-process-resize=letterbox-top-left \
         pre-process-backend=openvino ! appsink name=sink",
        asset("media/camera.png"),
        model()
    ));
    assert!(r.errors.is_empty(), "{}", r.error_text());
}

#[test]
fn pre_process_resize_defaults_to_stretch() {
    common::init();
    let infer = gst::ElementFactory::make("ovinfer")
        .build()
        .expect("ovinfer");
    let nick = |e: &gst::Element| {
        let value = e.property_value("pre-process-resize");
        gst::glib::EnumValue::from_value(&value)
            .map(|(_, v)| v.nick().to_string())
            .expect("an enum")
    };
    assert_eq!(nick(&infer), "stretch");
    infer.set_property_from_str("pre-process-resize", "letterbox-top-left");
    assert_eq!(nick(&infer), "letterbox-top-left");
}
