//! Reading the model file for `ovinfer`: its input reshaped to the shape the element gives it,
//! the static shapes of its outputs, where each frame's results lie in them for a batch, and
//! its name.

use std::path::Path;

use super::batch::BatchLayout;
use super::decode::{DecoderKind, ModelShape};
use crate::openvino::{self, Core, Model};

/// The model's name: its file name without the extension.
pub fn model_stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The model read from `path`, its input reshaped to `dims` where it differs.
pub fn read_shaped(core: &Core, path: &Path, dims: &[i64]) -> openvino::Result<Model> {
    let mut model = core.read_model(path)?;
    let shape = model.inputs()?.first().map(|i| i.shape.clone());
    if shape.is_none_or(|s| s.iter().map(|d| d.unwrap_or(-1)).ne(dims.iter().copied())) {
        model.reshape_input(dims)?;
    }
    Ok(model)
}

/// The static shape of every model output.
pub fn output_shapes(model: &Model) -> Result<Vec<Vec<usize>>, String> {
    model
        .outputs()
        .map_err(|e| e.to_string())?
        .iter()
        .map(|o| {
            o.static_shape().ok_or_else(|| {
                format!(
                    "output '{}' has a dynamic shape {}; ovinfer needs static output shapes",
                    o.name,
                    o.shape_string()
                )
            })
        })
        .collect()
}

/// Where each frame's results lie in the outputs of `model` once its input is reshaped to `dims`
/// (`batch` frames), given its shape for one frame and the decoder that reads it.
pub fn batched_layout(
    model: &mut Model,
    dims: &[i64],
    model_shape: &ModelShape,
    batch: usize,
    decoder: DecoderKind,
) -> Result<BatchLayout, String> {
    model
        .reshape_input(dims)
        .map_err(|e| e.to_string())
        .and_then(|()| output_shapes(model))
        .and_then(|batched| {
            BatchLayout::new(&model_shape.outputs, &batched, batch, |i| {
                decoder.batch_groups(model_shape, i)
            })
        })
}
