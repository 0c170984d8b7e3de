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
//! A suspicion is confirmed only after [`GRACE`] with every actor still blocked and nothing
//! happening, so a thread the program started itself (which is seen only once it uses a
//! channel) has that long to show up. When a deadlock is found, the monitor writes a report (each blocked process and what it
//! waits on, and the cycle of processes waiting for each other where one can be traced
//! through the channel ends they hold) to standard error, and wakes every blocked waiter as if
//! its channel were poisoned. The processes end by poison, their compositions return, and a
//! composition that was running returns [`RunError::Deadlock`](crate::RunError::Deadlock) with
//! the report.
//!
//! Each OS process has its own monitor. A deadlock among the processes of a child OS process
//! is found in the child, and the child reports it to its parent as its result
//! (`RunError::Deadlock`). Across OS processes, a process in a child counts as running for as
//! long as its OS process lives (a child does not report its state while it runs), so a
//! deadlock that spans OS processes is not found.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

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
        }
    }

    /// The channels waited on, with `true` for reading.
    fn channels(&self) -> Vec<(&ChannelName, bool)> {
        match self {
            Waiting::Read(channel) => vec![(channel, true)],
            Waiting::Write(channel) => vec![(channel, false)],
            Waiting::Choice(guards) => guards.iter().map(|(c, r)| (c, *r)).collect(),
            Waiting::Join(_) => Vec::new(),
        }
    }
}

/// What an actor waits on, and the selector it waits with.
type WaitRecord = (Waiting, Option<Arc<Selector>>);

/// One actor: a process, or another thread that uses channels.
pub(crate) struct Actor {
    name: Cow<'static, str>,
    /// A number for the actor, for traces.
    id: u64,
    /// The channel ends the process holds (its arguments), for tracing the cycle.
    ends: EndSet,
    /// What it waits on now, and the selector it waits with, while blocked.
    waiting: Mutex<Option<WaitRecord>>,
    /// Set while it is counted as blocked; whoever clears it counts it as running again.
    blocked: AtomicBool,
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
    static FROM_ENVIRONMENT: OnceLock<bool> = OnceLock::new();
    let off_from_start = *FROM_ENVIRONMENT
        .get_or_init(|| std::env::var("CSP_DEADLOCK_DETECTION").is_ok_and(|value| value == "off"));
    !off_from_start && !DISABLED.load(Ordering::Relaxed)
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

/// Registers a new running actor.
pub(crate) fn arrive(name: Cow<'static, str>, ends: EndSet) -> Arc<Actor> {
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    let actor = Arc::new(Actor {
        name,
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        ends,
        waiting: Mutex::new(None),
        blocked: AtomicBool::new(false),
    });
    let monitor = monitor();
    monitor.running.fetch_add(1, Ordering::AcqRel);
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
    let actor = current()?;
    // A wait that another OS process may end (a choice over ends whose channels live
    // there) is not counted: that OS process's actors are not seen here.
    let waiting = waiting()?;
    *actor.waiting() = Some((waiting, selector.cloned()));
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

/// Counts `actor` as running again, unless someone already did; whoever ends a blocked
/// wait calls this before waking the waiter.
pub(crate) fn unblock(actor: &Actor) {
    if actor.blocked.swap(false, Ordering::SeqCst) {
        let monitor = monitor();
        // Only a wake-up from nobody running is news for the watcher; counting every one
        // would make every wait touch one more shared cache line.
        if monitor.running.fetch_add(1, Ordering::AcqRel) <= 0 {
            monitor.activity.fetch_add(1, Ordering::AcqRel);
        }
    }
}

impl Drop for Blocked {
    fn drop(&mut self) {
        unblock(&self.actor);
        *self.actor.waiting() = None;
    }
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
type BlockedActor = (Arc<Actor>, Waiting, Option<Arc<Selector>>);

/// Every running actor has blocked: wake the watcher, which confirms it after [`GRACE`].
fn check() {
    let monitor = monitor();
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
        let seen = monitor.activity.load(Ordering::Acquire);
        std::thread::sleep(GRACE);
        if monitor.running.load(Ordering::Acquire) == 0
            && monitor.activity.load(Ordering::Acquire) == seen
        {
            if detection() {
                declare();
            } else {
                // Still stuck, with detection off: look again later, in case it is turned on.
                *monitor.suspect.lock().unwrap_or_else(|p| p.into_inner()) = true;
            }
        }
    }
}

/// Nothing has moved for [`GRACE`] with every actor blocked: report, and wake everyone.
fn declare() {
    let monitor = monitor();
    let actors: Vec<Arc<Actor>> = {
        let actors = monitor.actors.lock().unwrap_or_else(|p| p.into_inner());
        actors.iter().filter_map(Weak::upgrade).collect()
    };
    // Someone may have been chosen (and counted as running) since.
    if monitor.running.load(Ordering::Acquire) > 0 {
        return;
    }
    let blocked: Vec<BlockedActor> = actors
        .iter()
        .filter(|actor| actor.blocked.load(Ordering::Acquire))
        .filter_map(|actor| {
            let waiting = actor.waiting().clone()?;
            Some((Arc::clone(actor), waiting.0, waiting.1))
        })
        .collect();
    let waits_for_communication = blocked.iter().any(|(_, _, selector)| selector.is_some());
    if !waits_for_communication || monitor.running.load(Ordering::Acquire) > 0 {
        return;
    }
    let report = Arc::new(report(&blocked));
    eprintln!("csp: {report}");
    *monitor.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::clone(&report));
    monitor.generation.fetch_add(1, Ordering::AcqRel);
    for (_, _, selector) in &blocked {
        if let Some(selector) = selector
            && selector.try_declare_deadlock()
        {
            selector.unpark();
        }
    }
}

/// The report: who waits on what, and the cycle.
fn report(blocked: &[BlockedActor]) -> String {
    let mut text = String::from("deadlock: every process is waiting and none can proceed\n");
    for (actor, waiting, selector) in blocked {
        if selector.is_some() {
            let _ = writeln!(text, "  {} is {}", actor.name, waiting.describe());
        }
    }
    if let Some(cycle) = cycle(blocked) {
        let names: Vec<&str> = cycle.iter().map(|&i| &*blocked[i].0.name).collect();
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
fn cycle(blocked: &[BlockedActor]) -> Option<Vec<usize>> {
    // i waits for j if i waits on channel c and j holds an end of the other side of c: a
    // writer if i reads, a reader if i writes.
    let waits_for = |i: usize| -> Vec<usize> {
        let wanted = blocked[i].1.channels();
        (0..blocked.len())
            .filter(|&j| j != i)
            .filter(|&j| {
                wanted
                    .iter()
                    .any(|(channel, reads)| blocked[j].0.ends.holds(channel, *reads))
            })
            .collect()
    };
    let edges: Vec<Vec<usize>> = (0..blocked.len()).map(waits_for).collect();
    // Depth-first search for a cycle from each actor in turn.
    for start in 0..blocked.len() {
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

impl<F: std::future::Future + Unpin> std::future::Future for ActingFor<F> {
    type Output = F::Output;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let this = &mut *self;
        acting_for(&this.actor, || {
            std::pin::Pin::new(&mut this.future).poll(context)
        })
    }
}
