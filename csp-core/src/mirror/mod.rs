//! Mirror threads, which carry out remote threads' operations at the channels' home, and the
//! waiting threads that serve their requests meanwhile.
//!
//! A mirror thread ([`serve_operations`], one per operations connection the node accepts)
//! carries out one remote thread's operations at the channels' home, one at a time, and
//! answers them ([`send_reply`], in `answer`); `help` holds what waiting threads do for
//! it. On a machine with fewer CPUs than busy threads it shares a CPU with
//! the very threads it hands values to: in a round trip between a thread here and one in a
//! child, the thread here and the mirror handed the CPU to each other four times, 4 of the
//! 7 us. So a thread of this OS process that waits in a channel operation (while it still
//! looks, before it sleeps) also looks at the mirrors' connections, and a request that
//! completes at once it carries out and answers itself, as the mirror would have: a write
//! whose reader waits (its own read, typically), a read whose writer waits. The mirror parks
//! while such helpers look, and a helper wakes it for any request it does not take.
//!
//! What makes this safe:
//!
//! - **One step at a time.** Whoever carries out a request holds the mirror's step lock
//!   from taking the frame to settling its bookkeeping (the tickets lent in the answer, and,
//!   on a channel that takes values back from readers that died, the encoding of the value
//!   kept to put back if the remote thread dies without reading it: see [`Between`]); a
//!   helper only
//!   tries the lock, so it never waits for a mirror in the middle of a step.
//! - **Nothing is taken that cannot be given back.** A helper tries a request without
//!   waiting and consumes its frame only if it completed; otherwise the frame stays for the
//!   mirror. It takes only writes of values with no channel ends inside (decoding those
//!   claims nothing, so a copy can be dropped) and reads, whose value it sends like the
//!   mirror (see [`send_reply`]).
//! - **The mirror is never needed and asleep.** It parks only while some thread looks and
//!   either helpers took the last request or the request waiting is one they may take (a
//!   mirror that took those itself as soon as it saw them kept them from the helpers for
//!   good), for at most [`PARK`] at a time and [`PARKED`] in all (then it waits in the
//!   connection's own wait, which notices a remote thread that died). It is woken for
//!   every request a helper leaves, and when a helper grants slots for writes ahead (which
//!   the mirror carries out); one that no helper could even look at (its locks busy) waits
//!   at most [`PARK`].
//! - **What a helper wakes is not left with it.** A pattern's server woken by a request a
//!   helper carries out goes to the pool's queue ([`executor::for_others`]): the helper is in
//!   a wait of its own, which may need that server.
//!
//! A request a helper carries out is traced (see [`trace`](crate::trace)) under the
//! helper's process, where the mirror's is traced as a service thread's.
//!
//! [`executor::for_others`]: crate::executor::for_others

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError, Weak};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use crate::home::{HomeReply, TakesBack};
use crate::net::connection::Connection;
use crate::net::message::Operation;
use crate::transfer::TicketScope;

mod answer;
mod help;
mod serve;

pub(crate) use answer::send_reply;
pub use help::requests_served_by_waiting_threads;
use help::{LOOKING, helpers_may_take};
pub(crate) use help::{Looking, help_mirrors};
pub(crate) use serve::serve_operations;

/// The longest a mirror parks at a time while helpers look.
const PARK: Duration = Duration::from_micros(20);
/// The longest a mirror parks, all told, waiting for one request, before it waits in its
/// connection's own wait (which notices a remote thread that died).
const PARKED: Duration = Duration::from_millis(2);

/// What one request's answer leaves for the next request to settle, whoever sent it.
#[derive(Default)]
pub(crate) struct Between {
    /// Ends inside the answer's value, lent until the next request proves the remote
    /// thread has decoded the answer (and so claimed them).
    pub(crate) lent: Option<TicketScope>,
    /// The encoding of the value sent, if its channel takes values back from readers that
    /// died, and that channel: kept until the next request shows it was read, to be put
    /// back otherwise.
    pub(crate) delivering: Option<(Box<dyn TakesBack>, Vec<u8>)>,
}

impl Between {
    /// A new request arrived: the last answer was read.
    pub(crate) fn answer_was_read(&mut self) {
        // Tickets nobody claimed go now; the value sent is no longer needed.
        drop(self.lent.take());
        if let Some((_, encoded)) = self.delivering.take() {
            crate::net::encoder::recycle(encoded);
        }
    }
}

/// A mirror thread's connection, as the threads that help it see it.
pub(crate) struct Mirror {
    pub(crate) connection: Arc<Mutex<Connection>>,
    step: Mutex<Between>,
    thread: Thread,
    /// An answer sent on the mirror's behalf could not be sent: the remote thread is gone.
    failed: AtomicBool,
    /// A helper carried out the last request: the mirror parks while helpers look. Cleared
    /// when a request is left to the mirror (one that waits, a write ahead of a stream the
    /// mirror carries out beside its reader): then it looks for the next one itself.
    helped: AtomicBool,
    /// A helper left the waiting request to the mirror: it takes it at once.
    left: AtomicBool,
    /// The mirror's last request was a write ahead: a stream goes on, which only the mirror
    /// carries out, and the requests in it are not looked at before they are taken.
    streaming: AtomicBool,
}

