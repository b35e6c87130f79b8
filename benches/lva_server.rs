//! lva-server under load: `wrk` POSTs 640×480 JPEGs (bikes.mp4's frames) to the real server and
//! reports requests/s and latency percentiles; the same JPEGs through a plain pipeline
//! (`multifilesrc ! jpegdec ! videoconvert ! ovinfer ! lvajson ! fakesink`) in the same run give
//! the reference rate. Both use the SSD model; the ratio is the figure of merit.
//!
//! Against Python: the same `wrk` load on lva-server and on the server a Python user would write
//! instead (`benches/python_server.py`: FastAPI on uvicorn, OpenCV, OpenVINO's AsyncInferQueue),
//! taking turns in rounds, at 1 connection (lva-server: 1 worker, latency hint; Python: latency
//! hint) and at 4 (lva-server with 2 workers and with 4, throughput hint; Python: throughput
//! hint); requests/s, p50, p99 and the server's CPU time per request. The Python server's answers
//! are first checked against lva-server's (same labels, boxes within 0.03 of the frame) on
//! person.jpg, dog.jpg and ten of the JPEGs.
//!
//! Overload: the same server with 2 workers and 2 queue places (capacity 4), first with 4 wrk
//! connections, then with 16 that ignore Retry-After and resend at once after every 503. The
//! successful requests per second under 4x overload should stay at 90% or more of the first;
//! once with the default `busy-delay-ms` and once with 503s answered at once.
//!
//! Streams: how many real-time 25 fps streams one process sustains without dropping a frame,
//! with `interval=1` and `interval=5`. Each stream is its own pipeline, bikes.mp4 played twice
//! (20 s) at its own pace, `concat ! avdec_h264 ! identity sync=true ! queue leaky=downstream
//! max-size-buffers=2 ! ovinfer model-instance-id=ssd performance-hint=throughput interval=K !
//! fakesink`; frames the leaky queue drops are counted (frames in against frames out, and its
//! `overrun` signal). N grows until a run drops frames (or falls behind the clock).
//!
//! Video: the latency of a stream's RTSP video output (issue 21), frame in to frame out. A live
//! 25 fps camera stand-in in this process (gst-rtsp-server: `videotestsrc is-live=true` 640×360,
//! each frame's number drawn in its pixels as two rows of 16 black/white 32×32 blocks, the bits
//! and their complement, then `x264enc tune=zerolatency ! rtph264pay`) records when each
//! numbered frame was marked; lva-server runs a stream on it (SSD, latency hint, boxes drawn,
//! `outputs.video.rtsp`), and a viewer here (`rtspsrc latency=0 ! decodebin ! videoconvert` to
//! GRAY8, `appsink`) reads the number of each frame as it arrives: latency = arrival − mark.
//! The reference is the same viewer on the camera itself; the two take turns in rounds (the
//! stream runs throughout), and the difference is what lva-server adds (depayload, decode,
//! inference, overlay, encode, its RTSP server). Frames lost: numbers that never arrived.
//!
//! cargo bench --bench lva_server              (after `make setup`: model, video, wrk, Python)
//! cargo bench --bench lva_server -- pipeline  (only the server against the plain pipeline)
//! cargo bench --bench lva_server -- python    (only lva-server against the Python server)
//! cargo bench --bench lva_server -- overload  (only the overload runs)
//! cargo bench --bench lva_server -- streams   (only the real-time streams)
//! cargo bench --bench lva_server -- video     (only the video output's latency, ~1.5 min)
//! Parts can be combined (`-- python streams`). OVLVA_BENCH_ROUNDS (default 3) sets the rounds
//! of the Python comparison, 8 s per server per round, and of the video latency, 7 s per path
//! per round; OVLVA_BENCH_STAGGER=1 starts the real-time streams staggered over an inference
//! period instead of together.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;

const FRAMES: usize = 250;
const SSD: &str = "models/ssd_mobilenet_v2_coco/ssd_mobilenet_v2_coco.xml";
const LABELS: &str = "models/ssd_mobilenet_v2_coco/labels.txt";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// bikes.mp4 as 640×480 JPEG files.
fn make_jpegs(dir: &Path) {
    std::fs::create_dir_all(dir).expect("dir");
    let bikes = root().join("media/bikes.mp4");
    let t = common::pipeline_time(
        &format!(
            "filesrc location={} ! decodebin ! videoconvert ! videoscale ! \
             video/x-raw,width=640,height=480 ! jpegenc quality=85 ! \
             multifilesink location={}/frame-%05d.jpg",
            bikes.display(),
            dir.display()
        ),
        |_| {},
    );
    eprintln!("made {FRAMES} JPEGs in {t:.1} s");
}

/// Frames per second of the plain pipeline over the JPEGs, `loops` times over.
fn pipeline_fps(dir: &Path, hint: &str, loops: usize) -> f64 {
    let n = FRAMES * loops;
    let t = common::pipeline_time(
        &format!(
            "multifilesrc location={}/frame-%05d.jpg loop=true num-buffers={n} \
             caps=image/jpeg,framerate=25/1 ! jpegdec ! videoconvert ! video/x-raw,format=BGR ! \
             ovinfer model={} labels={} decoder=ssd performance-hint={hint} ! lvajson ! \
             fakesink sync=false",
            dir.display(),
            root().join(SSD).display(),
            root().join(LABELS).display()
        ),
        |_| {},
    );
    n as f64 / t
}

struct Server(Child, String);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The server with the SSD model, and the server keys of `extra` (an object) if any.
fn start_server(
    dir: &Path,
    hint: &str,
    workers: usize,
    max_queue: usize,
    extra: &serde_json::Value,
) -> Server {
    let mut config = serde_json::json!({
        "models": {"ssd": {
            "model": root().join(SSD), "labels": root().join(LABELS), "decoder": "ssd",
            "performance-hint": hint, "workers": workers, "max-queue": max_queue
        }}
    });
    if let (Some(config), Some(extra)) = (config.as_object_mut(), extra.as_object()) {
        config.extend(extra.clone());
    }
    let path = dir.join(format!("server-{hint}-{workers}-{max_queue}-{extra}.json"));
    std::fs::write(&path, config.to_string()).expect("config");
    // LVA_SERVER_BIN: another build of the server, to compare.
    let binary =
        std::env::var("LVA_SERVER_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_lva-server").into());
    let mut command = Command::new(binary);
    command
        .arg("--config")
        .arg(&path)
        .args(["--listen", "127.0.0.1:0"]);
    spawn_server(command, "lva-server")
}

