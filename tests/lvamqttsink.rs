//! `lvamqttsink` against a real mosquitto started by the test, with `mosquitto_sub` as the
//! independent consumer: every document arrives once and in order (bikes.mp4 through the SSD),
//! a broker restart mid-stream loses nothing, a spool carries documents over a pipeline restart,
//! overflow and an unreachable broker are counted exactly, bad settings are errors that name
//! them, and user/password and TLS (openssl-made CA, server and client certificates) work.
//!
//! Tests about delivery push numbered documents through an appsrc rather than run a model.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::mqtt::{Broker, Subscriber, scratch};
use gst::prelude::*;

/// What a run of appsrc ! lvamqttsink gave.
struct Run {
    /// The sink's element messages (stats, connection), in order.
    messages: Vec<gst::Structure>,
    warnings: Vec<String>,
    errors: Vec<String>,
    /// From sending EOS to the EOS message.
    eos_took: Duration,
    sink: gst::Element,
}

impl Run {
    fn last_stats(&self) -> gst::Structure {
        self.messages
            .iter()
            .rev()
            .find(|s| s.name() == "lvamqttsink-stats")
            .cloned()
            .unwrap_or_else(|| panic!("no stats message: {:?}", self.messages))
    }

    fn stat(&self, field: &str) -> u64 {
        self.last_stats().get::<u64>(field).expect("a counter")
    }

    fn warned(&self, text: &str) -> bool {
        self.warnings.iter().any(|w| w.contains(text))
    }
}

fn doc(n: usize) -> String {
    format!(r#"{{"inferences":[],"n":{n}}}"#)
}

fn docs(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(doc).collect()
}

/// Runs `appsrc ! lvamqttsink PROPS`, pushing `docs` one every `pace`, calling `during(i)`
/// before document i, then EOS; collects the bus until EOS or an error (60 s at most).
fn run(props: &str, docs: &[String], pace: Duration, mut during: impl FnMut(usize)) -> Run {
    common::init();
    let description = format!(
        "appsrc name=src format=time caps=application/json ! lvamqttsink name=sink {props}"
    );
    let (pipeline, src) = common::with_appsrc(&description);
    let sink = pipeline.by_name("sink").expect("the sink");
    let bus = pipeline.bus().expect("bus");
    let mut run = Run {
        messages: Vec::new(),
        warnings: Vec::new(),
        errors: Vec::new(),
        eos_took: Duration::ZERO,
        sink,
    };
    let collect = |msg: &gst::Message, run: &mut Run| -> bool {
        match msg.view() {
            gst::MessageView::Element(e) => {
                if let Some(s) = e.structure() {
                    run.messages.push(s.to_owned());
                }
            }
            gst::MessageView::Warning(w) => run.warnings.push(w.error().to_string()),
            gst::MessageView::Error(e) => {
                run.errors.push(e.error().to_string());
                return true;
            }
            gst::MessageView::Eos(_) => return true,
            _ => {}
        }
        false
    };
    if pipeline.set_state(gst::State::Playing).is_err() {
        while let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) {
            if collect(&msg, &mut run) {
                break;
            }
        }
        let _ = pipeline.set_state(gst::State::Null);
        return run;
    }
    for (i, text) in docs.iter().enumerate() {
        during(i);
        let mut buffer = gst::Buffer::from_slice(text.clone().into_bytes());
        buffer
            .get_mut()
            .expect("a new buffer")
            .set_pts(gst::ClockTime::from_mseconds(40 * i as u64));
        if src.push_buffer(buffer).is_err() {
            break;
        }
        if !pace.is_zero() {
            std::thread::sleep(pace);
        }
    }
    let _ = src.end_of_stream();
    let eos_sent = Instant::now();
    let deadline = eos_sent + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100))
            && collect(&msg, &mut run)
        {
            break;
        }
    }
    run.eos_took = eos_sent.elapsed();
    pipeline
        .set_state(gst::State::Null)
        .expect("the pipeline stops");
    // Messages posted while stopping.
    while let Some(msg) = bus.pop() {
        collect(&msg, &mut run);
    }
    run
}

fn mqtt(broker: &Broker, topic: &str) -> String {
    format!("host=127.0.0.1 port={} topic={topic}", broker.port)
}

