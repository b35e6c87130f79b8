//! Inference through the plugin's own elements. Each model has a pool of warm pipelines
//!
//! `jpegdec|avdec_bmp ! videoconvert ! video/x-raw,format=BGR ! ovinfer ! lvajson ! appsink`
//!
//! (no decoder for image/x-raw, and none for image/png either: PNGs are decoded in this process
//! by the memory-safe `png` crate and pushed as raw frames, see `image::decode_png`), one per
//! worker and image kind, created on first use and reused. They share one compiled model per
//! input size through ovinfer's process-wide cache.
//!
//! `max-pixels` holds on what the decoder produces: a probe on the decoder's source pad refuses
//! output caps over the limit, so negotiation fails before the decoder allocates a frame,
//! whatever the image header seemed to say.
//!
//! A request pushes its image into the first element's sink pad from its own thread. There is no
//! queue in the pipeline, so when the push returns the image has been decoded, inferred and turned
//! into a document, or the decoder has refused it: every request gets a definite answer, with no
//! timeout guessing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use gst::glib;
use gst::prelude::*;

use crate::config::ModelConfig;
use crate::image::Kind;
use crate::turns::Turns;

/// lvajson's document for a frame without results (skip-empty=false, compact).
const EMPTY_DOCUMENT: &[u8] = br#"{"inferences":[]}"#;

/// What a request gets.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// An LVA document with at least one inference.
    Found(Vec<u8>),
    /// Nothing above the threshold: the contract's 204.
    Nothing,
    /// The decoder refused the image.
    BadImage(String),
}

/// Why a request got no outcome.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// Every worker is busy and the queue is full, or the wait ran out: 503.
    Busy,
    /// The pipeline failed: 500, and the pipeline is replaced.
    Internal(String),
}

/// An image ready to push.
pub struct Image {
    pub kind: Kind,
    pub data: Vec<u8>,
    /// Geometry of an image/x-raw body.
    pub raw: Option<gst_video::VideoInfo>,
}

enum Event {
    Document(gst::Sample),
    Message {
        error: bool,
        from_decoder: bool,
        text: String,
    },
}

/// One warm pipeline.
struct Runner {
    kind: Kind,
    pipeline: gst::Pipeline,
    /// Our pad, linked to the first element.
    feed: gst::Pad,
    infer: gst::Element,
    events: mpsc::Receiver<Event>,
    caps: Option<gst::Caps>,
    seq: u64,
    /// Set when an image left the pipeline in an unknown state.
    broken: bool,
    max_pixels: u64,
    /// Buffers the decoder has pushed out, to tell its failures from the rest of the pipeline's.
    decoded: Arc<AtomicU64>,
    /// Output size the decoder asked for and was refused (over `max_pixels`).
    oversize: Arc<Mutex<Option<(u32, u32)>>>,
}

fn make(factory: &str) -> Result<gst::Element, String> {
    gst::ElementFactory::make(factory).build().map_err(|_| {
        format!("GStreamer element '{factory}' is missing: run scripts/setup.sh (or install its plugin package)")
    })
}

/// Sets a property from its text form, refusing unknown names and invalid values instead of
/// panicking.
pub fn set_from_str(element: &gst::Element, name: &str, value: &str) -> Result<(), String> {
    let factory = element
        .factory()
        .map(|f| f.name().to_string())
        .unwrap_or_default();
    let pspec = element.find_property(name).ok_or_else(|| {
        let known: Vec<String> = element
            .list_properties()
            .iter()
            .filter(|p| p.flags().contains(glib::ParamFlags::WRITABLE))
            .map(|p| p.name().to_string())
            .filter(|n| n != "name" && n != "parent" && n != "qos")
            .collect();
        format!(
            "{factory} has no property '{name}'; it has {}",
            known.join(", ")
        )
    })?;
    let parsed = glib::Value::deserialize(value, pspec.value_type())
        .ok()
        .filter(|v| pspec.value_is_valid(v))
        .ok_or_else(|| {
            format!(
                "'{value}' is not a valid value for {factory}'s {name} ({})",
                pspec.blurb().unwrap_or("")
            )
        })?;
    element.set_property_from_value(name, &parsed);
    Ok(())
}

