//! The analytics rules: lines and zones in normalised frame coordinates, read from JSON and
//! validated with errors that name the rule and say how to fix it.
//!
//! ```json
//! {
//!   "lines": [{"name": "door", "points": [[0.5, 0.0], [0.5, 1.0]],
//!              "direction": "both", "labels": ["person"]}],
//!   "zones": [{"name": "lot", "polygon": [[0.1, 0.5], [0.9, 0.5], [0.9, 1.0], [0.1, 1.0]]}]
//! }
//! ```

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use serde_json::{Map, Value};

/// A point in normalised frame coordinates: x to the right, y down, both 0..1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
}

impl Point {
    pub fn new(x: f64, y: f64) -> Point {
        Point { x, y }
    }
}

/// Which crossings of a line are counted and reported (also carried by the overlay meta).
pub use crate::meta::Counted;

/// A counting line: a segment from `a` to `b` (the order defines the direction names).
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub name: String,
    pub a: Point,
    pub b: Point,
    pub counted: Counted,
    /// Only objects with one of these labels; empty: every object.
    pub labels: Vec<String>,
}

/// A zone: a simple polygon (at least 3 corners, edges not crossing).
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    pub name: String,
    pub polygon: Vec<Point>,
    /// Only objects with one of these labels; empty: every object.
    pub labels: Vec<String>,
}

/// Every rule of an element.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rules {
    pub lines: Vec<Line>,
    pub zones: Vec<Zone>,
}

/// Why rules were refused; the text names the rule and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesError(pub String);

impl fmt::Display for RulesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RulesError {}

fn err<T>(text: String) -> Result<T, RulesError> {
    Err(RulesError(text))
}

/// Whether `label` passes a rule's `labels` filter.
pub fn label_matches(labels: &[String], label: &str) -> bool {
    labels.is_empty() || labels.iter().any(|l| l == label)
}

impl Rules {
    /// Rules from a file holding the JSON text.
    pub fn from_file(path: &Path) -> Result<Rules, RulesError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            RulesError(format!(
                "cannot read the rules file {}: {e}; set rules-file to a readable JSON file \
                 (or give the rules inline with the rules property)",
                path.display()
            ))
        })?;
        Rules::from_json(&text).map_err(|e| RulesError(format!("{}: {e}", path.display())))
    }

    /// Rules from JSON text: `{"lines": [...], "zones": [...]}`.
    pub fn from_json(text: &str) -> Result<Rules, RulesError> {
        let value: Value = serde_json::from_str(text).map_err(|e| {
            RulesError(format!(
                "the rules are not valid JSON ({e}); write them as \
                 {{\"lines\": [...], \"zones\": [...]}}"
            ))
        })?;
        let Value::Object(top) = value else {
            return err(
                "the rules must be a JSON object: {\"lines\": [...], \"zones\": [...]}".to_string(),
            );
        };
        check_keys(&top, &["lines", "zones"], "the top level of the rules")?;
        let mut rules = Rules::default();
        let mut names = BTreeSet::new();
        for (i, v) in list(&top, "lines")?.iter().enumerate() {
            let line = line(i, v)?;
            if !names.insert(line.name.clone()) {
                return err(format!(
                    "line \"{}\": the name is used twice; give every line and zone its own name",
                    line.name
                ));
            }
            rules.lines.push(line);
        }
        for (i, v) in list(&top, "zones")?.iter().enumerate() {
            let zone = zone(i, v)?;
            if !names.insert(zone.name.clone()) {
                return err(format!(
                    "zone \"{}\": the name is used twice; give every line and zone its own name",
                    zone.name
                ));
            }
            rules.zones.push(zone);
        }
        if rules.lines.is_empty() && rules.zones.is_empty() {
            return err(
                "the rules have no line and no zone; add at least one to \"lines\" or \"zones\""
                    .to_string(),
            );
        }
        Ok(rules)
    }
}

fn list<'a>(top: &'a Map<String, Value>, key: &str) -> Result<&'a [Value], RulesError> {
    match top.get(key) {
        None => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => err(format!(
            "\"{key}\" must be a list of rules: \"{key}\": [{{...}}, ...]"
        )),
    }
}

fn check_keys(obj: &Map<String, Value>, allowed: &[&str], what: &str) -> Result<(), RulesError> {
    for key in obj.keys() {
        if !allowed.contains(&key.as_str()) {
            let allowed: Vec<_> = allowed.iter().map(|k| format!("\"{k}\"")).collect();
            return err(format!(
                "{what}: unknown key \"{key}\"; the keys are {}",
                allowed.join(", ")
            ));
        }
    }
    Ok(())
}

