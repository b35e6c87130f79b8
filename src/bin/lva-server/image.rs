//! What a request body is: the content type, a check of the bytes against it, and for
//! `image/x-raw` the frame geometry from the query and the copy into GStreamer's layout.

use gst_video::VideoFormat;

/// The image encodings of the contract (seed 001).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Jpeg,
    Png,
    Bmp,
    Raw,
}

impl Kind {
    /// The kind for a Content-Type header value; parameters such as "; charset" are ignored.
    pub fn from_content_type(value: &str) -> Option<Kind> {
        let media = value.split(';').next().unwrap_or("").trim();
        match media.to_ascii_lowercase().as_str() {
            "image/jpeg" | "image/jpg" | "image/pjpeg" => Some(Kind::Jpeg),
            "image/png" => Some(Kind::Png),
            "image/bmp" | "image/x-bmp" | "image/x-ms-bmp" => Some(Kind::Bmp),
            "image/x-raw" => Some(Kind::Raw),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Jpeg => "image/jpeg",
            Kind::Png => "image/png",
            Kind::Bmp => "image/bmp",
            Kind::Raw => "image/x-raw",
        }
    }

    /// Rejects bodies that are plainly not of this kind, with what they look like instead, before
    /// a decoder sees them.
    pub fn check_signature(self, data: &[u8]) -> Result<(), String> {
        let found = sniff(data);
        let ok = match self {
            Kind::Jpeg => found == Some(Kind::Jpeg),
            Kind::Png => found == Some(Kind::Png),
            Kind::Bmp => found == Some(Kind::Bmp),
            Kind::Raw => return Ok(()),
        };
        if ok {
            return Ok(());
        }
        Err(match found {
            Some(other) => format!(
                "Content-Type is {} but the body is {}: send it with Content-Type: {}",
                self.name(),
                other.name(),
                other.name()
            ),
            None => format!(
                "the body is not {} data (it starts with {})",
                self.name(),
                hex_prefix(data)
            ),
        })
    }
}

/// Width and height from an encoded image's header, without decoding it (None when the header
/// cannot be read; the decoder then has the last word).
///
/// This is only an early, cheap refusal: the `max-pixels` limit is enforced on what the decoder
/// actually produces (see `engine`), whatever these headers claim.
pub fn dimensions(kind: Kind, data: &[u8]) -> Option<(u32, u32)> {
    let be32 = |at: usize| Some(u32::from_be_bytes(data.get(at..at + 4)?.try_into().ok()?));
    let le16 = |at: usize| Some(u16::from_le_bytes(data.get(at..at + 2)?.try_into().ok()?));
    let le32 = |at: usize| Some(i32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?));
    match kind {
        // IHDR is the first chunk: width and height right after its type.
        Kind::Png if data.get(12..16) == Some(b"IHDR") => Some((be32(16)?, be32(20)?)),
        Kind::Bmp => match le32(14)? {
            // OS/2 1.x BITMAPCOREHEADER: unsigned 16-bit width and height.
            12 => Some((u32::from(le16(18)?), u32::from(le16(20)?))),
            // BITMAPINFOHEADER and later (and OS/2 2.x): signed 32-bit width and height
            // (negative height: top-down).
            _ => Some((le32(18)?.unsigned_abs(), le32(22)?.unsigned_abs())),
        },
        Kind::Jpeg => jpeg_frame(data).map(|f| (f.width, f.height)),
        _ => None,
    }
}

/// What a JPEG's start-of-frame segment says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JpegFrame {
    pub width: u32,
    pub height: u32,
    /// 1 grey, 3 YCbCr (or RGB), 4 CMYK or YCCK.
    pub components: u8,
}

