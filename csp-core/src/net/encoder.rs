//! Where a value's encoding goes as postcard makes it: straight into the frame being sent.
//!
//! A value sent to another OS process used to be encoded into a buffer and then copied into
//! the shared-memory ring (see [`shared_memory`](super::shared_memory)): two copies of every
//! byte on the sending side, about a microsecond each for 64 KiB. An [`Encoder`] writes into
//! the room of the ring the frame will occupy, unpublished, so the encoding *is* the frame.
//! A value that outgrows that room *spills*: what was written moves to a buffer and the rest
//! follows it there, and the frame is then sent from the buffer, as before. An encoder without
//! any room (a socket connection, a value kept for later) encodes into its buffer from the
//! start. The buffers themselves are kept per thread between values ([`spare_buffer`],
//! [`recycle`]): buffers of large values come from fresh pages each time they are allocated
//! anew.

#![allow(unsafe_code)]

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::marker::PhantomData;

use serde::Serialize;

/// A postcard output writing into a region of memory while it fits, then into a buffer, a
/// slice at a time. (postcard's own `to_extend` pushes the bytes of a slice one by one: a
/// 64 KiB byte string took as long to encode as two copies of it.)
///
/// Write with [`postcard::serialize_with_flavor`] through `&mut Encoder`.
pub(crate) struct Encoder<'a> {
    /// The region (unpublished room of a ring) and how many bytes it takes.
    region: *mut u8,
    room: usize,
    /// Bytes written into the region.
    written: usize,
    /// The buffer; holds the whole encoding once `spilled`.
    buffer: Vec<u8>,
    spilled: bool,
    /// The region is borrowed from whoever made the encoder, for as long as it lives.
    _region: PhantomData<&'a mut [u8]>,
}

impl<'a> Encoder<'a> {
    /// An encoder into `room` bytes at `region`, spilling into `buffer` (cleared first).
    ///
    /// # Safety
    ///
    /// `region..region + room` must be writable memory that nothing else reads or writes
    /// while the encoder lives (`'a`).
    pub(crate) unsafe fn over_region(region: *mut u8, room: usize, mut buffer: Vec<u8>) -> Self {
        buffer.clear();
        Encoder {
            region,
            room,
            written: 0,
            buffer,
            spilled: false,
            _region: PhantomData,
        }
    }

    /// An encoder into `buffer` alone, after what it holds.
    pub(crate) fn over_buffer(buffer: Vec<u8>) -> Encoder<'static> {
        Encoder {
            region: std::ptr::null_mut(),
            room: 0,
            written: 0,
            buffer,
            spilled: true,
            _region: PhantomData,
        }
    }

    /// The bytes written into the region, `None` if the encoding spilled into the buffer.
    pub(crate) fn in_region(&self) -> Option<usize> {
        (!self.spilled).then_some(self.written)
    }

    /// How many bytes the encoding has taken so far, wherever they are.
    pub(crate) fn len(&self) -> usize {
        if self.spilled {
            self.buffer.len()
        } else {
            self.written
        }
    }

    /// The buffer, with the whole encoding if it spilled (else whatever it held), to keep
    /// for the next encoding.
    pub(crate) fn into_buffer(self) -> Vec<u8> {
        self.buffer
    }

    /// The encoding, moved into the buffer if it is still in the region.
    pub(crate) fn into_bytes(mut self) -> Vec<u8> {
        self.spill();
        self.buffer
    }

    /// Moves what the region holds to the buffer; the rest goes there too.
    fn spill(&mut self) {
        if self.spilled {
            return;
        }
        // SAFETY: `written` bytes of the region were written by this encoder (see
        // `over_region` for the region's validity).
        let written = unsafe { std::slice::from_raw_parts(self.region, self.written) };
        self.buffer.extend_from_slice(written);
        self.spilled = true;
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        if !self.spilled {
            if bytes.len() <= self.room - self.written {
                // SAFETY: in the region (checked just above), which this encoder may write.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        bytes.as_ptr(),
                        self.region.add(self.written),
                        bytes.len(),
                    );
                }
                self.written += bytes.len();
                return;
            }
            self.spill();
        }
        self.buffer.extend_from_slice(bytes);
    }
}

impl postcard::ser_flavors::Flavor for &mut Encoder<'_> {
    type Output = ();

    #[inline]
    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.write(&[byte]);
        Ok(())
    }

    #[inline]
    fn try_extend(&mut self, bytes: &[u8]) -> postcard::Result<()> {
        self.write(bytes);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Encodes a value of a channel's element type `T` into `encoder`, with postcard: the
/// function a remote writer of `T` keeps.
///
/// A `Vec<u8>` goes as the byte string it is. serde hands a `Vec<u8>` over one element at a
/// time (it cannot tell it from any other `Vec`), which made a 64 KiB vector take 16 times
/// as long to cross as a `serde_bytes::ByteBuf`; postcard writes both the same way, a
/// length and then the bytes, so the encoding does not change. (Inside a type of one's own,
/// `#[serde(with = "serde_bytes")]` does the same.)
pub(crate) fn encode<T: serde::Serialize + 'static>(
    value: &T,
    encoder: &mut Encoder<'_>,
) -> postcard::Result<()> {
    if let Some(bytes) = (value as &dyn Any).downcast_ref::<Vec<u8>>() {
        return postcard::serialize_with_flavor(serde_bytes::Bytes::new(bytes), encoder);
    }
    postcard::serialize_with_flavor(value, encoder)
}

