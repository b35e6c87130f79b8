//! Text detection: DB ("Differentiable Binarization") post-processing of a text probability map
//! [1,1,H,W] (PP-OCR's detectors) into upright text boxes.
//!
//! As PaddleOCR's and rapidocr's `DBPostProcess` (score mode "fast", with dilation), without
//! OpenCV: the map is binarised at [`BINARIZE_THRESHOLD`] and dilated by a 2×2 kernel; each
//! 8-connected component of the bitmap is a candidate (at most [`MAX_CANDIDATES`]); its
//! minimum-area rotated rectangle (over the pixel centres, as `cv2.minAreaRect` of its contour)
//! must have a shorter side of at least [`MIN_SIZE`]; its score is the mean probability of the
//! pixels inside that rectangle, kept when at least the threshold (`box_thresh`); the rectangle
//! is grown on every side by `area × ratio / perimeter` (the Clipper offset of a rectangle with
//! round joins, whose minimum-area rectangle is exactly that), must then have a shorter side of
//! at least `MIN_SIZE + 2`, and becomes the upright box around it, normalised to the map (so to
//! the frame, which is stretched onto the input), carrying its corners (`Detection::quad`) for
//! a recogniser to read it straight. Boxes come in reading order: top to bottom,
//! and left to right within a line (tops within [`LINE_TOLERANCE`] pixels), as rapidocr's.

use super::{Detection, Tensor};

/// Probability above which a pixel of the map is text (rapidocr's `thresh`).
pub const BINARIZE_THRESHOLD: f32 = 0.3;
/// How far a box grows: by its area × this / its perimeter on every side (`unclip_ratio`).
pub const UNCLIP_RATIO: f32 = 1.6;
/// Smallest shorter side of a candidate's rectangle, in map pixels (`min_size`).
pub const MIN_SIZE: f32 = 3.0;
/// Components looked at, at most (`max_candidates`).
pub const MAX_CANDIDATES: usize = 1000;
/// Boxes whose tops are closer than this (map pixels) are one line, ordered left to right.
pub const LINE_TOLERANCE: f32 = 10.0;

/// (height, width) of a text probability map [1,1,H,W].
pub fn map_size(shape: &[usize]) -> Option<(usize, usize)> {
    match shape {
        [1, 1, h, w] if *h >= 1 && *w >= 1 => Some((*h, *w)),
        _ => None,
    }
}

/// Whether `shape` is a probability map of the input's size ([1,1,H,W] for an H×W input).
pub fn accepts(shape: &[usize], input_width: usize, input_height: usize) -> bool {
    map_size(shape) == Some((input_height, input_width))
}

/// A point in map pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub x: f32,
    pub y: f32,
}

/// A rotated rectangle by its corners, in order around it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quad {
    pub corners: [Point; 4],
    /// Side lengths: along the first edge, and across it.
    pub width: f32,
    pub height: f32,
}

impl Quad {
    fn shorter_side(&self) -> f32 {
        self.width.min(self.height)
    }

    fn center(&self) -> Point {
        let (sx, sy) = self
            .corners
            .iter()
            .fold((0.0, 0.0), |(x, y), p| (x + p.x, y + p.y));
        Point {
            x: sx / 4.0,
            y: sy / 4.0,
        }
    }

    /// The rectangle grown by `d` on every side.
    pub fn grown(&self, d: f32) -> Quad {
        let c = self.center();
        let (w, h) = (self.width.max(0.0), self.height.max(0.0));
        // Unit vectors along and across the first edge (x and y for a point-sized rectangle).
        let along = unit(self.corners[0], self.corners[1]).unwrap_or(Point { x: 1.0, y: 0.0 });
        let across = Point {
            x: -along.y,
            y: along.x,
        };
        let (hw, hh) = (w / 2.0 + d, h / 2.0 + d);
        let at = |a: f32, b: f32| Point {
            x: c.x + along.x * a + across.x * b,
            y: c.y + along.y * a + across.y * b,
        };
        Quad {
            corners: [at(-hw, -hh), at(hw, -hh), at(hw, hh), at(-hw, hh)],
            width: w + 2.0 * d,
            height: h + 2.0 * d,
        }
    }

    /// Its corners as PaddleOCR's `get_mini_boxes` orders them for reading: of the two leftmost
    /// the upper one first, then of the two rightmost the upper one, the lower one, and the
    /// lower left one (top-left, top-right, bottom-right, bottom-left for text that is nearly
    /// level).
    pub fn reading_corners(&self) -> [Point; 4] {
        let mut by_x = self.corners;
        by_x.sort_by(|a, b| a.x.total_cmp(&b.x));
        let [a, b, c, d] = by_x;
        let (top_left, bottom_left) = if a.y <= b.y { (a, b) } else { (b, a) };
        let (top_right, bottom_right) = if c.y <= d.y { (c, d) } else { (d, c) };
        [top_left, top_right, bottom_right, bottom_left]
    }

