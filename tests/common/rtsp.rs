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
    main_loop: glib::MainLoop,
    thread: Option<JoinHandle<()>>,
    /// The valve in front of the payloader of every media made so far.
    valves: Arc<Mutex<Vec<gst::Element>>>,
}

impl Server {
    /// Serves `file` at rtsp://127.0.0.1:PORT/bikes; port 0 picks one.
    pub fn start(port: u16, file: &Path) -> Server {
        let ctx = glib::MainContext::new();
        let main_loop = glib::MainLoop::new(Some(&ctx), false);
        let (tx, rx) = mpsc::channel();
        let part = format!(
            "filesrc location={} ! qtdemux ! h264parse ! c. ",
            file.display()
        );
        let launch = format!(
            "( concat name=c ! valve name=valve ! rtph264pay name=pay0 pt=96 config-interval=1 {} )",
            part.repeat(6)
        );
        let looping = main_loop.clone();
        let valves = Arc::new(Mutex::new(Vec::new()));
        let made = valves.clone();
        let thread = std::thread::spawn(move || {
            ctx.with_thread_default(|| {
                let server = gst_rtsp_server::RTSPServer::new();
                server.set_address("127.0.0.1");
                server.set_service(&port.to_string());
                let factory = gst_rtsp_server::RTSPMediaFactory::new();
                factory.set_launch(&launch);
                factory.connect_media_configure(move |_, media| {
                    let valve = media
                        .element()
                        .downcast::<gst::Bin>()
                        .ok()
                        .and_then(|b| b.by_name("valve"));
                    if let Some(valve) = valve {
                        made.lock().unwrap_or_else(|e| e.into_inner()).push(valve);
                    }
                });
                server
                    .mount_points()
                    .expect("mount points")
                    .add_factory("/bikes", factory);
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
        Server {
            port: u16::try_from(bound).expect("a port"),
            main_loop,
            thread: Some(thread),
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
        self.main_loop.quit();
        if let Some(t) = self.thread.take() {
            t.join().expect("the RTSP server's thread");
        }
    }
}

/// A real RTSP server taking pushed video (a RECORD mount at rtsp://127.0.0.1:PORT/record, as
/// mediamtx would), decoding it and counting the frames.
pub struct Receiver {
    pub port: u16,
    pub frames: Arc<std::sync::atomic::AtomicU64>,
    main_loop: glib::MainLoop,
    thread: Option<JoinHandle<()>>,
}

impl Receiver {
    pub fn start() -> Receiver {
        Receiver::start_on(0)
    }

    /// On `port` (0: any free one).
    pub fn start_on(port: u16) -> Receiver {
        gst::init().expect("GStreamer initialises");
        let ctx = glib::MainContext::new();
        let main_loop = glib::MainLoop::new(Some(&ctx), false);
        let (tx, rx) = mpsc::channel();
        let frames = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = frames.clone();
        let looping = main_loop.clone();
        let thread = std::thread::spawn(move || {
            ctx.with_thread_default(|| {
                let server = gst_rtsp_server::RTSPServer::new();
                server.set_address("127.0.0.1");
                server.set_service(&port.to_string());
                let factory = gst_rtsp_server::RTSPMediaFactory::new();
                factory.set_transport_mode(gst_rtsp_server::RTSPTransportMode::RECORD);
                factory.set_launch("( decodebin name=depay0 ! videoconvert ! fakesink name=got )");
                factory.connect_media_configure(move |_, media| {
                    let got = media
                        .element()
                        .downcast::<gst::Bin>()
                        .ok()
                        .and_then(|b| b.by_name("got"))
                        .and_then(|g| g.static_pad("sink"));
                    if let Some(pad) = got {
                        let counted = counted.clone();
                        pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            gst::PadProbeReturn::Ok
                        });
                    }
                });
                server
                    .mount_points()
                    .expect("mount points")
                    .add_factory("/record", factory);
                let source = server.attach(Some(&ctx)).expect("the RTSP server listens");
                let _ = tx.send(server.bound_port());
                looping.run();
                server.client_filter(Some(&mut |_, _| gst_rtsp_server::RTSPFilterResult::Remove));
                if let Some(source) = ctx.find_source_by_id(&source) {
                    source.destroy();
                }
                while ctx.iteration(false) {}
            })
            .expect("a main context for the RTSP server");
        });
        let bound = rx.recv().expect("the RTSP server starts");
        Receiver {
            port: u16::try_from(bound).expect("a port"),
            frames,
            main_loop,
            thread: Some(thread),
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.main_loop.quit();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
