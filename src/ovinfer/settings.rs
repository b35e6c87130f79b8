//! The `ovinfer` properties as set (`Settings`), their defaults and bounds, and the checks of
//! them made when the element starts, before the model is read.

use std::path::PathBuf;

use super::input::InputRange;
use super::labels::Labels;
use super::remote::{Options, Target};
use super::roi::{self, ObjectClasses, Selection};
use super::{
    DecoderChoice, InferenceRegion, ModelColorFormat, PerformanceHint, PreProcessBackend,
    ResizeMode, config,
};

pub const DEFAULT_DEVICE: &str = "CPU";
pub const DEFAULT_THRESHOLD: f64 = 0.5;
pub const DEFAULT_INTERVAL: u32 = 1;
pub const DEFAULT_INPUT_RANGE: &str = "auto";
pub const MAX_NIREQ: u32 = 64;
pub const MAX_BATCH: u32 = 32;
pub const DEFAULT_RECLASSIFY_INTERVAL: u32 = 1;
/// `input-max-side`: PaddleOCR's `det_limit_side_len` with `limit_type=max`.
pub const DEFAULT_INPUT_MAX_SIDE: u32 = 960;
pub const MAX_INPUT_SIDE: u32 = 8192;
/// `remote-timeout`, in milliseconds.
pub const DEFAULT_REMOTE_TIMEOUT: u32 = 10_000;

/// The element's properties as set: read when it starts (threshold, interval and stats-interval
/// also while it runs).
#[derive(Debug, Clone)]
pub struct Settings {
    pub model: Option<PathBuf>,
    pub device: String,
    pub labels: Option<PathBuf>,
    pub threshold: f64,
    pub decoder: DecoderChoice,
    pub interval: u32,
    pub input_range: String,
    pub model_color_format: ModelColorFormat,
    pub performance_hint: PerformanceHint,
    pub pre_process_backend: PreProcessBackend,
    pub pre_process_resize: ResizeMode,
    pub nireq: u32,
    pub batch_size: u32,
    pub stats_interval: u32,
    pub model_instance_id: Option<String>,
    pub ov_config: String,
    pub inference_region: InferenceRegion,
    /// `object-class`, as set.
    pub object_class: String,
    pub min_roi_size: u32,
    pub reclassify_interval: u32,
    pub attribute_name: Option<String>,
    /// `input-size`, as set ("" = the model's own, or the decoder's choice).
    pub input_size: String,
    pub input_max_side: u32,
    /// `server` ("" = a local model).
    pub server: String,
    pub remote_model: String,
    pub remote_model_version: String,
    /// `remote-timeout`, ms.
    pub remote_timeout: u32,
    pub max_failures: u32,
    pub ca_file: Option<PathBuf>,
    pub authorization: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            model: None,
            device: DEFAULT_DEVICE.to_string(),
            labels: None,
            threshold: DEFAULT_THRESHOLD,
            decoder: DecoderChoice::Auto,
            interval: DEFAULT_INTERVAL,
            input_range: DEFAULT_INPUT_RANGE.to_string(),
            model_color_format: ModelColorFormat::Rgb,
            performance_hint: PerformanceHint::Latency,
            pre_process_backend: PreProcessBackend::Ovinfer,
            pre_process_resize: ResizeMode::Stretch,
            nireq: 0,
            batch_size: 1,
            stats_interval: 0,
            model_instance_id: None,
            ov_config: String::new(),
            inference_region: InferenceRegion::FullFrame,
            object_class: String::new(),
            min_roi_size: 0,
            reclassify_interval: DEFAULT_RECLASSIFY_INTERVAL,
            attribute_name: None,
            input_size: String::new(),
            input_max_side: DEFAULT_INPUT_MAX_SIDE,
            server: String::new(),
            remote_model: String::new(),
            remote_model_version: String::new(),
            remote_timeout: DEFAULT_REMOTE_TIMEOUT,
            max_failures: 0,
            ca_file: None,
            authorization: None,
        }
    }
}

impl Settings {
    /// The `model` file, which must be set and exist.
    pub fn model_file(&self) -> Result<PathBuf, gst::ErrorMessage> {
        let path = self.model.clone().ok_or_else(|| {
            gst::error_msg!(
                gst::ResourceError::Settings,
                ("no model set: set the model property to an IR .xml, .onnx or .tflite file \
                     (or server=grpc://HOST:PORT and remote-model=NAME to infer on a KServe v2 \
                     server)")
            )
        })?;
        if !path.is_file() {
            return Err(gst::error_msg!(
                gst::ResourceError::NotFound,
                (
                    "model file {} does not exist: check the model property",
                    path.display()
                )
            ));
        }
        Ok(path)
    }

