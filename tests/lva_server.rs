//! `lva-server` over real HTTP on 127.0.0.1: the real binary, the real SSD model, a real photo in
//! every content type, and clients from ureq and raw sockets.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, ExitStatus};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::reference::{self, Case, Detection, Tolerance};
use common::{asset, run_sinks, ssd_labels, ssd_model};
use serde_json::{Value, json};

/// A running `lva-server`, stopped when dropped.
struct Server {
    started: common::server::Started,
    addr: String,
    scheme: &'static str,
}

static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn temp_dir() -> std::path::PathBuf {
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("lva-server-test-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// The SSD model entry used by most tests.
fn ssd(workers: usize, max_queue: usize) -> Value {
    json!({
        "model": ssd_model(),
        "labels": ssd_labels(),
        "decoder": "ssd",
        "threshold": 0.5,
        "workers": workers,
        "max-queue": max_queue,
        "description": "SSD MobileNet v2 COCO",
    })
}

impl Server {
    fn start(config: Value) -> Server {
        let dir = temp_dir();
        let path = dir.join("lva-server.json");
        std::fs::write(&path, config.to_string()).expect("config written");
        let started = common::server::start(&path, &[]);
        let (scheme, addr) = started.url.split_once("://").expect("scheme://addr");
        let (scheme, addr) = (scheme.to_string(), addr.to_string());
        Server {
            started,
            addr,
            scheme: if scheme == "https" { "https" } else { "http" },
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    fn log_text(&self) -> String {
        self.started.log_text()
    }

    /// SIGTERM, then the exit status (within `timeout`).
    fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        self.started.terminate(timeout)
    }
}

/// What came back.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .expect("an error message")
            .to_string()
    }
}

fn agent(tls: Option<ureq::tls::TlsConfig>) -> ureq::Agent {
    let mut config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)));
    if let Some(tls) = tls {
        config = config.tls_config(tls);
    }
    ureq::Agent::new_with_config(config.build())
}

fn post(
    agent: &ureq::Agent,
    url: &str,
    content_type: &str,
    body: &[u8],
    headers: &[(&str, &str)],
) -> Reply {
    let mut req = agent.post(url).header("content-type", content_type);
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    reply(req.send(body).expect("an HTTP answer"))
}

fn get(agent: &ureq::Agent, url: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = agent.get(url);
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    reply(req.call().expect("an HTTP answer"))
}

fn reply(mut resp: ureq::http::Response<ureq::Body>) -> Reply {
    let headers = resp
        .headers()
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    Reply {
        status: resp.status().as_u16(),
        headers,
        body: resp.body_mut().read_to_vec().expect("body"),
    }
}

/// The photo in every content type, and the reference's detections on it: OpenVINO's Python
/// API fed by OpenCV (`scripts/reference_detect.py`). PNG, BMP and raw BGR carry exactly the
/// pixels OpenCV decoded from the JPEG (the reference saves them); the JPEG is the original
/// file, which the server decodes with its own decoder.
struct Photo {
    jpeg: Vec<u8>,
    png: Vec<u8>,
    bmp: Vec<u8>,
    /// Tightly packed BGR rows.
    raw: Vec<u8>,
    width: u32,
    height: u32,
    reference: Vec<Detection>,
}

fn sample_bytes(sample: &gst::Sample) -> Vec<u8> {
    sample
        .buffer()
        .expect("buffer")
        .map_readable()
        .expect("map")
        .to_vec()
}

fn photo() -> Photo {
    let jpeg_path = asset("media/person.jpg");
    let dir = reference::scratch("lva-server-photo");
    let png_path = dir.join("person.png").display().to_string();
    let case = Case {
        save: Some(png_path.clone()),
        ..Case::photo("ssd", &ssd_model(), &jpeg_path)
    };
    let (width, height, reference) = reference::run(&[case], &dir).remove(0);
    let decoded = format!(
        "filesrc location={png_path} ! pngdec ! videoconvert ! video/x-raw,format=BGR ! tee name=t \
         t. ! queue ! appsink name=raw \
         t. ! queue ! avenc_bmp ! appsink name=bmp"
    );
    let out = run_sinks(&decoded, &["raw", "bmp"]);
    assert!(out.errors.is_empty(), "{}", out.error_text());
    let raw_sample = &out.samples("raw")[0];
    let info = gst_video::VideoInfo::from_caps(raw_sample.caps().expect("caps")).expect("info");
    assert_eq!((info.width(), info.height()), (width, height));
    let padded = sample_bytes(raw_sample);
    let row = info.width() as usize * 3;
    let stride = info.stride()[0] as usize;
    let raw: Vec<u8> = (0..info.height() as usize)
        .flat_map(|r| padded[r * stride..r * stride + row].to_vec())
        .collect();
    Photo {
        jpeg: std::fs::read(&jpeg_path).expect("jpeg"),
        png: std::fs::read(&png_path).expect("png"),
        bmp: sample_bytes(&out.samples("bmp")[0]),
        raw,
        width,
        height,
        reference,
    }
}

