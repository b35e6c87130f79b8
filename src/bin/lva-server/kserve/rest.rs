//! KServe v2 over HTTP/REST, on the server's own port and routes:
//!
//! - `GET /v2/health/live`, `GET /v2/health/ready` → 200 with no body (ready: 400 while a model
//!   failed to compile); no credentials needed, like `/healthz`;
//! - `GET /v2` → the server's name, version and extensions;
//! - `GET /v2/models/{name}[/versions/{v}]` → the model's metadata;
//! - `GET /v2/models/{name}[/versions/{v}]/ready` → 200, or 400 when it is not ready;
//! - `POST /v2/models/{name}[/versions/{v}]/infer` → the inference: JSON tensors, and the binary
//!   tensor data extension both ways (`Inference-Header-Content-Length`).
//!
//! Errors are `{"error": "..."}`: 400 for a wrong request, 404 for an unknown model or
//! version, 413 over `max-body-bytes`, 503 when busy, 500 when the model fails.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::tensor::{self, Datatype, Number};
use super::{InferRequest, Input, InputData, Output, Refusal, Served, VERSION};
use crate::http::{self, Framing};
use crate::reply::{error, json, with_header};
use crate::routes::{App, BodyRead, ModelName, read_body};

/// The header of the binary tensor data extension: the length of the JSON part of the body.
pub const HEADER_LENGTH: &str = "inference-header-content-length";

type Params = Path<HashMap<String, String>>;

/// The answer to a refusal.
pub fn refused(refusal: &Refusal, retry_after: u32) -> Response {
    let status = match refusal {
        Refusal::Invalid(_) => StatusCode::BAD_REQUEST,
        Refusal::NotFound(_) => StatusCode::NOT_FOUND,
        Refusal::Busy => StatusCode::SERVICE_UNAVAILABLE,
        Refusal::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let resp = error(status, &refusal.message());
    if *refusal == Refusal::Busy {
        with_header(resp, header::RETRY_AFTER, &retry_after.to_string())
    } else {
        resp
    }
}

/// 200 with no body: the protocol's `true` of a health request.
fn yes() -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::OK;
    resp
}

pub async fn live() -> Response {
    yes()
}

pub async fn ready(State(app): State<Arc<App>>) -> Response {
    if app.kserve.ready() {
        yes()
    } else {
        error(
            StatusCode::BAD_REQUEST,
            "a model failed to compile: GET /v2/models/{name}/ready says which",
        )
    }
}

pub async fn server_metadata() -> Response {
    json(StatusCode::OK, super::server_metadata().to_string())
}

fn model<'a>(app: &'a App, params: &HashMap<String, String>) -> Result<&'a Arc<Served>, Response> {
    let name = params.get("model").map_or("", String::as_str);
    let version = params.get("version").map(String::as_str);
    app.kserve
        .model(name, version)
        .map_err(|r| refused(&r, app.kserve.retry_after))
}

pub async fn model_metadata(State(app): State<Arc<App>>, Path(params): Params) -> Response {
    match model(&app, &params) {
        Ok(m) => json(StatusCode::OK, m.metadata().to_string()),
        Err(resp) => resp,
    }
}

pub async fn model_ready(State(app): State<Arc<App>>, Path(params): Params) -> Response {
    match model(&app, &params) {
        Ok(m) if m.ready() => yes(),
        Ok(m) => error(
            StatusCode::BAD_REQUEST,
            &format!(
                "model '{}' is not ready: it failed to compile (the server's log says why)",
                m.name()
            ),
        ),
        Err(resp) => resp,
    }
}

/// 404 for a path under `/v2/` that is none of the routes above.
pub fn no_route(path: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        &format!(
            "no KServe route {path}: the routes are /v2, /v2/health/live, /v2/health/ready, \
             /v2/models/{{name}}[/versions/{{version}}][/ready|/infer]"
        ),
    )
}

