use std::sync::{LazyLock, Mutex, MutexGuard};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::prelude::*;

use super::analytics;
use super::annotate::{self, Colours, Style};
use super::surface::{Layout, Plane, Surface, YuvMatrix};
use super::text::{self, TextRenderer};
use super::trails::{self, Trails};
use crate::meta;
use crate::properties::optional_string;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "ovoverlay",
        gst::DebugColorFlags::empty(),
        Some("Draws inference results into video frames"),
    )
});

const DEFAULT_ENABLED: bool = true;
const DEFAULT_LINE_WIDTH: u32 = 0;
const DEFAULT_FONT_SIZE: u32 = 0;
const DEFAULT_SHOW_LABELS: bool = true;
const DEFAULT_SHOW_CONFIDENCE: bool = true;
const DEFAULT_SHOW_ANALYTICS: bool = true;
const DEFAULT_TRAIL_LENGTH: u32 = 0;
const MAX_TRAIL_LENGTH: u32 = 1000;
const DEFAULT_SHOW_PREDICTED: bool = true;

#[derive(Debug, Clone)]
struct Settings {
    enabled: bool,
    line_width: u32,
    font_size: u32,
    show_labels: bool,
    show_confidence: bool,
    show_analytics: bool,
    trail_length: u32,
    show_predicted: bool,
    palette: Option<String>,
    label_colors: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            enabled: DEFAULT_ENABLED,
            line_width: DEFAULT_LINE_WIDTH,
            font_size: DEFAULT_FONT_SIZE,
            show_labels: DEFAULT_SHOW_LABELS,
            show_confidence: DEFAULT_SHOW_CONFIDENCE,
            show_analytics: DEFAULT_SHOW_ANALYTICS,
            trail_length: DEFAULT_TRAIL_LENGTH,
            show_predicted: DEFAULT_SHOW_PREDICTED,
            palette: None,
            label_colors: None,
        }
    }
}

/// The negotiated frames.
struct Format {
    info: gst_video::VideoInfo,
    layout: Layout,
    matrix: YuvMatrix,
}

/// Per-run state: from `start` to `stop`.
struct State {
    colours: Colours,
    format: Option<Format>,
    text: Option<TextRenderer>,
    trails: Trails,
}

#[derive(Default)]
pub struct OvOverlay {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
}

fn layout_of(info: &gst_video::VideoInfo) -> Layout {
    match info.format() {
        gst_video::VideoFormat::I420 => Layout::I420,
        gst_video::VideoFormat::Nv12 => Layout::Nv12,
        _ => {
            let f = info.format_info();
            let o = f.poffset();
            Layout::Packed {
                pixel_stride: f.pixel_stride()[0] as usize,
                rgb: [o[0] as usize, o[1] as usize, o[2] as usize],
                alpha: f.has_alpha().then(|| o[3] as usize),
            }
        }
    }
}

/// Whether a frame has anything to draw (counting lines and zones only with `analytics`).
fn has_results(buffer: &gst::BufferRef, analytics: bool) -> bool {
    buffer
        .meta::<gst_video::VideoRegionOfInterestMeta>()
        .is_some()
        || !meta::frame_results(buffer).is_empty()
        || (analytics && meta::has_analytics(buffer))
}

impl OvOverlay {
    fn settings(&self) -> MutexGuard<'_, Settings> {
        self.settings.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn draw(&self, state: &mut State, buf: &mut gst::BufferRef) -> Result<(), String> {
        let settings = self.settings().clone();
        let (font_size, line_width) = (settings.font_size, settings.line_width);
        let format = state.format.as_ref().ok_or("no caps negotiated")?;
        let (width, height) = (format.info.width(), format.info.height());
        let px = match font_size {
            0 => annotate::auto_font_px(height),
            px => px,
        };
        let text = match &mut state.text {
            Some(t) if t.px() == px => t,
            slot => slot.insert(TextRenderer::new(px)?),
        };
        let style = Style {
            line_width: match line_width {
                0 => annotate::auto_line_width(height),
                w => w,
            },
            show_labels: settings.show_labels,
            show_confidence: settings.show_confidence,
            colours: &state.colours,
        };
        let mut rois = meta::rois(buf);
        if !settings.show_predicted {
            rois.retain(|roi| !roi.predicted());
        }
        let classes = meta::frame_classifications(buf);
        let counting = if settings.show_analytics {
            meta::analytics(buf)
        } else {
            Vec::new()
        };
        let mut frame = gst_video::VideoFrameRef::from_buffer_ref_writable(buf, &format.info)
            .map_err(|e| format!("cannot map the frame: {e}"))?;
        let strides: Vec<usize> = frame.plane_stride().iter().map(|s| *s as usize).collect();
        let planes = frame
            .planes_data_mut()
            .into_iter()
            .zip(strides)
            .map(|(data, stride)| Plane { data, stride })
            .collect();
        let mut surface = Surface::new(
            width as usize,
            height as usize,
            format.layout,
            format.matrix,
            planes,
        )?;
        analytics::draw(&mut surface, &counting, &style, text);
        if settings.trail_length > 0 {
            trails::draw(&mut surface, &state.trails, &rois, &style);
        }
        annotate::draw(&mut surface, &rois, &classes, &style, text);
        Ok(())
    }
}

