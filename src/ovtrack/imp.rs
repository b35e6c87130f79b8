use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::VideoRegionOfInterestMeta;

use super::TrackingType;
use super::geometry::BBox;
use super::tracker::{Config, Detection, Predicted, Tracker};
use crate::meta::{self, DETECTION, TRACKING, TRACKING_STATE};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "ovtrack",
        gst::DebugColorFlags::empty(),
        Some("Object tracking: stable ids for detected objects"),
    )
});

const DEFAULT_PREDICT_ON_EMPTY: bool = true;

#[derive(Debug, Clone)]
struct Settings {
    tracking_type: TrackingType,
    config: Config,
    predict_on_empty: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            tracking_type: TrackingType::default(),
            config: Config::default(),
            predict_on_empty: DEFAULT_PREDICT_ON_EMPTY,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    tracker: Option<Tracker>,
    predict_on_empty: bool,
    width: u32,
    height: u32,
    frames: u64,
}

#[derive(Default)]
pub struct OvTrack {
    settings: Mutex<Settings>,
    state: Mutex<State>,
    tracks_created: AtomicU64,
    active_tracks: AtomicU32,
}

impl OvTrack {
    fn settings(&self) -> std::sync::MutexGuard<'_, Settings> {
        self.settings.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish_counters(&self, tracker: &Tracker) {
        self.tracks_created
            .store(tracker.tracks_created(), Ordering::Relaxed);
        self.active_tracks.store(
            u32::try_from(tracker.active_tracks()).unwrap_or(u32::MAX),
            Ordering::Relaxed,
        );
    }
}

/// The tracker's view of one ROI: its `detection` structure when usable, else its pixel
/// rectangle (confidence 1, no class). Without a frame size, such an ROI cannot be placed and
/// gets an unusable box (no id).
fn detection_of(roi: &meta::Roi, width: u32, height: u32) -> Detection {
    match &roi.detection {
        Some(d) => Detection {
            bbox: BBox::from_corners(d.bbox),
            confidence: d.confidence,
            label_id: d.label_id,
            label: if d.label.is_empty() {
                roi.roi_type.clone()
            } else {
                d.label.clone()
            },
            model: d.model.clone(),
        },
        None => {
            let (x, y, w, h) = roi.rect;
            let (fw, fh) = (f64::from(width), f64::from(height));
            let bbox = if width > 0 && height > 0 {
                BBox::new(
                    f64::from(x) / fw,
                    f64::from(y) / fh,
                    (f64::from(x) + f64::from(w)) / fw,
                    (f64::from(y) + f64::from(h)) / fh,
                )
            } else {
                BBox::new(f64::NAN, f64::NAN, f64::NAN, f64::NAN)
            };
            Detection {
                bbox,
                confidence: 1.0,
                label_id: -1,
                label: roi.roi_type.clone(),
                model: String::new(),
            }
        }
    }
}

fn id_structure(id: u64) -> gst::Structure {
    gst::Structure::builder(TRACKING)
        .field("id", i32::try_from(id).unwrap_or(i32::MAX))
        .build()
}

/// Adds a predicted object: an ROI with `detection`, `object_id` and `tracking, predicted=true`.
fn add_predicted(buffer: &mut gst::BufferRef, width: u32, height: u32, p: &Predicted) {
    let bbox = p.bbox.clipped();
    if !bbox.is_valid() {
        return; // moved out of the frame
    }
    let rect = meta::pixel_rect(bbox.corners(), width, height);
    let mut roi = VideoRegionOfInterestMeta::add(buffer, &p.label, rect);
    roi.add_param(
        gst::Structure::builder(DETECTION)
            .field("x_min", bbox.x0)
            .field("y_min", bbox.y0)
            .field("x_max", bbox.x1)
            .field("y_max", bbox.y1)
            .field("confidence", p.confidence)
            .field("label_id", p.label_id)
            .field("label", p.label.as_str())
            .field("model", p.model.as_str())
            .build(),
    );
    roi.add_param(id_structure(p.id));
    roi.add_param(
        gst::Structure::builder(TRACKING_STATE)
            .field("predicted", true)
            .build(),
    );
}

