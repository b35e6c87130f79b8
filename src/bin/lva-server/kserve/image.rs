//! A `BYTES` input holding encoded images (JPEG or PNG), as OpenVINO Model Server takes them: the
//! request's tensor has shape `[N]`, one image per element, for an image input of the model
//! (rank 4, three channels: `[N,H,W,3]` or `[N,3,H,W]`, UINT8 or FP32).
//!
//! Each image is decoded by the server (JPEG by GStreamer's `jpegdec` with the accurate integer
//! IDCT, PNG in this process by the `png` crate, as the LVA endpoint decodes them), converted to
//! the model's channel order (`model-color-format`, RGB unless the entry says `bgr`) and resized
//! to the input's height and width when they are static (the image's own size when they are
//! dynamic), bilinearly with pixel centres aligned, as `cv2.resize(INTER_LINEAR)` computes it
//! (ovinfer's converter). The values are the pixels, 0 to 255, as UINT8 or FP32: no mean or
//! scale is applied, as OVMS does; a model that wants another range takes a tensor instead.
//!
//! Memory stays bounded by `max-pixels`: the images of one request together, as their headers
//! say and as the decoder produces them, and the tensor made of them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use gst::prelude::*;
use gst_video::prelude::VideoFrameExt;
use gstovlva::openvino::DataType;
use gstovlva::ovinfer::convert::{Converter, Layout, YuvMatrix};

use super::Refusal;
use super::model::Port;
use super::tensor::shape_text;
use crate::image::{self, Kind};

/// How decoded images fill an image input of the model.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageInput {
    /// Channels last (`[N,H,W,3]`), else first (`[N,3,H,W]`).
    nhwc: bool,
    batch: Option<usize>,
    height: Option<usize>,
    width: Option<usize>,
    data_type: DataType,
    bgr: bool,
}

/// How long one image may take to decode.
const DECODE_TIMEOUT: Duration = Duration::from_secs(10);

impl ImageInput {
    /// The image input `port` is, or why it is none.
    pub fn of(port: &Port, data_type: DataType, bgr: bool) -> Result<ImageInput, String> {
        let s = &port.shape;
        if s.len() != 4 {
            return Err("images go to inputs of rank 4 ([N,H,W,3] or [N,3,H,W])".into());
        }
        let nhwc = match (s[1], s[3]) {
            (_, Some(3)) => true,
            (Some(3), _) => false,
            _ => return Err("images go to inputs with 3 channels ([N,H,W,3] or [N,3,H,W])".into()),
        };
        if !matches!(data_type, DataType::U8 | DataType::F32) {
            return Err("decoded images are given as UINT8 or FP32 only".into());
        }
        let dim = |d: Option<i64>| d.and_then(|v| usize::try_from(v).ok());
        let (h, w) = if nhwc { (s[1], s[2]) } else { (s[2], s[3]) };
        Ok(ImageInput {
            nhwc,
            batch: dim(s[0]),
            height: dim(h),
            width: dim(w),
            data_type,
            bgr,
        })
    }

