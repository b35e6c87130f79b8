//! The properties every publishing sink has (queue, spool, flush, statistics, reconnects) and
//! its counters: declared, set and read here once, so that each element's `imp.rs` only adds
//! its own.

use std::path::PathBuf;
use std::time::Duration;

use gst::glib;
use gst::prelude::*;

use super::QueueFull;
use super::queue::Overflow;
use crate::properties::optional_string;

pub const DEFAULT_MAX_QUEUE: u32 = 1000;
pub const DEFAULT_SPOOL_MAX_BYTES: u64 = 100 << 20;
pub const MIN_SPOOL_MAX_BYTES: u64 = 4096;
pub const DEFAULT_FLUSH_TIMEOUT: u32 = 5000;
pub const DEFAULT_STATS_INTERVAL: u32 = 0;
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 100;
pub const DEFAULT_RETRY_DELAY: u32 = 500;
pub const DEFAULT_MAX_RETRY_DELAY: u32 = 10_000;
pub const DEFAULT_TIMEOUT: u32 = 10;

/// The read-only counters, as properties and as fields of the `<element>-stats` message.
pub const COUNTERS: [(&str, &str); 10] = [
    (
        "sent",
        "Documents the broker confirmed (qos 0: written to the connection)",
    ),
    (
        "failed",
        "Documents the broker refused for good (not sent again)",
    ),
    (
        "resent",
        "Documents sent again after a connection failure (they may arrive twice)",
    ),
    (
        "dropped",
        "Documents lost: queue or spool full (drop-oldest), not written to the spool, or \
         undelivered at EOS or stop without a spool",
    ),
    (
        "waited",
        "Documents held while the broker was unreachable and sent once it was back",
    ),
    (
        "queued",
        "Documents not yet delivered now: waiting and in flight, in memory or in the spool",
    ),
    (
        "undelivered",
        "Documents left when the EOS flush ran out or at a stop: dropped without a spool, kept \
         in the spool with one",
    ),
    (
        "recovered",
        "Documents found in spool-dir at start, left by an earlier run, delivered first",
    ),
    (
        "discarded",
        "Damaged spool records cut off at start (a record torn by a crash)",
    ),
    (
        "disconnects",
        "Connections lost and connection attempts that failed",
    ),
];

/// The shared settings of a publishing sink.
#[derive(Debug, Clone)]
pub struct PublishSettings {
    pub max_queue: u32,
    pub queue_full: QueueFull,
    pub spool_dir: Option<PathBuf>,
    pub spool_max_bytes: u64,
    pub flush_timeout: u32,
    pub stats_interval: u32,
    pub max_in_flight: u32,
    pub retry_delay: u32,
    pub max_retry_delay: u32,
    pub timeout: u32,
}