/// The rule's object and its name (what error texts call it).
fn named<'a>(
    kind: &str,
    list: &str,
    i: usize,
    v: &'a Value,
) -> Result<(&'a Map<String, Value>, String), RulesError> {
    let Value::Object(obj) = v else {
        return err(format!(
            "{list}[{i}]: a {kind} must be an object such as {{\"name\": \"door\", ...}}"
        ));
    };
    match obj.get("name") {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok((obj, s.clone())),
        _ => err(format!(
            "{list}[{i}]: the {kind} has no name; give it one with \"name\": \"...\" (a \
             non-empty string)"
        )),
    }
}

fn point(what: &str, v: &Value) -> Result<Point, RulesError> {
    let coords = match v {
        Value::Array(a) if a.len() == 2 => a.iter().map(Value::as_f64).collect::<Option<Vec<_>>>(),
        _ => None,
    };
    let Some(c) = coords else {
        return err(format!(
            "{what}: {v} is not a point; write a point as [x, y], two numbers from 0 to 1"
        ));
    };
    for c in &c {
        if !(0.0..=1.0).contains(c) {
            return err(format!(
                "{what}: the point {v} is outside the frame; coordinates are normalised, from 0 \
                 (left, top) to 1 (right, bottom)"
            ));
        }
    }
    Ok(Point::new(c[0], c[1]))
}

fn labels(what: &str, obj: &Map<String, Value>) -> Result<Vec<String>, RulesError> {
    let Some(v) = obj.get("labels") else {
        return Ok(Vec::new());
    };
    let fix = || {
        RulesError(format!(
            "{what}: \"labels\" must be a list of non-empty strings, e.g. [\"person\", \"car\"] \
             (leave it out to count every object)"
        ))
    };
    let Value::Array(a) = v else {
        return Err(fix());
    };
    a.iter()
        .map(|l| match l {
            Value::String(s) if !s.is_empty() => Ok(s.clone()),
            _ => Err(fix()),
        })
        .collect()
}

fn line(i: usize, v: &Value) -> Result<Line, RulesError> {
    let (obj, name) = named("line", "lines", i, v)?;
    let what = format!("line \"{name}\"");
    check_keys(obj, &["name", "points", "direction", "labels"], &what)?;
    let points = match obj.get("points") {
        Some(Value::Array(a)) => a,
        _ => {
            return err(format!(
                "{what}: no \"points\"; a line needs exactly 2 points, e.g. \"points\": [[0.5, \
                 0.0], [0.5, 1.0]]"
            ));
        }
    };
    if points.len() != 2 {
        let n = points.len();
        let s = if n == 1 { "" } else { "s" };
        return err(format!(
            "{what}: has {n} point{s}; a line needs exactly 2 points, e.g. \"points\": [[0.5, \
             0.0], [0.5, 1.0]]"
        ));
    }
    let (a, b) = (point(&what, &points[0])?, point(&what, &points[1])?);
    if a == b {
        return err(format!(
            "{what}: both points are the same; give two different points"
        ));
    }
    let counted = match obj.get("direction") {
        None => Counted::Both,
        Some(v) => match v.as_str().and_then(Counted::from_name) {
            Some(counted) => counted,
            None => {
                return err(format!(
                    "{what}: unknown direction {v}; use \"both\", \"clockwise\" or \
                     \"counterclockwise\""
                ));
            }
        },
    };
    Ok(Line {
        labels: labels(&what, obj)?,
        name,
        a,
        b,
        counted,
    })
}

fn zone(i: usize, v: &Value) -> Result<Zone, RulesError> {
    let (obj, name) = named("zone", "zones", i, v)?;
    let what = format!("zone \"{name}\"");
    check_keys(obj, &["name", "polygon", "labels"], &what)?;
    let corners = match obj.get("polygon") {
        Some(Value::Array(a)) => a,
        _ => {
            return err(format!(
                "{what}: no \"polygon\"; a zone needs at least 3 corners, e.g. \"polygon\": \
                 [[0.1, 0.5], [0.9, 0.5], [0.5, 1.0]]"
            ));
        }
    };
    if corners.len() < 3 {
        return err(format!(
            "{what}: its polygon has {} corner(s); a zone needs at least 3, e.g. \"polygon\": \
             [[0.1, 0.5], [0.9, 0.5], [0.5, 1.0]]",
            corners.len()
        ));
    }
    let polygon = corners
        .iter()
        .map(|c| point(&what, c))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some((e1, e2)) = self_intersection(&polygon) {
        let n = polygon.len();
        return err(format!(
            "{what}: its polygon intersects itself (edge {} from corner {} to {} meets edge {} \
             from corner {} to {}); list the corners in order around the outline",
            e1 + 1,
            e1 + 1,
            (e1 + 1) % n + 1,
            e2 + 1,
            e2 + 1,
            (e2 + 1) % n + 1,
        ));
    }
    if area(&polygon).abs() < 1e-12 {
        return err(format!(
            "{what}: its polygon has no area (its corners are on one line); give corners that \
             enclose a region"
        ));
    }
    Ok(Zone {
        labels: labels(&what, obj)?,
        name,
        polygon,
    })
}

