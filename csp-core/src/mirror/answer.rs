//! Answers to a remote thread, and what each leaves for the next request to settle.
//!
//! A value read for a remote reader is encoded straight into the answer's frame (see
//! [`Encoder`](crate::net::encoder::Encoder)), then dropped, as a value written here is
//! once read. A channel that takes values back from readers that died (a pattern's queue)
//! has it encoded into a buffer instead, kept in [`Between`] until the reader's next
//! request shows it arrived.

use super::Between;
use crate::home::{HomeReply, Outgoing, TakesBack};
use crate::net::connection::Connection;
use crate::net::message::OperationReply;
use crate::transfer::TicketScope;

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
    let ((encoded, bytes), lent) = TicketScope::collect(|| {
        crate::net::encoder::encode_to_spare(|encoder| value.encode(encoder))
    });
    let encoded = encoded.map(|()| bytes);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ChannelError, TryReadError};
    use crate::home::{HomeEnd, HomeReader};
    use crate::net::message::{Operation, Wait};
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
