//! lva-server's KServe v2 API (REST and gRPC) driven by the real KServe client, tritonclient
//! (`scripts/kserve_client.py`), against OpenVINO's own Python API on the very same tensors;
//! curl and raw HTTP for the REST routes and what a hostile client sends.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::reference::scratch;
use common::{asset, blazeface_model, root, ssd_model};
use serde_json::{Value, json};

/// A running lva-server with gRPC, stopped when dropped.
struct Server {
    started: common::server::Started,
    /// host:port of HTTP and of gRPC.
    http: String,
    grpc: String,
}

impl Server {
    fn start(mut config: Value) -> Server {
        let dir = scratch("kserve");
        config["grpc-listen"] = json!("127.0.0.1:0");
        config["streams"] = json!({"state-dir": dir.join("state")});
        let path = dir.join("lva-server.json");
        std::fs::write(&path, config.to_string()).expect("config written");
        let started = common::server::start(&path, &[]);
        let http = started
            .url
            .split_once("://")
            .expect("scheme://addr")
            .1
            .to_string();
        // Printed before "listening on", which start() waited for.
        let log = started.log_text();
        let grpc = log
            .lines()
            .find_map(|l| l.split("KServe gRPC on ").nth(1))
            .and_then(|u| u.split_once("://"))
            .map(|(_, a)| a.trim().to_string())
            .unwrap_or_else(|| panic!("no gRPC address in the log: {log}"));
        Server {
            started,
            http,
            grpc,
        }
    }
}

/// `scripts/kserve_client.py ARGS` in the project's virtualenv: its JSON report.
fn client(args: &[&str]) -> Value {
    let script = root().join("scripts/kserve_client.py");
    let script = script.to_string_lossy();
    let out = common::python_out([&[script.as_ref()], args].concat());
    serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("kserve_client.py {args:?} printed no JSON ({e}): {out}"))
}

/// curl ARGS: (HTTP status, body).
fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-S", "--max-time", "60", "-w", "\n%{http_code}"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("curl runs (scripts/setup.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

fn agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build(),
    )
}

/// POST `body` with the binary extension's header: (status, `error`).
fn post_binary(url: &str, json_len: usize, body: &[u8]) -> (u16, String) {
    let mut resp = agent()
        .post(url)
        .header("inference-header-content-length", json_len.to_string())
        .header("content-type", "application/octet-stream")
        .send(body)
        .expect("an HTTP answer");
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().expect("body");
    let error = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or(text);
    (status, error)
}

fn max_diff(report: &Value) -> f64 {
    report["max_diff"].as_f64().expect("max_diff")
}