/// The entities of an LVA document as detections in pixels, their class ids read from the
/// labels file ("id name" lines).
fn entities(document: &Value, width: u32, height: u32) -> Vec<Detection> {
    let (w, h) = (f64::from(width), f64::from(height));
    document["inferences"]
        .as_array()
        .expect("inferences")
        .iter()
        .map(|i| {
            let e = &i["entity"];
            let b = &e["box"];
            let n = |v: &Value| v.as_f64().expect("a number");
            Detection {
                label_id: common::ssd_label_id(e["tag"]["value"].as_str().expect("tag")),
                confidence: n(&e["tag"]["confidence"]),
                x: n(&b["l"]) * w,
                y: n(&b["t"]) * h,
                w: n(&b["w"]) * w,
                h: n(&b["h"]) * h,
            }
        })
        .collect()
}

/// How close the server's answer must be to the reference: the lossless types carry the
/// reference's own pixels (boxes within 2 px, confidences within the SSD's step of 1/256); the
/// JPEG goes through another decoder than OpenCV's, whose pixels differ by a few levels, which
/// moves the quantised SSD's boxes by a few pixels (4.2 px and no confidence step measured).
fn tolerance(content_type: &str) -> Tolerance {
    if content_type == "image/jpeg" {
        Tolerance {
            edge_px: 6.0,
            confidence: 4.0 / 256.0,
            above: 0.51,
        }
    } else {
        Tolerance {
            edge_px: 2.0,
            confidence: 1.0 / 256.0 + 1e-3,
            above: 0.51,
        }
    }
}

fn black_png() -> Vec<u8> {
    let out = run_sinks(
        "videotestsrc pattern=black num-buffers=1 ! video/x-raw,width=320,height=240 ! \
         videoconvert ! pngenc ! appsink name=png",
        &["png"],
    );
    sample_bytes(&out.samples("png")[0])
}

