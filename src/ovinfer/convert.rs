//! `pre-process-backend=ovinfer`: a frame of any format and size becomes the model's picture in
//! one pass, written straight into the input tensor as packed 8-bit pixels in the model's
//! channel order.
//!
//! The result is what OpenCV's path gives on the same pixels: the frame converted to RGB (or
//! BGR) at its full resolution — each chroma sample of 4:2:0 and 4:2:2 shared by the pixels of
//! its block, YUV converted with the caps' matrix and range and clamped — then resized bilinearly
//! with pixel centres aligned, in the fixed-point arithmetic of `cv2.resize(INTER_LINEAR)`: when
//! shrinking, the same pixels to the bit (within one level of exact bilinear either way). Only
//! the source pixels that the resize reads are converted: two per output column on each source
//! row it uses, so the cost follows the model's size, not the frame's.
//!
//! OpenVINO is then left with the element type, mean/scale and layout, never a colour step: its
//! 2026.4 build mis-compiles a channel reversal without a resize on quantised models.

use gst_video::VideoFormat;

/// Fixed-point weight of one: weights are in 1/2048, as OpenCV's.
const BITS: u32 = 11;
const ONE: u32 = 1 << BITS;

/// The two source samples and their weights for one destination coordinate.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Tap {
    a: usize,
    b: usize,
    /// Weights of `a` and `b`, in 1/ONE.
    wa: u32,
    wb: u32,
}

/// Taps for scaling `src` samples to `dst` samples, pixel centres aligned, computed as
/// `cv2.resize(INTER_LINEAR)` computes them (single-precision positions, each weight rounded
/// to 11 bits on its own), so that the two agree to the bit.
fn taps(src: usize, dst: usize) -> Vec<Tap> {
    let scale = 1.0 / (dst as f64 / src as f64);
    let last = src.saturating_sub(1);
    (0..dst)
        .map(|d| {
            let mut f = ((d as f64 + 0.5) * scale - 0.5) as f32;
            let mut a = f.floor() as i64;
            f -= a as f32;
            if a < 0 {
                (a, f) = (0, 0.0);
            }
            if a >= last as i64 {
                (a, f) = (last as i64, 0.0);
            }
            let weight = |w: f32| (w * ONE as f32).round_ties_even() as u32;
            let a = a as usize;
            Tap {
                a,
                b: (a + 1).min(last),
                wa: weight(1.0 - f),
                wb: weight(f),
            }
        })
        .collect()
}

/// How a format's pixels lie in its planes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One plane of `bytes`-byte pixels with red, green and blue at these offsets.
    Packed { bytes: usize, rgb: [usize; 3] },
    /// One plane of grey levels (taken as R = G = B).
    Gray,
    /// 4:2:0 in three planes: luma, and chroma planes of half the size each way; U and V are in
    /// planes `u` and `v` (I420: 1 and 2, YV12: 2 and 1).
    Yuv420 { u: usize, v: usize },
    /// 4:2:0 in two planes: luma, and one plane of chroma pairs with U at offset `u` of the
    /// pair (NV12: 0, NV21: 1).
    Yuv420Pairs { u: usize },
    /// 4:2:2 in one plane: two pixels in four bytes, with Y0, Y1, U and V at these offsets.
    Yuv422 { y: [usize; 2], u: usize, v: usize },
}

