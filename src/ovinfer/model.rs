//! Reading the model file for `ovinfer`: its input reshaped to the shape the element gives it,
//! the static shapes of its outputs, where each frame's results lie in them for a batch, and
//! its name.

use std::path::Path;

use super::batch::BatchLayout;
use super::decode::{DecoderKind, ModelShape};
use crate::openvino::{self, Core, Model};

/// The sizes (width, height) a model of a dynamic input size is tried at, in turn, for its
/// outputs to tell the decoder: a square of a multiple of 32, as DB text detectors want, then
/// a strip of height 48, which is all PP-OCR's recognisers take.
pub const PROBE_SIZES: [(usize, usize); 2] = [(640, 640), TEXT_RECOGNITION_SIZE];

/// The input size (width, height) of a text recogniser of a dynamic input size, unless
/// `input-size` says otherwise: rapidocr's and PaddleOCR's `rec_img_shape` [3, 48, 320].
pub const TEXT_RECOGNITION_SIZE: (usize, usize) = (320, 48);

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

/// The metadata entry `key` a model file carries, if any: an ONNX file's `metadata_props`, or
/// an OpenVINO IR's `rt_info` (where OpenVINO keeps an ONNX file's metadata when it converts
/// it, under `framework`). PP-OCR's recognisers carry their character list as `character`.
pub fn metadata(path: &Path, key: &str) -> Option<String> {
    let ext = path.extension()?.to_string_lossy().to_ascii_lowercase();
    match ext.as_str() {
        "onnx" => onnx_metadata(path)
            .ok()?
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v),
        "xml" => ir_rt_info(&std::fs::read_to_string(path).ok()?, key),
        _ => None,
    }
}

/// Largest metadata entry read from an ONNX file (bytes): a character list of 6623 CJK
/// characters is 26 KB.
const MAX_METADATA_ENTRY: u64 = 16 * 1024 * 1024;

/// The `metadata_props` (field 14 of ModelProto, each a StringStringEntryProto of key 1 and
/// value 2) of an ONNX file, read from the protobuf wire format; every other field, the graph
/// and its weights included, is skipped without being read.
pub fn onnx_metadata(path: &Path) -> std::io::Result<Vec<(String, String)>> {
    use std::io::{BufReader, Read};
    let invalid = |why: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, why.to_string());
    let mut r = BufReader::new(std::fs::File::open(path)?);
    let mut found = Vec::new();
    while let Some(tag) = varint(&mut r)? {
        let (field, wire) = (tag >> 3, tag & 7);
        match wire {
            0 => {
                varint(&mut r)?.ok_or_else(|| invalid("truncated varint"))?;
            }
            1 => r.seek_relative(8)?,
            5 => r.seek_relative(4)?,
            2 => {
                let len = varint(&mut r)?.ok_or_else(|| invalid("truncated length"))?;
                if field == 14 && len <= MAX_METADATA_ENTRY {
                    let mut entry = Vec::new();
                    (&mut r).take(len).read_to_end(&mut entry)?;
                    if entry.len() as u64 != len {
                        return Err(invalid("truncated metadata entry"));
                    }
                    found.push(string_entry(&entry).ok_or_else(|| invalid("bad metadata entry"))?);
                } else {
                    r.seek_relative(i64::try_from(len).map_err(|_| invalid("bad length"))?)?;
                }
            }
            _ => return Err(invalid("not an ONNX model (unknown protobuf wire type)")),
        }
    }
    Ok(found)
}

/// A protobuf varint; `None` at the end of the input before its first byte.
fn varint(r: &mut impl std::io::Read) -> std::io::Result<Option<u64>> {
    let mut value = 0u64;
    for i in 0..10 {
        let mut byte = [0u8];
        if r.read(&mut byte)? == 0 {
            return if i == 0 {
                Ok(None)
            } else {
                Err(std::io::ErrorKind::UnexpectedEof.into())
            };
        }
        value |= u64::from(byte[0] & 0x7f) << (7 * i);
        if byte[0] & 0x80 == 0 {
            return Ok(Some(value));
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        "varint over 10 bytes",
    ))
}

/// A StringStringEntryProto's key (field 1) and value (field 2).
fn string_entry(mut bytes: &[u8]) -> Option<(String, String)> {
    let (mut key, mut value) = (String::new(), String::new());
    while !bytes.is_empty() {
        let tag = varint(&mut bytes).ok()??;
        match tag & 7 {
            2 => {
                let len = usize::try_from(varint(&mut bytes).ok()??).ok()?;
                let (s, rest) = bytes.split_at_checked(len)?;
                let s = String::from_utf8(s.to_vec()).ok()?;
                match tag >> 3 {
                    1 => key = s,
                    2 => value = s,
                    _ => {}
                }
                bytes = rest;
            }
            0 => {
                varint(&mut bytes).ok()??;
            }
            _ => return None,
        }
    }
    Some((key, value))
}

