//! lva-server's web console (docs/console.md) in a real browser: Debian's Chromium, headless,
//! driven through chromedriver by WebDriver (fantoccini), against the real binary with the real
//! SSD model and media. What a user would check: the models listed, a stream created from the
//! form running, its documents arriving, an image's boxes drawn where the server (and the
//! independent Python reference) put them, a stream deleted from the page stopped, and signing
//! in when the server asks for credentials. Screenshots go to target/console-screenshots/.

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::reference::{self, Detection, Tolerance};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tokio::sync::Mutex;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// One browser and server at a time: the machine has 2 cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

fn screenshots() -> PathBuf {
    let dir = common::root().join("target/console-screenshots");
    std::fs::create_dir_all(&dir).expect("target/console-screenshots");
    dir
}

/// The real server on a configuration written into `dir`; killed when dropped.
struct Server {
    started: common::server::Started,
}

impl Server {
    fn start(dir: &Path, config: &Value) -> Server {
        let path = dir.join("lva-server.json");
        std::fs::write(&path, config.to_string()).expect("config written");
        Server {
            started: common::server::start(&path, &[]),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.started.url)
    }

    fn log_tail(&self) -> String {
        let log = self.started.log.lock().unwrap_or_else(|e| e.into_inner());
        log[log.len().saturating_sub(20)..].join("\n")
    }
}

/// What the server answered the test itself.
struct Reply {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {} {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build(),
    )
}

fn get(url: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = agent().get(url);
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    reply(req.call().unwrap_or_else(|e| panic!("GET {url}: {e}")))
}

fn post(url: &str, content_type: &str, body: &[u8]) -> Reply {
    let req = agent().post(url).header("content-type", content_type);
    reply(req.send(body).unwrap_or_else(|e| panic!("POST {url}: {e}")))
}

fn reply(mut resp: ureq::http::Response<ureq::Body>) -> Reply {
    Reply {
        status: resp.status().as_u16(),
        content_type: resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string(),
        body: resp.body_mut().read_to_vec().expect("a body"),
    }
}

/// chromedriver on a free port, in a process group of its own so that it and the browsers it
/// started are all killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start(dir: &Path) -> Driver {
        for tool in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(tool).exists(),
                "{tool} is missing: run scripts/setup.sh (it installs Debian's chromium and \
                 chromium-driver for this test)"
            );
        }
        let port = common::free_port();
        let log = dir.join("chromedriver.log");
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("{CHROMEDRIVER} does not start ({e}): run scripts/setup.sh")
            });
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let t0 = Instant::now();
        loop {
            let ready = ureq::get(&format!("{}/status", driver.url))
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_to_vec().ok())
                .and_then(|body| serde_json::from_slice::<Value>(&body).ok())
                .is_some_and(|s| s["value"]["ready"] == true);
            if ready {
                return driver;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "chromedriver did not get ready on port {port}: see {}",
                log.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A headless Chromium session with a fresh profile in `dir`.
    async fn browser(&self, dir: &Path) -> Page {
        let profile = dir.join("chromium-profile");
        std::fs::create_dir_all(&profile).expect("profile folder");
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1280,1800",
                    "--autoplay-policy=no-user-gesture-required",
                    format!("--user-data-dir={}", profile.display()),
                ],
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("no Chromium session through chromedriver: {e}"));
        Page { client }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// The console in the browser.
struct Page {
    client: Client,
}

