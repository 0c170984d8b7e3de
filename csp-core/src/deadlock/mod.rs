//! Deadlock detection: a network whose every process waits for a communication that nothing
//! can complete ends with an error naming them, instead of hanging.
//!
//! Every *actor* of this OS process is counted: each process (thread or task) while it runs,
//! and every other thread that has made a channel or waited on one (`main`, say). An actor is
//! *blocked* while it waits for a communication, or for a process to finish, with no timeout;
//! otherwise it is *running*, whatever it does (computing, sleeping, reading a file), since
//! it may yet act on a channel. When the last running actor blocks (or ends) while others are
//! blocked, nothing can ever wake them: that is a deadlock.
//!
//! The counts are kept exact without locks on the communication path: a waiter is counted as
//! blocked only when it is about to sleep, and whoever then chooses it (completing its
//! communication, or telling it to look again) counts it as running *before* waking it, so a
//! waiter on its way back is never mistaken for a blocked one.
//!
//! Lightweight processes (tasks) are not counted one by one, which would put a shared count
//! on the path of every hand-over between tasks. The executor's threads are counted instead:
//! one is running while it polls tasks and blocked while it sleeps for want of any, so while
//! none is busy every task has returned `Pending`. A task that waits on a communication with
//! no timeout marks itself waiting in its own record (no shared count), and the mark goes
//! when it is next polled; a standstill needs every task marked, so a task that awaits
//! anything else (a timer, a future of another library) counts as running. A task that makes
//! a blocking call sleeps on its executor thread, which then counts as blocked.
//!
//! A suspicion is confirmed only after [`GRACE`] with every actor still blocked and nothing
//! happening, so a thread the program started itself (which is seen only once it uses a
//! channel) has that long to show up. When a deadlock is found, the monitor writes a report (each blocked process and what it
//! waits on, and the cycle of processes waiting for each other where one can be traced
//! through the channel ends they hold) to standard error, and wakes every blocked waiter as if
//! its channel were poisoned. The processes end by poison, their compositions return, and a
//! composition that was running returns [`RunError::Deadlock`](crate::RunError::Deadlock) with
//! the report.
//!
//! Each OS process has its own monitor, and the network's top OS process decides for all.
//! A communication carried out by another OS process (on an end whose channel lives there)
//! counts as blocked once its thread goes to sleep waiting for the answer, as does a choice
//! with such guards. A child OS process does not declare deadlocks itself: once all its
//! actors have been blocked for a quarter of a second, it tells its parent who waits on what (and which
//! channel ends each holds), and the moment anything moves it says so. While a child says it
//! stands still, the process it runs counts as blocked in the parent, on what the child's
//! actors wait for, so the top sees the whole network: a deadlock among the processes of
//! one child, or one that spans several OS processes, is declared there after [`GRACE`],
//! with a report naming every blocked process (those in children marked with their OS
//! process) and the cycle across OS processes. The parent then tells each such child, which
//! wakes its own waiters the same way, and stops waits on other OS processes by shutting
//! their connections (a home that cannot be reached is a poisoned channel).

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

mod task_mark;

pub(crate) use task_mark::Describe;
use task_mark::TaskMark;

use crate::channel::core::Side;
use crate::error::ChannelName;
use crate::propagation::EndSet;
use crate::wait::Selector;

/// What a blocked actor waits for, for the report.
#[derive(Debug, Clone)]
pub(crate) enum Waiting {
    Read(ChannelName),
    Write(ChannelName),
    /// An alternation: its enabled guards, described.
    Choice(Vec<(ChannelName, bool)>),
    /// A process to finish.
    Join(String),
    /// A communication that another OS process (the channel's home) carries out, and how
    /// to stop waiting for it once a deadlock is declared.
    Away(Box<Waiting>, Interrupt),
    /// A child OS process all of whose actors are blocked, as it reported them, and how to
    /// tell it of a deadlock.
    Child(Arc<Vec<Stuck>>, Interrupt),
}

/// Ends a wait the monitor cannot end through a selector, given the deadlock's report.
#[derive(Clone)]
pub(crate) struct Interrupt(pub(crate) Arc<dyn Fn(&str) + Send + Sync>);

impl std::fmt::Debug for Interrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Interrupt")
    }
}

