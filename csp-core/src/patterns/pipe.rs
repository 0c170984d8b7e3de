//! `multiprocessing.Pipe`: a pair of connected ends, duplex or one-way.
//!
//! Unlike the other patterns a pipe needs no server: it is two buffered channels, one per
//! direction, so its ends are plain channel ends and work across OS processes as they do.

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize, Serializer};

use super::error::PatternError;
use super::service::Wire;
use crate::channel::{Channel, Reader, Writer};
use crate::error::ReadTimeoutError;

/// How many messages a direction holds before `send` waits for the other end to receive.
pub const PIPE_CAPACITY: usize = 64;

/// One end of a [`pipe`]: sends to the other end, receives from it, or (one-way) only one of
/// the two.
///
/// Dropping an end (or [`close`](PipeEnd::close)) closes it: once the other end has
/// received what was sent before, its `recv` reports [`PatternError::EndOfStream`], and from
/// then on its `send` fails too. An end is
/// a serde value, so it can be passed to a process in another OS process.
///
/// # Examples
///
/// ```
/// use csp_core::patterns::{PatternError, pipe};
///
/// let (parent, child) = pipe::<String>();
/// let talking = std::thread::spawn(move || {
///     child.send("hello".to_string()).unwrap();
///     let answer = child.recv().unwrap();
///     child.close();
///     answer
/// });
/// assert_eq!(parent.recv().unwrap(), "hello");
/// parent.send("hi".to_string()).unwrap();
/// assert_eq!(talking.join().unwrap(), "hi");
/// assert_eq!(parent.recv(), Err(PatternError::EndOfStream));
/// ```
#[derive(Serialize, Deserialize)]
#[serde(bound = "T: Wire")]
pub struct PipeEnd<T> {
    // Dropped in this order: the receiving side retires first, so once the other end sees
    // the end of the stream, its sends fail too.
    receiving: Option<Reader<T>>,
    sending: Option<Writer<T>>,
    /// A message taken by [`poll`](PipeEnd::poll) and not yet received.
    #[serde(serialize_with = "refuse_unreceived", skip_deserializing)]
    polled: Mutex<Option<T>>,
}

fn refuse_unreceived<T, S: Serializer>(
    polled: &Mutex<Option<T>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let polled = polled.lock().unwrap_or_else(|p| p.into_inner());
    if polled.is_some() {
        return Err(serde::ser::Error::custom(
            "a pipe end holding a polled, unreceived message cannot be sent: receive it first",
        ));
    }
    serializer.serialize_unit()
}

/// Why a `send` failed; it hands the message back.
#[derive(PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct SendError<T> {
    value: T,
    reason: PatternError,
}

impl<T> SendError<T> {
    /// The message that was not sent.
    pub fn into_value(self) -> T {
        self.value
    }

    /// Why: [`PatternError::EndOfStream`] (the other end is closed) or
    /// [`PatternError::Misuse`] (this end of a one-way pipe only receives).
    pub fn reason(&self) -> &PatternError {
        &self.reason
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendError")
            .field("reason", &self.reason)
            .finish_non_exhaustive()
    }
}

/// A duplex pipe (`multiprocessing.Pipe()`): both ends send and receive.
pub fn pipe<T: Wire>() -> (PipeEnd<T>, PipeEnd<T>) {
    let (there, back) = (
        Channel::named_buffered("pipe", PIPE_CAPACITY),
        Channel::named_buffered("pipe", PIPE_CAPACITY),
    );
    (
        PipeEnd::new(Some(there.writer()), Some(back.reader())),
        PipeEnd::new(Some(back.writer()), Some(there.reader())),
    )
}

/// A one-way pipe (`multiprocessing.Pipe(duplex=False)`): the first end only receives, the
/// second only sends.
pub fn one_way_pipe<T: Wire>() -> (PipeEnd<T>, PipeEnd<T>) {
    let channel = Channel::named_buffered("pipe", PIPE_CAPACITY);
    (
        PipeEnd::new(None, Some(channel.reader())),
        PipeEnd::new(Some(channel.writer()), None),
    )
}

impl<T: Wire> PipeEnd<T> {
    fn new(sending: Option<Writer<T>>, receiving: Option<Reader<T>>) -> Self {
        PipeEnd {
            receiving,
            sending,
            polled: Mutex::new(None),
        }
    }

    /// Sends `message` to the other end; waits only if [`PIPE_CAPACITY`] messages are
    /// unreceived.
    ///
    /// # Errors
    ///
    /// [`SendError`] with the message, if the other end is closed or this end only receives.
    pub fn send(&self, message: T) -> Result<(), SendError<T>> {
        let Some(sending) = &self.sending else {
            return Err(SendError {
                value: message,
                reason: PatternError::Misuse("this end of a one-way pipe only receives".into()),
            });
        };
        sending.write(message).map_err(|error| SendError {
            value: error.into_value(),
            reason: PatternError::EndOfStream,
        })
    }

    fn receiving(&self) -> Result<&Reader<T>, PatternError> {
        self.receiving
            .as_ref()
            .ok_or_else(|| PatternError::Misuse("this end of a one-way pipe only sends".into()))
    }

    fn take_polled(&self) -> Option<T> {
        self.polled.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Receives the next message, waiting for one.
    ///
    /// # Errors
    ///
    /// [`PatternError::EndOfStream`] once the other end is closed and everything it sent
    /// was received; [`PatternError::Misuse`] if this end only sends.
    pub fn recv(&self) -> Result<T, PatternError> {
        let receiving = self.receiving()?;
        if let Some(message) = self.take_polled() {
            return Ok(message);
        }
        receiving.read().map_err(|_| PatternError::EndOfStream)
    }

    /// Receives the next message, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// As [`recv`](PipeEnd::recv), and [`PatternError::Empty`] when the time passes.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, PatternError> {
        let receiving = self.receiving()?;
        if let Some(message) = self.take_polled() {
            return Ok(message);
        }
        receiving
            .read_timeout(timeout)
            .map_err(|error| match error {
                ReadTimeoutError::Timeout { .. } => PatternError::Empty,
                _ => PatternError::EndOfStream,
            })
    }

    /// Whether [`recv`](PipeEnd::recv) would return at once (a message waits, or the other
    /// end is closed), waiting at most `timeout` for that to become true.
    ///
    /// # Errors
    ///
    /// [`PatternError::Misuse`] if this end only sends.
    pub fn poll(&self, timeout: Duration) -> Result<bool, PatternError> {
        let receiving = self.receiving()?;
        let mut polled = self.polled.lock().unwrap_or_else(|p| p.into_inner());
        if polled.is_some() {
            return Ok(true);
        }
        match receiving.read_timeout(timeout) {
            Ok(message) => {
                *polled = Some(message);
                Ok(true)
            }
            Err(ReadTimeoutError::Timeout { .. }) => Ok(false),
            Err(_) => Ok(true), // closed: recv reports the end at once
        }
    }

    /// Closes this end (the same as dropping it). A message polled and not received is
    /// dropped with it.
    pub fn close(self) {}
}

impl<T> fmt::Debug for PipeEnd<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipeEnd")
            .field("sends", &self.sending.is_some())
            .field("receives", &self.receiving.is_some())
            .finish_non_exhaustive()
    }
}
