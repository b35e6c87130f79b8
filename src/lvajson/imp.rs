use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::base_transform::GenerateOutputSuccess;
use gst_base::subclass::prelude::*;

use super::Extensions;
use super::document::Format;
use super::mapping::{self, FrameFacts, Options};
use crate::properties::optional_string;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "lvajson",
        gst::DebugColorFlags::empty(),
        Some("Inference meta to LVA inference JSON"),
    )
});

const DEFAULT_SKIP_EMPTY: bool = true;
const DEFAULT_JSON_LINES: bool = false;
const DEFAULT_PRETTY: bool = false;

#[derive(Debug, Clone)]
struct Settings {
    options: Options,
    skip_empty: bool,
    format: Format,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            options: Options::default(),
            skip_empty: DEFAULT_SKIP_EMPTY,
            format: Format {
                pretty: DEFAULT_PRETTY,
                json_lines: DEFAULT_JSON_LINES,
            },
        }
    }
}

/// What the element knows about the stream: from caps and stream-start, and the frame count.
#[derive(Debug, Default)]
struct State {
    width: u32,
    height: u32,
    stream_id: Option<String>,
    frames: u64,
}

#[derive(Default)]
pub struct LvaJson {
    settings: Mutex<Settings>,
    state: Mutex<State>,
    documents: AtomicU64,
    empty_frames: AtomicU64,
    dropped: AtomicU64,
    warned: AtomicBool,
}

impl LvaJson {
    fn settings(&self) -> std::sync::MutexGuard<'_, Settings> {
        self.settings.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a result left out of the document; the first of a run is also posted on the bus.
    fn report_dropped(&self, reason: &str) {
        let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        gst::warning!(CAT, imp = self, "left out a result ({n} so far): {reason}");
        if !self.warned.swap(true, Ordering::Relaxed) {
            gst::element_imp_warning!(
                self,
                gst::StreamError::Format,
                ("a result cannot be written as LVA JSON and was left out: {reason} \
                     (further ones are only counted, in the `dropped` property)")
            );
        }
    }

    fn frame_facts(&self, buffer: &gst::BufferRef) -> FrameFacts {
        let mut state = self.state();
        let facts = FrameFacts {
            pts: buffer.pts(),
            frame_number: state.frames,
            stream_id: state.stream_id.clone(),
            width: state.width,
            height: state.height,
        };
        state.frames += 1;
        facts
    }
}

#[glib::object_subclass]
impl ObjectSubclass for LvaJson {
    const NAME: &'static str = "GstLvaJson";
    type Type = super::LvaJson;
    type ParentType = gst_base::BaseTransform;
}

impl ObjectImpl for LvaJson {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let counter = |name: &str, blurb: &str| {
                glib::ParamSpecUInt64::builder(name)
                    .nick(name)
                    .blurb(blurb)
                    .read_only()
                    .build()
            };
            vec![
                glib::ParamSpecString::builder("subtype")
                    .nick("Subtype")
                    .blurb(
                        "The subtype of every inference. Unset: the subtype the result carries, \
                         else the name of the model that produced it (none when unknown)",
                    )
                    .mutable_playing()
                    .build(),
                glib::ParamSpecFlags::builder::<Extensions>("extensions")
                    .nick("Extensions")
                    .blurb(
                        "Frame facts added to every inference's extensions (string to string): \
                         pts, frame-number, stream-id, resolution, model; e.g. \
                         extensions=pts+frame-number. Default: none, the plain contract body",
                    )
                    .default_value(Extensions::empty())
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("skip-empty")
                    .nick("Skip empty frames")
                    .blurb(
                        "Frames without results produce no buffer (a GAP event instead), as the \
                         LVA contract's 204 No Content; false: emit {\"inferences\":[]}",
                    )
                    .default_value(DEFAULT_SKIP_EMPTY)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("json-lines")
                    .nick("JSON Lines")
                    .blurb("End every document with a newline (for .jsonl files and terminals)")
                    .default_value(DEFAULT_JSON_LINES)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("pretty")
                    .nick("Pretty")
                    .blurb("Indent the JSON over several lines (not valid JSON Lines)")
                    .default_value(DEFAULT_PRETTY)
                    .mutable_playing()
                    .build(),
                counter("documents", "Documents written since start"),
                counter(
                    "empty-frames",
                    "Frames without results since start (skipped or written empty)",
                ),
                counter(
                    "dropped",
                    "Results left out since start because they cannot be written (a NaN or \
                     infinite confidence or box, a confidence outside 0..1, an unknown result \
                     type)",
                ),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut settings = self.settings();
        match pspec.name() {
            "subtype" => settings.options.subtype = optional_string(value),
            "extensions" => settings.options.extensions = value.get().unwrap_or_default(),
            "skip-empty" => settings.skip_empty = value.get().unwrap_or(DEFAULT_SKIP_EMPTY),
            "json-lines" => settings.format.json_lines = value.get().unwrap_or(DEFAULT_JSON_LINES),
            "pretty" => settings.format.pretty = value.get().unwrap_or(DEFAULT_PRETTY),
            other => gst::warning!(CAT, imp = self, "no writable property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let settings = self.settings();
        match pspec.name() {
            "subtype" => settings.options.subtype.to_value(),
            "extensions" => settings.options.extensions.to_value(),
            "skip-empty" => settings.skip_empty.to_value(),
            "json-lines" => settings.format.json_lines.to_value(),
            "pretty" => settings.format.pretty.to_value(),
            "documents" => self.documents.load(Ordering::Relaxed).to_value(),
            "empty-frames" => self.empty_frames.load(Ordering::Relaxed).to_value(),
            "dropped" => self.dropped.load(Ordering::Relaxed).to_value(),
            other => {
                gst::warning!(CAT, imp = self, "no property {other}");
                pspec.default_value().clone()
            }
        }
    }
}

impl GstObjectImpl for LvaJson {}

impl ElementImpl for LvaJson {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "LVA inference JSON",
                "Filter/Converter/Video/Metadata",
                "Writes each frame's inference meta as one Azure Live Video Analytics inference \
                 document ({\"inferences\":[...]})",
                "ovlva developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            crate::pads::always(&crate::pads::json(), &crate::pads::any_raw_video())
        });
        TEMPLATES.as_ref()
    }
}

