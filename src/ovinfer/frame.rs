//! Frames that OpenVINO pre-processes: their format as OpenVINO knows it, whether a frame's
//! memory already is the packed layout the input tensor takes (then the tensor is made over it,
//! without a copy), else copying it plane by plane without row padding.

use crate::openvino::PixelFormat;

/// The format of `width` x `height` frames as OpenVINO's pre-processing reads them, if it can
/// (its 4:2:0 conversions need even sizes); other frames are converted by ovinfer.
pub fn pixel_format(
    format: gst_video::VideoFormat,
    width: usize,
    height: usize,
) -> Option<PixelFormat> {
    use gst_video::VideoFormat as F;
    let even = width.is_multiple_of(2) && height.is_multiple_of(2);
    Some(match format {
        F::Rgb => PixelFormat::Rgb,
        F::Bgr => PixelFormat::Bgr,
        // The fourth byte (padding or alpha) is ignored by the conversion.
        F::Rgbx | F::Rgba => PixelFormat::Rgbx,
        F::Bgrx | F::Bgra => PixelFormat::Bgrx,
        F::Nv12 if even => PixelFormat::Nv12,
        F::I420 if even => PixelFormat::I420,
        _ => return None,
    })
}

/// Bytes per row and rows of each plane of a tightly packed frame.
pub fn plane_sizes(format: PixelFormat, width: usize, height: usize) -> Vec<(usize, usize)> {
    match format {
        PixelFormat::Rgb | PixelFormat::Bgr => vec![(width * 3, height)],
        PixelFormat::Rgbx | PixelFormat::Bgrx => vec![(width * 4, height)],
        PixelFormat::Nv12 => vec![(width, height), (width, height / 2)],
        PixelFormat::I420 => vec![
            (width, height),
            (width / 2, height / 2),
            (width / 2, height / 2),
        ],
    }
}

/// When planes at `offsets` with `strides` in one block of memory already follow each other
/// without padding (the layout [`pack`] produces), the length of that layout.
pub fn packed_len(offsets: &[usize], strides: &[usize], sizes: &[(usize, usize)]) -> Option<usize> {
    if offsets.len() != sizes.len() || strides.len() != sizes.len() {
        return None;
    }
    let mut end = 0;
    for ((&offset, &stride), &(row, rows)) in offsets.iter().zip(strides).zip(sizes) {
        if offset != end || (stride != row && rows > 1) {
            return None;
        }
        end += row * rows;
    }
    Some(end)
}

/// Copies `planes` (data, stride) with the given row sizes into `dst`, one plane after another.
/// Returns false when a plane is shorter than its rows need or `dst` has the wrong size.
pub fn pack(planes: &[(&[u8], usize)], sizes: &[(usize, usize)], dst: &mut [u8]) -> bool {
    if planes.len() != sizes.len() || dst.len() != sizes.iter().map(|(r, n)| r * n).sum::<usize>() {
        return false;
    }
    let mut offset = 0;
    for (&(src, stride), &(row, rows)) in planes.iter().zip(sizes) {
        if rows > 0 && (stride < row || src.len() < stride * (rows - 1) + row) {
            return false;
        }
        if stride == row {
            dst[offset..offset + row * rows].copy_from_slice(&src[..row * rows]);
        } else {
            for (y, out) in dst[offset..offset + row * rows]
                .chunks_exact_mut(row)
                .enumerate()
            {
                out.copy_from_slice(&src[y * stride..y * stride + row]);
            }
        }
        offset += row * rows;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_layouts_are_recognised_and_padded_ones_are_not() {
        let i420 = plane_sizes(PixelFormat::I420, 640, 272);
        let (y, c) = (640 * 272, 320 * 136);
        assert_eq!(
            packed_len(&[0, y, y + c], &[640, 320, 320], &i420),
            Some(y + 2 * c)
        );
        // Row padding, a gap between planes, or planes not starting at 0 need a copy.
        assert_eq!(packed_len(&[0, y, y + c], &[704, 352, 352], &i420), None);
        assert_eq!(
            packed_len(&[0, y + 64, y + c + 64], &[640, 320, 320], &i420),
            None
        );
        assert_eq!(
            packed_len(&[16, y + 16, y + c + 16], &[640, 320, 320], &i420),
            None
        );
        let bgr = plane_sizes(PixelFormat::Bgr, 5, 3);
        assert_eq!(packed_len(&[0], &[15], &bgr), Some(45));
        assert_eq!(packed_len(&[0], &[16], &bgr), None);
        assert_eq!(
            packed_len(&[0], &[16], &plane_sizes(PixelFormat::Bgr, 5, 1)),
            Some(15)
        );
        assert_eq!(packed_len(&[0, 0], &[15], &bgr), None);
    }

    #[test]
    fn strips_row_padding_plane_by_plane() {
        // 2x2 NV12 with stride 4: Y rows [1,2,_,_] [3,4,_,_], UV row [5,6,_,_]
        let y = [1, 2, 0, 0, 3, 4, 0, 0];
        let uv = [5, 6, 0, 0];
        let sizes = plane_sizes(PixelFormat::Nv12, 2, 2);
        let mut dst = [0u8; 6];
        assert!(pack(&[(&y, 4), (&uv, 4)], &sizes, &mut dst));
        assert_eq!(dst, [1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn refuses_short_planes_and_wrong_destinations() {
        let sizes = plane_sizes(PixelFormat::Rgb, 2, 2);
        let mut dst = [0u8; 12];
        assert!(!pack(&[(&[0u8; 10], 6)], &sizes, &mut dst));
        assert!(pack(&[(&[0u8; 14], 8)], &sizes, &mut dst));
        assert!(!pack(&[(&[0u8; 12], 6)], &sizes, &mut [0u8; 11]));
    }

    #[test]
    fn formats() {
        use gst_video::VideoFormat as F;
        assert_eq!(pixel_format(F::Bgra, 5, 3), Some(PixelFormat::Bgrx));
        assert_eq!(pixel_format(F::I420, 6, 4), Some(PixelFormat::I420));
        assert_eq!(pixel_format(F::I420, 5, 4), None);
        assert_eq!(pixel_format(F::Nv12, 6, 3), None);
        assert_eq!(pixel_format(F::Gray8, 6, 4), None);
        assert_eq!(
            plane_sizes(PixelFormat::I420, 4, 2),
            vec![(4, 2), (2, 1), (2, 1)]
        );
    }
}
