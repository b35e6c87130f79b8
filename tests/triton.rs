//! The real NVIDIA Triton server the remote-inference tests use (tests/common/triton.rs:
//! PyTriton's tritonserver with OpenVINO in the bound functions) gives, through the real KServe
//! client tritonclient (`scripts/triton_check.py`, HTTP and gRPC), exactly OpenVINO Python's own
//! output for the SSD on a real image's 300x300 tensor; and it stops and starts again on the
//! same ports.

mod common;

use std::net::TcpStream;
use std::process::Command;
use std::time::Instant;

use common::triton::{SSD, Triton};
use common::{asset, root, ssd_model};
use serde_json::{Value, json};

/// `scripts/triton_check.py` against `triton` (in the project's .venv, where tritonclient is).
fn check(triton: &Triton) -> Value {
    let python = common::python();
    let out = Command::new(&python)
        .arg(root().join("scripts/triton_check.py"))
        .args(["--http", &format!("127.0.0.1:{}", triton.http_port)])
        .args(["--grpc", &format!("127.0.0.1:{}", triton.grpc_port)])
        .args(["--model", SSD, "--xml", &ssd_model()])
        .args(["--image", &asset("media/person.jpg")])
        .output()
        .unwrap_or_else(|e| panic!("{} cannot run ({e}): run `make setup`", python.display()));
    assert!(
        out.status.success(),
        "triton_check.py: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        triton.log_text()
    );
    serde_json::from_slice(&out.stdout).expect("triton_check.py prints JSON")
}

/// Both protocols: the model's own tensors in the metadata, and OpenVINO's output bit for bit
/// (the person and the dog of person.jpg among the detections).
fn assert_ssd_output(report: &Value) {
    let reference = report["reference"]
        .as_array()
        .expect("reference detections");
    let classes: Vec<f64> = reference.iter().filter_map(|d| d[0].as_f64()).collect();
    assert!(
        classes.contains(&1.0) && classes.contains(&19.0),
        "OpenVINO finds the person (1) and the dog (19) of person.jpg: {reference:?}"
    );
    for protocol in ["http", "grpc"] {
        let r = &report[protocol];
        assert_eq!(r["live"], json!(true), "{protocol}: {r}");
        assert_eq!(r["model_ready"], json!(true), "{protocol}: {r}");
        let meta = &r["metadata"];
        assert_eq!(meta["name"], json!(SSD), "{protocol}: {meta}");
        assert_eq!(
            meta["inputs"],
            json!([{"name": "image", "datatype": "UINT8", "shape": [1, 300, 300, 3]}]),
            "{protocol}"
        );
        assert_eq!(
            meta["outputs"],
            json!([{"name": "detection_out", "datatype": "FP32", "shape": [1, 1, 100, 7]}]),
            "{protocol}"
        );
        assert_eq!(
            r["output"],
            json!({"shape": [1, 1, 100, 7], "dtype": "float32", "max_diff": 0.0}),
            "{protocol}"
        );
        assert_eq!(r["detections"], report["reference"], "{protocol}");
    }
}

#[test]
fn triton_serves_the_ssd_as_openvino_computes_it_and_restarts_on_its_ports() {
    let started = Instant::now();
    let mut triton = Triton::start_ssd();
    eprintln!("Triton ready in {:.1} s", started.elapsed().as_secs_f64());
    assert_ssd_output(&check(&triton));

    triton.stop();
    assert!(!triton.running());
    for port in [triton.grpc_port, triton.http_port] {
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port {port} still accepts after stop"
        );
    }

    let (grpc, http) = (triton.grpc_port, triton.http_port);
    triton.restart();
    assert_eq!((triton.grpc_port, triton.http_port), (grpc, http));
    assert!(triton.running());
    assert_ssd_output(&check(&triton));
}
