//! KServe v2 over gRPC (`inference.GRPCInferenceService`), on its own port (`grpc-listen`):
//! tonic's HTTP/2 server on connections this module accepts itself, so that they get the HTTP
//! side's TLS certificate (with ALPN `h2`, which gRPC clients require), its handshake timeout
//! and a bound on open connections (`max-connections`, counted apart from HTTP's).
//!
//! Every method but ServerLive and ServerReady needs the configured credentials in the
//! `authorization` metadata (`Bearer TOKEN` or `Basic BASE64`), else UNAUTHENTICATED, answered
//! from the call's headers before its message is read ([`Gate`]). Unknown model or version:
//! NOT_FOUND; a wrong request: INVALID_ARGUMENT with the reason; busy: UNAVAILABLE; a model
//! failing: INTERNAL. Messages are at most `max-body-bytes` (larger ones: OUT_OF_RANGE from
//! tonic), and tonic reads a message whole before the method runs, so the gate also bounds the
//! calls being read or run at once, over all connections, by what the models admit (their
//! `workers` + `max-queue`, plus a few for metadata): the others wait, their data held back by
//! HTTP/2 flow control. Inference runs on tokio's blocking pool, admitted as the REST side's.
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
use tonic::transport::server::{Connected, TcpConnectInfo};
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
}

/// Calls read or run at once beyond the inferences the models admit (metadata, health).
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
}

/// The methods that need no credentials (health, as `/v2/health/*` and `/healthz`).
const OPEN: [&str; 2] = [
    "/inference.GRPCInferenceService/ServerLive",
    "/inference.GRPCInferenceService/ServerReady",
];

/// In front of the service, on each call's HTTP/2 request before tonic reads its message:
/// credentials (UNAUTHENTICATED without them), then a place among the calls being read or run
/// at once, over all connections (a call waits for one).
#[derive(Clone)]
struct Gate<S> {
    inner: S,
    auth: Option<Authenticator>,
    places: Arc<Semaphore>,
}

impl<S, B> tower::Service<http::Request<B>> for Gate<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
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
                let peer = request
                    .extensions()
                    .get::<TcpConnectInfo>()
                    .and_then(|i| i.remote_addr)
                    .map_or_else(|| "?".into(), |a| a.to_string());
                let method = path.rsplit('/').next().unwrap_or("?");
                log::<()>(method, "", &Err(status.clone()), started, &peer);
                return Box::pin(async move { Ok(status.into_http()) });
            }
        }
        // The service that was made ready goes into the future; a clone stays for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let places = self.places.clone();
        Box::pin(async move {
            let _place = places.acquire_owned().await;
            inner.call(request).await
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
        .remote_addr()
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
                let result = this.infer(r).await;
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

/// A TCP or TLS connection, holding its place among `max-connections` while it is open.
struct Conn {
    stream: Stream2,
    info: TcpConnectInfo,
    _slot: OwnedSemaphorePermit,
}

enum Stream2 {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl Connected for Conn {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.info.clone()
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match &mut self.get_mut().stream {
            Stream2::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream2::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
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
            let info = TcpConnectInfo {
                local_addr: tcp.local_addr().ok(),
                remote_addr: Some(remote),
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
                        _slot: slot,
                    }))
                    .await;
            });
        }
    });
    let max_message = usize::try_from(kserve.max_body).unwrap_or(usize::MAX);
    let places = Arc::new(Semaphore::new(kserve.capacity() + METADATA_CALLS));
    let service = GrpcInferenceServiceServer::new(Grpc {
        kserve,
        busy_delay: options.busy_delay,
    })
    .max_decoding_message_size(max_message)
    .max_encoding_message_size(usize::MAX);
    let mut stop = shutdown;
    let server = tonic::transport::Server::builder()
        .max_concurrent_streams(MAX_STREAMS)
        .layer(tower::layer::layer_fn(move |inner| Gate {
            inner,
            auth: auth.clone(),
            places: places.clone(),
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
