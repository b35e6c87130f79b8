//! What an `ovinfer` holds for the negotiated caps: the model instance compiled for them, the
//! frames' video info and format, and ovinfer's converter when it pre-processes them. Here too:
//! who pre-processes the frames of given caps ([`frames_input`]), how a frame is written into a
//! request's input (in place, converted, or packed), and how long a live stream's frames may
//! wait for their turn.

use std::sync::Arc;

use gst_video::prelude::*;

use super::convert::{Converter, Layout, YuvMatrix};
use super::pool::{Instance, Keep, Request};
use super::resize::{Placement, pad_level};
use super::state::{Shape, State};
use super::straighten::Straight;
use super::{InferenceRegion, ModelColorFormat, ResizeMode};
use super::{frame, input};
use crate::openvino::{InputPreprocessing, PixelFormat};

/// The model compiled for the negotiated caps, with its infer requests.
pub struct Compiled {
    /// This element's own, or shared by `model-instance-id`.
    pub instance: Arc<Instance>,
    /// The model's input and outputs as compiled.
    pub shape: Shape,
    pub info: gst_video::VideoInfo,
    /// The frames' format as the input tensor takes them (when OpenVINO pre-processes them).
    pub format: PixelFormat,
    /// Converts frames into the model's picture while writing the input tensor, unless
    /// OpenVINO pre-processes them (see `input::feed`).
    pub converter: Option<Converter>,
}

impl Compiled {
    /// Gives the frame to slot `slot` of the request's input: converted into the request's own
    /// tensor when ovinfer converts it; else, for a batch of one, without a copy when its memory
    /// already has the packed layout the input tensor takes (the mapping returned must then
    /// live until the inference is over); else copied into the request's own tensor.
    pub fn feed(
        &self,
        request: &mut Request,
        slot: usize,
        buffer: &gst::Buffer,
    ) -> Result<Option<Keep>, String> {
        let batch = self.instance.batch;
        let sizes = frame::plane_sizes(
            self.format,
            self.info.width() as usize,
            self.info.height() as usize,
        );
        let (offsets, strides) = match buffer.meta::<gst_video::VideoMeta>() {
            Some(m) => (m.offset().to_vec(), m.stride().to_vec()),
            None => (self.info.offset().to_vec(), self.info.stride().to_vec()),
        };
        let strides: Vec<usize> = strides.iter().map(|&s| s.max(0) as usize).collect();
        if self.converter.is_none()
            && let Request::Local(request) = &mut *request
            && batch == 1
            && buffer.n_memory() == 1
            && let Some(len) = frame::packed_len(&offsets, &strides, &sizes)
            && let Ok(mapped) = buffer.clone().into_mapped_buffer_readable()
            && mapped.len() >= len
        {
            // SAFETY: `mapped` keeps the memory mapped and the buffer alive and unchanged (it is
            // only read while in flight); it is returned to live with the job and is dropped
            // only after the inference is over (see `pool::Keep`).
            unsafe { request.borrow_input(&mapped[..len]) }.map_err(|e| e.to_string())?;
            return Ok(Some(Box::new(mapped)));
        }
        let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &self.info)
            .map_err(|_| "cannot map the frame for reading".to_string())?;
        let planes = planes(&frame)?;
        match &self.converter {
            Some(converter) => write_converted(request, slot, batch, converter, &planes, false),
            None => {
                let dst = slot_bytes(request, slot, batch)?;
                if !frame::pack(&planes, &sizes, dst) {
                    return Err(mismatch(&planes, &format!("{sizes:?}"), dst.len()));
                }
                Ok(None)
            }
        }
    }

    /// How long a live stream's frames may wait inside the element for their turn: one frame
    /// duration per frame held (zero without a frame rate).
    pub fn held_latency(&self) -> gst::ClockTime {
        let fps = self.info.fps();
        if fps.numer() <= 0 || fps.denom() <= 0 {
            return gst::ClockTime::ZERO;
        }
        let held = self.instance.frames_held() as u64;
        gst::ClockTime::SECOND
            .mul_div_floor(held * fps.denom() as u64, fps.numer() as u64)
            .unwrap_or(gst::ClockTime::ZERO)
    }
}

/// The planes of a mapped frame: (data, stride) each.
pub fn planes<'a>(
    frame: &'a gst_video::VideoFrameRef<&gst::BufferRef>,
) -> Result<Vec<(&'a [u8], usize)>, String> {
    (0..frame.n_planes())
        .map(|p| {
            let data = frame
                .plane_data(p)
                .map_err(|_| format!("cannot read plane {p}"))?;
            let stride = frame.plane_stride()[p as usize];
            Ok((data, usize::try_from(stride).unwrap_or(0)))
        })
        .collect()
}

