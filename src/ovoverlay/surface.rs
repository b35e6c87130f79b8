//! Drawing into video frames in place: filled rectangles, box outlines (solid or dashed), convex
//! polygons, thick lines and polylines, and alpha masks (text), for packed RGB formats and for
//! I420 and NV12 (Y and chroma planes written directly, no conversion). Every operation is
//! clipped to the frame: nothing outside it (nor the stride padding) is written.

/// An sRGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rgb(pub u8, pub u8, pub u8);

/// How RGB becomes YUV for this frame (from the caps' colorimetry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct YuvMatrix {
    /// BT.709 (HD) rather than BT.601 (SD) coefficients.
    pub bt709: bool,
    /// 0..255 rather than 16..235 / 16..240.
    pub full_range: bool,
}

impl Rgb {
    /// Y, U, V of this colour.
    pub fn to_yuv(self, m: YuvMatrix) -> [u8; 3] {
        let (kr, kb) = if m.bt709 {
            (0.2126, 0.0722)
        } else {
            (0.299, 0.114)
        };
        let (r, g, b) = (
            self.0 as f64 / 255.0,
            self.1 as f64 / 255.0,
            self.2 as f64 / 255.0,
        );
        let y = kr * r + (1.0 - kr - kb) * g + kb * b;
        let u = (b - y) / (2.0 * (1.0 - kb));
        let v = (r - y) / (2.0 * (1.0 - kr));
        let (ys, yo, cs) = if m.full_range {
            (255.0, 0.0, 255.0)
        } else {
            (219.0, 16.0, 224.0)
        };
        let q = |v: f64| v.round().clamp(0.0, 255.0) as u8;
        [q(yo + ys * y), q(128.0 + cs * u), q(128.0 + cs * v)]
    }

    /// Relative luminance, 0..1 (to pick readable text over this colour).
    pub fn luma(self) -> f64 {
        (0.2126 * self.0 as f64 + 0.7152 * self.1 as f64 + 0.0722 * self.2 as f64) / 255.0
    }
}

/// A rectangle in frame pixels; may lie partly or wholly outside the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x: i64,
    pub y: i64,
    pub w: i64,
    pub h: i64,
}

/// A point in frame pixels, continuous: pixel (x, y) covers [x, x + 1) x [y, y + 1), so its
/// centre is (x + 0.5, y + 0.5).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pt {
    pub x: f64,
    pub y: f64,
}

impl Pt {
    pub fn new(x: f64, y: f64) -> Pt {
        Pt { x, y }
    }

    fn plus(self, v: Pt, k: f64) -> Pt {
        Pt::new(self.x + k * v.x, self.y + k * v.y)
    }
}

/// Where the dashes of an edge `len` pixels long go: (offset, length) of each. `dash` 0: one
/// solid stroke. Otherwise dashes of `dash` pixels with gaps of about as much, spread so that
/// both ends of the edge are drawn; an edge shorter than 3 dashes is solid.
pub fn dashes(len: i64, dash: i64) -> Vec<(i64, i64)> {
    if dash <= 0 || len <= 3 * dash {
        return vec![(0, len)];
    }
    let n = (len + dash) / (2 * dash);
    (0..n)
        .map(|i| ((i * (len - dash) + (n - 1) / 2) / (n - 1), dash))
        .collect()
}

/// Coverage 0..255 per pixel, row after row (a rendered text).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mask {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

/// How the pixels of a frame are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One plane, `pixel_stride` bytes per pixel, R, G and B at `rgb`, alpha (set opaque where
    /// drawn) at `alpha`.
    Packed {
        pixel_stride: usize,
        rgb: [usize; 3],
        alpha: Option<usize>,
    },
    /// Y plane, then U and V planes subsampled 2x2.
    I420,
    /// Y plane, then one plane of interleaved U, V subsampled 2x2.
    Nv12,
}

/// One plane: its bytes and the distance between rows.
#[derive(Debug)]
pub struct Plane<'a> {
    pub data: &'a mut [u8],
    pub stride: usize,
}

