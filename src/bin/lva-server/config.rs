//! The configuration file (JSON) and command line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Model-entry keys the server keeps for itself; every other key is an `ovinfer` property.
const SERVER_KEYS: [&str; 4] = ["workers", "max-queue", "subtype", "description"];

/// Names a model cannot have: the server's own routes (`/streams`, `/models`, `/console`,
/// `/v2`: KServe's protocol, ...).
pub const RESERVED_NAMES: [&str; 6] = [
    "streams",
    "models",
    "healthz",
    "openapi.json",
    "v2",
    "console",
];

/// The streams' state folder when the configuration does not name one: beside the
/// configuration file.
pub const DEFAULT_STATE_DIR: &str = "lva-server-state";

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// Address and port to listen on.
    #[serde(default = "defaults::listen")]
    pub listen: String,
    /// Address and port of the KServe v2 gRPC API (docs/kserve.md); none: no gRPC.
    #[serde(default)]
    pub grpc_listen: Option<String>,
    /// Largest request body accepted, in bytes (413 above).
    #[serde(default = "defaults::max_body_bytes")]
    pub max_body_bytes: u64,
    /// Largest decoded image accepted, in pixels (400 above): guards memory against small files
    /// that decode to huge pictures.
    #[serde(default = "defaults::max_pixels")]
    pub max_pixels: u64,
    /// Connections served at once; more are answered 503 and closed.
    #[serde(default = "defaults::max_connections")]
    pub max_connections: usize,
    /// Time an admitted request may wait for a free worker, in ms (503 when it runs out).
    #[serde(default = "defaults::queue_timeout_ms")]
    pub queue_timeout_ms: u64,
    /// Keep-alive connections idle longer than this are closed, in ms.
    #[serde(default = "defaults::idle_timeout_ms")]
    pub idle_timeout_ms: u64,
    /// A request head must arrive whole within this from its first byte, in ms (else the
    /// connection is closed): slow heads (slowloris) cannot hold a connection.
    #[serde(default = "defaults::header_timeout_ms")]
    pub header_timeout_ms: u64,
    /// A request body must arrive whole within this from the end of its head, in ms (else 408
    /// and the connection is closed); also how long a response may wait for a client that
    /// does not read it.
    #[serde(default = "defaults::body_timeout_ms")]
    pub body_timeout_ms: u64,
    /// On SIGTERM/SIGINT, how long in-flight requests may take to finish, in ms.
    #[serde(default = "defaults::shutdown_timeout_ms")]
    pub shutdown_timeout_ms: u64,
    /// Seconds in the Retry-After header of 503 answers.
    #[serde(default = "defaults::retry_after_s")]
    pub retry_after_s: u32,
    /// How long the 503 to a request for a busy model is held back, in ms: clients that ignore
    /// Retry-After and resend at once cannot take the CPU the inference needs.
    #[serde(default = "defaults::busy_delay_ms")]
    pub busy_delay_ms: u64,
    #[serde(default)]
    pub tls: Option<Tls>,
    #[serde(default)]
    pub auth: Option<Auth>,
    /// The streams API (`/streams`).
    #[serde(default)]
    pub streams: Streams,
    pub models: BTreeMap<String, ModelEntry>,
}

/// The `streams` section, also the streams registry's options (`streams::Options`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Streams {
    /// Folder of the stream definitions, restarted when the server starts again (created if
    /// missing), relative to the configuration's folder; default: `lva-server-state` beside the
    /// configuration file. Always set once the configuration is read (`None`, for the
    /// registry's own tests only: nothing kept).
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// Streams at once (any state but deleted); a further create is refused (409).
    #[serde(default = "defaults::max_streams")]
    pub max_streams: usize,
    /// Port of the RTSP server of the streams' `outputs.video.rtsp`, on the `listen` address;
    /// it listens from the first stream with such an output. 0: no RTSP server.
    #[serde(default = "defaults::rtsp_port")]
    pub rtsp_port: u16,
}