/// `received` holds `expected` in order, each once, but for repeats of a document right where
/// the connection failed (at-least-once): consecutive repeats of a run are allowed.
fn assert_in_order(received: &[String], expected: &[String], max_repeats: usize) {
    let mut next = 0;
    let mut repeats = 0;
    for r in received {
        if next < expected.len() && *r == expected[next] {
            next += 1;
        } else if expected[..next].contains(r) {
            repeats += 1;
        } else {
            panic!(
                "{r} out of order: expected {:?} (received {received:?})",
                expected.get(next)
            );
        }
    }
    assert_eq!(next, expected.len(), "missing documents: {received:?}");
    assert!(
        repeats <= max_repeats,
        "{repeats} repeats, more than the {max_repeats} in flight at a failure"
    );
}

#[test]
fn bikes_documents_arrive_once_and_in_order_equal_to_the_file() {
    let broker = Broker::start();
    let sub = Subscriber::start(&broker, "cams/bikes/lva", &[]);
    let dir = scratch("mqtt-bikes");
    let file = dir.join("documents.jsonl");
    let description = format!(
        "filesrc location={} ! decodebin ! videoconvert ! ovinfer model={} labels={} \
         ! lvajson json-lines=true ! tee name=t \
         t. ! queue ! lvamqttsink name=sink host=127.0.0.1 port={} topic=cams/{{stream}}/lva \
              stream-id=bikes qos=1 \
         t. ! queue ! filesink location={}",
        common::asset("media/bikes.mp4"),
        common::ssd_model(),
        common::ssd_labels(),
        broker.port,
        file.display()
    );
    let outcome = common::run_sinks(&description, &[]);
    assert!(outcome.errors.is_empty(), "{}", outcome.error_text());
    let written: Vec<String> = std::fs::read_to_string(&file)
        .expect("the tee's file")
        .lines()
        .map(str::to_string)
        .collect();
    assert!(
        written.len() > 50,
        "bikes.mp4 gives documents: {}",
        written.len()
    );
    let received = sub.wait_lines(written.len(), Duration::from_secs(10));
    assert_eq!(received, written, "every document once, in order");
    let sink = outcome.element("sink");
    assert_eq!(sink.property::<u64>("sent"), written.len() as u64);
    for counter in ["dropped", "failed", "resent", "queued", "undelivered"] {
        assert_eq!(sink.property::<u64>(counter), 0, "{counter}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_broker_down_for_5_s_mid_stream_loses_nothing() {
    let mut broker = Broker::start();
    let sub = Subscriber::start(&broker, "outage", &[]);
    let expected = docs(0..400);
    let mut down_at = None;
    // 50 documents/s: 2 s up, 5 s down, 1 s up again.
    let run = run(
        &format!(
            "{} retry-delay=100 max-retry-delay=500",
            mqtt(&broker, "outage")
        ),
        &expected,
        Duration::from_millis(20),
        |i| match i {
            100 => {
                broker.stop();
                down_at = Some(Instant::now());
            }
            350 => {
                let left = Duration::from_secs(5).saturating_sub(down_at.unwrap().elapsed());
                std::thread::sleep(left);
                broker.restart();
            }
            _ => {}
        },
    );
    assert!(run.errors.is_empty(), "{:?}", run.errors);
    let received = sub.wait_lines(expected.len(), Duration::from_secs(20));
    assert_in_order(&received, &expected, 100);
    assert_eq!(run.stat("sent"), 400);
    assert_eq!(run.stat("dropped"), 0);
    let waited = run.stat("waited");
    assert!(
        (200..=350).contains(&waited),
        "about 250 documents (5 s) and those of the reconnection's back-off waited: {waited}"
    );
    assert!(run.stat("disconnects") >= 1);
    assert!(
        run.warned("lost the connection to the broker"),
        "{:?}",
        run.warnings
    );
    assert!(
        run.messages.iter().any(
            |m| m.name() == "lvamqttsink-connection" && m.get::<bool>("connected") == Ok(false)
        ),
        "a connection message"
    );
    let duplicates = (received.len() - expected.len()) as u64;
    assert!(
        duplicates <= run.stat("resent"),
        "duplicates ({duplicates}) only of what was re-sent ({})",
        run.stat("resent")
    );
}

#[test]
fn a_spool_carries_documents_over_a_pipeline_restart_while_the_broker_is_down() {
    let mut broker = Broker::start();
    let sub = Subscriber::start(&broker, "spooled", &[]);
    let spool = scratch("mqtt-spool");
    let props = format!(
        "{} spool-dir={} flush-timeout=500 retry-delay=50 max-retry-delay=200",
        mqtt(&broker, "spooled"),
        spool.display()
    );
    let all = docs(0..170);
    // First run: 50 delivered, then the broker goes away and 100 more are spooled; EOS gives
    // up after flush-timeout and the pipeline stops.
    let first = run(&props, &all[..150], Duration::from_millis(2), |i| {
        if i == 50 {
            std::thread::sleep(Duration::from_millis(300));
            broker.stop();
        }
    });
    assert!(first.errors.is_empty(), "{:?}", first.errors);
    assert!(
        first.eos_took < Duration::from_secs(3),
        "{:?}",
        first.eos_took
    );
    assert_eq!(first.stat("sent"), 50);
    assert_eq!(first.stat("undelivered"), 100);
    assert_eq!(first.stat("dropped"), 0, "kept in the spool, not lost");
    assert!(
        first.warned("they stay in spool-dir"),
        "{:?}",
        first.warnings
    );
    assert!(Path::new(&spool).join("commit").exists());

    // Second run, with the broker back: the 100 go out first, then the new ones.
    broker.restart();
    let second = run(&props, &all[150..], Duration::ZERO, |_| {});
    assert!(second.errors.is_empty(), "{:?}", second.errors);
    assert_eq!(second.stat("recovered"), 100);
    assert_eq!(second.stat("sent"), 120);
    assert_eq!(second.stat("undelivered"), 0);
    let received = sub.wait_lines(all.len(), Duration::from_secs(20));
    assert_in_order(&received, &all, 100);
    // Delivered segments are deleted: what is left is at most the segment being written.
    let segments = std::fs::read_dir(&spool)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .map(|e| e.file_name().to_string_lossy().ends_with(".seg"))
                .unwrap_or(false)
        })
        .count();
    assert!(segments <= 1, "{segments} segments left");
    let _ = std::fs::remove_dir_all(&spool);
}

