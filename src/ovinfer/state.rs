//! An `ovinfer`'s per-run state, from `start` to `stop`: the model read and what was derived
//! from it, the compiled model for the caps, and the frames in flight and done.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use super::ResizeMode;
use super::batch::BatchLayout;
use super::compiled::Compiled;
use super::decode::{Decoded, DecoderKind, ModelShape};
use super::input::{InputRange, ModelInput};
use super::labels::Labels;
use super::pool::{Instance, Slot};
use super::reclassify::{ResultCell, Tracks};
use super::remote::Remote;
use super::roi::{Rect, RoiCounts, Selection};
use super::settings::Settings;

/// A frame inside the element, waiting for its inferences or only for its turn to leave, so
/// that frames never change order.
pub struct Pending {
    pub buffer: gst::Buffer,
    pub work: Work,
    pub frame: u64,
    pub arrived: Instant,
}

/// What a frame inside the element waits for.
pub enum Work {
    /// Nothing: `interval` skipped it.
    Skipped,
    /// The inference of the whole frame.
    Frame(Slot),
    /// The inferences of its ROIs (`inference-region=roi-list`), one slot each: the frame
    /// leaves when every one is read.
    Rois(RoiWork),
}

/// A frame's ROIs inferred or given their track's last result.
pub struct RoiWork {
    /// In the order of the frame's ROIs.
    pub jobs: Vec<RoiJob>,
    /// What became of each of the frame's ROIs.
    pub counts: RoiCounts,
}

/// One ROI's result to come.
pub struct RoiJob {
    /// The ROI's place among the frame's ROI metas.
    pub index: usize,
    /// What was inferred: the ROI clipped to the frame.
    pub rect: Rect,
    /// Its inference, when it is inferred in this frame (else it reuses `result`), and the
    /// instance it runs on (`State::compiled`, or one of `State::wider`).
    pub slot: Option<(Slot, Arc<Instance>)>,
    /// The result: filled from `slot`, or by the earlier frame that inferred its track.
    pub result: ResultCell<Decoded>,
}

impl Work {
    /// Whether every result can be read without waiting.
    pub fn is_done(&self) -> Result<bool, String> {
        match self {
            Work::Skipped => Ok(true),
            Work::Frame(slot) => slot.is_done(),
            Work::Rois(rois) => {
                for (slot, _) in rois.jobs.iter().filter_map(|j| j.slot.as_ref()) {
                    if !slot.is_done()? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
        }
    }

    /// Ends the inferences whose results are not wanted (flush, stop, an error).
    pub fn discard(self, instance: &Instance) {
        match self {
            Work::Skipped => {}
            Work::Frame(slot) => instance.discard(slot),
            Work::Rois(rois) => discard_jobs(rois.jobs),
        }
    }
}

/// Ends the inferences of ROI jobs whose results are not wanted.
pub fn discard_jobs(jobs: impl IntoIterator<Item = RoiJob>) {
    for (slot, instance) in jobs.into_iter().filter_map(|j| j.slot) {
        instance.discard(slot);
    }
}

/// How the input size of a model of a dynamic input size follows the pictures (with
/// `input-size` empty).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sizing {
    /// One size, set at start.
    Fixed,
    /// Text detection on full frames: the frame's size within `max_side`, chosen for the caps
    /// (see `model::text_detection_size`).
    DetectionPerFrame {
        layout: &'static str,
        max_side: usize,
    },
    /// Text recognition: at least the model's default width, wider for a longer line of text
    /// (up to `max_width`): chosen for the caps on full frames, per crop on ROIs (see
    /// `model::text_recognition_width`).
    RecognitionWidth {
        layout: &'static str,
        max_width: usize,
    },
}

/// The model's input and outputs at one input size.
#[derive(Debug, Clone)]
pub struct Shape {
    /// The shape the model's input is given before compiling (`batch-size` frames, or 1 for a
    /// dynamic batch).
    pub input_dims: Vec<i64>,
    pub model_input: ModelInput,
    pub model_shape: ModelShape,
    /// Where each frame's results lie in the outputs of a batch (`batch-size`).
    pub layout: BatchLayout,
}

/// Per-run state: from `start` to `stop`.
pub struct State {
    /// How the input size follows the pictures, for a model of a dynamic input size.
    pub sizing: Sizing,
    /// The input and outputs at the size chosen at start or for the caps. Each compilation
    /// reads the model again: pre-processing changes the model it is built on, and new caps
    /// need new pre-processing.
    pub shape: Shape,
    /// The model file, made absolute so that equal files share one compiled model.
    pub path: PathBuf,
    pub model_name: String,
    pub decoder: DecoderKind,
    pub labels: Labels,
    pub range: InputRange,
    /// `ov-config`, parsed, with ovinfer's defaults for the device.
    pub ov_config: Vec<(String, String)>,
    pub settings: Settings,
    pub compiled: Option<Compiled>,
    /// With `Sizing::RecognitionWidth` on ROIs: the model compiled at wider inputs for the caps,
    /// as long crops need them.
    pub wider: Vec<Compiled>,
    pub frames: u64,
    /// Frames in flight, oldest first.
    pub pending: VecDeque<Pending>,
    /// Frames done, in order, waiting to be pushed.
    pub ready: VecDeque<gst::Buffer>,
    /// Whether the last frame was read in place rather than copied (logged when it changes).
    pub in_place: Option<bool>,
    /// Which ROIs are inferred (`inference-region=roi-list`).
    pub selection: Selection,
    /// The name of the attribute a class becomes on an ROI.
    pub attribute: String,
    /// The tracks' last results (`reclassify-interval`).
    pub tracks: Tracks<Decoded>,
    /// The server the model runs on (`server`), else it runs locally.
    pub remote: Option<Arc<Remote>>,
    /// Remote inferences in a row that gave no results (`max-failures`).
    pub failures_in_row: u32,
}

impl State {
    /// The name of class `label_id`: from the labels file, else the decoder's own.
    pub fn label(&self, label_id: i32) -> String {
        self.labels
            .get(label_id)
            .map(str::to_string)
            .unwrap_or_else(|| self.decoder.default_label(label_id))
    }

    /// How pictures are fitted into the input: `pre-process-resize`, except that a text
    /// recogniser reads crops at their aspect ratio (`fit-height`, PP-OCR's way) unless a
    /// letterbox is asked for.
    pub fn resize_mode(&self) -> ResizeMode {
        match (self.decoder, self.settings.pre_process_resize) {
            (DecoderKind::TextRecognition, ResizeMode::Stretch) => ResizeMode::FitHeight,
            (_, mode) => mode,
        }
    }

    /// The text of a recogniser's class ids (its character set is the labels).
    pub fn text(&self, ids: &[u32]) -> String {
        ids.iter()
            .filter_map(|&id| self.labels.get(id as i32))
            .collect()
    }

    /// What is compiled for the caps at input width `width`: `compiled`, or one of `wider`.
    pub fn compiled_at(&self, width: usize) -> Option<&Compiled> {
        self.compiled
            .iter()
            .chain(&self.wider)
            .find(|c| c.shape.model_input.width == width)
    }

    /// Frames in flight and done are dropped (flush, stop); the requests return to the pool.
    pub fn discard(&mut self) {
        for pending in std::mem::take(&mut self.pending) {
            if let Some(compiled) = self.compiled.as_ref() {
                pending.work.discard(&compiled.instance);
            }
        }
        self.ready.clear();
        // Frames that would have filled the results of tracks are gone.
        self.tracks.clear();
    }
}
