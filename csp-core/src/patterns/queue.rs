//! A FIFO queue for many producers and consumers, in any placement: `multiprocessing.Queue`,
//! `JoinableQueue` and `SimpleQueue` as one pattern.
//!
//! The items travel through one buffered channel that every handle writes and reads
//! directly, so a put and a get cost what a channel write and read cost (and a producer in
//! another OS process writes ahead, without waiting for each answer); a small server process
//! beside it keeps what a channel does not know: whether the queue was closed, the tasks
//! settled by `task_done`, and the joiners. The channel survives its clients: one that dies
//! only drops its ends, and an item taken for a reader that died on the way is put back.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::PatternError;
use super::service::{self, Client, ClientId, Departure, Replies, Serve, Wire};
use crate::channel::{Channel, Deadline, Reader, Shortfall, Writer};

/// A FIFO queue: a buffered channel of items and a server process for the rest; the handle
/// is cheap to clone and can be passed to processes in any placement, including other OS
/// processes.
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
/// Like `multiprocessing.Queue`, a put from another OS process may take a moment to show in
/// [`len`](Queue::len) and [`is_empty`](Queue::is_empty) for *other* processes (it is on its
/// way); anything the putting process does next, and every get, sees it.
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
    /// Where puts go.
    items: Writer<T>,
    /// Where gets come from.
    taking: Reader<T>,
    /// The server: closing, task accounting, sizes.
    control: Client<Request, Reply>,
}

/// `multiprocessing.JoinableQueue`: every [`Queue`] is joinable.
pub type JoinableQueue<T> = Queue<T>;
/// `multiprocessing.SimpleQueue`: a [`Queue`] without a bound.
pub type SimpleQueue<T> = Queue<T>;

impl<T: Wire> Clone for Queue<T> {
    /// Another handle on the same queue.
    ///
    /// # Panics
    ///
    /// If the server is gone; [`try_clone`](Queue::try_clone) reports that as an error.
    fn clone(&self) -> Self {
        self.try_clone()
            .expect("cloning a handle whose server is gone")
    }
}

/// Why a `put` failed; it hands the item back.
#[derive(PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct PutError<T> {
    value: Option<T>,
    reason: PatternError,
}

impl<T> PutError<T> {
    /// The item that was not put (always there: a put that fails hands its item back).
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
enum Request {
    Size,
    Close,
    /// Whether the queue was closed (asked when its channel failed).
    Closed,
    TaskDone,
    Join,
}

#[derive(Serialize, Deserialize)]
enum Reply {
    Done,
    Size { items: usize, bound: Option<usize> },
    Closed(bool),
    TooManyTaskDones,
}

/// What the server keeps beside the channel.
struct State<T> {
    /// The channel of items, for its counts: items buffered, items taken.
    items: Channel<T>,
    /// Poisons the channel from the writing side on close: what is buffered stays readable.
    closing: Writer<T>,
    /// Poisons it from the reading side when the server stops (its manager shut down).
    ending: Reader<T>,
    bound: Option<usize>,
    closed: bool,
    settled: u64,
    joiners: Vec<ClientId>,
}

impl<T> State<T> {
    /// Items put and not yet settled by `task_done`: those taken plus those buffered.
    fn unfinished(&self) -> u64 {
        let counts = self.items.counts();
        (counts.taken + counts.buffered as u64).saturating_sub(self.settled)
    }

    fn release_joiners(&mut self, replies: &mut Replies<'_, Self>)
    where
        T: Wire,
    {
        if self.unfinished() == 0 {
            for joiner in self.joiners.drain(..) {
                replies.send(joiner, Reply::Done);
            }
        }
    }
}

impl<T> Drop for State<T> {
    fn drop(&mut self) {
        // The server stops: its clients are gone, or its manager shut down. Handles still
        // about (a manager's) find the queue gone.
        self.ending.poison();
    }
}

impl<T: Wire> Serve for State<T> {
    type Request = Request;
    type Reply = Reply;

    fn handle(&mut self, client: ClientId, request: Request, replies: &mut Replies<'_, Self>) {
        match request {
            Request::Size => replies.send(
                client,
                Reply::Size {
                    items: self.items.len(),
                    bound: self.bound,
                },
            ),
            Request::Close => {
                self.closed = true;
                self.closing.poison();
                replies.send(client, Reply::Done);
            }
            Request::Closed => replies.send(client, Reply::Closed(self.closed)),
            Request::TaskDone if self.unfinished() == 0 => {
                replies.send(client, Reply::TooManyTaskDones);
            }
            Request::TaskDone => {
                self.settled += 1;
                replies.send(client, Reply::Done);
                self.release_joiners(replies);
            }
            Request::Join => {
                self.joiners.push(client);
                self.release_joiners(replies);
            }
        }
    }