/// The mirrors of this OS process.
static MIRRORS: Mutex<Vec<Weak<Mirror>>> = Mutex::new(Vec::new());
/// How many mirrors live (read without the lock: no mirror, nothing to look at).
static LIVE: AtomicUsize = AtomicUsize::new(0);
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The lock if it is free now. A lock poisoned by a panic elsewhere is taken as it is, as
/// [`lock`] takes it: a helper that gave up on it would leave every request to a parked
/// mirror.
fn try_lock<T>(mutex: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    match mutex.try_lock() {
        Ok(guard) => Some(guard),
        Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

impl Mirror {
    /// The mirror of `connection`, served by the calling thread; listed for helpers until
    /// the returned value is dropped.
    pub(crate) fn start(connection: Connection) -> Listed {
        let mirror = Mirror::unlisted(connection);
        let mut mirrors = lock(&MIRRORS);
        mirrors.retain(|mirror| mirror.strong_count() > 0);
        mirrors.push(Arc::downgrade(&mirror));
        LIVE.fetch_add(1, Ordering::SeqCst);
        Listed(mirror)
    }

    /// The mirror of `connection`, served by the calling thread, not listed for helpers.
    fn unlisted(connection: Connection) -> Arc<Mirror> {
        Arc::new(Mirror {
            connection: Arc::new(Mutex::new(connection)),
            step: Mutex::new(Between::default()),
            thread: thread::current(),
            failed: AtomicBool::new(false),
            helped: AtomicBool::new(false),
            left: AtomicBool::new(false),
            streaming: AtomicBool::new(false),
        })
    }

    /// Waits, without holding anything, until a request waits for it or it is time to block
    /// in the connection's own wait: parks while helpers look, looks otherwise (as
    /// [`Backoff`](crate::wait::Backoff) decides).
    ///
    /// A request that a helper may carry out at once is left to the helpers while one looks
    /// (the mirror parks, and is woken if they leave it): a mirror that took such requests
    /// itself, as soon as it saw them, kept them from the helpers for good, and the round
    /// trip took its slow course, twice as long, in one run of three.
    pub(crate) fn wait_for_request(&self) {
        let mut backoff = crate::wait::Backoff::new();
        let mut parked_since = None;
        loop {
            // Parked for long, it waits in the connection's own wait, which is also where a
            // remote thread that died is noticed.
            let parked_for_long =
                parked_since.is_some_and(|since: Instant| since.elapsed() > PARKED);
            let mut connection = lock(&self.connection);
            // A socket's bytes may wait in the kernel, unseen: its own wait sees them.
            if !connection.is_shared() {
                return;
            }
            if connection.frame_waiting() {
                let for_helpers = !parked_for_long && self.leaves_to_helpers(&mut connection);
                drop(connection);
                if !for_helpers {
                    return;
                }
                parked_since.get_or_insert_with(Instant::now);
                thread::park_timeout(PARK);
                continue;
            }
            drop(connection);
            if self.helped.load(Ordering::Relaxed)
                && LOOKING.load(Ordering::SeqCst) > 0
                && !parked_for_long
            {
                parked_since.get_or_insert_with(Instant::now);
                thread::park_timeout(PARK);
                continue;
            }
            if parked_for_long {
                return;
            }
            if !backoff.snooze() {
                return;
            }
        }
    }

    /// Whether the mirror leaves the request waiting on its `connection` to the helpers: one
    /// looks, none left this request to the mirror, no stream of writes ahead goes on (their
    /// next request, the one that asks for more slots, included: looking at every request
    /// of a stream of 8-byte values made it take half as long again), and it is one they
    /// may carry out.
    fn leaves_to_helpers(&self, connection: &mut Connection) -> bool {
        LOOKING.load(Ordering::SeqCst) > 0
            && !self.left.load(Ordering::SeqCst)
            && !self.streaming.load(Ordering::Relaxed)
            && helpers_may_take(connection)
    }

    /// The step lock, for the mirror thread itself (it waits for a helper's step to end).
    /// It lets go of it while a read it handed on waits: whoever completes that read answers
    /// through [`answer`](Mirror::answer), which settles the step.
    pub(crate) fn step(&self) -> MutexGuard<'_, Between> {
        lock(&self.step)
    }

    /// Sends `reply` to the remote thread for the mirror, whose read `end` (the reader) it
    /// completed, and settles the step's bookkeeping, both under the step lock: no helper
    /// takes the next request before the value it answers is recorded.
    pub(crate) fn answer(&self, reply: HomeReply) {
        let mut between = lock(&self.step);
        match send_reply(&mut lock(&self.connection), reply) {
            Ok(left) => *between = left,
            Err(()) => self.failed.store(true, Ordering::SeqCst),
        }
    }

    /// The mirror carries out `operation` itself: it looks for the next request itself too.
    pub(crate) fn serves(&self, operation: &Operation) {
        self.helped.store(false, Ordering::Relaxed);
        self.left.store(false, Ordering::SeqCst);
        let streaming = matches!(operation, Operation::WriteAhead);
        self.streaming.store(streaming, Ordering::Relaxed);
    }

    /// Whether an answer sent for the mirror failed since it last asked.
    pub(crate) fn answer_failed(&self) -> bool {
        self.failed.swap(false, Ordering::SeqCst)
    }
}

/// A mirror listed for helpers; dropping it takes it off the list.
pub(crate) struct Listed(Arc<Mirror>);

impl Listed {
    /// The mirror, for whoever answers on its behalf.
    pub(crate) fn shared(&self) -> Arc<Mirror> {
        Arc::clone(&self.0)
    }
}

impl std::ops::Deref for Listed {
    type Target = Mirror;

    fn deref(&self) -> &Mirror {
        &self.0
    }
}

impl Drop for Listed {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::SeqCst);
    }
}
