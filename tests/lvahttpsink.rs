//! `lvahttpsink` against real HTTP servers on 127.0.0.1 (tiny_http, started by each test):
//! delivery exactly once and in order, Retry-After, a receiver that is down then up, one that
//! never answers, queue overflow, a disk spool kept over a restart, auth headers, 4xx and 5xx
//! handling, bad settings, and the whole bikes.mp4 → ovinfer → lvajson → lvahttpsink pipeline.

mod common;

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;

/// A request as the receiver got it.
#[derive(Debug, Clone)]
struct Received {
    body: String,
    headers: HashMap<String, String>,
    at: Instant,
    status: u16,
}

/// The answer to request number `n` (from 0): status and headers.
type Answer = Box<dyn Fn(usize, &str) -> (u16, Vec<(&'static str, String)>) + Send>;

/// A real HTTP server on 127.0.0.1 recording every request.
struct Receiver {
    port: u16,
    requests: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    fn start(answer: Answer) -> Receiver {
        Self::on_port(0, answer)
    }

    fn on_port(port: u16, answer: Answer) -> Receiver {
        let server = tiny_http::Server::http(("127.0.0.1", port)).expect("the receiver starts");
        let port = server.server_addr().to_ip().expect("an IP address").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log, halt) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !halt.load(Ordering::SeqCst) {
                let Ok(Some(mut request)) = server.recv_timeout(Duration::from_millis(50)) else {
                    continue;
                };
                let mut body = String::new();
                let _ = request.as_reader().read_to_string(&mut body);
                let headers = request
                    .headers()
                    .iter()
                    .map(|h| {
                        (
                            h.field.as_str().as_str().to_ascii_lowercase(),
                            h.value.to_string(),
                        )
                    })
                    .collect();
                let n = log.lock().unwrap().len();
                let (status, extra) = answer(n, &body);
                log.lock().unwrap().push(Received {
                    body,
                    headers,
                    at: Instant::now(),
                    status,
                });
                let mut response = tiny_http::Response::empty(status);
                for (k, v) in extra {
                    response.add_header(tiny_http::Header::from_bytes(k, v).unwrap());
                }
                let _ = request.respond(response);
            }
        });
        Receiver {
            port,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/events", self.port)
    }

    fn requests(&self) -> Vec<Received> {
        self.requests.lock().unwrap().clone()
    }

    /// Bodies of the requests answered 2xx, in arrival order.
    fn accepted(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|r| (200..300).contains(&r.status))
            .map(|r| r.body)
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn ok() -> Answer {
    Box::new(|_, _| (200, vec![]))
}

/// A port nothing listens on (yet).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn doc(n: usize) -> String {
    format!(
        r#"{{"inferences":[{{"type":"entity","entity":{{"tag":{{"value":"car","confidence":0.5}},"box":{{"l":0.1,"t":0.1,"w":0.2,"h":0.{n}}}}}}}]}}"#
    )
}

/// What a run of `appsrc ! lvahttpsink` gave.
struct Run {
    sink: gst::Element,
    errors: Vec<String>,
    warnings: Vec<String>,
    /// The lvahttpsink-stats messages, in order.
    stats: Vec<gst::Structure>,
    /// From the last document pushed to EOS (or the error).
    to_eos: Duration,
}

impl Run {
    fn counter(&self, name: &str) -> u64 {
        self.sink.property::<u64>(name)
    }
}

/// Pushes `docs` documents (25 fps timestamps) into `lvahttpsink {props}` and waits for EOS;
/// `between(n)` runs before document n is pushed.
fn send(docs: usize, props: &str, between: impl Fn(usize, &gst::Element)) -> Run {
    let (pipeline, src) = common::with_appsrc(&format!(
        "appsrc name=src format=time caps=application/json ! lvahttpsink name=sink {props}"
    ));
    let sink = pipeline.by_name("sink").unwrap();
    let bus = pipeline.bus().unwrap();
    let (mut errors, mut warnings, mut stats) = (Vec::new(), Vec::new(), Vec::new());
    let mut collect = |msg: &gst::Message| match msg.view() {
        gst::MessageView::Error(e) => errors.push(format!("{} | {:?}", e.error(), e.debug())),
        gst::MessageView::Warning(w) => warnings.push(w.error().to_string()),
        gst::MessageView::Element(e) => {
            if let Some(s) = e.structure().filter(|s| s.name() == "lvahttpsink-stats") {
                stats.push(s.to_owned());
            }
        }
        _ => {}
    };
    let started = pipeline.set_state(gst::State::Playing).is_ok();
    let mut last_push = Instant::now();
    if started {
        for n in 0..docs {
            between(n, &sink);
            let mut buffer = gst::Buffer::from_mut_slice(doc(n).into_bytes());
            buffer
                .get_mut()
                .unwrap()
                .set_pts(gst::ClockTime::from_mseconds(40 * n as u64));
            if src.push_buffer(buffer).is_err() {
                break;
            }
        }
        last_push = Instant::now();
        let _ = src.end_of_stream();
    }
    let mut timed_out = false;
    let to_eos = loop {
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_seconds(60)) else {
            timed_out = true;
            break last_push.elapsed();
        };
        collect(&msg);
        match msg.view() {
            gst::MessageView::Eos(_) | gst::MessageView::Error(_) => break last_push.elapsed(),
            _ => {}
        }
    };
    pipeline.set_state(gst::State::Null).unwrap();
    while let Some(msg) = bus.pop() {
        collect(&msg);
    }
    if timed_out {
        errors.push("no EOS within 60 s".into());
    }
    Run {
        sink,
        errors,
        warnings,
        stats,
        to_eos,
    }
}

