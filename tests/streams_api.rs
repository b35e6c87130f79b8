//! The streams API of `lva-server` over real HTTP on 127.0.0.1: the real binary, real models
//! (models/), real media (media/bikes.mp4), a real RTSP server (gst-rtsp-server) started here,
//! and curl, a third-party client, for every request (server-sent events included).

mod common;
#[path = "common/rtsp.rs"]
mod rtsp;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use gst::prelude::*;
use serde_json::{Value, json};

/// A fresh folder under target/test-scratch.
fn scratch(name: &str) -> PathBuf {
    common::reference::scratch(&format!("streams-api-{name}"))
}

/// `ssd`: SSD-MobileNet-v2 COCO as examples/lva-server.json has it (bikes.mp4: 123 frames with
/// a detection at 0.5); `tiny`: the tiny test model, fast, finding something on every frame.
fn models() -> Value {
    json!({
        "ssd": {"model": common::ssd_model(), "labels": common::ssd_labels(), "decoder": "ssd",
                "threshold": 0.5, "workers": 1},
        "tiny": {"model": common::tiny("tiny_ssd.onnx"), "threshold": 0.0, "workers": 1},
    })
}

fn bikes_uri() -> String {
    format!("file://{}", common::asset("media/bikes.mp4"))
}

/// What curl got.
#[derive(Debug)]
struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }

    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// A running `lva-server` with its configuration folder; killed when dropped.
struct Server {
    started: common::server::Started,
    url: String,
    config: PathBuf,
    /// An `Authorization` value sent with every request.
    auth: Option<String>,
}

impl Server {
    /// Writes `config` as `dir/lva-server.json` and starts the server on it.
    fn start(dir: &Path, config: &Value) -> Server {
        let path = dir.join("lva-server.json");
        std::fs::write(&path, config.to_string()).expect("config written");
        Server::start_with(&path)
    }

    fn start_with(config: &Path) -> Server {
        let started = common::server::start(config, &[]);
        Server {
            url: started.url.clone(),
            started,
            config: config.to_path_buf(),
            auth: None,
        }
    }

    fn log_text(&self) -> String {
        self.started.log_text()
    }

    /// curl on `path` with `args`, the body from `body` when given.
    fn curl(&self, args: &[&str], path: &str, body: Option<&str>) -> Reply {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "-i", "--max-time", "60"]);
        if let Some(auth) = &self.auth {
            cmd.args(["-H", &format!("Authorization: {auth}")]);
        }
        if body.is_some() {
            cmd.args([
                "--data-binary",
                "@-",
                "-H",
                "Content-Type: application/json",
            ]);
        }
        let mut child = cmd
            .args(args)
            .arg(format!("{}{path}", self.url))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("curl runs");
        let mut stdin = child.stdin.take().expect("stdin");
        if let Some(body) = body {
            stdin.write_all(body.as_bytes()).expect("the body to curl");
        }
        drop(stdin);
        let out = child.wait_with_output().expect("curl ends");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "curl {args:?} {path}: {}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Interim answers (100 Continue) first, then the answer.
        let mut rest = text.as_str();
        loop {
            let (head, body) = rest.split_once("\r\n\r\n").unwrap_or((rest, ""));
            let status = head
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("no status line: {text}"));
            if status == 100 {
                rest = body;
                continue;
            }
            return Reply {
                status,
                head: head.to_string(),
                body: body.to_string(),
            };
        }
    }

    fn get(&self, path: &str) -> Reply {
        self.curl(&[], path, None)
    }

    fn put(&self, id: &str, definition: &str) -> Reply {
        self.curl(&["-X", "PUT"], &format!("/streams/{id}"), Some(definition))
    }

    fn delete(&self, id: &str) -> Reply {
        self.curl(&["-X", "DELETE"], &format!("/streams/{id}"), None)
    }

    /// `GET /streams/{id}`'s status, polled until `cond` holds.
    fn wait(
        &self,
        id: &str,
        what: &str,
        timeout: Duration,
        cond: impl Fn(&Value) -> bool,
    ) -> Value {
        let t0 = Instant::now();
        loop {
            let reply = self.get(&format!("/streams/{id}"));
            assert_eq!(reply.status, 200, "{reply:?}");
            let status = reply.json()["status"].clone();
            if cond(&status) {
                return status;
            }
            assert!(
                t0.elapsed() < timeout,
                "{id}: {what}: not within {timeout:?}; status: {status:#}\nlog:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Server-sent events of `path`, read by `curl -sN`.
    fn events(&self, path: &str) -> Events {
        let mut cmd = Command::new("curl");
        cmd.args(["-sN", "-H", "Accept: text/event-stream"]);
        if let Some(auth) = &self.auth {
            cmd.args(["-H", &format!("Authorization: {auth}")]);
        }
        let mut child = cmd
            .arg(format!("{}{path}", self.url))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("curl runs");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut event = SseEvent::default();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.is_empty() {
                    if tx.send(std::mem::take(&mut event)).is_err() {
                        return;
                    }
                } else if let Some(comment) = line.strip_prefix(':') {
                    event.comments.push(comment.trim().to_string());
                } else {
                    let (field, value) = line.split_once(':').unwrap_or((&line, ""));
                    let value = value.strip_prefix(' ').unwrap_or(value).to_string();
                    match field {
                        "id" => event.id = Some(value),
                        "event" => event.event = Some(value),
                        "data" if event.data.is_empty() => event.data = value,
                        "data" => event.data = format!("{}\n{value}", event.data),
                        _ => {}
                    }
                }
            }
        });
        Events { child, rx }
    }

    /// SIGTERM, then the exit status.
    fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        self.started.terminate(timeout)
    }
}

/// One server-sent event (a keep-alive comment is an event with comments only).
#[derive(Debug, Default, Clone)]
struct SseEvent {
    id: Option<String>,
    event: Option<String>,
    data: String,
    comments: Vec<String>,
}

/// A curl reading server-sent events; killed when dropped.
struct Events {
    child: Child,
    rx: mpsc::Receiver<SseEvent>,
}

impl Events {
    /// The next event, `None` if the answer ended.
    fn next(&self, timeout: Duration) -> Option<SseEvent> {
        match self.rx.recv_timeout(timeout) {
            Ok(event) => Some(event),
            Err(mpsc::RecvTimeoutError::Disconnected) => None,
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("no event within {timeout:?}"),
        }
    }

    /// The next document event (its seq and document), checked against the LVA schema;
    /// keep-alive comments skipped. Panics on another event.
    fn document(&self, timeout: Duration) -> (u64, Value) {
        loop {
            let event = self.next(timeout).expect("the events go on");
            if event.event.is_none() && event.id.is_none() && event.data.is_empty() {
                continue;
            }
            assert_eq!(event.event, None, "{event:?}");
            let seq = event.id.as_deref().and_then(|i| i.parse().ok());
            let seq = seq.unwrap_or_else(|| panic!("a document has its seq as id: {event:?}"));
            return (seq, lva_document(&event.data));
        }
    }

