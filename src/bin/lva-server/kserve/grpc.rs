//! KServe v2 over gRPC (`inference.GRPCInferenceService`), on its own port (`grpc-listen`):
//! tonic's HTTP/2 server on connections this module accepts itself, so that they get the HTTP
//! side's TLS certificate (with ALPN `h2`, which gRPC clients require), its handshake timeout,
//! a bound on open connections (`max-connections`, counted apart from HTTP's) and its idle
//! timeout (`idle-timeout-ms`: a connection with no call open that long is closed).
//!
//! Every method but ServerLive and ServerReady needs the configured credentials in the
//! `authorization` metadata (`Bearer TOKEN` or `Basic BASE64`), else UNAUTHENTICATED, answered
//! from the call's headers before its message is read ([`Gate`]). Unknown model or version:
//! NOT_FOUND; a wrong request: INVALID_ARGUMENT with the reason; busy: UNAVAILABLE; a model
//! failing: INTERNAL. Messages are at most `max-body-bytes` (larger ones: OUT_OF_RANGE from
//! tonic).
//!
//! Places, as the REST side's admission: a ModelInfer call takes one of the inference places
//! (what the models admit: their `workers` + `max-queue`) from its headers, before tonic reads
//! its message, and keeps it until it is answered; each message of a ModelStreamInfer stream
//! takes one once it is read, for its inference. Metadata calls have places of their own, and
//! health calls need none, so neither waits behind inferences. A call waits for a place up to
//! `queue-timeout-ms` (then UNAVAILABLE), its data held back by HTTP/2 flow control. A unary
//! call's message must then arrive whole within `body-timeout-ms` (as a REST body), and a
//! stream's each message within that from its first byte: else DEADLINE_EXCEEDED, and the place
//! is free. Inference runs on tokio's blocking pool, admitted as the REST side's.
//! ModelStreamInfer (Triton's extension) answers each request of the stream in order.

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tonic::codegen::tokio_stream::Stream;
use tonic::codegen::tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;
use tonic::{Request, Response, Status, Streaming};

use super::proto::grpc_inference_service_server::{
    GrpcInferenceService, GrpcInferenceServiceServer,
};
use super::proto::{self, model_infer_response::InferOutputTensor};
use super::tensor::{self, Datatype, Number};
use super::{InferRequest, Input, InputData, Kserve, Output, Refusal, VERSION};
use crate::auth::Authenticator;

/// What the gRPC server is started with.
pub struct Options {
    /// ADDRESS:PORT (`grpc-listen`).
    pub listen: String,
    pub max_connections: usize,
    /// The TLS handshake must be over within this (`header-timeout-ms`).
    pub handshake_timeout: Duration,
    /// How long a busy answer is held back (`busy-delay-ms`).
    pub busy_delay: Duration,
    /// A connection with no call open this long is closed (`idle-timeout-ms`).
    pub idle_timeout: Duration,
    /// A request message must arrive whole within this (`body-timeout-ms`).
    pub message_timeout: Duration,
    /// How long a call waits for a place (`queue-timeout-ms`).
    pub place_timeout: Duration,
}

/// Metadata calls (not health) read or run at once.
const METADATA_CALLS: usize = 8;

/// Calls at once on one HTTP/2 connection.
const MAX_STREAMS: u32 = 32;

/// The gRPC status of a refusal.
pub fn status(refusal: Refusal) -> Status {
    let message = refusal.message();
    match refusal {
        Refusal::Invalid(_) => Status::invalid_argument(message),
        Refusal::NotFound(_) => Status::not_found(message),
        Refusal::Busy => Status::unavailable(message),
        Refusal::Internal(_) => Status::internal(message),
    }
}

/// The service.
#[derive(Clone)]
pub struct Grpc {
    kserve: Arc<Kserve>,
    busy_delay: Duration,
    places: Places,
}

/// The methods that need no credentials (health, as `/v2/health/*` and `/healthz`).
const OPEN: [&str; 2] = [
    "/inference.GRPCInferenceService/ServerLive",
    "/inference.GRPCInferenceService/ServerReady",
];

const MODEL_INFER: &str = "/inference.GRPCInferenceService/ModelInfer";
const MODEL_STREAM_INFER: &str = "/inference.GRPCInferenceService/ModelStreamInfer";

