//! A stream's video outputs (`outputs.video`): the frames out of the last analysis stage
//! (`ovinfer`, or `ovtrack`/`ovanalytics` when the stream has them), with the boxes drawn
//! (`ovoverlay`) or clean, encoded once to H.264 and shared by every output:
//!
//! ```text
//! ovinfer [! ovtrack [! ovanalytics]] ─ tee ─ queue ! lvajson ! ... (the documents)
//!                                         └ queue ! videoconvert ! ovoverlay ! videoconvert ! x264enc ! tee
//!                                             ├ queue ! h264parse ! appsink → the RTSP mount (lva-server's RTSP server)
//!                                             ├ queue ! h264parse ! appsink → the push ([`super::push`], reconnecting)
//!                                             ├ queue ! h264parse ! hlssink2 (playlist and segments in the state folder)
//!                                             └ queue ! h264parse ! splitmuxsink (MP4 files of `segment-s`, oldest deleted)
//! ```
//!
//! | key | type | default | meaning |
//! |---|---|---|---|
//! | `overlay` | bool or object | `true` | draw the boxes and labels; an object: drawn with these `ovoverlay` properties (`label-colors`, `line-width`, ...) |
//! | `bitrate` | integer | `2000` | kbit/s of the H.264 encode (100 to 50000) |
//! | `rtsp.path` | string | `/streams/{id}` | mount on lva-server's RTSP server |
//! | `push.location` | string | | `rtsp://` URL of another server's RECORD mount |
//! | `hls.segment-s` | integer | `2` | target segment length, s (1 to 10) |
//! | `hls.window` | integer | `5` | segments in the playlist (2 to 30); older ones are deleted |
//! | `record.folder` | string | | absolute folder of the MP4 files (created if missing) |
//! | `record.segment-s` | integer | `60` | longest file, s (1 to 86400), cut at a key frame |
//! | `record.max-files` | integer | `10` | files kept per stream, the oldest deleted (0: all) |

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use gst::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::spec::{element_properties, is_url, set_own};

use super::push::{PushStatus, Pusher};
use crate::rtsp::{Mount, RtspService};

const DEFAULT_BITRATE: u32 = 2000;
const DEFAULT_HLS_SEGMENT_S: u32 = 2;
const DEFAULT_HLS_WINDOW: u32 = 5;
const DEFAULT_RECORD_SEGMENT_S: u64 = 60;
const DEFAULT_RECORD_MAX_FILES: u32 = 10;
/// The HLS playlist's file name.
pub const PLAYLIST: &str = "index.m3u8";
/// The formats `ovoverlay` draws on.
const OVERLAY_FORMATS: [&str; 10] = [
    "I420", "NV12", "RGB", "BGR", "RGBx", "BGRx", "xRGB", "xBGR", "RGBA", "BGRA",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct VideoSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlay: Option<Overlay>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bitrate: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtsp: Option<RtspSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<PushSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hls: Option<HlsSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<RecordSpec>,
}

/// `true`/`false`, or the `ovoverlay` properties to draw with (drawn).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Overlay {
    Draw(bool),
    With(BTreeMap<String, Value>),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RtspSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PushSpec {
    pub location: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HlsSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment_s: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RecordSpec {
    pub folder: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment_s: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_files: Option<u32>,
}

/// Checked video outputs.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoOut {
    /// `ovoverlay`'s properties, `None` for a clean video.
    pub overlay: Option<Vec<(String, String)>>,
    pub bitrate: u32,
    /// The RTSP output, with its mount path if not the default.
    pub rtsp: Option<Option<String>>,
    pub push: Option<String>,
    pub hls: Option<(u32, u32)>,
    pub record: Option<Record>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub folder: PathBuf,
    pub segment_s: u64,
    pub max_files: u32,
}

fn in_range<T: PartialOrd + std::fmt::Display + Copy>(
    reasons: &mut Vec<String>,
    key: &str,
    value: Option<T>,
    default: T,
    range: std::ops::RangeInclusive<T>,
) -> T {
    let v = value.unwrap_or(default);
    if !range.contains(&v) {
        reasons.push(format!(
            "outputs.video.{key} {v} is not within {} to {}",
            range.start(),
            range.end()
        ));
    }
    v
}

impl VideoOut {
    /// The RTSP mount path, if there is an RTSP output: `/streams/{id}` unless given.
    pub fn rtsp_path(&self, id: &str) -> Option<String> {
        self.rtsp
            .as_ref()
            .map(|p| p.clone().unwrap_or_else(|| format!("/streams/{id}")))
    }
}