#[test]
fn overflow_without_a_spool_drops_the_oldest_and_counts_exactly() {
    let mut broker = Broker::start();
    let sub = Subscriber::start(&broker, "overflow", &[]);
    broker.stop();
    let props = format!(
        "{} max-queue=10 queue-full=drop-oldest flush-timeout=20000 retry-delay=50 \
         max-retry-delay=100",
        mqtt(&broker, "overflow")
    );
    // The broker comes back while the sink flushes at EOS, after all 100 documents were pushed
    // (in a few milliseconds): 90 were pushed out of the queue by newer ones.
    let restarter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1000));
        broker.restart();
        broker
    });
    let all = docs(0..100);
    let run = run(&props, &all, Duration::ZERO, |_| {});
    let _broker = restarter.join().expect("the broker restarts");
    assert!(run.errors.is_empty(), "{:?}", run.errors);
    assert_eq!(run.stat("dropped"), 90);
    assert_eq!(run.stat("sent"), 10);
    assert_eq!(run.stat("waited"), 10);
    let received = sub.wait_lines(10, Duration::from_secs(10));
    assert_eq!(received, all[90..].to_vec(), "the newest ten");
}

#[test]
fn an_unreachable_broker_at_eos_lets_eos_through_within_flush_timeout() {
    let port = common::free_port();
    let all = docs(0..30);
    let t = Instant::now();
    let run = run(
        &format!("host=127.0.0.1 port={port} topic=nowhere flush-timeout=1000"),
        &all,
        Duration::ZERO,
        |_| {},
    );
    assert!(run.errors.is_empty(), "{:?}", run.errors);
    assert!(
        run.eos_took >= Duration::from_millis(900) && run.eos_took < Duration::from_secs(3),
        "EOS after about flush-timeout: {:?}",
        run.eos_took
    );
    assert!(t.elapsed() < Duration::from_secs(15));
    assert_eq!(run.stat("undelivered"), 30);
    assert_eq!(run.stat("dropped"), 30);
    assert_eq!(run.stat("sent"), 0);
    assert!(
        run.warned("cannot connect to the broker"),
        "{:?}",
        run.warnings
    );
    assert!(run.warned("30 documents undelivered"), "{:?}", run.warnings);
    assert_eq!(run.sink.property::<u64>("undelivered"), 30);
}

