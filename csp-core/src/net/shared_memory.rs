//! A byte stream between two OS processes on one host, carried by shared memory.
//!
//! Sockets cost a system call per message and, when the peer sleeps, a wake-up of a thread on
//! another CPU (35 to 75 µs on a small machine). A [`SharedStream`] moves the bytes through two
//! single-producer, single-consumer rings in a sealed `memfd` that both OS processes map, one
//! ring per direction. A side that finds nothing to read (or no room to write) spins briefly,
//! as [`wait::Backoff`](crate::wait::Backoff) decides, and only then sleeps, on the Unix
//! socket the stream was set up over: its peer sends one byte there when it makes progress and
//! sees the flag that says "I sleep". The socket therefore still does two jobs a ring cannot:
//! it wakes a sleeper without a futex shared across processes, and it reports a dead peer (its
//! end of the socket closes, the sleeper reads end of file), so a stream never hangs on a peer
//! that is gone.
//!
//! The peer is authenticated before any of this (see [`auth`](super::auth)), but its memory is
//! still treated as input: positions that disagree with the ring's size end the stream with
//! an error, and the memfd is sealed against shrinking, so the peer cannot make an access fault.
//!
//! Setting up ([`offer`] on the connecting side, [`accept`] on the other): the acceptor asks
//! with one byte, the offering side sends the memfd with `SCM_RIGHTS`, and the acceptor answers
//! with one byte once it has checked and mapped it.

#![allow(unsafe_code)]

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};
use std::time::Duration;

use nix::fcntl::{FcntlArg, SealFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::mman::{MapFlags, ProtFlags, mmap, munmap};
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};

use super::encoder::Encoder;
use super::frame::{self, FrameError};
use crate::wait::Backoff;

/// Bytes of data in each direction's ring (a power of two).
const CAPACITY: usize = 256 << 10;
/// Room for one atomic counter on a cache line of its own.
const LINE: usize = 128;
/// The region: a line for each side's "I sleep" flag, then per ring a line for its head
/// (bytes written), a line for its tail (bytes read), and its data.
const RING: usize = 2 * LINE + CAPACITY;
const REGION: usize = 2 * LINE + 2 * RING;

/// How long setting up may wait for the peer.
const SETUP_LIMIT: Duration = Duration::from_secs(5);

const ASK: u8 = b'?';
const ACCEPTED: u8 = b'+';

/// The mapped region, unmapped when the last user drops it.
struct Mapping {
    base: NonNull<u8>,
}

// SAFETY: the region is plain shared memory; every access to it from this process goes through
// atomics (the counters and flags) or through the data areas of a ring, which the ring's
// protocol gives to exactly one side at a time.
unsafe impl Send for Mapping {}

impl Mapping {
    fn map(memory: &OwnedFd) -> io::Result<Mapping> {
        let length = NonZeroUsize::new(REGION).expect("the region is not empty");
        // SAFETY: a fresh shared mapping of a memfd sealed at REGION bytes or more; nothing in
        // this process aliases it as a Rust reference other than through `Mapping`'s methods.
        let base = unsafe {
            mmap(
                None,
                length,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                memory.as_fd(),
                0,
            )
        }?;
        Ok(Mapping { base: base.cast() })
    }

    /// The atomic counter or flag at `offset` (a multiple of [`LINE`] inside the region).
    fn word(&self, offset: usize) -> &AtomicU64 {
        debug_assert!(offset % LINE == 0 && offset + 8 <= REGION);
        // SAFETY: in bounds, 8-byte aligned (the mapping is page-aligned), and only ever used
        // as an atomic by both processes.
        unsafe { &*self.base.as_ptr().add(offset).cast::<AtomicU64>() }
    }

    fn flag(&self, side: usize) -> &AtomicU32 {
        // SAFETY: as for `word`; the flag lines hold nothing else.
        unsafe { &*self.base.as_ptr().add(side * LINE).cast::<AtomicU32>() }
    }

