//! Frames whose value is encoded straight into the ring (see
//! [`Encoder`](crate::net::encoder::Encoder)): the message before it is made after it.

#![allow(unsafe_code)]

use std::sync::atomic::Ordering;

use super::frames::{ALIGNED_FROM, IN_PLACE, LINE_BYTES, WRAP, padded};
use super::{CAPACITY, SharedStream};
use crate::net::encoder::Encoder;
use crate::net::frame::FrameError;

/// The most bytes the message before a value encoded into the ring may take (the requests
/// and replies that carry values take under 30); a longer one sends the value as
/// [`SharedStream::send_frame`] does.
const MESSAGE_ROOM: usize = 64;

impl SharedStream {
    /// Sends one frame of a message and a value's encoding, the value encoded by `encode`
    /// straight into the ring where the frame goes, the message then made by `message` from
    /// what `encode` gave (into the buffer it is handed; `false`: send nothing, the encoding
    /// is dropped). Gives back what `encode` gave and whether the frame was sent.
    ///
    /// The value is encoded at a cache line a little past the frame's start, leaving room
    /// for the message before it ([`MESSAGE_ROOM`]); the frame's skip count covers the gap.
    /// A value shorter than [`ALIGNED_FROM`] is moved down to follow the message instead,
    /// keeping small frames small. A value that outgrows the room the ring has for it
    /// spills into a buffer and goes as [`send_frame`](SharedStream::send_frame) sends it.
    ///
    /// # Errors
    ///
    /// As [`send_frame`](SharedStream::send_frame).
    pub(crate) fn send_encoded<R>(
        &mut self,
        encode: impl FnOnce(&mut Encoder<'_>) -> R,
        message: impl FnOnce(&R, &mut Vec<u8>) -> bool,
    ) -> Result<(R, bool), FrameError> {
        let ring = self.side;
        let mut head = self.head(ring).load(Ordering::Relaxed);
        // Room in one piece for a value as large as the last one. A value that large would
        // not be read in place anyway: it is encoded into the buffer from the start, not
        // copied there once the room runs out.
        let frame = |value: usize| padded(4 + 1 + MESSAGE_ROOM + LINE_BYTES + value);
        let streamed = frame(self.last_value) > IN_PLACE;
        let wanted = frame(if streamed { 0 } else { self.last_value });
        let left = CAPACITY - (head % CAPACITY as u64) as usize;
        if left < wanted {
            self.wait_for(left, Self::writable)?;
            self.write_at(head, &WRAP.to_le_bytes());
            head = head.wrapping_add(left as u64);
            self.head(ring).store(head, Ordering::Release);
        }
        // Wait for that room too. What fills the ring is this side's own frames, which the
        // peer carries out without waiting for anything of ours, so the room comes; a value
        // that then outgrows it would have to wait for its room anyway, after a copy.
        let writable = self.wait_for(wanted, Self::writable)?;
        let start = (head % CAPACITY as u64) as usize;
        let room = writable.min(CAPACITY - start).min(IN_PLACE) & !3;
        let value_at = (start + 5 + MESSAGE_ROOM).next_multiple_of(LINE_BYTES);
        // The wrap above left at least `frame(0)` bytes before the ring's end, and the wait
        // as many of them free: the value's place lies inside the data area.
        debug_assert!(value_at - start < room);
        let value_room = if streamed {
            0
        } else {
            room.saturating_sub(value_at - start)
        };
        // SAFETY: `value_at..value_at + value_room` lies inside the data area and inside the
        // room the peer left (`writable`); the peer reads none of it before we publish a head
        // past it, and nothing else here writes the ring while the encoder lives.
        let mut encoder = unsafe {
            Encoder::over_region(
                self.memory.data(ring).add(value_at),
                value_room,
                crate::net::encoder::spare_buffer(),
            )
        };
        let made = encode(&mut encoder);
        let mut message_bytes = std::mem::take(&mut self.message);
        message_bytes.clear();
        let send = message(&made, &mut message_bytes);
        let sent = if send {
            self.finish_encoded(head, value_at, encoder, &message_bytes)
        } else {
            crate::net::encoder::recycle(encoder.into_buffer());
            Ok(())
        };
        self.message = message_bytes;
        sent.map(|()| (made, send))
    }

    /// Publishes the frame [`send_encoded`](SharedStream::send_encoded) began at `head`, its
    /// value encoded at ring index `value_at` (or spilled).
    fn finish_encoded(
        &mut self,
        head: u64,
        value_at: usize,
        encoder: Encoder<'_>,
        message: &[u8],
    ) -> Result<(), FrameError> {
        self.last_value = encoder.len();
        let (Some(length), true) = (encoder.in_region(), message.len() <= MESSAGE_ROOM) else {
            #[cfg(test)]
            {
                self.spills += 1;
            }
            let value = encoder.into_bytes();
            let sent = self.send_frame(&[message, &value]);
            crate::net::encoder::recycle(value);
            return sent;
        };
        crate::net::encoder::recycle(encoder.into_buffer());
        let start = (head % CAPACITY as u64) as usize;
        let data = self.memory.data(self.side);
        let (skip, message_at) = if length < ALIGNED_FROM {
            // SAFETY: both ranges lie in the frame's room (`send_encoded`); `copy` allows
            // them to overlap.
            unsafe {
                std::ptr::copy(
                    data.add(value_at),
                    data.add(start + 5 + message.len()),
                    length,
                );
            }
            (0, start + 5)
        } else {
            let message_at = value_at - message.len();
            (message_at - (start + 5), message_at)
        };
        let skip = u8::try_from(skip).expect("the gap before a value is under a cache line");
        let body = 1 + usize::from(skip) + message.len() + length;
        self.write_at(head, &(body as u32).to_le_bytes());
        self.write_at(head.wrapping_add(4), &[skip]);
        self.write_at(head.wrapping_add((message_at - start) as u64), message);
        self.head(self.side).store(
            head.wrapping_add(padded(4 + body) as u64),
            Ordering::Release,
        );
        Ok(self.wake_peer()?)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{frame, frame_sizes, pair};
    use super::*;
    use std::thread;

    /// Sends `payload` as a value encoded into the ring after `message`; the frame that
    /// arrives must be `expected_frame(message, payload)`.
    fn send_encoded(stream: &mut SharedStream, message: &[u8], payload: &[u8]) {
        let bytes = serde_bytes::Bytes::new(payload);
        let (encoded, sent) = stream
            .send_encoded(
                |encoder| postcard::serialize_with_flavor(&bytes, encoder),
                |_, out| {
                    out.extend_from_slice(message);
                    true
                },
            )
            .unwrap();
        assert!(encoded.is_ok() && sent);
    }

    fn expected_frame(message: &[u8], payload: &[u8]) -> Vec<u8> {
        let value = postcard::to_stdvec(&serde_bytes::Bytes::new(payload)).unwrap();
        [message, &value].concat()
    }

    /// The message before value `seed` of the streams below: 0 to 69 bytes.
    fn message(seed: usize) -> Vec<u8> {
        vec![seed as u8; seed % 70]
    }

    /// Sends a value of each of `sizes`, encoded into the ring after its message.
    fn send_all(stream: &mut SharedStream, sizes: &[usize]) {
        for (seed, &size) in sizes.iter().enumerate() {
            send_encoded(stream, &message(seed), &frame(size, seed));
        }
    }

    /// Receives what [`send_all`] sent, checking every frame whole.
    fn receive_all(stream: &mut SharedStream, sizes: &[usize], from: &str) {
        let mut buffer = Vec::new();
        for (seed, &size) in sizes.iter().enumerate() {
            let whole = stream
                .receive_frame(&mut buffer, |bytes| {
                    bytes == expected_frame(&message(seed), &frame(size, seed))
                })
                .unwrap();
            assert!(whole, "frame {seed} from {from}: a value of {size} bytes");
        }
    }

    #[test]
    fn values_encoded_into_the_ring_arrive_whole_in_order_of_every_size() {
        let (mut a, mut b) = pair();
        let sizes = frame_sizes();
        let expected = sizes.clone();
        // Sent ahead of the reader (the ring fills and wraps), then all sent back.
        let reading = thread::spawn(move || {
            receive_all(&mut b, &expected, "a");
            send_all(&mut b, &expected);
        });
        send_all(&mut a, &sizes);
        let too_large = sizes.iter().filter(|&&size| size + 200 > IN_PLACE).count();
        assert!(
            a.spills >= too_large && a.spills < sizes.len() / 2,
            "{} of {} values spilled, {too_large} too large for the ring",
            a.spills,
            sizes.len()
        );
        receive_all(&mut a, &sizes, "b");
        reading.join().unwrap();
    }

    #[test]
    fn a_large_value_encoded_into_the_ring_starts_on_a_cache_line_a_small_one_follows_its_message()
    {
        let (mut a, mut b) = pair();
        for (message, size) in [
            (&b"m"[..], ALIGNED_FROM + 5),
            (b"a message", 40_000),
            (b"", 9),
        ] {
            let payload = frame(size, 1);
            send_encoded(&mut a, message, &payload);
            let (at, length, whole) = b
                .receive_frame(&mut Vec::new(), |bytes| {
                    let value = &bytes[message.len()..];
                    let starts = value.as_ptr() as usize;
                    (
                        starts % LINE_BYTES,
                        bytes.len(),
                        bytes == expected_frame(message, &payload),
                    )
                })
                .unwrap();
            assert!(whole, "a value of {size} bytes");
            assert_eq!(a.spills, 0, "encoded where it was sent");
            if size >= ALIGNED_FROM {
                assert_eq!(at, 0, "{size} bytes start on a line");
            } else {
                assert_eq!(length, message.len() + 1 + size, "nothing skipped");
            }
        }
    }

    #[test]
    fn a_value_not_sent_leaves_the_stream_as_it_was() {
        let (mut a, mut b) = pair();
        for round in 0..20usize {
            // Half the ring's room encoded and dropped, then a frame that is sent.
            let dropped = frame(IN_PLACE / 2, round);
            let bytes = serde_bytes::Bytes::new(&dropped);
            let (_, sent) = a
                .send_encoded(
                    |encoder| postcard::serialize_with_flavor(&bytes, encoder),
                    |_, _| false,
                )
                .unwrap();
            assert!(!sent);
            send_encoded(&mut a, b"kept", &frame(round * 1000, round));
            assert_eq!(a.spills, 0, "round {round}");
            let whole = b
                .receive_frame(&mut Vec::new(), |bytes| {
                    bytes == expected_frame(b"kept", &frame(round * 1000, round))
                })
                .unwrap();
            assert!(whole, "round {round}");
        }
    }

    #[test]
    fn a_message_too_long_to_precede_an_encoded_value_is_sent_all_the_same() {
        let (mut a, mut b) = pair();
        let message = vec![3u8; MESSAGE_ROOM + 1];
        let payload = frame(70_000, 3);
        send_encoded(&mut a, &message, &payload);
        assert_eq!(a.spills, 1);
        let whole = b
            .receive_frame(&mut Vec::new(), |bytes| {
                bytes == expected_frame(&message, &payload)
            })
            .unwrap();
        assert!(whole);
    }
}
