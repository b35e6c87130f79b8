//! The real `lva-server` binary for the hostile tests: started on 127.0.0.1:0 with the SSD
//! model, requests over raw sockets (so a test controls every byte, and half-closes), and what
//! the process holds (`/proc/PID`: open fds, RSS).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use super::common::{ssd_labels, ssd_model};

/// A running `lva-server`, killed when dropped.
pub struct Server {
    started: super::common::server::Started,
    pub pid: u32,
    pub addr: String,
    config: std::path::PathBuf,
}

pub use super::common::server::binary;

/// The SSD model entry.
pub fn ssd() -> Value {
    json!({
        "model": ssd_model(),
        "labels": ssd_labels(),
        "decoder": "ssd",
        "threshold": 0.5,
        "workers": 1,
        "max-queue": 4,
    })
}

fn config_file(config: &Value) -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("lva-hostile-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("lva-server.json");
    std::fs::write(&path, config.to_string()).expect("config written");
    path
}

/// Runs the server with `config` until it exits or `timeout` passes: (exited, its stderr).
pub fn run_to_exit(config: Value, timeout: Duration) -> (Option<std::process::ExitStatus>, String) {
    let path = config_file(&config);
    // A bound on the address space, so that a server reading without end fails fast instead of
    // taking the machine's memory (the server never gets that far when it is right).
    let script = format!(
        "ulimit -v 4000000; exec '{}' --config '{}' --listen 127.0.0.1:0",
        binary(),
        path.display()
    );
    let mut child = Command::new("sh")
        .args(["-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sh starts");
    let mut stderr = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if let Some(dir) = path.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
    (status, reader.join().unwrap_or_default())
}

impl Server {
    pub fn start(config: Value, env: &[(&str, &str)]) -> Server {
        let path = config_file(&config);
        let started = super::common::server::start(&path, env);
        let addr = started
            .url
            .strip_prefix("http://")
            .expect("a plain HTTP server")
            .to_string();
        Server {
            pid: started.child.id(),
            started,
            addr,
            config: path,
        }
    }

    pub fn log_text(&self) -> String {
        self.started.log_text()
    }

    /// Panics unless the process that started is still running.
    pub fn assert_alive(&mut self) {
        if let Some(status) = self.started.child.try_wait().expect("wait") {
            panic!(
                "lva-server (pid {}) exited: {status}\n{}",
                self.pid,
                self.log_text()
            );
        }
    }

    /// Open file descriptors of the process.
    pub fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid))
            .expect("/proc/PID/fd")
            .count()
    }

    /// Resident memory of the process, kB.
    pub fn rss_kb(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).expect("status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(&self.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        s
    }

    /// One POST with `Connection: close`; the answer.
    pub fn post(&self, path: &str, content_type: &str, body: &[u8]) -> Reply {
        let mut s = self.connect();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = s.write_all(head.as_bytes());
        let _ = s.write_all(body);
        read_reply(s)
    }

    /// A POST announcing `announced` bytes and sending `body` (shorter), then half-closing.
    pub fn post_short(&self, content_type: &str, body: &[u8], announced: usize) -> Reply {
        let mut s = self.connect();
        let head = format!(
            "POST /ssd HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n\
             Content-Length: {announced}\r\n\r\n"
        );
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        read_reply(s)
    }

    /// A request with a raw request line (anything a client may send).
    pub fn raw(&self, request: &str) -> Reply {
        let mut s = self.connect();
        let _ = s.write_all(request.as_bytes());
        read_reply(s)
    }

    pub fn models(&self) -> Value {
        let r = self.raw("GET /models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        assert_eq!(r.status, 200, "{}", r.text());
        serde_json::from_slice(&r.body).expect("JSON")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The process is killed when `started` drops.
        if let Some(dir) = self.config.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// An HTTP answer; status 0 when the connection closed without one.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn error(&self) -> String {
        serde_json::from_slice::<Value>(&self.body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or_else(|| {
                format!("(no error message: status {} {})", self.status, self.text())
            })
    }
}

fn read_reply(mut s: TcpStream) -> Reply {
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    let text = String::from_utf8_lossy(&all);
    let Some((head, _)) = text.split_once("\r\n\r\n") else {
        return Reply {
            status: 0,
            body: all,
        };
    };
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = all[head.len() + 4..].to_vec();
    Reply { status, body }
}
