//! BlazeFace (MediaPipe face detection): regressors [1,N,16] and classificators [1,N,1] (logits)
//! over SSD-style anchors generated from the input size.
//!
//! Anchor centre = ((x + 0.5) / grid_w, (y + 0.5) / grid_h), unit size; box centre = anchor +
//! reg[0..2] / input size, box size = reg[2..4] / input size; score = sigmoid(logit); then NMS.

use super::nms::nms;
use super::{Detection, Tensor};

/// (stride, anchors per cell) of the known BlazeFace variants.
const CONFIGS: &[&[(usize, usize)]] = &[
    // short range, 128x128: 16*16*2 + 8*8*6 = 896
    &[(8, 2), (16, 6)],
    // full range, 192x192: 48*48*1 = 2304
    &[(4, 1)],
];

/// IoU above which overlapping faces are merged (MediaPipe uses 0.3).
pub const NMS_IOU: f32 = 0.3;

/// None when the count overflows (an input size no model has).
fn anchor_count(config: &[(usize, usize)], w: usize, h: usize) -> Option<usize> {
    config.iter().try_fold(0usize, |sum, &(stride, per_cell)| {
        w.div_ceil(stride)
            .checked_mul(h.div_ceil(stride))?
            .checked_mul(per_cell)?
            .checked_add(sum)
    })
}

/// Anchors per feature map for `n` anchors at input size `w`x`h`, if a known layout gives that
/// count. (Run on a batch, the model folds the batch into the anchors per feature map.)
pub fn anchor_groups(n: usize, w: usize, h: usize) -> Option<Vec<usize>> {
    let config = CONFIGS.iter().find(|c| anchor_count(c, w, h) == Some(n))?;
    Some(
        config
            .iter()
            .map(|&(stride, per_cell)| w.div_ceil(stride) * h.div_ceil(stride) * per_cell)
            .collect(),
    )
}

/// Anchor centres for `n` anchors at input size `w`x`h`, if a known layout gives that count.
pub fn anchors(n: usize, w: usize, h: usize) -> Option<Vec<(f32, f32)>> {
    let config = CONFIGS.iter().find(|c| anchor_count(c, w, h) == Some(n))?;
    let mut out = Vec::with_capacity(n);
    for &(stride, per_cell) in config.iter() {
        let (gw, gh) = (w.div_ceil(stride), h.div_ceil(stride));
        for y in 0..gh {
            for x in 0..gw {
                let centre = ((x as f32 + 0.5) / gw as f32, (y as f32 + 0.5) / gh as f32);
                out.extend(std::iter::repeat_n(centre, per_cell));
            }
        }
    }
    Some(out)
}

/// Indices of (regressors, classificators) among the outputs, checked against the input size.
pub fn accepts(outputs: &[Vec<usize>], w: usize, h: usize) -> Result<(usize, usize), String> {
    if outputs.len() != 2 {
        return Err("needs two outputs".into());
    }
    let is = |s: &Vec<usize>, last: usize| s.len() == 3 && s[0] == 1 && s[2] == last;
    let (reg, cls) = if is(&outputs[0], 16) && is(&outputs[1], 1) {
        (0, 1)
    } else if is(&outputs[1], 16) && is(&outputs[0], 1) {
        (1, 0)
    } else {
        return Err("needs [1,N,16] and [1,N,1]".into());
    };
    let n = outputs[reg][1];
    if outputs[cls][1] != n {
        return Err("regressor and score counts differ".into());
    }
    if anchors(n, w, h).is_none() {
        return Err(format!(
            "{n} anchors do not match a known BlazeFace layout for a {w}x{h} input"
        ));
    }
    Ok((reg, cls))
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x.clamp(-100.0, 100.0)).exp())
}

