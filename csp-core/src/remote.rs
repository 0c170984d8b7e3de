//! Channel ends whose channel lives in another OS process.
//!
//! A [`RemoteEnd`] stands for an end attached at the channel's home. This OS process keeps
//! one *session* connection to each home (attach, clone, lend, detach), and each thread keeps
//! one *operations* connection to each home it uses, so that a blocking read on one thread
//! never holds up another. A home that cannot be reached any more behaves as a poisoned
//! channel: the operation fails at once with [`ChannelError::Poisoned`].
//!
//! # Writes ahead
//!
//! Each operation waits for its answer, except in a *burst*: a thread that writes one end of
//! a buffered channel with blocking writes, twice in a row, asks the home for slots, and the
//! home reserves up to half the buffer (at most 64 values) for this end. The writes that
//! follow go out as frames with no answer (`Operation::WriteAhead`) while slots last, and the
//! next ordinary write asks for more. A write ahead returns before its value is in the
//! buffer, so the burst ends, before anything else this thread does on a channel, when its
//! process, a task's poll or the thread ends, and when the end is dropped: the unused slots go
//! back (`ReturnCredit`) and, unless the next operation travels on the same connection (which
//! the home serves in order), the thread waits for a `Sync` answer, proof that every value is
//! in the buffer. A detach carries the number of writes ahead sent through the end, and the
//! home waits for them before it drops the end; a dead process's operations connections are
//! drained before its ends are dropped. Values with channel ends inside, timed and
//! non-blocking writes, and rendezvous channels are never written ahead.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use crate::channel::ChannelControl;
use crate::channel::core::Side;
use crate::deadlock::{self, Waiting};
use crate::error::{ChannelError, ChannelName};
use crate::net::address::Address;
use crate::net::auth;
use crate::net::connection::Connection;
use crate::net::encoder::Encoder;
use crate::net::message::Wait;
use crate::net::message::{
    Hello, Operation, OperationReply, OperationRequest, SelectorAddress, SelectorRequest,
    SessionReply, SessionRequest,
};
use crate::node::{process_id, secret};
use crate::transfer::TicketScope;
use crate::wait::Principal;

/// One shared value per address, alive while anyone uses it.
type Links<T> = OnceLock<Mutex<HashMap<Address, Weak<T>>>>;

/// The value for `address` in `links`, made by `make` if nobody holds one now.
fn shared<T>(
    links: &'static Links<T>,
    address: &Address,
    make: impl FnOnce() -> io::Result<T>,
) -> io::Result<Arc<T>> {
    let mut links = links
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(link) = links.get(address).and_then(Weak::upgrade) {
        return Ok(link);
    }
    let link = Arc::new(make()?);
    links.retain(|_, link| link.strong_count() > 0);
    links.insert(address.clone(), Arc::downgrade(&link));
    Ok(link)
}

/// This OS process's session with one home.
pub(crate) struct Link {
    address: Address,
    session: Mutex<Connection>,
}

/// How long a peer may take to answer the handshake.
const HANDSHAKE_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

fn connect(address: &Address, hello: &Hello) -> io::Result<Connection> {
    let mut stream = address.connect()?;
    stream.set_read_timeout(Some(HANDSHAKE_LIMIT))?;
    stream.set_write_timeout(Some(HANDSHAKE_LIMIT))?;
    auth::connect(&mut stream, secret()).map_err(io::Error::other)?;
    stream.set_read_timeout(None)?;
    stream.set_write_timeout(None)?;
    let mut connection = Connection::new(stream)?;
    connection.send(hello).map_err(io::Error::other)?;
    Ok(connection)
}

impl Link {
    /// The session with the home at `address`, made on first use.
    pub(crate) fn to(address: &Address) -> io::Result<Arc<Link>> {
        static LINKS: Links<Link> = OnceLock::new();
        shared(&LINKS, address, || {
            let hello = Hello::Session {
                process: process_id(),
            };
            Ok(Link {
                address: address.clone(),
                session: Mutex::new(connect(address, &hello)?),
            })
        })
    }

    pub(crate) fn address(&self) -> &Address {
        &self.address
    }