impl Page {
    async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("the page loads");
    }

    /// Runs `script` (a function body) in the page and returns what it returns.
    async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Polls `script` until it returns something other than null or false; panics after
    /// `timeout` with what the page says.
    async fn until(&self, what: &str, timeout: Duration, script: &str) -> Value {
        let t0 = Instant::now();
        loop {
            let value = self.js(script).await;
            if !value.is_null() && value != false {
                return value;
            }
            if t0.elapsed() > timeout {
                let said = self
                    .js(
                        "return ['server-status', 'signin-message', 'stream-message', \
                         'stream-reasons', 'live-message', 'documents-count', 'image-message']\
                         .map((id) => id + ': ' + document.getElementById(id).textContent);",
                    )
                    .await;
                self.shot("failed").await;
                panic!("{what}: not within {timeout:?}; the page says {said:#}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Records what the page's Content-Security-Policy blocks from now on.
    async fn watch_policy(&self) {
        self.js("window.blocked = [];
                 document.addEventListener('securitypolicyviolation',
                   (e) => window.blocked.push(e.violatedDirective + ' ' + e.blockedURI));")
            .await;
    }

    async fn no_policy_violations(&self) {
        let blocked = self.js("return window.blocked;").await;
        assert_eq!(
            blocked,
            json!([]),
            "the page's policy blocked what it needs"
        );
    }

    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
    }

    async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.expect("cleared");
        field.send_keys(text).await.expect("typed");
    }

    async fn click(&self, css: &str) {
        self.find(css).await.click().await.expect("clicked");
    }

    async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.expect("text")
    }

    /// The whole page as PNG in target/console-screenshots/NAME.png.
    async fn shot(&self, name: &str) {
        if let Ok(png) = self.client.screenshot().await {
            let _ = std::fs::write(screenshots().join(format!("{name}.png")), png);
        }
    }

    async fn close(self) {
        let _ = self.client.close().await;
    }
}

fn ssd() -> Value {
    json!({"model": common::ssd_model(), "labels": common::ssd_labels(), "decoder": "ssd",
           "threshold": 0.5, "workers": 1, "description": "SSD MobileNet v2 COCO"})
}

fn tiny() -> Value {
    json!({"model": common::tiny("tiny_ssd.onnx"), "threshold": 0.0, "workers": 1})
}

/// An LVA document's entities as (label, confidence, [l, t, w, h]).
fn entities(document: &Value) -> Vec<(String, f64, [f64; 4])> {
    let n = |v: &Value| v.as_f64().expect("a number");
    document["inferences"]
        .as_array()
        .expect("inferences")
        .iter()
        .map(|i| {
            let (tag, b) = (&i["entity"]["tag"], &i["entity"]["box"]);
            (
                tag["value"].as_str().expect("a tag").to_string(),
                n(&tag["confidence"]),
                [n(&b["l"]), n(&b["t"]), n(&b["w"]), n(&b["h"])],
            )
        })
        .collect()
}

fn black_png(path: &Path) {
    let file = std::fs::File::create(path).expect("png file");
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), 320, 240);
    encoder.set_color(png::ColorType::Rgb);
    let mut writer = encoder.write_header().expect("png header");
    writer
        .write_image_data(&[0u8; 320 * 240 * 3])
        .expect("png data");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_models_runs_streams_and_draws_an_images_boxes() {
    let _one = ONE_AT_A_TIME.lock().await;
    let t0 = Instant::now();
    let dir = reference::scratch("console");
    let server = Server::start(
        &dir,
        &json!({"models": {"ssd": ssd(), "tiny": tiny()}, "streams": {"state-dir": "state"}}),
    );

    // `/` is the models for API clients and the console for browsers; the files are typed.
    let api = get(&server.url("/"), &[]);
    assert_eq!(
        (api.status, api.content_type.as_str()),
        (200, "application/json")
    );
    assert_eq!(api.json()["models"][0]["name"], "ssd");
    let html = get(&server.url("/"), &[("accept", "text/html")]);
    assert_eq!(html.status, 200);
    assert_eq!(html.content_type, "text/html; charset=utf-8");
    assert!(String::from_utf8_lossy(&html.body).contains("<title>lva-server console</title>"));
    for (file, content_type) in [
        ("console.js", "text/javascript; charset=utf-8"),
        ("console.css", "text/css; charset=utf-8"),
        ("hls.min.js", "text/javascript; charset=utf-8"),
    ] {
        let r = get(&server.url(&format!("/console/{file}")), &[]);
        assert_eq!(
            (r.status, r.content_type.as_str()),
            (200, content_type),
            "{file}"
        );
    }

    let driver = Driver::start(&dir);
    let page = driver.browser(&dir).await;
    page.goto(&server.url("/")).await;
    page.watch_policy().await;

    // The models, as configured, with their labels counted.
    let models = page
        .until(
            "the models listed",
            Duration::from_secs(20),
            "const rows = [...document.querySelectorAll('#models tbody tr')];
             return rows.length ? rows.map((r) => [...r.cells].map((c) => c.textContent)) : null;",
        )
        .await;
    let labels = std::fs::read_to_string(common::ssd_labels()).expect("labels");
    let label_count = labels.lines().filter(|l| !l.trim().is_empty()).count();
    assert_eq!(models[0][0], "ssd", "{models:#}");
    assert_eq!(models[0][1], "SSD MobileNet v2 COCO");
    assert_eq!(models[0][2], "detection");
    assert_eq!(models[0][3], label_count.to_string());
    assert_eq!(models[1][0], "tiny");
    assert_eq!(models.as_array().map(Vec::len), Some(2));
    page.shot("1-models").await;

    // A stream from the form: bikes.mp4 looping at its own pace through the SSD.
    let bikes = format!("file://{}", common::asset("media/bikes.mp4"));
    page.fill("#stream-id", "bikes").await;
    page.fill("#stream-uri", &bikes).await;
    page.find("#stream-model")
        .await
        .select_by_value("ssd")
        .await
        .expect("model chosen");
    page.fill("#stream-threshold", "0.6").await;
    page.click("#stream-loop").await;
    page.click("#stream-realtime").await;
    page.click("#stream-hls").await; // off: this stream is for its documents
    page.click("#stream-create").await;
    let state = page
        .until(
            "the stream listed as running",
            Duration::from_secs(30),
            "const r = document.querySelector('#streams tr[data-stream=\"bikes\"]');
             return r && ['running', 'finished'].includes(r.dataset.state) ? r.dataset.state : null;",
        )
        .await;
    assert_eq!(state, "running", "a looping stream");
    // What the form sent (the server may show the empty `outputs` it has by default).
    let mut spec = get(&server.url("/streams/bikes"), &[]).json()["spec"].take();
    if spec["outputs"] == json!({}) {
        spec.as_object_mut().map(|s| s.remove("outputs"));
    }
    assert_eq!(
        spec,
        json!({"source": {"uri": bikes, "loop": true, "realtime": true}, "model": "ssd",
               "ovinfer": {"threshold": 0.6}}),
    );
    // Created, it is in the live view: its documents arrive beside the (absent) video.
    let documents = page
        .until(
            "documents in the live view",
            Duration::from_secs(30),
            "const d = [...document.querySelectorAll('#documents li[data-doc]')];
             return d.length >= 3 ? d.map((li) => li.dataset.doc) : null;",
        )
        .await;
    for doc in documents.as_array().expect("documents") {
        let doc: Value = serde_json::from_str(doc.as_str().expect("text")).expect("JSON");
        common::check_lva_schema(&doc).unwrap_or_else(|e| panic!("{e}: {doc}"));
        for (label, confidence, _) in entities(&doc) {
            assert!(
                confidence >= 0.6 - 1e-6,
                "{label} {confidence} under the threshold"
            );
        }
    }
    let row = page.text("#streams tr[data-stream=\"bikes\"]").await;
    assert!(row.contains("ssd") && row.contains("running"), "{row}");
    page.shot("2-stream").await;

    // An image: the boxes drawn are the server's answer, which is the reference's.
    let person = common::asset("media/person.jpg");
    page.find("#image-file")
        .await
        .send_keys(&person)
        .await
        .expect("file chosen");
    page.find("#image-model")
        .await
        .select_by_value("ssd")
        .await
        .expect("model chosen");
    page.click("#image-submit").await;
    page.until(
        "the image's detections",
        Duration::from_secs(30),
        "return /^ssd: \\d+ found$/.test(document.getElementById('image-message').textContent);",
    )
    .await;
    // Each listed detection, and the canvas pixels in the middle of its box's left, right and
    // bottom edges (the label sits on the top one).
    let drawn = page
        .js("const c = document.getElementById('image-canvas');
             const ctx = c.getContext('2d');
             const px = (x, y) => {
               const d = ctx.getImageData(Math.round(x), Math.round(y), 1, 1).data;
               return '#' + [d[0], d[1], d[2]].map((v) => v.toString(16).padStart(2, '0')).join('');
             };
             return {width: c.width, height: c.height, items: [...document.querySelectorAll('#image-results li')].map((li) => {
               const [l, t, w, h] = li.dataset.box.split(',').map(Number);
               const [x, y, bw, bh] = [Math.round(l * c.width), Math.round(t * c.height),
                                       Math.round(w * c.width), Math.round(h * c.height)];
               return {label: li.dataset.label, confidence: Number(li.dataset.confidence),
                       box: [l, t, w, h], color: li.dataset.color,
                       edges: [px(x + 1, y + bh / 2), px(x + bw - 2, y + bh / 2), px(x + bw / 2, y + bh - 2)]};
             })};")
        .await;
    page.shot("3-image").await;
    let (width, height) = (
        drawn["width"].as_f64().expect("width"),
        drawn["height"].as_f64().expect("height"),
    );
    let items = drawn["items"].as_array().expect("items");
    for item in items {
        let color = &item["color"];
        assert!(
            item["edges"]
                .as_array()
                .expect("edges")
                .iter()
                .all(|e| e == color),
            "the box of {item} is not drawn in its colour"
        );
    }
    // The same bytes POSTed by the test: the same detections.
    let jpeg = std::fs::read(&person).expect("person.jpg");
    let answer = post(&server.url("/ssd"), "image/jpeg", &jpeg);
    assert_eq!(answer.status, 200);
    let ours = entities(&answer.json());
    assert_eq!(items.len(), ours.len(), "{items:?} vs {ours:?}");
    for (item, (label, confidence, b)) in items.iter().zip(&ours) {
        assert_eq!(item["label"], label.as_str());
        assert!((item["confidence"].as_f64().expect("confidence") - confidence).abs() < 1e-6);
        let shown: Vec<f64> = item["box"]
            .as_array()
            .expect("box")
            .iter()
            .filter_map(Value::as_f64)
            .collect();
        for (s, o) in shown.iter().zip(b) {
            assert!((s - o).abs() < 1e-6, "{item} vs {b:?}");
        }
    }
    // And the independent reference (OpenVINO's Python API on OpenCV's pixels): a person and
    // a horse, the boxes shown within the JPEG tolerance of tests/lva_server.rs.
    let reference = reference::photo("ssd", &common::ssd_model(), &person, 0.5);
    let shown: Vec<Detection> = items
        .iter()
        .map(|i| {
            let b: Vec<f64> = i["box"]
                .as_array()
                .expect("box")
                .iter()
                .filter_map(Value::as_f64)
                .collect();
            Detection {
                label_id: common::ssd_label_id(i["label"].as_str().expect("label")),
                confidence: i["confidence"].as_f64().expect("confidence"),
                x: b[0] * width,
                y: b[1] * height,
                w: b[2] * width,
                h: b[3] * height,
            }
        })
        .collect();
    let tolerance = Tolerance {
        edge_px: 6.0,
        confidence: 4.0 / 256.0,
        above: 0.51,
    };
    reference::compare(&shown, &reference, tolerance).unwrap_or_else(|e| panic!("{e}"));
    let labels: Vec<&str> = items.iter().filter_map(|i| i["label"].as_str()).collect();
    assert_eq!(labels, ["person", "horse"]);

    // Nothing to find: said so.
    let black = dir.join("black.png");
    black_png(&black);
    page.find("#image-file")
        .await
        .send_keys(&black.display().to_string())
        .await
        .expect("file chosen");
    page.click("#image-submit").await;
    page.until(
        "nothing found",
        Duration::from_secs(30),
        "return document.getElementById('image-message').textContent === 'ssd: nothing found';",
    )
    .await;

    // Deleted from the page: stopped, and gone from the list.
    page.click("#streams tr[data-stream=\"bikes\"] button.delete")
        .await;
    page.until(
        "the stream gone from the list",
        Duration::from_secs(30),
        "return !document.querySelector('#streams tr[data-stream=\"bikes\"]');",
    )
    .await;
    let after = get(&server.url("/streams/bikes"), &[]);
    assert!(
        after.status == 404
            || (after.status == 200 && after.json()["status"]["state"] == "stopped"),
        "{} {}",
        after.status,
        String::from_utf8_lossy(&after.body)
    );
    assert_eq!(
        get(&server.url("/streams"), &[]).json(),
        json!({"streams": []})
    );
    assert!(page.text("#stream-message").await.contains("bikes deleted"));
    page.shot("4-deleted").await;
    page.no_policy_violations().await;
    page.close().await;
    eprintln!(
        "console test: {:.1} s; server log tail:\n{}",
        t0.elapsed().as_secs_f64(),
        server.log_tail()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_auth_the_console_asks_to_sign_in_and_then_works() {
    let _one = ONE_AT_A_TIME.lock().await;
    let dir = reference::scratch("console-auth");
    let server = Server::start(
        &dir,
        &json!({"models": {"tiny": tiny()},
                "auth": {"basic": [{"user": "lva", "password": "pa55"}], "bearer": ["t0ken"]}}),
    );

    // The console's files need no credentials; the data does.
    let html = get(&server.url("/"), &[("accept", "text/html")]);
    assert_eq!(
        (html.status, html.content_type.as_str()),
        (200, "text/html; charset=utf-8")
    );
    for path in ["/console", "/console/console.js", "/console/hls.min.js"] {
        assert_eq!(get(&server.url(path), &[]).status, 200, "{path}");
    }
    // Not even a deeper path under /console, whose 404 would name the models.
    for path in ["/", "/models", "/streams", "/console/a/b"] {
        assert_eq!(get(&server.url(path), &[]).status, 401, "{path}");
    }

    let driver = Driver::start(&dir);
    let page = driver.browser(&dir).await;
    page.goto(&server.url("/")).await;
    let signin_shown = "return !document.getElementById('signin').hidden
                               && document.getElementById('main').hidden
                               ? document.getElementById('signin-message').textContent : null;";
    let said = page
        .until("the sign-in form", Duration::from_secs(20), signin_shown)
        .await;
    assert_eq!(said, "This server needs credentials.");
    page.shot("5-sign-in").await;

    // A wrong password: asked again.
    page.fill("#signin-user", "lva").await;
    page.fill("#signin-password", "wrong").await;
    page.click("#signin-submit").await;
    let said = page
        .until(
            "the sign-in form again",
            Duration::from_secs(20),
            "return document.getElementById('signin-message').textContent
                    === 'Those credentials were refused.' && !document.getElementById('signin').hidden;",
        )
        .await;
    assert_eq!(said, true);

    let models_shown = "const rows = [...document.querySelectorAll('#models tbody tr')];
                        return document.getElementById('signin').hidden && rows.length
                               ? rows.map((r) => r.dataset.model) : null;";
    page.fill("#signin-user", "lva").await;
    page.fill("#signin-password", "pa55").await;
    page.click("#signin-submit").await;
    let models = page
        .until(
            "the models after signing in",
            Duration::from_secs(20),
            models_shown,
        )
        .await;
    assert_eq!(models, json!(["tiny"]));
    page.until(
        "the streams after signing in",
        Duration::from_secs(10),
        "return !document.getElementById('streams-empty').hidden;",
    )
    .await;
    page.shot("6-signed-in").await;

    // The header is kept for the session: a reload stays signed in.
    page.client.refresh().await.expect("reloaded");
    let models = page
        .until(
            "the models after a reload",
            Duration::from_secs(20),
            models_shown,
        )
        .await;
    assert_eq!(models, json!(["tiny"]));

    // Signed out, then in with the token.
    page.click("#sign-out").await;
    page.until(
        "the sign-in form after signing out",
        Duration::from_secs(20),
        signin_shown,
    )
    .await;
    page.fill("#signin-token", "t0ken").await;
    page.click("#signin-submit").await;
    let models = page
        .until(
            "the models with the token",
            Duration::from_secs(20),
            models_shown,
        )
        .await;
    assert_eq!(models, json!(["tiny"]));
    page.close().await;
}

/// `rgb` within `tolerance` of `want` on every channel.
fn near(rgb: [u8; 3], want: [u8; 3], tolerance: u8) -> bool {
    rgb.iter()
        .zip(want)
        .all(|(a, b)| a.abs_diff(b) <= tolerance)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_view_plays_the_hls_video_with_the_boxes_of_its_documents() {
    let _one = ONE_AT_A_TIME.lock().await;
    let dir = reference::scratch("console-live");
    // person.jpg held for 4 s: every frame has the same person and horse, so the boxes of any
    // document are where the video shows them, whatever the HLS delay.
    let person = common::asset("media/person.jpg");
    let still = dir.join("still.mp4");
    common::run_to_eos(&format!(
        "filesrc location={person} ! jpegdec ! videoconvert ! imagefreeze num-buffers=100 \
         ! video/x-raw,format=I420,framerate=25/1 ! x264enc ! mp4mux ! filesink location={}",
        still.display()
    ));
    let server = Server::start(&dir, &json!({"models": {"ssd": ssd()}}));
    let driver = Driver::start(&dir);
    let page = driver.browser(&dir).await;
    page.goto(&server.url("/")).await;
    page.watch_policy().await;
    page.until(
        "the models listed",
        Duration::from_secs(20),
        "return document.querySelectorAll('#models tbody tr').length > 0;",
    )
    .await;

    // From the form, HLS and boxes ticked as they are by default; looping at its own pace.
    page.fill("#stream-id", "still").await;
    page.fill("#stream-uri", &format!("file://{}", still.display()))
        .await;
    page.click("#stream-loop").await;
    page.click("#stream-realtime").await;
    page.click("#stream-create").await;
    let spec = page
        .until(
            "the stream created",
            Duration::from_secs(30),
            "const r = document.querySelector('#streams tr[data-stream=\"still\"]');
             return r && r.dataset.state === 'running';",
        )
        .await;
    assert_eq!(spec, true);
    let info = get(&server.url("/streams/still"), &[]).json();
    assert_eq!(
        info["spec"]["outputs"],
        json!({"video": {"overlay": true, "hls": {}}})
    );

    // It plays: ready to play on, and 3 s of video later still playing.
    let playing = "const v = document.getElementById('live-video');
                   v.scrollIntoView();
                   return v.readyState === 4 && !v.paused && v.currentTime > 0 ? v.currentTime : null;";
    let start = page
        .until("the video playing", Duration::from_secs(40), playing)
        .await
        .as_f64()
        .expect("a time");
    let later = format!(
        "const v = document.getElementById('live-video');
         return v.readyState === 4 && v.currentTime >= {} ? v.currentTime : null;",
        start + 3.0
    );
    page.until("3 s more of video", Duration::from_secs(30), &later)
        .await;
    assert_eq!(page.text("#live-message").await, "Playing.");

    // The documents fill their panel.
    let docs = page
        .until(
            "documents beside the video",
            Duration::from_secs(20),
            "const d = [...document.querySelectorAll('#documents li[data-doc]')];
             return d.length >= 3 ? d.map((li) => li.dataset.doc) : null;",
        )
        .await;
    let latest: Value = serde_json::from_str(docs[0].as_str().expect("a document")).expect("JSON");
    common::check_lva_schema(&latest).unwrap_or_else(|e| panic!("{e}: {latest}"));
    let objects: Vec<_> = entities(&latest)
        .into_iter()
        .filter(|(_, confidence, _)| *confidence > 0.6)
        .collect();
    let labels: Vec<&str> = objects.iter().map(|(l, _, _)| l.as_str()).collect();
    assert_eq!(labels, ["person", "horse"], "{latest}");

    // A screenshot of the video element has each object's box colour (ovoverlay's, through
    // H.264) on its left and right edges, at mid-height, where the documents put them.
    let size = page
        .js("const v = document.getElementById('live-video');
             return [v.videoWidth, v.videoHeight];")
        .await;
    let (vw, vh) = (
        size[0].as_f64().expect("width"),
        size[1].as_f64().expect("height"),
    );
    let shot = page
        .find("#live-video")
        .await
        .screenshot()
        .await
        .expect("a screenshot of the video");
    std::fs::write(screenshots().join("7-live-video.png"), &shot).expect("saved");
    page.shot("7-live").await;
    let decoder = png::Decoder::new(std::io::Cursor::new(shot));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size().expect("a size")];
    let frame = reader.next_frame(&mut pixels).expect("pixels");
    let channels = frame.color_type.samples();
    let (ew, eh) = (f64::from(frame.width), f64::from(frame.height));
    let at = |x: f64, y: f64| -> [u8; 3] {
        let (x, y) = (x.round() as usize, y.round() as usize);
        let i = (y * frame.width as usize + x) * channels;
        [pixels[i], pixels[i + 1], pixels[i + 2]]
    };
    // The picture fits the element (object-fit: contain), centred.
    let scale = (ew / vw).min(eh / vh);
    let (ox, oy) = ((ew - vw * scale) / 2.0, (eh - vh * scale) / 2.0);
    let colours = gstovlva::ovoverlay::annotate::Colours::default();
    for (label, _, [l, t, w, h]) in &objects {
        let c = colours.of(label, common::ssd_label_id(label));
        let want = [c.0, c.1, c.2];
        let y = oy + (t + h / 2.0) * vh * scale;
        for x in [l * vw, (l + w) * vw] {
            let x = ox + x * scale;
            let found = (-6..=6).any(|dx| {
                (-3..=3).any(|dy| {
                    let (px, py) = (x + f64::from(dx), y + f64::from(dy));
                    px >= 0.0 && py >= 0.0 && px < ew && py < eh && near(at(px, py), want, 60)
                })
            });
            assert!(
                found,
                "{label}: no {want:?} near ({x:.0}, {y:.0}) of the video's screenshot ({ew}×{eh}); \
                 there: {:?}",
                at(x.min(ew - 1.0), y.min(eh - 1.0))
            );
        }
        // Not everywhere: the middle of the box is the picture.
        let (cx, cy) = (ox + (l + w / 2.0) * vw * scale, y);
        assert!(
            !near(at(cx, cy), want, 60),
            "{label}: its colour inside the box"
        );
    }

    // Without hls.js (a server built before scripts/setup.sh ran), a browser with HLS of its
    // own plays the playlist itself (Chromium has since version 141); another says why not.
    page.js("window.Hls = undefined;
         window.lvaHlsMissing = 'live view needs hls.js: run scripts/setup.sh';")
        .await;
    let native = page
        .js("return document.createElement('video').canPlayType('application/vnd.apple.mpegurl');")
        .await;
    page.click("#streams tr[data-stream=\"still\"] button.view")
        .await;
    if native == "" {
        page.until(
            "the message without hls.js",
            Duration::from_secs(20),
            "return document.getElementById('live-message').textContent
                    === 'live view needs hls.js: run scripts/setup.sh';",
        )
        .await;
    } else {
        let start = page
            .until(
                "the browser's own HLS playing",
                Duration::from_secs(40),
                "const v = document.getElementById('live-video');
                 return v.src.endsWith('/streams/still/hls/index.m3u8') && v.readyState >= 3
                        && !v.paused ? v.currentTime : null;",
            )
            .await
            .as_f64()
            .expect("a time");
        let later = format!(
            "return document.getElementById('live-video').currentTime >= {};",
            start + 1.0
        );
        page.until("1 s more of video", Duration::from_secs(20), &later)
            .await;
    }

    page.click("#streams tr[data-stream=\"still\"] button.delete")
        .await;
    page.until(
        "the stream gone",
        Duration::from_secs(30),
        "return !document.querySelector('#streams tr[data-stream=\"still\"]');",
    )
    .await;
    page.no_policy_violations().await;
    page.close().await;
}