/// Walks the JPEG markers up to the first start-of-frame, which holds the size and the number of
/// components. Like libjpeg, bytes that are not a marker where one is expected are skipped
/// rather than ending the walk, so a stray byte cannot hide the frame header from us while the
/// decoder still finds it.
pub fn jpeg_frame(data: &[u8]) -> Option<JpegFrame> {
    let mut at = 2;
    loop {
        // Extraneous bytes before the marker, then fill bytes.
        while *data.get(at)? != 0xFF {
            at += 1;
        }
        while *data.get(at + 1)? == 0xFF {
            at += 1;
        }
        let marker = *data.get(at + 1)?;
        at += 2;
        match marker {
            // Not a marker (stuffed zero), or markers without a length.
            0x00 | 0x01 | 0xD0..=0xD7 => continue,
            // Start of scan or end of image before any frame header.
            0xDA | 0xD9 => return None,
            _ => {}
        }
        let len = usize::from(u16::from_be_bytes([*data.get(at)?, *data.get(at + 1)?]));
        let is_sof = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if is_sof {
            let h = u16::from_be_bytes([*data.get(at + 3)?, *data.get(at + 4)?]);
            let w = u16::from_be_bytes([*data.get(at + 5)?, *data.get(at + 6)?]);
            return Some(JpegFrame {
                width: u32::from(w),
                height: u32::from(h),
                components: *data.get(at + 7)?,
            });
        }
        if len < 2 {
            return None;
        }
        at += len;
    }
}

/// Decodes a PNG in this process with the `png` crate (memory-safe, with an allocation limit
/// from `max_pixels`), to a frame laid out for GStreamer. Every defect of the file (truncation,
/// bad CRC, bad zlib data, a 0x0 or oversized header) is an `Err` saying what is wrong.
pub fn decode_png(data: &[u8], max_pixels: u64) -> Result<(gst_video::VideoInfo, Vec<u8>), String> {
    let (w, h) = dimensions(Kind::Png, data).ok_or("the PNG has no IHDR header")?;
    if w == 0 || h == 0 {
        return Err(format!(
            "the PNG header says {w}x{h}: an image needs pixels"
        ));
    }
    check_pixels(w, h, max_pixels)?;
    check_png_palette(data)?;
    // The `png` crate is memory-safe but not panic-free: a panic in it is a bad file (400), not
    // a failed request (500).
    std::panic::catch_unwind(|| decode_png_frame(data, w, h))
        .unwrap_or_else(|_| Err("invalid PNG: the decoder gave up on it".into()))
}

/// Refuses a PLTE chunk that is not whole RGB entries (1 to 256): `png` 0.18.1 panics
/// expanding such a palette (found by fuzzing, fuzz/regressions/image).
fn check_png_palette(data: &[u8]) -> Result<(), String> {
    let mut at = 8;
    while let Some(head) = data.get(at..at + 8) {
        let len = u32::from_be_bytes(head[..4].try_into().expect("4 bytes")) as usize;
        match &head[4..] {
            b"PLTE" if !len.is_multiple_of(3) || !(3..=768).contains(&len) => {
                return Err(format!(
                    "invalid PNG: its palette has {len} bytes, not 1 to 256 RGB entries"
                ));
            }
            b"IDAT" | b"IEND" => return Ok(()),
            _ => at = at.saturating_add(12).saturating_add(len),
        }
    }
    Ok(())
}

fn decode_png_frame(
    data: &[u8],
    w: u32,
    h: u32,
) -> Result<(gst_video::VideoInfo, Vec<u8>), String> {
    use png::{ColorType, Transformations};
    // Room for the decoded frame at 4 bytes a pixel and a row or two of work space.
    let limit = usize::try_from(u64::from(w) * u64::from(h) * 4 + (1 << 20)).unwrap_or(usize::MAX);
    let mut decoder =
        png::Decoder::new_with_limits(std::io::Cursor::new(data), png::Limits { bytes: limit });
    decoder.set_transformations(Transformations::EXPAND | Transformations::STRIP_16);
    let mut reader = decoder
        .read_info()
        .map_err(|e| format!("invalid PNG: {e}"))?;
    let size = reader
        .output_buffer_size()
        .ok_or("the PNG is too large to decode")?;
    let mut pixels = vec![0; size];
    let frame = reader
        .next_frame(&mut pixels)
        .map_err(|e| format!("invalid PNG: {e}"))?;
    pixels.truncate(frame.buffer_size());
    let (format, pixels) = match frame.color_type {
        ColorType::Rgb => (VideoFormat::Rgb, pixels),
        ColorType::Rgba => (VideoFormat::Rgba, pixels),
        ColorType::Grayscale => (VideoFormat::Gray8, pixels),
        // As pngdec does: grey with alpha becomes RGBA.
        ColorType::GrayscaleAlpha => (
            VideoFormat::Rgba,
            pixels
                .chunks_exact(2)
                .flat_map(|ga| [ga[0], ga[0], ga[0], ga[1]])
                .collect(),
        ),
        ColorType::Indexed => return Err("the PNG palette could not be expanded".into()),
    };
    let info = gst_video::VideoInfo::builder(format, frame.width, frame.height)
        .build()
        .map_err(|e| format!("PNG {}x{}: {e}", frame.width, frame.height))?;
    let packed = raw_frame(&info, pixels)?;
    Ok((info, packed))
}

