//! A running stream: its two halves (see [`super::source`] and [`super::processing`]), the
//! supervisor thread that owns them, and the status and results anyone may read meanwhile.
//!
//! One supervisor thread per stream reacts to what the pipelines' bus handlers and callbacks
//! send it, and looks at the clock every [`TICK`]:
//!
//! - the first frame of a source run → `running` (after a loss: the gap closes, `reconnects`+1,
//!   the back-off starts again from its first delay);
//! - a source error, an RTSP source's end, or no frame for `source-timeout-ms` (the watchdog; a
//!   source held back by a full gate is not stalled; a run's first frame may take
//!   [`FIRST_FRAME_ALLOWANCE`] if that is longer) → a file fails (after its documents so far
//!   are flushed to the outputs); any other source goes
//!   `reconnecting`: its run is torn down, a gap opens, and a new run is started after an
//!   exponential back-off with jitter ([`BACKOFF_FIRST`] doubling to [`BACKOFF_MAX`]), again and
//!   again until frames come; the processing half and the outputs keep running meanwhile;
//! - the end of a source that ends (file, http, pipeline): with `loop` a new run starts at
//!   once (`loops`+1); otherwise EOS goes into the processing half, and its EOS (every output
//!   flushed) → `finished`;
//! - a processing error → `failed` with GStreamer's text;
//! - a stop → the source run is torn down, EOS goes into the processing half, the supervisor
//!   waits for the outputs to flush (up to the stop timeout), then → `stopped`.
//!
//! At every end both pipelines go to NULL, their bus handlers are removed, the results hub is
//! closed, the element counters are frozen into the status, and the thread exits: a stream that
//! is over holds no thread and no pipeline. Frames that were admitted but never came out (a
//! stop that could not wait) are added to `dropped_frames`, so that at the end
//! `produced = processed + dropped`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use gst::prelude::*;
use gstovlva::lvahttpsink::retry::{Backoff, random_u64};

use super::gate::{Gate, Mode};
use super::processing::{Jsonl, Processing, analytics_status, sinks_status, track_status};
use super::results::{Document, Hub};
use super::retime::Retimer;
use super::source::{Feed, Run, caps_video};
use super::spec::{Checked, Sink, StreamSpec};
use super::status::{
    AnalyticsStatus, Gaps, Latency, OutputsStatus, RateMeter, SinksStatus, State, Status,
    TrackStatus, millis,
};
use super::video::{Video, VideoEnv};
use tokio::sync::{broadcast, watch};

/// How often the supervisor looks at the clock (watchdog, retries, fps).
pub const TICK: Duration = Duration::from_millis(100);
/// First wait before a new attempt at a lost source.
pub const BACKOFF_FIRST: Duration = Duration::from_millis(500);
/// Longest wait between attempts.
pub const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// The least time a source run has for its first frame, whatever `source-timeout-ms` says.
pub const FIRST_FRAME_ALLOWANCE: Duration = Duration::from_secs(20);
/// Frames admitted into the processing half and not yet taken by inference.
pub const GATE_CAPACITY: usize = 2;
/// The window of the `fps` figure.
const FPS_WINDOW: Duration = Duration::from_secs(3);

/// Figures the streaming threads update; read without locks.
#[derive(Debug, Default)]
pub struct Counters {
    pub produced: AtomicU64,
    pub processed: AtomicU64,
    pub dropped: AtomicU64,
    pub documents: AtomicU64,
    /// When the last frame came from the source (or left a wait at the gate), ms since start.
    pub last_frame_ms: AtomicU64,
    /// End (timestamp + duration) of the last processed frame, ns on the stream's timeline.
    pub last_end_ns: AtomicU64,
    /// The caps of the last frame, for `video`.
    pub caps: Mutex<Option<gst::Caps>>,
}

/// What the pipelines tell the supervisor.
#[derive(Debug)]
pub enum Event {
    FirstFrame { run: u64 },
    SourceError { run: u64, text: String },
    SourceEos { run: u64 },
    ProcessingError(String),
    ProcessingEos,
    Stop,
}

/// The part of the status the supervisor writes.
#[derive(Debug)]
struct Report {
    state: State,
    error: Option<String>,
    last_source_error: Option<String>,
    gaps: Gaps,
    reconnects: u64,
    reconnect_attempts: u64,
    loops: u64,
    fps: f64,
    ended: Option<Instant>,
    duration: Option<Duration>,
    /// While running: the elements whose properties hold counters.
    ovinfer: Option<gst::Element>,
    track: Option<gst::Element>,
    analytics: Option<gst::Element>,
    sinks: Vec<(Sink, gst::Element)>,
    /// Once over: their last values.
    inferred: u64,
    latency: Latency,
    track_final: Option<TrackStatus>,
    analytics_final: Option<AnalyticsStatus>,
    sinks_final: SinksStatus,
}

