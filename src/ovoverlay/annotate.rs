//! What `ovoverlay` draws on a frame: each object's box (dashed when a tracker predicted it) with
//! its label line (label, confidence, tracking id) and attribute lines, and the whole-frame
//! classifications as a caption at the top. Colours, texts and label placement are decided
//! here; the pixels are written by `surface`. Counting lines and zones are in `analytics`, track
//! trails in `trails`.

use std::collections::HashMap;

use super::surface::{Mask, Rect, Rgb, Surface};
use super::text::TextRenderer;
use crate::meta::{FrameClassification, Roi};

/// Distinct colours for labels, picked by label id.
const PALETTE: [Rgb; 12] = [
    Rgb(0xe6, 0x19, 0x4b),
    Rgb(0x3c, 0xb4, 0x4b),
    Rgb(0xff, 0xe1, 0x19),
    Rgb(0x43, 0x63, 0xd8),
    Rgb(0xf5, 0x82, 0x31),
    Rgb(0x91, 0x1e, 0xb4),
    Rgb(0x46, 0xf0, 0xf0),
    Rgb(0xf0, 0x32, 0xe6),
    Rgb(0xbc, 0xf6, 0x0c),
    Rgb(0x00, 0x80, 0x80),
    Rgb(0x9a, 0x63, 0x24),
    Rgb(0x80, 0x00, 0x00),
];

const NAMED: [(&str, Rgb); 9] = [
    ("red", Rgb(255, 0, 0)),
    ("green", Rgb(0, 255, 0)),
    ("blue", Rgb(0, 0, 255)),
    ("yellow", Rgb(255, 255, 0)),
    ("cyan", Rgb(0, 255, 255)),
    ("magenta", Rgb(255, 0, 255)),
    ("orange", Rgb(255, 165, 0)),
    ("white", Rgb(255, 255, 255)),
    ("black", Rgb(0, 0, 0)),
];

/// A colour from `RRGGBB`, `#RRGGBB`, `0xRRGGBB` or a basic name (red, green, blue, yellow,
/// cyan, magenta, orange, white, black).
pub fn parse_colour(s: &str) -> Result<Rgb, String> {
    let t = s.trim();
    if let Some((_, c)) = NAMED.iter().find(|(n, _)| n.eq_ignore_ascii_case(t)) {
        return Ok(*c);
    }
    let hex = t
        .strip_prefix('#')
        .or_else(|| t.strip_prefix("0x"))
        .unwrap_or(t);
    match (hex.len(), u32::from_str_radix(hex, 16)) {
        (6, Ok(v)) => Ok(Rgb((v >> 16) as u8, (v >> 8) as u8, v as u8)),
        _ => Err(format!(
            "'{s}' is not a colour: use RRGGBB in hex (e.g. ff8800) or a basic name"
        )),
    }
}

/// Which colour each label gets.
#[derive(Debug, Clone, PartialEq)]
pub struct Colours {
    palette: Vec<Rgb>,
    by_label: HashMap<String, Rgb>,
}

impl Default for Colours {
    fn default() -> Self {
        Colours {
            palette: PALETTE.to_vec(),
            by_label: HashMap::new(),
        }
    }
}

impl Colours {
    /// From the `palette` ("c1,c2,...") and `label-colors` ("label=c,...") properties.
    pub fn parse(palette: Option<&str>, label_colours: Option<&str>) -> Result<Colours, String> {
        let mut colours = Colours::default();
        if let Some(p) = palette {
            colours.palette = p
                .split(',')
                .map(parse_colour)
                .collect::<Result<_, _>>()
                .map_err(|e| format!("palette: {e}"))?;
        }
        for entry in label_colours.iter().flat_map(|l| l.split(',')) {
            let (label, colour) = entry.rsplit_once('=').ok_or_else(|| {
                format!("label-colors: '{entry}' is not label=colour (e.g. person=ff0000)")
            })?;
            let colour = parse_colour(colour).map_err(|e| format!("label-colors: {e}"))?;
            colours.by_label.insert(label.trim().to_string(), colour);
        }
        Ok(colours)
    }

    /// The colour of a label: its own if set, else from the palette by label id (by a hash of
    /// the label when the id is unknown), so it stays the same across frames and runs.
    pub fn of(&self, label: &str, label_id: i32) -> Rgb {
        if let Some(c) = self.by_label.get(label) {
            return *c;
        }
        self.pick(u64::try_from(label_id).unwrap_or_else(|_| hash(label)))
    }

    /// The colour of a track: from the palette by its id (a number; any other id by a hash),
    /// so that neighbouring tracks differ and a track keeps its colour.
    pub fn of_track(&self, id: &str) -> Rgb {
        self.pick(id.parse::<u64>().unwrap_or_else(|_| hash(id)))
    }