#[test]
fn every_content_type_of_a_real_photo_gives_the_references_detections() {
    let photo = photo();
    let names: Vec<i32> = photo
        .reference
        .iter()
        .filter(|d| d.confidence > 0.51)
        .map(|d| d.label_id)
        .collect();
    // The woman (1) and the horse (19) of darknet's person.jpg.
    assert_eq!(names, [1, 19], "{:?}", photo.reference);

    let server = Server::start(json!({"models": {"ssd": ssd(2, 4)}}));
    let agent = agent(None);
    let raw_url = server.url(&format!(
        "/ssd?width={}&height={}&format=bgr24",
        photo.width, photo.height
    ));
    let cases: [(&str, &[u8], String); 4] = [
        ("image/jpeg", &photo.jpeg, server.url("/ssd")),
        ("image/png", &photo.png, server.url("/ssd")),
        ("image/bmp", &photo.bmp, server.url("/ssd")),
        ("image/x-raw", &photo.raw, raw_url),
    ];
    let mut lossless = Vec::new();
    for (content_type, body, url) in &cases {
        let id = format!("req-{content_type}");
        let r = post(
            &agent,
            url,
            content_type,
            body,
            &[("x-ms-client-request-id", &id)],
        );
        assert_eq!(
            r.status,
            200,
            "{content_type}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("x-ms-client-request-id"), Some(id.as_str()));
        let document = r.json();
        common::check_lva_schema(&document).expect("a valid LVA document");
        let ours = entities(&document, photo.width, photo.height);
        let (edge, confidence) =
            reference::compare(&ours, &photo.reference, tolerance(content_type))
                .unwrap_or_else(|e| panic!("{content_type}: {e}\n{document}"));
        eprintln!("{content_type}: edges within {edge:.1} px, confidences within {confidence:.4}");
        if *content_type != "image/jpeg" {
            lossless.push(r.body);
        }
    }
    // The same pixels give the same document whatever carried them.
    assert!(lossless.windows(2).all(|w| w[0] == w[1]));
    // A per-request threshold above the horse's confidence keeps only the person.
    let r = post(
        &agent,
        &server.url("/ssd?threshold=0.99"),
        "image/jpeg",
        &photo.jpeg,
        &[],
    );
    assert_eq!(r.status, 200);
    let only: Vec<Value> = r.json()["inferences"].as_array().expect("array").clone();
    assert_eq!(only.len(), 1);
    assert_eq!(only[0]["entity"]["tag"]["value"], "person");
    // ... and the next request is back at the model's threshold.
    let r = post(&agent, &server.url("/ssd"), "image/png", &photo.png, &[]);
    assert_eq!(r.body, lossless[0]);

    // Nothing in a black frame: 204 with no body, raw and PNG.
    let black = vec![0u8; 320 * 240 * 3];
    let r = post(
        &agent,
        &server.url("/ssd?width=320&height=240"),
        "image/x-raw",
        &black,
        &[("x-ms-client-request-id", "blank-1")],
    );
    assert_eq!((r.status, r.body.len()), (204, 0));
    assert_eq!(r.header("x-ms-client-request-id"), Some("blank-1"));
    let r = post(&agent, &server.url("/ssd"), "image/png", &black_png(), &[]);
    assert_eq!((r.status, r.body.len()), (204, 0));

    // One log line per request, with status, model, latency and the request id.
    let log = server.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("id=req-image/jpeg"))
        .unwrap_or_else(|| panic!("no log line for the JPEG request: {log}"));
    assert!(line.contains(" 200 POST /ssd model=ssd "), "{line}");
    assert!(line.contains(" ms="), "{line}");
}

#[test]
fn bad_requests_get_the_right_status_and_a_reason() {
    let photo_jpeg = std::fs::read(asset("media/person.jpg")).expect("jpeg");
    let png = std::fs::read(asset("media/astronaut.png")).expect("png");
    let server = Server::start(json!({
        "max-body-bytes": 500_000,
        "models": {"ssd": ssd(1, 2)}
    }));
    let agent = agent(None);
    let ssd_url = server.url("/ssd");

    // Each signature followed by garbage: the decoders refuse it.
    let garbage = |signature: &[u8]| {
        let mut b = signature.to_vec();
        b.extend(std::iter::repeat_n(0x42u8, 5000));
        b
    };
    // A BMP header for 16x16 pixels, then garbage.
    let mut bmp_header = b"BM".to_vec();
    for field in [5000u32, 0, 54, 40, 16, 16] {
        bmp_header.extend(field.to_le_bytes());
    }
    let broken_bmp = garbage(&bmp_header);
    // A PNG whose header claims 100000x100000 pixels.
    let mut bomb = black_png();
    bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    // (what, path, content type, body, status, part of the reason)
    type Case<'a> = (&'a str, &'a str, &'a str, Vec<u8>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "text as JPEG",
            "/ssd",
            "image/jpeg",
            b"this is not an image".to_vec(),
            400,
            "not image/jpeg data",
        ),
        ("empty body", "/ssd", "image/jpeg", Vec::new(), 400, "empty"),
        (
            "broken JPEG",
            "/ssd",
            "image/jpeg",
            garbage(&photo_jpeg[..3]),
            400,
            "cannot be decoded",
        ),
        (
            "broken PNG",
            "/ssd",
            "image/png",
            garbage(b"\x89PNG\r\n\x1a\n"),
            400,
            "cannot be decoded",
        ),
        (
            "broken BMP",
            "/ssd",
            "image/bmp",
            broken_bmp,
            400,
            "cannot be decoded",
        ),
        (
            "10 gigapixel PNG",
            "/ssd",
            "image/png",
            bomb,
            400,
            "over the limit of 50000000 pixels",
        ),
        (
            "PNG as JPEG",
            "/ssd",
            "image/jpeg",
            black_png(),
            400,
            "send it with Content-Type: image/png",
        ),
        (
            "raw without size",
            "/ssd",
            "image/x-raw",
            vec![0; 300],
            400,
            "?width=W&height=H",
        ),
        (
            "raw of the wrong size",
            "/ssd?width=10&height=10",
            "image/x-raw",
            vec![0; 299],
            400,
            "needs 300 bytes",
        ),
        (
            "threshold out of range",
            "/ssd?threshold=2",
            "image/jpeg",
            photo_jpeg.clone(),
            400,
            "threshold=2",
        ),
        (
            "text/plain",
            "/ssd",
            "text/plain",
            photo_jpeg.clone(),
            415,
            "image/jpeg, image/png",
        ),
        (
            "unknown model",
            "/cars",
            "image/jpeg",
            photo_jpeg.clone(),
            404,
            "/ssd",
        ),
        (
            "790 KB PNG over 500 KB",
            "/ssd",
            "image/png",
            png,
            413,
            "over the limit",
        ),
    ];
    for (what, path, content_type, body, status, reason) in &cases {
        let r = post(&agent, &server.url(path), content_type, body, &[]);
        assert_eq!(
            r.status,
            *status,
            "{what}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert!(r.error().contains(reason), "{what}: {}", r.error());
    }
    let r = get(&agent, &ssd_url, &[]);
    assert_eq!((r.status, r.header("allow")), (405, Some("POST")));

    // After all that, the model still answers.
    let r = post(&agent, &ssd_url, "image/jpeg", &photo_jpeg, &[]);
    assert_eq!(r.status, 200);
    let models = get(&agent, &server.url("/models"), &[]).json();
    let stats = &models["models"][0]["stats"];
    assert_eq!(stats["found"], 1, "{models}");
    // Every case but the unknown model is counted against "ssd", then the good request.
    assert_eq!(stats["bad-request"], 12, "{models}");
    assert_eq!(stats["requests"], 13, "{models}");
    assert_eq!(stats["failed"], 0, "{models}");
    assert!(
        !server.log_text().contains(" 500 "),
        "{}",
        server.log_text()
    );
}