    /// Whether curl ended (the server ended the answer).
    fn ended(&mut self, timeout: Duration) -> bool {
        let t0 = Instant::now();
        while t0.elapsed() < timeout {
            if self.child.try_wait().expect("wait").is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A document with results, valid against tests/lva_inference.schema.json.
fn lva_document(text: &str) -> Value {
    let doc: Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    if let Err(e) = common::check_lva_schema(&doc) {
        panic!("not an LVA document: {e}\n{text}");
    }
    assert!(
        doc["inferences"].as_array().is_some_and(|i| !i.is_empty()),
        "{text}"
    );
    doc
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn a_file_stream_finishes_with_every_frame_its_jsonl_and_its_events() {
    common::init();
    let t0 = Instant::now();
    let dir = scratch("file");
    let out = dir.join("bikes.jsonl");
    // Timeouts far shorter than the stream: the event stream must outlast them.
    let server = Server::start(
        &dir,
        &json!({"models": models(), "idle-timeout-ms": 1000, "header-timeout-ms": 1000,
                "body-timeout-ms": 1000}),
    );
    let definition = json!({
        "source": {"uri": bikes_uri()},
        "model": "ssd",
        "outputs": {"jsonl": {"path": out}},
    })
    .to_string();
    let created = server.put("bikes", &definition);
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(
        created.header("Location").as_deref(),
        Some("/streams/bikes")
    );
    assert_eq!(
        created.header("Content-Type").as_deref(),
        Some("application/json")
    );
    let info = created.json();
    assert_eq!(info["id"], "bikes");
    assert_eq!(info["spec"]["model"], "ssd");
    assert!(
        ["starting", "running"].contains(&info["status"]["state"].as_str().unwrap_or("")),
        "{info}"
    );

    let mut events = server.events("/streams/bikes/events");
    let started = Instant::now();
    let mut seen: Vec<(u64, Value)> = Vec::new();
    let end = loop {
        let event = events
            .next(Duration::from_secs(120))
            .expect("the events end with an end event");
        match event.event.as_deref() {
            Some("end") => break serde_json::from_str::<Value>(&event.data).expect("end: JSON"),
            Some(other) => panic!("unexpected event {other}: {event:?}"),
            None if event.data.is_empty() => {}
            None => {
                let seq = event
                    .id
                    .as_deref()
                    .and_then(|i| i.parse().ok())
                    .expect("id: seq");
                seen.push((seq, lva_document(&event.data)));
            }
        }
    };
    let lasted = started.elapsed();
    assert!(
        events.ended(Duration::from_secs(5)),
        "the answer ends after `end`"
    );
    assert!(
        lasted > Duration::from_secs(3),
        "the events lasted {lasted:?}: longer than every timeout of the server"
    );
    eprintln!(
        "events: {} documents over {lasted:?}, end: {end}",
        seen.len()
    );

    // The end event holds the final state: every frame, the 123 frames with a detection.
    let status = &end["status"];
    assert_eq!(end["id"], "bikes");
    assert_eq!(status["state"], "finished", "{end}");
    assert_eq!(status["produced_frames"], 250);
    assert_eq!(status["processed_frames"], 250);
    assert_eq!(status["inferred_frames"], 250);
    assert_eq!(status["dropped_frames"], 0);
    assert_eq!(status["documents"], 123);
    assert_eq!(status["remaining_time_ms"], 0);
    assert_eq!(status["video"]["width"], 640);
    assert_eq!(status["video"]["height"], 272);
    assert_eq!(status["outputs"]["jsonl"]["written"], 123);

    // The JSON Lines file holds exactly the documents, valid ones; the events are those
    // documents (each at its seq), in order.
    let written = lines(&out);
    assert_eq!(written.len(), 123);
    let documents: Vec<Value> = written.iter().map(|l| lva_document(l)).collect();
    assert!(!seen.is_empty());
    for pair in seen.windows(2) {
        assert_eq!(pair[1].0, pair[0].0 + 1, "no document missed");
    }
    for (seq, doc) in &seen {
        assert_eq!(&documents[*seq as usize], doc, "document {seq}");
    }
    assert_eq!(seen.last().map(|s| s.0), Some(122));

    // GET shows the same; /results the last document, and nothing more to wait for.
    let got = server.get("/streams/bikes");
    assert_eq!(got.status, 200);
    assert_eq!(got.json()["status"], end["status"]);
    let last = server.get("/streams/bikes/results");
    assert_eq!(last.status, 200);
    assert_eq!(
        last.header("Content-Type").as_deref(),
        Some("application/json")
    );
    assert_eq!(last.body, written[122]);
    let over = server.get("/streams/bikes/results?wait=true&timeout-ms=5000");
    assert_eq!(over.status, 410, "{over:?}");
    let list = server.get("/streams").json();
    assert_eq!(list["streams"][0]["id"], "bikes");

    // DELETE: the final state (finished stays finished); then it is listed no more, and its
    // status is still readable for a while.
    let deleted = server.delete("bikes");
    assert_eq!(deleted.status, 200, "{deleted:?}");
    assert_eq!(deleted.json()["status"]["state"], "finished");
    assert_eq!(server.get("/streams").json(), json!({"streams": []}));
    assert_eq!(server.get("/streams/bikes").status, 200);
    assert_eq!(server.get("/streams/bikes/results").status, 404);
    assert_eq!(server.delete("bikes").status, 404);
    assert!(
        !server.log_text().contains("closing:"),
        "no connection was cut: {}",
        server.log_text()
    );
    eprintln!("file stream over HTTP: {:?}", t0.elapsed());
}

#[test]
fn an_rtsp_stream_reconnects_when_its_camera_comes_back_and_its_events_go_on() {
    common::init();
    let t0 = Instant::now();
    let dir = scratch("rtsp");
    let bikes = PathBuf::from(common::asset("media/bikes.mp4"));
    let camera = rtsp::Server::start(0, &bikes);
    let port = camera.port;
    // The outage is longer than every timeout: the event stream must outlast it.
    let server = Server::start(
        &dir,
        &json!({"models": models(), "idle-timeout-ms": 1000, "header-timeout-ms": 1000,
                "body-timeout-ms": 1000}),
    );
    let definition = json!({
        "source": {"uri": format!("rtsp://127.0.0.1:{port}/bikes"), "source-timeout-ms": 5000},
        "model": "tiny",
        "ovinfer": {"interval": 2},
    })
    .to_string();
    let created = server.put("door", &definition);
    assert_eq!(created.status, 201, "{created:?}");
    let events = server.events("/streams/door/events");
    let running = server.wait("door", "running", Duration::from_secs(30), |s| {
        s["state"] == "running" && s["documents"].as_u64() >= Some(5)
    });
    assert!(running["video"]["width"].as_u64().is_some(), "{running}");
    let (first, _) = events.document(Duration::from_secs(10));
    for _ in 0..4 {
        events.document(Duration::from_secs(10));
    }

    let down = Instant::now();
    camera.stop();
    let lost = server.wait("door", "reconnecting", Duration::from_secs(15), |s| {
        s["state"] == "reconnecting"
    });
    eprintln!("camera lost after {:?}: {lost}", down.elapsed());
    let before = lost["documents"].as_u64().expect("documents");
    std::thread::sleep(Duration::from_secs(5).saturating_sub(down.elapsed()));
    let camera = rtsp::Server::start(port, &bikes);
    let back = server.wait("door", "running again", Duration::from_secs(40), |s| {
        s["state"] == "running" && s["documents"].as_u64() >= Some(before + 5)
    });
    eprintln!("camera back after {:?}: {back}", down.elapsed());
    assert!(back["reconnects"].as_u64() >= Some(1), "{back}");
    let gap = back["gaps"]["recent"]
        .as_array()
        .and_then(|g| g.last())
        .expect("the gap is reported");
    assert!(gap["end"].is_string(), "the gap is closed: {gap}");
    assert!(gap["duration_ms"].as_u64() >= Some(4500), "{gap}");

    // The same event stream, open through the outage, delivers the documents after it.
    let mut after = 0;
    while after < 5 {
        let (seq, _) = events.document(Duration::from_secs(20));
        assert!(seq > first);
        if seq >= before {
            after += 1;
        }
    }
    let deleted = server.delete("door");
    assert_eq!(deleted.status, 200, "{deleted:?}");
    let end = deleted.json();
    assert_eq!(end["status"]["state"], "stopped");
    let last = loop {
        let event = events.next(Duration::from_secs(10)).expect("an end event");
        if event.event.as_deref() == Some("end") {
            break event;
        }
    };
    let last: Value = serde_json::from_str(&last.data).expect("JSON");
    assert_eq!(last["status"]["state"], "stopped");
    assert!(
        !server.log_text().contains("closing:"),
        "no connection was cut: {}",
        server.log_text()
    );
    camera.stop();
    eprintln!("rtsp over HTTP: {:?}", t0.elapsed());
}

#[test]
fn a_stream_deleted_mid_way_is_flushed_and_a_restarted_server_brings_its_streams_back() {
    common::init();
    let t0 = Instant::now();
    let dir = scratch("restart");
    let state = dir.join("state");
    let out = dir.join("gone.jsonl");
    let mut server = Server::start(
        &dir,
        &json!({"models": models(), "streams": {"state-dir": "state"}}),
    );
    let gone = json!({
        "source": {"uri": bikes_uri(), "loop": true},
        "model": "tiny",
        "outputs": {"jsonl": {"path": out}},
    })
    .to_string();
    let kept =
        json!({"source": {"uri": bikes_uri(), "loop": true, "realtime": true}, "model": "tiny"})
            .to_string();
    assert_eq!(server.put("gone", &gone).status, 201);
    assert_eq!(server.put("kept", &kept).status, 201);
    server.wait("gone", "documents", Duration::from_secs(60), |s| {
        s["documents"].as_u64() >= Some(40)
    });

    // DELETE mid-way: every document reached the file before the answer.
    let deleted = server.delete("gone");
    assert_eq!(deleted.status, 200, "{deleted:?}");
    let status = deleted.json()["status"].clone();
    assert_eq!(status["state"], "stopped", "{status}");
    let documents = status["documents"].as_u64().expect("documents");
    assert!(documents >= 40);
    assert_eq!(lines(&out).len() as u64, documents, "{status}");
    assert_eq!(
        status["outputs"]["jsonl"]["written"].as_u64(),
        Some(documents)
    );
    assert_eq!(status["outputs"]["jsonl"]["failed"], 0);
    for line in lines(&out) {
        lva_document(&line);
    }

    // SIGTERM: the running stream stops, its definition stays; the deleted one's is gone.
    server.wait("kept", "running", Duration::from_secs(30), |s| {
        s["state"] == "running"
    });
    let exit = server.terminate(Duration::from_secs(30));
    assert!(exit.success(), "{exit:?}: {}", server.log_text());
    assert!(
        server.log_text().contains("1 streams stopped"),
        "{}",
        server.log_text()
    );
    let mut files: Vec<String> = std::fs::read_dir(&state)
        .expect("the state folder beside the configuration")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["kept.json"]);

    // Started again on the same configuration: the stream is back and runs.
    let server = Server::start_with(&server.config);
    assert!(
        server.log_text().contains("streams: 1 restarted from"),
        "{}",
        server.log_text()
    );
    let list = server.get("/streams").json();
    let ids: Vec<&str> = list["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert_eq!(ids, ["kept"]);
    let spec = &list["streams"][0]["spec"];
    let given: Value = serde_json::from_str(&kept).unwrap();
    assert_eq!(
        (&spec["source"], &spec["model"]),
        (&given["source"], &given["model"]),
        "the definition as given: {spec}"
    );
    server.wait(
        "kept",
        "running after the restart",
        Duration::from_secs(30),
        |s| s["state"] == "running" && s["processed_frames"].as_u64() > Some(5),
    );
    assert_eq!(server.get("/streams/gone").status, 404);
    assert_eq!(server.delete("kept").status, 200);
    eprintln!("delete and restart over HTTP: {:?}", t0.elapsed());
}

/// Accepts connections and never answers: an HTTP receiver that hangs.
fn black_hole() -> (String, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let url = format!("http://{}/events", listener.local_addr().expect("address"));
    let thread = std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().take(4) {
            held.push(conn);
        }
        std::thread::sleep(Duration::from_secs(60));
    });
    (url, thread)
}

#[test]
fn definitions_limits_credentials_and_the_openapi_document() {
    common::init();
    let dir = scratch("limits");
    let mut server = Server::start(
        &dir,
        &json!({"models": models(), "streams": {"max-streams": 2},
                "auth": {"bearer": ["s3cret"]}}),
    );
    let camera = json!({
        "source": {"pipeline": "videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=10/1"},
        "model": "tiny",
    })
    .to_string();

    // Without credentials: 401, whatever the streams route; /healthz needs none.
    for (args, path) in [
        (&["-X", "PUT", "--data-binary", "{}"][..], "/streams/cam"),
        (&[][..], "/streams"),
        (&[][..], "/streams/cam/events"),
        (&[][..], "/streams/cam/results"),
        (&["-X", "DELETE"][..], "/streams/cam"),
    ] {
        let refused = server.curl(args, path, None);
        assert_eq!(refused.status, 401, "{path}: {refused:?}");
        assert!(
            refused
                .header("WWW-Authenticate")
                .is_some_and(|h| h.contains("Bearer"))
        );
    }
    assert_eq!(server.get("/healthz").status, 200);
    server.auth = Some("Bearer s3cret".into());

    // Bad definitions: 400 with every reason.
    let bad = |id: &str, definition: &str, expected: &[&str]| {
        let reply = server.put(id, definition);
        assert_eq!(reply.status, 400, "{definition}: {reply:?}");
        let body = reply.json();
        let reasons: Vec<&str> = body["reasons"]
            .as_array()
            .unwrap_or_else(|| panic!("reasons: {body}"))
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(reasons.len(), expected.len(), "{body}");
        for expected in expected {
            assert!(
                reasons.iter().any(|r| r.contains(expected)),
                "no reason says {expected:?}: {reasons:?}"
            );
        }
        assert!(body["error"].is_string());
    };
    bad("cam", "{\"source\": ", &["EOF while parsing"]);
    bad(
        "cam",
        r#"{"source": {"uri": "rtsp://h/x"}, "modle": "tiny"}"#,
        &["unknown field `modle`"],
    );
    bad(
        "cam",
        r#"{"source": {"uri": "ftp://h/x.mp4"}, "model": "nope"}"#,
        &[
            "scheme 'ftp' is not supported",
            "model \"nope\" is not configured",
        ],
    );
    bad(
        "cam",
        r#"{"source": {"uri": "rtsp://h/x"}, "model": "tiny", "ovinfer": {"treshold": 0.3, "threshold": 2}}"#,
        &[
            "ovinfer has no property 'treshold'",
            "is not a valid value for ovinfer's threshold",
        ],
    );
    bad(".cam", &camera, &["is not a stream id"]);
    assert_eq!(server.get("/streams").json(), json!({"streams": []}));

    // max-streams: the third is refused, saying the limit and the fix; a replace is not a new
    // stream; after a delete there is room again.
    assert_eq!(server.put("a", &camera).status, 201);
    assert_eq!(server.put("b", &camera).status, 201);
    let full = server.put("c", &camera);
    assert_eq!(full.status, 409, "{full:?}");
    let message = full.json()["error"].as_str().unwrap_or("").to_string();
    assert!(
        message.contains("2 streams")
            && message.contains("max-streams")
            && message.contains("delete one"),
        "{message}"
    );
    assert_eq!(server.put("a", &camera).status, 200, "replaced");
    assert_eq!(server.delete("a").status, 200);
    assert_eq!(server.put("c", &camera).status, 201);

    // /results: a document when there is one, the next one on ?wait=true, bad parameters 400.
    server.wait("c", "documents", Duration::from_secs(30), |s| {
        s["documents"].as_u64() >= Some(1)
    });
    let latest = server.get("/streams/c/results");
    assert_eq!(latest.status, 200);
    lva_document(&latest.body);
    let next = server.get("/streams/c/results?wait=true&timeout-ms=10000");
    assert_eq!(next.status, 200, "{next:?}");
    lva_document(&next.body);
    assert_eq!(server.get("/streams/c/results?wait=maybe").status, 400);
    assert_eq!(server.get("/streams/nope/results").status, 404);
    assert_eq!(server.get("/streams/nope").status, 404);
    assert_eq!(server.curl(&["-X", "POST"], "/streams", None).status, 405);

    // A change of an id while another one is under way: 409. The delete waits for an HTTP
    // output whose receiver never answers (flush-timeout 3 s).
    assert_eq!(server.delete("b").status, 200);
    let (hole, _receiver) = black_hole();
    let stuck = json!({
        "source": {"pipeline": "videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=10/1"},
        "model": "tiny",
        "outputs": {"http": {"location": hole, "flush-timeout": 3000, "timeout": 30}},
    })
    .to_string();
    assert_eq!(server.put("stuck", &stuck).status, 201);
    server.wait("stuck", "documents", Duration::from_secs(30), |s| {
        s["documents"].as_u64() >= Some(3)
    });
    let url = format!("{}/streams/stuck", server.url);
    let deleting = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "DELETE",
        ])
        .args(["-H", "Authorization: Bearer s3cret", &url])
        .stdout(Stdio::piped())
        .spawn()
        .expect("curl runs");
    std::thread::sleep(Duration::from_millis(1000));
    let busy = server.put("stuck", &camera);
    assert_eq!(busy.status, 409, "{busy:?}");
    assert!(busy.body.contains("under way"), "{busy:?}");
    let deleted = deleting.wait_with_output().expect("curl ends");
    assert_eq!(String::from_utf8_lossy(&deleted.stdout), "200");

