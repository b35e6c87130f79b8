//! A small safe layer over the OpenVINO C API (`openvino-sys`, loaded at run time).
//!
//! Only what the elements need: read a model, describe its ports, add pre/post-processing
//! (colour conversion, resize, layout, element type, mean/scale), compile, and run inference
//! requests. The library itself is found by [`ensure_loaded`].

use std::ffi::{CStr, CString, c_char};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use openvino_sys as sys;

/// Environment variable naming the OpenVINO C library (file) or the folder holding it.
pub const LIBRARY_ENV: &str = "OVLVA_OPENVINO_LIB";

/// Where `scripts/setup.sh` puts the pinned OpenVINO wheel, fixed when the plugin is built.
const PROJECT_VENV: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv");

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// Turns a status code into an error carrying OpenVINO's own last message.
fn check(status: sys::ov_status_e, what: &str) -> Result<()> {
    if status == sys::ov_status_e::OK {
        return Ok(());
    }
    // SAFETY: both functions return pointers to static or thread-local NUL-terminated strings
    // owned by the library (never freed by the caller); null is handled.
    let detail = unsafe {
        let last = sys::ov_get_last_err_msg();
        if last.is_null() || *last == 0 {
            let info = sys::ov_get_error_info(status);
            if info.is_null() {
                String::new()
            } else {
                CStr::from_ptr(info).to_string_lossy().into_owned()
            }
        } else {
            CStr::from_ptr(last).to_string_lossy().into_owned()
        }
    };
    Err(Error(format!(
        "{what} failed ({status:?}): {}",
        detail.trim()
    )))
}

fn cstring(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error(format!("string contains a NUL byte: {s:?}")))
}

/// Takes ownership of a string allocated by OpenVINO.
///
/// # Safety
/// `ptr` must be null or a string returned by OpenVINO that the caller must free with `ov_free`.
unsafe fn owned_string(ptr: *mut c_char) -> String {
    if ptr.is_null() {
        return String::new();
    }
    // SAFETY: guaranteed by the caller: a valid NUL-terminated string we now own.
    unsafe {
        let s = CStr::from_ptr(ptr).to_string_lossy().into_owned();
        sys::ov_free(ptr);
        s
    }
}

// ---------------------------------------------------------------------------------------------
// Finding and loading the library

static LOADED: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();

/// Candidate library files, in the order they are tried.
fn candidates() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut files: Vec<PathBuf> = Vec::new();
    // An explicit choice is the only candidate: falling back elsewhere would hide a typo.
    if let Some(v) = std::env::var_os(LIBRARY_ENV) {
        let p = PathBuf::from(v);
        if !p.is_dir() {
            return vec![p];
        }
        dirs.push(p);
    }
    let site_packages_libs = |venv: &Path| -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(venv.join("lib")) else {
            return Vec::new();
        };
        let mut found: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path().join("site-packages/openvino/libs"))
            .filter(|p| p.is_dir())
            .collect();
        found.sort();
        found
    };
    if let Some(venv) = std::env::var_os("VIRTUAL_ENV") {
        dirs.extend(site_packages_libs(Path::new(&venv)));
    }
    dirs.extend(site_packages_libs(Path::new(PROJECT_VENV)));
    if let Some(paths) = std::env::var_os("LD_LIBRARY_PATH") {
        dirs.extend(std::env::split_paths(&paths));
    }
    if let Some(install) = std::env::var_os("OPENVINO_INSTALL_DIR") {
        dirs.push(PathBuf::from(install).join("runtime/lib/intel64"));
    }
    dirs.push(PathBuf::from("/opt/intel/openvino/runtime/lib/intel64"));
    for dir in dirs {
        let plain = dir.join("libopenvino_c.so");
        if plain.exists() {
            files.push(plain);
            continue;
        }
        // The PyPI wheel ships only versioned names (libopenvino_c.so.2641).
        if let Ok(entries) = std::fs::read_dir(&dir) {
            let mut versioned: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("libopenvino_c.so."))
                })
                .collect();
            versioned.sort();
            files.extend(versioned.pop());
        }
    }
    files
}

