//! Error types.
//!
//! Each operation has an error type that says exactly what can go wrong with it, and every
//! error from a write hands the unsent value back. All of them convert into [`Error`], so a
//! process body can use `?` on reads, writes and choices alike and return
//! `Result<_, csp::Error>`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The name of a channel, as shown in errors and debug output.
///
/// Channels made with [`Channel::named`](crate::Channel::named) carry the given name; others
/// are numbered (`channel#7`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct ChannelName(Arc<str>);

impl ChannelName {
    pub(crate) fn new(name: impl Into<Arc<str>>) -> Self {
        ChannelName(name.into())
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}'", self.0)
    }
}

impl fmt::Debug for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// Why an operation on a channel cannot complete, now or ever.
///
/// Both are final: once a channel is poisoned or a side retired, it stays so.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum ChannelError {
    /// Some end poisoned the channel.
    #[error("channel {channel} is poisoned")]
    Poisoned {
        /// The channel's name.
        channel: ChannelName,
    },
    /// Every end of the other side retired (or was dropped).
    #[error("channel {channel} is retired")]
    Retired {
        /// The channel's name.
        channel: ChannelName,
    },
}

impl ChannelError {
    /// The channel the error comes from.
    pub fn channel(&self) -> &ChannelName {
        match self {
            ChannelError::Poisoned { channel } | ChannelError::Retired { channel } => channel,
        }
    }

    /// Whether the channel was poisoned.
    pub fn is_poisoned(&self) -> bool {
        matches!(self, ChannelError::Poisoned { .. })
    }

    /// Whether the other side retired.
    pub fn is_retired(&self) -> bool {
        matches!(self, ChannelError::Retired { .. })
    }
}

/// A write that failed; the value was not delivered and is handed back.
#[derive(thiserror::Error)]
#[error("{error}: the value was not delivered")]
pub struct WriteError<T> {
    /// The value that was not delivered.
    pub value: T,
    /// Why.
    #[source]
    pub error: ChannelError,
}

impl<T> WriteError<T> {
    /// Takes the undelivered value back.
    pub fn into_value(self) -> T {
        self.value
    }
}

impl<T> fmt::Debug for WriteError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteError")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl<T> From<WriteError<T>> for ChannelError {
    fn from(error: WriteError<T>) -> Self {
        error.error
    }
}

/// Why a non-blocking read returned no value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TryReadError {
    /// No writer was ready and the buffer (if any) was empty.
    #[error("channel {channel} has no value ready")]
    Empty {
        /// The channel's name.
        channel: ChannelName,
    },
    /// The channel is poisoned or retired.
    #[error(transparent)]
    Channel(#[from] ChannelError),
}

/// Why a read with a timeout returned no value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadTimeoutError {
    /// No value arrived in time.
    #[error("no value arrived on channel {channel} within {after:?}")]
    Timeout {
        /// The channel's name.
        channel: ChannelName,
        /// How long the read waited.
        after: Duration,
    },
    /// The channel is poisoned or retired.
    #[error(transparent)]
    Channel(#[from] ChannelError),
}

/// Why a non-blocking write did not deliver; the value is handed back.
#[derive(thiserror::Error)]
pub enum TryWriteError<T> {
    /// No reader was ready and the buffer (if any) was full.
    #[error("channel {channel} cannot take a value now")]
    Full {
        /// The value that was not delivered.
        value: T,
        /// The channel's name.
        channel: ChannelName,
    },
    /// The channel is poisoned or retired.
    #[error(transparent)]
    Channel(WriteError<T>),
}

/// Why a write with a timeout did not deliver; the value is handed back.
#[derive(thiserror::Error)]
pub enum WriteTimeoutError<T> {
    /// No reader took the value in time.
    #[error("no reader took the value on channel {channel} within {after:?}")]
    Timeout {
        /// The value that was not delivered.
        value: T,
        /// The channel's name.
        channel: ChannelName,
        /// How long the write waited.
        after: Duration,
    },
    /// The channel is poisoned or retired.
    #[error(transparent)]
    Channel(WriteError<T>),
}

macro_rules! write_error_common {
    ($name:ident, $waited:ident) => {
        impl<T> $name<T> {
            /// Takes the undelivered value back.
            pub fn into_value(self) -> T {
                match self {
                    $name::$waited { value, .. } => value,
                    $name::Channel(error) => error.value,
                }
            }

            /// The channel error, if the write failed for good rather than for now.
            pub fn channel_error(&self) -> Option<&ChannelError> {
                match self {
                    $name::$waited { .. } => None,
                    $name::Channel(error) => Some(&error.error),
                }
            }
        }

        impl<T> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $name::$waited { channel, .. } => f
                        .debug_struct(stringify!($waited))
                        .field("channel", channel)
                        .finish_non_exhaustive(),
                    $name::Channel(error) => f.debug_tuple("Channel").field(error).finish(),
                }
            }
        }
    };
}
write_error_common!(TryWriteError, Full);
write_error_common!(WriteTimeoutError, Timeout);

