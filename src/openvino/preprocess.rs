//! Pre/post-processing built into a model: from the frames' pixel format, size and layout to
//! the model's input (colour conversion, resize, element type, mean/scale), every output as f32.

use openvino_sys as sys;

use super::core::Model;
use super::{Error, Guard, Result, check, cstring};

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

impl Model {
    /// The model with pre-processing from `input` to its own input, and every output converted to
    /// f32. It takes the model: OpenVINO builds the steps into the model itself, so a model once
    /// pre-processed cannot be pre-processed again for other frames (read it again instead).
    pub fn with_preprocessing(self, input: &InputPreprocessing) -> Result<Model> {
        let n_outputs = self.outputs()?.len();
        Preprocessor::new(&self)?.build(input, n_outputs)
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