    fn pick(&self, index: u64) -> Rgb {
        self.palette[(index % self.palette.len() as u64) as usize]
    }
}

/// FNV-1a: stable across runs and platforms.
fn hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

/// Box line width for a frame height when the property is 0 (auto): 2 px up to 720 lines, then
/// about one per 360 lines.
pub fn auto_line_width(height: u32) -> u32 {
    (height / 360).max(2)
}

/// Text size for a frame height when the property is 0 (auto): 1/40 of the height, 11 to 72 px.
pub fn auto_font_px(height: u32) -> u32 {
    (height / 40).clamp(11, 72)
}

/// Dash length of a predicted box's outline for a line width: 3 widths, at least 6 px.
pub fn dash_length(line_width: u32) -> i64 {
    (3 * line_width as i64).max(6)
}

/// How objects are drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct Style<'a> {
    pub line_width: u32,
    pub show_labels: bool,
    pub show_confidence: bool,
    pub colours: &'a Colours,
}

fn with_confidence(text: String, confidence: Option<f64>, show: bool) -> String {
    match confidence {
        Some(c) if show && c.is_finite() => format!("{text} {c:.2}"),
        _ => text,
    }
}

/// The label's name and id for an object.
fn object_label(roi: &Roi) -> (&str, i32) {
    match &roi.detection {
        Some(d) if !d.label.is_empty() => (&d.label, d.label_id),
        Some(d) => (&roi.roi_type, d.label_id),
        None => (&roi.roi_type, -1),
    }
}

/// The text lines of an object: "label 0.87 #id", then "name: value 0.75" per attribute.
pub fn object_lines(roi: &Roi, show_confidence: bool) -> Vec<String> {
    let (label, _) = object_label(roi);
    let mut first = with_confidence(
        label.to_string(),
        roi.detection.as_ref().map(|d| d.confidence),
        show_confidence,
    );
    if let Some(id) = roi.tracking_id() {
        first = format!("{first} #{id}");
    }
    let mut lines = vec![first];
    lines.extend(roi.attribute_infos().into_iter().map(|a| {
        with_confidence(
            format!("{}: {}", a.name, a.label),
            a.confidence,
            show_confidence,
        )
    }));
    lines
}

/// Top-left corner of a `w`x`h` label for an object whose box starts at (x, y): just above the
/// box, or inside its top when there is no room above; always inside the frame when it fits.
pub fn place_label(frame: (usize, usize), x: i64, y: i64, w: usize, h: usize) -> (i64, i64) {
    let ly = if y - h as i64 >= 0 { y - h as i64 } else { y };
    inside_frame(frame, x, ly, w, h)
}

/// The top-left corner (x, y) of a `w`x`h` label moved, as little as needed, to be inside the
/// frame (to its top-left corner when it is bigger than the frame).
pub fn inside_frame(frame: (usize, usize), x: i64, y: i64, w: usize, h: usize) -> (i64, i64) {
    let (fw, fh) = (frame.0 as i64, frame.1 as i64);
    (x.min(fw - w as i64).max(0), y.min(fh - h as i64).max(0))
}

/// A rendered text line on a filled background of `colour`, with its top-left corner at (x, y).
pub(super) fn draw_line(
    surface: &mut Surface,
    text: &TextRenderer,
    mask: &Mask,
    at: (i64, i64),
    colour: Rgb,
) {
    let (x, y, pad) = (at.0, at.1, padding(text));
    let ink = if colour.luma() > 0.55 {
        Rgb(0, 0, 0)
    } else {
        Rgb(255, 255, 255)
    };
    let (w, h) = label_size(text, mask.width);
    surface.fill(
        Rect {
            x,
            y,
            w: w as i64,
            h: h as i64,
        },
        colour,
    );
    surface.blend(x + pad, y + pad, mask, ink);
}

fn padding(text: &TextRenderer) -> i64 {
    (text.px() as i64 / 8).max(1)
}

/// Size of a label whose text is `text_width` wide.
pub(super) fn label_size(text: &TextRenderer, text_width: usize) -> (usize, usize) {
    let pad = padding(text) as usize;
    (text_width + 2 * pad, text.line_height() + 2 * pad)
}