#[glib::object_subclass]
impl ObjectSubclass for OvTrack {
    const NAME: &'static str = "GstOvTrack";
    type Type = super::OvTrack;
    type ParentType = gst_base::BaseTransform;
}

impl ObjectImpl for OvTrack {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let d = Config::default();
            let unit = |name: &str, nick: &str, blurb: &str, default: f64| {
                glib::ParamSpecDouble::builder(name)
                    .nick(nick)
                    .blurb(blurb)
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(default)
                    .mutable_ready()
                    .build()
            };
            vec![
                glib::ParamSpecEnum::builder_with_default("tracking-type", TrackingType::default())
                    .nick("Tracking type")
                    .blurb(
                        "bytetrack: Kalman motion prediction and two-stage association (confident \
                         detections first, then the low-confidence ones); iou: each object \
                         matched with its previous box, no motion model",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("min-hits")
                    .nick("Minimum hits")
                    .blurb(
                        "Consecutive matched frames before an object gets its id (immediately on \
                         the first min-hits frames of a run); 0 or 1: at once",
                    )
                    .default_value(d.min_hits)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-age")
                    .nick("Maximum age")
                    .blurb(
                        "Frames an object may go unseen before its track is deleted (its id is \
                         kept until then)",
                    )
                    .default_value(d.max_age)
                    .mutable_ready()
                    .build(),
                unit(
                    "iou-threshold",
                    "IoU threshold",
                    "Least IoU of an object's (predicted) box and a detection to match them",
                    d.iou_threshold,
                ),
                unit(
                    "high-threshold",
                    "High threshold",
                    "Detections at least this confident are matched first and may start new \
                     tracks",
                    d.high_threshold,
                ),
                unit(
                    "low-threshold",
                    "Low threshold",
                    "Detections below this confidence are ignored; those between it and \
                     high-threshold only continue tracks (bytetrack's second stage; iou matches \
                     them too). At most high-threshold",
                    d.low_threshold,
                ),
                glib::ParamSpecBoolean::builder("per-class")
                    .nick("Per class")
                    .blurb("A track only matches detections of its class (label_id)")
                    .default_value(d.per_class)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("predict-on-empty")
                    .nick("Predict on empty frames")
                    .blurb(
                        "A frame without any ROI meta is one the detector skipped (ovinfer \
                         interval): add the predicted boxes and ids of the objects seen on the \
                         last detection frame",
                    )
                    .default_value(DEFAULT_PREDICT_ON_EMPTY)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt64::builder("tracks-created")
                    .nick("Tracks created")
                    .blurb("Ids given since the element started (confirmed tracks)")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt::builder("active-tracks")
                    .nick("Active tracks")
                    .blurb("Confirmed tracks alive after the last frame (seen or not)")
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings();
        let d = Config::default();
        match pspec.name() {
            "tracking-type" => s.tracking_type = value.get().unwrap_or_default(),
            "min-hits" => s.config.min_hits = value.get().unwrap_or(d.min_hits),
            "max-age" => s.config.max_age = value.get().unwrap_or(d.max_age),
            "iou-threshold" => s.config.iou_threshold = value.get().unwrap_or(d.iou_threshold),
            "high-threshold" => s.config.high_threshold = value.get().unwrap_or(d.high_threshold),
            "low-threshold" => s.config.low_threshold = value.get().unwrap_or(d.low_threshold),
            "per-class" => s.config.per_class = value.get().unwrap_or(d.per_class),
            "predict-on-empty" => {
                s.predict_on_empty = value.get().unwrap_or(DEFAULT_PREDICT_ON_EMPTY)
            }
            other => gst::warning!(CAT, imp = self, "no writable property {other}"),
        }
        gst::debug!(
            CAT,
            imp = self,
            "{} set (read when the element starts)",
            pspec.name()
        );
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings();
        match pspec.name() {
            "tracking-type" => s.tracking_type.to_value(),
            "min-hits" => s.config.min_hits.to_value(),
            "max-age" => s.config.max_age.to_value(),
            "iou-threshold" => s.config.iou_threshold.to_value(),
            "high-threshold" => s.config.high_threshold.to_value(),
            "low-threshold" => s.config.low_threshold.to_value(),
            "per-class" => s.config.per_class.to_value(),
            "predict-on-empty" => s.predict_on_empty.to_value(),
            "tracks-created" => self.tracks_created.load(Ordering::Relaxed).to_value(),
            "active-tracks" => self.active_tracks.load(Ordering::Relaxed).to_value(),
            other => {
                gst::warning!(CAT, imp = self, "no property {other}");
                pspec.default_value().clone()
            }
        }
    }
}

impl GstObjectImpl for OvTrack {}

impl ElementImpl for OvTrack {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Object tracker",
                "Filter/Analyzer/Video/Metadata",
                "Gives the detected objects (ROI meta) stable ids over time: the object_id \
                 param structure, by ByteTrack or an IoU tracker",
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

impl BaseTransformImpl for OvTrack {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self.settings().clone();
        let config = Config {
            kind: settings.tracking_type.into(),
            ..settings.config
        };
        config
            .check()
            .map_err(|e| gst::error_msg!(gst::LibraryError::Settings, ("{e}")))?;
        gst::debug!(CAT, imp = self, "starting with {config:?}");
        *self.state() = State {
            tracker: Some(Tracker::new(config)),
            predict_on_empty: settings.predict_on_empty,
            ..State::default()
        };
        self.tracks_created.store(0, Ordering::Relaxed);
        self.active_tracks.store(0, Ordering::Relaxed);
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        let mut state = self.state();
        gst::info!(
            CAT,
            imp = self,
            "{} frames, {} tracks created",
            state.frames,
            self.tracks_created.load(Ordering::Relaxed)
        );
        state.tracker = None;
        Ok(())
    }

