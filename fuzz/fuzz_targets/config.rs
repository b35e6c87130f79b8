//! The lva-server configuration file (JSON) and command line.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use ovlva_fuzz::config::{Args, Config};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok((config, models)) = Config::parse(text, Path::new("/nonexistent/ovlva-fuzz")) {
        assert!(!models.is_empty() && config.max_connections > 0 && config.queue_timeout_ms > 0);
        for m in &models {
            assert!(m.workers > 0 && m.property("model").is_some());
            assert!(!m.name.is_empty() && !m.name.contains('/'));
        }
        let _ = config.queue_timeout();
    }
    let _ = Args::parse(text.split([' ', '\n']).map(String::from));
});
