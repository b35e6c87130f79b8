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

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use super::{free_port, python, root};

use super::process::{Process, scratch_dir};

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

/// A running (or stopped, to be started again) noida-db serving only Kafka.
pub struct Broker {
    process: Process,
    pub port: u16,
    pub data_dir: PathBuf,
    dir: PathBuf,
}

impl Broker {
    /// Starts a broker on a free port with a new, empty data folder.
    pub fn start() -> Broker {
        let dir = scratch_dir("kafka");
        let data_dir = dir.join("data");
        std::fs::create_dir_all(&data_dir).expect("a data folder");
        let port = free_port();
        let data = data_dir.clone();
        let process = Process::start("noida-db", &dir.join("noida-db.log"), move || {
            let mut command = Command::new(binary());
            command
                .args(["start", "--only", "kafka", "--kafka-port"])
                .arg(port.to_string())
                .arg("--data-dir")
                .arg(&data);
            command
        });
        let mut broker = Broker {
            process,
            port,
            data_dir,
            dir,
        };
        broker.wait();
        broker
    }

    fn wait(&mut self) {
        self.process.wait_port(self.port, Duration::from_secs(30));
    }

    /// `host:port`, for `brokers` and `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts the broker again (same port, same data) and waits until it accepts connections.
    pub fn restart(&mut self) {
        self.process.restart();
        self.wait();
    }

    /// SIGTERM and wait: noida-db saves its log first, so every acknowledged record survives.
    pub fn stop(&mut self) {
        self.process.stop(Duration::from_secs(10));
    }

    /// SIGKILL: records acknowledged in the last half second may be lost (see the module's doc).
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// What the broker printed so far.
    pub fn log_text(&self) -> String {
        self.process.log_text()
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
        let _ = std::fs::remove_dir_all(&self.dir);
    }
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