/// A blocked actor as a report shows it, and as a child OS process tells its parent.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Stuck {
    name: String,
    doing: String,
    /// The channels it waits on, with `true` for reading.
    waits: Vec<(ChannelName, bool)>,
    /// The channel ends it holds, with `true` for a writing end.
    holds: Vec<(ChannelName, bool)>,
}

impl Waiting {
    fn describe(&self) -> String {
        match self {
            Waiting::Read(channel) => format!("reading {channel}"),
            Waiting::Write(channel) => format!("writing {channel}"),
            Waiting::Choice(guards) => {
                let guards: Vec<String> = guards
                    .iter()
                    .map(|(channel, reads)| {
                        format!("{} {channel}", if *reads { "read" } else { "write" })
                    })
                    .collect();
                format!("choosing among [{}]", guards.join(", "))
            }
            Waiting::Join(process) => format!("waiting for process {process} to finish"),
            Waiting::Away(waiting, _) => waiting.describe(),
            Waiting::Child(stuck, _) => {
                format!("waiting in a child OS process ({} blocked)", stuck.len())
            }
        }
    }

    /// The channels waited on, with `true` for reading.
    fn channels(&self) -> Vec<(&ChannelName, bool)> {
        match self {
            Waiting::Read(channel) => vec![(channel, true)],
            Waiting::Write(channel) => vec![(channel, false)],
            Waiting::Choice(guards) => guards.iter().map(|(c, r)| (c, *r)).collect(),
            Waiting::Away(waiting, _) => waiting.channels(),
            Waiting::Join(_) | Waiting::Child(..) => Vec::new(),
        }
    }
}

/// What an actor waits on, and the selector it waits with in which of its rounds (a thread
/// re-uses its selector for every wait: only the wait that was counted may be ended).
type WaitRecord = (Waiting, Option<(Arc<Selector>, u64)>);

/// One actor: a process, or another thread that uses channels.
pub(crate) struct Actor {
    name: Cow<'static, str>,
    /// A number for the actor, for traces.
    id: u64,
    /// The channel ends the process holds (its arguments), for tracing the cycle.
    ends: EndSet,
    /// What it waits on now, and the selector it waits with, while blocked.
    waiting: Mutex<Option<WaitRecord>>,
    /// Set while it is counted as blocked; whoever clears it counts it as running again
    /// (for a task: set while it waits, with no count behind it).
    blocked: AtomicBool,
    /// A lightweight process: counted through the executor's threads, not one by one.
    task: bool,
    /// Set when a task's process has ended.
    gone: AtomicBool,
    /// A task's mark: what it waits on while it waits with no deadline.
    mark: TaskMark,
}

impl Actor {
    fn waiting(&self) -> MutexGuard<'_, Option<WaitRecord>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }
}

struct Monitor {
    running: AtomicIsize,
    actors: Mutex<Vec<Weak<Actor>>>,
    generation: AtomicU64,
    last: Mutex<Option<Arc<String>>>,
    /// Counts every event that could mean progress from a standstill: an actor arriving, one
    /// chosen while nobody was running.
    activity: AtomicU64,
    /// Set when the running count reached zero; the watcher thread confirms it.
    suspect: Mutex<bool>,
    suspected: Condvar,
    /// Set while the watcher confirms a suspicion: it will look again by itself.
    armed: AtomicBool,
}

/// How long every actor must stay blocked, with nothing happening, before a deadlock is
/// declared. Threads a program starts itself are seen only once they use a channel; this is
/// the time such a thread has to do so before its silence is taken for absence.
pub const GRACE: Duration = Duration::from_secs(1);

static DISABLED: AtomicBool = AtomicBool::new(false);

/// Turns deadlock detection off (or back on) for this OS process. It is on by default; the
/// environment variable `CSP_DEADLOCK_DETECTION=off` turns it off from the start.
///
/// Turn it off for a program whose threads hold channel ends without using them for long
/// stretches (see [`GRACE`]), where a quiet network could be mistaken for a deadlocked one.
/// Turned off here, waits are still counted (so that turning it on again finds the waits
/// that began meanwhile); turned off by the environment variable, which child OS processes
/// inherit, it is off for the whole run and waits are not counted at all: the accounting's
/// cost (a few tens of nanoseconds per wait of a lightweight process: it writes what it
/// waits on) is gone too.
///
/// # Examples
///
/// ```
/// csp_core::deadlock::set_detection(false);
/// assert!(!csp_core::deadlock::detection());
/// csp_core::deadlock::set_detection(true);
/// ```
pub fn set_detection(enabled: bool) {
    DISABLED.store(!enabled, Ordering::Relaxed);
}

