//! `multiprocessing.Barrier`, and the CSP barrier (enrol, resign, sync).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::PatternError;
use super::service::{self, Client, ClientId, Departure, Replies, Serve, clone_handle};

#[derive(Serialize, Deserialize)]
enum Request {
    Wait,
    Abort,
    Reset,
    Status,
}

#[derive(Serialize, Deserialize)]
enum Reply {
    Passed(usize),
    Broken,
    Done,
    Status { waiting: usize, broken: bool },
}

/// The state of a barrier. With `fixed`, the parties are a number (Python's barrier);
/// without, they are the enrolled clients (the CSP barrier).
struct Gate {
    parties: usize,
    fixed: bool,
    waiting: Vec<ClientId>,
    broken: bool,
}

impl Gate {
    fn pass_if_complete(&mut self, replies: &mut Replies<'_, Self>) {
        if !self.waiting.is_empty() && self.waiting.len() >= self.parties {
            for (index, waiter) in self.waiting.drain(..).enumerate() {
                replies.send(waiter, Reply::Passed(index));
            }
        }
    }

    fn break_it(&mut self, replies: &mut Replies<'_, Self>) {
        self.broken = true;
        for waiter in self.waiting.drain(..) {
            replies.send(waiter, Reply::Broken);
        }
    }
}

impl Serve for Gate {
    type Request = Request;
    type Reply = Reply;

    fn handle(&mut self, client: ClientId, request: Request, replies: &mut Replies<'_, Self>) {
        match request {
            Request::Wait if self.broken => replies.send(client, Reply::Broken),
            Request::Wait => {
                self.waiting.push(client);
                self.pass_if_complete(replies);
            }
            Request::Abort => {
                self.break_it(replies);
                replies.send(client, Reply::Done);
            }
            Request::Reset => {
                self.break_it(replies);
                self.broken = false;
                replies.send(client, Reply::Done);
            }
            Request::Status => replies.send(
                client,
                Reply::Status {
                    waiting: self.waiting.len(),
                    broken: self.broken,
                },
            ),
        }
    }

    fn arrive(&mut self, _: ClientId) {
        if !self.fixed {
            self.parties += 1;
        }
    }

    fn cancel(&mut self, client: ClientId, replies: &mut Replies<'_, Self>) -> bool {
        if !self.waiting.contains(&client) {
            return false;
        }
        if self.fixed {
            // As in Python: a wait that times out breaks the barrier for everyone.
            self.break_it(replies); // answers this client `Broken` too
            false
        } else {
            self.waiting.retain(|&c| c != client);
            true
        }
    }

    fn depart(&mut self, client: ClientId, how: Departure, replies: &mut Replies<'_, Self>) {
        if self.fixed {
            if how == Departure::Crashed && self.waiting.contains(&client) {
                self.waiting.retain(|&c| c != client);
                self.break_it(replies);
            }
        } else {
            // A CSP barrier's member leaving resigns, dead or not.
            self.waiting.retain(|&c| c != client);
            self.parties = self.parties.saturating_sub(1);
            self.pass_if_complete(replies);
        }
    }
}

fn protocol(service: &str) -> PatternError {
    PatternError::Protocol {
        service: service.into(),
    }
}

/// A barrier for a fixed number of parties (`multiprocessing.Barrier`), usable from any
/// placement.
///
/// Each [`wait`](Barrier::wait) returns a distinct index in `0..parties` once all parties
/// wait. A wait that times out, [`abort`](Barrier::abort), or a party whose OS process dies
/// while it waits *breaks* the barrier: every waiter, and every later wait until
/// [`reset`](Barrier::reset), fails with [`PatternError::BrokenBarrier`].
///
/// # Examples
///
/// ```
/// use csp_core::patterns::Barrier;
///
/// let barrier = Barrier::new(2);
/// let other = barrier.clone();
/// let waiting = std::thread::spawn(move || other.wait().unwrap());
/// let mine = barrier.wait().unwrap();
/// let theirs = waiting.join().unwrap();
/// assert_eq!(mine + theirs, 1); // indices 0 and 1
/// ```
#[derive(Serialize, Deserialize)]
pub struct Barrier {
    client: Client<Request, Reply>,
    parties: usize,
}

clone_handle!(Barrier);

impl Barrier {
    /// A barrier for `parties` parties.
    pub fn new(parties: usize) -> Barrier {
        Self::serve(parties, None)
    }

    pub(crate) fn serve(parties: usize, lifeline: Option<crate::Reader<()>>) -> Barrier {
        let gate = Gate {
            parties,
            fixed: true,
            waiting: Vec::new(),
            broken: false,
        };
        Barrier {
            client: service::start("barrier", gate, lifeline),
            parties,
        }
    }

    /// Another handle on the same barrier.
    ///
    /// # Errors
    ///
    /// [`PatternError::Gone`] if the server is gone.
    pub fn try_clone(&self) -> Result<Barrier, PatternError> {
        Ok(Barrier {
            client: self.client.try_clone()?,
            parties: self.parties,
        })
    }

