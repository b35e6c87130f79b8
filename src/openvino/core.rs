//! The OpenVINO runtime core, models read from files (their inputs and outputs, reshaping the
//! input) and compiling them for a device.

use std::ffi::CString;
use std::path::Path;

use openvino_sys as sys;

use super::request::CompiledModel;
use super::{Result, check, cstring, ensure_loaded, owned_string};

/// Element types the elements deal with; anything else is reported by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElementType {
    U8,
    F32,
    F16,
    Other(u32),
}

impl ElementType {
    fn from_sys(t: sys::ov_element_type_e) -> Self {
        match t {
            sys::ov_element_type_e::U8 => ElementType::U8,
            sys::ov_element_type_e::F32 => ElementType::F32,
            sys::ov_element_type_e::F16 => ElementType::F16,
            other => ElementType::Other(other as u32),
        }
    }

    pub fn is_float(self) -> bool {
        matches!(self, ElementType::F32 | ElementType::F16)
    }
}

/// Name, element type and shape of a model input or output (`None` = dynamic dimension).
#[derive(Debug, Clone, PartialEq)]
pub struct PortInfo {
    pub name: String,
    pub element_type: ElementType,
    pub shape: Vec<Option<i64>>,
}

impl PortInfo {
    /// The shape with dynamic dimensions shown as `?`, e.g. `[1,3,?,?]`.
    pub fn shape_string(&self) -> String {
        let dims: Vec<String> = self
            .shape
            .iter()
            .map(|d| d.map_or("?".to_string(), |v| v.to_string()))
            .collect();
        format!("[{}]", dims.join(","))
    }

    /// Static dimensions, if every dimension is static.
    pub fn static_shape(&self) -> Option<Vec<usize>> {
        self.shape
            .iter()
            .map(|d| d.and_then(|v| usize::try_from(v).ok()))
            .collect()
    }
}

/// # Safety
/// `port` must be a valid port returned by OpenVINO.
unsafe fn port_info(port: *const sys::ov_output_const_port_t) -> Result<PortInfo> {
    // SAFETY: `port` is valid (caller); every out-parameter is a valid local, and what OpenVINO
    // allocates for us (name, partial shape) is freed here.
    unsafe {
        let mut name = std::ptr::null_mut();
        // Ports without a tensor name are legal; an empty name is fine then.
        let name = if sys::ov_port_get_any_name(port, &mut name) == sys::ov_status_e::OK {
            owned_string(name)
        } else {
            String::new()
        };
        let mut et = sys::ov_element_type_e::DYNAMIC;
        check(
            sys::ov_port_get_element_type(port, &mut et),
            "ov_port_get_element_type",
        )?;
        let mut ps = sys::ov_partial_shape_t {
            rank: sys::ov_dimension_t { min: 0, max: 0 },
            dims: std::ptr::null_mut(),
        };
        check(
            sys::ov_port_get_partial_shape(port, &mut ps),
            "ov_port_get_partial_shape",
        )?;
        let mut shape = Vec::new();
        if ps.rank.min == ps.rank.max && !ps.dims.is_null() {
            let dims = std::slice::from_raw_parts(ps.dims, ps.rank.max.max(0) as usize);
            shape = dims
                .iter()
                .map(|d| (d.min == d.max && d.min >= 0).then_some(d.min))
                .collect();
        }
        sys::ov_partial_shape_free(&mut ps);
        Ok(PortInfo {
            name,
            element_type: ElementType::from_sys(et),
            shape,
        })
    }
}

handle!(
    /// An OpenVINO runtime core. Thread-safe.
    pub Core(sys::ov_core_t), sys::ov_core_free
);

// SAFETY: ov::Core is documented thread-safe; the handle is only freed in Drop.
unsafe impl Send for Core {}
// SAFETY: as above, all methods used take the core by const pointer.
unsafe impl Sync for Core {}

impl Core {
    pub fn new() -> Result<Core> {
        ensure_loaded()?;
        let mut ptr = std::ptr::null_mut();
        // SAFETY: the library is loaded; `ptr` is a valid out-parameter.
        check(unsafe { sys::ov_core_create(&mut ptr) }, "ov_core_create")?;
        Ok(Core(ptr))
    }