#[test]
fn tritonclient_over_http_and_grpc_gets_openvinos_own_outputs() {
    let started = Instant::now();
    let server = Server::start(json!({
        "max-body-bytes": 2_000_000,
        "models": {
            "ssd": {"model": ssd_model(), "decoder": "ssd", "workers": 1},
            "face": {"model": blazeface_model(), "decoder": "blazeface", "workers": 1},
        }
    }));
    let report = client(&[
        "check",
        "--http",
        &server.http,
        "--grpc",
        &server.grpc,
        "--ssd",
        &format!("ssd={}", ssd_model()),
        "--face",
        &format!("face={}", blazeface_model()),
        "--jpeg",
        &asset("media/person.jpg"),
        "--png",
        &asset("media/astronaut.png"),
    ]);
    let reference = &report["reference"]["ssd"];
    // person.jpg: a person (class 1) and a horse (class 19 of the model, 18 in labels.txt).
    let classes: Vec<f64> = reference
        .as_array()
        .expect("detections")
        .iter()
        .map(|d| d[0].as_f64().expect("class"))
        .collect();
    assert!(
        classes.contains(&1.0) && classes.contains(&19.0),
        "{reference}"
    );
    for protocol in ["http", "grpc"] {
        let r = &report[protocol];
        let at = |what: &str| format!("{protocol} {what}: {}", r[what]);
        for health in ["live", "ready", "model_ready", "model_ready_v1"] {
            assert_eq!(r[health], true, "{}", at(health));
        }
        assert_eq!(r["server"]["name"], "lva-server", "{}", at("server"));
        assert_eq!(
            r["server"]["extensions"],
            json!(["binary_tensor_data"]),
            "{}",
            at("server")
        );
        // The model file's own ports.
        assert_eq!(r["ssd"]["name"], "ssd");
        assert_eq!(r["ssd"]["versions"], json!(["1"]));
        assert_eq!(
            r["ssd"]["inputs"],
            json!([{"name": "image", "datatype": "UINT8", "shape": [1, 300, 300, 3]}]),
            "{}",
            at("ssd")
        );
        assert_eq!(
            r["ssd"]["outputs"],
            json!([{"name": "detection_out", "datatype": "FP32", "shape": [1, 1, 100, 7]}]),
            "{}",
            at("ssd")
        );
        assert_eq!(
            r["face"]["inputs"],
            json!([{"name": "input", "datatype": "FP32", "shape": [1, 128, 128, 3]}])
        );
        assert_eq!(
            r["face"]["outputs"],
            json!([
                {"name": "regressors", "datatype": "FP32", "shape": [1, 896, 16]},
                {"name": "classificators", "datatype": "FP32", "shape": [1, 896, 1]}
            ])
        );
        // The 300x300 u8 tensor of the photo: OpenVINO's [1,1,100,7], within 1e-5.
        assert_eq!(r["raw"]["shape"], json!([1, 1, 100, 7]), "{}", at("raw"));
        assert_eq!(r["raw"]["dtype"], "float32");
        assert!(max_diff(&r["raw"]) <= 1e-5, "{}", at("raw"));
        assert_eq!(r["raw"]["id"], "req-1", "the request id comes back");
        assert_eq!(&r["raw"]["detections"], reference);
        if protocol == "http" {
            for mixed in ["json", "json_in_binary_out", "binary_in_json_out"] {
                assert!(max_diff(&r[mixed]) <= 1e-5, "{}", at(mixed));
            }
        }
        for (name, out) in r["face_outputs"].as_object().expect("face outputs") {
            assert!(max_diff(out) <= 1e-5, "{protocol} face {name}: {out}");
        }
        // A PNG in a BYTES input: decoded and resized as cv2.resize does, so the same tensor.
        assert!(max_diff(&r["bytes_png"]) <= 1e-5, "{}", at("bytes_png"));
        assert_eq!(r["bytes_png"]["detections"], report["reference"]["png"]);
        // A JPEG: another decoder than OpenCV's (chroma upsampling), so the same objects with
        // boxes a little apart.
        let got = r["bytes_jpeg"]["detections"]
            .as_array()
            .expect("detections");
        let want = reference.as_array().expect("detections");
        assert_eq!(got.len(), want.len(), "{}", at("bytes_jpeg"));
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g[0], w[0], "{}", at("bytes_jpeg"));
            for i in 1..6 {
                let (a, b) = (g[i].as_f64().unwrap(), w[i].as_f64().unwrap());
                assert!((a - b).abs() < 0.03, "{}", at("bytes_jpeg"));
            }
        }
        // Refusals, with the protocol's status and the reason.
        let e = &r["errors"];
        let (not_found, invalid) = if protocol == "http" {
            ("404", "400")
        } else {
            ("StatusCode.NOT_FOUND", "StatusCode.INVALID_ARGUMENT")
        };
        let refused = |what: &str, status: &str, message: &str| {
            assert_eq!(e[what]["status"], status, "{}", at("errors"));
            assert_eq!(e[what]["message"], message, "{}", at("errors"));
        };
        let no_model = "no model 'nope' here; the models are face, ssd";
        refused("unknown_model", not_found, no_model);
        refused("unknown_model_metadata", not_found, no_model);
        refused(
            "wrong_shape",
            invalid,
            "input 'image': shape [1,3,300,300], the model takes [1,300,300,3]",
        );
        refused(
            "wrong_datatype",
            invalid,
            "input 'image': datatype FP32, the model takes UINT8",
        );
        refused(
            "unknown_input",
            invalid,
            "model 'ssd' has no input 'picture': its inputs are image",
        );
        refused(
            "not_an_image",
            invalid,
            "input 'image': image 0 is neither JPEG nor PNG (it starts with 68 65 6c 6c 6f)",
        );
    }
    // tritonclient's HTTP is_model_ready says false on a 404; gRPC raises NOT_FOUND.
    assert_eq!(report["http"]["unknown_model_ready"], false);
    assert_eq!(
        report["grpc"]["unknown_model_ready"]["status"],
        "StatusCode.NOT_FOUND"
    );
    // ModelStreamInfer answers each request in order, an error in its place.
    assert_eq!(
        report["grpc"]["stream"],
        json!(["s0", {"status": null, "message": "no model 'nope' here; the models are face, ssd"}, "s2"])
    );

    // curl, a third-party client, on the REST routes.
    let base = format!("http://{}", server.http);
    assert_eq!(
        curl(&[&format!("{base}/v2/health/live")]),
        (200, String::new())
    );
    assert_eq!(
        curl(&[&format!("{base}/v2/health/ready")]),
        (200, String::new())
    );
    assert_eq!(curl(&[&format!("{base}/v2/models/ssd/ready")]).0, 200);
    assert_eq!(
        curl(&[&format!("{base}/v2/models/ssd/versions/1/ready")]).0,
        200
    );
    let (status, body) = curl(&[&format!("{base}/v2/models/ssd/versions/1")]);
    assert_eq!(status, 200);
    let metadata: Value = serde_json::from_str(&body).expect("metadata JSON");
    assert_eq!(metadata, report["http"]["ssd"]);
    let (status, body) = curl(&[&format!("{base}/v2/models/ssd/versions/2")]);
    assert_eq!(status, 404);
    assert!(body.contains("has no version '2'"), "{body}");
    let (status, body) = curl(&[&format!("{base}/v2")]);
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        report["http"]["server"]
    );
    let (status, body) = curl(&[&format!("{base}/v2/repository/index")]);
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("no KServe route"), "{body}");
    let (status, _) = curl(&["-X", "DELETE", &format!("{base}/v2/models/ssd/infer")]);
    assert_eq!(status, 405);
    let (status, body) = curl(&[
        "-X",
        "POST",
        "-H",
        "content-type: application/json",
        "--data",
        r#"{"inputs":[{"name":"image","shape":[1,300,300,3],"datatype":"UINT8","data":[1,2,3]}]}"#,
        &format!("{base}/v2/models/ssd/infer"),
    ]);
    assert_eq!(status, 400);
    assert!(
        body.contains("shape [1,300,300,3] of UINT8 is 270000 bytes, the request has 3 bytes"),
        "{body}"
    );

    // What a hostile client declares is refused before anything is made of it.
    let infer = format!("{base}/v2/models/ssd/infer");
    let header = r#"{"inputs":[{"name":"image","shape":[1000000000000,300,300,3],"datatype":"UINT8","parameters":{"binary_data_size":12}}]}"#;
    let mut body = header.as_bytes().to_vec();
    body.extend_from_slice(&[0; 12]);
    let (status, error) = post_binary(&infer, header.len(), &body);
    assert_eq!(status, 400);
    assert_eq!(
        error,
        "input 'image': shape [1000000000000,300,300,3], the model takes [1,300,300,3]"
    );
    let header = r#"{"inputs":[{"name":"image","shape":[1,300,300,3],"datatype":"UINT8","parameters":{"binary_data_size":1152921504606846976}}]}"#;
    let mut body = header.as_bytes().to_vec();
    body.extend_from_slice(&[0; 12]);
    let (status, error) = post_binary(&infer, header.len(), &body);
    assert_eq!(status, 400);
    assert!(
        error.contains("12 bytes of binary data are left"),
        "{error}"
    );
    let (status, error) = post_binary(&infer, 1 << 40, b"{}");
    assert_eq!(status, 400);
    assert!(error.contains("the body has 2 bytes"), "{error}");
    let (status, error) = post_binary(&infer, 2, &vec![0; 2_000_001]);
    assert_eq!(status, 413);
    assert!(error.contains("over the limit of 2000000"), "{error}");

    // Busy: one worker and two waiting; more at once are refused (503 / UNAVAILABLE).
    for (protocol, url, busy) in [
        ("grpc", &server.grpc, "UNAVAILABLE"),
        ("http", &server.http, "503"),
    ] {
        let load = client(&[
            "bench",
            "--url",
            url,
            "--protocol",
            protocol,
            "--model",
            "ssd",
            "--image",
            &asset("media/person.jpg"),
            "--seconds",
            "2",
            "--threads",
            "6",
        ]);
        assert!(load["requests"].as_u64().unwrap() > 0, "{load}");
        assert!(load["errors"].as_u64().unwrap() > 0, "{load}");
        let first = load["first_error"].as_str().unwrap_or("");
        assert!(
            first.contains(busy) && first.contains("all workers are busy"),
            "{load}"
        );
    }
    let log = server.started.log_text();
    assert!(log.contains("OK gRPC ModelInfer model=ssd"), "{log}");
    assert!(
        log.contains("200 POST /v2/models/ssd/infer model=ssd"),
        "{log}"
    );
    eprintln!("took {:?}", started.elapsed());
}

