//! `lvahttpsink`: POSTs each LVA document to an HTTP endpoint. `render` only queues (bounded);
//! a worker thread delivers, retrying by the policy in [`retry`]; what is dropped is counted.

pub mod delivery;
mod imp;
pub mod queue;
pub mod retry;

use gst::glib;
use gst::prelude::*;

glib::wrapper! {
    pub struct LvaHttpSink(ObjectSubclass<imp::LvaHttpSink>) @extends gst_base::BaseSink, gst::Element, gst::Object;
}

/// What to do with a new document when the queue is full (`queue-full` property).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstLvaHttpSinkQueueFull")]
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

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "lvahttpsink",
        gst::Rank::NONE,
        LvaHttpSink::static_type(),
    )
}