/// `Err` with the reason when `w` x `h` is over `max_pixels`.
pub fn check_pixels(w: u32, h: u32, max_pixels: u64) -> Result<(), String> {
    if u64::from(w) * u64::from(h) > max_pixels {
        return Err(format!(
            "the image is {w}x{h}, over the limit of {max_pixels} pixels (max-pixels): scale it down"
        ));
    }
    Ok(())
}

/// The encoded image kind, from its first bytes.
fn sniff(data: &[u8]) -> Option<Kind> {
    if data.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(Kind::Jpeg)
    } else if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(Kind::Png)
    } else if data.len() >= 26 && data.starts_with(b"BM") {
        Some(Kind::Bmp)
    } else {
        None
    }
}

fn hex_prefix(data: &[u8]) -> String {
    let hex: Vec<String> = data.iter().take(8).map(|b| format!("{b:02x}")).collect();
    if hex.is_empty() {
        "nothing".into()
    } else {
        hex.join(" ")
    }
}

/// Raw pixel formats accepted in the `format` query parameter: LVA's names (ImageFormatRaw
/// pixelFormat) and GStreamer's.
pub const RAW_FORMATS: [(&str, VideoFormat); 12] = [
    ("bgr24", VideoFormat::Bgr),
    ("rgb24", VideoFormat::Rgb),
    ("bgra", VideoFormat::Bgra),
    ("rgba", VideoFormat::Rgba),
    ("argb", VideoFormat::Argb),
    ("abgr", VideoFormat::Abgr),
    ("yuv420p", VideoFormat::I420),
    ("bgr", VideoFormat::Bgr),
    ("rgb", VideoFormat::Rgb),
    ("bgrx", VideoFormat::Bgrx),
    ("i420", VideoFormat::I420),
    ("nv12", VideoFormat::Nv12),
];

/// Largest raw frame side accepted.
const MAX_SIDE: u32 = 16384;

/// A raw frame's geometry, from the query parameters `width`, `height` and `format` (default
/// bgr24).
pub fn raw_info(
    format: Option<&str>,
    width: Option<&str>,
    height: Option<&str>,
) -> Result<gst_video::VideoInfo, String> {
    let side = |name: &str, v: Option<&str>| -> Result<u32, String> {
        let v = v.ok_or_else(|| {
            format!("image/x-raw needs the frame size: add ?width=W&height=H to the URL (missing {name})")
        })?;
        v.trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_SIDE).contains(n))
            .ok_or_else(|| format!("{name}={v} is not a size from 1 to {MAX_SIDE}"))
    };
    let (w, h) = (side("width", width)?, side("height", height)?);
    let name = format.unwrap_or("bgr24").trim().to_ascii_lowercase();
    let format = RAW_FORMATS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
        .ok_or_else(|| {
            let known: Vec<&str> = RAW_FORMATS.iter().map(|(n, _)| *n).collect();
            format!(
                "format={name} is not supported for image/x-raw; use one of {}",
                known.join(", ")
            )
        })?;
    gst_video::VideoInfo::builder(format, w, h)
        .build()
        .map_err(|e| format!("invalid raw frame {name} {w}x{h}: {e}"))
}

/// Bytes per row and rows of each plane of a tightly packed frame (no row padding), which is
/// how raw frames arrive over HTTP.
fn packed_planes(info: &gst_video::VideoInfo) -> Vec<(usize, usize)> {
    let finfo = info.format_info();
    (0..info.n_planes())
        .map(|p| {
            let (w, h) = (info.width(), info.height());
            let comps: Vec<u8> = (0..finfo.n_components() as u8)
                .filter(|&c| finfo.plane()[c as usize] == p)
                .collect();
            let first = comps.first().copied().unwrap_or(0);
            let pw = finfo.scale_width(first, w) as usize;
            let ph = finfo.scale_height(first, h) as usize;
            (pw * finfo.pixel_stride()[first as usize] as usize, ph)
        })
        .collect()
}

