//! A real Kafka-protocol broker for a test: PyPI `noida-db` (installed into `.venv` by
//! `scripts/setup.sh`), on a free port of 127.0.0.1 with a data folder of its own, killed when the
//! test lets go of it; and an independent consumer (`scripts/kafka_consume.py`, kafka-python).
//!
//! What noida-db does (checked with librdkafka 2.0.2 and kafka-python 3.0.12): topics are created
//! on first use with one partition (more through `create_topic`); keys, acks=all and idempotent
//! producers work. It keeps its log in `DATA/kafka.json`, written on SIGTERM and about every half
//! second: `stop` (SIGTERM) keeps every acknowledged record, `kill` (SIGKILL) can lose those of the
//! last half second, after which an idempotent producer's next batch fails with a fatal
//! OutOfOrderSequenceNumber.

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::{free_port, root};

/// The noida-db executable: `NOIDA_DB_BIN` when set, else the one inside the `noida_db` package
/// of `.venv` (run directly: its `.venv/bin/noida-db` wrapper would leave it running when killed).
pub fn binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(bin) = std::env::var("NOIDA_DB_BIN") {
            return PathBuf::from(bin);
        }
        let out = Command::new(python())
            .args([
                "-c",
                "import noida_db, os; print(os.path.join(os.path.dirname(noida_db.__file__), 'noida-db'))",
            ])
            .output()
            .expect("the virtualenv's python runs: run `make setup` first");
        assert!(
            out.status.success(),
            "noida-db is not installed in .venv: run `make setup` first ({})",
            String::from_utf8_lossy(&out.stderr)
        );
        let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        assert!(bin.exists(), "{} is missing: run `make setup`", bin.display());
        bin
    })
    .clone()
}

/// The project's virtualenv's Python (kafka-python is installed there).
pub fn python() -> PathBuf {
    root().join(".venv/bin/python")
}

/// A running (or stopped, to be started again) noida-db serving only Kafka.
pub struct Broker {
    child: Option<Child>,
    pub port: u16,
    pub data_dir: PathBuf,
    log: PathBuf,
}

impl Broker {
    /// Starts a broker on a free port with a new, empty data folder.
    pub fn start() -> Broker {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ovlva-kafka-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a data folder");
        let mut broker = Broker {
            child: None,
            port: free_port(),
            log: dir.with_extension("log"),
            data_dir: dir,
        };
        broker.restart();
        broker
    }

    /// `host:port`, for `brokers` and `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts the broker again (same port, same data) and waits until it accepts connections.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "the broker is running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("a log file");
        let child = Command::new(binary())
            .args(["start", "--only", "kafka", "--kafka-port"])
            .arg(self.port.to_string())
            .arg("--data-dir")
            .arg(&self.data_dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("noida-db starts");
        self.child = Some(child);
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                panic!("noida-db exited ({status}): {}", self.log_text());
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "noida-db does not listen on {} after 30 s: {}",
                self.port,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM and wait: noida-db saves its log first, so every acknowledged record survives.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("noida-db did not exit within 10 s of SIGTERM");
    }

    /// SIGKILL: records acknowledged in the last half second may be lost (see the module's doc).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// What the broker printed so far.
    pub fn log_text(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    /// Creates `topic` with `partitions` partitions (kafka-python's admin client).
    pub fn create_topic(&self, topic: &str, partitions: u32) {
        let out = consume_script(&self.bootstrap(), topic)
            .args([
                "--create-partitions",
                &partitions.to_string(),
                "--count",
                "0",
            ])
            .output()
            .expect("kafka_consume.py runs");
        assert!(
            out.status.success(),
            "creating {topic}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Every record of `topic` as it is now (from the beginning to each partition's end).
    pub fn records(&self, topic: &str) -> Vec<Record> {
        self.consume(topic, None, Duration::from_secs(30))
    }

    /// Waits for `count` records of `topic` (then also reads whatever else it holds by then), for
    /// `timeout` at most; returns what came.
    pub fn wait_records(&self, topic: &str, count: usize, timeout: Duration) -> Vec<Record> {
        self.consume(topic, Some(count), timeout)
    }

    fn consume(&self, topic: &str, count: Option<usize>, timeout: Duration) -> Vec<Record> {
        let mut cmd = consume_script(&self.bootstrap(), topic);
        cmd.args(["--timeout", &timeout.as_secs_f64().to_string()]);
        if let Some(n) = count {
            cmd.args(["--count", &n.to_string()]);
        }
        let out = cmd.output().expect("kafka_consume.py runs");
        assert!(
            out.status.code() != Some(1),
            "kafka_consume.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
            .collect()
    }
}

fn consume_script(bootstrap: &str, topic: &str) -> Command {
    let mut cmd = Command::new(python());
    cmd.arg(root().join("scripts/kafka_consume.py")).args([
        "--bootstrap",
        bootstrap,
        "--topic",
        topic,
    ]);
    cmd
}

/// The broker is killed and its data removed when its test lets go of it.
impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
        remove_quietly(&self.data_dir);
        let _ = std::fs::remove_file(&self.log);
    }
}

fn remove_quietly(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}

/// One record as `scripts/kafka_consume.py` prints it.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub value: Option<String>,
    pub timestamp: i64,
}
