//! The publishing sinks' throughput: documents per second that `lvakafkasink` delivers to a
//! local Kafka-protocol broker (noida-db) and `lvamqttsink` to a local mosquitto (QoS 1), every
//! one acknowledged; and the frame rate of bikes.mp4 → ovinfer → lvajson into `fakesink`, into
//! `lvakafkasink` and into `lvamqttsink`, in the same run.
//!
//! cargo bench --locked --bench brokers   (after `make setup`: the brokers, the model, the video)
//!
//! The brokers are the tests' (tests/common/kafka.rs, tests/common/mqtt.rs), started here on free
//! ports of 127.0.0.1 and stopped at the end.

mod common;

#[allow(dead_code)]
#[path = "../tests/common/kafka.rs"]
mod kafka;
#[allow(dead_code)]
#[path = "../tests/common/mqtt.rs"]
mod mqtt;
#[path = "../tests/common/process.rs"]
mod process;

use std::path::PathBuf;

const DOCS: usize = 5000;

/// For the included broker runners.
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// For the included Kafka runner (kafka-python is in the virtualenv).
fn python() -> PathBuf {
    root().join(".venv/bin/python")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Documents per second through `sink`: a warm-up, then the mean of `rounds`.
fn rate(sink: &str, rounds: usize) -> f64 {
    let sink = format!("{sink} max-queue={DOCS} flush-timeout=60000");
    common::deliver(&sink, DOCS);
    let seconds: f64 = (0..rounds).map(|_| common::deliver(&sink, DOCS)).sum();
    (rounds * DOCS) as f64 / seconds
}

/// Wall and CPU seconds for bikes.mp4 through ovinfer and lvajson into `tail`.
fn bikes(tail: &str) -> (f64, f64) {
    let cpu = common::cpu_seconds();
    let wall = common::pipeline_time(&common::bikes(tail), |_| {});
    (wall, common::cpu_seconds() - cpu)
}

fn main() {
    common::init();
    let kafka = kafka::Broker::start();
    let mqtt = mqtt::Broker::start();
    let to_kafka = |extra: &str| {
        format!(
            "lvakafkasink name=sink brokers={} topic=bench stream-id=cam {extra}",
            kafka.bootstrap()
        )
    };
    let to_mqtt = |extra: &str| {
        format!(
            "lvamqttsink name=sink host=127.0.0.1 port={} topic=bench/cam {extra}",
            mqtt.port
        )
    };

    let rounds = 3;
    println!(
        "documents of {} bytes, {DOCS} per run, {rounds} runs after a warm-up:",
        common::DOC.len()
    );
    for (name, sink) in [
        (
            "lvakafkasink (acks=all, idempotent, max-in-flight=100)",
            to_kafka(""),
        ),
        (
            "lvakafkasink max-in-flight=1000",
            to_kafka("max-in-flight=1000"),
        ),
        ("lvamqttsink (qos=1, max-in-flight=100)", to_mqtt("")),
        (
            "lvamqttsink max-in-flight=1000",
            to_mqtt("max-in-flight=1000"),
        ),
    ] {
        let r = rate(&sink, rounds);
        println!("  {name}: {r:.0} documents/s ({:.0} µs each)", 1e6 / r);
    }
    // What reached the Kafka broker, read by an independent client: every run's documents.
    let records = kafka.records("bench");
    println!(
        "  the Kafka topic holds {} records ({} runs × {DOCS})",
        records.len(),
        2 * (rounds + 1)
    );

    let frames = 250.0;
    let tails = [
        ("fakesink", "fakesink sync=false".to_string()),
        ("lvakafkasink", to_kafka("")),
        ("lvamqttsink", to_mqtt("")),
    ];
    bikes(&tails[0].1); // warm-up
    let (mut wall, mut cpu) = ([0.0; 3], [0.0; 3]);
    let runs = 3;
    for _ in 0..runs {
        for (i, (_, tail)) in tails.iter().enumerate() {
            let (w, c) = bikes(tail);
            wall[i] += w;
            cpu[i] += c;
        }
    }
    let total = runs as f64 * frames;
    println!("bikes.mp4 -> ovinfer -> lvajson -> SINK, {runs} runs each, alternating:");
    for (i, (name, _)) in tails.iter().enumerate() {
        println!(
            "  {name}: {:.1} fps (ratio {:.3}); {:.2} ms of CPU per frame (ratio {:.3})",
            total / wall[i],
            wall[0] / wall[i],
            1e3 * cpu[i] / total,
            cpu[i] / cpu[0]
        );
    }
}