    // The OpenAPI document: OpenAPI 3.1, every route.
    let openapi = server.get("/openapi.json");
    assert_eq!(openapi.status, 200);
    let doc = openapi.json();
    assert_eq!(doc["openapi"], "3.1.0");
    for (path, method) in [
        ("/streams", "get"),
        ("/streams/{id}", "put"),
        ("/streams/{id}", "get"),
        ("/streams/{id}", "delete"),
        ("/streams/{id}/results", "get"),
        ("/streams/{id}/events", "get"),
        ("/{model}", "post"),
        ("/models", "get"),
        ("/healthz", "get"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path}");
    }
    assert!(doc["components"]["schemas"]["StreamDefinition"].is_object());
    assert!(doc["components"]["schemas"]["StreamStatus"].is_object());

    let exit = server.terminate(Duration::from_secs(30));
    assert!(exit.success(), "{}", server.log_text());
}

/// A decoded frame: width, height, RGB rows without padding.
type Rgb = (u32, u32, Vec<u8>);

/// A live viewer of a video URL (`rtspsrc` or `souphttpsrc`/`filesrc` through `decodebin`): the
/// decoded frames as RGB, counted and the last kept.
struct Viewer {
    pipeline: gst::Pipeline,
    frames: Arc<std::sync::atomic::AtomicU64>,
    last: Arc<Mutex<Option<Rgb>>>,
    /// The first frame's PTS and the last frame's end.
    span: Arc<Mutex<(Option<gst::ClockTime>, Option<gst::ClockTime>)>>,
}

