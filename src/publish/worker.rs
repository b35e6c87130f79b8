//! The delivery worker of the publishing sinks: windowed, in-order delivery over a
//! [`Transport`], reconnecting with back-off, committing what the broker confirmed.
//!
//! The loop, on its own thread:
//! 1. Not connected: [`Transport::connect`]; on failure wait the back-off and try again (the
//!    documents wait in the queue, within its bound). After an outage, the backlog at the moment
//!    the connection is back is counted in `waited`.
//! 2. Take up to `max_in_flight − in flight` waiting documents from the queue (they stay in it,
//!    in flight) and [`Transport::send`] each, in order.
//! 3. [`Transport::poll`] for outcomes; mark them in the window; commit the longest prefix of
//!    the window that has an outcome (`sent` or `failed`), so the queue only ever loses its
//!    oldest documents, in order.
//! 4. A transport error (connection lost, a send that failed): every in-flight document goes
//!    back to the queue, first in line (`resent` counts them), the transport disconnects, back
//!    to 1. A document the broker may have received just before the failure is sent again: the
//!    delivery is at-least-once, duplicates only of what was in flight at a failure.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::backoff::{Backoff, random_u64};
use super::body::Body;
use super::queue::{Counters, Doc, Queue};

/// What the broker said about one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Confirmed (or, for a fire-and-forget level such as MQTT QoS 0, written out).
    Delivered(u64),
    /// Refused for good (the document itself is wrong: too large, not allowed); not sent again,
    /// counted in `failed`.
    Rejected(u64, String),
    /// Not delivered yet: the transport tries it again itself, later (HTTP's retries of one
    /// document). Counted in `retried`, and in `timeouts` when the attempt got no answer in
    /// time; the document stays in flight.
    Retrying { sequence: u64, timed_out: bool },
}

/// A failure of the connection (or of the client library): every document in flight is sent
/// again after a reconnect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportError(pub String);

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A broker connection, as the worker drives it. All calls come from the worker's thread.
///
/// Outcomes may come in any order (Kafka: per partition); the worker commits in order anyway.
/// Each connection starts afresh: whatever the client library still held from a failed one must
/// not be sent again by the library, since the worker sends it again itself.
pub trait Transport: Send {
    /// Opens a connection, waiting for the broker's acceptance up to `timeout`.
    fn connect(&mut self, timeout: Duration) -> Result<(), TransportError>;
    /// Hands one document to the client library; must not wait for the broker's confirmation.
    fn send(&mut self, doc: &Doc<Body>) -> Result<(), TransportError>;
    /// Waits up to `timeout` for outcomes of documents sent (returning as soon as there are
    /// some) and appends them to `outcomes`; an error means the connection is lost (the outcomes
    /// appended before it still count). Also called with a zero timeout while idle, so a lost
    /// connection is noticed.
    fn poll(
        &mut self,
        timeout: Duration,
        outcomes: &mut Vec<Outcome>,
    ) -> Result<(), TransportError>;
    /// Closes the connection, dropping whatever the library still holds.
    fn disconnect(&mut self);
}

/// The worker's settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// Documents sent and not yet confirmed, at most.
    pub max_in_flight: usize,
    pub connect_timeout: Duration,
    /// First wait after a failed connection; doubles (with jitter) up to `max_retry_delay`.
    pub retry_delay: Duration,
    pub max_retry_delay: Duration,
    /// How often the spool is flushed to disk.
    pub sync_interval: Duration,
}

/// What the worker tells the element (to log, warn, post messages).
pub trait Report: Send {
    /// Connected; `waited` documents had been held during an outage (0 on a first connect).
    fn connected(&self, waited: u64);
    /// A connection attempt failed; the next one in `wait`. `first` for the first failure of an
    /// outage.
    fn connect_failed(&self, reason: &str, wait: Duration, first: bool);
    /// The connection was lost; `resend` documents in flight go out again.
    fn disconnected(&self, reason: &str, resend: u64);
    /// The broker refused a document for good.
    fn rejected(&self, sequence: u64, reason: &str);
    /// The queue's store failed (a spool read or write).
    fn store_failed(&self, reason: &str);
    /// Called at least every few hundred milliseconds.
    fn tick(&self);
}

/// How long the worker waits for a new document when idle, and polls while waiting for
/// outcomes, before it checks the rest (stop, statistics).
const IDLE: Duration = Duration::from_millis(100);

