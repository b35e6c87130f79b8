//! Text rendered with the font embedded in the plugin: DejaVu Sans Bold, subset to Latin, Greek,
//! Cyrillic and punctuation (font/LICENSE; rebuilt by scripts/make_font.sh). Characters outside
//! the subset are drawn as the font's missing-glyph box.

use std::collections::HashMap;
use std::sync::LazyLock;

use super::surface::Mask;

static FONT: LazyLock<Result<fontdue::Font, &'static str>> = LazyLock::new(|| {
    fontdue::Font::from_bytes(
        &include_bytes!("font/DejaVuSans-Bold-subset.ttf")[..],
        fontdue::FontSettings::default(),
    )
});

/// The embedded font, or why it cannot be read (not expected: it is tested).
pub fn font() -> Result<&'static fontdue::Font, String> {
    FONT.as_ref()
        .map_err(|e| format!("the embedded font cannot be read: {e}"))
}

/// Lines kept rendered: labels repeat from frame to frame.
const CACHED_LINES: usize = 512;

/// Renders lines of text at one pixel size, caching glyphs and recent lines.
pub struct TextRenderer {
    font: &'static fontdue::Font,
    px: f32,
    ascent: f32,
    height: usize,
    glyphs: HashMap<char, (fontdue::Metrics, Vec<u8>)>,
    lines: HashMap<String, std::sync::Arc<Mask>>,
}

impl TextRenderer {
    /// A renderer for text `px` pixels high (the font's em size).
    pub fn new(px: u32) -> Result<TextRenderer, String> {
        let font = font()?;
        let px = px.max(1) as f32;
        let (ascent, descent) = font
            .horizontal_line_metrics(px)
            .map(|m| (m.ascent, m.descent))
            .unwrap_or((px, 0.0));
        Ok(TextRenderer {
            font,
            px,
            ascent: ascent.ceil(),
            height: (ascent.ceil() - descent.floor()).max(1.0) as usize,
            glyphs: HashMap::new(),
            lines: HashMap::new(),
        })
    }

    pub fn px(&self) -> u32 {
        self.px as u32
    }

    /// The height of every line this renderer makes.
    pub fn line_height(&self) -> usize {
        self.height
    }

    /// One line of text as a coverage mask, `line_height()` high and as wide as the text.
    pub fn render(&mut self, text: &str) -> std::sync::Arc<Mask> {
        if let Some(mask) = self.lines.get(text) {
            return mask.clone();
        }
        if self.lines.len() >= CACHED_LINES {
            self.lines.clear();
        }
        let mask = std::sync::Arc::new(self.draw(text));
        self.lines.insert(text.to_string(), mask.clone());
        mask
    }

    fn draw(&mut self, text: &str) -> Mask {
        let (font, px) = (self.font, self.px);
        let mut placed = Vec::with_capacity(text.len());
        let mut pen = 0.0f32;
        for c in text.chars() {
            let (metrics, _) = self
                .glyphs
                .entry(c)
                .or_insert_with(|| font.rasterize(c, px));
            placed.push((c, pen));
            pen += metrics.advance_width;
        }
        let width = pen.ceil().max(0.0) as usize;
        let mut mask = Mask {
            width,
            height: self.height,
            data: vec![0; width * self.height],
        };
        for (c, pen) in placed {
            let Some((m, bitmap)) = self.glyphs.get(&c) else {
                continue;
            };
            let x0 = (pen + m.xmin as f32).round() as i64;
            let y0 = (self.ascent - m.ymin as f32 - m.height as f32).round() as i64;
            for gy in 0..m.height {
                let y = y0 + gy as i64;
                if y < 0 || y >= mask.height as i64 {
                    continue;
                }
                for gx in 0..m.width {
                    let x = x0 + gx as i64;
                    if x < 0 || x >= mask.width as i64 {
                        continue;
                    }
                    let dst = &mut mask.data[y as usize * mask.width + x as usize];
                    *dst = (*dst).max(bitmap[gy * m.width + gx]);
                }
            }
        }
        mask
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ink(m: &Mask) -> usize {
        m.data.iter().filter(|&&v| v > 128).count()
    }

    #[test]
    fn the_embedded_font_draws_glyphs() {
        let mut r = TextRenderer::new(20).unwrap();
        let m = r.render("person 0.87");
        assert!(m.height >= 20 && m.height <= 28, "{}", m.height);
        assert!(m.width > 80 && m.width < 160, "{}", m.width);
        assert!(ink(&m) > 150, "{}", ink(&m));
        assert_eq!(r.render(" ").data.iter().filter(|&&v| v > 0).count(), 0);
        assert!(r.render("").width == 0);
    }

    #[test]
    fn bigger_text_is_bigger_and_every_character_has_ink() {
        let mut small = TextRenderer::new(11).unwrap();
        let mut big = TextRenderer::new(36).unwrap();
        let (s, b) = (small.render("car"), big.render("car"));
        assert!(b.width > 2 * s.width && b.height > 2 * s.height);
        for c in "AZaz09.:#ÄöçŁΩЖ€?".chars() {
            assert!(ink(&big.render(&c.to_string())) > 10, "no glyph for {c}");
        }
    }

    #[test]
    fn glyphs_stay_on_their_line() {
        let mut r = TextRenderer::new(24).unwrap();
        let m = r.render("gjpqy ÁÉ|");
        // Descenders and accents reach the bottom and the top rows, and nothing is cut off.
        let row_ink = |y: usize| {
            m.data[y * m.width..(y + 1) * m.width]
                .iter()
                .any(|&v| v > 0)
        };
        assert!(row_ink(m.height - 1) || row_ink(m.height - 2));
        assert!(row_ink(0) || row_ink(1));
    }
}
