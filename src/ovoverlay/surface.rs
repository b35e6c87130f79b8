//! Drawing into video frames in place: filled rectangles and alpha masks (text), for packed RGB
//! formats and for I420 and NV12 (Y and chroma planes written directly, no conversion). Every
//! operation is clipped to the frame: nothing outside it (nor the stride padding) is written.

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
