//! `lvakafkasink` against a real Kafka-protocol broker on 127.0.0.1 (noida-db, started by each
//! test: tests/common/kafka.rs), read back by an independent client (kafka-python,
//! scripts/kafka_consume.py): bikes.mp4 through the SSD into Kafka and a file, per-key order in a
//! topic of several partitions, a broker outage mid-stream, the spool across a pipeline restart
//! while the broker is down, exact drops of a full queue, an unreachable broker at EOS, records
//! the broker refuses, and settings errors naming what is wrong.
//!
//! The delivery tests feed short synthetic documents through an appsrc: they are about the
//! delivery, not the documents.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::kafka::{Broker, Record};
use gst::prelude::*;

/// A small LVA document numbered `n`.
fn doc(stream: &str, n: usize) -> String {
    format!(
        r#"{{"inferences":[{{"type":"entity","subtype":"{stream}","entity":{{"tag":{{"value":"n{n}","confidence":1.0}},"box":{{"l":0.0,"t":0.0,"w":1.0,"h":1.0}}}}}}]}}"#
    )
}

/// What a pipeline said on its bus.
#[derive(Debug, Default, Clone)]
struct Said {
    errors: Vec<String>,
    warnings: Vec<String>,
    /// The element messages' structures.
    messages: Vec<gst::Structure>,
    eos: bool,
}

impl Said {
    fn stats(&self) -> Option<&gst::Structure> {
        self.messages
            .iter()
            .rev()
            .find(|s| s.name() == "lvakafkasink-stats")
    }

    fn stat(&self, field: &str) -> u64 {
        self.stats()
            .unwrap_or_else(|| panic!("no lvakafkasink-stats message: {self:?}"))
            .get::<u64>(field)
            .unwrap_or_else(|e| panic!("{field}: {e}"))
    }
}

/// Records every error, warning and element message of `pipeline` as it is posted (a sync
/// handler: what the sink says while it stops, on the way to NULL, is seen too).
fn listen(pipeline: &gst::Pipeline) -> Arc<Mutex<Said>> {
    let said = Arc::new(Mutex::new(Said::default()));
    let record = said.clone();
    pipeline
        .bus()
        .expect("bus")
        .set_sync_handler(move |_, msg| {
            let mut said = record.lock().unwrap();
            match msg.view() {
                gst::MessageView::Eos(_) => said.eos = true,
                gst::MessageView::Error(e) => {
                    said.errors.push(format!("{} | {:?}", e.error(), e.debug()))
                }
                gst::MessageView::Warning(w) => said.warnings.push(w.error().to_string()),
                gst::MessageView::Element(e) => {
                    if let Some(s) = e.structure() {
                        said.messages.push(s.to_owned());
                    }
                }
                _ => {}
            }
            gst::BusSyncReply::Pass
        });
    said
}

