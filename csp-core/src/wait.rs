//! The one place that decides how a blocked thread waits.
//!
//! Every blocking operation and every alternation owns a [`Selector`] while it waits. A
//! counterpart that completes a communication with it, or an event that changes the state of a
//! channel it waits on (poison, retire), moves the selector out of [`WAITING`] with a
//! compare-and-swap and then wakes its thread. Exactly one party wins that swap, which is what
//! makes a choice fire exactly one guard.
//!
//! Waiting spins briefly, then yields, then parks: waking a parked thread on another CPU costs
//! tens of microseconds, while a partner that answers within a few microseconds is caught by
//! the spin.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::{self, Thread};
use std::time::Instant;

/// The selector waits: no guard chosen yet.
const WAITING: usize = 0;
/// The owner gave up waiting (its deadline passed).
const ABORTED: usize = 1;
/// Something changed (poison, retire, or the owner saw a ready counterpart): try again.
const RECHECK: usize = 2;
/// `FIRST_GUARD + i` means guard `i` was chosen by a counterpart.
const FIRST_GUARD: usize = 3;

/// Busy-wait iterations before yielding.
const SPIN_ROUNDS: u32 = 64;
/// `yield_now` calls before parking.
const YIELD_ROUNDS: u32 = 16;

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Woken {
    /// A counterpart chose guard `i` and carried out its communication.
    Selected(usize),
    /// The state of a channel changed; the owner must look again.
    Recheck,
    /// The deadline passed first.
    TimedOut,
}

/// The rendezvous point between a waiting thread and whoever completes its operation.
#[derive(Debug)]
pub(crate) struct Selector {
    state: AtomicUsize,
    thread: Thread,
}

thread_local! {
    static CURRENT: Arc<Selector> = Arc::new(Selector {
        state: AtomicUsize::new(WAITING),
        thread: thread::current(),
    });
}

impl Selector {
    /// The calling thread's selector, reset to waiting.
    ///
    /// A thread runs one blocking operation at a time and removes every entry that names its
    /// selector before the operation returns, so re-using one selector per thread is safe.
    pub(crate) fn current() -> Arc<Selector> {
        let selector = CURRENT.with(Arc::clone);
        selector.state.store(WAITING, Ordering::Relaxed);
        selector
    }

    /// Whether the selector still waits for a choice.
    pub(crate) fn is_waiting(&self) -> bool {
        self.state.load(Ordering::Acquire) == WAITING
    }

    /// Claims the selector for guard `guard`; true for the one party that wins.
    pub(crate) fn try_select(&self, guard: usize) -> bool {
        self.transition(FIRST_GUARD + guard)
    }

    /// Asks the owner to look again; false if a choice was already made.
    pub(crate) fn try_recheck(&self) -> bool {
        self.transition(RECHECK)
    }

    /// Wakes the owning thread (harmless if it is not parked).
    pub(crate) fn unpark(&self) {
        self.thread.unpark();
    }

    /// Whether two handles name the same selector.
    pub(crate) fn same(a: &Arc<Selector>, b: &Arc<Selector>) -> bool {
        Arc::ptr_eq(a, b)
    }

    fn transition(&self, to: usize) -> bool {
        self.state
            .compare_exchange(WAITING, to, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    fn decode(state: usize) -> Woken {
        match state {
            RECHECK => Woken::Recheck,
            ABORTED => Woken::TimedOut,
            chosen => Woken::Selected(chosen - FIRST_GUARD),
        }
    }

    /// The outcome once the owner itself gave up or asked to look again.
    ///
    /// Used after the owner's own `try_recheck` or abort failed: a counterpart won the race.
    pub(crate) fn settled(&self) -> Woken {
        let state = self.state.load(Ordering::Acquire);
        debug_assert_ne!(state, WAITING);
        Self::decode(state)
    }

    /// Blocks until the selector leaves [`WAITING`] or `deadline` passes.
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> Woken {
        for round in 0..SPIN_ROUNDS + YIELD_ROUNDS {
            let state = self.state.load(Ordering::Acquire);
            if state != WAITING {
                return Self::decode(state);
            }
            if round < SPIN_ROUNDS {
                std::hint::spin_loop();
            } else {
                thread::yield_now();
            }
        }
        loop {
            let state = self.state.load(Ordering::Acquire);
            if state != WAITING {
                return Self::decode(state);
            }
            match deadline {
                None => thread::park(),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        if self.transition(ABORTED) {
                            return Woken::TimedOut;
                        }
                        return self.settled();
                    }
                    thread::park_timeout(deadline - now);
                }
            }
        }
    }
}