/// Loads the OpenVINO C library once per process and returns the path it came from.
///
/// Search order: `$OVLVA_OPENVINO_LIB` (file or folder; when set, nothing else is tried), the
/// active virtualenv, the project's
/// `.venv` (made by `scripts/setup.sh`), `LD_LIBRARY_PATH`, `$OPENVINO_INSTALL_DIR`,
/// `/opt/intel/openvino`. The library is loaded from its own folder, where it finds its plugins.
pub fn ensure_loaded() -> Result<&'static Path> {
    let loaded = LOADED.get_or_init(|| {
        let tried = candidates();
        let mut failures = Vec::new();
        for path in &tried {
            if !path.exists() {
                failures.push(format!("{} (missing)", path.display()));
                continue;
            }
            match sys::library::load_from(path.clone()) {
                Ok(()) => return Ok(path.clone()),
                Err(e) => failures.push(format!("{}: {e}", path.display())),
            }
        }
        Err(format!(
            "the OpenVINO C library (libopenvino_c.so) was not found{}. Run `make setup` in the \
             ovlva checkout (it installs the pinned OpenVINO wheel into .venv), or set \
             {LIBRARY_ENV} to the wheel's library, e.g. \
             .venv/lib/python3.11/site-packages/openvino/libs/libopenvino_c.so.2641",
            if failures.is_empty() {
                String::new()
            } else {
                format!(" (tried: {})", failures.join("; "))
            }
        ))
    });
    loaded.as_deref().map_err(|e| Error(e.clone()))
}

/// The loaded runtime's version, e.g. "2026.4.1-...".
pub fn version() -> Result<String> {
    ensure_loaded()?;
    let mut v = sys::ov_version_t {
        buildNumber: std::ptr::null(),
        description: std::ptr::null(),
    };
    // SAFETY: the library is loaded; `v` is a valid out-parameter freed below.
    unsafe {
        check(
            sys::ov_get_openvino_version(&mut v),
            "ov_get_openvino_version",
        )?;
        let s = CStr::from_ptr(v.buildNumber).to_string_lossy().into_owned();
        sys::ov_version_free(&mut v);
        Ok(s)
    }
}

// ---------------------------------------------------------------------------------------------
// Core, models and ports

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

/// Declares an owning wrapper of an OpenVINO handle, freed exactly once on drop.
macro_rules! handle {
    ($(#[$doc:meta])* $vis:vis $name:ident($ty:ty), $free:path) => {
        $(#[$doc])*
        $vis struct $name(*mut $ty);

        impl Drop for $name {
            fn drop(&mut self) {
                // SAFETY: the pointer was returned by the OpenVINO call that created this
                // handle, is owned by this wrapper alone and is freed only here.
                unsafe { $free(self.0) }
            }
        }
    };
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

    /// The model with pre-processing from `input` to its own input, and every output converted to
    /// f32. It takes the model: OpenVINO builds the steps into the model itself, so a model once
    /// pre-processed cannot be pre-processed again for other frames (read it again instead).
    pub fn with_preprocessing(self, input: &InputPreprocessing) -> Result<Model> {
        let n_outputs = self.outputs()?.len();
        Preprocessor::new(&self)?.build(input, n_outputs)
    }
}

// ---------------------------------------------------------------------------------------------
// Pre/post-processing

/// Pixel layouts a video frame can come in, as OpenVINO's pre-processing understands them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    Rgb,
    Bgr,
    Rgbx,
    Bgrx,
    /// Y plane then interleaved UV plane, in one tensor of height h*3/2.
    Nv12,
    /// Y, U, V planes in one tensor of height h*3/2.
    I420,
}

impl PixelFormat {
    fn color(self) -> sys::ov_color_format_e {
        match self {
            PixelFormat::Rgb => sys::ov_color_format_e::RGB,
            PixelFormat::Bgr => sys::ov_color_format_e::BGR,
            PixelFormat::Rgbx => sys::ov_color_format_e::RGBX,
            PixelFormat::Bgrx => sys::ov_color_format_e::BGRX,
            PixelFormat::Nv12 => sys::ov_color_format_e::NV12_SINGLE_PLANE,
            PixelFormat::I420 => sys::ov_color_format_e::I420_SINGLE_PLANE,
        }
    }
}

/// What the model's input expects, and what the frames provide.
#[derive(Debug, Clone, PartialEq)]
pub struct InputPreprocessing {
    pub format: PixelFormat,
    pub width: usize,
    pub height: usize,
    /// Resize to the model's size (the frame size differs from it).
    pub resize: bool,
    /// "NCHW" or "NHWC".
    pub model_layout: &'static str,
    /// The model wants BGR channel order (else RGB).
    pub model_bgr: bool,
    /// Element type to convert to before mean/scale (None: keep u8).
    pub convert_to_f32: bool,
    /// value' = (value - mean) / scale, applied after conversion to f32.
    pub mean: f32,
    pub scale: f32,
}

handle!(
    Preprocessor(sys::ov_preprocess_prepostprocessor_t),
    sys::ov_preprocess_prepostprocessor_free
);

/// Frees an OpenVINO handle when it goes out of scope.
struct Guard<T>(*mut T, unsafe fn(*mut T));

impl<T> Drop for Guard<T> {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the pointer came from the OpenVINO call paired with this free function.
            unsafe { (self.1)(self.0) }
        }
    }
}

