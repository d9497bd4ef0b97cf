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
//! - Produce v0–v2 carry message sets (magic 0 and 1): each partition's is up-converted to one
//!   RecordBatch v2 before the handler sees it, as Kafka 3.x's log did on append; a partition
//!   whose messages are corrupt is answered CORRUPT_MESSAGE without reaching the handler;
//! - Fetch v0–v3 readers expect message sets: each partition's batches are down-converted
//!   (magic 0 for v0–v1, 1 for v2–v3), within the partition's `max_bytes`, for that client only;
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
use kafka_protocol_legacy::protocol::{Decodable, Encodable, StrBytes};

use super::{codec, Frame, Reply};
use crate::log::legacy::LegacyMagic;

/// Versions `min..to` of `key` are served as version `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bridge {
    pub key: ApiKey,
    pub min: i16,
    pub to: i16,
}

/// Every bridged API, with the oldest version Kafka 3.9 serves and the registry's oldest.
pub const BRIDGES: &[Bridge] = &[
    Bridge { key: ApiKey::Produce, min: 0, to: 3 },
    Bridge { key: ApiKey::Fetch, min: 0, to: 4 },
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
#[derive(Debug, Clone)]
pub struct Crossing {
    pub bridge: Bridge,
    /// The version the client sent and expects back.
    pub from: i16,
    carry: Carry,
    /// Refuse every partition of a Produce (Kafka 4's answer to v0-v2, which it advertises).
    refuse: bool,
}

/// What a request leaves for its answer.
#[derive(Debug, Clone, Default)]
enum Carry {
    #[default]
    Nothing,
    /// Produce: the partitions refused before the handler, with their error codes.
    Refused(Vec<(old::TopicName, i32, i16, String)>),
    /// Fetch: each partition's fetch offset and `max_bytes`: its down-converted records start
    /// at the one and fit the other.
    Limits(Vec<(old::TopicName, i32, i64, i32)>),
}

fn old_key(key: ApiKey) -> anyhow::Result<old::ApiKey> {
    old::ApiKey::try_from(key as i16).map_err(|()| anyhow::anyhow!("no legacy codec for {key:?}"))
}

impl Crossing {
    pub fn new(bridge: Bridge, from: i16) -> Self {
        Crossing { bridge, from, carry: Carry::Nothing, refuse: false }
    }

    /// A crossing that refuses what it carries, as Kafka 4 refuses Produce v0-v2.
    pub fn refusing(self) -> Self {
        Crossing { refuse: true, ..self }
    }

    /// The request body in the client's version -> the same request in the bridge's version.
    pub fn request(&mut self, mut body: Bytes) -> Result<Bytes, BridgeError> {
        let Bridge { key, to, .. } = self.bridge;
        let from = self.from;
        let mut request = codec::guarded(|| RequestKind::decode(old_key(key)?, &mut body, from))
            .map_err(|source| BridgeError::Request { key, version: from, source })?;
        self.carry = convert_request(&mut request, self.refuse.then_some(from));
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
        match (&mut *response, &self.carry) {
            (ResponseKind::Produce(r), Carry::Refused(refused)) => {
                use old::produce_response::{PartitionProduceResponse, TopicProduceResponse};
                for (name, index, code, message) in refused {
                    let answer = PartitionProduceResponse::default()
                        .with_index(*index)
                        .with_error_code(*code)
                        .with_base_offset(-1)
                        .with_error_message(Some(StrBytes::from_string(message.clone())));
                    match r.responses.iter_mut().find(|t| &t.name == name) {
                        Some(t) => t.partition_responses.push(answer),
                        None => r.responses.push(
                            TopicProduceResponse::default()
                                .with_name(name.clone())
                                .with_partition_responses(vec![answer]),
                        ),
                    }
                }
            }
            (ResponseKind::Fetch(r), Carry::Limits(limits)) => {
                let Some(magic) = LegacyMagic::for_fetch_version(self.from) else { return };
                for t in &mut r.responses {
                    for p in &mut t.partitions {
                        let (offset, limit) = limits
                            .iter()
                            .find(|(name, index, ..)| name == &t.topic && *index == p.partition_index)
                            .map_or((0, 0), |l| (l.2, l.3.max(0) as usize));
                        // v0-v3 records are bytes, never null: an empty answer is an empty set
                        // (kafka-go 0.2 cannot read a null one).
                        let Some(records) = p.records.take().filter(|r| !r.is_empty()) else {
                            p.records = Some(Bytes::new());
                            continue;
                        };
                        match crate::log::legacy::downconvert(&records, magic, offset, limit, MAX_CONVERTED) {
                            Ok(set) => p.records = Some(set.into()),
                            Err(e) => {
                                tracing::warn!(topic = %t.topic.0, partition = p.partition_index,
                                    "cannot down-convert records for a Fetch v{} reader: {e}", self.from);
                                p.error_code = e.kafka_code();
                                p.records = Some(Bytes::new());
                            }
                        }
                    }
                }
            }
            _ => {}
        }
        self.convert_fields(response);
    }

    fn convert_fields(&self, response: &mut ResponseKind) {
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

/// What the request in the client's version means differently from the bridge's.
/// `refuse_version`: refuse every partition, as Kafka 4 does this version of Produce.
fn convert_request(request: &mut RequestKind, refuse_version: Option<i16>) -> Carry {
    match request {
        RequestKind::Produce(r) => {
            let mut refused = Vec::new();
            let mut budget = MAX_CONVERTED;
            for t in &mut r.topic_data {
                t.partition_data.retain_mut(|p| {
                    if let Some(v) = refuse_version {
                        let why = format!("Produce v{v} is not served by the emulated Kafka 4 (message formats v0/v1)");
                        refused.push((t.name.clone(), p.index, UNSUPPORTED_VERSION, why));
                        return false;
                    }
                    let set = p.records.take().unwrap_or_default();
                    // Kafka takes RecordBatch v2 in these versions too: it goes on unchanged.
                    if set.get(MAGIC_AT) == Some(&2) {
                        p.records = Some(set);
                        return true;
                    }
                    match crate::log::legacy::upconvert(&set, budget) {
                        Ok(up) => {
                            budget = budget.saturating_sub(up.batch.len());
                            p.records = Some(up.batch.into());
                            true
                        }
                        Err(e) => {
                            refused.push((t.name.clone(), p.index, e.kafka_code(), e.to_string()));
                            false
                        }
                    }
                });
            }
            r.topic_data.retain(|t| !t.partition_data.is_empty());
            Carry::Refused(refused)
        }
        RequestKind::Fetch(r) => Carry::Limits(
            r.topics
                .iter()
                .flat_map(|t| {
                    t.partitions.iter().map(|p| (t.topic.clone(), p.partition, p.fetch_offset, p.partition_max_bytes))
                })
                .collect(),
        ),
        _ => Carry::Nothing,
    }
}

/// Where a record set's magic byte is, in every format: after the offset, the size and (v0/v1)
/// the CRC or (v2) the leader epoch.
const MAGIC_AT: usize = 16;

/// The most bytes one request's records may take once converted (decompressed), for all its
/// partitions together.
const MAX_CONVERTED: usize = crate::log::batch::MAX_DECOMPRESSED_RECORDS;

/// Kafka's UNSUPPORTED_VERSION.
const UNSUPPORTED_VERSION: i16 = 35;

/// DescribeConfigs' config_source for a value nobody set.
const CONFIG_SOURCE_DEFAULT: i8 = 5;

#[cfg(test)]
mod tests;
