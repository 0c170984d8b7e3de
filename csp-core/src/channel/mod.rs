//! Typed, any-to-any channels: rendezvous by default, optionally buffered.
//!
//! A [`Channel`] is a meeting point. Its ends, [`Reader`] and [`Writer`], are what processes
//! hold; any number of each may exist, in any threads.
//!
//! # Rendezvous and buffering
//!
//! On a rendezvous channel ([`Channel::new`]) a write returns only once a reader has taken the
//! value. A buffered channel ([`Channel::buffered`]) of capacity `n` lets a write return as soon
//! as the value is in the buffer; it behaves like `n` identity processes in a row.
//!
//! # Shutting down: retire and poison
//!
//! *Retire* is the polite ending. Ends are counted; [`Reader::retire`] and
//! [`Writer::retire`] (or simply dropping an end) remove one. When the last end of one side
//! goes, that side is retired: operations on the other side fail with
//! [`ChannelError::Retired`](crate::ChannelError::Retired), after readers have drained whatever a buffer still holds. One of
//! several writers retiring does not disturb the others.
//!
//! *Poison* is the urgent ending. Any end may [`poison`](Reader::poison) the channel; every
//! blocked and later operation on every end fails with [`ChannelError::Poisoned`](crate::ChannelError::Poisoned). The rules
//! are C++CSP2's: a write that completed before the poison counts as done; a buffered channel
//! poisoned by a writer stays readable until drained, one poisoned by a reader throws its buffer
//! away. Both states are final.
//!
//! # Examples
//!
//! ```
//! use csp_core::Channel;
//! use std::thread;
//!
//! let numbers = Channel::<u32>::named("numbers");
//! let (reader, writer) = (numbers.reader(), numbers.writer());
//! let producer = thread::spawn(move || {
//!     for n in 0..3 {
//!         writer.write(n).unwrap(); // returns once the reader took n
//!     }
//!     // dropping `writer` retires the writing side
//! });
//! let got: Vec<u32> = reader.iter().collect(); // ends when the writers retire
//! assert_eq!(got, [0, 1, 2]);
//! producer.join().unwrap();
//! ```

mod asynchronous;
pub(crate) mod core;
mod reader;
mod writer;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use self::core::{Core, Side};
use crate::error::ChannelName;

pub use reader::{IntoIter, Iter, Reader};
pub(crate) use writer::CallError;
pub use writer::Writer;

/// A typed channel: the place from which reader and writer ends are taken.
///
/// `Channel` itself is not an end: holding it neither keeps a side alive nor counts for retire.
/// Clone it freely to hand out more ends later.
///
/// # Examples
///
/// ```
/// use csp_core::Channel;
///
/// let jobs = Channel::<String>::buffered(8);
/// let writer = jobs.writer();
/// writer.write("first".to_string()).unwrap(); // fits in the buffer: no reader needed
/// assert_eq!(jobs.reader().read().unwrap(), "first");
/// ```
pub struct Channel<T> {
    core: Arc<Core<T>>,
}

static NEXT_CHANNEL: AtomicU64 = AtomicU64::new(1);

fn numbered_name() -> ChannelName {
    ChannelName::new(format!(
        "channel#{}",
        NEXT_CHANNEL.fetch_add(1, Ordering::Relaxed)
    ))
}

impl<T> Channel<T> {
    /// A rendezvous channel with a numbered name.
    pub fn new() -> Self {
        Self::with(numbered_name(), 0)
    }

    /// A rendezvous channel with the given name, used in errors and debug output.
    pub fn named(name: impl Into<String>) -> Self {
        Self::with(ChannelName::new(name.into()), 0)
    }

    /// A buffered channel holding up to `capacity` values; `buffered(0)` is rendezvous.
    pub fn buffered(capacity: usize) -> Self {
        Self::with(numbered_name(), capacity)
    }

    /// A buffered channel with a name.
    pub fn named_buffered(name: impl Into<String>, capacity: usize) -> Self {
        Self::with(ChannelName::new(name.into()), capacity)
    }

    /// A buffered channel that many independent clients share (a pattern's): the ends of
    /// an OS process that dies are dropped, not poisoned (see `Core::survive_dead_peers`).
    pub(crate) fn shared_by_clients(name: impl Into<String>, capacity: usize) -> Self {
        let channel = Self::named_buffered(name, capacity);
        channel.core.survive_dead_peers();
        channel
    }

    fn with(name: ChannelName, capacity: usize) -> Self {
        crate::deadlock::note_thread();
        Channel {
            core: Arc::new(Core::new(name, capacity)),
        }
    }

    /// A new reading end (counted for retire).
    pub fn reader(&self) -> Reader<T> {
        Reader::attach(Arc::clone(&self.core))
    }

