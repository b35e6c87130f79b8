//! The model-output decoders (SSD, YOLO, BlazeFace, classification, NMS) fed random output
//! shapes, random tensors (NaN, infinities, huge and tiny values) and random input sizes.
#![no_main]

use gstovlva::ovinfer::decode::{
    Decoded, DecoderKind, ModelShape, Tensor, blazeface, classification, nms, ssd, yolo,
};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

/// Largest tensor built (floats): enough for every decoder's layouts (BlazeFace's 2304 anchors
/// take 36 864), small enough that NMS, quadratic in the candidates, keeps the runs fast.
const MAX_FLOATS: usize = 40_000;

fn dim(u: &mut Unstructured<'_>) -> Result<usize> {
    Ok(match u.int_in_range(0..=9u8)? {
        0 => 1,
        1 => 7,
        2 => 16,
        3 => 896,
        4 => 2304,
        5 => usize::MAX / u.int_in_range(1..=16usize)?,
        6 => u.int_in_range(0..=8)?,
        _ => usize::from(u.arbitrary::<u16>()?),
    })
}

fn float(u: &mut Unstructured<'_>) -> Result<f32> {
    Ok(match u.int_in_range(0..=7u8)? {
        0 => f32::NAN,
        1 => f32::INFINITY,
        2 => f32::NEG_INFINITY,
        3 => f32::from_bits(u.arbitrary()?),
        _ => f32::from(u.arbitrary::<i16>()?) / 256.0,
    })
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let size = |u: &mut Unstructured<'_>| -> Result<usize> {
        Ok(match u.int_in_range(0..=3u8)? {
            0 => 128,
            1 => 192,
            2 => usize::MAX - usize::from(u.arbitrary::<u8>()?),
            _ => usize::from(u.arbitrary::<u16>()?),
        })
    };
    let (w, h) = (size(u)?, size(u)?);
    let n_outputs = u.int_in_range(0..=3usize)?;
    let mut outputs = Vec::new();
    for _ in 0..n_outputs {
        let rank = u.int_in_range(0..=5usize)?;
        let mut shape = Vec::new();
        for i in 0..rank {
            // Mostly the batch of 1 in front, as models have.
            shape.push(if i == 0 && u.ratio(3, 4)? { 1 } else { dim(u)? });
        }
        outputs.push(shape);
    }
    let threshold = if u.ratio(1, 4)? { float(u)? } else { 0.5 };
    let model = ModelShape {
        outputs: outputs.clone(),
        input_width: w,
        input_height: h,
    };
    // Data: as many floats as the shape says (when that is small), else a random count.
    let mut data = Vec::new();
    for shape in &outputs {
        let want = shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .filter(|&n| n <= MAX_FLOATS && u.ratio(7, 8).unwrap_or(true))
            .unwrap_or(usize::from(u.arbitrary::<u8>()?));
        let mut t = Vec::with_capacity(want);
        let fill = u.arbitrary_len::<u32>()?.min(64);
        let pattern: Vec<f32> = (0..fill).map(|_| float(u)).collect::<Result<_>>()?;
        for i in 0..want {
            t.push(if pattern.is_empty() {
                0.0
            } else {
                pattern[i % pattern.len()]
            });
        }
        data.push(t);
    }
    let tensors: Vec<Tensor<'_>> = outputs
        .iter()
        .zip(&data)
        .map(|(shape, data)| Tensor { shape, data })
        .collect();

    let _ = DecoderKind::detect(&model);
    for kind in [
        DecoderKind::Ssd,
        DecoderKind::BlazeFace,
        DecoderKind::Yolo,
        DecoderKind::Classification,
        DecoderKind::TextDetection,
        DecoderKind::TextRecognition,
    ] {
        let _ = kind.check(&model);
        for output in 0..n_outputs {
            let _ = kind.batch_groups(&model, output);
        }
        let _ = kind.default_label(u.arbitrary()?);
        if let Ok(decoded) = kind.decode(&tensors, &model, threshold) {
            check(decoded, threshold);
        }
    }
    if let Some(first) = tensors.first() {
        let _ = ssd::accepts(first.shape);
        let _ = ssd::decode(first, threshold);
        let _ = yolo::layout(first.shape);
        let _ = yolo::decode(first, w, h, threshold);
        let _ = classification::classes(first.shape);
        let _ = classification::decode(first, threshold);
        let p = classification::probabilities(first.data);
        assert_eq!(p.len(), first.data.len());
    }
    let _ = blazeface::accepts(&outputs, w, h);
    let _ = blazeface::decode(&tensors, w, h, threshold);
    let _ = blazeface::anchor_groups(dim(u)?, w, h);
    let _ = blazeface::anchors(dim(u)?.min(MAX_FLOATS), w, h);
    Ok(())
}

fn check(decoded: Decoded, threshold: f32) {
    match decoded {
        Decoded::Detections(found) => {
            let again = nms::nms(found.clone(), 0.5, true);
            assert!(again.len() <= found.len());
            for d in found {
                // (A NaN threshold, which no caller passes, compares false and keeps all.)
                assert!(threshold.is_nan() || d.confidence >= threshold);
                if let Some(c) = d.clipped() {
                    for v in [c.x_min, c.y_min, c.x_max, c.y_max] {
                        assert!((0.0..=1.0).contains(&v));
                    }
                    let _ = nms::iou(&c, &d);
                    assert!(c.area() >= 0.0);
                }
            }
        }
        Decoded::Classification(Some(c)) => {
            assert!((threshold.is_nan() || c.confidence >= threshold) && c.label_id >= 0);
        }
        Decoded::Classification(None) | Decoded::Text(None) => {}
        Decoded::Text(Some(read)) => {
            assert!(threshold.is_nan() || read.confidence >= threshold);
            assert!(!read.ids.is_empty() && read.ids.iter().all(|&id| id != 0));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
