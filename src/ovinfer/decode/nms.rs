//! Greedy non-maximum suppression.

use super::Detection;

/// Intersection over union of two boxes (0 when either is empty).
pub fn iou(a: &Detection, b: &Detection) -> f32 {
    let ix = (a.x_max.min(b.x_max) - a.x_min.max(b.x_min)).max(0.0);
    let iy = (a.y_max.min(b.y_max) - a.y_min.max(b.y_min)).max(0.0);
    let inter = ix * iy;
    let union = a.area() + b.area() - inter;
    if union > 0.0 { inter / union } else { 0.0 }
}

/// Keeps the highest-confidence boxes, dropping any that overlap a kept box of the same class
/// (or of any class when `per_class` is false) by more than `iou_threshold`.
/// The result is sorted by descending confidence.
pub fn nms(mut candidates: Vec<Detection>, iou_threshold: f32, per_class: bool) -> Vec<Detection> {
    candidates.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
    let mut kept: Vec<Detection> = Vec::new();
    for c in candidates {
        let suppressed = kept
            .iter()
            .any(|k| (!per_class || k.label_id == c.label_id) && iou(k, &c) > iou_threshold);
        if !suppressed {
            kept.push(c);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(label_id: i32, confidence: f32, x: f32, y: f32, s: f32) -> Detection {
        Detection {
            quad: None,
            label_id,
            confidence,
            x_min: x,
            y_min: y,
            x_max: x + s,
            y_max: y + s,
        }
    }

    #[test]
    fn iou_of_identical_disjoint_and_half_overlapping_boxes() {
        let a = det(0, 1.0, 0.0, 0.0, 0.2);
        assert!((iou(&a, &a) - 1.0).abs() < 1e-6);
        assert_eq!(iou(&a, &det(0, 1.0, 0.5, 0.5, 0.2)), 0.0);
        let half = Detection {
            x_min: 0.1,
            x_max: 0.3,
            ..a
        };
        assert!((iou(&a, &half) - 1.0 / 3.0).abs() < 1e-6);
    }

    #[test]
    fn overlapping_boxes_of_one_class_collapse_to_the_best() {
        let out = nms(
            vec![
                det(0, 0.6, 0.0, 0.0, 0.2),
                det(0, 0.9, 0.01, 0.0, 0.2),
                det(0, 0.5, 0.6, 0.6, 0.2),
            ],
            0.5,
            true,
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].confidence, 0.9);
        assert_eq!(out[1].confidence, 0.5);
    }

    #[test]
    fn per_class_keeps_overlapping_boxes_of_different_classes() {
        let boxes = vec![det(0, 0.9, 0.0, 0.0, 0.2), det(1, 0.8, 0.0, 0.0, 0.2)];
        assert_eq!(nms(boxes.clone(), 0.5, true).len(), 2);
        assert_eq!(nms(boxes, 0.5, false).len(), 1);
    }
}
