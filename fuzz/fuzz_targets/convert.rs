//! ovinfer's converter (colour conversion and resize in one pass) with random layouts, sizes,
//! strides and plane lengths: it must never panic nor read out of bounds, only return false (or
//! `None` from `Converter::new`).
#![no_main]

use gst_video::VideoFormat;
use gstovlva::ovinfer::convert::{Converter, Layout, YuvMatrix};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

/// Bytes of source planes built at most.
const MAX_PLANE: usize = 1 << 20;

const FORMATS: [VideoFormat; 17] = [
    VideoFormat::Rgb,
    VideoFormat::Bgr,
    VideoFormat::Rgbx,
    VideoFormat::Rgba,
    VideoFormat::Bgrx,
    VideoFormat::Bgra,
    VideoFormat::Xrgb,
    VideoFormat::Argb,
    VideoFormat::Xbgr,
    VideoFormat::Abgr,
    VideoFormat::Gray8,
    VideoFormat::I420,
    VideoFormat::Yv12,
    VideoFormat::Nv12,
    VideoFormat::Nv21,
    VideoFormat::Yuy2,
    VideoFormat::Uyvy,
];

fn layout(u: &mut Unstructured<'_>) -> Result<Layout> {
    if u.ratio(7, 8)? {
        let format = *u.choose(&FORMATS)?;
        return Ok(Layout::of(format).expect("a converted format"));
    }
    // Layouts no format has: offsets out of their pixel or plane.
    let small = |u: &mut Unstructured<'_>| u.int_in_range(0..=5usize);
    Ok(match u.int_in_range(0..=4u8)? {
        0 => Layout::Packed {
            bytes: small(u)?,
            rgb: [small(u)?, small(u)?, small(u)?],
        },
        1 => Layout::Gray,
        2 => Layout::Yuv420 {
            u: small(u)?,
            v: small(u)?,
        },
        3 => Layout::Yuv420Pairs { u: small(u)? },
        _ => Layout::Yuv422 {
            y: [small(u)?, small(u)?],
            u: small(u)?,
            v: small(u)?,
        },
    })
}

fn side(u: &mut Unstructured<'_>) -> Result<usize> {
    Ok(match u.int_in_range(0..=7u8)? {
        0 => 0,
        1 => usize::MAX - usize::from(u.arbitrary::<u8>()?),
        2 => usize::from(u.arbitrary::<u16>()?),
        _ => u.int_in_range(1..=64)?,
    })
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let layout = layout(u)?;
    let src = (side(u)?, side(u)?);
    // The model's input: never huge (the converter allocates per output pixel).
    let dst = (u.int_in_range(0..=96usize)?, u.int_in_range(0..=96usize)?);
    let matrix = YuvMatrix::new(
        *u.choose(&[0.299, 0.2126, 0.2627, f64::NAN, 0.0, 1.0])?,
        *u.choose(&[0.114, 0.0722, 0.0593, f64::NAN, 0.0, 1.0])?,
        u.arbitrary()?,
    );
    let Some(conv) = Converter::new(layout, src, dst, matrix, u.arbitrary()?) else {
        return Ok(());
    };
    // Planes as GStreamer would lay them out, or with random counts, strides and lengths.
    let expected = layout.planes(src.0.min(1 << 16), src.1.min(1 << 16));
    let n = if u.ratio(7, 8)? {
        expected.len()
    } else {
        u.int_in_range(0..=4)?
    };
    let mut storage = Vec::new();
    for p in 0..n {
        let (row, rows) = expected.get(p).copied().unwrap_or((1, 1));
        let stride = match u.int_in_range(0..=7u8)? {
            0 => usize::from(u.arbitrary::<u16>()?),
            1 => usize::MAX - usize::from(u.arbitrary::<u8>()?),
            2 => row.saturating_add(u.int_in_range(0..=64)?),
            _ => row,
        };
        let len = match u.int_in_range(0..=7u8)? {
            0 => usize::from(u.arbitrary::<u16>()?),
            1 => stride
                .saturating_mul(rows.saturating_sub(1))
                .saturating_add(row)
                .saturating_sub(u.int_in_range(0..=2)?),
            _ => stride.saturating_mul(rows),
        }
        .min(MAX_PLANE);
        let mut data = vec![u.arbitrary::<u8>()?; len];
        for b in data.iter_mut().step_by(7) {
            *b = u.arbitrary()?;
        }
        storage.push((data, stride));
    }
    let planes: Vec<(&[u8], usize)> = storage.iter().map(|(d, s)| (d.as_slice(), *s)).collect();
    let dst_len = if u.ratio(7, 8)? {
        conv.dst_len()
    } else {
        usize::from(u.arbitrary::<u16>()?)
    };
    let mut out = vec![0u8; dst_len];
    let _ = conv.convert(&planes, &mut out);
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