    fn call(&self, request: &SessionRequest) -> Result<SessionReply, String> {
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        session.send(request).map_err(|error| error.to_string())?;
        session.receive().map_err(|error| error.to_string())
    }

    /// Sends a request that has no answer; a home that is gone needs no telling.
    pub(crate) fn tell(&self, request: &SessionRequest) {
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let _ = session.send(request);
    }

    fn expect_end(reply: Result<SessionReply, String>) -> Result<u64, String> {
        match reply? {
            SessionReply::Attached { end } => Ok(end),
            SessionReply::Ticket { ticket } => Err(format!("unexpected ticket {ticket}")),
            SessionReply::Refused { reason } => Err(reason),
        }
    }

    /// Claims a ticket lent out at this home.
    pub(crate) fn attach(&self, ticket: u64, fingerprint: u64) -> Result<u64, String> {
        Self::expect_end(self.call(&SessionRequest::Attach {
            ticket,
            fingerprint,
        }))
    }

    /// Lends out another end of the same side as `end`.
    pub(crate) fn lend(&self, end: u64) -> Result<u64, String> {
        match self.call(&SessionRequest::Ticket { end })? {
            SessionReply::Ticket { ticket } => Ok(ticket),
            SessionReply::Attached { .. } => Err("unexpected answer".into()),
            SessionReply::Refused { reason } => Err(reason),
        }
    }

    /// Carries out an operation on `end` over this thread's operations connection.
    fn operate(
        &self,
        end: u64,
        operation: Operation,
        waiting: Option<Waiting>,
    ) -> Option<OperationReply> {
        self.operate_with(end, operation, &[], waiting, |reply, payload| match reply {
            OperationReply::ValueFollowing => OperationReply::Value(payload.to_vec()),
            reply => reply,
        })
    }

    /// As [`operate`](Link::operate), sending `payload` after the request in the same frame,
    /// and handing the reply to `use_reply` with the payload that followed it (borrowed from
    /// the connection's buffer: decode it there, no copy). An operation that may wait for
    /// ever counts, while it waits, as the current actor blocked on `waiting`.
    fn operate_with<R>(
        &self,
        end: u64,
        operation: Operation,
        payload: &[u8],
        waiting: Option<Waiting>,
        use_reply: impl FnOnce(OperationReply, &[u8]) -> R,
    ) -> Option<R> {
        CONNECTIONS.with(|connections| {
            let mut connections = in_use(connections);
            // A burst of writes ahead ends with any operation but the next write of the same
            // end; the values are carried out first (see `flush_writes_ahead`).
            let continues = matches!(operation, Operation::WriteFollowing { .. });
            connections.end_burst_unless(&self.address, end, continues);
            let ops = connections.to(&self.address)?;
            let request = OperationRequest { end, operation };
            let sent = ops.send_with_payload(&request, payload).ok();
            let waiting = waiting.map(|waiting| (waiting, ops.interrupt()));
            let reply =
                sent.and_then(|()| deadlock::away(waiting, || ops.receive_with(use_reply).ok()));
            if reply.is_none() {
                connections.lose(&self.address);
            }
            reply
        })
    }