#[test]
fn every_document_arrives_once_in_order_with_its_headers() {
    let receiver = Receiver::start(ok());
    let props = format!(
        "location={} extra-headers=\"headers, x-camera=door, x-site=hq\" stats-interval=50",
        receiver.url()
    );
    let run = send(50, &props, |n, _| {
        if n % 10 == 0 {
            std::thread::sleep(Duration::from_millis(60));
        }
    });
    assert!(run.errors.is_empty(), "{:?}", run.errors);
    assert_eq!(receiver.accepted(), (0..50).map(doc).collect::<Vec<_>>());
    let requests = receiver.requests();
    assert_eq!(requests.len(), 50, "no request twice");
    let mut ids = std::collections::HashSet::new();
    for (n, r) in requests.iter().enumerate() {
        let h = &r.headers;
        assert_eq!(h["content-type"], "application/json");
        assert_eq!(h["x-camera"], "door");
        assert_eq!(h["x-site"], "hq");
        assert_eq!(h["x-ovlva-sequence"], n.to_string());
        assert_eq!(h["x-ovlva-pts"], (40_000_000 * n as u64).to_string());
        assert!(h["user-agent"].starts_with("ovlva-lvahttpsink/"));
        assert!(!h.contains_key("authorization"));
        let id = &h["x-ms-client-request-id"];
        assert_eq!(id.len(), 36, "{id}");
        assert!(ids.insert(id.clone()), "request id {id} used twice");
    }
    assert_eq!(
        (
            run.counter("sent"),
            run.counter("failed"),
            run.counter("dropped")
        ),
        (50, 0, 0)
    );
    assert_eq!((run.counter("retried"), run.counter("queued")), (0, 0));
    // Periodic statistics while running, and the final ones at EOS.
    assert!(run.stats.len() >= 2, "{:?}", run.stats);
    let last = run.stats.last().unwrap();
    assert_eq!(last.get::<u64>("sent").unwrap(), 50);
    assert_eq!(last.get::<u64>("dropped").unwrap(), 0);
}

#[test]
fn a_busy_receiver_is_retried_after_its_retry_after() {
    let receiver = Receiver::start(Box::new(|n, _| {
        if n < 2 {
            (503, vec![("Retry-After", "1".to_string())])
        } else {
            (200, vec![])
        }
    }));
    let run = send(
        5,
        &format!("location={} retry-delay=10", receiver.url()),
        |_, _| {},
    );
    assert!(run.errors.is_empty(), "{:?}", run.errors);
    let r = receiver.requests();
    assert_eq!(r.len(), 7);
    assert!(
        r[1].at - r[0].at >= Duration::from_secs(1),
        "{:?}",
        r[1].at - r[0].at
    );
    assert!(
        r[2].at - r[1].at >= Duration::from_secs(1),
        "{:?}",
        r[2].at - r[1].at
    );
    assert_eq!(r[0].body, doc(0));
    assert_eq!(r[1].body, doc(0));
    // The retries keep the document's request id.
    assert_eq!(
        r[0].headers["x-ms-client-request-id"],
        r[2].headers["x-ms-client-request-id"]
    );
    assert_eq!(receiver.accepted(), (0..5).map(doc).collect::<Vec<_>>());
    assert_eq!((run.counter("sent"), run.counter("retried")), (5, 2));
}

