//! Decompressing record batch payloads, for the few places the broker must see records:
//! refusing keyless records on compacted topics, and finding the exact record for a timestamp;
//! and compressing the batches the log cleaner rewrites, with the codec they had. Produce and
//! fetch never decompress: batches are stored and served as the client sent them.
//!
//! Every codec writes into a buffer that may not grow past a limit, so a small compressed
//! payload cannot make the broker allocate without bound.

use std::io::{Read, Write};

/// Kafka's compression codec ids (attributes bits 0–2).
pub const GZIP: i16 = 1;
pub const SNAPPY: i16 = 2;
pub const LZ4: i16 = 3;
pub const ZSTD: i16 = 4;

/// The xerial framing that Java producers wrap snappy data in.
const XERIAL_MAGIC: &[u8] = &[0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecompressError {
    #[error("unknown compression codec {0}")]
    UnknownCodec(i16),
    #[error("corrupt {codec} data: {reason}")]
    Corrupt { codec: &'static str, reason: String },
    #[error("decompressed records exceed {limit} bytes")]
    TooLarge { limit: usize },
}

fn corrupt(codec: &'static str, e: impl ToString) -> DecompressError {
    DecompressError::Corrupt { codec, reason: e.to_string() }
}

fn read_limited(codec: &'static str, r: impl Read, limit: usize) -> Result<Vec<u8>, DecompressError> {
    let mut out = Vec::new();
    r.take(limit as u64 + 1).read_to_end(&mut out).map_err(|e| corrupt(codec, e))?;
    if out.len() > limit {
        return Err(DecompressError::TooLarge { limit });
    }
    Ok(out)
}

fn snappy_block(data: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), DecompressError> {
    let len = snap::raw::decompress_len(data).map_err(|e| corrupt("snappy", e))?;
    if out.len() + len > limit {
        return Err(DecompressError::TooLarge { limit });
    }
    let start = out.len();
    out.resize(start + len, 0);
    snap::raw::Decoder::new().decompress(data, &mut out[start..]).map_err(|e| corrupt("snappy", e))?;
    Ok(())
}

/// Decompresses a batch's records section compressed with `codec`, up to `limit` bytes.
pub fn decompress(codec: i16, data: &[u8], limit: usize) -> Result<Vec<u8>, DecompressError> {
    match codec {
        GZIP => read_limited("gzip", flate2::read::GzDecoder::new(data), limit),
        SNAPPY => {
            let mut out = Vec::new();
            match data.strip_prefix(XERIAL_MAGIC) {
                None => snappy_block(data, &mut out, limit)?,
                Some(rest) => {
                    // 4-byte version and 4-byte compatible version, then length-prefixed blocks.
                    let mut rest = rest.get(8..).ok_or_else(|| corrupt("snappy", "short xerial header"))?;
                    while !rest.is_empty() {
                        let len = rest.get(..4).ok_or_else(|| corrupt("snappy", "short block length"))?;
                        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
                        let block = rest.get(4..4 + len).ok_or_else(|| corrupt("snappy", "short block"))?;
                        snappy_block(block, &mut out, limit)?;
                        rest = &rest[4 + len..];
                    }
                }
            }
            Ok(out)
        }
        LZ4 => read_limited("lz4", lz4_flex::frame::FrameDecoder::new(data), limit),
        ZSTD => {
            let decoder = ruzstd::decoding::StreamingDecoder::new(data).map_err(|e| corrupt("zstd", e))?;
            read_limited("zstd", decoder, limit)
        }
        other => Err(DecompressError::UnknownCodec(other)),
    }
}

/// Uncompressed bytes per xerial snappy block, as Kafka's Java clients write them.
const XERIAL_BLOCK: usize = 32 * 1024;

/// Compresses a batch's records section with `codec`, in the form Kafka's own clients write:
/// gzip at the default level, snappy in xerial framing (what Java clients write and every
/// client reads), LZ4 frames of independent 64 KiB blocks, zstd at its fastest level.
pub fn compress(codec: i16, data: &[u8]) -> std::io::Result<Vec<u8>> {
    match codec {
        GZIP => {
            let mut gz =
                flate2::write::GzEncoder::new(Vec::with_capacity(data.len() / 2), flate2::Compression::default());
            gz.write_all(data)?;
            gz.finish()
        }
        SNAPPY => {
            let mut out = Vec::with_capacity(16 + data.len() / 2);
            out.extend_from_slice(XERIAL_MAGIC);
            out.extend_from_slice(&1u32.to_be_bytes());
            out.extend_from_slice(&1u32.to_be_bytes());
            let mut encoder = snap::raw::Encoder::new();
            for chunk in data.chunks(XERIAL_BLOCK) {
                let block = encoder.compress_vec(chunk).map_err(std::io::Error::other)?;
                out.extend_from_slice(&(block.len() as u32).to_be_bytes());
                out.extend_from_slice(&block);
            }
            Ok(out)
        }
        LZ4 => {
            use lz4_flex::frame::{BlockMode, BlockSize, FrameEncoder, FrameInfo};
            let info = FrameInfo::new().block_size(BlockSize::Max64KB).block_mode(BlockMode::Independent);
            let mut lz = FrameEncoder::with_frame_info(info, Vec::with_capacity(data.len() / 2));
            lz.write_all(data)?;
            lz.finish().map_err(std::io::Error::other)
        }
        ZSTD => Ok(ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)),
        other => Err(std::io::Error::other(format!("unknown compression codec {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_compresses_what_it_decompresses() {
        let data: Vec<u8> = (0..200_000u32).flat_map(|i| format!("record {} ", i % 977).into_bytes()).collect();
        for codec in [GZIP, SNAPPY, LZ4, ZSTD] {
            let packed = compress(codec, &data).unwrap();
            assert!(packed.len() < data.len() / 2, "codec {codec}: {} of {}", packed.len(), data.len());
            assert_eq!(decompress(codec, &packed, 1 << 24).unwrap(), data, "codec {codec}");
            assert_eq!(decompress(codec, &compress(codec, b"").unwrap(), 10).unwrap(), b"", "codec {codec}");
        }
        assert!(compress(5, b"x").is_err());
    }

    #[test]
    fn gzip_and_snappy_round_trip_and_respect_the_limit() {
        let data = b"hello hello hello hello hello".repeat(100);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(decompress(GZIP, &gz, 1 << 20).unwrap(), data);
        assert_eq!(decompress(GZIP, &gz, 100), Err(DecompressError::TooLarge { limit: 100 }));

        let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert_eq!(decompress(SNAPPY, &raw, 1 << 20).unwrap(), data);
        let mut xerial = XERIAL_MAGIC.to_vec();
        xerial.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1]);
        for chunk in [&raw, &raw] {
            xerial.extend_from_slice(&(chunk.len() as u32).to_be_bytes());
            xerial.extend_from_slice(chunk);
        }
        assert_eq!(decompress(SNAPPY, &xerial, 1 << 20).unwrap().len(), 2 * data.len());

        let mut lz = lz4_flex::frame::FrameEncoder::new(Vec::new());
        lz.write_all(&data).unwrap();
        assert_eq!(decompress(LZ4, &lz.finish().unwrap(), 1 << 20).unwrap(), data);
        assert!(matches!(decompress(ZSTD, b"not zstd", 1 << 20), Err(DecompressError::Corrupt { .. })));
        assert_eq!(decompress(7, b"", 10), Err(DecompressError::UnknownCodec(7)));
    }
}