impl Runner {
    fn new(model: &ModelConfig, kind: Kind, max_pixels: u64) -> Result<Runner, String> {
        let pipeline = gst::Pipeline::with_name(&format!("{}-{kind:?}", model.name));
        let caps = match kind {
            Kind::Jpeg => Some(
                gst::Caps::builder("image/jpeg")
                    .field("parsed", true)
                    .build(),
            ),
            Kind::Bmp => Some(gst::Caps::new_empty_simple("image/bmp")),
            // PNG arrives decoded, as raw frames with their own caps.
            Kind::Png | Kind::Raw => None,
        };
        let decoder = match kind {
            Kind::Jpeg => Some(make("jpegdec")?),
            Kind::Bmp => Some(make("avdec_bmp")?),
            Kind::Png | Kind::Raw => None,
        };
        if let Some(d) = &decoder
            && d.find_property("max-errors").is_some()
        {
            // A bad image is the client's problem: drop it, never stop the pipeline.
            d.set_property("max-errors", -1i32);
        }
        if let Some(d) = &decoder
            && d.find_property("max-threads").is_some()
        {
            // No frame threading: a frame threaded decoder answers one image late.
            d.set_property("max-threads", 1i32);
        }
        let convert = make("videoconvert")?;
        let filter = make("capsfilter")?;
        filter.set_property(
            "caps",
            gst_video::VideoCapsBuilder::new()
                .format(gst_video::VideoFormat::Bgr)
                .build(),
        );
        let infer = make("ovinfer")?;
        for (name, value) in &model.properties {
            set_from_str(&infer, name, value)?;
        }
        let json = make("lvajson")?;
        json.set_property("skip-empty", false);
        if let Some(subtype) = &model.subtype {
            json.set_property("subtype", subtype);
        }
        // async=false: no preroll, so the first push does not wait for a state change.
        let sink = gst_app::AppSink::builder()
            .sync(false)
            .async_(false)
            .build();

        let mut chain: Vec<gst::Element> = Vec::new();
        chain.extend(decoder.clone());
        chain.extend([convert, filter, infer.clone(), json, sink.clone().upcast()]);
        pipeline.add_many(&chain).map_err(|e| e.to_string())?;
        gst::Element::link_many(&chain).map_err(|e| format!("cannot link the pipeline: {e}"))?;

        let decoded = Arc::new(AtomicU64::new(0));
        let oversize = Arc::new(Mutex::new(None));
        if let Some(d) = &decoder {
            let pad = d.static_pad("src").ok_or("decoder without a src pad")?;
            guard_output(&pad, max_pixels, decoded.clone(), oversize.clone());
        }

        let (tx, events) = mpsc::channel();
        let docs = tx.clone();
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Flushing)?;
                    let _ = docs.send(Event::Document(sample));
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        let bus = pipeline.bus().ok_or("pipeline without a bus")?;
        let decoder_obj = decoder.map(|d| d.upcast::<gst::Object>());
        bus.set_sync_handler(move |_, msg| {
            let from_decoder = msg.src().is_some_and(|s| Some(s) == decoder_obj.as_ref());
            let event = match msg.view() {
                gst::MessageView::Error(e) => Some((true, e.error().to_string(), e.debug())),
                gst::MessageView::Warning(w) => Some((false, w.error().to_string(), w.debug())),
                // A video decoder that cannot decode a frame drops it and says so with QoS.
                gst::MessageView::Qos(_) if from_decoder => Some((
                    false,
                    "the decoder found the data corrupt and dropped it".to_string(),
                    None,
                )),
                _ => None,
            };
            if let Some((error, text, debug)) = event {
                let text = match debug {
                    Some(d) if !from_decoder => format!("{text} ({d})"),
                    _ => text,
                };
                let _ = tx.send(Event::Message {
                    error,
                    from_decoder,
                    text,
                });
            }
            // Nobody pops this bus: drop everything so nothing piles up.
            gst::BusSyncReply::Drop
        });
        let feed = gst::Pad::builder(gst::PadDirection::Src)
            .name("feed")
            .build();
        let first = chain[0]
            .static_pad("sink")
            .ok_or("first element without a sink pad")?;
        feed.link(&first)
            .map_err(|e| format!("cannot link the feed pad: {e:?}"))?;
        if pipeline.set_state(gst::State::Playing).is_err() {
            // The element that failed said why on the bus.
            let reason = events.try_iter().find_map(|e| match e {
                Event::Message {
                    error: true, text, ..
                } => Some(text),
                _ => None,
            });
            let _ = pipeline.set_state(gst::State::Null);
            return Err(reason.unwrap_or_else(|| "the pipeline did not start".into()));
        }
        feed.set_active(true)
            .map_err(|_| "cannot activate the feed pad".to_string())?;
        feed.push_event(gst::event::StreamStart::new(&format!(
            "lva-server-{}-{kind:?}",
            model.name
        )));
        let mut runner = Runner {
            kind,
            pipeline,
            feed,
            infer,
            events,
            caps: None,
            seq: 0,
            broken: false,
            max_pixels,
            decoded,
            oversize,
        };
        if let Some(caps) = caps {
            runner.set_caps(caps);
        }
        Ok(runner)
    }

    /// Sends the caps when they change; the segment follows the first caps, as GStreamer wants
    /// them in that order.
    fn set_caps(&mut self, caps: gst::Caps) {
        if self.caps.as_ref() != Some(&caps) {
            let first = self.caps.is_none();
            self.feed.push_event(gst::event::Caps::new(&caps));
            self.caps = Some(caps);
            if first {
                let segment = gst::FormattedSegment::<gst::ClockTime>::new();
                self.feed.push_event(gst::event::Segment::new(&segment));
            }
        }
    }

    /// Pushes one image through the pipeline and reads what came out. `Err` means the pipeline
    /// must be discarded.
    fn run(&mut self, image: Image, threshold: f64) -> Result<Outcome, String> {
        while self.events.try_recv().is_ok() {}
        let (raw, data) = match image.kind {
            Kind::Png => match crate::image::decode_png(&image.data, self.max_pixels) {
                Ok((info, data)) => (Some(info), data),
                // Nothing reached the pipeline: it stays as it is.
                Err(e) => return Ok(Outcome::BadImage(e)),
            },
            _ => (image.raw, image.data),
        };
        self.seq += 1;
        let pts = gst::ClockTime::from_mseconds(self.seq);
        if let Some(info) = &raw {
            self.set_caps(info.to_caps().map_err(|e| e.to_string())?);
        }
        self.infer.set_property("threshold", threshold);
        *self.oversize.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let decoded_before = self.decoded.load(Ordering::SeqCst);
        let mut buffer = gst::Buffer::from_mut_slice(data);
        {
            let b = buffer.get_mut().ok_or("buffer not writable")?;
            b.set_pts(pts);
            b.set_duration(gst::ClockTime::from_mseconds(1));
        }
        let mut flow = self.feed.push(buffer);
        // ovinfer keeps frames while their inference runs: DRAIN brings this one out.
        if flow.is_ok() && !self.feed.peer_query(&mut gst::query::Drain::new()) {
            flow = Err(gst::FlowError::Error);
        }
        let oversize = self
            .oversize
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some((w, h)) = oversize {
            // The decoder failed to negotiate and may hold half a frame: replace the pipeline.
            self.broken = true;
            while self.events.try_recv().is_ok() {}
            return Ok(Outcome::BadImage(format!(
                "it decodes to {w}x{h}, over the limit of {} pixels (max-pixels): scale it down",
                self.max_pixels
            )));
        }
        let decoder_output = self.decoded.load(Ordering::SeqCst) > decoded_before;
        let mut complaint = None;
        for event in self.events.try_iter() {
            match event {
                Event::Document(sample) => {
                    let Some(buffer) = sample.buffer() else {
                        continue;
                    };
                    if buffer.pts() != Some(pts) {
                        continue;
                    }
                    let map = buffer.map_readable().map_err(|e| e.to_string())?;
                    return Ok(if map.as_slice() == EMPTY_DOCUMENT {
                        Outcome::Nothing
                    } else {
                        Outcome::Found(map.to_vec())
                    });
                }
                Event::Message {
                    error: true,
                    from_decoder: false,
                    text,
                } => return Err(text),
                Event::Message {
                    from_decoder: true,
                    text,
                    ..
                } => complaint = Some(text),
                Event::Message { text, .. } => {
                    eprintln!(
                        "lva-server: warning from the {:?} pipeline: {text}",
                        self.kind
                    );
                }
            }
        }
        match (flow, complaint) {
            // The decoder dropped the frame and said why: the pipeline is fine.
            (Ok(_), Some(text)) => Ok(Outcome::BadImage(text)),
            // The decoder swallowed the data without a word (waiting for more?) or failed:
            // answer 400, and replace the pipeline so nothing of this image stays in it.
            (_, Some(text)) => {
                self.broken = true;
                Ok(Outcome::BadImage(text))
            }
            (Ok(_), None) if self.has_decoder() => {
                self.broken = true;
                Ok(Outcome::BadImage(
                    "the decoder produced no picture from it".into(),
                ))
            }
            (Ok(_), None) => Err("the pipeline produced no document".into()),
            // The decoder gave up on the image without a word (jpegdec does so for CMYK and
            // some broken headers): the image is at fault, not the pipeline.
            (Err(e), None) if self.has_decoder() && !decoder_output => {
                self.broken = true;
                Ok(Outcome::BadImage(format!(
                    "the decoder refused it ({e:?}) without producing a picture"
                )))
            }
            (Err(e), None) => Err(format!("the pipeline stopped: {e:?}")),
        }
    }
}