#[test]
fn a_receiver_down_at_start_gets_everything_when_it_comes_up() {
    let port = free_port();
    let starter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(2));
        Receiver::on_port(port, ok())
    });
    let props = format!(
        "location=http://127.0.0.1:{port}/events retry-delay=100 max-retry-delay=400 flush-timeout=20000"
    );
    let run = send(20, &props, |_, _| {});
    let receiver = starter.join().unwrap();
    assert!(run.errors.is_empty(), "{:?}", run.errors);
    assert_eq!(receiver.accepted(), (0..20).map(doc).collect::<Vec<_>>());
    assert_eq!((run.counter("sent"), run.counter("dropped")), (20, 0));
    assert!(run.counter("retried") >= 2, "{}", run.counter("retried"));
}

#[test]
fn a_receiver_that_never_answers_times_out_and_eos_comes_within_the_flush_timeout() {
    // Accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            keep.lock().unwrap().push(stream);
        }
    });
    let props = format!(
        "location=http://127.0.0.1:{port}/ timeout=1 retry-delay=50 max-retry-delay=100 flush-timeout=2500"
    );
    let run = send(3, &props, |_, _| {});
    assert!(run.errors.is_empty(), "{:?}", run.errors);
    assert!(
        run.to_eos < Duration::from_secs(4),
        "EOS after {:?}",
        run.to_eos
    );
    assert!(run.counter("timeouts") >= 2, "{}", run.counter("timeouts"));
    assert_eq!((run.counter("sent"), run.counter("dropped")), (0, 3));
    assert!(
        run.warnings
            .iter()
            .any(|w| w.contains("3 documents were not delivered")),
        "{:?}",
        run.warnings
    );
    let last = run.stats.last().unwrap();
    assert_eq!(last.get::<u64>("dropped").unwrap(), 3);
}

