//! The bounded backlog between `render` (which must not wait for the network) and a delivery
//! worker, with the counters every outcome goes into.
//!
//! Documents stay in the backlog until the worker is done with them (peek/commit): [`Queue::take`]
//! hands out copies of the oldest waiting documents and marks them *in flight*;
//! [`Queue::commit`] removes the `n` oldest in-flight ones (the broker confirmed them);
//! [`Queue::rewind`] makes every in-flight document waiting again (the connection failed: they
//! are sent again, first). So a worker can keep many documents in flight and still deliver in
//! order and lose none.
//!
//! Where the documents are kept is a [`Store`]: [`MemoryStore`] (a bounded deque, the default)
//! or the disk spool ([`crate::publish::spool::Spool`]). The bound and the overflow policy apply
//! to the *waiting* documents: the in-flight ones are never dropped.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// What happens when a document arrives and the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// Drop the oldest waiting document (counted) and take the new one.
    DropOldest,
    /// Wait for room: back-pressure on the pipeline.
    Block,
}

/// One document to deliver.
#[derive(Debug, Clone)]
pub struct Doc<T> {
    pub body: T,
    /// Presentation timestamp of the frame, in nanoseconds.
    pub pts: Option<u64>,
    /// Position in the stream, from 0 (with a spool: since the spool was created).
    pub sequence: u64,
}

/// What happened to the documents so far. Each sink uses the ones that apply to it.
#[derive(Debug, Default)]
pub struct Counters {
    /// Delivered (confirmed by the receiver or broker).
    pub sent: AtomicU64,
    /// Given up: refused by the receiver, not retried.
    pub failed: AtomicU64,
    /// Retries of one document (`lvahttpsink`).
    pub retried: AtomicU64,
    /// Requests without an answer in time (`lvahttpsink`).
    pub timeouts: AtomicU64,
    /// Lost: queue or spool full (`drop-oldest`), not written to the spool, or undelivered at
    /// EOS or stop without a spool.
    pub dropped: AtomicU64,
    /// Sent again after a connection failure (each may arrive twice).
    pub resent: AtomicU64,
    /// Held while the broker was unreachable and sent once it was back (the backlog at each
    /// reconnection).
    pub waited: AtomicU64,
    /// Left when the EOS flush ran out or at a stop: dropped without a spool, kept in it with
    /// one.
    pub undelivered: AtomicU64,
    /// Found in the spool at start, left by an earlier run.
    pub recovered: AtomicU64,
    /// Damaged records of the spool discarded (a torn last record after a crash).
    pub discarded: AtomicU64,
    /// Connections lost or attempts that failed.
    pub disconnects: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Where the documents of a [`Queue`] are kept. Called with the queue's lock held.
///
/// Positions: the documents are in order; the oldest `in_flight()` ones were taken by the worker
/// and not yet committed, the rest are waiting.
pub trait Store<T>: Send {
    /// Documents waiting (not in flight).
    fn waiting(&self) -> usize;
    /// Documents taken and not yet committed.
    fn in_flight(&self) -> usize;
    /// Whether `doc` can be added without dropping or waiting.
    fn has_room(&self, doc: &Doc<T>) -> bool;
    /// Adds a document at the end; returns its sequence (the spool numbers its records itself).
    fn push(&mut self, doc: Doc<T>) -> Result<u64, String>;
    /// Drops the oldest waiting document; false when none waits.
    fn drop_oldest(&mut self) -> bool;
    /// Copies of the next `max` waiting documents at most, now in flight.
    fn take(&mut self, max: usize) -> Result<Vec<Doc<T>>, String>;
    /// The `n` oldest in-flight documents are done.
    fn commit(&mut self, n: usize) -> Result<(), String>;
    /// Every in-flight document waits again, before the others.
    fn rewind(&mut self);
    /// The run ends. Returns how many documents are given up (lost); what the store keeps for a
    /// later run (the spool) is not counted.
    fn close(&mut self) -> u64;
    /// A handle to flush to disk outside the lock, when there is something to flush.
    fn sync_handle(&mut self) -> Option<std::fs::File> {
        None
    }
}

/// The in-memory store: at most `capacity` waiting documents.
pub struct MemoryStore<T> {
    docs: VecDeque<Doc<T>>,
    in_flight: usize,
    capacity: usize,
}

impl<T> MemoryStore<T> {
    pub fn new(capacity: usize) -> MemoryStore<T> {
        MemoryStore {
            docs: VecDeque::new(),
            in_flight: 0,
            capacity: capacity.max(1),
        }
    }
}

impl<T: Clone + Send> Store<T> for MemoryStore<T> {
    fn waiting(&self) -> usize {
        self.docs.len() - self.in_flight
    }

