//! The GStreamer side every publishing sink shares: start (queue or spool, worker thread), render
//! (enqueue only), EOS (flush within `flush-timeout`), stop, unlock, the counters and the
//! `<element>-stats` / `<element>-connection` messages and warnings. An element's `imp.rs`
//! builds its [`Transport`] from its own settings and calls these from its `BaseSinkImpl`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;

use super::body::Body;
use super::queue::{Counters, Doc, PushError, Queue, Store};
use super::settings::{COUNTERS, PublishSettings};
use super::spool::Spool;
use super::worker::{self, Report, Transport};

/// Per-run state: from `start` to `stop`.
struct Run {
    worker: Option<JoinHandle<()>>,
    sequence: u64,
    flush_timeout: Duration,
    /// How long `stop` waits for the worker at most (it may be in a connection attempt).
    stop_wait: Duration,
    /// When the flush that started at EOS runs out: `stop` waits for the worker no longer.
    flush_deadline: Option<Instant>,
    spool: bool,
}

/// What differs between the sinks a [`Publisher`] drives: the counters they show and the words
/// of their warnings about documents not delivered (each element's documented messages).
pub struct Flavour {
    /// The read-only counters (name, blurb): properties and fields of `<element>-stats`, in
    /// this order. Names among [`Counters`]' fields and `queued`.
    pub counters: &'static [(&'static str, &'static str)],
    /// Who confirms or refuses the documents: "broker", "receiver".
    pub peer: &'static str,
    /// What the first refusal's warning calls the later ones, only counted in `failed`:
    /// "refusals", "failures".
    pub later: &'static str,
    /// The warning when the EOS flush ran out: documents left, `flush-timeout`, and whether
    /// the spool keeps them.
    pub eos_left: fn(u64, Duration, bool) -> String,
    /// The warning when a stop left documents: how many, and whether the spool keeps them.
    pub stop_left: fn(u64, bool) -> String,
}

/// What becomes of the documents left at EOS or a stop, for the warnings: kept in the spool or
/// dropped.
pub fn fate(kept: bool) -> &'static str {
    if kept {
        "they stay in spool-dir and go out first at the next start"
    } else {
        "counted as dropped"
    }
}

/// The message broker sinks' (`lvamqttsink`, `lvakafkasink`).
pub static BROKER: Flavour = Flavour {
    counters: &COUNTERS,
    peer: "broker",
    later: "refusals",
    eos_left: |n, flush_timeout, kept| {
        format!(
            "EOS: flush-timeout ({flush_timeout:?}) ran out with {n} documents undelivered; {}",
            fate(kept)
        )
    },
    stop_left: |n, kept| {
        format!(
            "stopped (no EOS, or before they could be confirmed) with {n} documents \
             undelivered; {}",
            fate(kept)
        )
    },
};

