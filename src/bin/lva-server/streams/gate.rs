//! The bounded handoff between a stream's source half and its processing half.
//!
//! The source's streaming thread [`enter`](Gate::enter)s before it queues a frame into the
//! processing pipeline's `appsrc`; a probe on the `appsrc`'s output [`leave`](Gate::leave)s when
//! the frame goes on to inference. At most `capacity` frames wait in between. When the gate is
//! full a `realtime` stream drops the new frame (the caller counts it) so the source is never
//! slowed, and any other stream waits for room (back-pressure: nothing is dropped). A wait ends
//! when there is room, when the caller's source is being torn down (its `cancel` flag, checked
//! at least every [`RECHECK`]) or when the gate is closed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// How often a waiting frame looks at its cancel flag.
pub const RECHECK: Duration = Duration::from_millis(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Wait for room (files, back-pressure).
    Block,
    /// Drop the new frame when full (`realtime`).
    Drop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Queue the frame; [`Gate::leave`] once it is taken.
    Go,
    /// Full, in [`Mode::Drop`]: count the frame as dropped.
    Full,
    /// The caller's source is going away, or the gate is closed: drop the frame silently (the
    /// stream is stopping; the frame is counted as produced but never admitted).
    Cancelled,
}

#[derive(Debug, Default)]
struct Inner {
    held: usize,
    waiting: usize,
    closed: bool,
}

#[derive(Debug)]
pub struct Gate {
    capacity: usize,
    inner: Mutex<Inner>,
    room: Condvar,
}

impl Gate {
    pub fn new(capacity: usize) -> Gate {
        Gate {
            capacity: capacity.max(1),
            inner: Mutex::new(Inner::default()),
            room: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn enter(&self, mode: Mode, cancel: &AtomicBool) -> Admit {
        let mut inner = self.lock();
        loop {
            if inner.closed || cancel.load(Ordering::SeqCst) {
                return Admit::Cancelled;
            }
            if inner.held < self.capacity {
                inner.held += 1;
                return Admit::Go;
            }
            if mode == Mode::Drop {
                return Admit::Full;
            }
            inner.waiting += 1;
            inner = self
                .room
                .wait_timeout(inner, RECHECK)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            inner.waiting -= 1;
        }
    }

    /// A frame admitted by [`Gate::enter`] was taken by the processing half.
    pub fn leave(&self) {
        let mut inner = self.lock();
        inner.held = inner.held.saturating_sub(1);
        drop(inner);
        self.room.notify_one();
    }

    /// Wakes every waiter to look at its cancel flag now.
    pub fn wake(&self) {
        self.room.notify_all();
    }

    /// Ends every wait, now and later.
    pub fn close(&self) {
        self.lock().closed = true;
        self.room.notify_all();
    }

    /// Whether a frame is waiting for room: the source is held back, not stalled.
    pub fn is_blocking(&self) -> bool {
        self.lock().waiting > 0
    }

    /// Frames admitted and not taken yet.
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.lock().held
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn realtime_drops_when_full_and_admits_again_when_taken() {
        let gate = Gate::new(2);
        let go = AtomicBool::new(false);
        assert_eq!(gate.enter(Mode::Drop, &go), Admit::Go);
        assert_eq!(gate.enter(Mode::Drop, &go), Admit::Go);
        assert_eq!(gate.enter(Mode::Drop, &go), Admit::Full);
        assert_eq!(gate.held(), 2);
        gate.leave();
        assert_eq!(gate.enter(Mode::Drop, &go), Admit::Go);
        assert_eq!(gate.enter(Mode::Drop, &go), Admit::Full);
    }

    #[test]
    fn blocking_waits_for_room_and_loses_nothing() {
        let gate = Arc::new(Gate::new(2));
        let producer = {
            let gate = gate.clone();
            std::thread::spawn(move || {
                let go = AtomicBool::new(false);
                (0..100)
                    .map(|_| gate.enter(Mode::Block, &go))
                    .filter(|a| *a == Admit::Go)
                    .count()
            })
        };
        let mut taken = 0;
        while taken < 100 {
            if gate.held() > 0 {
                assert!(gate.held() <= 2);
                gate.leave();
                taken += 1;
            } else {
                std::thread::yield_now();
            }
        }
        assert_eq!(producer.join().unwrap(), 100);
    }

    #[test]
    fn a_blocked_frame_is_released_by_its_cancel_flag_or_by_close() {
        let gate = Arc::new(Gate::new(1));
        let cancel = Arc::new(AtomicBool::new(false));
        assert_eq!(gate.enter(Mode::Block, &cancel), Admit::Go);
        let waiter = {
            let (gate, cancel) = (gate.clone(), cancel.clone());
            std::thread::spawn(move || gate.enter(Mode::Block, &cancel))
        };
        let t0 = Instant::now();
        while !gate.is_blocking() {
            assert!(t0.elapsed() < Duration::from_secs(5));
            std::thread::yield_now();
        }
        cancel.store(true, Ordering::SeqCst);
        gate.wake();
        assert_eq!(waiter.join().unwrap(), Admit::Cancelled);
        assert!(!gate.is_blocking());

        let other = AtomicBool::new(false);
        let waiter = {
            let gate = gate.clone();
            std::thread::spawn(move || gate.enter(Mode::Block, &AtomicBool::new(false)))
        };
        while !gate.is_blocking() {
            std::thread::yield_now();
        }
        gate.close();
        assert_eq!(waiter.join().unwrap(), Admit::Cancelled);
        assert_eq!(gate.enter(Mode::Drop, &other), Admit::Cancelled);
    }
}