    /// A new writing end (counted for retire).
    pub fn writer(&self) -> Writer<T> {
        Writer::attach(Arc::clone(&self.core))
    }

    /// The channel's name.
    pub fn name(&self) -> &ChannelName {
        self.core.name()
    }

    /// The buffer capacity; 0 for a rendezvous channel.
    pub fn capacity(&self) -> usize {
        self.core.capacity()
    }

    /// How many values the buffer holds now (always 0 for a rendezvous channel).
    ///
    /// A snapshot: other ends may change it at once.
    ///
    /// # Examples
    ///
    /// ```
    /// let channel = csp_core::Channel::<u8>::buffered(4);
    /// channel.writer().write(1).unwrap();
    /// assert_eq!(channel.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.core.snapshot().buffered
    }

    /// How many values are buffered and how many were taken by readers so far.
    pub(crate) fn counts(&self) -> Counts {
        let snapshot = self.core.snapshot();
        Counts {
            buffered: snapshot.buffered,
            taken: snapshot.messages,
        }
    }

    /// Whether the buffer is empty now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many reading ends are attached now.
    pub(crate) fn readers(&self) -> usize {
        self.core.snapshot().reader_ends
    }
}

impl<T> Default for Channel<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for Channel<T> {
    fn clone(&self) -> Self {
        Channel {
            core: Arc::clone(&self.core),
        }
    }
}

impl<T> fmt::Debug for Channel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.core, f)
    }
}

/// A rendezvous channel's two ends, for when the channel object itself is not needed.
///
/// # Examples
///
/// ```
/// let (writer, reader) = csp_core::channel::<i32>();
/// std::thread::spawn(move || writer.write(7).unwrap());
/// assert_eq!(reader.read().unwrap(), 7);
/// ```
pub fn channel<T>() -> (Writer<T>, Reader<T>) {
    let channel = Channel::new();
    (channel.writer(), channel.reader())
}

/// A buffered channel's two ends.
///
/// # Examples
///
/// ```
/// let (writer, reader) = csp_core::buffered_channel::<i32>(2);
/// writer.write(1).unwrap();
/// writer.write(2).unwrap();
/// assert_eq!(reader.read().unwrap(), 1);
/// ```
pub fn buffered_channel<T>(capacity: usize) -> (Writer<T>, Reader<T>) {
    let channel = Channel::buffered(capacity);
    (channel.writer(), channel.reader())
}

/// A channel's counts at one moment (see `Channel::counts`).
pub(crate) struct Counts {
    pub(crate) buffered: usize,
    pub(crate) taken: u64,
}

/// When a blocking operation gives up.
#[derive(Clone, Copy)]
pub(crate) enum Deadline {
    /// Do not block at all.
    Now,
    /// Block as long as it takes.
    Never,
    /// Block until this instant.
    At(Instant),
}

impl Deadline {
    /// How long an operation carried out elsewhere may wait.
    pub(crate) fn wait(self) -> crate::net::message::Wait {
        use crate::net::message::Wait;
        match self {
            Deadline::Now => Wait::Not,
            Deadline::Never => Wait::Forever,
            Deadline::At(at) => Wait::For(at.saturating_duration_since(Instant::now())),
        }
    }

    pub(crate) fn after(timeout: Duration) -> Self {
        Instant::now()
            .checked_add(timeout)
            .map_or(Deadline::Never, Deadline::At)
    }
}

/// Why a blocking operation ended without completing.
pub(crate) enum Shortfall {
    NotReady,
    TimedOut,
    Failed(crate::error::ChannelError),
}

/// Poisons or names a channel without counting as an end of it.
pub(crate) trait ChannelControl: Send + Sync {
    fn poison_from(&self, side: Side) -> bool;
    fn channel_name(&self) -> &ChannelName;
    /// Holds back retirement until [`release`](ChannelControl::release) (see `Core::hold`).
    fn hold(&self) {}
    fn release(&self) {}
    /// The channel's state now, if it lives in this OS process.
    fn snapshot(&self) -> Option<core::Snapshot> {
        None
    }
}

impl<T: Send> ChannelControl for Core<T> {
    fn poison_from(&self, side: Side) -> bool {
        self.poison(side)
    }

    fn hold(&self) {
        Core::hold(self);
    }

    fn release(&self) {
        Core::release(self);
    }

    fn snapshot(&self) -> Option<core::Snapshot> {
        Some(Core::snapshot(self))
    }

    fn channel_name(&self) -> &ChannelName {
        self.name()
    }
}

#[cfg(test)]
impl<T> Channel<T> {
    /// For tests: waits (bounded) until `count` readers wait on the channel.
    pub(crate) fn until_readers_wait(&self, count: usize) {
        let started = std::time::Instant::now();
        while self.core.snapshot().readers_waiting != count {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(10),
                "the reader never started waiting"
            );
            std::thread::yield_now();
        }
    }
}
