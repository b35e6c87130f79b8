//! The processing half: built once per stream, it outlives every source run.
//!
//! ```text
//! appsrc ! ovinfer [! ovtrack [! ovanalytics]] ! lvajson skip-empty=true ! tee
//!     ─ queue ! appsink (results: latest + subscribers)
//!     ├ queue ! appsink (jsonl: one line per document)
//!     ├ queue ! lvahttpsink (http)
//!     ├ queue ! lvamqttsink (mqtt)
//!     └ queue ! lvakafkasink (kafka)
//! ```
//!
//! The document sinks (`http`, `mqtt`, `kafka`: [`Sink`]) are named after their output and get
//! the stream's defaults before the definition's properties ([`super::spec::SinkOutput`]); each
//! flushes at EOS within its own `flush-timeout`. Their counters are read from their properties
//! ([`sinks_status`]).
//!
//! `ovtrack` (with `track`) gives the objects their ids, `ovanalytics` (with `analytics`) adds
//! the line and zone events. With video outputs a `tee` after the last of them also sends the
//! frames to the video branch ([`super::video`]), so the overlay draws the ids too.
//!
//! `appsrc` is live for `realtime` streams, so `ovinfer` lets each frame out as soon as its
//! inference is done instead of waiting for the next one. A probe on its output lets frames out
//! of the [`Gate`]; a probe on `ovinfer`'s output counts the processed frames. The JSON Lines
//! output is written here, one `write` per document (document and newline), so a reader of the
//! file never waits for a buffer to fill, and every write is counted. The bus is read by a sync
//! handler that forwards errors and the end of the stream to the supervisor.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use gst::prelude::*;

use super::gate::Gate;
use super::results::{Document, Hub};
use super::source::error_text;
use super::spec::{Checked, Sink, set_own};
use super::status::{
    AnalyticsStatus, HttpStatus, JsonlStatus, PublishStatus, SinksStatus, TrackStatus,
};
use super::stream::{Counters, Event};
use super::video::{Video, VideoEnv};

/// The JSON Lines output.
#[derive(Debug)]
pub struct Jsonl {
    path: PathBuf,
    file: Mutex<Option<File>>,
    written: AtomicU64,
    failed: AtomicU64,
    error: Mutex<Option<String>>,
}

impl Jsonl {
    /// Opens the file for appending (created if missing).
    pub fn open(path: &Path) -> Result<Jsonl, String> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("outputs.jsonl: cannot open {}: {e}", path.display()))?;
        Ok(Jsonl {
            path: path.to_path_buf(),
            file: Mutex::new(Some(file)),
            written: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            error: Mutex::new(None),
        })
    }

    /// Appends one document as a line.
    pub fn write(&self, doc: &[u8]) {
        let mut line = Vec::with_capacity(doc.len() + 1);
        line.extend_from_slice(doc);
        line.push(b'\n');
        let result = match self.file.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            Some(file) => file.write_all(&line).map_err(|e| e.to_string()),
            None => Err("the file is closed".to_string()),
        };
        match result {
            Ok(()) => self.written.fetch_add(1, Ordering::SeqCst),
            Err(e) => {
                *self.error.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(format!("cannot write to {}: {e}", self.path.display()));
                self.failed.fetch_add(1, Ordering::SeqCst)
            }
        };
    }

    /// Writes the file to disk and closes it.
    pub fn close(&self) {
        if let Some(file) = self.file.lock().unwrap_or_else(|e| e.into_inner()).take()
            && let Err(e) = file.sync_data()
        {
            *self.error.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(format!("cannot sync {}: {e}", self.path.display()));
        }
    }

    pub fn status(&self) -> JsonlStatus {
        JsonlStatus {
            path: self.path.to_string_lossy().into_owned(),
            written: self.written.load(Ordering::SeqCst),
            failed: self.failed.load(Ordering::SeqCst),
            error: self.error.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        }
    }
}

/// The running processing half.
pub struct Processing {
    pub pipeline: gst::Pipeline,
    pub appsrc: gst_app::AppSrc,
    pub ovinfer: gst::Element,
    pub track: Option<gst::Element>,
    pub analytics: Option<gst::Element>,
    /// The document sinks, by output.
    pub sinks: Vec<(Sink, gst::Element)>,
    pub jsonl: Option<Arc<Jsonl>>,
    pub video: Option<Arc<Video>>,
}

