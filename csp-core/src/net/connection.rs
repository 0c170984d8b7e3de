//! One authenticated connection: messages in and out, at most one system call per frame in
//! the common case.
//!
//! Reading goes through a buffer, so a small frame's header and body arrive together; writing
//! encodes the message straight after a reserved length prefix and sends the frame with one
//! write. Both buffers are kept and re-used.

use std::io::{self, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::frame::{self, DEFAULT_FRAME_LIMIT, FrameError};
use super::message::MessageError;

/// How much a connection reads ahead.
const READ_AHEAD: usize = 64 << 10;

/// A connection after its handshake.
pub(crate) struct Connection {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    inbox: Vec<u8>,
    outbox: Vec<u8>,
}

impl Connection {
    /// Wraps an authenticated stream.
    pub(crate) fn new(stream: UnixStream) -> io::Result<Connection> {
        let writer = stream.try_clone()?;
        Ok(Connection {
            reader: BufReader::with_capacity(READ_AHEAD, stream),
            writer,
            inbox: Vec::new(),
            outbox: Vec::new(),
        })
    }

    /// Encodes `message` and sends it as one frame, with one write.
    pub(crate) fn send(&mut self, message: &impl Serialize) -> Result<(), MessageError> {
        let mut outbox = std::mem::take(&mut self.outbox);
        outbox.clear();
        outbox.extend_from_slice(&[0; 4]);
        let mut outbox = postcard::to_extend(message, outbox)?;
        let length = outbox.len() - 4;
        let result = match u32::try_from(length) {
            Ok(length) if length as usize <= DEFAULT_FRAME_LIMIT => {
                outbox[..4].copy_from_slice(&length.to_le_bytes());
                self.writer
                    .write_all(&outbox)
                    .map_err(|error| MessageError::Frame(FrameError::Io(error)))
            }
            _ => Err(MessageError::Frame(FrameError::TooLarge {
                announced: length,
                limit: DEFAULT_FRAME_LIMIT,
            })),
        };
        // Keep the buffer for the next message, unless one huge message made it huge.
        if outbox.capacity() <= READ_AHEAD {
            self.outbox = outbox;
        }
        result
    }

    /// Reads one frame and decodes it.
    pub(crate) fn receive<M: DeserializeOwned>(&mut self) -> Result<M, MessageError> {
        frame::read_frame(&mut self.reader, &mut self.inbox, DEFAULT_FRAME_LIMIT)?;
        let message = postcard::from_bytes(&self.inbox)?;
        if self.inbox.capacity() > READ_AHEAD {
            self.inbox = Vec::new();
        }
        Ok(message)
    }

    /// Bounds how long [`receive`](Connection::receive) waits (`None`: no bound).
    pub(crate) fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.reader.get_ref().set_read_timeout(timeout)
    }

    /// Writes raw bytes (the placement's one-byte acknowledgement).
    pub(crate) fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.writer.write_all(bytes)
    }

    /// Reads raw bytes, past anything buffered.
    pub(crate) fn read_raw(&mut self, bytes: &mut [u8]) -> io::Result<usize> {
        io::Read::read(&mut self.reader, bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::message::{Operation, OperationRequest, Wait};

    #[test]
    fn messages_cross_a_connection_in_order() {
        let (a, b) = UnixStream::pair().unwrap();
        let (mut a, mut b) = (Connection::new(a).unwrap(), Connection::new(b).unwrap());
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