/// Whether deadlock detection is on.
pub fn detection() -> bool {
    !off_from_start() && !DISABLED.load(Ordering::Relaxed)
}

/// Whether `CSP_DEADLOCK_DETECTION=off` turned detection off for the whole run.
fn off_from_start() -> bool {
    static FROM_ENVIRONMENT: OnceLock<bool> = OnceLock::new();
    *FROM_ENVIRONMENT
        .get_or_init(|| std::env::var("CSP_DEADLOCK_DETECTION").is_ok_and(|value| value == "off"))
}

fn monitor() -> &'static Monitor {
    static MONITOR: OnceLock<Monitor> = OnceLock::new();
    MONITOR.get_or_init(|| Monitor {
        running: AtomicIsize::new(0),
        actors: Mutex::new(Vec::new()),
        generation: AtomicU64::new(0),
        last: Mutex::new(None),
        activity: AtomicU64::new(0),
        suspect: Mutex::new(false),
        suspected: Condvar::new(),
        armed: AtomicBool::new(false),
    })
}

thread_local! {
    /// The actor the current thread acts for: its process, the task being polled, or the
    /// thread itself.
    static CURRENT: RefCell<Option<Arc<Actor>>> = const { RefCell::new(None) };
    /// The thread's own actor, made when it first uses channels (and not for csp's service
    /// threads).
    static OWN: RefCell<Option<OwnActor>> = const { RefCell::new(None) };
    /// csp's own service threads (serving other OS processes) are not actors.
    static SERVICE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A thread's own actor; ends (stops counting as running) when the thread exits.
struct OwnActor(Arc<Actor>);

impl Drop for OwnActor {
    fn drop(&mut self) {
        depart(&self.0);
    }
}

/// Registers a new running actor: a process on a thread, or a thread.
pub(crate) fn arrive(name: Cow<'static, str>, ends: EndSet) -> Arc<Actor> {
    arrive_as(name, ends, false)
}

/// Registers a new lightweight process (a task). It is not counted one by one: while any of
/// the executor's threads is busy, something runs; a task counts as blocked from the moment
/// it waits on a communication with no timeout (a mark in its own record, no shared count)
/// until it is polled again.
pub(crate) fn arrive_task(name: Cow<'static, str>, ends: EndSet) -> Arc<Actor> {
    arrive_as(name, ends, true)
}

fn arrive_as(name: Cow<'static, str>, ends: EndSet, task: bool) -> Arc<Actor> {
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    let actor = Arc::new(Actor {
        name,
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        ends,
        waiting: Mutex::new(None),
        blocked: AtomicBool::new(false),
        task,
        gone: AtomicBool::new(false),
        mark: TaskMark::default(),
    });
    let monitor = monitor();
    if !task {
        monitor.running.fetch_add(1, Ordering::AcqRel);
    }
    monitor.activity.fetch_add(1, Ordering::AcqRel);
    let mut actors = monitor.actors.lock().unwrap_or_else(|p| p.into_inner());
    if actors.len() >= 64 && actors.len().is_power_of_two() {
        actors.retain(|actor| actor.strong_count() > 0);
    }
    actors.push(Arc::downgrade(&actor));
    drop(actors);
    crate::trace::record_as(
        actor.name.to_string(),
        actor.id,
        crate::trace::EventKind::Start,
    );
    actor
}

/// The name and number of the actor the current thread acts for, for traces.
pub(crate) fn current_identity() -> (String, u64) {
    match current() {
        Some(actor) => (actor.name.to_string(), actor.id),
        None => ("a service thread".to_string(), 0),
    }
}

/// An actor ended (its process finished, its thread exited).
pub(crate) fn depart(actor: &Actor) {
    crate::trace::record_as(
        actor.name.to_string(),
        actor.id,
        crate::trace::EventKind::End,
    );
    if actor.task {
        actor.gone.store(true, Ordering::Release);
        return; // never counted one by one
    }
    if actor.blocked.swap(false, Ordering::AcqRel) {
        return; // counted as blocked, not running: nothing to take back
    }
    if monitor().running.fetch_sub(1, Ordering::AcqRel) == 1 {
        check();
    }
}

/// Marks the current thread as one of csp's service threads: not an actor.
pub(crate) fn serve_only() {
    SERVICE.with(|service| service.set(true));
}

/// Makes sure the current thread is counted (a thread that makes channels can act on them).
pub(crate) fn note_thread() {
    if CURRENT.with(|current| current.borrow().is_some()) || SERVICE.with(std::cell::Cell::get) {
        return;
    }
    OWN.with(|own| {
        let mut own = own.borrow_mut();
        if own.is_none() {
            let name = std::thread::current()
                .name()
                .map_or_else(|| "a thread".to_string(), |name| format!("thread {name}"));
            *own = Some(OwnActor(arrive(Cow::Owned(name), EndSet::new())));
        }
    });
}

/// The actor the current thread acts for, if any.
fn current() -> Option<Arc<Actor>> {
    if let Some(actor) = CURRENT.with(|current| current.borrow().clone()) {
        return Some(actor);
    }
    if SERVICE.with(std::cell::Cell::get) {
        return None;
    }
    note_thread();
    OWN.with(|own| own.borrow().as_ref().map(|own| Arc::clone(&own.0)))
}

/// Runs `body` acting for `actor` (a process's body on this thread, or a task's poll).
pub(crate) fn acting_for<R>(actor: &Arc<Actor>, body: impl FnOnce() -> R) -> R {
    let previous = CURRENT.with(|current| current.replace(Some(Arc::clone(actor))));
    struct Restore(Option<Arc<Actor>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            CURRENT.with(|current| *current.borrow_mut() = previous);
        }
    }
    let _restore = Restore(previous);
    body()
}

