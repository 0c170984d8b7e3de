//! Frames on a shared-memory stream: written in one piece and read where they lie, or
//! streamed through the ring in pieces.

#![allow(unsafe_code)]

use std::io::{self, Read, Write};
use std::sync::atomic::Ordering;

use super::{CAPACITY, SharedStream, corrupted};
use crate::net::frame::{self, FrameError};

/// Frames up to this size (header and padding included) are written in one contiguous piece
/// of the ring, and read where they lie: no copy into a frame buffer. Larger frames stream
/// through the ring in pieces.
pub(super) const IN_PLACE: usize = CAPACITY / 2;

/// A header saying "nothing more before the end of the ring: go on at its start", written when
/// a frame read in place would not fit before the end.
pub(super) const WRAP: u32 = u32::MAX;

/// A cache line of the ring: a large value's encoding starts on one (see [`ALIGNED_FROM`]).
pub(super) const LINE_BYTES: usize = 64;

/// Last parts at least this long start on a cache line of the ring. glibc's `memcpy` on this
/// class of AMD CPU runs many times slower for copies of 2 KiB to 512 KiB whose destination
/// lies 1 to 31 bytes past the source modulo 4 KiB; a 64-aligned ring position keeps copies
/// from and to 16-aligned heap buffers out of that window (almost always).
pub(super) const ALIGNED_FROM: usize = 2048;

/// A frame's bytes without the bytes its writer skipped before them; `None` if the count of
/// bytes to skip runs past the frame.
fn skipped(body: &[u8]) -> Option<&[u8]> {
    let (&skip, rest) = body.split_first()?;
    rest.get(usize::from(skip)..)
}

/// `length` rounded up to whole headers: every frame starts 4-aligned, so a header never
/// straddles the end of the ring.
pub(super) fn padded(length: usize) -> usize {
    length.next_multiple_of(4)
}