/// Everything a status is made of; shared by the stream and its supervisor.
#[derive(Debug)]
struct Shared {
    started: Instant,
    counters: Arc<Counters>,
    report: Mutex<Report>,
    jsonl: Option<Arc<Jsonl>>,
    video: Option<Arc<Video>>,
    remaining: bool,
}

impl Shared {
    fn new(
        counters: Arc<Counters>,
        (jsonl, video): (Option<Arc<Jsonl>>, Option<Arc<Video>>),
        remaining: bool,
    ) -> Shared {
        Shared {
            started: Instant::now(),
            counters,
            jsonl,
            video,
            remaining,
            report: Mutex::new(Report {
                state: State::Starting,
                error: None,
                last_source_error: None,
                gaps: Gaps::default(),
                reconnects: 0,
                reconnect_attempts: 0,
                loops: 0,
                fps: 0.0,
                ended: None,
                duration: None,
                ovinfer: None,
                track: None,
                analytics: None,
                sinks: Vec::new(),
                inferred: 0,
                latency: Latency::default(),
                track_final: None,
                analytics_final: None,
                sinks_final: SinksStatus::default(),
            }),
        }
    }

    fn report(&self) -> std::sync::MutexGuard<'_, Report> {
        self.report.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn status(&self) -> Status {
        let now = Instant::now();
        let c = &self.counters;
        let mut status = {
            let r = self.report();
            Status {
                state: r.state,
                error: r.error.clone(),
                last_source_error: r.last_source_error.clone(),
                produced_frames: c.produced.load(Ordering::SeqCst),
                processed_frames: c.processed.load(Ordering::SeqCst),
                inferred_frames: r.inferred,
                dropped_frames: c.dropped.load(Ordering::SeqCst),
                documents: c.documents.load(Ordering::SeqCst),
                fps: r.fps,
                elapsed_ms: millis(r.ended.unwrap_or(now).duration_since(self.started)),
                remaining_time_ms: None,
                video: c
                    .caps
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_ref()
                    .and_then(caps_video),
                latency: r.latency.clone(),
                reconnects: r.reconnects,
                reconnect_attempts: r.reconnect_attempts,
                loops: r.loops,
                gaps: r.gaps.status(now),
                track: r.track_final.clone(),
                analytics: r.analytics_final.clone(),
                outputs: OutputsStatus {
                    jsonl: None,
                    sinks: r.sinks_final.clone(),
                    video: None,
                },
            }
        };
        let (ovinfer, track, analytics, sinks, duration) = {
            let r = self.report();
            (
                r.ovinfer.clone(),
                r.track.clone(),
                r.analytics.clone(),
                r.sinks.clone(),
                r.duration,
            )
        };
        // Element properties are read outside our lock.
        if let Some(ovinfer) = ovinfer {
            status.inferred_frames = ovinfer.property::<u64>("inferences");
            status.latency = latency(&ovinfer);
        }
        if let Some(track) = track {
            status.track = Some(track_status(&track));
        }
        if let Some(analytics) = analytics {
            status.analytics = Some(analytics_status(&analytics));
        }
        if !sinks.is_empty() {
            status.outputs.sinks = sinks_status(&sinks);
        }
        status.outputs.jsonl = self.jsonl.as_ref().map(|j| j.status());
        status.outputs.video = self.video.as_ref().map(|v| v.status());
        if self.remaining {
            status.remaining_time_ms = match status.state {
                State::Finished => Some(0),
                _ => duration.map(|d| {
                    let position = Duration::from_nanos(c.last_end_ns.load(Ordering::SeqCst));
                    millis(d.saturating_sub(position))
                }),
            };
        }
        status
    }
}

fn latency(ovinfer: &gst::Element) -> Latency {
    Latency {
        p50_ms: ovinfer.property::<f64>("latency-p50-ms"),
        p99_ms: ovinfer.property::<f64>("latency-p99-ms"),
    }
}

/// How a stream ended.
enum End {
    Finished,
    /// The source failed (a file): what came before it is still flushed to the outputs.
    SourceFailed(String),
    /// The processing half failed: nothing more can come out of it.
    Failed(String),
    Stopped,
}

