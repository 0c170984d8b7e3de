//! Channel ends whose channel lives in another OS process.
//!
//! A [`RemoteEnd`] stands for an end attached at the channel's home. This OS process keeps
//! one *session* connection to each home (attach, clone, lend, detach), and each thread keeps
//! one *operations* connection to each home it uses, so that a blocking read on one thread
//! never holds up another. A home that cannot be reached any more behaves as a poisoned
//! channel: the operation fails at once with [`ChannelError::Poisoned`].

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use crate::channel::ChannelControl;
use crate::channel::core::Side;
use crate::deadlock::{self, Waiting};
use crate::error::{ChannelError, ChannelName};
use crate::net::address::Address;
use crate::net::auth;
use crate::net::connection::Connection;
use crate::net::message::Wait;
use crate::net::message::{
    Hello, Operation, OperationReply, OperationRequest, SelectorAddress, SelectorRequest,
    SessionReply, SessionRequest,
};
use crate::node::{process_id, secret};
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
        thread_local! {
            static CONNECTIONS: RefCell<HashMap<Address, Connection>> =
                RefCell::new(HashMap::new());
        }
        CONNECTIONS.with(|connections| {
            let mut connections = connections.borrow_mut();
            if !connections.contains_key(&self.address) {
                let hello = Hello::Operations {
                    process: process_id(),
                };
                let mut connection = connect(&self.address, &hello).ok()?;
                connection.offer_shared_memory().ok()?;
                connections.insert(self.address.clone(), connection);
            }
            let connection = connections.get_mut(&self.address)?;
            let request = OperationRequest { end, operation };
            let sent = connection.send_with_payload(&request, payload).ok();
            let waiting = waiting.map(|waiting| (waiting, connection.interrupt()));
            let reply = sent
                .and_then(|()| deadlock::away(waiting, || connection.receive_with(use_reply).ok()));
            if reply.is_none() {
                connections.remove(&self.address);
            }
            reply
        })
    }
}

/// An end attached at a channel's home in another OS process.
pub(crate) struct RemoteEnd {
    link: Arc<Link>,
    end: u64,
    name: ChannelName,
}

impl RemoteEnd {
    pub(crate) fn new(link: Arc<Link>, end: u64, name: ChannelName) -> Self {
        RemoteEnd { link, end, name }
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
        self.link.tell(&SessionRequest::Detach { end: self.end });
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