/// The shared part of a publishing sink; one per element instance.
pub struct Publisher {
    /// The element's factory name: prefix of its messages.
    name: &'static str,
    cat: gst::DebugCategory,
    flavour: &'static Flavour,
    /// The queue of the current (or last) run; its counters stay readable after `stop`.
    queue: Mutex<Option<Arc<Queue<Body>>>>,
    run: Mutex<Option<Run>>,
    store_warned: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A counter's value from a queue's counters (0 for a name that is none).
fn counter_value(queue: &Queue<Body>, name: &str) -> u64 {
    let c = &queue.counters;
    let counter = match name {
        "queued" => return queue.backlog() as u64,
        "sent" => &c.sent,
        "failed" => &c.failed,
        "retried" => &c.retried,
        "timeouts" => &c.timeouts,
        "resent" => &c.resent,
        "dropped" => &c.dropped,
        "waited" => &c.waited,
        "undelivered" => &c.undelivered,
        "recovered" => &c.recovered,
        "discarded" => &c.discarded,
        "disconnects" => &c.disconnects,
        _ => return 0,
    };
    Counters::get(counter)
}

/// The statistics structure `NAME-stats` from a queue's counters.
fn stats_structure(
    name: &str,
    counters: &[(&str, &str)],
    queue: Option<&Queue<Body>>,
) -> gst::Structure {
    let mut s = gst::Structure::builder(format!("{name}-stats"));
    for (counter, _) in counters {
        s = s.field(*counter, queue.map_or(0, |q| counter_value(q, counter)));
    }
    s.build()
}

/// The worker's link back to the element.
struct Reporter {
    element: glib::WeakRef<gst::Element>,
    name: &'static str,
    cat: gst::DebugCategory,
    flavour: &'static Flavour,
    queue: Arc<Queue<Body>>,
    interval: Option<Duration>,
    last: Mutex<Instant>,
    rejected_warned: AtomicBool,
    store_warned: AtomicBool,
}

impl Reporter {
    fn connection_message(&self, element: &gst::Element, connected: bool, detail: &str) {
        let s = gst::Structure::builder(format!("{}-connection", self.name))
            .field("connected", connected)
            .field("detail", detail)
            .build();
        let _ = element.post_message(gst::message::Element::builder(s).src(element).build());
    }
}

impl Report for Reporter {
    fn connected(&self, waited: u64) {
        let Some(e) = self.element.upgrade() else {
            return;
        };
        let detail = if waited > 0 {
            format!("connected; {waited} documents waited for the broker and go out now")
        } else {
            "connected".to_string()
        };
        gst::info!(self.cat, obj = e, "{detail}");
        self.connection_message(&e, true, &detail);
    }

    fn connect_failed(&self, reason: &str, wait: Duration, first: bool) {
        let Some(e) = self.element.upgrade() else {
            return;
        };
        gst::info!(
            self.cat,
            obj = e,
            "cannot connect: {reason}; again in {wait:?}"
        );
        if first {
            gst::element_warning!(
                e,
                gst::ResourceError::OpenWrite,
                ("cannot connect to the broker: {reason}; retrying, the documents wait in the queue")
            );
            self.connection_message(&e, false, reason);
        }
    }

    fn disconnected(&self, reason: &str, resend: u64) {
        let Some(e) = self.element.upgrade() else {
            return;
        };
        gst::element_warning!(
            e,
            gst::ResourceError::Write,
            ("lost the connection to the broker: {reason}; reconnecting, {resend} documents in flight will be sent again")
        );
        self.connection_message(&e, false, reason);
    }

    fn rejected(&self, sequence: u64, reason: &str) {
        let Some(e) = self.element.upgrade() else {
            return;
        };
        gst::warning!(
            self.cat,
            obj = e,
            "document {sequence} refused by the {}: {reason}",
            self.flavour.peer
        );
        if !self.rejected_warned.swap(true, Ordering::Relaxed) {
            gst::element_warning!(
                e,
                gst::ResourceError::Write,
                (
                    "the {} refused document {sequence}: {reason} (further {} are only counted, \
                     in the `failed` property)",
                    self.flavour.peer,
                    self.flavour.later
                )
            );
        }
    }

    fn store_failed(&self, reason: &str) {
        let Some(e) = self.element.upgrade() else {
            return;
        };
        gst::warning!(self.cat, obj = e, "spool: {reason}");
        if !self.store_warned.swap(true, Ordering::Relaxed) {
            gst::element_warning!(e, gst::ResourceError::Read, ("spool: {reason}"));
        }
    }

    fn tick(&self) {
        let Some(interval) = self.interval else {
            return;
        };
        let mut last = lock(&self.last);
        if last.elapsed() >= interval {
            *last = Instant::now();
            if let Some(e) = self.element.upgrade() {
                let s = stats_structure(self.name, self.flavour.counters, Some(&self.queue));
                gst::debug!(self.cat, obj = e, "{s}");
                let _ = e.post_message(gst::message::Element::builder(s).src(&e).build());
            }
        }
    }
}

fn settings_error(text: String) -> gst::ErrorMessage {
    gst::error_msg!(gst::ResourceError::Settings, ("{text}"))
}

impl Publisher {
    pub fn new(
        name: &'static str,
        cat: gst::DebugCategory,
        flavour: &'static Flavour,
    ) -> Publisher {
        Publisher {
            name,
            cat,
            flavour,
            queue: Mutex::new(None),
            run: Mutex::new(None),
            store_warned: AtomicBool::new(false),
        }
    }

