//! `ovinfer`: OpenVINO inference on raw video frames; results attached as meta (see `crate::meta`).
//!
//! The element itself (GStreamer glue) is in `imp`. Beside it: `settings` (the properties as
//! set and their checks), `config` (`ov-config`), `labels`, `model` (reading the model file),
//! `input` (how frames become the model's input), `resize` (where a picture lies in the input,
//! `pre-process-resize`, and boxes mapped back), `frame` and `convert` (the frames written into
//! the input tensor), `compiled` (what is held for the negotiated caps), `pool` (a model instance
//! and its infer requests, local or on a server), `remote` (inference on a KServe v2 server:
//! `server=`), `batch` (each frame's results in a batch's outputs), `decode` (the
//! outputs read as detections or classes), `roi` (which ROIs `inference-region=roi-list` infers
//! on and how their results come back), `reclassify` (results of tracked objects reused,
//! `reclassify-interval`), `shared` (what the whole process shares), `state` (one run's state
//! and the frames in flight) and `stats` (counters and timings).

pub mod batch;
mod compiled;
pub mod config;
pub mod convert;
pub mod decode;
pub mod frame;
mod imp;
pub mod input;
pub mod labels;
mod model;
pub mod pool;
pub mod reclassify;
pub mod remote;
pub mod resize;
pub mod roi;
mod settings;
pub mod shared;
mod state;
pub mod stats;
mod straighten;

use gst::glib;
use gst::prelude::*;

glib::wrapper! {
    pub struct OvInfer(ObjectSubclass<imp::OvInfer>) @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

/// Which output decoder to use (`decoder` property).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstOvInferDecoder")]
pub enum DecoderChoice {
    #[default]
    #[enum_value(name = "Pick from the model's output shapes", nick = "auto")]
    Auto,
    #[enum_value(name = "SSD DetectionOutput [1,1,N,7]", nick = "ssd")]
    Ssd,
    #[enum_value(name = "BlazeFace anchors + NMS", nick = "blazeface")]
    BlazeFace,
    #[enum_value(name = "YOLOv8/v11 [1,4+C,N] + NMS", nick = "yolo")]
    Yolo,
    #[enum_value(name = "Whole-frame classification [1,C]", nick = "classification")]
    Classification,
    #[enum_value(
        name = "Text detection: DB probability map [1,1,H,W] to text boxes (PP-OCR)",
        nick = "text-detection"
    )]
    TextDetection,
    #[enum_value(
        name = "Text recognition: CTC [1,T,C] to text (PP-OCR)",
        nick = "text-recognition"
    )]
    TextRecognition,
}

impl DecoderChoice {
    pub fn kind(self) -> Option<decode::DecoderKind> {
        use decode::DecoderKind as K;
        match self {
            DecoderChoice::Auto => None,
            DecoderChoice::Ssd => Some(K::Ssd),
            DecoderChoice::BlazeFace => Some(K::BlazeFace),
            DecoderChoice::Yolo => Some(K::Yolo),
            DecoderChoice::Classification => Some(K::Classification),
            DecoderChoice::TextDetection => Some(K::TextDetection),
            DecoderChoice::TextRecognition => Some(K::TextRecognition),
        }
    }
}

/// What the model runs on (`inference-region` property).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstOvInferRegion")]
pub enum InferenceRegion {
    #[default]
    #[enum_value(name = "The whole frame", nick = "full-frame")]
    FullFrame,
    #[enum_value(
        name = "Each region of interest (GstVideoRegionOfInterestMeta) of the frame",
        nick = "roi-list"
    )]
    RoiList,
}

/// Channel order the model was trained on (`model-color-format` property).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstOvInferColorFormat")]
pub enum ModelColorFormat {
    #[default]
    #[enum_value(name = "RGB", nick = "rgb")]
    Rgb,
    #[enum_value(name = "BGR", nick = "bgr")]
    Bgr,
}