impl SharedStream {
    /// The 4 bytes at ring position `position` (a multiple of 4) of the ring this side reads.
    fn header_at(&self, position: u64) -> u32 {
        let start = (position % CAPACITY as u64) as usize;
        let mut header = [0u8; 4];
        // SAFETY: published bytes (the caller waited for them), 4-aligned so inside the area.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.memory.data(1 - self.side).add(start),
                header.as_mut_ptr(),
                4,
            );
        }
        u32::from_le_bytes(header)
    }

    /// Moves this side's read position on by `count` bytes and lets a waiting writer know.
    fn consume(&mut self, count: usize) -> io::Result<()> {
        let tail = self.tail(1 - self.side);
        let moved = tail.load(Ordering::Relaxed).wrapping_add(count as u64);
        tail.store(moved, Ordering::Release);
        self.wake_peer()
    }

    /// Sends one frame: a 4-byte length, then `parts` one after the other.
    ///
    /// # Errors
    ///
    /// [`FrameError::TooLarge`] if the frame cannot be described by a header (nothing is
    /// sent), [`FrameError::Io`] if the peer is gone or its positions are corrupted.
    pub(crate) fn send_frame(&mut self, parts: &[&[u8]]) -> Result<(), FrameError> {
        let length: usize = parts.iter().map(|part| part.len()).sum();
        let ring = self.side;
        let mut head = self.head(ring).load(Ordering::Relaxed);
        // Frames that may be read in place carry, before their parts, a count of bytes to
        // skip and those bytes, so that a large last part (a value's encoding) starts on a
        // cache line of the ring; see `ALIGNED_FROM`.
        let fits_aligned = padded(4 + 1 + (LINE_BYTES - 1) + length) <= IN_PLACE;
        let skip_at = |head: u64| -> usize {
            match parts.split_last() {
                Some((last, before)) if fits_aligned && last.len() >= ALIGNED_FROM => {
                    let before: usize = before.iter().map(|part| part.len()).sum();
                    let starts = head as usize + 4 + 1 + before;
                    starts.next_multiple_of(LINE_BYTES) - starts
                }
                _ => 0,
            }
        };
        let mut skip = skip_at(head);
        let body = 1 + skip + length;
        let header = match u32::try_from(body) {
            Ok(header) if header != WRAP => header,
            _ => {
                return Err(FrameError::TooLarge {
                    announced: length,
                    limit: WRAP as usize - 2,
                });
            }
        };
        let mut total = padded(4 + body);
        if total > IN_PLACE {
            self.write_all(&header.to_le_bytes())?;
            self.write_all(&[0])?;
            for part in parts {
                self.write_all(part)?;
            }
            return Ok(self.write_all(&[0; 3][..total - 4 - body])?);
        }
        let left = CAPACITY - (head % CAPACITY as u64) as usize;
        if left < total {
            // Skip the end of the ring; the reader follows the WRAP header to its start.
            self.wait_for(left, Self::writable)?;
            self.write_at(head, &WRAP.to_le_bytes());
            head = head.wrapping_add(left as u64);
            self.head(ring).store(head, Ordering::Release);
            skip = skip_at(head);
            total = padded(4 + 1 + skip + length);
        }
        let header = (1 + skip + length) as u32;
        self.wait_for(total, Self::writable)?;
        self.write_at(head, &header.to_le_bytes());
        self.write_at(head.wrapping_add(4), &[skip as u8]);
        let mut at = head.wrapping_add(5 + skip as u64);
        for part in parts {
            self.write_at(at, part);
            at = at.wrapping_add(part.len() as u64);
        }
        self.head(ring)
            .store(head.wrapping_add(total as u64), Ordering::Release);
        Ok(self.wake_peer()?)
    }

    /// Copies `bytes` to ring position `at` of the ring this side writes, in one piece.
    pub(super) fn write_at(&mut self, at: u64, bytes: &[u8]) {
        let start = (at % CAPACITY as u64) as usize;
        debug_assert!(start + bytes.len() <= CAPACITY);
        // SAFETY: the caller waited for this room (the peer's tail is past it) and it lies
        // before the end of the data area; the peer reads it only after we publish the head.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.memory.data(self.side).add(start),
                bytes.len(),
            );
        }
    }

    /// Receives one frame and hands its bytes to `use_it`: where they lie in the ring for a
    /// frame that was written in one piece, else from `buffer` after copying them there.
    ///
    /// # Errors
    ///
    /// [`FrameError::Io`] if the peer is gone or wrote positions or headers that disagree with
    /// the ring; [`FrameError::Truncated`] if it is gone inside a frame.
    pub(crate) fn receive_frame<R>(
        &mut self,
        buffer: &mut Vec<u8>,
        use_it: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, FrameError> {
        let ring = 1 - self.side;
        loop {
            self.wait_for(4, Self::readable)?;
            let tail = self.tail(ring).load(Ordering::Relaxed);
            let start = (tail % CAPACITY as u64) as usize;
            if start % 4 != 0 {
                return Err(corrupted().into());
            }
            let header = self.header_at(tail);
            if header == WRAP {
                self.consume(CAPACITY - start)?;
                continue;
            }
            let body = header as usize;
            let total = padded(4 + body);
            if total > IN_PLACE {
                self.consume(4)?;
                frame::read_body(self, buffer, body)?;
                let mut padding = [0u8; 3];
                self.read_exact(&mut padding[..total - 4 - body])?;
                let frame = skipped(buffer).ok_or_else(corrupted)?;
                return Ok(use_it(frame));
            }
            if start + total > CAPACITY {
                return Err(corrupted().into());
            }
            self.wait_for(total, Self::readable)?;
            // SAFETY: the peer published these bytes (its head is past them, read with Acquire
            // in `readable`) and does not write them again until our tail passes them; they lie
            // inside the data area (checked above).
            let bytes =
                unsafe { std::slice::from_raw_parts(self.memory.data(ring).add(start + 4), body) };
            let used = skipped(bytes).map(use_it);
            self.consume(total)?;
            return used.ok_or_else(|| corrupted().into());
        }
    }
}

impl SharedStream {
    /// Whether a frame (or the start of one) waits to be read.
    pub(crate) fn frame_waiting(&self) -> bool {
        self.readable().is_ok_and(|count| count >= 4)
    }

