//! Pre-processing fidelity: whatever the frame's format and size, and either pre-processing
//! backend, `ovinfer` gives the detections of OpenVINO's Python API fed by OpenCV with the same
//! picture (`scripts/reference_detect.py`: cv2 colour conversion, cv2.resize INTER_LINEAR).
//!
//! Each photo (and crops of it: odd sizes, and the model's own size, where OpenVINO 2026.4
//! mis-compiled a channel reversal) is saved by the reference as PNG, so the element reads the
//! very pixels the reference saw. Packed RGB formats carry those pixels unchanged; for YUV and
//! GRAY8 frames (which `videoconvert` makes with a loss no pre-processing can undo) the reference
//! converts the very frame the element received with `cv2.cvtColor`.

mod common;

use common::reference::{self, Case, Detection, Raw, Tolerance};
use common::{Frame, blazeface_model, frame, run_sinks, ssd_labels, ssd_model};
use gst_video::VideoFormat;
use gst_video::prelude::*;
use gstovlva::ovinfer::convert::Layout;

/// Formats that carry the photo's RGB pixels as they are.
const RGB_FORMATS: [&str; 10] = [
    "RGB", "BGR", "RGBx", "BGRx", "RGBA", "BGRA", "xRGB", "xBGR", "ARGB", "ABGR",
];
/// Formats whose frames the reference converts itself, from the frame's own bytes.
const RAW_FORMATS: [&str; 8] = [
    "I420", "YV12", "NV12", "NV21", "YUY2", "UYVY", "YVYU", "GRAY8",
];
const BACKENDS: [&str; 2] = ["ovinfer", "openvino"];