/// Starts a server that says `listening on http://ADDR,` on stderr when it is ready.
fn spawn_server(mut command: Command, what: &str) -> Server {
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Read every line (so the pipe never fills); hand over the address.
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let _ = tx.send(rest.split(',').next().unwrap_or("").to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(120))
        .unwrap_or_else(|_| panic!("{what} listening"));
    Server(child, addr)
}

const WRK_SCRIPT: &str = r#"
local frames = {}
local i = 0
init = function(args)
  for n = 0, tonumber(args[2]) - 1 do
    local f = assert(io.open(string.format("%s/frame-%05d.jpg", args[1], n), "rb"))
    frames[#frames + 1] = f:read("*all")
    f:close()
  end
end
request = function()
  i = i % #frames + 1
  return wrk.format("POST", nil, {["Content-Type"] = "image/jpeg"}, frames[i])
end
"#;

struct Load {
    rps: f64,
    /// Answers with a 2xx status, per second.
    ok_rps: f64,
    p50: String,
    p99: String,
    non_2xx: u64,
    /// wrk's socket errors (connect, read, write, timeout), summed.
    errors: u64,
    /// CPU time the server process used per request answered, in ms.
    cpu_ms: f64,
}

/// CPU time (user + system) a process has used so far, in seconds, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    common::proc_cpu(&pid.to_string(), false)
}

/// wrk's figure for a latency percentile, e.g. "31.05ms".
fn percentile(out: &str, p: &str) -> String {
    out.lines()
        .find(|l| l.trim_start().starts_with(p))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("?")
        .to_string()
}

fn wrk(server: &Server, dir: &Path, connections: usize, seconds: u32) -> Load {
    let script = dir.join("post.lua");
    std::fs::write(&script, WRK_SCRIPT).expect("script");
    let cpu_before = cpu_seconds(server.0.id());
    let out = Command::new("wrk")
        .args(["-t", "1", "-c", &connections.to_string()])
        .args(["-d", &format!("{seconds}s"), "--latency", "-s"])
        .arg(&script)
        .arg(format!("http://{}/ssd", server.1))
        .arg("--")
        .arg(dir)
        .arg(FRAMES.to_string())
        .output()
        .expect("wrk runs (make setup installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "wrk: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Requests/sec in {text}"));
    let non_2xx = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    // "  1234 requests in 20.00s, 1.23MB read"
    let (requests, secs) = text
        .lines()
        .find_map(|l| {
            let (n, rest) = l.trim().split_once(" requests in ")?;
            let secs = rest.split(['s', ',']).next()?.parse::<f64>().ok()?;
            Some((n.parse::<u64>().ok()?, secs))
        })
        .unwrap_or_else(|| panic!("no request count in {text}"));
    // "  Socket errors: connect 0, read 3, write 0, timeout 0"
    let errors = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Socket errors:"))
        .map_or(0, |v| {
            v.split(',')
                .filter_map(|f| f.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum()
        });
    let cpu = cpu_seconds(server.0.id()) - cpu_before;
    Load {
        rps,
        cpu_ms: cpu * 1000.0 / requests.max(1) as f64,
        ok_rps: requests.saturating_sub(non_2xx) as f64 / secs,
        p50: percentile(&text, "50%"),
        p99: percentile(&text, "99%"),
        non_2xx,
        errors,
    }
}

/// Capacity 4 (2 workers, 2 queue places) alone with 4 connections, then under 16 that ignore
/// Retry-After; `extra`: server keys.
fn overload(dir: &Path, seconds: u32, extra: serde_json::Value) {
    println!();
    println!("overload: 2 workers + 2 queue places, clients ignoring Retry-After, {extra}");
    println!(
        "{:<44} {:>8} {:>8} {:>9} {:>9} {:>8} {:>7}",
        "run", "2xx/s", "503/s", "p50", "p99", "errors", "ratio"
    );
    let server = start_server(dir, "throughput", 2, 2, &extra);
    // wrk leaves requests in flight when it stops: a pause lets them finish before the next
    // run, whose first requests would otherwise find the model busy.
    let run = |connections| {
        std::thread::sleep(Duration::from_secs(2));
        wrk(&server, dir, connections, seconds)
    };
    wrk(&server, dir, 4, 3); // warm-up
    let alone = run(4);
    let over = run(16);
    let again = run(4);
    let capacity = (alone.ok_rps + again.ok_rps) / 2.0;
    for (name, load) in [
        ("4 connections (capacity)", &alone),
        ("16 connections (4x capacity)", &over),
        ("4 connections again", &again),
    ] {
        println!(
            "{:<44} {:>8.1} {:>8.1} {:>9} {:>9} {:>8} {:>7.2}",
            name,
            load.ok_rps,
            load.non_2xx as f64 / f64::from(seconds),
            load.p50,
            load.p99,
            load.errors,
            load.ok_rps / capacity
        );
    }
}

/// The Python server of `benches/python_server.py` with `hint`, on a free port.
fn start_python(hint: &str) -> Server {
    let python = root().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run make setup (scripts/setup.sh)",
        python.display()
    );
    let mut command = Command::new(python);
    command
        .arg(root().join("benches/python_server.py"))
        .arg(root().join(SSD))
        .arg(root().join(LABELS))
        .arg(hint);
    spawn_server(command, "benches/python_server.py")
}

/// POSTs a JPEG on a connection of its own: the status and the body.
fn post(addr: &str, jpeg: &[u8]) -> (u16, Vec<u8>) {
    request(addr, "POST", "/ssd", Some(("image/jpeg", jpeg)))
}

/// A JSON request (`body`, if any) on a connection of its own: the status and the body.
fn http(addr: &str, method: &str, path: &str, body: Option<&[u8]>) -> (u16, Vec<u8>) {
    request(addr, method, path, body.map(|b| ("application/json", b)))
}

/// A request on a connection of its own (`body`: its content type and bytes): the status and
/// the body (the server sends a Content-Length, not chunks).
fn request(addr: &str, method: &str, path: &str, body: Option<(&str, &[u8])>) -> (u16, Vec<u8>) {
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let (kind, bytes) = body.unwrap_or(("application/json", b""));
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {kind}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        bytes.len()
    )
    .expect("head");
    stream.write_all(bytes).expect("body");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("answer");
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an answer head");
    let head = String::from_utf8_lossy(&answer[..split]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    (status, answer[split + 4..].to_vec())
}

/// An entity of an LVA document: label, confidence, box (l, t, w, h), subtype.
#[derive(Debug)]
struct Detection(String, f64, [f64; 4], String);

fn detections(status: u16, body: &[u8]) -> Vec<Detection> {
    if status == 204 {
        return Vec::new();
    }
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(body));
    let doc: serde_json::Value = serde_json::from_slice(body).expect("a JSON document");
    doc["inferences"]
        .as_array()
        .expect("inferences")
        .iter()
        .map(|i| {
            assert_eq!(i["type"], "entity", "{i}");
            let e = &i["entity"];
            let b = &e["box"];
            let f = |v: &serde_json::Value| v.as_f64().expect("a number");
            Detection(
                e["tag"]["value"].as_str().expect("a label").to_string(),
                f(&e["tag"]["confidence"]),
                [f(&b["l"]), f(&b["t"]), f(&b["w"]), f(&b["h"])],
                i["subtype"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// Box and confidence tolerances of the answer check: OpenCV's JPEG decoder and resize against
/// jpegdec and ovinfer's converter move boxes by about 1% of the frame.
const BOX_TOLERANCE: f64 = 0.03;
const CONFIDENCE_TOLERANCE: f64 = 0.06;

/// The detections of `a` clearly above the 0.5 threshold that have none in `b` with the same
/// label and subtype, and a confidence and a box within the tolerances; `worst` keeps the
/// largest differences of those matched.
fn unmatched<'a>(
    a: &'a [Detection],
    b: &[Detection],
    worst: &mut (f64, f64),
) -> Vec<&'a Detection> {
    a.iter()
        .filter(|d| d.1 >= 0.5 + CONFIDENCE_TOLERANCE)
        .filter(|d| {
            let best = b
                .iter()
                .filter(|o| o.0 == d.0 && o.3 == d.3)
                .map(|o| {
                    let offset = (0..4).map(|k| (o.2[k] - d.2[k]).abs()).fold(0.0, f64::max);
                    (offset, (o.1 - d.1).abs())
                })
                .min_by(|x, y| x.0.total_cmp(&y.0));
            match best {
                Some((offset, confidence))
                    if offset <= BOX_TOLERANCE && confidence <= CONFIDENCE_TOLERANCE =>
                {
                    worst.0 = worst.0.max(offset);
                    worst.1 = worst.1.max(confidence);
                    false
                }
                _ => true,
            }
        })
        .collect()
}

/// Checks that the Python server answers as lva-server does on person.jpg, dog.jpg and every
/// 25th JPEG of `dir`; panics otherwise.
fn check_answers(lva: &Server, python: &Server, dir: &Path) {
    let mut images: Vec<PathBuf> = ["media/person.jpg", "media/dog.jpg"]
        .iter()
        .map(|p| root().join(p))
        .collect();
    images.extend(
        (0..FRAMES)
            .step_by(25)
            .map(|n| dir.join(format!("frame-{n:05}.jpg"))),
    );
    let (mut compared, mut worst) = (0, (0.0f64, 0.0f64));
    for image in &images {
        let jpeg = std::fs::read(image).expect("a JPEG");
        let (ls, lb) = post(&lva.1, &jpeg);
        let (ps, pb) = post(&python.1, &jpeg);
        let (l, p) = (detections(ls, &lb), detections(ps, &pb));
        let missing: Vec<_> = unmatched(&l, &p, &mut worst);
        let extra: Vec<_> = unmatched(&p, &l, &mut worst);
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{}: the Python server answers otherwise than lva-server:\n  lva-server {ls}: {l:?}\n  \
             python {ps}: {p:?}\n  missing in Python's: {missing:?}\n  extra in Python's: {extra:?}",
            image.display()
        );
        compared += l
            .iter()
            .filter(|d| d.1 >= 0.5 + CONFIDENCE_TOLERANCE)
            .count();
    }
    println!(
        "answers checked: {} images, {compared} detections match (labels; boxes within {:.3} of \
         the frame, confidences within {:.3})",
        images.len(),
        worst.0,
        worst.1
    );
}

/// wrk's latency figure ("23.61ms", "1.02s", "950.00us") in ms.
fn ms(figure: &str) -> f64 {
    let (value, unit) = figure
        .find(|c: char| c.is_ascii_alphabetic())
        .map_or((figure, ""), |i| figure.split_at(i));
    let value: f64 = value.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => value / 1000.0,
        "s" => value * 1000.0,
        "m" => value * 60_000.0,
        _ => value,
    }
}

/// Medians over rounds (a round the VM's neighbours slowed does not move them) of req/s, p50
/// and p99 (ms), and CPU ms per request.
fn medians(loads: &[Load]) -> [f64; 4] {
    let median = |f: &dyn Fn(&Load) -> f64| {
        let mut v: Vec<f64> = loads.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        }
    };
    [
        median(&|l| l.rps),
        median(&|l| ms(&l.p50)),
        median(&|l| ms(&l.p99)),
        median(&|l| l.cpu_ms),
    ]
}