impl Layout {
    /// The layout of a GStreamer format, if ovinfer converts it.
    pub fn of(format: VideoFormat) -> Option<Layout> {
        use VideoFormat as F;
        let packed = |bytes, rgb| Layout::Packed { bytes, rgb };
        Some(match format {
            F::Rgb => packed(3, [0, 1, 2]),
            F::Bgr => packed(3, [2, 1, 0]),
            F::Rgbx | F::Rgba => packed(4, [0, 1, 2]),
            F::Bgrx | F::Bgra => packed(4, [2, 1, 0]),
            F::Xrgb | F::Argb => packed(4, [1, 2, 3]),
            F::Xbgr | F::Abgr => packed(4, [3, 2, 1]),
            F::Gray8 => Layout::Gray,
            F::I420 => Layout::Yuv420 { u: 1, v: 2 },
            F::Yv12 => Layout::Yuv420 { u: 2, v: 1 },
            F::Nv12 => Layout::Yuv420Pairs { u: 0 },
            F::Nv21 => Layout::Yuv420Pairs { u: 1 },
            F::Yuy2 => Layout::Yuv422 {
                y: [0, 2],
                u: 1,
                v: 3,
            },
            F::Yvyu => Layout::Yuv422 {
                y: [0, 2],
                u: 3,
                v: 1,
            },
            F::Uyvy => Layout::Yuv422 {
                y: [1, 3],
                u: 0,
                v: 2,
            },
            _ => return None,
        })
    }

    /// Bytes per row and rows of each plane of a `width` x `height` frame (chroma of odd sizes
    /// rounded up, as GStreamer lays it out).
    pub fn planes(self, width: usize, height: usize) -> Vec<(usize, usize)> {
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        match self {
            Layout::Packed { bytes, .. } => vec![(width * bytes, height)],
            Layout::Gray => vec![(width, height)],
            Layout::Yuv420 { .. } => vec![(width, height), (cw, ch), (cw, ch)],
            Layout::Yuv420Pairs { .. } => vec![(width, height), (2 * cw, ch)],
            Layout::Yuv422 { .. } => vec![(4 * cw, height)],
        }
    }

    pub fn is_yuv(self) -> bool {
        matches!(
            self,
            Layout::Yuv420 { .. } | Layout::Yuv420Pairs { .. } | Layout::Yuv422 { .. }
        )
    }
}

/// Fraction bits of the YUV to RGB coefficients, as OpenCV's.
const YUV_BITS: u32 = 20;

/// YUV to RGB in 20-bit fixed point, as tables over the 8-bit sample values.
#[derive(Clone)]
pub struct YuvMatrix {
    /// Luma's share of every channel (black clamped at the foot), with the rounding half added.
    y: [i32; 256],
    /// V's share of red and green, U's of green and blue.
    rv: [i32; 256],
    gv: [i32; 256],
    gu: [i32; 256],
    bu: [i32; 256],
}

impl std::fmt::Debug for YuvMatrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "YuvMatrix(red of V=255: {})", self.rv[255] >> YUV_BITS)
    }
}

impl YuvMatrix {
    /// The matrix with luma weights `kr` and `kb` (BT.601: 0.299, 0.114; BT.709: 0.2126,
    /// 0.0722), for full-range samples (0..255) or limited range (luma 16..235, chroma 16..240).
    ///
    /// Limited-range BT.601, what most cameras and decoders give and what OpenCV's YUV
    /// conversions assume, uses the integer coefficients of the standard's usual implementation
    /// (1.164, 1.596, 0.391, 0.813, 2.018, as OpenCV's), so both give the same pixels.
    pub fn new(kr: f64, kb: f64, full_range: bool) -> YuvMatrix {
        let fixed = |v: f64| (v * f64::from(1u32 << YUV_BITS)).round() as i32;
        let (offset, [cy, cvr, cvg, cug, cub]) = if !full_range && (kr, kb) == (0.299, 0.114) {
            (16, [1_220_542, 1_673_527, -852_492, -409_993, 2_116_026])
        } else {
            let kg = 1.0 - kr - kb;
            let (offset, y_gain, c_gain) = if full_range {
                (0, 1.0, 1.0)
            } else {
                (16, 255.0 / 219.0, 255.0 / 224.0)
            };
            (
                offset,
                [
                    fixed(y_gain),
                    fixed(2.0 * (1.0 - kr) * c_gain),
                    fixed(-2.0 * kr * (1.0 - kr) / kg * c_gain),
                    fixed(-2.0 * kb * (1.0 - kb) / kg * c_gain),
                    fixed(2.0 * (1.0 - kb) * c_gain),
                ],
            )
        };
        let table = |c: i32, f: &dyn Fn(i32) -> i32| -> [i32; 256] {
            std::array::from_fn(|i| c * f(i as i32))
        };
        let half = 1 << (YUV_BITS - 1);
        YuvMatrix {
            y: std::array::from_fn(|l| (l as i32 - offset).max(0) * cy + half),
            rv: table(cvr, &|v| v - 128),
            gv: table(cvg, &|v| v - 128),
            gu: table(cug, &|u| u - 128),
            bu: table(cub, &|u| u - 128),
        }
    }

