//! Reading text with PP-OCR through the real OpenVINO runtime: `ovinfer` with the PP-OCRv4 text
//! detector on whole frames (decoder `text-detection`, picked by itself), then `ovinfer
//! inference-region=roi-list` with the PP-OCRv4 recogniser on each text box (decoder
//! `text-recognition`, its character set from the model's metadata), then `lvajson`.
//!
//! The pictures: scikit-image's photo of a printed page (media/page.png), and two made by
//! scripts/reference_ocr.py on the project's photos: a licence plate in perspective on
//! media/dog.jpg, a sign of two lines on media/person.jpg. The strings read must be the ones
//! printed (the character error rate is printed), and equal rapidocr-onnxruntime's own pipeline
//! on the same pictures (scripts/reference_ocr.py run: the reference implementation of these
//! models), boxes within [`BOX_TOLERANCE`] pixels. Also: the orientation classifier on ROIs
//! (upright and upside-down text), text on whole frames as LVA `text` inferences, and the
//! errors of a recogniser without or with a wrong character set.

mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use common::{asset, python_out, root};

/// How far (pixels) an edge of our text box may be from rapidocr's upright box around its
/// quadrilateral: both come from the same map, ours cut upright from the rotated rectangle.
const BOX_TOLERANCE: f64 = 4.0;

fn det() -> String {
    asset("models/ppocr/ch_PP-OCRv4_det_infer.onnx")
}

fn rec() -> String {
    asset("models/ppocr/ch_PP-OCRv4_rec_infer.onnx")
}

fn cls() -> String {
    asset("models/ppocr/ch_ppocr_mobile_v2.0_cls_infer.onnx")
}

/// rapidocr's reading of each picture by `scripts/reference_ocr.py run {options} IMAGES`.
fn reference_run(options: &[&str], images: &[&str]) -> Vec<Vec<ReferenceRead>> {
    let script = root().join("scripts/reference_ocr.py");
    let script = script.to_string_lossy();
    let args = [&[script.as_ref(), "run"], options, images].concat();
    python_out(args)
        .lines()
        .map(|l| {
            serde_json::from_str::<Reference>(l)
                .expect("a reference line")
                .results
        })
        .collect()
}

/// The pictures scripts/reference_ocr.py makes, in a scratch folder (made once).
fn made() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = common::reference::scratch("ocr-pictures");
        python_out([
            root().join("scripts/reference_ocr.py").as_os_str(),
            "make".as_ref(),
            dir.as_os_str(),
        ]);
        dir
    })
}

/// A text box read: its detection confidence, text, text confidence, and box in pixels
/// (x_min, y_min, x_max, y_max).
#[derive(Debug, Clone)]
struct Read {
    score: f64,
    text: Option<String>,
    confidence: f64,
    rect: [f64; 4],
}

/// Runs `filesrc ! decodebin ! videoconvert ! {middle} ! lvajson ! appsink` on a picture and
/// returns the documents' inferences.
fn documents(image: &str, middle: &str) -> (Vec<serde_json::Value>, f64) {
    let description = format!(
        "filesrc location={image} ! decodebin ! videoconvert ! imagefreeze num-buffers=1 \
         ! {middle} ! lvajson ! appsink name=sink"
    );
    let started = Instant::now();
    let outcome = common::run_sinks(&description, &["sink"]);
    let seconds = started.elapsed().as_secs_f64();
    assert!(outcome.errors.is_empty(), "{}", outcome.error_text());
    let docs: Vec<serde_json::Value> = outcome
        .samples("sink")
        .iter()
        .map(|s| serde_json::from_str(&common::text(s)).expect("JSON"))
        .collect();
    for d in &docs {
        common::check_lva_schema(d).unwrap_or_else(|e| panic!("{e}: {d}"));
    }
    let inferences = docs
        .iter()
        .flat_map(|d| d["inferences"].as_array().cloned().unwrap_or_default())
        .collect();
    (inferences, seconds)
}