/// An element named after its role, so errors say where they come from (`ovinfer: ...`).
fn make(factory: &str, name: &str) -> Result<gst::Element, String> {
    gst::ElementFactory::make(factory).name(name).build().map_err(|_| {
        format!("GStreamer element '{factory}' is missing: run scripts/setup.sh (or install its plugin package)")
    })
}

/// A queue that holds documents by count only (their timestamps may jump after a loss).
fn branch_queue(output: &str) -> Result<gst::Element, String> {
    let queue = make("queue", &format!("{output}-queue"))?;
    queue.set_property("max-size-buffers", 1000u32);
    queue.set_property("max-size-bytes", 0u32);
    queue.set_property("max-size-time", 0u64);
    Ok(queue)
}

fn document_sink(
    name: &str,
    on_document: impl Fn(&gst::Buffer) + Send + 'static,
) -> gst_app::AppSink {
    let sink = gst_app::AppSink::builder()
        .name(name)
        .sync(false)
        .async_(false)
        .enable_last_sample(false)
        .build();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Flushing)?;
                if let Some(buffer) = sample.buffer_owned() {
                    on_document(&buffer);
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    sink
}

impl Processing {
    /// Builds the pipeline and sets it playing; an element that cannot start (a model that
    /// cannot be read, a bad output setting) makes this fail with its reason.
    pub fn start(
        checked: &Checked,
        (id, env): (&str, &VideoEnv),
        name: &str,
        counters: &Arc<Counters>,
        gate: &Arc<Gate>,
        hub: &Arc<Hub>,
        events: &mpsc::Sender<Event>,
    ) -> Result<Processing, String> {
        let pipeline = gst::Pipeline::with_name(&format!("{name}-processing"));
        let (errors_tx, errors) = mpsc::channel::<String>();
        let tx = events.clone();
        let bus = pipeline.bus().ok_or("a pipeline without a bus")?;
        bus.set_sync_handler(move |_, msg| {
            match msg.view() {
                gst::MessageView::Error(e) => {
                    let text = error_text(msg, e.error(), e.debug());
                    let _ = errors_tx.send(text.clone());
                    let _ = tx.send(Event::ProcessingError(text));
                }
                gst::MessageView::Eos(_) => {
                    let _ = tx.send(Event::ProcessingEos);
                }
                _ => {}
            }
            gst::BusSyncReply::Drop
        });
        let built = Self::build(&pipeline, checked, (id, env), counters, gate, hub);
        let started = built.and_then(|p| {
            if p.pipeline.set_state(gst::State::Playing).is_err() {
                let reason = errors.try_iter().next();
                Err(reason.unwrap_or_else(|| "the processing pipeline did not start".into()))
            } else {
                Ok(p)
            }
        });
        if started.is_err() {
            let _ = pipeline.set_state(gst::State::Null);
            bus.unset_sync_handler();
        }
        started
    }