#[test]
fn credentials_and_tls_hold_on_both_protocols() {
    let dir = scratch("kserve-tls");
    common::self_signed_cert(&dir);
    let server = Server::start(json!({
        "tls": {"cert": dir.join("cert.pem"), "key": dir.join("key.pem")},
        "auth": {"bearer": ["t0ken"], "basic": [{"user": "lva", "password": "pa55"}]},
        "models": {"ssd": {"model": ssd_model(), "workers": 1}}
    }));
    assert!(server.started.url.starts_with("https://"));
    assert!(
        server
            .started
            .log_text()
            .contains("KServe gRPC on grpcs://")
    );
    let ca = dir.join("cert.pem").display().to_string();
    let report = client(&[
        "auth",
        "--http",
        &server.http,
        "--grpc",
        &server.grpc,
        "--model",
        "ssd",
        "--token",
        "t0ken",
        "--ca",
        &ca,
    ]);
    for (protocol, unauthenticated) in [("http", "401"), ("grpc", "StatusCode.UNAUTHENTICATED")] {
        let r = &report[protocol];
        for who in ["none", "wrong", "right"] {
            // Health needs no credentials, as /healthz (probes send none).
            assert_eq!(r[who]["live"], true, "{protocol} {who}: {r}");
            assert_eq!(r[who]["ready"], true, "{protocol} {who}: {r}");
        }
        for who in ["none", "wrong"] {
            for call in ["metadata", "infer"] {
                assert_eq!(
                    r[who][call]["status"], unauthenticated,
                    "{protocol} {who} {call}: {r}"
                );
                assert!(
                    r[who][call]["message"]
                        .as_str()
                        .unwrap_or("")
                        .starts_with("credentials missing or wrong"),
                    "{r}"
                );
            }
        }
        assert_eq!(r["right"]["metadata"], "ssd", "{r}");
        assert_eq!(r["right"]["infer"], json!([1, 1, 100, 7]), "{r}");
    }
    // curl over HTTPS with the certificate: health open, the rest behind Basic or Bearer.
    let base = format!("https://{}", server.http);
    let tls = ["--cacert", ca.as_str()];
    let with = |extra: &[&str], path: &str| {
        let mut args: Vec<&str> = tls.to_vec();
        args.extend_from_slice(extra);
        let url = format!("{base}{path}");
        args.push(&url);
        curl(&args).0
    };
    assert_eq!(with(&[], "/v2/health/ready"), 200);
    assert_eq!(with(&[], "/v2/models/ssd"), 401);
    assert_eq!(with(&["-u", "lva:pa55"], "/v2/models/ssd"), 200);
    assert_eq!(with(&["-u", "lva:wrong"], "/v2/models/ssd"), 401);
    assert_eq!(with(&["-H", "authorization: Bearer t0ken"], "/v2"), 200);
    assert_eq!(with(&[], "/v2"), 401);
}

