//! Counting lines and zones, as a counting element (`ovanalytics`) attaches them to every frame
//! ([`crate::meta::ANALYTICS_META`]), drawn with their counts:
//!
//! * a line: a segment twice the box line width, with an arrow from its middle for each counted
//!   direction, pointing to the side a crossing in that direction goes to, the direction's count
//!   at the arrow's tip, and a label "name: total" centred on its first point;
//! * a zone: its outline, and a label "name: count" (objects inside now) at its top corner.
//!
//! Each rule takes the colour `label-colors` gives its name, else a palette colour picked from
//! its name.

use super::annotate::{Style, draw_line, inside_frame, label_size, place_label};
use super::surface::{Pt, Rgb, Surface};
use super::text::TextRenderer;
use crate::meta::{AnalyticsInfo, LineInfo, ZoneInfo};

/// A point normalised to the frame, in frame pixels.
fn to_pixels(p: (f64, f64), frame: (usize, usize)) -> Pt {
    Pt::new(p.0 * frame.0 as f64, p.1 * frame.1 as f64)
}

/// The directions a line counts, each as the unit vector (in pixels) towards the side a
/// crossing in that direction goes to, with its count: clockwise first. Seen on the screen,
/// clockwise goes from the left of A→B to its right.
pub fn arrows(line: &LineInfo, frame: (usize, usize)) -> Vec<(Pt, u64)> {
    let (a, b) = (to_pixels(line.a, frame), to_pixels(line.b, frame));
    let (dx, dy) = (b.x - a.x, b.y - a.y);
    let len = dx.hypot(dy);
    if !(len > 0.0 && len.is_finite()) {
        return Vec::new();
    }
    let right = Pt::new(-dy / len, dx / len);
    let mut out = Vec::new();
    if line.counted.clockwise() {
        out.push((right, line.clockwise));
    }
    if line.counted.counterclockwise() {
        out.push((Pt::new(-right.x, -right.y), line.counterclockwise));
    }
    out
}

/// An arrow from `from` along the unit vector `dir`, `length` pixels long: its shaft (from, end)
/// and its head (a triangle whose first corner is the tip).
pub fn arrow(from: Pt, dir: Pt, length: f64) -> ((Pt, Pt), [Pt; 3]) {
    let along = |p: Pt, k: f64| Pt::new(p.x + k * dir.x, p.y + k * dir.y);
    let side = Pt::new(-dir.y, dir.x);
    let (head, half) = (0.45 * length, 0.3 * length);
    let tip = along(from, length);
    let base = along(from, length - head);
    let corner = |k: f64| Pt::new(base.x + k * side.x, base.y + k * side.y);
    ((from, base), [tip, corner(half), corner(-half)])
}

/// The label text of a line: "name: total".
pub fn line_label(line: &LineInfo) -> String {
    format!("{}: {}", line.name, line.total())
}

/// The label text of a zone: "name: objects inside now".
pub fn zone_label(zone: &ZoneInfo) -> String {
    format!("{}: {}", zone.name, zone.count)
}

/// Top-left corner of a `w`x`h` label just beyond `tip` in the direction `dir`.
fn beyond(tip: Pt, dir: Pt, gap: f64, w: usize, h: usize) -> (i64, i64) {
    let (w, h) = (w as f64, h as f64);
    let reach = gap + (dir.x.abs() * w + dir.y.abs() * h) / 2.0;
    let centre = Pt::new(tip.x + reach * dir.x, tip.y + reach * dir.y);
    (
        (centre.x - w / 2.0).round() as i64,
        (centre.y - h / 2.0).round() as i64,
    )
}

fn draw_counting_line(
    surface: &mut Surface,
    line: &LineInfo,
    style: &Style<'_>,
    text: &mut TextRenderer,
) {
    let frame = (surface.width(), surface.height());
    let colour = style.colours.of(&line.name, -1);
    let width = 2.0 * f64::from(style.line_width.max(1));
    let (a, b) = (to_pixels(line.a, frame), to_pixels(line.b, frame));
    surface.line(a, b, width, colour);
    let middle = Pt::new((a.x + b.x) / 2.0, (a.y + b.y) / 2.0);
    let length = (1.5 * text.px() as f64).max(12.0);
    let mut counts = Vec::new();
    for (dir, count) in arrows(line, frame) {
        let ((from, to), head) = arrow(middle, dir, length);
        surface.line(from, to, width / 2.0, colour);
        surface.fill_convex(&head, colour);
        counts.push((head[0], dir, count));
    }
    if !style.show_labels {
        return;
    }
    for (tip, dir, count) in counts {
        label(surface, text, &count.to_string(), colour, |w, h| {
            let (x, y) = beyond(tip, dir, 2.0, w, h);
            inside_frame(frame, x, y, w, h)
        });
    }
    label(surface, text, &line_label(line), colour, |w, h| {
        let (x, y) = (a.x.round() as i64, a.y.round() as i64);
        inside_frame(frame, x - w as i64 / 2, y - h as i64 / 2, w, h)
    });
}

