//! `pre-process-resize`: where a picture (a frame, or an ROI's crop) lies in the model's input,
//! and boxes the model found in its input mapped back onto the picture.
//!
//! `stretch` scales the picture to the whole input. The letterbox modes keep its aspect ratio:
//! scaled by `r = min(W / w, H / h)` to `round(w r) x round(h r)` (halves to even, as Python's
//! `round` in Ultralytics' `LetterBox`), placed centred (`letterbox`: the left and top padding
//! are the smaller halves, as `LetterBox(auto=False, center=True)`) or in the top-left corner
//! (`letterbox-top-left`: padding on the right and bottom only), the rest of the input filled
//! with grey [`PAD_LEVEL`].
//!
//! `fit-height` keeps the aspect ratio too, scaled to the input's height: `ceil(H w / h)` wide
//! (at most the input's width), in the top-left corner, the rest of the row padded with
//! [`FIT_HEIGHT_PAD_LEVEL`], as PaddleOCR's `resize_norm_img` for text recognition and
//! orientation.
//!
//! A mode is one arm of [`Placement::new`]: a new way to fit pictures (e.g. scaled to the
//! input's height, padded on the right) is a new `ResizeMode` and its arm there; the converter,
//! the padding and the mapping back follow from the rectangle.

use super::ResizeMode;
use super::decode::Detection;

/// The level of every channel of the padding, in the model's 8-bit picture (before mean and
/// scale): Ultralytics' grey, 114.
pub const PAD_LEVEL: u8 = 114;

/// The padding of `fit-height`: PaddleOCR pads with 0 after its normalisation (x / 255 - 0.5)
/// / 0.5, which is level 127.5; 128 is 0.004 from it.
pub const FIT_HEIGHT_PAD_LEVEL: u8 = 128;

/// The padding level of a mode.
pub fn pad_level(mode: ResizeMode) -> u8 {
    match mode {
        ResizeMode::FitHeight => FIT_HEIGHT_PAD_LEVEL,
        _ => PAD_LEVEL,
    }
}

/// Where the picture's pixels lie in the model's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// The model input's width and height.
    pub input: (usize, usize),
    /// The picture's rectangle in the input: x, y, width, height (never empty for a non-empty
    /// input); the rest of the input is padding.
    pub rect: (usize, usize, usize, usize),
}

impl Placement {
    /// Turns the picture over (180°) in `pixels`, the input's 3-byte pixels row after row: the
    /// picture's rectangle read backwards, the padding left where it is.
    pub fn turn_over(&self, pixels: &mut [u8]) {
        let (x, y, w, h) = self.rect;
        let width = self.input.0;
        let at = |i: usize| ((y + i / w) * width + x + i % w) * 3;
        let n = w * h;
        if pixels.len() < self.input.0 * self.input.1 * 3 {
            return;
        }
        for i in 0..n / 2 {
            let (a, b) = (at(i), at(n - 1 - i));
            for c in 0..3 {
                pixels.swap(a + c, b + c);
            }
        }
    }

    /// The placement of a `picture`-sized picture (width, height) in an `input`-sized input.
    pub fn new(mode: ResizeMode, picture: (usize, usize), input: (usize, usize)) -> Placement {
        let (iw, ih) = input;
        let (w, h) = match mode {
            ResizeMode::Stretch => (iw, ih),
            ResizeMode::Letterbox | ResizeMode::LetterboxTopLeft => {
                let (pw, ph) = (picture.0.max(1) as f64, picture.1.max(1) as f64);
                let r = (iw as f64 / pw).min(ih as f64 / ph);
                // At least one pixel each way, and never beyond the input.
                let fit =
                    |n: f64, max: usize| ((n * r).round_ties_even() as usize).clamp(1, max.max(1));
                (fit(pw, iw), fit(ph, ih))
            }
            ResizeMode::FitHeight => {
                let (pw, ph) = (picture.0.max(1) as f64, picture.1.max(1) as f64);
                let w = (ih as f64 * pw / ph).ceil() as usize;
                (w.clamp(1, iw.max(1)), ih)
            }
        };
        let (x, y) = match mode {
            ResizeMode::Letterbox => (iw.saturating_sub(w) / 2, ih.saturating_sub(h) / 2),
            ResizeMode::Stretch | ResizeMode::LetterboxTopLeft | ResizeMode::FitHeight => (0, 0),
        };
        Placement {
            input,
            rect: (x, y, w, h),
        }
    }

    /// Whether the picture fills the whole input (no padding).
    pub fn is_whole(&self) -> bool {
        self.rect == (0, 0, self.input.0, self.input.1)
    }