    fn build(
        pipeline: &gst::Pipeline,
        checked: &Checked,
        (id, env): (&str, &VideoEnv),
        counters: &Arc<Counters>,
        gate: &Arc<Gate>,
        hub: &Arc<Hub>,
    ) -> Result<Processing, String> {
        let appsrc = gst_app::AppSrc::builder()
            .name("frames")
            .format(gst::Format::Time)
            .is_live(checked.source.realtime)
            .max_buffers(0)
            .block(false)
            .build();
        let ovinfer = make("ovinfer", "ovinfer")?;
        for (key, value) in &checked.ovinfer {
            set_own(&ovinfer, key, value).map_err(|e| format!("ovinfer.{key}: {e}"))?;
        }
        if let Some(id) = &checked.instance_id {
            ovinfer.set_property("model-instance-id", id);
        }
        // After ovinfer, on the frames' objects: ids, then the events about them.
        let stage = |factory: &str, key: &str, properties: &Option<Vec<(String, String)>>| {
            let Some(properties) = properties else {
                return Ok(None);
            };
            let element = make(factory, factory)?;
            for (name, value) in properties {
                set_own(&element, name, value).map_err(|e| format!("{key}.{name}: {e}"))?;
            }
            Ok::<_, String>(Some(element))
        };
        let track = stage("ovtrack", "track", &checked.track)?;
        let analytics = stage("ovanalytics", "analytics", &checked.analytics)?;
        let lvajson = make("lvajson", "lvajson")?;
        lvajson.set_property("skip-empty", true);
        if let Some(subtype) = &checked.subtype {
            lvajson.set_property("subtype", subtype);
        }
        let tee = make("tee", "outputs")?;
        tee.set_property("allow-not-linked", true);
        let mut head = vec![appsrc.clone().upcast::<gst::Element>(), ovinfer.clone()];
        head.extend(track.iter().chain(&analytics).cloned());
        pipeline
            .add_many(head.iter().chain([&lvajson, &tee]))
            .map_err(|e| e.to_string())?;
        gst::Element::link_many(&head)
            .map_err(|e| format!("cannot link the processing pipeline: {e}"))?;
        let last = head.last().ok_or("an empty processing pipeline")?;
        let video = match &checked.video {
            Some(out) => {
                let frames = make("tee", "frames-tee")?;
                let to_json = make("queue", "json-queue")?;
                pipeline
                    .add_many([&frames, &to_json])
                    .map_err(|e| e.to_string())?;
                gst::Element::link_many([last, &frames, &to_json, &lvajson])
                    .map_err(|e| format!("cannot link the processing pipeline: {e}"))?;
                Some(Arc::new(Video::build(pipeline, &frames, out, id, env)?))
            }
            None => {
                last.link(&lvajson)
                    .map_err(|e| format!("cannot link the processing pipeline: {e}"))?;
                None
            }
        };
        lvajson
            .link(&tee)
            .map_err(|e| format!("cannot link the processing pipeline: {e}"))?;

        let mut branches: Vec<gst::Element> = Vec::new();
        let (hub, docs) = (hub.clone(), counters.clone());
        branches.push(
            document_sink("results", move |buffer| {
                let json = buffer
                    .map_readable()
                    .map(|m| Arc::<str>::from(String::from_utf8_lossy(m.as_slice())))
                    .unwrap_or_else(|_| Arc::from(""));
                hub.publish(Document {
                    seq: docs.documents.fetch_add(1, Ordering::SeqCst),
                    pts_ns: buffer.pts().map(gst::ClockTime::nseconds),
                    json,
                });
            })
            .upcast(),
        );
        let jsonl = match &checked.jsonl {
            Some(path) => {
                let jsonl = Arc::new(Jsonl::open(path)?);
                let writer = jsonl.clone();
                branches.push(
                    document_sink("jsonl", move |buffer| match buffer.map_readable() {
                        Ok(map) => writer.write(map.as_slice()),
                        Err(_) => writer.write(b""),
                    })
                    .upcast(),
                );
                Some(jsonl)
            }
            None => None,
        };
        let mut sinks = Vec::new();
        for output in &checked.sinks {
            let (kind, at) = (output.sink, output.sink.at());
            let sink = make(kind.factory(), kind.key())?;
            for (key, value) in output.properties(id) {
                set_own(&sink, &key, &value).map_err(|e| format!("{at}.{key}: {e}"))?;
            }
            branches.push(sink.clone());
            sinks.push((kind, sink));
        }
        for sink in &branches {
            let queue = branch_queue(&sink.name())?;
            pipeline
                .add_many([&queue, sink])
                .map_err(|e| e.to_string())?;
            gst::Element::link_many([&tee, &queue, sink])
                .map_err(|e| format!("cannot link an output: {e}"))?;
        }

        let gate = gate.clone();
        appsrc
            .static_pad("src")
            .ok_or("appsrc without a src pad")?
            .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                gate.leave();
                gst::PadProbeReturn::Ok
            });
        let processed = counters.clone();
        ovinfer
            .static_pad("src")
            .ok_or("ovinfer without a src pad")?
            .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if let Some(gst::PadProbeData::Buffer(b)) = &info.data {
                    let end = b
                        .pts()
                        .map(|p| p.nseconds() + b.duration().map_or(0, gst::ClockTime::nseconds));
                    if let Some(end) = end {
                        processed.last_end_ns.store(end, Ordering::SeqCst);
                    }
                }
                processed.processed.fetch_add(1, Ordering::SeqCst);
                gst::PadProbeReturn::Ok
            });
        Ok(Processing {
            pipeline: pipeline.clone(),
            appsrc,
            ovinfer,
            track,
            analytics,
            sinks,
            jsonl,
            video,
        })
    }

    /// Stops the pipeline (NULL), closes the JSON Lines file and drops the bus handler.
    pub fn stop(&self) {
        let _ = self.pipeline.set_state(gst::State::Null);
        if let Some(bus) = self.pipeline.bus() {
            bus.unset_sync_handler();
        }
        if let Some(jsonl) = &self.jsonl {
            jsonl.close();
        }
        if let Some(video) = &self.video {
            video.close();
        }
    }
}

