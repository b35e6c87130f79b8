//! Remote inference (`server=grpc://HOST:PORT`): the model runs on a KServe v2 gRPC server
//! (lva-server, OpenVINO Model Server, Triton) instead of a local OpenVINO device.
//!
//! [`Client`] is the connection: one tonic [`Channel`] (HTTP/2: every request of the pool in
//! flight on one connection, reconnected lazily by tonic after the server went away), TLS
//! through rustls/ring for `grpcs://`, the `authorization` header on every call, and the
//! model's metadata read at start. [`Remote`] is what a pool of requests shares: the client,
//! how the converter's pixels become the model's input tensor (layout, element type, mean and
//! scale: what OpenVINO's pre-processing does locally), the outputs' names, and the server's
//! health: after a failure, calls are not made again before a back-off delay (frames fail fast
//! meanwhile, without a network call). [`RemoteRequest`] is one request of the pool: it owns
//! its input, `start` sends a ModelInfer on a shared tokio runtime, `wait` is bounded by
//! `remote-timeout`.
//!
//! A failed call (timeout, server unavailable, any gRPC status) is not an error: the request
//! reports "no results" and the element lets the frame pass without results and counts it
//! (`max-failures` turns consecutive failures into an element error).

use std::path::PathBuf;
use std::sync::{Arc, Condvar, LazyLock, Mutex};
use std::time::{Duration, Instant};

use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::kserve::proto::grpc_inference_service_client::GrpcInferenceServiceClient;
use crate::kserve::proto::model_infer_request::InferInputTensor;
use crate::kserve::proto::model_metadata_response::TensorMetadata;
use crate::kserve::proto::{
    InferTensorContents, ModelInferRequest, ModelInferResponse, ModelMetadataRequest,
    ModelMetadataResponse, ModelReadyRequest,
};
use crate::kserve::{datatype, datatype_name};
use crate::openvino::{DataType, ElementType};
use crate::publish::backoff::{Backoff, random_u64};

/// Outputs of one inference: (shape, values) per model output, in the metadata's order.
pub type Outputs = Vec<(Vec<usize>, Vec<f32>)>;

/// The first and the longest wait before calling a failing server again.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// The runtime every remote `ovinfer` of the process sends its calls on (GStreamer's streaming
/// threads only start calls and wait for their results).
static RUNTIME: LazyLock<Result<tokio::runtime::Runtime, String>> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("ovinfer-grpc")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the gRPC client's runtime: {e}"))
});

fn runtime() -> Result<&'static tokio::runtime::Runtime, String> {
    RUNTIME.as_ref().map_err(Clone::clone)
}

/// Where the model is served: `server` parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// As the user gave it (`grpc://host:port`), for messages.
    pub url: String,
    /// `grpcs://`.
    pub tls: bool,
    pub host: String,
    pub port: u16,
}

impl Target {
    pub fn parse(server: &str) -> Result<Target, String> {
        let server = server.trim();
        let fail = |why: &str| {
            Err(format!(
                "server '{server}' {why}: give grpc://HOST:PORT (or grpcs://HOST:PORT for TLS), \
                 e.g. grpc://127.0.0.1:8001"
            ))
        };
        let (tls, rest) = match server.split_once("://") {
            Some(("grpc", rest)) => (false, rest),
            Some(("grpcs", rest)) => (true, rest),
            Some((scheme, _)) => return fail(&format!("has scheme '{scheme}'")),
            None => return fail("has no scheme"),
        };
        let rest = rest.trim_end_matches('/');
        let Some((host, port)) = rest.rsplit_once(':') else {
            return fail("has no port");
        };
        let Ok(port) = port.parse::<u16>() else {
            return fail(&format!("has port '{port}'"));
        };
        if host.is_empty() || rest.contains('/') || rest.contains('@') {
            return fail("is not HOST:PORT");
        }
        Ok(Target {
            url: server.to_string(),
            tls,
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
        })
    }
}

/// The `server`-related properties.
#[derive(Debug, Clone)]
pub struct Options {
    pub target: Target,
    pub model: String,
    pub version: String,
    pub timeout: Duration,
    pub ca_file: Option<PathBuf>,
    /// The `authorization` header's value.
    pub authorization: Option<String>,
}