/// A wait counted as blocked; dropping it ends it.
pub(crate) struct Blocked {
    actor: Arc<Actor>,
}

/// Counts the current actor as blocked on `waiting`, unless `still_waiting` says the wait
/// is over already. `register` first puts the actor where whoever ends the wait finds it (a
/// selector, a join's slot): that party calls [`unblock`] before it wakes the waiter. `None`
/// if the current thread is not an actor or the wait is over. Call only just before
/// sleeping, and only for waits with no deadline.
pub(crate) fn block(
    waiting: impl FnOnce() -> Option<Waiting>,
    register: impl FnOnce(&Arc<Actor>),
    still_waiting: impl FnOnce() -> bool,
    selector: Option<&Arc<Selector>>,
) -> Option<Blocked> {
    // Off for good (from the environment), no wait is counted: the accounting costs
    // nothing. (Turned off by `set_detection`, waits are still counted, so that turning it
    // on again finds the waits that began meanwhile.)
    if off_from_start() {
        return None;
    }
    let actor = current()?;
    // A wait that another OS process may end (a choice over ends whose channels live
    // there) is not counted: that OS process's actors are not seen here.
    let waiting = waiting()?;
    if actor.task {
        // A task that blocks its executor thread (a blocking call inside a task): marked as
        // waiting, and its thread, which sleeps now, no longer counts as busy. Nothing is
        // registered: the thread counts itself busy again when the wait ends.
        if !still_waiting() {
            return None;
        }
        *actor.waiting() = Some((
            waiting,
            selector.map(|selector| (Arc::clone(selector), selector.round())),
        ));
        actor.blocked.store(true, Ordering::Release);
        executor_thread_idle();
        return Some(Blocked { actor });
    }
    *actor.waiting() = Some((
        waiting,
        selector.map(|selector| (Arc::clone(selector), selector.round())),
    ));
    register(&actor);
    actor.blocked.store(true, Ordering::SeqCst);
    if !still_waiting() {
        // Over before it began: take the mark back, and the count the waker may have added.
        if !actor.blocked.swap(false, Ordering::SeqCst) {
            monitor().running.fetch_sub(1, Ordering::AcqRel);
        }
        *actor.waiting() = None;
        return None;
    }
    if monitor().running.fetch_sub(1, Ordering::AcqRel) == 1 {
        check();
    }
    Some(Blocked { actor })
}