    /// The matrix the caps' colorimetry names; BT.601 where it names none, as OpenCV assumes.
    pub fn of(colorimetry: &gst_video::VideoColorimetry) -> YuvMatrix {
        let (kr, kb) = colorimetry.matrix().kr_kb().unwrap_or((0.299, 0.114));
        YuvMatrix::new(
            kr,
            kb,
            colorimetry.range() == gst_video::VideoColorRange::Range0_255,
        )
    }

    /// One pixel: red, green, blue, clamped.
    #[inline(always)]
    fn rgb(&self, y: u8, u: u8, v: u8) -> [u8; 3] {
        let (y, u, v) = (self.y[y as usize], usize::from(u), usize::from(v));
        let clamp = |x: i32| (x >> YUV_BITS).clamp(0, 255) as u8;
        [
            clamp(y + self.rv[v]),
            clamp(y + self.gu[u] + self.gv[v]),
            clamp(y + self.bu[u]),
        ]
    }
}

/// One destination row's worth of horizontally blended pixels from the pixels `pixel(x)` of a
/// source row, three channels each, in 1/ONE units.
#[inline(always)]
fn blend(columns: &[Tap], out: &mut [u32], pixel: impl Fn(usize) -> [u8; 3]) {
    for (tap, o) in columns.iter().zip(out.chunks_exact_mut(3)) {
        let (p, q) = (pixel(tap.a), pixel(tap.b));
        for c in 0..3 {
            o[c] = u32::from(p[c]) * tap.wa + u32::from(q[c]) * tap.wb;
        }
    }
}

/// Converts and scales frames of one format and size to the model's picture: `dst` size,
/// three 8-bit channels per pixel in the model's order, rows packed.
#[derive(Debug, Clone)]
pub struct Converter {
    layout: Layout,
    /// Source bytes per row and rows of each plane.
    planes: Vec<(usize, usize)>,
    columns: Vec<Tap>,
    rows: Vec<Tap>,
    matrix: YuvMatrix,
    bgr: bool,
}

impl Converter {
    /// None when either size is empty. `matrix` is used by YUV layouts only; `bgr`: the model
    /// takes blue first.
    pub fn new(
        layout: Layout,
        src: (usize, usize),
        dst: (usize, usize),
        matrix: YuvMatrix,
        bgr: bool,
    ) -> Option<Converter> {
        if [src.0, src.1, dst.0, dst.1].contains(&0) {
            return None;
        }
        Some(Converter {
            layout,
            planes: layout.planes(src.0, src.1),
            columns: taps(src.0, dst.0),
            rows: taps(src.1, dst.1),
            matrix,
            bgr,
        })
    }

    /// Bytes of a converted frame.
    pub fn dst_len(&self) -> usize {
        self.columns.len() * 3 * self.rows.len()
    }

