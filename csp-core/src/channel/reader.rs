//! The reading end of a channel.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::core::{Attempt, Begun, Core, Side};
use super::{Deadline, Shortfall};
use crate::deadlock::Waiting;
use crate::error::{ChannelError, ReadTimeoutError, TryReadError};
use crate::net::message::{Action, Operation, OperationReply, SelectorAddress};
use crate::remote::RemoteEnd;
use crate::wait::Selector;

/// The reading end of a [`Channel`](super::Channel).
///
/// `Clone` makes another counted end; dropping an end or calling [`retire`](Reader::retire)
/// removes one. Iterating over a reader reads until the channel is retired or poisoned.
///
/// # Examples
///
/// ```
/// use csp_core::Channel;
///
/// let channel = Channel::<i32>::buffered(3);
/// let writer = channel.writer();
/// for n in 1..=3 {
///     writer.write(n).unwrap();
/// }
/// writer.retire(); // the last writer: readers drain the buffer, then stop
/// let reader = channel.reader();
/// assert_eq!(reader.iter().sum::<i32>(), 6);
/// assert!(reader.read().unwrap_err().is_retired());
/// ```
pub struct Reader<T> {
    backend: Backend<T>,
}

/// Where the channel lives: here, or at its home in another OS process.
enum Backend<T> {
    Local(Arc<Core<T>>),
    Remote {
        end: RemoteEnd,
        decode: fn(&[u8]) -> Result<T, postcard::Error>,
    },
}

impl<T> Reader<T> {
    pub(crate) fn attach(core: Arc<Core<T>>) -> Self {
        core.attach(Side::Reader);
        Reader {
            backend: Backend::Local(core),
        }
    }

    pub(crate) fn from_remote(end: RemoteEnd) -> Self
    where
        T: serde::de::DeserializeOwned + 'static,
    {
        Reader {
            backend: Backend::Remote {
                end,
                decode: crate::net::encoder::decode::<T>,
            },
        }
    }

    /// The channel, if it lives in this OS process.
    pub(crate) fn core(&self) -> Option<&Arc<Core<T>>> {
        match &self.backend {
            Backend::Local(core) => Some(core),
            Backend::Remote { .. } => None,
        }
    }

    /// The remote end, if the channel lives in another OS process.
    pub(crate) fn as_remote(&self) -> Option<&RemoteEnd> {
        match &self.backend {
            Backend::Local(_) => None,
            Backend::Remote { end, .. } => Some(end),
        }
    }

    /// Reads a value, blocking until a writer offers one.
    ///
    /// On a buffered channel, takes the oldest buffered value.
    ///
    /// # Errors
    ///
    /// [`ChannelError::Poisoned`] once the channel is poisoned (after draining the buffer if a
    /// writer poisoned it); [`ChannelError::Retired`] once every writer retired and the buffer
    /// is empty.
    pub fn read(&self) -> Result<T, ChannelError> {
        self.read_until(Deadline::Never).map_err(read_error)
    }

    /// Reads a value only if one is ready now.
    ///
    /// # Errors
    ///
    /// [`TryReadError::Empty`] if no writer waits and nothing is buffered; otherwise as
    /// [`read`](Reader::read).
    ///
    /// # Examples
    ///
    /// ```
    /// let (_writer, reader) = csp_core::channel::<i32>();
    /// assert!(matches!(reader.try_read(), Err(csp_core::TryReadError::Empty { .. })));
    /// ```
    pub fn try_read(&self) -> Result<T, TryReadError> {
        self.read_until(Deadline::Now)
            .map_err(|shortfall| match shortfall {
                Shortfall::Failed(error) => TryReadError::Channel(error),
                Shortfall::NotReady | Shortfall::TimedOut => TryReadError::Empty {
                    channel: self.name().clone(),
                },
            })
    }

    /// Reads a value, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`ReadTimeoutError::Timeout`] if no value came in time; otherwise as
    /// [`read`](Reader::read).
    pub fn read_timeout(&self, timeout: Duration) -> Result<T, ReadTimeoutError> {
        self.read_until(Deadline::after(timeout))
            .map_err(|shortfall| self.timeout_error(shortfall, timeout))
    }