// gRPC against slow and idle clients (docs/security.md, "KServe v2"): the real tonic client of
// the library's generated code over loopback.

use gstovlva::kserve::proto;
use proto::grpc_inference_service_client::GrpcInferenceServiceClient;
use tonic::transport::Channel;

async fn channel(addr: &str) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("a URI")
        .connect()
        .await
        .expect("connected to the gRPC port")
}

const MODEL_INFER: &str = "/inference.GRPCInferenceService/ModelInfer";
const MODEL_METADATA: &str = "/inference.GRPCInferenceService/ModelMetadata";

/// A call of `path` whose request message never comes (its HTTP/2 stream stays open with
/// headers only): the error it ends with (within 15 s), and when.
async fn stalled_call(channel: Channel, path: &'static str) -> (tonic::Status, Duration) {
    let started = Instant::now();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("ready");
    let uri = http::uri::PathAndQuery::from_static(path);
    let never = tonic::codegen::tokio_stream::pending::<proto::ModelInferRequest>();
    // No message goes either way, so the types are any.
    let codec =
        tonic_prost::ProstCodec::<proto::ModelInferRequest, proto::ModelInferResponse>::default();
    let result = tokio::time::timeout(
        Duration::from_secs(15),
        grpc.client_streaming(tonic::Request::new(never), uri, codec),
    )
    .await
    .unwrap_or_else(|_| panic!("{path}: a call without a message still open after 15 s"));
    let status = result.expect_err("a call without a message cannot succeed");
    (status, started.elapsed())
}

