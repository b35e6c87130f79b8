//! KServe's tensors: data type names, a request's inputs as the protocols deliver them, and
//! their check against the model's ports, which decides everything before a byte is allocated
//! from a client's declared shape: the data a client sent is already in memory (bounded by
//! `max-body-bytes`), and a declared shape must describe exactly that data.

use axum::body::Bytes;
use gstovlva::openvino::{DataType, ElementType};

use super::Refusal;
use super::model::Port;

pub use gstovlva::kserve::datatype_name;

/// Every KServe data type name: the fixed-size ones, then BYTES.
pub const DATATYPES: &str = "BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, \
                             FP16, BF16, FP32, FP64, BYTES";

/// A tensor's data type as a request names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datatype {
    Fixed(DataType),
    /// Variable-length elements (strings, encoded images).
    Bytes,
}

impl Datatype {
    pub fn parse(name: &str) -> Option<Datatype> {
        match name {
            "BYTES" => Some(Datatype::Bytes),
            _ => gstovlva::kserve::datatype(name).map(Datatype::Fixed),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Datatype::Fixed(d) => datatype_name(d),
            Datatype::Bytes => "BYTES",
        }
    }
}

/// KServe's name for a port's element type: the fixed-size types by their KServe names,
/// OpenVINO's strings as BYTES, anything else (sub-byte types) by OpenVINO's name in capitals.
pub fn port_datatype(element_type: ElementType) -> String {
    match DataType::of(element_type) {
        Some(d) => datatype_name(d).to_string(),
        None if element_type.openvino_name() == "string" => "BYTES".into(),
        None => element_type.openvino_name().to_ascii_uppercase(),
    }
}

/// An inference request, from either protocol.
#[derive(Debug, Default)]
pub struct InferRequest {
    /// Echoed in the response.
    pub id: String,
    pub inputs: Vec<Input>,
    /// The outputs to return, by name; empty: all of them.
    pub outputs: Vec<String>,
}

/// One input tensor as it came.
#[derive(Debug)]
pub struct Input {
    pub name: String,
    pub datatype: String,
    pub shape: Vec<i64>,
    pub data: InputData,
}

/// An input's values.
#[derive(Debug)]
pub enum InputData {
    /// Little-endian values, row-major (BYTES: each element as a 4-byte little-endian length
    /// and its bytes, as the binary tensor extension and `raw_input_contents` carry them).
    Raw(Bytes),
    /// The elements of a BYTES tensor, one by one.
    Elements(Vec<Bytes>),
}

/// One output tensor of a result.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub name: String,
    pub data_type: DataType,
    pub shape: Vec<i64>,
    /// Little-endian values, row-major.
    pub data: Vec<u8>,
}

impl Output {
    pub fn datatype(&self) -> &'static str {
        datatype_name(self.data_type)
    }
}

/// `[1,300,300,3]`, as shapes are written in messages.
pub fn shape_text(shape: &[i64]) -> String {
    let dims: Vec<String> = shape.iter().map(i64::to_string).collect();
    format!("[{}]", dims.join(","))
}

/// An input checked against its port, ready to set on a request.
#[derive(Debug)]
pub struct Checked {
    pub index: usize,
    pub data_type: DataType,
    pub shape: Vec<usize>,
    pub data: Bytes,
}

/// The shape of `input` as sizes, checked against `port`'s: the same rank and every static
/// dimension equal (a dynamic one takes any size).
pub fn check_shape(input: &Input, port: &Port) -> Result<Vec<usize>, Refusal> {
    let name = &input.name;
    let shape = input
        .shape
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<Vec<usize>, _>>()
        .map_err(|_| {
            Refusal::Invalid(format!(
                "input '{name}': shape {} has a negative dimension",
                shape_text(&input.shape)
            ))
        })?;
    let fits = shape.len() == port.shape.len()
        && shape
            .iter()
            .zip(&port.shape)
            .all(|(&d, p)| p.is_none_or(|p| u64::try_from(p) == Ok(d as u64)));
    if !fits {
        return Err(Refusal::Invalid(format!(
            "input '{name}': shape {}, the model takes {}",
            shape_text(&input.shape),
            shape_text(&port.shape_i64())
        )));
    }
    Ok(shape)
}

