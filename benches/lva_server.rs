//! lva-server under load: `wrk` POSTs 640×480 JPEGs (bikes.mp4's frames) to the real server and
//! reports requests/s and latency percentiles; the same JPEGs through a plain pipeline
//! (`multifilesrc ! jpegdec ! videoconvert ! ovinfer ! lvajson ! fakesink`) in the same run give
//! the reference rate. Both use the SSD model; the ratio is the figure of merit.
//!
//! Overload: the same server with 2 workers and 2 queue places (capacity 4), first with 4 wrk
//! connections, then with 16 that ignore Retry-After and resend at once after every 503. The
//! successful requests per second under 4x overload should stay at 90% or more of the first;
//! once with the default `busy-delay-ms` and once with 503s answered at once.
//!
//! cargo bench --bench lva_server              (after `make setup`: model, video and wrk)
//! cargo bench --bench lva_server -- overload  (the overload runs only)

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

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
    let mut child = Command::new(binary)
        .arg("--config")
        .arg(&path)
        .args(["--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("lva-server");
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
        .expect("lva-server listening");
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
    Load {
        rps,
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

fn main() {
    common::init();
    let dir = std::env::temp_dir().join(format!("lva-server-bench-{}", std::process::id()));
    make_jpegs(&dir);
    let seconds = 20;
    // The default busy-delay-ms, then 503s answered at once, as before it.
    let overloads = || {
        overload(&dir, seconds, serde_json::json!({}));
        overload(&dir, seconds, serde_json::json!({"busy-delay-ms": 0}));
    };
    if std::env::args().any(|a| a == "overload") {
        overloads();
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    println!(
        "lva-server vs a plain pipeline, SSD MobileNet v2, {FRAMES} 640x480 JPEGs of bikes.mp4"
    );
    println!(
        "{:<44} {:>8} {:>9} {:>9} {:>7}",
        "run", "req/s", "p50", "p99", "ratio"
    );
    // Warm the page cache and OpenVINO's plugin.
    pipeline_fps(&dir, "latency", 1);
    for (hint, workers, connections) in [("latency", 1, 1), ("latency", 2, 4), ("throughput", 2, 4)]
    {
        let reference = pipeline_fps(&dir, hint, 2);
        let server = start_server(&dir, hint, workers, 64, &serde_json::Value::Null);
        wrk(&server, &dir, connections, 3); // warm-up: pipelines and compiled model
        let load = wrk(&server, &dir, connections, seconds);
        drop(server);
        let after = pipeline_fps(&dir, hint, 2);
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
    overloads();
    let _ = std::fs::remove_dir_all(&dir);
}