/// Slot `slot` of the request's own input tensor (of `batch` slots).
fn slot_bytes(request: &mut Request, slot: usize, batch: usize) -> Result<&mut [u8], String> {
    let input = request.input_bytes()?;
    let len = input.len() / batch.max(1);
    input
        .get_mut(slot * len..(slot + 1) * len)
        .ok_or_else(|| format!("the input tensor has no slot {slot}"))
}

/// Converts `planes` (a whole frame, or the window of it `converter` reads) into slot `slot`
/// of the request's own input tensor, the picture turned over (180°) with `turn`.
pub fn write_converted(
    request: &mut Request,
    slot: usize,
    batch: usize,
    converter: &Converter,
    planes: &[(&[u8], usize)],
    turn: bool,
) -> Result<Option<Keep>, String> {
    let dst = slot_bytes(request, slot, batch)?;
    if !converter.convert(planes, dst) {
        return Err(mismatch(
            planes,
            &format!("{:?}", converter.planes()),
            dst.len(),
        ));
    }
    if turn {
        converter.placement().turn_over(dst);
    }
    Ok(None)
}

/// Writes a rotated text box straightened (see `straighten`) into slot `slot` of the request's
/// own input tensor, a picture of `input` (width, height) where `mode` fits it: `native`
/// converts the frame's window around the box (`straight` is relative to that window), then
/// the box is sampled from it.
pub fn write_straightened(
    request: &mut Request,
    slot: usize,
    batch: usize,
    native: &Converter,
    straight: &Straight,
    (input, mode): ((usize, usize), ResizeMode),
    planes: &[(&[u8], usize)],
) -> Result<Option<Keep>, String> {
    let mut window = vec![0; native.dst_len()];
    if !native.convert(planes, &mut window) {
        return Err(mismatch(
            planes,
            &format!("{:?}", native.planes()),
            window.len(),
        ));
    }
    let size = native.placement().input;
    let placement = Placement::new(mode, straight.size(), input);
    let dst = slot_bytes(request, slot, batch)?;
    if !straight.write(&window, size, &placement, pad_level(mode), dst) {
        return Err(format!(
            "the input tensor ({} bytes) does not hold a {}x{} picture",
            dst.len(),
            input.0,
            input.1
        ));
    }
    Ok(None)
}

/// The error of planes that do not fit their caps.
fn mismatch(planes: &[(&[u8], usize)], expected: &str, tensor: usize) -> String {
    format!(
        "the frame's planes do not match its caps (planes {:?}, expected rows {expected}, tensor {tensor} bytes)",
        planes
            .iter()
            .map(|(d, s)| (d.len(), *s))
            .collect::<Vec<_>>()
    )
}

/// How the negotiated frames (`info`) reach the model of `state` at input `shape`: their
/// format as the input tensor takes them, ovinfer's converter when it pre-processes them (else
/// OpenVINO does), and the pre-processing built into the model for them.
pub fn frames_input(
    state: &State,
    shape: &Shape,
    info: &gst_video::VideoInfo,
) -> Result<(PixelFormat, Option<Converter>, InputPreprocessing), String> {
    let layout = Layout::of(info.format())
        .ok_or_else(|| format!("unsupported video format {:?}", info.format()))?;
    let (w, h) = (info.width() as usize, info.height() as usize);
    let model_size = (shape.model_input.width, shape.model_input.height);
    let model_bgr = state.settings.model_color_format == ModelColorFormat::Bgr;
    let model_color = if model_bgr {
        PixelFormat::Bgr
    } else {
        PixelFormat::Rgb
    };
    // ROIs are cropped and scaled by ovinfer whatever the backend: OpenVINO's pre-processing is
    // compiled for one input size, and its C API can neither read a crop in place (no ROI
    // tensors) nor take inputs of changing sizes to resize.
    // A server is sent the converter's pixels (the remote request turns them into the model's
    // tensor).
    let native = match state.settings.inference_region {
        InferenceRegion::FullFrame if state.remote.is_none() => {
            frame::pixel_format(info.format(), w, h)
        }
        _ => None,
    };
    let feed = input::feed(
        state.settings.pre_process_backend,
        native,
        (w, h),
        model_size,
        model_color,
    );
    let (format, (tensor_w, tensor_h), converter) = match feed {
        input::Feed::Openvino(format) => (format, (w, h), None),
        input::Feed::Ovinfer => {
            let matrix = YuvMatrix::of(&info.colorimetry());
            let converter = Converter::new(layout, (w, h), model_size, matrix, model_bgr)
                .ok_or_else(|| format!("empty frames ({w}x{h}) cannot be inferred"))?;
            (model_color, model_size, Some(converter))
        }
    };
    let pre = input::preprocessing(
        &shape.model_input,
        format,
        tensor_w,
        tensor_h,
        model_bgr,
        state.range,
        state.decoder,
    );
    Ok((format, converter, pre))
}