    /// Writes a value to `end`, `encode` encoding it straight into the request's frame (see
    /// [`Connection::send_encoding`]): ahead, without an answer, into a slot of this
    /// thread's burst if the value is plain (no channel ends inside), the write waits for
    /// ever and a slot is left; otherwise as a `WriteFollowing`, whose answer it returns.
    fn write_encoding(
        &self,
        end: u64,
        wait: Wait,
        waiting: Option<Waiting>,
        encode: impl FnOnce(&mut Encoder<'_>) -> postcard::Result<()>,
    ) -> Written {
        CONNECTIONS.with(|connections| {
            let mut connections = in_use(connections);
            connections.end_burst_unless(&self.address, end, true);
            // A burst left is this end's.
            let (credit, asks) = connections.burst.as_ref().map_or((0, false), |burst| {
                (burst.credit, burst.asking || burst.credit == 0)
            });
            let blocking = matches!(wait, Wait::Forever);
            let ahead = |lent: &TicketScope| blocking && lent.is_empty() && credit > 0;
            let Some(ops) = connections.to(&self.address) else {
                return Written::Unreachable;
            };
            let sent = ops.send_encoding(
                |encoder| TicketScope::collect(|| encode(encoder)),
                |(encoded, lent)| {
                    let plain = lent.is_empty();
                    let operation = if ahead(lent) {
                        Operation::WriteAhead
                    } else {
                        Operation::WriteFollowing {
                            wait,
                            ask_credit: blocking && plain && asks,
                            plain,
                        }
                    };
                    encoded
                        .is_ok()
                        .then_some(OperationRequest { end, operation })
                },
            );
            let lent = match sent {
                Ok(((Err(error), _), _)) => return Written::NotEncoded(error),
                Ok(((Ok(()), lent), true)) => lent,
                Ok((_, false)) | Err(_) => {
                    connections.lose(&self.address);
                    return Written::Unreachable;
                }
            };
            if ahead(&lent) {
                if let Some(burst) = &mut connections.burst {
                    burst.credit -= 1;
                    burst.unsettled = true;
                }
                return Written::Ahead;
            }
            let streams = blocking && lent.is_empty();
            let waiting = waiting.map(|waiting| (waiting, ops.interrupt()));
            let reply = deadlock::away(waiting, || {
                ops.receive_with(|reply: OperationReply, _| reply).ok()
            });
            // Ends inside the value were lent until the home decoded it, that is, answered.
            drop(lent);
            match reply {
                Some(reply) => Written::Answered { reply, streams },
                None => {
                    connections.lose(&self.address);
                    Written::Unreachable
                }
            }
        })
    }
}

/// How a write sent straight from its encoding went (see `Link::write_encoding`).
pub(crate) enum Written {
    /// The value could not be encoded: nothing was sent.
    NotEncoded(postcard::Error),
    /// The home could not be reached.
    Unreachable,
    /// Sent ahead into a slot of the thread's burst: no answer comes.
    Ahead,
    /// The home's answer; `streams` if the write was blocking and its value plain, one
    /// that may go on as a burst.
    Answered {
        reply: OperationReply,
        streams: bool,
    },
}

/// A thread's writes ahead into the buffer of one channel in another OS process: slots
/// the home reserved for it, filled without waiting for an answer while the thread does
/// nothing but write that end.
struct Burst {
    address: Address,
    end: u64,
    /// Slots left.
    credit: u32,
    /// Writes ahead were sent since the last answer on the connection.
    unsettled: bool,
    /// The thread has written this end the usual way at least once in a row: it asks for
    /// slots with its next write.
    asking: bool,
}

/// A thread's operations connections, one per home it uses (a few: looked up by comparing
/// addresses, cheaper than hashing them on every operation), and its burst.
#[derive(Default)]
struct ThreadConnections {
    open: Vec<(Address, Connection)>,
    burst: Option<Burst>,
}

impl ThreadConnections {
    /// The connection to the home at `address`, made on first use.
    fn to(&mut self, address: &Address) -> Option<&mut Connection> {
        let at = match self.open.iter().position(|(open, _)| open == address) {
            Some(at) => at,
            None => {
                let hello = Hello::Operations {
                    process: process_id(),
                };
                let mut connection = connect(address, &hello).ok()?;
                connection.offer_shared_memory().ok()?;
                self.open.push((address.clone(), connection));
                self.open.len() - 1
            }
        };
        Some(&mut self.open[at].1)
    }

    /// Drops the connection to `address` (it failed).
    fn close(&mut self, address: &Address) {
        self.open.retain(|(open, _)| open != address);
    }

    /// Drops the connection to `address`, which failed in an operation, and the burst.
    fn lose(&mut self, address: &Address) {
        self.close(address);
        self.burst = None;
        BURSTING.with(|bursting| bursting.set(false));
    }

    /// Ends the burst unless the next operation is a write of its end (`continues`): gives
    /// back the slots left, and, if the next operation goes to another home (or to none),
    /// waits until the writes ahead were carried out.
    fn end_burst_unless(&mut self, address: &Address, end: u64, continues: bool) {
        let Some(burst) = &self.burst else {
            return;
        };
        if continues && burst.end == end && &burst.address == address {
            return;
        }
        self.end_burst(Some(address));
    }