impl Viewer {
    fn start(source: &str) -> Viewer {
        common::init();
        let description = format!(
            "{source} ! decodebin ! videoconvert ! video/x-raw,format=RGB ! appsink name=sink sync=false"
        );
        let pipeline = gst::parse::launch(&description)
            .unwrap_or_else(|e| panic!("{description}: {e}"))
            .downcast::<gst::Pipeline>()
            .expect("a pipeline");
        let sink = pipeline
            .by_name("sink")
            .and_then(|s| s.downcast::<gst_app::AppSink>().ok())
            .expect("appsink");
        let frames = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let last = Arc::new(Mutex::new(None));
        let span = Arc::new(Mutex::new((None, None)));
        let (count, keep, spanned) = (frames.clone(), last.clone(), span.clone());
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let info = sample
                        .caps()
                        .and_then(|c| gst_video::VideoInfo::from_caps(c).ok())
                        .ok_or(gst::FlowError::NotNegotiated)?;
                    let buffer = sample.buffer().ok_or(gst::FlowError::Error)?;
                    let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
                    // Rows without their padding.
                    let (w, h, stride) = (info.width(), info.height(), info.stride()[0] as usize);
                    let mut rgb = Vec::with_capacity((w * h * 3) as usize);
                    for row in 0..h as usize {
                        rgb.extend_from_slice(&map[row * stride..row * stride + w as usize * 3]);
                    }
                    *keep.lock().unwrap() = Some((w, h, rgb));
                    if let Some(pts) = buffer.pts() {
                        let mut span = spanned.lock().unwrap();
                        span.0 = span.0.or(Some(pts));
                        span.1 = Some(pts + buffer.duration().unwrap_or(gst::ClockTime::ZERO));
                    }
                    count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        pipeline
            .set_state(gst::State::Playing)
            .expect("viewer plays");
        Viewer {
            pipeline,
            frames,
            last,
            span,
        }
    }

