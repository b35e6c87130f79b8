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

impl Started {
    /// Everything the server logged so far.
    pub fn log_text(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .join("\n")
    }

    /// SIGTERM, then the exit status (panics with the log if it does not exit within `timeout`).
    pub fn terminate(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(ok.success());
        let start = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                start.elapsed() < timeout,
                "lva-server did not exit after SIGTERM: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The server is killed when its test lets go of it.
impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
