//! The streams of a server, by id: create or replace, read, list, delete; at most
//! `max-streams` of them; their definitions kept in a state folder so that they come back when
//! the server starts again.
//!
//! The state folder holds one `<id>.json` per stream: its definition as given (written to a
//! temporary file, synced, then renamed over the old one, so a crash leaves the old or the new
//! file, never half of one). Deleting a stream removes its file first. At start every
//! `<id>.json` is read, checked and started; one that no longer checks (a model removed from
//! the configuration) or cannot start is listed as `failed` with the reason, so it can be seen
//! and deleted.
//!
//! Slow work (stopping a stream flushes its outputs; starting one may compile a model) runs
//! without holding the registry's lock, so reads never wait for it; a second create, replace or
//! delete of the same id while one is under way is refused ([`Refused::Busy`]).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::spec::{SpecError, StreamSpec};
use super::status::Status;
use super::stream::Stream;
use super::video::VideoEnv;
use crate::config::ModelConfig;

/// Longest stream id.
pub const MAX_ID_LEN: usize = 64;
/// How long a deleted stream's final status stays readable.
pub const KEEP_DELETED: Duration = Duration::from_secs(600);
/// Deleted streams whose final status is kept at most.
pub const KEEP_DELETED_MAX: usize = 64;

/// The registry's settings: the `streams` section of the configuration (`state-dir`,
/// `max-streams`).
pub use crate::config::Streams as Options;

/// Why a create, replace or delete was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum Refused {
    /// The id is not a name this API takes (400).
    BadId(String),
    /// The definition does not check (400, with every reason).
    Invalid(SpecError),
    /// `max-streams` streams exist already (409).
    Full { max: usize },
    /// Another create, replace or delete of this id is under way (409).
    Busy,
    /// No stream with this id (404).
    NotFound,
    /// The stream checked but could not start: an element refused its settings, the model
    /// cannot be compiled, the output cannot be opened (400: the definition is at fault).
    Start(String),
    /// The definition cannot be saved in the state folder (500).
    Persist(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::BadId(e) => f.write_str(e),
            Refused::Invalid(e) => write!(f, "invalid stream: {e}"),
            Refused::Full { max } => write!(
                f,
                "{max} streams exist already, the most this server runs (max-streams in the \
                 \"streams\" section of its configuration): delete one, or raise max-streams"
            ),
            Refused::Busy => {
                f.write_str("another change of this stream is under way: retry when it is done")
            }
            Refused::NotFound => f.write_str("no such stream"),
            Refused::Start(e) => write!(f, "the stream cannot start: {e}"),
            Refused::Persist(e) => write!(f, "the stream cannot be saved: {e}"),
        }
    }
}

impl std::error::Error for Refused {}

/// What a create or replace did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    Created,
    Replaced,
}

/// A stream as `GET /streams` and `GET /streams/{id}` show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamInfo {
    pub id: String,
    /// The definition, credentials hidden.
    pub spec: StreamSpec,
    pub status: Status,
}

impl StreamInfo {
    /// The stream's definition (credentials hidden) and status now.
    pub fn of(stream: &Stream) -> StreamInfo {
        StreamInfo {
            id: stream.id().to_string(),
            spec: stream.spec().redacted(),
            status: stream.status(),
        }
    }
}

#[derive(Default)]
struct Inner {
    streams: BTreeMap<String, Arc<Stream>>,
    /// Ids with a create, replace or delete under way.
    busy: BTreeSet<String>,
    /// Deleted streams: their definition and final status, for a while.
    deleted: VecDeque<(Instant, StreamInfo)>,
}

pub struct Registry {
    models: BTreeMap<String, ModelConfig>,
    options: Options,
    video: VideoEnv,
    inner: Mutex<Inner>,
}

/// Takes the id off the busy set when the operation ends, however it ends.
struct BusyGuard<'a>(&'a Registry, String);

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        self.0.lock().busy.remove(&self.1);
    }
}

/// Checks a stream id: 1 to 64 of `A-Z a-z 0-9 . _ -`, not starting with `.` (it names a file).
pub fn check_id(id: &str) -> Result<(), Refused> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Refused::BadId(format!(
            "'{id}' is not a stream id: use 1 to {MAX_ID_LEN} letters, digits, '.', '_' or '-', \
             not starting with '.'"
        )))
    }
}

