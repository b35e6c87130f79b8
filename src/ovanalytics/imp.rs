use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;

use super::Anchor;
use super::engine::{Analytics, Config, Event, Observation};
use super::rules::Rules;
use crate::lvajson::mapping::entity_inference_id;
use crate::meta::{self, FRAME_META};
use crate::properties::optional_string;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "ovanalytics",
        gst::DebugColorFlags::empty(),
        Some("Line crossings and zones over tracked objects, as LVA events"),
    )
});

const DEFAULT_DWELL_INTERVAL: f64 = 0.0;
const DEFAULT_LOST_FRAMES: u32 = 30;
const DEFAULT_ATTACH_OVERLAY_META: bool = true;

#[derive(Debug, Clone)]
struct Settings {
    rules: Option<String>,
    rules_file: Option<String>,
    anchor: Anchor,
    dwell_interval: f64,
    lost_frames: u32,
    attach_overlay_meta: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            rules: None,
            rules_file: None,
            anchor: Anchor::default(),
            dwell_interval: DEFAULT_DWELL_INTERVAL,
            lost_frames: DEFAULT_LOST_FRAMES,
            attach_overlay_meta: DEFAULT_ATTACH_OVERLAY_META,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    analytics: Option<Analytics>,
    width: u32,
    height: u32,
}

#[derive(Default)]
pub struct OvAnalytics {
    settings: Mutex<Settings>,
    state: Mutex<State>,
    crossings: AtomicU64,
    events: AtomicU64,
}

/// The rules the settings give, or what is wrong with them.
fn load_rules(s: &Settings) -> Result<Rules, String> {
    match (&s.rules, &s.rules_file) {
        (Some(_), Some(_)) => Err(
            "both rules and rules-file are set: set only one of them (the JSON text in rules, \
             or the path of a file holding it in rules-file)"
                .to_string(),
        ),
        (Some(text), None) => Rules::from_json(text).map_err(|e| format!("rules: {e}")),
        (None, Some(path)) => Rules::from_file(Path::new(path)).map_err(|e| e.to_string()),
        (None, None) => Err(
            "no rules: set rules to the JSON text of the lines and zones, or rules-file to a \
             file holding it (see docs/ovanalytics.md)"
                .to_string(),
        ),
    }
}

impl OvAnalytics {
    fn settings(&self) -> std::sync::MutexGuard<'_, Settings> {
        self.settings.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The frame's tracked objects: ROIs with a tracking id and a finite box.
    fn observations(buf: &gst::BufferRef, width: u32, height: u32) -> Vec<Observation> {
        meta::rois(buf)
            .into_iter()
            .filter_map(|roi| {
                let object_id = roi.tracking_id()?;
                let (label, bbox) = match &roi.detection {
                    Some(d) if !d.label.is_empty() => (d.label.clone(), d.bbox),
                    Some(d) => (roi.roi_type.clone(), d.bbox),
                    None => {
                        let (w, h) = (width.max(1) as f64, height.max(1) as f64);
                        let (x, y, rw, rh) = roi.rect;
                        let (x, y, rw, rh) = (x as f64, y as f64, rw as f64, rh as f64);
                        (
                            roi.roi_type.clone(),
                            [x / w, y / h, (x + rw) / w, (y + rh) / h],
                        )
                    }
                };
                bbox.iter().all(|v| v.is_finite()).then_some(Observation {
                    object_id,
                    label,
                    bbox,
                })
            })
            .collect()
    }

    fn attach(buf: &mut gst::BufferRef, event: &Event) {
        let mut properties = gst::Structure::builder("properties");
        for (key, value) in &event.properties {
            properties = properties.field(*key, value.as_str());
        }
        let mut result = gst::Structure::builder(FRAME_META)
            .field("type", "event")
            .field("name", event.kind.name())
            .field("properties", properties.build());
        if !event.related.is_empty() {
            let ids = event.related.iter().map(|id| entity_inference_id(id));
            result = result.field("related_inferences", gst::Array::new(ids));
        }
        meta::add_frame_result(buf, &result.build());
    }