struct Supervisor {
    name: String,
    checked: Checked,
    shared: Arc<Shared>,
    hub: Arc<Hub>,
    feed: Arc<Feed>,
    processing: Processing,
    events_tx: mpsc::Sender<Event>,
    events: mpsc::Receiver<Event>,
    run: Option<Run>,
    runs: u64,
    backoff: Backoff,
    retry_at: Option<Instant>,
    /// EOS was sent into the processing half.
    draining: bool,
    meter: RateMeter,
}

fn backoff() -> Backoff {
    Backoff::new(BACKOFF_FIRST, BACKOFF_MAX, random_u64())
}

impl Supervisor {
    fn run(mut self) {
        let mut end = self.start_run();
        while end.is_none() {
            end = match self.events.recv_timeout(TICK) {
                Ok(Event::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => Some(End::Stopped),
                Ok(Event::ProcessingError(text)) => Some(End::Failed(text)),
                Ok(Event::ProcessingEos) if self.draining => Some(End::Finished),
                Ok(Event::FirstFrame { run }) if self.current(run) => {
                    self.frames_back();
                    None
                }
                Ok(Event::SourceError { run, text }) if self.current(run) => self.lost(text),
                Ok(Event::SourceEos { run }) if self.current(run) => self.source_ended(),
                // From a run already torn down, or an EOS we did not ask for.
                Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => None,
            };
            if end.is_none() {
                end = self.tick();
            }
        }
        if let Some(end) = end {
            self.end(end);
        }
    }

    fn current(&self, run: u64) -> bool {
        self.run.as_ref().is_some_and(|r| r.number == run)
    }

    /// Starts a new source run; a failure to start is a loss.
    fn start_run(&mut self) -> Option<End> {
        self.runs += 1;
        let elapsed = self
            .checked
            .source
            .realtime
            .then(|| self.shared.started.elapsed());
        self.feed
            .retimer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .restart(elapsed);
        match Run::start(
            &self.checked.source,
            self.runs,
            &self.feed,
            &self.events_tx,
            &self.name,
        ) {
            Ok(run) => {
                self.run = Some(run);
                None
            }
            Err(e) => self.lost(e),
        }
    }

    fn stop_source(&mut self) {
        if let Some(run) = self.run.take() {
            run.stop();
        }
    }

    fn frames_back(&mut self) {
        let mut r = self.shared.report();
        if r.state == State::Reconnecting {
            r.gaps.close(SystemTime::now(), Instant::now());
            r.reconnects += 1;
        }
        r.state = State::Running;
        drop(r);
        self.backoff = backoff();
    }

    /// The source is lost: a file fails, others are retried.
    fn lost(&mut self, reason: String) -> Option<End> {
        self.stop_source();
        if self.checked.source.errors_are_final() {
            return Some(End::SourceFailed(reason));
        }
        // The loss began with the last frame (a stall is noticed source-timeout-ms later).
        let since_frame = Duration::from_millis(
            self.feed
                .since_start_ms()
                .saturating_sub(self.shared.counters.last_frame_ms.load(Ordering::SeqCst)),
        );
        let mut r = self.shared.report();
        if r.state != State::Reconnecting {
            r.state = State::Reconnecting;
            let (wall, now) = (SystemTime::now(), Instant::now());
            r.gaps.open(
                wall.checked_sub(since_frame).unwrap_or(wall),
                now.checked_sub(since_frame).unwrap_or(now),
                &reason,
            );
        }
        r.last_source_error = Some(reason);
        drop(r);
        self.retry_at = Some(Instant::now() + self.backoff.next_delay());
        None
    }

    fn source_ended(&mut self) -> Option<End> {
        let source = &self.checked.source;
        if source.looping {
            self.shared.report().loops += 1;
            self.stop_source();
            self.start_run()
        } else if source.ends() {
            self.stop_source();
            self.drain();
            None
        } else {
            self.lost("the source ended".into())
        }
    }

    /// EOS into the processing half (once).
    fn drain(&mut self) {
        if !self.draining {
            self.draining = true;
            let _ = self.processing.appsrc.end_of_stream();
        }
    }

    fn tick(&mut self) -> Option<End> {
        let now = Instant::now();
        let processed = self.shared.counters.processed.load(Ordering::SeqCst);
        self.meter.sample(now, processed);
        let duration = match &self.run {
            Some(run) if self.shared.remaining => run.duration().map(Duration::from),
            _ => None,
        };
        {
            let mut r = self.shared.report();
            r.fps = self.meter.rate();
            if r.duration.is_none() {
                r.duration = duration;
            }
        }
        if self.retry_at.is_some_and(|at| now >= at) {
            self.retry_at = None;
            {
                let mut r = self.shared.report();
                r.reconnect_attempts += 1;
                r.gaps.attempt();
            }
            return self.start_run();
        }
        let timeout = self.checked.source.timeout?;
        let run = self.run.as_ref()?;
        if self.draining {
            return None;
        }
        let now_ms = self.feed.since_start_ms();
        let counters = &self.shared.counters;
        if self.feed.gate.is_blocking() {
            counters.last_frame_ms.store(now_ms, Ordering::SeqCst);
        }
        let last_frame = counters.last_frame_ms.load(Ordering::SeqCst);
        let last = last_frame.max(run.started_ms);
        // Until a run's first frame, connecting (RTSP's DESCRIBE/SETUP/PLAY, the first key frame,
        // a model compiling on a busy machine) may take longer than a stall is allowed to.
        let allowed = if last_frame < run.started_ms {
            millis(timeout).max(millis(FIRST_FRAME_ALLOWANCE))
        } else {
            millis(timeout)
        };
        if now_ms.saturating_sub(last) > allowed {
            return self.lost(format!(
                "no frame for {} ms (source-timeout-ms)",
                now_ms.saturating_sub(last)
            ));
        }
        None
    }

    /// Waits for the processing half's EOS; `Err` with a text if it failed or did not come.
    fn wait_for_eos(&mut self, deadline: Instant) -> Result<(), String> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(Event::ProcessingEos) => return Ok(()),
                Ok(Event::ProcessingError(text)) => return Err(text),
                Ok(_) => {}
                Err(_) => {
                    return Err(format!(
                        "the outputs were not flushed within {} ms: stopped anyway",
                        millis(self.checked.stop_timeout())
                    ));
                }
            }
        }
    }

    fn end(mut self, end: End) {
        self.stop_source();
        self.feed.gate.close();
        let deadline = Instant::now() + self.checked.stop_timeout();
        let (state, error) = match end {
            End::Finished => (State::Finished, None),
            End::Failed(text) => (State::Failed, Some(text)),
            End::SourceFailed(text) => {
                self.drain();
                let flushed = self.wait_for_eos(deadline);
                (
                    State::Failed,
                    Some(
                        flushed
                            .err()
                            .map_or(text.clone(), |e| format!("{text}; {e}")),
                    ),
                )
            }
            End::Stopped => {
                self.drain();
                (State::Stopped, self.wait_for_eos(deadline).err())
            }
        };
        // Last element figures, then NULL.
        let inferred = self.processing.ovinfer.property::<u64>("inferences");
        let last_latency = latency(&self.processing.ovinfer);
        let track_final = self.processing.track.as_ref().map(track_status);
        let analytics_final = self.processing.analytics.as_ref().map(analytics_status);
        self.processing.stop();
        let sinks_final = sinks_status(&self.processing.sinks);
        let c = &self.shared.counters;
        let (produced, processed) = (
            c.produced.load(Ordering::SeqCst),
            c.processed.load(Ordering::SeqCst),
        );
        let accounted = processed + c.dropped.load(Ordering::SeqCst);
        if produced > accounted {
            c.dropped.fetch_add(produced - accounted, Ordering::SeqCst);
        }
        let now = Instant::now();
        let mut r = self.shared.report();
        r.state = state;
        r.error = error;
        r.ended = Some(now);
        r.inferred = inferred;
        r.latency = last_latency;
        r.track_final = track_final;
        r.analytics_final = analytics_final;
        r.sinks_final = sinks_final;
        r.ovinfer = None;
        r.track = None;
        r.analytics = None;
        r.sinks.clear();
        r.gaps.close(SystemTime::now(), now);
        let running = now.duration_since(self.shared.started).as_secs_f64();
        r.fps = if running > 0.0 {
            processed as f64 / running
        } else {
            0.0
        };
        drop(r);
        self.hub.close();
    }
}