impl Runner {
    fn has_decoder(&self) -> bool {
        matches!(self.kind, Kind::Jpeg | Kind::Bmp)
    }
}

/// Counts the decoder's output buffers and refuses output caps over `max_pixels`: the CAPS
/// event fails with not-negotiated, so the decoder errors out before it allocates the frame.
fn guard_output(
    pad: &gst::Pad,
    max_pixels: u64,
    decoded: Arc<AtomicU64>,
    oversize: Arc<Mutex<Option<(u32, u32)>>>,
) {
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
        move |_, info| {
            let size = match &info.data {
                Some(gst::PadProbeData::Buffer(_)) => {
                    decoded.fetch_add(1, Ordering::SeqCst);
                    None
                }
                Some(gst::PadProbeData::Event(event)) => match event.view() {
                    gst::EventView::Caps(c) => c.caps().structure(0).and_then(|s| {
                        let w = s.get::<i32>("width").ok()?;
                        let h = s.get::<i32>("height").ok()?;
                        Some((w.max(0) as u32, h.max(0) as u32))
                    }),
                    _ => None,
                },
                _ => None,
            };
            match size {
                Some((w, h)) if u64::from(w) * u64::from(h) > max_pixels => {
                    *oversize.lock().unwrap_or_else(|e| e.into_inner()) = Some((w, h));
                    info.flow_res = Err(gst::FlowError::NotNegotiated);
                    gst::PadProbeReturn::Handled
                }
                _ => gst::PadProbeReturn::Ok,
            }
        },
    );
}