    /// The tensor of the images `elements` (a BYTES input `name` of shape `shape`): its shape
    /// and bytes.
    pub fn tensor(
        &self,
        name: &str,
        shape: &[i64],
        elements: &[Bytes],
        max_pixels: u64,
    ) -> Result<(Vec<usize>, Vec<u8>), Refusal> {
        let invalid = |why: String| Refusal::Invalid(format!("input '{name}': {why}"));
        let n = elements.len();
        if shape.len() != 1 || usize::try_from(shape[0]) != Ok(n) {
            return Err(invalid(format!(
                "BYTES shape {} with {n} elements: images go in shape [N], one image per element",
                shape_text(shape)
            )));
        }
        if n == 0 {
            return Err(invalid("no image in the BYTES input".into()));
        }
        if let Some(b) = self.batch.filter(|&b| b != n) {
            return Err(invalid(format!("{n} images, the model takes {b} at once")));
        }
        // The headers first: what the images claim, all together, before any is decoded.
        let mut kinds = Vec::with_capacity(n);
        let mut pixels = 0u64;
        for (i, data) in elements.iter().enumerate() {
            let kind = if data.starts_with(&[0xFF, 0xD8, 0xFF]) {
                Kind::Jpeg
            } else if data.starts_with(b"\x89PNG\r\n\x1a\n") {
                Kind::Png
            } else {
                let start: Vec<String> = data.iter().take(8).map(|b| format!("{b:02x}")).collect();
                return Err(invalid(format!(
                    "image {i} is neither JPEG nor PNG (it starts with {})",
                    if start.is_empty() {
                        "nothing".into()
                    } else {
                        start.join(" ")
                    }
                )));
            };
            let (w, h) = image::dimensions(kind, data).ok_or_else(|| {
                invalid(format!(
                    "image {i}: the {} header cannot be read",
                    kind.name()
                ))
            })?;
            if kind == Kind::Jpeg && image::jpeg_frame(data).is_some_and(|f| f.components == 4) {
                return Err(invalid(format!(
                    "image {i}: CMYK JPEG is not supported (4 colour components): send an RGB \
                     (YCbCr) or greyscale JPEG, or a PNG"
                )));
            }
            pixels = pixels.saturating_add(u64::from(w) * u64::from(h));
            kinds.push((kind, w as usize, h as usize));
        }
        if pixels > max_pixels {
            return Err(invalid(format!(
                "the images have {pixels} pixels together, over the limit of {max_pixels} \
                 (max-pixels): send fewer or smaller images"
            )));
        }
        let (height, width) = match (self.height, self.width) {
            (Some(h), Some(w)) => (h, w),
            _ => {
                let (_, w, h) = kinds[0];
                if let Some(i) = kinds.iter().position(|&(_, wi, hi)| (wi, hi) != (w, h)) {
                    return Err(invalid(format!(
                        "image {i} is {}x{}, image 0 is {w}x{h}: the input has a dynamic size, \
                         so the images are not resized and must all have one size",
                        kinds[i].1, kinds[i].2
                    )));
                }
                (self.height.unwrap_or(h), self.width.unwrap_or(w))
            }
        };
        let per_image = height.saturating_mul(width);
        if (per_image as u64).saturating_mul(n as u64) > max_pixels {
            return Err(invalid(format!(
                "{n} images of {width}x{height} are over the limit of {max_pixels} pixels \
                 (max-pixels)"
            )));
        }
        let size = self.data_type.size();
        let mut out = vec![0u8; n * per_image * 3 * size];
        let mut hwc = vec![0u8; per_image * 3];
        for (i, (data, (kind, _, _))) in elements.iter().zip(&kinds).enumerate() {
            let frame = match kind {
                Kind::Jpeg => decode_jpeg(data, max_pixels),
                _ => decode_png(data, max_pixels),
            }
            .map_err(|e| invalid(format!("image {i}: {e}")))?;
            frame
                .convert((width, height), self.bgr, &mut hwc)
                .map_err(|e| invalid(format!("image {i}: {e}")))?;
            let image_out = &mut out[i * per_image * 3 * size..(i + 1) * per_image * 3 * size];
            self.place(&hwc, per_image, image_out);
        }
        let mut shape = vec![n, 0, 0, 0];
        if self.nhwc {
            shape[1..].copy_from_slice(&[height, width, 3]);
        } else {
            shape[1..].copy_from_slice(&[3, height, width]);
        }
        Ok((shape, out))
    }

    /// One image's packed HWC pixels into its place in the tensor, in its layout and type.
    fn place(&self, hwc: &[u8], per_image: usize, out: &mut [u8]) {
        let size = self.data_type.size();
        for (p, px) in hwc.chunks_exact(3).enumerate() {
            for (c, &v) in px.iter().enumerate() {
                let at = if self.nhwc {
                    p * 3 + c
                } else {
                    c * per_image + p
                };
                match self.data_type {
                    DataType::F32 => {
                        out[at * size..(at + 1) * size].copy_from_slice(&f32::from(v).to_le_bytes())
                    }
                    _ => out[at] = v,
                }
            }
        }
    }
}

/// A decoded image, as GStreamer lays it out.
struct Decoded {
    info: gst_video::VideoInfo,
    buffer: gst::Buffer,
}