/// A fixed-size input: its data type must be the port's, its shape the port's, and its data
/// exactly as many bytes as the shape says.
pub fn check_fixed(
    input: Input,
    index: usize,
    port: &Port,
    data_type: DataType,
) -> Result<Checked, Refusal> {
    let name = input.name.clone();
    let shape = check_shape(&input, port)?;
    let need = shape
        .iter()
        .try_fold(data_type.size(), |n, &d| n.checked_mul(d));
    let data = match input.data {
        InputData::Raw(data) => data,
        InputData::Elements(_) => {
            return Err(Refusal::Invalid(format!(
                "input '{name}': {} data given as BYTES elements",
                datatype_name(data_type)
            )));
        }
    };
    if need != Some(data.len()) {
        return Err(Refusal::Invalid(format!(
            "input '{name}': shape {} of {} is {} bytes, the request has {} bytes",
            shape_text(&input.shape),
            datatype_name(data_type),
            need.map_or_else(|| "too many".to_string(), |n| n.to_string()),
            data.len()
        )));
    }
    Ok(Checked {
        index,
        data_type,
        shape,
        data,
    })
}

/// The elements of a BYTES tensor sent raw: each a 4-byte little-endian length and its bytes.
pub fn split_bytes(name: &str, raw: &Bytes) -> Result<Vec<Bytes>, Refusal> {
    let mut elements = Vec::new();
    let mut at = 0usize;
    while at < raw.len() {
        let len = raw
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or_else(|| {
                Refusal::Invalid(format!(
                    "input '{name}': BYTES element {} is cut short in its 4-byte length",
                    elements.len()
                ))
            })?;
        let start = at + 4;
        let end = start.checked_add(len).filter(|&e| e <= raw.len());
        let Some(end) = end else {
            return Err(Refusal::Invalid(format!(
                "input '{name}': BYTES element {} says {len} bytes, {} are left",
                elements.len(),
                raw.len() - start
            )));
        };
        elements.push(raw.slice(start..end));
        at = end;
    }
    Ok(elements)
}

/// The elements of a BYTES input, however they came.
pub fn elements(input: Input) -> Result<(Vec<i64>, Vec<Bytes>), Refusal> {
    let elements = match input.data {
        InputData::Elements(e) => e,
        InputData::Raw(raw) => split_bytes(&input.name, &raw)?,
    };
    Ok((input.shape, elements))
}

/// Values of `data_type` from little-endian bytes, as JSON numbers (or booleans).
pub fn json_values(data_type: DataType, data: &[u8]) -> Vec<serde_json::Value> {
    use serde_json::Value;
    let n = data_type.size();
    data.chunks_exact(n)
        .map(|c| {
            let b8 = |c: &[u8]| {
                let mut a = [0u8; 8];
                a.copy_from_slice(c);
                a
            };
            match data_type {
                DataType::Boolean => Value::Bool(c[0] != 0),
                DataType::U8 => c[0].into(),
                DataType::I8 => (c[0] as i8).into(),
                DataType::U16 => u16::from_le_bytes([c[0], c[1]]).into(),
                DataType::I16 => i16::from_le_bytes([c[0], c[1]]).into(),
                DataType::F16 => f16_to_f32(u16::from_le_bytes([c[0], c[1]])).into(),
                DataType::BF16 => {
                    f32::from_bits(u32::from(u16::from_le_bytes([c[0], c[1]])) << 16).into()
                }
                DataType::U32 => u32::from_le_bytes([c[0], c[1], c[2], c[3]]).into(),
                DataType::I32 => i32::from_le_bytes([c[0], c[1], c[2], c[3]]).into(),
                DataType::F32 => f32::from_le_bytes([c[0], c[1], c[2], c[3]]).into(),
                DataType::U64 => u64::from_le_bytes(b8(c)).into(),
                DataType::I64 => i64::from_le_bytes(b8(c)).into(),
                DataType::F64 => f64::from_le_bytes(b8(c)).into(),
            }
        })
        .collect()
}

