//! The one place that decides how a blocked thread waits.
//!
//! Every blocking operation and every alternation owns a [`Selector`] while it waits. A
//! counterpart that completes a communication with it, or an event that changes the state of a
//! channel it waits on (poison, retire), moves the selector out of [`WAITING`] with a
//! compare-and-swap and then wakes its thread. Exactly one party wins that swap, which is what
//! makes a choice fire exactly one guard.
//!
//! Waiting spins briefly, then yields, then parks ([`Backoff`]): waking a parked thread on
//! another CPU costs tens of microseconds, while a partner that answers within that time is
//! caught without a wake-up. The shared-memory transport between OS processes waits the same
//! way.
//!
//! A waiting thread may leave a *hand-on* hook with its selector: work that whoever chooses
//! the selector does for it before waking it ([`Selector::arm_hand_on`]). A thread that
//! reads for a reader in another OS process uses it so that the writer sends the value on
//! itself, without waiting for the reading thread to be scheduled.
//!
//! A *proxy* selector stands in a channel's home for a selector in another OS process (an
//! alternation there with a guard on this channel). Claiming a proxy first marks it
//! `CLAIMING`, so no one else can, then asks the real selector's OS process to claim the real
//! one; the proxy is selected only if that succeeded. The answer comes from a service that
//! only swaps and unparks, never takes a lock, so asking while holding a channel's lock cannot
//! deadlock.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::marker::PhantomPinned;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::task::{Context, Poll};
use std::thread::{self, Thread};

use futures::task::AtomicWaker;

use crate::deadlock::{Blocked, Slot, Waiting};
use std::time::{Duration, Instant};

// A selector's state is one word: the round (which wait of its owner) in the high 32 bits,
// the status in the low 32. Each wait starts a new round, so a claim meant for an earlier wait
// (from another OS process, after a lost connection) fails its compare-and-swap.

/// The selector waits: no guard chosen yet.
const WAITING: u64 = 0;
/// The owner gave up waiting (its deadline passed).
const ABORTED: u64 = 1;
/// Something changed (poison, retire, or the owner saw a ready counterpart): try again.
const RECHECK: u64 = 2;
/// A proxy being claimed: its real selector's OS process is being asked.
const CLAIMING: u64 = 3;
/// The deadlock monitor found every process waiting: give up, as if poisoned.
const DEADLOCKED: u64 = 4;
/// `FIRST_GUARD + i` means guard `i` was chosen by a counterpart.
const FIRST_GUARD: u64 = 5;

/// Guard indices a selector can record; larger ones (only a malformed peer sends them) can
/// never be chosen.
pub(crate) const MAX_GUARDS: usize = (u32::MAX as u64 - FIRST_GUARD) as usize;

fn status(word: u64) -> u64 {
    word & 0xffff_ffff
}

fn round_of(word: u64) -> u64 {
    word >> 32
}

fn pack(round: u64, status: u64) -> u64 {
    (round << 32) | status
}

fn chosen(guard: usize) -> Option<u64> {
    (guard < MAX_GUARDS).then(|| FIRST_GUARD + guard as u64)
}

/// Busy-wait iterations before yielding: about 90 ns on this class of CPU (a pause is about
/// 22 ns on the AMD EPYC it was tuned on); a partner on the same CPU cannot run until we yield.
///
/// Tuned on two CPUs with more waiting threads than CPUs (commstime's four, a call across
/// OS processes' three): 4 rounds against 16 took thread commstime from 1.25 to 1.1 us per
/// communication (pinned to one CPU 1.78 to 1.47), commstime across OS processes from 9.2
/// to 7 us, a shared-list call from a child from 4.9-5.6 to 4.2-4.4 us; tasks did not
/// change. No spinning at all is far worse (7.4 us in thread commstime): a wait that ends
/// in the first few rounds then never counts as one that looking paid off for.
const SPIN_ROUNDS: u32 = 4;
/// Whether this OS process may run on one CPU only (`taskset -c 0`, a container's quota of
/// one): then a partner cannot run while a waiter spins, so waiters yield at once. Pinned
/// thread commstime went from 1.40 to 1.33 us per communication, a pinned shared-list call
/// from a child from 6.0 to 5.8 us. (Also leaving the first yield of a wait unclocked
/// gave 1.25 us in commstime, but made the pinned shared-list call settle at 9.5 us in one
/// run of three to six: dropped.)
fn on_one_cpu() -> bool {
    static ONE: OnceLock<bool> = OnceLock::new();
    *ONE.get_or_init(|| thread::available_parallelism().is_ok_and(|n| n.get() == 1))
}