    /// The upright box around it: (x_min, y_min, x_max, y_max).
    pub fn bounds(&self) -> (f32, f32, f32, f32) {
        self.corners.iter().fold(
            (
                f32::INFINITY,
                f32::INFINITY,
                f32::NEG_INFINITY,
                f32::NEG_INFINITY,
            ),
            |(x0, y0, x1, y1), p| (x0.min(p.x), y0.min(p.y), x1.max(p.x), y1.max(p.y)),
        )
    }
}

fn unit(a: Point, b: Point) -> Option<Point> {
    let (dx, dy) = (b.x - a.x, b.y - a.y);
    let len = (dx * dx + dy * dy).sqrt();
    (len > 1e-6).then(|| Point {
        x: dx / len,
        y: dy / len,
    })
}

/// The bitmap of pixels over `threshold`, dilated by a 2×2 kernel (anchored as OpenCV's: a
/// pixel is set when it, its left, upper or upper-left neighbour is).
pub fn bitmap(map: &[f32], width: usize, height: usize, threshold: f32) -> Vec<bool> {
    let on: Vec<bool> = map.iter().map(|&p| p > threshold).collect();
    let mut out = on.clone();
    for y in 0..height {
        for x in 0..width {
            let at = |dx: usize, dy: usize| on[(y - dy) * width + (x - dx)];
            out[y * width + x] = at(0, 0)
                || (x > 0 && at(1, 0))
                || (y > 0 && at(0, 1))
                || (x > 0 && y > 0 && at(1, 1));
        }
    }
    out
}

