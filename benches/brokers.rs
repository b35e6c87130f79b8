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

use std::path::PathBuf;
use std::time::Instant;

use gst::prelude::*;

const DOCS: usize = 5000;

/// A document as bikes.mp4 through the SSD makes them (195 bytes; their median is 196).
const DOC: &[u8] = br#"{"inferences":[{"type":"entity","subtype":"ssd_mobilenet_v2_coco","entity":{"tag":{"value":"person","confidence":0.73046875},"box":{"l":0.2542913,"t":0.004008293,"w":0.34160602,"h":0.9959917}}}]}"#;

/// For the included broker runners.
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Seconds to push `DOCS` documents through `sink` (a gst-launch sink description named
/// "sink") to EOS, every one acknowledged.
fn deliver(sink: &str) -> f64 {
    let pipeline = gst::parse::launch(&format!(
        "appsrc name=src format=time caps=application/json ! {sink} max-queue={DOCS} flush-timeout=60000"
    ))
    .expect("pipeline")
    .downcast::<gst::Pipeline>()
    .expect("pipeline");
    let src = pipeline
        .by_name("src")
        .expect("src")
        .downcast::<gst_app::AppSrc>()
        .expect("appsrc");
    let start = Instant::now();
    pipeline.set_state(gst::State::Playing).expect("playing");
    for n in 0..DOCS {
        let mut b = gst::Buffer::from_slice(DOC);
        b.get_mut()
            .expect("writable")
            .set_pts(gst::ClockTime::from_mseconds(40 * n as u64));
        src.push_buffer(b).expect("push");
    }
    src.end_of_stream().expect("eos");
    let msg = pipeline.bus().expect("bus").timed_pop_filtered(
        gst::ClockTime::from_seconds(120),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let elapsed = start.elapsed().as_secs_f64();
    let sent = pipeline
        .by_name("sink")
        .expect("sink")
        .property::<u64>("sent");
    pipeline.set_state(gst::State::Null).expect("null");
    if let Some(gst::MessageView::Error(e)) = msg.as_ref().map(|m| m.view()) {
        panic!("{sink}: {}", e.error());
    }
    assert_eq!(sent, DOCS as u64, "{sink}: every document acknowledged");
    elapsed
}

/// Documents per second through `sink`: a warm-up, then the mean of `rounds`.
fn rate(sink: &str, rounds: usize) -> f64 {
    deliver(sink);
    let seconds: f64 = (0..rounds).map(|_| deliver(sink)).sum();
    (rounds * DOCS) as f64 / seconds
}

/// CPU seconds this process has used so far, all threads (user + system, from /proc/self/stat):
/// unlike wall time, not inflated by other processes on a shared machine.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // After the command name: state is field 3, utime 14 and stime 15 (clock ticks).
    let ticks = |i: usize| {
        fields
            .get(i - 3)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(14) + ticks(15)) / 100.0
}

/// Wall and CPU seconds for bikes.mp4 through ovinfer and lvajson into `tail`.
fn bikes(tail: &str) -> (f64, f64) {
    let root = env!("CARGO_MANIFEST_DIR");
    let description = format!(
        "filesrc location={root}/media/bikes.mp4 ! decodebin ! videoconvert \
         ! ovinfer model={root}/models/ssd_mobilenet_v2_coco/ssd_mobilenet_v2_coco.xml \
         labels={root}/models/ssd_mobilenet_v2_coco/labels.txt ! lvajson ! {tail}"
    );
    let cpu = cpu_seconds();
    let wall = common::pipeline_time(&description, |_| {});
    (wall, cpu_seconds() - cpu)
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
        DOC.len()
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
