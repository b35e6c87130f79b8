//! An `ovinfer`'s per-run state, from `start` to `stop`: the model read and what was derived
//! from it, the compiled model for the caps, and the frames in flight and done.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Instant;

use super::batch::BatchLayout;
use super::compiled::Compiled;
use super::decode::{DecoderKind, ModelShape};
use super::input::{InputRange, ModelInput};
use super::labels::Labels;
use super::pool::Slot;
use super::settings::Settings;

/// A frame inside the element: waiting for its inference, or (`slot` None) skipped by
/// `interval` and only waiting for its turn to leave, so that frames never change order.
pub struct Pending {
    pub buffer: gst::Buffer,
    pub slot: Option<Slot>,
    pub frame: u64,
    pub arrived: Instant,
}

/// Per-run state: from `start` to `stop`.
pub struct State {
    /// The shape the model's input is given before compiling (`batch-size` frames, or 1 for a
    /// dynamic batch). Each compilation reads the model again: pre-processing changes the model
    /// it is built on, and new caps need new pre-processing.
    pub input_dims: Vec<i64>,
    /// The model file, made absolute so that equal files share one compiled model.
    pub path: PathBuf,
    pub model_name: String,
    pub model_input: ModelInput,
    pub model_shape: ModelShape,
    /// Where each frame's results lie in the outputs of a batch (`batch-size`).
    pub layout: BatchLayout,
    pub decoder: DecoderKind,
    pub labels: Labels,
    pub range: InputRange,
    /// `ov-config`, parsed, with ovinfer's defaults for the device.
    pub ov_config: Vec<(String, String)>,
    pub settings: Settings,
    pub compiled: Option<Compiled>,
    pub frames: u64,
    /// Frames in flight, oldest first.
    pub pending: VecDeque<Pending>,
    /// Frames done, in order, waiting to be pushed.
    pub ready: VecDeque<gst::Buffer>,
    /// Whether the last frame was read in place rather than copied (logged when it changes).
    pub in_place: Option<bool>,
}

impl State {
    /// The name of class `label_id`: from the labels file, else the decoder's own.
    pub fn label(&self, label_id: i32) -> String {
        self.labels
            .get(label_id)
            .map(str::to_string)
            .unwrap_or_else(|| self.decoder.default_label(label_id))
    }

    /// Frames in flight and done are dropped (flush, stop); the requests return to the pool.
    pub fn discard(&mut self) {
        for pending in std::mem::take(&mut self.pending) {
            if let (Some(slot), Some(compiled)) = (pending.slot, self.compiled.as_ref()) {
                compiled.instance.discard(slot);
            }
        }
        self.ready.clear();
    }
}