impl Registry {
    /// A registry of the given models. With a state folder (created if missing), the streams
    /// defined there are started; the texts returned say which could not be, and why.
    pub fn open(
        models: Vec<ModelConfig>,
        options: Options,
        video: VideoEnv,
    ) -> Result<(Registry, Vec<String>), String> {
        let registry = Registry {
            models: models.into_iter().map(|m| (m.name.clone(), m)).collect(),
            options,
            video,
            inner: Mutex::default(),
        };
        let mut notes = Vec::new();
        if let Some(dir) = registry.options.state_dir.clone() {
            std::fs::create_dir_all(&dir).map_err(|e| {
                format!(
                    "cannot create the streams' state folder {}: {e}",
                    dir.display()
                )
            })?;
            for (id, spec) in read_definitions(&dir, &mut notes)? {
                let stream = match spec.check(&registry.models) {
                    Ok(checked) => Stream::start(&id, checked, &registry.video)
                        .unwrap_or_else(|e| Stream::failed(&id, spec.clone(), e)),
                    Err(e) => Stream::failed(&id, spec.clone(), e.to_string()),
                };
                if let Some(error) = stream.status().error {
                    notes.push(format!("stream {id}: {error}"));
                }
                registry.lock().streams.insert(id, Arc::new(stream));
            }
        }
        Ok((registry, notes))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates the stream, or replaces the one with this id (stopped first, its outputs
    /// flushed). The definition is checked before anything else; on a refusal an existing
    /// stream is left as it was, except when the new one fails to start: the old one is then
    /// already stopped, and the id is gone.
    pub fn put(&self, id: &str, spec: StreamSpec) -> Result<(Put, StreamInfo), Refused> {
        check_id(id)?;
        let checked = spec.check(&self.models).map_err(Refused::Invalid)?;
        let old = {
            let mut inner = self.lock();
            if inner.busy.contains(id) {
                return Err(Refused::Busy);
            }
            let old = inner.streams.get(id).cloned();
            let being_created = inner
                .busy
                .iter()
                .filter(|b| !inner.streams.contains_key(*b))
                .count();
            if old.is_none() && inner.streams.len() + being_created >= self.options.max_streams {
                return Err(Refused::Full {
                    max: self.options.max_streams,
                });
            }
            inner.busy.insert(id.to_string());
            old
        };
        let _busy = BusyGuard(self, id.to_string());
        self.save(id, &spec).map_err(Refused::Persist)?;
        if let Some(old) = &old {
            old.stop();
        }
        match Stream::start(id, checked, &self.video) {
            Ok(stream) => {
                let info = StreamInfo::of(&stream);
                self.lock().streams.insert(id.to_string(), Arc::new(stream));
                let put = if old.is_some() {
                    Put::Replaced
                } else {
                    Put::Created
                };
                Ok((put, info))
            }
            Err(e) => {
                self.lock().streams.remove(id);
                let _ = self.forget(id);
                Err(Refused::Start(e))
            }
        }
    }

    /// Stops and removes the stream: EOS, outputs flushed (within its stop timeout), then
    /// stopped. Its definition leaves the state folder; its final status stays readable for
    /// [`KEEP_DELETED`].
    pub fn delete(&self, id: &str) -> Result<StreamInfo, Refused> {
        let stream = {
            let mut inner = self.lock();
            if inner.busy.contains(id) {
                return Err(Refused::Busy);
            }
            let stream = inner.streams.get(id).cloned().ok_or(Refused::NotFound)?;
            inner.busy.insert(id.to_string());
            stream
        };
        let _busy = BusyGuard(self, id.to_string());
        let forgotten = self.forget(id);
        stream.stop();
        let _ = std::fs::remove_dir_all(self.video.hls_dir(id));
        let info = StreamInfo::of(&stream);
        let mut inner = self.lock();
        inner.streams.remove(id);
        let now = Instant::now();
        inner
            .deleted
            .retain(|(at, i)| i.id != id && now.duration_since(*at) < KEEP_DELETED);
        if inner.deleted.len() == KEEP_DELETED_MAX {
            inner.deleted.pop_front();
        }
        inner.deleted.push_back((now, info.clone()));
        drop(inner);
        forgotten.map_err(Refused::Persist)?;
        Ok(info)
    }

    /// A stream's definition and status: a live one, or one deleted in the last
    /// [`KEEP_DELETED`].
    pub fn info(&self, id: &str) -> Option<StreamInfo> {
        let (stream, deleted) = {
            let inner = self.lock();
            (
                inner.streams.get(id).cloned(),
                inner
                    .deleted
                    .iter()
                    .rev()
                    .find(|(at, i)| i.id == id && at.elapsed() < KEEP_DELETED)
                    .map(|(_, i)| i.clone()),
            )
        };
        stream.map(|s| StreamInfo::of(&s)).or(deleted)
    }

    /// The stream itself, for its results (latest document, subscriptions).
    pub fn stream(&self, id: &str) -> Option<Arc<Stream>> {
        self.lock().streams.get(id).cloned()
    }

    /// Every stream (not the deleted ones), by id.
    pub fn list(&self) -> Vec<StreamInfo> {
        let streams: Vec<Arc<Stream>> = self.lock().streams.values().cloned().collect();
        streams.iter().map(|s| StreamInfo::of(s)).collect()
    }

    /// Stops every stream (outputs flushed, in parallel) and keeps their definitions: for the
    /// server's shutdown.
    pub fn shutdown(&self) {
        let streams: Vec<Arc<Stream>> = self.lock().streams.values().cloned().collect();
        std::thread::scope(|s| {
            for stream in &streams {
                s.spawn(|| stream.stop());
            }
        });
        self.video.rtsp.shutdown();
    }

    /// A file of stream `id`'s HLS output (`index.m3u8` or a segment), while the stream exists.
    pub fn hls_file(&self, id: &str, file: &str) -> Option<PathBuf> {
        let ours = file == super::video::PLAYLIST
            || file
                .strip_prefix("segment")
                .and_then(|f| f.strip_suffix(".ts"))
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        (ours && check_id(id).is_ok() && self.lock().streams.contains_key(id))
            .then(|| self.video.hls_dir(id).join(file))
    }

    fn definition_path(&self, id: &str) -> Option<PathBuf> {
        self.options
            .state_dir
            .as_ref()
            .map(|d| d.join(format!("{id}.json")))
    }

    /// Saves a definition: temporary file, sync, rename, sync the folder. The file is readable by
    /// the server's user only: a definition may hold credentials (an output's password or token).
    fn save(&self, id: &str, spec: &StreamSpec) -> Result<(), String> {
        let Some(path) = self.definition_path(id) else {
            return Ok(());
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        let tmp = dir.join(format!(".{id}.json.tmp"));
        let text = serde_json::to_vec_pretty(spec).map_err(|e| e.to_string())?;
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            file.write_all(&text)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            std::fs::File::open(dir)?.sync_all()
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!("cannot write {}: {e}", path.display())
        })
    }

    /// Removes a definition from the state folder.
    fn forget(&self, id: &str) -> Result<(), String> {
        let Some(path) = self.definition_path(id) else {
            return Ok(());
        };
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("cannot remove {}: {e}", path.display())),
        }
    }
}