#[test]
fn queue_overflow_drops_the_oldest_and_counts_exactly() {
    let port = free_port();
    let props = format!(
        "location=http://127.0.0.1:{port}/events max-queue=5 retry-delay=100 max-retry-delay=200 flush-timeout=20000"
    );
    let receiver: Arc<Mutex<Option<Receiver>>> = Arc::new(Mutex::new(None));
    let slot = receiver.clone();
    let run = send(30, &props, move |n, sink| {
        if n == 1 {
            // Document 0 is in flight (being retried): the queue is empty.
            let start = Instant::now();
            while sink.property::<u64>("retried") == 0 && start.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        if n == 29 {
            *slot.lock().unwrap() = Some(Receiver::on_port(port, ok()));
        }
    });
    let receiver = receiver.lock().unwrap().take().unwrap();
    assert!(run.errors.is_empty(), "{:?}", run.errors);
    // 0 was in flight; 1..=28 went through a queue of 5, then 29: the last 5 stay.
    let want: Vec<String> = [0, 25, 26, 27, 28, 29].into_iter().map(doc).collect();
    assert_eq!(receiver.accepted(), want);
    assert_eq!((run.counter("sent"), run.counter("dropped")), (6, 24));
    assert_eq!(run.stats.last().unwrap().get::<u64>("dropped").unwrap(), 24);
}

#[test]
fn basic_and_bearer_credentials_arrive() {
    for (props, want) in [
        ("user-id=user user-pw=pass", "Basic dXNlcjpwYXNz"),
        ("bearer-token=s3cr3t-token", "Bearer s3cr3t-token"),
    ] {
        let receiver = Receiver::start(ok());
        let run = send(
            2,
            &format!("location={} {props}", receiver.url()),
            |_, _| {},
        );
        assert!(run.errors.is_empty(), "{:?}", run.errors);
        let r = receiver.requests();
        assert_eq!(r.len(), 2);
        assert!(
            r.iter().all(|r| r.headers["authorization"] == want),
            "{props}"
        );
    }
}

#[test]
fn a_refused_document_is_not_retried_and_a_failing_one_only_max_retries_times() {
    let receiver = Receiver::start(Box::new(|_, body| {
        if body == doc(1) {
            (400, vec![])
        } else if body == doc(3) {
            (500, vec![])
        } else {
            (200, vec![])
        }
    }));
    let props = format!("location={} max-retries=2 retry-delay=10", receiver.url());
    let run = send(5, &props, |_, _| {});
    assert!(run.errors.is_empty(), "{:?}", run.errors);
    let bodies: Vec<String> = receiver.requests().into_iter().map(|r| r.body).collect();
    assert_eq!(
        bodies.iter().filter(|b| **b == doc(1)).count(),
        1,
        "400 not retried"
    );
    assert_eq!(
        bodies.iter().filter(|b| **b == doc(3)).count(),
        3,
        "500: 1 + 2 retries"
    );
    assert_eq!(receiver.accepted(), [0, 2, 4].map(doc).to_vec());
    assert_eq!(
        (
            run.counter("sent"),
            run.counter("failed"),
            run.counter("retried")
        ),
        (3, 2, 2)
    );
    assert_eq!(run.warnings.len(), 1, "one bus warning: {:?}", run.warnings);
    assert!(run.warnings[0].contains("HTTP 400"), "{:?}", run.warnings);
}

#[test]
fn a_spool_keeps_the_documents_over_a_restart_while_the_receiver_is_down() {
    let port = free_port();
    let spool = common::mqtt::scratch("http-spool");
    let props = format!(
        "location=http://127.0.0.1:{port}/events spool-dir={} flush-timeout=500 retry-delay=50 \
         max-retry-delay=100",
        spool.display()
    );
    // First run: nobody listens; EOS gives up after flush-timeout, the spool keeps all 20.
    let first = send(20, &props, |_, _| {});
    assert!(first.errors.is_empty(), "{:?}", first.errors);
    assert!(first.to_eos < Duration::from_secs(3), "{:?}", first.to_eos);
    assert!(
        first.counter("retried") >= 2,
        "{}",
        first.counter("retried")
    );
    assert_eq!(
        ["sent", "dropped", "undelivered"].map(|c| first.counter(c)),
        [0, 0, 20]
    );
    assert!(
        first.warnings.iter().any(|w| w
            .contains("20 documents were not delivered within flush-timeout")
            && w.contains("they stay in spool-dir")),
        "{:?}",
        first.warnings
    );

    // Second run, the receiver up: the 20 go out first, then the 10 new ones, each once.
    let receiver = Receiver::on_port(port, ok());
    let second = send(10, &props, |_, _| {});
    assert!(second.errors.is_empty(), "{:?}", second.errors);
    assert_eq!(
        ["recovered", "sent", "dropped", "undelivered", "queued"].map(|c| second.counter(c)),
        [20, 30, 0, 0, 0]
    );
    let requests = receiver.requests();
    let bodies: Vec<String> = requests.iter().map(|r| r.body.clone()).collect();
    let want: Vec<String> = (0..20).chain(0..10).map(doc).collect();
    assert_eq!(bodies, want, "the spooled documents first, in order, once");
    let sequences: Vec<String> = requests
        .iter()
        .map(|r| r.headers["x-ovlva-sequence"].clone())
        .collect();
    assert_eq!(
        sequences,
        (0..30).map(|n| n.to_string()).collect::<Vec<_>>(),
        "numbered since the spool was created"
    );
    let stats = second.stats.last().unwrap();
    assert_eq!(stats.get::<u64>("recovered").unwrap(), 20);
    let _ = std::fs::remove_dir_all(&spool);
}

#[test]
fn bad_settings_are_errors_that_say_what_to_fix() {
    for (props, says) in [
        ("", "no location set"),
        (
            "location=ftp://example.com/x",
            "must be an http:// or https:// URL",
        ),
        (
            "location=http://127.0.0.1:1/ user-id=a bearer-token=b",
            "not both",
        ),
        (
            "location=http://127.0.0.1:1/ user-pw=secret",
            "user-pw is set without user-id",
        ),
        (
            "location=http://127.0.0.1:1/ extra-headers=\"h, x/bad=1\"",
            "not a valid HTTP header name",
        ),
        (
            "location=https://127.0.0.1:1/ ca-file=/nonexistent.pem",
            "cannot read /nonexistent.pem",
        ),
    ] {
        let run = send(1, props, |_, _| {});
        assert!(
            run.errors.iter().any(|e| e.contains(says)),
            "{props}: {:?}",
            run.errors
        );
        assert!(
            run.errors.iter().all(|e| !e.contains("secret")),
            "{:?}",
            run.errors
        );
    }
}

#[test]
fn bikes_documents_reach_the_receiver() {
    let receiver = Receiver::start(ok());
    let description = format!(
        "filesrc location={} ! decodebin ! videoconvert ! ovinfer model={} labels={} \
         ! lvajson name=json ! lvahttpsink name=sink location={}",
        common::asset("media/bikes.mp4"),
        common::ssd_model(),
        common::ssd_labels(),
        receiver.url()
    );
    let pipeline = common::run_to_eos(&description);
    let documents = pipeline
        .by_name("json")
        .unwrap()
        .property::<u64>("documents");
    let accepted = receiver.accepted();
    assert!(documents > 100, "{documents}");
    assert_eq!(accepted.len() as u64, documents);
    for body in &accepted {
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        common::check_lva_schema(&v).unwrap();
    }
    let sink = pipeline.by_name("sink").unwrap();
    assert_eq!(sink.property::<u64>("sent"), documents);
}