/// The longest a waiter keeps looking (spinning, then yielding its CPU) before it sleeps.
///
/// Sleeping and being woken costs a thread on another CPU tens of microseconds on small
/// machines, so looking for about as long as a wake-up would cost loses at most a factor of
/// two against an oracle that knew how long the wait would be (the classic competitive bound
/// for spin-then-block), while a partner that answers within that time is caught at once.
/// Yielding rather than spinning after the first rounds lets the partner run on the same CPU.
const LOOK_BUDGET: Duration = Duration::from_micros(50);
/// The shortest: a thread whose waits keep outlasting its budget spends little on looking.
const LEAST_LOOK: Duration = Duration::from_micros(2);

thread_local! {
    /// How long this thread looks before it sleeps, adapted to how its waits end: halved
    /// when looking was in vain (the thread slept anyway), doubled (up to [`LOOK_BUDGET`])
    /// when a wait ended while it was still looking. A thread that mostly waits long stops
    /// burning a CPU; one whose partners answer quickly keeps catching them.
    static LOOK_FOR: Cell<Duration> = const { Cell::new(LOOK_BUDGET) };
}

/// The waiting strategy every blocked party uses before it sleeps: spin, then yield, for
/// as long as this thread's adaptive budget allows (see [`LOOK_BUDGET`]).
#[derive(Debug)]
pub(crate) struct Backoff {
    turn: u32,
    started: Option<Instant>,
    budget: Duration,
    gave_up: bool,
}

impl Backoff {
    pub(crate) fn new() -> Backoff {
        // A blocking wait inside a task: the task it woke last must not wait for this one.
        crate::executor::blocking();
        Backoff {
            turn: 0,
            started: None,
            budget: LOOK_FOR.with(Cell::get),
            gave_up: false,
        }
    }

    /// Waits a little; false once the budget is spent and the caller should sleep instead.
    pub(crate) fn snooze(&mut self) -> bool {
        if self.turn < SPIN_ROUNDS && !on_one_cpu() {
            self.turn += 1;
            std::hint::spin_loop();
            return true;
        }
        self.turn = self.turn.saturating_add(1);
        let started = *self.started.get_or_insert_with(Instant::now);
        if started.elapsed() < self.budget {
            thread::yield_now();
            return true;
        }
        if !self.gave_up {
            self.gave_up = true;
            LOOK_FOR.with(|look| look.set((self.budget * 7 / 8).max(LEAST_LOOK)));
        }
        false
    }
}

impl Drop for Backoff {
    fn drop(&mut self) {
        // Looked, and the wait ended meanwhile: looking pays off for this thread.
        if !self.gave_up && self.turn > 0 {
            LOOK_FOR.with(|look| look.set((self.budget * 2).min(LOOK_BUDGET)));
        }
    }
}

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Woken {
    /// A counterpart chose guard `i` and carried out its communication.
    Selected(usize),
    /// The state of a channel changed; the owner must look again.
    Recheck,
    /// The deadline passed first.
    TimedOut,
    /// Every process was waiting and none could proceed (see [`deadlock`](crate::deadlock)).
    Deadlocked,
}

/// The selector in another OS process that a proxy stands for (in one of its rounds).
pub(crate) trait Principal: Send + Sync + fmt::Debug {
    /// Asks for the real selector to be claimed for `guard`; true if it was.
    fn claim(&self, guard: usize) -> bool;
    /// Tells the real selector to look again.
    fn recheck(&self);
}

#[derive(Debug)]
enum Owner {
    Thread(Thread),
    /// A lightweight process (a task on an executor): woken through its waker.
    Task(AtomicWaker),
    Proxy(Box<dyn Principal>),
}

/// The rendezvous point between a waiting thread and whoever completes its operation.
#[derive(Debug)]
pub(crate) struct Selector {
    state: AtomicU64,
    owner: Owner,
    /// The number under which other OS processes may claim it, once exported.
    exported: OnceLock<u64>,
    /// The actor counted as blocked in this selector's wait, for whoever ends the wait.
    blocked: Slot,
    has_blocked: AtomicBool,
    /// What the counterpart that chooses this selector does on its owner's behalf.
    hand_on: HandOn,
}

