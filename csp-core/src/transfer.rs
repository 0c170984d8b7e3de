//! Channel ends as serde values: how an end crosses into another OS process.
//!
//! Serializing an end lends out a counted end at the channel's home (a *ticket*) and writes a
//! token naming the home, the ticket, the channel and a fingerprint of the end's side and
//! element type. Deserializing claims the ticket: back home it becomes a local end again;
//! elsewhere it becomes an end attached at the home. A fingerprint that does not match is
//! refused with an error naming the channel and both types, never read as garbage.
//!
//! Tickets live in a [`TicketScope`] until the receiver has certainly decoded the value that
//! carried them; tickets nobody claimed are then dropped, so that an end lost in transit does
//! not keep its side alive for ever. Ends are serialized only inside csp's own transfers (a
//! placed process's arguments or result, a value written to or read from a channel across OS
//! processes); anywhere else serialization fails with a clear error.

use std::any::Any;
use std::cell::RefCell;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::channel::{Reader, Writer};
use crate::error::ChannelName;
use crate::home::{HomeEnd, HomeReader, HomeWriter};
use crate::net::address::Address;
use crate::node::node;
use crate::remote::{Link, RemoteEnd};

/// The fingerprint of a reader (or writer) of `T`.
pub(crate) fn fingerprint<T>(side: &str) -> u64 {
    crate::registry::fingerprint(&format!("{side}<{}>", std::any::type_name::<T>()))
}

/// A ticket lent out while encoding a value.
enum Lent {
    Here(u64),
    Away { link: Arc<Link>, ticket: u64 },
}

thread_local! {
    static SCOPE: RefCell<Option<Vec<Lent>>> = const { RefCell::new(None) };
}

/// The tickets lent out by one transfer; dropping the scope drops those nobody claimed.
#[derive(Default)]
pub(crate) struct TicketScope {
    lent: Vec<Lent>,
}

impl TicketScope {
    /// Whether no end was lent in this transfer.
    pub(crate) fn is_empty(&self) -> bool {
        self.lent.is_empty()
    }

    /// Runs `encode`, collecting the tickets it lends out.
    pub(crate) fn collect<R>(encode: impl FnOnce() -> R) -> (R, TicketScope) {
        let outer = SCOPE.with(|scope| scope.borrow_mut().replace(Vec::new()));
        let result = encode();
        let lent = SCOPE.with(|scope| std::mem::replace(&mut *scope.borrow_mut(), outer));
        (
            result,
            TicketScope {
                lent: lent.unwrap_or_default(),
            },
        )
    }

    /// Records a ticket in the current transfer; outside one, takes it back and fails.
    fn record(lent: Lent) -> Result<(), String> {
        let unrecorded = SCOPE.with(|scope| match scope.borrow_mut().as_mut() {
            Some(scope) => {
                scope.push(lent);
                None
            }
            None => Some(lent),
        });
        match unrecorded {
            None => Ok(()),
            Some(lent) => {
                drop(TicketScope { lent: vec![lent] });
                Err(OUTSIDE.to_string())
            }
        }
    }
}

impl Drop for TicketScope {
    fn drop(&mut self) {
        for lent in self.lent.drain(..) {
            match lent {
                Lent::Here(ticket) => drop(node().take_ticket(ticket)),
                Lent::Away { link, ticket } => {
                    link.tell(&crate::net::message::SessionRequest::DropTicket { ticket });
                }
            }
        }
    }
}

/// What a serialized end looks like on the wire.
#[derive(Serialize, Deserialize)]
struct EndToken {
    home: Address,
    ticket: u64,
    fingerprint: u64,
    channel: ChannelName,
    /// The sender's end type, for error messages: `Reader<u32>`.
    carries: String,
}

