//! Bilinear scaling of a video frame to the model's input size, written straight into the
//! input tensor: `pre-process-backend=ovinfer`.
//!
//! OpenVINO's own linear resize (a pre-processing step compiled into the model) costs about
//! 2 ms a frame on the SSD model on this CPU, 6% of the inference; this one, in 8-bit fixed
//! point (11-bit weights, as OpenCV's) and separable, costs a fraction of that and does the packing copy at the same time.
//! Colour conversion and layout stay in OpenVINO, at the model's (small) size. Each plane is
//! scaled on its own, with pixel centres aligned (the "half pixel" convention of OpenVINO and
//! OpenCV), so a chroma plane keeps its place relative to the luma plane.

use crate::openvino::PixelFormat;

/// Fixed-point weight of one: weights are in 1/2048. Both passes together then stay within
/// u32 (255 * 2048 * 2048 < 2^31) and a result is off exact bilinear by at most one level.
const BITS: u32 = 11;
const ONE: u32 = 1 << BITS;

/// The two source samples and the weight of the second for one destination coordinate.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Tap {
    a: usize,
    b: usize,
    /// Weight of `b`, 0..=ONE; `a` gets ONE - w.
    w: u32,
}

/// Taps for scaling `src` samples to `dst` samples, pixel centres aligned.
fn taps(src: usize, dst: usize) -> Vec<Tap> {
    let ratio = src as f64 / dst as f64;
    let last = src.saturating_sub(1);
    (0..dst)
        .map(|d| {
            let s = ((d as f64 + 0.5) * ratio - 0.5).clamp(0.0, last as f64);
            let a = s.floor() as usize;
            let w = ((s - a as f64) * ONE as f64).round() as u32;
            Tap {
                a,
                b: (a + 1).min(last),
                w,
            }
        })
        .collect()
}

/// How one plane is scaled: interleaved channels per pixel, and its taps on both axes.
#[derive(Debug, Clone)]
struct Plane {
    channels: usize,
    src_width: usize,
    src_height: usize,
    columns: Vec<Tap>,
    rows: Vec<Tap>,
}

impl Plane {
    fn new(channels: usize, src: (usize, usize), dst: (usize, usize)) -> Plane {
        Plane {
            channels,
            src_width: src.0,
            src_height: src.1,
            columns: taps(src.0, dst.0),
            rows: taps(src.1, dst.1),
        }
    }

    fn dst_len(&self) -> usize {
        self.columns.len() * self.channels * self.rows.len()
    }

    /// Whether `data` with `stride` holds the plane's rows.
    fn fits(&self, data: &[u8], stride: usize) -> bool {
        let row = self.src_width * self.channels;
        self.src_height == 0
            || (stride >= row && data.len() >= stride * (self.src_height - 1) + row)
    }

    /// One source row scaled horizontally, in 1/ONE units.
    fn horizontal(&self, row: &[u8], out: &mut [u32]) {
        match self.channels {
            1 => horizontal::<1>(&self.columns, row, out),
            2 => horizontal::<2>(&self.columns, row, out),
            3 => horizontal::<3>(&self.columns, row, out),
            _ => horizontal::<4>(&self.columns, row, out),
        }
    }

    /// Scales the plane at `data` (rows `stride` bytes apart) into `dst`, packed.
    fn scale(&self, data: &[u8], stride: usize, dst: &mut [u8]) {
        let row_len = self.src_width * self.channels;
        let out_len = self.columns.len() * self.channels;
        let source = |y: usize| &data[y * stride..y * stride + row_len];
        // The two source rows last scaled horizontally, by source row index.
        let mut upper = (usize::MAX, vec![0u32; out_len]);
        let mut lower = (usize::MAX, vec![0u32; out_len]);
        for (tap, out) in self.rows.iter().zip(dst.chunks_exact_mut(out_len)) {
            if upper.0 != tap.a {
                if lower.0 == tap.a {
                    std::mem::swap(&mut upper, &mut lower);
                } else {
                    self.horizontal(source(tap.a), &mut upper.1);
                    upper.0 = tap.a;
                }
            }
            if lower.0 != tap.b {
                self.horizontal(source(tap.b), &mut lower.1);
                lower.0 = tap.b;
            }
            let (wa, wb) = (ONE - tap.w, tap.w);
            for ((o, &u), &l) in out.iter_mut().zip(&upper.1).zip(&lower.1) {
                *o = ((u * wa + l * wb + ONE * ONE / 2) >> (2 * BITS)) as u8;
            }
        }
    }
}

