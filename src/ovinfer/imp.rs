//! The `ovinfer` element's GStreamer glue: its GObject subclass and properties, the state
//! changes (the model loaded at start, compiled for the caps), the transform (frames in and
//! their inferences started, frames out in order with their results attached), the LATENCY and
//! DRAIN queries, and the messages it posts. What does not need the element lives in the
//! sibling modules (see `super`).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::prelude::*;

use super::batch::BatchLayout;
use super::compiled::{self, Compiled};
use super::decode::ctc::Charset;
use super::decode::{Decoded, DecoderKind, Detection, ModelShape, Tensor};
use super::input;
use super::labels::{self, Labels};
use super::pool::{Backend, Instance, Keep, Request, Slot};
use super::reclassify::{Decision, Tracks};
use super::remote::{self, Remote};
use super::resize::Placement;
use super::roi::{self, Choice, RoiCounts};
use super::settings::{
    DEFAULT_DEVICE, DEFAULT_INPUT_MAX_SIDE, DEFAULT_INPUT_RANGE, DEFAULT_INTERVAL,
    DEFAULT_RECLASSIFY_INTERVAL, DEFAULT_REMOTE_TIMEOUT, DEFAULT_THRESHOLD, MAX_BATCH,
    MAX_INPUT_SIDE, MAX_NIREQ, Settings,
};
use super::shared::{COMPILED, INSTANCES, core};
use super::state::{self, Pending, RoiJob, RoiWork, Shape, Sizing, State, Work};
use super::stats::{Snapshot, Stats};
use super::straighten::Straight;
use super::{
    DecoderChoice, InferenceRegion, ModelColorFormat, PerformanceHint, PreProcessBackend,
    ResizeMode, model,
};
use crate::meta::{self, DetectionInfo, FrameClassification};
use crate::openvino::{self, PixelFormat};
use crate::properties::optional_string;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "ovinfer",
        gst::DebugColorFlags::empty(),
        Some("OpenVINO inference on video frames"),
    )
});

/// Writes an input into slot `slot` of a request, given what is compiled for the caps (see
/// `pool::Write`).
type WriteWith<'a> = dyn FnMut(&Compiled, &mut Request, usize) -> Result<Option<Keep>, String> + 'a;

#[derive(Default)]
pub struct OvInfer {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
    /// Kept after stop, so the counters can be read after EOS.
    stats: Mutex<Stats>,
    /// When the last `ovinfer-stats` message was posted.
    last_post: Mutex<Option<Instant>>,
    /// Whether upstream is live (from the LATENCY query): frames then leave as soon as the
    /// pool allows, instead of when the next frame comes.
    live: AtomicBool,
    /// The time inside the element beyond the frames held that the LATENCY answer included
    /// (live only): the warm-up inference's time, raised when measured frames take longer.
    processing: Mutex<Duration>,
    /// A LATENCY message is due (posted once the state is unlocked: a synchronous bus handler
    /// may query the element's latency at once).
    latency_changed: AtomicBool,
}

impl OvInfer {
    /// Loads the model, picks the decoder and reads the labels: everything that does not depend
    /// on caps, so that a bad model or labels file fails the state change.
    fn load(&self, settings: &Settings) -> Result<State, gst::ErrorMessage> {
        if let Some(options) = settings.remote()? {
            return self.load_remote(settings, options);
        }
        let path = settings.model_file()?;
        let range = settings.range()?;
        let ov_config = settings.ov_properties()?;
        let labels = settings.read_labels()?;
        let attribute = settings.attribute(&model::model_stem(&path))?;
        settings.check_resize()?;
        let core = core().map_err(|e| gst::error_msg!(gst::LibraryError::Init, ("{e}")))?;
        let mut model = core.read_model(&path).map_err(|e| {
            gst::error_msg!(
                gst::ResourceError::OpenRead,
                ("cannot read model {}: {e}. Is it a valid OpenVINO IR (.xml with its .bin), ONNX or TFLite file?", path.display())
            )
        })?;
        let in_err = |e: String| {
            gst::error_msg!(gst::StreamError::Format, ("model {}: {e}", path.display()))
        };
        let inputs = model.inputs().map_err(|e| in_err(e.to_string()))?;
        if inputs.len() != 1 {
            return Err(in_err(format!(
                "has {} inputs; ovinfer feeds models with exactly one image input",
                inputs.len()
            )));
        }
        // A recogniser's character set, when the model carries one (PP-OCR's: `character`).
        let charset_text = model::metadata(&path, "character");
        let input_size = settings
            .input_size()
            .map_err(|e| gst::error_msg!(gst::ResourceError::Settings, ("{e}")))?;
        let dynamic = model::dynamic_image_layout(&inputs[0].shape);
        // Dynamic height or width: the outputs of a probe size tell the decoder, which (or
        // input-size) tells the size of each use.
        let mut sizing = Sizing::Fixed;
        let port = match dynamic {
            None => inputs[0].clone(),
            Some(layout) => {
                // A detector's square, else a recogniser's strip (whose height must be 48).
                let sizes = match input_size {
                    Some(size) => vec![size],
                    None => model::PROBE_SIZES.to_vec(),
                };
                let mut probed = Err(String::new());
                for &(pw, ph) in &sizes {
                    probed = model
                        .reshape_input(&model::image_dims(layout, pw, ph))
                        .map_err(|e| e.to_string().lines().next().unwrap_or_default().to_string())
                        .and_then(|()| model::output_shapes(&model))
                        .map(|outputs| ModelShape {
                            outputs,
                            input_width: pw,
                            input_height: ph,
                        });
                    if probed.is_ok() {
                        break;
                    }
                }
                let probe = probed.map_err(|e| {
                    in_err(format!(
                        "has input '{}' {} of a dynamic size, and cannot take {} ({e}): set \
                         input-size=WIDTHxHEIGHT to a size it takes",
                        inputs[0].name,
                        inputs[0].shape_string(),
                        sizes
                            .iter()
                            .map(|(w, h)| format!("{w}x{h}"))
                            .collect::<Vec<_>>()
                            .join(" or ")
                    ))
                })?;
                let (pw, ph) = (probe.input_width, probe.input_height);
                let kind = self
                    .pick_decoder(settings, &probe, charset_text.is_some())
                    .map_err(in_err)?;
                let (w, h) = match (input_size, kind) {
                    (Some(size), _) => size,
                    (None, DecoderKind::TextRecognition) => {
                        sizing = Sizing::RecognitionWidth {
                            layout,
                            max_width: settings.input_max_side as usize,
                        };
                        model::TEXT_RECOGNITION_SIZE
                    }
                    (None, DecoderKind::TextDetection)
                        if settings.inference_region == InferenceRegion::FullFrame =>
                    {
                        sizing = Sizing::DetectionPerFrame {
                            layout,
                            max_side: settings.input_max_side as usize,
                        };
                        (pw, ph)
                    }
                    (None, kind) => {
                        // [1,T,C] without a character set reads as YOLO's [1,4+C,N] too.
                        let recogniser = DecoderKind::TextRecognition.check(&probe).is_ok();
                        return Err(in_err(format!(
                            "has input '{}' {} of a dynamic size, and decoder {kind}{} does not \
                             choose one: set input-size=WIDTHxHEIGHT{}",
                            inputs[0].name,
                            inputs[0].shape_string(),
                            if kind == DecoderKind::TextDetection {
                                " on ROIs"
                            } else {
                                ""
                            },
                            if recogniser && settings.decoder.kind().is_none() {
                                " (a text recogniser without a character set in its metadata? \
                                 set decoder=text-recognition and labels=FILE)"
                            } else {
                                ""
                            }
                        )));
                    }
                };
                let mut port = inputs[0].clone();
                port.shape = model::image_dims(layout, w, h)
                    .into_iter()
                    .map(Some)
                    .collect();
                port
            }
        };
        // input-size on a model of a static size: reshaped, if the model can take it.
        let port = match (dynamic, input_size) {
            (None, Some((w, h))) => {
                let layout = input::model_input(&port).map_err(in_err)?.layout;
                let mut port = port;
                port.shape = model::image_dims(layout, w, h)
                    .into_iter()
                    .map(Some)
                    .collect();
                port
            }
            _ => port,
        };
        let model_input = input::model_input(&port).map_err(in_err)?;
        let mut dims: Vec<i64> = port.shape.iter().map(|d| d.unwrap_or(1)).collect();
        if inputs[0]
            .shape
            .iter()
            .map(|d| d.unwrap_or(-1))
            .ne(dims.iter().copied())
        {
            model.reshape_input(&dims).map_err(|e| {
                in_err(format!(
                    "cannot take an input of {}x{} ({})",
                    model_input.width,
                    model_input.height,
                    e.to_string().lines().next().unwrap_or_default()
                ))
            })?;
        }
        let output_shapes = model::output_shapes(&model).map_err(in_err)?;
        let model_shape = ModelShape {
            outputs: output_shapes,
            input_width: model_input.width,
            input_height: model_input.height,
        };
        let decoder = self
            .pick_decoder(settings, &model_shape, charset_text.is_some())
            .map_err(in_err)?;
        let labels = match decoder {
            DecoderKind::TextRecognition => {
                let charset = self.charset(settings, charset_text.as_deref(), &path)?;
                let classes = model_shape.outputs[0][2];
                charset.check(classes).map_err(|e| {
                    gst::error_msg!(
                        gst::ResourceError::Settings,
                        (
                            "model {}: {e}: {}",
                            path.display(),
                            match &settings.labels {
                                Some(p) => format!(
                                    "labels file {} is not this model's character set",
                                    p.display()
                                ),
                                None => "the character set in its metadata does not fit it \
                                         (give the right one with labels=FILE)"
                                    .to_string(),
                            }
                        )
                    )
                })?;
                Labels::from_entries(charset.entries())
            }
            _ => labels,
        };
        let attribute = match (decoder, &settings.attribute_name) {
            (DecoderKind::TextRecognition, None) => "text".to_string(),
            _ => attribute,
        };
        let batch = settings.batch_size.max(1) as usize;
        let layout = if batch == 1 {
            BatchLayout::single(&model_shape.outputs)
        } else {
            dims[0] = batch as i64;
            let batched = model::batched_layout(&mut model, &dims, &model_shape, batch, decoder);
            batched.map_err(|e| {
                // OpenVINO's shape inference errors run to several lines: the first one says it.
                let e = e.lines().next().unwrap_or_default().to_string();
                gst::error_msg!(
                    gst::StreamError::Format,
                    (
                        "model {} cannot infer batches of {batch} frames ({e}): set batch-size=1",
                        path.display()
                    )
                )
            })?
        };
        if settings.inference_region == InferenceRegion::RoiList {
            gst::info!(
                CAT,
                imp = self,
                "inference-region=roi-list: ROIs of {} (min-roi-size {}), {}, reclassify-interval {}{}",
                match settings.object_class.trim() {
                    "" => "every class".to_string(),
                    classes => format!("class {classes}"),
                },
                settings.min_roi_size,
                if decoder == DecoderKind::Classification {
                    format!("classes as attribute '{attribute}'")
                } else {
                    "detections as new ROIs".to_string()
                },
                settings.reclassify_interval,
                if settings.pre_process_backend == PreProcessBackend::Openvino {
                    "; pre-process-backend=openvino does not apply: ovinfer crops and scales each ROI"
                } else {
                    ""
                }
            );
        }
        gst::info!(
            CAT,
            imp = self,
            "loaded {} with OpenVINO {}: input {} {:?} {}x{} {}, decoder {decoder}, {} labels",
            path.display(),
            openvino::version().unwrap_or_default(),
            inputs[0].shape_string(),
            model_input.element_type,
            model_input.width,
            model_input.height,
            model_input.layout,
            labels.len()
        );
        Ok(State {
            sizing,
            shape: Shape {
                input_dims: dims,
                model_input,
                model_shape,
                layout,
            },
            path: path.canonicalize().unwrap_or_else(|_| path.clone()),
            model_name: model::model_stem(&path),
            decoder,
            labels,
            range,
            ov_config,
            settings: settings.clone(),
            compiled: None,
            wider: Vec::new(),
            frames: 0,
            pending: VecDeque::new(),
            ready: VecDeque::new(),
            in_place: None,
            selection: settings.selection(),
            attribute,
            tracks: Tracks::new(settings.reclassify_interval),
            remote: None,
            failures_in_row: 0,
        })
    }

