//! Per-track state and the events it gives: line crossings, zone entries, exits, occupancy and
//! dwell. Pure logic: frames go in as (time, tracked boxes), events come out.
//!
//! * The reference point of a box is its [`Anchor`] (bottom centre by default).
//! * A **line crossing** happens when a track's reference point, between two frames it is seen
//!   in, goes from one side of the line's segment to the other through the segment (endpoints
//!   included). A point exactly on the line is on neither side: the crossing is counted when
//!   the point leaves the line on the other side from where it came. Seen on the screen (x right,
//!   y down), with the line going from its first point A to its second point B, a crossing is
//!   **clockwise** when the point goes from the left of A→B to its right (it turns clockwise
//!   around A), **counterclockwise** the other way. A vertical line drawn from top to bottom:
//!   left → right is counterclockwise, right → left clockwise. A horizontal line drawn from left to
//!   right: downwards is clockwise.
//! * A track is **in a zone** when its reference point is inside the polygon (an edge counts as
//!   inside). Entering gives `ZoneEnter` (also for a track first seen inside); leaving gives
//!   `ZoneExit` and a final `ZoneDwell`; a track not seen for more than `lost_frames` frames
//!   exits every zone it was in (reason `lost`) and is forgotten. Every change of a zone's count
//!   gives one `ZoneOccupancy` at the end of the frame.
//! * Dwell: from the time of the frame the track entered in to the time of the frame it was seen
//!   outside (for a lost track: the last frame it was seen inside). With a dwell interval, a
//!   `ZoneDwell` also comes each time the dwell so far passes another multiple of it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::Anchor;
use super::rules::{Counted, Point, Rules, cross, inside, label_matches, segments_meet};
use crate::meta::{AnalyticsInfo, LineInfo, ZoneInfo};

/// One tracked object on a frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub object_id: String,
    pub label: String,
    /// Normalised box: x_min, y_min, x_max, y_max.
    pub bbox: [f64; 4],
}

/// The kinds of event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    LineCrossing,
    ZoneEnter,
    ZoneExit,
    ZoneOccupancy,
    ZoneDwell,
}

impl EventKind {
    /// The LVA event name.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::LineCrossing => "LineCrossing",
            EventKind::ZoneEnter => "ZoneEnter",
            EventKind::ZoneExit => "ZoneExit",
            EventKind::ZoneOccupancy => "ZoneOccupancy",
            EventKind::ZoneDwell => "ZoneDwell",
        }
    }
}

/// One event: its kind, its properties (all strings, in this order) and the object ids of the
/// tracks it concerns that are on the frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub kind: EventKind,
    pub properties: Vec<(&'static str, String)>,
    pub related: Vec<String>,
}

impl Event {
    /// A property's value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Counts of one line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineCount {
    pub clockwise: u64,
    pub counterclockwise: u64,
}

impl LineCount {
    pub fn total(&self) -> u64 {
        self.clockwise + self.counterclockwise
    }
}

/// Counts of one zone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZoneCount {
    /// Object ids of the tracks inside now.
    pub inside: BTreeSet<String>,
    pub entries: u64,
    pub exits: u64,
}

/// How the analytics run, besides the rules.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    pub anchor: Anchor,
    /// Nanoseconds between periodic `ZoneDwell` events; 0: only at exit.
    pub dwell_interval: u64,
    /// A track not seen for more than this many frames is lost.
    pub lost_frames: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            anchor: Anchor::BottomCenter,
            dwell_interval: 0,
            lost_frames: 30,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Visit {
    entered: u64,
    last_inside: u64,
    periods: u64,
}

#[derive(Debug, Clone)]
struct Track {
    last_frame: u64,
    /// Per line: the last position off the line and its side (±1).
    off_line: Vec<Option<(Point, i8)>>,
    /// Per zone: the visit while inside.
    visits: Vec<Option<Visit>>,
}

/// The state of the analytics over a stream.
#[derive(Debug, Clone)]
pub struct Analytics {
    rules: Rules,
    config: Config,
    tracks: HashMap<String, Track>,
    lines: Vec<LineCount>,
    zones: Vec<ZoneCount>,
    frame: u64,
    time: u64,
    events: u64,
}

