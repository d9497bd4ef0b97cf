//! Request dispatch. The registry (`registry!`) is the only list of APIs and versions gregor
//! serves; ApiVersions ([`SUPPORTED`]), dispatch and decoding are expanded from it, and a request
//! outside it never reaches a handler: it gets `unsupported::error_response`.
//!
//! Handlers stay thin: decode has already happened, they validate, call the domain (`broker`,
//! `log`, `metadata`), map domain errors through `ToKafkaCode`, and build the response.

pub mod acls;
pub mod alter_configs;
pub mod api_versions;
pub mod authz;
pub mod client_quotas;
pub mod codec;
pub mod common;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_log_dirs;
pub mod describe_topic_partitions;
pub mod elect_leaders;
pub mod error_codes;
pub mod fetch;
pub mod group;
pub mod init_producer_id;
pub mod legacy;
pub mod list_config_resources;
pub mod list_offsets;
pub mod metadata;
pub mod offset_for_leader_epoch;
pub mod partition_reassignments;
pub mod peers;
pub mod produce;
pub mod releases;
pub mod sasl;
pub mod scram_credentials;
pub mod share_acknowledge;
pub mod share_fetch;
pub mod share_state;
pub mod throttle;
pub mod txn;
pub mod unsupported;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion};
use tracing::{debug, debug_span, error, Instrument};

use crate::broker::Broker;
use codec::{decode_header, peek_header};

/// One encoded response frame, size prefix included: a single buffer, or several to be written
/// back to back. A fetch response keeps each large record set as its own buffer, read from the
/// log, instead of copying it into one response buffer.
#[derive(Debug, Clone)]
pub enum Frame {
    One(Bytes),
    Parts(Vec<Bytes>),
}

impl From<Bytes> for Frame {
    fn from(b: Bytes) -> Self {
        Frame::One(b)
    }
}

#[cfg(test)]
impl Frame {
    /// The whole frame in one buffer (copies when it is in parts).
    pub fn to_bytes(&self) -> Bytes {
        match self {
            Frame::One(b) => b.clone(),
            Frame::Parts(parts) => parts.concat().into(),
        }
    }
}

/// What the connection writer does for one request, in request order.
pub enum Reply {
    /// A complete response frame.
    Ready(Frame),
    /// A response that becomes ready later (long-poll fetch, `acks=all`); `None` closes.
    Deferred(Pin<Box<dyn Future<Output = Option<Frame>> + Send>>),
    /// No response at all (Produce with `acks=0`).
    NoResponse,
    /// Close the connection after the replies before this one.
    Close(String),
    /// A last reply, ready later, after which the connection closes (for this reason): the
    /// answer to a failed authentication, sent after its delay.
    Final(String, Pin<Box<dyn Future<Output = Option<Frame>> + Send>>),
}

#[derive(Debug, Clone, Copy)]
pub struct ApiSupport {
    pub key: ApiKey,
    pub min: i16,
    pub max: i16,
}

impl ApiSupport {
    pub fn serves(&self, version: i16) -> bool {
        (self.min..=self.max).contains(&version)
    }
}