    /// Ends the burst (see [`end_burst_unless`](Self::end_burst_unless)); `next` is the
    /// home of the operation to come, if any.
    fn end_burst(&mut self, next: Option<&Address>) {
        BURSTING.with(|bursting| bursting.set(false));
        let Some(burst) = self.burst.take() else {
            return;
        };
        let Some((_, connection)) = self
            .open
            .iter_mut()
            .find(|(open, _)| *open == burst.address)
        else {
            return;
        };
        let mut ok = true;
        if burst.credit > 0 {
            let request = OperationRequest {
                end: burst.end,
                operation: Operation::ReturnCredit {
                    count: burst.credit,
                },
            };
            ok = connection.send(&request).is_ok();
        }
        // The next operation on the same connection is carried out after them anyway.
        if ok && burst.unsettled && next != Some(&burst.address) {
            let request = OperationRequest {
                end: burst.end,
                operation: Operation::Sync,
            };
            ok = connection
                .send(&request)
                .ok()
                .and_then(|()| connection.receive::<OperationReply>().ok())
                .is_some();
        }
        if !ok {
            self.close(&burst.address);
        }
    }
}

impl Drop for ThreadConnections {
    fn drop(&mut self) {
        // A thread that ends has its writes ahead carried out before it is gone, so that
        // whoever joins it sees them done.
        self.end_burst(None);
    }
}

/// This thread's connections, for one operation. A value's `Serialize` or `Deserialize`
/// runs while its operation uses them, so a channel operation made from inside one, on a
/// channel in another OS process, would use them twice: it is refused with a panic that
/// says so.
fn in_use(connections: &RefCell<ThreadConnections>) -> std::cell::RefMut<'_, ThreadConnections> {
    connections.try_borrow_mut().unwrap_or_else(|_| {
        panic!(
            "csp: a channel operation on a channel in another OS process was made from inside \
             the Serialize or Deserialize of a value that this thread is sending to or \
             receiving from another OS process; channel operations cannot be nested in an \
             encoding"
        )
    })
}

thread_local! {
    static CONNECTIONS: RefCell<ThreadConnections> = RefCell::new(ThreadConnections::default());
    /// Whether this thread has a burst of writes ahead (a cheap look for every operation).
    static BURSTING: Cell<bool> = const { Cell::new(false) };
}

/// Ends this thread's burst of writes ahead, if it has one: the slots left go back, and the
/// values written ahead (sent to a buffered channel in another OS process without waiting
/// for an answer) are carried out at their home before this returns.
///
/// A write ahead returns before its value is in the channel's buffer. Every other channel
/// operation of the same thread, the end of a process, of a task's poll and of a thread end
/// the burst first, so nothing can learn that the write returned before its value is in
/// the buffer; and a burst never outlives what the thread learns from elsewhere. It costs
/// one thread-local look when there is no burst.
pub(crate) fn flush_writes_ahead() {
    if !BURSTING.with(Cell::get) {
        return;
    }
    // A thread whose connections are being torn down has nothing left to settle.
    let _ = CONNECTIONS.try_with(|connections| {
        if let Ok(mut connections) = connections.try_borrow_mut() {
            connections.end_burst(None);
        }
    });
}

/// How many writes this OS process sent ahead (for tests).
static SENT_AHEAD: AtomicU64 = AtomicU64::new(0);

/// How many writes to channels in other OS processes this OS process sent ahead, without
/// waiting for an answer (for tests).
#[doc(hidden)]
pub fn writes_sent_ahead() -> u64 {
    SENT_AHEAD.load(Ordering::Relaxed)
}

/// An end attached at a channel's home in another OS process.
pub(crate) struct RemoteEnd {
    link: Arc<Link>,
    end: u64,
    name: ChannelName,
    /// Writes ahead sent, for the home to wait for before it detaches the end.
    ahead: AtomicU64,
}

impl RemoteEnd {
    pub(crate) fn new(link: Arc<Link>, end: u64, name: ChannelName) -> Self {
        RemoteEnd {
            link,
            end,
            name,
            ahead: AtomicU64::new(0),
        }
    }