impl Preprocessor {
    fn new(model: &Model) -> Result<Self> {
        let mut ptr = std::ptr::null_mut();
        // SAFETY: valid model, valid out-parameter.
        check(
            unsafe { sys::ov_preprocess_prepostprocessor_create(model.0, &mut ptr) },
            "creating the pre-processor",
        )?;
        Ok(Preprocessor(ptr))
    }

    fn build(self, p: &InputPreprocessing, n_outputs: usize) -> Result<Model> {
        let model_color = if p.model_bgr {
            sys::ov_color_format_e::BGR
        } else {
            sys::ov_color_format_e::RGB
        };
        // SAFETY: every handle is obtained from the pre-processor we own and freed by its Guard
        // (in reverse order of creation); all out-parameters are valid locals.
        unsafe {
            let mut input = std::ptr::null_mut();
            check(
                sys::ov_preprocess_prepostprocessor_get_input_info_by_index(self.0, 0, &mut input),
                "getting the model input",
            )?;
            let input = Guard(input, sys::ov_preprocess_input_info_free);

            let mut tensor = std::ptr::null_mut();
            check(
                sys::ov_preprocess_input_info_get_tensor_info(input.0, &mut tensor),
                "getting the input tensor info",
            )?;
            let tensor = Guard(tensor, sys::ov_preprocess_input_tensor_info_free);
            check(
                sys::ov_preprocess_input_tensor_info_set_element_type(
                    tensor.0,
                    sys::ov_element_type_e::U8,
                ),
                "setting the input element type",
            )?;
            // The colour format decides the channels (and the h*3/2 rows of single-plane YUV).
            check(
                sys::ov_preprocess_input_tensor_info_set_spatial_static_shape(
                    tensor.0, p.height, p.width,
                ),
                "setting the input size",
            )?;
            let nhwc = Layout::new("NHWC")?;
            check(
                sys::ov_preprocess_input_tensor_info_set_layout(tensor.0, nhwc.0),
                "setting the input layout",
            )?;
            check(
                sys::ov_preprocess_input_tensor_info_set_color_format(tensor.0, p.format.color()),
                "setting the input colour format",
            )?;

            let mut steps = std::ptr::null_mut();
            check(
                sys::ov_preprocess_input_info_get_preprocess_steps(input.0, &mut steps),
                "getting the pre-processing steps",
            )?;
            let steps = Guard(steps, sys::ov_preprocess_preprocess_steps_free);
            // Frames already in the model's colour need no step. Any other colour step comes
            // with a resize: OpenVINO 2026.4 folds a channel reversal with nothing after it into
            // the first convolution of a quantised model, and the model compiled then computes
            // as if the channels had not been reversed (ovinfer converts such frames itself).
            if p.format.color() != model_color {
                if !p.resize {
                    return Err(Error(format!(
                        "refusing OpenVINO's colour conversion from {:?} with no resize (it \
                         mis-compiles on quantised models): convert the frame before",
                        p.format
                    )));
                }
                check(
                    sys::ov_preprocess_preprocess_steps_convert_color(steps.0, model_color),
                    "adding colour conversion",
                )?;
            }
            if p.convert_to_f32 {
                check(
                    sys::ov_preprocess_preprocess_steps_convert_element_type(
                        steps.0,
                        sys::ov_element_type_e::F32,
                    ),
                    "adding element type conversion",
                )?;
            }
            // Not even at the same size: OpenVINO's resize still costs about 1 ms a frame then.
            if p.resize {
                check(
                    sys::ov_preprocess_preprocess_steps_resize(
                        steps.0,
                        sys::ov_preprocess_resize_algorithm_e::RESIZE_LINEAR,
                    ),
                    "adding resize",
                )?;
            }
            if p.convert_to_f32 && (p.mean != 0.0 || p.scale != 1.0) {
                check(
                    sys::ov_preprocess_preprocess_steps_mean(steps.0, p.mean),
                    "adding mean",
                )?;
                check(
                    sys::ov_preprocess_preprocess_steps_scale(steps.0, p.scale),
                    "adding scale",
                )?;
            }

            let mut model_info = std::ptr::null_mut();
            check(
                sys::ov_preprocess_input_info_get_model_info(input.0, &mut model_info),
                "getting the model input info",
            )?;
            let model_info = Guard(model_info, sys::ov_preprocess_input_model_info_free);
            let model_layout = Layout::new(p.model_layout)?;
            check(
                sys::ov_preprocess_input_model_info_set_layout(model_info.0, model_layout.0),
                "setting the model layout",
            )?;

            // Every output as f32, for the decoders.
            for i in 0..n_outputs {
                let mut out = std::ptr::null_mut();
                check(
                    sys::ov_preprocess_prepostprocessor_get_output_info_by_index(
                        self.0, i, &mut out,
                    ),
                    "getting a model output",
                )?;
                let out = Guard(out, sys::ov_preprocess_output_info_free);
                let mut ti = std::ptr::null_mut();
                check(
                    sys::ov_preprocess_output_info_get_tensor_info(out.0, &mut ti),
                    "getting an output tensor info",
                )?;
                let ti = Guard(ti, sys::ov_preprocess_output_tensor_info_free);
                check(
                    sys::ov_preprocess_output_set_element_type(ti.0, sys::ov_element_type_e::F32),
                    "setting an output element type",
                )?;
            }
            let mut built = std::ptr::null_mut();
            check(
                sys::ov_preprocess_prepostprocessor_build(self.0, &mut built),
                "building the pre/post-processing",
            )?;
            Ok(Model(built))
        }
    }
}

