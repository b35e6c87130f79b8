//! `lvahttpsink`: POSTs each LVA document to an HTTP endpoint. It is a publishing sink of
//! [`crate::publish`] (bounded queue or disk spool, worker thread, EOS flush, counters) whose
//! transport, [`delivery::HttpTransport`], POSTs one document at a time and retries it by the
//! policy in [`retry`]; what is dropped is counted.

pub mod delivery;
mod imp;
pub mod retry;

/// The queue moved to `crate::publish`, shared with the publishing sinks.
pub use crate::publish::queue;

use gst::glib;
use gst::prelude::*;

glib::wrapper! {
    pub struct LvaHttpSink(ObjectSubclass<imp::LvaHttpSink>) @extends gst_base::BaseSink, gst::Element, gst::Object;
}

pub use crate::publish::QueueFull;

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "lvahttpsink",
        gst::Rank::NONE,
        LvaHttpSink::static_type(),
    )
}
