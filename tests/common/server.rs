//! Starting the real `lva-server` binary for a test: on 127.0.0.1:0 with a configuration file,
//! its log collected as it comes.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

/// The binary under test: `LVA_SERVER_BIN` when set (to run the tests against another build),
/// else the one cargo built with the test.
pub fn binary() -> String {
    std::env::var("LVA_SERVER_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_lva-server").into())
}

/// A started server: the process, where it listens (`scheme://host:port`) and its log lines.
pub struct Started {
    pub child: Child,
    pub url: String,
    pub log: Arc<Mutex<Vec<String>>>,
}

/// Starts the server with the configuration at `config` and the extra environment `env`, and
/// waits for it to say where it listens (panics with its log if it does not within 180 s).
pub fn start(config: &Path, env: &[(&str, &str)]) -> Started {
    let mut child = Command::new(binary())
        .arg("--config")
        .arg(config)
        .args(["--listen", "127.0.0.1:0"])
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lva-server starts");
    let stderr = child.stderr.take().expect("stderr");
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    let lines = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on ").nth(1) {
                let _ = tx.send(rest.split(',').next().unwrap_or("").to_string());
            }
            lines.lock().unwrap().push(line);
        }
    });
    let Ok(url) = rx.recv_timeout(Duration::from_secs(180)) else {
        let _ = child.kill();
        panic!("lva-server did not start: {:#?}", log.lock().unwrap());
    };
    Started { child, url, log }
}
