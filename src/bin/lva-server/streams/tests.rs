//! The streams engine with real GStreamer, real models (models/), real media (media/) and a
//! real RTSP server: what issue 20 asks of streams, without the HTTP layer.
//!
//! The memory and thread figures are taken in a process of their own (the test binary run again
//! for that one test), where no other test's memory blurs them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use super::registry::{Options, Put, Refused, Registry};
use super::spec::{Sink, StreamSpec};
use super::status::{State, Status};
use super::stream::Stream;
use super::video::VideoEnv;
use crate::config::{Config, ModelConfig};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn asset(rel: &str) -> PathBuf {
    let p = root().join(rel);
    assert!(
        p.exists(),
        "{} is missing: run `make setup` first",
        p.display()
    );
    p
}

pub(crate) fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().expect("GStreamer initialises");
        gstovlva::plugin_register_static().expect("the ovlva plugin registers");
    });
}

/// `ssd`: SSD-MobileNet-v2 COCO as `examples/lva-server.json` has it; `tiny`: the tiny test
/// model (fast; with threshold 0 it finds something on every frame).
fn models() -> Vec<ModelConfig> {
    let ssd = asset("models/ssd_mobilenet_v2_coco/ssd_mobilenet_v2_coco.xml");
    let labels = asset("models/ssd_mobilenet_v2_coco/labels.txt");
    let tiny = asset("models/tiny/tiny_ssd.onnx");
    let text = format!(
        r#"{{"models": {{
            "ssd": {{"model": "{}", "labels": "{}", "decoder": "ssd", "threshold": 0.5}},
            "tiny": {{"model": "{}", "threshold": 0.0}}
        }}}}"#,
        ssd.display(),
        labels.display(),
        tiny.display()
    );
    Config::parse(&text, &root()).expect("test models").1
}

fn model_map() -> BTreeMap<String, ModelConfig> {
    models().into_iter().map(|m| (m.name.clone(), m)).collect()
}

fn spec(json: &str) -> StreamSpec {
    StreamSpec::from_json(json.as_bytes()).expect("a valid definition")
}

fn start(id: &str, json: &str) -> Stream {
    let checked = spec(json)
        .check(&model_map())
        .expect("the definition checks");
    Stream::start(id, checked, &video_env()).expect("the stream starts")
}

/// Video outputs without an RTSP server, HLS under a scratch folder.
fn video_env() -> VideoEnv {
    VideoEnv {
        rtsp: crate::rtsp::RtspService::new("127.0.0.1", 0, None),
        hls_root: scratch("hls"),
    }
}