pub fn decode(
    outputs: &[Tensor<'_>],
    w: usize,
    h: usize,
    threshold: f32,
) -> Result<Vec<Detection>, String> {
    let shapes: Vec<Vec<usize>> = outputs.iter().map(|t| t.shape.to_vec()).collect();
    let (ri, ci) = accepts(&shapes, w, h)?;
    let (reg, cls) = (&outputs[ri], &outputs[ci]);
    let n = reg.shape[1];
    if reg.data.len() != n * 16 || cls.data.len() != n {
        return Err("blazeface output sizes do not match their shapes".into());
    }
    let anchors = anchors(n, w, h).ok_or("no anchors for this input size")?;
    let (sw, sh) = (w as f32, h as f32);
    let candidates = anchors
        .iter()
        .enumerate()
        .filter_map(|(i, &(ax, ay))| {
            let confidence = sigmoid(cls.data[i]);
            if confidence.is_nan() || confidence < threshold {
                return None;
            }
            let r = &reg.data[i * 16..i * 16 + 4];
            let (cx, cy) = (ax + r[0] / sw, ay + r[1] / sh);
            let (bw, bh) = (r[2] / sw, r[3] / sh);
            Some(Detection {
                quad: None,
                label_id: 0,
                confidence,
                x_min: cx - bw / 2.0,
                y_min: cy - bh / 2.0,
                x_max: cx + bw / 2.0,
                y_max: cy + bh / 2.0,
            })
        })
        .collect();
    Ok(nms(candidates, NMS_IOU, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fuzz find (fuzz/regressions/decoders/blazeface_anchor_overflow): an input size near
    /// usize::MAX overflowed the anchor count (a panic in debug builds, a wrapped count that
    /// could match in release). Now no layout matches.
    #[test]
    fn fuzz_huge_input_sizes_match_no_anchor_layout() {
        assert_eq!(anchors(896, usize::MAX, usize::MAX), None);
        assert_eq!(anchor_groups(2304, usize::MAX - 3, 192), None);
        let shapes = [vec![1, 896, 16], vec![1, 896, 1]];
        assert!(accepts(&shapes, usize::MAX, usize::MAX / 2).is_err());
        let (reg, cls) = (vec![0.0; 896 * 16], vec![0.0; 896]);
        let outputs = [
            Tensor {
                shape: &shapes[0],
                data: &reg,
            },
            Tensor {
                shape: &shapes[1],
                data: &cls,
            },
        ];
        assert!(decode(&outputs, usize::MAX, usize::MAX, 0.5).is_err());
    }

    #[test]
    fn anchor_layouts_of_both_variants() {
        assert_eq!(anchor_groups(896, 128, 128), Some(vec![512, 384]));
        assert_eq!(anchor_groups(2304, 192, 192), Some(vec![2304]));
        let short = anchors(896, 128, 128).unwrap();
        assert_eq!(short.len(), 896);
        assert_eq!(short[0], (0.5 / 16.0, 0.5 / 16.0));
        assert_eq!(short[1], short[0], "two anchors per cell at stride 8");
        assert_eq!(
            short[512],
            (0.5 / 8.0, 0.5 / 8.0),
            "stride 16 starts after 16*16*2"
        );
        assert_eq!(anchors(2304, 192, 192).unwrap().len(), 2304);
        assert!(anchors(900, 128, 128).is_none());
    }

    #[test]
    fn decodes_a_face_at_an_anchor_with_offset_and_size() {
        let n = 896;
        let mut reg = vec![0.0f32; n * 16];
        let mut cls = vec![-10.0f32; n];
        // anchor 512 + 6*(8*3 + 4): row 3, column 4 of the 8x8 grid, centre (4.5/8, 3.5/8)
        let i = 512 + 6 * (8 * 3 + 4);
        cls[i] = 3.0; // sigmoid = 0.9526
        cls[i + 1] = 2.0; // the same face again, lower score: suppressed
        reg[i * 16..i * 16 + 4].copy_from_slice(&[6.4, -12.8, 32.0, 64.0]);
        reg[(i + 1) * 16..(i + 1) * 16 + 4].copy_from_slice(&[6.4, -12.8, 32.0, 64.0]);
        let (rs, cs) = ([1, n, 16], [1, n, 1]);
        let outs = [
            Tensor {
                shape: &rs,
                data: &reg,
            },
            Tensor {
                shape: &cs,
                data: &cls,
            },
        ];
        let faces = decode(&outs, 128, 128, 0.5).unwrap();
        assert_eq!(faces.len(), 1);
        let f = faces[0];
        assert!((f.confidence - 0.952_574_1).abs() < 1e-5);
        let (cx, cy) = (4.5 / 8.0 + 0.05, 3.5 / 8.0 - 0.1);
        assert!((f.x_min - (cx - 0.125)).abs() < 1e-6);
        assert!((f.x_max - (cx + 0.125)).abs() < 1e-6);
        assert!((f.y_min - (cy - 0.25)).abs() < 1e-6);
        assert!((f.y_max - (cy + 0.25)).abs() < 1e-6);
    }

    #[test]
    fn output_order_does_not_matter() {
        let n = 896;
        let reg = vec![0.0f32; n * 16];
        let mut cls = vec![-10.0f32; n];
        cls[0] = 5.0;
        let (rs, cs) = ([1, n, 16], [1, n, 1]);
        let outs = [
            Tensor {
                shape: &cs,
                data: &cls,
            },
            Tensor {
                shape: &rs,
                data: &reg,
            },
        ];
        // a zero-size box is still decoded; clipping drops it later
        assert_eq!(decode(&outs, 128, 128, 0.5).unwrap().len(), 1);
    }
}