/// lva-server against the Python server, taking turns in rounds of `seconds`: at 1 connection
/// lva-server with 1 worker and the latency hint; at 4, with 2 workers (one per core, the default)
/// and with 4 (one per connection), throughput hint. The Python server with the same hint.
fn against_python(dir: &Path, rounds: usize, seconds: u32) {
    println!();
    println!(
        "lva-server vs the Python server (FastAPI + uvicorn + OpenCV + OpenVINO AsyncInferQueue), \
         {rounds} rounds of {seconds} s each, taking turns"
    );
    println!(
        "{:<44} {:>7} {:>7} {:>7} {:>8}   per round: req/s/p99 ms",
        "run (medians of the rounds)", "req/s", "p50 ms", "p99 ms", "CPU ms"
    );
    let mut checked = false;
    for (hint, workers, connections) in [("latency", &[1][..], 1), ("throughput", &[2, 4], 4)] {
        let mut servers: Vec<(String, Server)> = workers
            .iter()
            .map(|&w| {
                (
                    format!("lva-server {w} worker(s), {hint}, {connections} conn."),
                    start_server(dir, hint, w, 64, &serde_json::Value::Null),
                )
            })
            .collect();
        servers.push((
            format!("Python 1 process, {hint}, {connections} conn."),
            start_python(hint),
        ));
        let python = servers.len() - 1;
        if !checked {
            check_answers(&servers[0].1, &servers[python].1, dir);
            checked = true;
        }
        for (_, server) in &servers {
            wrk(server, dir, connections, 2); // warm-up
        }
        let mut loads: Vec<Vec<Load>> = servers.iter().map(|_| Vec::new()).collect();
        for round in 0..rounds {
            // Each round in another order, so that a drift of the VM's speed hits all alike.
            for k in 0..servers.len() {
                let who = (k + round) % servers.len();
                std::thread::sleep(Duration::from_secs(1));
                let load = wrk(&servers[who].1, dir, connections, seconds);
                if load.non_2xx > 0 || load.errors > 0 {
                    println!(
                        "  ({}: {} answers were not 2xx, {} socket errors)",
                        servers[who].0, load.non_2xx, load.errors
                    );
                }
                loads[who].push(load);
            }
        }
        let reference = medians(&loads[python]);
        for ((name, _), loads) in servers.iter().zip(&loads) {
            let m = medians(loads);
            let per_round: Vec<String> = loads
                .iter()
                .map(|x| format!("{:.1}/{:.0}", x.rps, ms(&x.p99)))
                .collect();
            println!(
                "{name:<44} {:>7.1} {:>7.1} {:>7.1} {:>8.1}   {}",
                m[0],
                m[1],
                m[2],
                m[3],
                per_round.join(", ")
            );
        }
        for ((name, _), loads) in servers.iter().zip(&loads).take(python) {
            let m = medians(loads);
            println!(
                "{:<44} {:>7.2} {:>7.2} {:>7.2} {:>8.2}",
                format!(
                    "  ratio to Python: {}",
                    &name[..name.find(',').unwrap_or(name.len())]
                ),
                m[0] / reference[0],
                m[1] / reference[1],
                m[2] / reference[2],
                m[3] / reference[3]
            );
        }
    }
}