impl VideoSpec {
    /// Checks the settings (what can be known before starting: not whether a folder is
    /// writable or a mount free, which the start tells).
    pub fn check(&self) -> Result<VideoOut, Vec<String>> {
        let mut reasons = Vec::new();
        if self.rtsp.is_none() && self.push.is_none() && self.hls.is_none() && self.record.is_none()
        {
            reasons.push(
                "outputs.video needs at least one of \"rtsp\", \"push\", \"hls\", \"record\""
                    .into(),
            );
        }
        let bitrate = in_range(
            &mut reasons,
            "bitrate",
            self.bitrate,
            DEFAULT_BITRATE,
            100..=50_000,
        );
        let rtsp = self.rtsp.as_ref().map(|r| {
            let path = r.path.clone()?;
            let ok = path.starts_with('/')
                && path.len() <= 200
                && !path.contains("//")
                && path
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-'));
            if !ok {
                reasons.push(format!(
                    "outputs.video.rtsp.path '{path}' must start with '/' and hold only letters, \
                     digits, '/', '.', '_' or '-'"
                ));
            }
            Some(path)
        });
        let push = self.push.as_ref().map(|p| {
            let ok = is_url(&p.location, &["rtsp", "rtsps"]);
            if !ok {
                reasons.push(format!(
                    "outputs.video.push.location '{}' must be an rtsp:// or rtsps:// URL with a host",
                    super::processing::without_credentials(&p.location)
                ));
            }
            p.location.clone()
        });
        let hls = self.hls.as_ref().map(|h| {
            let segment = in_range(
                &mut reasons,
                "hls.segment-s",
                h.segment_s,
                DEFAULT_HLS_SEGMENT_S,
                1..=10,
            );
            let window = in_range(
                &mut reasons,
                "hls.window",
                h.window,
                DEFAULT_HLS_WINDOW,
                2..=30,
            );
            (segment, window)
        });
        let record = self.record.as_ref().map(|r| {
            if !r.folder.is_absolute() {
                reasons.push(format!(
                    "outputs.video.record.folder {} is not an absolute path",
                    r.folder.display()
                ));
            }
            Record {
                folder: r.folder.clone(),
                segment_s: in_range(
                    &mut reasons,
                    "record.segment-s",
                    r.segment_s,
                    DEFAULT_RECORD_SEGMENT_S,
                    1..=86_400,
                ),
                max_files: r.max_files.unwrap_or(DEFAULT_RECORD_MAX_FILES),
            }
        });
        let overlay = match &self.overlay {
            None | Some(Overlay::Draw(true)) => Some(Vec::new()),
            Some(Overlay::Draw(false)) => None,
            Some(Overlay::With(props)) => Some(element_properties(
                "ovoverlay",
                "outputs.video.overlay",
                props,
                &mut reasons,
            )),
        };
        if reasons.is_empty() {
            Ok(VideoOut {
                overlay,
                bitrate,
                rtsp,
                push,
                hls,
                record,
            })
        } else {
            Err(reasons)
        }
    }
}

/// What the streams' video outputs share: the RTSP server and the HLS folders' root.
pub struct VideoEnv {
    pub rtsp: RtspService,
    /// `{hls_root}/{id}/` holds a stream's playlist and segments.
    pub hls_root: PathBuf,
}

impl VideoEnv {
    pub fn hls_dir(&self, id: &str) -> PathBuf {
        self.hls_root.join(id)
    }
}

/// The status of the video outputs (`outputs.video` of `GET /streams/{id}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct VideoStatus {
    /// Frames encoded.
    pub encoded_frames: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtsp: Option<RtspStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push: Option<PushStatus>,
    /// The playlist's path on this server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hls: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<RecordStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RtspStatus {
    pub url: String,
    /// Whether a viewer's media is being fed now.
    pub watched: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordStatus {
    pub folder: String,
    /// Files started (the current one included).
    pub files: u64,
    /// Files deleted by `max-files`.
    pub deleted: u64,
    /// The last file started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The running video outputs of a stream.
pub struct Video {
    /// Taken by [`Video::close`]: the mount goes when the stream stops, not when GStreamer
    /// finalises the pipeline.
    mount: Mutex<Option<Arc<Mount>>>,
    encoded: Arc<AtomicU64>,
    push: Option<Arc<Pusher>>,
    hls: Option<String>,
    record: Option<Arc<Recording>>,
}

impl std::fmt::Debug for Video {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Video")
            .field("status", &self.status())
            .finish()
    }
}