impl BaseTransformImpl for LvaJson {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::NeverInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        *self.state() = State::default();
        self.documents.store(0, Ordering::Relaxed);
        self.empty_frames.store(0, Ordering::Relaxed);
        self.dropped.store(0, Ordering::Relaxed);
        self.warned.store(false, Ordering::Relaxed);
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        gst::info!(
            CAT,
            imp = self,
            "{} documents, {} empty frames, {} results left out",
            self.documents.load(Ordering::Relaxed),
            self.empty_frames.load(Ordering::Relaxed),
            self.dropped.load(Ordering::Relaxed)
        );
        Ok(())
    }

    fn transform_caps(
        &self,
        direction: gst::PadDirection,
        _caps: &gst::Caps,
        filter: Option<&gst::Caps>,
    ) -> Option<gst::Caps> {
        // Any video gives JSON and JSON comes from any video: the other side's template.
        let other = match direction {
            gst::PadDirection::Sink => self.obj().src_pad().pad_template_caps(),
            _ => self.obj().sink_pad().pad_template_caps(),
        };
        Some(match filter {
            Some(f) => f.intersect_with_mode(&other, gst::CapsIntersectMode::First),
            None => other,
        })
    }

    fn set_caps(&self, incaps: &gst::Caps, _outcaps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let s = incaps
            .structure(0)
            .ok_or_else(|| gst::loggable_error!(CAT, "empty caps"))?;
        let size = |f: &str| s.get::<i32>(f).ok().and_then(|v| u32::try_from(v).ok());
        let (Some(width), Some(height)) = (size("width"), size("height")) else {
            return Err(gst::loggable_error!(
                CAT,
                "caps without width and height: {incaps}"
            ));
        };
        let mut state = self.state();
        (state.width, state.height) = (width, height);
        Ok(())
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        if let gst::EventView::StreamStart(s) = event.view() {
            self.state().stream_id = Some(s.stream_id().to_string());
        }
        self.parent_sink_event(event)
    }

    fn generate_output(&self) -> Result<GenerateOutputSuccess, gst::FlowError> {
        let Some(input) = self.take_queued_buffer() else {
            return Ok(GenerateOutputSuccess::NoOutput);
        };
        let settings = self.settings().clone();
        let facts = self.frame_facts(&input);
        let mapped = mapping::map_frame(&input, &facts, &settings.options);
        for reason in &mapped.dropped {
            self.report_dropped(reason);
        }
        if mapped.document.inferences.is_empty() {
            self.empty_frames.fetch_add(1, Ordering::Relaxed);
            if settings.skip_empty {
                // Downstream still learns that this stretch of time has been handled.
                if let Some(pts) = input.pts() {
                    let gap = gst::event::Gap::builder(pts)
                        .duration(input.duration())
                        .build();
                    self.obj().src_pad().push_event(gap);
                }
                return Ok(GenerateOutputSuccess::NoOutput);
            }
        }
        let bytes = mapped.document.to_bytes(settings.format).map_err(|e| {
            gst::element_imp_error!(
                self,
                gst::StreamError::Encode,
                ("cannot write the JSON document: {e}")
            );
            gst::FlowError::Error
        })?;
        let mut output = gst::Buffer::from_mut_slice(bytes);
        {
            let out = output.get_mut().ok_or(gst::FlowError::Error)?;
            out.set_pts(input.pts());
            out.set_dts(input.dts());
            out.set_duration(input.duration());
            out.set_offset(self.documents.fetch_add(1, Ordering::Relaxed));
            out.set_flags(input.flags() & gst::BufferFlags::DISCONT);
        }
        gst::trace!(
            CAT,
            imp = self,
            "frame {}: {} bytes",
            facts.frame_number,
            output.size()
        );
        Ok(GenerateOutputSuccess::Buffer(output))
    }
}
