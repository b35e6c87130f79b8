//! Text read straight: a text detector's rotated rectangle (the `rotated_box` of its ROI) cut out
//! of the frame upright, as PaddleOCR's `get_rotate_crop_image`: its corners from the top-left
//! one around, as wide as its longer top or bottom edge and as high as its longer side, turned
//! a quarter anticlockwise (`np.rot90`) when at least 1.5 times as high as wide. The straight
//! picture is then fitted into the model's input (PaddleOCR's `resize_norm_img`) in the same
//! pass: each input pixel is sampled bilinearly from the frame where it falls, the frame's edge
//! pixels standing in beyond it (OpenCV's `BORDER_REPLICATE`).

use super::resize::Placement;

/// How much higher than wide a text box is read turned a quarter (PaddleOCR's 1.5).
pub const QUARTER_TURN_RATIO: f32 = 1.5;

/// A rotated rectangle as an upright picture: the point of the source at (s, t) of the picture
/// is `origin + s / width * along + t / height * across`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Straight {
    origin: (f32, f32),
    along: (f32, f32),
    across: (f32, f32),
    /// The picture's size, in source pixels.
    width: f32,
    height: f32,
}

fn minus(a: (f32, f32), b: (f32, f32)) -> (f32, f32) {
    (a.0 - b.0, a.1 - b.1)
}

fn length(v: (f32, f32)) -> f32 {
    v.0.hypot(v.1)
}

impl Straight {
    /// The picture of the rectangle with `corners` (x, y of each in source pixels, from the
    /// top-left one around; as OpenCV's warp, the picture's first pixel centre is at the first
    /// corner); None when it is degenerate (a side under a pixel, or not finite).
    pub fn new(corners: [f32; 8]) -> Option<Straight> {
        let p = |i: usize| (corners[2 * i], corners[2 * i + 1]);
        let (p0, p1, p2, p3) = (p(0), p(1), p(2), p(3));
        let width = length(minus(p1, p0)).max(length(minus(p2, p3)));
        let height = length(minus(p3, p0)).max(length(minus(p2, p1)));
        if !(width >= 1.0 && height >= 1.0 && corners.iter().all(|v| v.is_finite())) {
            return None;
        }
        let upright = Straight {
            origin: p0,
            along: minus(p1, p0),
            across: minus(p3, p0),
            width,
            height,
        };
        if height < QUARTER_TURN_RATIO * width {
            return Some(upright);
        }
        // A quarter anticlockwise (np.rot90): the picture's last column, read downwards, is the
        // first row; points are pixel centres, the first at the corner.
        let last_column = (width - 1.0) / width;
        Some(Straight {
            origin: (
                p0.0 + upright.along.0 * last_column,
                p0.1 + upright.along.1 * last_column,
            ),
            along: minus(p3, p0),
            across: minus(p0, p1),
            width: height,
            height: width,
        })
    }

    /// The picture's size in whole pixels (at least 1 each way).
    pub fn size(&self) -> (usize, usize) {
        let whole = |v: f32| (v.round() as usize).max(1);
        (whole(self.width), whole(self.height))
    }

    /// The picture turned over (180°): its last pixel first.
    pub fn turned(&self) -> Straight {
        let (u, v) = (
            (self.width - 1.0) / self.width,
            (self.height - 1.0) / self.height,
        );
        Straight {
            origin: (
                self.origin.0 + u * self.along.0 + v * self.across.0,
                self.origin.1 + u * self.along.1 + v * self.across.1,
            ),
            along: (-self.along.0, -self.along.1),
            across: (-self.across.0, -self.across.1),
            ..*self
        }
    }

    /// The same rectangle in a source whose origin is at `(x, y)` of this one.
    pub fn shifted(&self, x: f32, y: f32) -> Straight {
        Straight {
            origin: (self.origin.0 - x, self.origin.1 - y),
            ..*self
        }
    }