fn horizontal<const C: usize>(columns: &[Tap], row: &[u8], out: &mut [u32]) {
    for (tap, px) in columns.iter().zip(out.chunks_exact_mut(C)) {
        let (a, b) = (
            &row[tap.a * C..tap.a * C + C],
            &row[tap.b * C..tap.b * C + C],
        );
        let (wa, wb) = (ONE - tap.w, tap.w);
        for c in 0..C {
            px[c] = u32::from(a[c]) * wa + u32::from(b[c]) * wb;
        }
    }
}

/// Scales frames of one format and size to another size, plane by plane, into the packed
/// layout the input tensor takes.
#[derive(Debug, Clone)]
pub struct Scaler {
    planes: Vec<Plane>,
}

impl Scaler {
    /// None when the format cannot be scaled to that size (4:2:0 needs an even size).
    pub fn new(format: PixelFormat, src: (usize, usize), dst: (usize, usize)) -> Option<Scaler> {
        let half = |(w, h): (usize, usize)| (w / 2, h / 2);
        let planes = match format {
            PixelFormat::Rgb | PixelFormat::Bgr => vec![Plane::new(3, src, dst)],
            PixelFormat::Rgbx | PixelFormat::Bgrx => vec![Plane::new(4, src, dst)],
            PixelFormat::Nv12 | PixelFormat::I420 => {
                if [src.0, src.1, dst.0, dst.1].iter().any(|n| n % 2 != 0) {
                    return None;
                }
                let luma = Plane::new(1, src, dst);
                if format == PixelFormat::Nv12 {
                    vec![luma, Plane::new(2, half(src), half(dst))]
                } else {
                    let chroma = Plane::new(1, half(src), half(dst));
                    vec![luma, chroma.clone(), chroma]
                }
            }
        };
        (src.0 > 0 && src.1 > 0 && dst.0 > 0 && dst.1 > 0).then_some(Scaler { planes })
    }

    /// Bytes of a scaled frame.
    pub fn dst_len(&self) -> usize {
        self.planes.iter().map(Plane::dst_len).sum()
    }