/// Draws a one-line label of `colour` where `place` puts a label of its size (top-left corner).
fn label(
    surface: &mut Surface,
    text: &mut TextRenderer,
    line: &str,
    colour: Rgb,
    place: impl FnOnce(usize, usize) -> (i64, i64),
) {
    let mask = text.render(line);
    let (w, h) = label_size(text, mask.width);
    draw_line(surface, text, &mask, place(w, h), colour);
}

fn draw_zone(surface: &mut Surface, zone: &ZoneInfo, style: &Style<'_>, text: &mut TextRenderer) {
    let frame = (surface.width(), surface.height());
    let colour = style.colours.of(&zone.name, -1);
    let mut outline: Vec<Pt> = zone.polygon.iter().map(|&p| to_pixels(p, frame)).collect();
    let Some(&first) = outline.first() else {
        return;
    };
    outline.push(first);
    surface.polyline(&outline, f64::from(style.line_width.max(1)), colour);
    if !style.show_labels {
        return;
    }
    // The label goes above the top corner (the leftmost of the top ones).
    let top = outline
        .iter()
        .fold(first, |t, &p| if (p.y, p.x) < (t.y, t.x) { p } else { t });
    label(surface, text, &zone_label(zone), colour, |w, h| {
        place_label(frame, top.x.round() as i64, top.y.round() as i64, w, h)
    });
}

/// Draws the zones, then the lines, of every counting element's meta.
pub fn draw(
    surface: &mut Surface,
    infos: &[AnalyticsInfo],
    style: &Style<'_>,
    text: &mut TextRenderer,
) {
    for zone in infos.iter().flat_map(|i| &i.zones) {
        draw_zone(surface, zone, style, text);
    }
    for line in infos.iter().flat_map(|i| &i.lines) {
        draw_counting_line(surface, line, style, text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::Counted;

    fn line(counted: Counted) -> LineInfo {
        LineInfo {
            name: "door".into(),
            a: (0.5, 0.0),
            b: (0.5, 1.0),
            counted,
            clockwise: 2,
            counterclockwise: 5,
        }
    }

    #[test]
    fn arrows_point_where_each_counted_direction_goes() {
        // Drawn top to bottom: clockwise goes right to left, counterclockwise left to right.
        let both = arrows(&line(Counted::Both), (200, 100));
        assert_eq!(both, [(Pt::new(-1.0, 0.0), 2), (Pt::new(1.0, 0.0), 5)]);
        assert_eq!(
            arrows(&line(Counted::Counterclockwise), (200, 100)),
            [(Pt::new(1.0, 0.0), 5)]
        );
        // Drawn left to right: clockwise goes down.
        let mut flat = line(Counted::Clockwise);
        (flat.a, flat.b) = ((0.0, 0.5), (1.0, 0.5));
        assert_eq!(arrows(&flat, (200, 100)), [(Pt::new(0.0, 1.0), 2)]);
        // A line of no length (or not finite) has no direction.
        flat.b = flat.a;
        assert!(arrows(&flat, (200, 100)).is_empty());
        flat.b = (f64::NAN, 0.5);
        assert!(arrows(&flat, (200, 100)).is_empty());
    }

    #[test]
    fn arrow_shape_and_labels() {
        let ((from, to), head) = arrow(Pt::new(10.0, 10.0), Pt::new(1.0, 0.0), 20.0);
        assert_eq!((from, to), (Pt::new(10.0, 10.0), Pt::new(21.0, 10.0)));
        assert_eq!(
            head,
            [Pt::new(30.0, 10.0), Pt::new(21.0, 16.0), Pt::new(21.0, 4.0)]
        );
        assert_eq!(line_label(&line(Counted::Both)), "door: 7");
        let zone = ZoneInfo {
            name: "lot".into(),
            polygon: vec![(0.0, 0.0), (1.0, 0.0), (1.0, 1.0)],
            count: 3,
        };
        assert_eq!(zone_label(&zone), "lot: 3");
        // A label beyond a tip pointing right starts after the gap; pointing up, ends above.
        assert_eq!(
            beyond(Pt::new(30.0, 10.0), Pt::new(1.0, 0.0), 2.0, 10, 6),
            (32, 7)
        );
        assert_eq!(
            beyond(Pt::new(30.0, 10.0), Pt::new(0.0, -1.0), 2.0, 10, 6),
            (25, 2)
        );
    }
}
