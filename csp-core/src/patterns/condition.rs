//! `multiprocessing.Condition`: a re-entrant lock and the waiters for a change under it.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::error::PatternError;
use super::service::{self, Client, ClientId, Departure, Replies, Serve, clone_handle};

#[derive(Serialize, Deserialize)]
enum Request {
    Acquire { wait: bool },
    Release,
    Wait,
    Notify { count: usize },
}

#[derive(Serialize, Deserialize)]
enum Reply {
    Acquired(bool),
    Released,
    /// The lock is held again after a wait; whether the waiter was notified.
    Woken(bool),
    Notified,
    Misuse(String),
}

/// Who waits for the lock, and what to answer when it is theirs.
enum LockWaiter {
    Acquire(ClientId),
    /// A waiter of the condition, taking its lock back at the depth it had.
    Resume {
        client: ClientId,
        depth: usize,
        notified: bool,
    },
}

impl LockWaiter {
    fn client(&self) -> ClientId {
        match *self {
            LockWaiter::Acquire(client) | LockWaiter::Resume { client, .. } => client,
        }
    }
}

struct State {
    owner: Option<(ClientId, usize)>,
    lock_waiters: VecDeque<LockWaiter>,
    condition_waiters: VecDeque<(ClientId, usize)>,
}

impl State {
    fn owns(&self, client: ClientId) -> bool {
        self.owner.is_some_and(|(owner, _)| owner == client)
    }

    /// Gives a free lock to the next waiter.
    fn hand_on(&mut self, replies: &mut Replies<'_, Self>) {
        if self.owner.is_some() {
            return;
        }
        if let Some(next) = self.lock_waiters.pop_front() {
            match next {
                LockWaiter::Acquire(client) => {
                    self.owner = Some((client, 1));
                    replies.send(client, Reply::Acquired(true));
                }
                LockWaiter::Resume {
                    client,
                    depth,
                    notified,
                } => {
                    self.owner = Some((client, depth));
                    replies.send(client, Reply::Woken(notified));
                }
            }
        }
    }

    fn not_owner(what: &str) -> Reply {
        Reply::Misuse(format!(
            "{what} of a condition whose lock this handle does not hold"
        ))
    }
}

impl Serve for State {
    type Request = Request;
    type Reply = Reply;

    fn handle(&mut self, client: ClientId, request: Request, replies: &mut Replies<'_, Self>) {
        match request {
            Request::Acquire { .. } if self.owns(client) => {
                if let Some((_, depth)) = self.owner.as_mut() {
                    *depth += 1;
                }
                replies.send(client, Reply::Acquired(true));
            }
            Request::Acquire { wait } => {
                if self.owner.is_none() && self.lock_waiters.is_empty() {
                    self.owner = Some((client, 1));
                    replies.send(client, Reply::Acquired(true));
                } else if wait {
                    self.lock_waiters.push_back(LockWaiter::Acquire(client));
                } else {
                    replies.send(client, Reply::Acquired(false));
                }
            }
            Request::Release if !self.owns(client) => {
                replies.send(client, Self::not_owner("release"));
            }
            Request::Release => {
                match self.owner {
                    Some((_, 1)) => self.owner = None,
                    Some((owner, depth)) => self.owner = Some((owner, depth - 1)),
                    None => {}
                }
                replies.send(client, Reply::Released);
                self.hand_on(replies);
            }
            Request::Wait if !self.owns(client) => replies.send(client, Self::not_owner("wait")),
            Request::Wait => {
                let depth = self.owner.take().map_or(1, |(_, depth)| depth);
                self.condition_waiters.push_back((client, depth));
                self.hand_on(replies);
            }
            Request::Notify { .. } if !self.owns(client) => {
                replies.send(client, Self::not_owner("notify"));
            }
            Request::Notify { count } => {
                let count = count.min(self.condition_waiters.len());
                for (waiter, depth) in self.condition_waiters.drain(..count) {
                    self.lock_waiters.push_back(LockWaiter::Resume {
                        client: waiter,
                        depth,
                        notified: true,
                    });
                }
                replies.send(client, Reply::Notified);
            }
        }
    }

    fn cancel(&mut self, client: ClientId, replies: &mut Replies<'_, Self>) -> bool {
        if let Some(at) = self
            .condition_waiters
            .iter()
            .position(|&(c, _)| c == client)
        {
            // A wait that timed out still takes the lock back before it returns.
            let (_, depth) = self.condition_waiters.remove(at).expect("found");
            self.lock_waiters.push_back(LockWaiter::Resume {
                client,
                depth,
                notified: false,
            });
            self.hand_on(replies);
            return false;
        }
        let acquiring =
            |waiter: &LockWaiter| matches!(waiter, LockWaiter::Acquire(c) if *c == client);
        if let Some(at) = self.lock_waiters.iter().position(acquiring) {
            self.lock_waiters.remove(at);
            return true;
        }
        false // notified already: the answer comes when the lock is free
    }

    fn depart(&mut self, client: ClientId, _: Departure, replies: &mut Replies<'_, Self>) {
        self.condition_waiters.retain(|&(c, _)| c != client);
        self.lock_waiters.retain(|waiter| waiter.client() != client);
        if self.owns(client) {
            self.owner = None;
            self.hand_on(replies);
        }
    }
}