/// Decodes a value of a channel's element type `T` from `bytes`, as [`encode`] encoded it.
pub(crate) fn decode<T: serde::de::DeserializeOwned + 'static>(
    bytes: &[u8],
) -> postcard::Result<T> {
    if TypeId::of::<T>() == TypeId::of::<Vec<u8>>() {
        let bytes: serde_bytes::ByteBuf = postcard::from_bytes(bytes)?;
        let vector: Box<dyn Any> = Box::new(bytes.into_vec());
        return Ok(*vector
            .downcast::<T>()
            .unwrap_or_else(|_| unreachable!("T is Vec<u8>")));
    }
    postcard::from_bytes(bytes)
}

thread_local! {
    /// A spare buffer for encoding values sent from this thread, kept between messages:
    /// buffers of large values come from fresh pages each time they are allocated anew.
    static SPARE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The most a spare encoding buffer keeps.
const KEPT_SPARE: usize = 8 << 20;

/// This thread's spare encoding buffer, empty; give it back with [`recycle`].
pub(crate) fn spare_buffer() -> Vec<u8> {
    let mut buffer = SPARE.with(|spare| std::mem::take(&mut *spare.borrow_mut()));
    buffer.clear();
    buffer
}

/// Encodes `value` after what `buffer` holds (a message, typically: small, and never
/// written into a ring).
pub(crate) fn encode_into<T: Serialize + ?Sized>(
    value: &T,
    buffer: &mut Vec<u8>,
) -> postcard::Result<()> {
    let mut encoder = Encoder::over_buffer(std::mem::take(buffer));
    let encoded = postcard::serialize_with_flavor(value, &mut encoder);
    *buffer = encoder.into_bytes();
    encoded
}

/// Runs `encode` on an encoder into this thread's spare buffer: what it gave, and the
/// encoding (give it back with [`recycle`]).
pub(crate) fn encode_to_spare<R>(encode: impl FnOnce(&mut Encoder<'_>) -> R) -> (R, Vec<u8>) {
    let mut encoder = Encoder::over_buffer(spare_buffer());
    let made = encode(&mut encoder);
    (made, encoder.into_bytes())
}

/// Keeps an encoding buffer for this thread's next [`spare_buffer`].
pub(crate) fn recycle(buffer: Vec<u8>) {
    if buffer.capacity() <= KEPT_SPARE {
        SPARE.with(|spare| {
            let mut spare = spare.borrow_mut();
            if buffer.capacity() >= spare.capacity() {
                *spare = buffer;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded_in(
        room: usize,
        value: &(impl serde::Serialize + 'static),
    ) -> (Option<usize>, Vec<u8>, Vec<u8>) {
        let mut region = vec![0u8; room];
        let mut encoder = unsafe { Encoder::over_region(region.as_mut_ptr(), room, Vec::new()) };
        encode(value, &mut encoder).unwrap();
        let in_region = encoder.in_region();
        let bytes = encoder.into_bytes();
        (in_region, bytes, region)
    }

    #[test]
    fn an_encoding_that_fits_stays_in_the_region_and_is_postcards() {
        let value = (
            7u32,
            serde_bytes::ByteBuf::from(vec![5u8; 300]),
            "end".to_string(),
        );
        let expected = postcard::to_stdvec(&value).unwrap();
        let (in_region, bytes, region) = encoded_in(expected.len(), &value);
        assert_eq!(in_region, Some(expected.len()));
        assert_eq!(bytes, expected);
        assert_eq!(region, expected, "written where it was to go");
    }

    #[test]
    fn an_encoding_that_outgrows_its_region_spills_whole_into_the_buffer() {
        let value = (
            vec![1u16, 300, 60_000],
            serde_bytes::ByteBuf::from(vec![9u8; 1000]),
        );
        let expected = postcard::to_stdvec(&value).unwrap();
        for room in [0, 1, 5, 8, expected.len() - 1] {
            let (in_region, bytes, _) = encoded_in(room, &value);
            assert_eq!(in_region, None, "room {room}");
            assert_eq!(bytes, expected, "room {room}");
        }
    }

    #[test]
    fn a_byte_vector_is_encoded_and_decoded_as_postcard_does_it_element_by_element() {
        for length in [0usize, 1, 127, 128, 65_536] {
            let vector: Vec<u8> = (0..length).map(|i| (i % 251) as u8).collect();
            let mut encoder = Encoder::over_buffer(Vec::new());
            encode(&vector, &mut encoder).unwrap();
            let bytes = encoder.into_bytes();
            assert_eq!(
                bytes,
                postcard::to_stdvec(&vector).unwrap(),
                "{length} bytes"
            );
            assert_eq!(decode::<Vec<u8>>(&bytes).unwrap(), vector);
            assert_eq!(postcard::from_bytes::<Vec<u8>>(&bytes).unwrap(), vector);
        }
        // Other types go through serde as they are.
        let words = vec![1u16, 300];
        let mut encoder = Encoder::over_buffer(Vec::new());
        encode(&words, &mut encoder).unwrap();
        let bytes = encoder.into_bytes();
        assert_eq!(bytes, postcard::to_stdvec(&words).unwrap());
        assert_eq!(decode::<Vec<u16>>(&bytes).unwrap(), words);
        assert!(
            decode::<Vec<u8>>(&bytes[..2]).is_err(),
            "a truncated vector is refused"
        );
    }

    #[test]
    fn an_encoder_without_a_region_appends_to_its_buffer() {
        let mut encoder = Encoder::over_buffer(b"head".to_vec());
        encode(&"tail", &mut encoder).unwrap();
        assert_eq!(encoder.in_region(), None);
        assert_eq!(encoder.len(), 9);
        assert_eq!(encoder.into_bytes(), b"head\x04tail");
    }
}
