//! The writing end of a channel.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::core::{Begun, Core, Side};
use super::{Deadline, Reader, Shortfall};
use crate::channel::core::Attempt;
use crate::deadlock::Waiting;
use crate::error::ChannelError;
use crate::error::{TryWriteError, WriteError, WriteTimeoutError};
use crate::net::encoder::Encoder;
use crate::net::message::{Action, Operation, OperationReply, SelectorAddress, Wait};
use crate::remote::{RemoteEnd, Written};
use crate::transfer::TicketScope;
use crate::wait::Selector;

/// The writing end of a [`Channel`](super::Channel).
///
/// `Clone` makes another counted end; dropping an end or calling [`retire`](Writer::retire)
/// removes one.
///
/// # Examples
///
/// ```
/// use csp_core::Channel;
/// use std::thread;
///
/// let channel = Channel::<&str>::new();
/// let writer = channel.writer();
/// let reader = channel.reader();
/// let t = thread::spawn(move || reader.read().unwrap());
/// writer.write("hello").unwrap(); // returns once the reader has it
/// assert_eq!(t.join().unwrap(), "hello");
/// ```
pub struct Writer<T> {
    backend: Backend<T>,
}

/// Where the channel lives: here, or at its home in another OS process.
enum Backend<T> {
    Local(Arc<Core<T>>),
    Remote {
        end: RemoteEnd,
        encode: fn(&T, &mut Encoder<'_>) -> postcard::Result<()>,
    },
}

impl<T> Writer<T> {
    pub(crate) fn attach(core: Arc<Core<T>>) -> Self {
        core.attach(Side::Writer);
        Writer {
            backend: Backend::Local(core),
        }
    }