/// KServe's and gRPC's name of a status code (`NOT_FOUND`, `UNAVAILABLE`, ...).
pub fn code_name(code: tonic::Code) -> String {
    let mut name = String::new();
    for (i, c) in format!("{code:?}").chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

/// A failed call as one line: its status and the reason (with the transport's cause).
fn status_text(status: &tonic::Status) -> String {
    use std::error::Error;
    let mut text = format!("{}: {}", code_name(status.code()), status.message());
    let mut source = status.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(&format!(": {line}"));
        }
        source = cause.source();
    }
    text
}

/// The connection to the server.
#[derive(Clone)]
pub struct Client {
    pub options: Options,
    client: GrpcInferenceServiceClient<Channel>,
    authorization: Option<AsciiMetadataValue>,
}

impl Client {
    /// The client for `options` (no call made yet: the channel connects on first use).
    pub fn new(options: Options) -> Result<Client, String> {
        let target = &options.target;
        let scheme = if target.tls { "https" } else { "http" };
        let host = if target.host.contains(':') {
            format!("[{}]", target.host)
        } else {
            target.host.clone()
        };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{host}:{}", target.port))
            .map_err(|e| format!("server '{}' is not a valid address: {e}", target.url))?
            .connect_timeout(options.timeout)
            .tcp_nodelay(true);
        if target.tls {
            let tls = ClientTlsConfig::new().domain_name(target.host.clone());
            let tls = match &options.ca_file {
                Some(path) => {
                    let pem = std::fs::read(path).map_err(|e| {
                        format!(
                            "ca-file {} cannot be read ({e}): give the PEM file of the CA that \
                             signed the server's certificate",
                            path.display()
                        )
                    })?;
                    tls.ca_certificate(Certificate::from_pem(pem))
                }
                None => tls.with_native_roots(),
            };
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|e| format!("TLS for server '{}': {e}", target.url))?;
        } else if options.ca_file.is_some() {
            return Err(format!(
                "ca-file is set but server '{}' is plain grpc://: use grpcs:// for TLS",
                target.url
            ));
        }
        let authorization = match &options.authorization {
            None => None,
            Some(value) => Some(MetadataValue::try_from(value.as_str()).map_err(|_| {
                "authorization holds characters a header cannot carry: give \
                 'Bearer TOKEN' or 'Basic BASE64' in ASCII"
                    .to_string()
            })?),
        };
        // The channel's background task lives on the runtime.
        let channel = {
            let _entered = runtime()?.enter();
            endpoint.connect_lazy()
        };
        Ok(Client {
            client: GrpcInferenceServiceClient::new(channel)
                // Outputs of detection or segmentation models run past tonic's 4 MiB default.
                .max_decoding_message_size(256 << 20)
                .max_encoding_message_size(256 << 20),
            authorization,
            options,
        })
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(value) = &self.authorization {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        request
    }

    /// ModelReady then ModelMetadata of the model, within `remote-timeout` each.
    pub fn metadata(&self) -> Result<ModelMetadataResponse, String> {
        let options = &self.options;
        let what = |call: &str, e: String| {
            format!(
                "{call} of model '{}'{} on server {} failed: {e}",
                options.model,
                if options.version.is_empty() {
                    String::new()
                } else {
                    format!(" version '{}'", options.version)
                },
                options.target.url
            )
        };
        let mut client = self.client.clone();
        let ready = self.request(ModelReadyRequest {
            name: options.model.clone(),
            version: options.version.clone(),
        });
        let metadata = self.request(ModelMetadataRequest {
            name: options.model.clone(),
            version: options.version.clone(),
        });
        let timeout = options.timeout;
        // Run on the runtime and waited for here: the element may be started from a thread of
        // another tokio runtime (an application's), where block_on is not allowed.
        let (tx, rx) = std::sync::mpsc::channel();
        runtime()?.spawn(async move {
            let answer = async move {
                let ready = tokio::time::timeout(timeout, client.model_ready(ready)).await;
                let ready = match ready {
                    Err(_) => return Err(("ModelReady", format!("no answer within {timeout:?}"))),
                    Ok(Err(status)) => return Err(("ModelReady", status_text(&status))),
                    Ok(Ok(r)) => r.into_inner().ready,
                };
                if !ready {
                    return Err(("ModelReady", "the model is not ready".to_string()));
                }
                match tokio::time::timeout(timeout, client.model_metadata(metadata)).await {
                    Err(_) => Err(("ModelMetadata", format!("no answer within {timeout:?}"))),
                    Ok(Err(status)) => Err(("ModelMetadata", status_text(&status))),
                    Ok(Ok(r)) => Ok(r.into_inner()),
                }
            };
            let _ = tx.send(answer.await);
        });
        // Each call is bounded by `timeout`; the margin only guards against a stalled runtime.
        let answer = rx
            .recv_timeout(timeout * 2 + Duration::from_secs(1))
            .unwrap_or_else(|_| Err(("ModelReady", format!("no answer within {timeout:?}"))));
        answer.map_err(|(call, e)| what(call, e))
    }
}

