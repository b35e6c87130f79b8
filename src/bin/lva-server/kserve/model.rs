//! One model served over KServe: its ports, its compiled model and its requests.
//!
//! The LVA endpoint's pipelines compile the model with ovinfer's pre-processing built in (frames
//! of the request's size and format in, every output as f32), which is not the model's own
//! interface. KServe clients send the model's own inputs and read its own outputs, so each
//! served model gets one compiled model of its own, the file as it is, compiled on its first
//! inference with the entry's `device`, `performance-hint` and `ov-config` (and ovinfer's
//! defaults for them), and kept for the life of the server. Its inference requests are made as
//! needed, at most `workers` (one per worker), and reused.
//!
//! Admission is the LVA side's: `workers` requests run at once, `max-queue` more wait (in
//! arrival order, [`Turns`]) up to `queue-timeout-ms`; beyond, Busy (503 / UNAVAILABLE). The
//! KServe API has its own workers and queue, apart from the LVA endpoint's.

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use gstovlva::openvino::{CompiledModel, Core, DataType, ElementType, TensorRequest};

use super::Refusal;
use super::image;
use super::tensor::{self, Checked, Datatype, InferRequest, Output};
use crate::config::ModelConfig;
use crate::turns::Turns;

/// A model input or output as the model file declares it.
#[derive(Debug, Clone, PartialEq)]
pub struct Port {
    pub name: String,
    pub element_type: ElementType,
    /// `None`: a dynamic dimension.
    pub shape: Vec<Option<i64>>,
}

impl Port {
    /// The shape with -1 for dynamic dimensions, as KServe metadata shows it.
    pub fn shape_i64(&self) -> Vec<i64> {
        self.shape.iter().map(|d| d.unwrap_or(-1)).collect()
    }

    /// KServe's data type name.
    pub fn datatype(&self) -> String {
        tensor::port_datatype(self.element_type)
    }

    pub fn metadata(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "datatype": self.datatype(),
            "shape": self.shape_i64(),
        })
    }
}

/// The OpenVINO core of the KServe API (one per process; OpenVINO's cores are thread-safe).
fn core() -> Result<&'static Core, String> {
    static CORE: OnceLock<Result<Core, String>> = OnceLock::new();
    CORE.get_or_init(|| Core::new().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(Clone::clone)
}

/// A model served over KServe.
pub struct Served {
    pub config: ModelConfig,
    pub inputs: Vec<Port>,
    pub outputs: Vec<Port>,
    device: String,
    /// PERFORMANCE_HINT and ov-config, as ovinfer compiles with them.
    properties: Vec<(String, String)>,
    /// The model's channel order (`model-color-format`): decoded images are given in it.
    pub bgr: bool,
    compiled: Mutex<Option<Arc<CompiledModel>>>,
    /// Why the last compilation failed (the model is then not ready).
    failed: Mutex<Option<String>>,
    idle: Mutex<Vec<TensorRequest>>,
    admitted: Mutex<usize>,
    turns: Turns,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Unnamed ports get `input0`, `output1`, ... (OpenVINO ports may have no tensor name).
fn ports(ports: Vec<gstovlva::openvino::PortInfo>, kind: &str) -> Result<Vec<Port>, String> {
    let ports: Vec<Port> = ports
        .into_iter()
        .enumerate()
        .map(|(i, p)| Port {
            name: if p.name.is_empty() {
                format!("{kind}{i}")
            } else {
                p.name
            },
            element_type: p.element_type,
            shape: p.shape,
        })
        .collect();
    for (i, p) in ports.iter().enumerate() {
        if ports[..i].iter().any(|q| q.name == p.name) {
            return Err(format!("two {kind}s are named '{}'", p.name));
        }
    }
    Ok(ports)
}

impl Served {
    /// Reads the model's ports from its file. The model is compiled on its first inference.
    pub fn open(config: ModelConfig) -> Result<Served, String> {
        let path = config.property("model").ok_or("no model file")?;
        let model = core()?
            .read_model(std::path::Path::new(path))
            .map_err(|e| format!("{path}: {e}"))?;
        let inputs = ports(model.inputs().map_err(|e| e.to_string())?, "input")?;
        let outputs = ports(model.outputs().map_err(|e| e.to_string())?, "output")?;
        let device = config.property("device").unwrap_or("CPU").to_string();
        let hint = match config.property("performance-hint") {
            Some(h) if h.eq_ignore_ascii_case("throughput") => "THROUGHPUT",
            _ => "LATENCY",
        };
        let ov_config =
            gstovlva::ovinfer::config::parse(config.property("ov-config").unwrap_or(""))?;
        let mut properties = vec![("PERFORMANCE_HINT".to_string(), hint.to_string())];
        properties.extend(gstovlva::ovinfer::config::with_defaults(&device, ov_config));
        let bgr = config
            .property("model-color-format")
            .is_some_and(|c| c.eq_ignore_ascii_case("bgr"));
        Ok(Served {
            turns: Turns::new(config.workers),
            config,
            inputs,
            outputs,
            device,
            properties,
            bgr,
            compiled: Mutex::new(None),
            failed: Mutex::new(None),
            idle: Mutex::new(Vec::new()),
            admitted: Mutex::new(0),
        })
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Whether the model can infer: it was read, and did not fail to compile.
    pub fn ready(&self) -> bool {
        lock(&self.failed).is_none()
    }

    /// The model metadata (`GET /v2/models/{name}`, ModelMetadata).
    pub fn metadata(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name(),
            "versions": [super::VERSION],
            "platform": "openvino",
            "inputs": self.inputs.iter().map(Port::metadata).collect::<Vec<_>>(),
            "outputs": self.outputs.iter().map(Port::metadata).collect::<Vec<_>>(),
        })
    }