/// `POST .../infer`: admitted from the head, then the body is read, then it is parsed and
/// inferred on the blocking pool.
pub async fn infer(State(app): State<Arc<App>>, Path(params): Params, req: Request) -> Response {
    let (head, body) = req.into_parts();
    let served = match model(&app, &params) {
        Ok(m) => m.clone(),
        Err(resp) => return resp,
    };
    let kserve = &app.kserve;
    let framing = http::framing(&head.headers);
    if let Framing::Length(n) = framing
        && n > kserve.max_body
    {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!(
                "the body has {n} bytes, over the limit of {} (max-body-bytes)",
                kserve.max_body
            ),
        );
    }
    let header_length = match head.headers.get(HEADER_LENGTH) {
        None => None,
        Some(v) => match v.to_str().ok().and_then(|v| v.trim().parse::<usize>().ok()) {
            Some(n) => Some(n),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "Inference-Header-Content-Length is not a number of bytes",
                );
            }
        },
    };
    let Some(ticket) = served.admit() else {
        // As the LVA endpoint: a busy answer is held back a little.
        tokio::time::sleep(app.busy_delay).await;
        return refused(&Refusal::Busy, kserve.retry_after);
    };
    let body = match read_body(body, framing, kserve.max_body, app.body_timeout).await {
        Ok(body) => body,
        Err(resp) => return resp,
    };
    let worker = app.clone();
    let name = served.name().to_string();
    let model_name = name.clone();
    let mut resp = tokio::task::spawn_blocking(move || {
        let kserve = &worker.kserve;
        let answer = parse(Bytes::from(body), header_length).and_then(|(request, binary)| {
            let id = request.id.clone();
            kserve
                .infer(ticket, request)
                .map(|outputs| encode(model_name, &id, outputs, &binary))
        });
        answer.unwrap_or_else(|r| refused(&r, kserve.retry_after))
    })
    .await
    .unwrap_or_else(|e| {
        eprintln!("lva-server: model {name}: KServe inference panicked: {e}");
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "inference failed: the worker panicked",
        )
    });
    resp.extensions_mut().insert(BodyRead);
    resp.extensions_mut().insert(ModelName(name));
    resp
}

/// Which outputs go as binary data.
#[derive(Debug, Default, PartialEq)]
pub struct BinaryOutputs {
    /// The request's `binary_data_output`.
    all: bool,
    /// Each named output's `binary_data`.
    named: Vec<(String, bool)>,
}

impl BinaryOutputs {
    fn binary(&self, name: &str) -> bool {
        self.named
            .iter()
            .find(|(n, _)| n == name)
            .map_or(self.all, |(_, b)| *b)
    }
}

#[derive(Deserialize)]
struct JsonRequest<'a> {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
    #[serde(borrow)]
    inputs: Vec<JsonInput<'a>>,
    #[serde(default)]
    outputs: Option<Vec<JsonOutput>>,
}

#[derive(Deserialize)]
struct JsonInput<'a> {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct JsonOutput {
    name: String,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
}

fn invalid(message: impl Into<String>) -> Refusal {
    Refusal::Invalid(message.into())
}

/// A boolean parameter, if given.
fn flag(parameters: &Option<Map<String, Value>>, key: &str) -> Result<Option<bool>, Refusal> {
    match parameters.as_ref().and_then(|p| p.get(key)) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(invalid(format!(
            "parameter {key} is {other}, not true or false"
        ))),
    }
}

