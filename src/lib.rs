//! ovlva: GStreamer elements running OpenVINO models on video and emitting Azure Live Video
//! Analytics (LVA) inference JSON.
//!
//! Elements: `ovinfer` (inference, results as meta) and `lvajson` (meta → LVA JSON). The meta
//! contract between elements is in [`meta`]; the OpenVINO runtime is reached through
//! [`openvino`].

use gst::glib;

pub mod kserve;
pub mod lvahttpsink;
pub mod lvajson;
pub mod lvakafkasink;
pub mod lvamqttsink;
pub mod meta;
pub mod openvino;
pub mod ovanalytics;
pub mod ovinfer;
pub mod ovoverlay;
pub mod ovtrack;
mod pads;
mod properties;
pub mod publish;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    meta::register();
    ovinfer::register(plugin)?;
    lvajson::register(plugin)?;
    ovoverlay::register(plugin)?;
    lvahttpsink::register(plugin)?;
    lvakafkasink::register(plugin)?;
    lvamqttsink::register(plugin)?;
    ovtrack::register(plugin)?;
    ovanalytics::register(plugin)?;
    Ok(())
}

gst::plugin_define!(
    ovlva,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MIT/X11",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