    /// Admits a request if a worker or a queue place is free.
    pub fn admit(self: &Arc<Served>) -> Option<Ticket> {
        let mut admitted = lock(&self.admitted);
        if *admitted >= self.config.workers + self.config.max_queue {
            return None;
        }
        *admitted += 1;
        Some(Ticket {
            model: self.clone(),
        })
    }

    /// The compiled model, compiled now if this is the first inference.
    fn compiled(&self) -> Result<Arc<CompiledModel>, Refusal> {
        let mut compiled = lock(&self.compiled);
        if let Some(c) = compiled.as_ref() {
            return Ok(c.clone());
        }
        let made = (|| -> Result<CompiledModel, String> {
            let core = core()?;
            let path = self.config.property("model").ok_or("no model file")?;
            let model = core
                .read_model(std::path::Path::new(path))
                .map_err(|e| e.to_string())?;
            let properties: Vec<(&str, &str)> = self
                .properties
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            core.compile(&model, &self.device, &properties)
                .map_err(|e| format!("on device {} with {properties:?}: {e}", self.device))
        })();
        match made {
            Ok(c) => {
                let c = Arc::new(c);
                *compiled = Some(c.clone());
                *lock(&self.failed) = None;
                Ok(c)
            }
            Err(e) => {
                eprintln!("lva-server: model {}: KServe: {e}", self.name());
                *lock(&self.failed) = Some(e.clone());
                Err(Refusal::Internal(format!(
                    "the model cannot be compiled: {e}"
                )))
            }
        }
    }

