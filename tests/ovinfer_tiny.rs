//! `ovinfer` on synthetic frames through the real OpenVINO runtime, with the tiny models that
//! `scripts/make_tiny_models.py` builds (their outputs depend on the frame's content).

mod common;

use common::{boxes, run, tiny};

fn classify(format: &str, size: &str, pattern: &str, backend: &str) -> Vec<(String, f64)> {
    let r = run(&format!(
        "videotestsrc num-buffers=2 pattern={pattern} ! video/x-raw,format={format},{size} \
         ! ovinfer model={} labels={} pre-process-backend={backend} ! appsink name=sink",
        tiny("colour_classifier.onnx"),
        tiny("colours.txt")
    ));
    assert!(r.errors.is_empty(), "{}", r.error_text());
    assert_eq!(r.frames.len(), 2);
    r.frames[0]
        .classes
        .iter()
        .map(|c| (c.label.clone(), c.confidence))
        .collect()
}

#[test]
fn colour_is_right_in_every_input_format_and_size() {
    // The classifier sees RGB in 0..1 whatever the frame's layout: a wrong conversion, channel
    // order, range or plane layout changes the class. Odd sizes too, with both backends.
    let formats = [
        "RGB", "BGR", "RGBx", "BGRx", "xRGB", "xBGR", "RGBA", "BGRA", "ARGB", "ABGR", "I420",
        "YV12", "NV12", "NV21", "YUY2", "UYVY", "YVYU",
    ];
    for format in formats {
        for size in ["width=64,height=48", "width=33,height=17"] {
            for backend in ["ovinfer", "openvino"] {
                for (pattern, colour) in [("red", "red"), ("green", "green"), ("blue", "blue")] {
                    let what = format!("{format} {size} {backend} {pattern}");
                    let classes = classify(format, size, pattern, backend);
                    assert_eq!(classes.len(), 1, "{what}: {classes:?}");
                    assert_eq!(classes[0].0, colour, "{what}: {classes:?}");
                    assert!(classes[0].1 > 0.99, "{what}: {classes:?}");
                }
            }
        }
    }
}

#[test]
fn model_color_format_bgr_swaps_channels() {
    let r = run(&format!(
        "videotestsrc num-buffers=1 pattern=red ! video/x-raw,format=RGB,width=32,height=32 \
         ! ovinfer model={} labels={} model-color-format=bgr ! appsink name=sink",
        tiny("colour_classifier.onnx"),
        tiny("colours.txt")
    ));
    assert!(r.errors.is_empty(), "{}", r.error_text());
    assert_eq!(r.frames[0].classes[0].label, "blue");
}

#[test]
fn ssd_boxes_are_in_frame_pixels_clipped_and_degenerate_ones_dropped() {
    let r = run(&format!(
        "videotestsrc num-buffers=1 pattern=white ! video/x-raw,format=NV12,width=320,height=240 \
         ! ovinfer model={} labels={} ! appsink name=sink",
        tiny("tiny_ssd.onnx"),
        tiny("tiny_ssd_labels.txt")
    ));
    assert!(r.errors.is_empty(), "{}", r.error_text());
    let got = boxes(&r.frames[0]);
    assert_eq!(got.len(), 2, "{got:?}");
    // (0.1,0.2)-(0.5,0.6) on 320x240
    assert_eq!(
        (got[0].0.as_str(), got[0].2, got[0].3, got[0].4, got[0].5),
        ("cat", 32, 48, 128, 96)
    );
    // (-0.1,0.5)-(1.2,1.3) clipped to (0,0.5)-(1,1)
    assert_eq!(
        (got[1].0.as_str(), got[1].2, got[1].3, got[1].4, got[1].5),
        ("dog", 0, 120, 320, 120)
    );
    // White frame: confidence = mean brightness of the limited-range conversion, close to 1.
    assert!(got[0].1 > 0.9, "{got:?}");
    let d = r.frames[0].rois[1].detection.as_ref().unwrap();
    assert_eq!(d.bbox, [0.0, 0.5, 1.0, 1.0]);
    assert_eq!(d.label_id, 2);
    assert_eq!(d.model, "tiny_ssd");
    assert_eq!(r.frames[0].rois[1].roi_type, "dog");
}

