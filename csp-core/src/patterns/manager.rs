//! `multiprocessing.Manager`: one owner for the lifetime of several pieces of shared state.

use std::collections::BTreeMap;

use super::barrier::Barrier;
use super::condition::Condition;
use super::event::Event;
use super::lock::{BoundedSemaphore, Lock, RLock, Semaphore};
use super::queue::Queue;
use super::service::Wire;
use super::shared::{
    Cell, Namespace, Operate, Shared, SharedArray, SharedDict, SharedList, SharedValue,
};
use crate::channel::{Channel, Reader, Writer};

/// Serves shared state for as long as it lives (`multiprocessing.Manager()`).
///
/// State made by a manager is served until the manager is dropped or
/// [`shutdown`](Manager::shutdown), even if no handle is left, and no longer: after that,
/// every handle's operations fail with [`PatternError::Gone`](super::PatternError::Gone).
/// Handles can be passed to processes in any placement; the state itself stays in the OS
/// process of the manager.
///
/// # Examples
///
/// ```
/// use csp_core::patterns::{Manager, PatternError};
///
/// let manager = Manager::new();
/// let records = manager.list(vec![1, 2]);
/// records.push(3).unwrap();
/// assert_eq!(records.snapshot().unwrap(), [1, 2, 3]);
/// manager.shutdown();
/// assert!(matches!(records.len(), Err(PatternError::Gone { .. })));
/// ```
#[derive(Debug)]
pub struct Manager {
    lifeline: Channel<()>,
    alive: Option<Writer<()>>,
}

impl Manager {
    /// A manager with nothing to serve yet.
    pub fn new() -> Manager {
        let lifeline = Channel::named("manager");
        let alive = Some(lifeline.writer());
        Manager { lifeline, alive }
    }

    fn lifeline(&self) -> Option<Reader<()>> {
        Some(self.lifeline.reader())
    }

    /// Serves any shared state `state` (see [`Operate`]).
    pub fn serve<S: Operate>(&self, state: S) -> Shared<S> {
        Shared::start(state, self.lifeline())
    }

    /// A shared list (`manager.list(items)`).
    pub fn list<T: Wire + Clone>(&self, items: Vec<T>) -> SharedList<T> {
        self.serve(items)
    }

    /// A shared dictionary (`manager.dict()`).
    pub fn dict<K: Wire + Ord + Clone, V: Wire + Clone>(&self) -> SharedDict<K, V> {
        self.serve(BTreeMap::new())
    }

    /// A namespace (`manager.Namespace()`).
    pub fn namespace<V: Wire + Clone>(&self) -> Namespace<V> {
        self.serve(BTreeMap::new())
    }

    /// A shared value (`manager.Value(typecode, value)`).
    pub fn value<T: Wire + Clone>(&self, value: T) -> SharedValue<T> {
        self.serve(Cell(value))
    }

    /// A shared array (`manager.Array(typecode, items)`).
    pub fn array<T: Wire + Clone>(&self, items: Vec<T>) -> SharedArray<T> {
        self.serve(items)
    }

    /// A lock (`manager.Lock()`).
    pub fn lock(&self) -> Lock {
        Lock::serve(self.lifeline())
    }

    /// A re-entrant lock (`manager.RLock()`).
    pub fn rlock(&self) -> RLock {
        RLock::serve(self.lifeline())
    }

    /// A semaphore (`manager.Semaphore(value)`).
    pub fn semaphore(&self, value: usize) -> Semaphore {
        Semaphore::serve(value, self.lifeline())
    }

    /// A bounded semaphore (`manager.BoundedSemaphore(value)`).
    pub fn bounded_semaphore(&self, value: usize) -> BoundedSemaphore {
        BoundedSemaphore::serve(value, self.lifeline())
    }

    /// An event (`manager.Event()`).
    pub fn event(&self) -> Event {
        Event::serve(self.lifeline())
    }

    /// A condition (`manager.Condition()`).
    pub fn condition(&self) -> Condition {
        Condition::serve(self.lifeline())
    }

    /// A barrier (`manager.Barrier(parties)`).
    pub fn barrier(&self, parties: usize) -> Barrier {
        Barrier::serve(parties, self.lifeline())
    }

    /// A queue (`manager.Queue()`), bounded if `bound` is given.
    pub fn queue<T: Wire>(&self, bound: Option<usize>) -> Queue<T> {
        Queue::start(bound, self.lifeline())
    }

    /// Stops serving: every handle's later operations fail with
    /// [`PatternError::Gone`](super::PatternError::Gone). The same as dropping the manager.
    ///
    /// Returns once every server has stopped (or after [`SHUTDOWN_LIMIT`], if one is stuck
    /// serving a call), so that no operation started afterwards can still reach one.
    pub fn shutdown(self) {}

    fn stop(&mut self) {
        if self.alive.take().is_none() {
            return;
        }
        // Each server holds a reader of the lifeline until it stops.
        let started = std::time::Instant::now();
        let mut backoff = crate::wait::Backoff::new();
        while self.lifeline.readers() > 0 && started.elapsed() < SHUTDOWN_LIMIT {
            if !backoff.snooze() {
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
        }
    }
}

/// How long a shutdown waits for the manager's servers to stop.
pub const SHUTDOWN_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

impl Drop for Manager {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Default for Manager {
    fn default() -> Self {
        Self::new()
    }
}
