//! One authenticated connection: messages in and out, at most one system call per frame in
//! the common case, or none once the connection moved to shared memory.
//!
//! A connection starts on its Unix socket. Reading goes through a buffer, so a small frame's
//! header and body arrive together; writing encodes the message straight after a reserved
//! length prefix and sends the frame with one write. Both buffers are kept and re-used.
//! Connections that carry channel operations (the hot path) then move their frames to a
//! [`SharedStream`], keeping the socket only to sleep on and to notice a dead peer. There a
//! value travels encoded straight into the frame that carries it
//! ([`send_encoding`](Connection::send_encoding)), and is decoded where the frame lies.

use std::io::{self, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::encoder::Encoder;
use super::frame::{self, DEFAULT_FRAME_LIMIT, FrameError};
use super::message::MessageError;
use super::shared_memory::{self, SharedStream};
use crate::deadlock::Interrupt;

/// How much a connection reads ahead.
const READ_AHEAD: usize = 64 << 10;

/// The largest frame buffer a connection keeps for the next message. Buffers this large come
/// straight from the operating system, fresh pages each time: a 1 MiB message paid about 256
/// page faults per buffer per message when its buffers were dropped after each use.
const KEPT_BUFFER: usize = 8 << 20;

/// What carries a connection's frames.
enum Transport {
    Socket {
        reader: BufReader<UnixStream>,
        writer: UnixStream,
    },
    Shared(SharedStream),
}

/// A connection after its handshake.
pub(crate) struct Connection {
    transport: Transport,
    inbox: Vec<u8>,
    outbox: Vec<u8>,
    /// Shuts the socket down from another thread (made once: handed out for every wait).
    interrupt: Interrupt,
}

impl Connection {
    /// Wraps an authenticated stream.
    pub(crate) fn new(stream: UnixStream) -> io::Result<Connection> {
        let writer = stream.try_clone()?;
        let shutter = stream.try_clone()?;
        let interrupt = Interrupt(Arc::new(move |_: &str| {
            let _ = shutter.shutdown(std::net::Shutdown::Both);
        }));
        Ok(Connection {
            interrupt,
            transport: Transport::Socket {
                reader: BufReader::with_capacity(READ_AHEAD, stream),
                writer,
            },
            inbox: Vec::new(),
            outbox: Vec::new(),
        })
    }

    /// Moves the connection to shared memory, offering it (the connecting side). The peer
    /// must call [`accept_shared_memory`](Connection::accept_shared_memory) at the same point
    /// of the conversation, with no frame in flight.
    pub(crate) fn offer_shared_memory(&mut self) -> io::Result<()> {
        let socket = self.quiet_socket()?;
        self.transport = Transport::Shared(shared_memory::offer(socket)?);
        Ok(())
    }

    /// Moves the connection to the shared memory its peer offers.
    pub(crate) fn accept_shared_memory(&mut self) -> io::Result<()> {
        let socket = self.quiet_socket()?;
        self.transport = Transport::Shared(shared_memory::accept(socket)?);
        Ok(())
    }

    /// The socket, provided nothing is buffered that the move would lose.
    fn quiet_socket(&self) -> io::Result<UnixStream> {
        match &self.transport {
            Transport::Socket { reader, .. } if reader.buffer().is_empty() => {
                reader.get_ref().try_clone()
            }
            Transport::Socket { .. } => Err(io::Error::other(
                "bytes arrived before the move to shared memory",
            )),
            Transport::Shared(_) => Err(io::Error::other("already on shared memory")),
        }
    }

    /// Whether frames travel through shared memory.
    pub(crate) fn is_shared(&self) -> bool {
        matches!(self.transport, Transport::Shared(_))
    }

    /// Takes the connection apart into its socket, to read and write it from separate
    /// threads; refused if bytes are buffered or the connection moved to shared memory.
    pub(crate) fn into_socket(self) -> io::Result<UnixStream> {
        match self.transport {
            Transport::Socket { reader, .. } if reader.buffer().is_empty() => {
                Ok(reader.into_inner())
            }
            _ => Err(io::Error::other(
                "the connection cannot be taken apart: bytes are buffered or it is on shared memory",
            )),
        }
    }

    /// The writing side of the socket, for another thread to send frames on (see
    /// [`send_on`]); only before a move to shared memory.
    pub(crate) fn writer_clone(&self) -> io::Result<UnixStream> {
        match &self.transport {
            Transport::Socket { writer, .. } => writer.try_clone(),
            Transport::Shared(_) => Err(io::Error::other("the connection is on shared memory")),
        }
    }

    /// A way to stop this connection from another thread: the socket shut down, so a wait
    /// for the peer ends at once with an error.
    pub(crate) fn interrupt(&self) -> Interrupt {
        self.interrupt.clone()
    }

    /// Encodes `message` and sends it as one frame, with one write.
    pub(crate) fn send(&mut self, message: &impl Serialize) -> Result<(), MessageError> {
        self.send_with_payload(message, &[])
    }

    /// Sends `message` followed, in the same frame, by `payload` (an encoded value), without
    /// copying the payload into the frame buffer first: the frame's header and message go
    /// out with one write, the payload with another, straight from where it is.
    pub(crate) fn send_with_payload(
        &mut self,
        message: &impl Serialize,
        payload: &[u8],
    ) -> Result<(), MessageError> {
        let mut outbox = std::mem::take(&mut self.outbox);
        outbox.clear();
        outbox.extend_from_slice(&[0; 4]);
        crate::net::encoder::encode_into(message, &mut outbox)?;
        let length = outbox.len() - 4 + payload.len();
        let result = match u32::try_from(length) {
            Ok(length) if length as usize <= DEFAULT_FRAME_LIMIT => {
                outbox[..4].copy_from_slice(&length.to_le_bytes());
                match &mut self.transport {
                    Transport::Socket { writer, .. } => writer
                        .write_all(&outbox)
                        .and_then(|()| writer.write_all(payload))
                        .map_err(|error| MessageError::Frame(FrameError::Io(error))),
                    Transport::Shared(stream) => stream
                        .send_frame(&[&outbox[4..], payload])
                        .map_err(MessageError::Frame),
                }
            }
            _ => Err(MessageError::Frame(FrameError::TooLarge {
                announced: length,
                limit: DEFAULT_FRAME_LIMIT,
            })),
        };
        // Keep the buffer for the next message, unless one huge message made it huge.
        if outbox.capacity() <= KEPT_BUFFER {
            self.outbox = outbox;
        }
        result
    }

    /// Sends a frame of a message and a value: `encode` encodes the value, straight into the
    /// frame on shared memory (see [`SharedStream::send_encoded`]); `message` then makes the
    /// message from what `encode` gave, or `None` to send nothing. Gives back what `encode`
    /// gave and whether the frame was sent.
    ///
    /// # Errors
    ///
    /// If the message cannot be encoded or the transport fails; the frame is not sent.
    pub(crate) fn send_encoding<M: Serialize, R>(
        &mut self,
        encode: impl FnOnce(&mut Encoder<'_>) -> R,
        message: impl FnOnce(&R) -> Option<M>,
    ) -> Result<(R, bool), MessageError> {
        let stream = match &mut self.transport {
            Transport::Shared(stream) => stream,
            Transport::Socket { .. } => {
                let (made, value) = crate::net::encoder::encode_to_spare(encode);
                let sent = match message(&made) {
                    Some(message) => self.send_with_payload(&message, &value).map(|()| true),
                    None => Ok(false),
                };
                crate::net::encoder::recycle(value);
                return sent.map(|sent| (made, sent));
            }
        };
        let mut failed = None;
        let sent = stream.send_encoded(encode, |made, bytes| {
            let Some(message) = message(made) else {
                return false;
            };
            failed = crate::net::encoder::encode_into(&message, bytes).err();
            failed.is_none()
        });
        match (sent, failed) {
            (_, Some(error)) => Err(MessageError::Malformed(error)),
            (Ok(sent), None) => Ok(sent),
            (Err(error), None) => Err(MessageError::Frame(error)),
        }
    }

    /// Reads one frame and decodes it.
    pub(crate) fn receive<M: DeserializeOwned>(&mut self) -> Result<M, MessageError> {
        self.receive_with(|message, _| message)
    }

    /// Reads one frame, decodes the message at its start, and hands it to `use_it` with the
    /// bytes that follow it in the frame (a payload sent by
    /// [`send_with_payload`](Connection::send_with_payload)), borrowed from the frame buffer.
    pub(crate) fn receive_with<M: DeserializeOwned, R>(
        &mut self,
        use_it: impl FnOnce(M, &[u8]) -> R,
    ) -> Result<R, MessageError> {
        let mut inbox = std::mem::take(&mut self.inbox);
        let decode = |frame: &[u8]| {
            let (message, payload) = postcard::take_from_bytes::<M>(frame)?;
            Ok(use_it(message, payload))
        };
        let used = match &mut self.transport {
            Transport::Socket { reader, .. } => {
                if reader.buffer().is_empty() {
                    crate::deadlock::sleeping();
                }
                frame::read_frame(reader, &mut inbox, DEFAULT_FRAME_LIMIT)
                    .map_err(MessageError::from)
                    .and_then(|()| decode(&inbox))
            }
            Transport::Shared(stream) => stream
                .receive_frame(&mut inbox, decode)
                .map_err(MessageError::from)
                .and_then(|decoded| decoded),
        };
        if inbox.capacity() <= KEPT_BUFFER {
            self.inbox = inbox;
        }
        used
    }

    /// Whether a frame waits to be read (on a socket: whether read-ahead bytes wait).
    pub(crate) fn frame_waiting(&self) -> bool {
        match &self.transport {
            Transport::Shared(stream) => stream.frame_waiting(),
            Transport::Socket { reader, .. } => !reader.buffer().is_empty(),
        }
    }

    /// As [`receive_with`](Connection::receive_with), without waiting, consuming the frame
    /// only if `use_it` gives `Some` (see [`SharedStream::try_receive_frame`]): `Ok(None)` if
    /// nothing waits, `Err(())` if a frame waits that is left for a plain receive (always,
    /// on a socket).
    pub(crate) fn try_receive_with<M: DeserializeOwned, R>(
        &mut self,
        use_it: impl FnOnce(M, &[u8]) -> Option<R>,
    ) -> Result<Option<R>, ()> {
        match &mut self.transport {
            Transport::Shared(stream) => stream.try_receive_frame(|frame| {
                let (message, payload) = postcard::take_from_bytes::<M>(frame).ok()?;
                use_it(message, payload)
            }),
            Transport::Socket { reader, .. } if !reader.buffer().is_empty() => Err(()),
            Transport::Socket { .. } => Ok(None),
        }
    }

    /// Two connected ends on shared memory, for tests.
    #[cfg(test)]
    pub(crate) fn shared_pair() -> (Connection, Connection) {
        let (a, b) = UnixStream::pair().expect("a socket pair");
        let (mut a, mut b) = (Connection::new(a).unwrap(), Connection::new(b).unwrap());
        let accepting = std::thread::spawn(move || b.accept_shared_memory().map(|()| b));
        a.offer_shared_memory().expect("shared memory offered");
        let b = accepting.join().unwrap().expect("shared memory accepted");
        (a, b)
    }

    /// Whether the peer left bytes sent to it unread (only a shared-memory connection
    /// can tell; once the peer is gone, that means it never got them).
    pub(crate) fn peer_left_unread(&self) -> bool {
        match &self.transport {
            Transport::Socket { .. } => false,
            Transport::Shared(stream) => stream.unread_by_peer(),
        }
    }

    /// Bounds how long [`receive`](Connection::receive) waits on a socket (`None`: no bound).
    /// A connection on shared memory waits until its peer answers or is gone.
    pub(crate) fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match &self.transport {
            Transport::Socket { reader, .. } => reader.get_ref().set_read_timeout(timeout),
            Transport::Shared(_) => Ok(()),
        }
    }
}

/// Sends `message` as one frame on a socket that several threads write.
///
/// # Errors
///
/// If the message cannot be encoded or the socket fails.
pub(crate) fn send_on(
    socket: &Mutex<UnixStream>,
    message: &impl Serialize,
) -> Result<(), MessageError> {
    let bytes = postcard::to_stdvec(message)?;
    let mut socket = socket.lock().unwrap_or_else(|p| p.into_inner());
    frame::write_frame(&mut *socket, &bytes, DEFAULT_FRAME_LIMIT)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::message::{Operation, OperationRequest, Wait};

    fn socket_pair() -> (Connection, Connection) {
        let (a, b) = UnixStream::pair().unwrap();
        (Connection::new(a).unwrap(), Connection::new(b).unwrap())
    }

    fn shared_pair() -> (Connection, Connection) {
        let (a, b) = Connection::shared_pair();
        assert!(a.is_shared() && b.is_shared());
        (a, b)
    }

    #[test]
    fn messages_cross_a_connection_in_order() {
        messages_cross_in_order(socket_pair());
    }

    #[test]
    fn messages_cross_a_shared_memory_connection_in_order() {
        messages_cross_in_order(shared_pair());
    }

    #[test]
    fn a_value_encoded_into_its_frame_crosses_either_transport_whole() {
        use crate::net::message::OperationReply;
        for (mut a, mut b) in [socket_pair(), shared_pair()] {
            b.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            for size in [0usize, 9, 5000, 70_000] {
                let value = vec![size as u8; size];
                let encode = |encoder: &mut Encoder<'_>| {
                    crate::net::encoder::encode(&value, encoder).is_ok()
                };
                // One encoded and not sent, then one sent: only the second arrives.
                let (_, sent) = a.send_encoding(encode, |_| None::<OperationReply>).unwrap();
                assert!(!sent);
                let (encoded, sent) = a
                    .send_encoding(encode, |&ok| ok.then_some(OperationReply::ValueFollowing))
                    .unwrap();
                assert!(encoded && sent);
                let received = b
                    .receive_with(|reply: OperationReply, payload| {
                        let value = crate::net::encoder::decode::<Vec<u8>>(payload);
                        (matches!(reply, OperationReply::ValueFollowing), value.ok())
                    })
                    .unwrap();
                assert_eq!(received, (true, Some(value)), "{size} bytes");
            }
        }
    }

    #[test]
    fn a_connection_with_bytes_in_flight_does_not_move_to_shared_memory() {
        let (mut a, mut b) = socket_pair();
        a.send(&7u32).unwrap();
        a.send(&8u32).unwrap();
        b.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(b.receive::<u32>().unwrap(), 7); // the second frame is buffered now
        let error = b.accept_shared_memory().unwrap_err();
        assert!(error.to_string().contains("before the move"), "{error}");
        assert_eq!(b.receive::<u32>().unwrap(), 8, "nothing was lost");
    }

    fn messages_cross_in_order((mut a, mut b): (Connection, Connection)) {
        // The reader runs at the same time: 3.5 MB would not fit in a socket's buffer.
        b.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let reading = std::thread::spawn(move || {
            (0..100u64)
                .map(|_| b.receive::<OperationRequest>())
                .collect::<Result<Vec<_>, _>>()
        });
        for end in 0..100u64 {
            let value = vec![end as u8; (end as usize) * 700];
            a.send(&OperationRequest {
                end,
                operation: Operation::Write {
                    value,
                    wait: Wait::Not,
                },
            })
            .unwrap();
        }
        let received = reading
            .join()
            .unwrap()
            .expect("every message within the bound");
        for (end, request) in (0..100u64).zip(received) {
            assert_eq!(request.end, end);
            match request.operation {
                Operation::Write { value, .. } => {
                    assert_eq!(value, vec![end as u8; (end as usize) * 700]);
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
