//! A FIFO queue for many producers and consumers, in any placement: `multiprocessing.Queue`,
//! `JoinableQueue` and `SimpleQueue` as one pattern.

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::PatternError;
use super::service::{self, Client, ClientId, Departure, Replies, Serve, Wire, clone_handle};

/// A FIFO queue served by its own server process; the handle is cheap to clone and can be
/// passed to processes in any placement, including other OS processes.
///
/// Semantics follow `multiprocessing.Queue` with two deliberate differences: items are
/// typed, and [`close`](Queue::close) closes the queue for everyone (no more puts; readers
/// drain what is left and then get [`PatternError::Closed`]) instead of only for the calling
/// process. Every queue is also joinable: each `put` counts an unfinished task, which
/// [`task_done`](Queue::task_done) settles and [`join`](Queue::join) waits for.
///
/// The server lives while any handle does (or, for a queue made by a
/// [`Manager`](super::Manager), while the manager does).
///
/// # Examples
///
/// ```
/// use csp_core::patterns::Queue;
///
/// let queue = Queue::bounded(2);
/// let producer = {
///     let queue = queue.clone();
///     std::thread::spawn(move || {
///         for n in 0..5 {
///             queue.put(n).unwrap();
///         }
///         queue.close().unwrap();
///     })
/// };
/// let mut got = Vec::new();
/// while let Ok(n) = queue.get() {
///     got.push(n);
/// }
/// assert_eq!(got, [0, 1, 2, 3, 4]);
/// producer.join().unwrap();
/// ```
#[derive(Serialize, Deserialize)]
#[serde(bound = "T: Wire")]
pub struct Queue<T> {
    client: Client<Request<T>, Reply<T>>,
}

/// `multiprocessing.JoinableQueue`: every [`Queue`] is joinable.
pub type JoinableQueue<T> = Queue<T>;
/// `multiprocessing.SimpleQueue`: a [`Queue`] without a bound.
pub type SimpleQueue<T> = Queue<T>;

clone_handle!(Queue<T>);

/// Why a `put` failed; it hands the item back.
#[derive(PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct PutError<T> {
    value: Option<T>,
    reason: PatternError,
}

impl<T> PutError<T> {
    /// The item that was not put. `None` only if the server went away after it had taken the
    /// item (its manager shut down while the put waited for room): the item went with the
    /// queue's state.
    pub fn into_value(self) -> Option<T> {
        self.value
    }

    /// Why: [`PatternError::Closed`], [`PatternError::Gone`], or, for a timed or
    /// non-blocking put, a full queue ([`PutError::is_full`]).
    pub fn reason(&self) -> &PatternError {
        &self.reason
    }

    /// Whether the queue was full (only a timed or non-blocking put reports that).
    pub fn is_full(&self) -> bool {
        self.reason == PatternError::Full
    }
}

impl<T> fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PutError")
            .field("reason", &self.reason)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(bound = "T: Wire")]
enum Request<T> {
    Put { item: T, wait: bool },
    Get { wait: bool },
    Size,
    Close,
    TaskDone,
    Join,
}

#[derive(Serialize, Deserialize)]
#[serde(bound = "T: Wire")]
enum Reply<T> {
    Done,
    Item(T),
    Full(T),
    Empty,
    Closed(Option<T>),
    Size { items: usize, bound: Option<usize> },
    TooManyTaskDones,
}

struct State<T> {
    items: VecDeque<T>,
    bound: Option<usize>,
    getters: VecDeque<ClientId>,
    putters: VecDeque<(ClientId, T)>,
    joiners: Vec<ClientId>,
    unfinished: usize,
    closed: bool,
}

impl<T: Wire> State<T> {
    fn has_room(&self) -> bool {
        self.bound.is_none_or(|bound| self.items.len() < bound)
    }

    /// Hands items to waiting getters and room to waiting putters, as far as possible.
    fn settle(&mut self, replies: &mut Replies<'_, Self>) {
        loop {
            if let Some(&getter) = self.getters.front()
                && let Some(item) = self.items.pop_front()
            {
                self.getters.pop_front();
                replies.send(getter, Reply::Item(item));
                continue;
            }
            if self.has_room()
                && let Some((putter, item)) = self.putters.pop_front()
            {
                self.items.push_back(item);
                self.unfinished += 1;
                replies.send(putter, Reply::Done);
                continue;
            }
            break;
        }
        if self.closed && self.items.is_empty() {
            for getter in self.getters.drain(..) {
                replies.send(getter, Reply::Closed(None));
            }
        }
        if self.unfinished == 0 {
            for joiner in self.joiners.drain(..) {
                replies.send(joiner, Reply::Done);
            }
        }
    }
}