    fn in_flight(&self) -> usize {
        self.in_flight
    }

    fn has_room(&self, _doc: &Doc<T>) -> bool {
        self.waiting() < self.capacity
    }

    fn push(&mut self, doc: Doc<T>) -> Result<u64, String> {
        let sequence = doc.sequence;
        self.docs.push_back(doc);
        Ok(sequence)
    }

    fn drop_oldest(&mut self) -> bool {
        self.docs.remove(self.in_flight).is_some()
    }

    fn take(&mut self, max: usize) -> Result<Vec<Doc<T>>, String> {
        let end = (self.in_flight + max).min(self.docs.len());
        let docs = self.docs.range(self.in_flight..end).cloned().collect();
        self.in_flight = end;
        Ok(docs)
    }

    fn commit(&mut self, n: usize) -> Result<(), String> {
        let n = n.min(self.in_flight);
        self.docs.drain(..n);
        self.in_flight -= n;
        Ok(())
    }

    fn rewind(&mut self) {
        self.in_flight = 0;
    }

    fn close(&mut self) -> u64 {
        let lost = self.docs.len() as u64;
        self.docs.clear();
        self.in_flight = 0;
        lost
    }
}

struct Inner<T> {
    store: Box<dyn Store<T>>,
    /// `render` must not wait (flushing or stopping).
    flushing: bool,
    /// The worker must stop as soon as it can.
    stopped: bool,
    /// Documents in flight at the stop that it counted as dropped (a memory store), so that one
    /// delivered after all can be taken back out.
    lost_in_flight: usize,
}

/// A bounded FIFO of documents shared by `render` and the worker.
pub struct Queue<T> {
    inner: Mutex<Inner<T>>,
    overflow: Overflow,
    /// Signalled on every change: a document in, a document done, room made, stop, flush.
    changed: Condvar,
    pub counters: Counters,
}

/// Why `push` did not queue.
#[derive(Debug, PartialEq, Eq)]
pub enum PushError {
    /// Flushing or stopped: the pipeline is shutting down.
    Flushing,
    /// The store could not keep the document (disk full, say); it is counted as dropped.
    Store(String),
}

/// Kept for the callers of the first version: `push` fails only this way with a memory store.
pub use PushError::Flushing;

/// What [`Queue::stop`] did with the documents left.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stopped {
    /// Given up, counted as dropped.
    pub lost: u64,
    /// Kept by the store (the spool) for the next run.
    pub kept: u64,
}

impl<T: Clone + Send + 'static> Queue<T> {
    /// A queue in memory of at most `capacity` waiting documents.
    pub fn new(capacity: usize, overflow: Overflow) -> Queue<T> {
        Queue::with_store(Box::new(MemoryStore::new(capacity)), overflow)
    }
}

