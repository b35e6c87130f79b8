//! A real NVIDIA Triton Inference Server for a test: `scripts/triton_serve.py` (PyTriton's
//! tritonserver, installed into `.venv/triton` by `scripts/setup.sh`) serving the SSD as model
//! `ssd` through OpenVINO, on two free ports of 127.0.0.1 (KServe v2 gRPC and HTTP), stopped
//! and started again on the same ports, killed when the test lets go of it.
//!
//! The SSD is served with its own tensors: input `image` UINT8 [1,300,300,3], output
//! `detection_out` FP32 [1,1,100,7], max_batch_size 0. `start_model` serves another model
//! under a name, with Triton's batching when `max_batch_size` > 0 (its first dimension -1).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::process::{Process, free_ports, scratch_dir};

/// How long Triton may take to load the model (it takes 6-30 s on a loaded 2-core machine).
const START_TIMEOUT: Duration = Duration::from_secs(180);
/// How long it may take to stop on SIGTERM (its own exit timeout is 5 s).
const STOP_GRACE: Duration = Duration::from_secs(30);

/// A running (or stopped, to be started again) Triton serving the SSD.
pub struct Triton {
    pub grpc_port: u16,
    pub http_port: u16,
    process: Process,
    dir: PathBuf,
    /// The name the model is served under.
    model: String,
}

/// The name the SSD is served under.
pub const SSD: &str = "ssd";

/// The project's folder (not `super::root`: benches include this file without tests' common).
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The SSD's IR, as `scripts/setup.sh` converts it.
const SSD_MODEL: &str = "models/ssd_mobilenet_v2_coco/ssd_mobilenet_v2_coco.xml";

/// The Python of Triton's own virtualenv.
pub fn python() -> PathBuf {
    let python = root().join(".venv/triton/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `make setup` (scripts/setup.sh makes Triton's virtualenv)",
        python.display()
    );
    python
}

impl Triton {
    /// Starts Triton serving the SSD as `ssd` on free ports and waits until the model is ready.
    pub fn start_ssd() -> Triton {
        Triton::start_model(&root().join(SSD_MODEL), SSD, 0)
    }

    /// Starts Triton serving `model` (IR or ONNX) as `name` on free ports, with Triton's
    /// batching of up to `max_batch_size` items per request when it is > 0 (the model's first
    /// dimension made dynamic), and waits until the model is ready.
    pub fn start_model(model: &Path, name: &str, max_batch_size: usize) -> Triton {
        let dir = scratch_dir("triton");
        let [grpc_port, http_port] = free_ports();
        let python = python();
        let workspace = dir.clone();
        let (model, served) = (model.to_path_buf(), name.to_string());
        let process = Process::start("triton", &dir.join("triton.log"), move || {
            let mut command = Command::new(&python);
            command
                .arg(root().join("scripts/triton_serve.py"))
                .arg("--model")
                .arg(&model)
                .args(["--model-name", &served])
                .args(["--max-batch-size", &max_batch_size.to_string()])
                .args(["--grpc-port", &grpc_port.to_string()])
                .args(["--http-port", &http_port.to_string()])
                .arg("--workspace")
                .arg(&workspace);
            command
        });
        let mut triton = Triton {
            grpc_port,
            http_port,
            process,
            dir,
            model: name.to_string(),
        };
        triton.wait();
        triton
    }

    /// `grpc://127.0.0.1:PORT`, for ovinfer's `server`.
    pub fn grpc_url(&self) -> String {
        format!("grpc://127.0.0.1:{}", self.grpc_port)
    }

    /// Waits until `GET /v2/models/NAME/ready` answers 200.
    fn wait(&mut self) {
        let port = self.http_port;
        let path = format!("/v2/models/{}/ready", self.model);
        self.process
            .wait_until(&format!("ready at {path}"), START_TIMEOUT, || {
                http_status(port, &path) == Some(200)
            });
    }

    /// SIGTERM (Triton finishes the requests in flight, up to 5 s) and waits until it exited.
    pub fn stop(&mut self) {
        self.process.stop(STOP_GRACE);
    }

    /// Starts Triton again on the same ports and waits until the model is ready.
    pub fn restart(&mut self) {
        self.process.restart();
        self.wait();
    }

    /// Whether the server process runs.
    pub fn running(&mut self) -> bool {
        self.process.running()
    }

    /// CPU seconds the server has used so far: the script (OpenVINO's inference), tritonserver
    /// and its Python backend stubs.
    pub fn cpu_seconds(&self) -> f64 {
        self.process.cpu_seconds()
    }

    /// The model's `(inference_count, execution_count)` from Triton's statistics
    /// (`GET /v2/models/NAME/stats`): items inferred, and the model executions they took (fewer
    /// when requests carried batches).
    pub fn counts(&self) -> (u64, u64) {
        let path = format!("/v2/models/{}/stats", self.model);
        // Asked up to 5 times: on a loaded CI machine one answer took longer than a read timeout.
        let mut last = String::new();
        for _ in 0..5 {
            match http_response(self.http_port, &path) {
                Ok((200, body)) => return stats_counts(&path, &body),
                Ok((status, body)) => last = format!("status {status}: {body}"),
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        panic!("GET {path}: {last}\n{}", self.log_text())
    }

    /// What Triton and the script printed so far.
    pub fn log_text(&self) -> String {
        self.process.log_text()
    }
}

/// Stopped when its test lets go of it: SIGTERM first, so that PyTriton removes its shared
/// memory and workspace, then SIGKILL to what is left; the shared memory named after the
/// script's pid is removed in any case.
impl Drop for Triton {
    fn drop(&mut self) {
        let pid = self.process.pid();
        self.process.terminate(STOP_GRACE);
        if let (Some(pid), Ok(entries)) = (pid, std::fs::read_dir("/dev/shm")) {
            let prefix = format!("pytrtion{pid}-");
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().starts_with(&prefix) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The status and body of `GET path` on 127.0.0.1:`port`, or why there is none (nothing
/// listening, no answer within 10 s).
fn http_response(port: u16, path: &str) -> Result<(u16, String), String> {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build();
    let agent = ureq::Agent::new_with_config(config);
    let mut response = agent
        .get(format!("http://127.0.0.1:{port}{path}"))
        .call()
        .map_err(|e| e.to_string())?;
    let body = response
        .body_mut()
        .read_to_string()
        .map_err(|e| e.to_string())?;
    Ok((response.status().as_u16(), body))
}

/// The status of `GET path` on 127.0.0.1:`port`, or None when nothing answers.
fn http_status(port: u16, path: &str) -> Option<u16> {
    http_response(port, path).ok().map(|(status, _)| status)
}

/// `(inference_count, execution_count)` of the first model in a statistics answer.
fn stats_counts(path: &str, body: &str) -> (u64, u64) {
    let stats: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}"));
    let model = &stats["model_stats"][0];
    let count = |key: &str| {
        model[key]
            .as_u64()
            .unwrap_or_else(|| panic!("GET {path}: no {key}: {body}"))
    };
    (count("inference_count"), count("execution_count"))
}
