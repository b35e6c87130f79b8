//! How a frame becomes the model's input: derived from the model's input port and the caps.

use crate::openvino::{ElementType, InputPreprocessing, PixelFormat, PortInfo};

use super::PreProcessBackend;
use super::decode::DecoderKind;

/// The model input as read from the model: spatial size, layout and element type.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInput {
    pub width: usize,
    pub height: usize,
    pub layout: &'static str,
    pub element_type: ElementType,
}

/// Reads size and layout from a rank-4 image input with 3 channels ([1,3,H,W] or [1,H,W,3]).
/// A dynamic batch is accepted (the caller reshapes it to 1); dynamic H/W are not.
pub fn model_input(port: &PortInfo) -> Result<ModelInput, String> {
    let s = &port.shape;
    let fail = |why: &str| {
        Err(format!(
            "model input '{}' {} {why}: ovinfer needs one image input of shape [1,3,H,W] or \
             [1,H,W,3] with static H and W",
            port.name,
            port.shape_string()
        ))
    };
    if s.len() != 4 {
        return fail("is not rank 4");
    }
    if s[0].is_some_and(|n| n != 1) {
        return fail("has a batch other than 1");
    }
    let (layout, h, w) = match (s[1], s[3]) {
        (Some(3), c) if c != Some(3) => ("NCHW", s[2], s[3]),
        (c, Some(3)) if c != Some(3) => ("NHWC", s[1], s[2]),
        (Some(3), Some(3)) => ("NCHW", s[2], s[3]),
        _ => return fail("has no 3-channel dimension"),
    };
    let (Some(h), Some(w)) = (h, w) else {
        return fail("has a dynamic height or width (export the model with a fixed input size)");
    };
    if h <= 0 || w <= 0 {
        return fail("has an empty dimension");
    }
    match port.element_type {
        ElementType::U8 | ElementType::F32 | ElementType::F16 => {}
        ElementType::Other(t) => {
            return Err(format!(
                "model input '{}' has element type #{t}: ovinfer feeds u8, f16 or f32 inputs",
                port.name
            ));
        }
    }
    Ok(ModelInput {
        width: w as usize,
        height: h as usize,
        layout,
        element_type: port.element_type,
    })
}

/// The value range float inputs are scaled to: `input-range` "auto" or "MIN,MAX".
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum InputRange {
    Auto,
    Range(f32, f32),
}

impl InputRange {
    pub fn parse(s: &str) -> Result<InputRange, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("auto") || s.is_empty() {
            return Ok(InputRange::Auto);
        }
        let parsed = s.split_once(',').and_then(|(a, b)| {
            let (a, b) = (a.trim().parse::<f32>().ok()?, b.trim().parse::<f32>().ok()?);
            (a.is_finite() && b.is_finite() && b > a).then_some((a, b))
        });
        parsed.map(|(a, b)| InputRange::Range(a, b)).ok_or_else(|| {
            format!("input-range must be \"auto\" or \"MIN,MAX\" with MIN < MAX (e.g. \"-1,1\"), got {s:?}")
        })
    }

    /// (mean, scale) so that (pixel - mean) / scale maps 0..255 onto the range.
    fn mean_scale(self, element_type: ElementType, decoder: DecoderKind) -> (f32, f32) {
        let (lo, hi) = match self {
            // Integer inputs take the pixels as they are, whatever the range says.
            _ if !element_type.is_float() => (0.0, 255.0),
            InputRange::Range(lo, hi) => (lo, hi),
            // BlazeFace was trained on [-1, 1]; other float models are assumed to take [0, 1].
            InputRange::Auto if decoder == DecoderKind::BlazeFace => (-1.0, 1.0),
            // PP-OCR's detectors and recognisers take (pixel / 255 - 0.5) / 0.5.
            InputRange::Auto
                if matches!(
                    decoder,
                    DecoderKind::TextDetection | DecoderKind::TextRecognition
                ) =>
            {
                (-1.0, 1.0)
            }
            InputRange::Auto => (0.0, 1.0),
        };
        let scale = 255.0 / (hi - lo);
        (-lo * scale, scale)
    }
}

/// Who turns a frame into the model's picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    /// OpenVINO's pre-processing, from frames in this format at their own size.
    Openvino(PixelFormat),
    /// ovinfer's converter, into the model's channel order at the model's size.
    Ovinfer,
}

/// Who pre-processes frames: `native` is the frame's format as OpenVINO reads it (None when it
/// cannot), at `frame` size, for a model of `model` size taking `model_color` (RGB or BGR).
///
/// A frame that already is the model's picture goes to OpenVINO as it is (read in place). With
/// `pre-process-backend=openvino`, OpenVINO converts colour only together with a resize: OpenVINO
/// 2026.4 folds a channel reversal with no resize after it into the first convolution of a
/// quantised model and computes as if it were not there. Everything else is ovinfer's.
pub fn feed(
    backend: PreProcessBackend,
    native: Option<PixelFormat>,
    frame: (usize, usize),
    model: (usize, usize),
    model_color: PixelFormat,
) -> Feed {
    match native {
        Some(f) if f == model_color && frame == model => Feed::Openvino(f),
        Some(f) if backend == PreProcessBackend::Openvino && frame != model => Feed::Openvino(f),
        _ => Feed::Ovinfer,
    }
}

