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
//! cargo bench --bench kserve     (after `make setup`: model, benchmark_app, tritonclient)
//! OVLVA_BENCH_ROUNDS (default 3) rounds; OVLVA_BENCH_SECONDS (default 10) seconds per run;
//! OVLVA_BENCH_CLIENTS (default 4) client threads of the throughput runs.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use common::{mean, root};
use std::time::Duration;

const SSD: &str = "models/ssd_mobilenet_v2_coco/ssd_mobilenet_v2_coco.xml";
const IMAGE: &str = "media/person.jpg";

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

/// One client run: (requests/s, p50 ms, p99 ms, server CPU ms per request, client CPU ms per
/// request).
fn client(server: &Server, protocol: &str, threads: u32, seconds: u32) -> [f64; 5] {
    let url = if protocol == "grpc" {
        &server.grpc
    } else {
        &server.http
    };
    let cpu = server.cpu();
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
    let server_cpu = server.cpu() - cpu;
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

fn main() {
    let rounds = env_or("OVLVA_BENCH_ROUNDS", 3);
    let seconds = env_or("OVLVA_BENCH_SECONDS", 10);
    let clients = env_or("OVLVA_BENCH_CLIENTS", 4);
    let server = Server::start();
    println!(
        "lva-server KServe v2 on SSD-MobileNet-v2 (throughput hint, 2 workers): {rounds} \
         rounds of {seconds} s per run, tritonclient with {clients} threads and with 1"
    );
    let runs: [(&str, &str, u32); 4] = [
        ("gRPC", "grpc", clients),
        ("REST binary", "http", clients),
        ("gRPC", "grpc", 1),
        ("REST binary", "http", 1),
    ];
    let mut pinned = Vec::new();
    let mut unpinned = Vec::new();
    let mut results: Vec<Vec<[f64; 5]>> = runs.iter().map(|_| Vec::new()).collect();
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
        for (i, (name, protocol, threads)) in runs.iter().enumerate() {
            let r = client(&server, protocol, *threads, seconds);
            print!("; {name} x{threads} {:.1}/s ({:.2})", r[0], r[0] / fps);
            results[i].push(r);
        }
        println!();
    }
    let col = |r: &[[f64; 2]], k: usize| mean(&r.iter().map(|x| x[k]).collect::<Vec<_>>());
    let fps = col(&unpinned, 0);
    println!();
    println!(
        "| run | inferences/s | ratio to unpinned benchmark_app | p50 ms | p99 ms | CPU ms per inference | client CPU ms per request |"
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
    for ((name, _, threads), r) in runs.iter().zip(&results) {
        let col = |k: usize| mean(&r.iter().map(|x| x[k]).collect::<Vec<_>>());
        println!(
            "| lva-server {name}, {threads} client thread{} | {:.1} | {:.2} | {:.1} | {:.1} | {:.1} | {:.1} |",
            if *threads == 1 { "" } else { "s" },
            col(0),
            col(0) / fps,
            col(1),
            col(2),
            col(3),
            col(4),
        );
    }
}