    fn queue(&self) -> Option<Arc<Queue<Body>>> {
        lock(&self.queue).clone()
    }

    /// Opens the queue (or spool) and starts the worker with `transport`. `target` says where
    /// documents go, for the log (no secrets in it).
    pub fn start(
        &self,
        element: &gst::Element,
        settings: &PublishSettings,
        transport: impl Transport + 'static,
        target: &str,
    ) -> Result<(), gst::ErrorMessage> {
        let overflow = settings.overflow();
        let (queue, opened) = match &settings.spool_dir {
            None => (Queue::new(settings.max_queue as usize, overflow), None),
            Some(dir) => {
                let (spool, opened) = Spool::open(dir, settings.spool_max_bytes)
                    .map_err(|e| settings_error(format!("spool-dir: {e}")))?;
                let store: Box<dyn Store<Body>> = Box::new(spool);
                (Queue::with_store(store, overflow), Some(opened))
            }
        };
        if let Some(opened) = &opened {
            Counters::add(&queue.counters.recovered, opened.recovered);
            Counters::add(&queue.counters.discarded, opened.discarded);
            for damage in &opened.damage {
                gst::element_warning!(
                    element,
                    gst::ResourceError::Read,
                    ("spool-dir: {damage} (counted in `discarded`)")
                );
            }
            if opened.recovered > 0 {
                gst::info!(
                    self.cat,
                    obj = element,
                    "{} documents left in the spool by an earlier run go out first",
                    opened.recovered
                );
            }
        }
        let queue = Arc::new(queue);
        self.store_warned.store(false, Ordering::Relaxed);
        let reporter = Reporter {
            element: element.downgrade(),
            name: self.name,
            cat: self.cat,
            flavour: self.flavour,
            queue: queue.clone(),
            interval: settings.stats_interval(),
            last: Mutex::new(Instant::now()),
            rejected_warned: AtomicBool::new(false),
            store_warned: AtomicBool::new(false),
        };
        let options = settings.worker_options();
        let worker_queue = queue.clone();
        let worker = std::thread::Builder::new()
            .name(self.name.into())
            .spawn(move || worker::run(worker_queue, transport, options, reporter))
            .map_err(|e| {
                gst::error_msg!(
                    gst::CoreError::Thread,
                    ("cannot start the delivery thread: {e}")
                )
            })?;
        gst::info!(self.cat, obj = element, "publishing to {target}");
        *lock(&self.queue) = Some(queue);
        *lock(&self.run) = Some(Run {
            worker: Some(worker),
            sequence: 0,
            flush_timeout: settings.flush_timeout(),
            stop_wait: settings.connect_timeout() + Duration::from_secs(1),
            flush_deadline: None,
            spool: settings.spool_dir.is_some(),
        });
        Ok(())
    }

    /// Queues the buffer's document (never waits for the network; may wait for room with
    /// `queue-full=block`).
    pub fn render(
        &self,
        element: &gst::Element,
        buffer: &gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let queue = self.queue().ok_or(gst::FlowError::Flushing)?;
        let sequence = {
            let mut run = lock(&self.run);
            let run = run.as_mut().ok_or(gst::FlowError::Flushing)?;
            run.sequence += 1;
            run.sequence - 1
        };
        let body = Body::from_buffer(buffer.clone()).map_err(|_| {
            gst::element_error!(
                element,
                gst::StreamError::Failed,
                ("cannot read a document buffer")
            );
            gst::FlowError::Error
        })?;
        let doc = Doc {
            body,
            pts: buffer.pts().map(|p| p.nseconds()),
            sequence,
        };
        match queue.push(doc) {
            Ok(_) => Ok(gst::FlowSuccess::Ok),
            Err(PushError::Flushing) => Err(gst::FlowError::Flushing),
            Err(PushError::Store(e)) => {
                gst::warning!(self.cat, obj = element, "document not spooled: {e}");
                if !self.store_warned.swap(true, Ordering::Relaxed) {
                    gst::element_warning!(
                        element,
                        gst::ResourceError::Write,
                        ("cannot write to the spool: {e}; the document is counted as dropped (further ones only counted)")
                    );
                }
                Ok(gst::FlowSuccess::Ok)
            }
        }
    }

