//! `lvamqttsink`: publishes each LVA document (from `lvajson`) to an MQTT broker (3.1.1), one
//! message per document, with the delivery model of the publishing sinks (`crate::publish`):
//! `render` only enqueues; a worker keeps up to `max-in-flight` messages unconfirmed and
//! commits in order what the broker acknowledged; it reconnects with back-off after a broker
//! outage and re-sends what was not confirmed; a bounded queue in memory (`max-queue`) or on disk
//! (`spool-dir`, which also survives a pipeline restart) holds the documents meanwhile; every
//! drop is counted (`lvamqttsink-stats` messages and read-only properties).
//!
//! ```sh
//! gst-launch-1.0 -m filesrc location=media/bikes.mp4 ! decodebin ! videoconvert \
//!   ! ovinfer model=models/ssd_mobilenet_v2_coco/ssd_mobilenet_v2_coco.xml \
//!             labels=models/ssd_mobilenet_v2_coco/labels.txt \
//!   ! lvajson ! lvamqttsink host=127.0.0.1 topic=cameras/{stream}/lva stream-id=door \
//!       qos=1 spool-dir=/var/spool/ovlva/door
//! ```
//!
//! See docs/lvamqttsink.md for every property, message and error.

mod imp;
pub mod transport;

use gst::glib;
use gst::prelude::*;

glib::wrapper! {
    pub struct LvaMqttSink(ObjectSubclass<imp::LvaMqttSink>) @extends gst_base::BaseSink, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "lvamqttsink",
        gst::Rank::NONE,
        LvaMqttSink::static_type(),
    )
}
