//! `ovinfer` with several inferences in flight: same results as one at a time, in order, every
//! frame out at EOS, nothing stale after a flushing seek, and elements sharing one model instance
//! (`model-instance-id`) each keep their own results.

mod common;

use std::sync::{Arc, Mutex};

use common::{asset, boxes, frame, run, run_sinks, ssd_labels, ssd_model};
use gst::prelude::*;

type Detections = Vec<(String, f64, u32, u32, u32, u32)>;

/// (PTS, detections) of every frame of bikes.mp4 through SSD with `options`.
fn bikes(options: &str) -> Vec<(gst::ClockTime, Detections)> {
    let r = run(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! ovinfer model={} labels={} {options} ! \
         appsink name=sink",
        asset("media/bikes.mp4"),
        ssd_model(),
        ssd_labels()
    ));
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    r.frames
        .iter()
        .map(|f| (f.pts.expect("pts"), boxes(f)))
        .collect()
}

#[test]
fn four_requests_in_flight_give_the_same_detections_in_the_same_order_as_one() {
    let one = bikes("nireq=1");
    let four = bikes("nireq=4");
    assert_eq!(one.len(), 250);
    assert!(
        one.windows(2).all(|w| w[0].0 < w[1].0),
        "frames out of order"
    );
    assert_eq!(four.len(), 250);
    for (i, (a, b)) in one.iter().zip(&four).enumerate() {
        assert_eq!(a, b, "frame {i} differs between nireq=1 and nireq=4");
    }
    let with_results = one.iter().filter(|(_, d)| !d.is_empty()).count();
    // With the picture OpenCV would give the model (the count moves with any change of it).
    assert_eq!(with_results, 123);
}

#[test]
fn eos_with_inferences_in_flight_delivers_every_frame() {
    // 8 requests for 37 frames: at EOS up to 8 are still inside the element.
    let r = run(&format!(
        "videotestsrc num-buffers=37 ! video/x-raw,format=RGB,width=64,height=48 ! \
         ovinfer model={} nireq=8 threshold=0.0 ! appsink name=sink",
        common::tiny("tiny_ssd.onnx")
    ));
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.frames.len(), 37);
    let pts: Vec<_> = r.frames.iter().map(|f| f.pts.expect("pts")).collect();
    assert!(pts.windows(2).all(|w| w[0] < w[1]), "{pts:?}");
    assert!(
        r.frames.iter().all(|f| !f.rois.is_empty()),
        "every frame inferred"
    );
}

#[test]
fn interval_skipped_frames_keep_their_place() {
    let r = run(&format!(
        "videotestsrc num-buffers=20 ! video/x-raw,format=RGB,width=64,height=48 ! \
         ovinfer model={} nireq=4 interval=3 threshold=0.0 ! appsink name=sink",
        common::tiny("tiny_ssd.onnx")
    ));
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let inferred: Vec<bool> = r.frames.iter().map(|f| !f.rois.is_empty()).collect();
    let expected: Vec<bool> = (0..20).map(|n| n % 3 == 0).collect();
    assert_eq!(inferred, expected);
    let pts: Vec<_> = r.frames.iter().map(|f| f.pts.expect("pts")).collect();
    assert!(pts.windows(2).all(|w| w[0] < w[1]), "{pts:?}");
}