/// The places calls take, over all connections: inferences (ModelInfer calls and the messages
/// of streams) and metadata calls, each waited for up to `wait`.
#[derive(Clone)]
struct Places {
    inference: Arc<Semaphore>,
    metadata: Arc<Semaphore>,
    wait: Duration,
}

impl Places {
    async fn take(&self, pool: &Arc<Semaphore>) -> Result<OwnedSemaphorePermit, Status> {
        match tokio::time::timeout(self.wait, pool.clone().acquire_owned()).await {
            Ok(Ok(place)) => Ok(place),
            // Waited queue-timeout-ms (or the server is stopping).
            _ => Err(status(Refusal::Busy)),
        }
    }

    async fn inference(&self) -> Result<OwnedSemaphorePermit, Status> {
        self.take(&self.inference).await
    }
}

/// What a connection tells its calls (tonic puts it in each request's extensions).
#[derive(Clone)]
struct ConnInfo {
    remote: Option<SocketAddr>,
    calls: Calls,
}

/// The calls open on one connection, for its idle timeout.
#[derive(Clone)]
struct Calls(Arc<std::sync::Mutex<CallsState>>);

struct CallsState {
    open: usize,
    /// Since when no call has been open.
    idle_since: Instant,
}

impl Calls {
    fn new() -> Calls {
        Calls(Arc::new(std::sync::Mutex::new(CallsState {
            open: 0,
            idle_since: Instant::now(),
        })))
    }

    fn with<T>(&self, f: impl FnOnce(&mut CallsState) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// A call is open until the guard is dropped.
    fn open(&self) -> OpenCall {
        self.with(|s| s.open += 1);
        OpenCall(self.clone())
    }

    /// When the connection is idle too long, if no call is open.
    fn idle_deadline(&self, idle: Duration) -> Option<Instant> {
        self.with(|s| (s.open == 0).then_some(s.idle_since + idle))
    }
}

/// An open call: its answer's body holds it until the answer's end.
struct OpenCall(Calls);

impl Drop for OpenCall {
    fn drop(&mut self) {
        self.0.with(|s| {
            s.open -= 1;
            s.idle_since = Instant::now();
        });
    }
}

/// An answer's body with its call's [`OpenCall`] and place (a unary call's; none for streams).
struct Answer {
    body: tonic::body::Body,
    _open: OpenCall,
    _place: Option<OwnedSemaphorePermit>,
}

impl hyper::body::Body for Answer {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Status>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// A request's body with its read deadline: a unary call's message (and the end of its body)
/// within `timeout` of the call getting its place, a stream's each message within `timeout`
/// of its first byte. Past it, a DEADLINE_EXCEEDED error, which tonic answers with.
struct Paced<B> {
    inner: B,
    timeout: Duration,
    unary: bool,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The 5-byte prefix (flag, length) of the message being received, as far as it came.
    prefix: Vec<u8>,
    /// Bytes of the message being received still to come, once its prefix is whole.
    left: usize,
    /// For the log line: the peer and the method.
    who: String,
}

impl<B> Paced<B> {
    fn new(inner: B, timeout: Duration, unary: bool, who: String) -> Paced<B> {
        let deadline = unary.then(|| Box::pin(tokio::time::sleep(timeout)));
        Paced {
            inner,
            timeout,
            unary,
            deadline,
            prefix: Vec::with_capacity(5),
            left: 0,
            who,
        }
    }

