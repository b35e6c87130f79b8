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
//!
//! A region of the frame (an ROI, `inference-region=roi-list`) goes the same way, read in place
//! from the frame's planes: [`Converter::cropped`] gives the converter of a window, whose taps
//! point into the whole frame, so that a crop is what OpenCV gives for `cv2.resize` of the
//! converted frame's crop (chroma samples shared by the whole frame's blocks, the crop's edges
//! replicated as OpenCV replicates the picture's).
//!
//! The picture (the frame, or the window) fills the model's whole input, or with
//! [`Converter::with_resize`] a letterbox mode its place in it (see `resize`): scaled to that
//! rectangle as above, the rest of the input written with the mode's padding level
//! ([`pad_level`]), as OpenCV's
//! `cv2.resize` to the rectangle's size and `cv2.copyMakeBorder(BORDER_CONSTANT)` give.

use gst_video::VideoFormat;

use super::ResizeMode;
use super::resize::{Placement, pad_level};

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

/// Taps for scaling `src` samples starting at sample `start` to `dst` samples, pixel centres
/// aligned, computed as `cv2.resize(INTER_LINEAR)` computes them on those `src` samples alone
/// (single-precision positions, each weight rounded to 11 bits on its own), so that the two
/// agree to the bit.
fn taps(start: usize, src: usize, dst: usize) -> Vec<Tap> {
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
                a: start + a,
                b: start + (a + 1).min(last),
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

    /// Whether the layout's offsets lie inside its pixels and planes, and a row of `width`
    /// pixels has a byte count (no overflow). Layouts of `Layout::of` always do; made by hand,
    /// one may not: `Converter::new` refuses it rather than panic (found by fuzzing).
    pub fn fits(self, width: usize) -> bool {
        let ok = match self {
            Layout::Packed { bytes, rgb } => rgb.iter().all(|&o| o < bytes),
            Layout::Gray => true,
            Layout::Yuv420 { u, v } => u != v && (1..=2).contains(&u) && (1..=2).contains(&v),
            Layout::Yuv420Pairs { u } => u <= 1,
            Layout::Yuv422 { y, u, v } => [y[0], y[1], u, v].iter().all(|&o| o < 4),
        };
        let bytes = match self {
            Layout::Packed { bytes, .. } => bytes,
            _ => 4,
        };
        ok && width.checked_mul(bytes).is_some()
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

/// YUV to RGB in 20-bit fixed point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct YuvMatrix {
    /// Luma's foot (16 in limited range): luma below it is black.
    offset: i32,
    /// Luma's gain; V's share of red and green; U's share of green and blue.
    cy: i32,
    cvr: i32,
    cvg: i32,
    cug: i32,
    cub: i32,
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
        YuvMatrix {
            offset,
            cy,
            cvr,
            cvg,
            cug,
            cub,
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

    /// Luma's share of every channel, with the rounding half added.
    #[inline(always)]
    fn luma(&self, y: i32) -> i32 {
        (y - self.offset).max(0) * self.cy + (1 << (YUV_BITS - 1))
    }

    /// Chroma's shares of red, green and blue.
    #[inline(always)]
    fn chroma(&self, u: i32, v: i32) -> [i32; 3] {
        let (u, v) = (u - 128, v - 128);
        [self.cvr * v, self.cug * u + self.cvg * v, self.cub * u]
    }

    /// One channel from luma's and chroma's shares, clamped.
    #[inline(always)]
    fn channel(luma: i32, chroma: i32) -> u32 {
        ((luma + chroma) >> YUV_BITS).clamp(0, 255) as u32
    }

    /// One pixel: red, green, blue.
    #[cfg(test)]
    fn rgb(&self, y: u8, u: u8, v: u8) -> [u8; 3] {
        let l = self.luma(i32::from(y));
        self.chroma(i32::from(u), i32::from(v))
            .map(|c| Self::channel(l, c) as u8)
    }
}

/// Three channels of samples, one per tap, in separate rows (so that the arithmetic on them
/// runs on whole vectors).
type Channels<T> = [Vec<T>; 3];

fn channels<T: Clone + Default>(n: usize) -> Channels<T> {
    std::array::from_fn(|_| vec![T::default(); n])
}

/// The working rows of one conversion.
struct Scratch {
    /// Samples at each tap's first (`a`) and second (`b`) column: the channels in the model's
    /// order, or luma in `a[0]`, `b[0]` and U, V in `a[1..]`, `b[1..]` for YUV.
    a: Channels<i32>,
    b: Channels<i32>,
    /// Chroma's shares of the channels (in the model's order) at each tap's two columns, for
    /// the chroma row `chroma_row` (4:2:0 frames share one between two luma rows).
    chroma_row: usize,
    chroma_a: Channels<i32>,
    chroma_b: Channels<i32>,
}

/// Converts and scales frames of one format and size to the model's picture: `dst` size,
/// three 8-bit channels per pixel in the model's order, rows packed.
#[derive(Debug, Clone)]
pub struct Converter {
    layout: Layout,
    /// The whole frame's width and height (the window converted may be a part of it).
    size: (usize, usize),
    /// The window of the frame converted: x, y, width, height.
    source: (usize, usize, usize, usize),
    /// How the window is fitted into the model's picture, and where it lies in it.
    mode: ResizeMode,
    placement: Placement,
    /// The frame's bytes per row and rows of each plane.
    planes: Vec<(usize, usize)>,
    columns: Vec<Tap>,
    /// The columns' weights, apart, for whole-row arithmetic.
    weights_a: Vec<u32>,
    weights_b: Vec<u32>,
    rows: Vec<Tap>,
    matrix: YuvMatrix,
    /// Where red, green and blue go among the model's channels.
    order: [usize; 3],
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
        if [src.0, src.1, dst.0, dst.1].contains(&0) || !layout.fits(src.0) {
            return None;
        }
        Some(
            Converter {
                layout,
                size: src,
                source: (0, 0, src.0, src.1),
                mode: ResizeMode::Stretch,
                placement: Placement::new(ResizeMode::Stretch, src, dst),
                planes: layout.planes(src.0, src.1),
                weights_a: Vec::new(),
                weights_b: Vec::new(),
                columns: Vec::new(),
                rows: Vec::new(),
                matrix,
                order: if bgr { [2, 1, 0] } else { [0, 1, 2] },
            }
            .window((0, 0, src.0, src.1), dst, ResizeMode::Stretch),
        )
    }

    /// This converter with the window fitted into the model's picture by `mode`
    /// (`pre-process-resize`); the windows [`Converter::cropped`] gives keep it.
    pub fn with_resize(&self, mode: ResizeMode) -> Converter {
        self.window(self.source, self.placement.input, mode)
    }

    /// Where the window lies in the model's picture.
    pub fn placement(&self) -> Placement {
        self.placement
    }

    /// The converter of the window `x, y, w, h` of the same frames, to the same size: it reads
    /// the window in place from the whole frame's planes. None when the window is empty or not
    /// inside the frame.
    pub fn cropped(&self, window: (usize, usize, usize, usize)) -> Option<Converter> {
        self.inside(window)
            .then(|| self.window(window, self.placement.input, self.mode))
    }

    /// The converter of the window `x, y, w, h` of the same frames at its own size: its pixels
    /// in the model's channel order. None when the window is empty or not inside the frame.
    pub fn native(&self, window: (usize, usize, usize, usize)) -> Option<Converter> {
        let (_, _, w, h) = window;
        self.inside(window)
            .then(|| self.window(window, (w, h), ResizeMode::Stretch))
    }

    /// Whether the window `x, y, w, h` is not empty and inside the frame.
    fn inside(&self, (x, y, w, h): (usize, usize, usize, usize)) -> bool {
        let inside = |start: usize, len: usize, size: usize| {
            len > 0 && start.checked_add(len).is_some_and(|end| end <= size)
        };
        inside(x, w, self.size.0) && inside(y, h, self.size.1)
    }

    /// This converter for the window `x, y, w, h` (inside the frame, not empty) fitted into a
    /// `dst`-sized picture by `mode`.
    fn window(
        &self,
        source: (usize, usize, usize, usize),
        dst: (usize, usize),
        mode: ResizeMode,
    ) -> Self {
        let (x, y, w, h) = source;
        let placement = Placement::new(mode, (w, h), dst);
        let (_, _, to_w, to_h) = placement.rect;
        let columns = taps(x, w, to_w);
        Converter {
            weights_a: columns.iter().map(|t| t.wa).collect(),
            weights_b: columns.iter().map(|t| t.wb).collect(),
            columns,
            rows: taps(y, h, to_h),
            planes: self.planes.clone(),
            source,
            mode,
            placement,
            ..*self
        }
    }

    /// The frame's bytes per row and rows of each plane, as `convert` expects them.
    pub fn planes(&self) -> &[(usize, usize)] {
        &self.planes
    }

    /// Bytes of a converted frame.
    pub fn dst_len(&self) -> usize {
        let (w, h) = self.placement.input;
        w * 3 * h
    }

    /// Gathers `sample(x)` (the first N channels of the row's pixel x) at each tap's two
    /// columns.
    #[inline(always)]
    fn gather<const N: usize>(
        &self,
        a: &mut Channels<i32>,
        b: &mut Channels<i32>,
        sample: impl Fn(usize) -> [u8; N],
    ) {
        for (k, tap) in self.columns.iter().enumerate() {
            let (p, q) = (sample(tap.a), sample(tap.b));
            for c in 0..N {
                a[c][k] = i32::from(p[c]);
                b[c][k] = i32::from(q[c]);
            }
        }
    }

    /// Source row `y` (with its chroma) read at the columns the taps read, converted, and
    /// blended horizontally into `out` (one row per channel, in 1/ONE units).
    #[inline(always)]
    fn horizontal(
        &self,
        planes: &[(&[u8], usize)],
        y: usize,
        s: &mut Scratch,
        out: &mut Channels<u32>,
    ) {
        let row = |p: usize, y: usize| {
            let (data, stride) = planes[p];
            &data[y * stride..y * stride + self.planes[p].0]
        };
        let (a, b) = (&mut s.a, &mut s.b);
        match self.layout {
            Layout::Packed { bytes, rgb } => {
                let r = row(0, y);
                let o = [rgb[self.order[0]], rgb[self.order[1]], rgb[self.order[2]]];
                self.gather(a, b, |x| {
                    let p = &r[x * bytes..x * bytes + bytes];
                    [p[o[0]], p[o[1]], p[o[2]]]
                });
                self.blend(a, b, out, 3);
            }
            Layout::Gray => {
                let r = row(0, y);
                self.gather(a, b, |x| [r[x]]);
                self.blend(a, b, out, 1);
                let (grey, rest) = out.split_at_mut(1);
                rest[0].copy_from_slice(&grey[0]);
                rest[1].copy_from_slice(&grey[0]);
            }
            Layout::Yuv420 { u, v } => {
                let (l, cu, cv) = (row(0, y), row(u, y / 2), row(v, y / 2));
                if s.chroma_row != y / 2 {
                    self.gather(a, b, |x| [0, cu[x / 2], cv[x / 2]]);
                    self.chroma_shares(s);
                    s.chroma_row = y / 2;
                }
                self.gather(&mut s.a, &mut s.b, |x| [l[x]]);
                self.convert_blend(s, out);
            }
            Layout::Yuv420Pairs { u } => {
                let (l, c) = (row(0, y), row(1, y / 2));
                if s.chroma_row != y / 2 {
                    self.gather(a, b, |x| {
                        let pair = &c[x / 2 * 2..x / 2 * 2 + 2];
                        [0, pair[u], pair[1 - u]]
                    });
                    self.chroma_shares(s);
                    s.chroma_row = y / 2;
                }
                self.gather(&mut s.a, &mut s.b, |x| [l[x]]);
                self.convert_blend(s, out);
            }
            Layout::Yuv422 { y: luma, u, v } => {
                let r = row(0, y);
                self.gather(a, b, |x| {
                    let p = &r[x / 2 * 4..x / 2 * 4 + 4];
                    [p[luma[x % 2]], p[u], p[v]]
                });
                self.chroma_shares(s);
                self.convert_blend(s, out);
            }
        }
    }

    /// `out[c] = a[c] * wa + b[c] * wb` for the first `n` channels.
    #[inline(always)]
    fn blend(&self, a: &Channels<i32>, b: &Channels<i32>, out: &mut Channels<u32>, n: usize) {
        for c in 0..n {
            for ((o, (&p, &q)), (&wa, &wb)) in out[c]
                .iter_mut()
                .zip(a[c].iter().zip(&b[c]))
                .zip(self.weights_a.iter().zip(&self.weights_b))
            {
                *o = p as u32 * wa + q as u32 * wb;
            }
        }
    }

    /// Chroma's shares of each channel from the U and V gathered in `a[1..]` and `b[1..]`.
    #[inline(always)]
    fn chroma_shares(&self, s: &mut Scratch) {
        let m = self.matrix;
        for (from, to) in [(&s.a, &mut s.chroma_a), (&s.b, &mut s.chroma_b)] {
            let [c0, green, c2] = to;
            let (red, blue) = if self.order[0] == 0 {
                (c0, c2)
            } else {
                (c2, c0)
            };
            for ((((r, g), b), &u), &v) in red
                .iter_mut()
                .zip(green.iter_mut())
                .zip(blue.iter_mut())
                .zip(&from[1])
                .zip(&from[2])
            {
                [*r, *g, *b] = m.chroma(u, v);
            }
        }
    }

    /// Pixels from the luma in `a[0]`, `b[0]` and the chroma shares, clamped, then blended.
    #[inline(always)]
    fn convert_blend(&self, s: &mut Scratch, out: &mut Channels<u32>) {
        let m = self.matrix;
        for luma in [&mut s.a[0], &mut s.b[0]] {
            for y in luma.iter_mut() {
                *y = m.luma(*y);
            }
        }
        let (la, lb) = (&s.a[0], &s.b[0]);
        for ((out, chroma_a), chroma_b) in out.iter_mut().zip(&s.chroma_a).zip(&s.chroma_b) {
            for (((o, (&ya, &yb)), (&ca, &cb)), (&wa, &wb)) in out
                .iter_mut()
                .zip(la.iter().zip(lb))
                .zip(chroma_a.iter().zip(chroma_b))
                .zip(self.weights_a.iter().zip(&self.weights_b))
            {
                *o = YuvMatrix::channel(ya, ca) * wa + YuvMatrix::channel(yb, cb) * wb;
            }
        }
    }

    /// Converts `planes` (data, stride) into `dst`. Returns false when a plane is shorter than
    /// its rows need or `dst` has the wrong size.
    pub fn convert(&self, planes: &[(&[u8], usize)], dst: &mut [u8]) -> bool {
        let fits = |&(data, stride): &(&[u8], usize), &(row, rows): &(usize, usize)| {
            // Checked: a stride near usize::MAX overflowed here (fuzz/regressions/convert).
            stride >= row
                && stride
                    .checked_mul(rows - 1)
                    .and_then(|n| n.checked_add(row))
                    .is_some_and(|need| data.len() >= need)
        };
        if planes.len() != self.planes.len()
            || dst.len() != self.dst_len()
            || !planes.iter().zip(&self.planes).all(|(p, s)| fits(p, s))
        {
            return false;
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above), the only feature the function is
            // compiled for beyond the target's own.
            unsafe { self.run_avx2(planes, dst) };
            return true;
        }
        self.run(planes, dst);
        true
    }

    /// [`Self::run`] compiled for AVX2: the whole-row arithmetic then runs on 8 lanes.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn run_avx2(&self, planes: &[(&[u8], usize)], dst: &mut [u8]) {
        self.run(planes, dst);
    }

    /// The conversion of planes already checked against the geometry.
    #[inline(always)]
    fn run(&self, planes: &[(&[u8], usize)], dst: &mut [u8]) {
        let n = self.columns.len();
        let mut scratch = Scratch {
            a: channels(n),
            b: channels(n),
            chroma_row: usize::MAX,
            chroma_a: channels(n),
            chroma_b: channels(n),
        };
        // The two source rows last blended horizontally, by source row index.
        let mut upper = (usize::MAX, channels::<u32>(n));
        let mut lower = (usize::MAX, channels::<u32>(n));
        let mut vertical = vec![0u8; n];
        // The padding around the picture's rectangle (none when it fills the picture).
        let row_bytes = 3 * self.placement.input.0;
        let (x0, y0, _, h) = self.placement.rect;
        let (above, rest) = dst.split_at_mut(y0 * row_bytes);
        let (inside, below) = rest.split_at_mut(h * row_bytes);
        let pad = pad_level(self.mode);
        above.fill(pad);
        below.fill(pad);
        for (tap, line) in self.rows.iter().zip(inside.chunks_exact_mut(row_bytes)) {
            let (left, rest) = line.split_at_mut(3 * x0);
            let (out, right) = rest.split_at_mut(3 * n);
            left.fill(pad);
            right.fill(pad);
            if upper.0 != tap.a {
                if lower.0 == tap.a {
                    std::mem::swap(&mut upper, &mut lower);
                } else {
                    self.horizontal(planes, tap.a, &mut scratch, &mut upper.1);
                    upper.0 = tap.a;
                }
            }
            if lower.0 != tap.b {
                self.horizontal(planes, tap.b, &mut scratch, &mut lower.1);
                lower.0 = tap.b;
            }
            // OpenCV's vertical pass, to the bit: each row's sums cut to 7 fraction bits, each
            // weighted product to 2, then rounded.
            let (wa, wb) = (tap.wa, tap.wb);
            for c in 0..3 {
                for (v, (&u, &l)) in vertical.iter_mut().zip(upper.1[c].iter().zip(&lower.1[c])) {
                    let sum = (((u >> 4) * wa) >> 16) + (((l >> 4) * wb) >> 16);
                    *v = ((sum + 2) >> 2).min(255) as u8;
                }
                for (px, &v) in out.chunks_exact_mut(3).zip(&vertical) {
                    px[c] = v;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ovinfer::resize::PAD_LEVEL;

    /// Fuzz finds (fuzz/regressions/convert): a stride near usize::MAX overflowed the plane
    /// length check, a width near usize::MAX the row size, and hand-made layouts with offsets
    /// outside their pixel or plane indexed out of bounds. Now `convert` returns false and
    /// `new` None.
    #[test]
    fn fuzz_huge_strides_and_sizes_and_bad_layouts_are_refused() {
        let rgb = Layout::of(VideoFormat::Rgb).unwrap();
        let conv = Converter::new(rgb, (2, 2), (2, 2), bt601(), false).unwrap();
        let data = [0u8; 12];
        let mut dst = vec![0u8; conv.dst_len()];
        assert!(!conv.convert(&[(&data, usize::MAX - 3)], &mut dst));
        assert!(!conv.convert(&[(&data, usize::MAX / 2 + 1)], &mut dst));
        assert!(conv.convert(&[(&data, 6)], &mut dst));
        assert!(Converter::new(rgb, (usize::MAX - 7, 2), (2, 2), bt601(), false).is_none());
        for bad in [
            Layout::Packed {
                bytes: 3,
                rgb: [0, 1, 3],
            },
            Layout::Packed {
                bytes: 0,
                rgb: [0, 0, 0],
            },
            Layout::Yuv420 { u: 1, v: 1 },
            Layout::Yuv420 { u: 3, v: 1 },
            Layout::Yuv420Pairs { u: 2 },
            Layout::Yuv422 {
                y: [0, 4],
                u: 1,
                v: 3,
            },
        ] {
            assert!(
                Converter::new(bad, (4, 4), (2, 2), bt601(), false).is_none(),
                "{bad:?}"
            );
        }
    }

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
        assert_eq!(taps(0, 4, 2), vec![tap(0, 1, ONE / 2), tap(2, 3, ONE / 2)]);
        // Same size: every output is one input.
        assert!(
            taps(0, 5, 5)
                .iter()
                .enumerate()
                .all(|(i, t)| t.a == i && t.wb == 0)
        );
        // Doubling: edges clamp, inner outputs are 1/4 and 3/4 between inputs.
        assert_eq!(
            taps(0, 2, 4),
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

    /// The portable build of the conversion and the one compiled for the CPU's vector unit
    /// (taken by `convert` where the CPU has it) give the same bytes, for every layout.
    #[test]
    fn portable_and_vector_builds_agree() {
        use VideoFormat as F;
        let mut seed = 99u32;
        let (src, dst) = ((101, 57), (40, 23));
        for format in [
            F::Rgb,
            F::Bgrx,
            F::Argb,
            F::Gray8,
            F::I420,
            F::Nv21,
            F::Uyvy,
        ] {
            let layout = Layout::of(format).unwrap();
            let planes: Vec<Vec<u8>> = layout
                .planes(src.0, src.1)
                .into_iter()
                .map(|(row, rows)| {
                    (0..row * rows)
                        .map(|_| {
                            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                            (seed >> 16) as u8
                        })
                        .collect()
                })
                .collect();
            let views: Vec<(&[u8], usize)> = planes
                .iter()
                .zip(layout.planes(src.0, src.1))
                .map(|(p, (row, _))| (p.as_slice(), row))
                .collect();
            for bgr in [false, true] {
                let c = Converter::new(layout, src, dst, bt601(), bgr).unwrap();
                let (mut portable, mut chosen) = (vec![0; c.dst_len()], vec![0; c.dst_len()]);
                c.run(&views, &mut portable);
                assert!(c.convert(&views, &mut chosen));
                assert_eq!(portable, chosen, "{format:?} bgr {bgr}");
            }
        }
    }

    /// Planes of pseudo-random bytes for a `size` frame of `layout`, packed (stride = row).
    fn random_planes(layout: Layout, size: (usize, usize), seed: &mut u32) -> Vec<Vec<u8>> {
        layout
            .planes(size.0, size.1)
            .into_iter()
            .map(|(row, rows)| {
                (0..row * rows)
                    .map(|_| {
                        *seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                        (*seed >> 16) as u8
                    })
                    .collect()
            })
            .collect()
    }

    /// A window is what the resize gives on the crop of the whole frame converted at its own
    /// size (the path OpenCV takes: cvtColor of the frame, crop, resize), for every layout, odd
    /// window origins and sizes (chroma blocks cut in two) included, shrinking and enlarging.
    #[test]
    fn a_window_is_the_crop_of_the_converted_frame_scaled() {
        use VideoFormat as F;
        let frame = (37, 29);
        let mut seed = 7u32;
        for format in [
            F::Rgb,
            F::Bgrx,
            F::Xbgr,
            F::Gray8,
            F::I420,
            F::Yv12,
            F::Nv12,
            F::Nv21,
            F::Yuy2,
            F::Uyvy,
        ] {
            let layout = Layout::of(format).unwrap();
            let planes = random_planes(layout, frame, &mut seed);
            let views: Vec<(&[u8], usize)> = planes
                .iter()
                .zip(layout.planes(frame.0, frame.1))
                .map(|(p, (row, _))| (p.as_slice(), row))
                .collect();
            // The whole frame in RGB at its own size: a copy per pixel, no resize.
            let converted = {
                let c = Converter::new(layout, frame, frame, bt601(), false).unwrap();
                let mut out = vec![0; c.dst_len()];
                assert!(c.convert(&views, &mut out));
                out
            };
            let whole = Converter::new(layout, frame, (16, 12), bt601(), false).unwrap();
            for window in [(0, 0, 37, 29), (3, 5, 20, 11), (1, 1, 7, 5), (36, 28, 1, 1)] {
                let (x, y, w, h) = window;
                let crop: Vec<u8> = (y..y + h)
                    .flat_map(|r| {
                        converted[(r * frame.0 + x) * 3..(r * frame.0 + x + w) * 3].to_vec()
                    })
                    .collect();
                let want = convert(rgb(), (w, h), (16, 12), &[(&crop, w * 3)], false);
                let c = whole.cropped(window).expect("inside");
                let mut got = vec![0; c.dst_len()];
                assert!(c.convert(&views, &mut got));
                assert_eq!(got, want, "{format:?} window {window:?}");
            }
        }
    }

    #[test]
    fn windows_outside_the_frame_or_empty_are_refused() {
        let c = Converter::new(rgb(), (10, 8), (4, 4), bt601(), false).unwrap();
        for window in [
            (0, 0, 0, 4),
            (0, 0, 4, 0),
            (8, 0, 3, 4),
            (0, 6, 4, 3),
            (10, 0, 1, 1),
            (usize::MAX, 0, 2, 2),
            (0, 1, 2, usize::MAX),
        ] {
            assert!(c.cropped(window).is_none(), "{window:?}");
        }
        let inside = c.cropped((9, 7, 1, 1)).expect("the last pixel");
        assert_eq!(inside.dst_len(), 4 * 4 * 3);
        // A window of a window is a window of the frame.
        let twice = inside
            .cropped((2, 2, 3, 3))
            .expect("still inside the frame");
        assert_eq!(twice.columns[0].a, 2);
    }

    /// The model's picture `input` wide, row `y`, as pixels.
    fn pixels_of_row(out: &[u8], input: (usize, usize), y: usize) -> Vec<[u8; 3]> {
        out[y * input.0 * 3..(y + 1) * input.0 * 3]
            .chunks(3)
            .map(|p| [p[0], p[1], p[2]])
            .collect()
    }

    /// Letterbox: the picture scaled into its rectangle exactly as a stretch to that
    /// rectangle's size gives it (cv2.resize to the rectangle), everything else grey 114
    /// (cv2.copyMakeBorder), centred or in the top-left corner.
    #[test]
    fn letterbox_writes_the_picture_in_its_rectangle_and_pads_the_rest() {
        let (src, input) = ((8usize, 4usize), (6usize, 6usize));
        let mut seed = 3u32;
        let planes = random_planes(rgb(), src, &mut seed);
        let views = [(planes[0].as_slice(), src.0 * 3)];
        let stretch = Converter::new(rgb(), src, input, bt601(), false).unwrap();
        assert!(stretch.placement().is_whole());
        for (mode, rect) in [
            (ResizeMode::Letterbox, (0, 1, 6, 3)),
            (ResizeMode::LetterboxTopLeft, (0, 0, 6, 3)),
        ] {
            let c = stretch.with_resize(mode);
            assert_eq!(c.placement().rect, rect, "{mode:?}");
            assert_eq!(c.dst_len(), 6 * 6 * 3);
            // Garbage in the tensor beforehand: every byte is written.
            let mut out = vec![7u8; c.dst_len()];
            assert!(c.convert(&views, &mut out));
            let picture = convert(rgb(), src, (6, 3), &views, false);
            for y in 0..6 {
                let row = pixels_of_row(&out, input, y);
                if (rect.1..rect.1 + 3).contains(&y) {
                    assert_eq!(
                        row.concat(),
                        picture[(y - rect.1) * 18..(y - rect.1 + 1) * 18],
                        "{mode:?} row {y}"
                    );
                } else {
                    assert!(row.iter().all(|p| *p == [PAD_LEVEL; 3]), "{mode:?} row {y}");
                }
            }
        }
        // A tall picture: padding left and right of each row (odd padding: 1 left, 2 right).
        let tall = Converter::new(rgb(), (4, 8), (5, 4), bt601(), false)
            .unwrap()
            .with_resize(ResizeMode::Letterbox);
        assert_eq!(tall.placement().rect, (1, 0, 2, 4));
        let planes = random_planes(rgb(), (4, 8), &mut seed);
        let mut out = vec![0u8; tall.dst_len()];
        assert!(tall.convert(&[(&planes[0], 12)], &mut out));
        let picture = convert(rgb(), (4, 8), (2, 4), &[(&planes[0], 12)], false);
        for y in 0..4 {
            let row = pixels_of_row(&out, (5, 4), y);
            assert_eq!(row[0], [PAD_LEVEL; 3]);
            assert_eq!(row[1..3].concat(), picture[y * 6..(y + 1) * 6]);
            assert_eq!(row[3..], [[PAD_LEVEL; 3]; 2]);
        }
        // Back to stretch: the whole input again.
        assert!(tall.with_resize(ResizeMode::Stretch).placement().is_whole());
    }

    /// A window of a letterboxing converter is letterboxed by its own size: the crop scaled
    /// into its rectangle as a stretch of the crop to that size, the rest padded.
    #[test]
    fn windows_keep_the_resize_mode() {
        let frame = (37, 29);
        let mut seed = 11u32;
        let i420 = Layout::of(VideoFormat::I420).unwrap();
        let planes = random_planes(i420, frame, &mut seed);
        let views: Vec<(&[u8], usize)> = planes
            .iter()
            .zip(i420.planes(frame.0, frame.1))
            .map(|(p, (row, _))| (p.as_slice(), row))
            .collect();
        let whole = Converter::new(i420, frame, (16, 16), bt601(), false).unwrap();
        let letterbox = whole.with_resize(ResizeMode::Letterbox);
        for window in [(3, 5, 20, 11), (1, 1, 7, 15), (0, 0, 37, 29)] {
            let c = letterbox.cropped(window).expect("inside");
            let p = c.placement();
            assert_eq!(
                p,
                Placement::new(ResizeMode::Letterbox, (window.2, window.3), (16, 16))
            );
            let (x, y, w, h) = p.rect;
            let mut got = vec![0; c.dst_len()];
            assert!(c.convert(&views, &mut got));
            // The same window stretched to the rectangle's size.
            let scaled = Converter::new(i420, frame, (w, h), bt601(), false)
                .unwrap()
                .cropped(window)
                .unwrap();
            let mut want = vec![0; scaled.dst_len()];
            assert!(scaled.convert(&views, &mut want));
            for row in 0..16 {
                let pixels = pixels_of_row(&got, (16, 16), row);
                for (col, px) in pixels.iter().enumerate() {
                    let inside = (x..x + w).contains(&col) && (y..y + h).contains(&row);
                    let expected = if inside {
                        let at = ((row - y) * w + col - x) * 3;
                        [want[at], want[at + 1], want[at + 2]]
                    } else {
                        [PAD_LEVEL; 3]
                    };
                    assert_eq!(*px, expected, "window {window:?} at {col},{row}");
                }
            }
        }
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