impl<T> Queue<T> {
    pub fn with_store(store: Box<dyn Store<T>>, overflow: Overflow) -> Queue<T> {
        Queue {
            inner: Mutex::new(Inner {
                store,
                flushing: false,
                stopped: false,
                lost_in_flight: 0,
            }),
            overflow,
            changed: Condvar::new(),
            counters: Counters::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<T>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits on `changed` while `waiting` holds and `deadline` has not passed.
    fn wait_while<'a>(
        &self,
        mut inner: MutexGuard<'a, Inner<T>>,
        deadline: Instant,
        mut waiting: impl FnMut(&Inner<T>) -> bool,
    ) -> MutexGuard<'a, Inner<T>> {
        while waiting(&inner) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            inner = self
                .changed
                .wait_timeout(inner, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        inner
    }

    /// Queues a document; when full, drops the oldest waiting one or waits, by the overflow
    /// policy. Returns the document's sequence.
    pub fn push(&self, doc: Doc<T>) -> Result<u64, PushError> {
        let mut inner = self.lock();
        while !inner.store.has_room(&doc) {
            if inner.flushing || inner.stopped {
                return Err(PushError::Flushing);
            }
            match self.overflow {
                Overflow::DropOldest => {
                    if inner.store.drop_oldest() {
                        Counters::add(&self.counters.dropped, 1);
                    } else {
                        // Nothing waits: only in-flight documents fill the store; take the
                        // document over the bound rather than lose it.
                        break;
                    }
                }
                Overflow::Block => {
                    if inner.store.waiting() == 0 && inner.store.in_flight() == 0 {
                        // Too big for an empty store: waiting would never end.
                        break;
                    }
                    inner = self.changed.wait(inner).unwrap_or_else(|e| e.into_inner());
                }
            }
        }
        if inner.flushing || inner.stopped {
            return Err(PushError::Flushing);
        }
        let pushed = inner.store.push(doc);
        self.changed.notify_all();
        pushed.map_err(|e| {
            Counters::add(&self.counters.dropped, 1);
            PushError::Store(e)
        })
    }

    /// The next waiting documents for the worker, `max` at most, now in flight; waits up to
    /// `wait` for one. Empty when stopped or nothing came.
    pub fn take(&self, max: usize, wait: Duration) -> Result<Vec<Doc<T>>, String> {
        let inner = self.lock();
        let mut inner = self.wait_while(inner, Instant::now() + wait, |i| {
            !i.stopped && i.store.waiting() == 0
        });
        if inner.stopped || max == 0 {
            return Ok(Vec::new());
        }
        let docs = inner.store.take(max);
        self.changed.notify_all();
        docs
    }

    /// The next document for a worker that sends one at a time (in flight until [`done`]).
    ///
    /// [`done`]: Queue::done
    pub fn next(&self, wait: Duration) -> Option<Doc<T>> {
        self.take(1, wait).ok()?.pop()
    }

    /// The worker is done with its document (see [`next`](Queue::next)).
    pub fn done(&self) {
        let _ = self.commit(1);
    }

    /// The `n` oldest in-flight documents are done (delivered or given up).
    pub fn commit(&self, n: usize) -> Result<(), String> {
        let committed = self.lock().store.commit(n);
        self.changed.notify_all();
        committed
    }

    /// The `n` oldest in-flight documents have their outcome: `delivered` of them are counted in
    /// `sent`, the others in `failed`, and all are committed. After a stop (whose outcomes come
    /// late: the store is closed) a delivered one that the stop counted as dropped is taken back
    /// out of `dropped` and `undelivered`; a refused one stays where the stop counted it.
    pub fn complete(&self, n: usize, delivered: usize) -> Result<(), String> {
        let delivered = delivered.min(n);
        let mut inner = self.lock();
        Counters::add(&self.counters.sent, delivered as u64);
        if inner.stopped {
            let back = delivered.min(inner.lost_in_flight);
            inner.lost_in_flight -= back;
            for counter in [&self.counters.dropped, &self.counters.undelivered] {
                counter.fetch_sub(back as u64, Ordering::Relaxed);
            }
            return Ok(());
        }
        Counters::add(&self.counters.failed, (n - delivered) as u64);
        let committed = inner.store.commit(n);
        self.changed.notify_all();
        committed
    }

    /// Every in-flight document waits again, first in line; returns how many.
    pub fn rewind(&self) -> usize {
        let mut inner = self.lock();
        let n = inner.store.in_flight();
        inner.store.rewind();
        self.changed.notify_all();
        n
    }

    /// Waits up to `wait` unless stopped first; true when stopped.
    pub fn sleep(&self, wait: Duration) -> bool {
        let inner = self.lock();
        self.wait_while(inner, Instant::now() + wait, |i| !i.stopped)
            .stopped
    }

    /// Waits until every queued document has been handled, up to `timeout`; true if so.
    pub fn wait_drained(&self, timeout: Duration) -> bool {
        let busy = |i: &Inner<T>| i.store.waiting() > 0 || i.store.in_flight() > 0;
        let inner = self.lock();
        let inner = self.wait_while(inner, Instant::now() + timeout, |i| !i.stopped && busy(i));
        !busy(&inner)
    }

    /// Makes `push` return at once instead of waiting for room (flushing), or not.
    pub fn set_flushing(&self, flushing: bool) {
        self.lock().flushing = flushing;
        self.changed.notify_all();
    }

    /// Stops the worker and closes the store: what a memory queue still holds (waiting and in
    /// flight) is counted as dropped; the spool keeps its documents for the next run. Both are
    /// counted in `undelivered`.
    pub fn stop(&self) -> Stopped {
        let mut inner = self.lock();
        if inner.stopped {
            return Stopped::default();
        }
        inner.stopped = true;
        let in_flight = inner.store.in_flight();
        let left = (inner.store.waiting() + in_flight) as u64;
        inner.store.rewind();
        let lost = inner.store.close();
        inner.lost_in_flight = in_flight.min(usize::try_from(lost).unwrap_or(usize::MAX));
        Counters::add(&self.counters.dropped, lost);
        Counters::add(&self.counters.undelivered, left);
        self.changed.notify_all();
        Stopped {
            lost,
            kept: left.saturating_sub(lost),
        }
    }

    pub fn is_stopped(&self) -> bool {
        self.lock().stopped
    }

    /// Documents waiting (not counting those in flight).
    pub fn len(&self) -> usize {
        self.lock().store.waiting()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Documents not yet delivered: waiting and in flight.
    pub fn backlog(&self) -> usize {
        let inner = self.lock();
        inner.store.waiting() + inner.store.in_flight()
    }

    /// Flushes the store's data to disk (the spool), outside the lock.
    pub fn sync(&self) {
        let handle = self.lock().store.sync_handle();
        if let Some(file) = handle {
            let _ = file.sync_data();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn doc(n: u64) -> Doc<u64> {
        Doc {
            body: n,
            pts: None,
            sequence: n,
        }
    }

    #[test]
    fn drop_oldest_counts_exactly() {
        let q = Queue::new(3, Overflow::DropOldest);
        for n in 0..10 {
            q.push(doc(n)).unwrap();
        }
        assert_eq!(Counters::get(&q.counters.dropped), 7);
        let left: Vec<u64> = std::iter::from_fn(|| q.next(Duration::ZERO).map(|d| d.body))
            .inspect(|_| q.done())
            .collect();
        assert_eq!(left, vec![7, 8, 9]);
    }

    #[test]
    fn block_waits_for_room_and_flushing_releases_it() {
        let q = Arc::new(Queue::new(2, Overflow::Block));
        q.push(doc(0)).unwrap();
        q.push(doc(1)).unwrap();
        let pusher = {
            let q = q.clone();
            std::thread::spawn(move || q.push(doc(2)))
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(!pusher.is_finished(), "push waits while full");
        assert_eq!(q.next(Duration::ZERO).map(|d| d.body), Some(0));
        assert_eq!(pusher.join().unwrap(), Ok(2));
        assert_eq!(q.len(), 2);

        let blocked = {
            let q = q.clone();
            std::thread::spawn(move || q.push(doc(3)))
        };
        std::thread::sleep(Duration::from_millis(50));
        q.set_flushing(true);
        assert_eq!(blocked.join().unwrap(), Err(Flushing));
        assert_eq!(Counters::get(&q.counters.dropped), 0);
    }

    #[test]
    fn drained_means_nothing_queued_nor_in_flight() {
        let q = Arc::new(Queue::new(4, Overflow::DropOldest));
        q.push(doc(0)).unwrap();
        assert!(!q.wait_drained(Duration::from_millis(20)));
        let worker = {
            let q = q.clone();
            std::thread::spawn(move || {
                let d = q.next(Duration::from_secs(1));
                std::thread::sleep(Duration::from_millis(50));
                q.done();
                d.map(|d| d.body)
            })
        };
        assert!(q.wait_drained(Duration::from_secs(2)));
        assert_eq!(worker.join().unwrap(), Some(0));
    }

    #[test]
    fn stop_counts_what_is_left_and_wakes_everyone() {
        let q = Arc::new(Queue::new(4, Overflow::DropOldest));
        for n in 0..3 {
            q.push(doc(n)).unwrap();
        }
        assert!(q.next(Duration::ZERO).is_some());
        let sleeper = {
            let q = q.clone();
            std::thread::spawn(move || q.sleep(Duration::from_secs(30)))
        };
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(
            q.stop(),
            Stopped { lost: 3, kept: 0 },
            "two queued and one in flight"
        );
        assert!(sleeper.join().unwrap(), "the sleep ends at stop");
        assert_eq!(Counters::get(&q.counters.dropped), 3);
        assert!(q.next(Duration::from_secs(1)).is_none());
        assert_eq!(q.push(doc(9)), Err(Flushing));
        assert_eq!(q.stop(), Stopped::default());
    }

    #[test]
    fn a_document_delivered_after_the_stop_is_sent_not_dropped() {
        let q = Queue::new(4, Overflow::DropOldest);
        for n in 0..3 {
            q.push(doc(n)).unwrap();
        }
        assert_eq!(q.take(2, Duration::ZERO).unwrap().len(), 2);
        assert_eq!(q.stop(), Stopped { lost: 3, kept: 0 });
        assert_eq!(Counters::get(&q.counters.undelivered), 3);
        // The first in flight is confirmed after all, the second refused: 2 stay lost.
        q.complete(2, 1).unwrap();
        let c = &q.counters;
        assert_eq!(
            [&c.sent, &c.failed, &c.dropped, &c.undelivered].map(Counters::get),
            [1, 0, 2, 2]
        );
    }

    #[test]
    fn peek_commit_and_rewind_keep_order() {
        let q = Queue::new(10, Overflow::DropOldest);
        for n in 0..6 {
            q.push(doc(n)).unwrap();
        }
        let first: Vec<u64> = q
            .take(4, Duration::ZERO)
            .unwrap()
            .iter()
            .map(|d| d.body)
            .collect();
        assert_eq!(first, [0, 1, 2, 3]);
        assert_eq!((q.len(), q.backlog()), (2, 6));
        q.commit(2).unwrap();
        assert_eq!(q.backlog(), 4);
        assert_eq!(q.rewind(), 2, "2 and 3 were in flight");
        let again: Vec<u64> = q
            .take(10, Duration::ZERO)
            .unwrap()
            .iter()
            .map(|d| d.body)
            .collect();
        assert_eq!(again, [2, 3, 4, 5], "sent again, in order");
        q.commit(4).unwrap();
        assert!(q.wait_drained(Duration::ZERO));
    }

    #[test]
    fn drop_oldest_spares_the_documents_in_flight() {
        let q = Queue::new(2, Overflow::DropOldest);
        for n in 0..3 {
            q.push(doc(n)).unwrap();
        }
        // 0 was dropped; 1 goes in flight, 2 waits.
        assert_eq!(q.take(1, Duration::ZERO).unwrap()[0].body, 1);
        for n in 3..6 {
            q.push(doc(n)).unwrap();
        }
        assert_eq!(Counters::get(&q.counters.dropped), 3, "0, 2 and 3");
        q.rewind();
        let left: Vec<u64> = q
            .take(10, Duration::ZERO)
            .unwrap()
            .iter()
            .map(|d| d.body)
            .collect();
        assert_eq!(left, [1, 4, 5]);
    }
}