/// Draws every object (a predicted one with a dashed outline) and the caption of whole-frame
/// classifications.
pub fn draw(
    surface: &mut Surface,
    rois: &[Roi],
    classes: &[FrameClassification],
    style: &Style<'_>,
    text: &mut TextRenderer,
) {
    let frame = (surface.width(), surface.height());
    let lw = style.line_width.max(1) as i64;
    for roi in rois {
        let (x, y, w, h) = roi.rect;
        let (x, y, w, h) = (x as i64, y as i64, w as i64, h as i64);
        if w == 0 || h == 0 {
            continue;
        }
        let (label, label_id) = object_label(roi);
        let colour = style.colours.of(label, label_id);
        let dash = if roi.predicted() {
            dash_length(style.line_width)
        } else {
            0
        };
        surface.outline(Rect { x, y, w, h }, lw, dash, colour);
        if !style.show_labels {
            continue;
        }
        let masks: Vec<_> = object_lines(roi, style.show_confidence)
            .iter()
            .map(|l| text.render(l))
            .collect();
        let (lw0, lh) = label_size(text, masks[0].width);
        let (lx, ly) = place_label(frame, x, y, lw0, lh);
        for (i, mask) in masks.iter().enumerate() {
            let line_y = (ly + (i * lh) as i64)
                .min(frame.1 as i64 - lh as i64)
                .max(0);
            draw_line(surface, text, mask, (lx, line_y), colour);
        }
    }
    if style.show_labels {
        let lh = label_size(text, 0).1 as i64;
        for (i, c) in classes.iter().enumerate() {
            let line = with_confidence(c.label.clone(), Some(c.confidence), style.show_confidence);
            let colour = style.colours.of(&c.label, c.label_id);
            let mask = text.render(&line);
            draw_line(surface, text, &mask, (0, i as i64 * lh), colour);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::DetectionInfo;

    fn roi(label: &str, id: i32, confidence: f64) -> Roi {
        Roi {
            roi_type: label.into(),
            rect: (10, 20, 30, 40),
            id: 0,
            detection: Some(DetectionInfo {
                label: label.into(),
                label_id: id,
                confidence,
                bbox: [0.0; 4],
                model: String::new(),
            }),
            attributes: vec![],
        }
    }

    #[test]
    fn colours_parse_and_stay_stable() {
        assert_eq!(parse_colour("ff8800"), Ok(Rgb(255, 136, 0)));
        assert_eq!(parse_colour("#00FF00"), Ok(Rgb(0, 255, 0)));
        assert_eq!(parse_colour("0x0000ff"), Ok(Rgb(0, 0, 255)));
        assert_eq!(parse_colour("Red"), Ok(Rgb(255, 0, 0)));
        assert!(parse_colour("ff88").is_err() && parse_colour("zzzzzz").is_err());

        let c = Colours::parse(Some("ff0000, 00ff00"), Some("person=blue,dog=#123456")).unwrap();
        assert_eq!(c.of("person", 0), Rgb(0, 0, 255));
        assert_eq!(c.of("dog", 7), Rgb(0x12, 0x34, 0x56));
        assert_eq!(c.of("car", 2), Rgb(255, 0, 0));
        assert_eq!(c.of("bus", 3), Rgb(0, 255, 0));
        let d = Colours::default();
        assert_eq!(d.of("x", 1), PALETTE[1]);
        assert_eq!(d.of("x", 13), PALETTE[1]);
        assert_eq!(d.of("face", -1), d.of("face", -1));
        assert_ne!(d.of("car", 3), d.of("person", 1));

        assert!(Colours::parse(Some("ff0000,nope"), None).is_err());
        let e = Colours::parse(None, Some("person")).unwrap_err();
        assert!(e.contains("label=colour"), "{e}");
    }

    #[test]
    fn label_lines() {
        gst::init().unwrap();
        let mut r = roi("person", 1, 0.8712);
        assert_eq!(object_lines(&r, true), vec!["person 0.87"]);
        assert_eq!(object_lines(&r, false), vec!["person"]);
        r.attributes = vec![
            gst::Structure::builder("object_id")
                .field("id", 42i32)
                .build(),
            gst::Structure::builder("color")
                .field("label", "red")
                .field("confidence", 0.75f64)
                .build(),
        ];
        assert_eq!(
            object_lines(&r, true),
            vec!["person 0.87 #42", "color: red 0.75"]
        );
    }

    #[test]
    fn labels_go_above_the_box_or_inside_and_stay_in_the_frame() {
        let frame = (320, 240);
        assert_eq!(place_label(frame, 10, 50, 60, 14), (10, 36));
        assert_eq!(place_label(frame, 10, 5, 60, 14), (10, 5));
        assert_eq!(place_label(frame, 300, 50, 60, 14), (260, 36));
        assert_eq!(place_label(frame, -20, 235, 60, 14), (0, 221));
        assert_eq!(place_label(frame, 10, 10, 400, 14), (0, 10));
    }

    #[test]
    fn automatic_sizes() {
        assert_eq!((auto_line_width(240), auto_font_px(240)), (2, 11));
        assert_eq!((auto_line_width(1080), auto_font_px(1080)), (3, 27));
        assert_eq!((auto_line_width(4320), auto_font_px(4320)), (12, 72));
        assert_eq!(auto_font_px(2160), 54);
    }
}
