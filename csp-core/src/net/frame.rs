//! Length-prefixed frames over any byte stream.
//!
//! A frame is a 4-byte little-endian length followed by that many bytes. The length is checked
//! against a limit *before* anything is allocated, so a hostile or corrupted peer can make the
//! reader fail but never make it allocate without bound. The framing knows nothing of the
//! transport (Unix socket now, TCP later) nor of what the bytes mean.

use std::io::{self, Read, Write};

/// The largest frame accepted unless configured otherwise: the most a 4-byte length can say.
///
/// Frames are read only after the peer authenticated, and a frame's buffer grows with the
/// bytes that actually arrive, so the limit guards the length field, not memory; a lower limit
/// would make values above it undeliverable after a reader took them.
pub const DEFAULT_FRAME_LIMIT: usize = u32::MAX as usize;

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed the connection cleanly between frames.
    #[error("the connection was closed")]
    Closed,
    /// The connection ended inside a frame.
    #[error("the connection ended inside a frame ({got} of {expected} bytes)")]
    Truncated {
        /// Bytes received.
        got: usize,
        /// Bytes the frame announced (including its header while the header is incomplete).
        expected: usize,
    },
    /// The frame announced more bytes than allowed.
    #[error("a frame of {announced} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The announced length.
        announced: usize,
        /// The limit.
        limit: usize,
    },
    /// The transport failed.
    #[error("transport error: {0}")]
    Io(#[from] io::Error),
}

/// Reads `buffer.len()` bytes, telling a clean end (no byte read) from a truncated one.
fn read_full(stream: &mut impl Read, buffer: &mut [u8], expected: usize) -> Result<(), FrameError> {
    let mut got = 0;
    while got < buffer.len() {
        match stream.read(&mut buffer[got..]) {
            Ok(0) if got == 0 => return Err(FrameError::Closed),
            Ok(0) => return Err(FrameError::Truncated { got, expected }),
            Ok(n) => got += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(FrameError::Io(error)),
        }
    }
    Ok(())
}

/// Reads one frame into `buffer` (replacing its contents).
///
/// # Errors
///
/// [`FrameError::Closed`] at a clean end of stream, [`FrameError::Truncated`] if the stream
/// ends inside a frame, [`FrameError::TooLarge`] if the announced length exceeds `limit`
/// (nothing is allocated for it), [`FrameError::Io`] if the transport fails.
pub fn read_frame<R: Read>(
    stream: &mut R,
    buffer: &mut Vec<u8>,
    limit: usize,
) -> Result<(), FrameError> {
    let mut header = [0u8; 4];
    read_full(stream, &mut header, 4)?;
    let announced = u32::from_le_bytes(header) as usize;
    if announced > limit {
        return Err(FrameError::TooLarge { announced, limit });
    }
    read_body(stream, buffer, announced)
}

/// Reads the `announced` bytes of a frame whose header was read, into `buffer` (replacing
/// its contents).
///
/// # Errors
///
/// [`FrameError::Truncated`] if the stream ends first, [`FrameError::Io`] if the transport
/// fails.
pub(crate) fn read_body<R: Read>(
    stream: &mut R,
    buffer: &mut Vec<u8>,
    announced: usize,
) -> Result<(), FrameError> {
    buffer.clear();
    // Grow with what actually arrives: a header alone cannot make us allocate `limit` bytes.
    // Once the first part has arrived, reserve the rest at once instead of doubling.
    let first = announced.min(INITIAL_RESERVE);
    buffer.reserve(first);
    let mut got = stream.take(first as u64).read_to_end(buffer)?;
    if got == first && announced > first {
        buffer.reserve_exact(announced - first);
        got += stream
            .take((announced - first) as u64)
            .read_to_end(buffer)?;
    }
    if got < announced {
        return Err(FrameError::Truncated {
            got,
            expected: announced,
        });
    }
    Ok(())
}

/// How much a frame's buffer reserves before its bytes arrive.
const INITIAL_RESERVE: usize = 64 << 10;

/// Writes one frame holding `payload`.
///
/// # Errors
///
/// [`FrameError::TooLarge`] if `payload` exceeds `limit` (nothing is written);
/// [`FrameError::Io`] if the transport fails.
pub fn write_frame(
    stream: &mut impl Write,
    payload: &[u8],
    limit: usize,
) -> Result<(), FrameError> {
    if payload.len() > limit || u32::try_from(payload.len()).is_err() {
        return Err(FrameError::TooLarge {
            announced: payload.len(),
            limit,
        });
    }
    let header = (payload.len() as u32).to_le_bytes();
    stream.write_all(&header)?;
    stream.write_all(payload)?;
    stream.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn frames_round_trip_and_end_cleanly() {
        let mut wire = Vec::new();
        write_frame(&mut wire, b"hello", 64).unwrap();
        write_frame(&mut wire, b"", 64).unwrap();
        let mut reader = wire.as_slice();
        let mut buffer = Vec::new();
        read_frame(&mut reader, &mut buffer, 64).unwrap();
        assert_eq!(buffer, b"hello");
        read_frame(&mut reader, &mut buffer, 64).unwrap();
        assert!(buffer.is_empty());
        assert!(matches!(
            read_frame(&mut reader, &mut buffer, 64),
            Err(FrameError::Closed)
        ));
    }

    #[test]
    fn an_oversized_frame_is_refused_before_allocating() {
        let mut wire = u32::MAX.to_le_bytes().to_vec();
        wire.extend_from_slice(b"tiny");
        let mut buffer = Vec::new();
        match read_frame(&mut wire.as_slice(), &mut buffer, 1024) {
            Err(FrameError::TooLarge { announced, limit }) => {
                assert_eq!((announced, limit), (u32::MAX as usize, 1024));
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
        assert_eq!(buffer.capacity(), 0, "nothing was allocated for the frame");
        assert!(matches!(
            write_frame(&mut Vec::new(), &[0; 10], 5),
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[test]
    fn truncation_is_reported_with_sizes() {
        let mut wire = Vec::new();
        write_frame(&mut wire, b"abcdef", 64).unwrap();
        for cut in 1..wire.len() {
            let mut buffer = Vec::new();
            match read_frame(&mut &wire[..cut], &mut buffer, 64) {
                Err(FrameError::Truncated { .. }) => {}
                other => panic!("cut at {cut}: expected Truncated, got {other:?}"),
            }
        }
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic_and_stay_bounded(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let mut reader = bytes.as_slice();
            let mut buffer = Vec::new();
            while read_frame(&mut reader, &mut buffer, 100).is_ok() {
                prop_assert!(buffer.len() <= 100);
            }
            prop_assert!(buffer.capacity() <= 256, "allocation bounded by the input, not the header");
        }
    }
}