    /// Scales `planes` (data, stride) into `dst`, one plane after another. Returns false when a
    /// plane is shorter than its rows need or `dst` has the wrong size.
    pub fn scale(&self, planes: &[(&[u8], usize)], dst: &mut [u8]) -> bool {
        if planes.len() != self.planes.len()
            || dst.len() != self.dst_len()
            || !self
                .planes
                .iter()
                .zip(planes)
                .all(|(p, &(d, s))| p.fits(d, s))
        {
            return false;
        }
        let mut offset = 0;
        for (plane, &(data, stride)) in self.planes.iter().zip(planes) {
            let len = plane.dst_len();
            plane.scale(data, stride, &mut dst[offset..offset + len]);
            offset += len;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scale(
        format: PixelFormat,
        src: (usize, usize),
        dst: (usize, usize),
        data: &[u8],
    ) -> Vec<u8> {
        let s = Scaler::new(format, src, dst).expect("scalable");
        let mut out = vec![0; s.dst_len()];
        let bpp = if format == PixelFormat::Rgbx { 4 } else { 3 };
        assert!(s.scale(&[(data, src.0 * bpp)], &mut out));
        out
    }

    #[test]
    fn taps_align_pixel_centres() {
        // Halving: each output centre falls between two inputs.
        assert_eq!(
            taps(4, 2),
            vec![
                Tap {
                    a: 0,
                    b: 1,
                    w: ONE / 2
                },
                Tap {
                    a: 2,
                    b: 3,
                    w: ONE / 2
                }
            ]
        );
        // Same size: every output is one input.
        assert!(
            taps(5, 5)
                .iter()
                .enumerate()
                .all(|(i, t)| t.a == i && t.w == 0)
        );
        // Doubling: edges clamp, inner outputs are 1/4 and 3/4 between inputs.
        assert_eq!(
            taps(2, 4),
            vec![
                Tap { a: 0, b: 1, w: 0 },
                Tap {
                    a: 0,
                    b: 1,
                    w: ONE / 4
                },
                Tap {
                    a: 0,
                    b: 1,
                    w: 3 * ONE / 4
                },
                Tap { a: 1, b: 1, w: 0 },
            ]
        );
    }

    #[test]
    fn same_size_is_a_copy_and_flat_stays_flat() {
        let data: Vec<u8> = (0..5 * 3 * 3).map(|i| (i * 7 % 256) as u8).collect();
        assert_eq!(scale(PixelFormat::Rgb, (5, 3), (5, 3), &data), data);
        let flat = vec![77u8; 640 * 272 * 4];
        let out = scale(PixelFormat::Rgbx, (640, 272), (300, 300), &flat);
        assert_eq!(out.len(), 300 * 300 * 4);
        assert!(out.iter().all(|&v| v == 77));
    }

    #[test]
    fn downscaling_averages_and_upscaling_interpolates() {
        // 4x1 RGB, red ramp 0, 100, 200, 250 -> 2x1: (0+100)/2, (200+250)/2.
        let row = [0, 1, 2, 100, 1, 2, 200, 1, 2, 250, 1, 2];
        assert_eq!(
            scale(PixelFormat::Rgb, (4, 1), (2, 1), &row),
            [50, 1, 2, 225, 1, 2]
        );
        // 1x2 -> 1x4 vertically: 0, 25, 75, 100.
        let col = [0, 0, 0, 100, 100, 100];
        let out = scale(PixelFormat::Rgb, (1, 2), (1, 4), &col);
        assert_eq!(
            out.chunks(3).map(|p| p[0]).collect::<Vec<_>>(),
            [0, 25, 75, 100]
        );
    }

    #[test]
    fn planes_are_scaled_apart_and_row_padding_is_skipped() {
        // I420 4x2 -> 2x2: Y rows padded to 8 bytes, chroma 2x1 -> 1x1.
        let y = [10, 30, 50, 70, 9, 9, 9, 9, 10, 30, 50, 70, 9, 9, 9, 9];
        let (u, v) = ([100, 200], [40, 60]);
        let s = Scaler::new(PixelFormat::I420, (4, 2), (2, 2)).expect("even sizes");
        let mut out = vec![0; 6];
        assert!(s.scale(&[(&y, 8), (&u, 2), (&v, 2)], &mut out));
        assert_eq!(out, [20, 60, 20, 60, 150, 50]);
        // NV12's chroma plane keeps U and V apart.
        let s = Scaler::new(PixelFormat::Nv12, (4, 2), (2, 2)).expect("even sizes");
        let uv = [100, 40, 200, 60];
        let mut out = vec![0; 6];
        assert!(s.scale(&[(&y, 8), (&uv, 4)], &mut out));
        assert_eq!(out, [20, 60, 20, 60, 150, 50]);
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
        // A pseudo-random grey picture as the chroma planes of an I420 frame, scaled down, up,
        // and down on one axis and up on the other.
        let (sw, sh) = (49, 31);
        let mut seed = 12345u32;
        let picture: Vec<u8> = (0..sw * sh)
            .map(|_| {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (seed >> 16) as u8
            })
            .collect();
        let luma = vec![0u8; 4 * sw * sh];
        for (dw, dh) in [(20, 15), (75, 65), (22, 50)] {
            let s = Scaler::new(PixelFormat::I420, (2 * sw, 2 * sh), (2 * dw, 2 * dh))
                .expect("even sizes");
            let mut out = vec![0; s.dst_len()];
            assert!(s.scale(&[(&luma, 2 * sw), (&picture, sw), (&picture, sw)], &mut out));
            let u = &out[4 * dw * dh..5 * dw * dh];
            let want = reference(&picture, (sw, sh), (dw, dh));
            let worst = u.iter().zip(&want).map(|(a, b)| a.abs_diff(*b)).max();
            assert!(worst <= Some(1), "{dw}x{dh}: off by {worst:?}");
        }
    }

    #[test]
    fn refuses_odd_yuv_sizes_short_planes_and_wrong_destinations() {
        assert!(Scaler::new(PixelFormat::I420, (640, 272), (225, 225)).is_none());
        assert!(Scaler::new(PixelFormat::Nv12, (641, 272), (300, 300)).is_none());
        assert!(Scaler::new(PixelFormat::Rgb, (0, 272), (300, 300)).is_none());
        assert!(Scaler::new(PixelFormat::Bgr, (641, 271), (225, 225)).is_some());
        let s = Scaler::new(PixelFormat::Rgb, (2, 2), (1, 1)).expect("rgb");
        let mut out = [0u8; 3];
        assert!(!s.scale(&[(&[0u8; 11], 6)], &mut out));
        assert!(!s.scale(&[(&[0u8; 12], 5)], &mut out));
        assert!(!s.scale(&[(&[0u8; 12], 6)], &mut [0u8; 4]));
        assert!(s.scale(&[(&[0u8; 12], 6)], &mut out));
    }
}