/// THE registry: every API gregor answers, once, with its request type, its handler and the
/// versions it accepts. [`SUPPORTED`] (and so ApiVersions), [`dispatch`] and [`decode_only`] are
/// all expanded from it, so what is advertised cannot drift from what is served. Maxima match
/// Apache Kafka 4.1.
///
/// Versions below a row's minimum that Kafka 3.9 still served (Produce v0–v2, Fetch v0–v3,
/// OffsetCommit v0–v1, ...) cross a bridge in [`legacy`] to that minimum; [`supported`] and
/// ApiVersions include them. (librdkafka checks for Produce v0 before it enables compression,
/// KAFKA-18659, so Produce must be advertised from v0 in any case.)
///
/// SaslHandshake is served from v0 for the same reason: librdkafka before 2.x-something (Debian's
/// 2.0.2) checks for SaslHandshake v0 before it authenticates at all, then uses v1. A v0
/// handshake itself (raw SASL tokens after it, removed by KIP-896) gets UNSUPPORTED_VERSION
/// (`sasl::exchange`).
macro_rules! registry {
    ($callback:ident!($($args:tt)*)) => {
        $callback!($($args)*;
            Produce => ProduceRequest, produce::handle, 3..=13;
            Fetch => FetchRequest, fetch::handle, 4..=18;
            ListOffsets => ListOffsetsRequest, list_offsets::handle, 1..=10;
            OffsetForLeaderEpoch => OffsetForLeaderEpochRequest, offset_for_leader_epoch::handle, 2..=4;
            Metadata => MetadataRequest, metadata::handle, 0..=13;
            ApiVersions => ApiVersionsRequest, api_versions::handle, 0..=4;
            CreateTopics => CreateTopicsRequest, create_topics::handle, 2..=7;
            DeleteTopics => DeleteTopicsRequest, delete_topics::handle, 1..=6;
            DeleteRecords => DeleteRecordsRequest, delete_records::handle, 0..=2;
            DescribeLogDirs => DescribeLogDirsRequest, describe_log_dirs::handle, 1..=4;
            DescribeCluster => DescribeClusterRequest, describe_cluster::handle, 0..=2;
            DescribeTopicPartitions => DescribeTopicPartitionsRequest, describe_topic_partitions::handle, 0..=0;
            ElectLeaders => ElectLeadersRequest, elect_leaders::handle, 0..=2;
            AlterPartitionReassignments => AlterPartitionReassignmentsRequest, partition_reassignments::handle_alter, 0..=1;
            ListPartitionReassignments => ListPartitionReassignmentsRequest, partition_reassignments::handle_list, 0..=0;
            ListConfigResources => ListConfigResourcesRequest, list_config_resources::handle, 0..=1;
            CreatePartitions => CreatePartitionsRequest, create_partitions::handle, 0..=3;
            DescribeConfigs => DescribeConfigsRequest, describe_configs::handle, 1..=4;
            AlterConfigs => AlterConfigsRequest, alter_configs::handle, 0..=2;
            IncrementalAlterConfigs => IncrementalAlterConfigsRequest, alter_configs::handle_incremental, 0..=1;
            InitProducerId => InitProducerIdRequest, init_producer_id::handle, 0..=5;
            FindCoordinator => FindCoordinatorRequest, group::find_coordinator::handle, 0..=6;
            JoinGroup => JoinGroupRequest, group::join_group::handle, 0..=9;
            SyncGroup => SyncGroupRequest, group::sync_group::handle, 0..=5;
            Heartbeat => HeartbeatRequest, group::heartbeat::handle, 0..=4;
            LeaveGroup => LeaveGroupRequest, group::leave_group::handle, 0..=5;
            OffsetCommit => OffsetCommitRequest, group::offset_commit::handle, 2..=9;
            OffsetFetch => OffsetFetchRequest, group::offset_fetch::handle, 1..=9;
            ListGroups => ListGroupsRequest, group::list_groups::handle, 0..=5;
            DescribeGroups => DescribeGroupsRequest, group::describe_groups::handle, 0..=6;
            DeleteGroups => DeleteGroupsRequest, group::delete_groups::handle, 0..=2;
            OffsetDelete => OffsetDeleteRequest, group::offset_delete::handle, 0..=0;
            ConsumerGroupHeartbeat => ConsumerGroupHeartbeatRequest, group::consumer_group_heartbeat::handle, 0..=1;
            ConsumerGroupDescribe => ConsumerGroupDescribeRequest, group::consumer_group_describe::handle, 0..=1;
            ShareGroupHeartbeat => ShareGroupHeartbeatRequest, group::share_group_heartbeat::handle, 1..=1;
            ShareGroupDescribe => ShareGroupDescribeRequest, group::share_group_describe::handle, 1..=1;
            ShareFetch => ShareFetchRequest, share_fetch::handle, 1..=1;
            ShareAcknowledge => ShareAcknowledgeRequest, share_acknowledge::handle, 1..=1;
            DescribeShareGroupOffsets => DescribeShareGroupOffsetsRequest, group::share_group_offsets::handle_describe, 0..=0;
            AlterShareGroupOffsets => AlterShareGroupOffsetsRequest, group::share_group_offsets::handle_alter, 0..=0;
            DeleteShareGroupOffsets => DeleteShareGroupOffsetsRequest, group::share_group_offsets::handle_delete, 0..=0;
            InitializeShareGroupState => InitializeShareGroupStateRequest, share_state::handle_initialize, 0..=0;
            DeleteShareGroupState => DeleteShareGroupStateRequest, share_state::handle_delete, 0..=0;
            AddPartitionsToTxn => AddPartitionsToTxnRequest, txn::add_partitions_to_txn::handle, 0..=5;
            AddOffsetsToTxn => AddOffsetsToTxnRequest, txn::add_offsets_to_txn::handle, 0..=4;
            EndTxn => EndTxnRequest, txn::end_txn::handle, 0..=5;
            WriteTxnMarkers => WriteTxnMarkersRequest, txn::write_txn_markers::handle, 1..=1;
            TxnOffsetCommit => TxnOffsetCommitRequest, txn::txn_offset_commit::handle, 0..=5;
            DescribeProducers => DescribeProducersRequest, txn::describe_producers::handle, 0..=0;
            DescribeTransactions => DescribeTransactionsRequest, txn::describe_transactions::handle, 0..=0;
            ListTransactions => ListTransactionsRequest, txn::list_transactions::handle, 0..=2;
            DescribeAcls => DescribeAclsRequest, acls::handle_describe, 1..=3;
            CreateAcls => CreateAclsRequest, acls::handle_create, 1..=3;
            DeleteAcls => DeleteAclsRequest, acls::handle_delete, 1..=3;
            DescribeUserScramCredentials => DescribeUserScramCredentialsRequest, scram_credentials::handle_describe, 0..=0;
            AlterUserScramCredentials => AlterUserScramCredentialsRequest, scram_credentials::handle_alter, 0..=0;
            DescribeClientQuotas => DescribeClientQuotasRequest, client_quotas::handle_describe, 0..=1;
            AlterClientQuotas => AlterClientQuotasRequest, client_quotas::handle_alter, 0..=1;
            SaslHandshake => SaslHandshakeRequest, sasl::handle_handshake, 0..=1;
            SaslAuthenticate => SaslAuthenticateRequest, sasl::handle_authenticate, 0..=2;
        )
    };
}