// The states of a selector's hand-on (see [`Selector::arm_hand_on`]).
/// Nothing to hand on.
const UNARMED: u8 = 0;
/// A hook waits for the counterpart that chooses the selector.
const ARMED: u8 = 1;
/// A counterpart runs the hook.
const HANDING_ON: u8 = 2;
/// The hook ran; the owner has not looked yet.
const HANDED_ON: u8 = 3;

/// Work the party that completes a wait does for the waiting thread, before waking it.
#[derive(Default)]
struct HandOn {
    state: AtomicU8,
    hook: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl fmt::Debug for HandOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandOn")
            .field("state", &self.state.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

fn thread_selector() -> Arc<Selector> {
    Arc::new(Selector {
        state: AtomicU64::new(WAITING),
        owner: Owner::Thread(thread::current()),
        exported: OnceLock::new(),
        blocked: Slot::default(),
        has_blocked: AtomicBool::new(false),
        hand_on: HandOn::default(),
    })
}

thread_local! {
    static CURRENT: RefCell<Arc<Selector>> = RefCell::new(thread_selector());
    /// A second selector of this thread, for waits nested inside one of its own (see
    /// [`Selector::with_nested`]).
    static NESTED: RefCell<Option<Arc<Selector>>> = const { RefCell::new(None) };
}

fn exported() -> &'static Mutex<HashMap<u64, Weak<Selector>>> {
    static EXPORTED: OnceLock<Mutex<HashMap<u64, Weak<Selector>>>> = OnceLock::new();
    EXPORTED.get_or_init(Default::default)
}

impl Selector {
    /// This thread's selector, as it is (not readied for a new wait).
    pub(crate) fn of_this_thread() -> Arc<Selector> {
        CURRENT.with(|current| Arc::clone(&current.borrow()))
    }

    /// Runs `body` with a second selector as this thread's, so that a wait inside it (a task
    /// run inline while this thread waits, see [`executor::run_helped`]) leaves the waiting
    /// selector alone.
    ///
    /// [`executor::run_helped`]: crate::executor::run_helped
    pub(crate) fn with_nested<R>(body: impl FnOnce() -> R) -> R {
        let nested = NESTED
            .with(|nested| nested.borrow_mut().take())
            .unwrap_or_else(thread_selector);
        let outer = CURRENT.with(|current| current.replace(nested));
        struct Restore(Option<Arc<Selector>>);
        impl Drop for Restore {
            fn drop(&mut self) {
                if let Some(outer) = self.0.take() {
                    let nested = CURRENT.with(|current| current.replace(outer));
                    NESTED.with(|spare| *spare.borrow_mut() = Some(nested));
                }
            }
        }
        let _restore = Restore(Some(outer));
        body()
    }

    /// The calling thread's selector, reset to waiting.
    ///
    /// A thread runs one blocking operation at a time and removes every entry that names its
    /// selector before the operation returns, so re-using one selector per thread is safe.
    pub(crate) fn current() -> Arc<Selector> {
        let selector = Self::of_this_thread();
        let round = round_of(selector.state.load(Ordering::Relaxed)).wrapping_add(1) & 0xffff_ffff;
        selector
            .state
            .store(pack(round, WAITING), Ordering::Release);
        selector
    }

    /// A new selector, waiting, for one wait of a task (tasks move between threads, so they
    /// cannot use the thread's selector).
    pub(crate) fn for_task() -> Arc<Selector> {
        Arc::new(Selector {
            state: AtomicU64::new(WAITING),
            owner: Owner::Task(AtomicWaker::new()),
            exported: OnceLock::new(),
            blocked: Slot::default(),
            has_blocked: AtomicBool::new(false),
            hand_on: HandOn::default(),
        })
    }