/// How the converter's pixels (u8, the model's channel order, height x width x 3 per frame)
/// become the model's input tensor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prep {
    pub width: usize,
    pub height: usize,
    /// Channels first (NCHW), else NHWC as the pixels are.
    pub channels_first: bool,
    /// UINT8, FP32 or FP16.
    pub datatype: DataType,
    /// value = (pixel - mean) / scale, for float inputs.
    pub mean: f32,
    pub scale: f32,
}

impl Prep {
    /// Bytes of one frame's pixels.
    pub fn frame_pixels(&self) -> usize {
        self.width * self.height * 3
    }

    /// The input tensor's bytes for `pixels` (frames one after the other).
    pub fn tensor(&self, pixels: &[u8]) -> Vec<u8> {
        if self.datatype == DataType::U8 && !self.channels_first {
            return pixels.to_vec();
        }
        let plane = self.width * self.height;
        let size = self.datatype.size();
        let mut out = vec![0u8; pixels.len() * size];
        for (frame, dst) in pixels
            .chunks_exact(plane * 3)
            .zip(out.chunks_exact_mut(plane * 3 * size))
        {
            for (i, &p) in frame.iter().enumerate() {
                let (pixel, channel) = (i / 3, i % 3);
                let at = if self.channels_first {
                    channel * plane + pixel
                } else {
                    i
                };
                let v = (f32::from(p) - self.mean) / self.scale;
                let dst = &mut dst[at * size..(at + 1) * size];
                match self.datatype {
                    DataType::F32 => dst.copy_from_slice(&v.to_le_bytes()),
                    DataType::F16 => dst.copy_from_slice(&f32_to_f16(v).to_le_bytes()),
                    _ => dst[0] = p,
                }
            }
        }
        out
    }
}

/// The ModelMetadata answer turned into what `ovinfer` reads from a model file.
#[derive(Debug, Clone)]
pub struct Model {
    /// The input as a port: `None` for -1 dimensions.
    pub input: crate::openvino::PortInfo,
    pub input_datatype: DataType,
    /// Output names and shapes (-1 as `None`), in the server's order.
    pub outputs: Vec<(String, Vec<Option<i64>>)>,
}