handle!(Layout(sys::ov_layout_t), sys::ov_layout_free);

impl Layout {
    fn new(desc: &str) -> Result<Self> {
        let d = cstring(desc)?;
        let mut ptr = std::ptr::null_mut();
        // SAFETY: valid C string and out-parameter.
        check(
            unsafe { sys::ov_layout_create(d.as_ptr(), &mut ptr) },
            "ov_layout_create",
        )?;
        Ok(Layout(ptr))
    }
}

// ---------------------------------------------------------------------------------------------
// Compiled models, requests and tensors

handle!(
    /// A model compiled for a device. Thread-safe; requests are created from it.
    pub CompiledModel(sys::ov_compiled_model_t), sys::ov_compiled_model_free
);

// SAFETY: ov::CompiledModel is documented thread-safe; the handle is owned.
unsafe impl Send for CompiledModel {}
// SAFETY: as above.
unsafe impl Sync for CompiledModel {}

impl CompiledModel {
    pub fn create_request(&self) -> Result<InferRequest> {
        let mut ptr = std::ptr::null_mut();
        // SAFETY: valid compiled model and out-parameter.
        check(
            unsafe { sys::ov_compiled_model_create_infer_request(self.0, &mut ptr) },
            "creating an inference request",
        )?;
        let handle = RequestHandle(ptr);
        let mut t = std::ptr::null_mut();
        // SAFETY: valid request; the returned handle is a new reference, owned by `Tensor`.
        check(
            unsafe { sys::ov_infer_request_get_input_tensor(handle.0, &mut t) },
            "getting the input tensor",
        )?;
        Ok(InferRequest {
            handle,
            own_input: Tensor(t),
            borrowed: false,
        })
    }