#[test]
fn threshold_filters_by_confidence() {
    // A grey frame gives confidence ~0.5 (mean brightness): below 0.6, above 0.4.
    let count = |threshold: f64| {
        let r = run(&format!(
            "videotestsrc num-buffers=1 pattern=solid-color foreground-color=0xff808080 \
             ! video/x-raw,format=RGB,width=64,height=64 \
             ! ovinfer model={} threshold={threshold} ! appsink name=sink",
            tiny("tiny_ssd.onnx")
        ));
        assert!(r.errors.is_empty(), "{}", r.error_text());
        r.frames[0].rois.len()
    };
    assert_eq!(count(0.6), 0);
    assert_eq!(count(0.4), 2);
    let black = run(&format!(
        "videotestsrc num-buffers=1 pattern=black ! video/x-raw,format=RGB,width=64,height=64 \
         ! ovinfer model={} ! appsink name=sink",
        tiny("tiny_ssd.onnx")
    ));
    assert!(black.frames[0].rois.is_empty());
}

#[test]
fn without_labels_the_label_is_the_class_id() {
    let r = run(&format!(
        "videotestsrc num-buffers=1 pattern=white ! video/x-raw,format=BGRx,width=64,height=64 \
         ! ovinfer model={} ! appsink name=sink",
        tiny("tiny_ssd.onnx")
    ));
    let labels: Vec<String> = boxes(&r.frames[0]).into_iter().map(|b| b.0).collect();
    assert_eq!(labels, ["1", "2"]);
}

#[test]
fn yolo_output_is_decoded_with_nms() {
    let r = run(&format!(
        "videotestsrc num-buffers=1 pattern=white ! video/x-raw,format=RGB,width=64,height=64 \
         ! ovinfer model={} ! appsink name=sink",
        tiny("tiny_yolo.onnx")
    ));
    assert!(r.errors.is_empty(), "{}", r.error_text());
    let got = boxes(&r.frames[0]);
    // Two overlapping class-1 candidates collapse into the stronger one; the 0.3 one is below 0.5.
    assert_eq!(got.len(), 1, "{got:?}");
    // cx,cy,w,h = 8,8,8,8 on a 32x32 input -> (4..12)/32 of 64 px = 8..24
    assert_eq!(
        (got[0].0.as_str(), got[0].2, got[0].3, got[0].4, got[0].5),
        ("1", 8, 8, 16, 16)
    );
}

#[test]
fn interval_runs_every_nth_frame_and_passes_the_rest_untouched() {
    let r = run(&format!(
        "videotestsrc num-buffers=7 pattern=white ! video/x-raw,format=RGB,width=64,height=64 \
         ! ovinfer model={} interval=3 ! appsink name=sink",
        tiny("tiny_ssd.onnx")
    ));
    assert!(r.errors.is_empty(), "{}", r.error_text());
    let counts: Vec<usize> = r.frames.iter().map(|f| f.rois.len()).collect();
    assert_eq!(counts, [2, 0, 0, 2, 0, 0, 2]);
}

#[test]
fn odd_sizes_work_for_rgb_with_row_padding() {
    // 33x17 RGB has rows of 99 bytes padded to 100: the copy must strip the padding.
    let r = run(&format!(
        "videotestsrc num-buffers=1 pattern=green ! video/x-raw,format=RGB,width=33,height=17 \
         ! ovinfer model={} labels={} ! appsink name=sink",
        tiny("colour_classifier.onnx"),
        tiny("colours.txt")
    ));
    assert!(r.errors.is_empty(), "{}", r.error_text());
    assert_eq!(r.frames[0].classes[0].label, "green");
}

// ------------------------------------------------------------------------------------------
// Bad input: a clear error on the bus, never a panic or a hang.

fn error_of(ovinfer: &str, caps: &str) -> String {
    let r = run(&format!(
        "videotestsrc num-buffers=1 ! {caps} ! ovinfer {ovinfer} ! appsink name=sink"
    ));
    assert!(!r.errors.is_empty(), "expected an error for `{ovinfer}`");
    assert!(r.frames.is_empty());
    r.error_text()
}

const CAPS: &str = "video/x-raw,format=RGB,width=64,height=64";

#[test]
fn no_model_property() {
    let e = error_of("", CAPS);
    assert!(e.contains("no model set"), "{e}");
}

#[test]
fn missing_model_file() {
    let e = error_of("model=/nonexistent/model.xml", CAPS);
    assert!(e.contains("/nonexistent/model.xml does not exist"), "{e}");
}