    /// The counters as an element message named `ovanalytics`.
    fn summary(&self) -> Option<gst::Structure> {
        let state = self.state();
        let a = state.analytics.as_ref()?;
        let lines = a.rules().lines.iter().zip(a.line_counts()).map(|(l, c)| {
            gst::Structure::builder("line")
                .field("name", l.name.as_str())
                .field("clockwise", c.clockwise)
                .field("counterclockwise", c.counterclockwise)
                .field("total", c.total())
                .build()
        });
        let zones = a.rules().zones.iter().zip(a.zone_counts()).map(|(z, c)| {
            gst::Structure::builder("zone")
                .field("name", z.name.as_str())
                .field("count", c.inside.len() as u64)
                .field("entries", c.entries)
                .field("exits", c.exits)
                .build()
        });
        Some(
            gst::Structure::builder("ovanalytics")
                .field("crossings", a.crossings())
                .field("events", a.events())
                .field("lines", gst::Array::new(lines))
                .field("zones", gst::Array::new(zones))
                .build(),
        )
    }
}

#[glib::object_subclass]
impl ObjectSubclass for OvAnalytics {
    const NAME: &'static str = "GstOvAnalytics";
    type Type = super::OvAnalytics;
    type ParentType = gst_base::BaseTransform;
}

impl ObjectImpl for OvAnalytics {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> =
            LazyLock::new(|| {
                let counter = |name: &str, blurb: &str| {
                    glib::ParamSpecUInt64::builder(name)
                        .nick(name)
                        .blurb(blurb)
                        .read_only()
                        .build()
                };
                vec![
                glib::ParamSpecString::builder("rules")
                    .nick("Rules")
                    .blurb(
                        "The lines and zones as JSON text: {\"lines\": [{\"name\", \"points\": \
                         [[x, y], [x, y]], \"direction\", \"labels\"}], \"zones\": [{\"name\", \
                         \"polygon\": [[x, y], ...], \"labels\"}]}, coordinates normalised 0..1; \
                         read at start",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("rules-file")
                    .nick("Rules file")
                    .blurb("A file holding the rules' JSON (instead of rules); read at start")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder::<Anchor>("anchor")
                    .nick("Anchor")
                    .blurb("The point of an object's box that crosses lines and is in zones")
                    .default_value(Anchor::default())
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder("dwell-interval")
                    .nick("Dwell interval")
                    .blurb(
                        "Seconds between ZoneDwell events while an object stays in a zone; 0: \
                         only when it leaves",
                    )
                    .minimum(0.0)
                    .maximum(86_400.0)
                    .default_value(DEFAULT_DWELL_INTERVAL)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("lost-frames")
                    .nick("Lost frames")
                    .blurb(
                        "A track not seen for more than this many frames is lost: it leaves its \
                         zones (ZoneExit, reason lost) and is forgotten",
                    )
                    .minimum(0)
                    .maximum(1_000_000)
                    .default_value(DEFAULT_LOST_FRAMES)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("attach-overlay-meta")
                    .nick("Attach overlay meta")
                    .blurb(
                        "Attach the lines, zones and their counts to every frame \
                         (OvlvaAnalyticsMeta), for ovoverlay to draw; lvajson ignores it",
                    )
                    .default_value(DEFAULT_ATTACH_OVERLAY_META)
                    .mutable_playing()
                    .build(),
                counter("crossings", "Line crossings counted since start, on every line"),
                counter("events", "Events attached since start"),
            ]
            });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut settings = self.settings();
        match pspec.name() {
            "rules" => settings.rules = optional_string(value),
            "rules-file" => settings.rules_file = optional_string(value),
            "anchor" => settings.anchor = value.get().unwrap_or_default(),
            "dwell-interval" => {
                settings.dwell_interval = value.get().unwrap_or(DEFAULT_DWELL_INTERVAL)
            }
            "lost-frames" => settings.lost_frames = value.get().unwrap_or(DEFAULT_LOST_FRAMES),
            "attach-overlay-meta" => {
                settings.attach_overlay_meta = value.get().unwrap_or(DEFAULT_ATTACH_OVERLAY_META)
            }
            other => gst::warning!(CAT, imp = self, "no writable property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let settings = self.settings();
        match pspec.name() {
            "rules" => settings.rules.to_value(),
            "rules-file" => settings.rules_file.to_value(),
            "anchor" => settings.anchor.to_value(),
            "dwell-interval" => settings.dwell_interval.to_value(),
            "lost-frames" => settings.lost_frames.to_value(),
            "attach-overlay-meta" => settings.attach_overlay_meta.to_value(),
            "crossings" => self.crossings.load(Ordering::Relaxed).to_value(),
            "events" => self.events.load(Ordering::Relaxed).to_value(),
            other => {
                gst::warning!(CAT, imp = self, "no property {other}");
                pspec.default_value().clone()
            }
        }
    }
}

impl GstObjectImpl for OvAnalytics {}

impl ElementImpl for OvAnalytics {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Line crossings and zones",
                "Filter/Analyzer/Video/Metadata",
                "Follows tracked objects across counting lines and through zones and attaches \
                 LineCrossing, ZoneEnter, ZoneExit, ZoneOccupancy and ZoneDwell events as \
                 whole-frame results",
                "ovlva developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = crate::pads::any_raw_video();
            crate::pads::always(&caps, &caps)
        });
        TEMPLATES.as_ref()
    }
}