    /// A box normalised to the model's input, normalised to the picture: the padding taken off
    /// and the scale undone (boxes reaching into the padding fall outside 0..1, for clipping).
    pub fn unmap(&self, d: &Detection) -> Detection {
        if self.is_whole() {
            return *d;
        }
        let (x, y, w, h) = self.rect;
        let (iw, ih) = (self.input.0 as f32, self.input.1 as f32);
        let fx = |v: f32| (v * iw - x as f32) / w as f32;
        let fy = |v: f32| (v * ih - y as f32) / h as f32;
        d.moved(fx, fy)
    }

    /// A box normalised to the picture, normalised to the model's input: the inverse of
    /// [`Placement::unmap`].
    pub fn map(&self, d: &Detection) -> Detection {
        let (x, y, w, h) = self.rect;
        let (iw, ih) = (self.input.0.max(1) as f32, self.input.1.max(1) as f32);
        let fx = |v: f32| (x as f32 + v * w as f32) / iw;
        let fy = |v: f32| (y as f32 + v * h as f32) / ih;
        d.moved(fx, fy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turning_over_reverses_the_picture_and_keeps_the_padding() {
        // A 2x2 picture at the top left of a 3x2 input; pixel values name their places.
        let placement = Placement {
            input: (3, 2),
            rect: (0, 0, 2, 2),
        };
        let px = |v: u8| [v, v + 100, v + 200];
        let mut pixels: Vec<u8> = [1, 2, 0, 3, 4, 0].iter().flat_map(|&v| px(v)).collect();
        placement.turn_over(&mut pixels);
        let want: Vec<u8> = [4, 3, 0, 2, 1, 0].iter().flat_map(|&v| px(v)).collect();
        assert_eq!(pixels, want);
        // An odd count: the middle pixel stays; twice is the picture again.
        let placement = Placement {
            input: (3, 1),
            rect: (0, 0, 3, 1),
        };
        let mut pixels: Vec<u8> = [1, 2, 3].iter().flat_map(|&v| px(v)).collect();
        placement.turn_over(&mut pixels);
        placement.turn_over(&mut pixels);
        assert_eq!(
            pixels,
            [1, 2, 3].iter().flat_map(|&v| px(v)).collect::<Vec<u8>>()
        );
        // Too short a buffer is left alone.
        let mut short = vec![7u8; 5];
        placement.turn_over(&mut short);
        assert_eq!(short, [7; 5]);
    }

    /// PaddleOCR's resize_norm_img by hand: resized_w = ceil(48 w / h), at most the input's width.
    #[test]
    fn fit_height_is_paddleocr_text_resize() {
        use ResizeMode::FitHeight as F;
        // 228x66 into 320x48: ceil(165.8) = 166.
        assert_eq!(
            Placement::new(F, (228, 66), (320, 48)).rect,
            (0, 0, 166, 48)
        );
        // Longer than the input: squeezed to its width.
        assert_eq!(
            Placement::new(F, (380, 25), (320, 48)).rect,
            (0, 0, 320, 48)
        );
        assert_eq!(Placement::new(F, (1, 1000), (320, 48)).rect, (0, 0, 1, 48));
        assert_eq!(pad_level(F), 128);
        assert_eq!(pad_level(ResizeMode::Letterbox), PAD_LEVEL);
    }

    fn place(mode: ResizeMode, picture: (usize, usize), input: (usize, usize)) -> Placement {
        Placement::new(mode, picture, input)
    }

    /// Ultralytics' LetterBox(new_shape, auto=False, center=True) in Python, by hand:
    /// r = min(H/h, W/w); new_unpad = round(w r), round(h r); dw, dh = (W - new_w)/2, (H - new_h)/2;
    /// left = round(dw - 0.1), top = round(dh - 0.1).
    #[test]
    fn letterbox_is_ultralytics_letterbox() {
        use ResizeMode::Letterbox as L;
        // 640x424 into 320x320: r = 0.5, 320x212, top = round(54 - 0.1) = 54.
        assert_eq!(place(L, (640, 424), (320, 320)).rect, (0, 54, 320, 212));
        // 300x512: r = 0.625, 187.5 rounds to even 188; dw = 66, left = 66.
        assert_eq!(place(L, (300, 512), (320, 320)).rect, (66, 0, 188, 320));
        // 512x301: r = 0.625, 188.125 -> 188; dh = 66.
        assert_eq!(place(L, (512, 301), (320, 320)).rect, (0, 66, 320, 188));
        // Odd padding: 321 - 188 = 133, dw = 66.5, left = round(66.4) = 66, right 67.
        assert_eq!(place(L, (300, 512), (321, 320)).rect.0, 66);
        // Enlarging (scaleup=True): 100x50 into 320x320, r = 3.2: 320x160 at y 80.
        assert_eq!(place(L, (100, 50), (320, 320)).rect, (0, 80, 320, 160));
        // Same aspect ratio: no padding.
        assert!(place(L, (1280, 1280), (320, 320)).is_whole());
        assert!(place(L, (640, 480), (320, 240)).is_whole());
        // Extreme ratios keep at least a pixel.
        assert_eq!(place(L, (100_000, 1), (320, 320)).rect, (0, 159, 320, 1));
    }

    #[test]
    fn top_left_pads_right_and_bottom_and_stretch_fills() {
        assert_eq!(
            place(ResizeMode::LetterboxTopLeft, (640, 424), (320, 320)).rect,
            (0, 0, 320, 212)
        );
        assert_eq!(
            place(ResizeMode::LetterboxTopLeft, (300, 512), (320, 320)).rect,
            (0, 0, 188, 320)
        );
        let s = place(ResizeMode::Stretch, (640, 424), (320, 320));
        assert_eq!(s.rect, (0, 0, 320, 320));
        assert!(s.is_whole());
    }

    fn boxed(x_min: f32, y_min: f32, x_max: f32, y_max: f32) -> Detection {
        Detection {
            quad: None,
            label_id: 3,
            confidence: 0.75,
            x_min,
            y_min,
            x_max,
            y_max,
        }
    }

    fn close(a: &Detection, b: &Detection) -> bool {
        [
            (a.x_min, b.x_min),
            (a.y_min, b.y_min),
            (a.x_max, b.x_max),
            (a.y_max, b.y_max),
        ]
        .iter()
        .all(|(p, q)| (p - q).abs() < 1e-5)
            && (a.label_id, a.confidence) == (b.label_id, b.confidence)
    }

    #[test]
    fn boxes_map_back_to_the_picture() {
        // 640x424 letterboxed into 320x320: the picture is rows 54..266 of the input.
        let p = place(ResizeMode::Letterbox, (640, 424), (320, 320));
        // The picture's own rectangle in input coordinates is the whole picture.
        let whole = boxed(0.0, 54.0 / 320.0, 1.0, 266.0 / 320.0);
        assert!(close(&p.unmap(&whole), &boxed(0.0, 0.0, 1.0, 1.0)));
        // A box at input pixels (100, 100)-(200, 150) is at (200, 92)-(400, 192) in the frame.
        let found = boxed(100.0 / 320.0, 100.0 / 320.0, 200.0 / 320.0, 150.0 / 320.0);
        let want = boxed(200.0 / 640.0, 92.0 / 424.0, 400.0 / 640.0, 192.0 / 424.0);
        assert!(close(&p.unmap(&found), &want), "{:?}", p.unmap(&found));
        // In the padding: outside the picture, for clipping to drop.
        let pad = p.unmap(&boxed(0.1, 0.0, 0.2, 0.1));
        assert!(pad.y_max < 0.0, "{pad:?}");
        // Stretch gives boxes back as they are.
        let s = place(ResizeMode::Stretch, (640, 424), (320, 320));
        assert_eq!(s.unmap(&found), found);
    }

    #[test]
    fn map_and_unmap_round_trip_in_every_mode() {
        let d = boxed(0.1, 0.2, 0.7, 0.95);
        for mode in [
            ResizeMode::Stretch,
            ResizeMode::Letterbox,
            ResizeMode::LetterboxTopLeft,
        ] {
            for (picture, input) in [
                ((640, 424), (320, 320)),
                ((300, 512), (320, 320)),
                ((37, 29), (128, 128)),
                ((1920, 1080), (640, 384)),
            ] {
                let p = place(mode, picture, input);
                let (x, y, w, h) = p.rect;
                assert!(x + w <= input.0 && y + h <= input.1, "{mode:?} {p:?}");
                assert!(close(&p.unmap(&p.map(&d)), &d), "{mode:?} {picture:?}");
                assert!(close(&p.map(&p.unmap(&d)), &d), "{mode:?} {picture:?}");
            }
        }
    }

    #[test]
    fn degenerate_sizes_do_not_panic() {
        for mode in [ResizeMode::Letterbox, ResizeMode::LetterboxTopLeft] {
            let p = place(mode, (0, 0), (320, 320));
            assert!(p.rect.2 >= 1 && p.rect.3 >= 1);
            let p = place(mode, (10, 10), (0, 0));
            assert_eq!(p.input, (0, 0));
        }
    }
}