    /// The remote server's settings (`None`: a local model), checked: `server` and `model` are
    /// exclusive, `remote-model` goes with `server`.
    pub fn remote(&self) -> Result<Option<Options>, gst::ErrorMessage> {
        let fail = |e: String| Err(gst::error_msg!(gst::ResourceError::Settings, ("{e}")));
        let server = self.server.trim();
        let model = self.remote_model.trim();
        if server.is_empty() {
            if !model.is_empty() {
                return fail(format!(
                    "remote-model '{model}' is set but server is not: set server=grpc://HOST:PORT \
                     of the KServe v2 server that serves it"
                ));
            }
            return Ok(None);
        }
        if let Some(path) = &self.model {
            return fail(format!(
                "model ({}) and server ({server}) are both set: ovinfer infers either locally \
                 or on a server; clear one of them",
                path.display()
            ));
        }
        let target = Target::parse(server);
        let target = match target {
            Ok(t) => t,
            Err(e) => return fail(e),
        };
        if model.is_empty() {
            return fail(format!(
                "server {server} is set but remote-model is not: set remote-model to the name \
                 the server serves the model under"
            ));
        }
        Ok(Some(Options {
            target,
            model: model.to_string(),
            version: self.remote_model_version.trim().to_string(),
            timeout: std::time::Duration::from_millis(u64::from(self.remote_timeout.max(1))),
            ca_file: self.ca_file.clone(),
            authorization: self
                .authorization
                .as_ref()
                .map(|a| a.trim().to_string())
                .filter(|a| !a.is_empty()),
        }))
    }

    /// `input-size`, parsed: `None` when unset.
    pub fn input_size(&self) -> Result<Option<(usize, usize)>, String> {
        let s = self.input_size.trim();
        if s.is_empty() {
            return Ok(None);
        }
        let size = s.split_once(['x', 'X']).and_then(|(w, h)| {
            let (w, h) = (w.trim().parse::<u32>().ok()?, h.trim().parse::<u32>().ok()?);
            let ok = |v: u32| (1..=MAX_INPUT_SIDE).contains(&v);
            (ok(w) && ok(h)).then_some((w as usize, h as usize))
        });
        size.map(Some).ok_or_else(|| {
            format!(
                "input-size must be WIDTHxHEIGHT with sides of 1 to {MAX_INPUT_SIDE} pixels \
                 (e.g. \"320x48\"), or empty, got {s:?}"
            )
        })
    }

    /// `input-range`, parsed.
    pub fn range(&self) -> Result<InputRange, gst::ErrorMessage> {
        InputRange::parse(&self.input_range)
            .map_err(|e| gst::error_msg!(gst::ResourceError::Settings, ("{e}")))
    }

    /// `pre-process-resize` with `pre-process-backend`: a letterbox of whole frames is
    /// ovinfer's only. OpenVINO's pre-processing resizes to the model's whole input (its C API's
    /// resize takes no size, and a pad after it would change the input's size), so it cannot
    /// place the picture in a part of it. ROIs are always ovinfer's.
    pub fn check_resize(&self) -> Result<(), gst::ErrorMessage> {
        if self.pre_process_resize == ResizeMode::Stretch
            || self.pre_process_backend == PreProcessBackend::Ovinfer
            || self.inference_region == InferenceRegion::RoiList
        {
            return Ok(());
        }
        Err(gst::error_msg!(
            gst::ResourceError::Settings,
            (
                "pre-process-resize={} needs pre-process-backend=ovinfer: OpenVINO's \
                 pre-processing only stretches frames to the model's whole input",
                self.pre_process_resize.nick()
            )
        ))
    }

    /// `ov-config`, parsed, with ovinfer's defaults for the device.
    pub fn ov_properties(&self) -> Result<Vec<(String, String)>, gst::ErrorMessage> {
        config::parse(&self.ov_config)
            .map(|pairs| config::with_defaults(&self.device, pairs))
            .map_err(|e| gst::error_msg!(gst::ResourceError::Settings, ("{e}")))
    }

    /// Which ROIs are inferred (`object-class`, `min-roi-size`).
    pub fn selection(&self) -> Selection {
        Selection {
            classes: ObjectClasses::parse(&self.object_class),
            min_size: self.min_roi_size,
        }
    }

    /// The name of the attribute a class becomes on an ROI: `attribute-name`, else made from
    /// the model file's stem `stem`.
    pub fn attribute(&self, stem: &str) -> Result<String, gst::ErrorMessage> {
        let name = match &self.attribute_name {
            Some(name) => name.clone(),
            None => roi::default_attribute_name(stem),
        };
        roi::valid_attribute_name(&name).map_err(|e| {
            let hint = if self.attribute_name.is_none() {
                " (made from the model file's name): set attribute-name"
            } else {
                ""
            };
            gst::error_msg!(gst::ResourceError::Settings, ("{e}{hint}"))
        })?;
        Ok(name)
    }

    /// The `labels` file read (no labels without one).
    pub fn read_labels(&self) -> Result<Labels, gst::ErrorMessage> {
        Ok(match &self.labels {
            None => Labels::default(),
            Some(p) => Labels::read(p).map_err(|e| {
                gst::error_msg!(
                    gst::ResourceError::NotFound,
                    (
                        "labels file {} cannot be read ({e}): check the labels property",
                        p.display()
                    )
                )
            })?,
        })
    }
}
