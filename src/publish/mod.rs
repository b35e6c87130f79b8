//! The shared core of the publishing sinks: `lvamqttsink`, `lvakafkasink` and `lvahttpsink`.
//!
//! The delivery model, the same for every sink:
//! * `render` only enqueues ([`sink::Publisher::render`]); a worker thread ([`worker::run`])
//!   delivers in order through a [`worker::Transport`], one per protocol.
//! * The backlog ([`queue::Queue`]) is bounded: `max-queue` documents in memory, or with
//!   `spool-dir` a disk spool ([`spool::Spool`]) of at most `spool-max-bytes`; when full,
//!   `queue-full` drops the oldest waiting document (counted) or blocks the pipeline.
//! * Documents stay in the backlog until the broker confirmed them (peek/commit): the worker
//!   keeps up to `max-in-flight` sent and unconfirmed, commits the confirmed prefix in order, and
//!   after a connection failure sends every unconfirmed one again after reconnecting (with
//!   back-off). Delivery is at-least-once: duplicates only of the documents in flight at a
//!   failure (counted in `resent`).
//! * At EOS the sink waits up to `flush-timeout` for the backlog to be confirmed; what is left is
//!   counted (`undelivered`) and either dropped (memory) or kept in the spool for the next start.
//! * Every loss is counted; the counters are read-only properties and `<element>-stats` element
//!   messages ([`settings::COUNTERS`]).
//!
//! A new protocol implements [`worker::Transport`]:
//! * `connect(timeout)`: open a fresh connection (nothing carried over from a failed one: the
//!   worker re-sends what was unconfirmed itself) and wait for the broker's acceptance;
//! * `send(&doc)`: hand the document to the client library without waiting for the broker;
//! * `poll(timeout, &mut outcomes)`: wait a little for confirmations, pushing
//!   `Outcome::Delivered(sequence)` (or `Outcome::Rejected(sequence, why)` for a document the
//!   broker refuses for good, or `Outcome::Retrying` for one the transport tries again itself,
//!   which stays in flight: HTTP's retries of one document); an `Err` means the connection is
//!   lost;
//! * `disconnect()`.
//!
//! Its element keeps a [`settings::PublishSettings`] beside its own settings (properties from
//! [`settings::PublishSettings::properties`], or only the backlog's
//! [`settings::PublishSettings::queue_properties`] for a sink with its own retry settings) and a
//! [`sink::Publisher`] of its [`sink::Flavour`] (its counters and the words of its warnings),
//! and calls the publisher from `start`, `render`, `event` (EOS), `stop`, `unlock` and
//! `unlock_stop`.

pub mod backoff;
pub mod body;
pub mod queue;
pub mod settings;
pub mod sink;
pub mod spool;
pub mod worker;

pub use body::Body;

use gst::glib;

/// What to do with a new document when the queue is full (`queue-full` property).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstLvaQueueFull")]
pub enum QueueFull {
    #[default]
    #[enum_value(
        name = "Drop the oldest waiting document (counted)",
        nick = "drop-oldest"
    )]
    DropOldest,
    #[enum_value(name = "Wait for room: back-pressure on the pipeline", nick = "block")]
    Block,
}
