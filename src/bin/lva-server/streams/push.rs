//! The push of a stream's video to another RTSP server (`outputs.video.push`): a pipeline of
//! its own, `appsrc ! h264parse ! rtspclientsink`, fed with the stream's encoded frames.
//!
//! The receiving server may be down or go away: the push then reconnects with back-off (1 s
//! doubling to 30 s) while the stream and its other outputs go on, the frames meanwhile are
//! dropped and counted, and each new connection starts on a key frame asked of the encoder.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use serde::Serialize;

use super::source::error_text;
use crate::rtsp::push_restamped;

const FIRST_RETRY: Duration = Duration::from_secs(1);
const LAST_RETRY: Duration = Duration::from_secs(30);
/// Encoded frames held for a slow receiver before the oldest are dropped.
const QUEUE: u64 = 60;

/// What `GET /streams/{id}` shows of the push.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PushStatus {
    /// The receiver's URL, credentials hidden.
    pub location: String,
    pub connected: bool,
    /// Encoded frames handed to the connection.
    pub sent_frames: u64,
    /// Frames dropped while not connected.
    pub dropped_frames: u64,
    /// Connections made again after a failure.
    pub reconnects: u64,
    /// Why the last connection failed or ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

struct Shared {
    location: String,
    shown: String,
    encoder: glib::WeakRef<gst::Element>,
    /// The connected pipeline's input.
    appsrc: Mutex<Option<gst_app::AppSrc>>,
    last_error: Mutex<Option<String>>,
    sent: AtomicU64,
    dropped: AtomicU64,
    reconnects: AtomicU64,
    stop: AtomicBool,
}

/// A running push; [`Pusher::close`] (or dropping it) ends it.
pub struct Pusher {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Pusher {
    /// Starts pushing to `location` (an `rtsp://` URL); `shown` is the location for status.
    pub fn start(location: &str, shown: &str, encoder: &gst::Element) -> Result<Pusher, String> {
        gst::ElementFactory::find("rtspclientsink").ok_or(
            "GStreamer element 'rtspclientsink' is missing: run scripts/setup.sh (Debian's \
             gstreamer1.0-rtsp)",
        )?;
        let shared = Arc::new(Shared {
            location: location.to_string(),
            shown: shown.to_string(),
            encoder: encoder.downgrade(),
            appsrc: Mutex::new(None),
            last_error: Mutex::new(None),
            sent: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let running = shared.clone();
        let thread = std::thread::Builder::new()
            .name("video-push".into())
            .spawn(move || running.run())
            .map_err(|e| format!("cannot start the push's thread: {e}"))?;
        Ok(Pusher {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Gives an encoded frame to the connection, or counts it dropped.
    pub fn push(&self, sample: &gst::Sample) {
        let appsrc = lock(&self.shared.appsrc).clone();
        match appsrc {
            Some(appsrc) if push_restamped(&appsrc, sample).is_ok() => {
                self.shared.sent.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub fn status(&self) -> PushStatus {
        let s = &self.shared;
        PushStatus {
            location: s.shown.clone(),
            connected: lock(&s.appsrc).is_some(),
            sent_frames: s.sent.load(Ordering::Relaxed),
            dropped_frames: s.dropped.load(Ordering::Relaxed),
            reconnects: s.reconnects.load(Ordering::Relaxed),
            last_error: lock(&s.last_error).clone(),
        }
    }

    /// Ends the push (the receiver is told, TEARDOWN) and waits for its thread.
    pub fn close(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = lock(&self.thread).take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Pusher {
    fn drop(&mut self) {
        self.close();
    }
}

impl Shared {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Connects, pushes until the connection fails, waits, connects again; until stopped.
    fn run(&self) {
        let mut wait = FIRST_RETRY;
        let mut connections = 0u64;
        while !self.stopping() {
            let started = Instant::now();
            match self.connection() {
                Ok(pipeline) => {
                    connections += 1;
                    if connections > 1 {
                        self.reconnects.fetch_add(1, Ordering::Relaxed);
                    }
                    let error = self.serve(&pipeline);
                    *lock(&self.appsrc) = None;
                    let _ = pipeline.set_state(gst::State::Null);
                    if let Some(e) = error {
                        *lock(&self.last_error) = Some(e);
                    }
                }
                Err(e) => *lock(&self.last_error) = Some(e),
            }
            // A connection that held a while starts the back-off again.
            if started.elapsed() > LAST_RETRY {
                wait = FIRST_RETRY;
            }
            let until = Instant::now() + wait;
            while !self.stopping() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(50));
            }
            wait = (wait * 2).min(LAST_RETRY);
        }
    }

    fn connection(&self) -> Result<gst::Pipeline, String> {
        let pipeline = gst::Pipeline::with_name("video-push");
        let appsrc = gst_app::AppSrc::builder()
            .name("encoded")
            .format(gst::Format::Time)
            .is_live(true)
            .do_timestamp(true)
            .max_buffers(QUEUE)
            .leaky_type(gst_app::AppLeakyType::Downstream)
            .build();
        let make = |factory: &str| {
            gst::ElementFactory::make(factory)
                .build()
                .map_err(|_| format!("GStreamer element '{factory}' is missing"))
        };
        let parse = make("h264parse")?;
        parse.set_property("config-interval", -1i32);
        let sink = make("rtspclientsink")?;
        sink.set_property("location", &self.location);
        sink.set_property("latency", 0u32);
        pipeline
            .add_many([appsrc.upcast_ref(), &parse, &sink])
            .map_err(|e| e.to_string())?;
        gst::Element::link_many([appsrc.upcast_ref(), &parse, &sink])
            .map_err(|e| format!("cannot link the push: {e}"))?;
        if pipeline.set_state(gst::State::Playing).is_err() {
            let reason = pipeline
                .bus()
                .and_then(|b| b.pop_filtered(&[gst::MessageType::Error]))
                .map(|m| match m.view() {
                    gst::MessageView::Error(e) => error_text(&m, e.error(), e.debug()),
                    _ => String::new(),
                })
                .unwrap_or_else(|| "the push did not start".into());
            let _ = pipeline.set_state(gst::State::Null);
            return Err(reason);
        }
        *lock(&self.appsrc) = Some(appsrc);
        // The receiver's decoder needs a key frame to start from.
        if let Some(pad) = self.encoder.upgrade().and_then(|e| e.static_pad("src")) {
            pad.send_event(
                gst_video::UpstreamForceKeyUnitEvent::builder()
                    .all_headers(true)
                    .build(),
            );
        }
        Ok(pipeline)
    }

    /// Waits for the connection's error or end, or for the stop; the error's text if any.
    fn serve(&self, pipeline: &gst::Pipeline) -> Option<String> {
        let bus = pipeline.bus()?;
        while !self.stopping() {
            let Some(msg) = bus.timed_pop_filtered(
                gst::ClockTime::from_mseconds(100),
                &[gst::MessageType::Error, gst::MessageType::Eos],
            ) else {
                continue;
            };
            return Some(match msg.view() {
                gst::MessageView::Error(e) => error_text(&msg, e.error(), e.debug()),
                _ => "the receiver ended the connection".into(),
            });
        }
        None
    }
}