    pub(crate) fn read_until(&self, deadline: Deadline) -> Result<T, Shortfall> {
        crate::remote::flush_writes_ahead();
        let core = match &self.backend {
            Backend::Local(core) => core,
            Backend::Remote { end, decode } => return read_remote(end, *decode, deadline),
        };
        let wait = match deadline {
            Deadline::Now => None,
            Deadline::Never => Some(None),
            Deadline::At(at) => Some(Some(at)),
        };
        read_local(core, wait, None)
            .map(|value| value.expect("nothing is handed on without a hand-on hook"))
    }

    /// Reads, waiting for ever, on behalf of a reader in another OS process: a counterpart
    /// that delivers the value while this thread waits passes it to `hand_on` itself (which
    /// sends it on to that reader) before waking this thread, instead of waking this thread
    /// to do it. `Ok(Some(value))` if this thread has the value to pass on, `Ok(None)` if the
    /// counterpart did.
    pub(crate) fn read_or_hand_on(
        &self,
        hand_on: Arc<dyn Fn(T) + Send + Sync>,
    ) -> Result<Option<T>, Shortfall>
    where
        T: Send + 'static,
    {
        let core = match &self.backend {
            Backend::Local(core) => core,
            Backend::Remote { .. } => return self.read_until(Deadline::Never).map(Some),
        };
        // The hook a counterpart that chooses this wait runs: it takes the value out of the
        // entry and hands it on.
        let arm = |selector: &Arc<Selector>| {
            let (core, chosen, hand_on) =
                (Arc::clone(core), Arc::clone(selector), Arc::clone(&hand_on));
            selector.arm_hand_on(Box::new(move || {
                if let super::core::Ended::Done(value) =
                    core.end_read(&chosen, crate::wait::Woken::Selected(0))
                {
                    hand_on(value);
                }
            }));
        };
        read_local(core, Some(None), Some(&arm))
    }

    /// Poisons the channel: every blocked and later operation on every end fails.
    ///
    /// Poisoned by a reader, a buffered channel discards what it holds.
    pub fn poison(&self) {
        match &self.backend {
            Backend::Local(core) => {
                core.poison(Side::Reader);
            }
            Backend::Remote { end, .. } => {
                end.operate(Operation::Poison);
            }
        }
    }

    /// Removes this end; the last reader's retirement retires the reading side, and writers
    /// then fail with [`ChannelError::Retired`]. Same as dropping the end.
    pub fn retire(self) {
        drop(self);
    }

    /// An iterator that reads until the channel is retired or poisoned.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { reader: self }
    }

    /// The channel's name.
    pub fn name(&self) -> &crate::ChannelName {
        match &self.backend {
            Backend::Local(core) => core.name(),
            Backend::Remote { end, .. } => end.name(),
        }
    }
}

/// The error of a read without a deadline that did not complete.
pub(crate) fn read_error(shortfall: Shortfall) -> ChannelError {
    match shortfall {
        Shortfall::Failed(error) => error,
        Shortfall::NotReady | Shortfall::TimedOut => unreachable!("read without a deadline"),
    }
}

impl<T> Reader<T> {
    /// The error of a timed read that did not complete.
    pub(crate) fn timeout_error(
        &self,
        shortfall: Shortfall,
        timeout: Duration,
    ) -> ReadTimeoutError {
        match shortfall {
            Shortfall::Failed(error) => ReadTimeoutError::Channel(error),
            Shortfall::NotReady | Shortfall::TimedOut => ReadTimeoutError::Timeout {
                channel: self.name().clone(),
                after: timeout,
            },
        }
    }
}

/// The remote half of an input guard on a reader whose channel lives elsewhere.
impl<T> Reader<T> {
    /// Tries to read now at the home; `None` if the channel lives here.
    pub(crate) fn remote_try(&self) -> Option<Attempt<T>> {
        let Backend::Remote { end, decode } = &self.backend else {
            return None;
        };
        Some(match read_remote(end, *decode, Deadline::Now) {
            Ok(value) => Attempt::Done(value),
            Err(Shortfall::NotReady | Shortfall::TimedOut) => Attempt::NotReady,
            Err(Shortfall::Failed(error)) => Attempt::Failed(error),
        })
    }

