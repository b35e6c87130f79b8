//! `ovanalytics`: line crossings and zones over tracked objects, as LVA events.
//!
//! In place on any raw video: it reads each frame's ROIs that carry a tracking id (the
//! `object_id` param structure a tracker writes; ROIs without one are ignored), follows each
//! track's reference point (see [`Anchor`]) from frame to frame against the rules (counting
//! lines and zones, see [`rules`]), and attaches what happened as whole-frame `event` results
//! (`OvlvaFrameInferenceMeta`, see `crate::meta`): `LineCrossing`, `ZoneEnter`, `ZoneExit`,
//! `ZoneOccupancy`, `ZoneDwell`. Their `related_inferences` name the entities concerned as
//! `lvajson` identifies them ([`crate::lvajson::mapping::entity_inference_id`]), so in the LVA
//! document each event points at the objects of the same frame. The logic is in [`engine`].
//!
//! ```sh
//! gst-launch-1.0 filesrc location=media/bikes.mp4 ! decodebin ! videoconvert \
//!   ! ovinfer model=models/ssd_mobilenet_v2_coco/ssd_mobilenet_v2_coco.xml \
//!             labels=models/ssd_mobilenet_v2_coco/labels.txt \
//!   ! ovtrack ! ovanalytics rules-file=rules.json dwell-interval=5 \
//!   ! lvajson json-lines=true ! fdsink
//! ```

pub mod engine;
mod imp;
pub mod rules;

use gst::glib;
use gst::prelude::*;

glib::wrapper! {
    pub struct OvAnalytics(ObjectSubclass<imp::OvAnalytics>) @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

/// The reference point of an object's box that crosses lines and is in zones (`anchor`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstOvAnalyticsAnchor")]
pub enum Anchor {
    /// Where an object stands on the ground.
    #[default]
    #[enum_value(name = "The middle of the box's bottom edge", nick = "bottom-center")]
    BottomCenter,
    #[enum_value(name = "The centre of the box", nick = "center")]
    Center,
    #[enum_value(name = "The middle of the box's top edge", nick = "top-center")]
    TopCenter,
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "ovanalytics",
        gst::Rank::NONE,
        OvAnalytics::static_type(),
    )
}