/// One real-time run: `n` streams with `interval`.
struct StreamsRun {
    /// Frames into the leaky queues, all streams.
    frames: u64,
    /// Frames the queues dropped (in - out).
    dropped: u64,
    /// The queues' `overrun` signals.
    overruns: u64,
    inferences: u64,
    /// The slowest stream's time from PLAYING to EOS against the video's duration.
    slowest: f64,
}

impl StreamsRun {
    fn sustained(&self) -> bool {
        self.dropped == 0 && self.slowest < 1.05
    }
}

const VIDEO: &str = "media/bikes.mp4";
/// bikes.mp4: 250 frames at 25 fps.
const VIDEO_SECONDS: f64 = 10.0;

/// The ovinfer every stream of a run shares its model instance with (model-instance-id=ssd).
fn infer_element(interval: u32) -> String {
    format!(
        "ovinfer model={} labels={} decoder=ssd model-instance-id=ssd \
         performance-hint=throughput interval={interval}",
        root().join(SSD).display(),
        root().join(LABELS).display()
    )
}

/// A pipeline that holds the model instance between runs (each run's first frames would
/// otherwise wait for a compilation) and warms its requests: it stays in PLAYING after EOS.
fn instance_keeper() -> gst::Pipeline {
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers=8 ! video/x-raw,format=I420,width=640,height=272 ! {} ! \
         fakesink sync=false",
        infer_element(1)
    ))
    .expect("keeper")
    .downcast::<gst::Pipeline>()
    .expect("a pipeline");
    pipeline.set_state(gst::State::Playing).expect("playing");
    let msg = pipeline.bus().expect("bus").timed_pop_filtered(
        gst::ClockTime::from_seconds(120),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    assert!(
        matches!(
            msg.as_ref().map(|m| m.view()),
            Some(gst::MessageView::Eos(_))
        ),
        "keeper: {msg:?}"
    );
    pipeline
}

/// `n` streams, each bikes.mp4 played `loops` times at 25 fps in a pipeline of its own.
fn run_streams(n: usize, interval: u32, loops: usize, stagger: bool) -> StreamsRun {
    let counter = || Arc::new(AtomicU64::new(0));
    let (frames_in, frames_out, overruns) = (counter(), counter(), counter());
    let video = root().join(VIDEO);
    let mut pipelines = Vec::new();
    for _ in 0..n {
        let files: String = (0..loops)
            .map(|_| {
                format!(
                    "filesrc location={} ! qtdemux ! h264parse ! c. ",
                    video.display()
                )
            })
            .collect();
        let pipeline = gst::parse::launch(&format!(
            "concat name=c ! avdec_h264 ! identity sync=true ! \
             queue name=q leaky=downstream max-size-buffers=2 max-size-bytes=0 max-size-time=0 ! \
             {} name=infer ! fakesink sync=false async=false {files}",
            infer_element(interval)
        ))
        .expect("stream pipeline")
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
        let queue = pipeline.by_name("q").expect("queue");
        for (pad, count) in [("sink", &frames_in), ("src", &frames_out)] {
            let count = count.clone();
            queue.static_pad(pad).expect("pad").add_probe(
                gst::PadProbeType::BUFFER,
                move |_, _| {
                    count.fetch_add(1, Ordering::Relaxed);
                    gst::PadProbeReturn::Ok
                },
            );
        }
        let count = overruns.clone();
        queue.connect("overrun", false, move |_| {
            count.fetch_add(1, Ordering::Relaxed);
            None
        });
        let end = Arc::new(Mutex::new(None));
        let at = end.clone();
        pipeline
            .bus()
            .expect("bus")
            .set_sync_handler(move |_, msg| {
                if matches!(msg.view(), gst::MessageView::Eos(_)) {
                    *at.lock().expect("end") = Some(Instant::now());
                }
                gst::BusSyncReply::Pass
            });
        pipelines.push((pipeline, end));
    }
    // Together, every stream's inferred frames come at the same moments, the worst case;
    // staggered, stream i starts i/n of an inference period (interval frames) after the first.
    let first = Instant::now();
    let mut starts = Vec::new();
    for (i, (pipeline, _)) in pipelines.iter().enumerate() {
        if stagger {
            let at = Duration::from_millis(40 * u64::from(interval)) * i as u32 / n as u32;
            std::thread::sleep(at.saturating_sub(first.elapsed()));
        }
        starts.push(Instant::now());
        pipeline.set_state(gst::State::Playing).expect("playing");
    }
    let timeout = gst::ClockTime::from_seconds(loops as u64 * 10 + 120);
    let mut slowest: f64 = 0.0;
    let mut inferences = 0;
    for ((pipeline, end), start) in pipelines.iter().zip(starts) {
        let msg = pipeline
            .bus()
            .expect("bus")
            .timed_pop_filtered(timeout, &[gst::MessageType::Eos, gst::MessageType::Error]);
        if let Some(gst::MessageView::Error(e)) = msg.as_ref().map(|m| m.view()) {
            panic!("stream: {} ({:?})", e.error(), e.debug());
        }
        let end = end.lock().expect("end").expect("EOS");
        slowest = slowest.max((end - start).as_secs_f64());
        inferences += pipeline
            .by_name("infer")
            .expect("ovinfer")
            .property::<u64>("inferences");
        pipeline.set_state(gst::State::Null).expect("null");
    }
    let (frames, out) = (
        frames_in.load(Ordering::Relaxed),
        frames_out.load(Ordering::Relaxed),
    );
    StreamsRun {
        frames,
        dropped: frames.saturating_sub(out),
        overruns: overruns.load(Ordering::Relaxed),
        inferences,
        slowest: slowest / (loops as f64 * VIDEO_SECONDS),
    }
}

