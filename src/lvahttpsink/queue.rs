//! The bounded queue between `render` (which must not wait for the network) and the delivery
//! worker, with the counters every outcome goes into.

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
    /// Position in the stream, from 0.
    pub sequence: u64,
}

/// What happened to the documents so far.
#[derive(Debug, Default)]
pub struct Counters {
    pub sent: AtomicU64,
    pub failed: AtomicU64,
    pub retried: AtomicU64,
    pub timeouts: AtomicU64,
    pub dropped: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

struct Inner<T> {
    docs: VecDeque<Doc<T>>,
    in_flight: bool,
    /// `render` must not wait (flushing or stopping).
    flushing: bool,
    /// The worker must stop as soon as it can.
    stopped: bool,
}

/// A bounded FIFO of documents shared by `render` and the worker.
pub struct Queue<T> {
    inner: Mutex<Inner<T>>,
    capacity: usize,
    overflow: Overflow,
    /// Signalled on every change: a document in, a document done, room made, stop, flush.
    changed: Condvar,
    pub counters: Counters,
}

/// Why `push` did not queue.
#[derive(Debug, PartialEq, Eq)]
pub struct Flushing;

impl<T> Queue<T> {
    pub fn new(capacity: usize, overflow: Overflow) -> Queue<T> {
        Queue {
            inner: Mutex::new(Inner {
                docs: VecDeque::new(),
                in_flight: false,
                flushing: false,
                stopped: false,
            }),
            capacity: capacity.max(1),
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

    /// Queues a document; when full, drops the oldest or waits, by the overflow policy.
    pub fn push(&self, doc: Doc<T>) -> Result<(), Flushing> {
        let mut inner = self.lock();
        while inner.docs.len() >= self.capacity {
            if inner.flushing || inner.stopped {
                return Err(Flushing);
            }
            match self.overflow {
                Overflow::DropOldest => {
                    inner.docs.pop_front();
                    Counters::add(&self.counters.dropped, 1);
                }
                Overflow::Block => {
                    inner = self.changed.wait(inner).unwrap_or_else(|e| e.into_inner());
                }
            }
        }
        if inner.flushing || inner.stopped {
            return Err(Flushing);
        }
        inner.docs.push_back(doc);
        self.changed.notify_all();
        Ok(())
    }

    /// The next document for the worker (marked in flight), waiting up to `wait`; `None` when
    /// stopped or nothing came.
    pub fn next(&self, wait: Duration) -> Option<Doc<T>> {
        let inner = self.lock();
        let mut inner = self.wait_while(inner, Instant::now() + wait, |i| {
            !i.stopped && i.docs.is_empty()
        });
        if inner.stopped {
            return None;
        }
        let doc = inner.docs.pop_front()?;
        inner.in_flight = true;
        self.changed.notify_all();
        Some(doc)
    }

    /// The worker is done with its document.
    pub fn done(&self) {
        self.lock().in_flight = false;
        self.changed.notify_all();
    }

    /// Waits up to `wait` unless stopped first; true when stopped.
    pub fn sleep(&self, wait: Duration) -> bool {
        let inner = self.lock();
        self.wait_while(inner, Instant::now() + wait, |i| !i.stopped)
            .stopped
    }

    /// Waits until every queued document has been handled, up to `timeout`; true if so.
    pub fn wait_drained(&self, timeout: Duration) -> bool {
        let busy = |i: &Inner<T>| !i.docs.is_empty() || i.in_flight;
        let inner = self.lock();
        let inner = self.wait_while(inner, Instant::now() + timeout, |i| !i.stopped && busy(i));
        !busy(&inner)
    }

    /// Makes `push` return at once instead of waiting for room (flushing), or not.
    pub fn set_flushing(&self, flushing: bool) {
        self.lock().flushing = flushing;
        self.changed.notify_all();
    }

    /// Stops the worker and gives up every document not yet delivered: the queued ones and the
    /// one in flight are counted as dropped. Returns how many.
    pub fn stop(&self) -> u64 {
        let mut inner = self.lock();
        if inner.stopped {
            return 0;
        }
        inner.stopped = true;
        let lost = inner.docs.len() as u64 + u64::from(inner.in_flight);
        inner.docs.clear();
        Counters::add(&self.counters.dropped, lost);
        self.changed.notify_all();
        lost
    }

    pub fn is_stopped(&self) -> bool {
        self.lock().stopped
    }

    /// Documents waiting (not counting the one in flight).
    pub fn len(&self) -> usize {
        self.lock().docs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
        assert_eq!(pusher.join().unwrap(), Ok(()));
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
        assert_eq!(q.stop(), 3, "two queued and one in flight");
        assert!(sleeper.join().unwrap(), "the sleep ends at stop");
        assert_eq!(Counters::get(&q.counters.dropped), 3);
        assert!(q.next(Duration::from_secs(1)).is_none());
        assert_eq!(q.push(doc(9)), Err(Flushing));
        assert_eq!(q.stop(), 0);
    }
}