    /// The request's inputs checked against the ports, in the ports' order (images decoded).
    fn check(&self, request: InferRequest, max_pixels: u64) -> Result<Vec<Checked>, Refusal> {
        let model = self.name();
        let names = || {
            self.inputs
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut checked: Vec<Option<Checked>> = self.inputs.iter().map(|_| None).collect();
        for input in request.inputs {
            let Some(index) = self.inputs.iter().position(|p| p.name == input.name) else {
                return Err(Refusal::Invalid(format!(
                    "model '{model}' has no input '{}': its inputs are {}",
                    input.name,
                    names()
                )));
            };
            if checked[index].is_some() {
                return Err(Refusal::Invalid(format!(
                    "input '{}' is given twice",
                    input.name
                )));
            }
            let port = &self.inputs[index];
            let datatype = Datatype::parse(&input.datatype).ok_or_else(|| {
                Refusal::Invalid(format!(
                    "input '{}': '{}' is not a KServe data type ({})",
                    input.name,
                    input.datatype,
                    tensor::DATATYPES
                ))
            })?;
            let wanted = DataType::of(port.element_type);
            checked[index] = Some(match (datatype, wanted) {
                (Datatype::Fixed(d), Some(w)) if d == w => {
                    tensor::check_fixed(input, index, port, d)?
                }
                (Datatype::Bytes, Some(w)) => {
                    let spec = image::ImageInput::of(port, w, self.bgr).map_err(|why| {
                        Refusal::Invalid(format!(
                            "input '{}': BYTES for an input of {} {}: {why}",
                            input.name,
                            port.datatype(),
                            tensor::shape_text(&port.shape_i64())
                        ))
                    })?;
                    let name = input.name.clone();
                    let (shape, elements) = tensor::elements(input)?;
                    let (shape, data) = spec.tensor(&name, &shape, &elements, max_pixels)?;
                    Checked {
                        index,
                        data_type: w,
                        shape,
                        data: data.into(),
                    }
                }
                (d, Some(_)) => {
                    return Err(Refusal::Invalid(format!(
                        "input '{}': datatype {}, the model takes {}",
                        input.name,
                        d.name(),
                        port.datatype()
                    )));
                }
                (_, None) => {
                    return Err(Refusal::Invalid(format!(
                        "input '{}' is of OpenVINO type {}, which lva-server's KServe API does \
                         not feed",
                        input.name,
                        port.element_type.openvino_name()
                    )));
                }
            });
        }
        let missing: Vec<&str> = self
            .inputs
            .iter()
            .zip(&checked)
            .filter(|(_, c)| c.is_none())
            .map(|(p, _)| p.name.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(Refusal::Invalid(format!(
                "input {} missing: model '{model}' takes {}",
                missing
                    .iter()
                    .map(|m| format!("'{m}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
                    + if missing.len() == 1 { " is" } else { " are" },
                names()
            )));
        }
        Ok(checked.into_iter().flatten().collect())
    }

    /// Indices of the requested outputs (all when none is named).
    fn wanted_outputs(&self, names: &[String]) -> Result<Vec<usize>, Refusal> {
        if names.is_empty() {
            return Ok((0..self.outputs.len()).collect());
        }
        names
            .iter()
            .map(|n| {
                self.outputs
                    .iter()
                    .position(|p| &p.name == n)
                    .ok_or_else(|| {
                        Refusal::Invalid(format!(
                            "model '{}' has no output '{n}': its outputs are {}",
                            self.name(),
                            self.outputs
                                .iter()
                                .map(|p| p.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    })
            })
            .collect()
    }
}

/// An admitted request; dropping it gives the place back.
pub struct Ticket {
    model: Arc<Served>,
}

impl Ticket {
    /// Checks the request, waits for a worker (until `deadline`) and runs it.
    pub fn infer(
        self,
        request: InferRequest,
        max_pixels: u64,
        deadline: Instant,
    ) -> Result<Vec<Output>, Refusal> {
        let model = &self.model;
        let wanted = model.wanted_outputs(&request.outputs)?;
        let inputs = model.check(request, max_pixels)?;
        // Workers go to waiting requests in arrival order; the turn is given back when dropped.
        let Some(turn) = model.turns.take(deadline) else {
            return Err(Refusal::Busy);
        };
        let compiled = model.compiled()?;
        let idle = lock(&model.idle).pop();
        let mut request = match idle {
            Some(r) => r,
            None => compiled
                .create_tensor_request()
                .map_err(|e| Refusal::Internal(format!("inference failed: {e}")))?,
        };
        for input in &inputs {
            request
                .set_input(input.index, input.data_type, &input.shape, &input.data)
                .map_err(|e| {
                    Refusal::Invalid(format!(
                        "input '{}': OpenVINO refused the tensor: {e}",
                        model.inputs[input.index].name
                    ))
                })?;
        }
        request.infer().map_err(|e| {
            eprintln!(
                "lva-server: model {}: KServe inference failed: {e}",
                model.name()
            );
            Refusal::Internal(format!("inference failed: {e}"))
        })?;
        let mut outputs = Vec::with_capacity(wanted.len());
        for index in wanted {
            let port = &model.outputs[index];
            let (element_type, shape, data) = request
                .output(index)
                .map_err(|e| Refusal::Internal(format!("output '{}': {e}", port.name)))?;
            let data_type = DataType::of(element_type).ok_or_else(|| {
                Refusal::Internal(format!(
                    "output '{}' is of OpenVINO type {}, which lva-server's KServe API cannot \
                     send",
                    port.name,
                    element_type.openvino_name()
                ))
            })?;
            outputs.push(Output {
                name: port.name.clone(),
                data_type,
                shape: shape.iter().map(|&d| d as i64).collect(),
                data: data.to_vec(),
            });
        }
        lock(&model.idle).push(request);
        drop(turn);
        Ok(outputs)
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        *lock(&self.model.admitted) -= 1;
    }
}