    /// Leaves an entry at the home for guard `guard` of the alternation whose selector is
    /// `selector`; true if the channel is ready already (or cannot be reached).
    pub(crate) fn remote_register(&self, selector: SelectorAddress, guard: usize) -> bool {
        let Backend::Remote { end, .. } = &self.backend else {
            return false;
        };
        let reply = end.operate(Operation::Register {
            guard: guard as u64,
            action: Action::Read,
            selector,
        });
        !matches!(reply, OperationReply::Ready(false))
    }

    /// Withdraws the entry; returns the value delivered to it, if it was chosen.
    pub(crate) fn remote_unregister(&self, guard: usize) -> Option<T> {
        let Backend::Remote { end, decode } = &self.backend else {
            return None;
        };
        match end.operate(Operation::Unregister {
            guard: guard as u64,
        }) {
            OperationReply::Value(bytes) => match decode(&bytes) {
                Ok(value) => Some(value),
                Err(error) => {
                    let error = crate::transfer::explain(&error);
                    eprintln!(
                        "csp: channel {}: a value could not be decoded: {error}",
                        end.name()
                    );
                    None
                }
            },
            _ => None,
        }
    }
}

impl<T> Reader<T> {
    /// Decodes a value this end's home sent, as a read would.
    pub(crate) fn decode_remote(&self, bytes: &[u8]) -> Result<T, ChannelError> {
        let Backend::Remote { end, decode } = &self.backend else {
            unreachable!("only remote ends receive encoded values");
        };
        decode(bytes).map_err(|error| {
            eprintln!(
                "csp: channel {}: a value could not be decoded: {error}",
                end.name()
            );
            end.poisoned()
        })
    }
}

/// A read carried out at the channel's home; the value is decoded straight from the frame.
/// Leaves a hand-on hook on the selector of a wait about to begin.
type Arm<'a> = &'a dyn Fn(&Arc<Selector>);

/// A read of a channel that lives here: done at once, or after a wait (`wait`: `None` not
/// to wait, `Some(deadline)` otherwise). With `arm`, each wait leaves a hand-on hook first
/// (see [`Reader::read_or_hand_on`]), and `Ok(None)` says a counterpart handed the value on.
fn read_local<T>(
    core: &Arc<Core<T>>,
    wait: Option<Option<std::time::Instant>>,
    arm: Option<Arm<'_>>,
) -> Result<Option<T>, Shortfall> {
    loop {
        let begun = core.begin_read(|| {
            wait.map(|_| {
                let selector = Selector::current();
                if let Some(arm) = arm {
                    arm(&selector);
                }
                selector
            })
        });
        let selector = match begun {
            Begun::Done(value) => return Ok(Some(value)),
            Begun::Failed(error, ()) => return Err(Shortfall::Failed(error)),
            Begun::NotReady(()) => return Err(Shortfall::NotReady),
            Begun::Waiting(selector) => selector,
        };
        let woken = selector.wait(wait.flatten(), || Some(Waiting::Read(core.name().clone())));
        if arm.is_some() && selector.disarm_hand_on(woken) {
            return Ok(None);
        }
        if let Ok(outcome) = core
            .end_read(&selector, woken)
            .outcome(|| core.deadlocked())
        {
            return outcome.map(Some).map_err(|((), shortfall)| shortfall);
        }
    }
}

fn read_remote<T>(
    end: &RemoteEnd,
    decode: fn(&[u8]) -> Result<T, postcard::Error>,
    deadline: Deadline,
) -> Result<T, Shortfall> {
    let decoded = |bytes: &[u8]| {
        decode(bytes).map_err(|error| {
            eprintln!(
                "csp: channel {}: a value could not be decoded: {error}",
                end.name()
            );
            Shortfall::Failed(end.poisoned())
        })
    };
    let read = Operation::Read {
        wait: deadline.wait(),
    };
    end.operate_with(read, &[], |reply, payload| match reply {
        OperationReply::ValueFollowing => decoded(payload),
        OperationReply::Value(bytes) => decoded(&bytes),
        OperationReply::NotReady => Err(Shortfall::NotReady),
        OperationReply::TimedOut => Err(Shortfall::TimedOut),
        OperationReply::Failed(error) => Err(Shortfall::Failed(error)),
        OperationReply::Done
        | OperationReply::Granted(_)
        | OperationReply::Ready(_)
        | OperationReply::NotWritten(_)
        | OperationReply::Unknown => Err(Shortfall::Failed(end.poisoned())),
    })
}