/// The reference point of a box.
pub fn anchor_point(anchor: Anchor, b: [f64; 4]) -> Point {
    let x = (b[0] + b[2]) / 2.0;
    let y = match anchor {
        Anchor::BottomCenter => b[3],
        Anchor::Center => (b[1] + b[3]) / 2.0,
        Anchor::TopCenter => b[1],
    };
    Point::new(x, y)
}

/// Seconds with millisecond precision, as short as possible (`2.5`, `0.04`, `3`).
pub fn seconds(ns: u64) -> String {
    let ms = (ns + 500_000) / 1_000_000;
    format!("{}", ms as f64 / 1000.0)
}

fn sign(v: f64) -> i8 {
    if v > 0.0 {
        1
    } else if v < 0.0 {
        -1
    } else {
        0
    }
}

impl Analytics {
    pub fn new(rules: Rules, config: Config) -> Analytics {
        Analytics {
            lines: vec![LineCount::default(); rules.lines.len()],
            zones: vec![ZoneCount::default(); rules.zones.len()],
            rules,
            config,
            tracks: HashMap::new(),
            frame: 0,
            time: 0,
            events: 0,
        }
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// Counts per line, in the rules' order.
    pub fn line_counts(&self) -> &[LineCount] {
        &self.lines
    }

    /// Counts per zone, in the rules' order.
    pub fn zone_counts(&self) -> &[ZoneCount] {
        &self.zones
    }

    /// Crossings counted on every line.
    pub fn crossings(&self) -> u64 {
        self.lines.iter().map(LineCount::total).sum()
    }

    /// Events given so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// One frame: its time (nanoseconds; `None` keeps the previous frame's) and its tracked
    /// objects (a second object with the same id on the frame is ignored). Returns the frame's
    /// events in order: per object crossings, entries, exits and dwells, then lost tracks'
    /// exits, then occupancy changes.
    pub fn process(&mut self, time: Option<u64>, objects: &[Observation]) -> Vec<Event> {
        if let Some(t) = time {
            self.time = t;
        }
        let now = self.time;
        let frame = self.frame;
        self.frame += 1;
        let before: Vec<usize> = self.zones.iter().map(|z| z.inside.len()).collect();
        let mut events = Vec::new();
        let mut seen = BTreeSet::new();
        for o in objects {
            if !seen.insert(o.object_id.clone()) {
                continue;
            }
            let p = anchor_point(self.config.anchor, o.bbox);
            let (n_lines, n_zones) = (self.rules.lines.len(), self.rules.zones.len());
            let track = self
                .tracks
                .entry(o.object_id.clone())
                .or_insert_with(|| Track {
                    last_frame: frame,
                    off_line: vec![None; n_lines],
                    visits: vec![None; n_zones],
                });
            track.last_frame = frame;
            for (i, line) in self.rules.lines.iter().enumerate() {
                if !label_matches(&line.labels, &o.label) {
                    track.off_line[i] = None;
                    continue;
                }
                let side = sign(cross(line.a, line.b, p));
                if side == 0 {
                    continue;
                }
                let previous = track.off_line[i].replace((p, side));
                let Some((from, was)) = previous else {
                    continue;
                };
                if was == side || !segments_meet(from, p, line.a, line.b) {
                    continue;
                }
                let clockwise = was < 0;
                let counted = match line.counted {
                    Counted::Both => true,
                    Counted::Clockwise => clockwise,
                    Counted::Counterclockwise => !clockwise,
                };
                if !counted {
                    continue;
                }
                let count = &mut self.lines[i];
                if clockwise {
                    count.clockwise += 1;
                } else {
                    count.counterclockwise += 1;
                }
                let direction = if clockwise {
                    "clockwise"
                } else {
                    "counterclockwise"
                };
                events.push(Event {
                    kind: EventKind::LineCrossing,
                    properties: vec![
                        ("line", line.name.clone()),
                        ("direction", direction.to_string()),
                        ("objectId", o.object_id.clone()),
                        ("label", o.label.clone()),
                        ("clockwise", count.clockwise.to_string()),
                        ("counterclockwise", count.counterclockwise.to_string()),
                        ("total", count.total().to_string()),
                    ],
                    related: vec![o.object_id.clone()],
                });
            }
            for (i, zone) in self.rules.zones.iter().enumerate() {
                let now_inside = label_matches(&zone.labels, &o.label) && inside(&zone.polygon, p);
                let count = &mut self.zones[i];
                match (&mut track.visits[i], now_inside) {
                    (None, true) => {
                        track.visits[i] = Some(Visit {
                            entered: now,
                            last_inside: now,
                            periods: 0,
                        });
                        count.inside.insert(o.object_id.clone());
                        count.entries += 1;
                        events.push(Event {
                            kind: EventKind::ZoneEnter,
                            properties: vec![
                                ("zone", zone.name.clone()),
                                ("objectId", o.object_id.clone()),
                                ("label", o.label.clone()),
                                ("count", count.inside.len().to_string()),
                                ("entries", count.entries.to_string()),
                            ],
                            related: vec![o.object_id.clone()],
                        });
                    }
                    (Some(visit), true) => {
                        visit.last_inside = now;
                        let dwell = now.saturating_sub(visit.entered);
                        let interval = self.config.dwell_interval;
                        if interval > 0 && dwell / interval > visit.periods {
                            visit.periods = dwell / interval;
                            events.push(dwell_event(
                                &zone.name,
                                &o.object_id,
                                &o.label,
                                dwell,
                                false,
                                Some(&o.object_id),
                            ));
                        }
                    }
                    (Some(visit), false) => {
                        let dwell = now.saturating_sub(visit.entered);
                        track.visits[i] = None;
                        count.inside.remove(&o.object_id);
                        count.exits += 1;
                        events.push(exit_event(
                            &zone.name,
                            &o.object_id,
                            &o.label,
                            count,
                            dwell,
                            "left",
                            true,
                        ));
                        events.push(dwell_event(
                            &zone.name,
                            &o.object_id,
                            &o.label,
                            dwell,
                            true,
                            Some(&o.object_id),
                        ));
                    }
                    (None, false) => {}
                }
            }
        }
        // Tracks not seen for more than lost_frames frames leave their zones and are forgotten.
        let lost_frames = self.config.lost_frames;
        let mut lost: Vec<(String, Track)> = self
            .tracks
            .iter()
            .filter(|(_, t)| frame.saturating_sub(t.last_frame) > lost_frames)
            .map(|(id, t)| (id.clone(), t.clone()))
            .collect();
        lost.sort_by(|a, b| a.0.cmp(&b.0));
        for (id, track) in lost {
            self.tracks.remove(&id);
            for (i, visit) in track.visits.iter().enumerate() {
                let Some(visit) = visit else { continue };
                let zone = &self.rules.zones[i];
                let count = &mut self.zones[i];
                let dwell = visit.last_inside.saturating_sub(visit.entered);
                count.inside.remove(&id);
                count.exits += 1;
                events.push(exit_event(&zone.name, &id, "", count, dwell, "lost", false));
                events.push(dwell_event(&zone.name, &id, "", dwell, true, None));
            }
        }
        for (i, zone) in self.rules.zones.iter().enumerate() {
            let count = &self.zones[i];
            if count.inside.len() != before[i] {
                events.push(Event {
                    kind: EventKind::ZoneOccupancy,
                    properties: vec![
                        ("zone", zone.name.clone()),
                        ("count", count.inside.len().to_string()),
                        ("previous", before[i].to_string()),
                    ],
                    related: count
                        .inside
                        .iter()
                        .filter(|id| seen.contains(*id))
                        .cloned()
                        .collect(),
                });
            }
        }
        self.events += events.len() as u64;
        events
    }

    /// The lines and zones with their counts now, as the overlay meta carries them
    /// ([`crate::meta::ANALYTICS_META`]).
    pub fn overlay_info(&self) -> AnalyticsInfo {
        let xy = |p: &Point| (p.x, p.y);
        AnalyticsInfo {
            lines: (self.rules.lines.iter().zip(&self.lines))
                .map(|(l, c)| LineInfo {
                    name: l.name.clone(),
                    a: xy(&l.a),
                    b: xy(&l.b),
                    counted: l.counted,
                    clockwise: c.clockwise,
                    counterclockwise: c.counterclockwise,
                })
                .collect(),
            zones: (self.rules.zones.iter().zip(&self.zones))
                .map(|(z, c)| ZoneInfo {
                    name: z.name.clone(),
                    polygon: z.polygon.iter().map(xy).collect(),
                    count: c.inside.len() as u64,
                })
                .collect(),
        }
    }

    /// A summary of the counts: per line and per zone.
    pub fn summary(&self) -> BTreeMap<String, String> {
        let mut s = BTreeMap::new();
        for (line, c) in self.rules.lines.iter().zip(&self.lines) {
            s.insert(
                format!("line {}", line.name),
                format!(
                    "clockwise {} counterclockwise {} total {}",
                    c.clockwise,
                    c.counterclockwise,
                    c.total()
                ),
            );
        }
        for (zone, c) in self.rules.zones.iter().zip(&self.zones) {
            s.insert(
                format!("zone {}", zone.name),
                format!(
                    "count {} entries {} exits {}",
                    c.inside.len(),
                    c.entries,
                    c.exits
                ),
            );
        }
        s
    }
}

fn exit_event(
    zone: &str,
    id: &str,
    label: &str,
    count: &ZoneCount,
    dwell: u64,
    reason: &str,
    on_frame: bool,
) -> Event {
    let mut properties = vec![("zone", zone.to_string()), ("objectId", id.to_string())];
    if !label.is_empty() {
        properties.push(("label", label.to_string()));
    }
    properties.extend([
        ("count", count.inside.len().to_string()),
        ("exits", count.exits.to_string()),
        ("dwell", seconds(dwell)),
        ("reason", reason.to_string()),
    ]);
    Event {
        kind: EventKind::ZoneExit,
        properties,
        related: if on_frame {
            vec![id.to_string()]
        } else {
            Vec::new()
        },
    }
}

fn dwell_event(
    zone: &str,
    id: &str,
    label: &str,
    dwell: u64,
    last: bool,
    related: Option<&str>,
) -> Event {
    let mut properties = vec![("zone", zone.to_string()), ("objectId", id.to_string())];
    if !label.is_empty() {
        properties.push(("label", label.to_string()));
    }
    properties.extend([("dwell", seconds(dwell)), ("final", last.to_string())]);
    Event {
        kind: EventKind::ZoneDwell,
        properties,
        related: related.map(str::to_string).into_iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    fn rules() -> Rules {
        Rules::from_json(
            r#"{"lines": [{"name": "v", "points": [[0.5, 0.0], [0.5, 1.0]]},
                          {"name": "h", "points": [[0.0, 0.5], [1.0, 0.5]], "direction": "clockwise"}],
                "zones": [{"name": "box", "polygon": [[0.6, 0.6], [0.9, 0.6], [0.9, 0.9], [0.6, 0.9]]},
                          {"name": "cars", "polygon": [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]],
                           "labels": ["car"]}]}"#,
        )
        .unwrap()
    }

    /// An object whose bottom centre is at (x, y).
    fn at(id: &str, x: f64, y: f64) -> Observation {
        Observation {
            object_id: id.into(),
            label: "person".into(),
            bbox: [x - 0.05, y - 0.1, x + 0.05, y],
        }
    }

    fn names(events: &[Event]) -> Vec<&'static str> {
        events.iter().map(|e| e.kind.name()).collect()
    }

    #[test]
    fn crossings_in_both_directions_are_counted_exactly() {
        let mut a = Analytics::new(rules(), Config::default());
        // left of the vertical line, above the horizontal one
        assert!(a.process(Some(0), &[at("1", 0.2, 0.2)]).is_empty());
        // left → right across v (drawn top to bottom): counterclockwise
        let e = a.process(Some(SECOND), &[at("1", 0.7, 0.2)]);
        assert_eq!(names(&e), ["LineCrossing"]);
        assert_eq!(e[0].get("line"), Some("v"));
        assert_eq!(e[0].get("direction"), Some("counterclockwise"));
        assert_eq!(e[0].get("total"), Some("1"));
        assert_eq!(e[0].related, ["1"]);
        // onto the line exactly, then back left: one clockwise crossing, not two
        assert!(a.process(Some(2 * SECOND), &[at("1", 0.5, 0.2)]).is_empty());
        let e = a.process(Some(3 * SECOND), &[at("1", 0.3, 0.2)]);
        assert_eq!(e[0].get("direction"), Some("clockwise"));
        assert_eq!(
            (
                e[0].get("clockwise"),
                e[0].get("counterclockwise"),
                e[0].get("total")
            ),
            (Some("1"), Some("1"), Some("2"))
        );
        // onto the line and back: no crossing
        assert!(a.process(Some(4 * SECOND), &[at("1", 0.5, 0.2)]).is_empty());
        assert!(a.process(Some(5 * SECOND), &[at("1", 0.3, 0.2)]).is_empty());
        // down across h (drawn left to right): clockwise, counted; up: not counted
        let e = a.process(Some(6 * SECOND), &[at("1", 0.3, 0.55)]);
        assert_eq!(names(&e), ["LineCrossing"]);
        assert_eq!(
            (e[0].get("line"), e[0].get("direction")),
            (Some("h"), Some("clockwise"))
        );
        assert!(
            a.process(Some(7 * SECOND), &[at("1", 0.3, 0.45)])
                .is_empty()
        );
        assert_eq!(a.crossings(), 3);
        assert_eq!(
            a.line_counts(),
            [
                LineCount {
                    clockwise: 1,
                    counterclockwise: 1
                },
                LineCount {
                    clockwise: 1,
                    counterclockwise: 0
                }
            ]
        );
    }

    #[test]
    fn the_overlay_info_has_the_rules_and_the_counts_now() {
        let mut a = Analytics::new(rules(), Config::default());
        let info = a.overlay_info();
        assert_eq!(info.lines.len(), 2);
        assert_eq!(
            (info.lines[1].a, info.lines[1].b, info.lines[1].counted),
            ((0.0, 0.5), (1.0, 0.5), Counted::Clockwise)
        );
        assert_eq!(info.zones[0].polygon[2], (0.9, 0.9));
        a.process(Some(0), &[at("1", 0.2, 0.2), at("2", 0.7, 0.7)]);
        a.process(Some(SECOND), &[at("1", 0.7, 0.2), at("2", 0.8, 0.8)]);
        let info = a.overlay_info();
        assert_eq!(
            (
                info.lines[0].name.as_str(),
                info.lines[0].counterclockwise,
                info.lines[0].total()
            ),
            ("v", 1, 1)
        );
        assert_eq!(
            (info.zones[0].name.as_str(), info.zones[0].count),
            ("box", 1)
        );
        assert_eq!(info.zones[1].count, 0, "cars only");
    }

    #[test]
    fn passing_beside_the_segment_is_no_crossing() {
        let r = Rules::from_json(
            r#"{"lines": [{"name": "short", "points": [[0.5, 0.0], [0.5, 0.4]]}]}"#,
        )
        .unwrap();
        let mut a = Analytics::new(r, Config::default());
        a.process(Some(0), &[at("1", 0.2, 0.8)]);
        assert!(a.process(Some(1), &[at("1", 0.8, 0.8)]).is_empty());
        // a diagonal move through the segment's end counts
        a.process(Some(2), &[at("2", 0.4, 0.3)]);
        assert_eq!(
            names(&a.process(Some(3), &[at("2", 0.6, 0.5)])),
            ["LineCrossing"]
        );
    }

    #[test]
    fn zones_enter_exit_occupancy_and_dwell() {
        let config = Config {
            dwell_interval: 2 * SECOND,
            ..Config::default()
        };
        let mut a = Analytics::new(rules(), config);
        assert!(a.process(Some(0), &[at("7", 0.7, 0.95)]).is_empty());
        let e = a.process(Some(SECOND), &[at("7", 0.7, 0.7), at("8", 0.8, 0.8)]);
        assert_eq!(names(&e), ["ZoneEnter", "ZoneEnter", "ZoneOccupancy"]);
        assert_eq!(e[1].get("count"), Some("2"));
        assert_eq!(
            (e[2].get("count"), e[2].get("previous")),
            (Some("2"), Some("0"))
        );
        assert_eq!(e[2].related, ["7", "8"]);
        assert!(
            a.process(Some(2 * SECOND), &[at("7", 0.7, 0.7), at("8", 0.8, 0.8)])
                .is_empty()
        );
        // 2 s inside: a periodic dwell for each
        let e = a.process(Some(3 * SECOND), &[at("7", 0.7, 0.7), at("8", 0.8, 0.8)]);
        assert_eq!(names(&e), ["ZoneDwell", "ZoneDwell"]);
        assert_eq!(
            (e[0].get("dwell"), e[0].get("final")),
            (Some("2"), Some("false"))
        );
        // 7 leaves after 3.5 s
        let e = a.process(
            Some(4_500_000_000),
            &[at("7", 0.7, 0.95), at("8", 0.8, 0.8)],
        );
        assert_eq!(names(&e), ["ZoneExit", "ZoneDwell", "ZoneOccupancy"]);
        assert_eq!(
            (e[0].get("dwell"), e[0].get("reason")),
            (Some("3.5"), Some("left"))
        );
        assert_eq!(e[0].get("count"), Some("1"));
        assert_eq!(e[1].get("final"), Some("true"));
        assert_eq!(e[2].related, ["8"]);
        assert_eq!(a.zone_counts()[0].entries, 2);
        assert_eq!(a.zone_counts()[0].exits, 1);
        // the label filter: people never count in "cars"
        assert!(a.zone_counts()[1].inside.is_empty());
    }

    #[test]
    fn vanished_tracks_exit_their_zones() {
        let config = Config {
            lost_frames: 2,
            ..Config::default()
        };
        let mut a = Analytics::new(rules(), config);
        a.process(Some(0), &[at("5", 0.7, 0.7)]);
        a.process(Some(SECOND), &[at("5", 0.7, 0.7)]);
        // unseen for 1 and 2 frames: still there
        assert!(a.process(Some(2 * SECOND), &[]).is_empty());
        assert!(a.process(Some(3 * SECOND), &[]).is_empty());
        // unseen for 3 frames: lost, dwell up to the last frame it was seen
        let e = a.process(Some(4 * SECOND), &[]);
        assert_eq!(names(&e), ["ZoneExit", "ZoneDwell", "ZoneOccupancy"]);
        assert_eq!(
            (e[0].get("reason"), e[0].get("dwell")),
            (Some("lost"), Some("1"))
        );
        assert!(e[0].related.is_empty() && e[2].related.is_empty());
        assert_eq!(a.events(), 5);
    }

    #[test]
    fn anchors_and_label_filters() {
        let b = [0.2, 0.2, 0.4, 0.6];
        assert_eq!(
            anchor_point(Anchor::BottomCenter, b),
            Point::new(0.30000000000000004, 0.6)
        );
        assert_eq!(anchor_point(Anchor::Center, b).y, 0.4);
        assert_eq!(anchor_point(Anchor::TopCenter, b).y, 0.2);
        let mut a = Analytics::new(rules(), Config::default());
        let car = Observation {
            label: "car".into(),
            ..at("c", 0.2, 0.2)
        };
        let e = a.process(Some(0), &[car]);
        assert_eq!(names(&e), ["ZoneEnter", "ZoneOccupancy"]);
        assert_eq!(e[0].get("zone"), Some("cars"));
        assert_eq!(seconds(40_000_000), "0.04");
        assert_eq!(seconds(3 * SECOND), "3");
    }
}
