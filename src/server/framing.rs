//! Reading request frames off a socket. What a frame says (its header and body) is the
//! handlers' business: see `handlers::codec`.
//!
//! A frame is an i32 size followed by that many bytes. Sizes below the smallest possible request
//! header, or above `socket.request.max.bytes`, end the connection. The body buffer grows as
//! bytes actually arrive, so a client that declares 100 MiB and sends nothing costs nothing.

use std::io;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::handlers::codec::MIN_FRAME;

const READ_CHUNK: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("connection closed")]
    Closed,
    #[error("connection idle for longer than {0:?}")]
    Idle(Duration),
    #[error("frame size {size} outside [{min}, {max}]")]
    BadSize { size: i32, min: i32, max: usize },
    #[error("{0}")]
    Protocol(String),
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl FrameError {
    /// Disconnects that are part of normal life, not worth more than a debug line.
    pub fn is_expected(&self) -> bool {
        match self {
            Self::Closed | Self::Idle(_) => true,
            Self::Io(e) => matches!(
                e.kind(),
                io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::ConnectionAborted
            ),
            _ => false,
        }
    }
}

/// Reads one frame. `Ok(None)` is a clean EOF between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(
    rd: &mut R,
    max_size: usize,
    idle: Duration,
) -> Result<Option<Bytes>, FrameError> {
    let mut size_buf = [0u8; 4];
    let first = match tokio::time::timeout(idle, rd.read(&mut size_buf)).await {
        Err(_) => return Err(FrameError::Idle(idle)),
        Ok(r) => r?,
    };
    if first == 0 {
        return Ok(None);
    }
    // A frame that has started must keep arriving: a client that stalls mid-frame for longer
    // than the idle timeout is closed like an idle one, not left holding its connection.
    tokio::time::timeout(idle, read_rest(rd, size_buf, first, max_size)).await.map_err(|_| FrameError::Idle(idle))?
}

async fn read_rest<R: AsyncRead + Unpin>(
    rd: &mut R,
    mut size_buf: [u8; 4],
    first: usize,
    max_size: usize,
) -> Result<Option<Bytes>, FrameError> {
    if first < 4 {
        rd.read_exact(&mut size_buf[first..]).await?;
    }
    let size = i32::from_be_bytes(size_buf);
    if size < MIN_FRAME || size as usize > max_size {
        return Err(FrameError::BadSize { size, min: MIN_FRAME, max: max_size });
    }
    let size = size as usize;
    let mut buf = BytesMut::with_capacity(size.min(READ_CHUNK));
    while buf.len() < size {
        let want = (size - buf.len()).min(READ_CHUNK.max(buf.len()));
        buf.reserve(want);
        let n = (&mut *rd).take(want as u64).read_buf(&mut buf).await?;
        if n == 0 {
            return Err(FrameError::Io(io::ErrorKind::UnexpectedEof.into()));
        }
    }
    Ok(Some(buf.freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_are_bounded_and_grow_with_data() {
        let mut input: &[u8] = &[0, 0, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9];
        let f = read_frame(&mut input, 100, Duration::from_secs(1)).await.unwrap().unwrap();
        assert_eq!(&f[..], &[1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert!(read_frame(&mut input, 100, Duration::from_secs(1)).await.unwrap().is_none());

        let mut too_big: &[u8] = &[0, 0, 1, 0];
        assert!(matches!(
            read_frame(&mut too_big, 100, Duration::from_secs(1)).await,
            Err(FrameError::BadSize { size: 256, .. })
        ));
        let mut negative: &[u8] = &[0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            read_frame(&mut negative, 100, Duration::from_secs(1)).await,
            Err(FrameError::BadSize { .. })
        ));
        // Declares 90 bytes, sends 3: an EOF error, and no 90-byte promise was trusted up front.
        let mut short: &[u8] = &[0, 0, 0, 90, 1, 2, 3];
        assert!(read_frame(&mut short, 100, Duration::from_secs(1)).await.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_frame_stalled_midway_times_out() {
        let (mut client, mut server) = tokio::io::duplex(64);
        use tokio::io::AsyncWriteExt;
        client.write_all(&[0, 0, 0, 20, 1, 2]).await.unwrap();
        // The client keeps the connection open but sends nothing more.
        let r =
            tokio::time::timeout(Duration::from_secs(60), read_frame(&mut server, 100, Duration::from_secs(5))).await;
        assert!(matches!(r, Ok(Err(FrameError::Idle(_)))), "{r:?}");
        drop(client);
    }
}