/// The largest number of real-time streams with `interval` that run without drops, searched
/// from `start` up (or down, if `start` drops).
fn largest_streams(interval: u32, start: usize, loops: usize, stagger: bool) -> usize {
    let kept = |n: usize| {
        let run = run_streams(n, interval, loops, stagger);
        println!(
            "{:<24} {:>8} {:>8} {:>9} {:>11} {:>10.3} {:>5}",
            format!("interval={interval}, {n} stream(s)"),
            run.frames,
            run.dropped,
            run.overruns,
            run.inferences,
            run.slowest,
            if run.sustained() { "yes" } else { "no" }
        );
        run.sustained()
    };
    let mut n = start.max(1);
    if kept(n) {
        while kept(n + 1) {
            n += 1;
        }
        n
    } else {
        while n > 1 {
            n -= 1;
            if kept(n) {
                return n;
            }
        }
        0
    }
}

fn streams(loops: usize, stagger: bool) {
    println!();
    println!(
        "real-time streams: bikes.mp4 (640x272, 25 fps) x{loops} per stream, one pipeline each, \
         SSD with performance-hint=throughput, one shared model instance, streams started {}",
        if stagger {
            "staggered over an inference period"
        } else {
            "together"
        }
    );
    println!(
        "{:<24} {:>8} {:>8} {:>9} {:>11} {:>10} {:>5}",
        "run", "frames", "dropped", "overruns", "inferences", "time/real", "kept"
    );
    let keeper = instance_keeper();
    let every = largest_streams(1, 1, loops, stagger);
    // A fifth of the inferences: start the search at 5 times as many streams (decoding takes
    // its share too, so the answer is rarely above).
    let fifth = largest_streams(5, (every * 5).max(2), loops, stagger);
    let _ = keeper.set_state(gst::State::Null);
    println!("largest number of streams without drops: interval=1: {every}, interval=5: {fifth}");
}

// Video out latency: a live camera stand-in numbers its frames in their pixels; a viewer reads
// the numbers off lva-server's RTSP output and off the camera itself.

/// The camera's picture.
const CAM_WIDTH: usize = 640;
const CAM_HEIGHT: usize = 360;
/// The frame number's mark: 16 blocks of 32×32 px, the number's bits (most significant first)
/// in one row and their complement in the row under it, white for 1, black for 0, from
/// (MARK_X, MARK_Y). Low in the frame, away from where ovoverlay writes its labels (above a
/// box's top-left corner) on the test pattern's detections.
const MARK_BLOCK: usize = 32;
const MARK_BITS: usize = 16;
const MARK_X: usize = 64;
const MARK_Y: usize = CAM_HEIGHT - 2 * MARK_BLOCK - 24;

/// Writes number `n` (its low 16 bits) into an I420 frame: luma white/black, chroma neutral.
fn write_mark(frame: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>, n: u64) {
    use gst_video::prelude::*;
    let strides: Vec<usize> = frame
        .plane_stride()
        .iter()
        .map(|&s| usize::try_from(s).unwrap_or(0))
        .collect();
    for bit in 0..MARK_BITS {
        let one = (n >> (MARK_BITS - 1 - bit)) & 1 == 1;
        let x0 = MARK_X + bit * MARK_BLOCK;
        for (row, white) in [(0, one), (1, !one)] {
            let y0 = MARK_Y + row * MARK_BLOCK;
            if let Ok(y) = frame.plane_data_mut(0) {
                for line in y0..y0 + MARK_BLOCK {
                    let at = line * strides[0] + x0;
                    y[at..at + MARK_BLOCK].fill(if white { 255 } else { 0 });
                }
            }
            for plane in 1..3u32 {
                let stride = strides[plane as usize];
                if let Ok(c) = frame.plane_data_mut(plane) {
                    for line in y0 / 2..(y0 + MARK_BLOCK) / 2 {
                        let at = line * stride + x0 / 2;
                        c[at..at + MARK_BLOCK / 2].fill(128);
                    }
                }
            }
        }
    }
}

/// The number marked in a GRAY8 frame, if every bit reads clearly (a bit's block and its
/// complement's differ by more than a quarter of the range in the right direction); the
/// mean of each block's middle 16×16 pixels is read, so edges blurred by encoding do not count.
fn read_mark(gray: &[u8], stride: usize) -> Option<u16> {
    let mean = |x0: usize, y0: usize| {
        let inner = MARK_BLOCK / 4;
        let mut sum = 0u32;
        for line in y0 + inner..y0 + MARK_BLOCK - inner {
            let at = line * stride + x0 + inner;
            sum += gray
                .get(at..at + MARK_BLOCK / 2)?
                .iter()
                .map(|&v| u32::from(v))
                .sum::<u32>();
        }
        Some(sum / (MARK_BLOCK as u32 / 2).pow(2))
    };
    let mut n = 0u16;
    for bit in 0..MARK_BITS {
        let x0 = MARK_X + bit * MARK_BLOCK;
        let (a, b) = (mean(x0, MARK_Y)?, mean(x0, MARK_Y + MARK_BLOCK)?);
        if a.abs_diff(b) < 64 {
            return None;
        }
        n = (n << 1) | u16::from(a > b);
    }
    Some(n)
}

/// When each numbered frame left the camera: its mark (low 16 bits) → its whole number and
/// the moment it was marked, just before the camera's encoder.
type Departures = Arc<Mutex<std::collections::HashMap<u16, (u64, Instant)>>>;

/// The camera's frames as RTP: the RTP timestamp of each frame → when it was marked and when
/// its first packet left the payloader.
type Sent = Arc<Mutex<std::collections::HashMap<u32, (Instant, Instant)>>>;

/// The RTP timestamp of a packet.
fn rtp_timestamp(packet: &gst::BufferRef) -> Option<u32> {
    let map = packet.map_readable().ok()?;
    Some(u32::from_be_bytes(map.get(4..8)?.try_into().ok()?))
}