impl Drop for Runner {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

struct PoolState {
    /// Requests admitted and not yet answered (running or waiting).
    admitted: usize,
    idle: Vec<Runner>,
}

/// The pipelines of one model, with bounded work: `workers` at once, `max_queue` waiting.
pub struct Pool {
    pub config: ModelConfig,
    default_threshold: f64,
    max_pixels: u64,
    state: Mutex<PoolState>,
    workers: Turns,
}

/// An admitted request; dropping it gives the place back.
pub struct Ticket {
    pool: Arc<Pool>,
}

impl Pool {
    /// Builds the pool and runs one warm-up frame through a raw pipeline, so that a bad model or
    /// property fails at start-up rather than on the first request.
    pub fn new(
        config: ModelConfig,
        warm_up: (u32, u32),
        max_pixels: u64,
    ) -> Result<Arc<Pool>, String> {
        let default_threshold = config
            .property("threshold")
            .map(|t| {
                t.parse::<f64>()
                    .map_err(|_| format!("threshold '{t}' is not a number"))
            })
            .transpose()?
            .unwrap_or(0.5);
        let pool = Arc::new(Pool {
            default_threshold,
            max_pixels,
            workers: Turns::new(config.workers),
            state: Mutex::new(PoolState {
                admitted: 0,
                idle: Vec::new(),
            }),
            config,
        });
        let mut runner = Runner::new(&pool.config, Kind::Raw, pool.max_pixels)?;
        let (w, h) = warm_up;
        let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Bgr, w, h)
            .build()
            .map_err(|e| e.to_string())?;
        let image = Image {
            kind: Kind::Raw,
            data: vec![0; info.size()],
            raw: Some(info),
        };
        match runner.run(image, 1.0)? {
            Outcome::BadImage(e) => return Err(e),
            Outcome::Found(_) | Outcome::Nothing => {}
        }
        pool.lock().idle.push(runner);
        Ok(pool)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a request if a worker or a queue place is free.
    pub fn admit(self: &Arc<Pool>) -> Option<Ticket> {
        let mut state = self.lock();
        if state.admitted >= self.config.workers + self.config.max_queue {
            return None;
        }
        state.admitted += 1;
        Some(Ticket { pool: self.clone() })
    }