macro_rules! supported_table {
    (; $($api:ident => $req:ty, $handler:path, $min:literal..=$max:literal;)*) => {
        &[$(ApiSupport { key: ApiKey::$api, min: $min, max: $max },)*]
    };
}

/// Every API gregor answers with its versions, in registry order (see [`registry!`]).
pub const SUPPORTED: &[ApiSupport] = registry!(supported_table!());

/// The versions of `key` gregor serves: the registry's, and below them those that cross a
/// [`legacy`] bridge.
pub fn supported(key: ApiKey) -> Option<ApiSupport> {
    let a = SUPPORTED.iter().copied().find(|a| a.key == key)?;
    Some(ApiSupport { min: legacy::oldest(key).map_or(a.min, |m| m.min(a.min)), ..a })
}

/// The APIs gregor's brokers send each other that no client is told of: share-partition
/// resets, which the coordinator of a share group asks of a partition's leader
/// ([`share_state`]). Kafka's brokers do not advertise them either.
const BROKER_ONLY: &[ApiKey] = &[ApiKey::InitializeShareGroupState, ApiKey::DeleteShareGroupState];

/// The versions of `key` served under `release` (see `server.kafka_version`): those gregor
/// serves that the release's broker advertised too. `None` for an API the release did not have.
/// Broker-only APIs are served whatever the release.
pub fn served(release: Option<releases::Release>, key: ApiKey) -> Option<ApiSupport> {
    let a = supported(key)?;
    let Some(release) = release.filter(|_| !BROKER_ONLY.contains(&key)) else { return Some(a) };
    let &(_, min, max) = release.apis().iter().find(|(k, ..)| *k == key)?;
    let (min, max) = (a.min.max(min), a.max.min(max));
    (min <= max).then_some(ApiSupport { key, min, max })
}