    pub(crate) fn from_remote(end: RemoteEnd) -> Self
    where
        T: serde::Serialize + 'static,
    {
        Writer {
            backend: Backend::Remote {
                end,
                encode: crate::net::encoder::encode::<T>,
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

    /// Writes `value`, blocking until a reader took it (rendezvous) or it is in the buffer.
    ///
    /// # Errors
    ///
    /// A [`WriteError`] holding the value if the channel is poisoned or every reader retired.
    /// A write that completed before the poison is a success.
    pub fn write(&self, value: T) -> Result<(), WriteError<T>> {
        self.write_until(value, Deadline::Never)
            .map_err(write_error)
    }

    /// Writes `value` only if a reader waits or the buffer has room now.
    ///
    /// # Errors
    ///
    /// [`TryWriteError::Full`] with the value if nothing can take it now; otherwise as
    /// [`write`](Writer::write).
    ///
    /// # Examples
    ///
    /// ```
    /// let (writer, _reader) = csp_core::channel::<i32>();
    /// let error = writer.try_write(5).unwrap_err();
    /// assert_eq!(error.into_value(), 5); // no reader waited: the value comes back
    /// ```
    pub fn try_write(&self, value: T) -> Result<(), TryWriteError<T>> {
        self.write_until(value, Deadline::Now)
            .map_err(|(value, shortfall)| match shortfall {
                Shortfall::Failed(error) => TryWriteError::Channel(WriteError { value, error }),
                Shortfall::NotReady | Shortfall::TimedOut => TryWriteError::Full {
                    value,
                    channel: self.name().clone(),
                },
            })
    }

    /// Writes `value`, waiting at most `timeout` for a reader or buffer room.
    ///
    /// # Errors
    ///
    /// [`WriteTimeoutError::Timeout`] with the value if nothing took it in time; otherwise as
    /// [`write`](Writer::write).
    pub fn write_timeout(&self, value: T, timeout: Duration) -> Result<(), WriteTimeoutError<T>> {
        self.write_until(value, Deadline::after(timeout))
            .map_err(|failed| self.timeout_error(failed, timeout))
    }

    pub(crate) fn write_until(
        &self,
        mut value: T,
        deadline: Deadline,
    ) -> Result<(), (T, Shortfall)> {
        let core = match &self.backend {
            Backend::Local(core) => &**core,
            Backend::Remote { end, encode } => return write_remote(end, *encode, value, deadline),
        };
        crate::remote::flush_writes_ahead();
        let wait = match deadline {
            Deadline::Now => None,
            Deadline::Never => Some(None),
            Deadline::At(at) => Some(Some(at)),
        };
        loop {
            let selector = match core.begin_write(value, || wait.map(|_| Selector::current())) {
                Begun::Done(()) => return Ok(()),
                Begun::Failed(error, unsent) => return Err((unsent, Shortfall::Failed(error))),
                Begun::NotReady(unsent) => return Err((unsent, Shortfall::NotReady)),
                Begun::Waiting(selector) => selector,
            };
            let woken = selector.wait(wait.flatten(), || Some(Waiting::Write(core.name().clone())));
            value = match core
                .end_write(&selector, woken)
                .outcome(|| core.deadlocked())
            {
                Ok(outcome) => return outcome,
                Err(unsent) => unsent,
            };
        }
    }

    /// Poisons the channel: every blocked and later operation on every end fails.
    ///
    /// Poisoned by a writer, a buffered channel stays readable until drained.
    pub fn poison(&self) {
        match &self.backend {
            Backend::Local(core) => {
                core.poison(Side::Writer);
            }
            Backend::Remote { end, .. } => {
                end.operate(Operation::Poison);
            }
        }
    }

    /// Removes this end; the last writer's retirement retires the writing side, and readers
    /// fail with [`ChannelError::Retired`](crate::ChannelError::Retired) once the buffer is
    /// drained. Same as dropping the end.
    pub fn retire(self) {
        drop(self);
    }

    /// The channel's name.
    pub fn name(&self) -> &crate::ChannelName {
        match &self.backend {
            Backend::Local(core) => core.name(),
            Backend::Remote { end, .. } => end.name(),
        }
    }
}

/// The remote half of an output guard on a writer whose channel lives elsewhere. The guard
/// keeps its value throughout; the home gets an encoded copy.
impl<T> Writer<T> {
    fn encoded(&self, value: &T) -> Option<Result<(Vec<u8>, TicketScope), ChannelError>> {
        let Backend::Remote { end, encode } = &self.backend else {
            return None;
        };
        let (encoded, lent) = TicketScope::collect(|| encode_to_bytes(*encode, value));
        Some(match encoded {
            Ok(bytes) => Ok((bytes, lent)),
            Err(error) => {
                let error = crate::transfer::explain(&error);
                eprintln!(
                    "csp: channel {}: a value could not be encoded: {error}",
                    end.name()
                );
                Err(end.poisoned())
            }
        })
    }

    fn remote_end(&self) -> Option<&RemoteEnd> {
        match &self.backend {
            Backend::Remote { end, .. } => Some(end),
            Backend::Local(_) => None,
        }
    }

    /// Tries to write a copy of `value` now at the home; `None` if the channel lives here.
    pub(crate) fn remote_try(&self, value: &T) -> Option<Attempt<()>> {
        let (bytes, lent) = match self.encoded(value)? {
            Ok(encoded) => encoded,
            Err(error) => return Some(Attempt::Failed(error)),
        };
        let end = self.remote_end()?;
        let reply = end.operate(Operation::Write {
            value: bytes,
            wait: Wait::Not,
        });
        drop(lent);
        Some(match reply {
            OperationReply::Done => Attempt::Done(()),
            OperationReply::NotReady | OperationReply::TimedOut => Attempt::NotReady,
            OperationReply::Failed(error) => Attempt::Failed(error),
            _ => Attempt::Failed(end.poisoned()),
        })
    }

    /// Leaves an entry offering a copy of `value` at the home; true if the channel is ready
    /// already (or cannot be reached).
    pub(crate) fn remote_register(
        &self,
        selector: SelectorAddress,
        guard: usize,
        value: &T,
    ) -> bool {
        let Some(Ok((bytes, lent))) = self.encoded(value) else {
            return true;
        };
        let Some(end) = self.remote_end() else {
            return false;
        };
        let reply = end.operate(Operation::Register {
            guard: guard as u64,
            action: Action::Write { value: bytes },
            selector,
        });
        drop(lent); // the home decoded the copy before answering
        !matches!(reply, OperationReply::Ready(false))
    }

    /// Withdraws the entry; true if its value was taken (the guard was chosen).
    pub(crate) fn remote_unregister(&self, guard: usize) -> bool {
        self.remote_end().is_some_and(|end| {
            matches!(
                end.operate(Operation::Unregister {
                    guard: guard as u64
                }),
                OperationReply::Done
            )
        })
    }
}

/// The error of a write without a deadline that did not complete; it hands the value back.
pub(crate) fn write_error<T>((value, shortfall): (T, Shortfall)) -> WriteError<T> {
    match shortfall {
        Shortfall::Failed(error) => WriteError { value, error },
        Shortfall::NotReady | Shortfall::TimedOut => unreachable!("write without a deadline"),
    }
}

impl<T> Writer<T> {
    /// The error of a timed write that did not complete; it hands the value back.
    pub(crate) fn timeout_error(
        &self,
        (value, shortfall): (T, Shortfall),
        timeout: Duration,
    ) -> WriteTimeoutError<T> {
        match shortfall {
            Shortfall::Failed(error) => WriteTimeoutError::Channel(WriteError { value, error }),
            Shortfall::NotReady | Shortfall::TimedOut => WriteTimeoutError::Timeout {
                value,
                channel: self.name().clone(),
                after: timeout,
            },
        }
    }
}

/// Why a [`Writer::write_then_read`] failed.
pub(crate) enum CallError<T> {
    /// The write failed; its value is handed back.
    NotWritten(WriteError<T>),
    /// The write succeeded; the read failed.
    NotRead(ChannelError),
}

impl<T> Writer<T> {
    /// Writes `value`, then reads from `replies`: a request and its answer. When both
    /// channels live in the same other OS process this is one round trip to it, not two.
    pub(crate) fn write_then_read<R>(
        &self,
        value: T,
        replies: &Reader<R>,
    ) -> Result<R, CallError<T>> {
        let together = match (&self.backend, replies.as_remote()) {
            (Backend::Remote { end, encode }, Some(read_end))
                if Arc::ptr_eq(end.link(), read_end.link()) =>
            {
                Some((end, *encode, read_end.end()))
            }
            _ => None,
        };
        let Some((end, encode, then_read)) = together else {
            self.write(value).map_err(CallError::NotWritten)?;
            return replies.read().map_err(CallError::NotRead);
        };
        let (encoded, lent) = TicketScope::collect(|| encode_to_bytes(encode, &value));
        let Ok(bytes) = encoded else {
            let error = end.poisoned();
            return Err(CallError::NotWritten(WriteError { value, error }));
        };
        let reply = end.operate(Operation::WriteThenRead {
            value: bytes,
            then_read,
        });
        drop(lent);
        match reply {
            OperationReply::Value(bytes) => {
                replies.decode_remote(&bytes).map_err(CallError::NotRead)
            }
            OperationReply::NotWritten(error) => {
                Err(CallError::NotWritten(WriteError { value, error }))
            }
            OperationReply::Failed(error) => Err(CallError::NotRead(error)),
            _ => Err(CallError::NotRead(end.poisoned())),
        }
    }
}

/// The encoding of `value`, in this thread's spare buffer (give it back with
/// [`recycle`](crate::net::encoder::recycle)).
fn encode_to_bytes<T>(
    encode: fn(&T, &mut Encoder<'_>) -> postcard::Result<()>,
    value: &T,
) -> postcard::Result<Vec<u8>> {
    let (encoded, bytes) = crate::net::encoder::encode_to_spare(|encoder| encode(value, encoder));
    encoded.map(|()| bytes)
}

/// A write carried out at the channel's home, the value encoded straight into the request.
/// The value is kept until the home answers, so a failed write hands back the very value it
/// was given.
fn write_remote<T>(
    end: &RemoteEnd,
    encode: fn(&T, &mut Encoder<'_>) -> postcard::Result<()>,
    value: T,
    deadline: Deadline,
) -> Result<(), (T, Shortfall)> {
    let (reply, streams) =
        match end.write_encoding(deadline.wait(), |encoder| encode(&value, encoder)) {
            Written::Ahead => return Ok(()),
            Written::NotEncoded(error) => {
                eprintln!(
                    "csp: channel {}: a value could not be encoded: {error}",
                    end.name()
                );
                return Err((value, Shortfall::Failed(end.poisoned())));
            }
            Written::Unreachable => return Err((value, Shortfall::Failed(end.poisoned()))),
            Written::Answered { reply, streams } => (reply, streams),
        };
    match reply {
        // A blocking write of a plain value: this thread's burst of writes goes on.
        OperationReply::Done if streams => {
            end.wrote(0);
            Ok(())
        }
        OperationReply::Done => Ok(()),
        OperationReply::Granted(granted) => {
            end.wrote(granted);
            Ok(())
        }
        OperationReply::NotReady => Err((value, Shortfall::NotReady)),
        OperationReply::TimedOut => Err((value, Shortfall::TimedOut)),
        OperationReply::Failed(error) => Err((value, Shortfall::Failed(error))),
        OperationReply::Value(_)
        | OperationReply::ValueFollowing
        | OperationReply::Ready(_)
        | OperationReply::NotWritten(_)
        | OperationReply::Unknown => Err((value, Shortfall::Failed(end.poisoned()))),
    }
}

impl<T> Clone for Writer<T> {
    fn clone(&self) -> Self {
        match &self.backend {
            Backend::Local(core) => Writer::attach(Arc::clone(core)),
            Backend::Remote { end, encode } => Writer {
                backend: Backend::Remote {
                    end: end.duplicate(),
                    encode: *encode,
                },
            },
        }
    }
}

impl<T> Drop for Writer<T> {
    fn drop(&mut self) {
        // A remote end detaches at its home when its `RemoteEnd` drops.
        if let Backend::Local(core) = &self.backend {
            core.detach(Side::Writer);
        }
    }
}

impl<T> fmt::Debug for Writer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.backend {
            Backend::Local(core) => f.debug_tuple("Writer").field(&**core).finish(),
            Backend::Remote { end, .. } => f.debug_tuple("Writer").field(end).finish(),
        }
    }
}