impl Default for Streams {
    fn default() -> Self {
        Streams {
            state_dir: None,
            max_streams: defaults::max_streams(),
            rtsp_port: defaults::rtsp_port(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    #[serde(default)]
    pub basic: Vec<BasicUser>,
    #[serde(default)]
    pub bearer: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicUser {
    pub user: String,
    pub password: String,
}

/// One model entry as written in the file: server keys plus `ovinfer` properties.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ModelEntry(BTreeMap<String, serde_json::Value>);

/// A model entry, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    pub name: String,
    /// Pipelines running requests for this model at once.
    pub workers: usize,
    /// Requests waiting for a worker before 503.
    pub max_queue: usize,
    /// lvajson's `subtype`.
    pub subtype: Option<String>,
    pub description: Option<String>,
    /// `ovinfer` properties as strings (paths made absolute), e.g. model, labels, decoder.
    pub properties: BTreeMap<String, String>,
}

impl ModelConfig {
    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties.get(name).map(String::as_str)
    }
}

mod defaults {
    pub fn listen() -> String {
        "127.0.0.1:5000".into()
    }
    pub fn max_body_bytes() -> u64 {
        16 * 1024 * 1024
    }
    pub fn max_pixels() -> u64 {
        50_000_000
    }
    pub fn max_connections() -> usize {
        128
    }
    pub fn queue_timeout_ms() -> u64 {
        10_000
    }
    pub fn idle_timeout_ms() -> u64 {
        60_000
    }
    pub fn header_timeout_ms() -> u64 {
        10_000
    }
    pub fn body_timeout_ms() -> u64 {
        30_000
    }
    pub fn shutdown_timeout_ms() -> u64 {
        30_000
    }
    pub fn retry_after_s() -> u32 {
        1
    }
    pub fn busy_delay_ms() -> u64 {
        100
    }
    pub fn max_streams() -> usize {
        16
    }
    pub fn rtsp_port() -> u16 {
        8554
    }
}

/// Workers per model when the file does not say: one per core, as a throughput-hinted model
/// runs one stream per core on CPU.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

impl Config {
    /// Reads and checks a configuration file. Relative paths in it are relative to its folder.
    pub fn load(path: &Path) -> Result<(Config, Vec<ModelConfig>), String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the configuration {}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::parse(&text, base).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str, base: &Path) -> Result<(Config, Vec<ModelConfig>), String> {
        let mut config: Config = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if config.models.is_empty() {
            return Err("\"models\" is empty: configure at least one model".into());
        }
        if config.max_connections == 0
            || config.queue_timeout_ms == 0
            || config.header_timeout_ms == 0
            || config.body_timeout_ms == 0
            || config.idle_timeout_ms == 0
        {
            return Err(
                "max-connections, queue-timeout-ms, idle-timeout-ms, header-timeout-ms \
                        and body-timeout-ms must be above 0"
                    .into(),
            );
        }
        if let Some(tls) = config.tls.as_mut() {
            tls.cert = base.join(&tls.cert);
            tls.key = base.join(&tls.key);
        }
        let state_dir = config
            .streams
            .state_dir
            .take()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
        config.streams.state_dir = Some(base.join(state_dir));
        if let Some(auth) = &config.auth
            && auth.basic.is_empty()
            && auth.bearer.is_empty()
        {
            return Err("\"auth\" lists no basic user and no bearer token".into());
        }
        let models = config
            .models
            .iter()
            .map(|(name, entry)| {
                model_config(name, entry, base).map_err(|e| format!("model \"{name}\": {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((config, models))
    }

    pub fn queue_timeout(&self) -> Duration {
        Duration::from_millis(self.queue_timeout_ms)
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }

    pub fn header_timeout(&self) -> Duration {
        Duration::from_millis(self.header_timeout_ms)
    }

    pub fn body_timeout(&self) -> Duration {
        Duration::from_millis(self.body_timeout_ms)
    }

    pub fn busy_delay(&self) -> Duration {
        Duration::from_millis(self.busy_delay_ms)
    }

    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_millis(self.shutdown_timeout_ms)
    }
}

fn model_config(name: &str, entry: &ModelEntry, base: &Path) -> Result<ModelConfig, String> {
    if name.is_empty() || name.contains(['/', '?', '#', '%']) || name.chars().any(char::is_control)
    {
        return Err("a model name must be a non-empty URL path segment".into());
    }
    if RESERVED_NAMES.contains(&name) {
        return Err(format!(
            "the name is one of the server's routes (/{}): name the model otherwise",
            RESERVED_NAMES.join(", /")
        ));
    }
    let count = |key: &str, default: usize| -> Result<usize, String> {
        match entry.0.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| format!("\"{key}\" must be a whole number")),
        }
    };
    let text = |key: &str| -> Result<Option<String>, String> {
        match entry.0.get(key) {
            None => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("\"{key}\" must be a string")),
        }
    };
    let workers = count("workers", default_workers())?;
    if workers == 0 {
        return Err("\"workers\" must be at least 1".into());
    }
    let mut properties = BTreeMap::new();
    for (key, value) in entry
        .0
        .iter()
        .filter(|(k, _)| !SERVER_KEYS.contains(&k.as_str()))
    {
        let value = match value {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            _ => return Err(format!("\"{key}\" must be a string, number or boolean")),
        };
        let value = if matches!(key.as_str(), "model" | "labels") && !value.is_empty() {
            let path = base.join(value);
            path.canonicalize()
                .unwrap_or(path)
                .to_string_lossy()
                .into_owned()
        } else {
            value
        };
        properties.insert(key.clone(), value);
    }
    if !properties.contains_key("model") {
        return Err("no \"model\" file given".into());
    }
    Ok(ModelConfig {
        name: name.to_string(),
        workers,
        max_queue: count("max-queue", 2 * workers)?,
        subtype: text("subtype")?,
        description: text("description")?,
        properties,
    })
}

/// Command line: `lva-server [--config FILE] [--listen ADDR]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Args {
    pub config: PathBuf,
    pub listen: Option<String>,
}