#[test]
fn bad_settings_are_errors_that_name_them() {
    let cases = [
        ("topic=a", "no host set"),
        ("host=127.0.0.1 qos=3", "qos 3 is not an MQTT QoS level"),
        ("host=127.0.0.1 port=70000", "port 70000"),
        ("host=127.0.0.1 topic=\"\"", "topic is empty"),
        ("host=127.0.0.1 topic=a/#", "MQTT allows wildcards only"),
        ("host=127.0.0.1 topic=cams/{stream}", "set stream-id"),
        (
            "host=127.0.0.1 topic=a/{camera}",
            "unknown placeholder {camera}",
        ),
        (
            "host=127.0.0.1 tls=true ca-file=/nonexistent/ca.pem",
            "cannot read ca-file /nonexistent/ca.pem",
        ),
        (
            "host=127.0.0.1 ca-file=/etc/hostname",
            "ca-file is set but tls is false",
        ),
        (
            "host=127.0.0.1 tls=true ca-file=/etc/hostname",
            "holds no PEM certificate",
        ),
        (
            "host=127.0.0.1 cert-file=/x tls=true",
            "cert-file is set without key-file",
        ),
        (
            "host=127.0.0.1 password=secret",
            "password is set without username",
        ),
        (
            "host=127.0.0.1 clean-session=false",
            "needs a stable client-id",
        ),
    ];
    for (props, expected) in cases {
        let run = run(props, &[], Duration::ZERO, |_| {});
        assert!(
            run.errors.iter().any(|e| e.contains(expected)),
            "{props}: expected an error with '{expected}', got {:?}",
            run.errors
        );
    }

    // One spool folder for two sinks: the second is refused.
    common::init();
    let spool = scratch("mqtt-spool-twice");
    let description = format!(
        "appsrc name=src caps=application/json ! tee name=t \
         t. ! queue ! lvamqttsink host=127.0.0.1 spool-dir={0} \
         t. ! queue ! lvamqttsink host=127.0.0.1 spool-dir={0}",
        spool.display()
    );
    let (pipeline, _src) = common::with_appsrc(&description);
    assert!(pipeline.set_state(gst::State::Playing).is_err());
    let bus = pipeline.bus().unwrap();
    let error = bus
        .timed_pop_filtered(gst::ClockTime::from_seconds(5), &[gst::MessageType::Error])
        .expect("an error");
    let gst::MessageView::Error(e) = error.view() else {
        unreachable!()
    };
    assert!(
        e.error()
            .to_string()
            .contains("is in use by another element"),
        "{}",
        e.error()
    );
    pipeline.set_state(gst::State::Null).unwrap();
    let _ = std::fs::remove_dir_all(&spool);
}

#[test]
fn user_and_password_are_checked_by_the_broker() {
    let dir = scratch("mqtt-auth");
    let passwords = dir.join("passwords");
    let status = Command::new("mosquitto_passwd")
        .args(["-c", "-b"])
        .arg(&passwords)
        .args(["camera", "s3cret"])
        .status()
        .expect("mosquitto_passwd runs");
    assert!(status.success());
    let broker = Broker::start_with(false, &format!("password_file {}", passwords.display()));
    let sub = Subscriber::start(&broker, "auth", &["-u", "camera", "-P", "s3cret"]);

    let wrong = run(
        &format!(
            "{} username=camera password=wrong flush-timeout=700",
            mqtt(&broker, "auth")
        ),
        &docs(0..5),
        Duration::ZERO,
        |_| {},
    );
    assert!(wrong.errors.is_empty(), "{:?}", wrong.errors);
    assert!(
        wrong.warned("refused the user name or password") || wrong.warned("not authorized"),
        "{:?}",
        wrong.warnings
    );
    assert!(
        !wrong.warnings.iter().any(|w| w.contains("wrong")),
        "the password is never shown"
    );
    assert_eq!(wrong.stat("sent"), 0);
    assert_eq!(wrong.stat("undelivered"), 5);

    let right = run(
        &format!("{} username=camera password=s3cret", mqtt(&broker, "auth")),
        &docs(0..5),
        Duration::ZERO,
        |_| {},
    );
    assert!(right.errors.is_empty(), "{:?}", right.errors);
    assert_eq!(right.stat("sent"), 5);
    assert_eq!(sub.wait_lines(5, Duration::from_secs(5)), docs(0..5));
    let _ = std::fs::remove_dir_all(&dir);
}