    /// A proxy, waiting, for a selector in another OS process.
    pub(crate) fn proxy(principal: Box<dyn Principal>) -> Arc<Selector> {
        Arc::new(Selector {
            state: AtomicU64::new(WAITING),
            owner: Owner::Proxy(principal),
            exported: OnceLock::new(),
            blocked: Slot::default(),
            has_blocked: AtomicBool::new(false),
            hand_on: HandOn::default(),
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

    /// Which wait of its owner the selector is in.
    pub(crate) fn round(&self) -> u64 {
        round_of(self.state.load(Ordering::Acquire))
    }

    /// Whether the selector still waits for a choice.
    pub(crate) fn is_waiting(&self) -> bool {
        status(self.state.load(Ordering::Acquire)) == WAITING
    }

    /// Claims the selector for `guard` only if it is still in `round`: for claims from another
    /// OS process, which may arrive late.
    pub(crate) fn try_select_in_round(&self, round: u64, guard: usize) -> bool {
        chosen(guard).is_some_and(|to| self.transition_in(round, to))
    }

    /// Asks the owner to look again, only if it is still in `round`.
    pub(crate) fn try_recheck_in_round(&self, round: u64) -> bool {
        self.transition_in(round, RECHECK)
    }

    /// Claims the selector for guard `guard`; true for the one party that wins. A proxy is
    /// won only if its real selector is.
    pub(crate) fn try_select(&self, guard: usize) -> bool {
        let Some(to) = chosen(guard) else {
            return false;
        };
        match &self.owner {
            Owner::Thread(_) | Owner::Task(_) => self.transition(to),
            Owner::Proxy(principal) => {
                if !self.transition(CLAIMING) {
                    return false;
                }
                let granted = principal.claim(guard);
                let round = self.round();
                let settled = if granted { to } else { ABORTED };
                self.state.store(pack(round, settled), Ordering::Release);
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
            Owner::Thread(thread) => {
                self.hand_on_if_chosen();
                thread.unpark();
            }
            Owner::Task(waker) => waker.wake(),
            Owner::Proxy(principal) => {
                if status(self.state.load(Ordering::Acquire)) == RECHECK {
                    principal.recheck();
                }
            }
        }
    }

    /// Leaves `hook` for the counterpart that chooses this (thread's) selector in its
    /// current wait: that party runs it before it wakes the owner, so the owner need not
    /// run to pass the outcome on. The hook must work from any thread, without the lock of
    /// the channel the wait is on (it is run after that lock is released). The owner takes
    /// it back with [`disarm_hand_on`](Selector::disarm_hand_on) once its wait is over.
    ///
    /// A mirror thread reading for a reader in another OS process arms one that sends the
    /// value on, so that the writer sends it straight to the reader: one hand-over between
    /// threads fewer per communication.
    pub(crate) fn arm_hand_on(&self, hook: Box<dyn FnOnce() + Send>) {
        debug_assert!(matches!(self.owner, Owner::Thread(_)));
        *self.hand_on.hook.lock().unwrap_or_else(|p| p.into_inner()) = Some(hook);
        self.hand_on.state.store(ARMED, Ordering::Release);
    }

    /// Runs the hook, if one is armed and a counterpart chose this selector.
    fn hand_on_if_chosen(&self) {
        let hand_on = &self.hand_on;
        if hand_on.state.load(Ordering::Acquire) != ARMED
            || status(self.state.load(Ordering::Acquire)) < FIRST_GUARD
            || hand_on
                .state
                .compare_exchange(ARMED, HANDING_ON, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return;
        }
        let hook = hand_on
            .hook
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(hook) = hook {
            hook();
        }
        hand_on.state.store(HANDED_ON, Ordering::Release);
    }

    /// Takes back the hook [`arm_hand_on`](Selector::arm_hand_on) left, once the wait ended
    /// as `woken`: true if a counterpart chose this selector and so runs the hook (this
    /// waits until it has), false if the hook was not run and the owner goes on itself.
    ///
    /// Every party that chooses a selector wakes it afterwards ([`unpark`](Selector::unpark)),
    /// and that is where the hook runs: a chosen owner only waits for it, even when it saw
    /// the choice before the chooser got there.
    pub(crate) fn disarm_hand_on(&self, woken: Woken) -> bool {
        let hand_on = &self.hand_on;
        if !matches!(woken, Woken::Selected(_)) {
            // Not chosen: nobody runs the hook.
            hand_on.state.store(UNARMED, Ordering::Release);
            drop(
                hand_on
                    .hook
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .take(),
            );
            return false;
        }
        let mut backoff = Backoff::new();
        while hand_on.state.load(Ordering::Acquire) != HANDED_ON {
            if !backoff.snooze() {
                thread::park();
            }
        }
        hand_on.state.store(UNARMED, Ordering::Release);
        true
    }

    /// Whether two handles name the same selector.
    pub(crate) fn same(a: &Arc<Selector>, b: &Arc<Selector>) -> bool {
        Arc::ptr_eq(a, b)
    }

    /// Moves from waiting to `to` in the current round; false if no longer waiting.
    fn transition(&self, to: u64) -> bool {
        let word = self.state.load(Ordering::Acquire);
        status(word) == WAITING && self.transition_in(round_of(word), to)
    }

    fn transition_in(&self, round: u64, to: u64) -> bool {
        let moved = self
            .state
            .compare_exchange(
                pack(round, WAITING),
                pack(round, to),
                Ordering::SeqCst,
                Ordering::Acquire,
            )
            .is_ok();
        // The wait is over: its owner counts as running from now on, before it is woken.
        if moved && self.has_blocked.load(Ordering::SeqCst) {
            self.blocked.release();
        }
        moved
    }

    /// Leaves the actor counted as blocked in this wait where [`Selector::transition_in`] finds it.
    fn count_blocked(&self, actor: &Arc<crate::deadlock::Actor>) {
        self.blocked.put(actor);
        self.has_blocked.store(true, Ordering::SeqCst);
    }

    /// Counts the current actor as blocked in this wait (about to sleep, with no deadline).
    fn block_forever(
        self: &Arc<Self>,
        waiting: impl FnOnce() -> Option<Waiting>,
    ) -> Option<Blocked> {
        crate::deadlock::block(
            waiting,
            |actor| self.count_blocked(actor),
            || status(self.state.load(Ordering::SeqCst)) == WAITING,
            Some(self),
        )
    }

    /// Ends the wait of `round` because of a deadlock; false if it was over already.
    pub(crate) fn try_declare_deadlock_in_round(&self, round: u64) -> bool {
        self.transition_in(round, DEADLOCKED)
    }

    /// Ends the wait because of a deadlock; false if it was over already.
    pub(crate) fn try_declare_deadlock(&self) -> bool {
        self.transition(DEADLOCKED)
    }

    fn decode(word: u64) -> Woken {
        match status(word) {
            RECHECK | CLAIMING => Woken::Recheck,
            ABORTED => Woken::TimedOut,
            DEADLOCKED => Woken::Deadlocked,
            chosen => Woken::Selected((chosen - FIRST_GUARD) as usize),
        }
    }

    /// The outcome once the owner itself gave up or asked to look again.
    ///
    /// Used after the owner's own `try_recheck` or abort failed: a counterpart won the race.
    pub(crate) fn settled(&self) -> Woken {
        let word = self.state.load(Ordering::Acquire);
        debug_assert_ne!(status(word), WAITING);
        Self::decode(word)
    }

    /// Gives up waiting (a task's wait that was dropped); false if a counterpart already chose
    /// a guard, whose communication then happened.
    pub(crate) fn abort(&self) -> bool {
        self.transition(ABORTED)
    }

    /// Waits, as a task, until the selector leaves [`WAITING`] or `deadline` passes: the
    /// asynchronous twin of [`wait`](Selector::wait). The selector must be a task's
    /// ([`for_task`](Selector::for_task)). `waiting` describes the wait for the deadlock
    /// monitor, which may call it from its own thread while the task waits.
    pub(crate) fn wait_async<W>(
        self: &Arc<Self>,
        deadline: Option<Instant>,
        waiting: W,
    ) -> WaitAsync<W>
    where
        W: Fn() -> Option<Waiting> + Send + Sync,
    {
        WaitAsync {
            selector: Arc::clone(self),
            timer: deadline.map(|deadline| {
                futures_timer::Delay::new(deadline.saturating_duration_since(Instant::now()))
            }),
            waiting,
            blocked: None,
            counted_as_thread: false,
            marked: false,
            _pinned: PhantomPinned,
        }
    }

    /// Blocks until the selector leaves [`WAITING`] or `deadline` passes; `waiting` says what
    /// for, should the wait be counted by the deadlock monitor.
    pub(crate) fn wait(
        self: &Arc<Self>,
        deadline: Option<Instant>,
        waiting: impl FnOnce() -> Option<Waiting>,
    ) -> Woken {
        let mut backoff = Backoff::new();
        // While it looks, this thread also serves the mirror threads' requests that
        // complete at once (its own wait's counterpart, typically; see `mirror`).
        let looking = crate::mirror::Looking::start();
        loop {
            let word = self.state.load(Ordering::Acquire);
            if status(word) != WAITING {
                return Self::decode(word);
            }
            if looking.is_some() {
                crate::mirror::help_mirrors();
                let word = self.state.load(Ordering::Acquire);
                if status(word) != WAITING {
                    return Self::decode(word);
                }
            }
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) || !backoff.snooze() {
                break;
            }
        }
        drop(looking);
        // About to sleep with no deadline: counted as blocked until the wait ends.
        let _blocked = match deadline {
            None => self.block_forever(waiting),
            Some(_) => None,
        };
        loop {
            let word = self.state.load(Ordering::Acquire);
            if status(word) != WAITING {
                return Self::decode(word);
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

/// The future of [`Selector::wait_async`].
///
/// A task that waits in it with no deadline marks itself waiting with pointers to the
/// selector and to `waiting` (see the deadlock monitor's task marks): the future is pinned
/// (never `Unpin`), so they stay in place, and it takes the mark back when it is dropped.
pub(crate) struct WaitAsync<W> {
    selector: Arc<Selector>,
    timer: Option<futures_timer::Delay>,
    waiting: W,
    /// A thread awaiting this (in `block_on`) is counted as blocked, as in `wait`.
    blocked: Option<Blocked>,
    counted_as_thread: bool,
    marked: bool,
    _pinned: PhantomPinned,
}

impl<W: Fn() -> Option<Waiting> + Send + Sync> Future for WaitAsync<W> {
    type Output = Woken;

    #[allow(unsafe_code)]
    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Woken> {
        // SAFETY: nothing is moved out of the future; its fields stay where they are, as
        // the task's mark needs.
        let this = unsafe { self.get_unchecked_mut() };
        let selector = &this.selector;
        let Owner::Task(waker) = &selector.owner else {
            unreachable!("only a task's selector is awaited");
        };
        let word = selector.state.load(Ordering::Acquire);
        if status(word) != WAITING {
            return Poll::Ready(Selector::decode(word));
        }
        waker.register(context.waker());
        // Look again after registering: a counterpart may have chosen us in between.
        let word = selector.state.load(Ordering::Acquire);
        if status(word) != WAITING {
            return Poll::Ready(Selector::decode(word));
        }
        if let Some(timer) = this.timer.as_mut() {
            if Pin::new(timer).poll(context).is_ready() {
                return Poll::Ready(if selector.transition(ABORTED) {
                    Woken::TimedOut
                } else {
                    selector.settled()
                });
            }
            return Poll::Pending; // a wait with a deadline is never counted
        }
        if this.counted_as_thread {
            return Poll::Pending;
        }
        // SAFETY: `waiting` and the selector stay in place while the mark stands: the future
        // is pinned, and dropping it takes the mark back first.
        if unsafe { crate::deadlock::mark_task_waiting(&this.waiting, selector) } {
            this.marked = true;
        } else {
            this.counted_as_thread = true;
            this.blocked = selector.block_forever(|| (this.waiting)());
            if this.blocked.is_none() && !selector.is_waiting() {
                return Poll::Ready(selector.settled());
            }
        }
        Poll::Pending
    }
}

impl<W> Drop for WaitAsync<W> {
    fn drop(&mut self) {
        if self.marked {
            crate::deadlock::task_wait_ends(&self.selector);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_for_an_earlier_round_fails() {
        let selector = Selector::current();
        let earlier = selector.round();
        let selector = Selector::current(); // the owner's next wait
        assert!(
            !selector.try_select_in_round(earlier, 0),
            "a late claim must not land"
        );
        assert!(!selector.try_recheck_in_round(earlier));
        assert!(selector.is_waiting());
        assert!(selector.try_select_in_round(selector.round(), 2));
        assert_eq!(selector.settled(), Woken::Selected(2));
    }

    #[test]
    fn a_deadlock_declared_for_an_earlier_wait_does_not_end_the_next() {
        // The monitor counted a wait in one round; by the time it ends the waits, the
        // thread may be in its next wait (its process ended by poison and another began).
        let selector = Selector::current();
        let counted = selector.round();
        let selector = Selector::current();
        assert!(!selector.try_declare_deadlock_in_round(counted));
        assert!(selector.is_waiting(), "the later wait goes on");
        assert!(selector.try_declare_deadlock_in_round(selector.round()));
        assert_eq!(selector.settled(), Woken::Deadlocked);
    }

    #[test]
    fn guard_indices_beyond_the_limit_are_never_chosen() {
        let selector = Selector::current();
        assert!(!selector.try_select(usize::MAX));
        assert!(!selector.try_select(MAX_GUARDS));
        assert!(!selector.try_select_in_round(selector.round(), usize::MAX - 3));
        assert!(selector.is_waiting());
    }
}