/// A request body: the JSON inference request, then (with `Inference-Header-Content-Length`)
/// the binary data of the inputs that say `binary_data_size`, in their order.
pub fn parse(
    body: Bytes,
    header_length: Option<usize>,
) -> Result<(InferRequest, BinaryOutputs), Refusal> {
    let json_len = header_length.unwrap_or(body.len());
    if json_len > body.len() {
        return Err(invalid(format!(
            "Inference-Header-Content-Length is {json_len}, the body has {} bytes",
            body.len()
        )));
    }
    let mut binary = body.slice(json_len..);
    let text = &body[..json_len];
    let request: JsonRequest = serde_json::from_slice(text)
        .map_err(|e| invalid(format!("the body is not a KServe inference request: {e}")))?;
    if request
        .parameters
        .as_ref()
        .is_some_and(|p| p.contains_key("classification"))
    {
        return Err(invalid("the classification extension is not supported"));
    }
    let mut outputs = BinaryOutputs {
        all: flag(&request.parameters, "binary_data_output")?.unwrap_or(false),
        named: Vec::new(),
    };
    let mut names = Vec::new();
    for o in request.outputs.unwrap_or_default() {
        if o.parameters
            .as_ref()
            .is_some_and(|p| p.contains_key("classification"))
        {
            return Err(invalid(format!(
                "output '{}': the classification extension is not supported",
                o.name
            )));
        }
        if let Some(b) = flag(&o.parameters, "binary_data")? {
            outputs.named.push((o.name.clone(), b));
        }
        names.push(o.name);
    }
    let mut inputs = Vec::with_capacity(request.inputs.len());
    for input in request.inputs {
        let name = input.name;
        if input
            .parameters
            .as_ref()
            .is_some_and(|p| p.keys().any(|k| k.starts_with("shared_memory")))
        {
            return Err(invalid(format!(
                "input '{name}': shared memory is not supported: send the data in the request"
            )));
        }
        let size = input
            .parameters
            .as_ref()
            .and_then(|p| p.get("binary_data_size"));
        let data = match (size, input.data) {
            (Some(size), None) => {
                let size = size
                    .as_u64()
                    .and_then(|s| usize::try_from(s).ok())
                    .ok_or_else(|| {
                        invalid(format!(
                            "input '{name}': binary_data_size {size} is not a number of bytes"
                        ))
                    })?;
                if header_length.is_none() {
                    return Err(invalid(format!(
                        "input '{name}' has binary_data_size but the request has no \
                         Inference-Header-Content-Length header"
                    )));
                }
                if size > binary.len() {
                    return Err(invalid(format!(
                        "input '{name}': binary_data_size is {size}, {} bytes of binary data \
                         are left",
                        binary.len()
                    )));
                }
                InputData::Raw(binary.split_to(size))
            }
            (None, Some(raw)) => json_data(&name, &input.datatype, raw)?,
            (Some(_), Some(_)) => {
                return Err(invalid(format!(
                    "input '{name}' has both data and binary_data_size: send one"
                )));
            }
            (None, None) => {
                return Err(invalid(format!(
                    "input '{name}' has no data (neither \"data\" nor binary_data_size)"
                )));
            }
        };
        inputs.push(Input {
            name,
            datatype: input.datatype,
            shape: input.shape,
            data,
        });
    }
    if !binary.is_empty() {
        return Err(invalid(format!(
            "{} bytes of binary data are left after the inputs' binary_data_size",
            binary.len()
        )));
    }
    let id = match request.id {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s,
        Some(other) => other.to_string(),
    };
    Ok((
        InferRequest {
            id,
            inputs,
            outputs: names,
        },
        outputs,
    ))
}

/// An input's `"data"`: nested or flat arrays of numbers, booleans or (BYTES) strings, read
/// straight into the tensor's bytes.
fn json_data(name: &str, datatype: &str, raw: &RawValue) -> Result<InputData, Refusal> {
    let Some(dt) = Datatype::parse(datatype) else {
        return Err(invalid(format!(
            "input '{name}': '{datatype}' is not a KServe data type ({})",
            tensor::DATATYPES
        )));
    };
    let mut out = Vec::new();
    let mut elements = Vec::new();
    let mut de = serde_json::Deserializer::from_str(raw.get());
    Flatten {
        dt,
        out: &mut out,
        elements: &mut elements,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end())
    .map_err(|e| invalid(format!("input '{name}': data: {e}")))?;
    Ok(match dt {
        Datatype::Bytes => InputData::Elements(elements),
        Datatype::Fixed(_) => InputData::Raw(out.into()),
    })
}

/// Walks nested arrays, writing each leaf as the tensor's next value.
struct Flatten<'o> {
    dt: Datatype,
    out: &'o mut Vec<u8>,
    elements: &'o mut Vec<Bytes>,
}