/// The SSD's request: a black 300x300 picture.
fn ssd_request(id: &str) -> proto::ModelInferRequest {
    proto::ModelInferRequest {
        model_name: "ssd".into(),
        id: id.into(),
        inputs: vec![proto::model_infer_request::InferInputTensor {
            name: "image".into(),
            datatype: "UINT8".into(),
            shape: vec![1, 300, 300, 3],
            ..Default::default()
        }],
        raw_input_contents: vec![vec![0; 300 * 300 * 3]],
        ..Default::default()
    }
}

/// A ModelStreamInfer stream on a new connection: where its requests go, its answers.
async fn open_stream(
    addr: &str,
) -> (
    tokio::sync::mpsc::Sender<proto::ModelInferRequest>,
    tonic::Streaming<proto::ModelStreamInferResponse>,
) {
    let mut client = GrpcInferenceServiceClient::new(channel(addr).await);
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let requests = tonic::codegen::tokio_stream::wrappers::ReceiverStream::new(rx);
    let answers = client
        .model_stream_infer(requests)
        .await
        .expect("the stream opens")
        .into_inner();
    (tx, answers)
}

/// ServerLive on a new connection, and how long it took.
async fn server_live(addr: &str) -> (bool, Duration) {
    let started = Instant::now();
    let mut client = GrpcInferenceServiceClient::new(channel(addr).await);
    let live = tokio::time::timeout(
        Duration::from_secs(5),
        client.server_live(proto::ServerLiveRequest {}),
    )
    .await
    .expect("ServerLive within 5 s")
    .expect("ServerLive answered")
    .into_inner()
    .live;
    (live, started.elapsed())
}

