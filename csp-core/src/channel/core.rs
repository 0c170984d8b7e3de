//! The shared state of one channel and the rules every operation follows.
//!
//! Everything happens under one mutex per channel. A blocked operation (or a guard of an
//! alternation) leaves an *entry* in the channel: its [`Selector`], the guard index, and a slot
//! for the value (the offered value for a writer, the delivered one for a reader). An active
//! operation completes a communication with a waiting one by claiming the entry's selector
//! (`try_select`), moving the value, and waking the owner. Entries stay in the channel until
//! their owner removes them, so a value is never in two places and never lost.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use super::Shortfall;
use crate::error::{ChannelError, ChannelName};
use crate::wait::{Selector, Woken};

/// Which side of a channel an end belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Reader = 0,
    Writer = 1,
}

/// The result of trying an operation without blocking.
pub(crate) enum Attempt<T> {
    /// The operation completed (carrying the value read, for reads).
    Done(T),
    /// Nothing could complete now.
    NotReady,
    /// The channel failed for good.
    Failed(ChannelError),
}

struct ReadEntry<T> {
    selector: Arc<Selector>,
    guard: usize,
    delivered: Option<T>,
}

struct WriteEntry<T> {
    selector: Arc<Selector>,
    guard: usize,
    offered: Option<T>,
}

pub(crate) struct State<T> {
    buffer: VecDeque<T>,
    readers_waiting: VecDeque<ReadEntry<T>>,
    writers_waiting: VecDeque<WriteEntry<T>>,
    reader_ends: usize,
    writer_ends: usize,
    readers_retired: bool,
    writers_retired: bool,
    poisoned_by: Option<Side>,
    messages: u64,
    /// Processes deciding how they ended: while any does, a side whose last end is dropped
    /// retires only when the hold is released (see [`Core::hold`]).
    holds: usize,
    retire_pending: [bool; 2],
    /// Buffer slots promised to values on their way from writers in other OS processes
    /// (their writes ahead, see [`Core::reserve`]): not room for anyone else.
    reserved: usize,
}

/// One channel: its name, capacity and state.
pub(crate) struct Core<T> {
    name: ChannelName,
    capacity: usize,
    state: Mutex<State<T>>,
    /// Whether the ends of an OS process that died are only dropped, not poisoned (a
    /// channel many clients share, as a pattern's; see [`Core::survive_dead_peers`]).
    survives_dead_peers: std::sync::atomic::AtomicBool,
}

/// The first step of a blocking read or write: done at once, or waiting with an entry. `D`
/// is what a completed operation gives (the value, for a read), `V` what a failed one hands
/// back (the value, for a write).
pub(crate) enum Begun<D, V> {
    Done(D),
    /// Nothing can complete now, and no wait was wanted.
    NotReady(V),
    Failed(ChannelError, V),
    /// An entry waits with this selector.
    Waiting(Arc<Selector>),
}

/// How the wait of a single read or write ended, once its entry is withdrawn.
pub(crate) enum Ended<D, V> {
    Done(D),
    /// Look again (a write retries with its value).
    Again(V),
    TimedOut(V),
    Deadlocked(V),
}

impl<D, V> Ended<D, V> {
    /// What a blocking or async read or write does with the end of its wait: return the
    /// outcome (`Ok`), or look again with what it hands back (`Err`). `deadlocked` is the
    /// channel's error for a wait the deadlock monitor ended.
    pub(crate) fn outcome(
        self,
        deadlocked: impl FnOnce() -> ChannelError,
    ) -> Result<Result<D, (V, Shortfall)>, V> {
        match self {
            Ended::Done(done) => Ok(Ok(done)),
            Ended::Again(retry) => Err(retry),
            Ended::TimedOut(back) => Ok(Err((back, Shortfall::TimedOut))),
            Ended::Deadlocked(back) => Ok(Err((back, Shortfall::Failed(deadlocked())))),
        }
    }
}

/// A selector to wake once the channel lock is released.
pub(crate) type Wake = Option<Arc<Selector>>;

pub(crate) fn wake(wake: Wake) {
    if let Some(selector) = wake {
        selector.unpark();
    }
}

