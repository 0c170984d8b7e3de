//! A mirror thread's connection, and the waiting threads that serve it meanwhile.
//!
//! A mirror thread (see [`node`](crate::node)) carries out one remote thread's operations at
//! the channels' home. On a machine with fewer CPUs than busy threads it shares a CPU with
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

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError, Weak};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use crate::home::{HomeReply, Outgoing, TakesBack};
use crate::net::connection::Connection;
use crate::net::encoder::Encoder;
use crate::net::message::{Operation, OperationReply, OperationRequest, Wait};
use crate::transfer::TicketScope;

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
/// How many threads look at the mirrors now.
static LOOKING: AtomicUsize = AtomicUsize::new(0);
/// How many requests helpers carried out (for tests).
static TAKEN: AtomicU64 = AtomicU64::new(0);

/// How many requests from other OS processes threads of this one carried out while they
/// waited, instead of a mirror thread (for tests).
#[doc(hidden)]
pub fn requests_served_by_waiting_threads() -> u64 {
    TAKEN.load(Ordering::Relaxed)
}

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

    /// Carries out the waiting request if it completes at once; wakes the mirror if a
    /// request waits that this does not take.
    fn help(&self) {
        let Some(mut between) = try_lock(&self.step) else {
            return; // the mirror (or another helper) is in a step
        };
        let Some(mut connection) = try_lock(&self.connection) else {
            return;
        };
        if !connection.frame_waiting() {
            return;
        }
        // What the request wakes is not this thread's to run (it is in a wait of its own).
        let taken = crate::executor::for_others(|| {
            connection
                .try_receive_with(|request: OperationRequest, payload| at_once(request, payload))
        });
        match taken {
            Ok(Some(reply)) => {
                TAKEN.fetch_add(1, Ordering::Relaxed);
                // Slots granted: writes ahead follow, which the mirror carries out beside
                // their reader; it looks for them itself.
                let granted = matches!(reply, HomeReply::Message(OperationReply::Granted(_)));
                self.helped.store(!granted, Ordering::Relaxed);
                if granted {
                    self.thread.unpark();
                }
                between.answer_was_read();
                match send_reply(&mut connection, reply) {
                    Ok(left) => *between = left,
                    // The remote thread is gone: its mirror finds out and cleans up.
                    Err(()) => self.thread.unpark(),
                }
            }
            Ok(None) => {}
            Err(()) => {
                self.left.store(true, Ordering::SeqCst);
                self.helped.store(false, Ordering::Relaxed);
                self.thread.unpark();
            }
        }
    }
}

/// Sends `reply` to the remote thread, a value encoded straight into the frame: what the
/// next request settles (see [`Between`]), or `Err` if the connection failed. A value taken
/// for the remote reader that cannot reach it is put back where its channel allows, and
/// otherwise poisons the channel rather than vanish unnoticed.
pub(crate) fn send_reply(connection: &mut Connection, reply: HomeReply) -> Result<Between, ()> {
    let value = match reply {
        HomeReply::Value(value) => value,
        HomeReply::Message(reply) => {
            let sent = match &reply {
                OperationReply::Value(bytes) => {
                    connection.send_with_payload(&OperationReply::ValueFollowing, bytes)
                }
                reply => connection.send(reply),
            };
            return sent.map(|()| Between::default()).map_err(drop);
        }
    };
    if let Some(takes_back) = value.takes_back() {
        return send_returnable(connection, value, takes_back);
    }
    // Ends inside the value are lent until the next request shows it was decoded.
    let (sent, lent) = TicketScope::collect(|| {
        connection.send_encoding(
            |encoder| value.encode(encoder),
            |encoded| encoded.is_ok().then_some(OperationReply::ValueFollowing),
        )
    });
    match sent {
        Ok((Ok(()), _)) => Ok(Between {
            lent: Some(lent),
            delivering: None,
        }),
        Ok((Err(error), _)) => {
            drop(lent);
            refuse(connection, &*value, &error)
        }
        Err(error) => {
            value.lost(&error);
            Err(())
        }
    }
}

/// Sends a value whose channel takes it back if its reader dies without it: encoded into a
/// buffer, which is kept, with the channel, until the next request shows the value arrived
/// (the value itself goes once sent, as every value does).
fn send_returnable(
    connection: &mut Connection,
    value: Box<dyn Outgoing>,
    takes_back: Box<dyn TakesBack>,
) -> Result<Between, ()> {
    let (encoded, lent) = TicketScope::collect(|| {
        let mut encoder = Encoder::into_buffer(crate::net::encoder::spare_buffer());
        value.encode(&mut encoder).map(|()| encoder.into_bytes())
    });
    let encoded = match encoded {
        Ok(encoded) => encoded,
        Err(error) => {
            drop(lent);
            return refuse(connection, &*value, &error);
        }
    };
    match connection.send_with_payload(&OperationReply::ValueFollowing, &encoded) {
        Ok(()) => Ok(Between {
            lent: Some(lent),
            delivering: Some((takes_back, encoded)),
        }),
        Err(_) => {
            value.put_back();
            Err(())
        }
    }
}