/// A stream: started by [`Stream::start`], stopped by [`Stream::stop`] or when dropped.
pub struct Stream {
    id: String,
    spec: StreamSpec,
    shared: Arc<Shared>,
    hub: Arc<Hub>,
    control: Mutex<Option<(mpsc::Sender<Event>, JoinHandle<()>)>>,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream").field("id", &self.id).finish()
    }
}

impl Stream {
    /// Builds the processing half (an element that cannot start fails this, with its reason)
    /// and starts the supervisor, which starts the source. The state is then `starting`.
    pub fn start(id: &str, checked: Checked, env: &VideoEnv) -> Result<Stream, String> {
        let counters = Arc::new(Counters::default());
        let gate = Arc::new(Gate::new(GATE_CAPACITY));
        let hub = Arc::new(Hub::default());
        let (events_tx, events) = mpsc::channel();
        let name = format!("stream-{id}");
        let processing = Processing::start(
            &checked,
            (id, env),
            &name,
            &counters,
            &gate,
            &hub,
            &events_tx,
        )?;
        let shared = Arc::new(Shared::new(
            counters.clone(),
            (processing.jsonl.clone(), processing.video.clone()),
            checked.source.has_remaining_time(),
        ));
        {
            let mut r = shared.report();
            r.ovinfer = Some(processing.ovinfer.clone());
            r.track = processing.track.clone();
            r.analytics = processing.analytics.clone();
            r.sinks = processing.sinks.clone();
        }
        let feed = Arc::new(Feed {
            appsrc: processing.appsrc.clone(),
            gate,
            mode: if checked.source.realtime {
                Mode::Drop
            } else {
                Mode::Block
            },
            retimer: Mutex::new(Retimer::default()),
            counters,
            started: shared.started,
        });
        let stream = Stream {
            id: id.to_string(),
            spec: checked.spec.clone(),
            shared: shared.clone(),
            hub: hub.clone(),
            control: Mutex::new(None),
        };
        let supervisor = Supervisor {
            name,
            checked,
            shared,
            hub,
            feed,
            processing,
            events_tx: events_tx.clone(),
            events,
            run: None,
            runs: 0,
            backoff: backoff(),
            retry_at: None,
            draining: false,
            meter: RateMeter::new(FPS_WINDOW),
        };
        // A dropped supervisor (spawn failed) drops its pipelines, which stop themselves.
        let thread = std::thread::Builder::new()
            .name(thread_name(id))
            .spawn(move || supervisor.run())
            .map_err(|e| format!("cannot start the stream's thread: {e}"))?;
        *stream.lock_control() = Some((events_tx, thread));
        Ok(stream)
    }