/// The text entities of a picture read by `det ! rec` (`rec_props` on the recogniser).
fn read(image: &str, rec_props: &str) -> (Vec<Read>, (u32, u32), f64) {
    read_after(image, "", rec_props)
}

/// The text entities of a picture read by `det ! {between} rec` (`rec_props` on the
/// recogniser).
fn read_after(image: &str, between: &str, rec_props: &str) -> (Vec<Read>, (u32, u32), f64) {
    let size = picture_size(image);
    let (inferences, seconds) = documents(
        image,
        &format!(
            "ovinfer model={} ! {between} ovinfer model={} inference-region=roi-list {rec_props}",
            det(),
            rec()
        ),
    );
    let reads = inferences
        .iter()
        .map(|i| {
            assert_eq!(i["type"], "entity", "{i}");
            let e = &i["entity"];
            assert_eq!(e["tag"]["value"], "text", "{i}");
            let b = &e["box"];
            let (w, h) = (f64::from(size.0), f64::from(size.1));
            let l = b["l"].as_f64().unwrap() * w;
            let t = b["t"].as_f64().unwrap() * h;
            let attribute = e["attributes"]
                .as_array()
                .and_then(|a| a.iter().find(|a| a["name"] == "text"));
            Read {
                score: e["tag"]["confidence"].as_f64().unwrap(),
                text: attribute.map(|a| a["value"].as_str().unwrap().to_string()),
                confidence: attribute.map_or(0.0, |a| a["confidence"].as_f64().unwrap()),
                rect: [
                    l,
                    t,
                    l + b["w"].as_f64().unwrap() * w,
                    t + b["h"].as_f64().unwrap() * h,
                ],
            }
        })
        .collect();
    (reads, size, seconds)
}

fn picture_size(image: &str) -> (u32, u32) {
    let text = python_out([
        "-c",
        "import sys; from PIL import Image; print(*Image.open(sys.argv[1]).size)",
        image,
    ]);
    let v: Vec<u32> = text
        .split_whitespace()
        .map(|s| s.parse().unwrap())
        .collect();
    (v[0], v[1])
}

#[derive(Debug, serde::Deserialize)]
struct Reference {
    results: Vec<ReferenceRead>,
}

#[derive(Debug, Clone, serde::Deserialize)]
struct ReferenceRead {
    text: String,
    confidence: f64,
    #[serde(rename = "box")]
    rect: [f64; 4],
}

/// rapidocr's reading of each picture (recognition crops at least `rec_width` wide).
fn reference(images: &[&str], rec_width: u32) -> Vec<Vec<ReferenceRead>> {
    reference_run(&["--rec-width", &rec_width.to_string()], images)
}

/// Levenshtein distance in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let here = (previous + usize::from(ca != cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            previous = row[j + 1];
            row[j + 1] = here;
        }
    }
    row[b.len()]
}

/// Character error rate of the texts read against the expected ones, line by line.
fn cer(read: &[&str], expected: &[&str]) -> f64 {
    let errors: usize = expected
        .iter()
        .enumerate()
        .map(|(i, e)| edit_distance(read.get(i).copied().unwrap_or(""), e))
        .sum();
    let total: usize = expected.iter().map(|e| e.chars().count()).sum();
    errors as f64 / total.max(1) as f64
}

fn overlap(a: &[f64; 4], b: &[f64; 4]) -> f64 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let area = |r: &[f64; 4]| (r[2] - r[0]) * (r[3] - r[1]);
    w * h / (area(a) + area(b) - w * h)
}