    /// Hands the next frame, if it waits whole and lies in one piece, to `use_it`, without
    /// waiting, and consumes it only if `use_it` gives `Some`: `Ok(None)` if no frame waits,
    /// `Err(())` if one waits that this leaves where it is (one `use_it` refused, one that
    /// streams through the ring in pieces, or positions that disagree with the ring, which
    /// the stream's own reader reports).
    pub(crate) fn try_receive_frame<R>(
        &mut self,
        use_it: impl FnOnce(&[u8]) -> Option<R>,
    ) -> Result<Option<R>, ()> {
        let ring = 1 - self.side;
        loop {
            let readable = self.readable().map_err(drop)?;
            if readable < 4 {
                return Ok(None);
            }
            let tail = self.tail(ring).load(Ordering::Relaxed);
            let start = (tail % CAPACITY as u64) as usize;
            if start % 4 != 0 {
                return Err(());
            }
            let header = self.header_at(tail);
            if header == WRAP {
                if readable < CAPACITY - start {
                    return Err(());
                }
                self.consume(CAPACITY - start).map_err(drop)?;
                continue;
            }
            let body = header as usize;
            let total = padded(4 + body);
            if total > IN_PLACE || start + total > CAPACITY || readable < total {
                return Err(());
            }
            // SAFETY: as in `receive_frame`: published bytes, inside the data area.
            let bytes =
                unsafe { std::slice::from_raw_parts(self.memory.data(ring).add(start + 4), body) };
            let Some(used) = skipped(bytes).and_then(use_it) else {
                return Err(());
            };
            self.consume(total).map_err(drop)?;
            return Ok(Some(used));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{frame, frame_sizes, pair};
    use super::*;
    use std::thread;

    #[test]
    fn frames_of_every_size_cross_in_order_in_place_wrapped_and_streamed() {
        let (mut a, mut b) = pair();
        let sizes = frame_sizes();
        let expected = sizes.clone();
        let echo = thread::spawn(move || {
            let mut buffer = Vec::new();
            for (seed, size) in expected.into_iter().enumerate() {
                let received = b.receive_frame(&mut buffer, <[u8]>::to_vec).unwrap();
                assert_eq!(received.len(), size, "frame {seed}");
                assert!(
                    received == frame(size, seed),
                    "frame {seed} of {size} bytes"
                );
                // Back in two parts, as a message and its payload travel.
                let (message, payload) = received.split_at(size / 3);
                b.send_frame(&[message, payload]).unwrap();
            }
        });
        let mut buffer = Vec::new();
        for (seed, &size) in sizes.iter().enumerate() {
            a.send_frame(&[&frame(size, seed)]).unwrap();
            let back = a.receive_frame(&mut buffer, <[u8]>::to_vec).unwrap();
            assert!(
                back == frame(size, seed),
                "frame {seed} of {size} bytes came back"
            );
        }
        echo.join().unwrap();
    }

    #[test]
    fn frames_sent_ahead_of_the_reader_wait_for_room_and_arrive_whole() {
        let (mut a, mut b) = pair();
        let sizes = frame_sizes();
        let expected = sizes.clone();
        let reading = thread::spawn(move || {
            let mut buffer = Vec::new();
            for (seed, size) in expected.into_iter().enumerate() {
                let whole = b
                    .receive_frame(&mut buffer, |bytes| bytes == frame(size, seed))
                    .unwrap();
                assert!(whole, "frame {seed} of {size} bytes");
            }
        });
        for (seed, &size) in sizes.iter().enumerate() {
            a.send_frame(&[&frame(size, seed)]).unwrap();
        }
        reading.join().unwrap();
    }

    #[test]
    fn a_large_last_part_starts_on_a_cache_line_of_the_ring() {
        let (mut a, mut b) = pair();
        for message in [&b""[..], b"m", b"abc", b"a longer message"] {
            let payload = vec![9u8; ALIGNED_FROM + 5];
            a.send_frame(&[message, &payload]).unwrap();
            let (at, whole) = b
                .receive_frame(&mut Vec::new(), |frame| {
                    let starts = frame[message.len()..].as_ptr() as usize;
                    (starts % LINE_BYTES, frame == [message, &payload].concat())
                })
                .unwrap();
            assert_eq!(
                (at, whole),
                (0, true),
                "after a message of {}",
                message.len()
            );
        }
    }

    #[test]
    fn a_header_that_runs_past_the_ring_is_an_error() {
        let (mut a, mut b) = pair();
        // A frame that says it is read in place but would run past the end of the ring.
        let start = CAPACITY - 8;
        b.head(1).store(start as u64, Ordering::Release);
        a.tail(1).store(start as u64, Ordering::Release);
        b.write_at(start as u64, &(64u32).to_le_bytes());
        b.head(1).store(start as u64 + 72, Ordering::Release);
        let error = a.receive_frame(&mut Vec::new(), |_| ()).unwrap_err();
        assert!(error.to_string().contains("corrupted"), "{error}");
    }
}
