//! `ovinfer server=grpc://... remote-model=...`: inference on a KServe v2 gRPC server, here the
//! real `lva-server` binary serving the SSD on `grpc-listen`, and a real NVIDIA Triton (PyTriton's
//! tritonserver running the SSD through OpenVINO). The same frames give the same detections as
//! local inference; the server killed mid-stream and restarted gives the
//! documented policy (frames pass without results and are counted, a warning, results resume);
//! `max-failures` turns an outage into an element error; bad settings and refusals are clear
//! errors; grpcs:// with a CA file and credentials.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::reference::scratch;
use common::{asset, free_port, run, run_prepared, ssd_labels, ssd_model};
use gst::prelude::*;
use serde_json::{Value, json};

/// bikes.mp4 is cut with `identity eos-after=FRAMES`, which lets a few more through (62 or 63,
/// depending on the load), always from the start in order: the first FRAMES frames are
/// compared. Enough boxes and motion, a modest run time.
const FRAMES: usize = 60;

/// lva-server serving the SSD as "ssd" over gRPC on a port chosen here (so that it can be
/// started again on the same one).
struct Server {
    started: common::server::Started,
    config: std::path::PathBuf,
    grpc_port: u16,
}

impl Server {
    fn start(extra: Value) -> Server {
        let dir = scratch("ovinfer-remote");
        let grpc_port = free_port();
        let mut config = json!({
            "grpc-listen": format!("127.0.0.1:{grpc_port}"),
            "streams": {"state-dir": dir.join("state")},
            "models": {
                "ssd": {"model": ssd_model(), "decoder": "ssd", "workers": 2, "max-queue": 16},
                "colour": {"model": common::tiny("colour_classifier.onnx"), "workers": 1, "max-queue": 16}
            }
        });
        for (k, v) in extra.as_object().expect("an object") {
            config[k] = v.clone();
        }
        let path = dir.join("lva-server.json");
        std::fs::write(&path, config.to_string()).expect("config written");
        let started = common::server::start(&path, &[]);
        Server {
            started,
            config: path,
            grpc_port,
        }
    }

    fn url(&self) -> String {
        format!("grpc://127.0.0.1:{}", self.grpc_port)
    }

    fn kill(&mut self) {
        let _ = self.started.child.kill();
        let _ = self.started.child.wait();
    }

    /// Started again on the same ports and configuration.
    fn restart(&mut self) {
        self.kill();
        self.started = common::server::start(&self.config, &[]);
    }
}

/// bikes.mp4's first FRAMES frames through `ovinfer PROPS ! lvajson skip-empty=false`: one
/// document per frame.
fn documents(props: &str) -> Vec<Value> {
    documents_of(&format!(
        "ovinfer {props} labels={} threshold=0.4",
        ssd_labels()
    ))
}

/// bikes.mp4's first FRAMES frames through `ELEMENTS ! lvajson skip-empty=false`.
fn documents_of(elements: &str) -> Vec<Value> {
    let outcome = common::run_sinks(
        &format!(
            "filesrc location={} ! decodebin ! videoconvert ! identity eos-after={FRAMES} \
             ! {elements} ! lvajson skip-empty=false ! appsink name=sink",
            asset("media/bikes.mp4"),
        ),
        &["sink"],
    );
    assert!(outcome.errors.is_empty(), "{}", outcome.error_text());
    outcome
        .samples("sink")
        .iter()
        .map(|s| serde_json::from_str(&common::text(s)).expect("JSON"))
        .collect()
}

/// An entity: its tag, confidence, [l, t, w, h] and attributes (name, value, confidence).
type Entity = (String, f64, [f64; 4], Vec<(String, String, f64)>);

