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
//! cargo bench --bench lva_server              (after `make setup`: model, video, wrk, Python)
//! cargo bench --bench lva_server -- pipeline  (only the server against the plain pipeline)
//! cargo bench --bench lva_server -- python    (only lva-server against the Python server)
//! cargo bench --bench lva_server -- overload  (only the overload runs)
//! cargo bench --bench lva_server -- streams   (only the real-time streams)
//! Parts can be combined (`-- python streams`). OVLVA_BENCH_ROUNDS (default 3) sets the rounds
//! of the Python comparison, 8 s per server per round; OVLVA_BENCH_STAGGER=1 starts the
//! real-time streams staggered over an inference period instead of together.

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
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    let ticks = *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    });
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): state is the first, utime the 12th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (tick(11) + tick(12)) / ticks
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
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    write!(
        stream,
        "POST /ssd HTTP/1.1\r\nHost: {addr}\r\nContent-Type: image/jpeg\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        jpeg.len()
    )
    .expect("head");
    stream.write_all(jpeg).expect("body");
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

fn main() {
    common::init();
    let parts = ["pipeline", "python", "overload", "streams"];
    let asked: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| parts.contains(&a.as_str()))
        .collect();
    let run = |part: &str| asked.is_empty() || asked.iter().any(|a| a == part);
    let dir = std::env::temp_dir().join(format!("lva-server-bench-{}", std::process::id()));
    if run("pipeline") || run("python") || run("overload") {
        make_jpegs(&dir);
    }
    let seconds = 20;
    if run("pipeline") {
        against_pipeline(&dir, seconds);
    }
    if run("python") {
        let rounds = std::env::var("OVLVA_BENCH_ROUNDS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(3);
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