#[glib::object_subclass]
impl ObjectSubclass for OvOverlay {
    const NAME: &'static str = "GstOvOverlay";
    type Type = super::OvOverlay;
    type ParentType = gst_base::BaseTransform;
}

impl ObjectImpl for OvOverlay {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecBoolean::builder("enabled")
                    .nick("Enabled")
                    .blurb("Draw the results; false passes every frame through untouched")
                    .default_value(DEFAULT_ENABLED)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("line-width")
                    .nick("Line width")
                    .blurb("Width of the box lines in pixels; 0: 2 px, or 1 per 360 lines of height above 720")
                    .maximum(64)
                    .default_value(DEFAULT_LINE_WIDTH)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("font-size")
                    .nick("Font size")
                    .blurb("Text size in pixels; 0: 1/40 of the frame height, from 11 to 72")
                    .maximum(256)
                    .default_value(DEFAULT_FONT_SIZE)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("show-labels")
                    .nick("Show labels")
                    .blurb("Draw label, attribute and caption text (false: boxes only)")
                    .default_value(DEFAULT_SHOW_LABELS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("show-confidence")
                    .nick("Show confidence")
                    .blurb("Write the confidence after each label (e.g. \"person 0.87\")")
                    .default_value(DEFAULT_SHOW_CONFIDENCE)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("show-analytics")
                    .nick("Show analytics")
                    .blurb(
                        "Draw the counting lines (with an arrow and the count per counted \
                         direction) and zones (with the objects inside) that ovanalytics \
                         attaches to the frames",
                    )
                    .default_value(DEFAULT_SHOW_ANALYTICS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("trail-length")
                    .nick("Trail length")
                    .blurb(
                        "Draw behind each tracked object (one with an object_id) the path of \
                         its box's bottom centre over this many frames; 0: no trails",
                    )
                    .maximum(MAX_TRAIL_LENGTH)
                    .default_value(DEFAULT_TRAIL_LENGTH)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("show-predicted")
                    .nick("Show predicted")
                    .blurb(
                        "Draw the boxes a tracker predicted on frames the detector skipped \
                         (ovtrack's tracking structure with predicted=true), dashed; false \
                         hides them",
                    )
                    .default_value(DEFAULT_SHOW_PREDICTED)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("palette")
                    .nick("Palette")
                    .blurb(
                        "Colours picked by label id (id modulo their number), comma-separated \
                         RRGGBB or basic names, e.g. \"ff0000,00ff00,0000ff\"; unset: 12 \
                         distinct built-in colours",
                    )
                    .build(),
                glib::ParamSpecString::builder("label-colors")
                    .nick("Label colours")
                    .blurb(
                        "Colours of given labels, overriding the palette: \
                         \"label=colour,...\", e.g. \"person=ff0000,car=yellow\"",
                    )
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut settings = self.settings();
        match pspec.name() {
            "enabled" => settings.enabled = value.get().unwrap_or(DEFAULT_ENABLED),
            "line-width" => settings.line_width = value.get().unwrap_or(DEFAULT_LINE_WIDTH),
            "font-size" => settings.font_size = value.get().unwrap_or(DEFAULT_FONT_SIZE),
            "show-labels" => settings.show_labels = value.get().unwrap_or(DEFAULT_SHOW_LABELS),
            "show-confidence" => {
                settings.show_confidence = value.get().unwrap_or(DEFAULT_SHOW_CONFIDENCE)
            }
            "show-analytics" => {
                settings.show_analytics = value.get().unwrap_or(DEFAULT_SHOW_ANALYTICS)
            }
            "trail-length" => settings.trail_length = value.get().unwrap_or(DEFAULT_TRAIL_LENGTH),
            "show-predicted" => {
                settings.show_predicted = value.get().unwrap_or(DEFAULT_SHOW_PREDICTED)
            }
            "palette" => settings.palette = optional_string(value),
            "label-colors" => settings.label_colors = optional_string(value),
            other => gst::warning!(CAT, imp = self, "no writable property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let settings = self.settings();
        match pspec.name() {
            "enabled" => settings.enabled.to_value(),
            "line-width" => settings.line_width.to_value(),
            "font-size" => settings.font_size.to_value(),
            "show-labels" => settings.show_labels.to_value(),
            "show-confidence" => settings.show_confidence.to_value(),
            "show-analytics" => settings.show_analytics.to_value(),
            "trail-length" => settings.trail_length.to_value(),
            "show-predicted" => settings.show_predicted.to_value(),
            "palette" => settings.palette.to_value(),
            "label-colors" => settings.label_colors.to_value(),
            other => {
                gst::warning!(CAT, imp = self, "no property {other}");
                pspec.default_value().clone()
            }
        }
    }
}

impl GstObjectImpl for OvOverlay {}

impl ElementImpl for OvOverlay {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Inference overlay",
                "Filter/Effect/Video",
                "Draws detected objects (box, label, confidence, attributes, tracking id, \
                 trail), whole-frame classifications and counting lines and zones with their \
                 counts into the frames",
                "ovlva developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            use gst_video::VideoFormat as F;
            let caps = gst_video::VideoCapsBuilder::new()
                .format_list([
                    F::Bgrx,
                    F::Rgbx,
                    F::Xrgb,
                    F::Xbgr,
                    F::Bgra,
                    F::Rgba,
                    F::Argb,
                    F::Abgr,
                    F::Bgr,
                    F::Rgb,
                    F::I420,
                    F::Nv12,
                ])
                .build();
            crate::pads::always(&caps, &caps)
        });
        TEMPLATES.as_ref()
    }
}