/// A document's entities.
fn entities(doc: &Value) -> Vec<Entity> {
    doc["inferences"]
        .as_array()
        .expect("inferences")
        .iter()
        .map(|i| {
            let e = &i["entity"];
            let b = &e["box"];
            (
                e["tag"]["value"].as_str().expect("tag").to_string(),
                e["tag"]["confidence"].as_f64().expect("confidence"),
                ["l", "t", "w", "h"].map(|k| b[k].as_f64().expect("box")),
                e["attributes"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|a| {
                                (
                                    a["name"].as_str().unwrap_or_default().to_string(),
                                    a["value"].as_str().unwrap_or_default().to_string(),
                                    a["confidence"].as_f64().unwrap_or_default(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            )
        })
        .collect()
}

/// The largest difference between two frames' entities (same labels in the same order), or
/// why they differ.
fn difference(local: &[Entity], remote: &[Entity]) -> Result<f64, String> {
    if local.len() != remote.len() {
        return Err(format!(
            "{} entities locally, {} remotely",
            local.len(),
            remote.len()
        ));
    }
    let mut worst = 0f64;
    for (a, b) in local.iter().zip(remote) {
        if a.0 != b.0 {
            return Err(format!("label {} locally, {} remotely", a.0, b.0));
        }
        worst = worst.max((a.1 - b.1).abs());
        for k in 0..4 {
            worst = worst.max((a.2[k] - b.2[k]).abs());
        }
        if a.3.len() != b.3.len() {
            return Err(format!("attributes {:?} locally, {:?} remotely", a.3, b.3));
        }
        for (x, y) in a.3.iter().zip(&b.3) {
            if (&x.0, &x.1) != (&y.0, &y.1) {
                return Err(format!("attribute {x:?} locally, {y:?} remotely"));
            }
            worst = worst.max((x.2 - y.2).abs());
        }
    }
    Ok(worst)
}

/// Every frame's detections the same as local inference's (labels, boxes and confidences
/// within 1e-4); gives the largest difference.
fn assert_same(local: &[Value], remote: &[Value], what: &str) -> f64 {
    assert!(local.len() >= FRAMES, "{} local frames", local.len());
    assert!(remote.len() >= FRAMES, "{what}: {} frames", remote.len());
    let mut worst = 0f64;
    let mut boxes = 0;
    for (n, (l, r)) in local.iter().zip(remote).take(FRAMES).enumerate() {
        let (l, r) = (entities(l), entities(r));
        boxes += l.len();
        worst = worst.max(
            difference(&l, &r).unwrap_or_else(|e| panic!("{what}: frame {n}: {e}: {l:?} {r:?}")),
        );
    }
    assert!(boxes >= 30, "only {boxes} boxes in {FRAMES} frames");
    assert!(worst <= 1e-4, "{what}: largest difference {worst}");
    eprintln!("{what}: {boxes} boxes on {FRAMES} frames, largest difference {worst:e}");
    worst
}

/// One test at a time: the tests restart servers on the ports they had, and a parallel test's
/// free port could take such a port in between (a CI run saw it).
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn remote_inference_on_lva_server_gives_the_local_detections() {
    let _serial = serial();
    let started = Instant::now();
    let server = Server::start(json!({}));
    let local = documents(&format!("model={}", ssd_model()));
    let url = server.url();
    let remote = documents(&format!("server={url} remote-model=ssd"));
    assert_same(&local, &remote, "nireq=1");
    // Four calls in flight on the one connection; frames still leave in order. OpenVINO's
    // pre-processing does not apply remotely: asking for it changes nothing (nor is a
    // letterbox refused with it, as it is locally).
    let four = documents(&format!(
        "server={url} remote-model=ssd nireq=4 pre-process-backend=openvino"
    ));
    assert_same(&local, &four, "nireq=4");
    // The SSD is served with its fixed batch of 1: batches are refused, with the fix.
    let r = run(&format!(
        "videotestsrc num-buffers=2 ! ovinfer server={url} remote-model=ssd batch-size=4 \
         ! appsink name=sink"
    ));
    let e = r.error_text();
    assert!(
        e.contains("fixed batch of 1") && e.contains("set batch-size=1"),
        "{e}"
    );
    eprintln!("took {:?}", started.elapsed());
}

#[test]
fn remote_inference_on_triton_gives_the_local_detections() {
    let _serial = serial();
    let started = Instant::now();
    let triton = common::triton::Triton::start_ssd();
    let ready = started.elapsed();
    let local = documents(&format!("model={}", ssd_model()));
    let url = triton.grpc_url();
    let remote = documents(&format!(
        "server={url} remote-model={}",
        common::triton::SSD
    ));
    assert_same(&local, &remote, "Triton nireq=1");
    let four = documents(&format!(
        "server={url} remote-model={} nireq=4",
        common::triton::SSD
    ));
    assert_same(&local, &four, "Triton nireq=4");
    eprintln!("Triton ready in {ready:?}, took {:?}", started.elapsed());
}

/// bikes.mp4's SSD cars (local SSD) classified by colour with `COLOUR` (the model's settings),
/// batched: `batch-size=4 nireq=2`.
fn cars_in_colours(colour: &str) -> Vec<Value> {
    documents_of(&format!(
        "ovinfer model={} labels={} threshold=0.4 ! ovinfer {colour} labels={} \
         inference-region=roi-list object-class=car attribute-name=color threshold=0 \
         batch-size=4 nireq=2",
        ssd_model(),
        ssd_labels(),
        common::tiny("colours.txt")
    ))
}

/// How many entities of the first FRAMES documents have an attribute.
fn classified(docs: &[Value]) -> usize {
    docs.iter()
        .take(FRAMES)
        .flat_map(entities)
        .filter(|e| !e.3.is_empty())
        .count()
}

#[test]
fn batches_of_cars_reach_triton_and_give_the_local_colours() {
    let _serial = serial();
    // The colour classifier served by the real Triton with its batching (max_batch_size 8, the
    // metadata's first dimension -1): batch-size=4 sends up to four cars in one request.
    let started = Instant::now();
    let model = std::path::PathBuf::from(common::tiny("colour_classifier.onnx"));
    let triton = common::triton::Triton::start_model(&model, "colour", 8);
    let ready = started.elapsed();
    let local = cars_in_colours(&format!("model={}", model.display()));
    let remote = cars_in_colours(&format!("server={} remote-model=colour", triton.grpc_url()));
    let colours = classified(&local);
    assert!(colours >= 10, "only {colours} cars classified");
    // The same SSD boxes locally: the differences are the colours' confidences.
    let worst = assert_same(&local, &remote, "cars in batches of 4 on Triton");
    assert!(worst <= 1e-5, "colour confidences differ by {worst}");
    // Triton counts items inferred and model executions: fewer executions than items means
    // requests of more than one car reached the model.
    let (items, executions) = triton.counts();
    eprintln!(
        "Triton ready in {ready:?}; {colours} cars classified in the first {FRAMES} frames; \
         Triton: {items} items in {executions} executions; took {:?}",
        started.elapsed()
    );
    // One item per car, plus the pool's warm-up (two inferences of a whole batch of 4): a
    // batch a frame's end starts half full sends only its cars, no empty slots.
    assert_eq!(
        items,
        colours as u64 + 8,
        "{items} items inferred for {colours} cars and the warm-up's 8"
    );
    assert!(
        executions < items,
        "no batch of more than one: {items} items in {executions} executions"
    );
}

#[test]
fn a_second_stage_on_rois_infers_remotely_too() {
    let _serial = serial();
    // The SSD's cars classified by colour (an FP32 NCHW input scaled to [0,1]: the remote
    // request lays out and scales the pixels as OpenVINO's pre-processing does locally).
    let server = Server::start(json!({}));
    let url = server.url();
    let chain = |ssd: &str, colour: &str| {
        documents_of(&format!(
            "ovinfer {ssd} labels={} threshold=0.4 ! ovinfer {colour} labels={} \
             inference-region=roi-list object-class=car attribute-name=color threshold=0",
            ssd_labels(),
            common::tiny("colours.txt")
        ))
    };
    let local = chain(
        &format!("model={}", ssd_model()),
        &format!("model={}", common::tiny("colour_classifier.onnx")),
    );
    let remote = chain(
        &format!("server={url} remote-model=ssd"),
        &format!("server={url} remote-model=colour nireq=2"),
    );
    let colours = classified(&local);
    assert!(colours >= 10, "only {colours} cars classified");
    assert_same(&local, &remote, "SSD then colours on the cars");
    eprintln!("{colours} cars classified");
}

/// Runs bikes.mp4 (FRAMES frames, slowed to ~`ms` ms each) through a remote ovinfer named
/// "inf" in a thread, calling `during` once `after` frames came out; gives the outcome, the
/// frames out and how many frames went into the element.
fn run_with(
    props: &str,
    ms: u64,
    after: usize,
    during: impl FnOnce(),
) -> (common::Outcome, Vec<common::Frame>, usize) {
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let into = Arc::new(AtomicUsize::new(0));
    let into_counter = into.clone();
    let description = format!(
        "filesrc location={} ! decodebin ! videoconvert ! identity eos-after={FRAMES} \
         sleep-time={} ! ovinfer name=inf {props} labels={} threshold=0.4 ! appsink name=sink",
        asset("media/bikes.mp4"),
        ms * 1000,
        ssd_labels()
    );
    let runner = std::thread::spawn(move || {
        run_prepared(&description, &["sink"], move |pipeline| {
            let inf = pipeline.by_name("inf").expect("ovinfer");
            inf.static_pad("sink").expect("sink pad").add_probe(
                gst::PadProbeType::BUFFER,
                move |_, _| {
                    into_counter.fetch_add(1, Ordering::SeqCst);
                    gst::PadProbeReturn::Ok
                },
            );
            inf.static_pad("src").expect("src pad").add_probe(
                gst::PadProbeType::BUFFER,
                move |_, _| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    gst::PadProbeReturn::Ok
                },
            );
        })
    });
    let waited = Instant::now();
    while seen.load(Ordering::SeqCst) < after && !runner.is_finished() {
        assert!(waited.elapsed() < Duration::from_secs(60), "no frames came");
        std::thread::sleep(Duration::from_millis(5));
    }
    during();
    let outcome = runner.join().expect("the pipeline thread");
    let frames = outcome.samples("sink").iter().map(common::frame).collect();
    let into = into.load(Ordering::SeqCst);
    (outcome, frames, into)
}

#[test]
fn a_server_killed_and_restarted_mid_stream_costs_only_the_frames_of_the_outage() {
    let _serial = serial();
    let mut server = Server::start(json!({}));
    let url = server.url();
    // The reference: the same frames inferred locally.
    let local = run(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! identity eos-after={FRAMES} \
         ! ovinfer model={} labels={} threshold=0.4 ! appsink name=sink",
        asset("media/bikes.mp4"),
        ssd_model(),
        ssd_labels()
    ));
    assert!(local.errors.is_empty(), "{}", local.error_text());
    let started = Instant::now();
    let mut outage = Duration::ZERO;
    let (outcome, frames, into) = run_with(
        &format!("server={url} remote-model=ssd remote-timeout=3000 stats-interval=100000"),
        60,
        15,
        || {
            let down = Instant::now();
            server.kill();
            std::thread::sleep(Duration::from_millis(500));
            server.restart();
            outage = down.elapsed();
        },
    );
    assert!(outcome.errors.is_empty(), "{}", outcome.error_text());
    assert_eq!(frames.len(), into, "every frame comes out");
    let total = FRAMES;
    assert!(frames.len() >= total && local.frames.len() >= total);
    let failures: u64 = outcome.element("inf").property("remote-failures");
    // Frames whose results are missing (the server was down for them); frames where local
    // inference found nothing cannot tell, so they bound the count from above.
    let key = |f: &common::Frame| -> Vec<(String, u32, u32)> {
        f.rois
            .iter()
            .map(|r| (r.roi_type.clone(), r.rect.0, r.rect.1))
            .collect()
    };
    let missing: Vec<usize> = (0..total)
        .filter(|&n| frames[n].rois.is_empty() && !local.frames[n].rois.is_empty())
        .collect();
    let empty_locally = local.frames.iter().filter(|f| f.rois.is_empty()).count();
    eprintln!(
        "outage {outage:?}: remote-failures {failures}, frames missing results {missing:?}, \
         run {:?}",
        started.elapsed()
    );
    assert!(failures >= 1, "the outage cost no frame?");
    assert!(
        missing.len() as u64 <= failures && failures <= (missing.len() + empty_locally) as u64,
        "{failures} failures, {} frames missing results",
        missing.len()
    );
    // Frames with results are exactly the local ones (boxes within a pixel).
    for (n, (frame, reference)) in frames.iter().zip(&local.frames).take(total).enumerate() {
        if !frame.rois.is_empty() {
            let (a, b) = (key(reference), key(frame));
            assert_eq!(a.len(), b.len(), "frame {n}: {a:?} {b:?}");
            for (x, y) in a.iter().zip(&b) {
                assert!(
                    x.0 == y.0 && x.1.abs_diff(y.1) <= 1 && x.2.abs_diff(y.2) <= 1,
                    "frame {n}: {a:?} {b:?}"
                );
            }
        }
    }
    // Results resume: the last frames all have theirs.
    let last = &missing.last().copied().unwrap_or(0);
    assert!(*last < total - 10, "results did not resume: {missing:?}");
    // One warning for the outage, naming the server.
    let warnings: Vec<&String> = outcome
        .warnings
        .iter()
        .map(|(m, _)| m)
        .filter(|m| m.contains(&url))
        .collect();
    assert_eq!(warnings.len(), 1, "{:?}", outcome.warnings);
    assert!(warnings[0].contains("without results"), "{}", warnings[0]);
}

#[test]
fn a_server_that_stops_answering_costs_only_timeouts_never_a_hang() {
    let _serial = serial();
    let server = Server::start(json!({}));
    let url = server.url();
    let pid = server.started.child.id().to_string();
    let signal = |sig: &str| {
        let sent = Command::new("kill").args([sig, &pid]).status();
        assert!(sent.expect("kill runs").success(), "kill {sig}");
    };
    // SIGSTOP: the connection stays open and nothing answers, so every call runs into
    // remote-timeout.
    let mut stopped = None;
    let (outcome, frames, into) = run_with(
        &format!("server={url} remote-model=ssd remote-timeout=1000 nireq=2"),
        30,
        10,
        || {
            signal("-STOP");
            stopped = Some(Instant::now());
        },
    );
    let took = stopped.expect("stopped").elapsed();
    signal("-CONT");
    assert!(outcome.errors.is_empty(), "{}", outcome.error_text());
    assert!(frames.len() >= FRAMES, "{} frames came out", frames.len());
    assert_eq!(frames.len(), into, "every frame comes out");
    let failures: u64 = outcome.element("inf").property("remote-failures");
    let without = frames.iter().skip(12).filter(|f| f.rois.is_empty()).count() as u64;
    eprintln!(
        "{} frames, remote-failures {failures}, EOS {took:?} after SIGSTOP",
        frames.len()
    );
    assert!(failures >= 10 && without >= failures.min(frames.len() as u64 - 12) - 2);
    assert!(took < Duration::from_secs(30), "EOS took {took:?}");
    let warnings: Vec<&String> = outcome.warnings.iter().map(|(m, _)| m).collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("DEADLINE_EXCEEDED") && warnings[0].contains(&url),
        "{}",
        warnings[0]
    );
}

#[test]
fn max_failures_turns_an_outage_into_an_error_naming_the_server() {
    let _serial = serial();
    let mut server = Server::start(json!({}));
    let url = server.url();
    let mut killed = None;
    let (outcome, frames, _) = run_with(
        &format!("server={url} remote-model=ssd remote-timeout=2000 max-failures=3"),
        30,
        5,
        || {
            server.kill();
            killed = Some(Instant::now());
        },
    );
    let took = killed.expect("killed").elapsed();
    let e = outcome.error_text();
    assert!(
        e.contains(&url) && e.contains("max-failures=3") && e.contains("UNAVAILABLE"),
        "{e}"
    );
    assert!(
        frames.len() < FRAMES,
        "the stream stopped at {}",
        frames.len()
    );
    assert!(took < Duration::from_secs(15), "the error took {took:?}");
    eprintln!("error {took:?} after the kill: {e}");
}

fn error_of(props: &str) -> String {
    let r = run(&format!(
        "videotestsrc num-buffers=2 ! ovinfer {props} ! appsink name=sink"
    ));
    assert!(r.frames.is_empty(), "{props}: frames came out");
    r.error_text()
}

#[test]
fn bad_settings_and_refusals_are_clear_errors() {
    let _serial = serial();
    let server = Server::start(json!({}));
    let url = server.url();
    let e = error_of(&format!("server={url} remote-model=nosuch"));
    assert!(
        e.contains("NOT_FOUND") && e.contains("nosuch") && e.contains(&url),
        "{e}"
    );
    let dead = format!("grpc://127.0.0.1:{}", free_port());
    let begun = Instant::now();
    let e = error_of(&format!(
        "server={dead} remote-model=ssd remote-timeout=2000"
    ));
    assert!(e.contains(&dead) && e.contains("UNAVAILABLE"), "{e}");
    assert!(begun.elapsed() < Duration::from_secs(10));
    let e = error_of(&format!(
        "model={} server={url} remote-model=ssd",
        ssd_model()
    ));
    assert!(e.contains("both set"), "{e}");
    let e = error_of("server=http://127.0.0.1:1 remote-model=ssd");
    assert!(
        e.contains("scheme 'http'") && e.contains("grpc://HOST:PORT"),
        "{e}"
    );
    let r = run(&format!(
        "videotestsrc num-buffers=2 ! ovinfer server={url} remote-model=ssd \
         pre-process-backend=openvino pre-process-resize=letterbox ! appsink name=sink"
    ));
    assert!(
        r.errors.is_empty() && r.frames.len() == 2,
        "{}",
        r.error_text()
    );
    let e = error_of(&format!("server={url}"));
    assert!(e.contains("remote-model"), "{e}");
    // The secret is not read back.
    common::init();
    let inf = gst::ElementFactory::make("ovinfer")
        .property("authorization", "Bearer s3cret")
        .build()
        .expect("ovinfer");
    assert_eq!(
        inf.property::<Option<String>>("authorization").as_deref(),
        Some("*****")
    );
}

#[test]
fn grpcs_with_a_ca_file_and_credentials() {
    let _serial = serial();
    let dir = scratch("ovinfer-remote-tls");
    common::self_signed_cert(&dir);
    let server = Server::start(json!({
        "tls": {"cert": dir.join("cert.pem"), "key": dir.join("key.pem")},
        "auth": {"bearer": ["t0ken"], "basic": [{"user": "lva", "password": "pa55"}]},
    }));
    let url = format!("grpcs://localhost:{}", server.grpc_port);
    let ca = dir.join("cert.pem").display().to_string();
    let person = |props: &str| {
        run(&format!(
            "filesrc location={} ! decodebin ! videoconvert ! imagefreeze num-buffers=2 \
             ! ovinfer {props} labels={} ! appsink name=sink",
            asset("media/person.jpg"),
            ssd_labels()
        ))
    };
    for auth in ["Bearer t0ken", "Basic bHZhOnBhNTU="] {
        let r = person(&format!(
            "server={url} remote-model=ssd ca-file={ca} authorization=\"{auth}\""
        ));
        assert!(r.errors.is_empty(), "{auth}: {}", r.error_text());
        let labels: Vec<&str> = r.frames[0]
            .rois
            .iter()
            .map(|r| r.roi_type.as_str())
            .collect();
        assert!(
            labels.contains(&"person") && labels.contains(&"horse"),
            "{labels:?}"
        );
    }
    let r = person(&format!(
        "server={url} remote-model=ssd ca-file={ca} authorization=\"Bearer n0tthis\""
    ));
    let e = r.error_text();
    assert!(
        e.contains("UNAUTHENTICATED") && e.contains("authorization"),
        "{e}"
    );
    assert!(
        !e.contains("n0tthis"),
        "the credentials are not repeated: {e}"
    );
    // Without the CA file the server's self-signed certificate is not trusted.
    let r = person(&format!(
        "server={url} remote-model=ssd authorization=\"Bearer t0ken\" remote-timeout=3000"
    ));
    let e = r.error_text();
    assert!(
        e.contains(&url) && e.contains("invalid peer certificate") && e.contains("ca-file"),
        "{e}"
    );
    eprintln!("without ca-file: {e}");
}
