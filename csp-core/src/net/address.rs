//! Where a node of the network can be reached.
//!
//! Every place the protocol names a node (a channel's home in an end's token, where an
//! alternation's selector can be claimed, where a child reports) it uses an [`Address`]. Today
//! every node is on this host, behind a Unix socket; a TCP variant for other hosts adds a
//! variant here and a branch in [`Address::connect`], not a new protocol.

use std::fmt;
use std::io;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where a node listens.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) enum Address {
    /// A Unix socket on this host.
    Unix(PathBuf),
}

impl Address {
    /// Opens a connection to the node (before the handshake).
    pub(crate) fn connect(&self) -> io::Result<UnixStream> {
        match self {
            Address::Unix(path) => UnixStream::connect(path),
        }
    }

    /// The address as one line of text, for the environment of a child.
    pub(crate) fn to_text(&self) -> String {
        match self {
            Address::Unix(path) => format!("unix:{}", path.display()),
        }
    }

    /// Parses [`to_text`](Address::to_text)'s output.
    pub(crate) fn from_text(text: &str) -> Option<Address> {
        text.strip_prefix("unix:")
            .map(|path| Address::Unix(PathBuf::from(path)))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_through_text_and_reject_unknown_kinds() {
        let address = Address::Unix(PathBuf::from("/tmp/csp-x/y"));
        assert_eq!(Address::from_text(&address.to_text()), Some(address));
        assert_eq!(Address::from_text("tcp:10.0.0.1:80"), None);
    }
}