/// A condition variable with its own re-entrant lock (`multiprocessing.Condition()`), usable
/// from any placement.
///
/// Hold the lock ([`acquire`](Condition::acquire)) to [`wait`](Condition::wait) or
/// [`notify`](Condition::notify). A wait releases the lock, sleeps until notified (or its
/// timeout passes), and takes the lock back before it returns. As with [`Lock`](super::Lock),
/// each handle is one owner, and a handle dropped or whose OS process dies gives the lock up.
///
/// # Examples
///
/// ```
/// use csp_core::patterns::{Condition, SharedValue};
///
/// let ready = Condition::new();
/// let value = SharedValue::new(0);
/// let (producer, shared) = (ready.clone(), value.clone());
/// let producing = std::thread::spawn(move || {
///     producer.acquire().unwrap();
///     shared.set(42).unwrap();
///     producer.notify_all().unwrap();
///     producer.release().unwrap();
/// });
/// ready.acquire().unwrap();
/// assert!(ready.wait_for(|| value.get().unwrap() == 42, None).unwrap());
/// ready.release().unwrap();
/// producing.join().unwrap();
/// ```
#[derive(Serialize, Deserialize)]
pub struct Condition {
    client: Client<Request, Reply>,
}

clone_handle!(Condition);

impl Condition {
    /// A condition with a free lock and no waiters.
    pub fn new() -> Condition {
        Self::serve(None)
    }

    pub(crate) fn serve(lifeline: Option<crate::Reader<()>>) -> Condition {
        let state = State {
            owner: None,
            lock_waiters: VecDeque::new(),
            condition_waiters: VecDeque::new(),
        };
        Condition {
            client: service::start("condition", state, lifeline),
        }
    }

    /// Another handle on the same condition: a new owner.
    ///
    /// # Errors
    ///
    /// [`PatternError::Gone`] if the server is gone.
    pub fn try_clone(&self) -> Result<Condition, PatternError> {
        Ok(Condition {
            client: self.client.try_clone()?,
        })
    }

    fn ask(
        &self,
        request: Request,
        timeout: Option<Duration>,
    ) -> Result<Option<Reply>, PatternError> {
        match self.client.call_timeout(request, timeout)? {
            Some(Reply::Misuse(why)) => Err(PatternError::Misuse(why)),
            reply => Ok(reply),
        }
    }

    fn acquire_with(&self, timeout: Option<Duration>, wait: bool) -> Result<bool, PatternError> {
        Ok(matches!(
            self.ask(Request::Acquire { wait }, timeout)?,
            Some(Reply::Acquired(true))
        ))
    }

    /// Takes the lock, waiting for it (again, if this handle holds it already).
    ///
    /// # Errors
    ///
    /// [`PatternError::Gone`] if the server is gone (for every method).
    pub fn acquire(&self) -> Result<bool, PatternError> {
        self.acquire_with(None, true)
    }

    /// Takes the lock, waiting at most `timeout`; `Ok(false)` if the time passed.
    ///
    /// # Errors
    ///
    /// [`PatternError::Gone`] if the server is gone.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool, PatternError> {
        self.acquire_with(Some(timeout), true)
    }

    /// Takes the lock only if it is free now.
    ///
    /// # Errors
    ///
    /// [`PatternError::Gone`] if the server is gone.
    pub fn try_acquire(&self) -> Result<bool, PatternError> {
        self.acquire_with(None, false)
    }

    /// Releases the lock once.
    ///
    /// # Errors
    ///
    /// [`PatternError::Misuse`] if this handle does not hold it.
    pub fn release(&self) -> Result<(), PatternError> {
        self.ask(Request::Release, None).map(drop)
    }

    fn wait_with(&self, timeout: Option<Duration>) -> Result<bool, PatternError> {
        Ok(matches!(
            self.ask(Request::Wait, timeout)?,
            Some(Reply::Woken(true))
        ))
    }

    /// Releases the lock, waits to be notified, and takes the lock back; returns `Ok(true)`.
    ///
    /// # Errors
    ///
    /// [`PatternError::Misuse`] if this handle does not hold the lock.
    pub fn wait(&self) -> Result<bool, PatternError> {
        self.wait_with(None)
    }

    /// As [`wait`](Condition::wait), waiting at most `timeout` to be notified; whether it
    /// was. The lock is held again in both cases.
    ///
    /// # Errors
    ///
    /// [`PatternError::Misuse`] if this handle does not hold the lock.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool, PatternError> {
        self.wait_with(Some(timeout))
    }

    /// Waits until `predicate` is true, checking it first and after each notification, for
    /// at most `timeout` in all (`None`: no bound); returns the predicate's last value.
    ///
    /// # Errors
    ///
    /// [`PatternError::Misuse`] if this handle does not hold the lock.
    pub fn wait_for(
        &self,
        mut predicate: impl FnMut() -> bool,
        timeout: Option<Duration>,
    ) -> Result<bool, PatternError> {
        let deadline = timeout.map(|timeout| Instant::now() + timeout);
        while !predicate() {
            match deadline {
                None => {
                    self.wait()?;
                }
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(false);
                    }
                    self.wait_timeout(left)?;
                }
            }
        }
        Ok(true)
    }

    /// Wakes up to `count` waiters (they run once they get the lock).
    ///
    /// # Errors
    ///
    /// [`PatternError::Misuse`] if this handle does not hold the lock.
    pub fn notify(&self, count: usize) -> Result<(), PatternError> {
        self.ask(Request::Notify { count }, None).map(drop)
    }

    /// Wakes every waiter.
    ///
    /// # Errors
    ///
    /// [`PatternError::Misuse`] if this handle does not hold the lock.
    pub fn notify_all(&self) -> Result<(), PatternError> {
        self.notify(usize::MAX)
    }
}

impl Default for Condition {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition").finish_non_exhaustive()
    }
}