    /// Source row `y` (with its chroma) converted at the columns the taps read and blended
    /// horizontally into `out`.
    fn horizontal(&self, planes: &[(&[u8], usize)], y: usize, out: &mut [u32]) {
        let row = |p: usize, y: usize| {
            let (data, stride) = planes[p];
            &data[y * stride..y * stride + self.planes[p].0]
        };
        let m = &self.matrix;
        let order = |p: [u8; 3]| if self.bgr { [p[2], p[1], p[0]] } else { p };
        let columns = &self.columns;
        match self.layout {
            Layout::Packed { bytes, rgb } => {
                let r = row(0, y);
                let o = if self.bgr {
                    [rgb[2], rgb[1], rgb[0]]
                } else {
                    rgb
                };
                blend(columns, out, |x| {
                    let p = &r[x * bytes..x * bytes + bytes];
                    [p[o[0]], p[o[1]], p[o[2]]]
                });
            }
            Layout::Gray => {
                let r = row(0, y);
                blend(columns, out, |x| [r[x]; 3]);
            }
            Layout::Yuv420 { u, v } => {
                let (l, cu, cv) = (row(0, y), row(u, y / 2), row(v, y / 2));
                blend(columns, out, |x| order(m.rgb(l[x], cu[x / 2], cv[x / 2])));
            }
            Layout::Yuv420Pairs { u } => {
                let (l, c) = (row(0, y), row(1, y / 2));
                blend(columns, out, |x| {
                    let pair = &c[x / 2 * 2..x / 2 * 2 + 2];
                    order(m.rgb(l[x], pair[u], pair[1 - u]))
                });
            }
            Layout::Yuv422 { y: luma, u, v } => {
                let r = row(0, y);
                blend(columns, out, |x| {
                    let p = &r[x / 2 * 4..x / 2 * 4 + 4];
                    order(m.rgb(p[luma[x % 2]], p[u], p[v]))
                });
            }
        }
    }

