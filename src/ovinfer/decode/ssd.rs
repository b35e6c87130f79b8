//! SSD DetectionOutput: [1,1,N,7] rows of (image_id, label, confidence, x_min, y_min, x_max, y_max).

use super::{Detection, Tensor};

pub fn accepts(shape: &[usize]) -> bool {
    shape.len() == 4 && shape[0] == 1 && shape[1] == 1 && shape[3] == 7
}

/// Rows at or above `threshold`; a row with image_id < 0 ends the list (DetectionOutput pads so).
pub fn decode(out: &Tensor<'_>, threshold: f32) -> Result<Vec<Detection>, String> {
    let size = out.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    if !accepts(out.shape) || size != Some(out.data.len()) {
        return Err(format!("ssd output must be [1,1,N,7], got {:?}", out.shape));
    }
    let mut found = Vec::new();
    for row in out.data.chunks_exact(7) {
        if row[0] < 0.0 {
            break;
        }
        let confidence = row[2];
        // NaN compares false: such rows are skipped here.
        if confidence >= threshold {
            found.push(Detection {
                quad: None,
                label_id: row[1] as i32,
                confidence,
                x_min: row[3],
                y_min: row[4],
                x_max: row[5],
                y_max: row[6],
            });
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found with the yolo one by fuzzing: the product of a [1, 1, huge, 7] shape overflowed.
    #[test]
    fn fuzz_huge_shape_is_refused() {
        let shape = [1, 1, usize::MAX / 4, 7];
        let out = Tensor {
            shape: &shape,
            data: &[0.0; 7],
        };
        assert!(decode(&out, 0.5).is_err());
    }

    #[test]
    fn keeps_rows_above_threshold_and_stops_at_padding() {
        let data = [
            0.0,
            1.0,
            0.9,
            0.1,
            0.2,
            0.3,
            0.4, // kept
            0.0,
            2.0,
            0.3,
            0.1,
            0.2,
            0.3,
            0.4, // below threshold
            0.0,
            3.0,
            f32::NAN,
            0.1,
            0.2,
            0.3,
            0.4, // NaN confidence: dropped
            -1.0,
            4.0,
            0.99,
            0.0,
            0.0,
            1.0,
            1.0, // padding: end
            0.0,
            5.0,
            0.99,
            0.0,
            0.0,
            1.0,
            1.0,
        ];
        let shape = [1, 1, 5, 7];
        let out = decode(
            &Tensor {
                shape: &shape,
                data: &data,
            },
            0.5,
        )
        .unwrap();
        assert_eq!(
            out,
            vec![Detection {
                quad: None,
                label_id: 1,
                confidence: 0.9,
                x_min: 0.1,
                y_min: 0.2,
                x_max: 0.3,
                y_max: 0.4
            }]
        );
    }

    #[test]
    fn rejects_other_shapes() {
        let data = [0.0; 12];
        let shape = [1, 2, 6];
        assert!(
            decode(
                &Tensor {
                    shape: &shape,
                    data: &data
                },
                0.5
            )
            .is_err()
        );
        let shape = [1, 1, 2, 7];
        assert!(
            decode(
                &Tensor {
                    shape: &shape,
                    data: &data
                },
                0.5
            )
            .is_err(),
            "length mismatch"
        );
    }
}
