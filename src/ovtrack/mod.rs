//! `ovtrack`: gives the detected objects of each frame stable identities over time.
//!
//! It reads every frame's ROI meta (see `crate::meta`: the `detection` structure's box,
//! confidence and `label_id`), follows the objects from frame to frame and writes the id of each
//! object on a confirmed track as the ROI's `object_id` param structure (field `id`, an int from
//! 1), which `lvajson` writes as `entity.id` and `ovoverlay` draws as `#id`. It never reads
//! pixels: any `video/x-raw(ANY)` passes through unchanged but for the meta.
//!
//! Two trackers (`tracking-type`): `bytetrack` (default; a Kalman filter per object and
//! ByteTrack's two-stage association, which also keeps objects through low-confidence
//! detections) and `iou` (plain IoU matching with the previous box). The tracker logic is in the
//! plain modules [`tracker`], [`assign`], [`kalman`] and [`geometry`], with no GStreamer in them.
//!
//! A frame with no ROI meta at all is taken as one the detector did not run on (`ovinfer
//! interval=N` attaches nothing to the frames it skips): with `predict-on-empty` (default), the
//! confirmed objects of the last detection frame are added to it at their predicted places, each
//! an ROI with `detection`, `object_id` and a `tracking` structure with `predicted=true`.
//!
//! ```sh
//! gst-launch-1.0 filesrc location=media/bikes.mp4 ! decodebin ! videoconvert \
//!   ! ovinfer model=models/ssd_mobilenet_v2_coco/ssd_mobilenet_v2_coco.xml \
//!             labels=models/ssd_mobilenet_v2_coco/labels.txt interval=3 \
//!   ! ovtrack ! lvajson json-lines=true ! filesink location=tracked.jsonl
//! ```

pub mod assign;
pub mod geometry;
mod imp;
pub mod kalman;
pub mod tracker;

use gst::glib;
use gst::prelude::*;

glib::wrapper! {
    pub struct OvTrack(ObjectSubclass<imp::OvTrack>) @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

/// The `tracking-type` property.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstOvTrackType")]
pub enum TrackingType {
    #[enum_value(name = "IoU: match each object with its previous box", nick = "iou")]
    Iou = 0,
    #[default]
    #[enum_value(
        name = "ByteTrack: Kalman prediction, high then low confidence association",
        nick = "bytetrack"
    )]
    ByteTrack = 1,
}

impl From<TrackingType> for tracker::Kind {
    fn from(t: TrackingType) -> Self {
        match t {
            TrackingType::Iou => tracker::Kind::Iou,
            TrackingType::ByteTrack => tracker::Kind::ByteTrack,
        }
    }
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "ovtrack",
        gst::Rank::NONE,
        OvTrack::static_type(),
    )
}
