//! Fuzzes request decoding over (api_key, version, body): the first four bytes of the input pick
//! an API key and version, the rest is the header tail and body. Decoding must return, never
//! panic, abort or reserve memory out of proportion to the input.
#![no_main]

use bytes::{BufMut, Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    // Steer most inputs to the APIs gregor serves, at versions around their ranges.
    let supported = gregor::handlers::SUPPORTED;
    let api = &supported[data[0] as usize % supported.len()];
    let version = api.min + (data[1] as i16 % (api.max - api.min + 3)) - 1;
    let mut frame = BytesMut::with_capacity(data.len() + 8);
    frame.put_i16(api.key as i16);
    frame.put_i16(version);
    frame.put_i32(i32::from(data[2]));
    frame.put_slice(&data[4..]);
    let _ = gregor::handlers::decode_only(Bytes::from(frame));
});
