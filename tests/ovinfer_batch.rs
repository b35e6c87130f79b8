//! `ovinfer batch-size`: frames of one or several streams inferred together give each frame its
//! own results, the same as one at a time; models whose outputs cannot be split per frame are
//! refused with the reason.

mod common;

use common::{asset, blazeface_model, boxes, frame, run_sinks};

type Detections = Vec<(String, f64, u32, u32, u32, u32)>;

/// Every frame's detections at the appsink `sink` of `description`.
fn detections(description: &str) -> Vec<Detections> {
    let out = run_sinks(description, &["sink"]);
    assert!(out.errors.is_empty(), "{}", out.error_text());
    out.samples("sink")
        .iter()
        .map(|s| boxes(&frame(s)))
        .collect()
}

/// Same boxes and labels, confidences within float noise (a batch may sum in another order).
fn assert_same(a: &[Detections], b: &[Detections], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: frame counts");
    for (i, (a, b)) in a.iter().zip(b).enumerate() {
        let strip = |d: &Detections| -> Vec<(String, u32, u32, u32, u32)> {
            d.iter()
                .map(|(l, _, x, y, w, h)| (l.clone(), *x, *y, *w, *h))
                .collect()
        };
        assert_eq!(strip(a), strip(b), "{what}: frame {i}");
        for (p, q) in a.iter().zip(b) {
            assert!(
                (p.1 - q.1).abs() < 1e-4,
                "{what}: frame {i}: {p:?} vs {q:?}"
            );
        }
    }
}

fn bikes_faces(options: &str) -> Vec<Detections> {
    detections(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! ovinfer model={} {options} ! \
         appsink name=sink",
        asset("media/bikes.mp4"),
        blazeface_model()
    ))
}

#[test]
fn batches_give_every_frame_of_a_video_its_own_faces() {
    // BlazeFace folds a batch into its anchors per feature map: a wrong split would move faces
    // between frames. 250 frames: batches of 4 and 3 end with a partial batch at EOS.
    let one = bikes_faces("batch-size=1");
    assert_eq!(one.len(), 250);
    let with_faces = one.iter().filter(|d| !d.is_empty()).count();
    assert_eq!(with_faces, 20, "the rider's face, frames 30 to 52");
    assert_same(&one, &bikes_faces("batch-size=4 nireq=2"), "batch-size=4");
    assert_same(&one, &bikes_faces("batch-size=3 nireq=1"), "batch-size=3");
}

#[test]
fn streams_sharing_an_instance_are_batched_together_and_keep_their_results() {
    // One format for both: an instance takes one kind of frame.
    let infer = format!("ovinfer model={} nireq=2", blazeface_model());
    let video = format!(
        "filesrc location={} ! decodebin ! videoconvert ! video/x-raw,format=RGB ! queue",
        asset("media/bikes.mp4")
    );
    let photo = format!(
        "filesrc location={} ! decodebin ! videoconvert ! video/x-raw,format=RGB ! \
         imagefreeze num-buffers=40 ! queue",
        asset("media/astronaut.png")
    );
    let alone = |source: &str| detections(&format!("{source} ! {infer} ! appsink name=sink"));
    let together = run_sinks(
        &format!(
            "{video} ! {infer} batch-size=4 model-instance-id=faces ! appsink name=a  \
             {photo} ! {infer} batch-size=4 model-instance-id=faces ! appsink name=b"
        ),
        &["a", "b"],
    );
    assert!(together.errors.is_empty(), "{}", together.error_text());
    let got = |sink: &str| -> Vec<Detections> {
        together
            .samples(sink)
            .iter()
            .map(|s| boxes(&frame(s)))
            .collect()
    };
    let (a, b) = (got("a"), got("b"));
    assert_same(&a, &alone(&video), "the video");
    assert_same(&b, &alone(&photo), "the photo");
    assert!(b.iter().all(|d| d.len() == 1), "her face on every frame");
}

#[test]
fn models_that_cannot_split_a_batch_per_frame_are_refused() {
    let refused = |model: &str| -> String {
        let out = run_sinks(
            &format!(
                "videotestsrc num-buffers=3 ! video/x-raw,format=RGB,width=64,height=48 ! \
                 ovinfer model={model} batch-size=4 ! appsink name=sink"
            ),
            &["sink"],
        );
        assert!(out.samples("sink").is_empty());
        out.error_text()
    };
    // The SSD IR cannot be reshaped at all.
    let text = refused(&common::ssd_model());
    assert!(
        text.contains("cannot infer batches of 4 frames") && text.contains("set batch-size=1"),
        "{text}"
    );
    // This one reshapes, but its output stays [1,6,8]: no result per frame.
    let text = refused(&common::tiny("tiny_yolo.onnx"));
    assert!(
        text.contains("cannot infer batches of 4 frames")
            && text.contains("does not keep each frame's results apart"),
        "{text}"
    );
}