/// The server of the slow-client tests: the SSD admitting 2 inferences (1 worker, 1 waiting),
/// messages due within 2 s, places waited for up to 8 s, connections idle for 1.5 s closed.
fn slow_client_server() -> Server {
    Server::start(json!({
        "body-timeout-ms": 2000,
        "queue-timeout-ms": 8000,
        "idle-timeout-ms": 1500,
        "models": {"ssd": {"model": ssd_model(), "workers": 1, "max-queue": 1}}
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_calls_whose_message_never_comes_are_cut_and_starve_no_one() {
    let server = slow_client_server();
    // As many stalled ModelInfer calls as the model admits, and one more.
    let stalled = channel(&server.grpc).await;
    let calls: Vec<_> = (0..3)
        .map(|_| tokio::spawn(stalled_call(stalled.clone(), MODEL_INFER)))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Metadata answers at once meanwhile: it does not wait behind inferences.
    let mut client = GrpcInferenceServiceClient::new(channel(&server.grpc).await);
    let t = Instant::now();
    let metadata = client
        .model_metadata(proto::ModelMetadataRequest {
            name: "ssd".into(),
            version: String::new(),
        })
        .await
        .expect("ModelMetadata answered")
        .into_inner();
    assert_eq!(metadata.inputs[0].name, "image");
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    // 8 stalled metadata calls fill the metadata places too (11 calls in all: one more than
    // every place a gRPC call could take before); health needs none and answers at once.
    let metadata_calls: Vec<_> = (0..8)
        .map(|_| tokio::spawn(stalled_call(stalled.clone(), MODEL_METADATA)))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (live, took) = server_live(&server.grpc).await;
    assert!(live);
    assert!(took < Duration::from_secs(1), "ServerLive took {took:?}");
    for call in metadata_calls {
        let (status, _) = call.await.expect("the call's task");
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
    }
    // The two with places end at body-timeout-ms; the third then gets a place, and the same.
    let mut ended = Vec::new();
    for call in calls {
        ended.push(call.await.expect("the call's task"));
    }
    ended.sort_by_key(|(_, took)| *took);
    eprintln!("stalled calls ended: {ended:?}");
    for (status, _) in &ended {
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
        assert!(
            status.message().contains("body-timeout-ms (2000 ms)"),
            "{status:?}"
        );
    }
    let took: Vec<_> = ended.iter().map(|(_, t)| t.as_secs_f64()).collect();
    assert!(took[0] >= 1.9 && took[1] < 3.5, "{took:?}");
    assert!(
        took[2] >= 3.9 && took[2] < 6.0,
        "the third waited for a place: {took:?}"
    );
    // Their places are free again: an inference runs.
    let answer = client
        .model_infer(ssd_request("after"))
        .await
        .expect("an inference after the stalled calls")
        .into_inner();
    assert_eq!(answer.id, "after");
    assert_eq!(answer.outputs[0].shape, vec![1, 1, 100, 7]);
    let log = server.started.log_text();
    assert!(
        log.contains("gRPC ModelInfer: the request message did not arrive within body-timeout-ms"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_stream_inferences_take_the_same_places_as_unary_calls() {
    let server = slow_client_server();
    // Both places held by calls whose message never comes (freed at body-timeout-ms, 2 s).
    let stalled = channel(&server.grpc).await;
    let t0 = Instant::now();
    let calls: Vec<_> = (0..2)
        .map(|_| tokio::spawn(stalled_call(stalled.clone(), MODEL_INFER)))
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A stream's request waits for a place as a unary call does, then is answered.
    let (tx, mut answers) = open_stream(&server.grpc).await;
    tx.send(ssd_request("s1")).await.expect("sent");
    let first = answers
        .message()
        .await
        .expect("an answer")
        .expect("not the end");
    let waited = t0.elapsed();
    assert_eq!(first.error_message, "", "{first:?}");
    let response = first.infer_response.expect("a response");
    assert_eq!((response.id.as_str(), response.outputs.len()), ("s1", 1));
    assert!(
        waited >= Duration::from_millis(1900),
        "the stream's inference did not wait for a place: answered after {waited:?}"
    );
    for call in calls {
        let (status, _) = call.await.expect("the call's task");
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
    }
    // With places free, the stream's next request goes at once.
    let t1 = Instant::now();
    tx.send(ssd_request("s2")).await.expect("sent");
    let second = answers.message().await.expect("an answer").expect("more");
    assert_eq!(second.infer_response.expect("a response").id, "s2");
    assert!(t1.elapsed() < Duration::from_secs(2), "{:?}", t1.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_connections_without_calls_are_closed_at_the_idle_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = slow_client_server();
    // A client that opens HTTP/2 (preface and empty SETTINGS) and makes no call.
    let t0 = Instant::now();
    let mut tcp = tokio::net::TcpStream::connect(&server.grpc)
        .await
        .expect("connected");
    tcp.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .expect("preface sent");
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    let after = t0.elapsed();
    assert!(closed.is_ok(), "still open after 10 s");
    assert!(
        after >= Duration::from_millis(1400) && after < Duration::from_secs(4),
        "closed after {after:?}, idle-timeout-ms is 1500"
    );
    // A stream open longer than that, quiet, is not idle: it still answers.
    let (tx, mut answers) = open_stream(&server.grpc).await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    tx.send(ssd_request("late")).await.expect("sent");
    let answer = answers.message().await.expect("an answer").expect("more");
    assert_eq!(answer.infer_response.expect("a response").id, "late");
}