/// OpenVINO performance hint the model is compiled with (`performance-hint` property).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstOvInferPerformanceHint")]
pub enum PerformanceHint {
    #[default]
    #[enum_value(
        name = "Latency: one stream, every core on each frame",
        nick = "latency"
    )]
    Latency,
    #[enum_value(
        name = "Throughput: several streams, frames in parallel",
        nick = "throughput"
    )]
    Throughput,
}

impl PerformanceHint {
    /// The value of OpenVINO's PERFORMANCE_HINT property.
    pub fn openvino_name(self) -> &'static str {
        match self {
            PerformanceHint::Latency => "LATENCY",
            PerformanceHint::Throughput => "THROUGHPUT",
        }
    }

    /// Requests in flight for `nireq=0`, from OpenVINO's optimal number for the device and hint
    /// (one per stream on CPU). With `throughput` it is doubled: frames leave in order, so with
    /// one request per stream, a stream that finishes a later frame first sits idle until the
    /// earlier frame is done and its request free; a second request per stream keeps every
    /// stream fed. With `latency` it stays as OpenVINO says (1 on CPU): a live frame leaves
    /// as soon as its own inference is over.
    pub fn default_requests(self, optimal: usize) -> usize {
        match self {
            PerformanceHint::Latency => optimal,
            PerformanceHint::Throughput => optimal * 2,
        }
    }
}

/// Who turns frames into the model's picture (`pre-process-backend` property).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstOvInferPreProcessBackend")]
pub enum PreProcessBackend {
    #[default]
    #[enum_value(
        name = "ovinfer converts and resizes while writing the input tensor, as OpenCV's cvtColor + resize",
        nick = "ovinfer"
    )]
    Ovinfer,
    #[enum_value(
        name = "OpenVINO converts and resizes the frames it can take right, read in place",
        nick = "openvino"
    )]
    Openvino,
}

/// How a picture (a frame, or an ROI's crop) is fitted into the model's input
/// (`pre-process-resize` property); see `resize`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstOvInferResize")]
pub enum ResizeMode {
    #[default]
    #[enum_value(
        name = "Scaled to the input's width and height, the aspect ratio not kept",
        nick = "stretch"
    )]
    Stretch,
    #[enum_value(
        name = "Aspect ratio kept, scaled to fit, centred, padded with grey 114 (Ultralytics' LetterBox)",
        nick = "letterbox"
    )]
    Letterbox,
    #[enum_value(
        name = "Aspect ratio kept, scaled to fit, in the top-left corner, padded right and bottom with grey 114",
        nick = "letterbox-top-left"
    )]
    LetterboxTopLeft,
    #[enum_value(
        name = "Aspect ratio kept, scaled to the input's height (width at most the input's), in the top-left corner, padded right with grey 128 (PP-OCR's text recognition and orientation: 0 after its normalisation); text-recognition's default",
        nick = "fit-height"
    )]
    FitHeight,
}

impl ResizeMode {
    /// The property value's name.
    pub fn nick(self) -> &'static str {
        match self {
            ResizeMode::Stretch => "stretch",
            ResizeMode::Letterbox => "letterbox",
            ResizeMode::LetterboxTopLeft => "letterbox-top-left",
            ResizeMode::FitHeight => "fit-height",
        }
    }
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "ovinfer",
        gst::Rank::NONE,
        OvInfer::static_type(),
    )
}

#[cfg(test)]
mod tests {
    use super::{PerformanceHint, ResizeMode};
    use gst::glib;
    use gst::prelude::*;

    #[test]
    fn resize_nicks_are_the_property_values() {
        for mode in [
            ResizeMode::Stretch,
            ResizeMode::Letterbox,
            ResizeMode::LetterboxTopLeft,
            ResizeMode::FitHeight,
        ] {
            let value = mode.to_value();
            let (_, value) = glib::EnumValue::from_value(&value).expect("enum value");
            assert_eq!(mode.nick(), value.nick());
        }
    }

    #[test]
    fn throughput_keeps_a_second_request_per_stream() {
        // OpenVINO's numbers on a 2-core CPU: 1 (latency), 2 (throughput: two streams).
        assert_eq!(PerformanceHint::Latency.default_requests(1), 1);
        assert_eq!(PerformanceHint::Throughput.default_requests(2), 4);
    }
}
