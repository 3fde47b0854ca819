//! Record framing shared by WAL segments.
//!
//! A frame is a 12-byte header followed by the payload:
//!
//! ```text
//! +-------------+--------------+-----------------+------------------+
//! | len: u32 LE | !len: u32 LE | crc32(payload)  | payload (len B)  |
//! +-------------+--------------+-----------------+------------------+
//! ```
//!
//! The complemented length makes a damaged length field detectable on its own, so a flipped
//! bit in a header is reported as corruption instead of looking like a record that runs past
//! the end of the file (which would be mistaken for a torn tail).

/// Bytes in a frame header.
pub(crate) const HEADER_BYTES: usize = 12;

/// Largest payload a frame may carry; larger lengths are corruption, never allocations.
pub(crate) const PAYLOAD_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Appends one frame holding `payload` to `out`.
#[cfg(test)]
pub(crate) fn encode_frame(payload: &[u8], out: &mut Vec<u8>) {
    assert!(
        payload.len() <= PAYLOAD_BYTES_MAX,
        "record too large for a frame"
    );
    let len = payload.len() as u32;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(!len).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// Appends one frame whose payload `write` appends to the buffer, so the payload is encoded
/// in place instead of in a temporary vector.
pub(crate) fn encode_frame_with(out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_BYTES]);
    write(out);
    let payload_len = out.len() - start - HEADER_BYTES;
    assert!(
        payload_len <= PAYLOAD_BYTES_MAX,
        "record too large for a frame"
    );
    let len = payload_len as u32;
    let crc = crc32fast::hash(&out[start + HEADER_BYTES..]);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&(!len).to_le_bytes());
    out[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes());
}

/// What was found at one position of a segment.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame<'a> {
    /// A complete record with a valid checksum, and the offset just after it.
    Record { payload: &'a [u8], end: usize },
    /// The bytes end in the middle of a header or payload: a torn write.
    Incomplete,
    /// A complete header or record that fails its checks.
    Corrupt(&'static str),
}

/// Parses the frame starting at `offset` in `bytes`.
pub(crate) fn decode_frame(bytes: &[u8], offset: usize) -> Frame<'_> {
    assert!(offset <= bytes.len());
    let rest = &bytes[offset..];
    if rest.len() < HEADER_BYTES {
        return Frame::Incomplete;
    }
    let word = |i: usize| u32::from_le_bytes(rest[i..i + 4].try_into().expect("4 bytes"));
    let (len, len_check, crc) = (word(0), word(4), word(8));
    if len != !len_check {
        return Frame::Corrupt("damaged length field");
    }
    let len = len as usize;
    if len > PAYLOAD_BYTES_MAX {
        return Frame::Corrupt("record length exceeds the maximum");
    }
    if rest.len() - HEADER_BYTES < len {
        return Frame::Incomplete;
    }
    let payload = &rest[HEADER_BYTES..HEADER_BYTES + len];
    if crc32fast::hash(payload) != crc {
        return Frame::Corrupt("checksum mismatch");
    }
    Frame::Record {
        payload,
        end: offset + HEADER_BYTES + len,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(payloads: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in payloads {
            encode_frame(p, &mut out);
        }
        out
    }

    #[test]
    fn in_place_encoding_matches() {
        let mut a = Vec::new();
        encode_frame(b"payload", &mut a);
        let mut b = Vec::new();
        encode_frame_with(&mut b, |buf| buf.extend_from_slice(b"payload"));
        assert_eq!(a, b);
    }

    #[test]
    fn round_trip() {
        let bytes = framed(&[b"one", b"", b"three"]);
        let Frame::Record { payload, end } = decode_frame(&bytes, 0) else {
            panic!()
        };
        assert_eq!(payload, b"one");
        let Frame::Record { payload, end } = decode_frame(&bytes, end) else {
            panic!()
        };
        assert_eq!(payload, b"");
        let Frame::Record { payload, end } = decode_frame(&bytes, end) else {
            panic!()
        };
        assert_eq!(payload, b"three");
        assert_eq!(end, bytes.len());
    }

    #[test]
    fn every_proper_prefix_is_incomplete() {
        let bytes = framed(&[b"hello world"]);
        for cut in 0..bytes.len() {
            assert_eq!(
                decode_frame(&bytes[..cut], 0),
                Frame::Incomplete,
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn flipped_bits_are_corruption_not_torn() {
        let bytes = framed(&[b"hello world"]);
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x10;
            assert!(
                matches!(decode_frame(&damaged, 0), Frame::Corrupt(_)),
                "byte {i}"
            );
        }
    }

    #[test]
    fn huge_length_is_rejected_without_allocation() {
        let len = u32::MAX - 1;
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes.extend_from_slice(&(!len).to_le_bytes());
        bytes.extend_from_slice(&[0; 4]);
        assert_eq!(
            decode_frame(&bytes, 0),
            Frame::Corrupt("record length exceeds the maximum")
        );
    }
}
