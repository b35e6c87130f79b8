//! Whole tensors of any element type: the element types a model's ports can have
//! ([`DataType`]), and inference requests that take and give a model's own inputs and outputs as
//! bytes ([`TensorRequest`]), for serving a model as it is (lva-server's KServe API) rather than
//! feeding it frames.

use openvino_sys as sys;

use super::request::{CompiledModel, RequestHandle};
use super::{ElementType, Error, Guard, Result, check};

/// The element types whose values are whole bytes (every type but the sub-byte, 8-bit float and
/// string ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    Boolean,
    U8,
    U16,
    U32,
    U64,
    I8,
    I16,
    I32,
    I64,
    F16,
    BF16,
    F32,
    F64,
}

/// Every [`DataType`] with OpenVINO's enum value.
const TYPES: [(DataType, sys::ov_element_type_e); 13] = {
    use sys::ov_element_type_e as E;
    [
        (DataType::Boolean, E::OV_BOOLEAN),
        (DataType::U8, E::U8),
        (DataType::U16, E::U16),
        (DataType::U32, E::U32),
        (DataType::U64, E::U64),
        (DataType::I8, E::I8),
        (DataType::I16, E::I16),
        (DataType::I32, E::I32),
        (DataType::I64, E::I64),
        (DataType::F16, E::F16),
        (DataType::BF16, E::BF16),
        (DataType::F32, E::F32),
        (DataType::F64, E::F64),
    ]
};

impl DataType {
    fn from_sys(t: sys::ov_element_type_e) -> Option<DataType> {
        TYPES.iter().find(|(_, s)| *s == t).map(|(d, _)| *d)
    }

    fn to_sys(self) -> sys::ov_element_type_e {
        TYPES
            .iter()
            .find(|(d, _)| *d == self)
            .map_or(sys::ov_element_type_e::DYNAMIC, |(_, s)| *s)
    }

    /// The type of a port, if its values are whole bytes.
    pub fn of(element_type: ElementType) -> Option<DataType> {
        match element_type {
            ElementType::U8 => Some(DataType::U8),
            ElementType::F32 => Some(DataType::F32),
            ElementType::F16 => Some(DataType::F16),
            ElementType::Other(raw) => TYPES
                .iter()
                .find(|(_, s)| *s as u32 == raw)
                .map(|(d, _)| *d),
        }
    }

    /// Bytes of one value.
    pub fn size(self) -> usize {
        match self {
            DataType::Boolean | DataType::U8 | DataType::I8 => 1,
            DataType::U16 | DataType::I16 | DataType::F16 | DataType::BF16 => 2,
            DataType::U32 | DataType::I32 | DataType::F32 => 4,
            DataType::U64 | DataType::I64 | DataType::F64 => 8,
        }
    }
}

impl ElementType {
    /// OpenVINO's name of the type (`u8`, `f32`, `boolean`, `string`, `u4`, ...).
    pub fn openvino_name(self) -> &'static str {
        use sys::ov_element_type_e as E;
        let raw = match self {
            ElementType::U8 => return "u8",
            ElementType::F32 => return "f32",
            ElementType::F16 => return "f16",
            ElementType::Other(raw) => raw,
        };
        const NAMES: [(sys::ov_element_type_e, &str); 26] = [
            (E::DYNAMIC, "dynamic"),
            (E::OV_BOOLEAN, "boolean"),
            (E::BF16, "bf16"),
            (E::F16, "f16"),
            (E::F32, "f32"),
            (E::F64, "f64"),
            (E::I4, "i4"),
            (E::I8, "i8"),
            (E::I16, "i16"),
            (E::I32, "i32"),
            (E::I64, "i64"),
            (E::U1, "u1"),
            (E::U2, "u2"),
            (E::U3, "u3"),
            (E::U4, "u4"),
            (E::U6, "u6"),
            (E::U8, "u8"),
            (E::U16, "u16"),
            (E::U32, "u32"),
            (E::U64, "u64"),
            (E::NF4, "nf4"),
            (E::F8E4M3, "f8e4m3"),
            (E::F8E5M3, "f8e5m2"),
            (E::STRING, "string"),
            (E::F4E2M1, "f4e2m1"),
            (E::F8E8M0, "f8e8m0"),
        ];
        NAMES
            .iter()
            .find(|(t, _)| *t as u32 == raw)
            .map_or("unknown", |(_, n)| *n)
    }
}

/// An inference request fed whole tensors: each input set from bytes of its element type, each
/// output read as bytes. For a model compiled as it is (no pre-processing), with any number of
/// inputs and outputs and dynamic dimensions. Not shareable between threads at once.
pub struct TensorRequest {
    handle: RequestHandle,
}

// SAFETY: a request may move between threads; &mut self serialises its use.
unsafe impl Send for TensorRequest {}

impl CompiledModel {
    /// A request for whole tensors ([`TensorRequest`]).
    pub fn create_tensor_request(&self) -> Result<TensorRequest> {
        Ok(TensorRequest {
            handle: self.request_handle()?,
        })
    }
}

