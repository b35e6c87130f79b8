//! The source half: a pipeline that decodes the source and hands each frame to the processing
//! half, rebuilt after each loss (or loop) as a new *run*.
//!
//! `uridecodebin uri=URI` (only video exposed), or `FRAGMENT ! decodebin`, then
//! `videoconvert ! appsink` with the formats `ovinfer` takes (a no-op when the decoder gives one
//! of them). The appsink's callback passes each frame through the [`Gate`]
//! (a `realtime` frame that finds it full is dropped and counted; another waits), re-timestamps
//! it onto the stream's continuous timeline and queues it into the processing half's `appsrc`.
//! The bus is read by a sync handler that forwards errors and the end of the stream to the
//! stream's supervisor, tagged with the run so a late message from a torn-down run is ignored;
//! nothing stays on the bus and no main loop is needed.

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Instant;

use gst::glib;
use gst::prelude::*;

use super::gate::{Admit, Gate, Mode};
use super::retime::Retimer;
use super::spec::{Source, SourceKind, parse_fragment};
use super::stream::{Counters, Event};

/// The raw formats `ovinfer` takes: the appsink asks for one of them.
pub const FORMATS: [&str; 18] = [
    "RGB", "BGR", "RGBx", "BGRx", "RGBA", "BGRA", "xRGB", "xBGR", "ARGB", "ABGR", "I420", "YV12",
    "NV12", "NV21", "YUY2", "UYVY", "YVYU", "GRAY8",
];

/// What the source runs share with the processing half: where frames go and how.
pub struct Feed {
    pub appsrc: gst_app::AppSrc,
    pub gate: Arc<Gate>,
    pub mode: Mode,
    pub retimer: Mutex<Retimer>,
    pub counters: Arc<Counters>,
    /// When the stream started, for the watchdog's clock.
    pub started: Instant,
}

impl Feed {
    /// One frame from run `run`; `first` is set by the first one.
    fn push(
        &self,
        sample: &gst::Sample,
        cancel: &AtomicBool,
        first: &AtomicBool,
        run: u64,
        events: &mpsc::Sender<Event>,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        self.counters.produced.fetch_add(1, Ordering::SeqCst);
        self.counters
            .last_frame_ms
            .store(self.since_start_ms(), Ordering::SeqCst);
        if !first.swap(true, Ordering::SeqCst) {
            let _ = events.send(Event::FirstFrame { run });
        }
        match self.gate.enter(self.mode, cancel) {
            Admit::Go => {}
            Admit::Full => {
                self.counters.dropped.fetch_add(1, Ordering::SeqCst);
                return Ok(gst::FlowSuccess::Ok);
            }
            Admit::Cancelled => {
                self.counters.dropped.fetch_add(1, Ordering::SeqCst);
                return Err(gst::FlowError::Flushing);
            }
        }
        // The wait may have been long: it was the processing half's, not a stall.
        self.counters
            .last_frame_ms
            .store(self.since_start_ms(), Ordering::SeqCst);
        let Some(buffer) = sample.buffer_owned() else {
            self.gate.leave();
            return Ok(gst::FlowSuccess::Ok);
        };
        let mut buffer = buffer;
        {
            // Running time, not the raw timestamp: a segment may restart timestamps (concat,
            // a seek) while its running time goes on.
            let segment = sample
                .segment()
                .and_then(|s| s.downcast_ref::<gst::ClockTime>());
            let pts = match segment {
                Some(segment) => buffer.pts().and_then(|p| segment.to_running_time(p)),
                None => buffer.pts(),
            }
            .map(gst::ClockTime::nseconds);
            let duration = buffer.duration().map(gst::ClockTime::nseconds);
            let out = self
                .retimer
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .map(pts, duration);
            let b = buffer.make_mut();
            b.set_pts(gst::ClockTime::from_nseconds(out));
            b.set_dts(gst::ClockTime::NONE);
        }
        let mut builder = gst::Sample::builder().buffer(&buffer);
        let caps = sample.caps_owned();
        if let Some(caps) = &caps {
            let mut last = self.counters.caps.lock().unwrap_or_else(|e| e.into_inner());
            if last.as_ref() != Some(caps) {
                *last = Some(caps.clone());
            }
            builder = builder.caps(caps);
        }
        match self.appsrc.push_sample(&builder.build()) {
            Ok(ok) => Ok(ok),
            Err(e) => {
                // Not queued: it will never leave the gate by the probe.
                self.gate.leave();
                self.counters.dropped.fetch_add(1, Ordering::SeqCst);
                Err(e)
            }
        }
    }

    pub fn since_start_ms(&self) -> u64 {
        super::status::millis(self.started.elapsed())
    }
}

/// One source run: its pipeline and the flag that releases its frames waiting at the gate.
/// Dropping it stops it.
pub struct Run {
    pub number: u64,
    pub pipeline: gst::Pipeline,
    pub cancel: Arc<AtomicBool>,
    pub started_ms: u64,
    gate: Arc<Gate>,
}