/// Checks the body size against the geometry and lays the rows out with GStreamer's strides
/// (a copy only when they differ from the tight packing).
pub fn raw_frame(info: &gst_video::VideoInfo, data: Vec<u8>) -> Result<Vec<u8>, String> {
    let planes = packed_planes(info);
    let expected: usize = planes.iter().map(|(row, rows)| row * rows).sum();
    if data.len() != expected {
        return Err(format!(
            "image/x-raw {:?} {}x{} needs {expected} bytes (rows without padding), the body has {}",
            info.format(),
            info.width(),
            info.height(),
            data.len()
        ));
    }
    let tight = planes.iter().enumerate().all(|(p, (row, _))| {
        info.stride()[p] as usize == *row
            && info.offset()[p] == planes[..p].iter().map(|(r, n)| r * n).sum::<usize>()
    });
    if tight && info.size() == expected {
        return Ok(data);
    }
    let mut out = vec![0u8; info.size()];
    let mut src = 0;
    for (p, (row, rows)) in planes.iter().enumerate() {
        let (stride, offset) = (info.stride()[p] as usize, info.offset()[p]);
        for r in 0..*rows {
            let dst = offset + r * stride;
            out[dst..dst + row].copy_from_slice(&data[src..src + row]);
            src += row;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_content_types() {
        assert_eq!(Kind::from_content_type("image/jpeg"), Some(Kind::Jpeg));
        assert_eq!(Kind::from_content_type("Image/JPEG; q=1"), Some(Kind::Jpeg));
        assert_eq!(Kind::from_content_type("image/png"), Some(Kind::Png));
        assert_eq!(Kind::from_content_type("image/bmp"), Some(Kind::Bmp));
        assert_eq!(Kind::from_content_type("image/x-raw"), Some(Kind::Raw));
        assert_eq!(Kind::from_content_type("image/gif"), None);
        assert_eq!(Kind::from_content_type("application/json"), None);
        assert_eq!(Kind::from_content_type(""), None);
    }

    #[test]
    fn checks_signatures_and_names_the_real_kind() {
        let png = b"\x89PNG\r\n\x1a\n0000";
        assert!(Kind::Png.check_signature(png).is_ok());
        assert!(
            Kind::Jpeg
                .check_signature(&[0xFF, 0xD8, 0xFF, 0xE0])
                .is_ok()
        );
        assert!(
            Kind::Bmp
                .check_signature(&[
                    b'B', b'M', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                    0, 0
                ])
                .is_ok()
        );
        let e = Kind::Jpeg.check_signature(png).unwrap_err();
        assert!(e.contains("body is image/png"), "{e}");
        let e = Kind::Png.check_signature(b"hello world").unwrap_err();
        assert!(e.contains("starts with 68 65 6c 6c 6f 20 77 6f"), "{e}");
        assert!(Kind::Bmp.check_signature(b"BM").is_err());
        assert!(Kind::Raw.check_signature(b"anything").is_ok());
    }

    #[test]
    fn reads_the_size_from_image_headers() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend(640u32.to_be_bytes());
        png.extend(480u32.to_be_bytes());
        assert_eq!(dimensions(Kind::Png, &png), Some((640, 480)));
        let mut bmp = vec![0u8; 26];
        bmp[..2].copy_from_slice(b"BM");
        bmp[18..22].copy_from_slice(&320i32.to_le_bytes());
        bmp[22..26].copy_from_slice(&(-240i32).to_le_bytes());
        assert_eq!(dimensions(Kind::Bmp, &bmp), Some((320, 240)));
        // SOI, an APP0 segment of 16 bytes, then SOF0 with height 480 and width 640.
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
        jpeg.extend([0u8; 14]);
        jpeg.extend([0xFF, 0xC0, 0x00, 0x11, 0x08, 0x01, 0xE0, 0x02, 0x80, 0x03]);
        assert_eq!(dimensions(Kind::Jpeg, &jpeg), Some((640, 480)));
        assert_eq!(jpeg_frame(&jpeg).map(|f| f.components), Some(3));
        assert_eq!(dimensions(Kind::Jpeg, &jpeg[..10]), None);
        assert_eq!(dimensions(Kind::Jpeg, &[0xFF, 0xD8, 0x42, 0x42]), None);
        assert_eq!(dimensions(Kind::Png, b"\x89PNG\r\n\x1a\n"), None);
        // A stray byte before the SOF marker is skipped, as libjpeg does.
        let mut stray = jpeg.clone();
        stray.insert(20, 0x00);
        assert_eq!(dimensions(Kind::Jpeg, &stray), Some((640, 480)));
        // A scan before any frame header: no size.
        assert_eq!(
            dimensions(Kind::Jpeg, &[0xFF, 0xD8, 0xFF, 0xDA, 0, 2]),
            None
        );
        // OS/2 1.x: a 12-byte header with 16-bit sizes.
        let mut os2 = vec![0u8; 26];
        os2[..2].copy_from_slice(b"BM");
        os2[14..18].copy_from_slice(&12u32.to_le_bytes());
        os2[18..20].copy_from_slice(&320u16.to_le_bytes());
        os2[20..22].copy_from_slice(&240u16.to_le_bytes());
        os2[22..24].copy_from_slice(&1u16.to_le_bytes());
        os2[24..26].copy_from_slice(&24u16.to_le_bytes());
        assert_eq!(dimensions(Kind::Bmp, &os2), Some((320, 240)));
    }

    #[test]
    fn decodes_pngs_and_says_what_is_wrong_with_bad_ones() {
        gst::init().expect("GStreamer");
        // A 3x2 RGB PNG, stored (uncompressed) deflate.
        let mut raw = Vec::new();
        for row in 0..2u8 {
            raw.push(0); // filter: none
            for x in 0..3u8 {
                raw.extend([row * 100, x * 50, 7]);
            }
        }
        let png = tiny_png(3, 2, &raw);
        let (info, data) = decode_png(&png, 100).unwrap();
        assert_eq!(
            (info.format(), info.width(), info.height()),
            (VideoFormat::Rgb, 3, 2)
        );
        assert_eq!(&data[..9], &[0, 0, 7, 0, 50, 7, 0, 100, 7]);
        assert!(decode_png(&png, 5).unwrap_err().contains("max-pixels"));
        let e = decode_png(&png[..png.len() - 20], 100).unwrap_err();
        assert!(e.contains("invalid PNG"), "{e}");
        assert!(
            decode_png(&tiny_png(0, 0, &[]), 100)
                .unwrap_err()
                .contains("0x0")
        );
    }

    /// Fuzz find: a PLTE chunk of 14 bytes (not whole RGB entries) made `png` 0.18.1 panic
    /// while expanding the palette; now a 400 with the reason, and so are palettes of over 256
    /// entries.
    #[test]
    fn fuzz_png_palette_of_partial_entries_is_refused() {
        gst::init().expect("GStreamer");
        let crash = include_bytes!("../../../fuzz/regressions/image/png_plte_not_whole_entries");
        let e = decode_png(crash, 1 << 16).unwrap_err();
        assert!(e.contains("palette has 14 bytes"), "{e}");
        for len in [0usize, 4, 769, 771] {
            let mut png =
                b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0\0\x02\0\0\0\x01\x08\x03\0\0\0ABCD".to_vec();
            png.extend((len as u32).to_be_bytes());
            png.extend(b"PLTE");
            png.extend(vec![7u8; len + 4]);
            let e = decode_png(&png, 100).unwrap_err();
            assert!(e.contains("palette has"), "{len}: {e}");
        }
    }

    /// A PNG with one IDAT holding `raw` (filtered rows) in stored deflate blocks.
    fn tiny_png(w: u32, h: u32, raw: &[u8]) -> Vec<u8> {
        fn crc(data: &[u8]) -> u32 {
            let mut c = !0u32;
            for &b in data {
                c ^= u32::from(b);
                for _ in 0..8 {
                    c = if c & 1 != 0 {
                        (c >> 1) ^ 0xEDB8_8320
                    } else {
                        c >> 1
                    };
                }
            }
            !c
        }
        fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
            out.extend((data.len() as u32).to_be_bytes());
            let start = out.len();
            out.extend(kind);
            out.extend(data);
            let c = crc(&out[start..]);
            out.extend(c.to_be_bytes());
        }
        let mut ihdr = Vec::new();
        ihdr.extend(w.to_be_bytes());
        ihdr.extend(h.to_be_bytes());
        ihdr.extend([8, 2, 0, 0, 0]);
        let (mut a, mut b) = (1u32, 0u32);
        for &x in raw {
            a = (a + u32::from(x)) % 65521;
            b = (b + a) % 65521;
        }
        let mut z = vec![0x78, 0x01, 0x01];
        z.extend((raw.len() as u16).to_le_bytes());
        z.extend((!(raw.len() as u16)).to_le_bytes());
        z.extend(raw);
        z.extend(((b << 16) | a).to_be_bytes());
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        chunk(&mut png, b"IHDR", &ihdr);
        chunk(&mut png, b"IDAT", &z);
        chunk(&mut png, b"IEND", &[]);
        png
    }

    #[test]
    fn reads_raw_geometry_from_the_query() {
        gst::init().expect("GStreamer");
        let info = raw_info(None, Some("640"), Some("480")).unwrap();
        assert_eq!(
            (info.format(), info.width(), info.height()),
            (VideoFormat::Bgr, 640, 480)
        );
        let info = raw_info(Some("YUV420P"), Some("4"), Some("2")).unwrap();
        assert_eq!(info.format(), VideoFormat::I420);
        assert!(
            raw_info(None, None, Some("2"))
                .unwrap_err()
                .contains("?width=W&height=H")
        );
        assert!(
            raw_info(None, Some("0"), Some("2"))
                .unwrap_err()
                .contains("width=0")
        );
        assert!(
            raw_info(None, Some("9"), Some("x"))
                .unwrap_err()
                .contains("height=x")
        );
        assert!(
            raw_info(Some("rgb565le"), Some("9"), Some("9"))
                .unwrap_err()
                .contains("bgr24")
        );
    }

    #[test]
    fn lays_out_raw_rows_with_gstreamer_strides() {
        gst::init().expect("GStreamer");
        // 3x2 BGR: rows of 9 bytes, GStreamer pads them to 12.
        let info = raw_info(Some("bgr24"), Some("3"), Some("2")).unwrap();
        let data: Vec<u8> = (1..=18).collect();
        let out = raw_frame(&info, data).unwrap();
        assert_eq!(out.len(), 24);
        assert_eq!(&out[..9], &[1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(&out[12..21], &[10, 11, 12, 13, 14, 15, 16, 17, 18]);
        // 4x2 BGR is already aligned: the body is used as it is.
        let info = raw_info(Some("bgr24"), Some("4"), Some("2")).unwrap();
        assert_eq!(raw_frame(&info, vec![7; 24]).unwrap(), vec![7; 24]);
        // I420 3x3: Y 3x3, U and V 2x2 each.
        let info = raw_info(Some("i420"), Some("3"), Some("3")).unwrap();
        let data: Vec<u8> = (0..17).collect();
        let out = raw_frame(&info, data).unwrap();
        assert_eq!(out[info.offset()[1]], 9);
        assert_eq!(out[info.offset()[2] + info.stride()[2] as usize + 1], 16);
        let e = raw_frame(&info, vec![0; 16]).unwrap_err();
        assert!(e.contains("needs 17 bytes"), "{e}");
    }
}

/// Property tests of the header probes and the raw-frame geometry (`cargo test`; the
/// coverage-guided fuzzing of the same code is in fuzz/, `make fuzz`).
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    fn jpeg(w: u16, h: u16, c: u8, segments: &[(u8, Vec<u8>)], stray: &[u8]) -> Vec<u8> {
        // SOI and a JFIF APP0, then the segments.
        let mut out = b"\xFF\xD8\xFF\xE0\0\x10JFIF\0\x01\x01\0\0\x01\0\x01\0\0".to_vec();
        for (marker, body) in segments {
            out.extend([0xFF, *marker]);
            out.extend(((body.len() + 2) as u16).to_be_bytes());
            out.extend(body);
        }
        // Bytes that are not a marker before the frame header, which libjpeg skips.
        out.extend(stray);
        out.extend([0xFF, 0xFF, 0xC0, 0, 8 + 3 * c, 8]);
        out.extend(h.to_be_bytes());
        out.extend(w.to_be_bytes());
        out.push(c);
        out
    }

    proptest! {
        #[test]
        fn probes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            for kind in [Kind::Jpeg, Kind::Png, Kind::Bmp, Kind::Raw] {
                let _ = kind.check_signature(&data);
                let _ = dimensions(kind, &data);
            }
            let mut jpeg = vec![0xFF, 0xD8];
            jpeg.extend(&data);
            prop_assert_eq!(
                dimensions(Kind::Jpeg, &jpeg),
                jpeg_frame(&jpeg).map(|f| (f.width, f.height))
            );
        }

        #[test]
        fn the_jpeg_frame_header_is_found_past_segments_and_stray_bytes(
            w in any::<u16>(), h in any::<u16>(), c in 1u8..=4,
            segments in proptest::collection::vec(
                (prop::sample::select(vec![0xE0u8, 0xE1, 0xDB, 0xC4, 0xFE, 0xDD]),
                 proptest::collection::vec(any::<u8>(), 0..40)), 0..4),
            stray in proptest::collection::vec(0u8..0xFF, 0..3),
        ) {
            let data = jpeg(w, h, c, &segments, &stray);
            prop_assert_eq!(Kind::Jpeg.check_signature(&data), Ok(()));
            let frame = jpeg_frame(&data).expect("a frame header");
            prop_assert_eq!(
                (frame.width, frame.height, frame.components),
                (u32::from(w), u32::from(h), c)
            );
        }

        #[test]
        fn png_and_bmp_headers_give_their_size(w in any::<u32>(), h in any::<u32>(),
                                               bw in any::<i32>(), bh in any::<i32>(),
                                               cw in any::<u16>(), ch in any::<u16>()) {
            let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
            png.extend(w.to_be_bytes());
            png.extend(h.to_be_bytes());
            prop_assert_eq!(dimensions(Kind::Png, &png), Some((w, h)));
            let mut bmp = b"BM\0\0\0\0\0\0\0\0\0\0\0\0".to_vec();
            bmp.extend(40u32.to_le_bytes());
            bmp.extend(bw.to_le_bytes());
            bmp.extend(bh.to_le_bytes());
            prop_assert_eq!(
                dimensions(Kind::Bmp, &bmp),
                Some((bw.unsigned_abs(), bh.unsigned_abs()))
            );
            // OS/2 1.x: a 12-byte header with 16-bit sizes (finding 4 of issue 25).
            let mut os2 = b"BM\0\0\0\0\0\0\0\0\0\0\0\0".to_vec();
            os2.extend(12u32.to_le_bytes());
            os2.extend(cw.to_le_bytes());
            os2.extend(ch.to_le_bytes());
            os2.extend([1, 0, 24, 0]);
            prop_assert_eq!(dimensions(Kind::Bmp, &os2), Some((u32::from(cw), u32::from(ch))));
        }

        #[test]
        fn raw_frames_of_every_format_and_size_are_laid_out(
            format in prop::sample::select(RAW_FORMATS.to_vec()),
            upper in any::<bool>(), w in 1u32..40, h in 1u32..40,
        ) {
            gst::init().expect("GStreamer");
            let name = if upper { format.0.to_uppercase() } else { format.0.to_string() };
            let info = raw_info(Some(&name), Some(&w.to_string()), Some(&format!(" {h} ")))
                .expect("a valid geometry");
            prop_assert_eq!((info.format(), info.width(), info.height()), (format.1, w, h));
            let tight: usize = packed_planes(&info).iter().map(|(row, rows)| row * rows).sum();
            let frame = raw_frame(&info, vec![7; tight]).expect("the right size");
            prop_assert_eq!(frame.len(), info.size());
            prop_assert!(raw_frame(&info, vec![7; tight + 1]).is_err());
            prop_assert!(raw_frame(&info, vec![7; tight - 1]).is_err());
        }

        #[test]
        fn raw_sizes_out_of_range_are_refused(bad in prop::sample::select(
            vec!["0", "16385", "-1", "4294967296", "", "1e3", "0x10"]), good in 1u32..=16384) {
            gst::init().expect("GStreamer");
            let good = good.to_string();
            prop_assert!(raw_info(None, Some(bad), Some(&good)).is_err());
            prop_assert!(raw_info(None, Some(&good), Some(bad)).is_err());
        }
    }
}