/// The value of `<KEY value="..."/>` in an IR's XML (its last occurrence: `rt_info` comes after
/// the layers), XML character references and entities resolved.
fn ir_rt_info(xml: &str, key: &str) -> Option<String> {
    let open = format!("<{key} value=\"");
    let start = xml.rfind(&open)? + open.len();
    let end = start + xml[start..].find('"')?;
    xml_unescape(&xml[start..end])
}

fn xml_unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let semi = rest[amp..].find(';')? + amp;
        let entity = &rest[amp + 1..semi];
        let c = match entity {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = match entity.strip_prefix("#x").or(entity.strip_prefix("#X")) {
                    Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                    None => entity.strip_prefix('#')?.parse().ok()?,
                };
                char::from_u32(code)?
            }
        };
        out.push(c);
        rest = &rest[semi + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// The dimensions of an image input of layout `layout` ("NCHW" or "NHWC") for one picture of
/// `width` x `height`.
pub fn image_dims(layout: &str, width: usize, height: usize) -> Vec<i64> {
    let (w, h) = (width as i64, height as i64);
    match layout {
        "NHWC" => vec![1, h, w, 3],
        _ => vec![1, 3, h, w],
    }
}

/// The layout of a rank-4, 3-channel image input whose height or width is dynamic (PP-OCR's
/// [?,3,?,?]); `None` for any other input.
pub fn dynamic_image_layout(shape: &[Option<i64>]) -> Option<&'static str> {
    if shape.len() != 4 || shape[0].is_some_and(|n| n != 1) {
        return None;
    }
    let (layout, h, w) = match (shape[1], shape[3]) {
        (Some(3), c) if c != Some(3) => ("NCHW", shape[2], shape[3]),
        (c, Some(3)) if c != Some(3) => ("NHWC", shape[1], shape[2]),
        _ => return None,
    };
    (h.is_none() || w.is_none()).then_some(layout)
}

/// The input size of text detection on `frame`-sized frames (width, height): scaled so that
/// the longer side is at most `max_side` (never enlarged), each side then rounded to the
/// nearest multiple of 32 (at least 32), as PP-OCR's `DetResizeForTest` with
/// `limit_type=max`.
pub fn text_detection_size(frame: (usize, usize), max_side: usize) -> (usize, usize) {
    let (w, h) = (frame.0.max(1) as f64, frame.1.max(1) as f64);
    let longer = w.max(h);
    let ratio = if longer > max_side as f64 {
        max_side as f64 / longer
    } else {
        1.0
    };
    // Python's int() then round(): truncated, then halves to even.
    let side = |v: f64| {
        let scaled = (v * ratio).trunc();
        (((scaled / 32.0).round_ties_even() * 32.0) as usize).max(32)
    };
    (side(w), side(h))
}

/// Steps in which a text recogniser's input widens for longer lines: close to PaddleOCR's
/// exact widths (the padding after the text changes what PP-OCRv4 reads: a step of 160 read
/// "BUSSTOP 42" where 352 reads rapidocr's "BUS STOP 42"), in few enough sizes that crops of
/// similar lengths share a compiled model and batches.
pub const TEXT_RECOGNITION_STEP: usize = 32;

/// The input width at which a text recogniser of input height `height` reads a `picture`-sized
/// crop (width, height): wide enough for the crop at its aspect ratio (as PP-OCR widens a batch
/// to its longest crop), at least `min` (PP-OCR's 320), rounded up to a multiple of
/// `TEXT_RECOGNITION_STEP` and at most `max` rounded down to one (a longer line is squeezed
/// into it).
pub fn text_recognition_width(
    picture: (usize, usize),
    height: usize,
    min: usize,
    max: usize,
) -> usize {
    let step = TEXT_RECOGNITION_STEP;
    let (w, h) = (picture.0.max(1), picture.1.max(1));
    let needed = height.saturating_mul(w).div_ceil(h);
    let width = needed.div_ceil(step).saturating_mul(step);
    width.min(max / step * step).max(min)
}

/// How many crops PP-OCR reads in one batch (`rec_batch_num`), each batch as wide as its
/// longest crop.
pub const TEXT_RECOGNITION_GROUP: usize = 6;