#[test]
fn models_are_listed_with_labels_and_category() {
    let server = Server::start(json!({"models": {
        "ssd": ssd(1, 1),
        "faces": {"model": common::blazeface_model(), "decoder": "blazeface", "workers": 1}
    }}));
    let agent = agent(None);
    for path in ["/", "/models"] {
        let r = get(&agent, &server.url(path), &[]);
        assert_eq!(r.status, 200);
        let list = r.json();
        let models = list["models"].as_array().expect("models");
        assert_eq!(models.len(), 2, "{list}");
        let ssd = models.iter().find(|m| m["name"] == "ssd").expect("ssd");
        assert_eq!(ssd["category"], "detection");
        assert_eq!(ssd["description"], "SSD MobileNet v2 COCO");
        // coco labels: 80 names with the model's ids from 1 to 90.
        assert_eq!(ssd["labels"].as_array().expect("labels").len(), 80, "{ssd}");
        assert_eq!(ssd["labels"][0], json!({"id": 1, "name": "person"}));
        assert_eq!(ssd["labels"][79], json!({"id": 90, "name": "toothbrush"}));
        assert_eq!(ssd["threshold"], 0.5);
        let faces = models.iter().find(|m| m["name"] == "faces").expect("faces");
        assert_eq!(faces["category"], "detection");
    }
    assert_eq!(get(&agent, &server.url("/healthz"), &[]).status, 200);
}