/// A fresh folder under target/.
fn scratch(name: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = root().join("target/test-scratch").join(format!(
        "streams-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

fn file_uri(path: &Path) -> String {
    format!("file://{}", path.display())
}

fn json(status: &Status) -> String {
    serde_json::to_string_pretty(status).unwrap_or_default()
}

/// Polls the status until `cond` holds.
fn wait(stream: &Stream, what: &str, timeout: Duration, cond: impl Fn(&Status) -> bool) -> Status {
    let t0 = Instant::now();
    loop {
        let s = stream.status();
        if cond(&s) {
            return s;
        }
        assert!(
            t0.elapsed() < timeout,
            "{what}: not within {timeout:?}; status: {}",
            json(&s)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Checks a document against tests/lva_inference.schema.json (written from the LVA contract),
/// and that it has results.
fn check_lva(document: &str) {
    static SCHEMA: std::sync::OnceLock<(boon::Schemas, boon::SchemaIndex)> =
        std::sync::OnceLock::new();
    let (schemas, index) = SCHEMA.get_or_init(|| {
        let text = std::fs::read_to_string(asset("tests/lva_inference.schema.json"))
            .expect("the schema file");
        let json = serde_json::from_str(&text).expect("the schema is JSON");
        let mut schemas = boon::Schemas::new();
        let mut compiler = boon::Compiler::new();
        compiler
            .add_resource("lva_inference.schema.json", json)
            .expect("schema resource");
        let index = compiler
            .compile("lva_inference.schema.json", &mut schemas)
            .expect("the schema compiles");
        (schemas, index)
    });
    let value: serde_json::Value = serde_json::from_str(document).expect("a JSON document");
    if let Err(e) = schemas.validate(&value, *index) {
        panic!("not an LVA document: {e:#}\n{document}");
    }
    let inferences = value["inferences"].as_array().expect("inferences");
    assert!(
        !inferences.is_empty(),
        "a document without results: {document}"
    );
}

/// The reference: OpenVINO's Python API fed by OpenCV (scripts/reference_detect.py's SSD
/// decoding) on every frame of bikes.mp4: each frame's highest confidence.
fn reference_confidences() -> std::process::Child {
    let script = r#"
import json, sys, cv2
sys.path.insert(0, sys.argv[1])
import reference_detect as r
cap = cv2.VideoCapture(sys.argv[2])
best = []
while True:
    ok, bgr = cap.read()
    if not ok:
        break
    best.append(max([c for _, c, _ in r.ssd(sys.argv[3], bgr, 0.0)], default=0.0))
print(json.dumps(best))
"#;
    std::process::Command::new(root().join(".venv/bin/python"))
        .arg("-c")
        .arg(script)
        .arg(root().join("scripts"))
        .arg(asset("media/bikes.mp4"))
        .arg(asset(
            "models/ssd_mobilenet_v2_coco/ssd_mobilenet_v2_coco.xml",
        ))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect(".venv/bin/python runs: run `make setup`")
}

#[test]
fn a_file_stream_finishes_with_every_frame_and_exactly_the_non_empty_documents() {
    init();
    let t0 = Instant::now();
    let reference = reference_confidences();
    let dir = scratch("file");
    let out = dir.join("bikes.jsonl");
    let stream = start(
        "bikes",
        &format!(
            r#"{{"source": {{"uri": "{}"}}, "model": "ssd",
                 "outputs": {{"jsonl": {{"path": "{}"}}}}}}"#,
            file_uri(&asset("media/bikes.mp4")),
            out.display()
        ),
    );
    let mut events = stream.subscribe();
    let s = wait(&stream, "finished", Duration::from_secs(150), |s| {
        s.state.is_final()
    });
    eprintln!("bikes.mp4 status at the end: {}", json(&s));
    assert_eq!(s.state, State::Finished, "{}", json(&s));
    assert_eq!(s.produced_frames, 250);
    assert_eq!(s.processed_frames, 250);
    assert_eq!(s.inferred_frames, 250);
    assert_eq!(
        s.dropped_frames, 0,
        "a file is not realtime: nothing dropped"
    );
    assert_eq!(s.remaining_time_ms, Some(0));
    let video = s.video.clone().expect("video");
    assert_eq!((video.width, video.height), (640, 272));
    assert!(
        video.fps.is_some_and(|f| (f - 25.0).abs() < 0.01),
        "{video:?}"
    );
    assert!(s.latency.p50_ms > 0.0 && s.latency.p99_ms >= s.latency.p50_ms);
    // The count of frames with results at 0.5, as tests/ovinfer_async.rs has it.
    assert_eq!(s.documents, 123);
    let written = lines(&out);
    assert_eq!(written.len(), 123);
    let jsonl = s.outputs.jsonl.clone().expect("jsonl status");
    assert_eq!((jsonl.written, jsonl.failed), (123, 0));

    // The subscriber got the same documents, in order, each with its frame's timestamp.
    let mut frames = BTreeSet::new();
    let mut seen = Vec::new();
    loop {
        match events.try_recv() {
            Ok(d) => {
                let pts = d.pts_ns.expect("pts");
                frames.insert((pts as f64 / 40e6).round() as u64);
                seen.push(d.json.to_string());
            }
            Err(TryRecvError::Closed) => break,
            Err(e) => panic!("subscriber: {e:?}"),
        }
    }
    assert_eq!(
        seen, written,
        "the JSON Lines file holds exactly the documents"
    );
    for line in &written {
        check_lva(line);
    }
    assert_eq!(
        stream.latest().map(|d| d.json.to_string()),
        written.last().cloned()
    );

    // Independently: the frames where OpenVINO's Python API on OpenCV's frames finds something
    // clearly above 0.5 have a document, those where it finds nothing near 0.5 have none. The
    // model's scores are quantised, in steps of 21/256 here (… 0.418, 0.5, 0.582 …): where the
    // best confidence is within one step of 0.5, one level of one pixel decides (OpenCV's and
    // GStreamer's pictures differ by that), and either answer is right.
    let output = reference.wait_with_output().expect("reference runs");
    assert!(
        output.status.success(),
        "reference: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let best: Vec<f64> = serde_json::from_slice(&output.stdout).expect("reference JSON");
    assert_eq!(best.len(), 250);
    const STEP: f64 = 21.0 / 256.0 + 1e-3;
    let above: BTreeSet<u64> = (0..250)
        .filter(|&i| best[i as usize] > 0.5 + STEP)
        .collect();
    let below: BTreeSet<u64> = (0..250)
        .filter(|&i| best[i as usize] < 0.5 - STEP)
        .collect();
    let missing: Vec<_> = above.difference(&frames).collect();
    let extra: Vec<_> = frames.intersection(&below).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing: {missing:?}, extra: {extra:?}"
    );
    assert!(
        above.len() >= 90,
        "the reference finds {} frames",
        above.len()
    );
    eprintln!(
        "file stream: {} frames clearly above 0.5 in the reference, {} within a step of it, {} documents; {:?}",
        above.len(),
        250 - above.len() - below.len(),
        frames.len(),
        t0.elapsed()
    );
    assert!(!stream.has_thread(), "a finished stream holds no thread");
}

/// A real RTSP server serving bikes.mp4 in a loop (the fixture the HTTP tests share).
#[path = "../../../../tests/common/rtsp.rs"]
mod rtsp;

#[test]
fn an_rtsp_stream_reconnects_when_its_server_comes_back_and_reports_the_gap() {
    init();
    let t0 = Instant::now();
    let bikes = asset("media/bikes.mp4");
    let server = rtsp::Server::start(0, &bikes);
    let port = server.port;
    let stream = start(
        "camera",
        &format!(
            r#"{{"source": {{"uri": "rtsp://127.0.0.1:{port}/bikes", "source-timeout-ms": 2000}},
                 "model": "ssd"}}"#
        ),
    );
    let mut events = stream.subscribe();
    let running = wait(&stream, "running", Duration::from_secs(30), |s| {
        s.state == State::Running && s.documents >= 5
    });
    assert!(running.video.is_some());
    for _ in 0..5 {
        check_lva(&events.blocking_recv().expect("a document").json);
    }

    let down = Instant::now();
    server.stop();
    let lost = wait(&stream, "reconnecting", Duration::from_secs(15), |s| {
        s.state == State::Reconnecting
    });
    eprintln!("camera lost after {:?}: {}", down.elapsed(), json(&lost));
    let before = lost.documents;
    std::thread::sleep(Duration::from_secs(5).saturating_sub(down.elapsed()));
    let server = rtsp::Server::start(port, &bikes);
    let back = Instant::now();
    let s = wait(&stream, "running again", Duration::from_secs(40), |s| {
        s.state == State::Running && s.documents >= before + 5
    });
    eprintln!(
        "camera back {:?} after its server; status: {}",
        back.elapsed(),
        json(&s)
    );
    assert!(
        s.reconnects >= 1 && s.reconnect_attempts >= 1,
        "{}",
        json(&s)
    );
    assert!(s.gaps.count >= 1);
    let gap = s.gaps.recent.last().expect("a gap");
    assert!(gap.end.is_some(), "the gap is closed: {gap:?}");
    assert!(
        gap.duration_ms >= 4500,
        "from the last frame to the next: {gap:?}"
    );
    // Documents flow to subscribers again, after the ones from before the loss.
    let mut after = 0;
    while after < 5 {
        match events.blocking_recv() {
            Ok(d) if d.seq >= before => {
                check_lva(&d.json);
                after += 1;
            }
            Ok(_) => {}
            Err(RecvError::Lagged(_)) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
    let end = stream.stop();
    assert_eq!(end.state, State::Stopped);
    assert_eq!(
        end.produced_frames,
        end.processed_frames + end.dropped_frames,
        "{}",
        json(&end)
    );
    server.stop();
    eprintln!("rtsp test: {:?}", t0.elapsed());
}

#[test]
fn a_stalled_rtsp_source_is_caught_by_the_watchdog_and_reconnected() {
    init();
    let server = rtsp::Server::start(0, &asset("media/bikes.mp4"));
    // 4 s, not less: with the other tests of this binary loading both cores, a first RTSP session
    // took longer than 1.5 s to bring its first frame, and the watchdog's reconnects never got
    // the stream running within the wait below (CI, 2026-11-26).
    let stream = start(
        "hung",
        &format!(
            r#"{{"source": {{"uri": "rtsp://127.0.0.1:{}/bikes", "source-timeout-ms": 4000}},
                 "model": "tiny", "ovinfer": {{"interval": 5}}}}"#,
            server.port
        ),
    );
    wait(&stream, "running", Duration::from_secs(30), |s| {
        s.state == State::Running && s.processed_frames >= 10
    });
    let hung = Instant::now();
    server.stall();
    let lost = wait(&stream, "reconnecting", Duration::from_secs(10), |s| {
        s.state == State::Reconnecting
    });
    let noticed = hung.elapsed();
    let reason = &lost.gaps.recent.last().expect("a gap").reason;
    assert!(reason.starts_with("no frame for "), "{reason}");
    assert!(
        noticed >= Duration::from_millis(3900),
        "noticed after {noticed:?}"
    );
    // The server is fine: a new connection gets a new media, whose data flows.
    let before = lost.processed_frames;
    let back = wait(&stream, "running again", Duration::from_secs(30), |s| {
        s.state == State::Running && s.processed_frames >= before + 10
    });
    eprintln!("stall noticed after {noticed:?}; back: {}", json(&back));
    assert!(
        back.reconnects >= 1 && back.gaps.count >= 1,
        "{}",
        json(&back)
    );
    let gap = &back.gaps.recent[0];
    assert!(gap.duration_ms >= 4000, "from the last frame: {gap:?}");
    assert_eq!(stream.stop().state, State::Stopped);
    server.stop();
}

#[test]
fn realtime_drops_the_frames_inference_cannot_take_and_counts_them() {
    init();
    // 800 frames at 200 fps from a live source (4 s): far more than SSD infers on this machine.
    let stream = start(
        "fast",
        r#"{"source": {"pipeline": "videotestsrc is-live=true num-buffers=800 pattern=ball ! video/x-raw,width=640,height=272,framerate=200/1"},
            "model": "ssd"}"#,
    );
    let s = wait(&stream, "finished", Duration::from_secs(60), |s| {
        s.state.is_final()
    });
    eprintln!("realtime at 200 fps: {}", json(&s));
    assert_eq!(s.state, State::Finished, "{}", json(&s));
    assert_eq!(s.produced_frames, 800);
    assert!(s.dropped_frames > 0, "{}", json(&s));
    // 2 fps at least: the test runs beside the others on 2 cores (seen: 5 fps under a load of 5).
    assert!(
        s.processed_frames >= 8,
        "inference kept working: {}",
        json(&s)
    );
    assert_eq!(s.processed_frames + s.dropped_frames, 800);
    assert_eq!(s.inferred_frames, s.processed_frames);
}

/// A receiver for lvahttpsink: counts the documents, answers 204.
struct Receiver {
    url: String,
    got: Arc<AtomicU64>,
    server: Arc<tiny_http::Server>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    fn start() -> Receiver {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("a receiver"));
        let port = server.server_addr().to_ip().expect("an IP address").port();
        let got = Arc::new(AtomicU64::new(0));
        let (s, g) = (server.clone(), got.clone());
        let thread = std::thread::spawn(move || {
            for mut request in s.incoming_requests() {
                let mut body = String::new();
                let _ = request.as_reader().read_to_string(&mut body);
                if body.starts_with("{\"inferences\":[") {
                    g.fetch_add(1, Ordering::SeqCst);
                }
                let _ = request.respond(tiny_http::Response::empty(204));
            }
        });
        Receiver {
            url: format!("http://127.0.0.1:{port}/events"),
            got,
            server,
            thread: Some(thread),
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn deleting_a_stream_mid_way_flushes_its_outputs() {
    init();
    let dir = scratch("delete");
    let out = dir.join("loop.jsonl");
    let receiver = Receiver::start();
    // A looping file never ends by itself; the tiny model finds something on every frame.
    let stream = start(
        "looping",
        &format!(
            r#"{{"source": {{"uri": "{}", "loop": true}}, "model": "tiny",
                 "outputs": {{"jsonl": {{"path": "{}"}}, "http": {{"location": "{}"}}}}}}"#,
            file_uri(&asset("media/bikes.mp4")),
            out.display(),
            receiver.url
        ),
    );
    let mut events = stream.subscribe();
    wait(&stream, "documents", Duration::from_secs(60), |s| {
        s.documents >= 40
    });
    let s = stream.stop();
    eprintln!("stopped mid-way: {}", json(&s));
    assert_eq!(s.state, State::Stopped);
    assert_eq!(s.error, None, "flushed in time");
    let written = lines(&out);
    assert!(s.documents >= 40);
    assert_eq!(
        written.len() as u64,
        s.documents,
        "every document is in the file"
    );
    let jsonl = s.outputs.jsonl.clone().expect("jsonl");
    assert_eq!((jsonl.written, jsonl.failed), (s.documents, 0));
    let http = s.outputs.sinks.http.clone().expect("http");
    assert_eq!(
        (http.sent, http.failed, http.dropped, http.queued),
        (s.documents, 0, 0, 0)
    );
    assert_eq!(receiver.got.load(Ordering::SeqCst), s.documents);
    assert_eq!(s.produced_frames, s.processed_frames + s.dropped_frames);
    // What the subscriber saw is the file's tail, then the end.
    let mut seen = Vec::new();
    loop {
        match events.try_recv() {
            Ok(d) => seen.push(d.json.to_string()),
            Err(TryRecvError::Closed) => break,
            Err(e) => panic!("{e:?}"),
        }
    }
    assert!(!seen.is_empty() && written.ends_with(&seen));
    assert_eq!(stream.status(), s, "the final status stays");
    assert!(!stream.has_thread());
}

#[test]
fn a_registry_restarts_its_streams_from_its_state_folder() {
    init();
    let state = scratch("state");
    let options = Options {
        state_dir: Some(state.clone()),
        max_streams: 4,
        rtsp_port: 0,
    };
    let looping = format!(
        r#"{{"source": {{"uri": "{}", "loop": true, "realtime": true}}, "model": "tiny"}}"#,
        file_uri(&asset("media/bikes.mp4"))
    );
    let camera = r#"{"source": {"pipeline": "videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=25/1"}, "model": "tiny", "ovinfer": {"interval": 2}}"#;
    {
        let (registry, notes) =
            Registry::open(models(), options.clone(), video_env()).expect("opens");
        assert!(notes.is_empty(), "{notes:?}");
        let (put, _) = registry.put("file", spec(&looping)).expect("created");
        assert_eq!(put, Put::Created);
        registry.put("camera", spec(camera)).expect("created");
        let stream = registry.stream("camera").expect("camera");
        wait(&stream, "camera runs", Duration::from_secs(30), |s| {
            s.state == State::Running
        });
        registry.shutdown();
        assert_eq!(stream.status().state, State::Stopped);
    }
    let mut files: Vec<String> = std::fs::read_dir(&state)
        .expect("state folder")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["camera.json", "file.json"]);
    for file in &files {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(state.join(file))
            .expect("saved")
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "{file}: a definition may hold credentials"
        );
    }

    // The server again: both come back and run.
    let (registry, notes) = Registry::open(models(), options, video_env()).expect("reopens");
    assert!(notes.is_empty(), "{notes:?}");
    let ids: Vec<String> = registry.list().into_iter().map(|i| i.id).collect();
    assert_eq!(ids, ["camera", "file"]);
    for id in ["camera", "file"] {
        let stream = registry.stream(id).expect("restarted");
        wait(
            &stream,
            "running after the restart",
            Duration::from_secs(30),
            |s| s.state == State::Running && s.processed_frames > 5,
        );
    }
    assert_eq!(
        registry.info("camera").expect("camera").spec,
        spec(camera),
        "the definition as given"
    );
    let deleted = registry.delete("camera").expect("deleted");
    assert_eq!(deleted.status.state, State::Stopped);
    assert!(
        !state.join("camera.json").exists(),
        "its definition is gone"
    );
    assert!(state.join("file.json").exists());
    assert_eq!(
        registry.info("camera").map(|i| i.status.state),
        Some(State::Stopped)
    );
    assert!(registry.stream("camera").is_none());
    assert_eq!(registry.delete("camera").unwrap_err(), Refused::NotFound);
}

