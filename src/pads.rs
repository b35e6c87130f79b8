//! The "always" `src` and `sink` pad templates every ovlva element has.

/// An always `src` pad template with `src` caps and an always `sink` one with `sink` caps.
pub fn always(src: &gst::Caps, sink: &gst::Caps) -> Vec<gst::PadTemplate> {
    [
        ("src", gst::PadDirection::Src, src),
        ("sink", gst::PadDirection::Sink, sink),
    ]
    .into_iter()
    .map(|(name, direction, caps)| {
        gst::PadTemplate::new(name, direction, gst::PadPresence::Always, caps)
            .expect("valid pad template")
    })
    .collect()
}

/// `video/x-raw(ANY)`: raw video in any format and memory (elements that read meta, not pixels).
pub fn any_raw_video() -> gst::Caps {
    "video/x-raw(ANY)".parse().expect("valid caps")
}