    /// A stream that could not start (a definition loaded at start-up that no longer checks or
    /// starts): `failed` with the reason, no pipeline, no thread.
    pub fn failed(id: &str, spec: StreamSpec, error: String) -> Stream {
        let shared = Arc::new(Shared::new(Arc::default(), (None, None), false));
        {
            let mut r = shared.report();
            r.state = State::Failed;
            r.error = Some(error);
            r.ended = Some(shared.started);
        }
        let hub = Arc::new(Hub::default());
        hub.close();
        Stream {
            id: id.to_string(),
            spec,
            shared,
            hub,
            control: Mutex::new(None),
        }
    }

    fn lock_control(
        &self,
    ) -> std::sync::MutexGuard<'_, Option<(mpsc::Sender<Event>, JoinHandle<()>)>> {
        self.control.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The definition as given.
    pub fn spec(&self) -> &StreamSpec {
        &self.spec
    }

    /// The status now; never waits for the pipelines.
    pub fn status(&self) -> Status {
        self.shared.status()
    }

    /// The latest document, if any (also after the end).
    pub fn latest(&self) -> Option<Document> {
        self.hub.latest()
    }

    /// For `?wait=true`: `changed().await` on it returns at the next document, or an error once
    /// the stream is over.
    pub fn watch(&self) -> watch::Receiver<Option<Document>> {
        self.hub.watch()
    }

    /// Every document from now on, in order (`Lagged(n)`: n missed; `Closed`: the end).
    pub fn subscribe(&self) -> broadcast::Receiver<Document> {
        self.hub.subscribe()
    }

    /// Stops the stream: EOS into the processing half, outputs flushed within the stop timeout,
    /// pipelines to NULL, thread joined. Blocks until then; returns the final status. A stream
    /// already over keeps its state (finished, failed).
    pub fn stop(&self) -> Status {
        let control = self.lock_control().take();
        if let Some((events, thread)) = control {
            let _ = events.send(Event::Stop);
            if thread.join().is_err() {
                let mut r = self.shared.report();
                r.state = State::Failed;
                r.error = Some("the stream's supervisor panicked".into());
            }
        }
        self.status()
    }

    /// Whether the supervisor thread is still there (tests).
    #[cfg(test)]
    pub fn has_thread(&self) -> bool {
        self.lock_control()
            .as_ref()
            .is_some_and(|(_, t)| !t.is_finished())
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Linux keeps 15 bytes of a thread's name.
fn thread_name(id: &str) -> String {
    let mut name = format!("st-{id}");
    while name.len() > 15 {
        name.pop();
    }
    name
}