impl Decoded {
    /// The image at `dst` size, packed, three channels in RGB or BGR order.
    fn convert(&self, dst: (usize, usize), bgr: bool, out: &mut [u8]) -> Result<(), String> {
        let info = &self.info;
        let layout = Layout::of(info.format())
            .ok_or_else(|| format!("the decoder gave {:?} pixels", info.format()))?;
        let src = (info.width() as usize, info.height() as usize);
        let converter = Converter::new(layout, src, dst, YuvMatrix::of(&info.colorimetry()), bgr)
            .ok_or("the image has no pixels")?;
        let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(self.buffer.as_ref(), info)
            .map_err(|_| "the decoded image cannot be read".to_string())?;
        let planes = (0..frame.n_planes())
            .map(|p| {
                Ok((
                    frame.plane_data(p).map_err(|e| e.to_string())?,
                    frame.plane_stride()[p as usize].max(0) as usize,
                ))
            })
            .collect::<Result<Vec<(&[u8], usize)>, String>>()?;
        if converter.convert(&planes, out) {
            Ok(())
        } else {
            Err("the decoded image does not fit its size".into())
        }
    }
}

fn decode_png(data: &[u8], max_pixels: u64) -> Result<Decoded, String> {
    let (info, pixels) = image::decode_png(data, max_pixels)
        .map_err(|e| format!("the PNG cannot be decoded: {e}"))?;
    Ok(Decoded {
        info,
        buffer: gst::Buffer::from_mut_slice(pixels),
    })
}

fn element(factory: &str) -> Result<gst::Element, String> {
    gst::ElementFactory::make(factory).build().map_err(|_| {
        format!(
            "GStreamer element '{factory}' is missing: run scripts/setup.sh (or install its \
             plugin package)"
        )
    })
}