/// An openssl-made CA, a server certificate for 127.0.0.1 and a client certificate, in `dir`.
fn make_certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=ovlva test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    // Extensions make version 3 certificates, the only kind webpki accepts.
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    for name in ["server", "client"] {
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
        ]);
        let mut args = vec![
            "x509",
            "-req",
            "-in",
            &*format!("{name}.csr"),
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &*format!("{name}.pem"),
        ]
        .into_iter()
        .map(str::to_string)
        .collect::<Vec<_>>();
        args.extend(["-extfile".to_string(), format!("{name}.ext")]);
        openssl(&args.iter().map(String::as_str).collect::<Vec<_>>());
    }
}

#[test]
fn tls_with_a_private_ca_and_a_client_certificate() {
    let dir = scratch("mqtt-tls");
    make_certificates(&dir);
    let d = dir.display();
    let broker = Broker::start_with(
        true,
        &format!(
            "cafile {d}/ca.pem\ncertfile {d}/server.pem\nkeyfile {d}/server.key\n\
             require_certificate true\nuse_identity_as_username true"
        ),
    );
    let ca = format!("{d}/ca.pem");
    let client = [
        "--cafile",
        &ca,
        "--cert",
        &format!("{d}/client.pem"),
        "--key",
        &format!("{d}/client.key"),
    ]
    .map(str::to_string);
    let client: Vec<&str> = client.iter().map(String::as_str).collect();
    let sub = Subscriber::start(&broker, "tls", &client);

    let ok = run(
        &format!(
            "{} tls=true ca-file={d}/ca.pem cert-file={d}/client.pem key-file={d}/client.key",
            mqtt(&broker, "tls")
        ),
        &docs(0..5),
        Duration::ZERO,
        |_| {},
    );
    assert!(ok.errors.is_empty(), "{:?}", ok.errors);
    assert_eq!(ok.stat("sent"), 5, "{:?}", ok.warnings);
    assert_eq!(sub.wait_lines(5, Duration::from_secs(5)), docs(0..5));

    // Without the private CA the server's certificate is not trusted.
    let untrusted = run(
        &format!(
            "{} tls=true cert-file={d}/client.pem key-file={d}/client.key flush-timeout=500",
            mqtt(&broker, "tls")
        ),
        &docs(0..2),
        Duration::ZERO,
        |_| {},
    );
    assert!(
        untrusted.warned("TLS with 127.0.0.1"),
        "{:?}",
        untrusted.warnings
    );
    assert_eq!(untrusted.stat("sent"), 0);

    // Without a client certificate the broker refuses the connection.
    let anonymous = run(
        &format!(
            "{} tls=true ca-file={d}/ca.pem flush-timeout=500",
            mqtt(&broker, "tls")
        ),
        &docs(0..2),
        Duration::ZERO,
        |_| {},
    );
    assert!(
        anonymous.warned("cannot connect to the broker"),
        "{:?}",
        anonymous.warnings
    );
    assert_eq!(anonymous.stat("sent"), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn qos_0_and_2_and_the_retained_last_document() {
    let broker = Broker::start();
    for qos in [0, 2] {
        let topic = format!("qos{qos}");
        let sub = Subscriber::start(&broker, &topic, &[]);
        let run = run(
            &format!("{} qos={qos} retain=true", mqtt(&broker, &topic)),
            &docs(0..50),
            Duration::ZERO,
            |_| {},
        );
        assert!(run.errors.is_empty(), "{:?}", run.errors);
        assert_eq!(run.stat("sent"), 50);
        let received = sub.wait_lines(50, Duration::from_secs(5));
        if qos == 2 {
            assert_eq!(received.len(), 50, "{received:?}");
            assert_eq!(received, docs(0..50));
        } else {
            // QoS 0 all the way: the broker may drop messages to a busy subscriber (mosquitto
            // does past its in-flight limit); what arrives is in order.
            assert!(!received.is_empty());
            let expected = docs(0..50);
            let mut at = expected.iter();
            assert!(received.iter().all(|r| at.any(|e| e == r)), "{received:?}");
        }
        // A new subscriber gets the retained last document at once.
        let out = Command::new("mosquitto_sub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &broker.port.to_string(),
                "-t",
                &topic,
            ])
            .args(["-C", "1", "-W", "5"])
            .output()
            .expect("mosquitto_sub runs");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), doc(49));
    }
}