/// A frame to draw on.
#[derive(Debug)]
pub struct Surface<'a> {
    width: usize,
    height: usize,
    layout: Layout,
    matrix: YuvMatrix,
    planes: Vec<Plane<'a>>,
}

/// Clipped [start, end) of a span on an axis of `size` pixels.
fn clip(start: i64, len: i64, size: usize) -> Option<(usize, usize)> {
    let end = start.saturating_add(len.max(0)).min(size as i64);
    let start = start.max(0);
    (start < end).then_some((start as usize, end as usize))
}

impl<'a> Surface<'a> {
    /// Checks that the planes hold a `width`x`height` frame of this layout.
    pub fn new(
        width: usize,
        height: usize,
        layout: Layout,
        matrix: YuvMatrix,
        planes: Vec<Plane<'a>>,
    ) -> Result<Surface<'a>, String> {
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        let needs: Vec<(usize, usize)> = match layout {
            Layout::Packed { pixel_stride, .. } => vec![(width * pixel_stride, height)],
            Layout::I420 => vec![(width, height), (cw, ch), (cw, ch)],
            Layout::Nv12 => vec![(width, height), (2 * cw, ch)],
        };
        if planes.len() < needs.len() {
            return Err(format!("{} planes, {} needed", planes.len(), needs.len()));
        }
        for (i, (row, rows)) in needs.into_iter().enumerate() {
            let p = &planes[i];
            let size = if rows == 0 {
                0
            } else {
                p.stride * (rows - 1) + row
            };
            if p.stride < row || p.data.len() < size {
                return Err(format!(
                    "plane {i}: stride {} and {} bytes for rows of {row} bytes x {rows}",
                    p.stride,
                    p.data.len()
                ));
            }
        }
        Ok(Surface {
            width,
            height,
            layout,
            matrix,
            planes,
        })
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn height(&self) -> usize {
        self.height
    }

    /// Paints `rect` (clipped to the frame) in `colour`.
    pub fn fill(&mut self, rect: Rect, colour: Rgb) {
        let (Some((x0, x1)), Some((y0, y1))) = (
            clip(rect.x, rect.w, self.width),
            clip(rect.y, rect.h, self.height),
        ) else {
            return;
        };
        match self.layout {
            Layout::Packed {
                pixel_stride,
                rgb,
                alpha,
            } => {
                let p = &mut self.planes[0];
                let c = [colour.0, colour.1, colour.2];
                for y in y0..y1 {
                    let row = &mut p.data
                        [y * p.stride + x0 * pixel_stride..y * p.stride + x1 * pixel_stride];
                    for px in row.chunks_exact_mut(pixel_stride) {
                        for (o, v) in rgb.iter().zip(c) {
                            px[*o] = v;
                        }
                        if let Some(a) = alpha {
                            px[a] = 255;
                        }
                    }
                }
            }
            Layout::I420 | Layout::Nv12 => {
                let [yv, u, v] = colour.to_yuv(self.matrix);
                let luma = &mut self.planes[0];
                for y in y0..y1 {
                    luma.data[y * luma.stride + x0..y * luma.stride + x1].fill(yv);
                }
                let (cx0, cx1) = (x0 / 2, x1.div_ceil(2));
                for cy in y0 / 2..y1.div_ceil(2) {
                    match self.chroma_row(cy, cx0, cx1) {
                        ChromaRow::Planar(ur, vr) => {
                            ur.fill(u);
                            vr.fill(v);
                        }
                        ChromaRow::Interleaved(uv) => {
                            for s in uv.chunks_exact_mut(2) {
                                s.copy_from_slice(&[u, v]);
                            }
                        }
                    }
                }
            }
        }
    }

