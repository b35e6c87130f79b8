//! The RTSP server of the streams' video (gst-rtsp-server): one mount per stream, all viewers of
//! a mount sharing one media fed with the stream's already encoded H.264.
//!
//! It listens from the first stream that asks for an RTSP output (so a server without such
//! streams opens no port), on the HTTP side's address and the `streams.rtsp-port`, with the
//! Basic users of the `auth` section (RTSP clients send no bearer tokens), on its own GLib main
//! context and thread.
//!
//! A mount's media is `appsrc ! h264parse ! rtph264pay`: the stream's encoder output is pushed
//! into the `appsrc` of the media while one is prepared (nobody watching: nothing is pushed),
//! timestamped on arrival (the viewers see the frames as they come out of the encoder), and a
//! new media asks the encoder for a key frame so a viewer sees a picture at once.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use gst::glib;
use gst::prelude::*;
use gst_rtsp_server::prelude::*;

use crate::config::Auth;

/// Role of the configured users in the server's tokens.
const ROLE: &str = "user";
/// Encoded frames a media's `appsrc` holds for a slow viewer before the oldest are dropped.
const MEDIA_QUEUE: u64 = 60;

/// Where and how to listen, and the server once it does.
pub struct RtspService {
    address: String,
    port: u16,
    auth: Option<Auth>,
    running: Mutex<Option<Arc<Running>>>,
}

struct Running {
    port: u16,
    mounts: gst_rtsp_server::RTSPMountPoints,
    main_loop: glib::MainLoop,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Mount path → the stream id using it.
    taken: Mutex<BTreeMap<String, String>>,
}

/// A stream's mount; dropping it removes it (the viewers are disconnected).
pub struct Mount {
    running: Arc<Running>,
    path: String,
    feed: Arc<Mutex<Vec<gst_app::AppSrc>>>,
    address: String,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl RtspService {
    /// `port` 0: no RTSP server (a stream asking for one is refused with the reason).
    pub fn new(address: &str, port: u16, auth: Option<Auth>) -> RtspService {
        RtspService {
            address: address.to_string(),
            port,
            auth,
            running: Mutex::new(None),
        }
    }

    /// The address viewers are told (`0.0.0.0` and `::` are told as 127.0.0.1).
    fn public_host(&self) -> String {
        match self.address.as_str() {
            "0.0.0.0" | "::" | "" => "127.0.0.1".into(),
            a if a.contains(':') => format!("[{a}]"),
            a => a.into(),
        }
    }

    fn running(&self) -> Result<Arc<Running>, String> {
        if self.port == 0 {
            return Err(
                "the RTSP server is off (streams.rtsp-port is 0 in the configuration)".into(),
            );
        }
        let mut running = lock(&self.running);
        if let Some(r) = running.as_ref() {
            return Ok(r.clone());
        }
        let started = Arc::new(Running::start(
            &self.address,
            self.port,
            self.auth.as_ref(),
        )?);
        *running = Some(started.clone());
        Ok(started)
    }

    /// Mounts `path` for stream `id`; `encoder` gets a key-frame request for each new media.
    pub fn mount(&self, path: &str, id: &str, encoder: &gst::Element) -> Result<Mount, String> {
        let running = self.running()?;
        {
            let mut taken = lock(&running.taken);
            if let Some(other) = taken.get(path) {
                return Err(format!(
                    "outputs.video.rtsp.path {path} is already the mount of stream {other}"
                ));
            }
            taken.insert(path.to_string(), id.to_string());
        }
        let feed = Arc::new(Mutex::new(Vec::<gst_app::AppSrc>::new()));
        let factory = gst_rtsp_server::RTSPMediaFactory::new();
        factory.set_launch(
            "( appsrc name=video is-live=true do-timestamp=true format=time \
             ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=-1 )",
        );
        factory.set_shared(true);
        if self.auth.is_some() {
            factory.add_role_from_structure(
                &gst::Structure::builder(ROLE)
                    .field(gst_rtsp_server::RTSP_PERM_MEDIA_FACTORY_ACCESS, true)
                    .field(gst_rtsp_server::RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, true)
                    .build(),
            );
        }
        let (fed, encoder) = (feed.clone(), encoder.downgrade());
        factory.connect_media_configure(move |_, media| {
            let appsrc = media
                .element()
                .downcast::<gst::Bin>()
                .ok()
                .and_then(|b| b.by_name("video"))
                .and_then(|e| e.downcast::<gst_app::AppSrc>().ok());
            let Some(appsrc) = appsrc else { return };
            appsrc.set_max_buffers(MEDIA_QUEUE);
            appsrc.set_leaky_type(gst_app::AppLeakyType::Downstream);
            lock(&fed).push(appsrc.clone());
            let gone = fed.clone();
            media.connect_unprepared(move |_| lock(&gone).retain(|a| a != &appsrc));
            if let Some(pad) = encoder.upgrade().and_then(|e| e.static_pad("src")) {
                pad.send_event(
                    gst_video::UpstreamForceKeyUnitEvent::builder()
                        .all_headers(true)
                        .build(),
                );
            }
        });
        let mounts = running.mounts.clone();
        mounts.add_factory(path, factory);
        Ok(Mount {
            address: format!("rtsp://{}:{}{path}", self.public_host(), running.port),
            running,
            path: path.to_string(),
            feed,
        })
    }

    /// Stops the server (viewers disconnected), if it was started.
    pub fn shutdown(&self) {
        if let Some(running) = lock(&self.running).take() {
            running.stop();
        }
    }
}

impl Running {
    fn start(address: &str, port: u16, auth: Option<&Auth>) -> Result<Running, String> {
        let ctx = glib::MainContext::new();
        let main_loop = glib::MainLoop::new(Some(&ctx), false);
        let server = gst_rtsp_server::RTSPServer::new();
        server.set_address(address);
        server.set_service(&port.to_string());
        if let Some(auth) = auth {
            let rtsp_auth = gst_rtsp_server::RTSPAuth::new();
            let token = gst_rtsp_server::RTSPToken::builder()
                .field(gst_rtsp_server::RTSP_TOKEN_MEDIA_FACTORY_ROLE, ROLE)
                .build();
            for user in &auth.basic {
                let basic = gst_rtsp_server::RTSPAuth::make_basic(&user.user, &user.password);
                rtsp_auth.add_basic(&basic, &token);
            }
            server.set_auth(Some(&rtsp_auth));
        }
        let mounts = server
            .mount_points()
            .ok_or("the RTSP server has no mount points")?;
        let source = server.attach(Some(&ctx)).map_err(|e| {
            format!("the RTSP server cannot listen on {address} port {port}: {e} (is the port in use? set streams.rtsp-port)")
        })?;
        let bound = u16::try_from(server.bound_port()).unwrap_or(port);
        // Sessions of viewers that went away without a TEARDOWN expire.
        let pool = server.session_pool();
        let cleanup = glib::timeout_source_new(
            std::time::Duration::from_secs(2),
            None,
            glib::Priority::DEFAULT,
            move || {
                if let Some(pool) = &pool {
                    pool.cleanup();
                }
                glib::ControlFlow::Continue
            },
        );
        cleanup.attach(Some(&ctx));
        let looping = main_loop.clone();
        let thread = std::thread::Builder::new()
            .name("rtsp-server".into())
            .spawn(move || {
                let _ = ctx.with_thread_default(|| {
                    looping.run();
                    server
                        .client_filter(Some(&mut |_, _| gst_rtsp_server::RTSPFilterResult::Remove));
                    if let Some(source) = ctx.find_source_by_id(&source) {
                        source.destroy();
                    }
                    cleanup.destroy();
                    while ctx.iteration(false) {}
                });
            })
            .map_err(|e| format!("cannot start the RTSP server's thread: {e}"))?;
        Ok(Running {
            port: bound,
            mounts,
            main_loop,
            thread: Mutex::new(Some(thread)),
            taken: Mutex::new(BTreeMap::new()),
        })
    }