/// Waits for EOS or an error on the bus, `timeout` at most.
fn wait_end(pipeline: &gst::Pipeline, timeout: Duration) {
    let _ = pipeline.bus().expect("bus").timed_pop_filtered(
        gst::ClockTime::from_mseconds(timeout.as_millis() as u64),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
}

/// An appsrc of JSON documents into an `lvakafkasink` named "sink", playing.
struct Feed {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    said: Arc<Mutex<Said>>,
    stream: String,
    pushed: usize,
}

impl Feed {
    fn start(stream: &str, sink_props: &str) -> Feed {
        let (pipeline, src) = common::with_appsrc(&format!(
            "appsrc name=src format=time caps=application/json ! lvakafkasink name=sink {sink_props}"
        ));
        let said = listen(&pipeline);
        pipeline
            .set_state(gst::State::Playing)
            .expect("the pipeline plays");
        Feed {
            pipeline,
            src,
            said,
            stream: stream.to_string(),
            pushed: 0,
        }
    }

    fn sink(&self) -> gst::Element {
        self.pipeline.by_name("sink").expect("the sink")
    }

    fn counter(&self, name: &str) -> u64 {
        self.sink().property::<u64>(name)
    }

    /// Pushes the next `n` documents, `every` apart.
    fn push(&mut self, n: usize, every: Duration) {
        for _ in 0..n {
            let text = doc(&self.stream, self.pushed);
            self.src
                .push_buffer(gst::Buffer::from_slice(text.into_bytes()))
                .expect("appsrc takes the buffer");
            self.pushed += 1;
            if !every.is_zero() {
                std::thread::sleep(every);
            }
        }
    }

    /// Waits until the sink's `counter` is `want` (panics after `timeout`).
    fn wait_counter(&self, name: &str, want: u64, timeout: Duration) {
        let start = Instant::now();
        while self.counter(name) != want {
            assert!(
                start.elapsed() < timeout,
                "{name} is {} after {timeout:?}, want {want}",
                self.counter(name)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// EOS, the pipeline's EOS (or `timeout`), stopped: what its bus said.
    fn finish(self, timeout: Duration) -> (Said, gst::Element) {
        self.src.end_of_stream().expect("EOS");
        wait_end(&self.pipeline, timeout);
        self.pipeline.set_state(gst::State::Null).expect("to NULL");
        let said = self.said.lock().unwrap().clone();
        (said, self.sink())
    }

    /// Stopped without EOS: what the bus said (the sink's stop included).
    fn abort(self) -> (Said, gst::Element) {
        self.pipeline.set_state(gst::State::Null).expect("to NULL");
        let said = self.said.lock().unwrap().clone();
        (said, self.sink())
    }
}

/// The documents' numbers of `records` in their order (from the tag value `n<N>`).
fn numbers(records: &[Record]) -> Vec<usize> {
    records
        .iter()
        .map(|r| {
            let v: serde_json::Value =
                serde_json::from_str(r.value.as_deref().expect("a value")).expect("JSON");
            v["inferences"][0]["entity"]["tag"]["value"]
                .as_str()
                .and_then(|t| t.strip_prefix('n'))
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("not a test document: {v}"))
        })
        .collect()
}

/// Checks that `got` holds every one of `0..n`, each first copy in order, and says how many
/// came twice (a re-send after a lost connection; at most `resent`).
fn all_in_order(got: &[usize], n: usize, resent: u64) {
    let mut seen = vec![false; n];
    let mut firsts = Vec::new();
    for &g in got {
        assert!(g < n, "document {g} was never pushed");
        if !seen[g] {
            seen[g] = true;
            firsts.push(g);
        }
    }
    assert_eq!(
        firsts,
        (0..n).collect::<Vec<_>>(),
        "every document, in order"
    );
    let duplicates = (got.len() - n) as u64;
    assert!(
        duplicates <= resent,
        "{duplicates} duplicates but only {resent} documents were re-sent"
    );
}

fn props(broker: &Broker, topic: &str, stream: &str) -> String {
    format!(
        "brokers={} topic={topic} stream-id={stream} retry-delay=100 max-retry-delay=500 timeout=2",
        broker.bootstrap()
    )
}

#[test]
fn bikes_documents_arrive_exactly_once_in_order_as_the_tee_wrote_them() {
    let broker = Broker::start();
    let file = common::reference::scratch("kafka-bikes").join("documents.json");
    let description = format!(
        "filesrc location={} ! decodebin ! videoconvert ! ovinfer model={} labels={} \
         ! lvajson name=json ! tee name=t \
         t. ! queue ! lvakafkasink name=sink brokers={} topic=bikes stream-id=bikes \
         t. ! queue ! filesink location={}",
        common::asset("media/bikes.mp4"),
        common::ssd_model(),
        common::ssd_labels(),
        broker.bootstrap(),
        file.display()
    );
    let pipeline = common::run_to_eos(&description);
    let documents = pipeline
        .by_name("json")
        .expect("lvajson")
        .property::<u64>("documents");
    let sink = pipeline.by_name("sink").expect("the sink");
    assert!(documents > 100, "{documents} documents");
    assert_eq!(sink.property::<u64>("sent"), documents);
    for counter in ["failed", "resent", "dropped", "undelivered", "disconnects"] {
        assert_eq!(sink.property::<u64>(counter), 0, "{counter}");
    }

    // The file's documents, as the bytes lvajson wrote (one JSON object after the other).
    let text = std::fs::read_to_string(&file).expect("the tee's file");
    let mut written = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(&text).into_iter::<serde_json::Value>();
    let mut start = 0;
    while let Some(v) = stream.next() {
        v.expect("JSON in the file");
        let end = stream.byte_offset();
        written.push(text[start..end].trim().to_string());
        start = end;
    }
    assert_eq!(written.len() as u64, documents);

    let records = broker.records("bikes");
    let values: Vec<String> = records
        .iter()
        .map(|r| r.value.clone().expect("a value"))
        .collect();
    assert_eq!(values, written, "exactly the file's documents, in order");
    assert!(records.iter().all(|r| r.key.as_deref() == Some("bikes")));
    // One partition (the topic was created on first use), offsets without gaps.
    assert!(records.iter().all(|r| r.partition == 0));
    let offsets: Vec<i64> = records.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, (0..documents as i64).collect::<Vec<_>>());
    for v in &values {
        common::check_lva_schema(&serde_json::from_str(v).expect("JSON")).expect("LVA schema");
    }
}

#[test]
fn two_streams_in_a_topic_of_four_partitions_each_keep_their_order() {
    let broker = Broker::start();
    broker.create_topic("cams", 4);
    // librdkafka's default partitioner (CRC32 of the key): cam-a → 0, cam-b → 2 of 4.
    let mut a = Feed::start("cam-a", &props(&broker, "cams", "cam-a"));
    let mut b = Feed::start("cam-b", &props(&broker, "cams", "cam-b"));
    for _ in 0..30 {
        a.push(5, Duration::ZERO);
        b.push(5, Duration::ZERO);
    }
    let (said_a, sink_a) = a.finish(Duration::from_secs(20));
    let (said_b, sink_b) = b.finish(Duration::from_secs(20));
    assert!(said_a.eos && said_b.eos, "{said_a:?} {said_b:?}");
    assert_eq!(sink_a.property::<u64>("sent"), 150);
    assert_eq!(sink_b.property::<u64>("sent"), 150);

    let records = broker.wait_records("cams", 300, Duration::from_secs(20));
    assert_eq!(records.len(), 300);
    for (key, partition) in [("cam-a", 0), ("cam-b", 2)] {
        let mine: Vec<Record> = records
            .iter()
            .filter(|r| r.key.as_deref() == Some(key))
            .cloned()
            .collect();
        assert!(
            mine.iter().all(|r| r.partition == partition),
            "{key}: every record in partition {partition}"
        );
        assert_eq!(numbers(&mine), (0..150).collect::<Vec<_>>(), "{key}");
        assert!(
            mine.iter()
                .all(|r| r.value.as_deref().is_some_and(|v| v.contains(key))),
            "{key}: its own documents"
        );
    }
}

#[test]
fn a_five_second_broker_outage_mid_stream_loses_nothing() {
    let mut broker = Broker::start();
    let mut feed = Feed::start(
        "cam",
        &format!("{} flush-timeout=20000", props(&broker, "outage", "cam")),
    );
    let every = Duration::from_millis(10);
    feed.push(100, every);
    feed.wait_counter("sent", 100, Duration::from_secs(10));
    // Down for 5 s while the stream goes on.
    let down = Instant::now();
    broker.stop();
    feed.push(200, every);
    std::thread::sleep(Duration::from_secs(5).saturating_sub(down.elapsed()));
    broker.restart();
    feed.push(100, every);
    let (said, sink) = feed.finish(Duration::from_secs(30));
    assert!(said.eos, "{said:?}");

    let records = broker.wait_records("outage", 400, Duration::from_secs(20));
    let resent = sink.property::<u64>("resent");
    all_in_order(&numbers(&records), 400, resent);
    assert_eq!(sink.property::<u64>("sent"), 400);
    assert_eq!(sink.property::<u64>("dropped"), 0);
    let waited = sink.property::<u64>("waited");
    assert!(
        (200..=300).contains(&waited),
        "waited {waited}: the documents pushed during the outage (and those in flight)"
    );
    assert!(sink.property::<u64>("disconnects") >= 1);
    assert_eq!(said.stat("waited"), waited);
    assert!(
        said.warnings
            .iter()
            .any(|w| w.contains("lost the connection")),
        "{:?}",
        said.warnings
    );
    let connected = said
        .messages
        .iter()
        .filter(|s| s.name() == "lvakafkasink-connection")
        .filter_map(|s| s.get::<String>("detail").ok())
        .collect::<Vec<_>>();
    assert!(
        connected
            .iter()
            .any(|d| d.contains(&format!("{waited} documents waited"))),
        "{connected:?}"
    );
}

#[test]
fn the_spool_delivers_after_a_pipeline_restart_what_waited_for_a_broker_that_was_down() {
    let mut broker = Broker::start();
    let spool = common::reference::scratch("kafka-spool");
    let settings = format!(
        "{} spool-dir={} flush-timeout=500",
        props(&broker, "spooled", "cam"),
        spool.display()
    );
    let mut first = Feed::start("cam", &settings);
    first.push(20, Duration::ZERO);
    first.wait_counter("sent", 20, Duration::from_secs(10));
    broker.stop();
    first.push(50, Duration::ZERO);
    first.wait_counter("queued", 50, Duration::from_secs(5));
    // The pipeline stops while the broker is down: the 50 stay in the spool.
    let (said, sink) = first.abort();
    assert_eq!(sink.property::<u64>("undelivered"), 50);
    assert_eq!(sink.property::<u64>("dropped"), 0);
    assert!(
        said.warnings
            .iter()
            .any(|w| w.contains("50 documents undelivered") && w.contains("spool")),
        "{said:?}"
    );

    broker.restart();
    let mut second = Feed::start("cam", &settings);
    second.pushed = 70;
    second.push(10, Duration::ZERO);
    let (said, sink) = second.finish(Duration::from_secs(20));
    assert!(said.eos, "{said:?}");
    assert_eq!(sink.property::<u64>("recovered"), 50);
    assert_eq!(sink.property::<u64>("sent"), 60);
    assert_eq!(sink.property::<u64>("undelivered"), 0);

    let records = broker.wait_records("spooled", 80, Duration::from_secs(20));
    all_in_order(&numbers(&records), 80, 0);
    assert!(records.iter().all(|r| r.key.as_deref() == Some("cam")));
    let _ = std::fs::remove_dir_all(&spool);
}

#[test]
fn a_full_queue_without_spool_drops_exactly_the_oldest() {
    let mut broker = Broker::start();
    broker.stop();
    let mut feed = Feed::start(
        "cam",
        &format!(
            "{} max-queue=10 flush-timeout=20000",
            props(&broker, "overflow", "cam")
        ),
    );
    feed.push(50, Duration::ZERO);
    feed.wait_counter("dropped", 40, Duration::from_secs(5));
    assert_eq!(feed.counter("queued"), 10);
    broker.restart();
    let (said, sink) = feed.finish(Duration::from_secs(30));
    assert!(said.eos, "{said:?}");
    assert_eq!(sink.property::<u64>("dropped"), 40);
    assert_eq!(sink.property::<u64>("sent"), 10);
    assert_eq!(sink.property::<u64>("waited"), 10);
    assert_eq!(said.stat("dropped"), 40);

    let records = broker.wait_records("overflow", 10, Duration::from_secs(20));
    assert_eq!(numbers(&records), (40..50).collect::<Vec<_>>());
}

#[test]
fn an_unreachable_broker_at_eos_ends_within_flush_timeout_and_counts_the_rest() {
    let port = common::free_port();
    let mut feed = Feed::start(
        "cam",
        &format!("brokers=127.0.0.1:{port} topic=nowhere flush-timeout=1000 timeout=2"),
    );
    feed.push(25, Duration::ZERO);
    feed.wait_counter("queued", 25, Duration::from_secs(5));
    let start = Instant::now();
    let (said, sink) = feed.finish(Duration::from_secs(10));
    let took = start.elapsed();
    assert!(said.eos, "{said:?}");
    assert!(
        // flush-timeout, plus slack for a loaded machine (the point: bounded, not 10 s).
        took >= Duration::from_millis(900) && took < Duration::from_millis(4000),
        "EOS after {took:?} with flush-timeout=1000"
    );
    assert_eq!(sink.property::<u64>("undelivered"), 25);
    assert_eq!(sink.property::<u64>("dropped"), 25);
    assert_eq!(sink.property::<u64>("sent"), 0);
    assert_eq!(said.stat("undelivered"), 25);
    assert!(
        said.warnings
            .iter()
            .any(|w| w.contains("25 documents undelivered")),
        "{:?}",
        said.warnings
    );
    assert!(
        said.warnings
            .iter()
            .any(|w| w.contains("cannot connect") && w.contains(&port.to_string())),
        "the reason, naming the broker: {:?}",
        said.warnings
    );
}

#[test]
fn records_the_broker_cannot_take_are_counted_failed_and_the_rest_go_on() {
    let broker = Broker::start();
    let mut feed = Feed::start(
        "cam",
        &format!(
            "{} properties=\"kafka,message.max.bytes=1000\"",
            props(&broker, "sizes", "cam")
        ),
    );
    let big = format!(r#"{{"inferences":[],"padding":"{}"}}"#, "x".repeat(2000));
    for i in 0..10 {
        feed.push(1, Duration::ZERO);
        if i % 3 == 0 {
            feed.src
                .push_buffer(gst::Buffer::from_slice(big.clone().into_bytes()))
                .expect("appsrc takes the buffer");
        }
    }
    let (said, sink) = feed.finish(Duration::from_secs(20));
    assert!(said.eos, "{said:?}");
    assert_eq!(sink.property::<u64>("failed"), 4);
    assert_eq!(sink.property::<u64>("sent"), 10);
    assert!(
        said.warnings.iter().any(|w| w.contains("refused")),
        "{:?}",
        said.warnings
    );
    let records = broker.wait_records("sizes", 10, Duration::from_secs(20));
    assert_eq!(numbers(&records), (0..10).collect::<Vec<_>>());
}

#[test]
fn bad_settings_are_errors_naming_them() {
    common::init();
    let cases: [(&str, &[&str]); 9] = [
        ("topic=t", &["brokers", "not set"]),
        ("brokers=127.0.0.1:9", &["topic", "not set"]),
        (
            "brokers=127.0.0.1:9 topic=t properties=\"kafka,no.such.setting=1\"",
            &["properties", "no.such.setting"],
        ),
        (
            "brokers=127.0.0.1:9 topic=t properties=\"kafka,acks=1\"",
            &["properties", "set `acks`"],
        ),
        (
            "brokers=127.0.0.1:9 topic=t acks=leader",
            &["acks", "enable.idempotence"],
        ),
        (
            "brokers=127.0.0.1:9 topic=lva.{camera}",
            &["topic", "{camera}"],
        ),
        (
            "brokers=127.0.0.1:9 topic=t key=k.{stream}",
            &["key", "stream-id"],
        ),
        (
            "brokers=127.0.0.1:9 topic=t \
             properties=\"kafka,security.protocol=bogus,sasl.password=hunter2\"",
            &["properties", "security.protocol", "bogus"],
        ),
        (
            "brokers=127.0.0.1:9 topic=t properties=\"kafka,transactional.id=x\"",
            &["transactional.id"],
        ),
    ];
    for (settings, want) in cases {
        let pipeline = gst::parse::launch(&format!(
            "appsrc caps=application/json ! lvakafkasink {settings}"
        ))
        .unwrap_or_else(|e| panic!("{settings}: {e}"))
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
        let said = listen(&pipeline);
        assert!(
            pipeline.set_state(gst::State::Paused).is_err(),
            "{settings}: starts"
        );
        pipeline.set_state(gst::State::Null).expect("to NULL");
        let said = said.lock().unwrap().clone();
        let text = said.errors.join("\n");
        for w in want {
            assert!(text.contains(w), "{settings}: {w:?} not in {text}");
        }
        assert!(!text.contains("hunter2"), "a secret in {text}");
    }
}
