//! The KServe v2 API ("Open Inference Protocol", as OpenVINO Model Server and Triton speak it)
//! on the configured models: raw tensors in, raw tensors out, the model's own inputs and
//! outputs. REST on the server's HTTP port ([`rest`]), gRPC on its own port ([`grpc`]).
//!
//! - `model`: a served model: its ports read from the model file at start, its own compiled
//!   model (the model as it is, without ovinfer's pre-processing) made on first use, a pool of
//!   inference requests and the admission bound (`workers` at once, `max-queue` waiting);
//! - `tensor`: KServe data types, a request's inputs checked against the model's ports (names,
//!   types, shapes, sizes) before anything is allocated from what a client declared;
//! - `image`: a `BYTES` input holding JPEG or PNG images, decoded and resized to the input;
//! - `rest`, `grpc`, `proto`: the two protocols over the same [`Kserve`].
//!
//! Docs: docs/kserve.md.

pub mod grpc;
mod image;
mod model;
pub use gstovlva::kserve::proto;
pub mod rest;
mod tensor;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{Config, ModelConfig};

pub use model::Served;
pub use tensor::{InferRequest, Input, InputData, Output};

/// The one version of every model ("1", as OVMS numbers a model's first version).
pub const VERSION: &str = "1";

/// The protocol extensions the server speaks (`GET /v2`, ServerMetadata).
pub const EXTENSIONS: [&str; 1] = ["binary_tensor_data"];

/// The server's name in its metadata.
pub const SERVER_NAME: &str = "lva-server";

/// Why a request got no result: each is an HTTP status and a gRPC code.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// 400 / INVALID_ARGUMENT: the request is wrong (the reason names the input and says what
    /// was expected and what came).
    Invalid(String),
    /// 404 / NOT_FOUND: no such model or version.
    NotFound(String),
    /// 503 / UNAVAILABLE: every worker busy and the queue full, or the wait ran out.
    Busy,
    /// 500 / INTERNAL: the model failed on a valid request.
    Internal(String),
}

impl Refusal {
    pub fn message(&self) -> String {
        match self {
            Refusal::Invalid(m) | Refusal::NotFound(m) | Refusal::Internal(m) => m.clone(),
            Refusal::Busy => {
                "all workers are busy and the queue is full: retry after the Retry-After delay"
                    .into()
            }
        }
    }
}

/// The served models and what their requests share.
pub struct Kserve {
    models: BTreeMap<String, Arc<Served>>,
    /// Largest request accepted (REST body, gRPC message), bytes.
    pub max_body: u64,
    /// Pixels of the images of one request together (BYTES inputs), at most.
    pub max_pixels: u64,
    queue_timeout: Duration,
    pub retry_after: u32,
}

impl Kserve {
    /// Reads every model's inputs and outputs from its file (nothing is compiled yet).
    pub fn new(config: &Config, models: &[ModelConfig]) -> Result<Kserve, String> {
        let mut served = BTreeMap::new();
        for m in models {
            let model = Served::open(m.clone())
                .map_err(|e| format!("model \"{}\": KServe: {e}", m.name))?;
            served.insert(m.name.clone(), Arc::new(model));
        }
        Ok(Kserve {
            models: served,
            max_body: config.max_body_bytes,
            max_pixels: config.max_pixels,
            queue_timeout: config.queue_timeout(),
            retry_after: config.retry_after_s,
        })
    }

    /// The model of that name (and version, when given), or 404 saying what there is.
    pub fn model(&self, name: &str, version: Option<&str>) -> Result<&Arc<Served>, Refusal> {
        let model = self.models.get(name).ok_or_else(|| {
            Refusal::NotFound(format!(
                "no model '{name}' here; the models are {}",
                self.names().join(", ")
            ))
        })?;
        match version {
            None | Some("") | Some(VERSION) => Ok(model),
            Some(v) => Err(Refusal::NotFound(format!(
                "model '{name}' has no version '{v}': its one version is {VERSION}"
            ))),
        }
    }

    /// Inference requests the models admit at once (running or waiting): the sum of their
    /// `workers` and `max-queue`.
    pub fn capacity(&self) -> usize {
        self.models
            .values()
            .map(|m| m.config.workers + m.config.max_queue)
            .sum()
    }

    pub fn names(&self) -> Vec<&str> {
        self.models.keys().map(String::as_str).collect()
    }

    /// Every model can be served (none failed to compile).
    pub fn ready(&self) -> bool {
        self.models.values().all(|m| m.ready())
    }

    /// Runs `request` on `model` within the queue timeout. Blocks: call it off the async
    /// workers.
    pub fn infer(
        &self,
        ticket: model::Ticket,
        request: InferRequest,
    ) -> Result<Vec<Output>, Refusal> {
        let deadline = Instant::now() + self.queue_timeout;
        ticket.infer(request, self.max_pixels, deadline)
    }
}

/// The server's metadata as JSON (`GET /v2`).
pub fn server_metadata() -> serde_json::Value {
    serde_json::json!({
        "name": SERVER_NAME,
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": EXTENSIONS,
    })
}
