//! Where a value's encoding goes as postcard makes it: straight into the frame being sent.
//!
//! A value sent to another OS process used to be encoded into a buffer and then copied into
//! the shared-memory ring (see [`shared_memory`](super::shared_memory)): two copies of every
//! byte on the sending side, about a microsecond each for 64 KiB. An [`Encoder`] writes into
//! the room of the ring the frame will occupy, unpublished, so the encoding *is* the frame.
//! A value that outgrows that room *spills*: what was written moves to a buffer and the rest
//! follows it there, and the frame is then sent from the buffer, as before. An encoder without
//! any room (a socket connection, a value kept for later) encodes into its buffer from the
//! start.

#![allow(unsafe_code)]

use std::marker::PhantomData;

/// A postcard output writing into a region of memory while it fits, then into a buffer.
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
    pub(crate) unsafe fn into_region(region: *mut u8, room: usize, mut buffer: Vec<u8>) -> Self {
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
    pub(crate) fn into_buffer(buffer: Vec<u8>) -> Encoder<'static> {
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

    /// The buffer, with the whole encoding if it spilled (else whatever it held).
    pub(crate) fn into_buffer_parts(self) -> Vec<u8> {
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
        // `into_region` for the region's validity).
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

/// Encodes `value` with postcard into `encoder`: the function a remote writer of `T` keeps.
pub(crate) fn encode<T: serde::Serialize>(
    value: &T,
    encoder: &mut Encoder<'_>,
) -> postcard::Result<()> {
    postcard::serialize_with_flavor(value, encoder)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded_in(room: usize, value: &impl serde::Serialize) -> (Option<usize>, Vec<u8>, Vec<u8>) {
        let mut region = vec![0u8; room];
        let mut encoder = unsafe { Encoder::into_region(region.as_mut_ptr(), room, Vec::new()) };
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
    fn an_encoder_without_a_region_appends_to_its_buffer() {
        let mut encoder = Encoder::into_buffer(b"head".to_vec());
        encode(&"tail", &mut encoder).unwrap();
        assert_eq!(encoder.in_region(), None);
        assert_eq!(encoder.len(), 9);
        assert_eq!(encoder.into_bytes(), b"head\x04tail");
    }
}