#[test]
fn bad_definitions_are_refused_with_their_reasons() {
    init();
    let (registry, _) = Registry::open(models(), Options::default(), video_env()).expect("opens");
    let bikes = file_uri(&asset("media/bikes.mp4"));
    let refused = |json: &str| -> String {
        match StreamSpec::from_json(json.as_bytes()) {
            Err(e) => e.to_string(),
            Ok(spec) => registry.put("bad", spec).expect_err("refused").to_string(),
        }
    };
    let cases = [
        (
            r#"{"source": {"uri": "BIKES"}, "model": "ssd", "ovinfer": {"treshold": 0.3}}"#,
            "ovinfer has no property 'treshold' to set; it has model, device, labels, threshold",
        ),
        (
            r#"{"source": {"uri": "BIKES"}, "model": "ssd", "ovinfer": {"threshold": 2}}"#,
            "ovinfer.threshold: '2' is not a valid value for ovinfer's threshold",
        ),
        (
            r#"{"source": {"uri": "BIKES"}, "model": "ssd", "ovinfer": {"interval": [1]}}"#,
            "ovinfer.interval must be a string, number or boolean",
        ),
        (
            r#"{"source": {"uri": "BIKES"}, "model": "ssd", "ovinfer": {"model": "/x.xml"}}"#,
            "ovinfer.model cannot be set per stream",
        ),
        (
            r#"{"source": {"uri": "BIKES"}, "model": "ssd", "ovinfer": {"qos": true}}"#,
            "ovinfer has no property 'qos' to set",
        ),
        (
            r#"{"source": {"uri": "BIKES"}, "model": "yolo"}"#,
            "model \"yolo\" is not configured; the models are: ssd, tiny",
        ),
        (
            r#"{"source": {"uri": "smb://nas/v.mp4"}, "model": "ssd"}"#,
            "source.uri: scheme 'smb' is not supported",
        ),
        (
            r#"{"source": {"pipeline": "nosuchsrc ! videoconvert"}, "model": "ssd"}"#,
            "source.pipeline: 'nosuchsrc ! videoconvert' does not parse: no element \"nosuchsrc\"",
        ),
        (
            r#"{"source": {"pipeline": "videotestsrc ! fakesink"}, "model": "ssd"}"#,
            "holds the sink fakesink0: a source fragment may only produce video",
        ),
        (
            r#"{"source": {"pipeline": "videotestsrc ! tee name=t ! queue ! filesink location=/tmp/x t. ! queue"}, "model": "ssd"}"#,
            "holds the sink filesink",
        ),
        (
            r#"{"source": {"pipeline": "videotestsrc ! videoconvert name=a videotestsrc ! videoconvert name=b"}, "model": "ssd"}"#,
            "has more than one unlinked source pad",
        ),
        (
            r#"{"source": {"pipeline": "videotestsrc nosuch=1"}, "model": "ssd"}"#,
            "does not parse: no property \"nosuch\" in element",
        ),
        (
            r#"{"source": {"uri": "BIKES"}, "model": "ssd", "outputs": {"http": {"location": "ftp://x/y"}}}"#,
            "outputs.http.location 'ftp://x/y' must be an http:// or https:// URL",
        ),
        (
            r#"{"source": {"uri": "BIKES"}, "model": "ssd", "outputs": {"http": {"location": "http://h/", "max-queue": 0}}}"#,
            "outputs.http.max-queue: '0' is not a valid value for lvahttpsink's max-queue",
        ),
        (
            r#"{"source": {"uri": "BIKES"}, "model": "ssd", "outputs": {"http": {"url": "http://h/"}}}"#,
            "outputs.http needs a \"location\"",
        ),
        (
            r#"{"source": {"uri": "BIKES"}, "model": "ssd", "outputs": {"jsonl": {"path": "out.jsonl"}}}"#,
            "outputs.jsonl.path: out.jsonl is not an absolute path",
        ),
        (
            r#"{"source": {"uri": "BIKES"}, "model": "ssd", "outputs": {"jsonl": {"path": "/x.jsonl", "mode": "w"}}}"#,
            "unknown field `mode`, expected `path`",
        ),
        (
            r#"{"source": {"uri": "BIKES"}, "model": "ssd", "ovinfer": {"labels": "/no/labels.txt"}}"#,
            "the stream cannot start: ovinfer: labels file /no/labels.txt cannot be read",
        ),
        (
            r#"{"source": {"uri": "BIKES"}, "model": "ssd", "track": {"tracking-type": "kalman"}}"#,
            "track.tracking-type: 'kalman' is not a valid value for ovtrack's tracking-type",
        ),
        (
            r#"{"source": {"uri": "BIKES"}, "model": "ssd", "track": {"max-ages": 3}}"#,
            "track.max-ages: ovtrack has no property 'max-ages' to set; it has tracking-type",
        ),
        (
            r#"{"source": {"uri": "BIKES"}, "model": "ssd", "track": {"tracks-created": 3}}"#,
            "track.tracks-created: ovtrack's 'tracks-created' is read-only",
        ),
        (
            r#"{"source": {"uri": "BIKES"}, "model": "ssd", "track": {"low-threshold": 0.6, "high-threshold": 0.5}}"#,
            "ovtrack: low-threshold (0.6) is above high-threshold (0.5)",
        ),
        (
            r#"{"source": {"uri": "BIKES"}, "model": "ssd", "analytics": {"rules": {"lines": [{"name": "door", "points": [[0.5, 0], [0.5, 1]]}]}}}"#,
            "analytics needs tracked objects (ovanalytics follows objects by their tracking id): add \"track\": true",
        ),
        (
            r#"{"source": {"uri": "BIKES"}, "model": "ssd", "track": false, "analytics": {"rules": {"lines": [{"name": "door", "points": [[0.5, 0], [0.5, 1]]}]}}}"#,
            "add \"track\": true",
        ),
        (
            r#"{"source": {"uri": "BIKES"}, "model": "ssd", "track": true, "analytics": {"rules": {"lines": [{"name": "door", "points": [[0.5, 0]]}]}}}"#,
            "analytics.rules: line \"door\": has 1 point; a line needs exactly 2 points",
        ),
        (
            r#"{"source": {"uri": "BIKES"}, "model": "ssd", "track": true, "analytics": {"rules": "{\"zones\": [{\"name\": \"bow\", \"polygon\": [[0,0],[1,1],[1,0],[0,1]]}]}"}}"#,
            "analytics.rules: zone \"bow\": its polygon intersects itself",
        ),
        (
            r#"{"source": {"uri": "BIKES"}, "model": "ssd", "track": true, "analytics": {"rules": [1]}}"#,
            "analytics.rules: the rules must be a JSON object",
        ),
        (
            r#"{"source": {"uri": "BIKES"}, "model": "ssd", "track": true, "analytics": {"rules-file": "rules.json"}}"#,
            "analytics.rules-file rules.json is not an absolute path",
        ),
        (
            r#"{"source": {"uri": "BIKES"}, "model": "ssd", "track": true, "analytics": {"rules-file": "/no/rules.json"}}"#,
            "analytics.rules-file: cannot read the rules file /no/rules.json",
        ),
        (
            r#"{"source": {"uri": "BIKES"}, "model": "ssd", "track": true, "analytics": {"rules": {"lines": []}, "rules-file": "/no/rules.json"}}"#,
            "analytics: give either \"rules\" (the rules' JSON) or \"rules-file\"",
        ),
        (
            r#"{"source": {"uri": "BIKES"}, "model": "ssd", "track": true, "analytics": {"dwell-interval": 2}}"#,
            "analytics needs \"rules\", the lines and zones",
        ),
        (
            r#"{"source": {"uri": "BIKES"}, "model": "ssd", "track": true, "analytics": {"rules": {"lines": [{"name": "door", "points": [[0.5, 0], [0.5, 1]]}]}, "crossings": 1}}"#,
            "analytics.crossings: ovanalytics's 'crossings' is read-only",
        ),
        (
            r#"{"source": {"uri": "BIKES"}, "model": "ssd", "outputs": {"mqtt": {"port": 1883}}}"#,
            "outputs.mqtt needs a \"host\" (the MQTT broker's name or address)",
        ),
        (
            r#"{"source": {"uri": "BIKES"}, "model": "ssd", "outputs": {"mqtt": {"host": ""}}}"#,
            "outputs.mqtt needs a \"host\"",
        ),
        (
            r#"{"source": {"uri": "BIKES"}, "model": "ssd", "outputs": {"mqtt": {"host": "h", "qso": 1}}}"#,
            "outputs.mqtt.qso: lvamqttsink has no property 'qso' to set; it has host, port, topic",
        ),
        (
            r#"{"source": {"uri": "BIKES"}, "model": "ssd", "outputs": {"mqtt": {"host": "h", "sent": 0}}}"#,
            "outputs.mqtt.sent: lvamqttsink's 'sent' is read-only",
        ),
        (
            r#"{"source": {"uri": "BIKES"}, "model": "ssd", "outputs": {"mqtt": {"host": "h", "queue-full": "wait"}}}"#,
            "outputs.mqtt.queue-full: 'wait' is not a valid value for lvamqttsink's queue-full",
        ),
        (
            r#"{"source": {"uri": "BIKES"}, "model": "ssd", "outputs": {"mqtt": {"host": "h", "spool-dir": "spool"}}}"#,
            "outputs.mqtt.spool-dir 'spool' is not an absolute path",
        ),
        (
            r#"{"source": {"uri": "BIKES"}, "model": "ssd", "outputs": {"http": {"location": "http://h/", "spool-dir": "spool"}}}"#,
            "outputs.http.spool-dir 'spool' is not an absolute path",
        ),
        (
            r#"{"source": {"uri": "BIKES"}, "model": "ssd", "outputs": {"mqtt": {"host": "h", "retain": [true]}}}"#,
            "outputs.mqtt.retain must be a string, number or boolean",
        ),
        (
            r#"{"source": {"uri": "BIKES"}, "model": "ssd", "outputs": {"mqtt": {"host": "h", "qos": 3}}}"#,
            "the stream cannot start: mqtt: qos 3",
        ),
        (
            r#"{"source": {"uri": "BIKES"}, "model": "ssd", "outputs": {"mqtt": {"host": "h", "topic": "lva/#"}}}"#,
            "the stream cannot start: mqtt: topic 'lva/#' holds '+', '#' or NUL",
        ),
        (
            r#"{"source": {"uri": "BIKES"}, "model": "ssd", "outputs": {"kafka": {"topic": "lva"}}}"#,
            "outputs.kafka needs \"brokers\" (the Kafka bootstrap servers, host:port[,host:port...])",
        ),
        (
            r#"{"source": {"uri": "BIKES"}, "model": "ssd", "outputs": {"kafka": {"brokers": "127.0.0.1:9092"}}}"#,
            "outputs.kafka needs a \"topic\" (the Kafka topic the documents go to)",
        ),
        (
            r#"{"source": {"uri": "BIKES"}, "model": "ssd", "outputs": {"kafka": {"brokers": "b:9092", "topic": "t", "acks": "some"}}}"#,
            "outputs.kafka.acks: 'some' is not a valid value for lvakafkasink's acks",
        ),
        (
            r#"{"source": {"uri": "BIKES"}, "model": "ssd", "outputs": {"kafka": {"brokers": "b:9092", "topic": "t", "spool-dir": "./spool"}}}"#,
            "outputs.kafka.spool-dir './spool' is not an absolute path",
        ),
        (
            r#"{"source": {"uri": "BIKES"}, "model": "ssd", "outputs": {"kafka": {"brokers": "b:9092", "topic": "t", "properties": {"linger.ms": [20]}}}}"#,
            "outputs.kafka.properties: linger.ms must be a string, number or boolean",
        ),
        (
            r#"{"source": {"uri": "BIKES"}, "model": "ssd", "outputs": {"kafka": {"brokers": "b:9092", "topic": "t", "properties": "linger.ms=20,"}}}"#,
            "outputs.kafka.properties: 'linger.ms=20,' is not a valid value for lvakafkasink's properties",
        ),
        (
            r#"{"source": {"uri": "BIKES"}, "model": "ssd", "outputs": {"kafka": {"brokers": "b:9092", "topic": "t", "properties": {"no.such.setting": 1}}}}"#,
            "the stream cannot start: kafka: ",
        ),
    ];
    for (json, reason) in cases {
        let json = json.replace("BIKES", &bikes);
        let got = refused(&json);
        assert!(
            got.contains(reason),
            "{json}\n  gave: {got}\n  expected: {reason}"
        );
    }
    // Several problems: every reason.
    let all = refused(
        r#"{"source": {"uri": "rtsp://h/x", "loop": true}, "model": "nope", "ovinfer": {"threshold": -1}}"#,
    );
    assert!(
        all.contains("source.loop") && all.contains("\"nope\""),
        "{all}"
    );
    assert!(matches!(
        registry.put(
            "a/b",
            spec(&format!(
                r#"{{"source": {{"uri": "{bikes}"}}, "model": "ssd"}}"#
            ))
        ),
        Err(Refused::BadId(_))
    ));
    assert!(registry.list().is_empty(), "nothing was created");
}