/// Numbers each frame of a camera media (`element`, with `stamp` before the encoder and `pay0`)
/// and records when it was marked (`marked`, numbers from `counter`) and when its first RTP
/// packet left the payloader (`paid`).
fn instrument(element: &gst::Element, marked: &Departures, counter: &Arc<AtomicU64>, paid: &Sent) {
    let bin = element.clone().downcast::<gst::Bin>().ok();
    let pad = |name: &str| {
        bin.as_ref()
            .and_then(|b| b.by_name(name))
            .and_then(|e| e.static_pad("src"))
    };
    let (Some(stamp), Some(pay)) = (pad("stamp"), pad("pay0")) else {
        return;
    };
    // Marks in encoding order: x264enc (zerolatency: no reordering, no delay)
    // gives one frame out per frame in.
    let marks = Arc::new(Mutex::new(std::collections::VecDeque::new()));
    let (marked, counter, queued) = (marked.clone(), counter.clone(), marks.clone());
    stamp.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let video = pad
            .current_caps()
            .and_then(|c| gst_video::VideoInfo::from_caps(&c).ok());
        if let (Some(video), Some(buffer)) = (video, info.buffer_mut()) {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut frame) =
                gst_video::VideoFrameRef::from_buffer_ref_writable(buffer.make_mut(), &video)
            {
                write_mark(&mut frame, n);
            }
            let now = Instant::now();
            marked
                .lock()
                .expect("departures")
                .insert(n as u16, (n, now));
            queued.lock().expect("marks").push_back(now);
        }
        gst::PadProbeReturn::Ok
    });
    let (paid, last) = (paid.clone(), Mutex::new(None));
    pay.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        move |_, info| {
            let first = info
                .buffer()
                .map(|b| b.as_ref())
                .or_else(|| info.buffer_list().and_then(|l| l.get(0)));
            let Some(first) = first else {
                return gst::PadProbeReturn::Ok;
            };
            // The parameter sets and slices of a frame share its timestamp.
            let mut last = last.lock().expect("last");
            if *last != Some(first.pts()) {
                *last = Some(first.pts());
                let mark = marks.lock().expect("marks").pop_front();
                if let (Some(mark), Some(ts)) = (mark, rtp_timestamp(first)) {
                    paid.lock()
                        .expect("sent")
                        .insert(ts, (mark, Instant::now()));
                }
            }
            gst::PadProbeReturn::Ok
        },
    );
}