    /// A property of the compiled model as text, e.g. "OPTIMAL_NUMBER_OF_INFER_REQUESTS".
    pub fn property(&self, key: &str) -> Result<String> {
        let key = cstring(key)?;
        let mut value = std::ptr::null_mut();
        // SAFETY: valid compiled model and key; on success `value` is a NUL-terminated string
        // allocated by OpenVINO, copied here and then released with ov_free.
        unsafe {
            check(
                sys::ov_compiled_model_get_property(self.0, key.as_ptr(), &mut value),
                "reading a compiled model property",
            )?;
            if value.is_null() {
                return Ok(String::new());
            }
            let text = CStr::from_ptr(value).to_string_lossy().into_owned();
            sys::ov_free(value);
            Ok(text)
        }
    }

    /// The number of requests that keeps the device busy, as OpenVINO computes it for the
    /// compiled model's hint (1 for latency on CPU, one per stream for throughput).
    pub fn optimal_requests(&self) -> Result<usize> {
        let text = self.property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")?;
        text.trim()
            .parse()
            .map_err(|_| Error(format!("OPTIMAL_NUMBER_OF_INFER_REQUESTS is '{text}'")))
    }
}

handle!(
    /// An inference request's handle.
    RequestHandle(sys::ov_infer_request_t), sys::ov_infer_request_free
);

handle!(
    /// A reference to a tensor (its memory is OpenVINO's or, made from a host pointer, the
    /// caller's).
    Tensor(sys::ov_tensor_t), sys::ov_tensor_free
);

/// One inference request. Not shareable between threads at once.
pub struct InferRequest {
    handle: RequestHandle,
    /// The input tensor OpenVINO allocated with the request (the pre-processed input's shape).
    own_input: Tensor,
    /// Whether the input is currently a tensor over the caller's memory instead.
    borrowed: bool,
}

// SAFETY: a request and its tensor handles may move between threads; &mut self serialises use.
unsafe impl Send for InferRequest {}

impl InferRequest {
    /// The request's own input tensor, to copy a frame into.
    pub fn input_bytes(&mut self) -> Result<&mut [u8]> {
        if self.borrowed {
            // SAFETY: valid request and tensor; the request takes its own reference.
            check(
                unsafe { sys::ov_infer_request_set_input_tensor(self.handle.0, self.own_input.0) },
                "restoring the input tensor",
            )?;
            self.borrowed = false;
        }
        let size = self.input_size()?;
        let mut data = std::ptr::null_mut();
        // SAFETY: valid tensor; its memory lives as long as `own_input`, i.e. the request, and
        // the returned slice borrows the request mutably.
        unsafe {
            check(
                sys::ov_tensor_data(self.own_input.0, &mut data),
                "ov_tensor_data",
            )?;
            Ok(std::slice::from_raw_parts_mut(data.cast::<u8>(), size))
        }
    }

    /// Size in bytes of the input the request takes.
    pub fn input_size(&self) -> Result<usize> {
        let mut size = 0usize;
        // SAFETY: valid tensor and out-parameter.
        check(
            unsafe { sys::ov_tensor_get_byte_size(self.own_input.0, &mut size) },
            "ov_tensor_get_byte_size",
        )?;
        Ok(size)
    }

