//! `Lock`, `RLock`, `Semaphore` and `BoundedSemaphore`: one counting server, four faces.
//!
//! The server counts permits and remembers who holds them. A client that leaves (drops its
//! handle) or whose OS process dies while it holds permits gives them back: a lock is never
//! left wedged by a dead owner. (Python's `multiprocessing` locks stay held for ever in that
//! case.)

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::PatternError;
use super::service::{self, Client, ClientId, Departure, Replies, Serve};

#[derive(Serialize, Deserialize)]
enum Request {
    Acquire { wait: bool },
    Release,
    Held,
}

#[derive(Serialize, Deserialize)]
enum Reply {
    Acquired(bool),
    Released,
    Misuse(String),
    Held(usize),
}

/// How the permits behave.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// One permit; only its holder may release it.
    Lock,
    /// One owner at a time, who may acquire again and must release as often.
    Reentrant,
    /// Counted permits; anyone may release. With a bound, releasing past it is an error.
    Semaphore { bound: Option<usize> },
}

struct Permits {
    kind: Kind,
    free: usize,
    /// Permits each client holds (for a reentrant lock: its depth).
    held: HashMap<ClientId, usize>,
    waiting: VecDeque<ClientId>,
}

impl Permits {
    fn grant(&mut self, client: ClientId) -> bool {
        match self.kind {
            Kind::Reentrant if self.held.contains_key(&client) => {}
            _ if self.free == 0 => return false,
            _ => self.free -= 1,
        }
        *self.held.entry(client).or_default() += 1;
        true
    }

    fn wake(&mut self, replies: &mut Replies<'_, Self>) {
        while self.free > 0
            && let Some(next) = self.waiting.pop_front()
        {
            self.grant(next);
            replies.send(next, Reply::Acquired(true));
        }
    }

    fn release(&mut self, client: ClientId) -> Result<(), String> {
        let holds = self.held.get(&client).copied().unwrap_or(0);
        match self.kind {
            Kind::Lock | Kind::Reentrant if holds == 0 => {
                return Err("release of a lock this handle does not hold".into());
            }
            Kind::Semaphore { bound: Some(bound) } if self.free >= bound => {
                return Err(format!(
                    "bounded semaphore released more often than acquired (bound {bound})"
                ));
            }
            _ => {}
        }
        // A semaphore may be released by anyone: the permit counts as one some holder gave
        // back, so that a holder leaving later does not return it twice.
        let client = match self.kind {
            Kind::Semaphore { .. } if holds == 0 => {
                self.held.keys().next().copied().unwrap_or(client)
            }
            _ => client,
        };
        let holds = self.held.get(&client).copied().unwrap_or(0);
        if holds > 0 {
            if holds == 1 {
                self.held.remove(&client);
            } else {
                *self.held.get_mut(&client).expect("held") -= 1;
            }
        }
        let last = !self.held.contains_key(&client);
        if self.kind != Kind::Reentrant || last {
            self.free += 1;
        }
        Ok(())
    }
}

impl Serve for Permits {
    type Request = Request;
    type Reply = Reply;

    fn handle(&mut self, client: ClientId, request: Request, replies: &mut Replies<'_, Self>) {
        match request {
            Request::Acquire { wait } => {
                // Waiters are served first come, first served.
                let queued = !self.waiting.is_empty() && !self.held.contains_key(&client);
                if !queued && self.grant(client) {
                    replies.send(client, Reply::Acquired(true));
                } else if wait {
                    self.waiting.push_back(client);
                } else {
                    replies.send(client, Reply::Acquired(false));
                }
            }
            Request::Release => match self.release(client) {
                Ok(()) => {
                    replies.send(client, Reply::Released);
                    self.wake(replies);
                }
                Err(why) => replies.send(client, Reply::Misuse(why)),
            },
            Request::Held => {
                let held = self.held.get(&client).copied().unwrap_or(0);
                replies.send(client, Reply::Held(held));
            }
        }
    }

    fn cancel(&mut self, client: ClientId, _: &mut Replies<'_, Self>) -> bool {
        let before = self.waiting.len();
        self.waiting.retain(|&c| c != client);
        before != self.waiting.len()
    }