#[test]
fn track_and_analytics_check_into_element_settings() {
    init();
    let bikes = file_uri(&asset("media/bikes.mp4"));
    let checked = spec(&format!(
        r#"{{"source": {{"uri": "{bikes}"}}, "model": "ssd", "ovinfer": {{"interval": 3}},
            "track": {{"tracking-type": "iou", "max-age": 20}},
            "analytics": {{"rules": {{"lines": [{{"name": "door", "points": [[0.5, 0], [0.5, 1]]}}]}},
                          "dwell-interval": 2}}}}"#
    ))
    .check(&model_map())
    .expect("the definition checks");
    let pairs = |p: &[(&str, &str)]| -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(
        checked.track,
        Some(pairs(&[
            ("max-age", "20"),
            ("tracking-type", "iou"),
            ("predict-on-empty", "true"),
        ]))
    );
    // The rules object is handed to the element as its JSON text.
    assert_eq!(
        checked.analytics,
        Some(pairs(&[
            ("dwell-interval", "2"),
            (
                "rules",
                r#"{"lines":[{"name":"door","points":[[0.5,0],[0.5,1]]}]}"#
            ),
        ]))
    );
    // The same rules from a file; a stream told not to predict keeps that.
    let dir = scratch("rules");
    let file = dir.join("rules.json");
    std::fs::write(
        &file,
        r#"{"zones": [{"name": "lot", "polygon": [[0, 0], [1, 0], [1, 1]]}]}"#,
    )
    .expect("the rules file");
    let checked = spec(&format!(
        r#"{{"source": {{"uri": "{bikes}"}}, "model": "ssd", "ovinfer": {{"interval": 3}},
            "track": {{"predict-on-empty": false}},
            "analytics": {{"rules-file": "{}"}}}}"#,
        file.display()
    ))
    .check(&model_map())
    .expect("the definition checks");
    assert_eq!(checked.track, Some(pairs(&[("predict-on-empty", "false")])));
    assert_eq!(
        checked.analytics,
        Some(pairs(&[("rules-file", &file.display().to_string())]))
    );
}