    /// Makes `data` the request's input without copying it: a tensor of the input's shape and
    /// type over that memory. It must be exactly [`InferRequest::input_size`] bytes.
    ///
    /// # Safety
    /// `data` must stay valid and unchanged until the next inference of this request has
    /// finished (returned from [`InferRequest::wait`], or [`InferRequest::is_done`] said so) or
    /// the request is freed; OpenVINO only reads it.
    pub unsafe fn borrow_input(&mut self, data: &[u8]) -> Result<()> {
        let size = self.input_size()?;
        if data.len() != size {
            return Err(Error(format!(
                "the frame has {} bytes, the input tensor takes {size}",
                data.len()
            )));
        }
        // SAFETY: valid tensor handles and out-parameters; the shape is freed after use; the new
        // tensor describes `data`, whose lifetime the caller guarantees (see above), and the
        // request keeps its own reference to it after our handle is freed.
        unsafe {
            let mut et = sys::ov_element_type_e::DYNAMIC;
            check(
                sys::ov_tensor_get_element_type(self.own_input.0, &mut et),
                "ov_tensor_get_element_type",
            )?;
            let mut shape = sys::ov_shape_t {
                rank: 0,
                dims: std::ptr::null_mut(),
            };
            check(
                sys::ov_tensor_get_shape(self.own_input.0, &mut shape),
                "ov_tensor_get_shape",
            )?;
            let mut t = std::ptr::null_mut();
            let status = sys::ov_tensor_create_from_host_ptr(
                et,
                shape,
                data.as_ptr().cast_mut().cast(),
                &mut t,
            );
            sys::ov_shape_free(&mut shape);
            check(status, "creating a tensor over the frame")?;
            let t = Tensor(t);
            check(
                sys::ov_infer_request_set_input_tensor(self.handle.0, t.0),
                "setting the input tensor",
            )?;
        }
        self.borrowed = true;
        Ok(())
    }

    pub fn infer(&mut self) -> Result<()> {
        // SAFETY: valid request.
        check(
            unsafe { sys::ov_infer_request_infer(self.handle.0) },
            "inference",
        )
    }

    /// Starts the inference in OpenVINO's threads and returns at once. The input must not be
    /// touched, nor the outputs read, before [`InferRequest::wait`] (`&mut self` ensures it for
    /// safe code; OpenVINO waits for a running request before freeing it).
    pub fn start(&mut self) -> Result<()> {
        // SAFETY: valid request.
        check(
            unsafe { sys::ov_infer_request_start_async(self.handle.0) },
            "starting an inference",
        )
    }

    /// Waits until a started inference has finished; its error, if any, is returned here.
    pub fn wait(&mut self) -> Result<()> {
        // SAFETY: valid request.
        check(
            unsafe { sys::ov_infer_request_wait(self.handle.0) },
            "inference",
        )
    }

    /// Whether a started inference has finished (without blocking).
    pub fn is_done(&mut self) -> Result<bool> {
        // SAFETY: valid request; a zero timeout only polls.
        let status = unsafe { sys::ov_infer_request_wait_for(self.handle.0, 0) };
        if status == sys::ov_status_e::RESULT_NOT_READY {
            return Ok(false);
        }
        check(status, "inference").map(|_| true)
    }

    /// Output `index` as f32 values with its shape (outputs are converted to f32 by
    /// [`Model::with_preprocessing`]).
    pub fn output_f32(&self, index: usize) -> Result<(Vec<usize>, &[f32])> {
        let mut t = std::ptr::null_mut();
        // SAFETY: valid request; the data stays valid while the request lives and is not run
        // again (the slice borrows the request).
        unsafe {
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
            if et != sys::ov_element_type_e::F32 {
                return Err(Error(format!("output {index} is {et:?}, expected f32")));
            }
            let mut shape = sys::ov_shape_t {
                rank: 0,
                dims: std::ptr::null_mut(),
            };
            check(
                sys::ov_tensor_get_shape(t.0, &mut shape),
                "ov_tensor_get_shape",
            )?;
            let dims: Vec<usize> = std::slice::from_raw_parts(shape.dims, shape.rank as usize)
                .iter()
                .map(|&d| d.max(0) as usize)
                .collect();
            sys::ov_shape_free(&mut shape);
            let mut size = 0usize;
            check(
                sys::ov_tensor_get_size(t.0, &mut size),
                "ov_tensor_get_size",
            )?;
            let mut data = std::ptr::null_mut();
            check(sys::ov_tensor_data(t.0, &mut data), "ov_tensor_data")?;
            Ok((dims, std::slice::from_raw_parts(data.cast::<f32>(), size)))
        }
    }
}
