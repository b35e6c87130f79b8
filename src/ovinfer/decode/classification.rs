//! Whole-frame classification: [1,C] or [1,C,1,1] scores or logits -> the top class.

use super::{Classification, Tensor};

/// Number of classes for a classification-shaped output.
pub fn classes(shape: &[usize]) -> Option<usize> {
    match shape {
        [1, c] | [1, c, 1, 1] if *c >= 2 => Some(*c),
        _ => None,
    }
}

/// Probabilities: the values as they are when they already form a distribution, else softmax.
pub fn probabilities(scores: &[f32]) -> Vec<f32> {
    let sum: f32 = scores.iter().sum();
    let is_distribution =
        scores.iter().all(|v| (0.0..=1.0).contains(v)) && (sum - 1.0).abs() < 1e-3;
    if is_distribution {
        return scores.to_vec();
    }
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = scores.iter().map(|v| (v - max).exp()).collect();
    let total: f32 = exp.iter().sum();
    exp.iter().map(|v| v / total).collect()
}

/// The most probable class, if its probability reaches `threshold`.
pub fn decode(out: &Tensor<'_>, threshold: f32) -> Result<Option<Classification>, String> {
    let c = classes(out.shape)
        .ok_or_else(|| format!("classification output must be [1,C], got {:?}", out.shape))?;
    if out.data.len() != c {
        return Err("classification output size does not match its shape".into());
    }
    let p = probabilities(out.data);
    let best = p
        .iter()
        .enumerate()
        .filter(|(_, v)| !v.is_nan())
        .max_by(|a, b| a.1.total_cmp(b.1));
    Ok(best.and_then(|(i, &confidence)| {
        (confidence >= threshold).then_some(Classification {
            label_id: i as i32,
            confidence,
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_of_logits_picks_the_largest() {
        let data = [1.0, 3.0, 0.5];
        let shape = [1, 3];
        let c = decode(
            &Tensor {
                shape: &shape,
                data: &data,
            },
            0.5,
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.label_id, 1);
        let expected = 3f32.exp() / (1f32.exp() + 3f32.exp() + 0.5f32.exp());
        assert!((c.confidence - expected).abs() < 1e-6);
    }

    #[test]
    fn probabilities_are_used_as_they_are() {
        let data = [0.1, 0.2, 0.7];
        let shape = [1, 3, 1, 1];
        let c = decode(
            &Tensor {
                shape: &shape,
                data: &data,
            },
            0.5,
        )
        .unwrap()
        .unwrap();
        assert_eq!((c.label_id, c.confidence), (2, 0.7));
    }

    #[test]
    fn below_threshold_gives_nothing() {
        let data = [0.3, 0.3, 0.4];
        let shape = [1, 3];
        assert_eq!(
            decode(
                &Tensor {
                    shape: &shape,
                    data: &data
                },
                0.5
            )
            .unwrap(),
            None
        );
    }
}
