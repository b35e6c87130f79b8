//! YOLOv8 / YOLOv11 detection head: [1,4+C,N] (or transposed [1,N,4+C]); per candidate cx, cy, w, h
//! in input pixels, then C class scores (already sigmoid), no objectness. Per-class NMS follows.
//!
//! Checked on a real Ultralytics export (nudenet's YOLOv8n, [1,22,2100] at 320x320: its graph ends
//! with the boxes times their strides concatenated with a Sigmoid of the classes): equal to
//! Ultralytics' `non_max_suppression` done in numpy (tests/ovinfer_yolo.rs). Models exported with
//! letterboxed training input want `pre-process-resize=letterbox`.

use super::nms::nms;
use super::{Detection, Tensor};

/// IoU above which boxes of one class are merged (Ultralytics' default is 0.45 to 0.7).
pub const NMS_IOU: f32 = 0.45;

/// (classes, candidates, channels_first) for a YOLO-shaped output.
pub fn layout(shape: &[usize]) -> Option<(usize, usize, bool)> {
    if shape.len() != 3 || shape[0] != 1 {
        return None;
    }
    let (a, b) = (shape[1], shape[2]);
    // Many more candidates than channels; channels = 4 box values + at least one class.
    if a >= 5 && b > a {
        Some((a - 4, b, true))
    } else if b >= 5 && a > b {
        Some((b - 4, a, false))
    } else {
        None
    }
}

pub fn decode(
    out: &Tensor<'_>,
    w: usize,
    h: usize,
    threshold: f32,
) -> Result<Vec<Detection>, String> {
    let (classes, n, channels_first) = layout(out.shape)
        .ok_or_else(|| format!("yolo output must be [1,4+C,N], got {:?}", out.shape))?;
    // Checked: a shape near usize::MAX overflowed here (fuzz/regressions/decoders).
    if (classes + 4).checked_mul(n) != Some(out.data.len()) {
        return Err("yolo output size does not match its shape".into());
    }
    let at = |channel: usize, i: usize| {
        if channels_first {
            out.data[channel * n + i]
        } else {
            out.data[i * (classes + 4) + channel]
        }
    };
    let (sw, sh) = (w as f32, h as f32);
    let mut candidates = Vec::new();
    for i in 0..n {
        let (best, confidence) =
            (0..classes)
                .map(|c| (c, at(4 + c, i)))
                .fold(
                    (0, f32::NEG_INFINITY),
                    |acc, x| if x.1 > acc.1 { x } else { acc },
                );
        if confidence.is_nan() || confidence < threshold {
            continue;
        }
        let (cx, cy, bw, bh) = (at(0, i) / sw, at(1, i) / sh, at(2, i) / sw, at(3, i) / sh);
        candidates.push(Detection {
            quad: None,
            label_id: best as i32,
            confidence,
            x_min: cx - bw / 2.0,
            y_min: cy - bh / 2.0,
            x_max: cx + bw / 2.0,
            y_max: cy + bh / 2.0,
        });
    }
    Ok(nms(candidates, NMS_IOU, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fuzz find (fuzz/regressions/decoders/yolo_size_overflow): a [1, 5, huge] shape overflowed
    /// the expected size check. Now it is a size mismatch.
    #[test]
    fn fuzz_huge_shape_is_a_size_mismatch() {
        let shape = [1, 5, usize::MAX / 2];
        let out = Tensor {
            shape: &shape,
            data: &[0.0; 10],
        };
        assert!(decode(&out, 640, 640, 0.5).unwrap_err().contains("size"));
    }

    /// Candidates of the [1, 4+2, N] samples (padded with empty ones so that N > 4+C).
    const N: usize = 8;

    /// [1, 4+2, 8] channels-first: two overlapping class-1 boxes, one class-0 box, 5 empty.
    fn sample() -> Vec<f32> {
        let cand = [
            [320.0, 320.0, 64.0, 128.0, 0.1, 0.9],
            [322.0, 320.0, 64.0, 128.0, 0.1, 0.8],
            [100.0, 50.0, 20.0, 20.0, 0.7, 0.2],
        ];
        let mut data = vec![0.0; 6 * N];
        for (i, c) in cand.iter().enumerate() {
            for (ch, v) in c.iter().enumerate() {
                data[ch * N + i] = *v;
            }
        }
        data
    }

    #[test]
    fn decodes_boxes_in_input_pixels_with_per_class_nms() {
        let data = sample();
        let shape = [1, 6, N];
        let out = decode(
            &Tensor {
                shape: &shape,
                data: &data,
            },
            640,
            640,
            0.5,
        )
        .unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].label_id, 1);
        assert!((out[0].confidence - 0.9).abs() < 1e-6);
        assert!((out[0].x_min - 0.45).abs() < 1e-6 && (out[0].x_max - 0.55).abs() < 1e-6);
        assert!((out[0].y_min - 0.4).abs() < 1e-6 && (out[0].y_max - 0.6).abs() < 1e-6);
        assert_eq!(out[1].label_id, 0);
    }

    #[test]
    fn transposed_layout_gives_the_same_result() {
        let cf = sample();
        let mut cl = vec![0.0; 6 * N];
        for ch in 0..6 {
            for i in 0..N {
                cl[i * 6 + ch] = cf[ch * N + i];
            }
        }
        let shape_cl = [1, N, 6];
        let a = decode(
            &Tensor {
                shape: &shape_cl,
                data: &cl,
            },
            640,
            640,
            0.5,
        )
        .unwrap();
        let shape_cf = [1, 6, N];
        let b = decode(
            &Tensor {
                shape: &shape_cf,
                data: &cf,
            },
            640,
            640,
            0.5,
        )
        .unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn layouts() {
        assert_eq!(layout(&[1, 84, 8400]), Some((80, 8400, true)));
        assert_eq!(layout(&[1, 8400, 84]), Some((80, 8400, false)));
        assert_eq!(layout(&[1, 4, 100]), None);
        assert_eq!(layout(&[1, 1000]), None);
    }
}