thread_local! {
    static LAST_ERROR: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Keeps the message of a failed (de)serialization so that [`explain`] can recover it:
/// postcard reports custom errors without their text.
fn remember(message: String) -> String {
    LAST_ERROR.with(|last| *last.borrow_mut() = Some(message.clone()));
    message
}

/// The full text of a postcard error, including what an end's (de)serialization said.
pub(crate) fn explain(error: &postcard::Error) -> String {
    match error {
        postcard::Error::SerdeSerCustom | postcard::Error::SerdeDeCustom => LAST_ERROR
            .with(|last| last.borrow_mut().take())
            .unwrap_or_else(|| error.to_string()),
        _ => error.to_string(),
    }
}

const OUTSIDE: &str = "channel ends can only be serialized by csp's own transfers (a placed \
                       process's arguments or result, or a value on a channel between OS processes)";

/// Lends out `end` (a local end of a channel homed here) and returns its token.
fn lend_here(end: Box<dyn HomeEnd>, channel: &ChannelName, side: &str) -> Result<EndToken, String> {
    let fingerprint = end.fingerprint();
    let carries = format!("{side}<{}>", end.type_name());
    let (ticket, home) = node()
        .lend(end, None)
        .map_err(|error| format!("cannot lend channel {channel}: {error}"))?;
    TicketScope::record(Lent::Here(ticket))?;
    Ok(EndToken {
        home,
        ticket,
        fingerprint,
        channel: channel.clone(),
        carries,
    })
}

/// Lends out another end of a remote end's side, at its home.
fn lend_away(remote: &RemoteEnd, fingerprint: u64, carries: String) -> Result<EndToken, String> {
    let ticket = remote.link().lend(remote.end())?;
    let link = Arc::clone(remote.link());
    let home = link.address().clone();
    TicketScope::record(Lent::Away { link, ticket })?;
    Ok(EndToken {
        home,
        ticket,
        fingerprint,
        channel: remote.name().clone(),
        carries,
    })
}

/// Claims a token: the local end if the channel lives here, else an end attached at its home.
fn claim(token: &EndToken) -> Result<Result<Box<dyn Any>, RemoteEnd>, String> {
    if node().is_at(&token.home) {
        let end = node()
            .take_ticket(token.ticket)
            .ok_or_else(|| format!("channel {}: the end was claimed already", token.channel))?
            .into_end();
        if end.fingerprint() != token.fingerprint {
            return Err(format!(
                "channel {} carries `{}`, not the type this end expects",
                token.channel,
                end.type_name()
            ));
        }
        return Ok(Ok(end.into_any()));
    }
    let link = Link::to(&token.home)
        .map_err(|error| format!("channel {}: cannot reach its home: {error}", token.channel))?;
    let end = link.attach(token.ticket, token.fingerprint)?;
    Ok(Err(RemoteEnd::new(link, end, token.channel.clone())))
}

macro_rules! end_serde {
    ($end:ident, $home:ident, $side:literal) => {
        impl<T: Serialize + DeserializeOwned + Send + 'static> Serialize for $end<T> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let token = match self.as_remote() {
                    None => lend_here(Box::new($home::new(self.clone())), self.name(), $side),
                    Some(remote) => lend_away(
                        remote,
                        fingerprint::<T>($side),
                        format!("{}<{}>", $side, std::any::type_name::<T>()),
                    ),
                };
                token
                    .map_err(remember)
                    .map_err(serde::ser::Error::custom)?
                    .serialize(serializer)
            }
        }

        impl<'de, T: Serialize + DeserializeOwned + Send + 'static> Deserialize<'de> for $end<T> {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let token = EndToken::deserialize(deserializer)?;
                check(
                    &token,
                    fingerprint::<T>($side),
                    $side,
                    std::any::type_name::<T>(),
                )
                .map_err(remember)
                .map_err(serde::de::Error::custom)?;
                match claim(&token)
                    .map_err(remember)
                    .map_err(serde::de::Error::custom)?
                {
                    Ok(local) => local
                        .downcast::<$home<T>>()
                        .map(|home| home.0)
                        .map_err(|_| serde::de::Error::custom("a channel end of another type")),
                    Err(remote) => Ok($end::from_remote(remote)),
                }
            }
        }
    };
}

end_serde!(Reader, HomeReader, "Reader");
end_serde!(Writer, HomeWriter, "Writer");

/// The token's fingerprint must be the one this end's type expects.
fn check(token: &EndToken, expected: u64, side: &str, type_name: &str) -> Result<(), String> {
    if token.fingerprint == expected {
        return Ok(());
    }
    Err(format!(
        "channel {} sent a {}, but it is received as a {side}<{type_name}>",
        token.channel, token.carries
    ))
}
