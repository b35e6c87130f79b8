//! lva-server's KServe v2 API under load: ModelInfer requests per second on the SSD
//! (SSD-MobileNet-v2, the quantised IR), over gRPC (`raw_input_contents`) and over REST (the
//! binary tensor data extension both ways), from the real tritonclient in Python threads
//! (`scripts/kserve_client.py bench`: one client per thread, each sending the 300x300 u8 tensor
//! of person.jpg and reading the [1,1,100,7] output), against OpenVINO's own `benchmark_app
//! -hint throughput` on the same model, in interleaved rounds of the same run: as it runs by
//! default (threads pinned to cores) and unpinned (`ENABLE_CPU_PINNING` NO, by `-load_config`),
//! the setting the server compiles with (ovinfer's default). The ratio to unpinned
//! `benchmark_app` is the figure of merit; CPU time per inference (the server's from
//! /proc/PID/stat, benchmark_app's from this process's children's times, the client's own) says
//! where the time went, and holds better than rates on a shared machine (the client runs on the
//! same 2 cores).
//!
//! The server: the SSD with `performance-hint` throughput and 2 workers (one per core, as by
//! default), `max-queue` 8 so that the clients are never refused. With N client threads, N
//! requests are in flight; 1 thread gives the latency of one request at a time.
//!
//! The same load on a real NVIDIA Triton serving the same model through OpenVINO
//! (tests/common/triton.rs: `scripts/triton_serve.py`, PyTriton's tritonserver) over gRPC.
//!
//! Then, in the same rounds, the other direction: bikes.mp4 through `ovinfer` inferring locally
//! (the model file, throughput hint) against `ovinfer server=grpc://... remote-model=ssd` on
//! lva-server and on Triton over loopback, with 4 requests in flight (`nireq=4`, the throughput
//! default) and with 1 (`nireq=1`: each frame's own time, so the remote minus the local time is
//! what inferring remotely adds per frame); frames per second from PLAYING to EOS after the
//! pre-roll, ovinfer's mean time per frame (`latency-mean-ms`), and CPU per frame of this process
//! (decoding, converting, the inference or the gRPC client) and of the server.
//!
//! cargo bench --bench kserve     (after `make setup`: model, benchmark_app, tritonclient, Triton)
//! OVLVA_BENCH_ROUNDS (default 3) rounds; OVLVA_BENCH_SECONDS (default 10) seconds per run;
//! OVLVA_BENCH_CLIENTS (default 4) client threads of the throughput runs.

mod common;
#[path = "../tests/common/process.rs"]
mod process;
#[allow(dead_code)]
#[path = "../tests/common/triton.rs"]
mod triton;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use common::{mean, root};
use gst::prelude::*;
use std::time::Duration;

const SSD: &str = "models/ssd_mobilenet_v2_coco/ssd_mobilenet_v2_coco.xml";
const IMAGE: &str = "media/person.jpg";
const VIDEO: &str = "media/bikes.mp4";

fn env_or(name: &str, default: u32) -> u32 {
    u32::try_from(common::env_u64(name, default.into())).unwrap_or(default)
}

/// The server, killed when dropped.
struct Server {
    child: Child,
    http: String,
    grpc: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start() -> Server {
        let dir = std::env::temp_dir().join(format!("kserve-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch folder");
        let config = serde_json::json!({
            "grpc-listen": "127.0.0.1:0",
            "streams": {"state-dir": dir.join("state")},
            "models": {"ssd": {
                "model": root(SSD), "performance-hint": "throughput",
                "workers": 2, "max-queue": 8,
            }},
        });
        let path = dir.join("lva-server.json");
        std::fs::write(&path, config.to_string()).expect("config");
        let mut child = Command::new(env!("CARGO_BIN_EXE_lva-server"))
            .arg("--config")
            .arg(&path)
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("lva-server starts");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut grpc = None;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(a) = line.split("KServe gRPC on grpc://").nth(1) {
                    grpc = Some(a.trim().to_string());
                }
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let http = rest.split(',').next().unwrap_or("").to_string();
                    let _ = tx.send((http, grpc.clone().unwrap_or_default()));
                }
                // The rest (one access-log line per REST request) is read and dropped.
            }
        });
        let (http, grpc) = rx
            .recv_timeout(Duration::from_secs(180))
            .expect("lva-server says where it listens");
        Server { child, http, grpc }
    }

    /// The server's CPU time so far, seconds (user + system, from /proc).
    fn cpu(&self) -> f64 {
        common::proc_cpu(&self.child.id().to_string(), false)
    }
}