#[test]
fn a_flushing_seek_with_inferences_in_flight_leaves_no_stale_results() {
    common::init();
    let reference: std::collections::HashMap<gst::ClockTime, Detections> =
        bikes("nireq=1").into_iter().collect();
    let pipeline = gst::parse::launch(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! ovinfer model={} labels={} nireq=4 ! \
         appsink name=sink sync=false",
        asset("media/bikes.mp4"),
        ssd_model(),
        ssd_labels()
    ))
    .expect("pipeline")
    .downcast::<gst::Pipeline>()
    .expect("pipeline");
    let sink = pipeline
        .by_name("sink")
        .expect("sink")
        .downcast::<gst_app::AppSink>()
        .expect("appsink");
    let got = Arc::new(Mutex::new(Vec::new()));
    let (seen, weak) = (got.clone(), pipeline.downgrade());
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |s| {
                let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let f = frame(&sample);
                let mut seen = seen.lock().unwrap();
                seen.push((f.pts.expect("pts"), boxes(&f)));
                if seen.len() == 150 {
                    // Back to 2 s, from another thread (never seek from a streaming thread).
                    let weak = weak.clone();
                    std::thread::spawn(move || {
                        if let Some(p) = weak.upgrade() {
                            p.seek_simple(
                                gst::SeekFlags::FLUSH | gst::SeekFlags::ACCURATE,
                                gst::ClockTime::from_seconds(2),
                            )
                            .expect("seek");
                        }
                    });
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    common::play_to_eos(&pipeline);
    let got = got.lock().unwrap();
    // Every frame that came out carries its own results, before and after the seek.
    for (pts, detections) in got.iter() {
        assert_eq!(
            Some(detections),
            reference.get(pts),
            "frame at {pts} has results that are not its own"
        );
    }
    // After the seek: a restart near 2 s (the demuxer and decoder decide the first frame: 2.08 s
    // here, with or without ovinfer), then every frame to the end, in order.
    let restart = got
        .windows(2)
        .position(|w| w[1].0 < w[0].0)
        .expect("the seek went back");
    let after: Vec<gst::ClockTime> = got[restart + 1..].iter().map(|(p, _)| *p).collect();
    let first = after[0];
    assert!(
        first >= gst::ClockTime::from_seconds(2) && first < gst::ClockTime::from_mseconds(2200),
        "{after:?}"
    );
    let mut expected: Vec<gst::ClockTime> =
        reference.keys().copied().filter(|p| *p >= first).collect();
    expected.sort();
    assert_eq!(after, expected);
}

#[test]
fn two_elements_sharing_an_instance_each_get_their_own_frames_results() {
    // Frames of two sizes: ovinfer scales both to the model's size, so they share one instance.
    let scale = |w: u32, h: u32| {
        format!("videoconvert ! videoscale ! video/x-raw,format=BGR,width={w},height={h}")
    };
    let model = format!("model={} labels={} nireq=2", ssd_model(), ssd_labels());
    let bikes = format!(
        "filesrc location={} ! decodebin ! {} ! queue",
        asset("media/bikes.mp4"),
        scale(640, 360)
    );
    let photo = format!(
        "filesrc location={} ! jpegdec ! {} ! imagefreeze num-buffers=60 ! queue",
        asset("media/dog.jpg"),
        scale(480, 360)
    );
    let alone = |source: &str| -> Vec<Detections> {
        let out = run_sinks(
            &format!("{source} ! ovinfer {model} ! appsink name=sink"),
            &["sink"],
        );
        assert!(out.errors.is_empty(), "{}", out.error_text());
        out.samples("sink")
            .iter()
            .map(|s| boxes(&frame(s)))
            .collect()
    };
    let together = run_sinks(
        &format!(
            "{bikes} ! ovinfer {model} model-instance-id=cams ! appsink name=a  \
             {photo} ! ovinfer {model} model-instance-id=cams ! appsink name=b"
        ),
        &["a", "b"],
    );
    assert!(together.errors.is_empty(), "{}", together.error_text());
    let a: Vec<Detections> = together
        .samples("a")
        .iter()
        .map(|s| boxes(&frame(s)))
        .collect();
    let b: Vec<Detections> = together
        .samples("b")
        .iter()
        .map(|s| boxes(&frame(s)))
        .collect();
    assert_eq!(a.len(), 250);
    assert_eq!(b.len(), 60);
    assert_eq!(a, alone(&bikes), "the video's results changed when sharing");
    assert_eq!(b, alone(&photo), "the photo's results changed when sharing");
    let labels: Vec<&str> = b[0].iter().map(|d| d.0.as_str()).collect();
    assert!(labels.contains(&"dog"), "{labels:?}");
}

#[test]
fn joining_an_instance_with_other_frames_is_refused_with_the_reason() {
    let source = |format: &str, size: &str| {
        format!("videotestsrc num-buffers=5 ! video/x-raw,format={format},{size} ! queue")
    };
    let infer = |backend: &str| {
        format!(
            "ovinfer model={} model-instance-id=shared pre-process-backend={backend}",
            common::tiny("tiny_ssd.onnx")
        )
    };
    let together = |a: &str, b: &str, backend: &str| {
        run_sinks(
            &format!(
                "{a} ! {} ! appsink name=a  {b} ! {} ! appsink name=b",
                infer(backend),
                infer(backend)
            ),
            &["a", "b"],
        )
    };
    let (small, large) = ("width=64,height=48", "width=32,height=32");
    // Frames converted by ovinfer all reach the tensor as the model's picture: any sizes and
    // formats share.
    for (a, b) in [
        (source("RGB", small), source("RGB", large)),
        (source("RGB", small), source("BGR", small)),
        (source("I420", small), source("YUY2", large)),
    ] {
        let out = together(&a, &b, "ovinfer");
        assert!(out.errors.is_empty(), "{}", out.error_text());
        assert_eq!((out.samples("a").len(), out.samples("b").len()), (5, 5));
    }
    // Another format, or another size when OpenVINO converts and resizes, needs another
    // compiled model.
    let out = together(&source("RGB", small), &source("BGRx", small), "openvino");
    let text = out.error_text();
    assert!(
        text.contains("model-instance-id 'shared' is already used"),
        "{text}"
    );
    let out = together(&source("RGB", small), &source("RGB", large), "openvino");
    let text = out.error_text();
    assert!(
        text.contains("model-instance-id 'shared' is already used")
            && text.contains("give it another model-instance-id"),
        "{text}"
    );
    // Alone, each size is fine: the refusal is about sharing, not the frames.
    for size in [small, large] {
        let out = run_sinks(
            &format!(
                "{} ! {} ! appsink name=a",
                source("RGB", size),
                infer("openvino")
            ),
            &["a"],
        );
        assert!(out.errors.is_empty(), "{}", out.error_text());
        assert_eq!(out.samples("a").len(), 5);
    }
}

#[test]
fn statistics_are_readable_and_posted_for_gst_launch_users() {
    common::init();
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers=40 ! video/x-raw,format=RGB,width=64,height=48,framerate=25/1 ! \
         ovinfer name=infer model={} nireq=2 interval=4 stats-interval=1 ! fakesink sync=false",
        common::tiny("tiny_ssd.onnx")
    ))
    .expect("pipeline")
    .downcast::<gst::Pipeline>()
    .expect("pipeline");
    pipeline.set_state(gst::State::Playing).expect("playing");
    let bus = pipeline.bus().expect("bus");
    let mut posted = Vec::new();
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(60)) {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => panic!("{}", e.error()),
            gst::MessageView::Element(e) => {
                if let Some(s) = e.structure().filter(|s| s.name() == "ovinfer-stats") {
                    posted.push(s.to_owned());
                }
            }
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).expect("null");
    let infer = pipeline.by_name("infer").expect("infer");
    assert_eq!(infer.property::<u64>("frames"), 40);
    assert_eq!(infer.property::<u64>("inferences"), 10);
    assert!(infer.property::<f64>("fps") > 0.0);
    let (mean, p50, p99) = (
        infer.property::<f64>("latency-mean-ms"),
        infer.property::<f64>("latency-p50-ms"),
        infer.property::<f64>("latency-p99-ms"),
    );
    assert!(mean > 0.0 && p50 > 0.0 && p99 >= p50, "{mean} {p50} {p99}");
    let last = posted.last().expect("stats messages");
    assert!(last.get::<bool>("eos").expect("eos"));
    assert_eq!(last.get::<u64>("frames").expect("frames"), 40);
    assert_eq!(last.get::<u64>("inferences").expect("inferences"), 10);
    assert!(last.get::<f64>("fps").expect("fps") > 0.0);
    assert!(last.get::<gst::ClockTime>("elapsed").is_ok());
    assert!(posted.len() >= 2, "periodic messages too: {posted:?}");
}