    /// Follows the gRPC framing of `data`: a stream's deadline starts at a message's first
    /// byte and ends with its last.
    fn received(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.prefix.len() < 5 {
                if self.prefix.is_empty() && !self.unary {
                    self.deadline = Some(Box::pin(tokio::time::sleep(self.timeout)));
                }
                let n = (5 - self.prefix.len()).min(data.len());
                self.prefix.extend_from_slice(&data[..n]);
                data = &data[n..];
                if self.prefix.len() == 5 {
                    let len = u32::from_be_bytes([
                        self.prefix[1],
                        self.prefix[2],
                        self.prefix[3],
                        self.prefix[4],
                    ]);
                    self.left = usize::try_from(len).unwrap_or(usize::MAX);
                }
            } else {
                let n = self.left.min(data.len());
                self.left -= n;
                data = &data[n..];
            }
            if self.prefix.len() == 5 && self.left == 0 {
                self.prefix.clear();
                if !self.unary {
                    self.deadline = None;
                }
            }
        }
    }
}

impl<B> hyper::body::Body for Paced<B>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: Into<tonic::codegen::StdError>,
{
    type Data = Bytes;
    type Error = tonic::codegen::StdError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        let this = self.as_mut().get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received(data);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => {
                this.deadline = None;
                Poll::Ready(None)
            }
            Poll::Pending => {
                let due = this
                    .deadline
                    .as_mut()
                    .is_some_and(|sleep| sleep.as_mut().poll(cx).is_ready());
                if !due {
                    return Poll::Pending;
                }
                this.deadline = None;
                let ms = this.timeout.as_millis();
                eprintln!(
                    "lva-server: {}: the request message did not arrive within \
                     body-timeout-ms ({ms} ms)",
                    this.who
                );
                let status = Status::deadline_exceeded(format!(
                    "the request message did not arrive within body-timeout-ms ({ms} ms)"
                ));
                Poll::Ready(Some(Err(Box::new(status))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
}

/// In front of the service, on each call's HTTP/2 request before tonic reads its message:
/// credentials (UNAUTHENTICATED without them), then a place (see the module's doc), the read
/// deadline on the request's body and the call counted open on its connection until its answer
/// ends.
#[derive(Clone)]
struct Gate<S> {
    inner: S,
    auth: Option<Authenticator>,
    places: Places,
    message_timeout: Duration,
}

impl<S, B> tower::Service<http::Request<B>> for Gate<S>
where
    S: tower::Service<http::Request<Paced<B>>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path().to_string();
        let info = request.extensions().get::<ConnInfo>().cloned();
        let peer = info
            .as_ref()
            .and_then(|i| i.remote)
            .map_or_else(|| "?".into(), |a| a.to_string());
        let method = path.rsplit('/').next().unwrap_or("?").to_string();
        if let Some(auth) = &self.auth
            && !OPEN.contains(&path.as_str())
        {
            let credentials = request
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            if !auth.allows(credentials) {
                let started = Instant::now();
                let status = Status::unauthenticated(
                    "credentials missing or wrong: send authorization metadata (Basic or Bearer)",
                );
                log::<()>(&method, "", &Err(status.clone()), started, &peer);
                return Box::pin(async move { Ok(status.into_http()) });
            }
        }
        let open = info.map(|i| i.calls.open());
        // The service that was made ready goes into the future; a clone stays for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let places = self.places.clone();
        let timeout = self.message_timeout;
        Box::pin(async move {
            let started = Instant::now();
            let pool = match path.as_str() {
                MODEL_INFER => Some(&places.inference),
                // Each message takes an inference place once read; health takes none.
                MODEL_STREAM_INFER => None,
                p if OPEN.contains(&p) => None,
                _ => Some(&places.metadata),
            };
            let place = match pool {
                Some(pool) => match places.take(pool).await {
                    Ok(place) => Some(place),
                    Err(status) => {
                        log::<()>(&method, "", &Err(status.clone()), started, &peer);
                        return Ok(status.into_http());
                    }
                },
                None => None,
            };
            let unary = path != MODEL_STREAM_INFER;
            let who = format!("{peer}: gRPC {method}");
            let request = request.map(|body| Paced::new(body, timeout, unary, who));
            let response = inner.call(request).await?;
            Ok(match open {
                None => response,
                Some(open) => response.map(|body| {
                    tonic::body::Body::new(Answer {
                        body,
                        _open: open,
                        _place: place,
                    })
                }),
            })
        })
    }
}

impl Grpc {
    /// One inference, on the blocking pool.
    async fn infer(
        &self,
        r: proto::ModelInferRequest,
    ) -> Result<proto::ModelInferResponse, Status> {
        let served = self
            .kserve
            .model(&r.model_name, Some(&r.model_version))
            .map_err(status)?
            .clone();
        let Some(ticket) = served.admit() else {
            tokio::time::sleep(self.busy_delay).await;
            return Err(status(Refusal::Busy));
        };
        let kserve = self.kserve.clone();
        tokio::task::spawn_blocking(move || {
            let (name, id) = (served.name().to_string(), r.id.clone());
            let request = request(r)?;
            let outputs = kserve.infer(ticket, request)?;
            Ok(response(name, id, outputs))
        })
        .await
        .map_err(|e| {
            eprintln!("lva-server: KServe gRPC inference panicked: {e}");
            Status::internal("inference failed: the worker panicked")
        })?
        .map_err(status)
    }
}

/// One line per call on stderr, as the HTTP side's access log.
fn log<T>(method: &str, model: &str, result: &Result<T, Status>, started: Instant, peer: &str) {
    let code = match result {
        Ok(_) => "OK".to_string(),
        Err(s) => format!("{:?}", s.code()),
    };
    let line = format!(
        "{} {code} gRPC {method} model={} ms={:.1} peer={peer}\n",
        crate::rfc3339(SystemTime::now()),
        if model.is_empty() { "-" } else { model },
        started.elapsed().as_secs_f64() * 1000.0,
    );
    let _ = std::io::stderr().write_all(line.as_bytes());
}

fn peer<T>(request: &Request<T>) -> String {
    request
        .extensions()
        .get::<ConnInfo>()
        .and_then(|i| i.remote)
        .map_or_else(|| "?".into(), |a| a.to_string())
}

/// The request as the protocol-neutral [`InferRequest`].
fn request(r: proto::ModelInferRequest) -> Result<InferRequest, Refusal> {
    let invalid = |m: String| Refusal::Invalid(m);
    if r.parameters.contains_key("classification")
        || r.outputs
            .iter()
            .any(|o| o.parameters.contains_key("classification"))
    {
        return Err(invalid(
            "the classification extension is not supported".into(),
        ));
    }
    if !r.raw_input_contents.is_empty() && r.raw_input_contents.len() != r.inputs.len() {
        return Err(invalid(format!(
            "raw_input_contents has {} entries for {} inputs: give one per input, or none",
            r.raw_input_contents.len(),
            r.inputs.len()
        )));
    }
    let mut raw = r.raw_input_contents.into_iter();
    let mut inputs = Vec::with_capacity(r.inputs.len());
    for input in r.inputs {
        if input
            .parameters
            .keys()
            .any(|k| k.starts_with("shared_memory"))
        {
            return Err(invalid(format!(
                "input '{}': shared memory is not supported: send the data in the request",
                input.name
            )));
        }
        let data = match raw.next() {
            Some(bytes) => InputData::Raw(Bytes::from(bytes)),
            None => contents(
                &input.name,
                &input.datatype,
                input.contents.unwrap_or_default(),
            )?,
        };
        inputs.push(Input {
            name: input.name,
            datatype: input.datatype,
            shape: input.shape,
            data,
        });
    }
    Ok(InferRequest {
        id: r.id,
        inputs,
        outputs: r.outputs.into_iter().map(|o| o.name).collect(),
    })
}

/// An input's typed contents as little-endian bytes (or BYTES elements).
fn contents(
    name: &str,
    datatype: &str,
    c: proto::InferTensorContents,
) -> Result<InputData, Refusal> {
    use gstovlva::openvino::DataType as D;
    let invalid = |m: String| Refusal::Invalid(format!("input '{name}': {m}"));
    let dt = Datatype::parse(datatype).ok_or_else(|| {
        invalid(format!(
            "'{datatype}' is not a KServe data type ({})",
            tensor::DATATYPES
        ))
    })?;
    let d = match dt {
        Datatype::Bytes => {
            return Ok(InputData::Elements(
                c.bytes_contents.into_iter().map(Bytes::from).collect(),
            ));
        }
        Datatype::Fixed(d) => d,
    };
    let mut out = Vec::new();
    let mut push = |v: Number| tensor::push_value(d, v, &mut out).map_err(invalid);
    match d {
        D::Boolean => c
            .bool_contents
            .into_iter()
            .try_for_each(|v| push(Number::Bool(v)))?,
        D::I8 | D::I16 | D::I32 => c
            .int_contents
            .into_iter()
            .try_for_each(|v| push(Number::Int(v.into())))?,
        D::I64 => c
            .int64_contents
            .into_iter()
            .try_for_each(|v| push(Number::Int(v.into())))?,
        D::U8 | D::U16 | D::U32 => c
            .uint_contents
            .into_iter()
            .try_for_each(|v| push(Number::Int(v.into())))?,
        D::U64 => c
            .uint64_contents
            .into_iter()
            .try_for_each(|v| push(Number::Int(v.into())))?,
        D::F32 => {
            out.reserve(c.fp32_contents.len() * 4);
            c.fp32_contents
                .iter()
                .for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
        }
        D::F64 => {
            out.reserve(c.fp64_contents.len() * 8);
            c.fp64_contents
                .iter()
                .for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
        }
        D::F16 | D::BF16 => {
            return Err(invalid(format!(
                "{datatype} has no typed contents: send it in raw_input_contents"
            )));
        }
    }
    Ok(InputData::Raw(out.into()))
}

/// The response: every output in `raw_output_contents`, as Triton answers (tritonclient reads
/// them from there).
fn response(model: String, id: String, outputs: Vec<Output>) -> proto::ModelInferResponse {
    let described = outputs
        .iter()
        .map(|o| InferOutputTensor {
            name: o.name.clone(),
            datatype: o.datatype().to_string(),
            shape: o.shape.clone(),
            parameters: Default::default(),
            contents: None,
        })
        .collect();
    proto::ModelInferResponse {
        model_name: model,
        model_version: VERSION.to_string(),
        id,
        parameters: Default::default(),
        outputs: described,
        raw_output_contents: outputs.into_iter().map(|o| o.data).collect(),
    }
}

type AnswerStream =
    Pin<Box<dyn Stream<Item = Result<proto::ModelStreamInferResponse, Status>> + Send>>;

#[tonic::async_trait]
impl GrpcInferenceService for Grpc {
    async fn server_live(
        &self,
        _: Request<proto::ServerLiveRequest>,
    ) -> Result<Response<proto::ServerLiveResponse>, Status> {
        Ok(Response::new(proto::ServerLiveResponse { live: true }))
    }