#[test]
fn max_streams_is_enforced_and_a_replace_is_not_a_new_stream() {
    init();
    let (registry, _) = Registry::open(
        models(),
        Options {
            state_dir: None,
            max_streams: 1,
            rtsp_port: 0,
        },
        video_env(),
    )
    .expect("opens");
    let live = spec(
        r#"{"source": {"pipeline": "videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=10/1"}, "model": "tiny"}"#,
    );
    assert_eq!(
        registry.put("one", live.clone()).expect("first").0,
        Put::Created
    );
    assert_eq!(
        registry.put("two", live.clone()).unwrap_err(),
        Refused::Full { max: 1 }
    );
    let (put, info) = registry.put("one", live.clone()).expect("replaced");
    assert_eq!(put, Put::Replaced);
    assert_ne!(info.status.state, State::Stopped, "the new one");
    registry.delete("one").expect("deleted");
    assert_eq!(
        registry.put("two", live).expect("room again").0,
        Put::Created
    );
}

#[test]
fn a_looping_source_with_changing_caps_keeps_one_timeline() {
    init();
    // Each run: 5 frames at 320x240, then 5 at 640x480; started again at its end.
    let stream = start(
        "changing",
        r#"{"source": {"pipeline": "concat name=c ! videoconvert videotestsrc num-buffers=5 ! video/x-raw,width=320,height=240,framerate=25/1 ! c. videotestsrc num-buffers=5 ! video/x-raw,width=640,height=480,framerate=25/1 ! c.",
                       "loop": true, "realtime": false},
            "model": "tiny"}"#,
    );
    let mut events = stream.subscribe();
    wait(&stream, "three loops", Duration::from_secs(60), |s| {
        s.loops >= 3
    });
    let s = stream.stop();
    eprintln!("looping with caps changes: {}", json(&s));
    assert_eq!(s.state, State::Stopped);
    assert!(s.processed_frames >= 30, "{}", json(&s));
    assert_eq!(s.produced_frames, s.processed_frames + s.dropped_frames);
    assert_eq!(
        s.documents, s.processed_frames,
        "the tiny model finds something on every frame"
    );
    let mut pts = Vec::new();
    while let Ok(d) = events.try_recv() {
        pts.push(d.pts_ns.expect("pts"));
    }
    assert!(pts.len() >= 30);
    assert!(
        pts.windows(2).all(|w| w[1] > w[0]),
        "timestamps go on across loops: {pts:?}"
    );
    // 25 fps: 40 ms apart, across loops too.
    assert!(pts.windows(2).all(|w| w[1] - w[0] == 40_000_000), "{pts:?}");
}

