//! `ovinfer`: OpenVINO inference on raw video frames; results attached as meta (see `crate::meta`).

pub mod batch;
pub mod decode;
pub mod frame;
mod imp;
pub mod input;
pub mod labels;
pub mod pool;
pub mod scale;
pub mod shared;
pub mod stats;

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
        }
    }
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
}

/// Who scales frames to the model's input size (`pre-process-backend` property).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstOvInferPreProcessBackend")]
pub enum PreProcessBackend {
    #[default]
    #[enum_value(
        name = "ovinfer scales while writing the input tensor; OpenVINO converts colour and layout at the model's size",
        nick = "ovinfer"
    )]
    Ovinfer,
    #[enum_value(
        name = "OpenVINO does all pre-processing, reading the frame in place at any size",
        nick = "openvino"
    )]
    Openvino,
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "ovinfer",
        gst::Rank::NONE,
        OvInfer::static_type(),
    )
}