/// Decodes one JPEG with `jpegdec` (accurate integer IDCT), to RGB, I420 or grey. The
/// decoder's output caps are refused over `max_pixels` before it allocates a frame, whatever the
/// header said (and the server's allocator refuses any larger allocation anyway).
fn decode_jpeg(data: &Bytes, max_pixels: u64) -> Result<Decoded, String> {
    let pipeline = gst::Pipeline::new();
    let src = gst_app::AppSrc::builder()
        .caps(
            &gst::Caps::builder("image/jpeg")
                .field("parsed", true)
                .build(),
        )
        .format(gst::Format::Time)
        .build();
    let decoder = element("jpegdec")?;
    decoder.set_property_from_str("idct-method", "islow");
    let convert = element("videoconvert")?;
    let filter = element("capsfilter")?;
    filter.set_property(
        "caps",
        gst_video::VideoCapsBuilder::new()
            .format_list([
                gst_video::VideoFormat::Rgb,
                gst_video::VideoFormat::I420,
                gst_video::VideoFormat::Gray8,
            ])
            .build(),
    );
    let sink = gst_app::AppSink::builder().sync(false).build();
    let chain = [
        src.upcast_ref::<gst::Element>(),
        &decoder,
        &convert,
        &filter,
        sink.upcast_ref(),
    ];
    pipeline.add_many(chain).map_err(|e| e.to_string())?;
    gst::Element::link_many(chain).map_err(|e| format!("cannot link the decoder: {e}"))?;
    let oversize = Arc::new(Mutex::new(None));
    let seen = oversize.clone();
    if let Some(pad) = decoder.static_pad("src") {
        pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
            let Some(gst::PadProbeData::Event(event)) = &info.data else {
                return gst::PadProbeReturn::Ok;
            };
            let gst::EventView::Caps(c) = event.view() else {
                return gst::PadProbeReturn::Ok;
            };
            let size = c
                .caps()
                .structure(0)
                .and_then(|s| Some((s.get::<i32>("width").ok()?, s.get::<i32>("height").ok()?)));
            match size {
                Some((w, h)) if (w.max(0) as u64) * (h.max(0) as u64) > max_pixels => {
                    *seen.lock().unwrap_or_else(|e| e.into_inner()) = Some((w, h));
                    info.flow_res = Err(gst::FlowError::NotNegotiated);
                    gst::PadProbeReturn::Handled
                }
                _ => gst::PadProbeReturn::Ok,
            }
        });
    }
    let stop = |pipeline: &gst::Pipeline| {
        let _ = pipeline.set_state(gst::State::Null);
    };
    if pipeline.set_state(gst::State::Playing).is_err() {
        stop(&pipeline);
        return Err("the JPEG decoder did not start".into());
    }
    let mut buffer = gst::Buffer::from_slice(data.clone());
    if let Some(b) = buffer.get_mut() {
        b.set_pts(gst::ClockTime::ZERO);
    }
    let _ = src.push_buffer(buffer);
    let _ = src.end_of_stream();
    let sample = sink.try_pull_sample(gst::ClockTime::from_nseconds(
        DECODE_TIMEOUT.as_nanos() as u64
    ));
    let reason = || {
        pipeline.bus().and_then(|bus| {
            bus.iter().find_map(|m| match m.view() {
                gst::MessageView::Error(e) => Some(e.error().to_string()),
                gst::MessageView::Warning(w) => Some(w.error().to_string()),
                _ => None,
            })
        })
    };
    let result = match sample {
        Some(sample) => {
            let caps = sample.caps().ok_or("the decoder gave no caps")?;
            let info = gst_video::VideoInfo::from_caps(caps).map_err(|e| e.to_string())?;
            let buffer = sample.buffer_owned().ok_or("the decoder gave no picture")?;
            Ok(Decoded { info, buffer })
        }
        None => {
            let over = *oversize.lock().unwrap_or_else(|e| e.into_inner());
            Err(match over {
                Some((w, h)) => format!(
                    "it decodes to {w}x{h}, over the limit of {max_pixels} pixels (max-pixels): \
                     scale it down"
                ),
                None => format!(
                    "the JPEG cannot be decoded: {}",
                    reason().unwrap_or_else(|| "the decoder produced no picture from it".into())
                ),
            })
        }
    };
    stop(&pipeline);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use gstovlva::openvino::ElementType;

    fn port(shape: &[Option<i64>]) -> Port {
        Port {
            name: "image".into(),
            element_type: ElementType::U8,
            shape: shape.to_vec(),
        }
    }

    #[test]
    fn image_inputs_are_rank_4_with_three_channels() {
        let nhwc = ImageInput::of(
            &port(&[Some(1), Some(300), Some(300), Some(3)]),
            DataType::U8,
            false,
        )
        .unwrap();
        assert!(nhwc.nhwc);
        assert_eq!(
            (nhwc.height, nhwc.width, nhwc.batch),
            (Some(300), Some(300), Some(1))
        );
        let nchw = ImageInput::of(
            &port(&[None, Some(3), Some(224), Some(320)]),
            DataType::F32,
            true,
        )
        .unwrap();
        assert!(!nchw.nhwc);
        assert_eq!(
            (nchw.height, nchw.width, nchw.batch),
            (Some(224), Some(320), None)
        );
        assert!(ImageInput::of(&port(&[Some(1), Some(16)]), DataType::U8, false).is_err());
        assert!(
            ImageInput::of(
                &port(&[Some(1), Some(4), Some(4), Some(4)]),
                DataType::U8,
                false
            )
            .is_err()
        );
        assert!(
            ImageInput::of(
                &port(&[Some(1), Some(4), Some(4), Some(3)]),
                DataType::I64,
                false
            )
            .is_err()
        );
    }

    #[test]
    fn pixels_go_to_their_layout_and_type() {
        let hwc = [1u8, 2, 3, 4, 5, 6]; // two pixels
        let nchw = ImageInput {
            nhwc: false,
            batch: Some(1),
            height: Some(1),
            width: Some(2),
            data_type: DataType::U8,
            bgr: false,
        };
        let mut out = [0u8; 6];
        nchw.place(&hwc, 2, &mut out);
        assert_eq!(out, [1, 4, 2, 5, 3, 6]);
        let f32_nhwc = ImageInput {
            nhwc: true,
            data_type: DataType::F32,
            ..nchw
        };
        let mut out = [0u8; 24];
        f32_nhwc.place(&hwc, 2, &mut out);
        assert_eq!(&out[20..24], &6f32.to_le_bytes());
    }

    #[test]
    fn what_is_not_an_image_is_refused_with_what_it_is() {
        let input = ImageInput::of(
            &port(&[Some(1), Some(8), Some(8), Some(3)]),
            DataType::U8,
            false,
        )
        .unwrap();
        let e = input
            .tensor("image", &[1], &[Bytes::from_static(b"hello")], 1000)
            .unwrap_err();
        assert_eq!(
            e.message(),
            "input 'image': image 0 is neither JPEG nor PNG (it starts with 68 65 6c 6c 6f)"
        );
        let e = input
            .tensor("image", &[2], &[Bytes::new(), Bytes::new()], 1000)
            .unwrap_err();
        assert_eq!(
            e.message(),
            "input 'image': 2 images, the model takes 1 at once"
        );
        let e = input
            .tensor("image", &[1, 1], &[Bytes::new()], 1000)
            .unwrap_err();
        assert!(e.message().contains("images go in shape [N]"), "{e:?}");
    }
}
