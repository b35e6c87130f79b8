//! Helpers shared by the elements' property code.

use gst::glib;

/// A string property's value; `None` when unset or empty.
pub fn optional_string(value: &glib::Value) -> Option<String> {
    value
        .get::<Option<String>>()
        .ok()
        .flatten()
        .filter(|s| !s.is_empty())
}