#[test]
fn corrupt_model_file() {
    let dir = std::env::temp_dir().join(format!("ovlva-corrupt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("broken.onnx");
    std::fs::write(&path, b"this is not a model").unwrap();
    let e = error_of(&format!("model={}", path.display()), CAPS);
    assert!(
        e.contains("cannot read model") && e.contains("broken.onnx"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn outputs_no_decoder_understands() {
    let e = error_of(&format!("model={}", tiny("tiny_unknown.onnx")), CAPS);
    assert!(
        e.contains("no decoder understands outputs [1, 5, 5, 5]"),
        "{e}"
    );
    assert!(
        e.contains("tiny_unknown.onnx") && e.contains("supported: ssd"),
        "{e}"
    );
}

#[test]
fn input_that_is_no_image() {
    let e = error_of(&format!("model={}", tiny("tiny_not_image.onnx")), CAPS);
    assert!(e.contains("[1,5,5,5]") && e.contains("[1,3,H,W]"), "{e}");
}

#[test]
fn explicit_decoder_that_does_not_match() {
    let e = error_of(
        &format!("model={} decoder=ssd", tiny("colour_classifier.onnx")),
        CAPS,
    );
    assert!(e.contains("decoder ssd cannot read outputs [1, 3]"), "{e}");
}

#[test]
fn missing_labels_file() {
    let e = error_of(
        &format!(
            "model={} labels=/nonexistent/labels.txt",
            tiny("tiny_ssd.onnx")
        ),
        CAPS,
    );
    assert!(
        e.contains("labels file /nonexistent/labels.txt cannot be read"),
        "{e}"
    );
}

#[test]
fn bad_input_range() {
    let e = error_of(
        &format!("model={} input-range=1,0", tiny("tiny_ssd.onnx")),
        CAPS,
    );
    assert!(e.contains("input-range must be"), "{e}");
}

#[test]
fn missing_device_is_reported() {
    let e = error_of(
        &format!("model={} device=NOSUCHDEVICE", tiny("tiny_ssd.onnx")),
        CAPS,
    );
    assert!(e.contains("NOSUCHDEVICE"), "{e}");
}

#[test]
fn caps_changing_mid_stream_recompile_for_the_new_frames() {
    // concat switches from red RGB 64x48 to blue I420 80x60 frames: ovinfer renegotiates and
    // builds new pre-processing for the same model, which must start again from the model as read.
    for backend in ["ovinfer", "openvino"] {
        let r = run(&format!(
            "concat name=c ! ovinfer model={} labels={} pre-process-backend={backend} \
             ! appsink name=sink \
             videotestsrc num-buffers=2 pattern=red ! video/x-raw,format=RGB,width=64,height=48 ! c. \
             videotestsrc num-buffers=2 pattern=blue ! video/x-raw,format=I420,width=80,height=60 ! c.",
            tiny("colour_classifier.onnx"),
            tiny("colours.txt")
        ));
        assert!(r.errors.is_empty(), "{backend}: {}", r.error_text());
        let labels: Vec<&str> = r
            .frames
            .iter()
            .map(|f| f.classes.first().map_or("none", |c| c.label.as_str()))
            .collect();
        assert_eq!(labels, ["red", "red", "blue", "blue"], "{backend}");
    }
}

#[test]
fn ov_config_is_passed_to_openvino() {
    // Properties OpenVINO knows change how it runs, not the results.
    let r = run(&format!(
        "videotestsrc num-buffers=2 pattern=green ! {CAPS} ! ovinfer model={} labels={} \
         performance-hint=throughput ov-config=\"NUM_STREAMS=1, ENABLE_CPU_PINNING=YES\" \
         ! appsink name=sink",
        tiny("colour_classifier.onnx"),
        tiny("colours.txt")
    ));
    assert!(r.errors.is_empty(), "{}", r.error_text());
    assert_eq!(r.frames.len(), 2);
    assert_eq!(r.frames[1].classes[0].label, "green");
    // A key OpenVINO does not know reaches it, and its refusal names the key.
    let e = error_of(
        &format!("model={} ov-config=NO_SUCH_KEY=1", tiny("tiny_ssd.onnx")),
        CAPS,
    );
    assert!(e.contains("Unsupported property NO_SUCH_KEY"), "{e}");
}

#[test]
fn ov_config_that_is_not_key_value() {
    let e = error_of(
        &format!("model={} ov-config=NUM_STREAMS", tiny("tiny_ssd.onnx")),
        CAPS,
    );
    assert!(e.contains("\"NUM_STREAMS\" is not KEY=VALUE"), "{e}");
}