impl Model {
    /// Checks the metadata: one input of a type `ovinfer` feeds (UINT8, FP32, FP16).
    pub fn from_metadata(m: &ModelMetadataResponse) -> Result<Model, String> {
        let shape = |t: &TensorMetadata| -> Vec<Option<i64>> {
            t.shape.iter().map(|&d| (d >= 0).then_some(d)).collect()
        };
        let [input] = m.inputs.as_slice() else {
            return Err(format!(
                "has {} inputs ({}); ovinfer feeds models with exactly one image input",
                m.inputs.len(),
                m.inputs
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        };
        let (input_datatype, element_type) = match datatype(&input.datatype) {
            Some(DataType::U8) => (DataType::U8, ElementType::U8),
            Some(DataType::F32) => (DataType::F32, ElementType::F32),
            Some(DataType::F16) => (DataType::F16, ElementType::F16),
            _ => {
                return Err(format!(
                    "input '{}' is {}: ovinfer feeds UINT8, FP32 or FP16 inputs",
                    input.name, input.datatype
                ));
            }
        };
        if m.outputs.is_empty() {
            return Err("has no outputs".into());
        }
        for output in &m.outputs {
            if datatype(&output.datatype).is_none() {
                return Err(format!(
                    "output '{}' is {}: ovinfer reads numeric outputs",
                    output.name, output.datatype
                ));
            }
        }
        Ok(Model {
            input: crate::openvino::PortInfo {
                name: input.name.clone(),
                element_type,
                shape: shape(input),
            },
            input_datatype,
            outputs: m
                .outputs
                .iter()
                .map(|t| (t.name.clone(), shape(t)))
                .collect(),
        })
    }
}

/// The server's health as the requests see it.
struct Health {
    backoff: Backoff,
    /// No call before then (backing off after a failure).
    retry_at: Option<Instant>,
    last_error: String,
    /// Failing since the last success.
    failing: bool,
    /// The outage was reported (once per outage).
    reported: bool,
    /// Results came back after a reported outage (not yet logged).
    recovered: bool,
}

/// What the requests of one pool share.
pub struct Remote {
    pub client: Client,
    pub input_name: String,
    pub prep: Prep,
    /// Frames per request.
    pub batch: usize,
    /// Output names, in the order the decoders read them.
    pub outputs: Vec<String>,
    health: Mutex<Health>,
}

impl Remote {
    pub fn new(
        client: Client,
        input_name: String,
        prep: Prep,
        batch: usize,
        outputs: Vec<String>,
    ) -> Remote {
        Remote {
            client,
            input_name,
            prep,
            batch,
            outputs,
            health: Mutex::new(Health {
                backoff: Backoff::new(BACKOFF_FIRST, BACKOFF_MAX, random_u64()),
                retry_at: None,
                last_error: String::new(),
                failing: false,
                reported: false,
                recovered: false,
            }),
        }
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `None` when a call may be made now, else why not (backing off after a failure).
    fn backing_off(&self) -> Option<String> {
        let health = self.health();
        let wait = health.retry_at?.checked_duration_since(Instant::now())?;
        Some(format!(
            "not called for {} ms more after: {}",
            wait.as_millis(),
            health.last_error
        ))
    }

    fn succeeded(&self) {
        let mut health = self.health();
        health.backoff.reset();
        health.retry_at = None;
        if health.failing && health.reported {
            health.recovered = true;
        }
        health.failing = false;
        health.reported = false;
    }

    fn failed(&self, error: &str) {
        let mut health = self.health();
        health.last_error = error.to_string();
        health.failing = true;
        let now = Instant::now();
        // Requests in flight when the server went away fail together: one step of back-off.
        if health.retry_at.is_none_or(|t| t <= now) {
            health.retry_at = Some(now + health.backoff.next_delay());
        }
    }

    /// The last failure, once per outage (the first time it is asked after a success).
    pub fn take_outage(&self) -> Option<String> {
        let mut health = self.health();
        if !health.failing || health.reported {
            return None;
        }
        health.reported = true;
        Some(health.last_error.clone())
    }

    /// Whether results came back after a reported outage (once).
    pub fn take_recovery(&self) -> bool {
        std::mem::take(&mut self.health().recovered)
    }

    /// The last failure's reason.
    pub fn last_error(&self) -> String {
        self.health().last_error.clone()
    }

    /// The call for `pixels`, the pixels of as many frames as they hold.
    fn infer_request(&self, pixels: &[u8]) -> tonic::Request<ModelInferRequest> {
        let p = &self.prep;
        let frames = pixels.len() / p.frame_pixels().max(1);
        let shape = if p.channels_first {
            [frames, 3, p.height, p.width]
        } else {
            [frames, p.height, p.width, 3]
        };
        let options = &self.client.options;
        self.client.request(ModelInferRequest {
            model_name: options.model.clone(),
            model_version: options.version.clone(),
            inputs: vec![InferInputTensor {
                name: self.input_name.clone(),
                datatype: datatype_name(p.datatype).to_string(),
                shape: shape.iter().map(|&d| d as i64).collect(),
                ..Default::default()
            }],
            raw_input_contents: vec![p.tensor(pixels)],
            ..Default::default()
        })
    }

    /// The answer's outputs, in `outputs`' order, as f32.
    fn read(&self, answer: ModelInferResponse) -> Result<Outputs, String> {
        self.outputs
            .iter()
            .map(|name| {
                let i = answer
                    .outputs
                    .iter()
                    .position(|o| &o.name == name)
                    .ok_or_else(|| format!("the answer has no output '{name}'"))?;
                let tensor = &answer.outputs[i];
                let shape = tensor
                    .shape
                    .iter()
                    .map(|&d| usize::try_from(d))
                    .collect::<Result<Vec<usize>, _>>()
                    .map_err(|_| format!("output '{name}' has shape {:?}", tensor.shape))?;
                let dt = datatype(&tensor.datatype).ok_or_else(|| {
                    format!("output '{name}' is {}, not a number type", tensor.datatype)
                })?;
                let values = match answer.raw_output_contents.get(i) {
                    Some(raw) => to_f32(dt, raw)?,
                    None => contents_f32(tensor.contents.as_ref())
                        .ok_or_else(|| format!("output '{name}' came without its values"))?,
                };
                let count = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
                if count != Some(values.len()) {
                    return Err(format!(
                        "output '{name}' has shape {shape:?} and {} values",
                        values.len()
                    ));
                }
                Ok((shape, values))
            })
            .collect()
    }
}

/// What came of one call.
enum Outcome {
    Results(Outputs),
    /// Counted; the frames pass without results.
    Failed(String),
    /// The answer does not fit the model's metadata: an error.
    Invalid(String),
}

#[derive(Default)]
struct Done {
    outcome: Mutex<Option<Outcome>>,
    ready: Condvar,
}

impl Done {
    fn set(&self, outcome: Outcome) {
        *self.outcome.lock().unwrap_or_else(|e| e.into_inner()) = Some(outcome);
        self.ready.notify_all();
    }
}

/// One request of a remote pool.
pub struct RemoteRequest {
    remote: Arc<Remote>,
    /// The converter's pixels of `batch` frames.
    pixels: Vec<u8>,
    /// The call in flight (a new one per start: a late answer to an abandoned call is lost).
    done: Option<(Arc<Done>, Instant)>,
    outputs: Outputs,
}

impl RemoteRequest {
    pub fn new(remote: Arc<Remote>) -> RemoteRequest {
        let len = remote.prep.frame_pixels() * remote.batch;
        RemoteRequest {
            remote,
            pixels: vec![0; len],
            done: None,
            outputs: Vec::new(),
        }
    }

    pub fn input_bytes(&mut self) -> &mut [u8] {
        &mut self.pixels
    }

    /// Sends the call for the first `frames` frames (or, backing off, fails it at once without
    /// one). Batches of more than one frame are only taken by a model of a dynamic batch, so a
    /// batch a frame's end starts half full goes out with just its frames.
    pub fn start(&mut self, frames: usize) -> Result<(), String> {
        let done = Arc::new(Done::default());
        self.done = Some((done.clone(), Instant::now()));
        self.outputs.clear();
        if let Some(why) = self.remote.backing_off() {
            done.set(Outcome::Failed(why));
            return Ok(());
        }
        let remote = self.remote.clone();
        let frames = frames.clamp(1, remote.batch);
        let request = remote.infer_request(&self.pixels[..frames * remote.prep.frame_pixels()]);
        let mut client = remote.client.client.clone();
        let timeout = remote.client.options.timeout;
        runtime()?.spawn(async move {
            let outcome = match tokio::time::timeout(timeout, client.model_infer(request)).await {
                Err(_) => Outcome::Failed(format!(
                    "DEADLINE_EXCEEDED: no answer within remote-timeout ({} ms)",
                    timeout.as_millis()
                )),
                Ok(Err(status)) => Outcome::Failed(status_text(&status)),
                Ok(Ok(answer)) => match remote.read(answer.into_inner()) {
                    Ok(outputs) => Outcome::Results(outputs),
                    Err(e) => Outcome::Invalid(e),
                },
            };
            match &outcome {
                Outcome::Failed(e) => remote.failed(e),
                _ => remote.succeeded(),
            }
            done.set(outcome);
        });
        Ok(())
    }

    /// The latest the answer may come: the call's own timeout fires first; this bounds the
    /// wait even if the runtime could not run it.
    fn deadline(&self, started: Instant) -> Instant {
        started + self.remote.client.options.timeout + Duration::from_secs(1)
    }

    pub fn is_done(&self) -> bool {
        match &self.done {
            None => true,
            Some((done, started)) => {
                done.outcome
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .is_some()
                    || Instant::now() >= self.deadline(*started)
            }
        }
    }

    /// Waits for the call: `Ok(true)` with results, `Ok(false)` when it failed (the frames
    /// pass without results), `Err` when the answer does not fit the model.
    pub fn wait(&mut self) -> Result<bool, String> {
        let Some((done, started)) = self.done.take() else {
            return Ok(!self.outputs.is_empty());
        };
        let deadline = self.deadline(started);
        let mut outcome = done.outcome.lock().unwrap_or_else(|e| e.into_inner());
        while outcome.is_none() {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break;
            };
            outcome = done
                .ready
                .wait_timeout(outcome, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        match outcome.take() {
            Some(Outcome::Results(outputs)) => {
                self.outputs = outputs;
                Ok(true)
            }
            Some(Outcome::Failed(_)) => Ok(false),
            Some(Outcome::Invalid(e)) => Err(format!(
                "server {} answered model '{}' with {e}",
                self.remote.client.options.target.url, self.remote.client.options.model
            )),
            None => {
                self.remote.failed("no answer in time");
                Ok(false)
            }
        }
    }

    pub fn output_f32(&self, index: usize) -> Result<(Vec<usize>, &[f32]), String> {
        self.outputs
            .get(index)
            .map(|(shape, data)| (shape.clone(), data.as_slice()))
            .ok_or_else(|| format!("no output {index}"))
    }
}

/// Little-endian values of `dt` as f32.
fn to_f32(dt: DataType, raw: &[u8]) -> Result<Vec<f32>, String> {
    let size = dt.size();
    if !raw.len().is_multiple_of(size) {
        return Err(format!(
            "{} bytes of {} values",
            raw.len(),
            datatype_name(dt)
        ));
    }
    let values = raw.chunks_exact(size);
    let array = |c: &[u8]| -> [u8; 8] {
        let mut a = [0u8; 8];
        a[..c.len()].copy_from_slice(c);
        a
    };
    Ok(values
        .map(|c| {
            let a = array(c);
            match dt {
                DataType::Boolean | DataType::U8 => f32::from(c[0]),
                DataType::I8 => f32::from(c[0] as i8),
                DataType::U16 => f32::from(u16::from_le_bytes([a[0], a[1]])),
                DataType::I16 => f32::from(i16::from_le_bytes([a[0], a[1]])),
                DataType::U32 => u32::from_le_bytes([a[0], a[1], a[2], a[3]]) as f32,
                DataType::I32 => i32::from_le_bytes([a[0], a[1], a[2], a[3]]) as f32,
                DataType::U64 => u64::from_le_bytes(a) as f32,
                DataType::I64 => i64::from_le_bytes(a) as f32,
                DataType::F16 => f16_to_f32(u16::from_le_bytes([a[0], a[1]])),
                DataType::BF16 => f32::from_bits(u32::from(u16::from_le_bytes([a[0], a[1]])) << 16),
                DataType::F32 => f32::from_le_bytes([a[0], a[1], a[2], a[3]]),
                DataType::F64 => f64::from_le_bytes(a) as f32,
            }
        })
        .collect())
}

/// Values sent as typed contents instead of raw bytes.
fn contents_f32(c: Option<&InferTensorContents>) -> Option<Vec<f32>> {
    let c = c?;
    let lists: [Vec<f32>; 7] = [
        c.fp32_contents.clone(),
        c.fp64_contents.iter().map(|&v| v as f32).collect(),
        c.int_contents.iter().map(|&v| v as f32).collect(),
        c.int64_contents.iter().map(|&v| v as f32).collect(),
        c.uint_contents.iter().map(|&v| v as f32).collect(),
        c.uint64_contents.iter().map(|&v| v as f32).collect(),
        c.bool_contents
            .iter()
            .map(|&v| if v { 1.0 } else { 0.0 })
            .collect(),
    ];
    lists.into_iter().find(|l| !l.is_empty())
}

/// IEEE half to single precision.
fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let frac = u32::from(h & 0x3ff);
    let bits = match (exp, frac) {
        (0, 0) => sign,
        // Subnormal: frac * 2^-24.
        (0, _) => return (frac as f32) * 2f32.powi(-24) * sign_of(h),
        (0x1f, _) => sign | 0x7f80_0000 | (frac << 13),
        _ => sign | ((exp + 112) << 23) | (frac << 13),
    };
    f32::from_bits(bits)
}

fn sign_of(h: u16) -> f32 {
    if h >> 15 == 1 { -1.0 } else { 1.0 }
}

/// Single to half precision, rounded to nearest (inputs: pixel values in a small range).
fn f32_to_f16(v: f32) -> u16 {
    let bits = v.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exp = ((bits >> 23) & 0xff) as i32;
    let frac = bits & 0x7f_ffff;
    if exp == 0xff {
        return sign | 0x7c00 | if frac != 0 { 0x200 } else { 0 };
    }
    let e = exp - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    if e <= 0 {
        if e < -10 {
            return sign;
        }
        let m = (frac | 0x80_0000) >> (1 - e);
        return sign | ((m + 0x1000) >> 13) as u16;
    }
    let h = (sign as u32) | ((e as u32) << 10) | (frac >> 13);
    // Round half up on the dropped bits (a carry into the exponent is right).
    (h + ((frac >> 12) & 1)) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_parse_or_say_the_form() {
        let t = Target::parse("grpc://127.0.0.1:8001").expect("parses");
        assert_eq!((t.tls, t.host.as_str(), t.port), (false, "127.0.0.1", 8001));
        let t = Target::parse("grpcs://infer.example:443/").expect("parses");
        assert_eq!(
            (t.tls, t.host.as_str(), t.port),
            (true, "infer.example", 443)
        );
        for bad in [
            "http://h:1",
            "h:1",
            "grpc://h",
            "grpc://:1",
            "grpc://h:x",
            "grpc://h:1/v2",
        ] {
            let e = Target::parse(bad).expect_err(bad);
            assert!(e.contains("grpc://HOST:PORT"), "{e}");
        }
    }

    #[test]
    fn halves_round_trip() {
        for v in [0.0f32, 1.0, -1.0, 0.5, 0.003_921_569, 255.0, -0.25, 65504.0] {
            let back = f16_to_f32(f32_to_f16(v));
            assert!((back - v).abs() <= v.abs() / 1024.0, "{v} -> {back}");
        }
    }

    #[test]
    fn pixels_become_the_models_tensor() {
        let prep = Prep {
            width: 2,
            height: 1,
            channels_first: true,
            datatype: DataType::F32,
            mean: 127.5,
            scale: 127.5,
        };
        let t = prep.tensor(&[0, 255, 0, 255, 0, 255]);
        let v: Vec<f32> = t
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        // R of both pixels, then G, then B.
        assert_eq!(v, [-1.0, 1.0, 1.0, -1.0, -1.0, 1.0]);
        let u8_nhwc = Prep {
            datatype: DataType::U8,
            channels_first: false,
            ..prep
        };
        assert_eq!(u8_nhwc.tensor(&[1, 2, 3]), [1, 2, 3]);
    }

    #[test]
    fn outputs_of_every_type_read_as_f32() {
        assert_eq!(to_f32(DataType::U8, &[7]).unwrap(), [7.0]);
        assert_eq!(
            to_f32(DataType::I32, &(-3i32).to_le_bytes()).unwrap(),
            [-3.0]
        );
        assert_eq!(
            to_f32(DataType::F16, &0x3c00u16.to_le_bytes()).unwrap(),
            [1.0]
        );
        assert_eq!(to_f32(DataType::F64, &0.5f64.to_le_bytes()).unwrap(), [0.5]);
        assert!(to_f32(DataType::F32, &[0, 0, 0]).is_err());
    }

    fn tensor(name: &str, datatype: &str, shape: &[i64]) -> TensorMetadata {
        TensorMetadata {
            name: name.into(),
            datatype: datatype.into(),
            shape: shape.to_vec(),
        }
    }

    #[test]
    fn metadata_ovinfer_cannot_feed_is_refused_with_the_reason() {
        let ssd = ModelMetadataResponse {
            inputs: vec![tensor("image", "UINT8", &[-1, 300, 300, 3])],
            outputs: vec![tensor("detection_out", "FP32", &[1, 1, 100, 7])],
            ..Default::default()
        };
        let model = Model::from_metadata(&ssd).expect("the SSD");
        assert_eq!(model.input.shape, [None, Some(300), Some(300), Some(3)]);
        assert_eq!(model.input_datatype, DataType::U8);
        let two = ModelMetadataResponse {
            inputs: vec![tensor("a", "FP32", &[1]), tensor("b", "FP32", &[1])],
            ..ssd.clone()
        };
        let e = Model::from_metadata(&two).unwrap_err();
        assert!(e.contains("has 2 inputs (a, b)"), "{e}");
        let int = ModelMetadataResponse {
            inputs: vec![tensor("image", "INT64", &[1, 3, 8, 8])],
            ..ssd.clone()
        };
        let e = Model::from_metadata(&int).unwrap_err();
        assert!(
            e.contains("is INT64") && e.contains("UINT8, FP32 or FP16"),
            "{e}"
        );
        let text = ModelMetadataResponse {
            outputs: vec![tensor("label", "BYTES", &[1])],
            ..ssd
        };
        let e = Model::from_metadata(&text).unwrap_err();
        assert!(e.contains("output 'label' is BYTES"), "{e}");
    }

    /// A Remote for `batch` frames of 2x1 UINT8 NHWC pixels, two outputs; no call is made.
    fn remote(batch: usize) -> Remote {
        let client = Client::new(Options {
            target: Target::parse("grpc://127.0.0.1:1").expect("parses"),
            model: "m".into(),
            version: String::new(),
            timeout: Duration::from_secs(1),
            ca_file: None,
            authorization: Some("Bearer t".into()),
        })
        .expect("a lazy client");
        let prep = Prep {
            width: 2,
            height: 1,
            channels_first: false,
            datatype: DataType::U8,
            mean: 0.0,
            scale: 1.0,
        };
        Remote::new(
            client,
            "image".into(),
            prep,
            batch,
            vec!["a".into(), "b".into()],
        )
    }

    #[test]
    fn a_batch_goes_out_as_one_tensor_and_outputs_come_back_by_name() {
        let remote = remote(2);
        let request = remote.infer_request(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        assert_eq!(
            request
                .metadata()
                .get("authorization")
                .map(|v| v.to_str().ok()),
            Some(Some("Bearer t"))
        );
        let message = request.into_inner();
        assert_eq!(message.inputs[0].shape, [2, 1, 2, 3]);
        assert_eq!(message.inputs[0].datatype, "UINT8");
        assert_eq!(message.raw_input_contents[0].len(), 12);
        // The server's order is not the metadata's; values of any type come back as f32.
        use crate::kserve::proto::model_infer_response::InferOutputTensor;
        let output = |name: &str, datatype: &str, shape: &[i64]| InferOutputTensor {
            name: name.into(),
            datatype: datatype.into(),
            shape: shape.to_vec(),
            ..Default::default()
        };
        let answer = ModelInferResponse {
            outputs: vec![output("b", "INT32", &[2]), output("a", "FP16", &[2, 1])],
            raw_output_contents: vec![
                [7i32.to_le_bytes(), (-1i32).to_le_bytes()].concat(),
                [0x3c00u16.to_le_bytes(), 0xc000u16.to_le_bytes()].concat(),
            ],
            ..Default::default()
        };
        let read = remote.read(answer.clone()).expect("reads");
        assert_eq!(
            read,
            [(vec![2, 1], vec![1.0, -2.0]), (vec![2], vec![7.0, -1.0])]
        );
        let short = ModelInferResponse {
            outputs: vec![output("a", "FP16", &[2, 2]), answer.outputs[0].clone()],
            raw_output_contents: answer.raw_output_contents.iter().rev().cloned().collect(),
            ..Default::default()
        };
        let e = remote.read(short).unwrap_err();
        assert!(
            e.contains("output 'a' has shape [2, 2] and 2 values"),
            "{e}"
        );
        let missing = ModelInferResponse {
            outputs: vec![answer.outputs[1].clone()],
            raw_output_contents: vec![answer.raw_output_contents[1].clone()],
            ..Default::default()
        };
        assert!(remote.read(missing).unwrap_err().contains("no output 'b'"));
        // A batch started with one frame of two sends that frame only.
        let half = remote.infer_request(&[1, 2, 3, 4, 5, 6]).into_inner();
        assert_eq!(half.inputs[0].shape, [1, 1, 2, 3]);
        assert_eq!(half.raw_input_contents[0], [1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn a_failing_server_is_not_called_again_before_its_back_off() {
        let remote = remote(1);
        assert!(remote.backing_off().is_none());
        remote.failed("UNAVAILABLE: refused");
        let delay = remote.health().retry_at.expect("a retry time") - Instant::now();
        assert!(delay <= BACKOFF_FIRST, "{delay:?}");
        // Far enough for a loaded machine to run the rest before it ends.
        remote.health().retry_at = Some(Instant::now() + Duration::from_secs(60));
        let why = remote.backing_off().expect("backing off");
        assert!(why.contains("UNAVAILABLE: refused"), "{why}");
        assert_eq!(
            remote.take_outage().as_deref(),
            Some("UNAVAILABLE: refused")
        );
        assert_eq!(remote.take_outage(), None, "once per outage");
        // A request started now fails at once, with no call.
        let mut request = RemoteRequest::new(Arc::new(remote));
        request.start(1).expect("starts");
        assert!(request.is_done());
        assert_eq!(request.wait(), Ok(false));
        let remote = &request.remote;
        remote.succeeded();
        assert!(remote.take_recovery());
        assert!(remote.backing_off().is_none());
    }

    #[test]
    fn status_codes_have_their_protocol_names() {
        assert_eq!(code_name(tonic::Code::NotFound), "NOT_FOUND");
        assert_eq!(code_name(tonic::Code::Unavailable), "UNAVAILABLE");
        assert_eq!(
            code_name(tonic::Code::DeadlineExceeded),
            "DEADLINE_EXCEEDED"
        );
    }
}
