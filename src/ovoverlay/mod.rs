//! `ovoverlay`: draws the inference meta (see `crate::meta`) into the frames, in place: objects
//! and captions ([`annotate`]), counting lines and zones with their counts ([`analytics`]) and
//! track trails ([`trails`]).

pub mod analytics;
pub mod annotate;
mod imp;
pub mod surface;
pub mod text;
pub mod trails;

use gst::glib;
use gst::prelude::*;

glib::wrapper! {
    pub struct OvOverlay(ObjectSubclass<imp::OvOverlay>) @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "ovoverlay",
        gst::Rank::NONE,
        OvOverlay::static_type(),
    )
}
