//! Query strings and raw-frame geometry, as the server reads them for `image/x-raw`: the first
//! line is the query (after '?'), the rest the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ovlva_fuzz::http::{percent_decode, query_param};
use ovlva_fuzz::image;

fuzz_target!(|data: &[u8]| {
    ovlva_fuzz::init();
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let query = String::from_utf8_lossy(&data[..split]).into_owned();
    let body = data.get(split + 1..).unwrap_or(&[]).to_vec();
    assert!(percent_decode(&query, true).len() <= query.len());
    let param = |name: &str| query_param(&query, name);
    // As service.rs does.
    if let Some(t) = param("threshold") {
        let _ = t.parse::<f64>().ok().filter(|v| (0.0..=1.0).contains(v));
    }
    let info = image::raw_info(
        param("format").as_deref(),
        param("width").as_deref(),
        param("height").as_deref(),
    );
    let Ok(info) = info else { return };
    assert!((1..=16384).contains(&info.width()) && (1..=16384).contains(&info.height()));
    // Frames up to 16 MB: the body as it is (almost always the wrong size), then resized to what
    // the geometry needs, so that the row layout runs too.
    if info.size() > 16 << 20 {
        return;
    }
    match image::raw_frame(&info, body.clone()) {
        Ok(frame) => assert_eq!(frame.len(), info.size()),
        Err(e) => {
            let needed = e
                .split("needs ")
                .nth(1)
                .and_then(|s| s.split(' ').next())
                .and_then(|n| n.parse::<usize>().ok())
                .expect("the error says how many bytes are needed");
            let mut body = body;
            body.resize(needed, 0x5a);
            let frame = image::raw_frame(&info, body).expect("a body of the size asked for");
            assert_eq!(frame.len(), info.size());
        }
    }
});