/// CPU time of this process's finished children so far, seconds (cutime + cstime).
fn children_cpu() -> f64 {
    common::proc_cpu("self", true)
}

/// `benchmark_app -hint throughput` (threads not pinned when `unpinned`): (FPS, CPU ms per
/// inference: the run's CPU time less `startup`, the CPU time of starting, reading and compiling
/// the model, over the inferences it counted).
fn benchmark_app(seconds: u32, unpinned: bool, startup: f64) -> [f64; 2] {
    let cpu = children_cpu();
    let seconds = seconds.to_string();
    let mut args = vec![
        "-m".to_string(),
        root(SSD),
        "-d".into(),
        "CPU".into(),
        "-hint".into(),
        "throughput".into(),
        "-t".into(),
        seconds,
    ];
    if unpinned {
        // benchmark_app takes -pin only without -hint; a device property file it takes.
        let config = std::env::temp_dir().join(format!("kserve-bench-{}.json", std::process::id()));
        std::fs::write(&config, r#"{"CPU": {"ENABLE_CPU_PINNING": "NO"}}"#).expect("config");
        args.push("-load_config".into());
        args.push(config.display().to_string());
    }
    let text = common::benchmark_app(&args);
    let cpu = children_cpu() - cpu;
    let number = |key: &str| common::reported(&text, key);
    [
        number("Throughput:"),
        (cpu - startup) * 1000.0 / number("Count:").max(1.0),
    ]
}

/// A tritonclient load on a server.
struct Load<'a> {
    name: &'static str,
    /// `host:port`
    url: &'a str,
    /// The server's CPU seconds so far.
    server_cpu: &'a dyn Fn() -> f64,
    protocol: &'static str,
    threads: u32,
}

/// One client run: (requests/s, p50 ms, p99 ms, server CPU ms per request, client CPU ms per
/// request).
fn client(run: &Load, seconds: u32) -> [f64; 5] {
    let Load {
        url,
        server_cpu,
        protocol,
        threads,
        ..
    } = *run;
    let cpu = server_cpu();
    let out = Command::new(root(".venv/bin/python"))
        .arg(root("scripts/kserve_client.py"))
        .args([
            "bench",
            "--url",
            url,
            "--protocol",
            protocol,
            "--model",
            "ssd",
        ])
        .args(["--image", &root(IMAGE), "--seconds", &seconds.to_string()])
        .args(["--threads", &threads.to_string()])
        .output()
        .expect("python runs (make setup installs tritonclient)");
    // Includes the client's warm-up request per thread: a few requests out of hundreds.
    let server_cpu = server_cpu() - cpu;
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "kserve_client.py bench ({e}): {text}{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(v["errors"], 0, "refused or failed requests: {v}");
    let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    let requests = f("requests").max(1.0);
    [
        f("rate"),
        f("p50_ms"),
        f("p99_ms"),
        server_cpu * 1000.0 / requests,
        f("client_cpu_s") * 1000.0 / requests,
    ]
}

/// Where `ovinfer` infers in the video runs: the model file in the element, or a KServe v2
/// server over loopback gRPC (`server_cpu`: its CPU seconds so far).
struct Target<'a> {
    name: &'static str,
    properties: String,
    server_cpu: &'a dyn Fn() -> f64,
}