    async fn server_ready(
        &self,
        _: Request<proto::ServerReadyRequest>,
    ) -> Result<Response<proto::ServerReadyResponse>, Status> {
        Ok(Response::new(proto::ServerReadyResponse {
            ready: self.kserve.ready(),
        }))
    }

    async fn model_ready(
        &self,
        request: Request<proto::ModelReadyRequest>,
    ) -> Result<Response<proto::ModelReadyResponse>, Status> {
        let r = request.into_inner();
        let model = self
            .kserve
            .model(&r.name, Some(&r.version))
            .map_err(status)?;
        Ok(Response::new(proto::ModelReadyResponse {
            ready: model.ready(),
        }))
    }

    async fn server_metadata(
        &self,
        _: Request<proto::ServerMetadataRequest>,
    ) -> Result<Response<proto::ServerMetadataResponse>, Status> {
        Ok(Response::new(proto::ServerMetadataResponse {
            name: super::SERVER_NAME.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            extensions: super::EXTENSIONS.iter().map(|e| e.to_string()).collect(),
        }))
    }

    async fn model_metadata(
        &self,
        request: Request<proto::ModelMetadataRequest>,
    ) -> Result<Response<proto::ModelMetadataResponse>, Status> {
        let r = request.into_inner();
        let model = self
            .kserve
            .model(&r.name, Some(&r.version))
            .map_err(status)?;
        let tensors = |ports: &[super::model::Port]| {
            ports
                .iter()
                .map(|p| proto::model_metadata_response::TensorMetadata {
                    name: p.name.clone(),
                    datatype: p.datatype(),
                    shape: p.shape_i64(),
                })
                .collect()
        };
        Ok(Response::new(proto::ModelMetadataResponse {
            name: model.name().to_string(),
            versions: vec![VERSION.to_string()],
            platform: "openvino".into(),
            inputs: tensors(&model.inputs),
            outputs: tensors(&model.outputs),
        }))
    }

