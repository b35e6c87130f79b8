//! What a stream reports ([`Status`], serialised as the API's JSON with snake_case keys), and
//! the small pure pieces it is computed with: the frame rate over a sliding window
//! ([`RateMeter`]) and the record of source losses ([`Gaps`]).

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

/// The gaps kept in detail (the count and total cover all of them).
pub const GAPS_KEPT: usize = 16;

/// A stream's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Pipelines built, waiting for the first frame.
    Starting,
    /// Frames flow.
    Running,
    /// The source was lost; retrying with back-off. Processing and outputs keep running.
    Reconnecting,
    /// The source ended (a file played once) and every output was flushed.
    Finished,
    /// An error stopped it: see `error`.
    Failed,
    /// Stopped on request (delete, replace, server shutdown).
    Stopped,
}

impl State {
    /// Whether the stream is over (its threads are gone or going).
    #[cfg(test)]
    pub fn is_final(self) -> bool {
        matches!(self, State::Finished | State::Failed | State::Stopped)
    }
}

/// A stream's status: everything `GET /streams/{id}` shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    pub state: State,
    /// With `failed`: the GStreamer error text and its debug details.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The last reason the source was lost or could not be started again (while reconnecting,
    /// why the last attempt failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_source_error: Option<String>,
    /// Frames the source delivered.
    pub produced_frames: u64,
    /// Frames out of the processing pipeline (inferred or skipped by `interval`).
    pub processed_frames: u64,
    /// Frames inferred (ovinfer's `inferences`).
    pub inferred_frames: u64,
    /// Frames dropped: `realtime` frames inference could not take, and frames still inside when
    /// a stop could not wait for them. At the end, produced = processed + dropped.
    pub dropped_frames: u64,
    /// Documents with results (the outputs' input).
    pub documents: u64,
    /// Processed frames per second over the last seconds (over the whole run once final).
    pub fps: f64,
    /// Since the stream started (until it ended, once final).
    pub elapsed_ms: u64,
    /// Files played once: duration − position of the last processed frame.
    pub remaining_time_ms: Option<u64>,
    pub video: Option<Video>,
    pub latency: Latency,
    /// Times the source came back after a loss.
    pub reconnects: u64,
    /// Attempts to bring a lost source back (successful or not).
    pub reconnect_attempts: u64,
    /// Times a looping source started again from its beginning.
    pub loops: u64,
    pub gaps: GapsStatus,
    /// With `track`: `ovtrack`'s counters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub track: Option<TrackStatus>,
    /// With `analytics`: `ovanalytics`' counters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analytics: Option<AnalyticsStatus>,
    pub outputs: OutputsStatus,
}

/// `ovtrack`'s counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TrackStatus {
    /// Ids given since the stream started.
    pub tracks_created: u64,
    /// Objects with an id alive after the last frame (seen or not).
    pub active_tracks: u64,
}

/// `ovanalytics`' counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AnalyticsStatus {
    /// Line crossings counted, on every line.
    pub crossings: u64,
    /// Events of every kind (crossings, zone entries, exits, occupancy, dwell).
    pub events: u64,
}

/// The frames as the source delivers them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Video {
    pub width: u32,
    pub height: u32,
    /// From the caps; `None` for a variable frame rate.
    pub fps: Option<f64>,
}

/// ovinfer's latency figures (time a frame spends in the element), ms.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// One loss of the source.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gap {
    /// When the last frame before the loss came (RFC 3339, UTC); the loss was noticed then, or
    /// `source-timeout-ms` later for a stall.
    pub start: String,
    /// When frames came back; `None` while it lasts.
    pub end: Option<String>,
    /// Until `end`, or until now while it lasts.
    pub duration_ms: u64,
    /// Why the source was considered lost.
    pub reason: String,
    /// Attempts made to bring it back.
    pub attempts: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GapsStatus {
    /// Losses since the start.
    pub count: u64,
    /// Their total duration.
    pub total_ms: u64,
    /// The last [`GAPS_KEPT`], oldest first; the last one may still be open.
    pub recent: Vec<Gap>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OutputsStatus {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jsonl: Option<JsonlStatus>,
    /// `http`, `mqtt`, `kafka`.
    #[serde(flatten)]
    pub sinks: SinksStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub video: Option<super::video::VideoStatus>,
}

/// The document sinks' counters (shown inside `outputs`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SinksStatus {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mqtt: Option<PublishStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kafka: Option<PublishStatus>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct JsonlStatus {
    pub path: String,
    /// Documents written (one line each).
    pub written: u64,
    /// Documents that could not be written.
    pub failed: u64,
    /// The last write error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `lvahttpsink`'s counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HttpStatus {
    pub location: String,
    pub sent: u64,
    pub failed: u64,
    pub dropped: u64,
    pub queued: u64,
    pub retried: u64,
    pub timeouts: u64,
    /// Documents left when the EOS flush ran out or at a stop: dropped without a spool, kept in
    /// the spool with one.
    pub undelivered: u64,
    /// Documents found in `spool-dir` at start, left by an earlier run, delivered first.
    pub recovered: u64,
    /// Damaged spool records cut off at start.
    pub discarded: u64,
}