/// Twice the signed area (shoelace).
fn area(p: &[Point]) -> f64 {
    (0..p.len())
        .map(|i| {
            let (a, b) = (p[i], p[(i + 1) % p.len()]);
            a.x * b.y - b.x * a.y
        })
        .sum()
}

/// `(b - a) × (c - a)`: > 0 when c is right of a→b on screen (y down), < 0 left, 0 on the line.
pub fn cross(a: Point, b: Point, c: Point) -> f64 {
    (b.x - a.x) * (c.y - a.y) - (b.y - a.y) * (c.x - a.x)
}

fn on_segment(a: Point, b: Point, c: Point) -> bool {
    c.x >= a.x.min(b.x) && c.x <= a.x.max(b.x) && c.y >= a.y.min(b.y) && c.y <= a.y.max(b.y)
}

/// Whether the closed segments p1-p2 and q1-q2 have a point in common.
pub fn segments_meet(p1: Point, p2: Point, q1: Point, q2: Point) -> bool {
    let (d1, d2) = (cross(q1, q2, p1), cross(q1, q2, p2));
    let (d3, d4) = (cross(p1, p2, q1), cross(p1, p2, q2));
    if ((d1 > 0.0 && d2 < 0.0) || (d1 < 0.0 && d2 > 0.0))
        && ((d3 > 0.0 && d4 < 0.0) || (d3 < 0.0 && d4 > 0.0))
    {
        return true;
    }
    (d1 == 0.0 && on_segment(q1, q2, p1))
        || (d2 == 0.0 && on_segment(q1, q2, p2))
        || (d3 == 0.0 && on_segment(p1, p2, q1))
        || (d4 == 0.0 && on_segment(p1, p2, q2))
}

/// The first pair of edges (by index; edge i goes from corner i to i+1) that meet although
/// they are not neighbours, or neighbours that fold back onto each other.
fn self_intersection(p: &[Point]) -> Option<(usize, usize)> {
    let n = p.len();
    for i in 0..n {
        for j in i + 1..n {
            let (a1, a2, b1, b2) = (p[i], p[(i + 1) % n], p[j], p[(j + 1) % n]);
            let neighbours = j == i + 1 || (i == 0 && j == n - 1);
            if neighbours {
                // They share a corner; they overlap only when collinear and folding back.
                let (shared, x, y) = if j == i + 1 {
                    (a2, a1, b2)
                } else {
                    (a1, a2, b1)
                };
                if cross(shared, x, y) == 0.0 {
                    let dot =
                        (x.x - shared.x) * (y.x - shared.x) + (x.y - shared.y) * (y.y - shared.y);
                    if dot > 0.0 {
                        return Some((i, j));
                    }
                }
                if a1 == a2 || b1 == b2 {
                    return Some((i, j));
                }
            } else if segments_meet(a1, a2, b1, b2) {
                return Some((i, j));
            }
        }
    }
    None
}

