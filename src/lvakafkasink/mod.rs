//! `lvakafkasink`: publishes each LVA document (from `lvajson`) as one record of a Kafka topic,
//! through librdkafka (crate `rdkafka`, Debian's `librdkafka`).
//!
//! The delivery model is the publishing core's ([`crate::publish`]): `render` only queues; a
//! worker thread sends in order and commits what the broker confirmed; the backlog is bounded
//! in memory (`max-queue`) or in a disk spool (`spool-dir`); every loss is counted; EOS waits
//! up to `flush-timeout`. Records are keyed by the stream id by default, so one camera's
//! documents stay in one partition, in order; `acks=all` and the idempotent producer are the
//! defaults.
//!
//! ```text
//! gst-launch-1.0 filesrc location=media/bikes.mp4 ! decodebin ! videoconvert \
//!   ! ovinfer model=models/ssd_mobilenet_v2_coco/ssd_mobilenet_v2_coco.xml \
//!             labels=models/ssd_mobilenet_v2_coco/labels.txt \
//!   ! lvajson ! lvakafkasink brokers=127.0.0.1:9092 topic=lva.detections
//! ```
//!
//! The manual, with every property, the messages and what "nothing lost" means, is
//! `docs/lvakafkasink.md`.

mod imp;
pub mod transport;

use gst::glib;
use gst::prelude::*;

glib::wrapper! {
    pub struct LvaKafkaSink(ObjectSubclass<imp::LvaKafkaSink>) @extends gst_base::BaseSink, gst::Element, gst::Object;
}

/// Which confirmation the broker gives before a record counts as delivered (`acks`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstLvaKafkaAcks")]
pub enum Acks {
    #[default]
    #[enum_value(
        name = "all: every in-sync replica has the record (acks=all)",
        nick = "all"
    )]
    All,
    #[enum_value(name = "leader: the partition leader has it (acks=1)", nick = "leader")]
    Leader,
    #[enum_value(
        name = "none: no confirmation, sent counts records written out (acks=0)",
        nick = "none"
    )]
    None,
}

impl Acks {
    /// librdkafka's `acks` value.
    pub fn setting(self) -> &'static str {
        match self {
            Acks::All => "all",
            Acks::Leader => "1",
            Acks::None => "0",
        }
    }
}

/// How librdkafka compresses record batches (`compression`); Debian's librdkafka 2.0.2 has
/// every one built in.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstLvaKafkaCompression")]
pub enum Compression {
    #[default]
    #[enum_value(name = "none", nick = "none")]
    None,
    #[enum_value(name = "gzip", nick = "gzip")]
    Gzip,
    #[enum_value(name = "snappy", nick = "snappy")]
    Snappy,
    #[enum_value(name = "lz4", nick = "lz4")]
    Lz4,
    #[enum_value(name = "zstd", nick = "zstd")]
    Zstd,
}

impl Compression {
    /// librdkafka's `compression.type` value.
    pub fn setting(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "lvakafkasink",
        gst::Rank::NONE,
        LvaKafkaSink::static_type(),
    )
}