    /// A blocking write of a plain value was carried out the usual way, and the home
    /// reserved `granted` slots (perhaps none): this thread's burst on this end goes on.
    pub(crate) fn wrote(&self, granted: u32) {
        CONNECTIONS.with(|connections| {
            let mut connections = in_use(connections);
            let burst = connections.burst.get_or_insert_with(|| Burst {
                address: self.link.address.clone(),
                end: self.end,
                credit: 0,
                unsettled: false,
                asking: false,
            });
            burst.credit += granted;
            burst.unsettled = false; // the answer came after every write ahead before it
            burst.asking = true;
        });
        BURSTING.with(|bursting| bursting.set(true));
    }

    /// Writes a value, `encode` encoding it straight into the request (see
    /// `Link::write_encoding`): ahead, into a slot of this thread's burst, or the usual way.
    /// A home that cannot be reached, or answers that it does not know the end, is a
    /// poisoned channel.
    pub(crate) fn write_encoding(
        &self,
        wait: Wait,
        encode: impl FnOnce(&mut Encoder<'_>) -> postcard::Result<()>,
    ) -> Written {
        let waiting = matches!(wait, Wait::Forever).then(|| Waiting::Write(self.name.clone()));
        match self.link.write_encoding(self.end, wait, waiting, encode) {
            Written::Ahead => {
                self.ahead.fetch_add(1, Ordering::AcqRel);
                SENT_AHEAD.fetch_add(1, Ordering::Relaxed);
                Written::Ahead
            }
            Written::Answered {
                reply: OperationReply::Unknown,
                ..
            }
            | Written::Unreachable => Written::Answered {
                reply: OperationReply::Failed(self.poisoned()),
                streams: false,
            },
            written => written,
        }
    }

    pub(crate) fn link(&self) -> &Arc<Link> {
        &self.link
    }

    pub(crate) fn end(&self) -> u64 {
        self.end
    }

    pub(crate) fn name(&self) -> &ChannelName {
        &self.name
    }

    /// Another end of the same side, attached at the home. If the home is gone, the copy is
    /// as dead as the original: every operation on it fails as poisoned.
    pub(crate) fn duplicate(&self) -> RemoteEnd {
        let end = Link::expect_end(self.link.call(&SessionRequest::CloneEnd { end: self.end }))
            .unwrap_or(0);
        RemoteEnd::new(Arc::clone(&self.link), end, self.name.clone())
    }

    /// Carries out `operation` at the home. A home that cannot be reached is a poisoned
    /// channel.
    pub(crate) fn operate(&self, operation: Operation) -> OperationReply {
        let waiting = self.waiting(&operation);
        match self.link.operate(self.end, operation, waiting) {
            Some(OperationReply::Unknown) | None => OperationReply::Failed(self.poisoned()),
            Some(reply) => reply,
        }
    }

    /// As [`operate`](RemoteEnd::operate), with a payload after the request, and the reply
    /// used with the payload after it (see `Link::operate_with`).
    pub(crate) fn operate_with<R>(
        &self,
        operation: Operation,
        payload: &[u8],
        use_reply: impl FnOnce(OperationReply, &[u8]) -> R,
    ) -> R {
        let mut use_reply = Some(use_reply);
        let waiting = self.waiting(&operation);
        let used = self
            .link
            .operate_with(self.end, operation, payload, waiting, |reply, rest| {
                let use_reply = use_reply.take().expect("used once");
                match reply {
                    OperationReply::Unknown => {
                        use_reply(OperationReply::Failed(self.poisoned()), rest)
                    }
                    reply => use_reply(reply, rest),
                }
            });
        match (used, use_reply) {
            (Some(used), _) => used,
            (None, Some(use_reply)) => use_reply(OperationReply::Failed(self.poisoned()), &[]),
            (None, None) => unreachable!("a reply that was used is returned"),
        }
    }

    /// What an operation that may wait for ever waits on, for the deadlock monitor.
    fn waiting(&self, operation: &Operation) -> Option<Waiting> {
        match operation {
            Operation::Read {
                wait: Wait::Forever,
            } => Some(Waiting::Read(self.name.clone())),
            Operation::Write {
                wait: Wait::Forever,
                ..
            }
            | Operation::WriteFollowing {
                wait: Wait::Forever,
                ..
            }
            | Operation::WriteThenRead { .. } => Some(Waiting::Write(self.name.clone())),
            _ => None,
        }
    }

    pub(crate) fn poisoned(&self) -> ChannelError {
        ChannelError::Poisoned {
            channel: self.name.clone(),
        }
    }
}

impl Drop for RemoteEnd {
    fn drop(&mut self) {
        flush_writes_ahead();
        self.link.tell(&SessionRequest::Detach {
            end: self.end,
            ahead: *self.ahead.get_mut(),
        });
    }
}

impl fmt::Debug for RemoteEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteEnd")
            .field("channel", &self.name.as_str())
            .field("home", &self.link.address)
            .field("end", &self.end)
            .finish()
    }
}