struct Recording {
    folder: PathBuf,
    files: AtomicU64,
    deleted: AtomicU64,
    current: Mutex<Option<String>>,
    error: Mutex<Option<String>>,
}

fn make(factory: &str, name: &str) -> Result<gst::Element, String> {
    gst::ElementFactory::make(factory).name(name).build().map_err(|_| {
        format!("GStreamer element '{factory}' is missing: run scripts/setup.sh (or install its plugin package)")
    })
}

fn queue(name: &str) -> Result<gst::Element, String> {
    let q = make("queue", name)?;
    q.set_property("max-size-buffers", 200u32);
    q.set_property("max-size-bytes", 0u32);
    q.set_property("max-size-time", 0u64);
    Ok(q)
}

/// An appsink handing each encoded frame to `on_sample`, never holding the pipeline back (a
/// slow consumer's frames are dropped by its own queue).
fn encoded_sink(name: &str, on_sample: impl Fn(&gst::Sample) + Send + 'static) -> gst_app::AppSink {
    let sink = gst_app::AppSink::builder()
        .name(name)
        .sync(false)
        .async_(false)
        .enable_last_sample(false)
        .max_buffers(30)
        .drop(true)
        .build();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Flushing)?;
                on_sample(&sample);
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    sink
}

/// A recording's file name: the stream id, the UTC start and the fragment number, so names sort
/// by time and a restarted stream never writes over an older file.
fn record_name(id: &str, fragment: u32) -> String {
    let stamp = crate::rfc3339(std::time::SystemTime::now())
        .replace([':', '-'], "")
        .replace('.', "-");
    format!("{id}-{stamp}-{fragment:05}.mp4")
}

/// The recordings of stream `id` to delete so that, with the one about to start, at most `keep`
/// remain (oldest first; names sort by time). `keep` 0 keeps all.
pub fn to_prune(id: &str, names: &[String], keep: usize) -> Vec<String> {
    if keep == 0 {
        return Vec::new();
    }
    let prefix = format!("{id}-");
    let mut mine: Vec<&String> = names
        .iter()
        .filter(|n| {
            n.strip_prefix(&prefix).is_some_and(|rest| {
                rest.ends_with(".mp4") && rest.starts_with(|c: char| c.is_ascii_digit())
            })
        })
        .collect();
    mine.sort();
    let excess = (mine.len() + 1).saturating_sub(keep);
    mine.into_iter().take(excess).cloned().collect()
}