#[test]
fn the_registry_can_be_shared_by_an_async_server() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Registry>();
    send_sync::<Stream>();
    send_sync::<super::results::Document>();
}

#[test]
fn credentials_are_hidden_when_a_definition_is_shown() {
    init();
    let s = spec(
        r#"{"source": {"uri": "rtsp://admin:secret@cam/1"}, "model": "ssd",
            "outputs": {"http": {"location": "https://u:p@h/x", "bearer-token": "t0k"},
                        "mqtt": {"host": "h", "username": "cam", "password": "mqtt-pw"},
                        "kafka": {"brokers": "b:9092", "topic": "t",
                                  "properties": "kafka,sasl.username=svc,sasl.password=\"k,pw\",ssl.key.password=kp,linger.ms=5"}}}"#,
    );
    let redacted = s.redacted();
    let shown = serde_json::to_string(&redacted).unwrap();
    for secret in ["secret", "admin", "u:p", "t0k", "mqtt-pw", "k,pw", "=kp"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(shown.contains("rtsp://***@cam/1"), "{shown}");
    let outputs = serde_json::to_value(&redacted.outputs).unwrap();
    assert_eq!(outputs["mqtt"]["password"], "***");
    assert_eq!(outputs["mqtt"]["username"], "cam", "not a secret");
    // The structure text still reads, with the secrets' values replaced and the rest kept.
    let properties: gst::Structure = outputs["kafka"]["properties"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("{outputs}"));
    assert_eq!(
        properties.get::<String>("sasl.password").ok().as_deref(),
        Some("***")
    );
    assert_eq!(
        properties.get::<String>("ssl.key.password").ok().as_deref(),
        Some("***")
    );
    assert_eq!(
        properties.get::<String>("sasl.username").ok().as_deref(),
        Some("svc")
    );
    assert_eq!(properties.get::<i32>("linger.ms").ok(), Some(5));
    assert_eq!(
        s.outputs.mqtt.as_ref().map(|m| m["password"].clone()),
        Some("mqtt-pw".into()),
        "the definition itself keeps them (it is saved as given)"
    );

    // Given as an object: the secret keys' values hidden; a text that does not read, hidden whole.
    let s = spec(
        r#"{"source": {"uri": "file:///a"}, "model": "ssd",
            "outputs": {"kafka": {"brokers": "b:9092", "topic": "t",
                                  "properties": {"sasl.password": "pw1", "sasl.oauthbearer.client.secret": "cs", "acks.extra": 1}}}}"#,
    );
    let outputs = serde_json::to_value(s.redacted().outputs).unwrap();
    assert_eq!(
        outputs["kafka"]["properties"],
        serde_json::json!({"sasl.password": "***", "sasl.oauthbearer.client.secret": "***", "acks.extra": 1})
    );
    let s = spec(
        r#"{"source": {"uri": "file:///a"}, "model": "ssd",
            "outputs": {"kafka": {"brokers": "b:9092", "topic": "t", "properties": "sasl.password=pw1,,"}}}"#,
    );
    let outputs = serde_json::to_value(s.redacted().outputs).unwrap();
    assert_eq!(outputs["kafka"]["properties"], "***");

    // lvahttpsink's extra headers: credentials hidden, the other headers kept.
    let s = spec(
        r#"{"source": {"uri": "file:///a"}, "model": "ssd",
            "outputs": {"http": {"location": "http://h/x",
                                 "extra-headers": "headers, Authorization=\"Basic dTpw\", x-api-key=k3y, x-camera=door"}}}"#,
    );
    let outputs = serde_json::to_value(s.redacted().outputs).unwrap();
    let headers: gst::Structure = outputs["http"]["extra-headers"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("{outputs}"));
    assert_eq!(
        headers.get::<String>("Authorization").ok().as_deref(),
        Some("***")
    );
    assert_eq!(
        headers.get::<String>("x-api-key").ok().as_deref(),
        Some("***")
    );
    assert_eq!(
        headers.get::<String>("x-camera").ok().as_deref(),
        Some("door")
    );
}

