//! Workers handed out in arrival order.
//!
//! A model has `workers` pipelines; requests beyond that wait. A plain condition variable wakes
//! an arbitrary waiter, so under load a request that arrived later can overtake one that has
//! waited longer, which stretches the slowest answers (the p99). Here each waiter takes a place
//! in a queue and only the one at its head may take a freed worker.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

/// `capacity` turns at once, given to waiters first come, first served.
pub struct Turns {
    capacity: usize,
    state: Mutex<State>,
    changed: Condvar,
}

struct State {
    running: usize,
    next_id: u64,
    waiting: VecDeque<u64>,
}

/// A turn being used; dropping it (also on unwind) hands it to the next waiter.
pub struct Turn<'a>(&'a Turns);

impl Turns {
    pub fn new(capacity: usize) -> Turns {
        Turns {
            capacity,
            state: Mutex::new(State {
                running: 0,
                next_id: 0,
                waiting: VecDeque::new(),
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a turn behind everyone who asked earlier; `None` if `deadline` passes first.
    pub fn take(&self, deadline: Instant) -> Option<Turn<'_>> {
        let mut state = self.lock();
        if state.waiting.is_empty() && state.running < self.capacity {
            state.running += 1;
            return Some(Turn(self));
        }
        let id = state.next_id;
        state.next_id += 1;
        state.waiting.push_back(id);
        loop {
            if state.waiting.front() == Some(&id) && state.running < self.capacity {
                state.waiting.pop_front();
                state.running += 1;
                // More than one worker may be free: let the new head look too.
                self.changed.notify_all();
                return Some(Turn(self));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                state.waiting.retain(|&w| w != id);
                // The head may have changed to a waiter that can now go.
                self.changed.notify_all();
                return None;
            }
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Requests waiting for a turn.
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.lock().waiting.len()
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.0.lock().running -= 1;
        self.0.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn wait_until(what: impl Fn() -> bool) {
        let end = Instant::now() + Duration::from_secs(10);
        while !what() {
            assert!(Instant::now() < end, "condition not reached in 10 s");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn waiters_get_turns_in_the_order_they_asked() {
        let turns = Turns::new(1);
        let order = Mutex::new(Vec::new());
        let held = turns.take(Instant::now()).expect("a free turn");
        std::thread::scope(|s| {
            for i in 0..8 {
                let (turns, order) = (&turns, &order);
                s.spawn(move || {
                    let far = Instant::now() + Duration::from_secs(30);
                    let _turn = turns.take(far).expect("a turn before the deadline");
                    order.lock().unwrap().push(i);
                });
                // The next thread asks only once this one is queued.
                wait_until(|| turns.waiting() == i + 1);
            }
            drop(held);
        });
        assert_eq!(*order.lock().unwrap(), (0..8).collect::<Vec<_>>());
    }

    #[test]
    fn a_late_arrival_does_not_take_a_freed_turn_from_a_waiter() {
        let turns = Turns::new(1);
        let held = turns.take(Instant::now()).expect("a free turn");
        std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                turns
                    .take(Instant::now() + Duration::from_secs(30))
                    .is_some()
            });
            wait_until(|| turns.waiting() == 1);
            drop(held);
            // Whether or not the waiter has woken yet, the freed turn is its own.
            assert!(
                turns.take(Instant::now()).is_none(),
                "the late arrival overtook"
            );
            assert!(waiter.join().unwrap());
        });
        assert!(
            turns.take(Instant::now()).is_some(),
            "the waiter gave its turn back"
        );
    }

    #[test]
    fn a_waiter_that_times_out_leaves_the_queue_and_lets_the_next_go() {
        let turns = Turns::new(1);
        let held = turns.take(Instant::now()).expect("a free turn");
        std::thread::scope(|s| {
            let early = s.spawn(|| {
                turns
                    .take(Instant::now() + Duration::from_millis(50))
                    .is_some()
            });
            wait_until(|| turns.waiting() == 1);
            let late = s.spawn(|| {
                turns
                    .take(Instant::now() + Duration::from_secs(30))
                    .is_some()
            });
            wait_until(|| turns.waiting() == 2);
            assert!(
                !early.join().unwrap(),
                "the deadline passed with the turn held"
            );
            assert_eq!(turns.waiting(), 1, "the timed-out waiter left the queue");
            drop(held);
            assert!(late.join().unwrap(), "the next waiter got the freed turn");
        });
    }

    #[test]
    fn with_free_turns_and_no_queue_a_request_goes_at_once() {
        let turns = Turns::new(3);
        let past = Instant::now();
        let all: Vec<_> = (0..3).map(|_| turns.take(past)).collect();
        assert!(all.iter().all(Option::is_some));
        assert!(turns.take(past).is_none(), "no fourth turn");
        drop(all);
        assert!(turns.take(past).is_some(), "dropped turns come back");
    }
}
