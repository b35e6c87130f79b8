//! Output decoders: pure functions from output tensors to detections or a classification.
//!
//! The decoders give boxes normalised to the model input (0..1, may lie outside before
//! clipping). [`DecoderKind::decode_picture`], which every inference of `ovinfer` goes through,
//! maps them onto the picture (the frame, or an ROI's crop) by where `pre-process-resize` put it
//! in the input (`resize::Placement`): with `stretch` they are the same; a letterbox's padding and
//! scale are undone.

pub mod blazeface;
pub mod classification;
pub mod ctc;
pub mod nms;
pub mod ssd;
pub mod text_detection;
pub mod yolo;

use std::fmt;

use super::resize::Placement;

/// One detected object, box normalised to the model's input as a decoder gives it, or to the
/// picture after [`DecoderKind::decode_picture`] (not yet clipped).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    pub label_id: i32,
    pub confidence: f32,
    pub x_min: f32,
    pub y_min: f32,
    pub x_max: f32,
    pub y_max: f32,
    /// A text detector's rotated rectangle inside the box, normalised as the box: its corners
    /// x, y from the top-left one around (PaddleOCR's `get_mini_boxes` order), for a recogniser
    /// to read the text straightened. None for other decoders.
    pub quad: Option<[f32; 8]>,
}

impl Detection {
    /// The detection with its box (and rotated rectangle) moved: x coordinates by `fx`, y by
    /// `fy`.
    pub fn moved(&self, fx: impl Fn(f32) -> f32, fy: impl Fn(f32) -> f32) -> Detection {
        Detection {
            x_min: fx(self.x_min),
            y_min: fy(self.y_min),
            x_max: fx(self.x_max),
            y_max: fy(self.y_max),
            quad: self.quad.map(|q| {
                std::array::from_fn(|i| {
                    if i.is_multiple_of(2) {
                        fx(q[i])
                    } else {
                        fy(q[i])
                    }
                })
            }),
            ..*self
        }
    }

    pub fn area(&self) -> f32 {
        (self.x_max - self.x_min).max(0.0) * (self.y_max - self.y_min).max(0.0)
    }

    /// The box clipped to the frame, or `None` when nothing of it is left inside.
    pub fn clipped(&self) -> Option<Detection> {
        let c = Detection {
            x_min: self.x_min.clamp(0.0, 1.0),
            y_min: self.y_min.clamp(0.0, 1.0),
            x_max: self.x_max.clamp(0.0, 1.0),
            y_max: self.y_max.clamp(0.0, 1.0),
            ..*self
        };
        let finite = [c.x_min, c.y_min, c.x_max, c.y_max, c.confidence]
            .iter()
            .all(|v| v.is_finite());
        (finite && c.x_max > c.x_min && c.y_max > c.y_min).then_some(c)
    }
}

/// A whole-frame classification result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Classification {
    pub label_id: i32,
    pub confidence: f32,
}

/// What one inference produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    Detections(Vec<Detection>),
    Classification(Option<Classification>),
    /// Read text as class ids of the character set (`None`: nothing read, or its confidence
    /// below the threshold).
    Text(Option<ctc::Sequence>),
}

/// One output tensor as f32 with its shape.
#[derive(Debug, Clone, Copy)]
pub struct Tensor<'a> {
    pub shape: &'a [usize],
    pub data: &'a [f32],
}

/// The output decoders `ovinfer` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecoderKind {
    /// DetectionOutput [1,1,N,7]: (image, class, confidence, x0, y0, x1, y1).
    Ssd,
    /// BlazeFace: regressors [1,N,16] + classificators [1,N,1] over generated anchors.
    BlazeFace,
    /// YOLOv8/v11 [1,4+C,N] (or [1,N,4+C]): cx, cy, w, h in input pixels, then C class scores.
    Yolo,
    /// Whole-frame classification [1,C] or [1,C,1,1].
    Classification,
    /// Text probability map [1,1,H,W] of an H×W input (PP-OCR's DB detectors): text boxes.
    TextDetection,
    /// Character probabilities [1,T,C] (PP-OCR's CTC recognisers): the text read.
    TextRecognition,
}