    async fn model_infer(
        &self,
        request: Request<proto::ModelInferRequest>,
    ) -> Result<Response<proto::ModelInferResponse>, Status> {
        let started = Instant::now();
        let peer = peer(&request);
        let model = request.get_ref().model_name.clone();
        let result = self.infer(request.into_inner()).await;
        log("ModelInfer", &model, &result, started, &peer);
        result.map(Response::new)
    }

    type ModelStreamInferStream = AnswerStream;

    async fn model_stream_infer(
        &self,
        request: Request<Streaming<proto::ModelInferRequest>>,
    ) -> Result<Response<AnswerStream>, Status> {
        let peer = peer(&request);
        let mut stream = request.into_inner();
        let (tx, rx) = mpsc::channel(4);
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                let r = match stream.message().await {
                    Ok(Some(r)) => r,
                    Ok(None) => break,
                    Err(status) => {
                        let _ = tx.send(Err(status)).await;
                        break;
                    }
                };
                let started = Instant::now();
                let model = r.model_name.clone();
                let id = r.id.clone();
                // As a ModelInfer call, the inference takes a place (freed once answered).
                let result = async {
                    let _place = this.places.inference().await?;
                    this.infer(r).await
                }
                .await;
                log("ModelStreamInfer", &model, &result, started, &peer);
                let answer = match result {
                    Ok(response) => proto::ModelStreamInferResponse {
                        error_message: String::new(),
                        infer_response: Some(response),
                    },
                    // The error names the request it answers.
                    Err(status) => proto::ModelStreamInferResponse {
                        error_message: status.message().to_string(),
                        infer_response: Some(proto::ModelInferResponse {
                            model_name: model,
                            model_version: VERSION.into(),
                            id,
                            ..Default::default()
                        }),
                    },
                };
                if tx.send(Ok(answer)).await.is_err() {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// A TCP or TLS connection, holding its place among `max-connections` while it is open, and
/// ended (its reads end, so that hyper closes it) once no call has been open for `idle`.
struct Conn {
    stream: Stream2,
    info: ConnInfo,
    idle: Duration,
    /// Wakes the connection when it may have been idle too long.
    timer: Pin<Box<tokio::time::Sleep>>,
    _slot: OwnedSemaphorePermit,
}

impl Conn {
    /// True once the connection has had no call open for `idle`; else the timer is set to
    /// look again.
    fn idle_out(&mut self, cx: &mut Context<'_>) -> bool {
        let now = Instant::now();
        // With calls open, looked at again an idle time later.
        let at = self
            .info
            .calls
            .idle_deadline(self.idle)
            .unwrap_or(now + self.idle);
        if at <= now {
            return true;
        }
        let at = tokio::time::Instant::from_std(at);
        if self.timer.deadline() != at {
            self.timer.as_mut().reset(at);
        }
        // Registers the wake-up (a timer in the future is pending).
        let _ = self.timer.as_mut().poll(cx);
        false
    }
}

enum Stream2 {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl Connected for Conn {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> ConnInfo {
        self.info.clone()
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let poll = match &mut this.stream {
            Stream2::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream2::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        };
        // Nothing to read and idle too long: the end of the stream, as if the client had left.
        if poll.is_pending() && this.idle_out(cx) {
            return Poll::Ready(Ok(()));
        }
        poll
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match &mut self.get_mut().stream {
            Stream2::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream2::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match &mut self.get_mut().stream {
            Stream2::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream2::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.stream {
            Stream2::Plain(s) => s.is_write_vectored(),
            Stream2::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.get_mut().stream {
            Stream2::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream2::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.get_mut().stream {
            Stream2::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream2::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Returns once the shutdown flag is true (or its sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Binds `options.listen` and serves gRPC there until `shutdown` turns true (then the calls in
/// flight finish). Returns the address bound and the server's task.
pub async fn start(
    options: Options,
    kserve: Arc<Kserve>,
    auth: Option<Authenticator>,
    tls: Option<TlsAcceptor>,
    shutdown: watch::Receiver<bool>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), String> {
    let listener = TcpListener::bind(&options.listen)
        .await
        .map_err(|e| format!("cannot listen for gRPC on {}: {e}", options.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    // gRPC clients insist on HTTP/2 chosen by ALPN.
    let tls = tls.map(|t| {
        let mut config = (**t.config()).clone();
        config.alpn_protocols = vec![b"h2".to_vec()];
        TlsAcceptor::from(Arc::new(config))
    });
    let (tx, rx) = mpsc::channel::<Result<Conn, std::io::Error>>(16);
    let slots = Arc::new(Semaphore::new(options.max_connections.max(1)));
    let handshake = options.handshake_timeout;
    let idle = options.idle_timeout;
    let mut stop_accepting = shutdown.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, remote) = tokio::select! {
                () = stopped(&mut stop_accepting) => break,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        eprintln!("lva-server: gRPC accept: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            // Over max-connections: closed at once (gRPC clients retry with back-off).
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let info = ConnInfo {
                remote: Some(remote),
                calls: Calls::new(),
            };
            let (tx, tls) = (tx.clone(), tls.clone());
            tokio::spawn(async move {
                let stream = match tls {
                    None => Stream2::Plain(tcp),
                    Some(tls) => match tokio::time::timeout(handshake, tls.accept(tcp)).await {
                        Ok(Ok(s)) => Stream2::Tls(Box::new(s)),
                        _ => return,
                    },
                };
                let _ = tx
                    .send(Ok(Conn {
                        stream,
                        info,
                        idle,
                        timer: Box::pin(tokio::time::sleep(idle)),
                        _slot: slot,
                    }))
                    .await;
            });
        }
    });
    let max_message = usize::try_from(kserve.max_body).unwrap_or(usize::MAX);
    let places = Places {
        inference: Arc::new(Semaphore::new(kserve.capacity())),
        metadata: Arc::new(Semaphore::new(METADATA_CALLS)),
        wait: options.place_timeout,
    };
    let message_timeout = options.message_timeout;
    let service = GrpcInferenceServiceServer::new(Grpc {
        kserve,
        busy_delay: options.busy_delay,
        places: places.clone(),
    })
    .max_decoding_message_size(max_message)
    .max_encoding_message_size(usize::MAX);
    let mut stop = shutdown;
    let server = tonic::transport::Server::builder()
        .max_concurrent_streams(MAX_STREAMS)
        // A peer gone without a word, calls still open: pinged every idle time, closed when
        // it does not answer.
        .http2_keepalive_interval(Some(idle))
        .layer(tower::layer::layer_fn(move |inner| Gate {
            inner,
            auth: auth.clone(),
            places: places.clone(),
            message_timeout,
        }))
        .add_service(service)
        .serve_with_incoming_shutdown(ReceiverStream::new(rx), async move {
            stopped(&mut stop).await;
        });
    let task = tokio::spawn(async move {
        if let Err(e) = server.await {
            eprintln!("lva-server: gRPC server: {e}");
        }
    });
    Ok((addr, task))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(
        name: &str,
        datatype: &str,
        contents: proto::InferTensorContents,
    ) -> proto::model_infer_request::InferInputTensor {
        proto::model_infer_request::InferInputTensor {
            name: name.into(),
            datatype: datatype.into(),
            shape: vec![2],
            parameters: Default::default(),
            contents: Some(contents),
        }
    }

    fn raw(data: &InputData) -> Vec<u8> {
        match data {
            InputData::Raw(r) => r.to_vec(),
            InputData::Elements(_) => panic!("elements"),
        }
    }

    /// A request body with frames given in advance, then nothing more (never ends).
    struct Frames(std::collections::VecDeque<Bytes>);

    impl hyper::body::Body for Frames {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
            match self.0.pop_front() {
                Some(b) => Poll::Ready(Some(Ok(hyper::body::Frame::data(b)))),
                None => Poll::Pending,
            }
        }
    }

    fn paced(frames: &[&[u8]], unary: bool) -> Paced<Frames> {
        let frames = frames.iter().map(|f| Bytes::copy_from_slice(f)).collect();
        Paced::new(
            Frames(frames),
            Duration::from_millis(100),
            unary,
            "test".into(),
        )
    }

    /// Polls `body` until it has no frame ready: the frames' bytes, and the error if it ended
    /// with one.
    async fn drain(body: &mut Paced<Frames>) -> (usize, Option<Status>) {
        use http_body_util::BodyExt;
        let mut bytes = 0;
        loop {
            match tokio::time::timeout(Duration::from_millis(20), body.frame()).await {
                Err(_) | Ok(None) => return (bytes, None),
                Ok(Some(Ok(frame))) => bytes += frame.data_ref().map_or(0, |d| d.len()),
                Ok(Some(Err(e))) => {
                    let status = e.downcast::<Status>().expect("a status");
                    return (bytes, Some(*status));
                }
            }
        }
    }

    #[tokio::test]
    async fn a_streams_deadline_runs_from_a_messages_first_byte_to_its_last() {
        // A message of 3 bytes whose prefix and body come in pieces, then the next's first byte.
        let mut body = paced(&[&[0, 0, 0], &[0, 3, 1], &[2, 3], &[0]], false);
        assert!(
            body.deadline.is_none(),
            "no deadline before a message starts"
        );
        let (bytes, status) = drain(&mut body).await;
        assert_eq!((bytes, status.is_none()), (9, true));
        assert!(body.deadline.is_some(), "the next message has started");
        assert_eq!((body.prefix.len(), body.left), (1, 0));
        // That message never ends: DEADLINE_EXCEEDED after the timeout.
        tokio::time::sleep(Duration::from_millis(150)).await;
        let (_, status) = drain(&mut body).await;
        let status = status.expect("the deadline passed");
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
        assert!(
            status.message().contains("body-timeout-ms (100 ms)"),
            "{status:?}"
        );
        // Whole messages in one frame leave no deadline behind.
        let mut body = paced(&[&[0, 0, 0, 0, 1, 7, 0, 0, 0, 0, 0]], false);
        let (bytes, status) = drain(&mut body).await;
        assert_eq!((bytes, status.is_none()), (11, true));
        assert!(body.deadline.is_none());
    }

    #[tokio::test]
    async fn a_unary_calls_deadline_runs_until_its_body_ends() {
        // The whole message came, but the request never ends: still cut at the deadline.
        let mut body = paced(&[&[0, 0, 0, 0, 1, 7]], true);
        let (bytes, status) = drain(&mut body).await;
        assert_eq!((bytes, status.is_none()), (6, true));
        assert!(body.deadline.is_some());
        tokio::time::sleep(Duration::from_millis(150)).await;
        let (_, status) = drain(&mut body).await;
        assert_eq!(
            status.map(|s| s.code()),
            Some(tonic::Code::DeadlineExceeded)
        );
    }

    #[test]
    fn typed_contents_become_little_endian_bytes() {
        let r = proto::ModelInferRequest {
            id: "7".into(),
            inputs: vec![
                input(
                    "a",
                    "INT16",
                    proto::InferTensorContents {
                        int_contents: vec![-1, 2],
                        ..Default::default()
                    },
                ),
                input(
                    "b",
                    "FP32",
                    proto::InferTensorContents {
                        fp32_contents: vec![1.5, 2.0],
                        ..Default::default()
                    },
                ),
                input(
                    "c",
                    "BYTES",
                    proto::InferTensorContents {
                        bytes_contents: vec![b"x".to_vec(), vec![]],
                        ..Default::default()
                    },
                ),
            ],
            ..Default::default()
        };
        let req = request(r).unwrap();
        assert_eq!(req.id, "7");
        assert_eq!(raw(&req.inputs[0].data), vec![0xff, 0xff, 2, 0]);
        let mut want = 1.5f32.to_le_bytes().to_vec();
        want.extend_from_slice(&2f32.to_le_bytes());
        assert_eq!(raw(&req.inputs[1].data), want);
        assert!(matches!(&req.inputs[2].data, InputData::Elements(e) if e.len() == 2));
    }

    #[test]
    fn contents_out_of_range_and_raw_counts_are_refused() {
        let r = proto::ModelInferRequest {
            inputs: vec![input(
                "a",
                "UINT8",
                proto::InferTensorContents {
                    uint_contents: vec![1, 300],
                    ..Default::default()
                },
            )],
            ..Default::default()
        };
        assert_eq!(
            request(r).unwrap_err().message(),
            "input 'a': 300 is out of the range of UINT8"
        );
        let r = proto::ModelInferRequest {
            inputs: vec![input("a", "UINT8", Default::default())],
            raw_input_contents: vec![vec![1], vec![2]],
            ..Default::default()
        };
        assert_eq!(
            request(r).unwrap_err().message(),
            "raw_input_contents has 2 entries for 1 inputs: give one per input, or none"
        );
        assert_eq!(
            status(Refusal::NotFound("x".into())).code(),
            tonic::Code::NotFound
        );
        assert_eq!(status(Refusal::Busy).code(), tonic::Code::Unavailable);
    }
}