/// Every API gregor answers under `release`, with the versions it serves, as ApiVersions
/// advertises them.
pub fn advertised(release: Option<releases::Release>) -> impl Iterator<Item = ApiSupport> {
    SUPPORTED.iter().filter(|a| !BROKER_ONLY.contains(&a.key)).filter_map(move |a| served(release, a.key))
}

/// What the handlers know of one connection, for all its requests.
#[derive(Debug)]
pub struct Session {
    /// The client's address as Kafka reports it (`/127.0.0.1`).
    pub client_host: String,
    /// This connection's share of the fetch memory, in KiB: two full fetches' worth, so one
    /// client that pipelines fetches and reads no answers cannot take all of it.
    pub fetch_room: Arc<tokio::sync::Semaphore>,
    /// The address Metadata, FindCoordinator and DescribeCluster give this client for the
    /// broker (see [`Session::new`]).
    pub advertised: Advertised,
    /// The name of the listener the client connected to.
    pub listener: Arc<str>,
    /// Who the client authenticated as: its SASL user, its TLS certificate, or
    /// `User:ANONYMOUS`. Changes between requests when a SASL client (re-)authenticates;
    /// read it with [`Session::principal`].
    principal: parking_lot::RwLock<crate::auth::Principal>,
    /// The SASL state of a connection to a SASL listener; `None` elsewhere.
    pub sasl: Option<parking_lot::Mutex<crate::auth::sasl::Authenticator>>,
    /// Until when the connection reads nothing: a client past its quota waits (KIP-219).
    pub mute: Arc<throttle::Mute>,
    /// The Kafka release the broker emulates (`server.kafka_version`), if any.
    pub release: Option<releases::Release>,
}

/// A broker address as clients are told it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertised {
    pub host: Arc<str>,
    pub port: u16,
}

impl Session {
    /// `dialled` is the connection's local address, `configured` what its listener advertises.
    /// With nothing configured the broker advertises the address the client dialled, so one
    /// broker reached as `kafka:9092` from containers and as `localhost:9092` from the host
    /// works for both; an unspecified or unknown local address falls back to the broker's own
    /// (the bound address or host name).
    pub fn new(
        broker: &Broker,
        client_host: String,
        dialled: Option<std::net::SocketAddr>,
        configured: Option<Advertised>,
        principal: crate::auth::Principal,
    ) -> Self {
        let kib = (broker.config.server.fetch_max_bytes * 2).div_ceil(1024);
        let node = &broker.node;
        let advertised = match (configured, dialled) {
            (Some(configured), dialled) => {
                if let Some(a) =
                    dialled.filter(|a| a.port() != configured.port || a.ip().to_string() != *configured.host)
                {
                    static NOTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
                    if !NOTED.swap(true, std::sync::atomic::Ordering::Relaxed) {
                        tracing::info!(dialled = %a, advertised = %format!("{}:{}", configured.host, configured.port),
                            "clients dial one address and are told another (the advertised listener); they must reach the advertised one");
                    }
                }
                configured
            }
            (None, Some(a)) if !a.ip().is_unspecified() => {
                Advertised { host: Arc::from(a.ip().to_string()), port: a.port() }
            }
            (None, _) => Advertised { host: Arc::from(node.host.as_str()), port: node.port },
        };
        Self {
            client_host,
            fetch_room: Arc::new(tokio::sync::Semaphore::new(kib)),
            advertised,
            listener: Arc::from("PLAINTEXT"),
            principal: parking_lot::RwLock::new(principal),
            sasl: None,
            mute: Arc::default(),
            release: broker.config.server.release(),
        }
    }

    /// The session of a connection to the listener named `name`.
    pub fn with_listener(mut self, name: Arc<str>) -> Self {
        self.listener = name;
        self
    }