impl<T> Clone for Reader<T> {
    fn clone(&self) -> Self {
        match &self.backend {
            Backend::Local(core) => Reader::attach(Arc::clone(core)),
            Backend::Remote { end, decode } => Reader {
                backend: Backend::Remote {
                    end: end.duplicate(),
                    decode: *decode,
                },
            },
        }
    }
}

impl<T> Drop for Reader<T> {
    fn drop(&mut self) {
        // A remote end detaches at its home when its `RemoteEnd` drops.
        if let Backend::Local(core) = &self.backend {
            core.detach(Side::Reader);
        }
    }
}

impl<T> fmt::Debug for Reader<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.backend {
            Backend::Local(core) => f.debug_tuple("Reader").field(&**core).finish(),
            Backend::Remote { end, .. } => f.debug_tuple("Reader").field(end).finish(),
        }
    }
}

/// Reads until the channel is retired or poisoned; see [`Reader::iter`].
#[derive(Debug)]
pub struct Iter<'a, T> {
    reader: &'a Reader<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.reader.read().ok()
    }
}

/// Reads until the channel is retired or poisoned, owning the reader.
#[derive(Debug)]
pub struct IntoIter<T> {
    reader: Reader<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.reader.read().ok()
    }
}

impl<'a, T> IntoIterator for &'a Reader<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;

    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T> IntoIterator for Reader<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;

    fn into_iter(self) -> IntoIter<T> {
        IntoIter { reader: self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Channel;
    use std::sync::mpsc;

    const LIMIT: Duration = Duration::from_secs(10);

    type HandedOn = mpsc::Receiver<(u32, std::thread::ThreadId)>;

    /// A reader waiting in `read_or_hand_on` on another thread, what its hook receives, and
    /// how its read ended.
    fn waiting_reader(
        reader: Reader<u32>,
    ) -> (HandedOn, mpsc::Receiver<Result<Option<u32>, Shortfall>>) {
        let (handed_tx, handed) = mpsc::channel();
        let (ended_tx, ended) = mpsc::channel();
        std::thread::spawn(move || {
            let hand_on = Arc::new(move |value: u32| {
                let _ = handed_tx.send((value, std::thread::current().id()));
            });
            let _ = ended_tx.send(reader.read_or_hand_on(hand_on));
        });
        (handed, ended)
    }

    #[test]
    fn the_writer_hands_the_value_on_for_a_waiting_reader() {
        let channel = Channel::<u32>::new();
        let (handed, ended) = waiting_reader(channel.reader());
        channel.until_readers_wait(1);
        channel.writer().write(42).unwrap();
        let (value, on) = handed.recv_timeout(LIMIT).expect("the value was handed on");
        assert_eq!(value, 42);
        assert_eq!(on, std::thread::current().id(), "handed on by the writer");
        assert!(matches!(ended.recv_timeout(LIMIT), Ok(Ok(None))));
        assert_eq!(channel.core.snapshot().readers_waiting, 0);
    }

    #[test]
    fn a_reader_that_finds_a_value_takes_it_itself() {
        let channel = Channel::<u32>::buffered(1);
        channel.writer().write(7).unwrap();
        let (handed, ended) = waiting_reader(channel.reader());
        assert!(matches!(ended.recv_timeout(LIMIT), Ok(Ok(Some(7)))));
        assert!(handed.try_recv().is_err(), "nothing was handed on");
    }

    #[test]
    fn poison_ends_a_waiting_read_without_handing_anything_on() {
        let channel = Channel::<u32>::new();
        let (handed, ended) = waiting_reader(channel.reader());
        channel.until_readers_wait(1);
        channel.writer().poison();
        assert!(matches!(
            ended.recv_timeout(LIMIT),
            Ok(Err(Shortfall::Failed(ChannelError::Poisoned { .. })))
        ));
        assert!(handed.try_recv().is_err(), "nothing was handed on");
        // The next wait of the same kind still works, on a fresh channel.
        let channel = Channel::<u32>::new();
        let (handed, ended) = waiting_reader(channel.reader());
        channel.until_readers_wait(1);
        channel.writer().write(5).unwrap();
        assert_eq!(handed.recv_timeout(LIMIT).map(|(v, _)| v), Ok(5));
        assert!(matches!(ended.recv_timeout(LIMIT), Ok(Ok(None))));
    }
}