/// Whether `c` is inside the polygon (even-odd rule; a point exactly on an edge counts as inside).
pub fn inside(polygon: &[Point], c: Point) -> bool {
    let n = polygon.len();
    let mut inside = false;
    for i in 0..n {
        let (a, b) = (polygon[i], polygon[(i + 1) % n]);
        if cross(a, b, c) == 0.0 && on_segment(a, b, c) {
            return true;
        }
        if (a.y > c.y) != (b.y > c.y) {
            let x = a.x + (c.y - a.y) * (b.x - a.x) / (b.y - a.y);
            if c.x < x {
                inside = !inside;
            }
        }
    }
    inside
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        Rules::from_json(text).expect_err("refused").0
    }

    #[test]
    fn reads_lines_and_zones() {
        let r = Rules::from_json(
            r#"{"lines": [{"name": "door", "points": [[0.5, 0], [0.5, 1]],
                           "direction": "clockwise", "labels": ["person"]}],
                "zones": [{"name": "lot", "polygon": [[0.1, 0.5], [0.9, 0.5], [0.5, 1.0]]}]}"#,
        )
        .unwrap();
        assert_eq!(
            r.lines,
            vec![Line {
                name: "door".into(),
                a: Point::new(0.5, 0.0),
                b: Point::new(0.5, 1.0),
                counted: Counted::Clockwise,
                labels: vec!["person".into()],
            }]
        );
        assert_eq!(r.zones.len(), 1);
        assert_eq!(r.zones[0].polygon.len(), 3);
        assert!(r.zones[0].labels.is_empty());
    }

    #[test]
    fn errors_name_the_rule_and_the_fix() {
        let e = error(r#"{"lines": [{"name": "door", "points": [[0.5, 0]]}]}"#);
        assert!(
            e.starts_with("line \"door\": has 1 point; a line needs exactly 2 points"),
            "{e}"
        );
        let e = error(
            r#"{"zones": [{"name": "bow", "polygon": [[0.1,0.1],[0.9,0.9],[0.9,0.1],[0.1,0.9]]}]}"#,
        );
        assert!(e.starts_with("zone \"bow\": its polygon intersects itself (edge 1 from corner 1 to 2 meets edge 3 from corner 3 to 4); list the corners in order"), "{e}");
        let e = error(r#"{"lines": [{"name": "far", "points": [[0.5, 0], [1.5, 1]]}]}"#);
        assert!(
            e.starts_with(
                "line \"far\": the point [1.5,1] is outside the frame; coordinates are normalised"
            ),
            "{e}"
        );
        let e = error(r#"{"lines": [{"name": "door", "points": [[0, 0], [1, 1]], "colour": 1}]}"#);
        assert_eq!(
            e,
            "line \"door\": unknown key \"colour\"; the keys are \"name\", \"points\", \"direction\", \"labels\""
        );
        let e = error(r#"{"line": []}"#);
        assert_eq!(
            e,
            "the top level of the rules: unknown key \"line\"; the keys are \"lines\", \"zones\""
        );
        let e = error(r#"{"zones": [{"name": "z", "polygon": [[0, 0], [1, 1]]}]}"#);
        assert!(
            e.starts_with("zone \"z\": its polygon has 2 corner(s); a zone needs at least 3"),
            "{e}"
        );
        let e = error(r#"{"zones": [{"polygon": [[0, 0], [1, 1], [1, 0]]}]}"#);
        assert!(e.starts_with("zones[0]: the zone has no name"), "{e}");
        let e =
            error(r#"{"lines": [{"name": "d", "points": [[0, 0], [1, 1]], "direction": "up"}]}"#);
        assert!(
            e.contains("unknown direction \"up\"; use \"both\", \"clockwise\""),
            "{e}"
        );
        let e = error(
            r#"{"lines": [{"name": "d", "points": [[0, 0], [1, 1]]}],
                          "zones": [{"name": "d", "polygon": [[0, 0], [1, 1], [1, 0]]}]}"#,
        );
        assert!(e.starts_with("zone \"d\": the name is used twice"), "{e}");
        assert!(error("{").starts_with("the rules are not valid JSON"));
        assert!(error("{}").contains("no line and no zone"));
        let e = error(r#"{"zones": [{"name": "flat", "polygon": [[0, 0], [0.5, 0.5], [1, 1]]}]}"#);
        assert!(e.starts_with("zone \"flat\""), "{e}");
        let e = error(r#"{"lines": [{"name": "d", "points": [[0, 0], [1, 1]], "labels": "car"}]}"#);
        assert!(
            e.starts_with("line \"d\": \"labels\" must be a list"),
            "{e}"
        );
    }

    #[test]
    fn unreadable_file_names_the_file() {
        let e = Rules::from_file(Path::new("/nonexistent/rules.json"))
            .unwrap_err()
            .0;
        assert!(
            e.starts_with("cannot read the rules file /nonexistent/rules.json: "),
            "{e}"
        );
        assert!(e.contains("set rules-file to a readable JSON file"), "{e}");
    }

    #[test]
    fn point_in_polygon_and_segments() {
        let square = [
            Point::new(0.2, 0.2),
            Point::new(0.6, 0.2),
            Point::new(0.6, 0.6),
            Point::new(0.2, 0.6),
        ];
        assert!(inside(&square, Point::new(0.4, 0.4)));
        assert!(inside(&square, Point::new(0.2, 0.4)));
        assert!(!inside(&square, Point::new(0.7, 0.4)));
        assert!(!inside(&square, Point::new(0.4, 0.1)));
        let o = Point::new(0.0, 0.0);
        assert!(segments_meet(
            o,
            Point::new(1.0, 1.0),
            Point::new(0.0, 1.0),
            Point::new(1.0, 0.0)
        ));
        assert!(!segments_meet(
            o,
            Point::new(0.4, 0.4),
            Point::new(0.0, 1.0),
            Point::new(1.0, 0.0)
        ));
        // right of a→b on screen (y down) is positive
        assert!(cross(o, Point::new(1.0, 0.0), Point::new(0.5, 0.5)) > 0.0);
    }
}
