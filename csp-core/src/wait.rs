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
//!
//! A *proxy* selector stands in a channel's home for a selector in another OS process (an
//! alternation there with a guard on this channel). Claiming a proxy first marks it
//! `CLAIMING`, so no one else can, then asks the real selector's OS process to claim the real
//! one; the proxy is selected only if that succeeded. The answer comes from a service that
//! only swaps and unparks, never takes a lock, so asking while holding a channel's lock cannot
//! deadlock.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::thread::{self, Thread};
use std::time::Instant;

/// The selector waits: no guard chosen yet.
const WAITING: usize = 0;
/// The owner gave up waiting (its deadline passed).
const ABORTED: usize = 1;
/// Something changed (poison, retire, or the owner saw a ready counterpart): try again.
const RECHECK: usize = 2;
/// A proxy being claimed: its real selector's OS process is being asked.
const CLAIMING: usize = 3;
/// `FIRST_GUARD + i` means guard `i` was chosen by a counterpart.
const FIRST_GUARD: usize = 4;

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

/// The selector in another OS process that a proxy stands for.
pub(crate) trait Principal: Send + Sync + fmt::Debug {
    /// Asks for the real selector to be claimed for `guard`; true if it was.
    fn claim(&self, guard: usize) -> bool;
    /// Tells the real selector to look again.
    fn recheck(&self);
}

#[derive(Debug)]
enum Owner {
    Thread(Thread),
    Proxy(Box<dyn Principal>),
}

/// The rendezvous point between a waiting thread and whoever completes its operation.
#[derive(Debug)]
pub(crate) struct Selector {
    state: AtomicUsize,
    owner: Owner,
    /// The number under which other OS processes may claim it, once exported.
    exported: OnceLock<u64>,
}

thread_local! {
    static CURRENT: Arc<Selector> = Arc::new(Selector {
        state: AtomicUsize::new(WAITING),
        owner: Owner::Thread(thread::current()),
        exported: OnceLock::new(),
    });
}

fn exported() -> &'static Mutex<HashMap<u64, Weak<Selector>>> {
    static EXPORTED: OnceLock<Mutex<HashMap<u64, Weak<Selector>>>> = OnceLock::new();
    EXPORTED.get_or_init(Default::default)
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

    /// A proxy, waiting, for a selector in another OS process.
    pub(crate) fn proxy(principal: Box<dyn Principal>) -> Arc<Selector> {
        Arc::new(Selector {
            state: AtomicUsize::new(WAITING),
            owner: Owner::Proxy(principal),
            exported: OnceLock::new(),
        })
    }

    /// The number under which other OS processes can claim this selector.
    pub(crate) fn export(self: &Arc<Self>) -> u64 {
        *self.exported.get_or_init(|| {
            static NEXT: AtomicU64 = AtomicU64::new(1);
            let id = NEXT.fetch_add(1, Ordering::Relaxed);
            let mut table = exported().lock().unwrap_or_else(|p| p.into_inner());
            table.retain(|_, selector| selector.strong_count() > 0);
            table.insert(id, Arc::downgrade(self));
            id
        })
    }

    /// The exported selector with this number, if it still exists.
    pub(crate) fn find_exported(id: u64) -> Option<Arc<Selector>> {
        let table = exported().lock().unwrap_or_else(|p| p.into_inner());
        table.get(&id).and_then(Weak::upgrade)
    }

    /// Whether the selector still waits for a choice.
    pub(crate) fn is_waiting(&self) -> bool {
        self.state.load(Ordering::Acquire) == WAITING
    }

    /// Claims the selector for guard `guard`; true for the one party that wins. A proxy is
    /// won only if its real selector is.
    pub(crate) fn try_select(&self, guard: usize) -> bool {
        match &self.owner {
            Owner::Thread(_) => self.transition(FIRST_GUARD + guard),
            Owner::Proxy(principal) => {
                if !self.transition(CLAIMING) {
                    return false;
                }
                let granted = principal.claim(guard);
                let settled = if granted {
                    FIRST_GUARD + guard
                } else {
                    ABORTED
                };
                self.state.store(settled, Ordering::Release);
                granted
            }
        }
    }

    /// Asks the owner to look again; false if a choice was already made.
    pub(crate) fn try_recheck(&self) -> bool {
        self.transition(RECHECK)
    }

    /// Wakes the owning thread (harmless if it is not parked). For a proxy asked to look
    /// again, passes that on; a proxy that was claimed woke its real owner already.
    pub(crate) fn unpark(&self) {
        match &self.owner {
            Owner::Thread(thread) => thread.unpark(),
            Owner::Proxy(principal) => {
                if self.state.load(Ordering::Acquire) == RECHECK {
                    principal.recheck();
                }
            }
        }
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
            RECHECK | CLAIMING => Woken::Recheck,
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