/// A live 25 fps camera stand-in: a real RTSP server (gst-rtsp-server, its own GLib main
/// context and thread) at rtsp://127.0.0.1:PORT/cam, one shared media for every client, each
/// frame numbered in its pixels before `x264enc` (numbers go on across medias).
struct Camera {
    port: u16,
    departures: Departures,
    sent: Sent,
    main_loop: gst::glib::MainLoop,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Camera {
    fn start() -> Camera {
        use gst_rtsp_server::prelude::*;
        let ctx = gst::glib::MainContext::new();
        let main_loop = gst::glib::MainLoop::new(Some(&ctx), false);
        let (departures, sent): (Departures, Sent) = Default::default();
        let (tx, rx) = std::sync::mpsc::channel();
        let launch = format!(
            "( videotestsrc is-live=true pattern=smpte horizontal-speed=2 ! \
             video/x-raw,format=I420,width={CAM_WIDTH},height={CAM_HEIGHT},framerate=25/1 ! \
             identity name=stamp ! x264enc tune=zerolatency speed-preset=ultrafast \
             key-int-max=25 ! rtph264pay name=pay0 pt=96 config-interval=-1 )"
        );
        let (looping, marked, paid) = (main_loop.clone(), departures.clone(), sent.clone());
        let counter = Arc::new(AtomicU64::new(0));
        let thread = std::thread::spawn(move || {
            ctx.with_thread_default(|| {
                let server = gst_rtsp_server::RTSPServer::new();
                server.set_address("127.0.0.1");
                server.set_service("0");
                let factory = gst_rtsp_server::RTSPMediaFactory::new();
                factory.set_launch(&launch);
                factory.set_shared(true);
                factory.connect_media_configure(move |_, media| {
                    instrument(&media.element(), &marked, &counter, &paid);
                });
                server
                    .mount_points()
                    .expect("mount points")
                    .add_factory("/cam", factory);
                let source = server.attach(Some(&ctx)).expect("the camera listens");
                let _ = tx.send(server.bound_port());
                looping.run();
                server.client_filter(Some(&mut |_, _| gst_rtsp_server::RTSPFilterResult::Remove));
                if let Some(source) = ctx.find_source_by_id(&source) {
                    source.destroy();
                }
                while ctx.iteration(false) {}
            })
            .expect("a main context for the camera");
        });
        let port = rx.recv().expect("the camera starts");
        Camera {
            port: u16::try_from(port).expect("a port"),
            departures,
            sent,
            main_loop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}/cam", self.port)
    }
}

impl Drop for Camera {
    fn drop(&mut self) {
        self.main_loop.quit();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The `q` quantile (0..1) of `values`, nearest rank (NaN if empty).
fn quantile(values: &[f64], q: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// What a viewer saw over its measured window.
#[derive(Default)]
struct Viewing {
    /// Latency of each frame read and matched to its departure, ms, in arrival order.
    latencies: Vec<f64>,
    /// Frames (whole numbers) that departed between the first and last matched one and never
    /// arrived.
    lost: u64,
    /// Frames that arrived twice.
    repeated: u64,
    /// Frames whose mark could not be read (or had no departure).
    unread: u64,
    /// Watching the camera itself: per frame, ms from its mark to its first packet leaving the
    /// camera's payloader, and to its first packet reaching the viewer's depayloader.
    encoded: Vec<f64>,
    received: Vec<f64>,
}

impl Viewing {
    fn quantile(&self, q: f64) -> f64 {
        quantile(&self.latencies, q)
    }

    /// The median latency of the last quarter of the window minus that of the first, ms:
    /// near 0 unless latency grows (or shrinks) over time.
    fn trend(&self) -> f64 {
        let (n, quarter) = (self.latencies.len(), self.latencies.len() / 4);
        if quarter == 0 {
            return f64::NAN;
        }
        quantile(&self.latencies[n - quarter..], 0.5) - quantile(&self.latencies[..quarter], 0.5)
    }
}

/// Watches `url` (`rtspsrc latency=0 ! decodebin ! videoconvert` to GRAY8, into an appsink
/// that reads each frame's mark when it arrives): `skip` after the first frame is not counted,
/// the `seconds` after it are. With `sent` (watching the camera itself), the RTP packets
/// entering `decodebin` are timed too.
fn watch(
    url: &str,
    departures: &Departures,
    sent: Option<&Sent>,
    skip: Duration,
    seconds: Duration,
) -> Viewing {
    let description = format!(
        "rtspsrc location={url} latency=0 ! decodebin name=decode ! videoconvert ! videoscale ! \
         video/x-raw,format=GRAY8,width={CAM_WIDTH},height={CAM_HEIGHT} ! \
         appsink name=sink sync=false max-buffers=5 drop=false enable-last-sample=false"
    );
    let pipeline = gst::parse::launch(&description)
        .unwrap_or_else(|e| panic!("{description}: {e}"))
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
    let sink = pipeline
        .by_name("sink")
        .and_downcast::<gst_app::AppSink>()
        .expect("the appsink");
    // RTP timestamp and arrival of each frame's first packet.
    let packets: Arc<Mutex<Vec<(u32, Instant)>>> = Arc::default();
    if sent.is_some() {
        let (got, last) = (packets.clone(), Mutex::new(None));
        pipeline
            .by_name("decode")
            .and_then(|d| d.static_pad("sink"))
            .expect("decodebin's sink pad")
            .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                let at = Instant::now();
                if let Some(ts) = info.buffer().and_then(|b| rtp_timestamp(b)) {
                    let mut last = last.lock().expect("last");
                    if *last != Some(ts) {
                        *last = Some(ts);
                        got.lock().expect("packets").push((ts, at));
                    }
                }
                gst::PadProbeReturn::Ok
            });
    }
    // Mark (or None when unreadable) and arrival of every frame.
    type Arrivals = Mutex<Vec<(Option<u16>, Instant)>>;
    let arrivals: Arc<Arrivals> = Arc::default();
    let arrived = arrivals.clone();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Flushing)?;
                let at = Instant::now();
                let mark = sample.caps().and_then(|caps| {
                    let info = gst_video::VideoInfo::from_caps(caps).ok()?;
                    let frame =
                        gst_video::VideoFrameRef::from_buffer_ref_readable(sample.buffer()?, &info)
                            .ok()?;
                    let stride = usize::try_from(info.stride()[0]).ok()?;
                    read_mark(frame.plane_data(0).ok()?, stride)
                });
                arrived.lock().expect("arrivals").push((mark, at));
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    pipeline.set_state(gst::State::Playing).expect("playing");
    let bus = pipeline.bus().expect("bus");
    let check = |until: Instant| {
        while Instant::now() < until {
            let wait = until.saturating_duration_since(Instant::now());
            let msg = bus.timed_pop_filtered(
                gst::ClockTime::from_mseconds(wait.as_millis() as u64),
                &[gst::MessageType::Error, gst::MessageType::Eos],
            );
            match msg.as_ref().map(|m| m.view()) {
                Some(gst::MessageView::Error(e)) => {
                    panic!("viewer of {url}: {} ({:?})", e.error(), e.debug())
                }
                Some(_) => panic!("viewer of {url}: the stream ended"),
                None => {}
            }
        }
    };
    let t0 = Instant::now();
    let first = loop {
        if let Some(&(_, at)) = arrivals.lock().expect("arrivals").first() {
            break at;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no frame from {url} in 30 s"
        );
        check(Instant::now() + Duration::from_millis(50));
    };
    let (from, to) = (first + skip, first + skip + seconds);
    check(to);
    pipeline.set_state(gst::State::Null).expect("null");
    let departures = departures.lock().expect("departures");
    let mut viewing = Viewing::default();
    let mut seen = std::collections::BTreeSet::new();
    for &(mark, at) in arrivals.lock().expect("arrivals").iter() {
        if at < from || at > to {
            continue;
        }
        match mark.and_then(|m| departures.get(&m)) {
            Some(&(n, left)) if left <= at => {
                viewing.latencies.push((at - left).as_secs_f64() * 1000.0);
                if !seen.insert(n) {
                    viewing.repeated += 1;
                }
            }
            _ => viewing.unread += 1,
        }
    }
    if let (Some(first), Some(last)) = (seen.first(), seen.last()) {
        viewing.lost = (last - first + 1).saturating_sub(seen.len() as u64);
    }
    if let Some(sent) = sent {
        let sent = sent.lock().expect("sent");
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        for &(ts, at) in packets.lock().expect("packets").iter() {
            if let (true, Some(&(mark, paid))) = (at >= from && at <= to, sent.get(&ts)) {
                viewing.encoded.push(ms(paid - mark));
                viewing.received.push(ms(at - mark));
            }
        }
    }
    viewing
}

/// A free TCP port on 127.0.0.1 (bound and released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The median of `v` (NaN if empty).
fn median_of(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => v[n / 2],
        _ => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Latency of a stream's RTSP video output: the camera → lva-server (SSD, boxes drawn, x264enc)
/// → a viewer, against the camera watched directly by the same viewer, taking turns in rounds.
fn video_latency(dir: &Path, rounds: usize, seconds: u64) {
    let skip = Duration::from_secs(2);
    let measured = Duration::from_secs(seconds);
    let camera = Camera::start();
    let rtsp_port = free_port();
    let server = start_server(
        dir,
        "latency",
        1,
        64,
        &serde_json::json!({"streams": {"rtsp-port": rtsp_port}}),
    );
    let definition = serde_json::json!({
        "source": {"uri": camera.url(), "realtime": true},
        "model": "ssd",
        "outputs": {"video": {"rtsp": {}}}
    });
    let (status, body) = http(
        &server.1,
        "PUT",
        "/streams/cam",
        Some(definition.to_string().as_bytes()),
    );
    assert!(
        status == 201 || status == 200,
        "PUT /streams/cam: {status} {}",
        String::from_utf8_lossy(&body)
    );
    let stream_status = || {
        let (status, body) = http(&server.1, "GET", "/streams/cam", None);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let info: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        info["status"].clone()
    };
    let t0 = Instant::now();
    let url = loop {
        let s = stream_status();
        if s["state"] == "running" && s["processed_frames"].as_u64() > Some(25) {
            break s["outputs"]["video"]["rtsp"]["url"]
                .as_str()
                .expect("an RTSP URL")
                .to_string();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "the stream did not run: {s:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(url, format!("rtsp://127.0.0.1:{rtsp_port}/streams/cam"));
    println!();
    println!(
        "video out latency: a live 25 fps {CAM_WIDTH}x{CAM_HEIGHT} camera (RTSP, x264enc \
         zerolatency) -> lva-server stream (SSD, latency hint, boxes drawn, x264enc) -> RTSP \
         viewer, against the camera watched directly; {rounds} rounds of {seconds} s per path \
         (after {} s not counted), taking turns",
        skip.as_secs()
    );
    // Warm-up: both paths once (decoders loaded, the mount's media made).
    let warm = Duration::from_secs(2);
    watch(&url, &camera.departures, None, warm, warm);
    watch(&camera.url(), &camera.departures, None, warm, warm);
    let before = stream_status();
    let paths = [
        ("camera -> lva-server -> viewer", url.as_str()),
        ("camera -> viewer (reference)", &camera.url()),
    ];
    let mut viewings: Vec<Vec<Viewing>> = vec![Vec::new(), Vec::new()];
    for round in 0..rounds {
        for k in 0..2 {
            let who = (k + round) % 2;
            // The camera's RTP timestamps mean something only on the camera's own packets.
            let sent = (who == 1).then_some(&camera.sent);
            viewings[who].push(watch(
                paths[who].1,
                &camera.departures,
                sent,
                skip,
                measured,
            ));
        }
    }
    let after = stream_status();
    println!(
        "{:<34} {:>7} {:>5} {:>6} {:>7} {:>7} {:>7} {:>7}   per round: p50/p99/trend ms",
        "path (medians of the rounds)",
        "frames",
        "lost",
        "unread",
        "p50 ms",
        "p99 ms",
        "max ms",
        "trend"
    );
    let med = |v: &[Viewing], f: &dyn Fn(&Viewing) -> f64| median_of(v.iter().map(f).collect());
    let mut figures = Vec::new();
    for ((name, _), v) in paths.iter().zip(&viewings) {
        let frames: usize = v.iter().map(|x| x.latencies.len()).sum();
        let lost: u64 = v.iter().map(|x| x.lost).sum();
        let repeated: u64 = v.iter().map(|x| x.repeated).sum();
        if repeated > 0 {
            println!("  ({name}: {repeated} frames arrived twice)");
        }
        let unread: u64 = v.iter().map(|x| x.unread).sum();
        let m = [
            med(v, &|x| x.quantile(0.5)),
            med(v, &|x| x.quantile(0.99)),
            med(v, &|x| x.quantile(1.0)),
            med(v, &Viewing::trend),
        ];
        let per_round: Vec<String> = v
            .iter()
            .map(|x| {
                format!(
                    "{:.0}/{:.0}/{:+.0}",
                    x.quantile(0.5),
                    x.quantile(0.99),
                    x.trend()
                )
            })
            .collect();
        println!(
            "{name:<34} {frames:>7} {lost:>5} {unread:>6} {:>7.1} {:>7.1} {:>7.1} {:>+7.1}   {}",
            m[0],
            m[1],
            m[2],
            m[3],
            per_round.join(", ")
        );
        figures.push(m);
    }
    println!(
        "{:<34} {:>7} {:>5} {:>6} {:>7.1} {:>7.1}",
        "added by lva-server",
        "",
        "",
        "",
        figures[0][0] - figures[1][0],
        figures[0][1] - figures[1][1]
    );
    let reference = &viewings[1];
    let p50 = |f: &dyn Fn(&Viewing) -> &Vec<f64>| med(reference, &|x| quantile(f(x), 0.5));
    println!(
        "the reference's p50 (medians of the rounds): marked -> out of the camera's payloader \
         {:.1} ms, -> its first RTP packet at the viewer {:.1} ms, -> decoded {:.1} ms",
        p50(&|x| &x.encoded),
        p50(&|x| &x.received),
        figures[1][0]
    );
    let count = |s: &serde_json::Value, key: &str| {
        key.split('.').fold(s, |v, k| &v[k]).as_u64().unwrap_or(0)
    };
    let delta = |key: &str| count(&after, key).saturating_sub(count(&before, key));
    println!(
        "lva-server over the rounds: {} frames from the camera, {} inferred, {} dropped, {} \
         encoded, {} documents; ovinfer latency p50 {:.1} ms, p99 {:.1} ms; state {}",
        delta("produced_frames"),
        delta("inferred_frames"),
        delta("dropped_frames"),
        delta("outputs.video.encoded_frames"),
        delta("documents"),
        after["latency"]["p50_ms"].as_f64().unwrap_or(f64::NAN),
        after["latency"]["p99_ms"].as_f64().unwrap_or(f64::NAN),
        after["state"]
    );
    drop(server);
    drop(camera);
}

fn main() {
    common::init();
    let parts = ["pipeline", "python", "overload", "streams", "video"];
    let asked: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| parts.contains(&a.as_str()))
        .collect();
    let run = |part: &str| asked.is_empty() || asked.iter().any(|a| a == part);
    let dir = std::env::temp_dir().join(format!("lva-server-bench-{}", std::process::id()));
    if run("pipeline") || run("python") || run("overload") {
        make_jpegs(&dir);
    }
    std::fs::create_dir_all(&dir).expect("the bench's folder");
    let rounds = std::env::var("OVLVA_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let seconds = 20;
    if run("pipeline") {
        against_pipeline(&dir, seconds);
    }
    if run("python") {
        against_python(&dir, rounds, 8);
    }
    if run("overload") {
        // The default busy-delay-ms, then 503s answered at once, as before it.
        overload(&dir, seconds, serde_json::json!({}));
        overload(&dir, seconds, serde_json::json!({"busy-delay-ms": 0}));
    }
    if run("streams") {
        streams(2, std::env::var_os("OVLVA_BENCH_STAGGER").is_some());
    }
    if run("video") {
        video_latency(&dir, rounds, 7);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The server against the plain pipeline over the same JPEGs, in three configurations.
fn against_pipeline(dir: &Path, seconds: u32) {
    println!(
        "lva-server vs a plain pipeline, SSD MobileNet v2, {FRAMES} 640x480 JPEGs of bikes.mp4"
    );
    println!(
        "{:<44} {:>8} {:>9} {:>9} {:>7}",
        "run", "req/s", "p50", "p99", "ratio"
    );
    // Warm the page cache and OpenVINO's plugin.
    pipeline_fps(dir, "latency", 1);
    for (hint, workers, connections) in [("latency", 1, 1), ("latency", 2, 4), ("throughput", 2, 4)]
    {
        let reference = pipeline_fps(dir, hint, 2);
        let server = start_server(dir, hint, workers, 64, &serde_json::Value::Null);
        wrk(&server, dir, connections, 3); // warm-up: pipelines and compiled model
        let load = wrk(&server, dir, connections, seconds);
        drop(server);
        let after = pipeline_fps(dir, hint, 2);
        let reference = (reference + after) / 2.0;
        println!(
            "{:<44} {:>8.1} {:>9} {:>9}",
            format!("pipeline, performance-hint={hint}"),
            reference,
            "",
            ""
        );
        println!(
            "{:<44} {:>8.1} {:>9} {:>9} {:>7.2}",
            format!("server {workers} worker(s), {connections} connection(s)"),
            load.rps,
            load.p50,
            load.p99,
            load.rps / reference
        );
        if load.non_2xx > 0 {
            println!("  ({} answers were not 2xx)", load.non_2xx);
        }
    }
}
