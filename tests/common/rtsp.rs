//! A real RTSP server (gst-rtsp-server) serving a file (bikes.mp4) six times in a row (60 s, no
//! re-encoding), on its own GLib main context and thread. GStreamer must be initialised.
//!
//! One copy for the streams engine's tests (src/bin/lva-server/streams/tests.rs, through
//! `#[path]`) and the HTTP tests (tests/streams_api.rs).

// Each includer uses part of it.
#![allow(dead_code)]

use std::path::Path;
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use gst::glib;
use gst::prelude::*;
use gst_rtsp_server::prelude::*;

pub struct Server {
    pub port: u16,
    running: Running,
    /// The valve in front of the payloader of every media made so far.
    valves: Arc<Mutex<Vec<gst::Element>>>,
}

/// A gst-rtsp-server on 127.0.0.1 with one mount, on its own GLib main context and thread.
struct Running {
    port: u16,
    main_loop: glib::MainLoop,
    thread: Option<JoinHandle<()>>,
}

impl Running {
    /// Serves the factory `make` builds (in the server's thread) at `path`; port 0 picks one.
    fn start(
        port: u16,
        path: &'static str,
        make: impl FnOnce() -> gst_rtsp_server::RTSPMediaFactory + Send + 'static,
    ) -> Running {
        gst::init().expect("GStreamer initialises");
        let ctx = glib::MainContext::new();
        let main_loop = glib::MainLoop::new(Some(&ctx), false);
        let (tx, rx) = mpsc::channel();
        let looping = main_loop.clone();
        let thread = std::thread::spawn(move || {
            ctx.with_thread_default(|| {
                let server = gst_rtsp_server::RTSPServer::new();
                server.set_address("127.0.0.1");
                server.set_service(&port.to_string());
                server
                    .mount_points()
                    .expect("mount points")
                    .add_factory(path, make());
                let source = server.attach(Some(&ctx)).expect("the RTSP server listens");
                let _ = tx.send(server.bound_port());
                looping.run();
                // Down: every client and session closed, the socket too.
                server.client_filter(Some(&mut |_, _| gst_rtsp_server::RTSPFilterResult::Remove));
                if let Some(pool) = server.session_pool() {
                    pool.filter(Some(&mut |_, _| gst_rtsp_server::RTSPFilterResult::Remove));
                }
                // The source lives in our context, not the default one.
                if let Some(source) = ctx.find_source_by_id(&source) {
                    source.destroy();
                }
                while ctx.iteration(false) {}
            })
            .expect("a main context for the RTSP server");
        });
        let bound = rx.recv().expect("the RTSP server starts");
        Running {
            port: u16::try_from(bound).expect("a port"),
            main_loop,
            thread: Some(thread),
        }
    }

    fn stop(&mut self) {
        self.main_loop.quit();
        if let Some(t) = self.thread.take() {
            t.join().expect("the RTSP server's thread");
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The named element of a media's pipeline.
fn by_name(media: &gst_rtsp_server::RTSPMedia, name: &str) -> Option<gst::Element> {
    media
        .element()
        .downcast::<gst::Bin>()
        .ok()
        .and_then(|b| b.by_name(name))
}

impl Server {
    /// Serves `file` at rtsp://127.0.0.1:PORT/bikes; port 0 picks one.
    pub fn start(port: u16, file: &Path) -> Server {
        let part = format!(
            "filesrc location={} ! qtdemux ! h264parse ! c. ",
            file.display()
        );
        let launch = format!(
            "( concat name=c ! valve name=valve ! rtph264pay name=pay0 pt=96 config-interval=1 {} )",
            part.repeat(6)
        );
        let valves = Arc::new(Mutex::new(Vec::new()));
        let made = valves.clone();
        let running = Running::start(port, "/bikes", move || {
            let factory = gst_rtsp_server::RTSPMediaFactory::new();
            factory.set_launch(&launch);
            factory.connect_media_configure(move |_, media| {
                if let Some(valve) = by_name(media, "valve") {
                    made.lock().unwrap_or_else(|e| e.into_inner()).push(valve);
                }
            });
            factory
        });
        Server {
            port: running.port,
            running,
            valves,
        }
    }

    /// Stops the data of every media served so far, the connections staying up: a camera
    /// that hangs.
    pub fn stall(&self) {
        for valve in self.valves.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            valve.set_property("drop", true);
        }
    }

    pub fn stop(mut self) {
        self.running.stop();
    }
}

/// A real RTSP server taking pushed video (a RECORD mount at rtsp://127.0.0.1:PORT/record, as
/// mediamtx would), decoding it and counting the frames; stopped when dropped.
pub struct Receiver {
    pub port: u16,
    pub frames: Arc<std::sync::atomic::AtomicU64>,
    _running: Running,
}

impl Receiver {
    pub fn start() -> Receiver {
        Receiver::start_on(0)
    }

    /// On `port` (0: any free one).
    pub fn start_on(port: u16) -> Receiver {
        let frames = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = frames.clone();
        let running = Running::start(port, "/record", move || {
            let factory = gst_rtsp_server::RTSPMediaFactory::new();
            factory.set_transport_mode(gst_rtsp_server::RTSPTransportMode::RECORD);
            factory.set_launch("( decodebin name=depay0 ! videoconvert ! fakesink name=got )");
            factory.connect_media_configure(move |_, media| {
                if let Some(pad) = by_name(media, "got").and_then(|g| g.static_pad("sink")) {
                    let counted = counted.clone();
                    pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        gst::PadProbeReturn::Ok
                    });
                }
            });
            factory
        });
        Receiver {
            port: running.port,
            frames,
            _running: running,
        }
    }
}