    /// The outline of `rect`, `width` pixels wide, inside it; `dash` > 0: dashed (see
    /// [`dashes`]), 0: solid.
    pub fn outline(&mut self, rect: Rect, width: i64, dash: i64, colour: Rgb) {
        let Rect { x, y, w, h } = rect;
        let lw = width.max(1);
        for (along_x, edge) in [
            (true, Rect { x, y, w, h: lw }),
            (
                true,
                Rect {
                    x,
                    y: y + h - lw,
                    w,
                    h: lw,
                },
            ),
            (false, Rect { x, y, w: lw, h }),
            (
                false,
                Rect {
                    x: x + w - lw,
                    y,
                    w: lw,
                    h,
                },
            ),
        ] {
            let len = if along_x { edge.w } else { edge.h };
            for (offset, n) in dashes(len, dash) {
                let part = if along_x {
                    Rect {
                        x: edge.x + offset,
                        w: n,
                        ..edge
                    }
                } else {
                    Rect {
                        y: edge.y + offset,
                        h: n,
                        ..edge
                    }
                };
                self.fill(part, colour);
            }
        }
    }

    /// Fills a convex polygon (corners in order, either way round): every pixel whose centre
    /// is inside it (half-open: on the top or left edge in, on the bottom or right edge out).
    /// A polygon with a corner that is not finite is not drawn.
    pub fn fill_convex(&mut self, corners: &[Pt], colour: Rgb) {
        if corners.len() < 3 || corners.iter().any(|p| !p.x.is_finite() || !p.y.is_finite()) {
            return;
        }
        let (top, bottom) = corners
            .iter()
            .fold((f64::MAX, f64::MIN), |(t, b), p| (t.min(p.y), b.max(p.y)));
        // Rows whose centre y + 0.5 is in [top, bottom), inside the frame.
        let first = (top - 0.5).ceil().max(0.0);
        let end = (bottom - 0.5).ceil().min(self.height as f64);
        let mut y = first;
        while y < end {
            let yc = y + 0.5;
            let (mut left, mut right) = (f64::MAX, f64::MIN);
            for (i, p) in corners.iter().enumerate() {
                let q = corners[(i + 1) % corners.len()];
                if (p.y <= yc && yc < q.y) || (q.y <= yc && yc < p.y) {
                    let x = p.x + (yc - p.y) * (q.x - p.x) / (q.y - p.y);
                    (left, right) = (left.min(x), right.max(x));
                }
            }
            // Columns whose centre x + 0.5 is in [left, right).
            let (x0, x1) = ((left - 0.5).ceil(), (right - 0.5).ceil());
            if x0 < x1 {
                let clamp = |v: f64| v.clamp(-1.0, self.width as f64 + 1.0) as i64;
                let (x0, x1) = (clamp(x0), clamp(x1));
                let row = Rect {
                    x: x0,
                    y: y as i64,
                    w: x1 - x0,
                    h: 1,
                };
                self.fill(row, colour);
            }
            y += 1.0;
        }
    }

    /// A straight line from `a` to `b`, `width` pixels wide, each end extended by half the
    /// width (square caps, so that the lines of a polyline join without gaps).
    pub fn line(&mut self, a: Pt, b: Pt, width: f64, colour: Rgb) {
        let (dx, dy) = (b.x - a.x, b.y - a.y);
        let len = dx.hypot(dy);
        let d = if len > 1e-9 {
            Pt::new(dx / len, dy / len)
        } else {
            Pt::new(1.0, 0.0)
        };
        let n = Pt::new(-d.y, d.x);
        let h = width.max(0.0) / 2.0;
        let (a, b) = (a.plus(d, -h), b.plus(d, h));
        let corners = [a.plus(n, h), b.plus(n, h), b.plus(n, -h), a.plus(n, -h)];
        self.fill_convex(&corners, colour);
    }

    /// Lines through consecutive points.
    pub fn polyline(&mut self, points: &[Pt], width: f64, colour: Rgb) {
        for pair in points.windows(2) {
            self.line(pair[0], pair[1], width, colour);
        }
    }

