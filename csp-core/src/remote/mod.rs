//! Channel ends whose channel lives in another OS process.
//!
//! A [`RemoteEnd`] stands for an end attached at the channel's home. This OS process keeps
//! one *session* connection to each home (attach, clone, lend, detach), and each thread keeps
//! one *operations* connection to each home it uses, so that a blocking read on one thread
//! never holds up another. A home that cannot be reached any more behaves as a poisoned
//! channel: the operation fails at once with [`ChannelError::Poisoned`].
//!
//! This file holds the ends and the session; `operations` the threads' operations
//! connections and their writes ahead (bursts); `selectors` the way a home claims an
//! alternation waiting in another OS process.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use crate::channel::ChannelControl;
use crate::channel::core::Side;
use crate::deadlock::Waiting;
use crate::error::{ChannelError, ChannelName};
use crate::net::address::Address;
use crate::net::auth;
use crate::net::connection::Connection;
use crate::net::message::Wait;
use crate::net::message::{Hello, Operation, OperationReply, SessionReply, SessionRequest};
use crate::node::{process_id, secret};

mod operations;
mod selectors;

pub use operations::writes_sent_ahead;
pub(crate) use operations::{Written, flush_writes_ahead};
pub(crate) use selectors::Claimant;

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
