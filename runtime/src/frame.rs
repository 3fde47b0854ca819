//! Length-prefixed frames on a byte stream, shared by the peer and client protocols.
//!
//! A frame is a 4-byte big-endian length followed by that many payload bytes. The length is
//! checked against the caller's limit *before* anything is allocated, and the payload buffer
//! then grows only as bytes actually arrive, so a hostile or corrupted length can neither make
//! the reader allocate gigabytes nor wait for them with a huge buffer in hand.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Bytes of the length prefix.
pub const PREFIX_BYTES: usize = 4;
/// The buffer a frame starts with; larger frames grow it as their bytes arrive.
const INITIAL_BUFFER_BYTES: usize = 64 * 1024;

/// Why a frame could not be read or written. Every one of them closes the connection.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed the connection between frames (the normal end).
    #[error("connection closed")]
    Closed,
    /// The length prefix exceeds the limit.
    #[error("frame of {len} bytes exceeds the {max} byte limit")]
    TooLarge {
        /// Claimed length.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// The connection ended inside a frame.
    #[error("connection closed inside a frame ({got} of {want} bytes)")]
    Truncated {
        /// Bytes received.
        got: usize,
        /// Bytes the prefix announced.
        want: usize,
    },
    /// The socket failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads one frame's payload, refusing frames over `max` bytes.
///
/// # Errors
/// See [`FrameError`]; [`FrameError::Closed`] for a clean end of stream before a prefix.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> Result<Vec<u8>, FrameError> {
    let mut prefix = [0u8; PREFIX_BYTES];
    let mut got = 0;
    while got < PREFIX_BYTES {
        let n = reader.read(&mut prefix[got..]).await?;
        if n == 0 {
            return Err(if got == 0 {
                FrameError::Closed
            } else {
                FrameError::Truncated {
                    got,
                    want: PREFIX_BYTES,
                }
            });
        }
        got += n;
    }
    let len = u32::from_be_bytes(prefix) as usize;
    if len > max {
        return Err(FrameError::TooLarge {
            len: len as u64,
            max,
        });
    }
    let mut payload = Vec::with_capacity(len.min(INITIAL_BUFFER_BYTES));
    let read = reader.take(len as u64).read_to_end(&mut payload).await?;
    if read < len {
        return Err(FrameError::Truncated {
            got: read,
            want: len,
        });
    }
    debug_assert_eq!(payload.len(), len);
    Ok(payload)
}

/// Writes one frame (prefix and payload) and flushes it.
///
/// # Errors
/// A payload over `max` bytes (or over `u32::MAX`), or a socket error.
pub async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    payload: &[u8],
    max: usize,
) -> Result<(), FrameError> {
    if payload.len() > max || u32::try_from(payload.len()).is_err() {
        return Err(FrameError::TooLarge {
            len: payload.len() as u64,
            max,
        });
    }
    let prefix = (payload.len() as u32).to_be_bytes();
    writer.write_all(&prefix).await?;
    writer.write_all(payload).await?;
    writer.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trip_and_limits() {
        let mut buf = Vec::new();
        write_frame(&mut buf, b"hello", 16).await.unwrap();
        write_frame(&mut buf, b"", 16).await.unwrap();
        let mut reader = &buf[..];
        assert_eq!(read_frame(&mut reader, 16).await.unwrap(), b"hello");
        assert_eq!(read_frame(&mut reader, 16).await.unwrap(), b"");
        assert!(matches!(
            read_frame(&mut reader, 16).await,
            Err(FrameError::Closed)
        ));
        assert!(matches!(
            write_frame(&mut Vec::new(), &[0; 17], 16).await,
            Err(FrameError::TooLarge { len: 17, max: 16 })
        ));
    }

    #[tokio::test]
    async fn a_huge_prefix_is_refused_before_reading_on() {
        let bytes = [0xff, 0xff, 0xff, 0xff, 1, 2, 3];
        let result = read_frame(&mut &bytes[..], 1 << 20).await;
        assert!(
            matches!(result, Err(FrameError::TooLarge { .. })),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn a_short_frame_is_truncated() {
        let bytes = [0, 0, 0, 9, 1, 2, 3];
        let result = read_frame(&mut &bytes[..], 64).await;
        assert!(
            matches!(result, Err(FrameError::Truncated { got: 3, want: 9 })),
            "{result:?}"
        );
        let result = read_frame(&mut &bytes[..2], 64).await;
        assert!(
            matches!(result, Err(FrameError::Truncated { got: 2, want: 4 })),
            "{result:?}"
        );
    }
}