impl Drop for Processing {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A counter property of an element (unsigned, 32 or 64 bits); 0 if it has none of that name.
fn counter(element: &gst::Element, name: &str) -> u64 {
    if element.find_property(name).is_none() {
        return 0;
    }
    let value = element.property_value(name);
    value
        .get::<u64>()
        .or_else(|_| value.get::<u32>().map(u64::from))
        .unwrap_or(0)
}

/// `ovtrack`'s counters.
pub fn track_status(ovtrack: &gst::Element) -> TrackStatus {
    TrackStatus {
        tracks_created: counter(ovtrack, "tracks-created"),
        active_tracks: counter(ovtrack, "active-tracks"),
    }
}

/// `ovanalytics`' counters.
pub fn analytics_status(ovanalytics: &gst::Element) -> AnalyticsStatus {
    AnalyticsStatus {
        crossings: counter(ovanalytics, "crossings"),
        events: counter(ovanalytics, "events"),
    }
}

/// The document sinks' counters, read from their properties.
pub fn sinks_status(sinks: &[(Sink, gst::Element)]) -> SinksStatus {
    let mut status = SinksStatus::default();
    for (kind, sink) in sinks {
        match kind {
            Sink::Http => status.http = Some(http_status(sink)),
            Sink::Mqtt => status.mqtt = Some(publish_status(sink, *kind)),
            Sink::Kafka => status.kafka = Some(publish_status(sink, *kind)),
        }
    }
    status
}

/// `lvahttpsink`'s counters, read from its properties.
fn http_status(sink: &gst::Element) -> HttpStatus {
    let count = |name: &str| counter(sink, name);
    HttpStatus {
        location: sink
            .property::<Option<String>>("location")
            .map(|l| without_credentials(&l))
            .unwrap_or_default(),
        sent: count("sent"),
        failed: count("failed"),
        dropped: count("dropped"),
        queued: count("queued"),
        retried: count("retried"),
        timeouts: count("timeouts"),
        undelivered: count("undelivered"),
        recovered: count("recovered"),
        discarded: count("discarded"),
    }
}

/// `lvamqttsink`'s or `lvakafkasink`'s counters (src/publish/settings.rs's `COUNTERS`), read
/// from their properties, and where it publishes.
fn publish_status(sink: &gst::Element, kind: Sink) -> PublishStatus {
    let count = |name: &str| counter(sink, name);
    let text = |name: &str| {
        sink.find_property(name)
            .and_then(|_| sink.property::<Option<String>>(name))
            .unwrap_or_default()
    };
    PublishStatus {
        broker: match kind {
            Sink::Mqtt => format!("{}:{}", text("host"), count("port")),
            _ => text("brokers"),
        },
        topic: text("topic"),
        sent: count("sent"),
        failed: count("failed"),
        resent: count("resent"),
        dropped: count("dropped"),
        waited: count("waited"),
        queued: count("queued"),
        undelivered: count("undelivered"),
        recovered: count("recovered"),
        discarded: count("discarded"),
        disconnects: count("disconnects"),
    }
}

/// A URL with its `user:password@` part hidden, for showing.
pub fn without_credentials(url: &str) -> String {
    match gst::glib::Uri::parse(url, gst::glib::UriFlags::NONE) {
        Ok(uri) if uri.userinfo().is_some() => uri
            .to_string_partial(gst::glib::UriHideFlags::USERINFO)
            .replacen("://", "://***@", 1),
        _ => url.to_string(),
    }
}