    fn set_caps(&self, incaps: &gst::Caps, _outcaps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let s = incaps
            .structure(0)
            .ok_or_else(|| gst::loggable_error!(CAT, "empty caps"))?;
        let size = |f: &str| {
            s.get::<i32>(f)
                .ok()
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(0)
        };
        let mut state = self.state();
        (state.width, state.height) = (size("width"), size("height"));
        if state.width == 0 || state.height == 0 {
            gst::warning!(
                CAT,
                imp = self,
                "caps without a frame size ({incaps}): ROIs without a detection structure and \
                 predicted boxes cannot be placed"
            );
        }
        Ok(())
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        if let gst::EventView::FlushStop(_) = event.view() {
            let mut state = self.state();
            if let Some(tracker) = state.tracker.as_mut() {
                gst::debug!(CAT, imp = self, "flush: the tracks are forgotten");
                tracker.clear();
                self.publish_counters(tracker);
            }
        }
        self.parent_sink_event(event)
    }

    fn transform_ip(
        &self,
        buffer: &mut gst::BufferRef,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let mut guard = self.state();
        let state = &mut *guard;
        state.frames += 1;
        let (width, height) = (state.width, state.height);
        let Some(tracker) = state.tracker.as_mut() else {
            gst::element_imp_error!(
                self,
                gst::CoreError::StateChange,
                ("a frame arrived before the element started")
            );
            return Err(gst::FlowError::Error);
        };
        let rois = meta::rois(buffer);
        if rois.is_empty() {
            if state.predict_on_empty {
                let predicted = tracker.predict();
                for p in &predicted {
                    add_predicted(buffer, width, height, p);
                }
                gst::trace!(
                    CAT,
                    imp = self,
                    "frame {}: no ROI, {} predicted",
                    state.frames,
                    predicted.len()
                );
            } else {
                tracker.update(&[]);
            }
        } else {
            let detections: Vec<Detection> = rois
                .iter()
                .map(|r| detection_of(r, width, height))
                .collect();
            let ids = tracker.update(&detections);
            let mut tracked = 0usize;
            for (mut roi, id) in buffer.iter_meta_mut::<VideoRegionOfInterestMeta>().zip(ids) {
                // An id from another tracker upstream stays (param structures cannot be removed).
                if let Some(id) = id
                    && roi.param(TRACKING).is_none()
                {
                    roi.add_param(id_structure(id));
                    tracked += 1;
                }
            }
            gst::trace!(
                CAT,
                imp = self,
                "frame {}: {} ROIs, {tracked} with ids",
                state.frames,
                rois.len()
            );
        }
        self.publish_counters(tracker);
        Ok(gst::FlowSuccess::Ok)
    }
}