impl Run {
    /// Builds the run's pipeline and sets it playing. Errors say what failed; the bus may say
    /// more later (as [`Event::SourceError`]).
    pub fn start(
        source: &Source,
        number: u64,
        feed: &Arc<Feed>,
        events: &mpsc::Sender<Event>,
        name: &str,
    ) -> Result<Run, String> {
        let pipeline = gst::Pipeline::with_name(&format!("{name}-source-{number}"));
        let cancel = Arc::new(AtomicBool::new(false));
        let run = Run {
            number,
            pipeline: pipeline.clone(),
            cancel: cancel.clone(),
            started_ms: feed.since_start_ms(),
            gate: feed.gate.clone(),
        };
        let bus = pipeline.bus().ok_or("a pipeline without a bus")?;
        let tx = events.clone();
        bus.set_sync_handler(move |_, msg| {
            let event = match msg.view() {
                gst::MessageView::Error(e) => Some(Event::SourceError {
                    run: number,
                    text: error_text(msg, e.error(), e.debug()),
                }),
                gst::MessageView::Eos(_) => Some(Event::SourceEos { run: number }),
                _ => None,
            };
            if let Some(event) = event {
                let _ = tx.send(event);
            }
            gst::BusSyncReply::Drop
        });
        // From here on, a failure drops the run, which stops it.
        run.build(source, feed, events)?;
        if pipeline.set_state(gst::State::Playing).is_err() {
            return Err(format!(
                "the source pipeline did not start ({})",
                source.location
            ));
        }
        Ok(run)
    }

    fn build(
        &self,
        source: &Source,
        feed: &Arc<Feed>,
        events: &mpsc::Sender<Event>,
    ) -> Result<(), String> {
        // Decode video only. uridecodebin needs the caps feature to be open ("video/x-raw"
        // alone makes it find no H.264 decoder); videoconvert then asks for system memory.
        let video_only =
            gst::Caps::from_str("video/x-raw(ANY)").map_err(|e| format!("video caps: {e}"))?;
        let decode = match &source.kind {
            SourceKind::Pipeline => {
                let bin = parse_fragment(&source.location)?;
                let decodebin = make("decodebin")?;
                decodebin.set_property("caps", &video_only);
                decodebin.set_property("expose-all-streams", false);
                self.pipeline
                    .add_many([bin.upcast_ref::<gst::Element>(), &decodebin])
                    .map_err(|e| e.to_string())?;
                bin.link(&decodebin)
                    .map_err(|e| format!("cannot link the pipeline fragment: {e}"))?;
                decodebin
            }
            _ => {
                let uridecodebin = make("uridecodebin")?;
                uridecodebin.set_property("uri", &source.location);
                uridecodebin.set_property("caps", &video_only);
                uridecodebin.set_property("expose-all-streams", false);
                self.pipeline
                    .add(&uridecodebin)
                    .map_err(|e| e.to_string())?;
                uridecodebin
            }
        };
        let convert = make("videoconvert")?;
        let caps = gst::Caps::builder("video/x-raw")
            .field("format", gst::List::new(FORMATS))
            .build();
        // A realtime source is followed at its own pace; RTSP delivers at its pace already, and
        // syncing would only add the jitter buffer's latency once more.
        let sync = source.realtime && source.kind != SourceKind::Rtsp;
        let sink = gst_app::AppSink::builder()
            .caps(&caps)
            .sync(sync)
            .enable_last_sample(false)
            .max_buffers(1)
            .build();
        self.pipeline
            .add_many([&convert, sink.upcast_ref()])
            .map_err(|e| e.to_string())?;
        convert
            .link(&sink)
            .map_err(|e| format!("cannot link videoconvert to the appsink: {e}"))?;
        let convert_sink = convert
            .static_pad("sink")
            .ok_or("videoconvert without a sink pad")?;
        decode.connect_pad_added(move |_, pad| {
            let is_video = pad
                .current_caps()
                .or_else(|| Some(pad.query_caps(None)))
                .and_then(|c| c.structure(0).map(|s| s.name().starts_with("video/")))
                .unwrap_or(false);
            if is_video && !convert_sink.is_linked() {
                let _ = pad.link(&convert_sink);
            }
        });
        let (feed, cancel, tx, run) = (
            feed.clone(),
            self.cancel.clone(),
            events.clone(),
            self.number,
        );
        let first = AtomicBool::new(false);
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Flushing)?;
                    feed.push(&sample, &cancel, &first, run, &tx)
                })
                .build(),
        );
        Ok(())
    }

    /// Releases the run's waiting frames, stops its pipeline and drops its bus handler.
    pub fn stop(&self) {
        self.cancel.store(true, Ordering::SeqCst);
        self.gate.wake();
        let _ = self.pipeline.set_state(gst::State::Null);
        if let Some(bus) = self.pipeline.bus() {
            bus.unset_sync_handler();
        }
    }

    /// The source's duration, once known (files).
    pub fn duration(&self) -> Option<gst::ClockTime> {
        self.pipeline.query_duration::<gst::ClockTime>()
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        self.stop();
    }
}

fn make(factory: &str) -> Result<gst::Element, String> {
    gst::ElementFactory::make(factory).build().map_err(|_| {
        format!("GStreamer element '{factory}' is missing: run scripts/setup.sh (or install its plugin package)")
    })
}

/// "element: message (debug)", as the API shows a GStreamer error.
pub fn error_text(msg: &gst::Message, error: glib::Error, debug: Option<glib::GString>) -> String {
    let from = msg
        .src()
        .map(|s| format!("{}: ", s.name()))
        .unwrap_or_default();
    match debug {
        Some(d) => format!("{from}{error} ({d})"),
        None => format!("{from}{error}"),
    }
}

/// The video of caps: size and frame rate from caps, `None` when variable (0/1) or absent.
pub fn caps_video(caps: &gst::Caps) -> Option<super::status::Video> {
    let s = caps.structure(0)?;
    let width = u32::try_from(s.get::<i32>("width").ok()?).ok()?;
    let height = u32::try_from(s.get::<i32>("height").ok()?).ok()?;
    let fps = s
        .get::<gst::Fraction>("framerate")
        .ok()
        .filter(|f| f.numer() > 0 && f.denom() > 0)
        .map(|f| f64::from(f.numer()) / f64::from(f.denom()));
    Some(super::status::Video { width, height, fps })
}