    fn stop(&self) {
        self.main_loop.quit();
        if let Some(thread) = lock(&self.thread).take() {
            let _ = thread.join();
        }
    }
}

impl Mount {
    /// `rtsp://HOST:PORT/PATH`.
    pub fn url(&self) -> &str {
        &self.address
    }

    /// Media prepared for viewers now (0 or 1: viewers share one).
    pub fn media(&self) -> usize {
        lock(&self.feed).len()
    }

    /// Gives an encoded frame to the mount's media, if anybody watches.
    pub fn push(&self, sample: &gst::Sample) {
        let feed = lock(&self.feed);
        if feed.is_empty() {
            return;
        }
        for appsrc in feed.iter() {
            let _ = push_restamped(appsrc, sample);
        }
    }
}

/// Pushes an encoded frame into an `appsrc` with `do-timestamp=true`: its timestamps cleared,
/// so that it is stamped on arrival in the receiving pipeline's own time.
pub fn push_restamped(
    appsrc: &gst_app::AppSrc,
    sample: &gst::Sample,
) -> Result<gst::FlowSuccess, gst::FlowError> {
    let buffer = sample.buffer().ok_or(gst::FlowError::Error)?;
    let mut buffer = buffer.copy();
    {
        let b = buffer.make_mut();
        b.set_pts(gst::ClockTime::NONE);
        b.set_dts(gst::ClockTime::NONE);
    }
    let caps = sample.caps_owned();
    if caps.is_some() && appsrc.caps() != caps {
        appsrc.set_caps(caps.as_ref());
    }
    appsrc.push_buffer(buffer)
}

impl Drop for Mount {
    fn drop(&mut self) {
        self.running.mounts.remove_factory(&self.path);
        lock(&self.running.taken).remove(&self.path);
        // The media's appsrc ends: viewers get the end of the stream.
        for appsrc in lock(&self.feed).drain(..) {
            let _ = appsrc.end_of_stream();
        }
    }
}