/// Checks that a folder can be written (created if missing), by writing and removing a file.
fn writable(folder: &Path) -> Result<(), String> {
    std::fs::create_dir_all(folder)
        .map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
    let probe = folder.join(".lva-server-write-check");
    std::fs::write(&probe, b"")
        .map_err(|e| format!("cannot write to {}: {e}", folder.display()))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

impl Video {
    /// Adds the branch to `pipeline` from `tee` (a request pad is taken). The RTSP mount is
    /// taken, the folders checked and the HLS folder emptied here: their problems fail the start.
    pub fn build(
        pipeline: &gst::Pipeline,
        tee: &gst::Element,
        out: &VideoOut,
        id: &str,
        env: &VideoEnv,
    ) -> Result<Video, String> {
        let head = queue("video-queue")?;
        let convert_in = make("videoconvert", "video-convert-in")?;
        let formats = gst::Caps::builder("video/x-raw")
            .field("format", gst::List::new(OVERLAY_FORMATS))
            .build();
        let filter = make("capsfilter", "video-formats")?;
        filter.set_property("caps", &formats);
        let overlay = match &out.overlay {
            Some(props) => {
                let overlay = make("ovoverlay", "video-overlay")?;
                for (key, value) in props {
                    set_own(&overlay, key, value)
                        .map_err(|e| format!("outputs.video.overlay.{key}: {e}"))?;
                }
                Some(overlay)
            }
            None => None,
        };
        let convert_out = make("videoconvert", "video-convert")?;
        let encoder = make("x264enc", "video-encoder")?;
        encoder.set_property("bitrate", out.bitrate);
        encoder.set_property_from_str("tune", "zerolatency");
        encoder.set_property_from_str("speed-preset", "ultrafast");
        // A key frame at least every 2 s (at 30 fps); HLS and RTSP ask for more when needed.
        encoder.set_property("key-int-max", 60u32);
        let encoded = make("tee", "video-out")?;
        encoded.set_property("allow-not-linked", true);
        let mut chain = vec![head, convert_in, filter];
        chain.extend(overlay);
        chain.extend([convert_out, encoder.clone(), encoded.clone()]);
        pipeline.add_many(&chain).map_err(|e| e.to_string())?;
        gst::Element::link_many(&chain)
            .map_err(|e| format!("cannot link the video branch: {e}"))?;
        tee.link(&chain[0])
            .map_err(|e| format!("cannot link the video branch: {e}"))?;

        let counter = Arc::new(AtomicU64::new(0));
        let count = counter.clone();
        encoder
            .static_pad("src")
            .ok_or("x264enc without a src pad")?
            .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                count.fetch_add(1, Ordering::Relaxed);
                gst::PadProbeReturn::Ok
            });

        let mut outputs: Vec<(gst::Element, &str)> = Vec::new();
        let mount = match &out.rtsp_path(id) {
            Some(path) => {
                let mount = Arc::new(env.rtsp.mount(path, id, &encoder)?);
                let feeding = Arc::downgrade(&mount);
                let sink = encoded_sink("video-rtsp-sink", move |sample| {
                    if let Some(mount) = feeding.upgrade() {
                        mount.push(sample);
                    }
                });
                outputs.push((sink.upcast(), "video-rtsp"));
                Some(mount)
            }
            None => None,
        };
        let push = match &out.push {
            Some(location) => {
                let shown = super::processing::without_credentials(location);
                let pusher = Arc::new(Pusher::start(location, &shown, &encoder)?);
                let feeding = Arc::downgrade(&pusher);
                let sink = encoded_sink("video-push-sink", move |sample| {
                    if let Some(pusher) = feeding.upgrade() {
                        pusher.push(sample);
                    }
                });
                outputs.push((sink.upcast(), "video-push"));
                Some(pusher)
            }
            None => None,
        };
        let hls = match out.hls {
            Some((segment_s, window)) => {
                let dir = env.hls_dir(id);
                let _ = std::fs::remove_dir_all(&dir);
                writable(&dir).map_err(|e| format!("outputs.video.hls: {e}"))?;
                let sink = make("hlssink2", "video-hls-sink")?;
                sink.set_property(
                    "location",
                    dir.join("segment%05d.ts").to_string_lossy().as_ref(),
                );
                sink.set_property(
                    "playlist-location",
                    dir.join(PLAYLIST).to_string_lossy().as_ref(),
                );
                sink.set_property("target-duration", segment_s);
                sink.set_property("playlist-length", window);
                // The segments in the playlist and the one being written are kept, and the last
                // one out of the window (hlssink2 deletes after opening the next); older ones go.
                sink.set_property("max-files", window + 1);
                outputs.push((sink, "video-hls"));
                Some(format!("/streams/{id}/hls/{PLAYLIST}"))
            }
            None => None,
        };
        let record = match &out.record {
            Some(r) => {
                writable(&r.folder).map_err(|e| format!("outputs.video.record.folder: {e}"))?;
                let recording = Arc::new(Recording {
                    folder: r.folder.clone(),
                    files: AtomicU64::new(0),
                    deleted: AtomicU64::new(0),
                    current: Mutex::new(None),
                    error: Mutex::new(None),
                });
                let sink = make("splitmuxsink", "video-record-sink")?;
                sink.set_property("max-size-time", r.segment_s * 1_000_000_000);
                sink.set_property("send-keyframe-requests", true);
                let (rec, id, keep) = (recording.clone(), id.to_string(), r.max_files as usize);
                sink.connect("format-location", false, move |args| {
                    let fragment = args.get(1).and_then(|v| v.get::<u32>().ok()).unwrap_or(0);
                    Some(rec.next_file(&id, fragment, keep).to_value())
                });
                outputs.push((sink, "video-record"));
                Some(recording)
            }
            None => None,
        };
        // A parser per output: each muxer or payloader gets the H.264 framing it wants (MPEG-TS
        // byte-stream, MP4 avc), parameter sets with every key frame.
        for (sink, name) in outputs {
            let q = queue(&format!("{name}-queue"))?;
            let parse = make("h264parse", &format!("{name}-parse"))?;
            parse.set_property("config-interval", -1i32);
            pipeline
                .add_many([&q, &parse, &sink])
                .map_err(|e| e.to_string())?;
            gst::Element::link_many([&encoded, &q, &parse, &sink])
                .map_err(|e| format!("cannot link a video output: {e}"))?;
        }
        Ok(Video {
            mount: Mutex::new(mount),
            encoded: counter,
            push,
            hls,
            record,
        })
    }

    /// Removes the RTSP mount (its viewers get the end of the stream).
    /// Also ends the push.
    pub fn close(&self) {
        self.mount.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(pusher) = &self.push {
            pusher.close();
        }
    }

    pub fn status(&self) -> VideoStatus {
        let mount = self.mount.lock().unwrap_or_else(|e| e.into_inner());
        VideoStatus {
            encoded_frames: self.encoded.load(Ordering::Relaxed),
            rtsp: mount.as_ref().map(|m| RtspStatus {
                url: m.url().to_string(),
                watched: m.media() > 0,
            }),
            push: self.push.as_ref().map(|p| p.status()),
            hls: self.hls.clone(),
            record: self.record.as_ref().map(|r| r.status()),
        }
    }
}