    fn depart(&mut self, client: ClientId, _: Departure, replies: &mut Replies<'_, Self>) {
        self.waiting.retain(|&c| c != client);
        if let Some(holds) = self.held.remove(&client) {
            self.free += if self.kind == Kind::Reentrant {
                1
            } else {
                holds
            };
            self.wake(replies);
        }
    }
}

/// The client side shared by the four faces.
#[derive(Serialize, Deserialize)]
struct PermitClient {
    client: Client<Request, Reply>,
}

impl PermitClient {
    fn start(
        service: &str,
        kind: Kind,
        free: usize,
        lifeline: Option<crate::Reader<()>>,
    ) -> PermitClient {
        let permits = Permits {
            kind,
            free,
            held: HashMap::new(),
            waiting: VecDeque::new(),
        };
        PermitClient {
            client: service::start(service, permits, lifeline),
        }
    }

    fn try_clone(&self) -> Result<PermitClient, PatternError> {
        Ok(PermitClient {
            client: self.client.try_clone()?,
        })
    }

    fn acquire(&self, timeout: Option<Duration>, wait: bool) -> Result<bool, PatternError> {
        match self
            .client
            .call_timeout(Request::Acquire { wait }, timeout)?
        {
            None => Ok(false),
            Some(Reply::Acquired(acquired)) => Ok(acquired),
            Some(_) => Err(PatternError::Misuse("unexpected answer".into())),
        }
    }

    fn release(&self) -> Result<(), PatternError> {
        match self.client.call(Request::Release)? {
            Reply::Released => Ok(()),
            Reply::Misuse(why) => Err(PatternError::Misuse(why)),
            _ => Err(PatternError::Misuse("unexpected answer".into())),
        }
    }

    fn held(&self) -> Result<usize, PatternError> {
        match self.client.call(Request::Held)? {
            Reply::Held(held) => Ok(held),
            _ => Err(PatternError::Misuse("unexpected answer".into())),
        }
    }
}

macro_rules! permit_face {
    ($(#[$doc:meta])* $face:ident) => {
        $(#[$doc])*
        #[derive(Serialize, Deserialize)]
        pub struct $face {
            permits: PermitClient,
        }

        impl $face {
            /// Another handle on the same server: a new client, and so a new owner.
            ///
            /// # Errors
            ///
            /// [`PatternError::Gone`] if the server is gone.
            pub fn try_clone(&self) -> Result<$face, PatternError> {
                Ok($face {
                    permits: self.permits.try_clone()?,
                })
            }

            /// Waits for a permit (`acquire()`); returns `Ok(true)` once it is held.
            ///
            /// # Errors
            ///
            /// [`PatternError::Gone`] if the server is gone.
            pub fn acquire(&self) -> Result<bool, PatternError> {
                self.permits.acquire(None, true)
            }

            /// Waits at most `timeout` (`acquire(timeout=...)`); `Ok(false)` if the time
            /// passed first.
            ///
            /// # Errors
            ///
            /// [`PatternError::Gone`] if the server is gone.
            pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool, PatternError> {
                self.permits.acquire(Some(timeout), true)
            }

            /// Takes a permit only if one is free now (`acquire(block=False)`).
            ///
            /// # Errors
            ///
            /// [`PatternError::Gone`] if the server is gone.
            pub fn try_acquire(&self) -> Result<bool, PatternError> {
                self.permits.acquire(None, false)
            }

            /// Gives a permit back.
            ///
            /// # Errors
            ///
            /// [`PatternError::Misuse`] for a lock this handle does not hold or a bounded
            /// semaphore released past its bound; [`PatternError::Gone`] if the server is
            /// gone.
            pub fn release(&self) -> Result<(), PatternError> {
                self.permits.release()
            }

            /// How many permits (for a reentrant lock: how deep) this handle holds.
            ///
            /// # Errors
            ///
            /// [`PatternError::Gone`] if the server is gone.
            pub fn held_by_me(&self) -> Result<usize, PatternError> {
                self.permits.held()
            }
        }

        impl Clone for $face {
            /// A new handle on the same server (a new owner).
            ///
            /// # Panics
            ///
            /// If the server is gone; `try_clone` reports that as an error instead.
            fn clone(&self) -> Self {
                self.try_clone().expect("cloning a handle whose server is gone")
            }
        }

        impl fmt::Debug for $face {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($face)).finish_non_exhaustive()
            }
        }
    };
}