/// Every one of rapidocr's reads has ours at the same place (edges within BOX_TOLERANCE) with
/// the same text (at most `max_edits` characters apart) and a text confidence within
/// `confidence`; ours may have more boxes only with a detection score near the threshold
/// (0.5..0.6: rapidocr's own scores differ by a few hundredths).
fn compare_with_reference(
    name: &str,
    ours: &[Read],
    reference: &[ReferenceRead],
    max_edits: usize,
    confidence: f64,
) {
    let mut matched = vec![false; ours.len()];
    for r in reference {
        let (i, best) = ours
            .iter()
            .enumerate()
            .max_by(|a, b| overlap(&a.1.rect, &r.rect).total_cmp(&overlap(&b.1.rect, &r.rect)))
            .unwrap_or_else(|| panic!("{name}: nothing read where rapidocr read {r:?}"));
        matched[i] = true;
        let edges = best
            .rect
            .iter()
            .zip(r.rect)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        println!(
            "{name}: {:?} {:.3} at {:?} / rapidocr {:?} {:.3} at {:?}: edges within {edges:.1} px",
            best.text, best.confidence, best.rect, r.text, r.confidence, r.rect
        );
        assert!(
            edges <= BOX_TOLERANCE,
            "{name}: box {:?} vs rapidocr's {:?}",
            best.rect,
            r.rect
        );
        let text = best.text.as_deref().unwrap_or_default();
        assert!(
            edit_distance(text, &r.text) <= max_edits,
            "{name}: {text:?} vs rapidocr's {:?}",
            r.text
        );
        assert!(
            (best.confidence - r.confidence).abs() <= confidence,
            "{name}: {best:?} vs {r:?}"
        );
    }
    for (read, _) in ours.iter().zip(&matched).filter(|(_, m)| !**m) {
        println!("{name}: also {read:?}");
        assert!(
            read.score < 0.6,
            "{name}: {read:?} is not in rapidocr's reading"
        );
    }
}

#[test]
fn reads_a_plate_and_a_sign_as_printed_and_as_rapidocr() {
    let plate = made().join("plate.png").to_string_lossy().into_owned();
    let sign = made().join("sign.png").to_string_lossy().into_owned();
    let reference = reference(&[&plate, &sign], 320);
    let mut all_read = Vec::new();
    let mut all_expected = Vec::new();
    for ((image, expected), reference) in [
        (&plate, vec!["KX 4821"]),
        (&sign, vec!["EXIT 12", "BUS STOP 42"]),
    ]
    .into_iter()
    .zip(reference)
    {
        let (ours, size, seconds) = read(image, "");
        let texts: Vec<&str> = ours.iter().filter_map(|r| r.text.as_deref()).collect();
        println!(
            "{image} {}x{}: {texts:?} in {:.2} s (pipeline start to end); CER {:.3}",
            size.0,
            size.1,
            seconds,
            cer(&texts, &expected)
        );
        assert_eq!(texts, expected, "{image}");
        compare_with_reference(image, &ours, &reference, 0, 0.05);
        all_read.extend(texts.iter().map(|t| t.to_string()));
        all_expected.extend(expected);
    }
    let read: Vec<&str> = all_read.iter().map(String::as_str).collect();
    println!("made pictures: CER {:.3}", cer(&read, &all_expected));
}

/// Reads the printed page with `rec_props` on the recogniser: the first five lines as printed
/// (CER below 0.03), and the same texts through each of `pools` (more settings).
fn read_page(rec_props: &str, pools: &[&str]) -> Vec<Read> {
    let page = asset("media/page.png");
    let (ours, _, seconds) = read(&page, rec_props);
    let texts: Vec<&str> = ours.iter().filter_map(|r| r.text.as_deref()).collect();
    // What the page says; PP-OCRv4 (ours and rapidocr alike) drops a space after a full stop.
    let printed = [
        "Region-based segmentation",
        "Let us first determine markers of the coins and the",
        "background. These markers are pixels that we can label",
        "unambiguously as either object or background. Here,",
        "histogram of grey values:",
    ];
    let found: Vec<&str> = texts.iter().copied().take(printed.len()).collect();
    let rate = cer(&found, &printed);
    println!(
        "page with {rec_props:?}: {texts:?} in {seconds:.2} s; CER of the first five lines {rate:.3}"
    );
    assert!(rate < 0.03, "CER {rate}: {texts:?}");
    for pool in pools {
        let (again, _, _) = read(&page, &format!("{rec_props} {pool}"));
        let again: Vec<&str> = again.iter().filter_map(|r| r.text.as_deref()).collect();
        assert_eq!(again, texts, "{pool}");
    }
    ours
}