#[test]
fn frames_read_in_place_and_padded_frames_copied_give_the_same_detections() {
    // person.jpg as tightly packed BGR (read in place by the input tensor) ...
    let decoded = run_sinks(
        &format!(
            "filesrc location={} ! jpegdec ! videoconvert ! videoscale ! \
             video/x-raw,format=BGR,width=300,height=300 ! appsink name=sink",
            asset("media/person.jpg")
        ),
        &["sink"],
    );
    let packed = decoded.samples("sink")[0]
        .buffer()
        .expect("buffer")
        .to_owned();
    let pixels = packed.map_readable().expect("readable").to_vec();
    assert_eq!(pixels.len(), 300 * 300 * 3);
    // ... and the same pixels in rows padded to 1024 bytes, described by a VideoMeta (copied).
    let stride = 1024;
    let mut padded = vec![0u8; stride * 300];
    for (row, out) in pixels
        .chunks_exact(900)
        .zip(padded.chunks_exact_mut(stride))
    {
        out[..900].copy_from_slice(row);
    }
    let mut padded = gst::Buffer::from_mut_slice(padded);
    gst_video::VideoMeta::add_full(
        padded.get_mut().expect("writable"),
        gst_video::VideoFrameFlags::empty(),
        gst_video::VideoFormat::Bgr,
        300,
        300,
        &[0],
        &[stride as i32],
    )
    .expect("video meta");
    let detect = |buffer: gst::Buffer| -> Detections {
        let out = common::run_prepared(
            &format!(
                "appsrc name=src format=time caps=video/x-raw,format=BGR,width=300,height=300,framerate=0/1 ! \
                 ovinfer model={} labels={} ! appsink name=sink",
                ssd_model(),
                ssd_labels()
            ),
            &["sink"],
            |pipeline| {
                let src = pipeline
                    .by_name("src")
                    .and_downcast::<gst_app::AppSrc>()
                    .expect("appsrc");
                let mut buffer = buffer;
                buffer.make_mut().set_pts(gst::ClockTime::ZERO);
                src.push_buffer(buffer).expect("queued");
                src.end_of_stream().expect("eos queued");
            },
        );
        assert!(out.errors.is_empty(), "{}", out.error_text());
        boxes(&frame(&out.samples("sink")[0]))
    };
    let in_place = detect(packed);
    let copied = detect(padded);
    assert_eq!(in_place, copied);
    assert_eq!(
        in_place.first().map(|d| d.0.as_str()),
        Some("person"),
        "{in_place:?}"
    );
}