#[test]
fn overload_gets_503_with_retry_after_and_the_server_recovers() {
    let jpeg = std::fs::read(asset("media/person.jpg")).expect("jpeg");
    let server = Server::start(json!({"models": {"ssd": ssd(1, 1)}}));
    let url = server.url("/ssd");
    let statuses = Arc::new(Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..12)
        .map(|_| {
            let (url, jpeg, statuses) = (url.clone(), jpeg.clone(), statuses.clone());
            std::thread::spawn(move || {
                let agent = agent(None);
                for _ in 0..4 {
                    let r = post(&agent, &url, "image/jpeg", &jpeg, &[]);
                    let retry = r.header("retry-after").map(str::to_string);
                    statuses.lock().unwrap().push((r.status, retry));
                }
            })
        })
        .collect();
    for c in clients {
        c.join().expect("client");
    }
    let statuses = statuses.lock().unwrap();
    let ok = statuses.iter().filter(|(s, _)| *s == 200).count();
    let busy: Vec<_> = statuses.iter().filter(|(s, _)| *s == 503).collect();
    assert_eq!(
        ok + busy.len(),
        48,
        "only 200 and 503 expected: {statuses:?}"
    );
    assert!(
        !busy.is_empty(),
        "12 clients on 1 worker + 1 queue place: {statuses:?}"
    );
    assert!(ok >= 2, "{statuses:?}");
    assert!(
        busy.iter().all(|(_, r)| r.as_deref() == Some("1")),
        "{busy:?}"
    );
    // Healthy afterwards: nothing in flight, and the next request is served.
    let agent = agent(None);
    let models = get(&agent, &server.url("/models"), &[]).json();
    assert_eq!(models["models"][0]["in-flight"], 0);
    assert_eq!(models["models"][0]["stats"]["busy"], busy.len() as u64);
    assert_eq!(post(&agent, &url, "image/jpeg", &jpeg, &[]).status, 200);
}

#[test]
fn auth_refuses_requests_without_the_right_credentials() {
    let jpeg = std::fs::read(asset("media/person.jpg")).expect("jpeg");
    let server = Server::start(json!({
        "auth": {"basic": [{"user": "lva", "password": "pa55"}], "bearer": ["t0ken"]},
        "models": {"ssd": ssd(1, 1)}
    }));
    let agent = agent(None);
    let url = server.url("/ssd");
    let r = post(&agent, &url, "image/jpeg", &jpeg, &[]);
    assert_eq!(r.status, 401);
    assert!(
        r.header("www-authenticate")
            .unwrap_or("")
            .contains("Basic realm"),
        "{r:?}"
    );
    let wrong = format!("Basic {}", gst::glib::base64_encode(b"lva:nope"));
    assert_eq!(
        post(
            &agent,
            &url,
            "image/jpeg",
            &jpeg,
            &[("authorization", &wrong)]
        )
        .status,
        401
    );
    assert_eq!(get(&agent, &server.url("/models"), &[]).status, 401);
    // No model names leak without credentials.
    let r = post(&agent, &server.url("/secret"), "image/jpeg", &jpeg, &[]);
    assert_eq!(r.status, 401);

    let basic = format!("Basic {}", gst::glib::base64_encode(b"lva:pa55"));
    assert_eq!(
        post(
            &agent,
            &url,
            "image/jpeg",
            &jpeg,
            &[("authorization", &basic)]
        )
        .status,
        200
    );
    let bearer = [("authorization", "Bearer t0ken")];
    assert_eq!(post(&agent, &url, "image/jpeg", &jpeg, &bearer).status, 200);
    assert_eq!(get(&agent, &server.url("/models"), &bearer).status, 200);
    assert_eq!(get(&agent, &server.url("/healthz"), &[]).status, 200);
}