/// The input width of each of a frame's `crops` (width, height) for a text recogniser of input
/// height `height`, as PP-OCR reads them: sorted by aspect ratio, in groups of
/// `TEXT_RECOGNITION_GROUP`, each group at the width its longest crop needs (see
/// `text_recognition_width`). In the crops' order.
pub fn text_recognition_widths(
    crops: &[(usize, usize)],
    height: usize,
    min: usize,
    max: usize,
) -> Vec<usize> {
    let ratio = |&(w, h): &(usize, usize)| w.max(1) as f64 / h.max(1) as f64;
    let mut order: Vec<usize> = (0..crops.len()).collect();
    order.sort_by(|&a, &b| ratio(&crops[a]).total_cmp(&ratio(&crops[b])));
    let mut widths = vec![min; crops.len()];
    for group in order.chunks(TEXT_RECOGNITION_GROUP) {
        let longest = group[group.len() - 1];
        let width = text_recognition_width(crops[longest], height, min, max);
        for &i in group {
            widths[i] = width;
        }
    }
    widths
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crops_are_read_in_groups_as_wide_as_their_longest() {
        // A page's lines and a word: one group, the longest line's width.
        let page = [(290, 24), (377, 25), (382, 30), (60, 20)];
        assert_eq!(text_recognition_widths(&page, 48, 320, 960), [736; 4]);
        // Seven words and a line: the six shortest words read at 320, the seventh with the line.
        let mut crops = vec![(40, 20); 7];
        crops.push((400, 20));
        let widths = text_recognition_widths(&crops, 48, 320, 960);
        assert_eq!(widths.iter().filter(|&&w| w == 320).count(), 6);
        assert_eq!(widths[7], 960);
        assert_eq!(
            text_recognition_widths(&[], 48, 320, 960),
            Vec::<usize>::new()
        );
    }

    #[test]
    fn text_recognition_widens_in_steps_for_long_lines() {
        // A plate (ratio 4) and a word: PP-OCR's default width.
        assert_eq!(text_recognition_width((200, 50), 48, 320, 960), 320);
        assert_eq!(text_recognition_width((10, 100), 48, 320, 960), 320);
        // Ratio 7 needs 336: the next step.
        assert_eq!(text_recognition_width((700, 100), 48, 320, 960), 352);
        // A page's line 19 times as wide as high needs 912.
        assert_eq!(text_recognition_width((1900, 100), 48, 320, 960), 928);
        // Longer than the limit: squeezed into it; a limit below the default keeps the default.
        assert_eq!(text_recognition_width((5000, 100), 48, 320, 960), 960);
        assert_eq!(text_recognition_width((5000, 100), 48, 320, 1000), 992);
        assert_eq!(text_recognition_width((5000, 100), 48, 320, 200), 320);
        assert_eq!(text_recognition_width((0, 0), 48, 320, 960), 320);
    }

    #[test]
    fn text_detection_sizes_are_multiples_of_32_within_the_limit() {
        assert_eq!(text_detection_size((384, 191), 960), (384, 192));
        assert_eq!(text_detection_size((768, 576), 960), (768, 576));
        // 1920x1080 -> 960x540 -> 960x544.
        assert_eq!(text_detection_size((1920, 1080), 960), (960, 544));
        // 640x424: 424 / 32 = 13.25 -> 416.
        assert_eq!(text_detection_size((640, 424), 960), (640, 416));
        assert_eq!(text_detection_size((10, 5), 960), (32, 32));
        assert_eq!(text_detection_size((0, 0), 960), (32, 32));
    }

    #[test]
    fn dynamic_image_inputs_are_told_apart() {
        assert_eq!(
            dynamic_image_layout(&[None, Some(3), None, None]),
            Some("NCHW")
        );
        assert_eq!(
            dynamic_image_layout(&[Some(1), Some(3), Some(48), None]),
            Some("NCHW")
        );
        assert_eq!(
            dynamic_image_layout(&[Some(1), None, None, Some(3)]),
            Some("NHWC")
        );
        assert_eq!(
            dynamic_image_layout(&[Some(1), Some(3), Some(48), Some(320)]),
            None
        );
        assert_eq!(dynamic_image_layout(&[None, None, None, None]), None);
        assert_eq!(image_dims("NCHW", 320, 48), vec![1, 3, 48, 320]);
        assert_eq!(image_dims("NHWC", 320, 48), vec![1, 48, 320, 3]);
    }

    /// A protobuf field: tag then bytes.
    fn field(number: u64, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for mut v in [number << 3 | 2, bytes.len() as u64] {
            loop {
                let b = (v & 0x7f) as u8;
                v >>= 7;
                out.push(if v > 0 { b | 0x80 } else { b });
                if v == 0 {
                    break;
                }
            }
        }
        out.extend_from_slice(bytes);
        out
    }

    #[test]
    fn onnx_metadata_is_read_past_the_graph() {
        let dir = std::env::temp_dir().join(format!("ovlva-onnx-meta-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.onnx");
        let mut bytes = vec![0x08, 0x07]; // ir_version 7
        bytes.extend(field(7, &vec![0xAB; 5000])); // a "graph"
        let entry = [field(1, b"character"), field(2, "a\nb\n€".as_bytes())].concat();
        bytes.extend(field(14, &entry));
        bytes.extend(field(14, &[field(1, b"other"), field(2, b"x")].concat()));
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(metadata(&path, "character").as_deref(), Some("a\nb\n€"));
        assert_eq!(metadata(&path, "other").as_deref(), Some("x"));
        assert_eq!(metadata(&path, "none"), None);
        // Truncated in an entry: an error, not a panic.
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        assert!(onnx_metadata(&path).is_err());
        let xml = dir.join("m.xml");
        std::fs::write(
            &xml,
            "<net><rt_info><framework><character value=\"'&#10;&amp;&#x4E00;&quot;\" /></framework></rt_info></net>",
        )
        .unwrap();
        assert_eq!(metadata(&xml, "character").as_deref(), Some("'\n&一\""));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
