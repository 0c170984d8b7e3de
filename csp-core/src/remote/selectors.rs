//! Where a home reaches the OS processes whose alternations wait on its channels.

use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use super::{Links, connect, shared};
use crate::net::address::Address;
use crate::net::connection::Connection;
use crate::net::message::{Hello, SelectorAddress, SelectorRequest};
use crate::node::process_id;
use crate::wait::Principal;

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
