//! The one process network every pattern is: a server process that owns some state and
//! answers its clients over channels.
//!
//! Each client (each handle, and each clone of a handle) has a private pair of channels to
//! the server: requests one way, replies the other. The server waits on all of them with a
//! fair [`Alternation`], so no client starves. Because the pair is private, the end of a
//! client is seen for what it was: a dropped handle retires its request channel (the server
//! forgets the client), and a client whose OS process died has its ends poisoned by the
//! runtime (the server forgets the client *and* undoes what it held: a lock is released, a
//! barrier it waited in breaks). Nothing shared is poisoned by one client's death.
//!
//! A blocking request (acquiring a held lock, a `get` from an empty queue) is not answered at
//! once: the server keeps it and answers when the state allows. A client that stops waiting
//! (its timeout passed) sends `Cancel`; the server answers `Cancelled` if the request was
//! still pending, and otherwise nothing more, so the client then reads the answer that was
//! already on its way. Every request gets exactly one answer.
//!
//! The server is a lightweight process, and the thread that hands it a request runs it: a
//! client's thread during a call, or the parent's thread that carries out a remote client's
//! operations (see `executor::Helping`). A call is then one rendezvous and one answer on one
//! thread, with no hand-over between threads; a call from a child OS process, one round trip
//! through the shared-memory ring. The server still owns its state alone, one request at a
//! time; it never waits inside a step, so whoever runs it is never held up for long.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::error::PatternError;
use crate::alternation::Alternation;
use crate::channel::{CallError, Channel, Reader, Writer};
use crate::error::{SelectError, WriteError};
use crate::guard::{Guard, InputGuard};

/// What a pattern's items and values must be: serde values that can be sent between threads
/// and OS processes. Implemented for every such type; nothing to implement by hand.
pub trait Wire: Serialize + DeserializeOwned + Send + 'static {}
impl<T: Serialize + DeserializeOwned + Send + 'static> Wire for T {}

/// Identifies a client to its server's state.
pub(crate) type ClientId = u64;

/// What a client says.
#[derive(Serialize, Deserialize)]
#[serde(bound = "Q: Wire")]
pub(crate) enum Message<Q> {
    Call(Q),
    /// Stop waiting for the pending call.
    Cancel,
    /// Make another client (for a clone of the handle).
    Clone,
}

/// What the server answers.
#[derive(Serialize, Deserialize)]
#[serde(bound = "Q: Wire, A: Wire")]
pub(crate) enum Answer<Q, A> {
    Reply(A),
    Cancelled,
    Cloned(Client<Q, A>),
}

/// How a client ended, as the server saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Departure {
    /// The handle was dropped.
    Left,
    /// Its OS process died, or it poisoned its channel: whatever it held must be undone.
    Crashed,
}

/// The state a server owns, and how it answers.
pub(crate) trait Serve: Send + 'static {
    type Request: Wire;
    type Reply: Wire;
    /// Handles a call of `client`: answer it now or later through `replies`.
    fn handle(&mut self, client: ClientId, request: Self::Request, replies: &mut Replies<'_, Self>);
    /// Withdraws `client`'s pending call; true if it was pending (and so is not answered).
    fn cancel(&mut self, client: ClientId, replies: &mut Replies<'_, Self>) -> bool;
    /// A new client (a clone of a handle) connected.
    fn arrive(&mut self, _client: ClientId) {}
    /// `client` is gone; undo what it held if it crashed.
    fn depart(&mut self, client: ClientId, how: Departure, replies: &mut Replies<'_, Self>);
}

struct Connected<Q, A> {
    id: ClientId,
    requests: Reader<Message<Q>>,
    replies: Writer<Answer<Q, A>>,
}

/// Where a server's answers go.
pub(crate) struct Replies<'a, S: Serve + ?Sized> {
    clients: &'a mut Vec<Connected<S::Request, S::Reply>>,
    failed: Vec<ClientId>,
}

impl<S: Serve + ?Sized> Replies<'_, S> {
    /// Answers `client`. A client that cannot be answered any more is dropped afterwards.
    pub(crate) fn send(&mut self, client: ClientId, reply: S::Reply) {
        self.answer(client, Answer::Reply(reply));
    }

    fn answer(&mut self, client: ClientId, answer: Answer<S::Request, S::Reply>) {
        if let Some(connected) = self.clients.iter().find(|c| c.id == client) {
            // Each client has at most one call pending and its reply channel holds two
            // answers, so this never waits; a client gone is noticed on its request channel.
            if connected.replies.try_write(answer).is_err() {
                self.failed.push(client);
            }
        }
    }
}

/// Room in each reply channel: one answer, and one more for a cancel that crossed it.
const REPLY_ROOM: usize = 2;