    /// Reads an IR (.xml with its .bin beside it), ONNX or TFLite model.
    pub fn read_model(&self, path: &Path) -> Result<Model> {
        let p = cstring(&path.to_string_lossy())?;
        let mut ptr = std::ptr::null_mut();
        // SAFETY: valid core and C strings; a null bin path lets OpenVINO find the IR weights.
        check(
            unsafe { sys::ov_core_read_model(self.0, p.as_ptr(), std::ptr::null(), &mut ptr) },
            "reading the model",
        )?;
        Ok(Model(ptr))
    }

    /// Compiles a model for `device` with string properties such as ("PERFORMANCE_HINT", "LATENCY").
    pub fn compile(
        &self,
        model: &Model,
        device: &str,
        properties: &[(&str, &str)],
    ) -> Result<CompiledModel> {
        let device = cstring(device)?;
        let owned: Vec<(CString, CString)> = properties
            .iter()
            .map(|(k, v)| Ok((cstring(k)?, cstring(v)?)))
            .collect::<Result<_>>()?;
        let props: Vec<sys::ov_property_t> = owned
            .iter()
            .map(|(k, v)| sys::ov_property_t {
                key: k.as_ptr(),
                value: v.as_ptr().cast(),
            })
            .collect();
        let mut ptr = std::ptr::null_mut();
        // SAFETY: valid core and model; `props` and the strings it points to outlive the call.
        check(
            unsafe {
                sys::ov_core_compile_model_props(
                    self.0,
                    model.0,
                    device.as_ptr(),
                    props.len(),
                    props.as_ptr(),
                    &mut ptr,
                )
            },
            "compiling the model",
        )?;
        Ok(CompiledModel(ptr))
    }
}

handle!(
    /// A model read from a file (not yet compiled).
    pub Model(sys::ov_model_t), sys::ov_model_free
);

// SAFETY: a model is only mutated through &mut or by building a new one; the handle is owned.
unsafe impl Send for Model {}
// SAFETY: the methods taking &self only read the model.
unsafe impl Sync for Model {}

impl Model {
    fn ports(&self, inputs: bool) -> Result<Vec<PortInfo>> {
        let mut n = 0usize;
        // SAFETY: valid model, valid out-parameters; each port is freed after reading it.
        unsafe {
            if inputs {
                check(
                    sys::ov_model_inputs_size(self.0, &mut n),
                    "ov_model_inputs_size",
                )?;
            } else {
                check(
                    sys::ov_model_outputs_size(self.0, &mut n),
                    "ov_model_outputs_size",
                )?;
            }
            (0..n)
                .map(|i| {
                    let mut port = std::ptr::null_mut();
                    if inputs {
                        check(
                            sys::ov_model_const_input_by_index(self.0, i, &mut port),
                            "ov_model_const_input_by_index",
                        )?;
                    } else {
                        check(
                            sys::ov_model_const_output_by_index(self.0, i, &mut port),
                            "ov_model_const_output_by_index",
                        )?;
                    }
                    let info = port_info(port);
                    sys::ov_output_const_port_free(port);
                    info
                })
                .collect()
        }
    }

    pub fn inputs(&self) -> Result<Vec<PortInfo>> {
        self.ports(true)
    }

    pub fn outputs(&self) -> Result<Vec<PortInfo>> {
        self.ports(false)
    }

    /// Sets a static shape on the single input (e.g. a dynamic batch to 1).
    pub fn reshape_input(&mut self, dims: &[i64]) -> Result<()> {
        let mut ps = sys::ov_partial_shape_t {
            rank: sys::ov_dimension_t { min: 0, max: 0 },
            dims: std::ptr::null_mut(),
        };
        // SAFETY: valid model; the partial shape is created and freed here.
        unsafe {
            check(
                sys::ov_partial_shape_create_static(dims.len() as i64, dims.as_ptr(), &mut ps),
                "ov_partial_shape_create_static",
            )?;
            let r = check(
                sys::ov_model_reshape_single_input(self.0, ps),
                "reshaping the model input",
            );
            sys::ov_partial_shape_free(&mut ps);
            r
        }
    }
}
