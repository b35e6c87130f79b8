//! The "always" pad templates of the ovlva elements, and the caps they share.

/// An always pad template named `name`.
fn template(name: &str, direction: gst::PadDirection, caps: &gst::Caps) -> gst::PadTemplate {
    gst::PadTemplate::new(name, direction, gst::PadPresence::Always, caps)
        .expect("valid pad template")
}

/// An always `src` pad template with `src` caps and an always `sink` one with `sink` caps.
pub fn always(src: &gst::Caps, sink: &gst::Caps) -> Vec<gst::PadTemplate> {
    vec![
        template("src", gst::PadDirection::Src, src),
        template("sink", gst::PadDirection::Sink, sink),
    ]
}

/// The one always `sink` pad template of a document sink (`lvahttpsink`, `lvamqttsink`,
/// `lvakafkasink`): [`json`] caps.
pub fn json_sink() -> Vec<gst::PadTemplate> {
    vec![template("sink", gst::PadDirection::Sink, &json())]
}

/// `video/x-raw(ANY)`: raw video in any format and memory (elements that read meta, not pixels).
pub fn any_raw_video() -> gst::Caps {
    "video/x-raw(ANY)".parse().expect("valid caps")
}

/// `application/json`: one LVA document per buffer, as `lvajson` writes them.
pub fn json() -> gst::Caps {
    gst::Caps::new_empty_simple("application/json")
}
