//! The API versions that Kafka 3.9 still served and Kafka 4 removed (KIP-896), for the clients
//! that still send them: sarama and kafka-go as Debian packages them, kafka-python 2.0, and
//! applications built on librdkafka 1.x.
//!
//! No handler is written twice for them. A request in such a version crosses a *bridge*: it is
//! decoded with a codec built from Kafka 3.x's schemas (kafka-protocol 0.15, imported as
//! `kafka_protocol_legacy`), re-encoded in the oldest version the registry serves (the bridge's
//! `to`), and handled as that version; the answer is decoded in that version and encoded back in
//! the client's. Fields that only the newer version has keep their defaults on the way in and
//! are dropped on the way out. Where the two versions mean different things, [`Crossing`]
//! converts:
//! - ListOffsets v0 answers a list of offsets (`old_style_offsets`) rather than one;
//! - DescribeConfigs v0 says `is_default` where v1 says where a value came from.
//!
//! Clients on current versions never pass through here: the bridge costs two extra encodes and
//! decodes, paid only by the old client that asked for it.

use std::future::Future;
use std::pin::Pin;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;
use kafka_protocol_legacy::messages as old;
use kafka_protocol_legacy::messages::{RequestKind, ResponseKind};
use kafka_protocol_legacy::protocol::{Decodable, Encodable};

use super::{codec, Frame, Reply};

/// Versions `min..to` of `key` are served as version `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bridge {
    pub key: ApiKey,
    pub min: i16,
    pub to: i16,
}

/// Every bridged API, with the oldest version Kafka 3.9 serves and the registry's oldest.
pub const BRIDGES: &[Bridge] = &[
    Bridge { key: ApiKey::ListOffsets, min: 0, to: 1 },
    Bridge { key: ApiKey::OffsetForLeaderEpoch, min: 0, to: 2 },
    Bridge { key: ApiKey::CreateTopics, min: 0, to: 2 },
    Bridge { key: ApiKey::DeleteTopics, min: 0, to: 1 },
    Bridge { key: ApiKey::DescribeLogDirs, min: 0, to: 1 },
    Bridge { key: ApiKey::DescribeConfigs, min: 0, to: 1 },
    Bridge { key: ApiKey::OffsetCommit, min: 0, to: 2 },
    Bridge { key: ApiKey::OffsetFetch, min: 0, to: 1 },
    Bridge { key: ApiKey::DescribeAcls, min: 0, to: 1 },
    Bridge { key: ApiKey::CreateAcls, min: 0, to: 1 },
    Bridge { key: ApiKey::DeleteAcls, min: 0, to: 1 },
];

/// The bridge a request in `version` of `key` crosses, if it is a legacy version.
pub fn bridge(key: ApiKey, version: i16) -> Option<Bridge> {
    BRIDGES.iter().copied().find(|b| b.key == key && (b.min..b.to).contains(&version))
}

/// The oldest version of `key` served through a bridge.
pub fn oldest(key: ApiKey) -> Option<i16> {
    BRIDGES.iter().find(|b| b.key == key).map(|b| b.min)
}

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("cannot decode the {key:?} v{version} request: {source}")]
    Request { key: ApiKey, version: i16, source: anyhow::Error },
    #[error("cannot carry the {key:?} v{from} request over to v{to}: {source}")]
    Carry { key: ApiKey, from: i16, to: i16, source: anyhow::Error },
    #[error("cannot answer {key:?} v{from} from the v{to} response: {source}")]
    Response { key: ApiKey, from: i16, to: i16, source: anyhow::Error },
}

impl BridgeError {
    /// Whether the legacy codec panicked (a bug) rather than refused its input.
    pub fn is_caught_panic(&self) -> bool {
        matches!(self, BridgeError::Request { source, .. } if codec::is_caught_panic(source))
    }
}

/// One request on its way over a bridge: what the answer needs to come back.
#[derive(Debug, Clone, Copy)]
pub struct Crossing {
    pub bridge: Bridge,
    /// The version the client sent and expects back.
    pub from: i16,
}

fn old_key(key: ApiKey) -> anyhow::Result<old::ApiKey> {
    old::ApiKey::try_from(key as i16).map_err(|()| anyhow::anyhow!("no legacy codec for {key:?}"))
}