/// A wait on another OS process, on the current thread: to be counted once it sleeps.
#[derive(Default)]
enum Away {
    #[default]
    None,
    Pending(Waiting, Interrupt),
    Counted(#[allow(dead_code)] Blocked),
}

thread_local! {
    static AWAY: RefCell<Away> = const { RefCell::new(Away::None) };
}

/// Runs `body`, a communication another OS process carries out, counting the current actor
/// as blocked on `waiting` from when the thread goes to sleep inside it (see [`sleeping`])
/// until it returns. A wait answered while spinning costs no more than a thread-local look.
pub(crate) fn away<R>(waiting: Option<(Waiting, Interrupt)>, body: impl FnOnce() -> R) -> R {
    let Some((waiting, interrupt)) = waiting else {
        return body();
    };
    AWAY.with(|away| *away.borrow_mut() = Away::Pending(waiting, interrupt));
    let result = body();
    drop(AWAY.with(|away| std::mem::take(&mut *away.borrow_mut())));
    result
}

/// The current thread is about to sleep waiting for another OS process: if that is a wait
/// [`away`] announced, count it now.
pub(crate) fn sleeping() {
    AWAY.with(|away| {
        let mut away = away.borrow_mut();
        if !matches!(*away, Away::Pending(..)) {
            return;
        }
        let Away::Pending(waiting, interrupt) = std::mem::take(&mut *away) else {
            unreachable!("checked above");
        };
        let waiting = Waiting::Away(Box::new(waiting), interrupt);
        if let Some(blocked) = block(|| Some(waiting), |_| {}, || true, None) {
            *away = Away::Counted(blocked);
        }
    });
}

/// Counts `actor` as running again, unless someone already did; whoever ends a blocked
/// wait calls this before waking the waiter. Only threads' actors are registered for it (a
/// task's wait is never counted one by one).
pub(crate) fn unblock(actor: &Actor) {
    debug_assert!(!actor.task, "a task's wait is never registered");
    if actor.blocked.swap(false, Ordering::SeqCst) {
        let monitor = monitor();
        // Only a wake-up from nobody running is news for the watcher; counting every one
        // would make every wait touch one more shared cache line.
        if monitor.running.fetch_add(1, Ordering::AcqRel) <= 0 {
            monitor.activity.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// One of the executor's threads starts: it counts as running until it first runs out of
/// tasks to poll.
pub(crate) fn executor_thread_starts() {
    if !off_from_start() {
        monitor().running.fetch_add(1, Ordering::AcqRel);
    }
}

/// An executor thread has no task to poll and is about to sleep: every task it could run
/// waits. (A thread's sleep and wake-up cost far more than these counts.)
pub(crate) fn executor_thread_idle() {
    if !off_from_start() && monitor().running.fetch_sub(1, Ordering::AcqRel) == 1 {
        check();
    }
}

/// An executor thread woke up to poll tasks again.
pub(crate) fn executor_thread_busy() {
    if off_from_start() {
        return;
    }
    let monitor = monitor();
    if monitor.running.fetch_add(1, Ordering::AcqRel) <= 0 {
        monitor.activity.fetch_add(1, Ordering::AcqRel);
    }
}

impl Drop for Blocked {
    fn drop(&mut self) {
        if self.actor.task {
            self.actor.blocked.store(false, Ordering::Release);
            executor_thread_busy();
            return;
        }
        unblock(&self.actor);
        *self.actor.waiting() = None;
    }
}

/// Marks the current task as waiting with `selector` on what `describe` tells (it is about
/// to return `Pending` from a wait with no deadline), until it is next polled: no shared
/// count is touched, since the executor's threads are counted instead (see [`TaskMark`]).
/// False if the current actor is no task (a thread awaiting in `block_on`): that wait is
/// counted as a thread's, with [`block`].
///
/// # Safety
///
/// `describe` and `selector` must stay in place until the task is next polled or
/// [`task_wait_ends`] is called with this selector (the wait's future is pinned, and calls
/// it when dropped).
#[allow(unsafe_code)]
pub(crate) unsafe fn mark_task_waiting(describe: &Describe<'_>, selector: &Arc<Selector>) -> bool {
    CURRENT.with(|current| {
        let current = current.borrow();
        let Some(actor) = current.as_ref().filter(|actor| actor.task) else {
            return false;
        };
        if !off_from_start() {
            // SAFETY: this is the task's thread, in its poll; the caller keeps the pointees
            // in place as long as the mark can stand.
            unsafe { actor.mark.mark(describe, selector) };
        }
        true
    })
}

/// The wait of `selector` is over and its future goes: the current task's mark, if it is
/// that wait's, goes with it.
pub(crate) fn task_wait_ends(selector: &Selector) {
    CURRENT.with(|current| {
        if let Some(actor) = current.borrow().as_ref().filter(|actor| actor.task) {
            actor.mark.clear_for(selector);
        }
    });
}

/// Where a waiter that is not a selector (a join) leaves its actor for the waker.
#[derive(Default)]
pub(crate) struct Slot {
    actor: Mutex<Option<Arc<Actor>>>,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Slot")
    }
}

impl Slot {
    pub(crate) fn put(&self, actor: &Arc<Actor>) {
        *self.actor.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::clone(actor));
    }

    /// The wait is over: counts the waiter (if one is blocked) as running.
    pub(crate) fn release(&self) {
        let actor = self.actor.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(actor) = actor {
            unblock(&actor);
        }
    }
}

/// Which deadlock was declared last: compositions compare it before and after they run.
pub(crate) fn generation() -> u64 {
    monitor().generation.load(Ordering::Acquire)
}

/// The report of the last deadlock, if one was declared after `generation`.
pub(crate) fn declared_since(generation: u64) -> Option<Arc<String>> {
    let monitor = monitor();
    if monitor.generation.load(Ordering::Acquire) == generation {
        return None;
    }
    monitor
        .last
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
}

/// A blocked actor, what it waits on, and the selector it waits with (for communications).
type BlockedActor = (Arc<Actor>, Waiting, Option<(Arc<Selector>, u64)>);

/// Every running actor has blocked: wake the watcher, which confirms it after [`GRACE`].
fn check() {
    let monitor = monitor();
    // The watcher is confirming a suspicion already and looks again when it is done: no
    // need to wake it (this is on the path of every wait that leaves nobody running).
    if monitor.armed.swap(true, Ordering::SeqCst) {
        return;
    }
    static WATCHER: OnceLock<()> = OnceLock::new();
    WATCHER.get_or_init(|| {
        let _ = std::thread::Builder::new()
            .name("csp-deadlock".into())
            .spawn(watch);
    });
    *monitor.suspect.lock().unwrap_or_else(|p| p.into_inner()) = true;
    monitor.suspected.notify_one();
}

/// The watcher: a thread that uses no channel (so it is no actor), confirming suspicions.
fn watch() {
    let monitor = monitor();
    loop {
        {
            let mut suspect = monitor.suspect.lock().unwrap_or_else(|p| p.into_inner());
            while !*suspect {
                suspect = monitor
                    .suspected
                    .wait(suspect)
                    .unwrap_or_else(|p| p.into_inner());
            }
            *suspect = false;
        }
        // Confirm, and look again for as long as nobody runs.
        loop {
            let seen = monitor.activity.load(Ordering::Acquire);
            let parent = PARENT.get();
            std::thread::sleep(if parent.is_some() { QUIET } else { GRACE });
            monitor.armed.store(false, Ordering::SeqCst);
            if monitor.running.load(Ordering::SeqCst) > 0 {
                break; // the next actor to leave nobody running wakes us again
            }
            if monitor.activity.load(Ordering::Acquire) == seen && detection() {
                match parent {
                    Some(parent) => tell_parent(parent, seen),
                    None => declare(),
                }
            }
            monitor.armed.store(true, Ordering::SeqCst);
        }
    }
}

/// What a child OS process tells its parent about its actors.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) enum Standstill {
    /// Every actor is blocked; these on communications.
    Blocked(Vec<Stuck>),
    /// Something moved since the last `Blocked`.
    Moving,
}

/// Where a child OS process sends its standstills (set in a child by the placement).
type ToParent = Box<dyn Fn(Standstill) + Send + Sync>;
static PARENT: OnceLock<ToParent> = OnceLock::new();

/// How long a child's actors must all stay blocked, nothing moving, before it tells its
/// parent; the parent then waits [`GRACE`] before it declares a deadlock.
const QUIET: Duration = Duration::from_millis(250);

/// How often a child that said it stands still looks whether something moved.
const LOOK_AGAIN: Duration = Duration::from_millis(5);

/// Makes this OS process a child whose standstills its parent decides on: from now on it
/// reports them through `report` instead of declaring deadlocks itself. A deadlock inside
/// the child is then declared by the parent, which sees the whole network.
pub(crate) fn report_to_parent(report: impl Fn(Standstill) + Send + Sync + 'static) {
    let _ = PARENT.set(Box::new(report));
}

/// Tells the parent every actor here is blocked, then that something moved as soon as it
/// does, so that the parent never acts on stale news for long.
fn tell_parent(parent: &ToParent, seen: u64) {
    let Some(blocked) = standstill() else {
        return;
    };
    let here = format!("(in OS process {})", std::process::id());
    let mut stuck = stuck(&blocked);
    for actor in &mut stuck {
        if !actor.doing.contains("(in OS process") {
            actor.doing = format!("{} {here}", actor.doing);
        }
    }
    parent(Standstill::Blocked(stuck));
    let monitor = monitor();
    while monitor.running.load(Ordering::Acquire) <= 0
        && monitor.activity.load(Ordering::Acquire) == seen
    {
        std::thread::sleep(LOOK_AGAIN);
    }
    parent(Standstill::Moving);
}

/// The blocked actors, if every actor is blocked and some wait on a communication.
fn standstill() -> Option<Vec<BlockedActor>> {
    let monitor = monitor();
    // Someone may have been chosen (and counted as running) since.
    if monitor.running.load(Ordering::Acquire) > 0 {
        return None;
    }
    // Tasks are not in the count: each must be marked as waiting (one that awaits anything
    // else, a timer say, is running).
    let task_running = live_actors().iter().any(|actor| {
        actor.task
            && !actor.gone.load(Ordering::Acquire)
            && !actor.blocked.load(Ordering::Acquire)
            && !actor.mark.is_marked()
    });
    if task_running {
        return None;
    }
    let blocked = blocked_actors();
    let communicating = blocked.iter().any(|(_, waiting, selector)| {
        selector.is_some() || matches!(waiting, Waiting::Away(..) | Waiting::Child(..))
    });
    (communicating && monitor.running.load(Ordering::Acquire) <= 0).then_some(blocked)
}

fn live_actors() -> Vec<Arc<Actor>> {
    let actors = monitor().actors.lock().unwrap_or_else(|p| p.into_inner());
    actors.iter().filter_map(Weak::upgrade).collect()
}

fn blocked_actors() -> Vec<BlockedActor> {
    live_actors()
        .iter()
        .filter(|actor| !actor.gone.load(Ordering::Acquire))
        .filter_map(|actor| {
            if actor.blocked.load(Ordering::Acquire) {
                let waiting = actor.waiting().clone()?;
                return Some((Arc::clone(actor), waiting.0, waiting.1));
            }
            let (waiting, selector) = actor.mark.read()?;
            let round = selector.round();
            Some((Arc::clone(actor), waiting, Some((selector, round))))
        })
        .collect()
}

/// Nothing has moved for [`GRACE`] with every actor blocked: report, and wake everyone.
fn declare() {
    let Some(blocked) = standstill() else {
        return;
    };
    let report = report(&stuck(&blocked));
    eprintln!("csp: {report}");
    end_waits(&blocked, report);
}

/// The parent declared a deadlock that involves this child OS process: end its waits too.
pub(crate) fn declared_by_parent(report: String) {
    end_waits(&blocked_actors(), report);
}

/// Publishes `report` for the compositions and wakes every blocked waiter as if poisoned.
fn end_waits(blocked: &[BlockedActor], report: String) {
    let monitor = monitor();
    let report = Arc::new(report);
    *monitor.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::clone(&report));
    monitor.generation.fetch_add(1, Ordering::AcqRel);
    for (_, waiting, selector) in blocked {
        // In the round that was counted: by now the owner may have gone on to another
        // wait (its process ended by the poison of another), which this must not end.
        if let Some((selector, round)) = selector
            && selector.try_declare_deadlock_in_round(*round)
        {
            selector.unpark();
        }
        if let Waiting::Away(_, interrupt) | Waiting::Child(_, interrupt) = waiting {
            (interrupt.0)(&report);
        }
    }
}