    fn frames(&self) -> u64 {
        self.frames.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits until `n` frames more than now have arrived.
    fn wait_frames(&self, n: u64, timeout: Duration) {
        let target = self.frames() + n;
        let t0 = Instant::now();
        while self.frames() < target {
            if let Some(msg) = self
                .pipeline
                .bus()
                .and_then(|b| b.pop_filtered(&[gst::MessageType::Error]))
            {
                panic!("viewer error: {msg:?}");
            }
            assert!(t0.elapsed() < timeout, "{n} frames not within {timeout:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn last(&self) -> Rgb {
        self.last.lock().unwrap().clone().expect("a frame")
    }

    /// Runs a description to its end and gives its frame count, its duration and the last frame.
    fn decode_all(source: &str) -> (u64, Duration, Rgb) {
        let viewer = Viewer::start(source);
        let bus = viewer.pipeline.bus().expect("bus");
        let msg = bus
            .timed_pop_filtered(
                gst::ClockTime::from_seconds(60),
                &[gst::MessageType::Eos, gst::MessageType::Error],
            )
            .expect("the end within 60 s");
        assert!(
            matches!(msg.view(), gst::MessageView::Eos(_)),
            "{source}: {msg:?}"
        );
        // The container's duration when it tells one, else the frames' span.
        let span = match viewer.pipeline.query_duration::<gst::ClockTime>() {
            Some(d) => Duration::from_nanos(d.nseconds()),
            None => match *viewer.span.lock().unwrap() {
                (Some(first), Some(end)) => Duration::from_nanos((end - first).nseconds()),
                _ => Duration::ZERO,
            },
        };
        (viewer.frames(), span, viewer.last())
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// Whether the frame shows the overlay's red (label-colors person=ff0000) along the left and
/// top edges of the box `b` (normalised l, t, w, h) and not in its middle.
fn red_box_drawn(frame: &Rgb, b: (f64, f64, f64, f64)) -> Result<(), String> {
    let (w, h, rgb) = frame;
    let at = |x: f64, y: f64| {
        let (x, y) = ((x * *w as f64) as usize, (y * *h as f64) as usize);
        let i = (y.min(*h as usize - 1) * *w as usize + x.min(*w as usize - 1)) * 3;
        (rgb[i], rgb[i + 1], rgb[i + 2])
    };
    let red = |(r, g, b): (u8, u8, u8)| r > 170 && g < 90 && b < 90;
    let (l, t, bw, bh) = b;
    // Inside the 8-px line: 3 px in from the edge.
    let dx = 3.0 / *w as f64;
    let dy = 3.0 / *h as f64;
    let points = [
        ("left edge", at(l + dx, t + bh / 2.0)),
        ("top edge", at(l + bw / 2.0, t + dy)),
        ("right edge", at(l + bw - dx, t + bh / 3.0)),
    ];
    for (name, p) in points {
        if !red(p) {
            return Err(format!(
                "{name} at box {b:?} is {p:?}, not the overlay's red"
            ));
        }
    }
    let middle = at(l + bw / 2.0, t + bh / 2.0);
    if red(middle) {
        return Err(format!("the middle of the box is red too: {middle:?}"));
    }
    Ok(())
}

/// The person box of an LVA document.
fn person_box(doc: &Value) -> (f64, f64, f64, f64) {
    let e = doc["inferences"]
        .as_array()
        .and_then(|a| a.iter().find(|i| i["entity"]["tag"]["value"] == "person"))
        .unwrap_or_else(|| panic!("no person in {doc}"));
    let b = &e["entity"]["box"];
    let f = |k: &str| b[k].as_f64().expect("box number");
    (f("l"), f("t"), f("w"), f("h"))
}

fn media_sequence(playlist: &str) -> u64 {
    playlist
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no media sequence in {playlist}"))
}

#[test]
fn video_outputs_draw_the_boxes_on_rtsp_hls_a_push_and_recordings() {
    let dir = scratch("video");
    let rtsp_port = common::free_port();
    let server = Server::start(
        &dir,
        &json!({"models": models(), "streams": {"rtsp-port": rtsp_port}}),
    );
    let receiver = rtsp::Receiver::start();
    let recordings = dir.join("recordings");
    let still = format!(
        "filesrc location={} ! jpegdec ! imagefreeze is-live=true ! video/x-raw,framerate=25/1",
        common::asset("media/person.jpg")
    );
    let definition = json!({
        "source": {"pipeline": still},
        "model": "ssd",
        "outputs": {"video": {
            "overlay": {"label-colors": "person=ff0000", "line-width": 8},
            "rtsp": {},
            "push": {"location": format!("rtsp://127.0.0.1:{}/record", receiver.port)},
            "hls": {"segment-s": 1, "window": 3},
            "record": {"folder": recordings, "segment-s": 2, "max-files": 2}
        }}
    });
    let created = server.put("cam", &definition.to_string());
    assert_eq!(created.status, 201, "{created:?}");
    let status = server.wait("cam", "documents", Duration::from_secs(60), |s| {
        s["documents"].as_u64() > Some(5)
    });
    let video = &status["outputs"]["video"];
    let url = video["rtsp"]["url"]
        .as_str()
        .expect("an RTSP URL")
        .to_string();
    assert_eq!(url, format!("rtsp://127.0.0.1:{rtsp_port}/streams/cam"));
    assert_eq!(video["hls"], "/streams/cam/hls/index.m3u8");
    let doc = server.get("/streams/cam/results").json();
    let person = person_box(&doc);

    // RTSP: two viewers at once (one shared encode), both see the box drawn; one leaving does
    // not disturb the other nor the stream.
    let source = format!("rtspsrc location={url} latency=0");
    let first = Viewer::start(&source);
    let second = Viewer::start(&source);
    first.wait_frames(25, Duration::from_secs(30));
    second.wait_frames(25, Duration::from_secs(30));
    red_box_drawn(&first.last(), person).expect("the RTSP frame has the box");
    red_box_drawn(&second.last(), person).expect("the RTSP frame has the box");
    drop(first);
    second.wait_frames(25, Duration::from_secs(10));
    assert_eq!(
        server.get("/streams/cam").json()["status"]["state"],
        "running"
    );

    // The push reached the other server's RECORD mount; when that server goes away the stream
    // goes on, and the push comes back with the server.
    let arrived = |receiver: &rtsp::Receiver| {
        let t0 = Instant::now();
        while receiver.frames.load(std::sync::atomic::Ordering::SeqCst) < 25 {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "the pushed video did not arrive; log:\n{}",
                server.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    arrived(&receiver);
    let push_port = receiver.port;
    drop(receiver);
    let status = server.wait("cam", "push lost", Duration::from_secs(30), |s| {
        s["outputs"]["video"]["push"]["connected"] == false
    });
    assert_eq!(status["state"], "running", "{status:#}");
    let receiver = rtsp::Receiver::start_on(push_port);
    arrived(&receiver);
    let status = server.wait("cam", "push back", Duration::from_secs(10), |s| {
        s["outputs"]["video"]["push"]["connected"] == true
    });
    let push = &status["outputs"]["video"]["push"];
    assert!(push["reconnects"].as_u64() >= Some(1), "{push}");
    assert!(push["dropped_frames"].as_u64() >= Some(1), "{push}");
    assert!(push["last_error"].is_string(), "{push}");

    // HLS: the playlist moves on, segments leave the window and the disk, and decode.
    let playlist = server.get("/streams/cam/hls/index.m3u8");
    assert_eq!(playlist.status, 200, "{playlist:?}");
    assert_eq!(
        playlist.header("content-type").as_deref(),
        Some("application/vnd.apple.mpegurl")
    );
    let before = media_sequence(&playlist.body);
    std::thread::sleep(Duration::from_secs(5));
    let later = server.get("/streams/cam/hls/index.m3u8").body;
    let after = media_sequence(&later);
    assert!(
        after >= before + 3,
        "media sequence {before} → {after}: {later}"
    );
    let gone = server.get("/streams/cam/hls/segment00000.ts");
    assert_eq!(gone.status, 404, "segment 0 left the window: {gone:?}");
    let hls_dir = dir.join("lva-server-state/hls/cam");
    assert!(!hls_dir.join("segment00000.ts").exists());
    let segments: Vec<String> = std::fs::read_dir(&hls_dir)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().ok())
        .filter(|n| n.ends_with(".ts"))
        .collect();
    // The window's 3, the one being written, the last one out (for a client that read the
    // playlist just before).
    assert!(segments.len() <= 5, "{segments:?}");
    let segment = later
        .lines()
        .rfind(|l| l.ends_with(".ts"))
        .expect("a segment in the playlist")
        .to_string();
    let (frames, _, last) = Viewer::decode_all(&format!(
        "souphttpsrc location={}/streams/cam/hls/{segment}",
        server.url
    ));
    assert!(frames >= 1, "{segment}: {frames} frames");
    red_box_drawn(&last, person).expect("the HLS frame has the box");

    // Deleting the stream ends the recording; at most max-files remain, each a playable MP4 of
    // about the segment length.
    let ended = server.delete("cam");
    assert_eq!(ended.status, 200, "{ended:?}");
    let record = &ended.json()["status"]["outputs"]["video"]["record"];
    assert!(record["files"].as_u64() >= Some(3), "{record}");
    assert!(record["deleted"].as_u64() >= Some(1), "{record}");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&recordings)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "max-files 2: {files:?}");
    for (i, file) in files.iter().enumerate() {
        let (frames, span, last) =
            Viewer::decode_all(&format!("filesrc location={}", file.display()));
        // At most 2 s, cut at a key frame (key frames are asked for on time, but a loaded
        // machine's frames are sparse); the last file (ended by the delete) may be shorter.
        if i == 0 {
            assert!(
                (0.9..=2.3).contains(&span.as_secs_f64()),
                "{}: {frames} frames over {span:?}",
                file.display()
            );
        }
        assert!(frames >= 1, "{}: no frame", file.display());
        red_box_drawn(&last, person).expect("the recorded frame has the box");
    }
    assert_eq!(server.get("/streams/cam/hls/index.m3u8").status, 404);
}

#[test]
fn video_outputs_refuse_a_taken_mount_and_an_unwritable_folder_and_rtsp_asks_for_credentials() {
    let dir = scratch("video-bad");
    let rtsp_port = common::free_port();
    let mut server = Server::start(
        &dir,
        &json!({"models": models(), "streams": {"rtsp-port": rtsp_port},
                "auth": {"basic": [{"user": "lva", "password": "pw"}]}}),
    );
    server.auth = Some("Basic bHZhOnB3".into()); // lva:pw
    let live = "videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=10/1";
    let one = json!({"source": {"pipeline": live}, "model": "tiny",
                     "outputs": {"video": {"rtsp": {}}}});
    let created = server.put("one", &one.to_string());
    assert_eq!(created.status, 201, "{created:?}");
    let two = json!({"source": {"pipeline": live}, "model": "tiny",
                     "outputs": {"video": {"rtsp": {"path": "/streams/one"}}}});
    let refused = server.put("two", &two.to_string());
    assert_eq!(refused.status, 400, "{refused:?}");
    assert!(
        refused
            .body
            .contains("/streams/one is already the mount of stream one"),
        "{refused:?}"
    );
    let unwritable = json!({"source": {"pipeline": live}, "model": "tiny",
                            "outputs": {"video": {"record": {"folder": "/proc/lva-recordings"}}}});
    let refused = server.put("three", &unwritable.to_string());
    assert_eq!(refused.status, 400, "{refused:?}");
    assert!(
        refused
            .body
            .contains("outputs.video.record.folder: cannot create /proc/lva-recordings"),
        "{refused:?}"
    );
    let bad = json!({"source": {"pipeline": live}, "model": "tiny",
                     "outputs": {"video": {"hls": {"window": 1}, "push": {"location": "http://x/"}}}});
    let refused = server.put("four", &bad.to_string());
    assert_eq!(refused.status, 400, "{refused:?}");
    for part in ["hls.window 1 is not within 2 to 30", "push.location"] {
        assert!(refused.body.contains(part), "{part}: {refused:?}");
    }
    // RTSP asks for the configured Basic users.
    let url = format!("rtsp://127.0.0.1:{rtsp_port}/streams/one");
    let stranger = Viewer::start(&format!("rtspsrc location={url} latency=0"));
    let refused = stranger
        .pipeline
        .bus()
        .expect("bus")
        .timed_pop_filtered(gst::ClockTime::from_seconds(20), &[gst::MessageType::Error])
        .expect("a viewer without credentials is refused");
    assert!(
        format!("{refused:?}").contains("Unauthorized"),
        "{refused:?}"
    );
    assert_eq!(stranger.frames(), 0);
    let user = Viewer::start(&format!(
        "rtspsrc location={url} latency=0 user-id=lva user-pw=pw"
    ));
    user.wait_frames(10, Duration::from_secs(30));
    // The first stream was not disturbed.
    server.wait("one", "running", Duration::from_secs(30), |s| {
        s["state"] == "running"
    });
}

/// The reasons of a 400.
fn reasons(reply: &Reply) -> Vec<String> {
    assert_eq!(reply.status, 400, "{reply:?}");
    let body = reply.json();
    body["reasons"]
        .as_array()
        .unwrap_or_else(|| panic!("reasons: {body}"))
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

/// Track and count over HTTP: bikes.mp4 with `track`, `analytics` (a counting line down the
/// middle of the picture and a zone on its right half, for people) and detection on every third
/// frame. In the clip a man comes in from the left and crosses that line to the right (about
/// frames 30 to 47; its bicycles are parked: they are not counted), so the crossings are
/// `counterclockwise` for a line drawn from top to bottom. Every document is an LVA document; its objects have ids; every event's
/// `relatedInferences` name entities of the same document (a `LineCrossing`'s, the one with its
/// `objectId`); the status's counters are those of the documents; the video branch gets every
/// frame. Bad definitions first.
#[test]
fn a_stream_tracks_objects_and_counts_them_crossing_a_line() {
    common::init();
    let t0 = Instant::now();
    let dir = scratch("track");
    let out = dir.join("tracked.jsonl");
    let server = Server::start(&dir, &json!({"models": models()}));
    let rules = json!({
        "lines": [{"name": "middle", "points": [[0.5, 0.0], [0.5, 1.0]], "labels": ["person"]}],
        "zones": [{"name": "right", "polygon": [[0.5, 0.0], [1.0, 0.0], [1.0, 1.0], [0.5, 1.0]],
                   "labels": ["person"]}],
    });
    let refused = |definition: Value, expected: &str| {
        let reasons = reasons(&server.put("refused", &definition.to_string()));
        assert!(
            reasons.len() == 1 && reasons[0].contains(expected),
            "{definition}: {reasons:?}, expected {expected:?}"
        );
    };
    refused(
        json!({"source": {"uri": bikes_uri()}, "model": "ssd", "analytics": {"rules": rules}}),
        "analytics needs tracked objects (ovanalytics follows objects by their tracking id): \
         add \"track\": true to the definition",
    );
    refused(
        json!({"source": {"uri": bikes_uri()}, "model": "ssd", "track": true,
               "analytics": {"rules": {"lines": [{"name": "door", "points": [[0.5, 0.0]]}]}}}),
        "analytics.rules: line \"door\": has 1 point; a line needs exactly 2 points",
    );
    refused(
        json!({"source": {"uri": bikes_uri()}, "model": "ssd", "track": {"max-ages": 3}}),
        "track.max-ages: ovtrack has no property 'max-ages' to set; it has tracking-type, \
         min-hits, max-age",
    );
    assert_eq!(server.get("/streams").json(), json!({"streams": []}));

    let definition = json!({
        "source": {"uri": bikes_uri()},
        "model": "ssd",
        "ovinfer": {"interval": 3},
        "track": true,
        "analytics": {"rules": rules},
        "outputs": {"jsonl": {"path": out}, "video": {"record": {"folder": dir.join("video")}}},
    });
    let created = server.put("bikes", &definition.to_string());
    assert_eq!(created.status, 201, "{created:?}");
    let info = created.json();
    assert_eq!(info["spec"]["analytics"]["rules"], rules, "shown as given");
    assert!(info["status"]["track"].is_object(), "{info}");
    assert!(info["status"]["analytics"].is_object(), "{info}");
    let status = server.wait("bikes", "finished", Duration::from_secs(120), |s| {
        s["state"] != "starting" && s["state"] != "running"
    });
    assert_eq!(status["state"], "finished", "{status:#}");
    assert_eq!(status["processed_frames"], 250);
    assert_eq!(status["outputs"]["video"]["encoded_frames"], 250);

    let documents: Vec<Value> = lines(&out).iter().map(|l| lva_document(l)).collect();
    assert_eq!(status["outputs"]["jsonl"]["written"], documents.len());
    let mut ids = std::collections::BTreeSet::new();
    let (mut crossings, mut events) = (Vec::new(), Vec::new());
    for doc in &documents {
        let inferences = doc["inferences"].as_array().expect("inferences");
        let entity = |inference_id: &str| {
            inferences
                .iter()
                .find(|i| i["type"] == "entity" && i["inferenceId"].as_str() == Some(inference_id))
        };
        for inference in inferences {
            if let Some(id) = inference["entity"]["id"].as_str() {
                ids.insert(id.to_string());
            }
            if inference["type"] != "event" {
                continue;
            }
            let event = &inference["event"];
            events.push(event["name"].as_str().unwrap_or("").to_string());
            let related: Vec<&Value> = inference["relatedInferences"]
                .as_array()
                .map(|r| {
                    r.iter()
                        .map(|i| {
                            i.as_str().and_then(entity).unwrap_or_else(|| {
                                panic!("{i} is no entity of the document: {doc}")
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            for object in &related {
                assert_eq!(object["entity"]["tag"]["value"], "person", "{doc}");
            }
            if event["name"] == "LineCrossing" {
                assert_eq!(related.len(), 1, "{doc}");
                assert_eq!(
                    related[0]["entity"]["id"], event["properties"]["objectId"],
                    "{doc}"
                );
                crossings.push(event["properties"].clone());
            }
        }
    }
    eprintln!(
        "{} documents, {} ids, events {events:?}, crossings: {crossings:?}; status: track {}, \
         analytics {}",
        documents.len(),
        ids.len(),
        status["track"],
        status["analytics"]
    );
    assert!(!crossings.is_empty(), "nobody crossed the line");
    assert!(events.iter().any(|e| e == "ZoneEnter"), "{events:?}");
    for crossing in &crossings {
        assert_eq!(crossing["line"], "middle");
        assert_eq!(crossing["direction"], "counterclockwise", "left to right");
    }
    assert_eq!(
        crossings.last().map(|c| c["total"].clone()),
        Some(json!(crossings.len().to_string()))
    );
    // The status's counters are those of the documents.
    assert_eq!(status["analytics"]["crossings"], crossings.len());
    assert_eq!(status["analytics"]["events"], events.len());
    assert_eq!(status["track"]["tracks_created"], ids.len(), "{status:#}");
    assert!(
        status["track"]["active_tracks"].as_u64().is_some(),
        "{status:#}"
    );
    eprintln!("track and count over HTTP: {:?}", t0.elapsed());
}

/// Results onto message buses: bikes.mp4 (not realtime) with a JSON Lines file, an MQTT output
/// to a real mosquitto and a Kafka output to a real Kafka-protocol broker (noida-db), each read
/// back by an independent client (`mosquitto_sub`, kafka-python). Every document of the file
/// arrives once, in order, on the stream's MQTT topic (the default `lva/{stream}`) and in the
/// Kafka topic `lva.{stream}`, keyed by the stream's id; the status counts them as sent; the
/// password is hidden when the definition is shown. Then a camera whose broker cannot be
/// reached is deleted: the stop takes the MQTT output's `flush-timeout`, not more, and counts
/// what it could not deliver.
#[test]
fn a_stream_publishes_every_document_to_mqtt_and_kafka_and_a_stop_flushes_within_flush_timeout() {
    common::init();
    let t0 = Instant::now();
    let dir = scratch("brokers");
    let out = dir.join("bikes.jsonl");
    let mosquitto = common::mqtt::Broker::start();
    let kafka = common::kafka::Broker::start();
    let sub = common::mqtt::Subscriber::start(&mosquitto, "lva/bikes", &[]);
    let server = Server::start(&dir, &json!({"models": models()}));

    let refused = reasons(
        &server.put(
            "bikes",
            &json!({"source": {"uri": bikes_uri()}, "model": "ssd",
                "outputs": {"mqtt": {"port": mosquitto.port, "spool-dir": "spool"},
                            "kafka": {"brokers": kafka.bootstrap(), "acks": "some"},
                            "http": {"location": "http://127.0.0.1:9/", "spool-dir": "spool"}}})
            .to_string(),
        ),
    );
    assert_eq!(refused.len(), 5, "{refused:?}");
    for expected in [
        "outputs.mqtt needs a \"host\"",
        "outputs.mqtt.spool-dir 'spool' is not an absolute path",
        "outputs.http.spool-dir 'spool' is not an absolute path",
        "outputs.kafka needs a \"topic\"",
        "outputs.kafka.acks: 'some' is not a valid value for lvakafkasink's acks",
    ] {
        assert!(
            refused.iter().any(|r| r.contains(expected)),
            "{expected}: {refused:?}"
        );
    }

    let definition = json!({
        "source": {"uri": bikes_uri()},
        "model": "ssd",
        "outputs": {
            "jsonl": {"path": out},
            "mqtt": {"host": "127.0.0.1", "port": mosquitto.port, "username": "bikes",
                     "password": "mqtt-s3cret"},
            "kafka": {"brokers": kafka.bootstrap(), "topic": "lva.{stream}",
                      "properties": {"linger.ms": 5}},
        },
    });
    let created = server.put("bikes", &definition.to_string());
    assert_eq!(created.status, 201, "{created:?}");
    let spec = &created.json()["spec"];
    assert_eq!(spec["outputs"]["mqtt"]["password"], "***", "{spec}");
    assert_eq!(spec["outputs"]["kafka"]["properties"]["linger.ms"], 5);
    let status = server.wait("bikes", "finished", Duration::from_secs(120), |s| {
        s["state"] != "starting" && s["state"] != "running"
    });
    assert_eq!(status["state"], "finished", "{status:#}");
    let written = lines(&out);
    assert!(written.len() > 100, "{} documents", written.len());
    assert_eq!(status["documents"], written.len());
    let outputs = &status["outputs"];
    eprintln!("outputs: {outputs}");
    for (output, broker) in [
        ("mqtt", format!("127.0.0.1:{}", mosquitto.port)),
        ("kafka", kafka.bootstrap()),
    ] {
        let counters = &outputs[output];
        assert_eq!(counters["broker"], broker.as_str(), "{outputs}");
        assert_eq!(counters["sent"], written.len(), "{output}: {outputs}");
        for zero in [
            "failed",
            "dropped",
            "queued",
            "undelivered",
            "waited",
            "disconnects",
        ] {
            assert_eq!(counters[zero], 0, "{output}.{zero}: {outputs}");
        }
    }
    assert_eq!(outputs["mqtt"]["topic"], "lva/{stream}");
    assert_eq!(outputs["kafka"]["topic"], "lva.{stream}");

    // MQTT: the file's documents, once each, in order, on the stream's own topic.
    let received = sub.wait_lines(written.len(), Duration::from_secs(10));
    assert_eq!(received, written, "mosquitto_sub got the file's documents");
    // Kafka: the same, keyed by the stream's id.
    let records = kafka.wait_records("lva.bikes", written.len(), Duration::from_secs(20));
    let values: Vec<String> = records
        .iter()
        .map(|r| r.value.clone().unwrap_or_default())
        .collect();
    assert_eq!(values, written, "kafka-python got the file's documents");
    assert!(
        records.iter().all(|r| r.key.as_deref() == Some("bikes")),
        "{:?}",
        records.first()
    );

    // A camera publishing to a broker that is not there: the documents wait; DELETE stops it
    // after the MQTT output's flush-timeout (1 s) and counts what was left.
    let nobody = common::free_port();
    let camera = json!({
        "source": {"pipeline": "videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=10/1"},
        "model": "tiny",
        "outputs": {"mqtt": {"host": "127.0.0.1", "port": nobody, "flush-timeout": 1000,
                             "retry-delay": 100}},
    });
    assert_eq!(server.put("cam", &camera.to_string()).status, 201);
    server.wait("cam", "documents", Duration::from_secs(30), |s| {
        s["outputs"]["mqtt"]["queued"].as_u64() >= Some(5)
    });
    let asked = Instant::now();
    let deleted = server.delete("cam");
    let took = asked.elapsed();
    assert_eq!(deleted.status, 200, "{deleted:?}");
    let status = &deleted.json()["status"];
    assert_eq!(status["state"], "stopped", "{status:#}");
    assert!(status.get("error").is_none(), "flushed in time: {status:#}");
    let mqtt = &status["outputs"]["mqtt"];
    let documents = status["documents"].as_u64().expect("documents");
    assert_eq!(mqtt["sent"], 0, "{mqtt}");
    assert_eq!(mqtt["undelivered"], documents, "{status:#}");
    assert_eq!(mqtt["dropped"], documents, "no spool: {status:#}");
    assert!(mqtt["disconnects"].as_u64() >= Some(1), "{mqtt}");
    assert!(
        took >= Duration::from_millis(1000) && took < Duration::from_secs(4),
        "the stop took {took:?}"
    );
    eprintln!("brokers over HTTP: {:?} (the stop: {took:?})", t0.elapsed());
}