impl Flatten<'_> {
    fn leaf<E: de::Error>(self, v: Number) -> Result<(), E> {
        match self.dt {
            Datatype::Fixed(d) => tensor::push_value(d, v, self.out).map_err(E::custom),
            Datatype::Bytes => Err(E::custom(format!("{v} where BYTES takes strings"))),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Flatten<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Flatten<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "an array of {} values", self.dt.name())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Flatten { dt, out, elements } = self;
        while seq
            .next_element_seed(Flatten {
                dt,
                out: &mut *out,
                elements: &mut *elements,
            })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.leaf(Number::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.leaf(Number::Int(i128::from(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.leaf(Number::Int(i128::from(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.leaf(Number::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        match self.dt {
            Datatype::Bytes => {
                self.elements.push(Bytes::copy_from_slice(v.as_bytes()));
                Ok(())
            }
            Datatype::Fixed(d) => Err(E::custom(format!(
                "a string where {} takes numbers",
                tensor::datatype_name(d)
            ))),
        }
    }
}

/// The inference response: JSON, followed by the binary outputs' data when there are any.
pub fn encode(model: String, id: &str, outputs: Vec<Output>, binary: &BinaryOutputs) -> Response {
    let mut data = Vec::new();
    let mut any_binary = false;
    let described: Vec<Value> = outputs
        .iter()
        .map(|o| {
            let mut out = json!({"name": o.name, "datatype": o.datatype(), "shape": o.shape});
            if binary.binary(&o.name) {
                any_binary = true;
                out["parameters"] = json!({"binary_data_size": o.data.len()});
                data.extend_from_slice(&o.data);
            } else {
                out["data"] = Value::Array(tensor::json_values(o.data_type, &o.data));
            }
            out
        })
        .collect();
    let mut doc = json!({"model_name": model, "model_version": VERSION, "outputs": described});
    if !id.is_empty() {
        doc["id"] = json!(id);
    }
    let mut text = doc.to_string().into_bytes();
    if !any_binary {
        return json(StatusCode::OK, text);
    }
    let length = text.len();
    text.extend_from_slice(&data);
    let mut resp = Response::new(Body::from(text));
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(HEADER_LENGTH, HeaderValue::from(length));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use gstovlva::openvino::DataType;

    fn body(json: &str, binary: &[u8]) -> (Bytes, Option<usize>) {
        let mut b = json.as_bytes().to_vec();
        b.extend_from_slice(binary);
        (Bytes::from(b), (!binary.is_empty()).then_some(json.len()))
    }

    fn raw(data: &InputData) -> Vec<u8> {
        match data {
            InputData::Raw(r) => r.to_vec(),
            InputData::Elements(_) => panic!("elements"),
        }
    }

    #[test]
    fn json_tensors_nested_or_flat_become_little_endian_bytes() {
        let (b, h) = body(
            r#"{"id":"42","inputs":[
                {"name":"a","shape":[2,2],"datatype":"UINT8","data":[[1,2],[3,255]]},
                {"name":"b","shape":[2],"datatype":"FP32","data":[0.5,-1]},
                {"name":"c","shape":[2],"datatype":"BYTES","data":["hi","é"]}],
               "outputs":[{"name":"o","parameters":{"binary_data":true}}]}"#,
            &[],
        );
        let (req, binary) = parse(b, h).unwrap();
        assert_eq!(req.id, "42");
        assert_eq!(raw(&req.inputs[0].data), vec![1, 2, 3, 255]);
        let mut want = 0.5f32.to_le_bytes().to_vec();
        want.extend_from_slice(&(-1f32).to_le_bytes());
        assert_eq!(raw(&req.inputs[1].data), want);
        match &req.inputs[2].data {
            InputData::Elements(e) => assert_eq!(e, &vec![&b"hi"[..], "é".as_bytes()]),
            InputData::Raw(_) => panic!("raw"),
        }
        assert_eq!(req.outputs, vec!["o".to_string()]);
        assert!(binary.binary("o"));
        assert!(!binary.binary("p"));
    }

    #[test]
    fn binary_inputs_are_cut_from_the_body_in_order() {
        let json = r#"{"inputs":[
            {"name":"a","shape":[3],"datatype":"UINT8","parameters":{"binary_data_size":3}},
            {"name":"b","shape":[1],"datatype":"INT16","parameters":{"binary_data_size":2}}],
            "parameters":{"binary_data_output":true}}"#;
        let (b, h) = body(json, &[1, 2, 3, 4, 5]);
        let (req, binary) = parse(b, h).unwrap();
        assert_eq!(raw(&req.inputs[0].data), vec![1, 2, 3]);
        assert_eq!(raw(&req.inputs[1].data), vec![4, 5]);
        assert!(binary.binary("anything"));
        let (b, h) = body(json, &[1, 2, 3, 4]);
        let e = parse(b, h).unwrap_err();
        assert_eq!(
            e.message(),
            "input 'b': binary_data_size is 2, 1 bytes of binary data are left"
        );
        let (b, h) = body(json, &[1, 2, 3, 4, 5, 6]);
        assert!(
            parse(b, h)
                .unwrap_err()
                .message()
                .contains("1 bytes of binary data are left")
        );
        let e = parse(Bytes::from(json), None).unwrap_err();
        assert!(
            e.message().contains("no Inference-Header-Content-Length"),
            "{e:?}"
        );
        let e = parse(Bytes::from_static(b"{}"), Some(10)).unwrap_err();
        assert!(e.message().contains("the body has 2 bytes"), "{e:?}");
    }

    #[test]
    fn bad_json_data_names_the_input() {
        for (data, datatype, want) in [
            (
                "[1,256]",
                "UINT8",
                "input 'a': data: 256 is out of the range of UINT8",
            ),
            (
                "[1,\"x\"]",
                "INT32",
                "input 'a': data: a string where INT32 takes numbers",
            ),
            (
                "[1]",
                "BYTES",
                "input 'a': data: 1 where BYTES takes strings",
            ),
            (
                "[1.5]",
                "INT64",
                "input 'a': data: 1.5 is not a whole number, as INT64 needs",
            ),
            (
                "[1]",
                "FLOAT",
                "input 'a': 'FLOAT' is not a KServe data type",
            ),
        ] {
            let text = format!(
                r#"{{"inputs":[{{"name":"a","shape":[1],"datatype":"{datatype}","data":{data}}}]}}"#
            );
            let e = parse(Bytes::from(text), None).unwrap_err();
            assert!(e.message().starts_with(want), "{} vs {want}", e.message());
        }
        let e = parse(Bytes::from_static(b"{\"inputs\":"), None).unwrap_err();
        assert!(
            e.message()
                .starts_with("the body is not a KServe inference request")
        );
        let e = parse(
            Bytes::from_static(
                b"{\"inputs\":[{\"name\":\"a\",\"shape\":[1],\"datatype\":\"BOOL\"}]}",
            ),
            None,
        )
        .unwrap_err();
        assert!(e.message().contains("has no data"), "{e:?}");
    }

    #[test]
    fn binary_outputs_follow_the_json_header() {
        let outputs = vec![
            Output {
                name: "x".into(),
                data_type: DataType::F32,
                shape: vec![1],
                data: 2f32.to_le_bytes().to_vec(),
            },
            Output {
                name: "y".into(),
                data_type: DataType::U8,
                shape: vec![2],
                data: vec![7, 8],
            },
        ];
        let binary = BinaryOutputs {
            all: false,
            named: vec![("y".into(), true)],
        };
        let resp = encode("m".into(), "id1", outputs, &binary);
        let length: usize = resp.headers()[HEADER_LENGTH]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            resp.headers()[header::CONTENT_TYPE],
            "application/octet-stream"
        );
        let body = futures_util::FutureExt::now_or_never(http_body_util::BodyExt::collect(
            resp.into_body(),
        ))
        .unwrap()
        .unwrap()
        .to_bytes();
        let doc: Value = serde_json::from_slice(&body[..length]).unwrap();
        assert_eq!(&body[length..], &[7, 8]);
        assert_eq!(doc["id"], "id1");
        assert_eq!(doc["outputs"][0]["data"], json!([2.0]));
        assert_eq!(doc["outputs"][1]["parameters"]["binary_data_size"], 2);
        assert_eq!(doc["model_version"], "1");
    }
}