    fn data(&self, ring: usize) -> *mut u8 {
        // SAFETY: the data area of `ring` lies inside the region.
        unsafe { self.base.as_ptr().add(2 * LINE + ring * RING + 2 * LINE) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the region was mapped with this base and length and is no longer used.
        let _ = unsafe { munmap(self.base.cast(), REGION) };
    }
}

/// One end of a shared-memory stream: writes one ring, reads the other.
pub(crate) struct SharedStream {
    memory: Mapping,
    /// Which side this is: 0 offered the memory, 1 accepted it. Side `s` writes ring `s`.
    side: usize,
    /// Where sleeping happens and the peer's death shows.
    socket: UnixStream,
    /// How long the last value [`send_encoded`](SharedStream::send_encoded) sent was: the
    /// room the next one is given in one piece, if the ring has it.
    last_value: usize,
    /// A buffer for values that outgrow their room in the ring, kept between them.
    spare: Vec<u8>,
    /// The message before a value encoded into the ring, made after the value.
    message: Vec<u8>,
    /// Values that spilled (for tests).
    #[cfg(test)]
    spills: usize,
}

impl std::fmt::Debug for SharedStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedStream")
            .field("side", &self.side)
            .finish_non_exhaustive()
    }
}

fn corrupted() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "the peer's shared-memory ring is corrupted",
    )
}

fn peer_gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the peer closed the stream")
}

impl SharedStream {
    fn head(&self, ring: usize) -> &AtomicU64 {
        self.memory.word(2 * LINE + ring * RING)
    }

    fn tail(&self, ring: usize) -> &AtomicU64 {
        self.memory.word(2 * LINE + ring * RING + LINE)
    }

    /// Bytes waiting in the ring this side reads.
    fn readable(&self) -> io::Result<usize> {
        let ring = 1 - self.side;
        let head = self.head(ring).load(Ordering::Acquire);
        let tail = self.tail(ring).load(Ordering::Relaxed);
        match head.wrapping_sub(tail) {
            waiting if waiting <= CAPACITY as u64 => Ok(waiting as usize),
            _ => Err(corrupted()),
        }
    }

    /// Whether bytes this side wrote are still in the ring, unread by the peer.
    pub(crate) fn unread_by_peer(&self) -> bool {
        self.writable().is_ok_and(|room| room < CAPACITY)
    }

    /// Room left in the ring this side writes.
    fn writable(&self) -> io::Result<usize> {
        let ring = self.side;
        let head = self.head(ring).load(Ordering::Relaxed);
        let tail = self.tail(ring).load(Ordering::Acquire);
        match head.wrapping_sub(tail) {
            used if used <= CAPACITY as u64 => Ok(CAPACITY - used as usize),
            _ => Err(corrupted()),
        }
    }

