//! Labels files (`Labels::parse`), as ovinfer and lva-server read them.
#![no_main]

use gstovlva::ovinfer::labels::Labels;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let labels = Labels::parse(text);
    assert!(labels.len() <= text.lines().count());
    let sorted = labels.sorted();
    assert_eq!(sorted.len(), labels.len());
    for pair in sorted.windows(2) {
        assert!(pair[0].0 < pair[1].0);
    }
    for (id, name) in sorted {
        assert_eq!(labels.get(id), Some(name));
        assert_eq!(name, name.trim());
    }
});