impl BaseTransformImpl for OvOverlay {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self.settings().clone();
        let colours = Colours::parse(
            settings.palette.as_deref(),
            settings.label_colors.as_deref(),
        )
        .map_err(|e| gst::error_msg!(gst::ResourceError::Settings, ("{e}")))?;
        text::font().map_err(|e| gst::error_msg!(gst::LibraryError::Init, ("{e}")))?;
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = Some(State {
            colours,
            format: None,
            text: None,
            trails: Trails::default(),
        });
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = None;
        Ok(())
    }

    fn set_caps(&self, incaps: &gst::Caps, _outcaps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let info = gst_video::VideoInfo::from_caps(incaps)
            .map_err(|e| gst::loggable_error!(CAT, "cannot read caps {incaps}: {e}"))?;
        let colorimetry = info.colorimetry();
        let format = Format {
            layout: layout_of(&info),
            matrix: YuvMatrix {
                bt709: colorimetry.matrix() == gst_video::VideoColorMatrix::Bt709,
                full_range: colorimetry.range() == gst_video::VideoColorRange::Range0_255,
            },
            info,
        };
        gst::debug!(CAT, imp = self, "drawing on {:?}", format.layout);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let state = state
            .as_mut()
            .ok_or_else(|| gst::loggable_error!(CAT, "caps before start"))?;
        state.format = Some(format);
        // Trails are in pixels of the old size.
        state.trails.clear();
        Ok(())
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        if let gst::EventView::FlushStop(_) = event.view()
            && let Some(state) = self
                .state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_mut()
        {
            state.trails.clear();
        }
        self.parent_sink_event(event)
    }

    fn before_transform(&self, buf: &gst::BufferRef) {
        let (enabled, show_analytics, trail_length) = {
            let s = self.settings();
            (s.enabled, s.show_analytics, s.trail_length)
        };
        // Every frame counts for the trails, also one passed through.
        if let Some(state) = self
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            if trail_length > 0 {
                let points = trails::tracked_points(&meta::rois(buf));
                state.trails.update(trail_length, points);
            } else if !state.trails.is_empty() {
                state.trails.clear();
            }
        }
        // Frames with nothing to draw pass through: no copy, no mapping.
        let draw = enabled && has_results(buf, show_analytics);
        self.obj().set_passthrough(!draw);
    }

    fn transform_ip(&self, buf: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let state = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
        if let Err(e) = self.draw(state, buf) {
            gst::element_imp_error!(self, gst::StreamError::Failed, ("cannot draw: {e}"));
            return Err(gst::FlowError::Error);
        }
        Ok(gst::FlowSuccess::Ok)
    }
}