    /// Converts `planes` (data, stride) into `dst`. Returns false when a plane is shorter than
    /// its rows need or `dst` has the wrong size.
    pub fn convert(&self, planes: &[(&[u8], usize)], dst: &mut [u8]) -> bool {
        let fits = |&(data, stride): &(&[u8], usize), &(row, rows): &(usize, usize)| {
            stride >= row && data.len() >= stride * (rows - 1) + row
        };
        if planes.len() != self.planes.len()
            || dst.len() != self.dst_len()
            || !planes.iter().zip(&self.planes).all(|(p, s)| fits(p, s))
        {
            return false;
        }
        let out_len = self.columns.len() * 3;
        // The two source rows last blended horizontally, by source row index.
        let mut upper = (usize::MAX, vec![0u32; out_len]);
        let mut lower = (usize::MAX, vec![0u32; out_len]);
        for (tap, out) in self.rows.iter().zip(dst.chunks_exact_mut(out_len)) {
            if upper.0 != tap.a {
                if lower.0 == tap.a {
                    std::mem::swap(&mut upper, &mut lower);
                } else {
                    self.horizontal(planes, tap.a, &mut upper.1);
                    upper.0 = tap.a;
                }
            }
            if lower.0 != tap.b {
                self.horizontal(planes, tap.b, &mut lower.1);
                lower.0 = tap.b;
            }
            // OpenCV's vertical pass, to the bit: each row's sums cut to 7 fraction bits, each
            // weighted product to 2, then rounded.
            let (wa, wb) = (tap.wa, tap.wb);
            for ((o, &u), &l) in out.iter_mut().zip(&upper.1).zip(&lower.1) {
                let v = (((u >> 4) * wa) >> 16) + (((l >> 4) * wb) >> 16);
                *o = ((v + 2) >> 2).min(255) as u8;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bt601() -> YuvMatrix {
        YuvMatrix::new(0.299, 0.114, false)
    }

    fn convert(
        layout: Layout,
        src: (usize, usize),
        dst: (usize, usize),
        planes: &[(&[u8], usize)],
        bgr: bool,
    ) -> Vec<u8> {
        let c = Converter::new(layout, src, dst, bt601(), bgr).expect("sizes");
        let mut out = vec![0; c.dst_len()];
        assert!(c.convert(planes, &mut out));
        out
    }

    fn rgb() -> Layout {
        Layout::of(VideoFormat::Rgb).unwrap()
    }

    #[test]
    fn taps_align_pixel_centres() {
        let tap = |a, b, wb| Tap {
            a,
            b,
            wa: ONE - wb,
            wb,
        };
        // Halving: each output centre falls between two inputs.
        assert_eq!(taps(4, 2), vec![tap(0, 1, ONE / 2), tap(2, 3, ONE / 2)]);
        // Same size: every output is one input.
        assert!(
            taps(5, 5)
                .iter()
                .enumerate()
                .all(|(i, t)| t.a == i && t.wb == 0)
        );
        // Doubling: edges clamp, inner outputs are 1/4 and 3/4 between inputs.
        assert_eq!(
            taps(2, 4),
            vec![
                tap(0, 1, 0),
                tap(0, 1, ONE / 4),
                tap(0, 1, 3 * ONE / 4),
                tap(1, 1, 0)
            ]
        );
    }

    #[test]
    fn same_size_is_a_copy_and_flat_stays_flat() {
        let data: Vec<u8> = (0..5 * 3 * 3).map(|i| (i * 7 % 256) as u8).collect();
        assert_eq!(convert(rgb(), (5, 3), (5, 3), &[(&data, 15)], false), data);
        let flat = vec![77u8; 641 * 273 * 4];
        let rgbx = Layout::of(VideoFormat::Rgbx).unwrap();
        let out = convert(rgbx, (641, 273), (300, 300), &[(&flat, 641 * 4)], false);
        assert_eq!(out.len(), 300 * 300 * 3);
        assert!(out.iter().all(|&v| v == 77));
    }

    #[test]
    fn downscaling_averages_and_upscaling_interpolates() {
        // 4x1 RGB, red ramp 0, 100, 200, 250 -> 2x1: (0+100)/2, (200+250)/2.
        let row = [0, 1, 2, 100, 1, 2, 200, 1, 2, 250, 1, 2];
        assert_eq!(
            convert(rgb(), (4, 1), (2, 1), &[(&row, 12)], false),
            [50, 1, 2, 225, 1, 2]
        );
        // 1x2 -> 1x4 vertically: 0, 25, 75, 100.
        let col = [0, 0, 0, 100, 100, 100];
        let out = convert(rgb(), (1, 2), (1, 4), &[(&col, 3)], false);
        assert_eq!(
            out.chunks(3).map(|p| p[0]).collect::<Vec<_>>(),
            [0, 25, 75, 100]
        );
    }

    /// Every packed layout gives the same picture in the model's order, padding skipped.
    #[test]
    fn packed_formats_reach_the_model_in_its_channel_order() {
        use VideoFormat as F;
        let (r, g, b) = (200u8, 100u8, 30u8);
        for (format, pixel) in [
            (F::Rgb, vec![r, g, b]),
            (F::Bgr, vec![b, g, r]),
            (F::Rgbx, vec![r, g, b, 9]),
            (F::Bgrx, vec![b, g, r, 9]),
            (F::Rgba, vec![r, g, b, 9]),
            (F::Bgra, vec![b, g, r, 9]),
            (F::Xrgb, vec![9, r, g, b]),
            (F::Argb, vec![9, r, g, b]),
            (F::Xbgr, vec![9, b, g, r]),
            (F::Abgr, vec![9, b, g, r]),
        ] {
            let layout = Layout::of(format).unwrap();
            // 3x2 with rows padded by 5 bytes.
            let stride = 3 * pixel.len() + 5;
            let mut data = vec![0u8; stride * 2];
            for y in 0..2 {
                for x in 0..3 {
                    let at = y * stride + x * pixel.len();
                    data[at..at + pixel.len()].copy_from_slice(&pixel);
                }
            }
            for (bgr, want) in [(false, [r, g, b]), (true, [b, g, r])] {
                let out = convert(layout, (3, 2), (2, 1), &[(&data, stride)], bgr);
                assert_eq!(out, [want, want].concat(), "{format:?} bgr {bgr}");
            }
        }
    }

    #[test]
    fn yuv_matrices_give_the_standard_colours() {
        let m = bt601();
        // Limited range: 16 is black, 235 white, BT.601 red is (81, 90, 240).
        assert_eq!(m.rgb(16, 128, 128), [0, 0, 0]);
        assert_eq!(m.rgb(235, 128, 128), [255, 255, 255]);
        let red = m.rgb(81, 90, 240);
        assert!(red[0] >= 253 && red[1] <= 2 && red[2] <= 2, "{red:?}");
        // Out-of-gamut values are clamped, not wrapped.
        assert_eq!(m.rgb(255, 255, 255)[0], 255);
        assert_eq!(m.rgb(0, 0, 0)[0], 0);
        // Full range BT.709 (as JPEG-like HD): Y=U=V=128 is mid grey; pure blue.
        let hd = YuvMatrix::new(0.2126, 0.0722, true);
        assert_eq!(hd.rgb(128, 128, 128), [128, 128, 128]);
        let blue = hd.rgb(18, 255, 116);
        assert!(blue[2] >= 250 && blue[0] <= 3 && blue[1] <= 3, "{blue:?}");
    }

    /// Every YUV layout of one picture gives the same RGB, odd sizes included: each chroma
    /// sample covers its 2x2 (4:2:0) or 2x1 (4:2:2) block, the last one a half block.
    #[test]
    fn yuv_layouts_of_one_picture_agree_at_odd_sizes() {
        let (w, h) = (5usize, 3usize);
        let (cw, ch) = (3usize, 2usize);
        let luma: Vec<u8> = (0..w * h).map(|i| 40 + 9 * i as u8).collect();
        let u: Vec<u8> = (0..cw * ch).map(|i| 90 + 13 * i as u8).collect();
        let v: Vec<u8> = (0..cw * ch).map(|i| 200 - 17 * i as u8).collect();
        let m = bt601();
        let want: Vec<u8> = (0..h)
            .flat_map(|y| (0..w).map(move |x| (x, y)))
            .flat_map(|(x, y)| {
                let c = y / 2 * cw + x / 2;
                m.rgb(luma[y * w + x], u[c], v[c])
            })
            .collect();
        let same = (w, h);
        let i420 = convert(
            Layout::of(VideoFormat::I420).unwrap(),
            same,
            same,
            &[(&luma, w), (&u, cw), (&v, cw)],
            false,
        );
        assert_eq!(i420, want);
        let yv12 = convert(
            Layout::of(VideoFormat::Yv12).unwrap(),
            same,
            same,
            &[(&luma, w), (&v, cw), (&u, cw)],
            false,
        );
        assert_eq!(yv12, want);
        for (format, first) in [(VideoFormat::Nv12, &u), (VideoFormat::Nv21, &v)] {
            let second = if format == VideoFormat::Nv12 { &v } else { &u };
            let pairs: Vec<u8> = first
                .iter()
                .zip(second)
                .flat_map(|(a, b)| [*a, *b])
                .collect();
            let out = convert(
                Layout::of(format).unwrap(),
                same,
                same,
                &[(&luma, w), (&pairs, 2 * cw)],
                false,
            );
            assert_eq!(out, want, "{format:?}");
        }
        // 4:2:2 of the same luma with the chroma of each row's 4:2:0 block.
        for format in [VideoFormat::Yuy2, VideoFormat::Uyvy, VideoFormat::Yvyu] {
            let Some(Layout::Yuv422 {
                y: ys,
                u: uo,
                v: vo,
            }) = Layout::of(format)
            else {
                panic!("{format:?} is 4:2:2");
            };
            let stride = 4 * cw;
            let mut data = vec![0u8; stride * h];
            for y in 0..h {
                for x in 0..w {
                    let block = &mut data[y * stride + x / 2 * 4..][..4];
                    block[ys[x % 2]] = luma[y * w + x];
                    block[uo] = u[y / 2 * cw + x / 2];
                    block[vo] = v[y / 2 * cw + x / 2];
                }
            }
            let out = convert(
                Layout::of(format).unwrap(),
                same,
                same,
                &[(&data, stride)],
                false,
            );
            assert_eq!(out, want, "{format:?}");
        }
        // Blue first for a BGR model.
        let bgr = convert(
            Layout::of(VideoFormat::I420).unwrap(),
            same,
            same,
            &[(&luma, w), (&u, cw), (&v, cw)],
            true,
        );
        let swapped: Vec<u8> = want.chunks(3).flat_map(|p| [p[2], p[1], p[0]]).collect();
        assert_eq!(bgr, swapped);
    }

    #[test]
    fn gray_is_grey() {
        let data = [10u8, 20, 30, 40];
        let out = convert(Layout::Gray, (2, 2), (1, 1), &[(&data, 2)], false);
        assert_eq!(out, [25, 25, 25]);
    }

    /// Bilinear in floating point, pixel centres aligned: what the fixed-point scaler rounds.
    fn reference(src: &[u8], (sw, sh): (usize, usize), (dw, dh): (usize, usize)) -> Vec<u8> {
        let coord = |d: usize, s: usize, n: usize| {
            let x = ((d as f64 + 0.5) * s as f64 / n as f64 - 0.5).clamp(0.0, (s - 1) as f64);
            let a = x.floor() as usize;
            (a, (a + 1).min(s - 1), x - a as f64)
        };
        let mut out = Vec::new();
        for y in 0..dh {
            let (y0, y1, fy) = coord(y, sh, dh);
            for x in 0..dw {
                let (x0, x1, fx) = coord(x, sw, dw);
                let p = |x: usize, y: usize| f64::from(src[y * sw + x]);
                let top = p(x0, y0) * (1.0 - fx) + p(x1, y0) * fx;
                let bottom = p(x0, y1) * (1.0 - fx) + p(x1, y1) * fx;
                out.push((top * (1.0 - fy) + bottom * fy).round() as u8);
            }
        }
        out
    }

    #[test]
    fn within_one_level_of_exact_bilinear() {
        // A pseudo-random grey picture, scaled down, up, and down on one axis and up on the
        // other.
        let (sw, sh) = (97, 61);
        let mut seed = 12345u32;
        let picture: Vec<u8> = (0..sw * sh)
            .map(|_| {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (seed >> 16) as u8
            })
            .collect();
        for (dw, dh) in [(20, 15), (175, 65), (22, 150)] {
            let out = convert(Layout::Gray, (sw, sh), (dw, dh), &[(&picture, sw)], false);
            let red: Vec<u8> = out.chunks(3).map(|p| p[0]).collect();
            let want = reference(&picture, (sw, sh), (dw, dh));
            let worst = red.iter().zip(&want).map(|(a, b)| a.abs_diff(*b)).max();
            assert!(worst <= Some(1), "{dw}x{dh}: off by {worst:?}");
        }
    }

    #[test]
    fn refuses_empty_sizes_short_planes_and_wrong_destinations() {
        assert!(Converter::new(rgb(), (0, 272), (300, 300), bt601(), false).is_none());
        assert!(Converter::new(rgb(), (641, 271), (225, 225), bt601(), false).is_some());
        let c = Converter::new(rgb(), (2, 2), (1, 1), bt601(), false).expect("rgb");
        let mut out = [0u8; 3];
        assert!(!c.convert(&[(&[0u8; 11], 6)], &mut out));
        assert!(!c.convert(&[(&[0u8; 12], 5)], &mut out));
        assert!(!c.convert(&[(&[0u8; 12], 6)], &mut [0u8; 4]));
        assert!(!c.convert(&[(&[0u8; 12], 6), (&[0u8; 12], 6)], &mut out));
        assert!(c.convert(&[(&[0u8; 12], 6)], &mut out));
        // I420 5x3 needs chroma planes of 3x2.
        let i420 = Layout::of(VideoFormat::I420).unwrap();
        let c = Converter::new(i420, (5, 3), (2, 2), bt601(), false).expect("odd is fine");
        let mut out = [0u8; 12];
        assert!(!c.convert(&[(&[0; 15], 5), (&[0; 5], 3), (&[0; 6], 3)], &mut out));
        assert!(c.convert(&[(&[0; 15], 5), (&[0; 6], 3), (&[0; 6], 3)], &mut out));
    }
}