/// The printed page read at a wide input for every crop (input-size), against rapidocr at the
/// same width.
#[test]
fn reads_a_photographed_page_as_rapidocr() {
    // The six lines through batches of 4 on two requests, and on throughput's pool: the same.
    let ours = read_page(
        "input-size=960x48",
        &["batch-size=4 nireq=2", "performance-hint=throughput"],
    );
    let reference = reference(&[&asset("media/page.png")], 960).remove(0);
    // On the page's small print a space may come or go.
    compare_with_reference("page.png", &ours, &reference, 1, 0.1);
}

/// The same page with no setting: the recogniser reads the page's lines in a group as wide as
/// the longest needs (768 here, in steps of 32 from 320), as rapidocr widens its batches.
/// At the former fixed 320 the long lines were squeezed into nonsense ("bag", "us").
#[test]
fn long_lines_widen_the_recogniser_with_no_setting() {
    let ours = read_page("", &["batch-size=4 nireq=2"]);
    // rapidocr as it comes (320, each batch widened to its longest crop): on this page's small
    // print a space may come or go.
    let reference = reference(&[&asset("media/page.png")], 320).remove(0);
    compare_with_reference("page.png, no setting", &ours, &reference, 1, 0.1);
}

/// PP-OCR's orientation classifier on the text boxes (`orientation` attribute, `0` or `180`),
/// as an element description.
fn orientation() -> String {
    let labels = common::reference::scratch("ocr-orientation").join("orientation.txt");
    std::fs::write(&labels, "0\n180\n").unwrap();
    format!(
        "ovinfer model={} inference-region=roi-list input-size=192x48 \
         pre-process-resize=fit-height input-range=-1,1 labels={} attribute-name=orientation",
        cls(),
        labels.display()
    )
}

/// The made picture `name` turned `degrees` anticlockwise about its centre (PIL, bicubic, the
/// same size), in `dir`.
fn rotated(name: &str, degrees: u32, dir: &Path) -> String {
    let to = dir
        .join(format!("{degrees}-{name}"))
        .to_string_lossy()
        .into_owned();
    let from = made().join(name).to_string_lossy().into_owned();
    python_out([
        "-c",
        "import sys; from PIL import Image; \
         Image.open(sys.argv[1]).rotate(int(sys.argv[3]), resample=Image.BICUBIC).save(sys.argv[2])",
        &from,
        &to,
        &degrees.to_string(),
    ]);
    to
}

/// The sign turned 20° and 30°: each text box is read along its rotated rectangle (the
/// detector's `rotated_box`, straightened as PaddleOCR's `get_rotate_crop_image`), as printed
/// and as rapidocr. Read from the upright box around it, the 30° sign's second line was
/// "RUSS942".
#[test]
fn slanted_text_is_read_along_its_rotated_box() {
    let dir = common::reference::scratch("ocr-slanted");
    let slanted: Vec<String> = [20, 30]
        .iter()
        .map(|&d| rotated("sign.png", d, &dir))
        .collect();
    let images: Vec<&str> = slanted.iter().map(String::as_str).collect();
    let references = reference_run(&[], &images);
    for (image, reference) in images.iter().zip(references) {
        let (ours, _, _) = read(image, "");
        let mut texts: Vec<&str> = ours.iter().filter_map(|r| r.text.as_deref()).collect();
        println!("{image}: {texts:?}");
        texts.sort_unstable();
        assert_eq!(texts, ["BUS STOP 42", "EXIT 12"], "{image}");
        compare_with_reference(image, &ours, &reference, 0, 0.05);
    }
}