    /// The session of a SASL listener's connection: nothing but the SASL exchange is served
    /// until the client authenticates.
    pub fn with_sasl(mut self, settings: Arc<crate::config::SaslSettings>) -> Self {
        self.sasl = Some(parking_lot::Mutex::new(crate::auth::sasl::Authenticator::new(settings)));
        self
    }

    /// The largest request frame to read next: `configured` (`socket.request.max.bytes`), or
    /// on a SASL listener before authentication Kafka's `sasl.server.max.receive.size` default
    /// (512 KiB), so that a client that proved nothing cannot make the broker buffer 100 MiB.
    pub fn max_frame_bytes(&self, configured: usize) -> usize {
        const UNAUTHENTICATED: usize = 524_288;
        match &self.sasl {
            Some(auth) if !auth.lock().is_authenticated() => configured.min(UNAUTHENTICATED),
            _ => configured,
        }
    }

    /// Who the connection is authenticated as now.
    pub fn principal(&self) -> crate::auth::Principal {
        self.principal.read().clone()
    }

    /// After a SASL (re-)authentication: the principal of the requests that follow.
    pub fn set_principal(&self, principal: crate::auth::Principal) {
        *self.principal.write() = principal;
    }
}

/// The request's identity, passed to every handler.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub broker: Arc<Broker>,
    /// The connection's share of the fetch memory (see [`Session`]).
    pub fetch_room: Arc<tokio::sync::Semaphore>,
    /// The broker's address as this client is told it (see [`Session::new`]).
    pub advertised: Advertised,
    /// The name of the listener the client connected to.
    pub listener: Arc<str>,
    pub version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
    /// The client's address as Kafka reports it (`/127.0.0.1`).
    pub client_host: String,
    /// Who the connection authenticated as (see [`Session::principal`]).
    pub principal: crate::auth::Principal,
    /// The request frame's size in bytes (what Produce counts against `producer_byte_rate`).
    pub request_bytes: usize,
    /// When the request was read (its handling time counts against `request_percentage`).
    pub started: std::time::Instant,
    /// The connection's mute (see [`Session`]).
    pub mute: Arc<throttle::Mute>,
    /// The Kafka release the broker emulates, if any (see [`served`]).
    pub release: Option<releases::Release>,
}

impl Ctx {
    /// This broker as the client is told it.
    pub fn me(&self) -> crate::cluster::Node {
        crate::cluster::Node {
            id: self.broker.cluster.node_id(),
            host: self.advertised.host.to_string(),
            port: self.advertised.port,
            rack: None,
        }
    }

    /// Whether this broker coordinates what `internal_topic` holds (leads its partition 0):
    /// always on one node; in shared mode only the leader of `__consumer_offsets` serves group
    /// requests and the leader of `__transaction_state` transactional ones. Other brokers answer
    /// NOT_COORDINATOR, as Kafka's do, and clients look the coordinator up again.
    pub fn coordinates(&self, internal_topic: &str) -> bool {
        self.broker.cluster.coordinator(internal_topic) == Some(self.broker.cluster.node_id())
    }

    /// See [`Ctx::coordinates`]: groups.
    pub fn coordinates_groups(&self) -> bool {
        self.coordinates(crate::group::OFFSETS_TOPIC)
    }

    /// See [`Ctx::coordinates`]: transactional ids.
    pub fn coordinates_txns(&self) -> bool {
        self.coordinates(crate::txn::TXN_TOPIC)
    }

    /// The live brokers the client can reach on its listener, by id (this one among them).
    pub fn nodes(&self) -> Vec<crate::cluster::Node> {
        self.broker.cluster.nodes(&self.listener, self.me())
    }

    /// Encodes a response now.
    pub fn reply<R: Encodable + HeaderVersion>(&self, body: &R) -> Reply {
        match encode(self.correlation_id, self.version, body) {
            Some(b) => Reply::Ready(b),
            None => Reply::Close("response could not be encoded".into()),
        }
    }
}