permit_face!(
    /// A mutual-exclusion lock (`multiprocessing.Lock`), usable from any placement.
    ///
    /// Owned by a handle: only the handle that acquired it may release it, and each clone of
    /// a handle is a different owner (give each process its own clone). A handle dropped, or
    /// whose OS process dies, while it holds the lock releases it, and the next waiter gets
    /// it.
    ///
    /// # Examples
    ///
    /// ```
    /// use csp_core::patterns::Lock;
    ///
    /// let lock = Lock::new();
    /// let other = lock.clone();
    /// assert!(lock.acquire().unwrap());
    /// assert!(!other.try_acquire().unwrap()); // held by `lock`
    /// assert!(other.release().is_err()); // not its to release
    /// lock.release().unwrap();
    /// assert!(other.try_acquire().unwrap());
    /// ```
    Lock
);
permit_face!(
    /// A re-entrant lock (`multiprocessing.RLock`): its owner may acquire it again and must
    /// release it as many times; anyone else's release is an error.
    ///
    /// # Examples
    ///
    /// ```
    /// use csp_core::patterns::RLock;
    ///
    /// let lock = RLock::new();
    /// lock.acquire().unwrap();
    /// lock.acquire().unwrap();
    /// assert_eq!(lock.held_by_me().unwrap(), 2);
    /// assert!(lock.clone().release().is_err());
    /// lock.release().unwrap();
    /// lock.release().unwrap();
    /// assert!(lock.release().is_err());
    /// ```
    RLock
);
permit_face!(
    /// A counting semaphore (`multiprocessing.Semaphore`): anyone may release, even past the
    /// initial value.
    ///
    /// # Examples
    ///
    /// ```
    /// use csp_core::patterns::Semaphore;
    ///
    /// let slots = Semaphore::new(2);
    /// assert!(slots.try_acquire().unwrap());
    /// assert!(slots.try_acquire().unwrap());
    /// assert!(!slots.try_acquire().unwrap());
    /// slots.release().unwrap();
    /// assert!(slots.try_acquire().unwrap());
    /// ```
    Semaphore
);
permit_face!(
    /// A semaphore that may not be released past its initial value
    /// (`multiprocessing.BoundedSemaphore`): such a release is an error.
    ///
    /// # Examples
    ///
    /// ```
    /// use csp_core::patterns::BoundedSemaphore;
    ///
    /// let slots = BoundedSemaphore::new(1);
    /// assert!(slots.release().is_err()); // nothing was acquired
    /// ```
    BoundedSemaphore
);

impl Lock {
    /// A free lock.
    pub fn new() -> Lock {
        Self::serve(None)
    }

    pub(crate) fn serve(lifeline: Option<crate::Reader<()>>) -> Lock {
        Lock {
            permits: PermitClient::start("lock", Kind::Lock, 1, lifeline),
        }
    }
}

impl RLock {
    /// A free re-entrant lock.
    pub fn new() -> RLock {
        Self::serve(None)
    }

    pub(crate) fn serve(lifeline: Option<crate::Reader<()>>) -> RLock {
        RLock {
            permits: PermitClient::start("rlock", Kind::Reentrant, 1, lifeline),
        }
    }
}

impl Semaphore {
    /// A semaphore with `value` free permits.
    pub fn new(value: usize) -> Semaphore {
        Self::serve(value, None)
    }

    pub(crate) fn serve(value: usize, lifeline: Option<crate::Reader<()>>) -> Semaphore {
        let kind = Kind::Semaphore { bound: None };
        Semaphore {
            permits: PermitClient::start("semaphore", kind, value, lifeline),
        }
    }
}

impl BoundedSemaphore {
    /// A semaphore with `value` free permits, never more.
    pub fn new(value: usize) -> BoundedSemaphore {
        Self::serve(value, None)
    }

    pub(crate) fn serve(value: usize, lifeline: Option<crate::Reader<()>>) -> BoundedSemaphore {
        let kind = Kind::Semaphore { bound: Some(value) };
        BoundedSemaphore {
            permits: PermitClient::start("bounded semaphore", kind, value, lifeline),
        }
    }
}

impl Default for Lock {
    fn default() -> Self {
        Self::new()
    }
}

impl Default for RLock {
    fn default() -> Self {
        Self::new()
    }
}