    /// Requests admitted and not answered yet.
    pub fn in_flight(&self) -> usize {
        self.lock().admitted
    }

    pub fn default_threshold(&self) -> f64 {
        self.default_threshold
    }
}

impl Ticket {
    /// Waits for a worker (until `deadline`), then runs the image on a pipeline of its kind.
    pub fn infer(
        &self,
        image: Image,
        threshold: Option<f64>,
        deadline: Instant,
    ) -> Result<Outcome, Failure> {
        let pool = &self.pool;
        // Workers go to waiting requests in arrival order; the turn is given back when dropped,
        // also if the run panics (else the pool would lose the worker for good).
        let Some(turn) = pool.workers.take(deadline) else {
            return Err(Failure::Busy);
        };
        let runner = {
            let mut state = pool.lock();
            let found = state.idle.iter().position(|r| r.kind == image.kind);
            found.map(|i| state.idle.swap_remove(i))
        };
        let kind = image.kind;
        let result = runner
            .map_or_else(|| Runner::new(&pool.config, kind, pool.max_pixels), Ok)
            .and_then(|mut runner| {
                let outcome = runner.run(image, threshold.unwrap_or(pool.default_threshold))?;
                Ok((runner, outcome))
            });
        let mut state = pool.lock();
        let result = match result {
            Ok((runner, outcome)) => {
                let same_kind = state.idle.iter().filter(|r| r.kind == kind).count();
                if same_kind < pool.config.workers && !runner.broken {
                    state.idle.push(runner);
                }
                Ok(outcome)
            }
            Err(e) => Err(Failure::Internal(e)),
        };
        drop(state);
        drop(turn);
        result
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.pool.lock().admitted -= 1;
    }
}