/// `lvamqttsink`'s or `lvakafkasink`'s counters: the publishing core's (see
/// `gstovlva::publish::settings::COUNTERS`, whose texts these are).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PublishStatus {
    /// MQTT: `host:port`; Kafka: the bootstrap brokers.
    pub broker: String,
    /// The `topic` property as set (`{stream}` is the stream's id).
    pub topic: String,
    /// Documents the broker confirmed (qos 0: written to the connection).
    pub sent: u64,
    /// Documents the broker refused for good (not sent again).
    pub failed: u64,
    /// Documents sent again after a connection failure (they may arrive twice).
    pub resent: u64,
    /// Documents lost: queue or spool full (drop-oldest), not written to the spool, or
    /// undelivered at EOS or stop without a spool.
    pub dropped: u64,
    /// Documents held while the broker was unreachable and sent once it was back.
    pub waited: u64,
    /// Documents not yet delivered: waiting and in flight, in memory or in the spool.
    pub queued: u64,
    /// Documents left when the EOS flush ran out or at a stop: dropped without a spool, kept in
    /// the spool with one.
    pub undelivered: u64,
    /// Documents found in `spool-dir` at start, left by an earlier run, delivered first.
    pub recovered: u64,
    /// Damaged spool records cut off at start.
    pub discarded: u64,
    /// Connections lost and connection attempts that failed.
    pub disconnects: u64,
}

/// A rate over a sliding window of samples (count, time).
#[derive(Debug, Clone)]
pub struct RateMeter {
    window: Duration,
    samples: VecDeque<(Instant, u64)>,
}

impl RateMeter {
    pub fn new(window: Duration) -> RateMeter {
        RateMeter {
            window,
            samples: VecDeque::new(),
        }
    }

    /// Records the running count at `now`.
    pub fn sample(&mut self, now: Instant, count: u64) {
        self.samples.push_back((now, count));
        while self.samples.len() > 2
            && self
                .samples
                .get(1)
                .is_some_and(|(t, _)| now.duration_since(*t) >= self.window)
        {
            self.samples.pop_front();
        }
    }

    /// Counts per second between the oldest and newest sample in the window.
    pub fn rate(&self) -> f64 {
        match (self.samples.front(), self.samples.back()) {
            (Some((t0, c0)), Some((t1, c1))) if t1 > t0 => {
                c1.saturating_sub(*c0) as f64 / t1.duration_since(*t0).as_secs_f64()
            }
            _ => 0.0,
        }
    }
}

/// The losses of a source: counted, totalled, the last few kept.
#[derive(Debug, Clone, Default)]
pub struct Gaps {
    count: u64,
    closed_total: Duration,
    recent: VecDeque<OpenOrClosed>,
}

#[derive(Debug, Clone)]
struct OpenOrClosed {
    start: SystemTime,
    started: Instant,
    end: Option<(SystemTime, Duration)>,
    reason: String,
    attempts: u64,
}

impl Gaps {
    /// A loss begins (ignored if one is open: the first reason stays).
    pub fn open(&mut self, at: SystemTime, now: Instant, reason: &str) {
        if self.is_open() {
            return;
        }
        self.count += 1;
        if self.recent.len() == GAPS_KEPT {
            self.recent.pop_front();
        }
        self.recent.push_back(OpenOrClosed {
            start: at,
            started: now,
            end: None,
            reason: reason.to_string(),
            attempts: 0,
        });
    }

