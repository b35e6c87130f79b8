//! Hostile inputs, each made from a real photo of `media/` (the CMYK JPEG is a file made once
//! from media/person.jpg, since GStreamer has no CMYK JPEG encoder).

use super::common::{asset, run_sinks};

pub fn person_jpeg() -> Vec<u8> {
    std::fs::read(asset("media/person.jpg")).expect("person.jpg")
}

pub fn astronaut_png() -> Vec<u8> {
    std::fs::read(asset("media/astronaut.png")).expect("astronaut.png")
}

/// media/person.jpg resized to 320x240 and converted to CMYK by Pillow (a valid, 4-component
/// baseline JPEG with an Adobe marker).
pub fn cmyk_jpeg() -> Vec<u8> {
    std::fs::read(super::common::root().join("tests/hostile/person_cmyk.jpg")).expect("fixture")
}

/// Offset of a JPEG's first start-of-frame marker (a clean walk: the photo has no stray bytes).
fn sof_offset(jpeg: &[u8]) -> usize {
    let mut at = 2;
    loop {
        assert_eq!(jpeg[at], 0xFF, "a marker at {at}");
        let marker = jpeg[at + 1];
        if matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            return at;
        }
        at += 2 + usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]));
    }
}

/// The photo with its SOF claiming `width` x `height`, and one stray 0x00 byte just before the
/// SOF marker (libjpeg skips it with a warning; a strict header walk gives up there).
pub fn jpeg_bomb(width: u16, height: u16) -> Vec<u8> {
    let mut jpeg = person_jpeg();
    let at = sof_offset(&jpeg);
    jpeg[at + 5..at + 7].copy_from_slice(&height.to_be_bytes());
    jpeg[at + 7..at + 9].copy_from_slice(&width.to_be_bytes());
    jpeg.insert(at, 0x00);
    jpeg
}

/// PNG chunks: (offset of the length field, data length, type).
fn chunks(png: &[u8]) -> Vec<(usize, usize, [u8; 4])> {
    let mut out = Vec::new();
    let mut at = 8;
    while at + 8 <= png.len() {
        let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
        out.push((at, len, png[at + 4..at + 8].try_into().unwrap()));
        at += 12 + len;
    }
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Rewrites the CRC of the chunk at `at` to match its (changed) data.
fn fix_crc(png: &mut [u8], at: usize, len: usize) {
    let crc = crc32(&png[at + 4..at + 8 + len]);
    png[at + 8 + len..at + 12 + len].copy_from_slice(&crc.to_be_bytes());
}

fn first_idat(png: &[u8]) -> (usize, usize) {
    chunks(png)
        .into_iter()
        .find(|c| &c.2 == b"IDAT")
        .map(|c| (c.0, c.1))
        .expect("an IDAT chunk")
}

/// The photo cut in the middle of its first IDAT chunk.
pub fn png_truncated() -> Vec<u8> {
    let png = astronaut_png();
    let (at, len) = first_idat(&png);
    png[..at + 8 + len / 2].to_vec()
}

/// The photo with a wrong CRC on its first IDAT chunk.
pub fn png_bad_crc() -> Vec<u8> {
    let mut png = astronaut_png();
    let (at, len) = first_idat(&png);
    png[at + 8 + len] ^= 0xFF;
    png
}

/// The photo with garbage in its compressed data (the CRC made right, so only zlib sees it).
pub fn png_bad_zlib() -> Vec<u8> {
    let mut png = astronaut_png();
    let (at, len) = first_idat(&png);
    for b in &mut png[at + 10..at + 8 + len.min(400)] {
        *b = 0xAB;
    }
    fix_crc(&mut png, at, len);
    png
}

/// The photo with an IHDR saying 0x0 (CRC made right).
pub fn png_zero_size() -> Vec<u8> {
    let mut png = astronaut_png();
    png[16..24].fill(0);
    fix_crc(&mut png, 8, 13);
    png
}

/// The photo as an OS/2 1.x BMP: a 12-byte BITMAPCOREHEADER with 16-bit width and height,
/// 24-bit bottom-up rows padded to 4 bytes.
pub fn os2_bmp(width: u32, height: u32) -> Vec<u8> {
    let out = run_sinks(
        &format!(
            "filesrc location={} ! jpegdec ! videoconvert ! videoscale ! \
             video/x-raw,format=BGR,width={width},height={height} ! appsink name=raw",
            asset("media/person.jpg")
        ),
        &["raw"],
    );
    assert!(out.errors.is_empty(), "{}", out.error_text());
    let sample = &out.samples("raw")[0];
    let info = gst_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
    let map = sample.buffer().unwrap().map_readable().unwrap();
    let stride = info.stride()[0] as usize;
    let row = width as usize * 3;
    let padded = row.div_ceil(4) * 4;
    let mut pixels = Vec::with_capacity(padded * height as usize);
    for y in (0..height as usize).rev() {
        pixels.extend_from_slice(&map[y * stride..y * stride + row]);
        pixels.resize(pixels.len() + padded - row, 0);
    }
    let offset = 14 + 12;
    let mut bmp = b"BM".to_vec();
    bmp.extend(((offset + pixels.len()) as u32).to_le_bytes());
    bmp.extend([0u8; 4]);
    bmp.extend((offset as u32).to_le_bytes());
    bmp.extend(12u32.to_le_bytes());
    bmp.extend((width as u16).to_le_bytes());
    bmp.extend((height as u16).to_le_bytes());
    bmp.extend(1u16.to_le_bytes());
    bmp.extend(24u16.to_le_bytes());
    bmp.extend(pixels);
    bmp
}