/// The 8-connected components of a bitmap, in the order their first pixel comes in row-major
/// order, at most `max`: each as its rows' (y, x_min, x_max) spans' ends (the component's
/// leftmost and rightmost pixel on each row it has), which have the same convex hull as its
/// pixels.
pub fn components(bits: &[bool], width: usize, height: usize, max: usize) -> Vec<Vec<Point>> {
    let mut seen = vec![false; bits.len()];
    let mut found = Vec::new();
    let mut stack = Vec::new();
    for start in 0..bits.len() {
        if found.len() >= max {
            break;
        }
        if !bits[start] || seen[start] {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        // Per row of the component: (x_min, x_max).
        let mut rows: std::collections::BTreeMap<usize, (usize, usize)> = Default::default();
        while let Some(i) = stack.pop() {
            let (x, y) = (i % width, i / width);
            let row = rows.entry(y).or_insert((x, x));
            row.0 = row.0.min(x);
            row.1 = row.1.max(x);
            for dy in -1i64..=1 {
                for dx in -1i64..=1 {
                    let (nx, ny) = (x as i64 + dx, y as i64 + dy);
                    if nx < 0 || ny < 0 || nx >= width as i64 || ny >= height as i64 {
                        continue;
                    }
                    let j = ny as usize * width + nx as usize;
                    if bits[j] && !seen[j] {
                        seen[j] = true;
                        stack.push(j);
                    }
                }
            }
        }
        let mut points = Vec::with_capacity(rows.len() * 2);
        for (y, (x0, x1)) in rows {
            points.push(Point {
                x: x0 as f32,
                y: y as f32,
            });
            if x1 != x0 {
                points.push(Point {
                    x: x1 as f32,
                    y: y as f32,
                });
            }
        }
        found.push(points);
    }
    found
}

fn cross(o: Point, a: Point, b: Point) -> f32 {
    (a.x - o.x) * (b.y - o.y) - (a.y - o.y) * (b.x - o.x)
}

/// The convex hull of `points`, counter-clockwise in a y-down frame (Andrew's monotone chain),
/// without collinear points.
pub fn convex_hull(points: &[Point]) -> Vec<Point> {
    let mut p: Vec<Point> = points.to_vec();
    p.sort_by(|a, b| a.x.total_cmp(&b.x).then(a.y.total_cmp(&b.y)));
    p.dedup();
    if p.len() < 3 {
        return p;
    }
    let mut hull: Vec<Point> = Vec::with_capacity(p.len() * 2);
    for pass in 0..2 {
        let start = hull.len();
        let iter: Box<dyn Iterator<Item = &Point>> = if pass == 0 {
            Box::new(p.iter())
        } else {
            Box::new(p.iter().rev())
        };
        for &q in iter {
            while hull.len() >= start + 2
                && cross(hull[hull.len() - 2], hull[hull.len() - 1], q) <= 0.0
            {
                hull.pop();
            }
            hull.push(q);
        }
        hull.pop();
    }
    hull
}

/// The minimum-area rectangle around `points` (rotating calipers over their convex hull: one
/// side of the best rectangle lies on an edge of the hull). Points on a line give a rectangle
/// of height 0, one point one of size 0.
pub fn min_area_rect(points: &[Point]) -> Option<Quad> {
    let hull = convex_hull(points);
    let first = *hull.first()?;
    let mut best: Option<(f32, Quad)> = None;
    let edges = hull.len().max(1);
    for i in 0..edges {
        let (a, b) = (hull[i], hull[(i + 1) % hull.len()]);
        let along = unit(a, b).unwrap_or(Point { x: 1.0, y: 0.0 });
        let across = Point {
            x: -along.y,
            y: along.x,
        };
        let (mut u0, mut u1, mut v0, mut v1) = (
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::INFINITY,
            f32::NEG_INFINITY,
        );
        for p in &hull {
            let (dx, dy) = (p.x - first.x, p.y - first.y);
            let u = dx * along.x + dy * along.y;
            let v = dx * across.x + dy * across.y;
            (u0, u1, v0, v1) = (u0.min(u), u1.max(u), v0.min(v), v1.max(v));
        }
        let area = (u1 - u0) * (v1 - v0);
        if best.as_ref().is_some_and(|(a, _)| *a <= area) {
            continue;
        }
        let at = |u: f32, v: f32| Point {
            x: first.x + along.x * u + across.x * v,
            y: first.y + along.y * u + across.y * v,
        };
        let quad = Quad {
            corners: [at(u0, v0), at(u1, v0), at(u1, v1), at(u0, v1)],
            width: u1 - u0,
            height: v1 - v0,
        };
        best = Some((area, quad));
    }
    best.map(|(_, q)| q)
}

/// The mean of the map over the pixels inside the quadrilateral whose corners are `quad`'s
/// truncated to whole pixels, edges included (as rapidocr's `box_score_fast`: `cv2.fillPoly`
/// of the rectangle's integer corners, then `cv2.mean`). 0 when no pixel is inside.
pub fn box_score(map: &[f32], width: usize, height: usize, quad: &Quad) -> f32 {
    let corners: Vec<Point> = quad
        .corners
        .iter()
        .map(|p| Point {
            x: p.x.trunc(),
            y: p.y.trunc(),
        })
        .collect();
    let (x0, y0, x1, y1) = quad.bounds();
    let clamp = |v: f32, hi: usize| (v.max(0.0) as usize).min(hi - 1);
    let (x0, x1) = (clamp(x0.floor(), width), clamp(x1.ceil(), width));
    let (y0, y1) = (clamp(y0.floor(), height), clamp(y1.ceil(), height));
    // The corners' winding, to test each pixel on the inner side of every edge.
    let area2: f32 = (0..4)
        .map(|i| {
            let (a, b) = (corners[i], corners[(i + 1) % 4]);
            a.x * b.y - b.x * a.y
        })
        .sum();
    let sign = if area2 < 0.0 { -1.0 } else { 1.0 };
    let (mut sum, mut n) = (0.0f64, 0usize);
    for y in y0..=y1 {
        for x in x0..=x1 {
            let p = Point {
                x: x as f32,
                y: y as f32,
            };
            let inside = (0..4).all(|i| sign * cross(corners[i], corners[(i + 1) % 4], p) >= -1e-3);
            if inside {
                let v = map[y * width + x];
                if v.is_finite() {
                    sum += f64::from(v);
                }
                n += 1;
            }
        }
    }
    if n == 0 { 0.0 } else { (sum / n as f64) as f32 }
}

/// Text boxes from a probability map [1,1,H,W]: boxes scoring at least `box_threshold`,
/// normalised to the map, label 0, in reading order.
pub fn decode(out: &Tensor<'_>, box_threshold: f32) -> Result<Vec<Detection>, String> {
    let (height, width) = map_size(out.shape).ok_or_else(|| {
        format!(
            "text detection output must be a probability map [1,1,H,W], got {:?}",
            out.shape
        )
    })?;
    if height.checked_mul(width) != Some(out.data.len()) {
        return Err("text detection output size does not match its shape".into());
    }
    let map = out.data;
    let bits = bitmap(map, width, height, BINARIZE_THRESHOLD);
    let mut found: Vec<(f32, Detection)> = Vec::new();
    for points in components(&bits, width, height, MAX_CANDIDATES) {
        let Some(rect) = min_area_rect(&points) else {
            continue;
        };
        if rect.shorter_side() < MIN_SIZE {
            continue;
        }
        let score = box_score(map, width, height, &rect);
        if score.is_nan() || score < box_threshold {
            continue;
        }
        let (w, h) = (rect.width, rect.height);
        let d = w * h * UNCLIP_RATIO / (2.0 * (w + h));
        let grown = rect.grown(d);
        if grown.shorter_side() < MIN_SIZE + 2.0 {
            continue;
        }
        let (x0, y0, x1, y1) = grown.bounds();
        let (fw, fh) = (width as f32, height as f32);
        let corners = grown.reading_corners();
        let mut quad = [0.0; 8];
        for (i, p) in corners.iter().enumerate() {
            quad[2 * i] = p.x / fw;
            quad[2 * i + 1] = p.y / fh;
        }
        found.push((
            y0,
            Detection {
                quad: Some(quad),
                label_id: 0,
                confidence: score,
                x_min: x0.max(0.0) / fw,
                y_min: y0.max(0.0) / fh,
                x_max: x1.min(fw) / fw,
                y_max: y1.min(fh) / fh,
            },
        ));
    }
    Ok(reading_order(found, width as f32))
}

/// Boxes (each with its top in map pixels) top to bottom, then left to right among boxes whose
/// tops are within [`LINE_TOLERANCE`] of the one before (rapidocr's `sorted_boxes`).
fn reading_order(mut found: Vec<(f32, Detection)>, width: f32) -> Vec<Detection> {
    let left = |d: &Detection| d.x_min * width;
    found.sort_by(|a, b| a.0.total_cmp(&b.0).then(left(&a.1).total_cmp(&left(&b.1))));
    for i in 0..found.len().saturating_sub(1) {
        for j in (0..=i).rev() {
            let (a, b) = (&found[j], &found[j + 1]);
            if (b.0 - a.0).abs() < LINE_TOLERANCE && left(&b.1) < left(&a.1) {
                found.swap(j, j + 1);
            } else {
                break;
            }
        }
    }
    found.into_iter().map(|(_, d)| d).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A map of `w`×`h` with probability `p` in each rectangle (x0, y0, x1, y1), inclusive.
    fn map(w: usize, h: usize, rects: &[(usize, usize, usize, usize, f32)]) -> Vec<f32> {
        let mut m = vec![0.0; w * h];
        for &(x0, y0, x1, y1, p) in rects {
            for y in y0..=y1 {
                for x in x0..=x1 {
                    m[y * w + x] = p;
                }
            }
        }
        m
    }

    fn decode_map(w: usize, h: usize, m: &[f32], threshold: f32) -> Vec<Detection> {
        let shape = [1, 1, h, w];
        decode(
            &Tensor {
                shape: &shape,
                data: m,
            },
            threshold,
        )
        .unwrap()
    }

    #[test]
    fn an_upright_block_grows_by_area_ratio_over_perimeter() {
        // Pixels x 10..=49, y 20..=29: after the dilation x 10..=50, y 20..=30, so centres
        // span 40 × 10; d = 400 × 1.6 / 100 = 6.4.
        let (w, h) = (100, 60);
        let m = map(w, h, &[(10, 20, 49, 29, 0.9)]);
        let found = decode_map(w, h, &m, 0.5);
        assert_eq!(found.len(), 1, "{found:?}");
        let d = found[0];
        let px = |v: f32, s: usize| v * s as f32;
        assert!((px(d.x_min, w) - 3.6).abs() < 1e-3, "{d:?}");
        assert!((px(d.x_max, w) - 56.4).abs() < 1e-3, "{d:?}");
        assert!((px(d.y_min, h) - 13.6).abs() < 1e-3, "{d:?}");
        assert!((px(d.y_max, h) - 36.4).abs() < 1e-3, "{d:?}");
        // The dilated row and column outside the block lower the mean: 400 of 451 pixels.
        assert!((d.confidence - 0.9 * 400.0 / 451.0).abs() < 1e-4, "{d:?}");
        assert_eq!(d.label_id, 0);
    }

    #[test]
    fn weak_thin_and_faint_regions_are_dropped() {
        let (w, h) = (100, 60);
        // Below the binarisation threshold; 2 px high; under the box threshold.
        let m = map(
            w,
            h,
            &[
                (5, 5, 40, 12, 0.25),
                (50, 5, 90, 6, 0.9),
                (5, 30, 40, 45, 0.4),
            ],
        );
        assert!(decode_map(w, h, &m, 0.5).is_empty());
        // The faint block is kept with a lower box threshold.
        assert_eq!(decode_map(w, h, &m, 0.3).len(), 1);
    }

    #[test]
    fn boxes_come_in_reading_order() {
        let (w, h) = (200, 100);
        let m = map(
            w,
            h,
            &[
                (120, 12, 180, 22, 0.9),
                (10, 10, 80, 20, 0.9),
                (10, 60, 80, 70, 0.9),
            ],
        );
        let found = decode_map(w, h, &m, 0.5);
        let lefts: Vec<f32> = found.iter().map(|d| d.x_min * w as f32).collect();
        let tops: Vec<f32> = found.iter().map(|d| d.y_min * h as f32).collect();
        assert_eq!(found.len(), 3);
        assert!(lefts[0] < lefts[1] && tops[2] > tops[0] + 30.0, "{found:?}");
    }

    #[test]
    fn a_slanted_bar_gets_its_rotated_rectangle() {
        // A bar 60 long, 8 thick, at 30 degrees: the rotated rectangle is found, and the
        // upright box is the one around it grown.
        let (w, h) = (120, 100);
        let mut m = vec![0.0f32; w * h];
        let (c, s) = (30f32.to_radians().cos(), 30f32.to_radians().sin());
        for y in 0..h {
            for x in 0..w {
                let (dx, dy) = (x as f32 - 60.0, y as f32 - 50.0);
                let (u, v) = (dx * c + dy * s, -dx * s + dy * c);
                if u.abs() <= 30.0 && v.abs() <= 4.0 {
                    m[y * w + x] = 0.95;
                }
            }
        }
        let bits = bitmap(&m, w, h, BINARIZE_THRESHOLD);
        let comps = components(&bits, w, h, 10);
        assert_eq!(comps.len(), 1);
        let rect = min_area_rect(&comps[0]).unwrap();
        let (long, short) = (rect.width.max(rect.height), rect.width.min(rect.height));
        assert!(
            (long - 61.0).abs() < 2.5 && (short - 9.0).abs() < 2.5,
            "{rect:?}"
        );
        let found = decode_map(w, h, &m, 0.5);
        assert_eq!(found.len(), 1);
        let d = found[0];
        // Upright box of the grown rectangle: wider than the bar's projection alone.
        let bw = (d.x_max - d.x_min) * w as f32;
        assert!(bw > 60.0 * c + 8.0 * s, "{d:?}");
        assert!(d.confidence > 0.7, "{d:?}");
    }

    #[test]
    fn min_area_rect_of_a_square_and_degenerate_sets() {
        let sq = [(0.0, 0.0), (4.0, 0.0), (4.0, 4.0), (0.0, 4.0), (2.0, 2.0)]
            .map(|(x, y)| Point { x, y });
        let r = min_area_rect(&sq).unwrap();
        assert!((r.width * r.height - 16.0).abs() < 1e-4, "{r:?}");
        let line = [(0.0, 0.0), (3.0, 0.0), (6.0, 0.0)].map(|(x, y)| Point { x, y });
        let r = min_area_rect(&line).unwrap();
        assert!((r.width.max(r.height) - 6.0).abs() < 1e-4 && r.width.min(r.height) == 0.0);
        let one = [Point { x: 1.0, y: 1.0 }];
        let r = min_area_rect(&one).unwrap();
        assert_eq!((r.width, r.height), (0.0, 0.0));
        assert!(min_area_rect(&[]).is_none());
    }

    #[test]
    fn components_are_eight_connected() {
        // Two pixels touching at a corner are one component; a gap of one pixel is two.
        let (w, h) = (6, 3);
        let mut bits = vec![false; w * h];
        bits[0] = true;
        bits[w + 1] = true;
        bits[w + 4] = true;
        let comps = components(&bits, w, h, 10);
        assert_eq!(comps.len(), 2);
        assert_eq!(components(&bits, w, h, 1).len(), 1);
    }

    #[test]
    fn bad_shapes_are_errors() {
        let data = [0.0; 12];
        for shape in [[1, 2, 2, 3], [1, 1, 2, 5]] {
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
        }
        let huge = [1, 1, usize::MAX, 2];
        assert!(
            decode(
                &Tensor {
                    shape: &huge,
                    data: &data
                },
                0.5
            )
            .is_err()
        );
        assert!(accepts(&[1, 1, 64, 96], 96, 64));
        assert!(!accepts(&[1, 1, 64, 96], 64, 96));
    }
}
