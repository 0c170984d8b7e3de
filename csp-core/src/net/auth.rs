//! Proving that a connection belongs to this network, before anything on it is decoded.
//!
//! Every network has a random 32-byte secret, handed to the OS processes it starts through
//! their environment. A connection is accepted only after a mutual HMAC-SHA256 challenge (as
//! Python's `multiprocessing` does with its authkey): each side sends a random nonce and proves
//! it knows the secret by returning the HMAC of the other side's nonce. The handshake messages
//! are fixed-size raw bytes, so nothing from an unauthenticated peer reaches a decoder.

use std::fmt;
use std::io::{self, Read, Write};

use hmac::{KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = hmac::Hmac<Sha256>;

const NONCE: usize = 32;
const TAG: usize = 32;
const MAGIC: &[u8; 8] = b"csp-net1";

/// A network's shared secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret([u8; 32]);

impl Secret {
    /// A fresh random secret.
    ///
    /// # Panics
    ///
    /// If the operating system has no randomness to give (it always has on Linux).
    pub fn random() -> Self {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the operating system's random source");
        Secret(bytes)
    }

    /// The secret as lowercase hex, for passing through the environment.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    /// Parses [`to_hex`](Secret::to_hex)'s output.
    pub fn from_hex(text: &str) -> Option<Self> {
        if text.len() != 64 {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Secret(bytes))
    }

    fn tag(&self, role: &[u8], nonce: &[u8; NONCE]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(MAGIC);
        mac.update(role);
        mac.update(nonce);
        mac
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Why a handshake failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The peer does not know this network's secret (or is not a csp peer at all).
    #[error("the peer failed to prove it belongs to this network")]
    Rejected,
    /// The transport failed or the peer went away mid-handshake.
    #[error("handshake transport error: {0}")]
    Io(#[from] io::Error),
}

fn nonce() -> [u8; NONCE] {
    let mut nonce = [0u8; NONCE];
    getrandom::fill(&mut nonce).expect("the operating system's random source");
    nonce
}

/// The accepting side's handshake. Set a read timeout on the stream first: a peer that says
/// nothing must not hold the acceptor.
///
/// # Errors
///
/// [`AuthError::Rejected`] if the peer's proof is wrong; [`AuthError::Io`] on transport
/// failure.
pub fn accept(stream: &mut (impl Read + Write), secret: &Secret) -> Result<(), AuthError> {
    let challenge = nonce();
    stream.write_all(MAGIC)?;
    stream.write_all(&challenge)?;
    stream.flush()?;
    let mut answer = [0u8; TAG + NONCE];
    stream.read_exact(&mut answer)?;
    let (tag, their_challenge) = answer.split_at(TAG);
    secret
        .tag(b"connect", &challenge)
        .verify_slice(tag)
        .map_err(|_| AuthError::Rejected)?;
    let their_challenge: [u8; NONCE] = their_challenge.try_into().expect("split at TAG");
    stream.write_all(
        &secret
            .tag(b"accept", &their_challenge)
            .finalize()
            .into_bytes(),
    )?;
    stream.flush()?;
    Ok(())
}

/// The connecting side's handshake.
///
/// # Errors
///
/// [`AuthError::Rejected`] if the acceptor is not a csp peer of this network;
/// [`AuthError::Io`] on transport failure (an acceptor that rejected us closes the stream).
pub fn connect(stream: &mut (impl Read + Write), secret: &Secret) -> Result<(), AuthError> {
    let mut hello = [0u8; 8 + NONCE];
    stream.read_exact(&mut hello)?;
    if &hello[..8] != MAGIC {
        return Err(AuthError::Rejected);
    }
    let challenge: [u8; NONCE] = hello[8..].try_into().expect("8 + NONCE bytes");
    let ours = nonce();
    stream.write_all(&secret.tag(b"connect", &challenge).finalize().into_bytes())?;
    stream.write_all(&ours)?;
    stream.flush()?;
    let mut proof = [0u8; TAG];
    stream.read_exact(&mut proof)?;
    secret
        .tag(b"accept", &ours)
        .verify_slice(&proof)
        .map_err(|_| AuthError::Rejected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;
    use std::thread;

    fn handshake(
        acceptor: Secret,
        connector: Secret,
    ) -> (Result<(), AuthError>, Result<(), AuthError>) {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        // Bounded: a handshake that waits for ever fails the test instead of hanging it.
        for stream in [&a, &b] {
            stream
                .set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
        }
        let accepting = thread::spawn(move || {
            let result = accept(&mut a, &acceptor);
            drop(a); // a rejected peer sees the connection close
            result
        });
        let connected = connect(&mut b, &connector);
        (accepting.join().unwrap(), connected)
    }

    #[test]
    fn the_same_secret_is_accepted_both_ways() {
        let secret = Secret::random();
        let (accepted, connected) = handshake(secret.clone(), secret);
        accepted.unwrap();
        connected.unwrap();
    }

    #[test]
    fn a_wrong_secret_is_rejected() {
        let (accepted, connected) = handshake(Secret::random(), Secret::random());
        assert!(matches!(accepted, Err(AuthError::Rejected)));
        assert!(connected.is_err());
    }

    #[test]
    fn a_peer_that_is_not_csp_is_rejected() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        b.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        thread::spawn(move || {
            let _ = a.write_all(b"GET / HTTP/1.1\r\n\r\n and then some more bytes......");
        });
        assert!(matches!(
            connect(&mut b, &Secret::random()),
            Err(AuthError::Rejected)
        ));
    }

    #[test]
    fn secrets_round_trip_through_hex_and_reject_garbage() {
        let secret = Secret::random();
        assert_eq!(Secret::from_hex(&secret.to_hex()), Some(secret));
        assert_eq!(Secret::from_hex("zz"), None);
        assert_eq!(Secret::from_hex(&"g".repeat(64)), None);
        assert_eq!(format!("{:?}", Secret::random()), "Secret(..)");
    }
}