/// Sends raw bytes and reads until the server closes or `until` appears.
fn exchange(stream: &mut TcpStream, until: &str) -> String {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains(until) {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn http_details_expect_continue_chunked_keep_alive_and_shutdown() {
    let jpeg = std::fs::read(asset("media/person.jpg")).expect("jpeg");
    let mut server = Server::start(json!({"models": {"ssd": ssd(1, 2)}}));

    // Expect: 100-continue, then the body, then a second request on the same connection.
    let mut s = TcpStream::connect(&server.addr).expect("connect");
    let head = format!(
        "POST /ssd HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\
         Expect: 100-continue\r\n\r\n",
        jpeg.len()
    );
    s.write_all(head.as_bytes()).expect("head");
    assert!(exchange(&mut s, "\r\n\r\n").starts_with("HTTP/1.1 100 Continue"));
    s.write_all(&jpeg).expect("body");
    let answer = exchange(&mut s, "}]}");
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(answer.contains("\"person\""), "{answer}");
    // Chunked, on the kept-alive connection.
    let mut chunked = b"POST /ssd HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for part in jpeg.chunks(40_000) {
        chunked.extend(format!("{:x}\r\n", part.len()).as_bytes());
        chunked.extend(part);
        chunked.extend(b"\r\n");
    }
    chunked.extend(b"0\r\n\r\n");
    s.write_all(&chunked).expect("chunked");
    let answer = exchange(&mut s, "}]}");
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    // Not HTTP at all: 400 and closed.
    let mut junk = TcpStream::connect(&server.addr).expect("connect");
    junk.write_all(b"\x16\x03\x01\x02\x00 hello\r\n\r\n")
        .expect("junk");
    let answer = exchange(&mut junk, "\u{0}never");
    assert!(answer.starts_with("HTTP/1.1 400 Bad Request"), "{answer}");

    // Graceful shutdown: a request whose body is half sent when SIGTERM arrives is still answered.
    let mut slow = TcpStream::connect(&server.addr).expect("connect");
    let head = format!(
        "POST /ssd HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
        jpeg.len()
    );
    slow.write_all(head.as_bytes()).expect("head");
    slow.write_all(&jpeg[..jpeg.len() / 2]).expect("half");
    std::thread::sleep(Duration::from_millis(300));
    let pid = server.started.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    std::thread::sleep(Duration::from_millis(500));
    slow.write_all(&jpeg[jpeg.len() / 2..]).expect("rest");
    let answer = exchange(&mut slow, "}]}");
    assert!(
        answer.starts_with("HTTP/1.1 200 OK"),
        "{answer}\n{}",
        server.log_text()
    );
    assert!(answer.contains("Connection: close"), "{answer}");
    let status = server.terminate(Duration::from_secs(30));
    assert!(status.success(), "{status:?}: {}", server.log_text());
    assert!(server.log_text().contains("lva-server: stopped"));
    assert!(
        TcpStream::connect(&server.addr).is_err(),
        "still accepting after shutdown"
    );
}

#[test]
fn tls_serves_https_with_the_configured_certificate() {
    let dir = temp_dir();
    common::self_signed_cert(&dir);
    let jpeg = std::fs::read(asset("media/person.jpg")).expect("jpeg");
    let server = Server::start(json!({
        "tls": {"cert": dir.join("cert.pem"), "key": dir.join("key.pem")},
        "models": {"ssd": ssd(1, 1)}
    }));
    assert_eq!(server.scheme, "https");
    let pem = std::fs::read(dir.join("cert.pem")).expect("cert");
    let certs: Vec<_> = ureq::tls::parse_pem(&pem)
        .filter_map(|i| match i {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
        .build();
    let agent = agent(Some(tls));
    let r = post(&agent, &server.url("/ssd"), "image/jpeg", &jpeg, &[]);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["inferences"][0]["entity"]["tag"]["value"],
        "person"
    );
    // Plain HTTP to the TLS port is dropped, not answered and not hung.
    let plain = agent.get(&format!("http://{}/healthz", server.addr)).call();
    assert!(plain.is_err(), "{plain:?}");
    assert_eq!(get(&agent, &server.url("/healthz"), &[]).status, 200);
}

#[test]
fn a_bad_configuration_stops_the_server_at_start_with_the_reason() {
    let dir = temp_dir();
    let cases = [
        (
            json!({"models": {"ssd": {"model": "/nonexistent/ssd.xml"}}}),
            "/nonexistent/ssd.xml does not exist",
        ),
        (
            json!({"models": {"ssd": {"model": ssd_model(), "thresold": 0.5}}}),
            "ovinfer has no property 'thresold'",
        ),
        (
            json!({"models": {"ssd": {"model": ssd_model(), "decoder": "retina"}}}),
            "'retina' is not a valid value for ovinfer's decoder",
        ),
        (
            json!({"models": {"ssd": {"model": ssd_model(), "threshold": 1.5}}}),
            "'1.5' is not a valid value",
        ),
        (
            json!({"models": {"ssd": {"model": ssd_model()}}, "listen": "127.0.0.1:99999"}),
            "cannot listen on 127.0.0.1:99999",
        ),
        (json!({"models": {}}), "at least one model"),
    ];
    for (n, (config, reason)) in cases.iter().enumerate() {
        let path = dir.join(format!("bad-{n}.json"));
        std::fs::write(&path, config.to_string()).expect("config");
        let out = Command::new(env!("CARGO_BIN_EXE_lva-server"))
            .arg("--config")
            .arg(&path)
            .output()
            .expect("lva-server runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{config}: {stderr}");
        assert!(
            stderr.contains(reason),
            "{config}: expected '{reason}' in {stderr}"
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_lva-server"))
        .arg("--bogus")
        .output()
        .expect("lva-server runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage: lva-server"));
}