/// Upside-down pictures (the made ones turned 180°): with the orientation classifier between
/// detection and recognition, each crop it finds upside down (`180` at 0.9 or more) is read
/// turned over, and the text is rapidocr's with its classifier on (`use_cls`); without it the
/// recogniser reads nonsense, as rapidocr's does.
#[test]
fn upside_down_text_is_read_turned_over_after_the_orientation_classifier() {
    let dir = common::reference::scratch("ocr-turned");
    let turned: Vec<String> = ["plate.png", "sign.png"]
        .iter()
        .map(|name| rotated(name, 180, &dir))
        .collect();
    let images: Vec<&str> = turned.iter().map(String::as_str).collect();
    let references = reference_run(&["--cls"], &images);
    for ((image, mut expected), reference) in turned
        .iter()
        .zip([vec!["KX 4821"], vec!["EXIT 12", "BUS STOP 42"]])
        .zip(references)
    {
        let (ours, _, _) = read_after(image, &format!("{} !", orientation()), "");
        let mut texts: Vec<&str> = ours.iter().filter_map(|r| r.text.as_deref()).collect();
        println!("{image} turned, with the classifier: {texts:?}");
        // Upside down, the lines come bottom line first.
        texts.sort_unstable();
        expected.sort_unstable();
        assert_eq!(texts, expected, "{image}");
        compare_with_reference(image, &ours, &reference, 0, 0.05);
        let (without, _, _) = read(image, "");
        let without: Vec<&str> = without.iter().filter_map(|r| r.text.as_deref()).collect();
        println!("{image} turned, without: {without:?}");
        assert!(
            without.iter().all(|t| !expected.contains(t)),
            "{image}: read {without:?} without turning"
        );
    }
}

#[test]
fn upside_down_text_is_told_by_the_orientation_classifier() {
    for (image, flip, want) in [
        ("sign.png", "", "0"),
        ("sign.png", "videoflip video-direction=180 ! ", "180"),
        ("plate.png", "", "0"),
        ("plate.png", "videoflip video-direction=180 ! ", "180"),
    ] {
        let path = made().join(image).to_string_lossy().into_owned();
        let (inferences, _) = documents(
            &path,
            &format!("{flip}ovinfer model={} ! {}", det(), orientation()),
        );
        assert!(!inferences.is_empty(), "{image} {flip}");
        for i in &inferences {
            let a = &i["entity"]["attributes"][0];
            println!("{image} {flip}: {} {}", a["value"], a["confidence"]);
            assert_eq!(a["name"], "orientation");
            assert_eq!(a["value"], want, "{image} {flip}: {i}");
        }
    }
}