/// Encodes a response frame; a failure is a broker bug, logged, and closes the connection.
pub fn encode<R: Encodable + HeaderVersion>(correlation_id: i32, version: i16, body: &R) -> Option<Frame> {
    match codec::encode_response(correlation_id, version, body) {
        Ok(b) => Some(Frame::One(b)),
        Err(e) => {
            error!(error = %e, version, "failed to encode response");
            None
        }
    }
}

fn decode<T: Decodable>(body: &mut Bytes, version: i16, key: ApiKey) -> Result<T, Reply> {
    codec::guarded(|| T::decode(body, version))
        .map_err(|source| Reply::Close(format!("cannot decode the {key:?} v{version} request: {source}")))
}

/// Decodes a frame's header and body exactly as [`dispatch`] would, without running a handler.
/// For the fuzz target and the hostile-input tests.
pub fn decode_only(mut frame: Bytes) -> Result<ApiKey, String> {
    use kafka_protocol::messages::*;
    fn body<T: Decodable>(frame: &mut Bytes, v: i16, key: ApiKey) -> Result<ApiKey, String> {
        // A panic caught inside the codec is a bug, not a rejection: say so, so that tests fail.
        codec::guarded(|| T::decode(frame, v)).map(|_| key).map_err(|e| {
            if codec::is_caught_panic(&e) {
                format!("the codec panicked decoding {key:?} v{v}")
            } else {
                "undecodable body".to_string()
            }
        })
    }
    if frame.len() < codec::MIN_FRAME as usize {
        return Err("frame shorter than a request header".into());
    }
    let (key, header) = decode_header(&mut frame).map_err(|e| e.to_string())?;
    let v = header.request_api_version;
    supported(key).filter(|a| a.serves(v)).ok_or("unsupported version")?;
    let (mut frame, v) = match legacy::bridge(key, v) {
        Some(b) => match legacy::Crossing::new(b, v).request(frame) {
            Ok(carried) => (carried, b.to),
            Err(e) if e.is_caught_panic() => return Err(e.to_string()),
            Err(_) => return Err("undecodable body".to_string()),
        },
        None => (frame, v),
    };
    macro_rules! decode_body {
        ($frame:ident, $v:ident, $key:ident; $($api:ident => $req:ty, $handler:path, $min:literal..=$max:literal;)*) => {
            match $key {
                $(ApiKey::$api => body::<$req>(&mut $frame, $v, $key),)*
                other => Err(format!("no decoder for {other:?}")),
            }
        };
    }
    registry!(decode_body!(frame, v, key))
}