/// bikes.mp4 once through `ovinfer` with `nireq` requests in flight, from PLAYING to EOS after
/// the pre-roll (the model compiled or its metadata read, the first frame through): [frames per
/// second, ovinfer's mean time per inferred frame in ms, this process's CPU ms per frame
/// (decoding, converting, the inference or the gRPC client), the server's CPU ms per frame].
fn video(target: &Target, nireq: u32) -> [f64; 4] {
    let pipeline = common::launch(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! ovinfer name=infer {} nireq={nireq} \
         ! fakesink",
        root(VIDEO),
        target.properties
    ));
    common::preroll(&pipeline);
    let infer = pipeline.by_name("infer").expect("ovinfer");
    let frames = || infer.property::<u64>("frames") as f64;
    let (before, cpu, server) = (frames(), common::cpu_seconds(), (target.server_cpu)());
    let seconds = common::play(&pipeline, 1);
    let n = (frames() - before).max(1.0);
    let result = [
        n / seconds,
        infer.property::<f64>("latency-mean-ms"),
        (common::cpu_seconds() - cpu) * 1000.0 / n,
        ((target.server_cpu)() - server) * 1000.0 / n,
    ];
    pipeline.set_state(gst::State::Null).expect("null");
    result
}

fn main() {
    common::init();
    let rounds = env_or("OVLVA_BENCH_ROUNDS", 3);
    let seconds = env_or("OVLVA_BENCH_SECONDS", 10);
    let clients = env_or("OVLVA_BENCH_CLIENTS", 4);
    let server = Server::start();
    let triton = triton::Triton::start_ssd();
    let triton_grpc = format!("127.0.0.1:{}", triton.grpc_port);
    println!(
        "lva-server KServe v2 on SSD-MobileNet-v2 (throughput hint, 2 workers) and Triton \
         (PyTriton, OpenVINO throughput hint): {rounds} rounds of {seconds} s per run, \
         tritonclient with {clients} threads and with 1; bikes.mp4 through ovinfer, local and \
         remote; load average {}",
        common::load()
    );
    let lva_cpu = || server.cpu();
    let triton_cpu = || triton.cpu_seconds();
    let load = |name, url, server_cpu, protocol, threads| Load {
        name,
        url,
        server_cpu,
        protocol,
        threads,
    };
    let runs = [
        load("lva-server gRPC", &server.grpc, &lva_cpu, "grpc", clients),
        load(
            "lva-server REST binary",
            &server.http,
            &lva_cpu,
            "http",
            clients,
        ),
        load("Triton gRPC", &triton_grpc, &triton_cpu, "grpc", clients),
        load("lva-server gRPC", &server.grpc, &lva_cpu, "grpc", 1),
        load("lva-server REST binary", &server.http, &lva_cpu, "http", 1),
        load("Triton gRPC", &triton_grpc, &triton_cpu, "grpc", 1),
    ];
    let no_server = || 0.0;
    let targets = [
        Target {
            name: "local (the model file)",
            properties: format!("model={}", root(SSD)),
            server_cpu: &no_server,
        },
        Target {
            name: "remote: lva-server",
            properties: format!("server=grpc://{} remote-model=ssd", server.grpc),
            server_cpu: &lva_cpu,
        },
        Target {
            name: "remote: Triton",
            properties: format!("server={} remote-model={}", triton.grpc_url(), triton::SSD),
            server_cpu: &triton_cpu,
        },
    ];
    let videos: Vec<(usize, u32)> = [4, 1]
        .into_iter()
        .flat_map(|nireq| (0..targets.len()).map(move |t| (t, nireq)))
        .collect();
    let mut pinned = Vec::new();
    let mut unpinned = Vec::new();
    let mut results: Vec<Vec<[f64; 5]>> = runs.iter().map(|_| Vec::new()).collect();
    let mut video_results: Vec<Vec<[f64; 4]>> = videos.iter().map(|_| Vec::new()).collect();
    // benchmark_app's start (Python, reading and compiling the model) with 2 inferences.
    let cpu = children_cpu();
    common::benchmark_app([
        "-m",
        &root(SSD),
        "-d",
        "CPU",
        "-hint",
        "throughput",
        "-niter",
        "2",
    ]);
    let startup = children_cpu() - cpu;
    println!("benchmark_app starts in {startup:.2} s of CPU");
    for round in 1..=rounds {
        pinned.push(benchmark_app(seconds, false, startup));
        unpinned.push(benchmark_app(seconds, true, startup));
        let fps = unpinned[unpinned.len() - 1][0];
        print!(
            "round {round}: benchmark_app {:.1} FPS, unpinned {fps:.1} FPS",
            pinned[pinned.len() - 1][0]
        );
        for (i, run) in runs.iter().enumerate() {
            let r = client(run, seconds);
            print!(
                "; {} x{} {:.1}/s ({:.2})",
                run.name,
                run.threads,
                r[0],
                r[0] / fps
            );
            results[i].push(r);
        }
        for (i, (t, nireq)) in videos.iter().enumerate() {
            let r = video(&targets[*t], *nireq);
            print!(
                "; ovinfer {} nireq={nireq} {:.1} fps",
                targets[*t].name, r[0]
            );
            video_results[i].push(r);
        }
        println!(" (load {})", common::load());
    }
    let col = |r: &[[f64; 2]], k: usize| mean(&r.iter().map(|x| x[k]).collect::<Vec<_>>());
    let fps = col(&unpinned, 0);
    println!();
    println!(
        "| run | inferences/s | ratio to unpinned benchmark_app | p50 ms | p99 ms | server CPU ms per inference | client CPU ms per request |"
    );
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| `benchmark_app -hint throughput` | {:.1} | {:.2} | | | {:.1} | |",
        col(&pinned, 0),
        col(&pinned, 0) / fps,
        col(&pinned, 1)
    );
    println!(
        "| `benchmark_app -hint throughput`, `ENABLE_CPU_PINNING` NO | {fps:.1} | 1 | | | {:.1} | |",
        col(&unpinned, 1)
    );
    for (run, r) in runs.iter().zip(&results) {
        let (name, threads) = (run.name, run.threads);
        let col = |k: usize| mean(&r.iter().map(|x| x[k]).collect::<Vec<_>>());
        println!(
            "| {name}, {threads} client thread{} | {:.1} | {:.2} | {:.1} | {:.1} | {:.1} | {:.1} |",
            if threads == 1 { "" } else { "s" },
            col(0),
            col(0) / fps,
            col(1),
            col(2),
            col(3),
            col(4),
        );
    }
    println!();
    println!(
        "| ovinfer on bikes.mp4 | nireq | fps | ratio to local | ms per frame in ovinfer | added ms per frame | pipeline CPU ms per frame | server CPU ms per frame |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let means: Vec<[f64; 4]> = video_results
        .iter()
        .map(|r| std::array::from_fn(|k| mean(&r.iter().map(|x| x[k]).collect::<Vec<_>>())))
        .collect();
    for (i, (t, nireq)) in videos.iter().enumerate() {
        // The local run of the same nireq.
        let local = videos
            .iter()
            .position(|&(lt, ln)| lt == 0 && ln == *nireq)
            .map_or(means[i], |l| means[l]);
        let m = means[i];
        println!(
            "| {} | {nireq} | {:.1} | {:.2} | {:.1} | {} | {:.1} | {} |",
            targets[*t].name,
            m[0],
            m[0] / local[0],
            m[1],
            if *t == 0 {
                String::new()
            } else {
                format!("{:+.1}", m[1] - local[1])
            },
            m[2],
            if *t == 0 {
                String::new()
            } else {
                format!("{:.1}", m[3])
            },
        );
    }
    let per_round = |i: usize| {
        video_results[i]
            .iter()
            .map(|r| format!("{:.1}", r[0]))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (i, (t, nireq)) in videos.iter().enumerate() {
        println!(
            "{} nireq={nireq}: fps per round {}",
            targets[*t].name,
            per_round(i)
        );
    }
}