/// The blocked actors as a report shows them; a child OS process stands for its own.
fn stuck(blocked: &[BlockedActor]) -> Vec<Stuck> {
    let mut stuck = Vec::new();
    for (actor, waiting, _) in blocked {
        match waiting {
            Waiting::Child(inside, _) => stuck.extend(inside.iter().cloned()),
            Waiting::Join(_) => {}
            waiting => stuck.push(Stuck {
                name: actor.name.to_string(),
                doing: waiting.describe(),
                waits: waiting
                    .channels()
                    .into_iter()
                    .map(|(channel, reads)| (channel.clone(), reads))
                    .collect(),
                holds: actor
                    .ends
                    .handles()
                    .map(|(control, side)| (control.channel_name().clone(), side == Side::Writer))
                    .collect(),
            }),
        }
    }
    stuck
}

/// The report: who waits on what, and the cycle.
fn report(stuck: &[Stuck]) -> String {
    let mut text = String::from("deadlock: every process is waiting and none can proceed\n");
    for actor in stuck {
        let _ = writeln!(text, "  {} is {}", actor.name, actor.doing);
    }
    if let Some(cycle) = cycle(stuck) {
        let names: Vec<&str> = cycle.iter().map(|&i| &*stuck[i].name).collect();
        let _ = writeln!(
            text,
            "  cycle: {} -> {}",
            names.join(" -> "),
            names.first().copied().unwrap_or_default()
        );
    }
    text.trim_end().to_string()
}