/// Poisons a remote end's channel without owning the end (it detaches nothing when dropped).
pub(crate) struct RemoteControl {
    link: Arc<Link>,
    end: u64,
    name: ChannelName,
}

impl RemoteEnd {
    /// A handle that can poison this end's channel, for poison propagation.
    pub(crate) fn control(&self) -> RemoteControl {
        RemoteControl {
            link: Arc::clone(&self.link),
            end: self.end,
            name: self.name.clone(),
        }
    }
}

impl ChannelControl for RemoteControl {
    fn poison_from(&self, _: Side) -> bool {
        matches!(
            self.link.operate(self.end, Operation::Poison, None),
            Some(OperationReply::Done)
        )
    }

    fn channel_name(&self) -> &ChannelName {
        &self.name
    }
}

/// A connection from this home to an OS process whose alternations wait on its channels,
/// made on first use and made again after a failure.
struct SelectorLink {
    address: Address,
    stream: Mutex<Option<Connection>>,
}

impl SelectorLink {
    fn to(address: &Address) -> Arc<SelectorLink> {
        static LINKS: Links<SelectorLink> = OnceLock::new();
        let made = shared(&LINKS, address, || {
            Ok(SelectorLink {
                address: address.clone(),
                stream: Mutex::new(None),
            })
        });
        made.expect("making a selector link does not fail")
    }

    /// Sends `request` (connecting first if needed) and, for a claim, reads the answer. A
    /// process that cannot be reached has no alternation to claim: the claim fails.
    fn ask(&self, request: &SelectorRequest) -> bool {
        let mut stream = self.stream.lock().unwrap_or_else(|p| p.into_inner());
        if stream.is_none() {
            let hello = Hello::Selectors {
                process: process_id(),
            };
            *stream = connect(&self.address, &hello).ok();
        }
        let Some(connection) = stream.as_mut() else {
            return false;
        };
        let answer = match request {
            SelectorRequest::Claim { .. } => connection
                .send(request)
                .ok()
                .and_then(|()| connection.receive::<bool>().ok()),
            SelectorRequest::Recheck { .. } => connection.send(request).ok().map(|()| false),
        };
        if answer.is_none() {
            *stream = None;
        }
        answer.unwrap_or(false)
    }
}

/// What a proxy selector stands for: a selector in another OS process, in one round.
pub(crate) struct Claimant {
    link: Arc<SelectorLink>,
    id: u64,
    round: u64,
}

impl Claimant {
    pub(crate) fn new(address: SelectorAddress) -> Self {
        Claimant {
            link: SelectorLink::to(&address.home),
            id: address.id,
            round: address.round,
        }
    }
}

impl fmt::Debug for Claimant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Claimant")
            .field("id", &self.id)
            .field("round", &self.round)
            .finish_non_exhaustive()
    }
}

impl Principal for Claimant {
    fn claim(&self, guard: usize) -> bool {
        self.link.ask(&SelectorRequest::Claim {
            id: self.id,
            round: self.round,
            guard: guard as u64,
        })
    }

    fn recheck(&self) {
        self.link.ask(&SelectorRequest::Recheck {
            id: self.id,
            round: self.round,
        });
    }
}