impl<T: Wire> Serve for State<T> {
    type Request = Request<T>;
    type Reply = Reply<T>;

    fn handle(&mut self, client: ClientId, request: Request<T>, replies: &mut Replies<'_, Self>) {
        match request {
            Request::Put { item, .. } if self.closed => {
                replies.send(client, Reply::Closed(Some(item)));
            }
            Request::Put { item, wait } => {
                if self.has_room() && self.putters.is_empty() {
                    self.items.push_back(item);
                    self.unfinished += 1;
                    replies.send(client, Reply::Done);
                } else if wait {
                    self.putters.push_back((client, item));
                } else {
                    replies.send(client, Reply::Full(item));
                }
            }
            Request::Get { wait } => {
                if self.items.is_empty() && !self.closed && !wait {
                    replies.send(client, Reply::Empty);
                } else {
                    self.getters.push_back(client);
                }
            }
            Request::Size => replies.send(
                client,
                Reply::Size {
                    items: self.items.len(),
                    bound: self.bound,
                },
            ),
            Request::Close => {
                self.closed = true;
                for (putter, item) in self.putters.drain(..) {
                    replies.send(putter, Reply::Closed(Some(item)));
                }
                replies.send(client, Reply::Done);
            }
            Request::TaskDone if self.unfinished == 0 => {
                replies.send(client, Reply::TooManyTaskDones);
            }
            Request::TaskDone => {
                self.unfinished -= 1;
                replies.send(client, Reply::Done);
            }
            Request::Join => self.joiners.push(client),
        }
        self.settle(replies);
    }

    fn cancel(&mut self, client: ClientId, replies: &mut Replies<'_, Self>) -> bool {
        if let Some(at) = self.putters.iter().position(|(c, _)| *c == client) {
            let (_, item) = self.putters.remove(at).expect("found");
            replies.send(client, Reply::Full(item)); // the item goes back to its owner
            return false;
        }
        let before = self.getters.len() + self.joiners.len();
        self.getters.retain(|&c| c != client);
        self.joiners.retain(|&c| c != client);
        before != self.getters.len() + self.joiners.len()
    }

    fn depart(&mut self, client: ClientId, _: Departure, replies: &mut Replies<'_, Self>) {
        // A client gone while putting: its item was never acknowledged, so it is not put.
        self.putters.retain(|(c, _)| *c != client);
        self.getters.retain(|&c| c != client);
        self.joiners.retain(|&c| c != client);
        self.settle(replies);
    }
}

impl<T: Wire> Queue<T> {
    /// A queue without a bound.
    pub fn new() -> Queue<T> {
        Self::start(None, None)
    }

    /// A queue holding at most `bound` items: `put` waits while it is full.
    pub fn bounded(bound: usize) -> Queue<T> {
        Self::start(Some(bound), None)
    }

    pub(crate) fn start(bound: Option<usize>, lifeline: Option<crate::Reader<()>>) -> Queue<T> {
        let state = State {
            items: VecDeque::new(),
            bound,
            getters: VecDeque::new(),
            putters: VecDeque::new(),
            joiners: Vec::new(),
            unfinished: 0,
            closed: false,
        };
        Queue {
            client: service::start("queue", state, lifeline),
        }
    }

    /// Another handle on the same queue.
    ///
    /// # Errors
    ///
    /// [`PatternError::Gone`] if the server is gone.
    pub fn try_clone(&self) -> Result<Queue<T>, PatternError> {
        Ok(Queue {
            client: self.client.try_clone()?,
        })
    }

    fn put_with(&self, item: T, timeout: Option<Duration>, wait: bool) -> Result<(), PutError<T>> {
        let failed = |value, reason| Err(PutError { value, reason });
        match self
            .client
            .call_returning(Request::Put { item, wait }, timeout)
        {
            Ok(Some(Reply::Done)) => Ok(()),
            Ok(Some(Reply::Full(value))) => failed(Some(value), PatternError::Full),
            Ok(Some(Reply::Closed(Some(value)))) => failed(Some(value), PatternError::Closed),
            Err((reason, Some(Request::Put { item, .. }))) => failed(Some(item), reason),
            Err((reason, _)) => failed(None, reason),
            Ok(_) => failed(None, protocol()),
        }
    }

