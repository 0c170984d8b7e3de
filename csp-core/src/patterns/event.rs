//! `multiprocessing.Event`: a flag that processes wait on.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::PatternError;
use super::service::{self, Client, ClientId, Departure, Replies, Serve, clone_handle};

#[derive(Serialize, Deserialize)]
enum Request {
    Set,
    Clear,
    IsSet,
    Wait,
}

#[derive(Serialize, Deserialize)]
enum Reply {
    Done,
    Flag(bool),
}

struct Flag {
    set: bool,
    waiting: Vec<ClientId>,
}

impl Serve for Flag {
    type Request = Request;
    type Reply = Reply;

    fn handle(&mut self, client: ClientId, request: Request, replies: &mut Replies<'_, Self>) {
        match request {
            Request::Set => {
                self.set = true;
                for waiter in self.waiting.drain(..) {
                    replies.send(waiter, Reply::Flag(true));
                }
                replies.send(client, Reply::Done);
            }
            Request::Clear => {
                self.set = false;
                replies.send(client, Reply::Done);
            }
            Request::IsSet => replies.send(client, Reply::Flag(self.set)),
            Request::Wait if self.set => replies.send(client, Reply::Flag(true)),
            Request::Wait => self.waiting.push(client),
        }
    }

    fn cancel(&mut self, client: ClientId, _: &mut Replies<'_, Self>) -> bool {
        let before = self.waiting.len();
        self.waiting.retain(|&c| c != client);
        before != self.waiting.len()
    }

    fn depart(&mut self, client: ClientId, _: Departure, _: &mut Replies<'_, Self>) {
        self.waiting.retain(|&c| c != client);
    }
}

/// A flag that processes in any placement can set, clear and wait on
/// (`multiprocessing.Event`).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use csp_core::patterns::Event;
///
/// let event = Event::new();
/// assert!(!event.wait_timeout(Duration::from_millis(10)).unwrap()); // not set: times out
/// let setter = event.clone();
/// std::thread::spawn(move || setter.set().unwrap());
/// assert!(event.wait().unwrap());
/// assert!(event.is_set().unwrap());
/// ```
#[derive(Serialize, Deserialize)]
pub struct Event {
    client: Client<Request, Reply>,
}

impl Event {
    /// A flag, not set.
    pub fn new() -> Event {
        Self::serve(None)
    }

    pub(crate) fn serve(lifeline: Option<crate::Reader<()>>) -> Event {
        let flag = Flag {
            set: false,
            waiting: Vec::new(),
        };
        Event {
            client: service::start("event", flag, lifeline),
        }
    }

    /// Another handle on the same flag.
    ///
    /// # Errors
    ///
    /// [`PatternError::Gone`] if the server is gone.
    pub fn try_clone(&self) -> Result<Event, PatternError> {
        Ok(Event {
            client: self.client.try_clone()?,
        })
    }

    fn ask(&self, request: Request, timeout: Option<Duration>) -> Result<bool, PatternError> {
        Ok(matches!(
            self.client.call_timeout(request, timeout)?,
            Some(Reply::Flag(true))
        ))
    }

    /// Sets the flag and wakes every waiter.
    ///
    /// # Errors
    ///
    /// [`PatternError::Gone`] if the server is gone (for every method).
    pub fn set(&self) -> Result<(), PatternError> {
        self.ask(Request::Set, None).map(drop)
    }

    /// Clears the flag.
    ///
    /// # Errors
    ///
    /// [`PatternError::Gone`] if the server is gone.
    pub fn clear(&self) -> Result<(), PatternError> {
        self.ask(Request::Clear, None).map(drop)
    }

    /// Whether the flag is set.
    ///
    /// # Errors
    ///
    /// [`PatternError::Gone`] if the server is gone.
    pub fn is_set(&self) -> Result<bool, PatternError> {
        self.ask(Request::IsSet, None)
    }

    /// Waits until the flag is set; returns `Ok(true)`.
    ///
    /// # Errors
    ///
    /// [`PatternError::Gone`] if the server is gone.
    pub fn wait(&self) -> Result<bool, PatternError> {
        self.ask(Request::Wait, None)
    }

    /// Waits at most `timeout`; whether the flag was set.
    ///
    /// # Errors
    ///
    /// [`PatternError::Gone`] if the server is gone.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool, PatternError> {
        self.ask(Request::Wait, Some(timeout))
    }
}

impl Default for Event {
    fn default() -> Self {
        Self::new()
    }
}

clone_handle!(Event);

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event").finish_non_exhaustive()
    }
}