impl fmt::Display for DecoderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DecoderKind::Ssd => "ssd",
            DecoderKind::BlazeFace => "blazeface",
            DecoderKind::Yolo => "yolo",
            DecoderKind::Classification => "classification",
            DecoderKind::TextDetection => "text-detection",
            DecoderKind::TextRecognition => "text-recognition",
        })
    }
}

/// Static description of the model the decoder works on.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelShape {
    /// Static output shapes, in the model's output order.
    pub outputs: Vec<Vec<usize>>,
    pub input_width: usize,
    pub input_height: usize,
}

fn shapes_string(outputs: &[Vec<usize>]) -> String {
    outputs
        .iter()
        .map(|s| format!("{s:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl DecoderKind {
    /// Picks the decoder whose expected output shapes match the model's.
    pub fn detect(model: &ModelShape) -> Result<DecoderKind, String> {
        for kind in [
            DecoderKind::Ssd,
            DecoderKind::BlazeFace,
            DecoderKind::TextDetection,
            DecoderKind::Yolo,
            DecoderKind::Classification,
        ] {
            if kind.check(model).is_ok() {
                return Ok(kind);
            }
        }
        Err(format!(
            "no decoder understands outputs {}; supported: ssd [1,1,N,7], blazeface [1,N,16] + \
             [1,N,1], text-detection [1,1,H,W] of an HxW input, yolo [1,4+C,N], classification \
             [1,C] or [1,C,1,1]; text-recognition [1,T,C] for models with a character set",
            shapes_string(&model.outputs)
        ))
    }

    /// [`DecoderKind::detect`], but text recognition first when the model carries a character
    /// set (`sequence_model`) and its one output is a sequence [1,T,C]: without one, [1,T,C]
    /// cannot be told from YOLO's [1,4+C,N] by its shape.
    pub fn detect_with_text(
        model: &ModelShape,
        sequence_model: bool,
    ) -> Result<DecoderKind, String> {
        if sequence_model && DecoderKind::TextRecognition.check(model).is_ok() {
            return Ok(DecoderKind::TextRecognition);
        }
        DecoderKind::detect(model)
    }

    /// Checks that the model's outputs are what this decoder reads.
    pub fn check(self, model: &ModelShape) -> Result<(), String> {
        let o = &model.outputs;
        let ok = match self {
            DecoderKind::Ssd => o.len() == 1 && ssd::accepts(&o[0]),
            DecoderKind::BlazeFace => {
                blazeface::accepts(o, model.input_width, model.input_height).is_ok()
            }
            DecoderKind::Yolo => o.len() == 1 && yolo::layout(&o[0]).is_some(),
            DecoderKind::Classification => o.len() == 1 && classification::classes(&o[0]).is_some(),
            DecoderKind::TextDetection => {
                o.len() == 1
                    && text_detection::accepts(&o[0], model.input_width, model.input_height)
            }
            DecoderKind::TextRecognition => o.len() == 1 && ctc::sequence(&o[0]).is_some(),
        };
        if ok {
            return Ok(());
        }
        let detail = match self {
            DecoderKind::BlazeFace => blazeface::accepts(o, model.input_width, model.input_height)
                .err()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default(),
            _ => String::new(),
        };
        Err(format!(
            "decoder {self} cannot read outputs {}{detail}",
            shapes_string(o)
        ))
    }

    /// The row groups output `output` folds a batch into, when the model is known to fold it
    /// rather than keep a batch axis (see `batch`): BlazeFace's anchors per feature map.
    pub fn batch_groups(self, model: &ModelShape, output: usize) -> Option<Vec<usize>> {
        match self {
            DecoderKind::BlazeFace => blazeface::anchor_groups(
                *model.outputs.get(output)?.get(1)?,
                model.input_width,
                model.input_height,
            ),
            _ => None,
        }
    }

    /// Decodes one inference's outputs (in model output order).
    pub fn decode(
        self,
        outputs: &[Tensor<'_>],
        model: &ModelShape,
        threshold: f32,
    ) -> Result<Decoded, String> {
        let first = outputs.first().ok_or("the model produced no output")?;
        Ok(match self {
            DecoderKind::Ssd => Decoded::Detections(ssd::decode(first, threshold)?),
            DecoderKind::BlazeFace => Decoded::Detections(blazeface::decode(
                outputs,
                model.input_width,
                model.input_height,
                threshold,
            )?),
            DecoderKind::Yolo => Decoded::Detections(yolo::decode(
                first,
                model.input_width,
                model.input_height,
                threshold,
            )?),
            DecoderKind::Classification => {
                Decoded::Classification(classification::decode(first, threshold)?)
            }
            DecoderKind::TextDetection => {
                Decoded::Detections(text_detection::decode(first, threshold)?)
            }
            DecoderKind::TextRecognition => {
                let read = ctc::decode(first)?;
                Decoded::Text(
                    (!read.ids.is_empty() && read.confidence >= threshold).then_some(read),
                )
            }
        })
    }

    /// Decodes one inference of a picture that `placement` put in the model's input: boxes
    /// come back normalised to the picture (see the module's documentation).
    pub fn decode_picture(
        self,
        outputs: &[Tensor<'_>],
        model: &ModelShape,
        threshold: f32,
        placement: &Placement,
    ) -> Result<Decoded, String> {
        Ok(match self.decode(outputs, model, threshold)? {
            Decoded::Detections(found) => {
                Decoded::Detections(found.iter().map(|d| placement.unmap(d)).collect())
            }
            classification => classification,
        })
    }

    /// A label for class ids when no labels file is given.
    pub fn default_label(self, label_id: i32) -> String {
        match self {
            DecoderKind::BlazeFace => "face".to_string(),
            DecoderKind::TextDetection => "text".to_string(),
            _ => label_id.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(outputs: Vec<Vec<usize>>, w: usize, h: usize) -> ModelShape {
        ModelShape {
            outputs,
            input_width: w,
            input_height: h,
        }
    }

    #[test]
    fn detects_each_decoder_from_shapes() {
        assert_eq!(
            DecoderKind::detect(&model(vec![vec![1, 1, 100, 7]], 300, 300)),
            Ok(DecoderKind::Ssd)
        );
        assert_eq!(
            DecoderKind::detect(&model(vec![vec![1, 896, 16], vec![1, 896, 1]], 128, 128)),
            Ok(DecoderKind::BlazeFace)
        );
        assert_eq!(
            DecoderKind::detect(&model(vec![vec![1, 896, 1], vec![1, 896, 16]], 128, 128)),
            Ok(DecoderKind::BlazeFace)
        );
        assert_eq!(
            DecoderKind::detect(&model(vec![vec![1, 84, 8400]], 640, 640)),
            Ok(DecoderKind::Yolo)
        );
        assert_eq!(
            DecoderKind::detect(&model(vec![vec![1, 1000]], 224, 224)),
            Ok(DecoderKind::Classification)
        );
        assert_eq!(
            DecoderKind::detect(&model(vec![vec![1, 10, 1, 1]], 224, 224)),
            Ok(DecoderKind::Classification)
        );
        assert_eq!(
            DecoderKind::detect(&model(vec![vec![1, 1, 640, 640]], 640, 640)),
            Ok(DecoderKind::TextDetection)
        );
        // A map of another size than the input is not a text map.
        assert!(DecoderKind::detect(&model(vec![vec![1, 1, 160, 160]], 640, 640)).is_err());
        // [1,T,C]: text for a sequence model, YOLO's transposed layout otherwise.
        let rec = model(vec![vec![1, 40, 6625]], 320, 48);
        assert_eq!(
            DecoderKind::detect_with_text(&rec, true),
            Ok(DecoderKind::TextRecognition)
        );
        assert_eq!(
            DecoderKind::detect_with_text(&rec, false),
            Ok(DecoderKind::Yolo)
        );
        assert_eq!(
            DecoderKind::detect_with_text(&model(vec![vec![1, 2]], 192, 48), true),
            Ok(DecoderKind::Classification)
        );
    }

    #[test]
    fn unknown_outputs_are_named_in_the_error() {
        let err = DecoderKind::detect(&model(vec![vec![1, 5, 5, 5]], 5, 5)).unwrap_err();
        assert!(err.contains("[1, 5, 5, 5]"), "{err}");
        assert!(err.contains("supported"), "{err}");
    }

    #[test]
    fn explicit_decoder_is_checked_against_the_model() {
        let m = model(vec![vec![1, 1000]], 224, 224);
        let err = DecoderKind::Ssd.check(&m).unwrap_err();
        assert!(
            err.contains("decoder ssd cannot read outputs [1, 1000]"),
            "{err}"
        );
        assert!(DecoderKind::Classification.check(&m).is_ok());
    }

    /// Every decoder's boxes go through the placement: a letterboxed YOLO box comes back in
    /// the picture's terms, a classification as it is.
    #[test]
    fn decoded_boxes_are_mapped_onto_the_picture() {
        use crate::ovinfer::ResizeMode;
        // One YOLO candidate [1, 4+1, 8] at input pixels (100..200, 100..150) of 320x320.
        let n = 8;
        let mut data = vec![0.0f32; 5 * n];
        for (ch, v) in [150.0, 125.0, 100.0, 50.0, 0.9].into_iter().enumerate() {
            data[ch * n] = v;
        }
        let shape = [1, 5, n];
        let outputs = [Tensor {
            shape: &shape,
            data: &data,
        }];
        let m = model(vec![shape.to_vec()], 320, 320);
        // A 640x424 frame letterboxed: rows 54..266 of the input.
        let placement = Placement::new(ResizeMode::Letterbox, (640, 424), (320, 320));
        let Ok(Decoded::Detections(found)) =
            DecoderKind::Yolo.decode_picture(&outputs, &m, 0.5, &placement)
        else {
            panic!("detections");
        };
        let d = found[0];
        let px = [
            d.x_min * 640.0,
            d.y_min * 424.0,
            d.x_max * 640.0,
            d.y_max * 424.0,
        ];
        let want = [200.0, 92.0, 400.0, 192.0];
        assert!(
            px.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-3),
            "{px:?}"
        );
        let stretch = Placement::new(ResizeMode::Stretch, (640, 424), (320, 320));
        assert_eq!(
            DecoderKind::Yolo.decode_picture(&outputs, &m, 0.5, &stretch),
            DecoderKind::Yolo.decode(&outputs, &m, 0.5)
        );
        let scores = [0.2f32, 0.8];
        let class_shape = [1, 2];
        let classes = [Tensor {
            shape: &class_shape,
            data: &scores,
        }];
        let c = model(vec![vec![1, 2]], 320, 320);
        assert_eq!(
            DecoderKind::Classification.decode_picture(&classes, &c, 0.5, &placement),
            DecoderKind::Classification.decode(&classes, &c, 0.5)
        );
    }

    #[test]
    fn clipping_keeps_the_inside_and_drops_empty_boxes() {
        let d = Detection {
            quad: None,
            label_id: 1,
            confidence: 0.9,
            x_min: -0.2,
            y_min: 0.5,
            x_max: 0.4,
            y_max: 1.5,
        };
        let c = d.clipped().unwrap();
        assert_eq!((c.x_min, c.y_min, c.x_max, c.y_max), (0.0, 0.5, 0.4, 1.0));
        let outside = Detection {
            x_min: 1.2,
            x_max: 1.4,
            ..d
        };
        assert_eq!(outside.clipped(), None);
        let nan = Detection {
            confidence: f32::NAN,
            ..d
        };
        assert_eq!(nan.clipped(), None);
    }
}

/// Property tests of the decoders on random tensors (`cargo test`; fuzzing with random shapes
/// too: fuzz/, target `decoders`).
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    /// Any f32 now and then (NaN, infinities), mostly model-like values.
    fn value() -> impl Strategy<Value = f32> {
        prop_oneof![4 => -2.0f32..2.0, 1 => any::<f32>()]
    }

    fn boxes() -> impl Strategy<Value = Vec<Detection>> {
        proptest::collection::vec(
            (
                0i32..3,
                0.0f32..1.0,
                0.0f32..1.0,
                0.0f32..1.0,
                0.0f32..0.5,
                0.0f32..0.5,
            ),
            0..40,
        )
        .prop_map(|v| {
            v.into_iter()
                .map(|(label_id, confidence, x, y, w, h)| Detection {
                    quad: None,
                    label_id,
                    confidence,
                    x_min: x,
                    y_min: y,
                    x_max: x + w,
                    y_max: y + h,
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn ssd_keeps_rows_over_the_threshold_until_the_padding(
            rows in proptest::collection::vec(proptest::collection::vec(value(), 7), 0..30),
            threshold in 0.0f32..1.0,
        ) {
            let data: Vec<f32> = rows.concat();
            let shape = [1, 1, rows.len(), 7];
            let found = ssd::decode(&Tensor { shape: &shape, data: &data }, threshold).unwrap();
            let expected = rows
                .iter()
                .take_while(|r| r[0] >= 0.0 || r[0].is_nan())
                .filter(|r| r[2] >= threshold)
                .count();
            prop_assert_eq!(found.len(), expected);
            prop_assert!(found.iter().all(|d| d.confidence >= threshold));
            // A tensor of the wrong size is an error, not a panic.
            let longer = [1, 1, rows.len() + 1, 7];
            let wrong = ssd::decode(&Tensor { shape: &longer, data: &data }, threshold);
            prop_assert!(wrong.is_err());
        }

        #[test]
        fn yolo_finds_only_confident_boxes_in_both_layouts(
            classes in 1usize..4, n in 8usize..40, threshold in 0.05f32..1.0,
            seed in proptest::collection::vec(value(), 1..64), transposed in any::<bool>(),
        ) {
            let data: Vec<f32> = seed.iter().cycle().take((4 + classes) * n).copied().collect();
            let shape = if transposed { [1, n, 4 + classes] } else { [1, 4 + classes, n] };
            let out = Tensor { shape: &shape, data: &data };
            let found = yolo::decode(&out, 64, 64, threshold).unwrap();
            prop_assert!(found.len() <= n);
            for d in &found {
                prop_assert!(d.confidence >= threshold);
                prop_assert!((0..classes as i32).contains(&d.label_id));
            }
        }

        #[test]
        fn classification_picks_the_most_probable_class(
            scores in proptest::collection::vec(-20.0f32..20.0, 2..50),
        ) {
            let p = classification::probabilities(&scores);
            prop_assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-3);
            let shape = [1, scores.len()];
            let best = classification::decode(&Tensor { shape: &shape, data: &scores }, 0.0)
                .unwrap()
                .expect("a class");
            let top = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            prop_assert_eq!(scores[best.label_id as usize], top);
        }

        #[test]
        fn nms_leaves_no_overlap_over_the_threshold(found in boxes(), iou_max in 0.1f32..0.9, per_class in any::<bool>()) {
            let kept = nms::nms(found.clone(), iou_max, per_class);
            prop_assert!(kept.len() <= found.len());
            prop_assert!(kept.windows(2).all(|w| w[0].confidence >= w[1].confidence));
            for (i, a) in kept.iter().enumerate() {
                for b in &kept[i + 1..] {
                    if !per_class || a.label_id == b.label_id {
                        prop_assert!(nms::iou(a, b) <= iou_max);
                    }
                }
            }
        }

        #[test]
        fn detect_never_panics_and_agrees_with_check(
            shapes in proptest::collection::vec(proptest::collection::vec(
                prop_oneof![Just(1usize), Just(7), Just(16), Just(896), 0usize..10, Just(usize::MAX)], 0..5), 0..3),
            size in prop_oneof![Just(128usize), Just(192), any::<usize>()],
        ) {
            let model = ModelShape { outputs: shapes, input_width: size, input_height: size };
            if let Ok(kind) = DecoderKind::detect(&model) {
                prop_assert!(kind.check(&model).is_ok());
            }
        }
    }
}