    pub fn is_open(&self) -> bool {
        self.recent.back().is_some_and(|g| g.end.is_none())
    }

    /// One more attempt to end the open loss.
    pub fn attempt(&mut self) {
        if let Some(g) = self.recent.back_mut().filter(|g| g.end.is_none()) {
            g.attempts += 1;
        }
    }

    /// Frames are back: the open loss ends.
    pub fn close(&mut self, at: SystemTime, now: Instant) {
        if let Some(g) = self.recent.back_mut().filter(|g| g.end.is_none()) {
            let lasted = now.duration_since(g.started);
            g.end = Some((at, lasted));
            self.closed_total += lasted;
        }
    }

    pub fn status(&self, now: Instant) -> GapsStatus {
        let open = self
            .recent
            .back()
            .filter(|g| g.end.is_none())
            .map_or(Duration::ZERO, |g| now.duration_since(g.started));
        GapsStatus {
            count: self.count,
            total_ms: millis(self.closed_total + open),
            recent: self
                .recent
                .iter()
                .map(|g| Gap {
                    start: crate::rfc3339(g.start),
                    end: g.end.map(|(at, _)| crate::rfc3339(at)),
                    duration_ms: millis(
                        g.end.map_or_else(|| now.duration_since(g.started), |e| e.1),
                    ),
                    reason: g.reason.clone(),
                    attempts: g.attempts,
                })
                .collect(),
        }
    }
}

pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_publishing_sinks_counters_are_all_shown() {
        let shown = serde_json::to_value(PublishStatus::default()).expect("serialises");
        for (name, _) in gstovlva::publish::settings::COUNTERS {
            assert!(shown.get(name).is_some(), "{name} is not in PublishStatus");
        }
        let keys = shown.as_object().map_or(0, |o| o.len());
        assert_eq!(keys, gstovlva::publish::settings::COUNTERS.len() + 2);
    }

    #[test]
    fn the_rate_covers_the_window_only() {
        let t0 = Instant::now();
        let mut m = RateMeter::new(Duration::from_secs(2));
        assert_eq!(m.rate(), 0.0);
        m.sample(t0, 0);
        assert_eq!(m.rate(), 0.0);
        // 10 fps for 5 s, then 50 fps for 3 s: the window sees the latter only.
        for i in 1..=50 {
            m.sample(t0 + Duration::from_millis(100 * i), i);
        }
        assert!((m.rate() - 10.0).abs() < 0.01, "{}", m.rate());
        for i in 1..=30 {
            m.sample(t0 + Duration::from_millis(5000 + 100 * i), 50 + 5 * i);
        }
        assert!((m.rate() - 50.0).abs() < 0.01, "{}", m.rate());
    }

    #[test]
    fn gaps_are_counted_totalled_and_kept() {
        let (w0, t0) = (SystemTime::UNIX_EPOCH, Instant::now());
        let s = Duration::from_secs(1);
        let mut g = Gaps::default();
        g.open(w0, t0, "server gone");
        g.open(w0 + s, t0 + s, "ignored: one is open");
        g.attempt();
        g.attempt();
        let open = g.status(t0 + 2 * s);
        assert_eq!((open.count, open.total_ms), (1, 2000));
        assert_eq!(open.recent[0].end, None);
        assert_eq!(open.recent[0].reason, "server gone");
        g.close(w0 + 5 * s, t0 + 5 * s);
        let closed = g.status(t0 + 60 * s);
        assert_eq!((closed.count, closed.total_ms), (1, 5000));
        assert_eq!(
            closed.recent[0],
            Gap {
                start: "1970-01-01T00:00:00.000Z".into(),
                end: Some("1970-01-01T00:00:05.000Z".into()),
                duration_ms: 5000,
                reason: "server gone".into(),
                attempts: 2,
            }
        );
        for i in 0..40 {
            g.open(w0, t0 + 10 * s * i, "again");
            g.close(w0, t0 + 10 * s * i + s);
        }
        let many = g.status(t0 + 1000 * s);
        assert_eq!((many.count, many.total_ms), (41, 45_000));
        assert_eq!(many.recent.len(), GAPS_KEPT);
    }
}