#[test]
fn a_live_source_is_told_how_long_frames_may_wait_inside() {
    common::init();
    // The pipeline's LATENCY answer with a live 25 fps source and `nireq` requests of
    // `batch` frames (the tiny classifier keeps a batch axis).
    let latency = |nireq: u32, batch: u32| -> (bool, gst::ClockTime) {
        let pipeline = gst::parse::launch(&format!(
            "videotestsrc is-live=true ! video/x-raw,format=RGB,width=64,height=48,framerate=25/1 ! \
             ovinfer model={} nireq={nireq} batch-size={batch} ! fakesink name=sink",
            common::tiny("colour_classifier.onnx")
        ))
        .expect("pipeline");
        pipeline.set_state(gst::State::Playing).expect("playing");
        let bus = pipeline.bus().expect("bus");
        // A few frames in, caps are known and the pipeline has configured its latency.
        let sink = pipeline
            .downcast_ref::<gst::Bin>()
            .and_then(|b| b.by_name("sink"))
            .expect("sink");
        let pad = sink.static_pad("sink").expect("pad");
        let (tx, rx) = std::sync::mpsc::channel();
        let probe = pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            let _ = tx.send(());
            gst::PadProbeReturn::Ok
        });
        for _ in 0..3 {
            rx.recv_timeout(std::time::Duration::from_secs(30))
                .expect("frames flow");
        }
        if let Some(probe) = probe {
            pad.remove_probe(probe);
        }
        assert!(
            bus.pop_filtered(&[gst::MessageType::Error]).is_none(),
            "no error"
        );
        // What the sink hears when it asks upstream.
        let mut q = gst::query::Latency::new();
        assert!(pad.peer_query(&mut q), "answered");
        let (live, min, _max) = q.result();
        pipeline.set_state(gst::State::Null).expect("null");
        (live, min)
    };
    let (live, one) = latency(1, 1);
    let (_, three) = latency(3, 1);
    let (_, two_of_two) = latency(2, 2);
    assert!(live);
    // Two more frames of 40 ms may wait inside with three requests than with one; three more
    // with two requests of two frames (a batch waits for its frames). The inference time each
    // answer includes is well under a millisecond for this model, a few under load.
    let near = |d: gst::ClockTime, ms: u64| d.nseconds().abs_diff(ms * 1_000_000) < 8_000_000;
    assert!(near(three - one, 80), "{}", three - one);
    assert!(near(two_of_two - one, 120), "{}", two_of_two - one);
}

#[test]
fn a_live_sink_is_told_how_long_inference_takes() {
    common::init();
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc is-live=true num-buffers=100 ! \
         video/x-raw,format=RGB,width=320,height=240,framerate=25/1 ! \
         ovinfer name=infer model={} ! fakesink name=sink sync=true",
        ssd_model()
    ))
    .expect("pipeline")
    .downcast::<gst::Pipeline>()
    .expect("a pipeline");
    pipeline.set_state(gst::State::Playing).expect("playing");
    let bus = pipeline.bus().expect("bus");
    // As gst-launch does: recompute the latency when an element asks for it.
    let mut asked = 0;
    loop {
        let msg = bus
            .timed_pop(gst::ClockTime::from_seconds(60))
            .expect("EOS within 60 s");
        match msg.view() {
            gst::MessageView::Latency(_) => {
                asked += 1;
                let _ = pipeline.recalculate_latency();
            }
            gst::MessageView::Error(e) => panic!("{} ({:?})", e.error(), e.debug()),
            gst::MessageView::Eos(_) => break,
            _ => {}
        }
    }
    let infer = pipeline.by_name("infer").expect("ovinfer");
    let min_latency = |pad: &gst::Pad| {
        let mut q = gst::query::Latency::new();
        assert!(pad.peer_query(&mut q), "answered");
        q.result().1
    };
    let upstream = min_latency(&infer.static_pad("sink").expect("sink pad"));
    let told = min_latency(
        &pipeline
            .by_name("sink")
            .and_then(|s| s.static_pad("sink"))
            .expect("sink pad"),
    );
    let p50: f64 = infer.property("latency-p50-ms");
    pipeline.set_state(gst::State::Null).expect("null");
    // With one request nothing waits for its turn: what ovinfer adds is its inference time,
    // and the sink is told at least what half the frames took inside.
    let added = (told - upstream).nseconds() as f64 / 1e6;
    assert!(p50 > 1.0, "SSD takes milliseconds: {p50}");
    assert!(
        added >= p50,
        "told {added:.1} ms, frames took {p50:.1} ms (LATENCY messages: {asked})"
    );
}