#[test]
fn text_on_a_whole_frame_is_an_lva_text_inference() {
    // The plate's box, cut out: the recogniser on the whole frame.
    let dir = common::reference::scratch("ocr-crop");
    let crop = dir.join("plate-crop.png");
    python_out([
        "-c".as_ref(),
        "import sys; from PIL import Image; Image.open(sys.argv[1]).crop((317, 111, 545, 177)).save(sys.argv[2])".as_ref(),
        made().join("plate.png").as_os_str(),
        crop.as_os_str(),
    ]);
    let (inferences, _) = documents(&crop.to_string_lossy(), &format!("ovinfer model={}", rec()));
    assert_eq!(inferences.len(), 1, "{inferences:?}");
    let i = &inferences[0];
    assert_eq!(i["type"], "text");
    assert_eq!(i["subtype"], "ch_PP-OCRv4_rec_infer");
    assert_eq!(i["text"]["value"], "KX 4821");
    let confidence: f64 = i["extensions"]["confidence"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(confidence > 0.9, "{i}");
}

/// A pipeline that must fail to start: its error text.
fn start_error(props: &str) -> String {
    let description = format!(
        "videotestsrc num-buffers=1 ! video/x-raw,width=64,height=48 ! ovinfer {props} ! fakesink"
    );
    let outcome = common::run_sinks(&description, &[]);
    assert!(!outcome.errors.is_empty(), "{props}: no error");
    outcome.error_text()
}

#[test]
fn a_recogniser_without_or_with_a_wrong_character_set_is_an_element_error() {
    let dir = common::reference::scratch("ocr-charset");
    // The recogniser without its metadata.
    let bare = dir.join("rec-bare.onnx");
    python_out([
        "-c".as_ref(),
        "import sys, onnx; m = onnx.load(sys.argv[1]); del m.metadata_props[:]; onnx.save(m, sys.argv[2])".as_ref(),
        rec().as_ref(),
        bare.as_os_str(),
    ]);
    let e = start_error(&format!(
        "model={} decoder=text-recognition",
        bare.display()
    ));
    assert!(
        e.contains("has no character set") && e.contains("labels=FILE"),
        "{e}"
    );
    // decoder=auto cannot tell a bare recogniser's [1,T,C] from YOLO's [1,4+C,N]: it says so.
    let e = start_error(&format!("model={}", bare.display()));
    assert!(
        e.contains("set decoder=text-recognition and labels=FILE"),
        "auto: {e}"
    );
    // A character set of the wrong length.
    let short = dir.join("short.txt");
    std::fs::write(&short, "a\nb\nc\n").unwrap();
    let e = start_error(&format!("model={} labels={}", rec(), short.display()));
    assert!(
        e.contains("3 characters") && e.contains("6625 classes") && e.contains("short.txt"),
        "{e}"
    );
    // The right length from a file: the model's own list written out.
    let list = dir.join("keys.txt");
    python_out([
        "-c".as_ref(),
        "import sys, onnx; m = onnx.load(sys.argv[1]); \
         open(sys.argv[2], 'w').write(next(p.value for p in m.metadata_props if p.key == 'character'))"
            .as_ref(),
        rec().as_ref(),
        list.as_os_str(),
    ]);
    let plate = made().join("plate.png").to_string_lossy().into_owned();
    let (reads, _, _) = read(
        &plate,
        &format!(
            "model={} decoder=text-recognition labels={}",
            bare.display(),
            list.display()
        ),
    );
    let texts: Vec<&str> = reads.iter().filter_map(|r| r.text.as_deref()).collect();
    assert_eq!(texts, ["KX 4821"]);
    // A dynamic classifier without input-size.
    let e = start_error(&format!("model={}", cls()));
    assert!(e.contains("input-size=WIDTHxHEIGHT"), "{e}");
    let e = start_error(&format!("model={} input-size=320by48", rec()));
    assert!(e.contains("input-size must be WIDTHxHEIGHT"), "{e}");
}

/// Dynamic input sizes beyond PP-OCR: the YOLOv8n export with a dynamic input (nudenet's
/// 320n_dynamic.onnx) at input-size=320x320 finds what the same export fixed at 320x320 finds;
/// without input-size it is refused, saying so.
#[test]
fn a_dynamic_yolo_export_runs_at_input_size() {
    let dynamic = asset("models/yolov8n_nudenet/320n_dynamic.onnx");
    let fixed = asset("models/yolov8n_nudenet/320n.onnx");
    let photo = asset("media/person.jpg");
    let boxes = |props: &str| {
        let run = common::run(&format!(
            "filesrc location={photo} ! decodebin ! videoconvert ! imagefreeze num-buffers=1 \
             ! ovinfer {props} threshold=0.3 ! appsink name=sink"
        ));
        assert!(run.errors.is_empty(), "{}", run.error_text());
        common::boxes(&run.frames[0])
    };
    let ours = boxes(&format!("model={dynamic} input-size=320x320"));
    assert!(!ours.is_empty());
    assert_eq!(ours, boxes(&format!("model={fixed}")));
    let e = start_error(&format!("model={dynamic}"));
    assert!(
        e.contains("decoder yolo does not choose one: set input-size"),
        "{e}"
    );
}
