use std::sync::{LazyLock, Mutex, MutexGuard};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::prelude::*;

use super::annotate::{self, Colours, Style};
use super::surface::{Layout, Plane, Surface, YuvMatrix};
use super::text::{self, TextRenderer};
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

#[derive(Debug, Clone)]
struct Settings {
    enabled: bool,
    line_width: u32,
    font_size: u32,
    show_labels: bool,
    show_confidence: bool,
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

fn has_results(buffer: &gst::BufferRef) -> bool {
    buffer
        .meta::<gst_video::VideoRegionOfInterestMeta>()
        .is_some()
        || !meta::frame_results(buffer).is_empty()
}

impl OvOverlay {
    fn settings(&self) -> MutexGuard<'_, Settings> {
        self.settings.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn draw(&self, state: &mut State, buf: &mut gst::BufferRef) -> Result<(), String> {
        let (font_size, line_width, show_labels, show_confidence) = {
            let s = self.settings();
            (s.font_size, s.line_width, s.show_labels, s.show_confidence)
        };
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
            show_labels,
            show_confidence,
            colours: &state.colours,
        };
        let rois = meta::rois(buf);
        let classes = meta::frame_classifications(buf);
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
                "Draws detected objects (box, label, confidence, attributes, tracking id) and \
                 whole-frame classifications into the frames",
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
        Ok(())
    }

    fn before_transform(&self, buf: &gst::BufferRef) {
        // Frames with nothing to draw pass through: no copy, no mapping.
        let draw = self.settings().enabled && has_results(buf);
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