    fn cancel(&mut self, client: ClientId, _: &mut Replies<'_, Self>) -> bool {
        let before = self.joiners.len();
        self.joiners.retain(|&c| c != client);
        before != self.joiners.len()
    }

    fn depart(&mut self, client: ClientId, _: Departure, _: &mut Replies<'_, Self>) {
        self.joiners.retain(|&c| c != client);
    }
}

/// The items a queue without a bound can hold (its channel's capacity).
const UNBOUNDED: usize = usize::MAX / 2;

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
        let items = Channel::shared_by_clients("queue items", bound.unwrap_or(UNBOUNDED));
        let (writer, reader) = (items.writer(), items.reader());
        let state = State {
            closing: items.writer(),
            ending: items.reader(),
            items,
            bound,
            closed: false,
            settled: 0,
            joiners: Vec::new(),
        };
        Queue {
            items: writer,
            taking: reader,
            control: service::start("queue", state, lifeline),
        }
    }

    /// Another handle on the same queue.
    ///
    /// # Errors
    ///
    /// [`PatternError::Gone`] if the server is gone.
    pub fn try_clone(&self) -> Result<Queue<T>, PatternError> {
        Ok(Queue {
            items: self.items.clone(),
            taking: self.taking.clone(),
            control: self.control.try_clone()?,
        })
    }

    /// Why the channel of items failed: the queue was closed, or its server is gone.
    fn failed(&self) -> PatternError {
        match self.control.call(Request::Closed) {
            Ok(Reply::Closed(true)) => PatternError::Closed,
            _ => PatternError::Gone {
                service: "queue".into(),
            },
        }
    }

    fn put_until(&self, item: T, deadline: Deadline) -> Result<(), PutError<T>> {
        self.items
            .write_until(item, deadline)
            .map_err(|(item, shortfall)| PutError {
                value: Some(item),
                reason: match shortfall {
                    Shortfall::NotReady | Shortfall::TimedOut => PatternError::Full,
                    Shortfall::Failed(_) => self.failed(),
                },
            })
    }

    /// Puts `item` at the back, waiting while the queue is full.
    ///
    /// # Errors
    ///
    /// [`PatternError::Closed`] (the item handed back in the [`PutError`]) if the queue is
    /// closed.
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_until(item, Deadline::Never)
    }

    /// Puts `item`, waiting at most `timeout` for room.
    ///
    /// # Errors
    ///
    /// As [`put`](Queue::put), and a full queue ([`PutError::is_full`]) when the time passes.
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
        self.put_until(item, Deadline::after(timeout))
    }

    /// Puts `item` only if there is room now (`put_nowait`).
    ///
    /// # Errors
    ///
    /// As [`put_timeout`](Queue::put_timeout).
    pub fn try_put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_until(item, Deadline::Now)
    }

    fn get_until(&self, deadline: Deadline) -> Result<T, PatternError> {
        self.taking
            .read_until(deadline)
            .map_err(|shortfall| match shortfall {
                Shortfall::NotReady | Shortfall::TimedOut => PatternError::Empty,
                Shortfall::Failed(_) => self.failed(),
            })
    }

    /// Takes the item at the front, waiting until there is one.
    ///
    /// # Errors
    ///
    /// [`PatternError::Closed`] once the queue is closed and empty; [`PatternError::Gone`] if
    /// the server is gone.
    pub fn get(&self) -> Result<T, PatternError> {
        self.get_until(Deadline::Never)
    }

    /// Takes the item at the front, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// As [`get`](Queue::get), and [`PatternError::Empty`] when the time passes.
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, PatternError> {
        self.get_until(Deadline::after(timeout))
    }

    /// Takes the item at the front only if there is one now (`get_nowait`).
    ///
    /// # Errors
    ///
    /// As [`get_timeout`](Queue::get_timeout).
    pub fn try_get(&self) -> Result<T, PatternError> {
        self.get_until(Deadline::Now)
    }

    fn size(&self) -> Result<(usize, Option<usize>), PatternError> {
        match self.control.call(Request::Size)? {
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

    fn expect_done(&self, request: Request) -> Result<(), PatternError> {
        match self.control.call(request)? {
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