    /// Says on the bus what a stop of the queue left: `text` from how many and whether the
    /// spool keeps them.
    fn report_left(
        &self,
        element: &gst::Element,
        left: super::queue::Stopped,
        text: impl Fn(u64, bool) -> String,
    ) {
        let (n, kept) = if left.kept > 0 {
            (left.kept, true)
        } else {
            (left.lost, false)
        };
        if n > 0 {
            gst::element_warning!(element, gst::ResourceError::Write, ("{}", text(n, kept)));
        }
    }

    /// At EOS: waits up to `flush-timeout` for every document to be confirmed, then posts the
    /// statistics.
    pub fn eos(&self, element: &gst::Element) {
        let flush_timeout = lock(&self.run)
            .as_mut()
            .map(|r| {
                r.flush_deadline = Some(Instant::now() + r.flush_timeout);
                r.flush_timeout
            })
            .unwrap_or_default();
        if let Some(queue) = self.queue()
            && !queue.wait_drained(flush_timeout)
        {
            let left = queue.stop();
            self.report_left(element, left, |n, kept| {
                (self.flavour.eos_left)(n, flush_timeout, kept)
            });
        }
        self.post_stats(element);
    }

    /// Stops the worker; what is left is counted (and kept, with a spool).
    pub fn stop(&self, element: &gst::Element) {
        let run = lock(&self.run).take();
        if let Some(queue) = self.queue() {
            let left = queue.stop();
            self.report_left(element, left, self.flavour.stop_left);
        }
        let Some(mut run) = run else {
            return;
        };
        let now = Instant::now();
        let deadline = run
            .flush_deadline
            .unwrap_or(now + run.flush_timeout)
            .min(now + run.stop_wait)
            .max(now + Duration::from_millis(200));
        if let Some(worker) = run.worker.take() {
            while !worker.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if worker.is_finished() {
                let _ = worker.join();
            } else {
                gst::info!(
                    self.cat,
                    obj = element,
                    "the delivery thread is still in a connection attempt or a request; it ends \
                     on its own"
                );
            }
        }
        if run.spool {
            gst::debug!(self.cat, obj = element, "spool closed");
        }
    }

    pub fn unlock(&self) {
        if let Some(q) = self.queue() {
            q.set_flushing(true);
        }
    }

    pub fn unlock_stop(&self) {
        if let Some(q) = self.queue() {
            q.set_flushing(false);
        }
    }

    /// The counters as the `NAME-stats` structure.
    pub fn stats(&self) -> gst::Structure {
        stats_structure(self.name, self.flavour.counters, self.queue().as_deref())
    }

    /// A counter property's value; `None` when `name` is not one of the flavour's counters.
    pub fn counter(&self, name: &str) -> Option<glib::Value> {
        self.flavour
            .counters
            .iter()
            .any(|(c, _)| *c == name)
            .then(|| {
                self.queue()
                    .map_or(0, |q| counter_value(&q, name))
                    .to_value()
            })
    }

    /// Posts the counters as an element message named `NAME-stats`.
    pub fn post_stats(&self, element: &gst::Element) {
        let s = self.stats();
        gst::debug!(self.cat, obj = element, "{s}");
        let _ = element.post_message(gst::message::Element::builder(s).src(element).build());
    }
}