/// Everything pre-processing needs for one caps.
pub fn preprocessing(
    model: &ModelInput,
    format: PixelFormat,
    frame_width: usize,
    frame_height: usize,
    model_bgr: bool,
    range: InputRange,
    decoder: DecoderKind,
) -> InputPreprocessing {
    let (mean, scale) = range.mean_scale(model.element_type, decoder);
    InputPreprocessing {
        format,
        width: frame_width,
        height: frame_height,
        resize: (frame_width, frame_height) != (model.width, model.height),
        model_layout: model.layout,
        model_bgr,
        convert_to_f32: model.element_type.is_float(),
        mean,
        scale,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(shape: &[Option<i64>], et: ElementType) -> PortInfo {
        PortInfo {
            name: "image".into(),
            element_type: et,
            shape: shape.to_vec(),
        }
    }

    #[test]
    fn layouts_and_sizes() {
        let p = port(&[Some(1), Some(300), Some(300), Some(3)], ElementType::U8);
        let m = model_input(&p).unwrap();
        assert_eq!((m.layout, m.width, m.height), ("NHWC", 300, 300));
        let p = port(&[None, Some(3), Some(224), Some(320)], ElementType::F32);
        let m = model_input(&p).unwrap();
        assert_eq!((m.layout, m.width, m.height), ("NCHW", 320, 224));
    }

    #[test]
    fn unusable_inputs_name_the_shape() {
        let e = model_input(&port(&[Some(1), Some(3), None, None], ElementType::F32)).unwrap_err();
        assert!(e.contains("[1,3,?,?]") && e.contains("dynamic"), "{e}");
        let e = model_input(&port(
            &[Some(1), Some(5), Some(5), Some(5)],
            ElementType::F32,
        ))
        .unwrap_err();
        assert!(e.contains("3-channel"), "{e}");
        let e = model_input(&port(&[Some(1), Some(16)], ElementType::F32)).unwrap_err();
        assert!(e.contains("rank 4"), "{e}");
    }

    #[test]
    fn ranges_map_pixels_as_expected() {
        let f = |r: InputRange, et, d| {
            let (mean, scale) = r.mean_scale(et, d);
            ((0.0 - mean) / scale, (255.0 - mean) / scale)
        };
        assert_eq!(
            f(InputRange::Auto, ElementType::U8, DecoderKind::Ssd),
            (0.0, 255.0)
        );
        assert_eq!(
            f(InputRange::Auto, ElementType::F32, DecoderKind::BlazeFace),
            (-1.0, 1.0)
        );
        assert_eq!(
            f(InputRange::Auto, ElementType::F32, DecoderKind::Yolo),
            (0.0, 1.0)
        );
        assert_eq!(
            f(
                InputRange::parse("-1, 1").unwrap(),
                ElementType::F32,
                DecoderKind::Ssd
            ),
            (-1.0, 1.0)
        );
        assert!(InputRange::parse("1,0").is_err());
        assert!(InputRange::parse("zero").is_err());
    }

    #[test]
    fn openvino_converts_colour_only_with_a_resize() {
        use PixelFormat as P;
        use PreProcessBackend as B;
        let (model, other) = ((300, 300), (640, 480));
        for backend in [B::Ovinfer, B::Openvino] {
            // The model's own picture is read as it is; nothing else is OpenVINO's with ovinfer.
            assert_eq!(
                feed(backend, Some(P::Rgb), model, model, P::Rgb),
                Feed::Openvino(P::Rgb)
            );
            assert_eq!(
                feed(backend, Some(P::Bgr), model, model, P::Bgr),
                Feed::Openvino(P::Bgr)
            );
            // A channel reversal (or any colour step) with no resize is never OpenVINO's.
            for f in [P::Bgr, P::Bgrx, P::Rgbx, P::Nv12, P::I420] {
                assert_eq!(
                    feed(backend, Some(f), model, model, P::Rgb),
                    Feed::Ovinfer,
                    "{f:?}"
                );
            }
            assert_eq!(feed(backend, None, other, model, P::Rgb), Feed::Ovinfer);
        }
        assert_eq!(
            feed(B::Ovinfer, Some(P::Rgb), other, model, P::Rgb),
            Feed::Ovinfer
        );
        assert_eq!(
            feed(B::Openvino, Some(P::Bgrx), other, model, P::Rgb),
            Feed::Openvino(P::Bgrx)
        );
    }

    #[test]
    fn u8_model_with_default_range_keeps_u8() {
        let m = ModelInput {
            width: 300,
            height: 300,
            layout: "NHWC",
            element_type: ElementType::U8,
        };
        let p = preprocessing(
            &m,
            PixelFormat::Nv12,
            640,
            480,
            false,
            InputRange::Auto,
            DecoderKind::Ssd,
        );
        assert!(!p.convert_to_f32);
        let p = preprocessing(
            &m,
            PixelFormat::Nv12,
            640,
            480,
            false,
            InputRange::Range(0.0, 1.0),
            DecoderKind::Ssd,
        );
        assert!(!p.convert_to_f32, "a u8 model ignores input-range");
        assert_eq!((p.mean, p.scale), (0.0, 1.0));
    }
}