/// IEEE half precision to single (exact).
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x3ff);
    let bits = match (exp, man) {
        (0, 0) => sign,
        // Subnormal: man × 2^-24, normalised.
        (0, m) => {
            let shift = m.leading_zeros() - 21;
            sign | ((113 - shift) << 23) | (((m << shift) & 0x3ff) << 13)
        }
        (0x1f, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | ((e + 112) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

/// Writes one JSON value of a fixed-size type as little-endian bytes, with its range checked.
pub fn push_value(data_type: DataType, v: Number, out: &mut Vec<u8>) -> Result<(), String> {
    let name = datatype_name(data_type);
    let out_of_range = |v: &dyn std::fmt::Display| format!("{v} is out of the range of {name}");
    let int = |v: Number| -> Result<i128, String> {
        match v {
            Number::Int(i) => Ok(i),
            Number::Float(f) => Err(format!("{f} is not a whole number, as {name} needs")),
            Number::Bool(b) => Err(format!("{b} is not a number, as {name} needs")),
        }
    };
    macro_rules! int_as {
        ($t:ty) => {{
            let i = int(v)?;
            let x = <$t>::try_from(i).map_err(|_| out_of_range(&i))?;
            out.extend_from_slice(&x.to_le_bytes());
        }};
    }
    match data_type {
        DataType::Boolean => match v {
            Number::Bool(b) => out.push(u8::from(b)),
            other => return Err(format!("{other} is not true or false, as BOOL needs")),
        },
        DataType::U8 => int_as!(u8),
        DataType::U16 => int_as!(u16),
        DataType::U32 => int_as!(u32),
        DataType::U64 => int_as!(u64),
        DataType::I8 => int_as!(i8),
        DataType::I16 => int_as!(i16),
        DataType::I32 => int_as!(i32),
        DataType::I64 => int_as!(i64),
        DataType::F32 | DataType::F64 => {
            let f = match v {
                Number::Int(i) => i as f64,
                Number::Float(f) => f,
                Number::Bool(b) => return Err(format!("{b} is not a number, as {name} needs")),
            };
            if data_type == DataType::F32 {
                out.extend_from_slice(&(f as f32).to_le_bytes());
            } else {
                out.extend_from_slice(&f.to_le_bytes());
            }
        }
        DataType::F16 | DataType::BF16 => {
            return Err(format!(
                "{name} values cannot be sent as JSON numbers: send the tensor as binary data"
            ));
        }
    }
    Ok(())
}

/// A JSON leaf value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    Int(i128),
    Float(f64),
    Bool(bool),
}

impl std::fmt::Display for Number {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Number::Int(i) => write!(f, "{i}"),
            Number::Float(x) => write!(f, "{x}"),
            Number::Bool(b) => write!(f, "{b}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(shape: &[Option<i64>]) -> Port {
        Port {
            name: "image".into(),
            element_type: ElementType::U8,
            shape: shape.to_vec(),
        }
    }

    fn input(shape: &[i64], data: &[u8]) -> Input {
        Input {
            name: "image".into(),
            datatype: "UINT8".into(),
            shape: shape.to_vec(),
            data: InputData::Raw(Bytes::copy_from_slice(data)),
        }
    }

    #[test]
    fn data_type_names_round_trip() {
        for name in DATATYPES.split(", ") {
            assert_eq!(Datatype::parse(name).map(Datatype::name), Some(name));
        }
        assert_eq!(Datatype::parse("FLOAT32"), None);
        assert_eq!(Datatype::parse("fp32"), None, "names are case-sensitive");
    }

    #[test]
    fn shapes_must_be_the_ports_with_dynamic_dimensions_free() {
        let p = port(&[Some(1), None, Some(3)]);
        assert_eq!(
            check_shape(&input(&[1, 7, 3], &[]), &p).unwrap(),
            vec![1, 7, 3]
        );
        let e = check_shape(&input(&[1, 3, 7], &[]), &p).unwrap_err();
        assert_eq!(
            e,
            Refusal::Invalid("input 'image': shape [1,3,7], the model takes [1,-1,3]".into())
        );
        let e = check_shape(&input(&[1, 7], &[]), &p).unwrap_err();
        assert!(
            e.message().contains("shape [1,7], the model takes"),
            "{e:?}"
        );
        let e = check_shape(&input(&[1, -2, 3], &[]), &p).unwrap_err();
        assert!(e.message().contains("negative dimension"), "{e:?}");
    }

    #[test]
    fn a_huge_declared_shape_is_refused_without_allocating() {
        let p = port(&[None, None, None, None]);
        let big = i64::MAX / 2;
        let e = check_fixed(input(&[big, big, big, 3], &[0; 12]), 0, &p, DataType::U8).unwrap_err();
        assert!(e.message().contains("is too many bytes"), "{e:?}");
        let e = check_fixed(input(&[1, 2, 2, 3], &[0; 11]), 0, &p, DataType::U8).unwrap_err();
        assert_eq!(
            e.message(),
            "input 'image': shape [1,2,2,3] of UINT8 is 12 bytes, the request has 11 bytes"
        );
        let ok = check_fixed(input(&[1, 2, 2, 3], &[0; 12]), 0, &p, DataType::U8).unwrap();
        assert_eq!(ok.shape, vec![1, 2, 2, 3]);
    }

    #[test]
    fn raw_bytes_elements_are_length_prefixed() {
        let mut raw = Vec::new();
        for e in [&b"ab"[..], b"", b"xyz"] {
            raw.extend_from_slice(&(e.len() as u32).to_le_bytes());
            raw.extend_from_slice(e);
        }
        let got = split_bytes("s", &Bytes::from(raw.clone())).unwrap();
        assert_eq!(got, vec![&b"ab"[..], b"", b"xyz"]);
        let e = split_bytes("s", &Bytes::from(raw[..raw.len() - 1].to_vec())).unwrap_err();
        assert!(
            e.message().contains("element 2 says 3 bytes, 2 are left"),
            "{e:?}"
        );
        let e = split_bytes("s", &Bytes::from_static(&[1, 0])).unwrap_err();
        assert!(e.message().contains("cut short"), "{e:?}");
        let huge = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 1]);
        assert!(split_bytes("s", &huge).is_err());
    }

    #[test]
    fn json_numbers_are_range_checked() {
        let mut out = Vec::new();
        push_value(DataType::U8, Number::Int(255), &mut out).unwrap();
        push_value(DataType::I16, Number::Int(-2), &mut out).unwrap();
        push_value(DataType::F32, Number::Float(0.5), &mut out).unwrap();
        push_value(DataType::F32, Number::Int(2), &mut out).unwrap();
        push_value(DataType::Boolean, Number::Bool(true), &mut out).unwrap();
        let mut want = vec![255u8, 0xfe, 0xff];
        want.extend_from_slice(&0.5f32.to_le_bytes());
        want.extend_from_slice(&2f32.to_le_bytes());
        want.push(1);
        assert_eq!(out, want);
        let e = push_value(DataType::U8, Number::Int(256), &mut out).unwrap_err();
        assert_eq!(e, "256 is out of the range of UINT8");
        assert!(push_value(DataType::I32, Number::Float(1.5), &mut out).is_err());
        assert!(push_value(DataType::Boolean, Number::Int(1), &mut out).is_err());
        assert!(push_value(DataType::F16, Number::Float(1.0), &mut out).is_err());
    }

    #[test]
    fn values_read_back_as_json() {
        let mut data = Vec::new();
        data.extend_from_slice(&1.5f32.to_le_bytes());
        data.extend_from_slice(&(-3.0f32).to_le_bytes());
        assert_eq!(
            json_values(DataType::F32, &data),
            vec![serde_json::json!(1.5), serde_json::json!(-3.0)]
        );
        assert_eq!(
            json_values(DataType::I64, &(-7i64).to_le_bytes()),
            vec![serde_json::json!(-7)]
        );
        // 1.0, -2.0, 65504, the smallest subnormal, infinity in half precision.
        for (h, f) in [
            (0x3c00u16, 1.0f32),
            (0xc000, -2.0),
            (0x7bff, 65504.0),
            (0x0001, 5.960_464_5e-8),
            (0x0000, 0.0),
        ] {
            assert_eq!(f16_to_f32(h), f, "{h:#x}");
        }
        assert!(f16_to_f32(0x7c00).is_infinite());
        assert!(f16_to_f32(0x7e00).is_nan());
    }
}
