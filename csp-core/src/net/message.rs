//! The messages OS processes of one network exchange, encoded with postcard in frames.
//!
//! After the handshake, a connection's first message, [`Hello`], says what it is for:
//!
//! - `Child`: a child started by placement collecting its [`Job`] and returning [`Done`].
//! - `Session`: one per (OS process, home) pair: attaches and detaches the channel ends that
//!   OS process holds at that home. When it closes while ends are still attached, the OS
//!   process is gone, and the home poisons those ends' channels.
//! - `Operations`: one per (thread, home) pair: that thread's channel operations, performed at
//!   the home by a mirror thread, one at a time.
//! - `Selectors`: from a home to an OS process with an alternation waiting on its channels:
//!   claims of that alternation's selector, and requests to look again.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::frame::FrameError;
use crate::error::{ChannelError, RunError};

/// What a connection is for.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Hello {
    Child { token: String },
    Session { process: u64 },
    Operations { process: u64 },
    Selectors { process: u64 },
}

/// A request to an OS process's selector service.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum SelectorRequest {
    /// Claim exported selector `id` for `guard`, if it is still in `round`; answered by a
    /// `bool`.
    Claim { id: u64, round: u64, guard: u64 },
    /// Tell exported selector `id` to look again, if it is still in `round`. No answer.
    Recheck { id: u64, round: u64 },
}

/// Where an alternation's selector can be claimed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SelectorAddress {
    pub(crate) home: super::address::Address,
    pub(crate) id: u64,
    /// Which wait of the selector's owner the registration belongs to.
    pub(crate) round: u64,
}

/// What a guard registered at a home offers.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Action {
    Read,
    Write {
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
    },
}

/// A child's job.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Job {
    pub(crate) name: String,
    /// The name the composition gave the process (for reports from the child).
    pub(crate) shown: String,
    pub(crate) fingerprint: u64,
    #[serde(with = "serde_bytes")]
    pub(crate) arguments: Vec<u8>,
}

/// A child's result.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Done {
    pub(crate) result: Result<serde_bytes::ByteBuf, RunError>,
}

/// What a child says on its job connection once it has its job: how its actors stand, any
/// number of times, then its result.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum FromChild {
    Standstill(crate::deadlock::Standstill),
    Done(Done),
}

/// What the parent says on a child's job connection after the job.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ToChild {
    /// A deadlock involving the child was declared, with this report: end its waits.
    Deadlock(String),
    /// The result was decoded (ends inside it claimed): the child may let go of what it
    /// lent.
    Decoded,
}

/// A request on a session connection.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum SessionRequest {
    /// Take over the end a ticket holds; answered by `Attached`.
    Attach { ticket: u64, fingerprint: u64 },
    /// Make another end of the same side; answered by `Attached`.
    CloneEnd { end: u64 },
    /// Put a new ticket on an attached end (to pass it on); answered by `Ticket`.
    Ticket { end: u64 },
    /// Drop an unclaimed ticket. No answer.
    DropTicket { ticket: u64 },
    /// Drop an attached end (retiring it if it was the last). No answer.
    /// Drop the end once `ahead` writes ahead through it were carried out (they travel on
    /// other connections and may still be on their way).
    Detach { end: u64, ahead: u64 },
}

/// An answer on a session connection.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum SessionReply {
    Attached { end: u64 },
    Ticket { ticket: u64 },
    Refused { reason: String },
}

/// A channel operation, performed at the home.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Operation {
    Read {
        wait: Wait,
    },
    Write {
        // Already encoded: copied in bulk, not byte by byte.
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
        wait: Wait,
    },
    Poison,
    /// As `Write`, with the value's encoding after the request in the frame (not copied into
    /// the request itself).
    WriteFollowing {
        wait: Wait,
        /// Asks for slots to write ahead into (answered `Granted` if any were reserved).
        ask_credit: bool,
        /// The value has no channel ends inside: decoding it claims nothing, so a waiting
        /// thread that tries it and finds no reader may drop its copy and leave the frame
        /// to the connection thread (see `node::help_connections`).
        plain: bool,
    },
    /// As `WriteFollowing`, into a slot granted before: carried out without an answer.
    WriteAhead,
    /// Answered `Done` once everything sent before it on this connection was carried out.
    Sync,
    /// Gives back `count` slots granted for writes ahead that will not be used; no answer.
    ReturnCredit {
        count: u32,
    },
    /// Write `value` on this end, then read from `then_read`, another end attached here:
    /// a request and its answer in one round trip. Answered as the read is, or by
    /// `NotWritten` if the write failed.
    WriteThenRead {
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
        then_read: u64,
    },
    /// Leave an entry for guard `guard` of an alternation whose selector is at `selector`;
    /// answered by `Ready`.
    Register {
        guard: u64,
        action: Action,
        selector: SelectorAddress,
    },
    /// Withdraw that entry; answered by `Value` (a value delivered to it), `Done` (its offered
    /// value was taken) or `NotReady` (nothing happened to it).
    Unregister {
        guard: u64,
    },
}

/// How long an operation may wait.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) enum Wait {
    Not,
    Forever,
    For(Duration),
}

/// A request on an operations connection.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct OperationRequest {
    pub(crate) end: u64,
    pub(crate) operation: Operation,
}

/// The outcome of an operation.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum OperationReply {
    Value(#[serde(with = "serde_bytes")] Vec<u8>),
    /// A value, its encoding after the reply in the frame.
    ValueFollowing,
    Done,
    /// Done, and this many more buffer slots are reserved for writes ahead.
    Granted(u32),
    /// Whether the channel was ready for the registered guard already.
    Ready(bool),
    NotReady,
    TimedOut,
    Failed(ChannelError),
    /// The write of a `WriteThenRead` failed (the read was not tried).
    NotWritten(ChannelError),
    /// The end is unknown at the home (a protocol error).
    Unknown,
}

/// Why a message could not be exchanged.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MessageError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("malformed message: {0}")]
    Malformed(#[from] postcard::Error),
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Random bytes never panic a decoder; they decode or fail cleanly.
        #[test]
        fn random_bytes_never_panic_a_decoder(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = postcard::from_bytes::<Hello>(&bytes);
            let _ = postcard::from_bytes::<SessionRequest>(&bytes);
            let _ = postcard::from_bytes::<OperationRequest>(&bytes);
            let _ = postcard::from_bytes::<OperationReply>(&bytes);
            let _ = postcard::from_bytes::<SelectorRequest>(&bytes);
            let _ = postcard::from_bytes::<Job>(&bytes);
            let _ = postcard::from_bytes::<Done>(&bytes);
        }

        /// Every truncation of a valid message is refused, never misread as something else.
        #[test]
        fn truncated_messages_are_refused(value in prop::collection::vec(any::<u8>(), 1..64), end in any::<u64>()) {
            let request = OperationRequest { end, operation: Operation::Write { value, wait: Wait::Forever } };
            let bytes = postcard::to_stdvec(&request).unwrap();
            for cut in 0..bytes.len() {
                prop_assert!(postcard::from_bytes::<OperationRequest>(&bytes[..cut]).is_err());
            }
            let decoded: OperationRequest = postcard::from_bytes(&bytes).unwrap();
            prop_assert_eq!(decoded.end, end);
        }
    }
}
