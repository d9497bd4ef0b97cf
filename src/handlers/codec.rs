//! What a request frame says: its header, decoded in the version its API calls for, and the
//! framing of responses. The server only cuts frames off the socket (`server::framing`); the
//! kafka-protocol types are read and written here and in the handlers, nowhere else.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Encodable, HeaderVersion};

/// api_key + api_version + correlation_id: the least a request header can be.
pub const MIN_FRAME: i32 = 8;

#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    #[error("request frame of {0} bytes is shorter than a request header")]
    Short(usize),
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    #[error("cannot decode the {api_key} v{version} request header: {source}")]
    Decode { api_key: i16, version: i16, source: anyhow::Error },
}

/// The fixed first part of every request header, read without trusting the rest.
#[derive(Debug, Clone, Copy)]
pub struct HeaderPeek {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
}

/// The fixed part of a request header; `None` when the frame is too short to hold one.
pub fn peek_header(frame: &[u8]) -> Option<HeaderPeek> {
    let b: &[u8; 8] = frame.get(..8)?.try_into().ok()?;
    Some(HeaderPeek {
        api_key: i16::from_be_bytes([b[0], b[1]]),
        api_version: i16::from_be_bytes([b[2], b[3]]),
        correlation_id: i32::from_be_bytes([b[4], b[5], b[6], b[7]]),
    })
}

/// Decodes the request header in the version the API key and version call for.
pub fn decode_header(frame: &mut Bytes) -> Result<(ApiKey, RequestHeader), HeaderError> {
    let peek = peek_header(frame).ok_or(HeaderError::Short(frame.len()))?;
    let api_key = ApiKey::try_from(peek.api_key).map_err(|_| HeaderError::UnknownApiKey(peek.api_key))?;
    let header = guarded(|| kafka_protocol::protocol::decode_request_header_from_buffer(frame))
        .map_err(|source| HeaderError::Decode { api_key: peek.api_key, version: peek.api_version, source })?;
    Ok((api_key, header))
}

/// Runs a codec decode, turning a panic inside the codec into an error. Belt and braces: the
/// codec is expected to return errors on bad input, but a panic must never take a task down
/// with a half-handled request. The property tests in `handlers::tests` fail on such a panic.
pub fn guarded<T>(f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        // A broker bug (or the codec's) that input from a socket reached: worth an error line.
        tracing::error!("{CAUGHT_PANIC}; the request is refused and its connection closed");
        Err(anyhow::anyhow!(CAUGHT_PANIC))
    })
}

const CAUGHT_PANIC: &str = "the request decoder panicked";

/// Whether a [`guarded`] error is a caught panic rather than the codec refusing its input.
pub fn is_caught_panic(e: &anyhow::Error) -> bool {
    e.to_string() == CAUGHT_PANIC
}

/// Encodes a complete response frame: size, header, body.
pub fn encode_response<R: Encodable + HeaderVersion>(
    correlation_id: i32,
    version: i16,
    body: &R,
) -> anyhow::Result<Bytes> {
    let header_version = R::header_version(version);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    // Sized up front: a fetch response can be megabytes, and growing the buffer by doubling
    // would copy it several times over.
    let capacity = 4 + header.compute_size(header_version)? + body.compute_size(version)?;
    let mut buf = BytesMut::with_capacity(capacity);
    buf.put_i32(0);
    header.encode(&mut buf, header_version)?;
    body.encode(&mut buf, version)?;
    let size = (buf.len() - 4) as i32;
    buf[0..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf.freeze())
}