    /// Writes the picture, sampled from `src` (`size` pixels of 3 bytes, rows packed), into
    /// `dst` (the model's `placement.input`-sized picture, 3 bytes a pixel) at `placement.rect`,
    /// the rest `pad`. False when a buffer is shorter than its size says.
    pub fn write(
        &self,
        src: &[u8],
        size: (usize, usize),
        placement: &Placement,
        pad: u8,
        dst: &mut [u8],
    ) -> bool {
        let (sw, sh) = size;
        let (iw, ih) = placement.input;
        if sw == 0 || sh == 0 || src.len() < sw * sh * 3 || dst.len() < iw * ih * 3 {
            return false;
        }
        dst.fill(pad);
        let (x0, y0, pw, ph) = placement.rect;
        let pixel = |x: usize, y: usize| &src[(y * sw + x) * 3..(y * sw + x) * 3 + 3];
        for j in 0..ph.min(ih.saturating_sub(y0)) {
            // The picture's row at its pixel centre (OpenCV's resize), then the source's point.
            let t = (j as f32 + 0.5) * self.height / ph as f32 - 0.5;
            for i in 0..pw.min(iw.saturating_sub(x0)) {
                let s = (i as f32 + 0.5) * self.width / pw as f32 - 0.5;
                let (u, v) = (s / self.width, t / self.height);
                let x = self.origin.0 + u * self.along.0 + v * self.across.0;
                let y = self.origin.1 + u * self.along.1 + v * self.across.1;
                let x = x.clamp(0.0, (sw - 1) as f32);
                let y = y.clamp(0.0, (sh - 1) as f32);
                let (xa, ya) = (x.floor() as usize, y.floor() as usize);
                let (xb, yb) = ((xa + 1).min(sw - 1), (ya + 1).min(sh - 1));
                let (fx, fy) = (x - xa as f32, y - ya as f32);
                let at = ((y0 + j) * iw + x0 + i) * 3;
                for c in 0..3 {
                    let top =
                        f32::from(pixel(xa, ya)[c]) * (1.0 - fx) + f32::from(pixel(xb, ya)[c]) * fx;
                    let bottom =
                        f32::from(pixel(xa, yb)[c]) * (1.0 - fx) + f32::from(pixel(xb, yb)[c]) * fx;
                    dst[at + c] = (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8;
                }
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ovinfer::ResizeMode;

    /// A `w`x`h` source whose pixel (x, y) is (x, y, 7).
    fn ramp(w: usize, h: usize) -> Vec<u8> {
        (0..h)
            .flat_map(|y| (0..w).flat_map(move |x| [x as u8, y as u8, 7]))
            .collect()
    }

    fn pixel(dst: &[u8], width: usize, x: usize, y: usize) -> [u8; 3] {
        let at = (y * width + x) * 3;
        [dst[at], dst[at + 1], dst[at + 2]]
    }

    #[test]
    fn an_upright_box_is_its_own_crop() {
        // 4x2 pixels from pixel (2, 1).
        let straight = Straight::new([2.0, 1.0, 6.0, 1.0, 6.0, 3.0, 2.0, 3.0]).unwrap();
        assert_eq!(straight.size(), (4, 2));
        let placement = Placement::new(ResizeMode::Stretch, (4, 2), (4, 2));
        let mut dst = vec![0; 4 * 2 * 3];
        assert!(straight.write(&ramp(8, 4), (8, 4), &placement, 128, &mut dst));
        assert_eq!(pixel(&dst, 4, 0, 0), [2, 1, 7]);
        assert_eq!(pixel(&dst, 4, 3, 1), [5, 2, 7]);
        // Turned over: the last pixel first.
        assert!(
            straight
                .turned()
                .write(&ramp(8, 4), (8, 4), &placement, 128, &mut dst)
        );
        assert_eq!(pixel(&dst, 4, 0, 0), [5, 2, 7]);
        assert_eq!(pixel(&dst, 4, 3, 1), [2, 1, 7]);
        assert_eq!(pixel(&dst, 4, 1, 0), [4, 2, 7]);
    }

    #[test]
    fn a_box_turned_a_quarter_reads_along_its_long_side() {
        // Text written downwards: a box 2 wide and 6 high, its corners from the top-left around;
        // read turned a quarter anticlockwise (6 wide, 2 high), it starts at the top right.
        let straight = Straight::new([2.0, 1.0, 4.0, 1.0, 4.0, 7.0, 2.0, 7.0]).unwrap();
        assert_eq!(straight.size(), (6, 2));
        let placement = Placement::new(ResizeMode::Stretch, (6, 2), (6, 2));
        let mut dst = vec![0; 6 * 2 * 3];
        assert!(straight.write(&ramp(8, 8), (8, 8), &placement, 128, &mut dst));
        // np.rot90 of its 2x6 pixels from (2, 1): the first row is their last column (x 3)
        // read downwards, the second their first column.
        assert_eq!(pixel(&dst, 6, 0, 0), [3, 1, 7]);
        assert_eq!(pixel(&dst, 6, 5, 0), [3, 6, 7]);
        assert_eq!(pixel(&dst, 6, 0, 1), [2, 1, 7]);
    }

    #[test]
    fn a_slanted_box_is_read_level_and_padded() {
        // A 4x1 rectangle slanted by 45° in a 10x10 ramp, fitted at height 2 into a 10x2 input.
        let r = std::f32::consts::FRAC_1_SQRT_2;
        let (x0, y0) = (2.0, 2.0);
        let corners = [
            x0,
            y0,
            x0 + 4.0 * r,
            y0 + 4.0 * r,
            x0 + 4.0 * r - r,
            y0 + 4.0 * r + r,
            x0 - r,
            y0 + r,
        ];
        let straight = Straight::new(corners).unwrap();
        assert_eq!(straight.size(), (4, 1));
        let placement = Placement::new(ResizeMode::FitHeight, (4, 1), (10, 2));
        assert_eq!(placement.rect, (0, 0, 8, 2));
        let mut dst = vec![0; 10 * 2 * 3];
        assert!(straight.write(&ramp(10, 10), (10, 10), &placement, 128, &mut dst));
        // Along the top row x and y grow together; the padding is grey.
        let row: Vec<[u8; 3]> = (0..8).map(|x| pixel(&dst, 10, x, 0)).collect();
        assert!(
            row.windows(2)
                .all(|w| w[1][0] >= w[0][0] && w[1][1] >= w[0][1]),
            "{row:?}"
        );
        assert!(row[7][0] > row[0][0] + 1, "{row:?}");
        assert_eq!(pixel(&dst, 10, 9, 1), [128, 128, 128]);
        // Moved with its source: the same picture.
        let mut again = vec![0; dst.len()];
        let shifted = straight.shifted(1.0, 1.0);
        let src: Vec<u8> = (1..10)
            .flat_map(|y| (1..10).flat_map(move |x| [x as u8, y as u8, 7]))
            .collect();
        assert!(shifted.write(&src, (9, 9), &placement, 128, &mut again));
        assert_eq!(again, dst);
    }

    #[test]
    fn degenerate_boxes_and_short_buffers_are_refused() {
        assert_eq!(Straight::new([0.0; 8]), None);
        assert_eq!(
            Straight::new([0.0, 0.0, f32::NAN, 0.0, 4.0, 4.0, 0.0, 4.0]),
            None
        );
        let straight = Straight::new([0.0, 0.0, 4.0, 0.0, 4.0, 2.0, 0.0, 2.0]).unwrap();
        let placement = Placement::new(ResizeMode::Stretch, (4, 2), (4, 2));
        let mut dst = vec![0; 24];
        assert!(!straight.write(&[0; 5], (4, 2), &placement, 0, &mut dst));
        assert!(!straight.write(&ramp(4, 2), (4, 2), &placement, 0, &mut dst[..10]));
    }
}
