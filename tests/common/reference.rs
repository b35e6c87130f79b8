//! The independent reference for detections: OpenVINO's Python API fed by OpenCV
//! (`scripts/reference_detect.py`: cv2 decoding and colour conversion, cv2.resize, numpy
//! decoding written apart from the Rust decoders), and the comparison of ours with it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Frame, root};

/// One detection in pixels of the picture.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Detection {
    pub label_id: i32,
    pub confidence: f64,
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

/// A raw frame for the reference to convert with OpenCV (`cv2.cvtColor`), planes packed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Raw {
    pub path: String,
    pub format: String,
    pub width: u32,
    pub height: u32,
}

/// One picture for the reference: a photo (optionally cropped to x, y, w, h and saved as PNG
/// for the element to read the very same pixels), or a raw frame.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Case {
    pub kind: &'static str,
    pub model: String,
    pub image: Option<String>,
    pub crop: Option<[u32; 4]>,
    pub save: Option<String>,
    pub raw: Option<Raw>,
    pub threshold: f64,
    /// How the YOLO reference (`scripts/reference_yolo.py`) fits the picture into the input:
    /// "stretch", "letterbox" or "letterbox-top-left", as `pre-process-resize`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resize: Option<&'static str>,
}

impl Case {
    pub fn photo(kind: &'static str, model: &str, image: &str) -> Case {
        Case {
            kind,
            model: model.to_string(),
            image: Some(image.to_string()),
            crop: None,
            save: None,
            raw: None,
            threshold: 0.5,
            resize: None,
        }
    }
}

#[derive(Debug, serde::Deserialize)]
struct Answer {
    case: usize,
    width: u32,
    height: u32,
    detections: Vec<Detection>,
}

/// A fresh folder under target/ for one test's files.
pub fn scratch(name: &str) -> PathBuf {
    super::process::scratch_in(&root().join("target/test-scratch"), name)
}

/// The reference's detections (and picture size) for each case, in one Python run.
pub fn run(cases: &[Case], dir: &Path) -> Vec<(u32, u32, Vec<Detection>)> {
    run_script("reference_detect.py", cases, dir)
}

/// [`run`] for YOLO exports (kind "yolo", with `resize`): `scripts/reference_yolo.py`,
/// Ultralytics' pre-processing and decoding in numpy.
pub fn run_yolo(cases: &[Case], dir: &Path) -> Vec<(u32, u32, Vec<Detection>)> {
    run_script("reference_yolo.py", cases, dir)
}

/// The cases run by `scripts/{script}` (`--batch`), one answer per case.
fn run_script(script: &str, cases: &[Case], dir: &Path) -> Vec<(u32, u32, Vec<Detection>)> {
    static N: AtomicUsize = AtomicUsize::new(0);
    let file = dir.join(format!("cases-{}.json", N.fetch_add(1, Ordering::Relaxed)));
    std::fs::write(&file, serde_json::to_vec(cases).expect("cases JSON")).expect("cases file");
    let answers: Vec<Answer> = super::python_out([
        root().join("scripts").join(script).as_os_str(),
        "--batch".as_ref(),
        file.as_os_str(),
    ])
    .lines()
    .map(|l| serde_json::from_str(l).expect("reference JSON line"))
    .collect();
    assert_eq!(answers.len(), cases.len());
    answers
        .into_iter()
        .enumerate()
        .map(|(i, a)| {
            assert_eq!(a.case, i);
            (a.width, a.height, a.detections)
        })
        .collect()
}

/// The reference's detections on a whole photo.
pub fn photo(kind: &'static str, model: &str, image: &str, threshold: f64) -> Vec<Detection> {
    let case = Case {
        threshold,
        ..Case::photo(kind, model, image)
    };
    let dir = scratch("reference");
    run(&[case], &dir).remove(0).2
}

/// Ours, in the reference's terms.
pub fn ours(frame: &Frame) -> Vec<Detection> {
    let (w, h) = (f64::from(frame.width), f64::from(frame.height));
    frame
        .rois
        .iter()
        .map(|r| {
            let d = r.detection.as_ref().expect("detection structure");
            let b = d.bbox;
            Detection {
                label_id: d.label_id,
                confidence: d.confidence,
                x: b[0] * w,
                y: b[1] * h,
                w: (b[2] - b[0]) * w,
                h: (b[3] - b[1]) * h,
            }
        })
        .collect()
}

/// How close ours must be to the reference.
#[derive(Debug, Clone, Copy)]
pub struct Tolerance {
    /// Largest difference of a box edge, in pixels.
    pub edge_px: f64,
    /// Largest difference of a confidence.
    pub confidence: f64,
    /// Detections at or below this confidence are not compared: a quantised model has a
    /// confidence level right at its threshold, where one level of one input pixel decides
    /// whether a detection is reported at all.
    pub above: f64,
}

/// The largest box edge difference between two detections.
fn edge_difference(a: &Detection, b: &Detection) -> f64 {
    [
        (a.x - b.x).abs(),
        (a.y - b.y).abs(),
        (a.x + a.w - b.x - b.w).abs(),
        (a.y + a.h - b.y - b.h).abs(),
    ]
    .into_iter()
    .fold(0.0, f64::max)
}

/// Every reference detection above `tolerance.above` has one of ours with the same label,
/// edges and confidence within tolerance, and ours above it are as many. Returns the largest
/// edge and confidence differences seen, or what does not match.
pub fn compare(
    ours: &[Detection],
    reference: &[Detection],
    tolerance: Tolerance,
) -> Result<(f64, f64), String> {
    let above = |d: &&Detection| d.confidence > tolerance.above;
    let ours: Vec<&Detection> = ours.iter().filter(above).collect();
    let reference: Vec<&Detection> = reference.iter().filter(above).collect();
    if ours.len() != reference.len() {
        return Err(format!(
            "{} detections, the reference {}:\n ours {ours:?}\n reference {reference:?}",
            ours.len(),
            reference.len()
        ));
    }
    let (mut worst_edge, mut worst_confidence) = (0.0f64, 0.0f64);
    for r in &reference {
        let best = ours
            .iter()
            .filter(|o| o.label_id == r.label_id)
            .min_by(|a, b| edge_difference(a, r).total_cmp(&edge_difference(b, r)));
        let Some(o) = best else {
            return Err(format!("no label {} among ours {ours:?}", r.label_id));
        };
        let (edge, confidence) = (edge_difference(o, r), (o.confidence - r.confidence).abs());
        if edge > tolerance.edge_px || confidence > tolerance.confidence {
            return Err(format!(
                "label {}: edges {edge:.1} px, confidence {:.4} vs {:.4} (tolerance {tolerance:?})\n \
                 ours {o:?}\n reference {r:?}",
                r.label_id, o.confidence, r.confidence
            ));
        }
        worst_edge = worst_edge.max(edge);
        worst_confidence = worst_confidence.max(confidence);
    }
    Ok((worst_edge, worst_confidence))
}