impl Default for PublishSettings {
    fn default() -> Self {
        PublishSettings {
            max_queue: DEFAULT_MAX_QUEUE,
            queue_full: QueueFull::DropOldest,
            spool_dir: None,
            spool_max_bytes: DEFAULT_SPOOL_MAX_BYTES,
            flush_timeout: DEFAULT_FLUSH_TIMEOUT,
            stats_interval: DEFAULT_STATS_INTERVAL,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            retry_delay: DEFAULT_RETRY_DELAY,
            max_retry_delay: DEFAULT_MAX_RETRY_DELAY,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

fn ms(v: u32) -> Duration {
    Duration::from_millis(u64::from(v))
}

/// A `guint` property with its range and default.
pub fn uint(
    name: &str,
    nick: &str,
    blurb: &str,
    min: u32,
    max: u32,
    default: u32,
) -> glib::ParamSpec {
    glib::ParamSpecUInt::builder(name)
        .nick(nick)
        .blurb(blurb)
        .minimum(min)
        .maximum(max)
        .default_value(default)
        .build()
}

/// The read-only `guint64` counter properties, from (name, blurb).
pub fn counter_properties(counters: &[(&str, &str)]) -> Vec<glib::ParamSpec> {
    counters
        .iter()
        .map(|(name, blurb)| {
            glib::ParamSpecUInt64::builder(name)
                .nick(name)
                .blurb(blurb)
                .read_only()
                .build()
        })
        .collect()
}

impl PublishSettings {
    pub fn overflow(&self) -> Overflow {
        match self.queue_full {
            QueueFull::DropOldest => Overflow::DropOldest,
            QueueFull::Block => Overflow::Block,
        }
    }

    pub fn flush_timeout(&self) -> Duration {
        ms(self.flush_timeout)
    }

    pub fn stats_interval(&self) -> Option<Duration> {
        (self.stats_interval > 0).then(|| ms(self.stats_interval))
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(u64::from(self.timeout.max(1)))
    }

    pub fn worker_options(&self) -> super::worker::Options {
        super::worker::Options {
            max_in_flight: self.max_in_flight.max(1) as usize,
            connect_timeout: self.connect_timeout(),
            retry_delay: ms(self.retry_delay),
            max_retry_delay: ms(self.max_retry_delay),
            sync_interval: Duration::from_secs(1),
        }
    }

    /// The shared properties of a broker sink: those of [`queue_properties`], the connection's
    /// (`max-in-flight`, `retry-delay`, `max-retry-delay`, `timeout`) and the [`COUNTERS`];
    /// `element` names the stats message in the blurb.
    ///
    /// [`queue_properties`]: Self::queue_properties
    pub fn properties(element: &str) -> Vec<glib::ParamSpec> {
        let mut props = Self::queue_properties(element);
        props.extend([
            uint(
                "max-in-flight",
                "Maximum in flight",
                "Documents sent and not yet confirmed by the broker, at most",
                1,
                65_535,
                DEFAULT_MAX_IN_FLIGHT,
            ),
            uint(
                "retry-delay",
                "Retry delay",
                "Milliseconds before the first reconnection attempt; doubles each time (with \
                 jitter)",
                1,
                3_600_000,
                DEFAULT_RETRY_DELAY,
            ),
            uint(
                "max-retry-delay",
                "Maximum retry delay",
                "Longest wait between reconnection attempts, in milliseconds",
                1,
                3_600_000,
                DEFAULT_MAX_RETRY_DELAY,
            ),
            uint(
                "timeout",
                "Timeout",
                "Seconds a connection attempt may take",
                1,
                3600,
                DEFAULT_TIMEOUT,
            ),
        ]);
        props.extend(counter_properties(&COUNTERS));
        props
    }

    /// The backlog's properties every publishing sink has: `max-queue`, `queue-full`,
    /// `spool-dir`, `spool-max-bytes`, `flush-timeout`, `stats-interval`.
    pub fn queue_properties(element: &str) -> Vec<glib::ParamSpec> {
        vec![
            uint(
                "max-queue",
                "Maximum queue",
                "Documents waiting in memory at most (without spool-dir); then queue-full applies",
                1,
                1_000_000,
                DEFAULT_MAX_QUEUE,
            ),
            glib::ParamSpecEnum::builder_with_default("queue-full", QueueFull::DropOldest)
                .nick("Queue full")
                .blurb(
                    "When the queue (or the spool) is full: drop the oldest waiting document, or \
                     block the pipeline",
                )
                .build(),
            glib::ParamSpecString::builder("spool-dir")
                .nick("Spool folder")
                .blurb(
                    "Folder for a disk-backed queue (created if missing; one element per \
                     folder): documents wait there instead of in memory, and what a run left \
                     undelivered is delivered first by the next",
                )
                .build(),
            glib::ParamSpecUInt64::builder("spool-max-bytes")
                .nick("Spool size")
                .blurb(
                    "Bytes of undelivered documents the spool holds at most; then queue-full \
                     applies",
                )
                .minimum(MIN_SPOOL_MAX_BYTES)
                .default_value(DEFAULT_SPOOL_MAX_BYTES)
                .build(),
            uint(
                "flush-timeout",
                "Flush timeout",
                "At EOS, milliseconds to wait for every document to be confirmed; what is left \
                 is counted in undelivered (and dropped, without a spool)",
                0,
                3_600_000,
                DEFAULT_FLUSH_TIMEOUT,
            ),
            uint(
                "stats-interval",
                "Statistics interval",
                &format!("Milliseconds between {element}-stats element messages; 0: only at EOS"),
                0,
                3_600_000,
                DEFAULT_STATS_INTERVAL,
            ),
        ]
    }

    /// Sets a shared property; false when `name` is not one.
    pub fn set_property(&mut self, name: &str, value: &glib::Value) -> bool {
        match name {
            "max-queue" => self.max_queue = value.get().unwrap_or(DEFAULT_MAX_QUEUE),
            "queue-full" => self.queue_full = value.get().unwrap_or_default(),
            "spool-dir" => self.spool_dir = optional_string(value).map(PathBuf::from),
            "spool-max-bytes" => {
                self.spool_max_bytes = value.get().unwrap_or(DEFAULT_SPOOL_MAX_BYTES)
            }
            "flush-timeout" => self.flush_timeout = value.get().unwrap_or(DEFAULT_FLUSH_TIMEOUT),
            "stats-interval" => self.stats_interval = value.get().unwrap_or(DEFAULT_STATS_INTERVAL),
            "max-in-flight" => self.max_in_flight = value.get().unwrap_or(DEFAULT_MAX_IN_FLIGHT),
            "retry-delay" => self.retry_delay = value.get().unwrap_or(DEFAULT_RETRY_DELAY),
            "max-retry-delay" => {
                self.max_retry_delay = value.get().unwrap_or(DEFAULT_MAX_RETRY_DELAY)
            }
            "timeout" => self.timeout = value.get().unwrap_or(DEFAULT_TIMEOUT),
            _ => return false,
        }
        true
    }

    /// A shared writable property's value; `None` when `name` is not one (the counters are read
    /// from the [`Publisher`](super::sink::Publisher)).
    pub fn property(&self, name: &str) -> Option<glib::Value> {
        Some(match name {
            "max-queue" => self.max_queue.to_value(),
            "queue-full" => self.queue_full.to_value(),
            "spool-dir" => self
                .spool_dir
                .as_ref()
                .map(|p| p.to_string_lossy().into_owned())
                .to_value(),
            "spool-max-bytes" => self.spool_max_bytes.to_value(),
            "flush-timeout" => self.flush_timeout.to_value(),
            "stats-interval" => self.stats_interval.to_value(),
            "max-in-flight" => self.max_in_flight.to_value(),
            "retry-delay" => self.retry_delay.to_value(),
            "max-retry-delay" => self.max_retry_delay.to_value(),
            "timeout" => self.timeout.to_value(),
            _ => return None,
        })
    }
}