/// The definitions of a state folder, by id; unreadable ones are noted and left out (their
/// file stays, for a person to look at).
fn read_definitions(
    dir: &Path,
    notes: &mut Vec<String>,
) -> Result<Vec<(String, StreamSpec)>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        format!(
            "cannot read the streams' state folder {}: {e}",
            dir.display()
        )
    })?;
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(id) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".json"))
        else {
            continue;
        };
        if check_id(id).is_err() {
            continue;
        }
        match std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|text| StreamSpec::from_json(&text).map_err(|e| e.to_string()))
        {
            Ok(spec) => found.push((id.to_string(), spec)),
            Err(e) => notes.push(format!(
                "stream {id}: {} cannot be read, left out: {e}",
                path.display()
            )),
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_files_safely() {
        for good in ["cam1", "door.front", "a_b-c", &"x".repeat(64)] {
            assert!(check_id(good).is_ok(), "{good}");
        }
        for bad in ["", ".hidden", "a/b", "..", "a b", "é", &"x".repeat(65)] {
            assert!(matches!(check_id(bad), Err(Refused::BadId(_))), "{bad}");
        }
    }

    #[test]
    fn definitions_are_read_by_id_and_bad_files_noted() {
        let dir = std::env::temp_dir().join(format!("ovlva-defs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let spec = r#"{"source": {"uri": "rtsp://h/x"}, "model": "m"}"#;
        std::fs::write(dir.join("b.json"), spec).unwrap();
        std::fs::write(dir.join("a.json"), spec).unwrap();
        std::fs::write(dir.join("broken.json"), "{").unwrap();
        std::fs::write(dir.join(".a.json.tmp"), "{").unwrap();
        std::fs::write(dir.join("notes.txt"), "x").unwrap();
        let mut notes = Vec::new();
        let found = read_definitions(&dir, &mut notes).unwrap();
        let ids: Vec<&str> = found.iter().map(|(i, _)| i.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("broken.json"), "{notes:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