impl Recording {
    /// The next file's path, after deleting the oldest beyond `keep`.
    fn next_file(&self, id: &str, fragment: u32, keep: usize) -> String {
        let names: Vec<String> = std::fs::read_dir(&self.folder)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter_map(|e| e.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default();
        for old in to_prune(id, &names, keep) {
            match std::fs::remove_file(self.folder.join(&old)) {
                Ok(()) => {
                    self.deleted.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    *self.error.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some(format!("cannot delete {old}: {e}"));
                }
            }
        }
        let path = self.folder.join(record_name(id, fragment));
        let path = path.to_string_lossy().into_owned();
        self.files.fetch_add(1, Ordering::Relaxed);
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(path.clone());
        path
    }

    fn status(&self) -> RecordStatus {
        RecordStatus {
            folder: self.folder.to_string_lossy().into_owned(),
            files: self.files.load(Ordering::Relaxed),
            deleted: self.deleted.load(Ordering::Relaxed),
            current: self
                .current
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            error: self.error.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_oldest_recordings_of_the_stream_go_first() {
        let all = names(&[
            "door-20261125T101000-000Z-00001.mp4",
            "door-20261125T100000-000Z-00000.mp4",
            "door-20261125T102000-000Z-00002.mp4",
            "door.jsonl",
            "doorway-20261125T090000-000Z-00000.mp4",
            "other-20261125T090000-000Z-00000.mp4",
        ]);
        assert_eq!(
            to_prune("door", &all, 2),
            names(&[
                "door-20261125T100000-000Z-00000.mp4",
                "door-20261125T101000-000Z-00001.mp4"
            ]),
            "two of the three go, leaving one and the new one; other streams' files stay"
        );
        assert!(to_prune("door", &all, 4).is_empty());
        assert!(to_prune("door", &all, 0).is_empty(), "0 keeps all");
    }

    #[test]
    fn record_names_sort_by_time_and_hold_no_colons() {
        let a = record_name("cam", 0);
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = record_name("cam", 1);
        assert!(a < b, "{a} < {b}");
        assert!(
            !a.contains(':') && a.starts_with("cam-2") && a.ends_with("-00000.mp4"),
            "{a}"
        );
    }

    #[test]
    fn settings_are_checked_with_reasons() {
        crate::streams::tests::init();
        let spec: VideoSpec = serde_json::from_str(
            r#"{"bitrate": 10, "rtsp": {"path": "no-slash"}, "push": {"location": "http://x/y"},
                "hls": {"segment-s": 0, "window": 99}, "record": {"folder": "rel"}}"#,
        )
        .expect("parses");
        let reasons = spec.check().expect_err("refused");
        for part in [
            "bitrate 10",
            "rtsp.path",
            "push.location",
            "hls.segment-s 0",
            "hls.window 99",
            "record.folder rel",
        ] {
            assert!(
                reasons.iter().any(|r| r.contains(part)),
                "{part} in {reasons:?}"
            );
        }
        let empty: VideoSpec = serde_json::from_str("{}").expect("parses");
        assert!(empty.check().expect_err("no output")[0].contains("at least one"));
        let ok: VideoSpec = serde_json::from_str(r#"{"rtsp": {}, "hls": {}}"#).expect("parses");
        let out = ok.check().expect("accepted");
        assert_eq!(out.rtsp_path("cam").as_deref(), Some("/streams/cam"));
        assert_eq!(out.hls, Some((2, 5)));
        assert_eq!(out.overlay, Some(Vec::new()), "drawn by default");
        let styled: VideoSpec =
            serde_json::from_str(r#"{"overlay": {"line-width": 6, "nope": 1}, "hls": {}}"#)
                .expect("parses");
        let reasons = styled.check().expect_err("nope refused");
        assert!(reasons[0].contains("overlay.nope"), "{reasons:?}");
    }
}
