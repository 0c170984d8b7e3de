//! What can go wrong with a pattern's handle.

/// Why an operation on a pattern's handle failed.
///
/// A queue's `put` hands its item back inside its own error type,
/// [`PutError`](super::PutError), so that nothing is lost; this type is for the rest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PatternError {
    /// The server is gone: its manager shut down, or the server failed. The state it served
    /// is gone with it.
    #[error("{service}: the server is gone (its manager shut down or it failed)")]
    Gone {
        /// The service (the name given when it was made, or its kind).
        service: String,
    },
    /// The queue is empty (a non-blocking or timed `get`).
    #[error("the queue is empty")]
    Empty,
    /// The queue is full (a non-blocking or timed `put`).
    #[error("the queue is full")]
    Full,
    /// The queue was closed: nothing more can be put.
    #[error("the queue is closed")]
    Closed,
    /// The other end of a pipe closed, and nothing is left to receive.
    #[error("end of stream: the other end of the pipe is closed")]
    EndOfStream,
    /// A lock released by a client that does not hold it, or a bounded semaphore released
    /// more often than acquired.
    #[error("{0}")]
    Misuse(String),
    /// The barrier is broken: aborted, a party's wait timed out, or a party's OS process died
    /// while it waited.
    #[error("the barrier is broken")]
    BrokenBarrier,
    /// An index past the end of a shared list or array.
    #[error("index {index} is out of range for length {length}")]
    OutOfRange {
        /// The index asked for.
        index: usize,
        /// The length at the time.
        length: usize,
    },
    /// A key (or attribute) that is not there.
    #[error("no such key: {0}")]
    NoSuchKey(String),
    /// The server answered something the client did not ask for (a bug in csp).
    #[error("{service}: the server answered out of turn")]
    Protocol {
        /// The service.
        service: String,
    },
}