/// Decodes one frame's header, checks the API and version against [`SUPPORTED`], and runs
/// the handler.
pub async fn dispatch(broker: &Arc<Broker>, session: &Session, mut frame: Bytes) -> Reply {
    let (started, request_bytes) = (std::time::Instant::now(), frame.len());
    let Some(peek) = peek_header(&frame) else {
        return Reply::Close(format!("request frame of {} bytes is shorter than a request header", frame.len()));
    };
    if peek.api_key == ApiKey::ApiVersions as i16 {
        let max = served(session.release, ApiKey::ApiVersions).map_or(0, |a| a.max);
        if peek.api_version > max {
            // KIP-511: answer in v0 so any client can read it, then it retries lower.
            return api_versions::unsupported_version(peek.correlation_id, session.release);
        }
    }
    let (key, header) = match decode_header(&mut frame) {
        Ok(h) => h,
        Err(e) => {
            let api = ApiKey::try_from(peek.api_key).map_or("Unknown", api_name);
            crate::metrics::request_failed(api, peek.api_version);
            return Reply::Close(e.to_string());
        }
    };
    let version = header.request_api_version;
    // A SASL listener's gate comes first: before authentication nothing else is served.
    let admit = match sasl::admit(session, key) {
        Ok(admit) => admit,
        Err(reply) => {
            crate::metrics::request_failed(api_name(key), version);
            return reply;
        }
    };
    if served(session.release, key).filter(|a| a.serves(version)).is_none() {
        crate::metrics::request_failed(api_name(key), version);
        return match unsupported::error_response(key, version, header.correlation_id) {
            Some(frame) => {
                debug!(api = ?key, version, "answered an unsupported API with UNSUPPORTED_VERSION");
                Reply::Ready(frame.into())
            }
            // Kafka itself closes the connection here; clients only send what ApiVersions offered.
            None => Reply::Close(format!("request for {key:?} v{version}, which gregor does not support")),
        };
    }
    if admit != crate::auth::sasl::Admit::Serve {
        return sasl::exchange(broker, session, admit, &header, frame);
    }
    // A version Kafka 4 removed is handled as the oldest the registry serves, then answered
    // back in the client's version.
    let (mut frame, handled_as, crossing) = match legacy::bridge(key, version) {
        Some(bridge) => {
            let mut crossing = legacy::Crossing::new(bridge, version);
            if session.release.is_some_and(|r| r >= releases::Release::Kafka41) {
                // Kafka 4 advertises Produce v0-v2 (for librdkafka) but refuses them.
                crossing = crossing.refusing();
            }
            match crossing.request(frame) {
                Ok(carried) => (carried, bridge.to, Some(crossing)),
                Err(e) => {
                    crate::metrics::request_failed(api_name(key), version);
                    return Reply::Close(e.to_string());
                }
            }
        }
        None => (frame, version, None),
    };
    let ctx = Ctx {
        broker: broker.clone(),
        version: handled_as,
        correlation_id: header.correlation_id,
        client_id: header.client_id.as_ref().map(|c| c.as_str().to_string()),
        client_host: session.client_host.clone(),
        fetch_room: session.fetch_room.clone(),
        advertised: session.advertised.clone(),
        listener: session.listener.clone(),
        principal: session.principal(),
        request_bytes,
        started,
        mute: session.mute.clone(),
        release: session.release,
    };
    // Produce and Fetch charge their request time themselves, to report it in the response.
    let charge = (!matches!(key, ApiKey::Produce | ApiKey::Fetch)).then(|| throttle::Charge::new(&ctx));
    let span = debug_span!("request", api = ?key, version, correlation_id = header.correlation_id,
        client_id = ctx.client_id.as_deref().unwrap_or(""));
    let timer = crate::metrics::get().request(api_name(key), version);
    let reply = async move {
        debug!("request");
        use kafka_protocol::messages::*;
        macro_rules! run_handler {
            ($frame:ident, $ctx:ident, $version:ident, $key:ident; $($api:ident => $req:ty, $handler:path, $min:literal..=$max:literal;)*) => {
                match $key {
                    $(ApiKey::$api => match decode::<$req>(&mut $frame, $version, $key) {
                        Ok(req) => $handler(&$ctx, req).await,
                        Err(reply) => reply,
                    },)*
                    other => Reply::Close(format!("no handler for {other:?}")),
                }
            };
        }
        registry!(run_handler!(frame, ctx, handled_as, key))
    }
    .instrument(span)
    .await;
    let reply = match crossing {
        Some(crossing) => crossing.reply(reply),
        None => reply,
    };
    if let Some(charge) = charge.filter(|c| c.active()) {
        charge.mute(charge.request_time());
    }
    match reply {
        Reply::Deferred(ready) => Reply::Deferred(Box::pin(async move {
            let frame = ready.await;
            timer.done(frame.is_none());
            frame
        })),
        reply => {
            timer.done(matches!(reply, Reply::Close(_) | Reply::Final(..)));
            reply
        }
    }
}

/// An API's name for metrics labels (`Produce`, `Fetch`, ...).
fn api_name(key: ApiKey) -> &'static str {
    static NAMES: std::sync::LazyLock<Vec<(ApiKey, &'static str)>> = std::sync::LazyLock::new(|| {
        (0i16..200)
            .filter_map(|k| ApiKey::try_from(k).ok())
            .map(|k| (k, &*Box::leak(format!("{k:?}").into_boxed_str())))
            .collect()
    });
    NAMES.iter().find(|(k, _)| *k == key).map_or("Unknown", |(_, n)| n)
}

#[cfg(test)]
mod authz_matrix;
#[cfg(test)]
mod tests;