impl<T> Core<T> {
    pub(crate) fn new(name: ChannelName, capacity: usize) -> Self {
        Core {
            name,
            capacity,
            survives_dead_peers: std::sync::atomic::AtomicBool::new(false),
            state: Mutex::new(State {
                buffer: VecDeque::with_capacity(capacity.min(1024)),
                readers_waiting: VecDeque::new(),
                writers_waiting: VecDeque::new(),
                reader_ends: 0,
                writer_ends: 0,
                readers_retired: false,
                writers_retired: false,
                poisoned_by: None,
                messages: 0,
                holds: 0,
                retire_pending: [false; 2],
                reserved: 0,
            }),
        }
    }

    pub(crate) fn name(&self) -> &ChannelName {
        &self.name
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Makes the ends an OS process held die with it quietly: dropped (so its side may
    /// retire), not poisoned, and a value taken for a reader there that could not reach it
    /// is put back. For channels that many independent clients share, where one client's
    /// death must not end the channel for the others.
    pub(crate) fn survive_dead_peers(&self) {
        self.survives_dead_peers
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn survives_dead_peers(&self) -> bool {
        self.survives_dead_peers
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Locks the state. No user code runs while the lock is held (values are moved, never
    /// dropped, under it), so a poisoned mutex still holds consistent state and is used as is.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn poisoned(&self) -> ChannelError {
        ChannelError::Poisoned {
            channel: self.name.clone(),
        }
    }

    /// What an operation the deadlock monitor ended reports: the channel as poisoned, so
    /// that the process ends by poison and passes it on.
    pub(crate) fn deadlocked(&self) -> ChannelError {
        self.poisoned()
    }

    fn retired(&self) -> ChannelError {
        ChannelError::Retired {
            channel: self.name.clone(),
        }
    }

    /// Records a communication on this channel, if tracing is on.
    fn communicated(&self) {
        crate::trace::record(|| crate::trace::EventKind::Communication(self.name.clone()));
    }

    /// Reads now, or leaves an entry for the selector `wait` makes (`None`: do not wait).
    pub(crate) fn begin_read(&self, wait: impl FnOnce() -> Option<Arc<Selector>>) -> Begun<T, ()> {
        let mut woken_writer = None;
        let mut state = self.lock();
        match self.try_read(&mut state, &mut woken_writer) {
            Attempt::Done(value) => {
                drop(state);
                wake(woken_writer);
                Begun::Done(value)
            }
            Attempt::Failed(error) => Begun::Failed(error, ()),
            Attempt::NotReady => match wait() {
                None => Begun::NotReady(()),
                Some(selector) => {
                    // Nothing can change while the lock is held: the entry is not ready yet.
                    self.register_reader(&mut state, &selector, 0);
                    Begun::Waiting(selector)
                }
            },
        }
    }

    /// Withdraws a read's entry after its wait ended as `woken`.
    pub(crate) fn end_read(&self, selector: &Arc<Selector>, woken: Woken) -> Ended<T, ()> {
        let delivered = self.unregister_reader(&mut self.lock(), selector, 0);
        match woken {
            Woken::Selected(_) => {
                Ended::Done(delivered.expect("a reader chosen by a writer holds its value"))
            }
            Woken::Recheck => Ended::Again(()),
            Woken::TimedOut => Ended::TimedOut(()),
            Woken::Deadlocked => Ended::Deadlocked(()),
        }
    }

    /// Writes now, or leaves an entry offering `value` for the selector `wait` makes.
    pub(crate) fn begin_write(
        &self,
        value: T,
        wait: impl FnOnce() -> Option<Arc<Selector>>,
    ) -> Begun<(), T> {
        let mut woken_reader = None;
        let mut state = self.lock();
        match self.try_write(&mut state, value, &mut woken_reader) {
            Ok(()) => {
                drop(state);
                wake(woken_reader);
                Begun::Done(())
            }
            Err((unsent, Some(error))) => Begun::Failed(error, unsent),
            Err((unsent, None)) => match wait() {
                None => Begun::NotReady(unsent),
                Some(selector) => {
                    self.register_writer(&mut state, &selector, 0, unsent);
                    Begun::Waiting(selector)
                }
            },
        }
    }

    /// Withdraws a write's entry after its wait ended as `woken`.
    pub(crate) fn end_write(&self, selector: &Arc<Selector>, woken: Woken) -> Ended<(), T> {
        let unsent = self.unregister_writer(&mut self.lock(), selector, 0);
        match (woken, unsent) {
            (Woken::Selected(_), None) => Ended::Done(()),
            (Woken::Recheck, Some(unsent)) => Ended::Again(unsent),
            (Woken::TimedOut, Some(unsent)) => Ended::TimedOut(unsent),
            (Woken::Deadlocked, Some(unsent)) => Ended::Deadlocked(unsent),
            (woken, unsent) => unreachable!(
                "writer woken as {woken:?} with its value {}",
                if unsent.is_some() { "unsent" } else { "taken" }
            ),
        }
    }

    /// Reads now if a value is buffered or a writer waits.
    pub(crate) fn try_read(&self, state: &mut State<T>, wake: &mut Wake) -> Attempt<T> {
        if let Some(by) = state.poisoned_by {
            // Poison from a writer leaves the buffer readable until drained (C++CSP2).
            if by == Side::Writer {
                if let Some(value) = state.buffer.pop_front() {
                    state.messages += 1;
                    self.communicated();
                    return Attempt::Done(value);
                }
            }
            return Attempt::Failed(self.poisoned());
        }
        if let Some(value) = state.buffer.pop_front() {
            // A slot opened: move the first waiting writer's value in.
            if let Some(refill) = Self::take_from_writer(state, wake) {
                state.buffer.push_back(refill);
            }
            state.messages += 1;
            self.communicated();
            return Attempt::Done(value);
        }
        if let Some(value) = Self::take_from_writer(state, wake) {
            state.messages += 1;
            self.communicated();
            return Attempt::Done(value);
        }
        if state.writers_retired {
            return Attempt::Failed(self.retired());
        }
        Attempt::NotReady
    }

    fn take_from_writer(state: &mut State<T>, wake: &mut Wake) -> Option<T> {
        for entry in state.writers_waiting.iter_mut() {
            if entry.offered.is_some() && entry.selector.try_select(entry.guard) {
                *wake = Some(Arc::clone(&entry.selector));
                return entry.offered.take();
            }
        }
        None
    }

    /// Writes now if a reader waits or the buffer has room; otherwise hands `value` back.
    pub(crate) fn try_write(
        &self,
        state: &mut State<T>,
        value: T,
        wake: &mut Wake,
    ) -> Result<(), (T, Option<ChannelError>)> {
        if state.poisoned_by.is_some() {
            return Err((value, Some(self.poisoned())));
        }
        if state.readers_retired {
            return Err((value, Some(self.retired())));
        }
        let value = match self.deliver(state, value, wake) {
            Ok(()) => return Ok(()),
            Err(value) => value,
        };
        if state.buffer.len() + state.reserved < self.capacity {
            state.buffer.push_back(value);
            return Ok(());
        }
        Err((value, None))
    }

    /// Hands `value` to a waiting reader, if one waits past an empty buffer.
    fn deliver(&self, state: &mut State<T>, value: T, wake: &mut Wake) -> Result<(), T> {
        // Straight to a waiting reader only past an empty buffer: values leave in order. (A
        // reader can wait while values are buffered: an alternation withdrawing its entries.)
        let direct = state.buffer.is_empty();
        for entry in state.readers_waiting.iter_mut().filter(|_| direct) {
            if entry.delivered.is_none() && entry.selector.try_select(entry.guard) {
                entry.delivered = Some(value);
                *wake = Some(Arc::clone(&entry.selector));
                state.messages += 1;
                self.communicated();
                return Ok(());
            }
        }
        Err(value)
    }

    /// Reserves up to `wanted` buffer slots for values a writer in another OS process sends
    /// ahead without waiting for an answer; returns how many were reserved (none for a
    /// channel that failed, or whose buffer has no room left).
    pub(crate) fn reserve(&self, wanted: usize) -> usize {
        let mut state = self.lock();
        if state.poisoned_by.is_some() || state.readers_retired {
            return 0;
        }
        let free = self
            .capacity
            .saturating_sub(state.buffer.len() + state.reserved);
        let granted = wanted.min(free);
        state.reserved += granted;
        granted
    }

    /// Puts a value into a slot [`reserve`](Core::reserve) kept for it: it never waits.
    ///
    /// # Errors
    ///
    /// The channel's error, with the value, if it was poisoned or its readers retired since.
    pub(crate) fn deposit_reserved(&self, value: T) -> Result<(), (T, ChannelError)> {
        let mut wake = None;
        let result = {
            let mut state = self.lock();
            state.reserved = state.reserved.saturating_sub(1);
            // Poisoned by a writer, the buffer stays readable: a value written ahead before
            // the poison (its slot was reserved then) joins it.
            if state.poisoned_by == Some(Side::Reader) {
                Err((value, self.poisoned()))
            } else if state.readers_retired {
                Err((value, self.retired()))
            } else {
                if let Err(value) = self.deliver(&mut state, value, &mut wake) {
                    state.buffer.push_back(value);
                }
                Ok(())
            }
        };
        self::wake(wake);
        result
    }

    /// Gives back `count` reserved slots that will not be used, as room for everyone.
    pub(crate) fn unreserve(&self, count: usize) {
        if count == 0 {
            return;
        }
        let waiting = {
            let mut state = self.lock();
            state.reserved = state.reserved.saturating_sub(count);
            Self::recheck_all(&mut state)
        };
        waiting.iter().for_each(|selector| selector.unpark());
    }

    /// Leaves a reader's entry; returns whether the channel is ready for it already (a writer
    /// other than `selector` waits, a value is buffered, or the channel failed).
    pub(crate) fn register_reader(
        &self,
        state: &mut State<T>,
        selector: &Arc<Selector>,
        guard: usize,
    ) -> bool {
        state.readers_waiting.push_back(ReadEntry {
            selector: Arc::clone(selector),
            guard,
            delivered: None,
        });
        state.poisoned_by.is_some()
            || state.writers_retired
            || !state.buffer.is_empty()
            || state.writers_waiting.iter().any(|entry| {
                entry.offered.is_some()
                    && !Selector::same(&entry.selector, selector)
                    && entry.selector.is_waiting()
            })
    }

    /// Removes a reader's entry, returning the value delivered into it, if any.
    pub(crate) fn unregister_reader(
        &self,
        state: &mut State<T>,
        selector: &Arc<Selector>,
        guard: usize,
    ) -> Option<T> {
        let at = state
            .readers_waiting
            .iter()
            .position(|entry| entry.guard == guard && Selector::same(&entry.selector, selector))?;
        state
            .readers_waiting
            .remove(at)
            .and_then(|entry| entry.delivered)
    }

    /// Leaves a writer's entry offering `value`; returns whether the channel is ready for it.
    pub(crate) fn register_writer(
        &self,
        state: &mut State<T>,
        selector: &Arc<Selector>,
        guard: usize,
        value: T,
    ) -> bool {
        state.writers_waiting.push_back(WriteEntry {
            selector: Arc::clone(selector),
            guard,
            offered: Some(value),
        });
        state.poisoned_by.is_some()
            || state.readers_retired
            || state.buffer.len() + state.reserved < self.capacity
            || state.readers_waiting.iter().any(|entry| {
                entry.delivered.is_none()
                    && !Selector::same(&entry.selector, selector)
                    && entry.selector.is_waiting()
            })
    }

    /// Removes a writer's entry, returning its value if no reader took it.
    pub(crate) fn unregister_writer(
        &self,
        state: &mut State<T>,
        selector: &Arc<Selector>,
        guard: usize,
    ) -> Option<T> {
        let at = state
            .writers_waiting
            .iter()
            .position(|entry| entry.guard == guard && Selector::same(&entry.selector, selector))?;
        state
            .writers_waiting
            .remove(at)
            .and_then(|entry| entry.offered)
    }

    /// Puts back, at the front, a value that was delivered to a reader who then stopped
    /// waiting (a task's read that was dropped), so that the next read gets it.
    pub(crate) fn restore(&self, value: T) {
        let waiting = {
            let mut state = self.lock();
            state.buffer.push_front(value);
            state.messages = state.messages.saturating_sub(1);
            Self::recheck_all(&mut state)
        };
        waiting.iter().for_each(|selector| selector.unpark());
    }

    /// Counts a new end of `side`.
    pub(crate) fn attach(&self, side: Side) {
        let mut state = self.lock();
        match side {
            Side::Reader => state.reader_ends += 1,
            Side::Writer => state.writer_ends += 1,
        }
    }

    /// Holds back retirement while a process that holds ends of this channel decides how it
    /// ended: its ends are dropped as its body returns, but if it ended because of poison the
    /// channel must be poisoned before those drops can retire it, or a partner could see
    /// "retired" where the network is being shut down by poison.
    pub(crate) fn hold(&self) {
        self.lock().holds += 1;
    }

    /// Ends a [`hold`](Core::hold); the last one carries out retirements held back.
    pub(crate) fn release(&self) {
        let pending = {
            let mut state = self.lock();
            state.holds -= 1;
            if state.holds > 0 {
                return;
            }
            std::mem::take(&mut state.retire_pending)
        };
        if pending[0] {
            self.retire(Side::Reader);
        }
        if pending[1] {
            self.retire(Side::Writer);
        }
    }

    /// Removes an end of `side`; the last one retires the side.
    pub(crate) fn detach(&self, side: Side) {
        {
            let mut state = self.lock();
            let ends = match side {
                Side::Reader => &mut state.reader_ends,
                Side::Writer => &mut state.writer_ends,
            };
            *ends -= 1;
            if *ends > 0 {
                return;
            }
            if state.holds > 0 {
                state.retire_pending[side as usize] = true;
                return;
            }
        }
        self.retire(side);
    }

    /// Retires `side` (its last end is gone), unless an end of it was attached again.
    fn retire(&self, side: Side) {
        let (waiting, discarded) = {
            let mut state = self.lock();
            let ends = match side {
                Side::Reader => state.reader_ends,
                Side::Writer => state.writer_ends,
            };
            if ends > 0 {
                return;
            }
            crate::trace::record(|| crate::trace::EventKind::Retire(self.name.clone()));
            let discarded = match side {
                Side::Reader => {
                    state.readers_retired = true;
                    // Nobody can read what is buffered any more.
                    std::mem::take(&mut state.buffer)
                }
                Side::Writer => {
                    state.writers_retired = true;
                    VecDeque::new()
                }
            };
            (Self::recheck_all(&mut state), discarded)
        };
        // Values are dropped outside the lock: a value may hold an end of this very channel.
        drop(discarded);
        waiting.iter().for_each(|selector| selector.unpark());
    }

    /// Poisons the channel from `side`. Returns false if it was poisoned already.
    pub(crate) fn poison(&self, side: Side) -> bool {
        let (waiting, discarded) = {
            let mut state = self.lock();
            if state.poisoned_by.is_some() {
                return false;
            }
            state.poisoned_by = Some(side);
            crate::trace::record(|| crate::trace::EventKind::Poison(self.name.clone()));
            // Poison from a reader throws the buffer away; from a writer it stays readable.
            let discarded = match side {
                Side::Reader => std::mem::take(&mut state.buffer),
                Side::Writer => VecDeque::new(),
            };
            (Self::recheck_all(&mut state), discarded)
        };
        drop(discarded);
        waiting.iter().for_each(|selector| selector.unpark());
        true
    }

    /// Asks every waiting entry's owner to look again; returns the ones to wake.
    fn recheck_all(state: &mut State<T>) -> Vec<Arc<Selector>> {
        let readers = state.readers_waiting.iter().map(|entry| &entry.selector);
        let writers = state.writers_waiting.iter().map(|entry| &entry.selector);
        readers
            .chain(writers)
            .filter(|selector| selector.try_recheck())
            .map(Arc::clone)
            .collect()
    }

    /// A snapshot for `Debug` and diagnostics.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let state = self.lock();
        Snapshot {
            capacity: self.capacity,
            buffered: state.buffer.len(),
            reader_ends: state.reader_ends,
            writer_ends: state.writer_ends,
            readers_waiting: state.readers_waiting.len(),
            writers_waiting: state.writers_waiting.len(),
            readers_retired: state.readers_retired,
            writers_retired: state.writers_retired,
            poisoned: state.poisoned_by.is_some(),
            messages: state.messages,
        }
    }
}

/// What a channel looks like at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub(crate) capacity: usize,
    pub(crate) buffered: usize,
    pub(crate) reader_ends: usize,
    pub(crate) writer_ends: usize,
    pub(crate) readers_waiting: usize,
    pub(crate) writers_waiting: usize,
    pub(crate) readers_retired: bool,
    pub(crate) writers_retired: bool,
    pub(crate) poisoned: bool,
    pub(crate) messages: u64,
}

impl<T> fmt::Debug for Core<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.snapshot();
        let mut out = f.debug_struct("Channel");
        out.field("name", &self.name.as_str());
        out.field("capacity", &s.capacity);
        if s.capacity > 0 {
            out.field("buffered", &s.buffered);
        }
        out.field("readers", &s.reader_ends)
            .field("writers", &s.writer_ends)
            .field("blocked_readers", &s.readers_waiting)
            .field("blocked_writers", &s.writers_waiting)
            .field("messages", &s.messages);
        if s.poisoned {
            out.field("poisoned", &true);
        }
        if s.readers_retired {
            out.field("readers_retired", &true);
        }
        if s.writers_retired {
            out.field("writers_retired", &true);
        }
        out.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name() -> ChannelName {
        ChannelName::new("test")
    }

    #[test]
    fn a_write_never_overtakes_buffered_values() {
        // A reader's entry can be present while values are buffered (an alternation between
        // registering and withdrawing). A new value must queue behind the buffered ones.
        let core = Core::<u32>::new(name(), 2);
        let mut wake = None;
        let mut state = core.lock();
        assert!(core.try_write(&mut state, 1, &mut wake).is_ok());
        let selector = Selector::current();
        assert!(
            core.register_reader(&mut state, &selector, 0),
            "a buffered value makes it ready"
        );
        assert!(core.try_write(&mut state, 2, &mut wake).is_ok());
        assert!(
            wake.is_none(),
            "the waiting reader was not handed the new value"
        );
        assert_eq!(core.unregister_reader(&mut state, &selector, 0), None);
        assert!(matches!(
            core.try_read(&mut state, &mut wake),
            Attempt::Done(1)
        ));
        assert!(matches!(
            core.try_read(&mut state, &mut wake),
            Attempt::Done(2)
        ));
    }

    #[test]
    fn a_held_channel_retires_only_when_released_so_poison_can_come_first() {
        let core = Core::<u32>::new(name(), 0);
        core.attach(Side::Reader);
        core.attach(Side::Writer);
        core.hold(); // a process holding the reader is deciding how it ended
        core.detach(Side::Reader); // its argument is dropped as its body returns
        let mut wake = None;
        assert!(
            matches!(
                core.try_write(&mut core.lock(), 1, &mut wake),
                Err((1, None))
            ),
            "not retired while held"
        );
        core.poison(Side::Reader); // it ended because of poison and passes it on
        core.release();
        let error = core
            .try_write(&mut core.lock(), 2, &mut wake)
            .unwrap_err()
            .1;
        assert!(error.is_some_and(|e| e.is_poisoned()), "poison, not retire");
        // Without poison, the release carries out the retirement held back.
        let core = Core::<u32>::new(name(), 0);
        core.attach(Side::Reader);
        core.hold();
        core.detach(Side::Reader);
        core.release();
        let error = core
            .try_write(&mut core.lock(), 3, &mut wake)
            .unwrap_err()
            .1;
        assert!(error.is_some_and(|e| e.is_retired()));
    }

    #[test]
    fn a_waiting_reader_past_an_empty_buffer_gets_the_value_directly() {
        let core = Core::<u32>::new(name(), 2);
        let mut wake = None;
        let mut state = core.lock();
        let selector = Selector::current();
        assert!(!core.register_reader(&mut state, &selector, 3));
        assert!(core.try_write(&mut state, 7, &mut wake).is_ok());
        assert!(wake.is_some());
        assert_eq!(core.unregister_reader(&mut state, &selector, 3), Some(7));
        assert!(state.buffer.is_empty());
    }
}