pub const USAGE: &str = "usage: lva-server [--config FILE] [--listen ADDRESS:PORT]\n\
    Serves the LVA HTTP extension contract: POST /<model> with an image, get {\"inferences\":[...]}.\n\
    --config   JSON configuration (default: lva-server.json); see docs/lva-server.md\n\
    --listen   overrides \"listen\" from the configuration, e.g. 0.0.0.0:5000";

impl Args {
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
        let mut parsed = Args {
            config: PathBuf::from("lva-server.json"),
            listen: None,
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
                _ => (arg.clone(), None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| format!("{flag} needs a value"))
            };
            match flag.as_str() {
                "--config" | "-c" => parsed.config = PathBuf::from(value()?),
                "--listen" | "-l" => parsed.listen = Some(value()?),
                "--help" | "-h" => return Err(String::new()),
                other => return Err(format!("unknown argument '{other}'")),
            }
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_full_configuration() {
        let (config, models) = Config::parse(
            r#"{
              "listen": "0.0.0.0:8080",
              "grpc-listen": "0.0.0.0:9000",
              "max-body-bytes": 1000,
              "tls": {"cert": "c.pem", "key": "k.pem"},
              "auth": {"basic": [{"user": "lva", "password": "pw"}], "bearer": ["t0k"]},
              "models": {
                "vehicles": {"model": "m/ssd.xml", "labels": "/abs/coco.txt", "decoder": "ssd",
                             "threshold": 0.6, "workers": 3, "subtype": "cars",
                             "description": "SSD"}
              }
            }"#,
            Path::new("/etc/lva"),
        )
        .unwrap();
        assert_eq!(config.listen, "0.0.0.0:8080");
        assert_eq!(config.grpc_listen.as_deref(), Some("0.0.0.0:9000"));
        assert_eq!(config.max_body_bytes, 1000);
        assert_eq!(config.retry_after_s, 1);
        assert_eq!(
            (config.header_timeout_ms, config.body_timeout_ms),
            (10_000, 30_000)
        );
        assert_eq!(config.tls.unwrap().cert, PathBuf::from("/etc/lva/c.pem"));
        assert_eq!(config.auth.unwrap().bearer, vec!["t0k".to_string()]);
        assert_eq!(
            config.streams,
            Streams {
                state_dir: Some(PathBuf::from("/etc/lva/lva-server-state")),
                max_streams: 16,
                rtsp_port: 8554,
            }
        );
        let m = &models[0];
        assert_eq!(m.name, "vehicles");
        assert_eq!((m.workers, m.max_queue), (3, 6));
        assert_eq!(m.subtype.as_deref(), Some("cars"));
        assert_eq!(m.property("model"), Some("/etc/lva/m/ssd.xml"));
        assert_eq!(m.property("labels"), Some("/abs/coco.txt"));
        assert_eq!(m.property("threshold"), Some("0.6"));
        assert_eq!(m.property("decoder"), Some("ssd"));
        assert_eq!(m.property("workers"), None);
    }

    #[test]
    fn refuses_bad_configurations_with_the_reason() {
        let err = |text: &str| Config::parse(text, Path::new(".")).unwrap_err();
        assert!(err(r#"{"models": {}}"#).contains("at least one model"));
        assert!(err(r#"{"models": {"a": {"labels": "x"}}}"#).contains("no \"model\""));
        assert!(err(r#"{"models": {"a/b": {"model": "x"}}}"#).contains("path segment"));
        for reserved in RESERVED_NAMES {
            let text = format!(r#"{{"models": {{"{reserved}": {{"model": "x"}}}}}}"#);
            assert!(
                err(&text).contains("one of the server's routes"),
                "{reserved}"
            );
        }
        assert!(
            err(r#"{"streams": {"max": 1}, "models": {"a": {"model": "x"}}}"#)
                .contains("unknown field `max`")
        );
        assert!(err(r#"{"models": {"a": {"model": "x", "workers": 0}}}"#).contains("at least 1"));
        assert!(err(r#"{"models": {"a": {"model": "x", "workers": "2"}}}"#).contains("whole"));
        assert!(err(r#"{"models": {"a": {"model": ["x"]}}}"#).contains("string, number"));
        assert!(err(r#"{"lissen": "x", "models": {}}"#).contains("unknown field `lissen`"));
        assert!(err(r#"{"auth": {}, "models": {"a": {"model": "x"}}}"#).contains("no basic"));
        assert!(
            err(r#"{"header-timeout-ms": 0, "models": {"a": {"model": "x"}}}"#)
                .contains("header-timeout-ms")
        );
    }

    #[test]
    fn the_streams_state_folder_is_relative_to_the_configuration() {
        let parse = |streams: &str| {
            let text = format!(r#"{{{streams} "models": {{"a": {{"model": "x"}}}}}}"#);
            Config::parse(&text, Path::new("/srv/lva"))
                .unwrap()
                .0
                .streams
        };
        let relative = parse(r#""streams": {"state-dir": "state", "max-streams": 2},"#);
        assert_eq!(relative.state_dir, Some(PathBuf::from("/srv/lva/state")));
        assert_eq!(relative.max_streams, 2);
        let absolute = parse(r#""streams": {"state-dir": "/var/lib/lva"},"#);
        assert_eq!(absolute.state_dir, Some(PathBuf::from("/var/lib/lva")));
        assert_eq!(absolute.max_streams, 16);
    }

    #[test]
    fn parses_the_command_line() {
        let parse = |a: &[&str]| Args::parse(a.iter().map(|s| s.to_string()));
        assert_eq!(
            parse(&["--config", "a.json", "--listen=0.0.0.0:1"]).unwrap(),
            Args {
                config: "a.json".into(),
                listen: Some("0.0.0.0:1".into())
            }
        );
        assert_eq!(parse(&[]).unwrap().config, PathBuf::from("lva-server.json"));
        assert!(parse(&["--config"]).unwrap_err().contains("needs a value"));
        assert!(parse(&["--bogus"]).unwrap_err().contains("unknown"));
        assert_eq!(parse(&["-h"]).unwrap_err(), "");
    }
}

/// Property tests of the configuration and command line (`cargo test`; fuzzing: fuzz/).
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    fn name() -> impl Strategy<Value = String> {
        proptest::collection::vec(prop::sample::select(b"abz09-_.".to_vec()), 1..10)
            .prop_map(|b| String::from_utf8(b).unwrap())
    }

    proptest! {
        #[test]
        fn numbers_and_models_read_back(
            max_body in any::<u64>(), max_pixels in any::<u64>(),
            connections in 1usize..1000, queue_ms in 1u64..100_000, retry in any::<u32>(),
            models in proptest::collection::btree_map(name(), (1usize..16, any::<bool>()), 1..4),
        ) {
            let entries: Vec<String> = models
                .iter()
                .map(|(n, (workers, with_queue))| {
                    let queue = if *with_queue { format!(r#", "max-queue": {}"#, workers + 1) } else { String::new() };
                    format!(r#""{n}": {{"model": "{n}.xml", "workers": {workers}, "threshold": 0.5{queue}}}"#)
                })
                .collect();
            let text = format!(
                r#"{{"max-body-bytes": {max_body}, "max-pixels": {max_pixels},
                    "max-connections": {connections}, "queue-timeout-ms": {queue_ms},
                    "retry-after-s": {retry}, "models": {{{}}}}}"#,
                entries.join(",")
            );
            let (config, parsed) = Config::parse(&text, Path::new("/base")).expect("valid");
            prop_assert_eq!(
                (config.max_body_bytes, config.max_pixels, config.max_connections),
                (max_body, max_pixels, connections)
            );
            prop_assert_eq!((config.queue_timeout_ms, config.retry_after_s), (queue_ms, retry));
            prop_assert_eq!(parsed.len(), models.len());
            for (m, (n, (workers, with_queue))) in parsed.iter().zip(&models) {
                prop_assert_eq!(&m.name, n);
                prop_assert_eq!(m.workers, *workers);
                prop_assert_eq!(m.max_queue, if *with_queue { workers + 1 } else { 2 * workers });
                let model = format!("/base/{n}.xml");
                prop_assert_eq!(m.property("model"), Some(model.as_str()));
                prop_assert_eq!(m.property("threshold"), Some("0.5"));
            }
        }

        #[test]
        fn model_names_that_are_not_a_path_segment_are_refused(
            bad in prop::sample::select(vec!["", "a/b", "a?b", "#", "a%20", "a\tb", "\u{7f}"]),
        ) {
            let text = format!(r#"{{"models": {{"{}": {{"model": "m.xml"}}}}}}"#, bad.escape_default());
            prop_assert!(Config::parse(&text, Path::new(".")).is_err());
        }

        #[test]
        fn the_command_line_reads_back(config in name(), listen in name(), inline in any::<bool>()) {
            let args: Vec<String> = if inline {
                vec![format!("--config={config}"), format!("--listen={listen}")]
            } else {
                vec!["-c".into(), config.clone(), "-l".into(), listen.clone()]
            };
            let parsed = Args::parse(args).expect("valid");
            prop_assert_eq!(parsed.config, PathBuf::from(&config));
            prop_assert_eq!(parsed.listen, Some(listen));
        }
    }
}
