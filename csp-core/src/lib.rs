//! The runtime of [`csp`](https://docs.rs/csp): CSP process networks for Rust.
//!
//! Most users depend on the `csp` crate, which re-exports everything here together with the
//! `#[process]` attribute and the `select!` macro. The pieces:
//!
//! - [`channel`](mod@channel): typed, any-to-any [`Channel`]s, rendezvous by default or buffered, with
//!   [`Reader`] and [`Writer`] ends, and shutdown by poison and retire.
//! - [`alternation`]: [`Alternation`], a choice among input, output, timeout and skip
//!   [guards](guard) with preconditions, under priority, fair or arbitrary [`Policy`].
//! - [`process`]: [`Process`], work that runs only when composed, and how its ending (poison,
//!   retire, panic) is passed on to its channel ends ([`propagation`]).
//! - [`composition`]: [`Parallel`], [`Sequence`] and [`Spawn`].
//! - [`error`]: the error types; every failed write hands its value back.
//! - [`placement`]: running a process in another OS process ([`Process::os`], [`init`]).
//! - Lightweight processes: `#[process] async fn` runs as a task on an executor; channels and
//!   alternation have `_async` forms ([`Reader::read_async`], [`Writer::write_async`],
//!   [`Alternation::select_async`]); [`block_on`] runs async code outside a process.
//! - [`patterns`]: Python `multiprocessing`'s queues, pipes, shared state, locks, barriers and
//!   pool, built as channel patterns.
//! - [`net`]: framing and authentication for connections between OS processes.

pub mod alternation;
pub mod channel;
pub mod composition;
pub mod deadlock;
pub mod error;
mod executor;
pub mod guard;
mod home;
mod mirror;
pub mod net;
mod node;
pub mod patterns;
pub mod picture;
pub mod placement;
pub mod process;
pub mod propagation;
pub mod registry;
mod remote;
pub mod trace;
mod transfer;
mod wait;
mod work;

pub use alternation::{Alternation, Policy};
pub use channel::{Channel, Reader, Writer, buffered_channel, channel};
pub use composition::{Parallel, ProcessTuple, Sequence, Spawn};
pub use error::{
    ChannelError, ChannelName, Error, ReadTimeoutError, RunError, SelectError, TryReadError,
    TryWriteError, WriteError, WriteTimeoutError,
};
pub use executor::block_on;
pub use guard::{Guard, InputGuard, OutputGuard, SkipGuard, TimeoutGuard};
pub use placement::init;
pub use process::{ChannelFailure, Ending, Process, SpawnHandle};
pub use propagation::{ChannelEnds, EndSet};

/// Items used by the code the `csp` macros generate. Not public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::guard::{EndRef, GuardKind};
    pub use crate::mirror::requests_served_by_waiting_threads;
    pub use crate::process::{Classify, ClassifyOther, ClassifyResult};
    pub use crate::propagation::{EndingGuard, Probe, ProbeEnds, ProbeNoEnds};
    pub use crate::registry::{
        Decode, DecodeNone, DecodeSerde, Encode, EncodeNone, EncodeSerde, Registration, fingerprint,
    };
    pub use crate::remote::writes_sent_ahead;
    pub use futures::future::BoxFuture;
    pub use inventory;
    pub use serde;
}