    /// Chroma samples cx0..cx1 of chroma row `cy` of a YUV frame.
    fn chroma_row(&mut self, cy: usize, cx0: usize, cx1: usize) -> ChromaRow<'_> {
        let planar = self.layout == Layout::I420;
        match (planar, self.planes.as_mut_slice()) {
            (true, [_, u, v, ..]) => ChromaRow::Planar(
                &mut u.data[cy * u.stride + cx0..cy * u.stride + cx1],
                &mut v.data[cy * v.stride + cx0..cy * v.stride + cx1],
            ),
            (false, [_, uv, ..]) => ChromaRow::Interleaved(
                &mut uv.data[cy * uv.stride + 2 * cx0..cy * uv.stride + 2 * cx1],
            ),
            // `new` checked the planes; nothing to draw otherwise.
            _ => ChromaRow::Interleaved(&mut []),
        }
    }

    /// Blends `colour` into the frame through `mask` placed with its top-left corner at (x, y).
    pub fn blend(&mut self, x: i64, y: i64, mask: &Mask, colour: Rgb) {
        let (Some((x0, x1)), Some((y0, y1))) = (
            clip(x, mask.width as i64, self.width),
            clip(y, mask.height as i64, self.height),
        ) else {
            return;
        };
        // The part of mask row `fy` (a frame row) over the frame's columns x0..x1.
        let mask_row = |fy: usize| {
            let start = (fy as i64 - y) as usize * mask.width + (x0 as i64 - x) as usize;
            &mask.data[start..start + (x1 - x0)]
        };
        match self.layout {
            Layout::Packed {
                pixel_stride,
                rgb,
                alpha,
            } => {
                let p = &mut self.planes[0];
                let c = [colour.0, colour.1, colour.2];
                for fy in y0..y1 {
                    let row = &mut p.data
                        [fy * p.stride + x0 * pixel_stride..fy * p.stride + x1 * pixel_stride];
                    for (px, &a) in row.chunks_exact_mut(pixel_stride).zip(mask_row(fy)) {
                        if a == 0 {
                            continue;
                        }
                        for (o, v) in rgb.iter().zip(c) {
                            px[*o] = mix(px[*o], v, a);
                        }
                        if let Some(o) = alpha {
                            px[o] = px[o].max(a);
                        }
                    }
                }
            }
            Layout::I420 | Layout::Nv12 => {
                let [yv, u, v] = colour.to_yuv(self.matrix);
                let luma = &mut self.planes[0];
                for fy in y0..y1 {
                    let row = &mut luma.data[fy * luma.stride + x0..fy * luma.stride + x1];
                    for (d, &a) in row.iter_mut().zip(mask_row(fy)) {
                        if a != 0 {
                            *d = mix(*d, yv, a);
                        }
                    }
                }
                // Each chroma sample takes the mean coverage of the (up to) 4 pixels it spans.
                let (cx0, cx1) = (x0 / 2, x1.div_ceil(2));
                let mut coverage = vec![0u16; cx1 - cx0];
                for cy in y0 / 2..y1.div_ceil(2) {
                    coverage.fill(0);
                    for fy in (2 * cy).max(y0)..(2 * cy + 2).min(y1) {
                        // A frame starting at an odd column shares its first sample with the
                        // column before; then pixels go to samples in pairs.
                        let row = mask_row(fy);
                        let odd = (x0 % 2).min(row.len());
                        let (first, rest) = row.split_at(odd);
                        if let Some(&a) = first.first() {
                            coverage[0] += a as u16;
                        }
                        for (c, pair) in coverage[odd..].iter_mut().zip(rest.chunks(2)) {
                            *c += pair.iter().map(|&a| a as u16).sum::<u16>();
                        }
                    }
                    let alpha = coverage.iter().map(|&c| (c / 4) as u8);
                    match self.chroma_row(cy, cx0, cx1) {
                        ChromaRow::Planar(ur, vr) => {
                            for ((du, dv), a) in ur.iter_mut().zip(vr.iter_mut()).zip(alpha) {
                                if a != 0 {
                                    (*du, *dv) = (mix(*du, u, a), mix(*dv, v, a));
                                }
                            }
                        }
                        ChromaRow::Interleaved(uv) => {
                            for (s, a) in uv.chunks_exact_mut(2).zip(alpha) {
                                if a != 0 {
                                    (s[0], s[1]) = (mix(s[0], u, a), mix(s[1], v, a));
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `dst` blended towards `src` by `a`/255.
fn mix(dst: u8, src: u8, a: u8) -> u8 {
    let a = a as u32;
    ((dst as u32 * (255 - a) + src as u32 * a + 127) / 255) as u8
}

/// One row of chroma samples: separate U and V (I420) or interleaved UV (NV12).
enum ChromaRow<'a> {
    Planar(&'a mut [u8], &'a mut [u8]),
    Interleaved(&'a mut [u8]),
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: usize = 40;
    const H: usize = 30;
    const PAD: usize = 8;
    const SENTINEL: u8 = 0x5a;
    const BG: u8 = 0x20;
    const SD: YuvMatrix = YuvMatrix {
        bt709: false,
        full_range: false,
    };

    /// A test frame: planes with stride padding (filled with SENTINEL) around BG pixels.
    struct Frame {
        layout: Layout,
        planes: Vec<(Vec<u8>, usize, usize, usize)>, // bytes, stride, row bytes, rows
    }

    impl Frame {
        fn new(layout: Layout) -> Frame {
            let (cw, ch) = (W.div_ceil(2), H.div_ceil(2));
            let shapes = match layout {
                Layout::Packed { pixel_stride, .. } => vec![(W * pixel_stride, H)],
                Layout::I420 => vec![(W, H), (cw, ch), (cw, ch)],
                Layout::Nv12 => vec![(W, H), (2 * cw, ch)],
            };
            let planes = shapes
                .into_iter()
                .map(|(row, rows)| {
                    let stride = row + PAD;
                    let mut data = vec![SENTINEL; stride * rows + PAD];
                    for r in 0..rows {
                        data[r * stride..r * stride + row].fill(BG);
                    }
                    (data, stride, row, rows)
                })
                .collect();
            Frame { layout, planes }
        }

        fn surface(&mut self) -> Surface<'_> {
            let planes = self
                .planes
                .iter_mut()
                .map(|(d, s, _, _)| Plane {
                    data: d.as_mut_slice(),
                    stride: *s,
                })
                .collect();
            Surface::new(W, H, self.layout, SD, planes).unwrap()
        }

        /// R, G, B (packed) or Y (YUV) of pixel (x, y).
        fn pixel(&self, x: usize, y: usize) -> Vec<u8> {
            let (d, s, _, _) = &self.planes[0];
            match self.layout {
                Layout::Packed {
                    pixel_stride, rgb, ..
                } => rgb
                    .iter()
                    .map(|o| d[y * s + x * pixel_stride + o])
                    .collect(),
                _ => vec![d[y * s + x]],
            }
        }

        /// U, V of the chroma sample covering pixel (x, y).
        fn chroma(&self, x: usize, y: usize) -> [u8; 2] {
            let (cx, cy) = (x / 2, y / 2);
            match self.layout {
                Layout::I420 => [
                    self.planes[1].0[cy * self.planes[1].1 + cx],
                    self.planes[2].0[cy * self.planes[2].1 + cx],
                ],
                Layout::Nv12 => {
                    let (d, s, _, _) = &self.planes[1];
                    [d[cy * s + 2 * cx], d[cy * s + 2 * cx + 1]]
                }
                Layout::Packed { .. } => [0, 0],
            }
        }

        fn padding_untouched(&self) -> bool {
            self.planes.iter().all(|(d, s, row, rows)| {
                (0..*rows).all(|r| d[r * s + row..(r + 1) * s].iter().all(|&b| b == SENTINEL))
                    && d[rows * s..].iter().all(|&b| b == SENTINEL)
            })
        }

        fn changed_pixels(&self) -> usize {
            (0..H)
                .flat_map(|y| (0..W).map(move |x| (x, y)))
                .filter(|&(x, y)| self.pixel(x, y).iter().any(|&v| v != BG))
                .count()
        }
    }

    fn layouts() -> Vec<(&'static str, Layout)> {
        let packed = |pixel_stride, rgb, alpha| Layout::Packed {
            pixel_stride,
            rgb,
            alpha,
        };
        vec![
            ("RGB", packed(3, [0, 1, 2], None)),
            ("BGR", packed(3, [2, 1, 0], None)),
            ("RGBx", packed(4, [0, 1, 2], None)),
            ("BGRx", packed(4, [2, 1, 0], None)),
            ("RGBA", packed(4, [0, 1, 2], Some(3))),
            ("BGRA", packed(4, [2, 1, 0], Some(3))),
            ("I420", Layout::I420),
            ("NV12", Layout::Nv12),
        ]
    }

    const RED: Rgb = Rgb(255, 0, 0);

    fn expected(layout: Layout, c: Rgb) -> Vec<u8> {
        match layout {
            Layout::Packed { .. } => vec![c.0, c.1, c.2],
            _ => vec![c.to_yuv(SD)[0]],
        }
    }

    #[test]
    fn fill_paints_the_rectangle_and_nothing_else() {
        for (name, layout) in layouts() {
            let mut f = Frame::new(layout);
            f.surface().fill(
                Rect {
                    x: 10,
                    y: 8,
                    w: 6,
                    h: 4,
                },
                RED,
            );
            let red = expected(layout, RED);
            for y in 0..H {
                for x in 0..W {
                    let inside = (10..16).contains(&x) && (8..12).contains(&y);
                    let px = f.pixel(x, y);
                    if inside {
                        assert_eq!(px, red, "{name} ({x},{y})");
                    } else {
                        assert!(px.iter().all(|&v| v == BG), "{name} ({x},{y}) {px:?}");
                    }
                }
            }
            if matches!(layout, Layout::I420 | Layout::Nv12) {
                let [_, u, v] = RED.to_yuv(SD);
                assert_eq!(f.chroma(12, 9), [u, v], "{name}");
                assert_eq!(f.chroma(20, 20), [BG, BG], "{name}");
            }
            if let Layout::Packed {
                alpha: Some(a),
                pixel_stride,
                ..
            } = layout
            {
                let (d, s, _, _) = &f.planes[0];
                assert_eq!(d[8 * s + 10 * pixel_stride + a], 255, "{name} alpha");
            }
            assert!(f.padding_untouched(), "{name}");
        }
    }

    #[test]
    fn rectangles_outside_empty_or_huge_are_clipped() {
        for (name, layout) in layouts() {
            let mut f = Frame::new(layout);
            let mut s = f.surface();
            for (x, y, w, h) in [
                (-5, -5, 10, 10),
                (35, 25, 100, 100),
                (5, 5, 0, 0),
                (5, 5, -3, 4),
                (-1000, 3, i64::MAX, 1),
                (100, 100, 5, 5),
                (i64::MIN, i64::MIN, i64::MAX, i64::MAX),
            ] {
                s.fill(Rect { x, y, w, h }, RED);
            }
            assert!(f.padding_untouched(), "{name}");
            let red = expected(layout, RED);
            assert_eq!(f.pixel(0, 0), red, "{name}");
            assert_eq!(f.pixel(W - 1, H - 1), red, "{name}");
            assert_eq!(f.pixel(39, 3), red, "{name}");
            assert!(f.pixel(5, 10).iter().all(|&v| v == BG), "{name}");
        }
    }

    #[test]
    fn masks_blend_by_coverage_and_stay_inside() {
        let mask = Mask {
            width: 6,
            height: 4,
            data: [[0, 255, 128, 255, 0, 255]; 4].concat(),
        };
        for (name, layout) in layouts() {
            let mut f = Frame::new(layout);
            let mut s = f.surface();
            s.blend(2, 3, &mask, RED);
            s.blend(-3, -2, &mask, RED);
            s.blend(37, 28, &mask, RED);
            assert!(f.padding_untouched(), "{name}");
            let red = expected(layout, RED);
            assert_eq!(f.pixel(3, 4), red, "{name} full coverage");
            assert!(f.pixel(2, 4).iter().all(|&v| v == BG), "{name} no coverage");
            let half = f.pixel(4, 4);
            assert!(
                half != red && half.iter().any(|&v| v != BG),
                "{name} half {half:?}"
            );
            // 4 pixels of each mask row have coverage: 4 rows x 4 in the first mask; the
            // clipped ones show 2 rows x 2 each.
            assert_eq!(f.changed_pixels(), 16 + 4 + 4, "{name}");
        }
    }

    fn is(f: &Frame, x: usize, y: usize, c: Rgb) -> bool {
        f.pixel(x, y) == expected(f.layout, c)
    }

    #[test]
    fn lines_cover_their_segment_and_nothing_far_from_it() {
        for (name, layout) in layouts() {
            let mut f = Frame::new(layout);
            let mut s = f.surface();
            // Horizontal, 2 px wide on the boundary between rows 9 and 10, caps of 1 px.
            s.line(Pt::new(5.0, 10.0), Pt::new(15.0, 10.0), 2.0, RED);
            drop(s);
            for y in 0..H {
                for x in 0..W {
                    let on = (4..16).contains(&x) && (9..11).contains(&y);
                    assert_eq!(is(&f, x, y, RED), on, "{name} ({x},{y})");
                }
            }
            // A diagonal 3 px wide: every pixel on the segment, none 3 px beside it.
            let mut f = Frame::new(layout);
            f.surface()
                .line(Pt::new(2.5, 2.5), Pt::new(27.5, 22.5), 3.0, RED);
            for t in 0..=20 {
                let (x, y) = (2.5 + 25.0 * t as f64 / 20.0, 2.5 + 20.0 * t as f64 / 20.0);
                assert!(is(&f, x as usize, y as usize, RED), "{name} on ({x},{y})");
                let (bx, by) = ((x - 3.0 * 0.62) as usize, (y + 3.0 * 0.78) as usize);
                assert!(!is(&f, bx, by, RED), "{name} beside ({x},{y}): ({bx},{by})");
            }
            assert!(f.pixel(30, 5).iter().all(|&v| v == BG), "{name}");
            assert!(f.padding_untouched(), "{name}");
        }
    }

    #[test]
    fn one_pixel_lines_have_no_gaps() {
        let layout = layouts()[0].1;
        for (x1, y1) in [(35.5, 3.5), (4.5, 28.5), (30.5, 20.5), (20.5, 28.5)] {
            let mut f = Frame::new(layout);
            f.surface()
                .line(Pt::new(2.5, 2.5), Pt::new(x1, y1), 1.0, RED);
            // Each row (steep) or column (flat) between the ends has a drawn pixel.
            let steep = (y1 - 2.5f64).abs() > (x1 - 2.5f64).abs();
            let span = if steep {
                2..y1 as usize
            } else {
                2..x1 as usize
            };
            for i in span {
                let hit = (0..if steep { W } else { H }).any(|j| {
                    let (x, y) = if steep { (j, i) } else { (i, j) };
                    is(&f, x, y, RED)
                });
                assert!(hit, "to ({x1},{y1}): nothing at {i}");
            }
        }
    }

    #[test]
    fn polygons_lines_outside_or_not_finite_are_clipped_or_skipped() {
        for (name, layout) in layouts() {
            let mut f = Frame::new(layout);
            let mut s = f.surface();
            s.line(Pt::new(-100.0, -50.0), Pt::new(500.0, 250.0), 4.0, RED);
            s.line(Pt::new(f64::NAN, 0.0), Pt::new(10.0, 10.0), 4.0, RED);
            s.line(Pt::new(0.0, 1e300), Pt::new(10.0, -1e300), 4.0, RED);
            s.fill_convex(&[Pt::new(0.0, 0.0), Pt::new(1.0, 1.0)], RED);
            s.polyline(&[Pt::new(1e6, 1e6), Pt::new(2e6, 2e6)], 3.0, RED);
            s.line(Pt::new(7.0, 20.0), Pt::new(7.0, 20.0), 2.0, RED);
            drop(s);
            assert!(f.padding_untouched(), "{name}");
            assert!(is(&f, 20, 10, RED), "{name}: the long line passes (20,10)");
            assert!(is(&f, 6, 19, RED) && is(&f, 7, 20, RED), "{name}: a dot");
            assert!(is(&f, 5, 25, RED), "{name}: the steep line passes (5,25)");
            assert!(f.pixel(30, 25).iter().all(|&v| v == BG), "{name}");
        }
    }

    #[test]
    fn convex_polygons_take_the_pixels_whose_centre_is_inside() {
        let mut f = Frame::new(layouts()[2].1);
        // A triangle, corners at pixel corners, listed clockwise.
        let t = [Pt::new(10.0, 5.0), Pt::new(20.0, 15.0), Pt::new(0.0, 15.0)];
        f.surface().fill_convex(&t, RED);
        for y in 0..H {
            for x in 0..W {
                let (cx, cy) = (x as f64 + 0.5, y as f64 + 0.5);
                // The left edge is in, the right one out.
                let inside = (5.0..15.0).contains(&cy) && cx >= 15.0 - cy && cx < 5.0 + cy;
                assert_eq!(is(&f, x, y, RED), inside, "({x},{y})");
            }
        }
        // The same corners the other way round draw the same pixels.
        let mut g = Frame::new(layouts()[2].1);
        g.surface().fill_convex(&[t[2], t[1], t[0]], RED);
        assert_eq!(f.planes, g.planes);
    }

    #[test]
    fn dashes_start_and_end_on_the_corners() {
        assert_eq!(dashes(10, 0), [(0, 10)]);
        assert_eq!(dashes(12, 4), [(0, 12)]);
        assert_eq!(dashes(20, 4), [(0, 4), (8, 4), (16, 4)]);
        let d = dashes(100, 6);
        assert_eq!((d.len(), d[0], d[d.len() - 1]), (8, (0, 6), (94, 6)));
        assert!(d.windows(2).all(|w| (12..=14).contains(&(w[1].0 - w[0].0))));
    }

    #[test]
    fn outlines_solid_or_dashed() {
        let r = Rect {
            x: 4,
            y: 3,
            w: 30,
            h: 24,
        };
        for (name, layout) in layouts() {
            let mut solid = Frame::new(layout);
            solid.surface().outline(r, 2, 0, RED);
            assert_eq!(solid.changed_pixels(), 2 * 2 * (30 + 24) - 4 * 4, "{name}");
            let mut dashed = Frame::new(layout);
            dashed.surface().outline(r, 2, 3, RED);
            let n = dashed.changed_pixels();
            assert!(n > 80 && n < 150, "{name}: {n}");
            // Corners drawn; along the top edge some pixels drawn and some not.
            for (x, y) in [(4, 3), (33, 3), (4, 26), (33, 26)] {
                assert!(is(&dashed, x, y, RED), "{name} corner ({x},{y})");
            }
            let top: Vec<bool> = (4..34).map(|x| is(&dashed, x, 3, RED)).collect();
            assert!(
                top.iter().any(|&d| !d),
                "{name}: the top edge is not dashed"
            );
            assert!(dashed.padding_untouched(), "{name}");
        }
    }

    #[test]
    fn yuv_of_primaries() {
        assert_eq!(Rgb(255, 255, 255).to_yuv(SD), [235, 128, 128]);
        assert_eq!(Rgb(0, 0, 0).to_yuv(SD), [16, 128, 128]);
        assert_eq!(RED.to_yuv(SD), [81, 90, 240]);
        let hd = YuvMatrix {
            bt709: true,
            full_range: true,
        };
        assert_eq!(RED.to_yuv(hd), [54, 99, 255]);
    }

    #[test]
    fn planes_too_small_are_refused() {
        let mut data = vec![0u8; 10];
        let planes = vec![Plane {
            data: &mut data,
            stride: 4,
        }];
        assert!(Surface::new(2, 3, Layout::I420, SD, planes).is_err());
        let mut data = vec![0u8; 10];
        let planes = vec![Plane {
            data: &mut data,
            stride: 3,
        }];
        let packed = Layout::Packed {
            pixel_stride: 4,
            rgb: [0, 1, 2],
            alpha: None,
        };
        assert!(Surface::new(1, 3, packed, SD, planes).is_err());
    }
}
