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
//!
//! This file holds the rings and the byte stream over them; `frames` the frames (read where
//! they lie, or streamed in pieces), `encoded` the frames whose value is encoded straight
//! into the ring, and `setup` the offer and the acceptance.

#![allow(unsafe_code)]

use std::io::{self, Read, Write};
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

use nix::sys::mman::{MapFlags, ProtFlags, mmap, munmap};

use crate::wait::Backoff;

mod encoded;
mod frames;
mod setup;

pub(crate) use setup::{accept, offer};

/// Bytes of data in each direction's ring (a power of two).
const CAPACITY: usize = 256 << 10;
/// Room for one atomic counter on a cache line of its own.
const LINE: usize = 128;
/// The region: a line for each side's "I sleep" flag, then per ring a line for its head
/// (bytes written), a line for its tail (bytes read), and its data.
const RING: usize = 2 * LINE + CAPACITY;
const REGION: usize = 2 * LINE + 2 * RING;

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;
    use std::time::Duration;

    pub(super) fn pair() -> (SharedStream, SharedStream) {
        let (a, b) = UnixStream::pair().unwrap();
        let accepting = thread::spawn(move || accept(b));
        let offered = offer(a).expect("offer");
        let accepted = accepting.join().unwrap().expect("accept");
        (offered, accepted)
    }

    /// Frame sizes that read in place, wrap the ring's end, and stream through it in pieces.
    pub(super) fn frame_sizes() -> Vec<usize> {
        let mut sizes: Vec<usize> = (0..40).map(|i| i * 7919 % (frames::IN_PLACE - 4)).collect();
        sizes.extend([
            0,
            1,
            2,
            3,
            5,
            frames::IN_PLACE - 4,
            frames::IN_PLACE - 3,
            frames::IN_PLACE,
            CAPACITY,
            3 * CAPACITY + 1,
        ]);
        sizes.extend((0..40).map(|i| 65_536 + i));
        sizes
    }

    pub(super) fn frame(size: usize, seed: usize) -> Vec<u8> {
        (0..size).map(|i| ((i + seed) % 253) as u8).collect()
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
}