/// Why an [`Alternation`](crate::Alternation) chose no guard.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum SelectError {
    /// The channel of an enabled guard is poisoned or retired.
    #[error("guard {guard} of the alternation: {error}")]
    Channel {
        /// The index of the guard whose channel failed.
        guard: usize,
        /// What failed.
        error: ChannelError,
    },
    /// Every guard's precondition was false, so nothing could ever be chosen.
    #[error("no guard of the alternation is enabled: every precondition is false")]
    NoEnabledGuard,
}

/// Why running a process or a composition failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum RunError {
    /// A process panicked; its channel ends were poisoned.
    #[error("process {process} panicked: {message}")]
    Panicked {
        /// The name of the process that panicked.
        process: String,
        /// The panic message.
        message: String,
    },
    /// The process ran in another OS process, which ended without reporting a result (it was
    /// killed, aborted or exited early); its channel ends were poisoned.
    #[error("process {process} ran in an OS process that ended without a result: {status}")]
    ChildDied {
        /// The name of the process.
        process: String,
        /// How the OS process ended, as the operating system reports it.
        status: String,
    },
    /// The process could not be placed where the composition asked.
    #[error("process {process} cannot run in another OS process: {reason}")]
    Placement {
        /// The name of the process.
        process: String,
        /// Why.
        reason: String,
    },
    /// Every process was waiting for a communication that none of them could complete: the
    /// deadlock monitor ended the waits (see [`deadlock`](crate::deadlock)). The report names
    /// each waiting process, what it waited on, and the cycle.
    #[error("{report}")]
    Deadlock {
        /// The report, as the monitor wrote it.
        report: String,
    },
    /// The process did not finish within the time given to `run_timeout` or `join_timeout`.
    #[error("process {process} did not finish within {after:?}")]
    TimedOut {
        /// The name of the process waited for.
        process: String,
        /// How long was waited.
        after: Duration,
    },
}

/// Any error of this crate, for process bodies that mix operations and use `?`.
///
/// A process returning `Result<_, Error>` whose error is a poisoned or retired channel ends
/// "because of poison" or "because of retire", and passes that on to its channel ends (see
/// [`process`](crate::process)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum Error {
    /// A channel is poisoned or retired.
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// An alternation failed.
    #[error(transparent)]
    Select(#[from] SelectError),
    /// A nested composition failed.
    #[error(transparent)]
    Run(#[from] RunError),
    /// A read or write with a timeout timed out.
    #[error("timed out on channel {channel} after {after:?}")]
    Timeout {
        /// The channel's name.
        channel: ChannelName,
        /// How long the operation waited.
        after: Duration,
    },
    /// A non-blocking read or write found the channel not ready.
    #[error("channel {channel} was not ready")]
    NotReady {
        /// The channel's name.
        channel: ChannelName,
    },
}

impl<T> From<WriteError<T>> for Error {
    fn from(error: WriteError<T>) -> Self {
        Error::Channel(error.error)
    }
}

impl From<ReadTimeoutError> for Error {
    fn from(error: ReadTimeoutError) -> Self {
        match error {
            ReadTimeoutError::Timeout { channel, after } => Error::Timeout { channel, after },
            ReadTimeoutError::Channel(error) => Error::Channel(error),
        }
    }
}

impl From<TryReadError> for Error {
    fn from(error: TryReadError) -> Self {
        match error {
            TryReadError::Empty { channel } => Error::NotReady { channel },
            TryReadError::Channel(error) => Error::Channel(error),
        }
    }
}

impl<T> From<TryWriteError<T>> for Error {
    fn from(error: TryWriteError<T>) -> Self {
        match error {
            TryWriteError::Full { channel, .. } => Error::NotReady { channel },
            TryWriteError::Channel(error) => Error::Channel(error.error),
        }
    }
}

impl<T> From<WriteTimeoutError<T>> for Error {
    fn from(error: WriteTimeoutError<T>) -> Self {
        match error {
            WriteTimeoutError::Timeout { channel, after, .. } => Error::Timeout { channel, after },
            WriteTimeoutError::Channel(error) => Error::Channel(error.error),
        }
    }
}

impl Error {
    /// The channel error behind this error, if it is one (directly or inside an alternation).
    pub fn channel_error(&self) -> Option<&ChannelError> {
        match self {
            Error::Channel(error) => Some(error),
            Error::Select(SelectError::Channel { error, .. }) => Some(error),
            _ => None,
        }
    }
}
