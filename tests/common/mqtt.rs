//! A real MQTT broker for a test: Debian's `mosquitto` (installed by `scripts/setup.sh`) on a
//! free port of 127.0.0.1 with its own folder (config, persistence, log), killed when the test
//! lets go of it; and an independent consumer, `mosquitto_sub` with a persistent session
//! (`-c -i ID`, QoS 1), so that what is published while it reconnects after a broker restart
//! is kept for it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::free_port;

use super::process::{Process, scratch_dir};

/// A scratch folder for a test's files (spool, certificates).
pub fn scratch(kind: &str) -> PathBuf {
    scratch_dir(kind)
}

fn mosquitto() -> &'static str {
    for bin in ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"] {
        if Path::new(bin).exists() {
            return bin;
        }
    }
    panic!("mosquitto is not installed: run `make setup` (Debian package mosquitto)");
}

/// A running (or stopped, to be started again) mosquitto. `user root` keeps it from switching to
/// the `mosquitto` user when the tests run as root (it could then not write its persistence file
/// nor read the test's keys); it is ignored otherwise.
pub struct Broker {
    process: Process,
    pub port: u16,
    pub dir: PathBuf,
}

impl Broker {
    /// A broker that lets anyone in.
    pub fn start() -> Broker {
        Broker::start_with(true, "")
    }

    /// A broker with `extra` configuration lines for its listener (password_file, certfile, ...).
    pub fn start_with(anonymous: bool, extra: &str) -> Broker {
        let dir = scratch_dir("mqtt");
        let port = free_port();
        let conf = dir.join("mosquitto.conf");
        let text = format!(
            "user root\npersistence true\npersistence_location {}/\nlog_dest stderr\n\
             log_type all\n\
             listener {port} 127.0.0.1\nallow_anonymous {anonymous}\n{extra}\n",
            dir.display()
        );
        std::fs::write(&conf, text).expect("the broker's config");
        let process = Process::start("mosquitto", &dir.join("mosquitto.log"), move || {
            let mut command = Command::new(mosquitto());
            command.arg("-c").arg(&conf);
            command
        });
        let mut broker = Broker { process, port, dir };
        broker.wait();
        broker
    }

    fn wait(&mut self) {
        self.process.wait_port(self.port, Duration::from_secs(10));
    }

    /// Starts the broker again (same port, same config and persistence) and waits until it
    /// accepts connections.
    pub fn restart(&mut self) {
        self.process.restart();
        self.wait();
    }

    /// SIGTERM and wait: mosquitto saves its sessions first and closes every connection.
    pub fn stop(&mut self) {
        self.process.stop(Duration::from_secs(10));
    }

    /// What the broker logged so far.
    pub fn log_text(&self) -> String {
        self.process.log_text()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.process.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `mosquitto_sub` subscribed to one topic at QoS 1 with a persistent session, writing each
/// message's payload on a line of a file.
pub struct Subscriber {
    child: Child,
    out: PathBuf,
    dir: PathBuf,
}

/// The payload the subscriber is checked with before a test publishes; left out of `lines`.
const PROBE: &str = "ovlva-probe";

impl Subscriber {
    /// Subscribes to `topic` and waits until it receives; `args` adds connection options
    /// (`-u`, `-P`, `--cafile`, ...), which are also used for the probe.
    pub fn start(broker: &Broker, topic: &str, args: &[&str]) -> Subscriber {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = scratch_dir("mqtt-sub");
        let out = dir.join("messages.txt");
        let id = format!(
            "ovlva-test-sub-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let port = broker.port.to_string();
        let child = Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &port, "-t", topic, "-q", "1", "-c"])
            .args(["-i", &id])
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).expect("the subscriber's output"))
            .stderr(std::fs::File::create(dir.join("stderr.txt")).expect("stderr file"))
            .spawn()
            .expect("mosquitto_sub runs (Debian package mosquitto-clients: run `make setup`)");
        let sub = Subscriber { child, out, dir };
        let start = Instant::now();
        loop {
            let _ = Command::new("mosquitto_pub")
                .args(["-h", "127.0.0.1", "-p", &port, "-t", topic, "-q", "1"])
                .args(["-m", PROBE])
                .args(args)
                .stderr(Stdio::null())
                .status();
            std::thread::sleep(Duration::from_millis(50));
            if sub.raw().contains(PROBE) {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "mosquitto_sub receives nothing: {}",
                std::fs::read_to_string(sub.dir.join("stderr.txt")).unwrap_or_default()
            );
        }
        sub
    }

    fn raw(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// The payloads received so far, one per line, without probes and blank lines.
    pub fn lines(&self) -> Vec<String> {
        self.raw()
            .lines()
            .filter(|l| !l.trim().is_empty() && *l != PROBE)
            .map(str::to_string)
            .collect()
    }

    /// Waits until `n` payloads came (or `timeout`), then a little more for stragglers.
    pub fn wait_lines(&self, n: usize, timeout: Duration) -> Vec<String> {
        let start = Instant::now();
        while self.lines().len() < n && start.elapsed() < timeout {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(200));
        self.lines()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