    /// `load` for a model on a server: its metadata (ModelReady, ModelMetadata) instead of the
    /// model file gives the input and the outputs, from which the same decoder, labels and
    /// pre-processing follow.
    fn load_remote(
        &self,
        settings: &Settings,
        options: remote::Options,
    ) -> Result<State, gst::ErrorMessage> {
        let range = settings.range()?;
        let labels = settings.read_labels()?;
        let attribute = settings.attribute(&options.model)?;
        // No check_resize: pre-process-backend does not apply (ovinfer's converter places
        // every picture, letterboxed or not).
        let input_size = settings
            .input_size()
            .map_err(|e| gst::error_msg!(gst::ResourceError::Settings, ("{e}")))?;
        let (url, name) = (options.target.url.clone(), options.model.clone());
        let client = remote::Client::new(options)
            .map_err(|e| gst::error_msg!(gst::ResourceError::Settings, ("{e}")))?;
        let metadata = client.metadata().map_err(|e| {
            gst::error_msg!(
                gst::ResourceError::OpenRead,
                ("{e}. Check that the server runs and serves the model: server, \
                     remote-model, remote-model-version (and for grpcs:// ca-file, for a server \
                     asking for credentials authorization)")
            )
        })?;
        let in_err = |e: String| {
            gst::error_msg!(
                gst::StreamError::Format,
                ("model '{name}' on server {url} {e}")
            )
        };
        let served = remote::Model::from_metadata(&metadata).map_err(in_err)?;
        let batch = settings.batch_size.max(1) as usize;
        let mut port = served.input.clone();
        if port.shape.len() == 4 {
            match port.shape[0] {
                None => port.shape[0] = Some(1),
                Some(n) if batch > 1 => {
                    return Err(in_err(format!(
                        "has input '{}' {} of a fixed batch of {n}: it cannot infer batches of \
                         {batch} frames; set batch-size=1",
                        port.name,
                        served.input.shape_string()
                    )));
                }
                Some(_) => {}
            }
            match (model::dynamic_image_layout(&port.shape), input_size) {
                (Some(layout), Some((w, h))) => {
                    port.shape = model::image_dims(layout, w, h)
                        .into_iter()
                        .map(Some)
                        .collect();
                }
                (Some(_), None) => {
                    return Err(in_err(format!(
                        "has input '{}' {} of a dynamic size: set input-size=WIDTHxHEIGHT to a \
                         size it takes",
                        port.name,
                        served.input.shape_string()
                    )));
                }
                (None, Some((w, h))) => {
                    return Err(in_err(format!(
                        "has input '{}' {} of a fixed size: input-size={w}x{h} cannot reshape a \
                         served model; leave input-size empty",
                        port.name,
                        served.input.shape_string()
                    )));
                }
                (None, None) => {}
            }
        }
        let model_input = input::model_input(&port).map_err(in_err)?;
        if batch > 1 && served.outputs.iter().any(|(_, s)| s.first() != Some(&None)) {
            return Err(in_err(format!(
                "has outputs {:?}, not all of a dynamic batch: it cannot infer batches of \
                 {batch} frames; set batch-size=1",
                served.outputs
            )));
        }
        // One frame's outputs: a dynamic batch is 1; any other dynamic dimension is unknown.
        let outputs = served
            .outputs
            .iter()
            .map(|(output, shape)| {
                shape
                    .iter()
                    .enumerate()
                    .map(|(i, d)| match d {
                        Some(d) => usize::try_from(*d).map_err(|_| ()),
                        None if i == 0 => Ok(1),
                        None => Err(()),
                    })
                    .collect::<Result<Vec<usize>, ()>>()
                    .map_err(|()| {
                        in_err(format!(
                            "has output '{output}' of shape {shape:?} with a dynamic dimension: \
                             ovinfer decodes outputs of known shapes"
                        ))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let model_shape = ModelShape {
            outputs,
            input_width: model_input.width,
            input_height: model_input.height,
        };
        let decoder = self
            .pick_decoder(settings, &model_shape, false)
            .map_err(in_err)?;
        let labels = match decoder {
            DecoderKind::TextRecognition => {
                let charset = self.charset(settings, None, std::path::Path::new(&url))?;
                charset
                    .check(model_shape.outputs[0][2])
                    .map_err(|e| in_err(format!("{e}: labels is not its character set")))?;
                Labels::from_entries(charset.entries())
            }
            _ => labels,
        };
        let layout = if batch == 1 {
            BatchLayout::single(&model_shape.outputs)
        } else {
            let batched: Vec<Vec<usize>> = model_shape
                .outputs
                .iter()
                .map(|s| {
                    let mut s = s.clone();
                    s[0] = batch;
                    s
                })
                .collect();
            BatchLayout::new(&model_shape.outputs, &batched, batch, |i| {
                decoder.batch_groups(&model_shape, i)
            })
            .map_err(in_err)?
        };
        let model_bgr = settings.model_color_format == ModelColorFormat::Bgr;
        let (w, h) = (model_input.width, model_input.height);
        let pre = input::preprocessing(
            &model_input,
            PixelFormat::Rgb,
            w,
            h,
            model_bgr,
            range,
            decoder,
        );
        let prep = remote::Prep {
            width: w,
            height: h,
            channels_first: model_input.layout == "NCHW",
            datatype: served.input_datatype,
            mean: pre.mean,
            scale: pre.scale,
        };
        let output_names = served.outputs.iter().map(|(n, _)| n.clone()).collect();
        let remote = Remote::new(client, port.name.clone(), prep, batch, output_names);
        if settings.pre_process_backend == PreProcessBackend::Openvino {
            gst::info!(
                CAT,
                imp = self,
                "pre-process-backend=openvino does not apply with a server: ovinfer converts \
                 and scales the frames it sends"
            );
        }
        if settings.device != DEFAULT_DEVICE || !settings.ov_config.trim().is_empty() {
            gst::warning!(
                CAT,
                imp = self,
                "device={} and ov-config='{}' do not apply with a server: the server chooses \
                 how it compiles '{name}'",
                settings.device,
                settings.ov_config
            );
        }
        gst::info!(
            CAT,
            imp = self,
            "model '{name}' on server {url}: input '{}' {} {} {w}x{h} {}, outputs {:?}, decoder \
             {decoder}, {} labels",
            port.name,
            served.input.shape_string(),
            metadata.inputs.first().map_or("", |i| i.datatype.as_str()),
            model_input.layout,
            served.outputs,
            labels.len()
        );
        let mut input_dims: Vec<i64> = port.shape.iter().map(|d| d.unwrap_or(1)).collect();
        if let Some(first) = input_dims.first_mut() {
            *first = batch as i64;
        }
        Ok(State {
            sizing: Sizing::Fixed,
            shape: Shape {
                input_dims,
                model_input,
                model_shape,
                layout,
            },
            path: PathBuf::from(&url).join(&name),
            model_name: name,
            decoder,
            labels,
            range,
            ov_config: Vec::new(),
            settings: settings.clone(),
            compiled: None,
            wider: Vec::new(),
            frames: 0,
            pending: VecDeque::new(),
            ready: VecDeque::new(),
            in_place: None,
            selection: settings.selection(),
            attribute,
            tracks: Tracks::new(settings.reclassify_interval),
            remote: Some(Arc::new(remote)),
            failures_in_row: 0,
        })
    }

    /// The decoder `decoder` names, checked against the model's outputs, or the one picked from
    /// them (`sequence_model`: a [1,T,C] output is read as text, see
    /// `DecoderKind::detect_with_text`).
    fn pick_decoder(
        &self,
        settings: &Settings,
        shape: &ModelShape,
        sequence_model: bool,
    ) -> Result<DecoderKind, String> {
        match settings.decoder.kind() {
            Some(kind) => {
                kind.check(shape)
                    .map_err(|e| format!("{e}; use decoder=auto or a matching model"))?;
                Ok(kind)
            }
            None => {
                let kind = DecoderKind::detect_with_text(shape, sequence_model)?;
                gst::info!(
                    CAT,
                    imp = self,
                    "decoder=auto picked '{kind}' for outputs {:?}",
                    shape.outputs
                );
                Ok(kind)
            }
        }
    }

    /// A text recogniser's character set: the `labels` file (one character per line, as
    /// PaddleOCR's keys files), else the model's metadata.
    fn charset(
        &self,
        settings: &Settings,
        metadata: Option<&str>,
        path: &std::path::Path,
    ) -> Result<Charset, gst::ErrorMessage> {
        match (&settings.labels, metadata) {
            (Some(file), _) => {
                let text = labels::read_text(file).map_err(|e| {
                    gst::error_msg!(
                        gst::ResourceError::NotFound,
                        (
                            "labels file {} cannot be read ({e}): check the labels property",
                            file.display()
                        )
                    )
                })?;
                Ok(Charset::parse(&text))
            }
            (None, Some(text)) => Ok(Charset::parse(text)),
            (None, None) => Err(gst::error_msg!(
                gst::ResourceError::Settings,
                (
                    "model {} reads text (decoder text-recognition) but has no character set: \
                     its metadata has no 'character' entry, and no labels file is set; give its \
                     characters with labels=FILE, one per line in the model's class order (the \
                     blank and the space are added)",
                    path.display()
                )
            )),
        }
    }

    /// The input size for `info`'s frames of a model sized per frame (`state.sizing`): text
    /// detection at the frame's size within `input-max-side`; text recognition on whole
    /// frames (a picture of one line) as wide as the line needs.
    fn size_for_frames(
        &self,
        state: &mut State,
        info: &gst_video::VideoInfo,
    ) -> Result<(), String> {
        let frame = (info.width() as usize, info.height() as usize);
        let height = state.shape.model_input.height;
        let (layout, (w, h), why) = match state.sizing {
            Sizing::Fixed => return Ok(()),
            Sizing::DetectionPerFrame { layout, max_side } => (
                layout,
                model::text_detection_size(frame, max_side),
                format!(
                    "text detection: longer side at most input-max-side={max_side}, multiples of 32"
                ),
            ),
            Sizing::RecognitionWidth { .. }
                if state.settings.inference_region == InferenceRegion::RoiList =>
            {
                return Ok(());
            }
            Sizing::RecognitionWidth { layout, max_width } => (
                layout,
                (
                    model::text_recognition_width(
                        frame,
                        height,
                        model::TEXT_RECOGNITION_SIZE.0,
                        max_width,
                    ),
                    height,
                ),
                format!(
                    "text recognition: as wide as the line, at most input-max-side={max_width}"
                ),
            ),
        };
        if (w, h) == (state.shape.model_input.width, height) {
            return Ok(());
        }
        state.shape = self.shape_at(state, layout, w, h)?;
        gst::info!(
            CAT,
            imp = self,
            "{}x{} frames: input {w}x{h} ({why})",
            frame.0,
            frame.1
        );
        Ok(())
    }

    /// The model's input and outputs at input size `w`x`h` (`layout`: the input's), for a
    /// model of a dynamic input size.
    fn shape_at(
        &self,
        state: &State,
        layout: &'static str,
        w: usize,
        h: usize,
    ) -> Result<Shape, String> {
        if (w, h)
            == (
                state.shape.model_input.width,
                state.shape.model_input.height,
            )
        {
            return Ok(state.shape.clone());
        }
        let core = core().map_err(|e| e.to_string())?;
        let mut dims = model::image_dims(layout, w, h);
        let mut model = model::read_shaped(core, &state.path, &dims).map_err(|e| e.to_string())?;
        let one = ModelShape {
            outputs: model::output_shapes(&model)?,
            input_width: w,
            input_height: h,
        };
        let batch = state.shape.layout.batch();
        let layout = if batch == 1 {
            BatchLayout::single(&one.outputs)
        } else {
            dims[0] = batch as i64;
            model::batched_layout(&mut model, &dims, &one, batch, state.decoder)?
        };
        let mut model_input = state.shape.model_input.clone();
        model_input.width = w;
        model_input.height = h;
        Ok(Shape {
            input_dims: dims,
            model_input,
            model_shape: one,
            layout,
        })
    }

    /// Compiles the model with pre-processing from the negotiated frames (with a server: the
    /// converter for them, and the pool of remote requests).
    fn compile(
        &self,
        state: &State,
        shape: &Shape,
        info: &gst_video::VideoInfo,
    ) -> Result<Compiled, String> {
        let (w, h) = (info.width() as usize, info.height() as usize);
        let (format, converter, pre) = compiled::frames_input(state, shape, info)?;
        let converter = converter.map(|c| c.with_resize(state.resize_mode()));
        let hint = state.settings.performance_hint.openvino_name();
        let batch = shape.layout.batch();
        let (backend, optimal, key, reused) = match &state.remote {
            Some(remote) => {
                let options = &remote.client.options;
                let key = format!(
                    "{} model '{}' version '{}'|batch {batch}|input {:?}",
                    options.target.url, options.model, options.version, shape.input_dims
                );
                // One request in flight for the latency hint, two with throughput.
                (Backend::Remote(remote.clone()), 1, key, false)
            }
            None => {
                let key = format!(
                    "{}|{}|{hint}|{:?}|batch {batch}|input {:?}|{pre:?}",
                    state.path.display(),
                    state.settings.device,
                    state.ov_config,
                    shape.input_dims
                );
                let (compiled, reused) = COMPILED.get_or_try_insert(&key, || {
                    let core = core().map_err(|e| e.to_string())?;
                    let model = model::read_shaped(core, &state.path, &shape.input_dims)
                        .and_then(|model| model.with_preprocessing(&pre))
                        .map_err(|e| e.to_string())?;
                    let mut properties = vec![("PERFORMANCE_HINT", hint)];
                    properties.extend(
                        state
                            .ov_config
                            .iter()
                            .map(|(k, v)| (k.as_str(), v.as_str())),
                    );
                    core.compile(&model, &state.settings.device, &properties)
                        .map_err(|e| {
                            format!(
                                "on device {} with {properties:?}: {e}",
                                state.settings.device
                            )
                        })
                })?;
                let optimal = compiled.optimal_requests().map_err(|e| e.to_string())?;
                (Backend::Local(compiled), optimal, key, reused)
            }
        };
        let nireq = match state.settings.nireq {
            0 => state
                .settings
                .performance_hint
                .default_requests(optimal)
                .clamp(1, MAX_NIREQ as usize),
            n => n as usize,
        };
        let new = || {
            let outputs = shape.model_shape.outputs.clone();
            let layout = shape.layout.clone();
            Instance::new(backend.clone(), nireq, outputs, layout, key.clone())
        };
        let instance = match &state.settings.model_instance_id {
            None => Arc::new(new()?),
            Some(id) => {
                // A recogniser's wider inputs are instances of their own.
                let id = if shape.input_dims == state.shape.input_dims {
                    id.clone()
                } else {
                    let input = &shape.model_input;
                    format!("{id} (input {}x{})", input.width, input.height)
                };
                let (instance, joined) = INSTANCES.get_or_try_insert(&id, new)?;
                if joined && instance.config != key {
                    return Err(format!(
                        "model-instance-id '{id}' is already used by an ovinfer with other \
                         settings or frames ({}), and this one needs ({key}): give it another \
                         model-instance-id, or the same model, device, performance-hint, \
                         ov-config, batch-size and pre-process-backend (and with \
                         pre-process-backend=openvino, the same frame format and size)",
                        instance.config
                    ));
                }
                instance
            }
        };
        let shared = match &state.settings.model_instance_id {
            Some(id) => format!(" of instance '{id}'"),
            None => String::new(),
        };
        match &state.remote {
            Some(remote) => gst::info!(
                CAT,
                imp = self,
                "for {:?} {w}x{h}: {} requests of {batch} frames in flight{shared} to {} \
                 (ovinfer converts frames), warm-up round trip {:?}",
                info.format(),
                instance.size,
                remote.client.options.target.url,
                instance.inference_time
            ),
            None => gst::info!(
                CAT,
                imp = self,
                "{} for {:?} {w}x{h} on {} ({hint}, {:?}), {} infer requests of {batch} frames{shared}, {}: {pre:?}",
                if reused {
                    "sharing the model compiled"
                } else {
                    "compiled"
                },
                info.format(),
                state.settings.device,
                state.ov_config,
                instance.size,
                if converter.is_some() {
                    "ovinfer converts frames"
                } else {
                    "OpenVINO pre-processes frames"
                }
            ),
        }
        Ok(Compiled {
            instance,
            shape: shape.clone(),
            info: info.clone(),
            format,
            converter,
        })
    }

    /// Takes a frame in: starts its inferences (of the whole frame, or of its ROIs), or queues
    /// it untouched when `interval` skips it. Frames whose inferences are over move to `ready`.
    fn submit(&self, state: &mut State, buffer: gst::Buffer) -> Result<(), String> {
        let n = state.frames;
        state.frames += 1;
        let work = if !n.is_multiple_of(u64::from(state.settings.interval.max(1))) {
            Work::Skipped
        } else {
            match state.settings.inference_region {
                InferenceRegion::FullFrame => Work::Frame(self.start_frame(state, &buffer, n)?),
                InferenceRegion::RoiList => Work::Rois(self.start_rois(state, &buffer, n)?),
            }
        };
        let arrived = Instant::now();
        self.stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .arrived(arrived);
        state.pending.push_back(Pending {
            buffer,
            work,
            frame: n,
            arrived,
        });
        // Frames already done leave now, so a live stream is not held back by the pool.
        while let Some(front) = state.pending.front() {
            if !front.work.is_done()? {
                break;
            }
            self.finish_oldest(state)?;
        }
        // Live: at most nireq x batch-size - 1 frames wait inside, so with one request (the
        // latency hint's number on CPU) and no batching each frame leaves as soon as its own
        // inference is over, and the delay added is what the LATENCY query reports.
        if self.live.load(Ordering::Relaxed) {
            let held = state
                .compiled
                .as_ref()
                .map_or(1, |c| c.instance.frames_held());
            while state.pending.len() > held {
                self.finish_oldest(state)?;
            }
        }
        Ok(())
    }

    /// A slot of the instance at input width `width` (see `State::compiled_at`) with
    /// `write`'s input in it. With every request in flight, this element's oldest frames finish
    /// first, and when it has none in flight, the instance's oldest inference is harvested
    /// (which may be one of the ROIs of the frame coming in).
    fn add_job(
        &self,
        state: &mut State,
        width: usize,
        write: &mut WriteWith<'_>,
    ) -> Result<Slot, String> {
        let instance = state
            .compiled_at(width)
            .ok_or("no caps negotiated before the first frame")?
            .instance
            .clone();
        loop {
            {
                let compiled = state.compiled_at(width).ok_or("caps went away")?;
                let mut write = |request: &mut Request, slot: usize| write(compiled, request, slot);
                if let Some(added) = instance.try_add(&mut write) {
                    return added;
                }
                if state.pending.is_empty() {
                    return instance.add(&mut write);
                }
            }
            self.finish_oldest(state)?;
        }
    }

    /// Starts the inference of the whole frame.
    fn start_frame(&self, state: &mut State, buffer: &gst::Buffer, n: u64) -> Result<Slot, String> {
        let converted = state
            .compiled
            .as_ref()
            .is_some_and(|c| c.converter.is_some());
        let mut in_place = false;
        let width = state.shape.model_input.width;
        let slot = self.add_job(state, width, &mut |compiled, request, slot| {
            let keep = compiled.feed(request, slot, buffer)?;
            in_place = keep.is_some();
            Ok(keep)
        })?;
        if state.in_place != Some(in_place) {
            state.in_place = Some(in_place);
            gst::debug!(
                CAT,
                imp = self,
                "frame {n}: {}",
                if in_place {
                    "the input tensor reads the frame in place (no copy)"
                } else if converted {
                    "ovinfer converts the frame into the input tensor"
                } else {
                    "the frame is copied into the input tensor (its rows or planes are padded, or it is batched)"
                }
            );
        }
        Ok(slot)
    }

    /// Starts the inferences of the frame's ROIs (`inference-region=roi-list`): each ROI chosen
    /// (by `object-class` and `min-roi-size`, clipped to the frame) is cropped and scaled from
    /// the frame in place into its own slot, unless its track reuses its last result
    /// (`reclassify-interval`). The slots go through the pool like frames: in parallel on its
    /// requests, and into batches with `batch-size`.
    fn start_rois(
        &self,
        state: &mut State,
        buffer: &gst::Buffer,
        n: u64,
    ) -> Result<RoiWork, String> {
        let info = state
            .compiled
            .as_ref()
            .ok_or("no caps negotiated before the first frame")?
            .info
            .clone();
        let frame_size = (info.width(), info.height());
        state.tracks.begin_frame();
        let mut counts = RoiCounts::default();
        let mut plan = Vec::new();
        for (index, roi) in meta::rois(buffer).iter().enumerate() {
            let detection_label = roi.detection.as_ref().map_or("", |d| d.label.as_str());
            let labels = [roi.roi_type.as_str(), detection_label];
            match state.selection.choose(&labels, roi.rect, frame_size) {
                Choice::Infer(rect) => {
                    let decision = state.tracks.decide(roi.tracking_id().as_deref());
                    let crop = Crop::of(roi, rect, frame_size, state.decoder);
                    plan.push((index, crop, decision));
                }
                skipped => {
                    gst::log!(
                        CAT,
                        imp = self,
                        "frame {n}: ROI {index} ({}) at {:?} skipped: {skipped:?}",
                        roi.roi_type,
                        roi.rect
                    );
                    counts.skipped(skipped);
                }
            }
        }
        let mut jobs: Vec<RoiJob> = Vec::with_capacity(plan.len());
        let inferred = |p: &&(usize, Crop, Decision<Decoded>)| matches!(p.2, Decision::Infer(_));
        let mapped = if plan.iter().any(|p| inferred(&p)) {
            Some(
                gst_video::VideoFrameRef::from_buffer_ref_readable(buffer.as_ref(), &info)
                    .map_err(|_| "cannot map the frame for reading".to_string())?,
            )
        } else {
            None
        };
        let planes = match &mapped {
            Some(frame) => compiled::planes(frame)?,
            None => Vec::new(),
        };
        // The input width of each ROI inferred: a text recogniser sized per crop reads the
        // frame's crops inferred in groups (see `model::text_recognition_widths`).
        let input = &state.shape.model_input;
        let mut widths = match state.sizing {
            Sizing::RecognitionWidth { max_width, .. } => {
                let crops: Vec<(usize, usize)> =
                    plan.iter().filter(inferred).map(|p| p.1.size()).collect();
                model::text_recognition_widths(&crops, input.height, input.width, max_width)
            }
            _ => Vec::new(),
        }
        .into_iter();
        for (index, crop, decision) in plan {
            let rect = crop.rect;
            let (slot, result) = match decision {
                Decision::Reuse(result) => {
                    counts.reused += 1;
                    (None, result)
                }
                Decision::Infer(result) => {
                    let width = widths.next().unwrap_or(state.shape.model_input.width);
                    match self.start_roi(state, &info, &crop, width, &planes) {
                        Ok(slot) => {
                            counts.inferred += 1;
                            (Some(slot), result)
                        }
                        Err(e) => {
                            state::discard_jobs(jobs);
                            return Err(format!("ROI {index} at {rect:?}: {e}"));
                        }
                    }
                }
            };
            jobs.push(RoiJob {
                index,
                rect,
                slot,
                result,
            });
        }
        gst::log!(
            CAT,
            imp = self,
            "frame {n}: ROIs {} inferred, {} reused, {} of other classes, {} empty, {} too small",
            counts.inferred,
            counts.reused,
            counts.other_class,
            counts.empty,
            counts.too_small
        );
        Ok(RoiWork { jobs, counts })
    }

    /// Starts the inference of one ROI of the frame (`planes`, of `info`): cropped and scaled
    /// from the frame in place into a slot of the instance for input width `width` (or its
    /// rotated box straightened, see `Crop`). A text recogniser sized per crop
    /// (`Sizing::RecognitionWidth`) reads long lines at wider inputs, each compiled the first
    /// time a crop needs it.
    fn start_roi(
        &self,
        state: &mut State,
        info: &gst_video::VideoInfo,
        crop: &Crop,
        width: usize,
        planes: &[(&[u8], usize)],
    ) -> Result<(Slot, Arc<Instance>), String> {
        if let Sizing::RecognitionWidth { layout, .. } = state.sizing
            && state.compiled_at(width).is_none()
        {
            let height = state.shape.model_input.height;
            let shape = self.shape_at(state, layout, width, height)?;
            let wider = self.compile(state, &shape, info)?;
            gst::info!(
                CAT,
                imp = self,
                "text recognition at input {width}x{height} for crops up to {:.1} times as wide \
                 as high",
                width as f64 / height as f64
            );
            state.wider.push(wider);
        }
        let compiled = state.compiled_at(width).ok_or("caps went away")?;
        let instance = compiled.instance.clone();
        let batch = instance.batch;
        let converter = compiled
            .converter
            .as_ref()
            .ok_or("ROIs need ovinfer's converter, and the frames have none")?;
        let (x, y, w, h) = crop.rect;
        let slot = match crop.straight {
            None => {
                let upright = converter
                    .cropped((x as usize, y as usize, w as usize, h as usize))
                    .ok_or("it is not inside the frame")?;
                self.add_job(state, width, &mut |_, request, slot| {
                    compiled::write_converted(request, slot, batch, &upright, planes, crop.turn)
                })?
            }
            Some((straight, window)) => {
                let native = converter
                    .native(window)
                    .ok_or("its rotated box is not inside the frame")?;
                let input = &compiled.shape.model_input;
                let fit = ((input.width, input.height), state.resize_mode());
                self.add_job(state, width, &mut |_, request, slot| {
                    compiled::write_straightened(
                        request, slot, batch, &native, &straight, fit, planes,
                    )
                })?
            }
        };
        Ok((slot, instance))
    }

    /// How long a live stream's frames may wait inside the element for their turn: one frame
    /// duration per frame held (zero before caps, or without a frame rate).
    fn held_latency(&self) -> gst::ClockTime {
        let guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        guard
            .as_ref()
            .and_then(|s| s.compiled.as_ref())
            .map_or(gst::ClockTime::ZERO, Compiled::held_latency)
    }

    /// The time a live frame's own inference adds: the instance's warm-up inference time plus
    /// 25% (set with the caps), then what the frames measured if that is longer (see
    /// `check_latency`).
    fn processing_latency(&self) -> gst::ClockTime {
        let processing = *self.processing.lock().unwrap_or_else(|e| e.into_inner());
        gst::ClockTime::from_nseconds(processing.as_nanos() as u64)
    }

    /// Live: every `LATENCY_CHECK` inferred frames, when the 99th percentile of the time frames
    /// spent inside exceeds what the LATENCY answer said by more than 10% (the machine is
    /// busier than at the warm-up, a shared instance is loaded), raises it with 10% to spare and
    /// has a LATENCY message posted, so that the pipeline asks again and live sinks do not find
    /// frames late. It never lowers it: a pipeline's latency should not flap.
    fn check_latency(&self, inferences: u64) {
        const LATENCY_CHECK: u64 = 32;
        if !self.live.load(Ordering::Relaxed) || !inferences.is_multiple_of(LATENCY_CHECK) {
            return;
        }
        let p99 = self.snapshot().latency_p99;
        {
            let mut processing = self.processing.lock().unwrap_or_else(|e| e.into_inner());
            if p99 <= *processing + *processing / 10 {
                return;
            }
            *processing = p99 + p99 / 10;
        }
        gst::info!(
            CAT,
            imp = self,
            "frames take up to {:.1} ms inside (99th percentile): asking the pipeline to \
             recompute its latency",
            p99.as_secs_f64() * 1000.0
        );
        self.latency_changed.store(true, Ordering::Relaxed);
    }

    /// Waits for the oldest frame's inference, attaches its results and moves it to `ready`.
    fn finish_oldest(&self, state: &mut State) -> Result<(), String> {
        let Some(Pending {
            mut buffer,
            work,
            frame,
            arrived,
        }) = state.pending.pop_front()
        else {
            return Ok(());
        };
        let inferred = !matches!(work, Work::Skipped);
        let mut counts = None;
        match work {
            Work::Skipped => {}
            Work::Frame(slot) => {
                let instance = &state.compiled.as_ref().ok_or("caps went away")?.instance;
                let attached = instance
                    .read(slot, |outputs| {
                        self.attach(state, outputs, buffer.make_mut(), frame)
                    })
                    .and_then(|attached| attached.transpose())
                    .map_err(|e| format!("frame {frame}: {e}"))?;
                let got = attached.is_some();
                self.remote_results(state, usize::from(got), usize::from(!got))?;
            }
            Work::Rois(rois) => {
                counts = Some(rois.counts);
                let inferred = rois.jobs.iter().filter(|j| j.slot.is_some()).count();
                let failed = self
                    .attach_rois(state, rois.jobs, buffer.make_mut(), frame)
                    .map_err(|e| format!("frame {frame}: {e}"))?;
                self.remote_results(state, inferred - failed, failed)?;
            }
        }
        state.ready.push_back(buffer);
        let inferences = {
            let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
            stats.left(inferred.then(|| arrived.elapsed()));
            if let Some(counts) = &counts {
                stats.rois(counts);
            }
            stats.inferences()
        };
        if inferred {
            self.check_latency(inferences);
        }
        self.maybe_post_stats(state.settings.stats_interval, false);
        Ok(())
    }

    /// With a server: counts the inferences that gave no results (`failed`), posts a warning
    /// at the first of an outage, and fails after `max-failures` in a row.
    fn remote_results(
        &self,
        state: &mut State,
        inferred: usize,
        failed: usize,
    ) -> Result<(), String> {
        let Some(remote) = state.remote.clone() else {
            return Ok(());
        };
        let url = &remote.client.options.target.url;
        if failed == 0 {
            if inferred > 0 {
                state.failures_in_row = 0;
                if remote.take_recovery() {
                    gst::info!(
                        CAT,
                        imp = self,
                        "server {url} answers again: results resume"
                    );
                }
            }
            return Ok(());
        }
        {
            let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
            for _ in 0..failed {
                stats.remote_failed();
            }
        }
        state.failures_in_row = state
            .failures_in_row
            .saturating_add(u32::try_from(failed).unwrap_or(u32::MAX));
        let max = state.settings.max_failures;
        if max > 0 && state.failures_in_row >= max {
            return Err(format!(
                "{} inferences in a row got no results from server {url} (model '{}'), \
                 max-failures={max}; last: {}. Check that the server runs and serves the model, \
                 or set max-failures=0 to let frames pass without results while it is down",
                state.failures_in_row,
                remote.client.options.model,
                remote.last_error()
            ));
        }
        if let Some(error) = remote.take_outage() {
            gst::element_imp_warning!(
                self,
                gst::ResourceError::Read,
                (
                    "inference on server {url} (model '{}') failed: {error}. Frames pass \
                     without results (counted in remote-failures) until it answers again",
                    remote.client.options.model
                )
            );
        }
        Ok(())
    }

    fn snapshot(&self) -> Snapshot {
        self.stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .snapshot(Instant::now())
    }

    /// Posts the `ovinfer-stats` element message when `interval_ms` has passed since the last
    /// one (or now, with `last`, at EOS).
    fn maybe_post_stats(&self, interval_ms: u32, last: bool) {
        if interval_ms == 0 {
            return;
        }
        let now = Instant::now();
        {
            let mut last_post = self.last_post.lock().unwrap_or_else(|e| e.into_inner());
            let due = last_post.is_none_or(|t| {
                now.duration_since(t) >= Duration::from_millis(u64::from(interval_ms))
            });
            if !due && !last {
                return;
            }
            *last_post = Some(now);
        }
        let structure = self.snapshot().structure(last);
        gst::info!(CAT, imp = self, "{structure}");
        let _ = self.obj().post_message(
            gst::message::Element::builder(structure)
                .src(&*self.obj())
                .build(),
        );
    }

    /// Every frame in flight finishes and moves to `ready` (EOS, caps and other serialised
    /// events must not overtake them).
    fn drain(&self, state: &mut State) -> Result<(), String> {
        while !state.pending.is_empty() {
            self.finish_oldest(state)?;
        }
        Ok(())
    }

    /// Finishes every frame in flight and pushes them all, from the streaming thread (before a
    /// serialised event or on a DRAIN query).
    fn push_all(&self) {
        let (ready, failed) = {
            let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
            match guard.as_mut() {
                None => (VecDeque::new(), None),
                Some(state) => {
                    let failed = self.drain(state).err();
                    (std::mem::take(&mut state.ready), failed)
                }
            }
        };
        if let Some(e) = failed {
            gst::element_imp_error!(self, gst::StreamError::Failed, ("inference failed: {e}"));
        }
        let src = self.obj().src_pad().clone();
        for buffer in ready {
            if let Err(flow) = src.push(buffer) {
                gst::debug!(CAT, imp = self, "pushing drained frames: {flow:?}");
                break;
            }
        }
    }

    /// Decodes a finished inference's outputs and attaches the results to the frame.
    fn attach(
        &self,
        state: &State,
        tensors: &[Tensor<'_>],
        buffer: &mut gst::BufferRef,
        n: u64,
    ) -> Result<(), String> {
        let threshold = state.settings.threshold as f32;
        let compiled = state.compiled.as_ref().ok_or("caps went away")?;
        let frame = (compiled.info.width(), compiled.info.height());
        let decoded = state.decoder.decode_picture(
            tensors,
            &compiled.shape.model_shape,
            threshold,
            &placement(state, &compiled.shape, frame),
        )?;
        match decoded {
            Decoded::Detections(found) => self.add_detections(state, buffer, &found, n),
            Decoded::Classification(Some(c)) => {
                let result = FrameClassification {
                    label: state.label(c.label_id),
                    label_id: c.label_id,
                    confidence: c.confidence as f64,
                    model: state.model_name.clone(),
                };
                gst::debug!(
                    CAT,
                    imp = self,
                    "frame {n}: class {} ({}) {:.3}",
                    result.label,
                    result.label_id,
                    result.confidence
                );
                meta::add_frame_classification(buffer, &result);
            }
            Decoded::Classification(None) => {
                gst::log!(CAT, imp = self, "frame {n}: no class above threshold");
            }
            Decoded::Text(Some(read)) => {
                let text = state.text(&read.ids);
                gst::debug!(
                    CAT,
                    imp = self,
                    "frame {n}: text {text:?} {:.3}",
                    read.confidence
                );
                meta::add_frame_result(
                    buffer,
                    &roi::frame_text(&text, read.confidence, &state.model_name),
                );
            }
            Decoded::Text(None) => {
                gst::log!(CAT, imp = self, "frame {n}: no text above threshold");
            }
        }
        Ok(())
    }

    /// Reads the results of a frame's ROIs (each decoded into its cell, which frames reusing
    /// it read later) and attaches them: a class as an attribute structure on its ROI,
    /// detections as new ROIs in the frame's coordinates. Returns how many of its inferences
    /// gave no results (remote calls that failed).
    fn attach_rois(
        &self,
        state: &State,
        jobs: Vec<RoiJob>,
        buffer: &mut gst::BufferRef,
        n: u64,
    ) -> Result<usize, String> {
        let mut failed = 0;
        let compiled = state.compiled.as_ref().ok_or("caps went away")?;
        let threshold = state.settings.threshold as f32;
        let mut jobs = jobs.into_iter();
        // Each job, and whether it was inferred here (rather than given its track's result).
        let mut read = Vec::new();
        while let Some(mut job) = jobs.next() {
            let inferred = job.slot.is_some();
            if let Some((slot, instance)) = job.slot.take() {
                let shape = state
                    .compiled
                    .iter()
                    .chain(&state.wider)
                    .find(|c| Arc::ptr_eq(&c.instance, &instance))
                    .map_or(&state.shape, |c| &c.shape);
                let decoded = instance
                    .read(slot, |outputs| {
                        let crop = placement(state, shape, (job.rect.2, job.rect.3));
                        let model = &shape.model_shape;
                        state
                            .decoder
                            .decode_picture(outputs, model, threshold, &crop)
                    })
                    .and_then(|decoded| decoded.transpose());
                match decoded {
                    // Set once: this frame owns the cell of its inference.
                    Ok(Some(decoded)) => drop(job.result.set(decoded)),
                    Ok(None) => failed += 1,
                    Err(e) => {
                        state::discard_jobs(jobs);
                        return Err(format!("ROI {} at {:?}: {e}", job.index, job.rect));
                    }
                }
            }
            read.push((job, inferred));
        }
        let frame = (compiled.info.width(), compiled.info.height());
        let mut attributes = Vec::new();
        let mut found = Vec::new();
        for (job, inferred) in &read {
            match job.result.get() {
                Some(Decoded::Classification(Some(c))) => {
                    let label = state.label(c.label_id);
                    gst::debug!(
                        CAT,
                        imp = self,
                        "frame {n}: ROI {} at {:?}: {} {label} ({}) {:.3}{}",
                        job.index,
                        job.rect,
                        state.attribute,
                        c.label_id,
                        c.confidence,
                        if *inferred {
                            ""
                        } else {
                            " (its track's last result)"
                        }
                    );
                    attributes.push((job.index, roi::attribute(&state.attribute, &label, c)));
                }
                Some(Decoded::Text(Some(read))) => {
                    let text = state.text(&read.ids);
                    gst::debug!(
                        CAT,
                        imp = self,
                        "frame {n}: ROI {} at {:?}: {} {text:?} {:.3}{}",
                        job.index,
                        job.rect,
                        state.attribute,
                        read.confidence,
                        if *inferred {
                            ""
                        } else {
                            " (its track's last result)"
                        }
                    );
                    attributes.push((
                        job.index,
                        roi::text_attribute(&state.attribute, &text, read.confidence),
                    ));
                }
                // Clipped to the ROI (what the model saw), then moved into the frame.
                Some(Decoded::Detections(inside)) => found.extend(
                    inside
                        .iter()
                        .filter_map(Detection::clipped)
                        .map(|d| roi::to_frame(&d, job.rect, frame)),
                ),
                // No class above the threshold; or (never, as frames leave in order) a track's
                // result not there yet.
                Some(Decoded::Classification(None) | Decoded::Text(None)) | None => {}
            }
        }
        let mut attributes = attributes.into_iter().peekable();
        for (index, mut roi) in buffer
            .iter_meta_mut::<gst_video::VideoRegionOfInterestMeta>()
            .enumerate()
        {
            while let Some((_, attribute)) = attributes.next_if(|(i, _)| *i == index) {
                roi.add_param(attribute);
            }
        }
        self.add_detections(state, buffer, &found, n);
        Ok(failed)
    }

    /// Attaches detections (normalised to the frame, not yet clipped) as ROIs with their
    /// `detection` structure; boxes with nothing inside the frame, or less than a pixel wide or
    /// high, are left out.
    fn add_detections(
        &self,
        state: &State,
        buffer: &mut gst::BufferRef,
        found: &[Detection],
        n: u64,
    ) {
        let Some(compiled) = state.compiled.as_ref() else {
            return;
        };
        let (width, height) = (compiled.info.width(), compiled.info.height());
        let mut attached = 0;
        for d in found.iter().filter_map(|d| d.clipped()) {
            let info = DetectionInfo {
                label: state.label(d.label_id),
                label_id: d.label_id,
                confidence: d.confidence as f64,
                bbox: [d.x_min, d.y_min, d.x_max, d.y_max].map(f64::from),
                model: state.model_name.clone(),
            };
            let rect = meta::pixel_rect(info.bbox, width, height);
            if rect.2 == 0 || rect.3 == 0 {
                continue;
            }
            gst::debug!(
                CAT,
                imp = self,
                "frame {n}: {} ({}) {:.3} at x={} y={} w={} h={}",
                info.label,
                info.label_id,
                info.confidence,
                rect.0,
                rect.1,
                rect.2,
                rect.3
            );
            let corners = d.quad.map(|q| q.map(f64::from));
            meta::add_rotated_detection(buffer, width, height, &info, corners);
            attached += 1;
        }
        gst::log!(CAT, imp = self, "frame {n}: {attached} detections");
    }
}

/// What is cut out of the frame for an ROI.
struct Crop {
    /// The ROI clipped to the frame.
    rect: roi::Rect,
    /// Its rotated box (`rotated_box`, from a text detector), straightened and turned over
    /// when the text is upside down, and the window of the frame around it; then `rect` is not
    /// read.
    straight: Option<(Straight, (usize, usize, usize, usize))>,
    /// Read turned over (180°): text an orientation classifier found upside down, read by a
    /// recogniser.
    turn: bool,
}

impl Crop {
    /// The crop of `roi` (`rect`: clipped to a `frame`-sized frame) for a model of `decoder`.
    fn of(roi: &meta::Roi, rect: roi::Rect, frame: (u32, u32), decoder: DecoderKind) -> Crop {
        let turn =
            decoder == DecoderKind::TextRecognition && roi::upside_down(&roi.attribute_infos());
        let (fw, fh) = (frame.0 as f32, frame.1 as f32);
        let straight = roi.rotated_box().and_then(|corners| {
            let px: [f32; 8] = std::array::from_fn(|i| {
                corners[i] as f32 * if i.is_multiple_of(2) { fw } else { fh }
            });
            let straight = Straight::new(px)?;
            let straight = if turn { straight.turned() } else { straight };
            // The frame's pixels around the box (a pixel more each way for sampling).
            let xs = [px[0], px[2], px[4], px[6]];
            let ys = [px[1], px[3], px[5], px[7]];
            let low = |v: [f32; 4], size: f32| {
                v.iter()
                    .fold(size, |m, &a| m.min(a))
                    .floor()
                    .clamp(0.0, size)
            };
            let high = |v: [f32; 4], size: f32| {
                (v.iter().fold(0.0f32, |m, &a| m.max(a)).ceil() + 1.0).clamp(0.0, size)
            };
            let (x0, y0) = (low(xs, fw), low(ys, fh));
            let (x1, y1) = (high(xs, fw), high(ys, fh));
            (x1 > x0 && y1 > y0).then(|| {
                let window = (
                    x0 as usize,
                    y0 as usize,
                    (x1 - x0) as usize,
                    (y1 - y0) as usize,
                );
                (straight.shifted(x0, y0), window)
            })
        });
        Crop {
            rect,
            straight,
            turn,
        }
    }

    /// The size of the picture read (width, height).
    fn size(&self) -> (usize, usize) {
        match &self.straight {
            Some((straight, _)) => straight.size(),
            None => (self.rect.2 as usize, self.rect.3 as usize),
        }
    }
}

/// Where `pre-process-resize` puts a `picture`-sized picture (a frame, or an ROI's crop) in the
/// model's input: whoever pre-processes it (ovinfer's converter places it so; OpenVINO only
/// stretches, refused with a letterbox at start), the same rectangle.
fn placement(state: &State, shape: &Shape, picture: (u32, u32)) -> Placement {
    Placement::new(
        state.resize_mode(),
        (picture.0 as usize, picture.1 as usize),
        (shape.model_input.width, shape.model_input.height),
    )
}

#[glib::object_subclass]
impl ObjectSubclass for OvInfer {
    const NAME: &'static str = "GstOvInfer";
    type Type = super::OvInfer;
    type ParentType = gst_base::BaseTransform;
}

impl ObjectImpl for OvInfer {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("model")
                    .nick("Model")
                    .blurb("Model file: OpenVINO IR (.xml, with its .bin beside it), ONNX (.onnx) or TFLite (.tflite)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("device")
                    .nick("Device")
                    .blurb("OpenVINO device to run on: CPU, GPU, NPU, AUTO, ... (passed to OpenVINO as is)")
                    .default_value(Some(DEFAULT_DEVICE))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("labels")
                    .nick("Labels")
                    .blurb("Labels file: one label per line (id = line number from 0), or \"id name\" per line, ids being the model's own class ids (an SSD with a background class reports a person as 1); without it labels are the class ids. At most 4 MiB, 4096 bytes a line")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder("threshold")
                    .nick("Threshold")
                    .blurb("Minimum confidence of a detection or classification to be attached")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_THRESHOLD)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("decoder", DecoderChoice::Auto)
                    .nick("Decoder")
                    .blurb("How to read the model's outputs; auto picks from the output shapes and logs its choice (GST_DEBUG=ovinfer:4)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("interval")
                    .nick("Interval")
                    .blurb("Run inference on every Nth frame; the others pass through untouched")
                    .minimum(1)
                    .default_value(DEFAULT_INTERVAL)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("input-range")
                    .nick("Input range")
                    .blurb("Value range pixels are scaled to for float model inputs: \"MIN,MAX\" (e.g. \"-1,1\"), or auto: [-1,1] for BlazeFace, [0,1] for other float models; integer inputs always get 0..255")
                    .default_value(Some(DEFAULT_INPUT_RANGE))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("model-color-format", ModelColorFormat::Rgb)
                    .nick("Model colour format")
                    .blurb("Channel order the model was trained on (OpenVINO Open Model Zoo IRs are usually bgr); frames are converted to it")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("stats-interval")
                    .nick("Statistics interval")
                    .blurb("Post an \"ovinfer-stats\" element message (frames, inferences, fps, elapsed, latency mean/p50/p99 in ms) every this many ms, and one at EOS; see them with gst-launch-1.0 -m. 0 = never")
                    .default_value(0)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt64::builder("frames")
                    .nick("Frames")
                    .blurb("Frames that left the element since it started")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt64::builder("inferences")
                    .nick("Inferences")
                    .blurb("Frames inferred since the element started (fewer than frames with interval; with batch-size, several per inference)")
                    .read_only()
                    .build(),
                glib::ParamSpecDouble::builder("fps")
                    .nick("Frames per second")
                    .blurb("Frames out per second since the first frame came in")
                    .read_only()
                    .build(),
                glib::ParamSpecDouble::builder("latency-mean-ms")
                    .nick("Mean latency")
                    .blurb("Mean time an inferred frame spent in the element, in ms")
                    .read_only()
                    .build(),
                glib::ParamSpecDouble::builder("latency-p50-ms")
                    .nick("Median latency")
                    .blurb("Median time an inferred frame spent in the element over the last 1024 inferences, in ms")
                    .read_only()
                    .build(),
                glib::ParamSpecDouble::builder("latency-p99-ms")
                    .nick("99th percentile latency")
                    .blurb("99th percentile of the time an inferred frame spent in the element over the last 1024 inferences, in ms")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt::builder("nireq")
                    .nick("Infer requests")
                    .blurb("Inferences in flight at once; frames still leave in order. 0 = OpenVINO's optimal number for the device and performance-hint (1 for latency on CPU), doubled for throughput so that no stream waits for an earlier frame")
                    .maximum(MAX_NIREQ)
                    .default_value(0)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("batch-size")
                    .nick("Batch size")
                    .blurb("Frames per inference (from this stream, or from every stream sharing the model-instance-id): the model is reshaped to this batch. A batch starts when full, or earlier when one of its frames must leave (EOS, a drain, a live stream's bound of nireq x batch-size - 1 frames held). The model's outputs must hold one result per frame (BlazeFace and classifiers do; the SSD IR cannot be reshaped). On CPU, 1 unless measured otherwise (see docs/ovinfer.md, Batching)")
                    .minimum(1)
                    .maximum(MAX_BATCH)
                    .default_value(1)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("model-instance-id")
                    .nick("Model instance id")
                    .blurb("Elements of one process with the same id share one compiled model and its pool of infer requests (one instance for many cameras); the first to start sets nireq, the others must use the same model, device, performance-hint, ov-config, batch-size and pre-process-backend (and with pre-process-backend=openvino, the same frame format and size). Unset: the element has its own requests")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("pre-process-backend", PreProcessBackend::Ovinfer)
                    .nick("Pre-processing backend")
                    .blurb("Who turns frames into the model's picture: ovinfer (colour conversion and bilinear resize in one pass while writing the input tensor, the pixels of OpenCV's cvtColor + resize) or openvino (OpenVINO's pre-processing converts and resizes RGB/BGR/RGBx/BGRx and even-sized NV12/I420 frames of another size than the model's, read in place; ovinfer converts the others). Frames already in the model's channel order and size are read in place either way")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("pre-process-resize", ResizeMode::Stretch)
                    .nick("Pre-processing resize")
                    .blurb("How a frame (or an ROI's crop) is fitted into the model's input: stretch (scaled to the input's width and height) or keeping its aspect ratio, scaled to fit and padded with grey 114: letterbox (centred, as Ultralytics' YOLO pre-processing), letterbox-top-left (padded right and bottom). Boxes are mapped back to the frame. The letterbox modes need pre-process-backend=ovinfer")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("ov-config")
                    .nick("OpenVINO config")
                    .blurb("More OpenVINO properties to compile the model with, as \"KEY=VALUE,KEY=VALUE\" (e.g. \"ENABLE_CPU_PINNING=NO\" or \"NUM_STREAMS=3\"); OpenVINO rejects keys and values the device does not know. Elements sharing a model-instance-id must give the same. Empty: OpenVINO's defaults for the device and performance-hint, except that on CPU inference threads are not pinned to cores, as the cores are shared with the rest of the pipeline (ENABLE_CPU_PINNING=NO; give ENABLE_CPU_PINNING=YES to pin)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("performance-hint", PerformanceHint::Latency)
                    .nick("Performance hint")
                    .blurb("OpenVINO performance hint the model is compiled with: latency (one stream, every core on each frame: the shortest delay per frame) or throughput (several streams working on different frames at once)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("inference-region", InferenceRegion::FullFrame)
                    .nick("Inference region")
                    .blurb("What the model runs on: full-frame (the whole frame) or roi-list (each region of interest of the frame, GstVideoRegionOfInterestMeta from any element: cropped and scaled from the frame in place, in parallel on the infer requests and batched with batch-size; a class becomes an attribute structure on its ROI, detections new ROIs in the frame's coordinates)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("object-class")
                    .nick("Object class")
                    .blurb("With roi-list: comma-separated labels of the ROIs to infer on (an ROI's type or its detection's label, e.g. \"car,truck\"); ROIs of other labels are left untouched. Empty: every ROI")
                    .default_value(Some(""))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("min-roi-size")
                    .nick("Minimum ROI size")
                    .blurb("With roi-list: ROIs whose smaller side inside the frame is below this many pixels are skipped (counted in rois-skipped-size); 0 = no minimum. ROIs partly outside the frame are clipped to it; empty ones are skipped (rois-skipped-empty)")
                    .default_value(0)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("reclassify-interval")
                    .nick("Reclassify interval")
                    .blurb("With roi-list: an ROI with a tracking id (object_id, e.g. from ovtrack) is inferred again only every this many frames (of those interval selects), and gets its track's last result in between; ROIs without an id are inferred every time. 1 = every frame, 0 = once per track")
                    .default_value(DEFAULT_RECLASSIFY_INTERVAL)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("attribute-name")
                    .nick("Attribute name")
                    .blurb("With roi-list and a classification model: the name of the attribute structure a class becomes on its ROI (LVA's entity.attributes name); a letter, then letters, digits and / - _ . : +. Unset: the model file's name without extension")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("input-size")
                    .nick("Input size")
                    .blurb("The model's input size as WIDTHxHEIGHT (e.g. \"320x48\"): models whose input height or width is dynamic are reshaped to it (a model of a static size too, if it can take it). Empty: the model's own size; for a dynamic one the decoder's choice: text-recognition height 48 and at least 320 wide, wider for long lines within input-max-side (PP-OCR's); text-detection on full frames the frame's size within input-max-side; other decoders need it set")
                    .default_value(Some(""))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("input-max-side")
                    .nick("Input longer side at most")
                    .blurb("The longer side of a dynamic input the decoder chooses (input-size empty). Text detection on full frames: the frame's size scaled down so that its longer side is at most this many pixels (never enlarged), each side rounded to a multiple of 32 (PaddleOCR's det_limit_side_len with limit_type max). Text recognition: the widest input long lines are read at (rounded down to a multiple of 32). One compiled model per size used")
                    .minimum(32)
                    .maximum(MAX_INPUT_SIDE)
                    .default_value(DEFAULT_INPUT_MAX_SIDE)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("server")
                    .nick("Server")
                    .blurb("Infer on a KServe v2 gRPC server (lva-server, OpenVINO Model Server, Triton) instead of a local model: grpc://HOST:PORT, or grpcs://HOST:PORT for TLS. Empty (default): the local model of the model property; the two are exclusive")
                    .default_value(Some(""))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("remote-model")
                    .nick("Remote model")
                    .blurb("With server: the name the server serves the model under (required); its input and outputs are read with ModelMetadata")
                    .default_value(Some(""))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("remote-model-version")
                    .nick("Remote model version")
                    .blurb("With server: the model's version; empty (default): the server's choice")
                    .default_value(Some(""))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("remote-timeout")
                    .nick("Remote timeout")
                    .blurb("With server: milliseconds one inference (and connecting, and each call at start) may take; a call past it fails (its frames pass without results)")
                    .minimum(1)
                    .default_value(DEFAULT_REMOTE_TIMEOUT)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-failures")
                    .nick("Maximum failures")
                    .blurb("With server: 0 (default) = a frame whose inference fails (server down, timeout, any gRPC error) passes without results and is counted in remote-failures; N = an element error after N such inferences in a row")
                    .default_value(0)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("ca-file")
                    .nick("CA file")
                    .blurb("With server=grpcs://: PEM file of the CA (or the self-signed certificate) to trust for the server's certificate instead of the system's roots")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("authorization")
                    .nick("Authorization")
                    .blurb("With server: the value of the authorization header sent with every call, e.g. \"Bearer TOKEN\" or \"Basic BASE64(user:password)\" (lva-server's auth); read back as \"*****\" when set")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt64::builder("remote-failures")
                    .nick("Remote failures")
                    .blurb("With server: inferences (frames, or ROIs with roi-list) that got no results since the element started: server down or refusing, timeouts")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt64::builder("rois-inferred")
                    .nick("ROIs inferred")
                    .blurb("ROIs the model ran on since the element started (roi-list)")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt64::builder("rois-reused")
                    .nick("ROIs reused")
                    .blurb("ROIs given their track's last result instead of an inference, by reclassify-interval (roi-list)")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt64::builder("rois-skipped-class")
                    .nick("ROIs of other classes")
                    .blurb("ROIs left untouched because their label is not in object-class (roi-list)")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt64::builder("rois-skipped-size")
                    .nick("ROIs too small")
                    .blurb("ROIs skipped because their smaller side is below min-roi-size (roi-list)")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt64::builder("rois-skipped-empty")
                    .nick("Empty ROIs")
                    .blurb("ROIs skipped because nothing of them lies inside the frame: zero width or height, or outside it (roi-list)")
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let name = pspec.name();
        let live = matches!(name, "threshold" | "interval" | "stats-interval");
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.is_some() && !live {
            gst::warning!(
                CAT,
                imp = self,
                "property {name} cannot change while running; set it in the NULL or READY state"
            );
            return;
        }
        let mut settings = self.settings.lock().unwrap_or_else(|e| e.into_inner());
        match name {
            "model" => settings.model = optional_string(value).map(PathBuf::from),
            "device" => {
                settings.device =
                    optional_string(value).unwrap_or_else(|| DEFAULT_DEVICE.to_string())
            }
            "labels" => settings.labels = optional_string(value).map(PathBuf::from),
            "threshold" => settings.threshold = value.get().unwrap_or(DEFAULT_THRESHOLD),
            "decoder" => settings.decoder = value.get().unwrap_or_default(),
            "interval" => settings.interval = value.get().unwrap_or(DEFAULT_INTERVAL),
            "input-range" => {
                settings.input_range =
                    optional_string(value).unwrap_or_else(|| DEFAULT_INPUT_RANGE.to_string())
            }
            "model-color-format" => settings.model_color_format = value.get().unwrap_or_default(),
            "performance-hint" => settings.performance_hint = value.get().unwrap_or_default(),
            "pre-process-backend" => settings.pre_process_backend = value.get().unwrap_or_default(),
            "pre-process-resize" => settings.pre_process_resize = value.get().unwrap_or_default(),
            "nireq" => settings.nireq = value.get().unwrap_or(0),
            "batch-size" => settings.batch_size = value.get().unwrap_or(1),
            "model-instance-id" => settings.model_instance_id = optional_string(value),
            "ov-config" => settings.ov_config = optional_string(value).unwrap_or_default(),
            "stats-interval" => settings.stats_interval = value.get().unwrap_or(0),
            "inference-region" => settings.inference_region = value.get().unwrap_or_default(),
            "object-class" => settings.object_class = optional_string(value).unwrap_or_default(),
            "min-roi-size" => settings.min_roi_size = value.get().unwrap_or(0),
            "reclassify-interval" => {
                settings.reclassify_interval = value.get().unwrap_or(DEFAULT_RECLASSIFY_INTERVAL)
            }
            "attribute-name" => settings.attribute_name = optional_string(value),
            "input-size" => settings.input_size = optional_string(value).unwrap_or_default(),
            "input-max-side" => {
                settings.input_max_side = value.get().unwrap_or(DEFAULT_INPUT_MAX_SIDE)
            }
            "server" => settings.server = optional_string(value).unwrap_or_default(),
            "remote-model" => settings.remote_model = optional_string(value).unwrap_or_default(),
            "remote-model-version" => {
                settings.remote_model_version = optional_string(value).unwrap_or_default()
            }
            "remote-timeout" => {
                settings.remote_timeout = value.get().unwrap_or(DEFAULT_REMOTE_TIMEOUT)
            }
            "max-failures" => settings.max_failures = value.get().unwrap_or(0),
            "ca-file" => settings.ca_file = optional_string(value).map(PathBuf::from),
            "authorization" => settings.authorization = optional_string(value),
            _ => unreachable!("unknown property {name}"),
        }
        if let Some(state) = state.as_mut() {
            state.settings.threshold = settings.threshold;
            state.settings.interval = settings.interval;
            state.settings.stats_interval = settings.stats_interval;
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.lock().unwrap_or_else(|e| e.into_inner());
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.to_string_lossy().into_owned());
        match pspec.name() {
            "model" => path(&s.model).to_value(),
            "device" => s.device.to_value(),
            "labels" => path(&s.labels).to_value(),
            "threshold" => s.threshold.to_value(),
            "decoder" => s.decoder.to_value(),
            "interval" => s.interval.to_value(),
            "input-range" => s.input_range.to_value(),
            "model-color-format" => s.model_color_format.to_value(),
            "performance-hint" => s.performance_hint.to_value(),
            "pre-process-backend" => s.pre_process_backend.to_value(),
            "pre-process-resize" => s.pre_process_resize.to_value(),
            "nireq" => s.nireq.to_value(),
            "batch-size" => s.batch_size.to_value(),
            "model-instance-id" => s.model_instance_id.to_value(),
            "ov-config" => s.ov_config.to_value(),
            "stats-interval" => s.stats_interval.to_value(),
            "inference-region" => s.inference_region.to_value(),
            "object-class" => s.object_class.to_value(),
            "min-roi-size" => s.min_roi_size.to_value(),
            "reclassify-interval" => s.reclassify_interval.to_value(),
            "attribute-name" => s.attribute_name.to_value(),
            "input-size" => s.input_size.to_value(),
            "input-max-side" => s.input_max_side.to_value(),
            "server" => s.server.to_value(),
            "remote-model" => s.remote_model.to_value(),
            "remote-model-version" => s.remote_model_version.to_value(),
            "remote-timeout" => s.remote_timeout.to_value(),
            "max-failures" => s.max_failures.to_value(),
            "ca-file" => path(&s.ca_file).to_value(),
            // A secret: never read back (nor logged).
            "authorization" => s.authorization.as_ref().map(|_| "*****").to_value(),
            "remote-failures" => self.snapshot().remote_failures.to_value(),
            "rois-inferred" => self.snapshot().rois.inferred.to_value(),
            "rois-reused" => self.snapshot().rois.reused.to_value(),
            "rois-skipped-class" => self.snapshot().rois.other_class.to_value(),
            "rois-skipped-size" => self.snapshot().rois.too_small.to_value(),
            "rois-skipped-empty" => self.snapshot().rois.empty.to_value(),
            "frames" => self.snapshot().frames.to_value(),
            "inferences" => self.snapshot().inferences.to_value(),
            "fps" => self.snapshot().fps.to_value(),
            "latency-mean-ms" => (self.snapshot().latency_mean.as_secs_f64() * 1000.0).to_value(),
            "latency-p50-ms" => (self.snapshot().latency_p50.as_secs_f64() * 1000.0).to_value(),
            "latency-p99-ms" => (self.snapshot().latency_p99.as_secs_f64() * 1000.0).to_value(),
            name => unreachable!("unknown property {name}"),
        }
    }
}

impl GstObjectImpl for OvInfer {}

impl ElementImpl for OvInfer {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "OpenVINO inference",
                "Filter/Analyzer/Video",
                "Runs an OpenVINO model (IR, ONNX, TFLite) on video frames and attaches detections \
                 as GstVideoRegionOfInterestMeta and classifications as custom meta",
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
                    F::Rgb,
                    F::Bgr,
                    F::Rgbx,
                    F::Bgrx,
                    F::Rgba,
                    F::Bgra,
                    F::Xrgb,
                    F::Xbgr,
                    F::Argb,
                    F::Abgr,
                    F::I420,
                    F::Yv12,
                    F::Nv12,
                    F::Nv21,
                    F::Yuy2,
                    F::Uyvy,
                    F::Yvyu,
                    F::Gray8,
                ])
                .build();
            vec![
                gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &caps,
                )
                .expect("valid src template"),
                gst::PadTemplate::new(
                    "sink",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Always,
                    &caps,
                )
                .expect("valid sink template"),
            ]
        });
        TEMPLATES.as_ref()
    }
}

impl BaseTransformImpl for OvInfer {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self
            .settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let state = self.load(&settings)?;
        *self.stats.lock().unwrap_or_else(|e| e.into_inner()) = Stats::default();
        *self.last_post.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.live.store(false, Ordering::Relaxed);
        *self.processing.lock().unwrap_or_else(|e| e.into_inner()) = Duration::ZERO;
        self.latency_changed.store(false, Ordering::Relaxed);
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = Some(state);
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        if let Some(mut state) = self.state.lock().unwrap_or_else(|e| e.into_inner()).take() {
            state.discard();
            gst::info!(CAT, imp = self, "stopped after {} frames", state.frames);
        }
        Ok(())
    }

    fn set_caps(&self, incaps: &gst::Caps, _outcaps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let info = gst_video::VideoInfo::from_caps(incaps)
            .map_err(|_| gst::loggable_error!(CAT, "invalid caps {incaps}"))?;
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let state = guard
            .as_mut()
            .ok_or_else(|| gst::loggable_error!(CAT, "caps set before start"))?;
        if state.compiled.as_ref().is_some_and(|c| c.info == info) {
            return Ok(());
        }
        // Frames still inside (only if draining them before the CAPS event failed) belong to
        // the old instance: they go with it.
        state.discard();
        state.compiled = None;
        state.wider.clear();
        match self
            .size_for_frames(state, &info)
            .and_then(|()| self.compile(state, &state.shape, &info))
        {
            Ok(compiled) => {
                let warm_up = compiled.instance.inference_time;
                let mut processing = self.processing.lock().unwrap_or_else(|e| e.into_inner());
                *processing = (*processing).max(warm_up + warm_up / 4);
                state.compiled = Some(compiled);
                Ok(())
            }
            Err(e) => {
                gst::element_imp_error!(
                    self,
                    gst::StreamError::Format,
                    ("model {} cannot be prepared for these frames: {e}", state.model_name),
                    details: gst::Structure::builder("ovinfer-caps").field("caps", incaps).build()
                );
                Err(gst::loggable_error!(CAT, "cannot use caps {incaps}: {e}"))
            }
        }
    }

    fn submit_input_buffer(
        &self,
        _is_discont: bool,
        buffer: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let state = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
        let n = state.frames;
        let submitted = self.submit(state, buffer);
        drop(guard);
        if self.latency_changed.swap(false, Ordering::Relaxed) {
            let _ = self
                .obj()
                .post_message(gst::message::Latency::builder().src(&*self.obj()).build());
        }
        if let Err(e) = submitted {
            gst::element_imp_error!(
                self,
                gst::StreamError::Failed,
                ("inference on frame {n} failed: {e}")
            );
            return Err(gst::FlowError::Error);
        }
        Ok(gst::FlowSuccess::Ok)
    }

    fn generate_output(
        &self,
    ) -> Result<gst_base::subclass::base_transform::GenerateOutputSuccess, gst::FlowError> {
        use gst_base::subclass::base_transform::GenerateOutputSuccess;
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let next = guard.as_mut().and_then(|s| s.ready.pop_front());
        Ok(next.map_or(
            GenerateOutputSuccess::NoOutput,
            GenerateOutputSuccess::Buffer,
        ))
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        match event.type_() {
            gst::EventType::FlushStop => {
                if let Some(state) = self
                    .state
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_mut()
                {
                    state.discard();
                }
            }
            // Frames in flight leave before the event (EOS, caps, segment, gap, ...).
            t if t.is_serialized() => {
                self.push_all();
                if t == gst::EventType::Eos {
                    let interval = self
                        .settings
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .stats_interval;
                    self.maybe_post_stats(interval, true);
                }
            }
            _ => {}
        }
        self.parent_sink_event(event)
    }

    fn query(&self, direction: gst::PadDirection, query: &mut gst::QueryRef) -> bool {
        // DRAIN: upstream wants every frame out (a decoder reconfiguring, or an application
        // waiting for one frame's result, as lva-server does).
        if direction == gst::PadDirection::Sink
            && let gst::QueryViewMut::Drain(_) = query.view_mut()
        {
            self.push_all();
        }
        let answered = BaseTransformImplExt::parent_query(self, direction, query);
        // LATENCY: with a live source, add the frames that may wait inside for their turn, and
        // the time of a frame's own inference.
        if answered
            && direction == gst::PadDirection::Src
            && let gst::QueryViewMut::Latency(q) = query.view_mut()
        {
            let (live, min, max) = q.result();
            self.live.store(live, Ordering::Relaxed);
            if live {
                let (held, processing) = (self.held_latency(), self.processing_latency());
                gst::debug!(
                    CAT,
                    imp = self,
                    "live: frames held up to {held}, inference {processing}"
                );
                let added = held + processing;
                q.set(live, min + added, max.map(|m| m + added));
            }
        }
        answered
    }
}