    /// Waits until `ready` gives a count of at least `needed` (at least one): spins, then
    /// sleeps on the socket.
    fn wait_for(
        &mut self,
        needed: usize,
        ready: fn(&Self) -> io::Result<usize>,
    ) -> io::Result<usize> {
        let needed = needed.max(1);
        let mut backoff = Backoff::new();
        loop {
            let count = ready(self)?;
            if count >= needed {
                return Ok(count);
            }
            if backoff.snooze() {
                continue;
            }
            crate::deadlock::sleeping();
            // Say "I sleep", then look once more: the peer either sees the flag after its
            // progress (and sends a byte) or made its progress before, which we see now.
            let flag = self.memory.flag(self.side);
            flag.store(1, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            let count = ready(self)?;
            if count >= needed {
                // A byte may still come if the peer took the flag; the next sleep reads it.
                flag.store(0, Ordering::SeqCst);
                return Ok(count);
            }
            let mut bytes = [0u8; 64];
            loop {
                match self.socket.read(&mut bytes) {
                    Ok(0) => return Err(peer_gone()),
                    Ok(_) => break,
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                    Err(error) => return Err(error),
                }
            }
            backoff = Backoff::new();
        }
    }

    /// Wakes the peer if it said it sleeps.
    ///
    /// A peer that is gone cannot be woken, and that is no error here: what was just read
    /// or written has been read or written (a reader must not lose a frame it already used
    /// because its writer died since), and the next wait sees the peer gone.
    fn wake_peer(&mut self) -> io::Result<()> {
        fence(Ordering::SeqCst);
        let flag = self.memory.flag(1 - self.side);
        if flag.load(Ordering::SeqCst) == 1 && flag.swap(0, Ordering::SeqCst) == 1 {
            let _ = self.socket.write_all(&[1]);
        }
        Ok(())
    }
}

/// Frames up to this size (header and padding included) are written in one contiguous piece
/// of the ring, and read where they lie: no copy into a frame buffer. Larger frames stream
/// through the ring in pieces.
const IN_PLACE: usize = CAPACITY / 2;

/// The most bytes the message before a value encoded into the ring may take (the requests
/// and replies that carry values take under 30); a longer one sends the value as
/// [`SharedStream::send_frame`] does.
const MESSAGE_ROOM: usize = 64;

/// The largest spill buffer a stream keeps for the next value.
const KEPT_SPARE: usize = 8 << 20;

/// A header saying "nothing more before the end of the ring: go on at its start", written when
/// a frame read in place would not fit before the end.
const WRAP: u32 = u32::MAX;

/// A cache line of the ring: a large value's encoding starts on one (see [`ALIGNED_FROM`]).
const LINE_BYTES: usize = 64;

/// Last parts at least this long start on a cache line of the ring. glibc's `memcpy` on this
/// class of AMD CPU runs many times slower for copies of 2 KiB to 512 KiB whose destination
/// lies 1 to 31 bytes past the source modulo 4 KiB; a 64-aligned ring position keeps copies
/// from and to 16-aligned heap buffers out of that window (almost always).
const ALIGNED_FROM: usize = 2048;

/// A frame's bytes without the bytes its writer skipped before them; `None` if the count of
/// bytes to skip runs past the frame.
fn skipped(body: &[u8]) -> Option<&[u8]> {
    let (&skip, rest) = body.split_first()?;
    rest.get(usize::from(skip)..)
}

/// `length` rounded up to whole headers: every frame starts 4-aligned, so a header never
/// straddles the end of the ring.
fn padded(length: usize) -> usize {
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
        let spare = std::mem::take(&mut self.spare);
        // SAFETY: `value_at..value_at + value_room` lies inside the data area and inside the
        // room the peer left (`writable`); the peer reads none of it before we publish a head
        // past it, and nothing else here writes the ring while the encoder lives.
        let mut encoder = unsafe {
            Encoder::into_region(self.memory.data(ring).add(value_at), value_room, spare)
        };
        let made = encode(&mut encoder);
        let mut message_bytes = std::mem::take(&mut self.message);
        message_bytes.clear();
        let send = message(&made, &mut message_bytes);
        let sent = if send {
            self.finish_encoded(head, value_at, encoder, &message_bytes)
        } else {
            self.keep_spare(encoder.into_buffer_parts());
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
            self.keep_spare(value);
            return sent;
        };
        self.keep_spare(encoder.into_buffer_parts());
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

    /// Keeps `buffer` for the next value that spills, unless it grew huge.
    fn keep_spare(&mut self, buffer: Vec<u8>) {
        if buffer.capacity() <= KEPT_SPARE {
            self.spare = buffer;
        }
    }

    /// Copies `bytes` to ring position `at` of the ring this side writes, in one piece.
    fn write_at(&mut self, at: u64, bytes: &[u8]) {
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

impl Read for SharedStream {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        if buffer.is_empty() {
            return Ok(0);
        }
        let count = self.wait_for(1, Self::readable)?.min(buffer.len());
        let ring = 1 - self.side;
        let tail = self.tail(ring).load(Ordering::Relaxed);
        let start = (tail % CAPACITY as u64) as usize;
        let first = count.min(CAPACITY - start);
        let data = self.memory.data(ring);
        // SAFETY: bytes `tail..tail + count` of the ring were published by the peer (its head
        // is past them, read with Acquire) and are not written again until our tail passes
        // them; both pieces lie inside the data area.
        unsafe {
            std::ptr::copy_nonoverlapping(data.add(start), buffer.as_mut_ptr(), first);
            std::ptr::copy_nonoverlapping(data, buffer.as_mut_ptr().add(first), count - first);
        }
        self.tail(ring)
            .store(tail.wrapping_add(count as u64), Ordering::Release);
        self.wake_peer()?;
        Ok(count)
    }
}

impl Write for SharedStream {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if bytes.is_empty() {
            return Ok(0);
        }
        let count = self.wait_for(1, Self::writable)?.min(bytes.len());
        let ring = self.side;
        let head = self.head(ring).load(Ordering::Relaxed);
        let start = (head % CAPACITY as u64) as usize;
        let first = count.min(CAPACITY - start);
        let data = self.memory.data(ring);
        // SAFETY: bytes `head..head + count` are free (the peer's tail is past them minus the
        // capacity, read with Acquire) and the peer reads them only after we publish the head;
        // both pieces lie inside the data area.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), data.add(start), first);
            std::ptr::copy_nonoverlapping(bytes.as_ptr().add(first), data, count - first);
        }
        self.head(ring)
            .store(head.wrapping_add(count as u64), Ordering::Release);
        self.wake_peer()?;
        Ok(count)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn with_setup_limit<T>(socket: &UnixStream, step: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    socket.set_read_timeout(Some(SETUP_LIMIT))?;
    let result = step();
    socket.set_read_timeout(None)?;
    result
}

fn read_byte(socket: &mut UnixStream) -> io::Result<u8> {
    let mut byte = [0u8];
    socket.read_exact(&mut byte)?;
    Ok(byte[0])
}

/// Offers a new shared-memory stream over `socket` (the connecting side). The acceptor must
/// call [`accept`] and nothing may be buffered on either side of the socket.
///
/// # Errors
///
/// If the memory cannot be made, or the peer does not ask for it or refuses it, within the
/// set-up limit; the socket is then in an unknown state and should be dropped.
pub(crate) fn offer(mut socket: UnixStream) -> io::Result<SharedStream> {
    with_setup_limit(&socket.try_clone()?, || {
        if read_byte(&mut socket)? != ASK {
            return Err(io::Error::other("the peer did not ask for shared memory"));
        }
        let memory = memfd_create(
            c"csp-stream",
            MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
        )?;
        nix::unistd::ftruncate(&memory, REGION as i64)?;
        fcntl(
            &memory,
            FcntlArg::F_ADD_SEALS(
                SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_SEAL,
            ),
        )?;
        let mapping = Mapping::map(&memory)?;
        let fds = [memory.as_raw_fd()];
        sendmsg::<()>(
            socket.as_raw_fd(),
            &[IoSlice::new(&[1])],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )?;
        if read_byte(&mut socket)? != ACCEPTED {
            return Err(io::Error::other("the peer refused the shared memory"));
        }
        Ok(SharedStream {
            memory: mapping,
            side: 0,
            socket,
            last_value: 0,
            spare: Vec::new(),
            message: Vec::new(),
            #[cfg(test)]
            spills: 0,
        })
    })
}

/// Accepts a shared-memory stream offered over `socket` (see [`offer`]).
///
/// # Errors
///
/// If no memory arrives within the set-up limit, or what arrives is not a sealed region of
/// the expected size.
pub(crate) fn accept(mut socket: UnixStream) -> io::Result<SharedStream> {
    with_setup_limit(&socket.try_clone()?, || {
        socket.write_all(&[ASK])?;
        let mut byte = [0u8];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let received = {
            let mut buffers = [IoSliceMut::new(&mut byte)];
            let message = recvmsg::<()>(
                socket.as_raw_fd(),
                &mut buffers,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            )?;
            let mut fds = Vec::new();
            for control in message.cmsgs()? {
                if let ControlMessageOwned::ScmRights(received) = control {
                    fds.extend(received);
                }
            }
            fds
        };
        // SAFETY: the kernel just gave us these descriptors; nothing else owns them.
        let mut owned: Vec<OwnedFd> = received
            .into_iter()
            .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
            .collect();
        let memory = match (owned.pop(), owned.is_empty()) {
            (Some(memory), true) => memory,
            _ => return Err(io::Error::other("expected exactly one memory descriptor")),
        };
        let size = nix::sys::stat::fstat(&memory)?.st_size;
        let seals = fcntl(&memory, FcntlArg::F_GET_SEALS)?;
        let sealed = SealFlag::from_bits_truncate(seals).contains(SealFlag::F_SEAL_SHRINK);
        if size != REGION as i64 || !sealed {
            return Err(io::Error::other(
                "the offered memory is not a sealed region of the expected size",
            ));
        }
        let mapping = Mapping::map(&memory)?;
        socket.write_all(&[ACCEPTED])?;
        Ok(SharedStream {
            memory: mapping,
            side: 1,
            socket,
            last_value: 0,
            spare: Vec::new(),
            message: Vec::new(),
            #[cfg(test)]
            spills: 0,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    fn pair() -> (SharedStream, SharedStream) {
        let (a, b) = UnixStream::pair().unwrap();
        let accepting = thread::spawn(move || accept(b));
        let offered = offer(a).expect("offer");
        let accepted = accepting.join().unwrap().expect("accept");
        (offered, accepted)
    }

    #[test]
    fn bytes_cross_in_order_in_both_directions_beyond_the_ring_size() {
        let (mut a, mut b) = pair();
        let sent: Vec<u8> = (0..3 * CAPACITY + 17).map(|i| (i % 251) as u8).collect();
        let expected = sent.clone();
        let echo = thread::spawn(move || {
            let mut received = vec![0u8; expected.len()];
            b.read_exact(&mut received).unwrap();
            assert_eq!(received, expected);
            b.write_all(&received).unwrap();
        });
        a.write_all(&sent).unwrap();
        let mut back = vec![0u8; sent.len()];
        a.read_exact(&mut back).unwrap();
        assert_eq!(back, sent);
        echo.join().unwrap();
    }

    /// Frame sizes that read in place, wrap the ring's end, and stream through it in pieces.
    fn frame_sizes() -> Vec<usize> {
        let mut sizes: Vec<usize> = (0..40).map(|i| i * 7919 % (IN_PLACE - 4)).collect();
        sizes.extend([
            0,
            1,
            2,
            3,
            5,
            IN_PLACE - 4,
            IN_PLACE - 3,
            IN_PLACE,
            CAPACITY,
            3 * CAPACITY + 1,
        ]);
        sizes.extend((0..40).map(|i| 65_536 + i));
        sizes
    }

    fn frame(size: usize, seed: usize) -> Vec<u8> {
        (0..size).map(|i| ((i + seed) % 253) as u8).collect()
    }

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

    #[test]
    fn values_encoded_into_the_ring_arrive_whole_in_order_of_every_size() {
        let (mut a, mut b) = pair();
        let sizes = frame_sizes();
        let expected = sizes.clone();
        // Sent ahead of the reader (the ring fills and wraps), then all sent back.
        let reading = thread::spawn(move || {
            let mut buffer = Vec::new();
            for (seed, &size) in expected.iter().enumerate() {
                let message = vec![seed as u8; seed % 70];
                let whole = b
                    .receive_frame(&mut buffer, |bytes| {
                        bytes == expected_frame(&message, &frame(size, seed))
                    })
                    .unwrap();
                assert!(whole, "frame {seed}: a value of {size} bytes");
            }
            for (seed, &size) in expected.iter().enumerate() {
                send_encoded(&mut b, &vec![seed as u8; seed % 70], &frame(size, seed));
            }
        });
        for (seed, &size) in sizes.iter().enumerate() {
            send_encoded(&mut a, &vec![seed as u8; seed % 70], &frame(size, seed));
        }
        let too_large = sizes.iter().filter(|&&size| size + 200 > IN_PLACE).count();
        assert!(
            a.spills >= too_large && a.spills < sizes.len() / 2,
            "{} of {} values spilled, {too_large} too large for the ring",
            a.spills,
            sizes.len()
        );
        let mut buffer = Vec::new();
        for (seed, &size) in sizes.iter().enumerate() {
            let message = vec![seed as u8; seed % 70];
            let whole = a
                .receive_frame(&mut buffer, |bytes| {
                    bytes == expected_frame(&message, &frame(size, seed))
                })
                .unwrap();
            assert!(whole, "frame {seed} came back");
        }
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

    #[test]
    fn a_reader_whose_peer_is_gone_gets_an_error_not_a_hang() {
        let (mut a, b) = pair();
        let dropping = thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            drop(b);
        });
        let mut byte = [0u8];
        let error = a.read(&mut byte).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::BrokenPipe);
        dropping.join().unwrap();
    }

    #[test]
    fn corrupted_positions_are_an_error() {
        let (mut a, b) = pair();
        // The peer "publishes" more than the ring holds.
        b.head(1).store(CAPACITY as u64 + 1, Ordering::Release);
        let mut byte = [0u8];
        assert_eq!(
            a.read(&mut byte).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }

    #[test]
    fn memory_that_is_not_sealed_is_refused() {
        let (mut a, b) = UnixStream::pair().unwrap();
        let accepting = thread::spawn(move || accept(b));
        assert_eq!(read_byte(&mut a).unwrap(), ASK);
        let memory = memfd_create(c"unsealed", MFdFlags::MFD_CLOEXEC).unwrap();
        nix::unistd::ftruncate(&memory, REGION as i64).unwrap();
        let fds = [memory.as_raw_fd()];
        sendmsg::<()>(
            a.as_raw_fd(),
            &[IoSlice::new(&[1])],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )
        .unwrap();
        let error = accepting.join().unwrap().unwrap_err();
        assert!(error.to_string().contains("sealed"), "{error}");
    }

    #[test]
    fn an_acceptor_that_gets_no_memory_gives_up() {
        let (a, b) = UnixStream::pair().unwrap();
        drop(a);
        assert!(accept(b).is_err());
    }
}