    /// Puts `item` at the back, waiting while the queue is full.
    ///
    /// # Errors
    ///
    /// [`PatternError::Closed`] (the item handed back in the [`PutError`]) if the queue is
    /// closed.
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_with(item, None, true)
    }

    /// Puts `item`, waiting at most `timeout` for room.
    ///
    /// # Errors
    ///
    /// As [`put`](Queue::put), and a full queue ([`PutError::is_full`]) when the time passes.
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
        self.put_with(item, Some(timeout), true)
    }

    /// Puts `item` only if there is room now (`put_nowait`).
    ///
    /// # Errors
    ///
    /// As [`put_timeout`](Queue::put_timeout).
    pub fn try_put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_with(item, None, false)
    }

    fn get_with(&self, timeout: Option<Duration>, wait: bool) -> Result<T, PatternError> {
        match self.client.call_timeout(Request::Get { wait }, timeout)? {
            Some(Reply::Item(item)) => Ok(item),
            None | Some(Reply::Empty) => Err(PatternError::Empty),
            Some(Reply::Closed(_)) => Err(PatternError::Closed),
            Some(_) => Err(protocol()),
        }
    }

    /// Takes the item at the front, waiting until there is one.
    ///
    /// # Errors
    ///
    /// [`PatternError::Closed`] once the queue is closed and empty; [`PatternError::Gone`] if
    /// the server is gone.
    pub fn get(&self) -> Result<T, PatternError> {
        self.get_with(None, true)
    }

    /// Takes the item at the front, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// As [`get`](Queue::get), and [`PatternError::Empty`] when the time passes.
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, PatternError> {
        self.get_with(Some(timeout), true)
    }

    /// Takes the item at the front only if there is one now (`get_nowait`).
    ///
    /// # Errors
    ///
    /// As [`get_timeout`](Queue::get_timeout).
    pub fn try_get(&self) -> Result<T, PatternError> {
        self.get_with(None, false)
    }

    fn size(&self) -> Result<(usize, Option<usize>), PatternError> {
        match self.client.call(Request::Size)? {
            Reply::Size { items, bound } => Ok((items, bound)),
            _ => Err(protocol()),
        }
    }

    /// How many items the queue holds now (`qsize`): a hint, since others may change it.
    ///
    /// # Errors
    ///
    /// [`PatternError::Gone`] if the server is gone.
    pub fn len(&self) -> Result<usize, PatternError> {
        self.size().map(|(items, _)| items)
    }

    /// Whether the queue holds nothing now.
    ///
    /// # Errors
    ///
    /// [`PatternError::Gone`] if the server is gone.
    pub fn is_empty(&self) -> Result<bool, PatternError> {
        self.len().map(|items| items == 0)
    }

    /// Whether a bounded queue is full now.
    ///
    /// # Errors
    ///
    /// [`PatternError::Gone`] if the server is gone.
    pub fn is_full(&self) -> Result<bool, PatternError> {
        self.size()
            .map(|(items, bound)| bound.is_some_and(|bound| items >= bound))
    }

    fn expect_done(&self, request: Request<T>) -> Result<(), PatternError> {
        match self.client.call(request)? {
            Reply::Done => Ok(()),
            Reply::TooManyTaskDones => Err(PatternError::Misuse(
                "task_done() called more times than items were put".into(),
            )),
            _ => Err(protocol()),
        }
    }

    /// Closes the queue for everyone: waiting and later puts fail with
    /// [`PatternError::Closed`], handing their items back; gets drain what is left, then
    /// fail the same way.
    ///
    /// # Errors
    ///
    /// [`PatternError::Gone`] if the server is gone.
    pub fn close(&self) -> Result<(), PatternError> {
        self.expect_done(Request::Close)
    }

    /// Settles one unfinished task: call it once per item taken, when its work is done.
    ///
    /// # Errors
    ///
    /// [`PatternError::Misuse`] if called more often than items were put.
    pub fn task_done(&self) -> Result<(), PatternError> {
        self.expect_done(Request::TaskDone)
    }

    /// Waits until every item put has been settled by [`task_done`](Queue::task_done).
    ///
    /// # Errors
    ///
    /// [`PatternError::Gone`] if the server is gone.
    pub fn join(&self) -> Result<(), PatternError> {
        self.expect_done(Request::Join)
    }
}

fn protocol() -> PatternError {
    PatternError::Protocol {
        service: "queue".into(),
    }
}

impl<T: Wire> Default for Queue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Wire> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue").finish_non_exhaustive()
    }
}