impl Crossing {
    pub fn new(bridge: Bridge, from: i16) -> Self {
        Crossing { bridge, from }
    }

    /// The request body in the client's version -> the same request in the bridge's version.
    pub fn request(&self, mut body: Bytes) -> Result<Bytes, BridgeError> {
        let Bridge { key, to, .. } = self.bridge;
        let from = self.from;
        let request = codec::guarded(|| RequestKind::decode(old_key(key)?, &mut body, from))
            .map_err(|source| BridgeError::Request { key, version: from, source })?;
        let mut out = BytesMut::new();
        request.encode(&mut out, to).map_err(|source| BridgeError::Carry { key, from, to, source })?;
        Ok(out.freeze())
    }

    /// A complete response frame in the bridge's version -> the frame in the client's.
    pub fn response(&self, frame: &Frame) -> Result<Bytes, BridgeError> {
        let Bridge { key, to, .. } = self.bridge;
        let from = self.from;
        let fail = |source| BridgeError::Response { key, from, to, source };
        let mut bytes: Bytes = match frame {
            Frame::One(b) => b.clone(),
            Frame::Parts(parts) => parts.concat().into(),
        };
        let api = old_key(key).map_err(fail)?;
        if bytes.len() < 4 {
            return Err(fail(anyhow::anyhow!("a response frame of {} bytes", bytes.len())));
        }
        bytes.advance(4);
        let header = old::ResponseHeader::decode(&mut bytes, api.response_header_version(to)).map_err(fail)?;
        let mut response = ResponseKind::decode(api, &mut bytes, to).map_err(fail)?;
        self.convert_response(&mut response);
        let mut out = BytesMut::new();
        out.put_i32(0);
        header.encode(&mut out, api.response_header_version(from)).map_err(fail)?;
        response.encode(&mut out, from).map_err(fail)?;
        let size = (out.len() - 4) as i32;
        out[0..4].copy_from_slice(&size.to_be_bytes());
        Ok(out.freeze())
    }

    /// What the client's version means differently from the bridge's, in the answer.
    fn convert_response(&self, response: &mut ResponseKind) {
        match response {
            // v0 answers up to max_num_offsets offsets; Kafka 3.9 gives the log end offset
            // for "latest" and the log start offset for "earliest" first, which is all that
            // clients read. gregor answers that one offset.
            ResponseKind::ListOffsets(r) if self.from == 0 => {
                for p in r.topics.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
                    if p.error_code == 0 && p.offset >= 0 {
                        p.old_style_offsets = vec![p.offset];
                    }
                    // v1's single answer has no place in v0.
                    (p.timestamp, p.offset) = (-1, -1);
                }
            }
            // v0 only says whether a value is the default (its source is DEFAULT_CONFIG).
            ResponseKind::DescribeConfigs(r) if self.from == 0 => {
                for c in r.results.iter_mut().flat_map(|r| r.configs.iter_mut()) {
                    c.is_default = c.config_source == CONFIG_SOURCE_DEFAULT;
                }
            }
            _ => {}
        }
    }

    /// The handler's reply, answered in the client's version.
    pub fn reply(self, reply: Reply) -> Reply {
        match reply {
            Reply::Ready(frame) => match self.response(&frame) {
                Ok(b) => Reply::Ready(b.into()),
                Err(e) => Reply::Close(e.to_string()),
            },
            Reply::Deferred(later) => Reply::Deferred(self.later(later)),
            Reply::Final(reason, later) => Reply::Final(reason, self.later(later)),
            other => other,
        }
    }

    fn later(
        self,
        later: Pin<Box<dyn Future<Output = Option<Frame>> + Send>>,
    ) -> Pin<Box<dyn Future<Output = Option<Frame>> + Send>> {
        Box::pin(async move {
            let frame = later.await?;
            match self.response(&frame) {
                Ok(b) => Some(b.into()),
                Err(e) => {
                    tracing::error!("{e}; closing the connection");
                    None
                }
            }
        })
    }
}

/// DescribeConfigs' config_source for a value nobody set.
const CONFIG_SOURCE_DEFAULT: i8 = 5;

#[cfg(test)]
mod tests;
