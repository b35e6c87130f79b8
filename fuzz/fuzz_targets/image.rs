//! Image header probing (JPEG SOF walk, PNG IHDR, BMP incl. OS/2), the signature check and the
//! in-process PNG decoder, on arbitrary bodies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ovlva_fuzz::image::{self, Kind};

/// Small, so that the fuzzer cannot make the PNG decoder allocate much.
const MAX_PIXELS: u64 = 1 << 16;

fuzz_target!(|data: &[u8]| {
    ovlva_fuzz::init();
    for kind in [Kind::Jpeg, Kind::Png, Kind::Bmp, Kind::Raw] {
        let _ = kind.check_signature(data);
        let _ = image::dimensions(kind, data);
    }
    if let Some(frame) = image::jpeg_frame(data) {
        assert_eq!(
            image::dimensions(Kind::Jpeg, data),
            Some((frame.width, frame.height))
        );
    }
    if let Ok(text) = std::str::from_utf8(&data[..data.len().min(64)])
        && let Some(kind) = Kind::from_content_type(text)
    {
        assert_eq!(Kind::from_content_type(kind.name()), Some(kind));
    }
    if let Ok((info, frame)) = image::decode_png(data, MAX_PIXELS) {
        assert!(u64::from(info.width()) * u64::from(info.height()) <= MAX_PIXELS);
        assert_eq!(frame.len(), info.size());
    }
});