impl BaseTransformImpl for OvAnalytics {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self.settings().clone();
        let rules = load_rules(&settings).map_err(|text| {
            gst::error!(CAT, imp = self, "{text}");
            gst::error_msg!(gst::ResourceError::Settings, ("{text}"))
        })?;
        let config = Config {
            anchor: settings.anchor,
            dwell_interval: (settings.dwell_interval * 1e9).round() as u64,
            lost_frames: settings.lost_frames as u64,
        };
        gst::info!(
            CAT,
            imp = self,
            "{} lines, {} zones, anchor {:?}",
            rules.lines.len(),
            rules.zones.len(),
            config.anchor
        );
        self.state().analytics = Some(Analytics::new(rules, config));
        self.crossings.store(0, Ordering::Relaxed);
        self.events.store(0, Ordering::Relaxed);
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        if let Some(s) = self.summary() {
            gst::info!(CAT, imp = self, "{s}");
        }
        self.state().analytics = None;
        Ok(())
    }

    fn set_caps(&self, incaps: &gst::Caps, _outcaps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let s = incaps
            .structure(0)
            .ok_or_else(|| gst::loggable_error!(CAT, "empty caps"))?;
        let size = |f: &str| s.get::<i32>(f).ok().and_then(|v| u32::try_from(v).ok());
        let mut state = self.state();
        state.width = size("width").unwrap_or(0);
        state.height = size("height").unwrap_or(0);
        Ok(())
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        if let gst::EventView::Eos(_) = event.view()
            && let Some(s) = self.summary()
        {
            gst::debug!(CAT, imp = self, "at EOS: {s}");
            let _ = self
                .obj()
                .post_message(gst::message::Element::builder(s).src(&*self.obj()).build());
        }
        self.parent_sink_event(event)
    }

    fn transform_ip(&self, buf: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        let attach_overlay_meta = self.settings().attach_overlay_meta;
        let mut state = self.state();
        let (width, height) = (state.width, state.height);
        let analytics = state.analytics.as_mut().ok_or(gst::FlowError::Flushing)?;
        let objects = Self::observations(buf, width, height);
        let time = buf.pts().map(|t| t.nseconds());
        let events = analytics.process(time, &objects);
        self.crossings
            .store(analytics.crossings(), Ordering::Relaxed);
        self.events.store(analytics.events(), Ordering::Relaxed);
        let overlay = attach_overlay_meta.then(|| analytics.overlay_info());
        drop(state);
        for event in &events {
            gst::debug!(
                CAT,
                imp = self,
                "{}: {:?}",
                event.kind.name(),
                event.properties
            );
            Self::attach(buf, event);
        }
        if let Some(info) = overlay {
            meta::add_analytics(buf, &info);
        }
        Ok(gst::FlowSuccess::Ok)
    }
}
