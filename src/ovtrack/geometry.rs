//! Boxes: corners normalised to the frame, their overlap (IoU), and the centre/aspect/height form
//! the Kalman filter tracks.

/// A box by its corners, normalised to the frame (0..1, though predictions may leave it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BBox {
    pub x0: f64,
    pub y0: f64,
    pub x1: f64,
    pub y1: f64,
}

impl BBox {
    pub fn new(x0: f64, y0: f64, x1: f64, y1: f64) -> BBox {
        BBox { x0, y0, x1, y1 }
    }

    /// From `[x_min, y_min, x_max, y_max]`.
    pub fn from_corners(c: [f64; 4]) -> BBox {
        BBox::new(c[0], c[1], c[2], c[3])
    }

    pub fn corners(&self) -> [f64; 4] {
        [self.x0, self.y0, self.x1, self.y1]
    }

    pub fn width(&self) -> f64 {
        self.x1 - self.x0
    }

    pub fn height(&self) -> f64 {
        self.y1 - self.y0
    }

    pub fn area(&self) -> f64 {
        self.width().max(0.0) * self.height().max(0.0)
    }

    /// Finite corners and a positive width and height: a box that can be tracked.
    pub fn is_valid(&self) -> bool {
        self.corners().iter().all(|v| v.is_finite()) && self.x1 > self.x0 && self.y1 > self.y0
    }

    /// Intersection over union, 0..1 (0 for boxes without area).
    pub fn iou(&self, other: &BBox) -> f64 {
        if !self.is_valid() || !other.is_valid() {
            return 0.0;
        }
        let w = (self.x1.min(other.x1) - self.x0.max(other.x0)).max(0.0);
        let h = (self.y1.min(other.y1) - self.y0.max(other.y0)).max(0.0);
        let inter = w * h;
        let union = self.area() + other.area() - inter;
        if union > 0.0 && inter.is_finite() {
            (inter / union).clamp(0.0, 1.0)
        } else {
            0.0
        }
    }

    /// `[centre x, centre y, aspect (w/h), height]`, the measurement of the Kalman filter.
    pub fn to_xyah(&self) -> [f64; 4] {
        let h = self.height();
        [
            (self.x0 + self.x1) / 2.0,
            (self.y0 + self.y1) / 2.0,
            self.width() / h,
            h,
        ]
    }

    /// The box of `[centre x, centre y, aspect, height]` (a non-positive aspect or height gives a
    /// box without area).
    pub fn from_xyah(m: [f64; 4]) -> BBox {
        let h = m[3].max(0.0);
        let w = (m[2] * h).max(0.0);
        BBox::new(
            m[0] - w / 2.0,
            m[1] - h / 2.0,
            m[0] + w / 2.0,
            m[1] + h / 2.0,
        )
    }

    /// The part of the box inside the frame.
    pub fn clipped(&self) -> BBox {
        let c = |v: f64| v.clamp(0.0, 1.0);
        BBox::new(c(self.x0), c(self.y0), c(self.x1), c(self.y1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_of_known_boxes() {
        let a = BBox::new(0.0, 0.0, 0.2, 0.2);
        assert!((a.iou(&a) - 1.0).abs() < 1e-12);
        let b = BBox::new(0.1, 0.0, 0.3, 0.2);
        // intersection 0.02, union 0.06
        assert!((a.iou(&b) - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(a.iou(&BBox::new(0.5, 0.5, 0.6, 0.6)), 0.0);
        assert_eq!(a.iou(&BBox::new(0.1, 0.1, 0.1, 0.3)), 0.0);
        let nan = BBox::new(f64::NAN, 0.0, 0.1, 0.1);
        assert!(!nan.is_valid());
        assert_eq!(a.iou(&nan), 0.0);
    }

    #[test]
    fn xyah_round_trips() {
        let a = BBox::new(0.1, 0.2, 0.4, 0.8);
        let m = a.to_xyah();
        assert!((m[0] - 0.25).abs() < 1e-12 && (m[1] - 0.5).abs() < 1e-12);
        assert!((m[2] - 0.5).abs() < 1e-12 && (m[3] - 0.6).abs() < 1e-12);
        let back = BBox::from_xyah(m);
        for (x, y) in back.corners().iter().zip(a.corners()) {
            assert!((x - y).abs() < 1e-12);
        }
        assert_eq!(BBox::from_xyah([0.5, 0.5, -1.0, 0.2]).area(), 0.0);
        assert_eq!(
            BBox::new(-0.5, 0.2, 1.5, 0.4).clipped(),
            BBox::new(0.0, 0.2, 1.0, 0.4)
        );
    }
}
