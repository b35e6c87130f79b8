//! Video streams as a service: the engine behind `PUT/GET/DELETE /streams/{id}`,
//! `/streams/{id}/results` and `/streams/{id}/events`, without any HTTP in it.
//!
//! A stream reads a video source, runs a configured model on every frame (`ovinfer`), turns each
//! frame's results into an LVA document (`lvajson`) and sends the documents with results to its
//! outputs (a JSON Lines file, an HTTP receiver through `lvahttpsink`, an MQTT broker through
//! `lvamqttsink`, a Kafka topic through `lvakafkasink`) and to the API (the latest document;
//! every document to subscribers). It reports its state and counters at any
//! time, survives the loss of its source (reconnecting with back-off), and stops cleanly
//! (outputs flushed).
//!
//! # The definition (`PUT /streams/{id}` body)
//!
//! ```json
//! {
//!   "source": {
//!     "uri": "rtsp://camera.local:8554/door",
//!     "realtime": true,
//!     "source-timeout-ms": 10000
//!   },
//!   "model": "object-detection",
//!   "ovinfer": {"threshold": 0.6, "interval": 2},
//!   "outputs": {
//!     "jsonl": {"path": "/var/lib/lva/door.jsonl"},
//!     "http": {"location": "http://127.0.0.1:8080/events", "max-queue": 100},
//!     "mqtt": {"host": "broker.local", "qos": 1}
//!   }
//! }
//! ```
//!
//! Keys are kebab-case; an unknown key is refused, saying which.
//!
//! - `source`: exactly one of
//!   - `uri`: `file:///absolute/path` (must exist), `rtsp://` (also `rtsps://`, `rtspt://`),
//!     `http://`, `https://`; decoded by `uridecodebin` (video only);
//!   - `pipeline`: a GStreamer source fragment, gst-launch syntax, ending in the element whose
//!     output is decoded (`decodebin` follows it), e.g. `v4l2src device=/dev/video0` or
//!     `videotestsrc is-live=true ! video/x-raw,framerate=30/1` (it may end on caps); it must
//!     parse with every error fatal, have exactly one unlinked source pad, no unlinked sink pad
//!     and no sink element (a source fragment produces video; it does not write or send
//!     anything);
//!
//!   and optionally
//!   - `loop` (default `false`): when the source ends, start it again (files, http,
//!     pipelines; refused for RTSP, whose end is a loss and is reconnected anyway);
//!   - `realtime` (default `false` for `file://`, `true` otherwise): follow the source's own
//!     pace (a file is played at its frame rate) and never hold it back: when inference cannot
//!     keep up, frames are dropped and counted in `dropped_frames`. Without it, the source
//!     waits for inference (back-pressure) and nothing is dropped: right for files, wrong for
//!     cameras;
//!   - `source-timeout-ms` (default 10000; 0 = never; else 100 to 3600000): no frame for this
//!     long means the source is lost (a stalled camera); a run has at least 20 s for its first
//!     frame.
//! - `model`: the name of a model of the configuration (its `ovinfer` settings and `subtype`).
//! - `ovinfer` (optional): `ovinfer` properties for this stream over the model's, by their
//!   gst-inspect names, as JSON strings, numbers or booleans (`threshold`, `interval`, `nireq`,
//!   `device`, ...); checked on a real element: an unknown property or a bad value is refused
//!   with the reason. `model` and `model-instance-id` cannot be set.
//! - `track` (optional): `true` or `ovtrack` properties: ids for the objects over time
//!   (`ovtrack` after `ovinfer`);
//! - `analytics` (optional, needs `track`): `ovanalytics` properties, `rules` (the rules
//!   document itself) or `rules-file`: line crossings and zones as LVA events (`ovanalytics`
//!   after `ovtrack`). The stages and their checks are in [`spec`].
//! - `outputs` (optional; the API's results are always there):
//!   - `jsonl`: `{"path": ABSOLUTE PATH}`: each document with results as one line, appended
//!     (the folder must exist);
//!   - `http`: `lvahttpsink` properties, `location` (http:// or https://) required, e.g.
//!     `max-queue`, `bearer-token`, `flush-timeout`: each document with results POSTed;
//!   - `mqtt`: `lvamqttsink` properties, `host` required, e.g. `port`, `qos`, `username`,
//!     `password`, `spool-dir` (absolute): each document published; `stream-id` defaults to the
//!     stream's id and `topic` to `lva/{stream}`;
//!   - `kafka`: `lvakafkasink` properties, `brokers` and `topic` required, e.g. `properties`
//!     (librdkafka settings, as an object or the element's structure text), `spool-dir`
//!     (absolute): each document a record, keyed by `stream-id`, which defaults to the stream's
//!     id.
//!
//!   The three document sinks are checked on real elements (an unknown or read-only property,
//!   a bad value: refused with the reason), their secrets are hidden when the definition is
//!   shown, a stop waits for the longest of their `flush-timeout`s, and the status shows their
//!   counters ([`status::OutputsStatus`]).
//!
//! Streams of one model with the same start-time `ovinfer` settings share one compiled model
//! and its infer requests (`model-instance-id`), so N cameras do not compile N models nor run
//! more requests at once than the model's `nireq`.
//!
//! # Using it (the HTTP layer)
//!
//! GStreamer initialised and the plugin registered, [`Registry::open`] with the configured
//! models and [`Options`] (the configuration's `streams` section: `state-dir`, `max-streams`)
//! restarts the saved streams. Then [`Registry::put`], [`Registry::info`], [`Registry::list`],
//! [`Registry::delete`], [`Registry::stream`] (for [`stream::Stream::latest`],
//! [`stream::Stream::watch`], [`stream::Stream::subscribe`]) and, at shutdown,
//! [`Registry::shutdown`]. `put`, `delete`, `open` and `shutdown` block (a stop waits for the
//! outputs, a start may compile a model): `streams_api` and `main` call them on tokio's
//! blocking pool. The others only read.
//!
//! # What happens to a stream
//!
//! See [`stream`] for the state machine and [`source`]/[`processing`] for the two pipelines.
//! The status ([`status::Status`]) and the registry ([`registry::Registry`]) are what the HTTP
//! layer (`streams_api`) shows.

pub mod gate;
pub mod processing;
pub mod push;
pub mod registry;
pub mod results;
pub mod retime;
pub mod source;
pub mod spec;
pub mod status;
pub mod stream;
pub mod video;

#[cfg(test)]
mod tests;

// The API the HTTP layer calls.
pub use registry::{Options, Put, Refused, Registry, StreamInfo};
pub use results::Document;
pub use spec::StreamSpec;
pub use status::State;
pub use video::VideoEnv;