/// A cycle of blocked actors, each waiting on a channel whose other side the next one holds.
fn cycle(stuck: &[Stuck]) -> Option<Vec<usize>> {
    // i waits for j if i waits on channel c and j holds an end of the other side of c: a
    // writer if i reads, a reader if i writes.
    let waits_for = |i: usize| -> Vec<usize> {
        (0..stuck.len())
            .filter(|&j| j != i)
            .filter(|&j| {
                stuck[i]
                    .waits
                    .iter()
                    .any(|wanted| stuck[j].holds.contains(wanted))
            })
            .collect()
    };
    let edges: Vec<Vec<usize>> = (0..stuck.len()).map(waits_for).collect();
    // Depth-first search for a cycle from each actor in turn.
    for start in 0..stuck.len() {
        let mut path = vec![start];
        let mut next = vec![0usize];
        while let Some(&at) = path.last() {
            let k = next.last_mut().expect("in step with the path");
            if let Some(&to) = edges[at].get(*k) {
                *k += 1;
                if to == start {
                    return Some(path);
                }
                if !path.contains(&to) && to > start {
                    path.push(to);
                    next.push(0);
                }
            } else {
                path.pop();
                next.pop();
            }
        }
    }
    None
}

/// A task's future, polled acting for its process's actor.
pub(crate) struct ActingFor<F> {
    actor: Arc<Actor>,
    future: F,
}

impl<F> ActingFor<F> {
    pub(crate) fn new(actor: Arc<Actor>, future: F) -> Self {
        ActingFor { actor, future }
    }
}

impl<F> Drop for ActingFor<F> {
    fn drop(&mut self) {
        // Before the future (and the waits inside it that a mark may point into) goes.
        self.actor.mark.clear();
    }
}

impl<F: std::future::Future + Unpin> std::future::Future for ActingFor<F> {
    type Output = F::Output;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let this = &mut *self;
        // Polled: running. A wait still pending marks it again before it returns.
        this.actor.mark.clear();
        acting_for(&this.actor, || {
            let polled = std::pin::Pin::new(&mut this.future).poll(context);
            // The task may go on on another thread: its writes ahead (which this thread
            // tracks) are carried out before it can be seen waiting or done.
            crate::remote::flush_writes_ahead();
            polled
        })
    }
}