    /// How many parties the barrier is for.
    pub fn parties(&self) -> usize {
        self.parties
    }

    fn wait_for(&self, timeout: Option<Duration>) -> Result<usize, PatternError> {
        match self.client.call_timeout(Request::Wait, timeout)? {
            Some(Reply::Passed(index)) => Ok(index),
            None | Some(Reply::Broken) => Err(PatternError::BrokenBarrier),
            Some(_) => Err(protocol("barrier")),
        }
    }

    /// Waits until every party waits; returns this party's index.
    ///
    /// # Errors
    ///
    /// [`PatternError::BrokenBarrier`] if the barrier is or becomes broken;
    /// [`PatternError::Gone`] if the server is gone.
    pub fn wait(&self) -> Result<usize, PatternError> {
        self.wait_for(None)
    }

    /// Waits at most `timeout`; when it passes, the barrier breaks.
    ///
    /// # Errors
    ///
    /// As [`wait`](Barrier::wait).
    pub fn wait_timeout(&self, timeout: Duration) -> Result<usize, PatternError> {
        self.wait_for(Some(timeout))
    }

    fn command(&self, request: Request) -> Result<Reply, PatternError> {
        self.client.call(request)
    }

    /// Breaks the barrier: waiters and later waits fail until [`reset`](Barrier::reset).
    ///
    /// # Errors
    ///
    /// [`PatternError::Gone`] if the server is gone.
    pub fn abort(&self) -> Result<(), PatternError> {
        self.command(Request::Abort).map(drop)
    }

    /// Returns the barrier to its first state; current waiters fail as broken.
    ///
    /// # Errors
    ///
    /// [`PatternError::Gone`] if the server is gone.
    pub fn reset(&self) -> Result<(), PatternError> {
        self.command(Request::Reset).map(drop)
    }

    fn status(&self) -> Result<(usize, bool), PatternError> {
        match self.command(Request::Status)? {
            Reply::Status { waiting, broken } => Ok((waiting, broken)),
            _ => Err(protocol("barrier")),
        }
    }

    /// How many parties wait now (`n_waiting`).
    ///
    /// # Errors
    ///
    /// [`PatternError::Gone`] if the server is gone.
    pub fn n_waiting(&self) -> Result<usize, PatternError> {
        self.status().map(|(waiting, _)| waiting)
    }

    /// Whether the barrier is broken.
    ///
    /// # Errors
    ///
    /// [`PatternError::Gone`] if the server is gone.
    pub fn is_broken(&self) -> Result<bool, PatternError> {
        self.status().map(|(_, broken)| broken)
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("parties", &self.parties)
            .finish_non_exhaustive()
    }
}

/// The CSP barrier: its parties are the members enrolled now.
///
/// [`sync`](CspBarrier::sync) waits until every enrolled member syncs. A handle is one
/// member: [`enrol`](CspBarrier::enrol) makes another, and dropping a handle (or its OS
/// process dying) resigns it, so the others never wait for a member that is gone.
///
/// # Examples
///
/// ```
/// use csp_core::patterns::CspBarrier;
///
/// let first = CspBarrier::new();
/// let second = first.enrol().unwrap();
/// let syncing = std::thread::spawn(move || {
///     second.sync().unwrap();
///     // `second` resigns here, when it is dropped
/// });
/// first.sync().unwrap();
/// syncing.join().unwrap();
/// first.sync().unwrap(); // alone now: passes at once
/// ```
#[derive(Serialize, Deserialize)]
pub struct CspBarrier {
    client: Client<Request, Reply>,
}

impl CspBarrier {
    /// A barrier with one member: this handle.
    pub fn new() -> CspBarrier {
        let gate = Gate {
            parties: 1,
            fixed: false,
            waiting: Vec::new(),
            broken: false,
        };
        CspBarrier {
            client: service::start("CSP barrier", gate, None),
        }
    }

    /// Enrols a new member.
    ///
    /// # Errors
    ///
    /// [`PatternError::Gone`] if the server is gone.
    pub fn enrol(&self) -> Result<CspBarrier, PatternError> {
        // A clone is a new client; the server counts it as a party when it connects.
        let client = self.client.try_clone()?;
        Ok(CspBarrier { client })
    }

    /// Resigns this member (the same as dropping it).
    pub fn resign(self) {}

    /// Waits until every enrolled member syncs.
    ///
    /// # Errors
    ///
    /// [`PatternError::Gone`] if the server is gone.
    pub fn sync(&self) -> Result<(), PatternError> {
        match self.client.call(Request::Wait)? {
            Reply::Passed(_) => Ok(()),
            _ => Err(protocol("CSP barrier")),
        }
    }
}

impl Default for CspBarrier {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for CspBarrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CspBarrier").finish_non_exhaustive()
    }
}