fn connect<Q: Wire, A: Wire>(service: &str, id: ClientId) -> (Connected<Q, A>, Client<Q, A>) {
    let requests = Channel::named(service.to_string());
    let replies = Channel::named_buffered(format!("{service} (replies)"), REPLY_ROOM);
    (
        Connected {
            id,
            requests: requests.reader(),
            replies: replies.writer(),
        },
        Client {
            requests: requests.writer(),
            replies: replies.reader(),
            calling: Mutex::new(()),
        },
    )
}

/// Starts a server for `state` in this OS process and returns its first client.
///
/// The server runs while it has clients, and while `lifeline` (if given) is not retired: a
/// manager holds the other end and drops it to stop its servers.
pub(crate) fn start<S: Serve>(
    service: &str,
    state: S,
    lifeline: Option<Reader<()>>,
) -> Client<S::Request, S::Reply> {
    let (first, client) = connect(service, 0);
    let name = service.to_string();
    // A lightweight process of its own, so that it counts in the network (for deadlock
    // detection), and so that a request from another OS process is answered on the thread
    // that brings it, with no hand-over (see `executor::spawn_served`).
    crate::process::start_server(
        format!("{service} server"),
        Box::pin(async move { serve(&name, state, first, lifeline).await }),
    );
    client
}

async fn serve<S: Serve>(
    service: &str,
    mut state: S,
    first: Connected<S::Request, S::Reply>,
    lifeline: Option<Reader<()>>,
) {
    let mut clients = vec![first];
    let mut next_id: ClientId = 1;
    let mut alternation = Alternation::fair();
    while !clients.is_empty() {
        let (chosen, message) = {
            let mut guards: Vec<InputGuard<'_, Message<S::Request>>> = clients
                .iter()
                .map(|c| InputGuard::new(&c.requests))
                .collect();
            let mut life = lifeline.as_ref().map(InputGuard::new);
            let mut all: Vec<&mut (dyn Guard + Send)> = guards
                .iter_mut()
                .map(|g| g as &mut (dyn Guard + Send))
                .collect();
            if let Some(life) = life.as_mut() {
                all.push(life);
            }
            let selected = alternation.select_async(&mut all).await;
            drop(all);
            // Run inline by a helper, one request per run: the rest go to the pool.
            crate::executor::take_turn().await;
            match selected {
                Ok(index) if index < clients.len() => (index, Ok(guards[index].take())),
                Ok(_) => continue, // a lifeline never carries a value; ignore one
                Err(SelectError::Channel { guard, .. }) if guard == clients.len() => return,
                Err(SelectError::Channel { guard, error }) => (guard, Err(error)),
                Err(SelectError::NoEnabledGuard) => return,
            }
        };
        let id = clients[chosen].id;
        let mut replies = Replies::<S> {
            clients: &mut clients,
            failed: Vec::new(),
        };
        match message {
            Ok(Some(Message::Call(request))) => state.handle(id, request, &mut replies),
            Ok(Some(Message::Cancel)) => {
                if state.cancel(id, &mut replies) {
                    replies.answer(id, Answer::Cancelled);
                }
            }
            Ok(Some(Message::Clone)) => {
                let (connected, client) = connect(service, next_id);
                state.arrive(next_id);
                next_id += 1;
                replies.answer(id, Answer::Cloned(client));
                replies.clients.push(connected);
            }
            Ok(None) => {}
            Err(error) => {
                replies.clients.retain(|c| c.id != id);
                let how = if error.is_poisoned() {
                    Departure::Crashed
                } else {
                    Departure::Left
                };
                state.depart(id, how, &mut replies);
            }
        }
        let failed = std::mem::take(&mut replies.failed);
        for id in failed {
            clients.retain(|c| c.id != id);
            let mut replies = Replies::<S> {
                clients: &mut clients,
                failed: Vec::new(),
            };
            state.depart(id, Departure::Crashed, &mut replies);
        }
    }
}

/// A client's side: a handle's private connection to its server.
///
/// Serializable, so a handle can be passed to a process in another OS process; cloning makes
/// a new client (and so a new owner, for locks).
#[derive(Serialize, Deserialize)]
#[serde(bound = "Q: Wire, A: Wire")]
pub(crate) struct Client<Q, A> {
    requests: Writer<Message<Q>>,
    replies: Reader<Answer<Q, A>>,
    /// One call at a time per client, even if the handle is shared between threads.
    #[serde(skip)]
    calling: Mutex<()>,
}

impl<Q: Wire, A: Wire> Client<Q, A> {
    fn serialize_calls(&self) -> MutexGuard<'_, ()> {
        self.calling
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn service(&self) -> String {
        self.requests.name().as_str().to_string()
    }