#[test]
fn mqtt_and_kafka_outputs_check_into_element_settings_with_the_streams_defaults() {
    init();
    let bikes = file_uri(&asset("media/bikes.mp4"));
    let pairs = |p: &[(&str, &str)]| -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let check = |outputs: &str| {
        spec(&format!(
            r#"{{"source": {{"uri": "{bikes}"}}, "model": "tiny", "outputs": {outputs}}}"#
        ))
        .check(&model_map())
        .unwrap_or_else(|e| panic!("{outputs}: {e}"))
    };
    // Nothing to flush: the margin only.
    assert_eq!(check("{}").stop_timeout(), Duration::from_secs(5));

    let checked = check(
        r#"{"mqtt": {"host": "127.0.0.1", "qos": 2},
            "kafka": {"brokers": "127.0.0.1:9092", "topic": "lva.{stream}", "flush-timeout": 12000,
                      "properties": {"linger.ms": 20, "security.protocol": "plaintext"}},
            "http": {"location": "http://127.0.0.1:1/x", "flush-timeout": 3000}}"#,
    );
    let kinds: Vec<Sink> = checked.sinks.iter().map(|s| s.sink).collect();
    assert_eq!(kinds, Sink::ALL, "http, mqtt, kafka");
    let [http, mqtt, kafka] = &checked.sinks[..] else {
        panic!("{:?}", checked.sinks)
    };
    // The stream's defaults first, then what was given (a given one is not defaulted).
    assert_eq!(
        mqtt.properties("door"),
        pairs(&[
            ("stream-id", "door"),
            ("topic", "lva/{stream}"),
            ("host", "127.0.0.1"),
            ("qos", "2"),
        ])
    );
    assert_eq!(http.properties("door"), http.properties);
    let set = kafka.properties("door");
    assert_eq!(set[0], ("stream-id".to_string(), "door".to_string()));
    // The librdkafka settings object became the element's structure text.
    let (_, text) = set
        .iter()
        .find(|(k, _)| k == "properties")
        .expect("properties");
    let structure: gst::Structure = text.parse().expect("a structure");
    assert_eq!(
        structure.get::<String>("linger.ms").ok().as_deref(),
        Some("20")
    );
    assert_eq!(
        structure.get::<String>("security.protocol").ok().as_deref(),
        Some("plaintext")
    );
    // flush-timeouts: given (kafka 12 s, http 3 s) or the element's default (mqtt 5 s); a stop
    // waits for the longest.
    let flush: Vec<u64> = checked
        .sinks
        .iter()
        .map(|s| s.flush_timeout.as_millis() as u64)
        .collect();
    assert_eq!(flush, [3000, 5000, 12000]);
    assert_eq!(checked.stop_timeout(), Duration::from_secs(17));

    let checked = check(
        r#"{"mqtt": {"host": "h", "stream-id": "cam-7", "topic": "site/{stream}/lva", "flush-timeout": 0}}"#,
    );
    assert_eq!(
        checked.sinks[0].properties("door"),
        pairs(&[
            ("flush-timeout", "0"),
            ("host", "h"),
            ("stream-id", "cam-7"),
            ("topic", "site/{stream}/lva"),
        ])
    );
    assert_eq!(checked.stop_timeout(), Duration::from_secs(5));
    let spool = scratch("spool-dir");
    let checked = check(&format!(
        r#"{{"kafka": {{"brokers": "b:9092", "topic": "t", "spool-dir": "{}"}}}}"#,
        spool.display()
    ));
    assert_eq!(checked.sinks[0].sink, Sink::Kafka);
}

/// What a spooling output reports: (sent, dropped, undelivered, recovered, queued).
type SpoolCounters = (u64, u64, u64, u64, u64);