/// Delivers documents from `queue` until it is stopped.
pub fn run(
    queue: Arc<Queue<Body>>,
    mut transport: impl Transport,
    options: Options,
    report: impl Report,
) {
    let counters = &queue.counters;
    let max_in_flight = options.max_in_flight.max(1);
    let mut backoff = Backoff::new(options.retry_delay, options.max_retry_delay, random_u64());
    // Sequence and outcome (None: waiting for it; Some(true): delivered; Some(false): rejected).
    let mut window: VecDeque<(u64, Option<bool>)> = VecDeque::new();
    let mut outcomes = Vec::new();
    let mut connected = false;
    let mut outage = false;
    let mut last_sync = Instant::now();
    while !queue.is_stopped() {
        report.tick();
        if last_sync.elapsed() >= options.sync_interval {
            queue.sync();
            last_sync = Instant::now();
        }
        if !connected {
            match transport.connect(options.connect_timeout) {
                Ok(()) => {
                    connected = true;
                    backoff.reset();
                    let waited = if outage { queue.backlog() as u64 } else { 0 };
                    Counters::add(&counters.waited, waited);
                    outage = false;
                    report.connected(waited);
                }
                Err(e) => {
                    transport.disconnect();
                    Counters::add(&counters.disconnects, 1);
                    let wait = backoff.next_delay();
                    report.connect_failed(&e.0, wait, !outage);
                    outage = true;
                    if queue.sleep(wait) {
                        break;
                    }
                    continue;
                }
            }
        }

        let mut failure = None;
        let room = max_in_flight.saturating_sub(window.len());
        let wait = if window.is_empty() {
            IDLE
        } else {
            Duration::ZERO
        };
        let docs = match queue.take(room, wait) {
            Ok(docs) => docs,
            Err(e) => {
                report.store_failed(&e);
                if queue.sleep(IDLE) {
                    break;
                }
                Vec::new()
            }
        };
        for doc in &docs {
            if let Err(e) = transport.send(doc) {
                failure = Some(e);
                break;
            }
            window.push_back((doc.sequence, None));
        }
        if failure.is_none() {
            // Wait for outcomes only when there is nothing more to send.
            let wait = if docs.is_empty() && !window.is_empty() {
                IDLE
            } else {
                Duration::ZERO
            };
            if let Err(e) = transport.poll(wait, &mut outcomes) {
                failure = Some(e);
            }
        }
        for outcome in outcomes.drain(..) {
            let (sequence, delivered) = match &outcome {
                Outcome::Delivered(s) => (*s, true),
                Outcome::Rejected(s, reason) => {
                    report.rejected(*s, reason);
                    (*s, false)
                }
                Outcome::Retrying { timed_out, .. } => {
                    Counters::add(&counters.timeouts, u64::from(*timed_out));
                    // A stop gives the document up: no retry then.
                    if !queue.is_stopped() {
                        Counters::add(&counters.retried, 1);
                    }
                    continue;
                }
            };
            if let Some(slot) = window
                .iter_mut()
                .find(|(s, o)| *s == sequence && o.is_none())
            {
                slot.1 = Some(delivered);
            }
        }
        let done = window.iter().take_while(|(_, o)| o.is_some()).count();
        if done > 0 {
            let delivered = window
                .drain(..done)
                .filter(|(_, outcome)| *outcome == Some(true))
                .count();
            if let Err(e) = queue.complete(done, delivered) {
                report.store_failed(&e);
            }
        }
        if let Some(e) = failure {
            transport.disconnect();
            connected = false;
            outage = true;
            Counters::add(&counters.disconnects, 1);
            let resend = queue.rewind() as u64;
            Counters::add(&counters.resent, window.len() as u64);
            window.clear();
            report.disconnected(&e.0, resend);
        }
    }
    transport.disconnect();
    queue.sync();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::queue::Overflow;
    use std::sync::Mutex;

    /// A broker in the test: records what it received, confirms in batches (possibly out of
    /// order), and fails on command.
    #[derive(Default)]
    struct Broker {
        received: Vec<u64>,
        /// Connections refused while set.
        down: bool,
        /// The connection breaks at the next poll.
        cut: bool,
        /// Sequences refused for good.
        refuse: Vec<u64>,
        connects: u32,
    }

    struct TestTransport {
        broker: Arc<Mutex<Broker>>,
        pending: Vec<u64>,
        connected: bool,
        reverse: bool,
    }

    impl Transport for TestTransport {
        fn connect(&mut self, _timeout: Duration) -> Result<(), TransportError> {
            let mut b = self.broker.lock().unwrap();
            if b.down {
                return Err(TransportError("connection refused".into()));
            }
            b.connects += 1;
            self.connected = true;
            Ok(())
        }

        fn send(&mut self, doc: &Doc<Body>) -> Result<(), TransportError> {
            assert!(self.connected, "send only when connected");
            let text = String::from_utf8_lossy(doc.body.as_ref()).into_owned();
            assert_eq!(text, format!("doc {}", doc.sequence));
            self.pending.push(doc.sequence);
            Ok(())
        }

        fn poll(
            &mut self,
            timeout: Duration,
            outcomes: &mut Vec<Outcome>,
        ) -> Result<(), TransportError> {
            let mut b = self.broker.lock().unwrap();
            if b.cut || b.down {
                b.cut = false;
                // What was written before the cut reached the broker; its answer did not.
                b.received.append(&mut self.pending);
                return Err(TransportError("connection reset".into()));
            }
            if self.pending.is_empty() {
                drop(b);
                std::thread::sleep(timeout.min(Duration::from_millis(5)));
                return Ok(());
            }
            let mut batch = std::mem::take(&mut self.pending);
            b.received.extend(&batch);
            if self.reverse {
                batch.reverse();
            }
            for s in batch {
                outcomes.push(if b.refuse.contains(&s) {
                    Outcome::Rejected(s, "too large".into())
                } else {
                    Outcome::Delivered(s)
                });
            }
            Ok(())
        }

        fn disconnect(&mut self) {
            self.pending.clear();
            self.connected = false;
        }
    }

    #[derive(Default, Clone)]
    struct Log(Arc<Mutex<Vec<String>>>);

    impl Report for Log {
        fn connected(&self, waited: u64) {
            self.0.lock().unwrap().push(format!("connected {waited}"));
        }
        fn connect_failed(&self, reason: &str, _wait: Duration, first: bool) {
            if first {
                self.0.lock().unwrap().push(format!("down: {reason}"));
            }
        }
        fn disconnected(&self, reason: &str, resend: u64) {
            self.0
                .lock()
                .unwrap()
                .push(format!("lost: {reason}, {resend} again"));
        }
        fn rejected(&self, sequence: u64, reason: &str) {
            self.0
                .lock()
                .unwrap()
                .push(format!("rejected {sequence}: {reason}"));
        }
        fn store_failed(&self, reason: &str) {
            self.0.lock().unwrap().push(format!("store: {reason}"));
        }
        fn tick(&self) {}
    }

    fn doc(n: u64) -> Doc<Body> {
        Doc {
            body: Body::from(format!("doc {n}").as_str()),
            pts: None,
            sequence: n,
        }
    }

    fn options() -> Options {
        Options {
            max_in_flight: 8,
            connect_timeout: Duration::from_secs(1),
            retry_delay: Duration::from_millis(5),
            max_retry_delay: Duration::from_millis(20),
            sync_interval: Duration::from_secs(1),
        }
    }

    struct Running {
        queue: Arc<Queue<Body>>,
        broker: Arc<Mutex<Broker>>,
        log: Log,
        worker: std::thread::JoinHandle<()>,
    }

    fn start(capacity: usize, reverse: bool, broker: Broker) -> Running {
        let queue = Arc::new(Queue::new(capacity, Overflow::DropOldest));
        let broker = Arc::new(Mutex::new(broker));
        let transport = TestTransport {
            broker: broker.clone(),
            pending: Vec::new(),
            connected: false,
            reverse,
        };
        let log = Log::default();
        let worker = {
            let (q, l) = (queue.clone(), log.clone());
            std::thread::spawn(move || run(q, transport, options(), l))
        };
        Running {
            queue,
            broker,
            log,
            worker,
        }
    }

    fn finish(r: Running) -> (Vec<u64>, Vec<String>, Arc<Queue<Body>>) {
        assert!(r.queue.wait_drained(Duration::from_secs(10)), "drained");
        r.queue.stop();
        r.worker.join().unwrap();
        let received = r.broker.lock().unwrap().received.clone();
        let log = r.log.0.lock().unwrap().clone();
        (received, log, r.queue)
    }

    fn get(q: &Queue<Body>, f: fn(&Counters) -> &std::sync::atomic::AtomicU64) -> u64 {
        Counters::get(f(&q.counters))
    }

    #[test]
    fn delivers_everything_in_order_with_outcomes_out_of_order() {
        let r = start(1000, true, Broker::default());
        for n in 0..500 {
            r.queue.push(doc(n)).unwrap();
        }
        let (received, _, q) = finish(r);
        assert_eq!(received, (0..500).collect::<Vec<_>>());
        assert_eq!(get(&q, |c| &c.sent), 500);
        assert_eq!(get(&q, |c| &c.resent), 0);
    }

    #[test]
    fn a_lost_connection_resends_what_was_in_flight_in_order() {
        let r = start(1000, false, Broker::default());
        for n in 0..100 {
            r.queue.push(doc(n)).unwrap();
        }
        assert!(r.queue.wait_drained(Duration::from_secs(5)));
        // The connection breaks with documents in flight: they are sent again.
        r.broker.lock().unwrap().cut = true;
        for n in 100..200 {
            r.queue.push(doc(n)).unwrap();
        }
        let (received, log, q) = finish(r);
        let mut sorted = received.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, (0..200).collect::<Vec<_>>(), "every document");
        let duplicates = received.len() as u64 - 200;
        assert_eq!(get(&q, |c| &c.sent), 200);
        assert_eq!(get(&q, |c| &c.resent), duplicates);
        // In order but for the re-sent run: each document after its predecessor's first copy.
        let first: Vec<usize> = (0..200u64)
            .map(|n| received.iter().position(|&s| s == n).unwrap())
            .collect();
        assert!(first.windows(2).all(|w| w[0] < w[1]), "{received:?}");
        assert!(
            log.iter().any(|l| l.starts_with("lost: connection reset")),
            "{log:?}"
        );
    }

    #[test]
    fn an_outage_holds_the_documents_and_counts_them_as_waited() {
        let r = start(1000, false, Broker::default());
        r.queue.push(doc(0)).unwrap();
        assert!(r.queue.wait_drained(Duration::from_secs(5)));
        r.broker.lock().unwrap().down = true;
        for n in 1..51 {
            r.queue.push(doc(n)).unwrap();
        }
        std::thread::sleep(Duration::from_millis(100));
        assert!(r.queue.backlog() > 0);
        r.broker.lock().unwrap().down = false;
        let (received, log, q) = finish(r);
        let mut sorted = received.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, (0..51).collect::<Vec<_>>());
        assert_eq!(get(&q, |c| &c.waited), 50, "{log:?}");
        assert!(get(&q, |c| &c.disconnects) >= 1);
        assert!(log.contains(&"connected 50".to_string()), "{log:?}");
    }

    #[test]
    fn refused_documents_are_counted_failed_and_not_sent_again() {
        let broker = Broker {
            refuse: vec![3, 7],
            ..Broker::default()
        };
        let r = start(100, true, broker);
        for n in 0..10 {
            r.queue.push(doc(n)).unwrap();
        }
        let (received, log, q) = finish(r);
        assert_eq!(received, (0..10).collect::<Vec<_>>());
        assert_eq!((get(&q, |c| &c.sent), get(&q, |c| &c.failed)), (8, 2));
        assert!(
            log.contains(&"rejected 3: too large".to_string()),
            "{log:?}"
        );
    }

    #[test]
    fn a_broker_down_from_the_start_loses_only_what_the_queue_cannot_hold() {
        let broker = Broker {
            down: true,
            ..Broker::default()
        };
        let r = start(10, false, broker);
        for n in 0..30 {
            r.queue.push(doc(n)).unwrap();
        }
        assert_eq!(get(&r.queue, |c| &c.dropped), 20);
        std::thread::sleep(Duration::from_millis(50));
        r.broker.lock().unwrap().down = false;
        let (received, _, q) = finish(r);
        assert_eq!(received, (20..30).collect::<Vec<_>>());
        assert_eq!(get(&q, |c| &c.waited), 10);
        assert_eq!(get(&q, |c| &c.sent), 10);
    }

    #[test]
    fn stop_while_the_broker_is_down_ends_the_worker() {
        let broker = Broker {
            down: true,
            ..Broker::default()
        };
        let r = start(10, false, broker);
        r.queue.push(doc(0)).unwrap();
        std::thread::sleep(Duration::from_millis(30));
        let stopped = r.queue.stop();
        assert_eq!(stopped.lost, 1);
        let t = Instant::now();
        r.worker.join().unwrap();
        assert!(t.elapsed() < Duration::from_secs(1));
        assert_eq!(r.broker.lock().unwrap().connects, 0);
    }
}