impl TensorRequest {
    /// Makes input `index` a tensor of `data_type` and `shape` holding a copy of `data`, which
    /// must be exactly the tensor's size (the product of `shape` times the type's size).
    pub fn set_input(
        &mut self,
        index: usize,
        data_type: DataType,
        shape: &[usize],
        data: &[u8],
    ) -> Result<()> {
        let need = shape
            .iter()
            .try_fold(data_type.size(), |n, &d| n.checked_mul(d));
        if need != Some(data.len()) {
            return Err(Error(format!(
                "input {index}: {} bytes for a {data_type:?} tensor of shape {shape:?}",
                data.len()
            )));
        }
        let dims = shape
            .iter()
            .map(|&d| i64::try_from(d).map_err(|_| Error(format!("dimension {d} too large"))))
            .collect::<Result<Vec<i64>>>()?;
        // SAFETY: every out-parameter is a valid local; the shape is freed after the tensor is
        // created (the tensor copies it); the tensor's memory is OpenVINO's, `data.len()` bytes
        // (checked above against the same shape and type), written before the request takes
        // its own reference to the tensor and our handle is freed.
        unsafe {
            let mut s = sys::ov_shape_t {
                rank: 0,
                dims: std::ptr::null_mut(),
            };
            check(
                sys::ov_shape_create(dims.len() as i64, dims.as_ptr(), &mut s),
                "ov_shape_create",
            )?;
            let mut t = std::ptr::null_mut();
            let status = sys::ov_tensor_create(data_type.to_sys(), s, &mut t);
            sys::ov_shape_free(&mut s);
            check(status, "creating an input tensor")?;
            let tensor = Guard(t, sys::ov_tensor_free);
            let mut size = 0usize;
            check(
                sys::ov_tensor_get_byte_size(tensor.0, &mut size),
                "ov_tensor_get_byte_size",
            )?;
            if size != data.len() {
                return Err(Error(format!(
                    "input {index}: OpenVINO made a tensor of {size} bytes for {} bytes",
                    data.len()
                )));
            }
            if size > 0 {
                let mut ptr = std::ptr::null_mut();
                check(sys::ov_tensor_data(tensor.0, &mut ptr), "ov_tensor_data")?;
                std::ptr::copy_nonoverlapping(data.as_ptr(), ptr.cast::<u8>(), size);
            }
            check(
                sys::ov_infer_request_set_input_tensor_by_index(self.handle.0, index, tensor.0),
                "setting an input tensor",
            )
        }
    }

    /// Runs the inference on the inputs set, and waits for it.
    pub fn infer(&mut self) -> Result<()> {
        // SAFETY: valid request.
        check(
            unsafe { sys::ov_infer_request_infer(self.handle.0) },
            "inference",
        )
    }

    /// Output `index` of the last inference: its element type, shape and bytes (valid until the
    /// request runs again).
    pub fn output(&self, index: usize) -> Result<(ElementType, Vec<usize>, &[u8])> {
        // SAFETY: valid request and out-parameters; the tensor's data stays valid while the
        // request lives and does not run again (the slice borrows the request), as the request
        // keeps its own reference to the tensor after our handle is freed.
        unsafe {
            let mut t = std::ptr::null_mut();
            check(
                sys::ov_infer_request_get_output_tensor_by_index(self.handle.0, index, &mut t),
                "getting an output tensor",
            )?;
            let t = Guard(t, sys::ov_tensor_free);
            let mut et = sys::ov_element_type_e::DYNAMIC;
            check(
                sys::ov_tensor_get_element_type(t.0, &mut et),
                "ov_tensor_get_element_type",
            )?;
            let element_type = match DataType::from_sys(et) {
                Some(DataType::U8) => ElementType::U8,
                Some(DataType::F32) => ElementType::F32,
                Some(DataType::F16) => ElementType::F16,
                _ => ElementType::Other(et as u32),
            };
            let mut shape = sys::ov_shape_t {
                rank: 0,
                dims: std::ptr::null_mut(),
            };
            check(
                sys::ov_tensor_get_shape(t.0, &mut shape),
                "ov_tensor_get_shape",
            )?;
            let dims: Vec<usize> = if shape.dims.is_null() || shape.rank <= 0 {
                Vec::new()
            } else {
                std::slice::from_raw_parts(shape.dims, shape.rank as usize)
                    .iter()
                    .map(|&d| d.max(0) as usize)
                    .collect()
            };
            sys::ov_shape_free(&mut shape);
            let mut size = 0usize;
            check(
                sys::ov_tensor_get_byte_size(t.0, &mut size),
                "ov_tensor_get_byte_size",
            )?;
            if size == 0 {
                return Ok((element_type, dims, &[]));
            }
            let mut data = std::ptr::null_mut();
            check(sys::ov_tensor_data(t.0, &mut data), "ov_tensor_data")?;
            Ok((
                element_type,
                dims,
                std::slice::from_raw_parts(data.cast::<u8>(), size),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_types_round_trip_through_element_types() {
        for (d, s) in TYPES {
            assert_eq!(DataType::from_sys(s), Some(d));
            assert_eq!(d.to_sys(), s);
            let et = match d {
                DataType::U8 => ElementType::U8,
                DataType::F32 => ElementType::F32,
                DataType::F16 => ElementType::F16,
                _ => ElementType::Other(s as u32),
            };
            assert_eq!(DataType::of(et), Some(d));
        }
        let string = ElementType::Other(sys::ov_element_type_e::STRING as u32);
        assert_eq!(DataType::of(string), None);
        assert_eq!(string.openvino_name(), "string");
        assert_eq!(ElementType::Other(999).openvino_name(), "unknown");
        assert_eq!(ElementType::U8.openvino_name(), "u8");
        assert_eq!(DataType::I64.size(), 8);
    }
}