/// An output (`kind`: mqtt or http) whose broker or receiver is not there, with a spool: the
/// spool is one stream's (a second stream on the folder is refused with the element's reason),
/// a stop keeps what it could not deliver there (undelivered, not dropped) within the short
/// `flush-timeout`, and the stream that replaces it finds those documents to send first
/// (recovered).
fn a_spool_keeps_what_a_stop_left_for_the_next_start(kind: &str, output: &str) {
    init();
    let (registry, _) = Registry::open(models(), Options::default(), video_env()).expect("opens");
    let spool = scratch("stream-spool").join(kind);
    let nobody = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let output = output.replace("NOBODY", &nobody.to_string());
    let definition = spec(&format!(
        r#"{{"source": {{"pipeline": "videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=10/1"}},
            "model": "tiny",
            "outputs": {{"{kind}": {{{output}, "spool-dir": "{}",
                                   "flush-timeout": 200, "retry-delay": 100}}}}}}"#,
        spool.display()
    ));
    let counters = |s: &Status| -> SpoolCounters {
        let sinks = &s.outputs.sinks;
        match kind {
            "http" => sinks
                .http
                .as_ref()
                .map(|h| (h.sent, h.dropped, h.undelivered, h.recovered, h.queued)),
            _ => sinks
                .mqtt
                .as_ref()
                .map(|m| (m.sent, m.dropped, m.undelivered, m.recovered, m.queued)),
        }
        .unwrap_or_else(|| panic!("no {kind} status"))
    };
    registry.put("a", definition.clone()).expect("created");
    let first = registry.stream("a").expect("a");
    wait(&first, "documents waiting", Duration::from_secs(30), |s| {
        counters(s).4 >= 5
    });
    let refused = registry
        .put("b", definition.clone())
        .expect_err("the folder is taken")
        .to_string();
    assert!(
        refused.contains(&format!("the stream cannot start: {kind}: spool-dir"))
            && refused.contains("is in use by another element"),
        "{refused}"
    );

    let t0 = Instant::now();
    let (put, _) = registry.put("a", definition).expect("replaced");
    assert_eq!(put, Put::Replaced);
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    let old = first.status();
    assert_eq!(old.state, State::Stopped);
    assert_eq!(old.error, None, "flushed (into the spool) in time");
    let (sent, dropped, undelivered, _, _) = counters(&old);
    eprintln!("{kind} stopped with {:?}", old.outputs.sinks);
    assert_eq!((sent, dropped), (0, 0), "nothing lost");
    assert_eq!(undelivered, old.documents, "kept in the spool");
    if kind == "mqtt" {
        assert!(
            old.outputs
                .sinks
                .mqtt
                .as_ref()
                .is_some_and(|m| m.disconnects >= 1)
        );
    }
    let second = registry.stream("a").expect("the new a");
    let recovered = counters(&second.status()).3;
    assert_eq!(recovered, undelivered, "found in the spool at start");
    registry.delete("a").expect("deleted");
}

#[test]
fn an_mqtt_spool_keeps_what_a_stop_left_for_the_next_start() {
    a_spool_keeps_what_a_stop_left_for_the_next_start(
        "mqtt",
        r#""host": "127.0.0.1", "port": NOBODY"#,
    );
}

#[test]
fn an_http_spool_keeps_what_a_stop_left_for_the_next_start() {
    a_spool_keeps_what_a_stop_left_for_the_next_start(
        "http",
        r#""location": "http://127.0.0.1:NOBODY/events""#,
    );
}

/// VmRSS and Threads of this process.
fn process() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("Threads:"))
}

#[test]
fn a_hundred_streams_created_and_deleted_leave_no_thread_and_no_memory_behind() {
    let exe = std::env::current_exe().expect("the test binary");
    let out = std::process::Command::new(exe)
        .args(["--ignored", "--exact", "--nocapture"])
        .arg("streams::tests::a_hundred_streams_in_a_process_of_their_own")
        .output()
        .expect("the test binary runs");
    let text = String::from_utf8_lossy(&out.stderr);
    eprint!("{text}");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "{}{text}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
#[ignore = "run by a_hundred_streams_created_and_deleted_..., in a process of its own"]
fn a_hundred_streams_in_a_process_of_their_own() {
    init();
    let dir = scratch("memory");
    let ten = dir.join("ten.mp4");
    let cut = gst::parse::launch(&format!(
        "filesrc location={} ! qtdemux ! h264parse ! identity eos-after=10 ! mp4mux ! filesink location={}",
        asset("media/bikes.mp4").display(),
        ten.display()
    ))
    .expect("a cutting pipeline");
    use gst::prelude::*;
    cut.set_state(gst::State::Playing).expect("cut");
    let bus = cut.bus().expect("bus");
    bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(30),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    cut.set_state(gst::State::Null).expect("cut done");

    let (registry, _) = Registry::open(models(), Options::default(), video_env()).expect("opens");
    let definition = spec(&format!(
        r#"{{"source": {{"uri": "{}"}}, "model": "tiny",
             "outputs": {{"jsonl": {{"path": "{}"}}}}}}"#,
        file_uri(&ten),
        dir.join("ten.jsonl").display()
    ));
    let one = |i: usize| {
        let id = format!("s{i}");
        registry.put(&id, definition.clone()).expect("created");
        let stream = registry.stream(&id).expect("stream");
        let s = wait(&stream, "finished", Duration::from_secs(30), |s| {
            s.state.is_final()
        });
        assert_eq!(s.state, State::Finished, "{}", json(&s));
        assert!(s.processed_frames >= 9, "{}", json(&s));
        registry.delete(&id).expect("deleted");
    };
    // RSS after each stream is deleted. It moves by a few MB from one stream to the next
    // (the allocator keeps freed memory in the heap or gives it back), so the figures compared
    // are medians over ten streams: around the 10th and the 100th.
    let (rss0, threads0) = process();
    let mut after = Vec::new();
    let mut threads = Vec::new();
    for i in 0..100 {
        one(i);
        let (rss, t) = process();
        after.push(rss);
        threads.push(t);
    }
    let median = |range: std::ops::Range<usize>| {
        let mut v = after[range].to_vec();
        v.sort_unstable();
        v[v.len() / 2]
    };
    let (rss10, rss100) = (median(5..15), median(90..100));
    let (low, high) = (
        after[10..].iter().min().copied().unwrap_or(0),
        after[10..].iter().max().copied().unwrap_or(0),
    );
    eprintln!(
        "RSS: {rss0} kB before, {} kB after 10 streams and {} kB after 100 (median around the 10th \
         {rss10} kB, around the 100th {rss100} kB: {:+.1}%; from the 11th on between {low} and \
         {high} kB); threads: {threads0} before, {} after 10, {} after 100",
        after[9],
        after[99],
        (rss100 as f64 - rss10 as f64) * 100.0 / rss10 as f64,
        threads[9],
        threads[99]
    );
    let (threads10, threads100) = (threads[9], threads[99]);
    assert!(registry.list().is_empty());
    assert!(
        threads100 <= threads10,
        "threads grew from {threads10} to {threads100}"
    );
    let names: Vec<String> = std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .filter(|n| n.starts_with("st-"))
        .collect();
    assert!(names.is_empty(), "stream threads left: {names:?}");
    // The issue's figure: after 100 within 5% of after the first 10.
    assert!(
        rss100 as f64 <= rss10 as f64 * 1.05,
        "RSS grew over 5% from {rss10} kB to {rss100} kB"
    );
}