    fn gone(&self) -> PatternError {
        PatternError::Gone {
            service: self.service(),
        }
    }

    fn reply(&self, answer: Answer<Q, A>) -> Result<A, PatternError> {
        match answer {
            Answer::Reply(reply) => Ok(reply),
            Answer::Cancelled | Answer::Cloned(_) => Err(PatternError::Protocol {
                service: self.service(),
            }),
        }
    }

    /// Calls the server and waits for its answer.
    pub(crate) fn call(&self, request: Q) -> Result<A, PatternError> {
        self.call_timeout(request, None)?.ok_or_else(|| self.gone())
    }

    /// Calls the server and waits at most `timeout` for the answer (`None`: for ever);
    /// `Ok(None)` if the time passed first (the call was withdrawn and had no effect).
    pub(crate) fn call_timeout(
        &self,
        request: Q,
        timeout: Option<Duration>,
    ) -> Result<Option<A>, PatternError> {
        self.call_returning(request, timeout)
            .map_err(|(error, _)| error)
    }

    /// As [`call_timeout`](Client::call_timeout), handing the request back if it never
    /// reached the server.
    pub(crate) fn call_returning(
        &self,
        request: Q,
        timeout: Option<Duration>,
    ) -> Result<Option<A>, (PatternError, Option<Q>)> {
        let _calling = self.serialize_calls();
        // A server in this OS process answers on this thread (see `executor::Helping`).
        let _helping = crate::executor::Helping::start();
        crate::executor::help_while_waiting(|| self.call_here(request, timeout))
    }

    fn call_here(
        &self,
        request: Q,
        timeout: Option<Duration>,
    ) -> Result<Option<A>, (PatternError, Option<Q>)> {
        let lost = |_: crate::ChannelError| (self.gone(), None);
        let unsent = |error: WriteError<Message<Q>>| {
            let request = match error.into_value() {
                Message::Call(request) => Some(request),
                _ => None,
            };
            (self.gone(), request)
        };
        let Some(timeout) = timeout else {
            // Request and answer in one go: one round trip if the server is in another OS
            // process.
            let answer = match self
                .requests
                .write_then_read(Message::Call(request), &self.replies)
            {
                Ok(answer) => answer,
                Err(CallError::NotWritten(error)) => return Err(unsent(error)),
                Err(CallError::NotRead(error)) => return Err(lost(error)),
            };
            return self.reply(answer).map(Some).map_err(|error| (error, None));
        };
        self.requests
            .write(Message::Call(request))
            .map_err(unsent)?;
        let answer = match self.replies.read_timeout(timeout) {
            Ok(answer) => answer,
            Err(crate::ReadTimeoutError::Timeout { .. }) => {
                self.requests
                    .write(Message::Cancel)
                    .map_err(|_| (self.gone(), None))?;
                // Either `Cancelled`, or the answer that crossed the cancel.
                match self.replies.read().map_err(lost)? {
                    Answer::Cancelled => return Ok(None),
                    answer => answer,
                }
            }
            Err(_) => return Err((self.gone(), None)),
        };
        self.reply(answer).map(Some).map_err(|error| (error, None))
    }

    /// A new client of the same server.
    pub(crate) fn try_clone(&self) -> Result<Client<Q, A>, PatternError> {
        let _calling = self.serialize_calls();
        let answer = self
            .requests
            .write_then_read(Message::Clone, &self.replies)
            .map_err(|_| self.gone())?;
        match answer {
            Answer::Cloned(client) => Ok(client),
            _ => Err(PatternError::Protocol {
                service: self.service(),
            }),
        }
    }
}

impl<Q: Wire, A: Wire> std::fmt::Debug for Client<Q, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("service", &self.service())
            .finish_non_exhaustive()
    }
}

/// Implements `Clone` for a handle around a [`Client`], panicking only if the server is
/// gone (use the handle's `try_clone` to get that as an error).
macro_rules! clone_handle {
    ($handle:ident < $($param:ident),* >) => {
        impl<$($param: $crate::patterns::service::Wire),*> Clone for $handle<$($param),*> {
            /// A new handle on the same server (a new client, so a new owner for locks).
            ///
            /// # Panics
            ///
            /// If the server is gone; `try_clone` reports that as an error instead.
            fn clone(&self) -> Self {
                self.try_clone().expect("cloning a handle whose server is gone")
            }
        }
    };
    ($handle:ident) => {
        impl Clone for $handle {
            /// A new handle on the same server (a new client, so a new owner for locks).
            ///
            /// # Panics
            ///
            /// If the server is gone; `try_clone` reports that as an error instead.
            fn clone(&self) -> Self {
                self.try_clone().expect("cloning a handle whose server is gone")
            }
        }
    };
}
pub(crate) use clone_handle;