struct Model {
    kind: &'static str,
    path: String,
    properties: String,
    /// Pictures: photo and crop (x, y, w, h).
    pictures: Vec<(&'static str, Option<[u32; 4]>)>,
    /// With `pre-process-backend=ovinfer`, whose picture is OpenCV's to the bit.
    tolerance: Tolerance,
    /// With `pre-process-backend=openvino`: OpenVINO's linear resize rounds differently from
    /// OpenCV's (one level apart on about one pixel in eight), which moves the quantised
    /// SSD's boxes and confidences by a few of its steps.
    openvino_tolerance: Tolerance,
}

fn ssd() -> Model {
    Model {
        kind: "ssd",
        path: ssd_model(),
        properties: format!("labels={}", ssd_labels()),
        pictures: vec![
            ("media/astronaut.png", None),
            ("media/astronaut.png", Some([3, 5, 467, 489])),
            ("media/astronaut.png", Some([20, 10, 300, 300])),
            ("media/person.jpg", None),
            ("media/person.jpg", Some([7, 11, 613, 397])),
            ("media/person.jpg", Some([150, 80, 300, 300])),
            ("media/dog.jpg", None),
            ("media/dog.jpg", Some([5, 3, 741, 559])),
            ("media/dog.jpg", Some([80, 230, 300, 300])),
        ],
        // Confidences of the quantised SSD come in steps of 1/256; the 0.5 threshold is one.
        tolerance: Tolerance {
            edge_px: 2.0,
            confidence: 1.0 / 256.0 + 1e-3,
            above: 0.51,
        },
        openvino_tolerance: Tolerance {
            edge_px: 8.0,
            confidence: 16.0 / 256.0,
            above: 0.51,
        },
    }
}

fn blazeface() -> Model {
    Model {
        kind: "blazeface",
        path: blazeface_model(),
        properties: String::new(),
        pictures: vec![
            ("media/astronaut.png", None),
            ("media/astronaut.png", Some([3, 5, 467, 489])),
            ("media/astronaut.png", Some([160, 60, 128, 128])),
            ("media/astronaut.png", Some([150, 50, 151, 149])),
            ("media/person.jpg", None),
        ],
        tolerance: Tolerance {
            edge_px: 2.0,
            confidence: 0.01,
            above: 0.5,
        },
        openvino_tolerance: Tolerance {
            edge_px: 2.0,
            confidence: 0.01,
            above: 0.5,
        },
    }
}

/// A frame's planes without row padding, as the reference reads a raw frame.
fn packed_planes(sample: &gst::Sample) -> Vec<u8> {
    let caps = sample.caps().expect("caps");
    let info = gst_video::VideoInfo::from_caps(caps).expect("video caps");
    let frame =
        gst_video::VideoFrameRef::from_buffer_ref_readable(sample.buffer().expect("buffer"), &info)
            .expect("readable frame");
    let layout = Layout::of(info.format()).expect("a format ovinfer takes");
    let sizes = layout.planes(info.width() as usize, info.height() as usize);
    let mut out = Vec::new();
    for (p, (row, rows)) in sizes.into_iter().enumerate() {
        let data = frame.plane_data(p as u32).expect("plane");
        let stride = frame.plane_stride()[p] as usize;
        for y in 0..rows {
            out.extend_from_slice(&data[y * stride..y * stride + row]);
        }
    }
    out
}

/// One picture through every format with one backend: the frames as they left ovinfer.
fn detect_all_formats(png: &str, model: &Model, backend: &str) -> Vec<gst::Sample> {
    let formats: Vec<&str> = RGB_FORMATS.iter().chain(&RAW_FORMATS).copied().collect();
    let mut description = format!(
        "filesrc location={png} ! pngdec ! videoconvert ! video/x-raw,format=RGB ! tee name=t"
    );
    for (i, format) in formats.iter().enumerate() {
        // OpenCV's YUV conversions are BT.601 with limited range.
        let colorimetry = if RAW_FORMATS.contains(format) && *format != "GRAY8" {
            ",colorimetry=bt601"
        } else {
            ""
        };
        description += &format!(
            " t. ! queue ! videoconvert ! video/x-raw,format={format}{colorimetry} \
             ! ovinfer model={} {} pre-process-backend={backend} ! appsink name=s{i}",
            model.path, model.properties
        );
    }
    let names: Vec<String> = (0..formats.len()).map(|i| format!("s{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let outcome = run_sinks(&description, &names);
    assert!(
        outcome.errors.is_empty(),
        "{png} {backend}: {}",
        outcome.error_text()
    );
    names
        .iter()
        .map(|n| {
            let samples = outcome.samples(n);
            assert_eq!(samples.len(), 1, "{png} {backend} {n}");
            samples[0].clone()
        })
        .collect()
}

/// Runs the whole matrix for one model; every mismatch is collected, then reported together.
fn matrix(model: Model) {
    let dir = reference::scratch(model.kind);
    let photos: Vec<Case> = model
        .pictures
        .iter()
        .enumerate()
        .map(|(i, (image, crop))| Case {
            crop: *crop,
            save: Some(dir.join(format!("picture{i}.png")).display().to_string()),
            ..Case::photo(model.kind, &model.path, &common::asset(image))
        })
        .collect();
    let expected = reference::run(&photos, &dir);
    let mut failures = Vec::new();
    let mut compared = 0;
    let mut worst = [(0.0f64, 0.0f64); 2];
    let mut check = |what: String, backend: &str, ours: &Frame, reference: &[Detection]| {
        compared += 1;
        let (tolerance, worst) = match backend {
            "ovinfer" => (model.tolerance, &mut worst[0]),
            _ => (model.openvino_tolerance, &mut worst[1]),
        };
        match reference::compare(&reference::ours(ours), reference, tolerance) {
            Ok((edge, confidence)) => *worst = (worst.0.max(edge), worst.1.max(confidence)),
            Err(e) => failures.push(format!("{what}: {e}")),
        }
    };
    for (i, photo) in photos.iter().enumerate() {
        let png = photo.save.clone().expect("saved picture");
        let (width, height, rgb_reference) = &expected[i];
        let picture = format!(
            "{} crop {:?} ({width}x{height})",
            model.pictures[i].0, photo.crop
        );
        for backend in BACKENDS {
            let samples = detect_all_formats(&png, &model, backend);
            let mut raw_cases = Vec::new();
            for (format, sample) in RGB_FORMATS.iter().chain(&RAW_FORMATS).zip(&samples) {
                let ours = frame(sample);
                assert_eq!((ours.width, ours.height), (*width, *height));
                if RGB_FORMATS.contains(format) {
                    check(
                        format!("{picture} {format} {backend}"),
                        backend,
                        &ours,
                        rgb_reference,
                    );
                } else {
                    let path = dir.join(format!("picture{i}-{backend}.{format}"));
                    std::fs::write(&path, packed_planes(sample)).expect("raw frame");
                    raw_cases.push((
                        format,
                        ours,
                        Case {
                            image: None,
                            raw: Some(Raw {
                                path: path.display().to_string(),
                                format: format.to_string(),
                                width: *width,
                                height: *height,
                            }),
                            ..Case::photo(model.kind, &model.path, "")
                        },
                    ));
                }
            }
            let cases: Vec<Case> = raw_cases.iter().map(|c| c.2.clone()).collect();
            for ((format, ours, _), (_, _, reference)) in
                raw_cases.iter().zip(reference::run(&cases, &dir))
            {
                check(
                    format!("{picture} {format} {backend}"),
                    backend,
                    ours,
                    &reference,
                );
            }
        }
    }
    for (backend, (edge, confidence)) in BACKENDS.iter().zip(worst) {
        eprintln!(
            "{} {backend}: largest edge difference {edge:.2} px, confidence {confidence:.4}",
            model.kind
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {compared} cases differ from the reference:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ssd_sees_every_format_and_size_as_opencv_does() {
    matrix(ssd());
}

#[test]
fn blazeface_sees_every_format_and_size_as_opencv_does() {
    matrix(blazeface());
}

/// The Layout module's format names and GStreamer's agree for every format the test feeds.
#[test]
fn every_format_of_the_matrix_is_one_ovinfer_takes() {
    common::init();
    for name in RGB_FORMATS.iter().chain(&RAW_FORMATS) {
        let format = VideoFormat::from_string(name);
        assert!(Layout::of(format).is_some(), "{name}");
    }
}