/// Answers a value that cannot be encoded as its poisoned channel.
fn refuse(
    connection: &mut Connection,
    value: &dyn Outgoing,
    error: &postcard::Error,
) -> Result<Between, ()> {
    let reply = value.refused(error);
    connection
        .send(&reply)
        .map(|()| Between::default())
        .map_err(drop)
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

/// Whether a helper may carry out `operation` (if it completes at once): a write of a
/// value with no channel ends inside or a read, neither timed, or a `Sync`.
fn for_helpers(operation: &Operation) -> bool {
    match operation {
        Operation::WriteFollowing { wait, plain, .. } => *plain && !matches!(wait, Wait::For(_)),
        Operation::Read { wait } => !matches!(wait, Wait::For(_)),
        // Writes ahead stream: the mirror carries them out beside their reader.
        Operation::Sync => true,
        _ => false,
    }
}

/// Whether the request waiting on `connection` is one helpers may carry out (looked at,
/// not taken).
fn helpers_may_take(connection: &mut Connection) -> bool {
    let mut may = false;
    let _ = connection.try_receive_with(|request: OperationRequest, _| {
        may = for_helpers(&request.operation);
        None::<()>
    });
    may
}

/// A request carried out without waiting, if it completes so: the answer to send; `None`
/// leaves the frame to the mirror.
fn at_once(request: OperationRequest, payload: &[u8]) -> Option<HomeReply> {
    if !for_helpers(&request.operation) {
        return None;
    }
    let end = || crate::node::node().attached(request.end);
    match request.operation {
        // A plain value: if it cannot be written now, the copy decoded goes and the frame
        // stays. One that may not wait is answered whatever happens, as the mirror would.
        Operation::WriteFollowing {
            wait, ask_credit, ..
        } => {
            let end = end()?;
            let reply = match end.write_encoded(payload, Wait::Not) {
                OperationReply::Done if ask_credit => match end.grant() {
                    0 => OperationReply::Done,
                    granted => OperationReply::Granted(granted),
                },
                OperationReply::Done => OperationReply::Done,
                _ if matches!(wait, Wait::Forever) => return None,
                reply => reply,
            };
            Some(reply.into())
        }
        Operation::Read { wait } => {
            let reply = end()?.perform(Operation::Read { wait: Wait::Not });
            let answered = matches!(reply, HomeReply::Value(_)) || matches!(wait, Wait::Not);
            answered.then_some(reply)
        }
        Operation::Sync => Some(OperationReply::Done.into()),
        _ => None,
    }
}

/// The calling thread waits in a channel operation and still looks: it serves the mirrors'
/// requests that complete at once (see the module documentation). Call it between looks;
/// [`Looking`] says for how long it looks.
pub(crate) fn help_mirrors() {
    if LIVE.load(Ordering::Relaxed) == 0 {
        return;
    }
    let Ok(mirrors) = MIRRORS.try_lock() else {
        return;
    };
    for mirror in mirrors.iter().filter_map(Weak::upgrade) {
        mirror.help();
    }
}

/// Counts the calling thread as looking at the mirrors while it lives (the mirrors park
/// meanwhile); `None` if there are no mirrors.
pub(crate) struct Looking(());

impl Looking {
    pub(crate) fn start() -> Option<Looking> {
        if LIVE.load(Ordering::Relaxed) == 0 {
            return None;
        }
        LOOKING.fetch_add(1, Ordering::SeqCst);
        Some(Looking(()))
    }
}

impl Drop for Looking {
    fn drop(&mut self) {
        LOOKING.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ChannelError, TryReadError};
    use crate::home::{HomeEnd, HomeReader};
    use crate::{Channel, Reader};
    use std::os::unix::net::UnixStream;

    /// The answer to a read of `reader`'s channel, which holds a value.
    fn read_now<T>(reader: Reader<T>) -> HomeReply
    where
        HomeReader<T>: HomeEnd,
    {
        HomeReader(reader).perform(Operation::Read { wait: Wait::Not })
    }

    fn poisoned<T: std::fmt::Debug>(reader: &Reader<T>) -> bool {
        matches!(
            reader.try_read(),
            Err(TryReadError::Channel(ChannelError::Poisoned { .. }))
        )
    }

    #[test]
    fn a_value_sent_is_kept_only_where_its_channel_takes_it_back_and_then_goes_back() {
        let (mut here, mut there) = Connection::shared_pair();
        let ordinary = Channel::<u32>::named_buffered("ordinary", 2);
        ordinary.writer().write(5).unwrap();
        let left = send_reply(&mut here, read_now(ordinary.reader())).unwrap();
        assert!(
            left.delivering.is_none(),
            "an ordinary channel keeps nothing"
        );
        let got = there.receive_with(|reply: OperationReply, value| {
            (
                matches!(reply, OperationReply::ValueFollowing),
                value.to_vec(),
            )
        });
        assert_eq!(got.unwrap(), (true, postcard::to_stdvec(&5u32).unwrap()));

        let queue = Channel::<String>::shared_by_clients("queue", 2);
        let (writer, reader) = (queue.writer(), queue.reader());
        writer.write("kept".to_string()).unwrap();
        let left = send_reply(&mut here, read_now(reader.clone())).unwrap();
        let (channel, kept) = left.delivering.expect("a shared channel keeps the value");
        // The reader dies without reading it: it goes back, ahead of later values.
        drop(there);
        assert!(here.peer_left_unread());
        writer.write("later".to_string()).unwrap();
        channel.take_back(&kept);
        assert_eq!(reader.try_read().unwrap(), "kept");
        assert_eq!(reader.try_read().unwrap(), "later");
    }

    /// A value whose encoding fails.
    #[derive(Debug, serde::Deserialize)]
    struct Unencodable;

    impl serde::Serialize for Unencodable {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom(
                "this value refuses to be encoded",
            ))
        }
    }

    #[test]
    fn a_value_that_cannot_be_encoded_is_answered_as_a_poisoned_channel() {
        let (mut here, mut there) = Connection::shared_pair();
        let channel = Channel::<Unencodable>::named_buffered("refusing", 2);
        channel.writer().write(Unencodable).unwrap();
        let left = send_reply(&mut here, read_now(channel.reader())).unwrap();
        assert!(left.delivering.is_none() && left.lent.is_none());
        let reply = there.receive::<OperationReply>().unwrap();
        assert!(
            matches!(reply, OperationReply::Failed(ChannelError::Poisoned { .. })),
            "{reply:?}"
        );
        assert!(poisoned(&channel.reader()));
        // Nothing of the half-made encoding went out: the next answer arrives whole.
        let next = Channel::<u64>::named_buffered("next", 1);
        next.writer().write(77).unwrap();
        send_reply(&mut here, read_now(next.reader())).unwrap();
        let value =
            there.receive_with(|_: OperationReply, value| postcard::from_bytes::<u64>(value));
        assert_eq!(value.unwrap().unwrap(), 77u64);
    }

    /// Counts the test as a thread that looks while it lives.
    struct LooksHere;

    impl LooksHere {
        fn start() -> LooksHere {
            LOOKING.fetch_add(1, Ordering::SeqCst);
            LooksHere
        }
    }

    impl Drop for LooksHere {
        fn drop(&mut self) {
            LOOKING.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn request(end: u64, operation: Operation) -> OperationRequest {
        OperationRequest { end, operation }
    }

    #[test]
    fn a_request_helpers_may_take_is_left_to_them_while_one_looks_until_they_leave_it() {
        let (here, mut there) = Connection::shared_pair();
        let mirror = Mirror::unlisted(here);
        let _looking = LooksHere::start();
        let read = Operation::Read {
            wait: Wait::Forever,
        };
        there.send(&request(u64::MAX, read)).unwrap();
        assert!(mirror.leaves_to_helpers(&mut lock(&mirror.connection)));
        // A helper cannot carry it out (no such end here): it leaves it to the mirror.
        mirror.help();
        let connection = &mut lock(&mirror.connection);
        assert!(!mirror.leaves_to_helpers(connection), "left to the mirror");
        let left: OperationRequest = connection.receive().unwrap();
        assert_eq!(left.end, u64::MAX, "and still there for it");
        mirror.serves(&left.operation);
        // Requests no helper takes are the mirror's at once.
        let timed = Operation::Read {
            wait: Wait::For(Duration::from_secs(1)),
        };
        for operation in [Operation::Poison, timed, Operation::WriteAhead] {
            there.send(&request(7, operation)).unwrap();
            assert!(!mirror.leaves_to_helpers(connection));
            let taken: OperationRequest = connection.receive().unwrap();
            mirror.serves(&taken.operation);
        }
        // Nor, in a stream of writes ahead, the request that asks for more slots.
        let asks = Operation::WriteFollowing {
            wait: Wait::Forever,
            ask_credit: true,
            plain: true,
        };
        there.send(&request(7, asks)).unwrap();
        assert!(!mirror.leaves_to_helpers(connection));
    }

    #[test]
    fn a_value_that_cannot_be_sent_goes_back_or_poisons_its_channel() {
        let (here, there) = UnixStream::pair().unwrap();
        drop(there);
        let mut here = Connection::new(here).unwrap();
        let queue = Channel::<u32>::shared_by_clients("queue", 2);
        queue.writer().write(1).unwrap();
        assert!(send_reply(&mut here, read_now(queue.reader())).is_err());
        assert_eq!(queue.reader().try_read().unwrap(), 1, "put back");

        let ordinary = Channel::<u32>::named_buffered("ordinary", 2);
        ordinary.writer().write(2).unwrap();
        assert!(send_reply(&mut here, read_now(ordinary.reader())).is_err());
        assert!(poisoned(&ordinary.reader()), "lost, and said so");
    }
}
