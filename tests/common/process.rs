//! One runner for the services a test starts as child processes (mosquitto, noida-db, Triton):
//! a scratch folder, the child in a process group of its own with its output appended to a log
//! file, a wait until it is ready (a TCP port that accepts, or any probe) with the log's tail in
//! the panic message, a stop (SIGTERM, then SIGKILL to the whole group after a grace period), a
//! restart with the same command (the same ports), and the group killed when it is dropped.
//!
//! Only `std`: it is `common::process` for the tests, and benches that include a service runner
//! (`#[path]`) include it beside it as their own `process` module.

// Each includer uses part of it.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A new, empty folder under the system's temporary directory, named after `kind`, this test
/// process and a counter (short paths: services put their sockets there).
pub fn scratch_dir(kind: &str) -> PathBuf {
    scratch_in(&std::env::temp_dir(), &format!("ovlva-{kind}"))
}

/// A new, empty folder `NAME-PID-N` in `base`: N counts the folders this process made.
pub fn scratch_in(base: &Path, name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = base.join(format!(
        "{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    dir
}

/// `N` distinct TCP ports free on 127.0.0.1 right now (all bound at once, then let go), for a
/// service that is given its ports.
pub fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().expect("a bound port").port())
}

/// A service's child process: started, waited for, stopped and started again with the same
/// command.
pub struct Process {
    name: String,
    command: Box<dyn Fn() -> Command + Send>,
    log: PathBuf,
    child: Option<Child>,
}

impl Process {
    /// Starts `command()` (called again on each restart), its stdout and stderr appended to
    /// `log`; `name` names it in panics.
    pub fn start(
        name: &str,
        log: &Path,
        command: impl Fn() -> Command + Send + 'static,
    ) -> Process {
        let mut process = Process {
            name: name.to_string(),
            command: Box::new(command),
            log: log.to_path_buf(),
            child: None,
        };
        process.restart();
        process
    }

    /// Starts the command again (it must be stopped).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "{} is running", self.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap_or_else(|e| panic!("{}'s log {}: {e}", self.name, self.log.display()));
        let child = (self.command)()
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the log file"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("{} does not start: {e}", self.name));
        self.child = Some(child);
    }

    /// Waits until 127.0.0.1:`port` accepts a connection.
    pub fn wait_port(&mut self, port: u16, timeout: Duration) {
        self.wait_until(&format!("listening on {port}"), timeout, || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
    }

    /// Waits until `ready()` holds, checking every 20 ms; panics with the log's tail when the
    /// process exits first or `timeout` passes (`what` says what was waited for).
    pub fn wait_until(&mut self, what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
        let start = Instant::now();
        while !ready() {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                panic!("{} exited ({status}):\n{}", self.name, self.log_tail(60));
            }
            assert!(self.child.is_some(), "{} is not running", self.name);
            if start.elapsed() > timeout {
                self.kill();
                panic!(
                    "{} is not {what} after {} s:\n{}",
                    self.name,
                    timeout.as_secs(),
                    self.log_tail(60)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the process runs (started and not exited).
    pub fn running(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    /// The process's id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGTERM to the process, and waits `grace` for it to exit; then SIGKILL to its group (what
    /// it started and left behind too). Panics, after the kill, when it needed one.
    pub fn stop(&mut self, grace: Duration) {
        let clean = self.terminate(grace);
        assert!(
            clean,
            "{} did not exit within {} s of SIGTERM:\n{}",
            self.name,
            grace.as_secs(),
            self.log_tail(60)
        );
    }

    /// `stop` without the panic: whether the process exited on SIGTERM within `grace` (true when
    /// it was not running).
    pub fn terminate(&mut self, grace: Duration) -> bool {
        let Some(child) = self.child.as_ref() else {
            return true;
        };
        let pid = child.id();
        signal("TERM", &pid.to_string());
        let start = Instant::now();
        while !exited(pid) && start.elapsed() < grace {
            std::thread::sleep(Duration::from_millis(10));
        }
        let clean = exited(pid);
        self.kill();
        clean
    }

    /// SIGKILL to the process's group, and waits for the process.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // The process is not reaped yet, so its id (the group's) cannot have been reused.
            signal("KILL", &format!("-{}", child.id()));
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// CPU seconds its process group's live processes have used so far (the service and what it
    /// started, e.g. tritonserver and its Python backend stubs).
    pub fn cpu_seconds(&self) -> f64 {
        self.pid().map_or(0.0, group_cpu)
    }

    /// The log's path.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Everything the process printed so far (all its runs).
    pub fn log_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = self.log_text();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// The process group is killed when its test lets go of it.
impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `kill -SIG -- TARGET` (a pid, or `-PGID` for a group); quiet when it is gone already.
fn signal(sig: &str, target: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{sig}"), "--", target])
        .stderr(Stdio::null())
        .status();
}

/// The fields of /proc/`pid`/stat after the command's name (which is in parentheses and may hold
/// anything): the state first.
fn stat_fields(pid: &str) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// Whether the (unreaped) child `pid` has exited: gone, or a zombie.
fn exited(pid: u32) -> bool {
    stat_fields(&pid.to_string()).is_none_or(|f| f.first().is_none_or(|s| s == "Z" || s == "X"))
}

/// CPU seconds (user + system) of the live processes of process group `pgid`, from /proc.
fn group_cpu(pgid: u32) -> f64 {
    // Clock ticks per second: 100 on Linux (USER_HZ).
    const TICKS: f64 = 100.0;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    let pgid = pgid.to_string();
    let tick = |f: &[String], i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(stat_fields))
        // After the name: state, ppid, pgrp, ..., utime (12th) and stime (13th).
        .filter(|f| f.get(2) == Some(&pgid))
        .map(|f| (tick(&f, 11) + tick(&f, 12)) / TICKS)
        .sum()
}
