//! Python `multiprocessing`'s communication and shared state, built as channel patterns.
//!
//! Every pattern here is a small process network: a server process owning the state, and a
//! private pair of channels to it for each handle. Handles are cheap to clone, and they are
//! serde values, so they can be passed to processes in any placement, including other OS
//! processes (`.os()`): the same handle works from a thread, a child OS process, or a
//! grandchild.
//!
//! A server is a lightweight process that the thread bringing it a request runs: the caller's
//! own thread, or for a caller in another OS process the thread of this one that carries out
//! that caller's operations. A call therefore costs no hand-over between threads (about
//! 1.6 us from a child OS process for a [`SharedList`] append on two CPUs).
//!
//! | `multiprocessing` | here |
//! |---|---|
//! | `Queue`, `JoinableQueue`, `SimpleQueue` | [`Queue`] (every queue is joinable) |
//! | `Pipe()`, `Pipe(duplex=False)` | [`pipe`], [`one_way_pipe`] ([`PipeEnd`]) |
//! | `Lock`, `RLock` | [`Lock`], [`RLock`] |
//! | `Semaphore`, `BoundedSemaphore` | [`Semaphore`], [`BoundedSemaphore`] |
//! | `Event` | [`Event`] |
//! | `Condition` | [`Condition`] (with its own re-entrant lock) |
//! | `Barrier` | [`Barrier`]; the CSP barrier is [`CspBarrier`] |
//! | `Pool`: `map`, `imap_unordered`, `apply_async` | [`Pool`]: [`map`](Pool::map), [`map_unordered`](Pool::map_unordered), [`apply`](Pool::apply) |
//! | `Value`, `Array` | [`SharedValue`], [`SharedArray`] |
//! | `Manager()`, its `list()`, `dict()`, `Namespace()`, `Queue()` | [`Manager`], [`SharedList`], [`SharedDict`], [`Namespace`], [`Queue`] |
//!
//! # What happens when a client dies
//!
//! A handle dropped is a client that left. A client whose OS process died (killed, crashed)
//! is noticed by the server at once, because the runtime poisons the ends a dead OS process
//! held, and what it held is undone: see each pattern's documentation.

mod barrier;
mod condition;
mod error;
mod event;
mod lock;
mod manager;
mod pipe;
mod pool;
mod queue;
pub(crate) mod service;
mod shared;

pub use barrier::{Barrier, CspBarrier};
pub use condition::Condition;
pub use error::PatternError;
pub use event::Event;
pub use lock::{BoundedSemaphore, Lock, RLock, Semaphore};
pub use manager::{Manager, SHUTDOWN_LIMIT};
pub use pipe::{PIPE_CAPACITY, PipeEnd, SendError, one_way_pipe, pipe};
pub use pool::{JobResult, Pending, Pool, PoolError, WorkerFactory, serve_jobs};
pub use queue::{JoinableQueue, PutError, Queue, SimpleQueue};
pub use service::Wire;
pub use shared::{
    Cell, CellOperation, DictOperation, DictOutcome, ListOperation, ListOutcome, Namespace,
    Operate, Shared, SharedArray, SharedDict, SharedList, SharedValue,
};
