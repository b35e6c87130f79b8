//! `lvajson`: each frame's inference meta (see `crate::meta`) → one LVA inference document,
//! as an `application/json` buffer with the frame's timestamps.

pub mod document;
mod imp;
pub mod mapping;

use gst::glib;
use gst::prelude::*;

glib::wrapper! {
    pub struct LvaJson(ObjectSubclass<imp::LvaJson>) @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

/// Frame facts written into every inference's `extensions` (`extensions` property).
#[glib::flags(name = "GstLvaJsonExtensions")]
pub enum Extensions {
    #[flags_value(name = "pts: presentation timestamp in nanoseconds", nick = "pts")]
    PTS = 1 << 0,
    #[flags_value(
        name = "frameNumber: frames seen by lvajson, from 0",
        nick = "frame-number"
    )]
    FRAME_NUMBER = 1 << 1,
    #[flags_value(
        name = "streamId: the stream-start event's stream id",
        nick = "stream-id"
    )]
    STREAM_ID = 1 << 2,
    #[flags_value(name = "resolution: frame WIDTHxHEIGHT", nick = "resolution")]
    RESOLUTION = 1 << 3,
    #[flags_value(
        name = "model: name of the model that produced the result",
        nick = "model"
    )]
    MODEL = 1 << 4,
}

impl Default for Extensions {
    fn default() -> Self {
        Extensions::empty()
    }
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "lvajson",
        gst::Rank::NONE,
        LvaJson::static_type(),
    )
}
