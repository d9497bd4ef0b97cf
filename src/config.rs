//! Typed configuration and its layers.
//!
//! Later layers win: compiled defaults → `config/gregor.toml` (if present) → `--config FILE`
//! (TOML, or a Kafka `server.properties` when the name ends in `.properties`) → `GREGOR__*`
//! environment (`GREGOR__LOG__SEGMENT_BYTES=...`) → Kafka container variables (`KAFKA_*`) →
//! command-line flags. Kafka's own key names are translated by [`kafka_key`]. An unknown key in
//! a file we were asked to read, or a contradictory setting, is an error at start naming the key.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

mod release;
mod sasl;
pub use release::Release;
pub use sasl::{
    parse_jaas_entries, parse_jaas_file, JaasEntry, ListenerSaslConfig, OAuthBearerValidation, SaslLogin,
    SaslMechanism, SaslSettings, Secret, SecuredOAuthBearer, UnsecuredOAuthBearer,
};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub log: LogConfig,
    pub topics: TopicDefaults,
    pub group: GroupConfig,
    pub transaction: TransactionConfig,
    pub auth: AuthConfig,
    pub cluster: ClusterConfig,
}

/// Shared mode: several brokers over PostgreSQL and an object store. Off (a single node) while
/// `postgres_url` is empty.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// PostgreSQL connection URL (`postgres://user:pass@host:5432/db`) or key=value string.
    pub postgres_url: String,
    /// Where the brokers keep record data: `s3://bucket/prefix` (endpoint, region and
    /// credentials from the standard `AWS_*` variables), `file:///shared/dir`, or `memory:///`.
    pub object_store_url: String,
    /// A broker that has not heartbeated for this long loses its partitions
    /// (`broker.session.timeout.ms`). Default: 9000.
    pub session_timeout_ms: u64,
    /// How often a broker heartbeats and reloads the cluster's view
    /// (`broker.heartbeat.interval.ms`). Default: 2000.
    pub heartbeat_interval_ms: u64,
    /// While a broker is busy committing, how long it gathers batches into one object after
    /// the first arrives, so that the partitions it leads share objects and commits instead of
    /// taking turns; an idle broker commits a lone write at once. 0: never wait. Default: 2.
    pub commit_linger_ms: u64,
    /// How often a partition's leader writes the batches committed since its last merge (many
    /// small objects, shared with the other partitions it led) again into one object of that
    /// partition alone, and replaces their index rows, so that objects stay few and retention
    /// can delete them; a compacted partition's cleaned segments are written again the same
    /// way. 0: never. Default: 300000 (five minutes).
    pub merge_interval_ms: u64,
    /// Bytes of committed batches read back from the object store that a broker keeps in
    /// memory (least recently used first out), for consumers reading before the local
    /// segments' start (see `log.local.retention.bytes`). 0: none kept. Default: 67108864.
    pub read_cache_bytes: u64,
    /// How long any one use of PostgreSQL may take (a heartbeat, a commit, a topic's creation,
    /// the connect itself) before the broker gives up on it, replaces the connection and
    /// answers the client (REQUEST_TIMED_OUT for admin requests). Default: 15000, below the
    /// clients' 30 s request timeout.
    pub store_timeout_ms: u64,
    /// No longer needed: shared mode once ran only with it set. Accepted, and ignored, so that
    /// configurations written for that still load. Default: false.
    pub preview: bool,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            postgres_url: String::new(),
            object_store_url: String::new(),
            session_timeout_ms: 9_000,
            heartbeat_interval_ms: 2_000,
            commit_linger_ms: 2,
            merge_interval_ms: 300_000,
            read_cache_bytes: 64 << 20,
            store_timeout_ms: 15_000,
            preview: false,
        }
    }
}

impl ClusterConfig {
    pub fn is_shared(&self) -> bool {
        !self.postgres_url.trim().is_empty()
    }
}

/// Authorization, with Kafka's settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Kafka's `authorizer.class.name`: naming Kafka's `StandardAuthorizer` (or the older
    /// `AclAuthorizer`) switches ACLs on. Empty (default): every principal may do everything,
    /// and the ACL APIs answer SECURITY_DISABLED, as Kafka does without an authorizer.
    pub authorizer_class_name: String,
    /// Kafka's `super.users`: principals allowed everything, `User:alice;User:bob`.
    pub super_users: String,
    /// Kafka's `allow.everyone.if.no.acl.found`: a resource no ACL names is open to all.
    /// Default: false (closed).
    pub allow_everyone_if_no_acl_found: bool,
}

/// The authorizer classes whose ACL model gregor implements.
pub const AUTHORIZER_CLASSES: &[&str] =
    &["org.apache.kafka.metadata.authorizer.StandardAuthorizer", "kafka.security.authorizer.AclAuthorizer"];

impl AuthConfig {
    /// Whether ACLs are enforced.
    pub fn acls_enabled(&self) -> bool {
        !self.authorizer_class_name.trim().is_empty()
    }

    /// The super users, `Type:name` each.
    pub fn super_users(&self) -> Vec<String> {
        self.super_users.split(';').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransactionConfig {
    /// Longest transaction timeout a producer may ask for (`transaction.max.timeout.ms`).
    /// Default: 900000 (15 minutes).
    pub max_timeout_ms: u64,
    /// Forget a transactional id idle this long (`transactional.id.expiration.ms`).
    /// Default: 604800000 (7 days).
    pub id_expiration_ms: u64,
    /// How often to look for transactions past their timeout, to abort them
    /// (`transaction.abort.timed.out.transaction.cleanup.interval.ms`). Default: 10000.
    pub abort_check_interval_ms: u64,
    /// Forget an idempotent or transactional producer's sequence state in a partition after
    /// this long without a write there (`producer.id.expiration.ms`); checked with retention.
    /// Default: 86400000 (1 day).
    pub producer_id_expiration_ms: u64,
}

impl Default for TransactionConfig {
    fn default() -> Self {
        Self {
            max_timeout_ms: 900_000,
            id_expiration_ms: 604_800_000,
            abort_check_interval_ms: 10_000,
            producer_id_expiration_ms: 86_400_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GroupConfig {
    /// Wait this long for more members before the first rebalance of an empty group
    /// (Kafka: `group.initial.rebalance.delay.ms`). Default: 3000.
    pub initial_rebalance_delay_ms: u64,
    /// Smallest session timeout a member may ask for (`group.min.session.timeout.ms`).
    /// Default: 6000.
    pub min_session_timeout_ms: u64,
    /// Largest session timeout a member may ask for (`group.max.session.timeout.ms`).
    /// Default: 1800000.
    pub max_session_timeout_ms: u64,
    /// Most members in one group (`group.max.size`). Default: 2147483647.
    pub max_size: usize,
    /// Keep committed offsets of a group without members this long
    /// (`offsets.retention.minutes`). Default: 10080 (7 days).
    pub offsets_retention_minutes: u64,
    /// Longest metadata string of a committed offset (`offset.metadata.max.bytes`).
    /// Default: 4096.
    pub offset_metadata_max_bytes: usize,
    /// Session timeout of members of `consumer` protocol groups (KIP-848), decided by the broker
    /// (`group.consumer.session.timeout.ms`). Default: 45000.
    pub consumer_session_timeout_ms: u64,
    /// Heartbeat interval the broker tells `consumer` protocol members
    /// (`group.consumer.heartbeat.interval.ms`). Default: 5000.
    pub consumer_heartbeat_interval_ms: u64,
    /// Whether a group changes protocol while it has members (`group.consumer.migration.policy`):
    /// `bidirectional` (the default, as Kafka 4.x), `upgrade` (a classic group becomes a consumer
    /// group when a `group.protocol=consumer` member joins), `downgrade` (a consumer group becomes
    /// classic again when its last such member leaves) or `disabled`.
    pub consumer_migration_policy: String,
    /// Session timeout of share group members (KIP-932, `group.share.session.timeout.ms`).
    /// Default: 45000.
    pub share_session_timeout_ms: u64,
    /// Heartbeat interval the broker tells share group members
    /// (`group.share.heartbeat.interval.ms`). Default: 5000.
    pub share_heartbeat_interval_ms: u64,
    /// How long a share consumer holds a record it fetched before the record goes to someone
    /// else (`group.share.record.lock.duration.ms`). Default: 30000.
    pub share_record_lock_duration_ms: u64,
    /// Deliveries of one record to share consumers before it is archived
    /// (`group.share.delivery.count.limit`). Default: 5.
    pub share_delivery_count_limit: i16,
    /// Records in flight per share-partition (`group.share.partition.max.record.locks`).
    /// Default: 2000.
    pub share_partition_max_record_locks: i64,
    /// Most members in one share group (`group.share.max.size`). Default: 200.
    pub share_max_size: usize,
    /// Most share sessions the broker keeps (`group.share.max.share.sessions`). Default: 2000.
    pub share_max_share_sessions: usize,
}

impl Default for GroupConfig {
    fn default() -> Self {
        Self {
            initial_rebalance_delay_ms: 3000,
            min_session_timeout_ms: 6000,
            max_session_timeout_ms: 1_800_000,
            max_size: i32::MAX as usize,
            offsets_retention_minutes: 10080,
            offset_metadata_max_bytes: 4096,
            consumer_session_timeout_ms: 45_000,
            consumer_heartbeat_interval_ms: 5_000,
            consumer_migration_policy: "bidirectional".to_string(),
            share_session_timeout_ms: 45_000,
            share_heartbeat_interval_ms: 5_000,
            share_record_lock_duration_ms: 30_000,
            share_delivery_count_limit: 5,
            share_partition_max_record_locks: 2000,
            share_max_size: 200,
            share_max_share_sessions: 2000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on, `HOST:PORT` (Kafka: `listeners`); a host name is resolved at start.
    /// Port 0 picks a free port.
    /// Default: `127.0.0.1:9092`.
    pub listen: String,
    /// Address clients are told to connect to, for `listen`.
    /// Default: the address each client dialled (the connection's local address).
    pub advertised: Option<String>,
    /// Named listeners, Kafka's `listeners`: `NAME://HOST:PORT,...` (an empty host is every
    /// interface). When set, it replaces `listen`. Default: unset.
    pub listeners: Option<String>,
    /// Kafka's `advertised.listeners`: `NAME://HOST:PORT,...`, what clients that connect
    /// through each named listener are told. A listener without an entry tells each client the
    /// address it dialled. Default: unset.
    pub advertised_listeners: Option<String>,
    /// Kafka's `listener.security.protocol.map`: `NAME:PROTOCOL,...`. Default: each of
    /// PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL maps to itself. SASL listeners need
    /// `sasl_enabled_mechanisms` (see [`SaslSettings`]).
    pub listener_security_protocol_map: Option<String>,
    /// Kafka's `controller.listener.names`: listeners of the KRaft controller, which gregor
    /// has none of; they are accepted and not opened. Default: unset.
    pub controller_listener_names: Option<String>,
    /// Kafka's `inter.broker.listener.name`: checked to name a listener; in shared mode the
    /// listener brokers dial each other on. Default: unset (PLAINTEXT, else the first).
    pub inter_broker_listener_name: Option<String>,
    /// This broker's id (Kafka: `node.id` / `broker.id`). Default: 1.
    pub node_id: i32,
    /// Emulate an Apache Kafka release's broker: `2.8`, `3.9`, `4.1` or `4.2` (a patch level
    /// may follow). ApiVersions then advertises, and the broker serves, only the API versions
    /// that release did, so "works on 3.x, breaks on 4.x" can be tried on one machine.
    /// Default: unset, every version gregor serves (Kafka 4.1's and the older ones 3.9 still
    /// served).
    pub kafka_version: Option<String>,
    /// Cluster id reported in Metadata. Default: generated once and kept in the data dir.
    pub cluster_id: Option<String>,
    /// Address of the HTTP endpoint (`/healthz`, `/readyz`, `/metrics`), HOST:PORT; "" or
    /// "off" turns it off. Port 0 picks a free port. Default: `127.0.0.1:9644`.
    pub http_listen: String,
    /// Largest request frame accepted (Kafka: `socket.request.max.bytes`). Default: 104857600.
    pub max_request_bytes: usize,
    /// Most record bytes one Fetch response carries, whatever the client asks for (Kafka:
    /// `fetch.max.bytes`). A first batch larger than this is still sent whole (KIP-74).
    /// Default: 57671680 (55 MiB).
    pub fetch_max_bytes: usize,
    /// Most record bytes all Fetch responses together may hold in memory, read but not yet
    /// written to their sockets (gregor's own; Kafka sends from the page cache). A fetch waits
    /// for room before it reads, so clients that pipeline huge fetches and never read the
    /// answers cannot exhaust memory. Default: 268435456 (256 MiB).
    pub fetch_memory_max_bytes: usize,
    /// Most incremental fetch sessions (KIP-227) kept at once (Kafka:
    /// `max.incremental.fetch.session.cache.slots`); 0 turns sessions off. Default: 1000.
    pub fetch_session_cache_slots: usize,
    /// Most partitions all cached fetch sessions together may hold (gregor's own bound on the
    /// cache's memory, about 100 bytes a partition). Default: 1000000.
    pub fetch_session_cache_max_partitions: usize,
    /// Most simultaneous client connections (Kafka: `max.connections`). The cap in force is the
    /// smaller of this and what the process's open-file limit (`RLIMIT_NOFILE`) leaves after a
    /// reserve for log segments and other files. Default: 10000.
    pub max_connections: usize,
    /// Most simultaneous connections from one IP address (Kafka: `max.connections.per.ip`).
    /// Default: 2147483647. Whatever it is, an address that already has connections may not take
    /// the last tenth (at most 100) of `max_connections`: those are kept for other addresses.
    pub max_connections_per_ip: usize,
    /// Per-address exceptions, `host:count,host:count` (Kafka:
    /// `max.connections.per.ip.overrides`); a host name is resolved at start. Default: empty.
    pub max_connections_per_ip_overrides: String,
    /// Close connections idle this long (Kafka: `connections.max.idle.ms`). Default: 600000.
    pub connections_max_idle_ms: u64,
    /// Close a connection that has not sent one complete request this long after connecting
    /// (gregor's own; Kafka has none). Default: 10000.
    pub first_request_timeout_ms: u64,
    /// On SIGTERM/SIGINT, wait at most this long for requests already read to be answered
    /// before closing connections and flushing the logs. Default: 5000.
    pub shutdown_grace_ms: u64,
    /// Responses a connection may have waiting to be written before reading pauses. Default: 64.
    pub max_inflight_requests: usize,
    /// TLS settings of the SSL listeners (Kafka's `ssl.*`). Default: none set.
    pub ssl: SslConfig,
    /// TLS settings of one listener, by its name in lower case, over those of `ssl` (Kafka's
    /// `listener.name.<listener>.ssl.*`). Default: none.
    pub listener_ssl: HashMap<String, SslConfig>,
    /// SASL mechanisms of the SASL listeners, comma-separated (Kafka's
    /// `sasl.enabled.mechanisms`): PLAIN, SCRAM-SHA-256, SCRAM-SHA-512. Kafka's default is
    /// GSSAPI, which gregor does not serve: a SASL listener needs this or its listener's own.
    /// Default: unset.
    pub sasl_enabled_mechanisms: Option<String>,
    /// The mechanism a broker logs in to the others with when the inter-broker listener is a
    /// SASL one, in shared mode (Kafka's `sasl.mechanism.inter.broker.protocol`): PLAIN,
    /// SCRAM-SHA-256 or SCRAM-SHA-512, one the listener enables. The user and password are
    /// the `username` and `password` options of the mechanism's JAAS entry for that listener.
    /// Default: unset (Kafka's GSSAPI, which gregor does not serve).
    pub sasl_mechanism_inter_broker_protocol: Option<String>,
    /// Kafka's `sasl.jaas.config` given without a listener prefix: a PlainLoginModule entry
    /// whose `user_NAME="password"` options are the PLAIN users. Default: unset.
    pub sasl_jaas_config: Option<Secret>,
    /// The same, as `plain.sasl.jaas.config`. Default: unset.
    pub plain_sasl_jaas_config: Option<Secret>,
    /// A JAAS file whose `KafkaServer` (or `<listener>.KafkaServer`) section holds the PLAIN
    /// users; set from `-Djava.security.auth.login.config=` in `KAFKA_OPTS`. Default: unset.
    pub sasl_jaas_file: Option<PathBuf>,
    /// Longest SASL session before the client must re-authenticate, in ms; 0: never (KIP-368,
    /// Kafka's `connections.max.reauth.ms`). Default: 0.
    pub connections_max_reauth_ms: u64,
    /// Wait before answering a failed authentication and closing, in ms (Kafka's
    /// `connection.failed.authentication.delay.ms`). Default: 100.
    pub connection_failed_authentication_delay_ms: u64,
    /// SASL settings of one listener, by its name in lower case (Kafka's
    /// `listener.name.<listener>.sasl.enabled.mechanisms`, `...plain.sasl.jaas.config`,
    /// `...<mechanism>.connections.max.reauth.ms`). Default: none.
    pub listener_sasl: HashMap<String, ListenerSaslConfig>,
    /// Where SASL/OAUTHBEARER's secured validator finds the keys that sign tokens: a `file:`
    /// URL of a JWKS (Kafka's `sasl.oauthbearer.jwks.endpoint.url`; https is not fetched).
    /// Default: unset.
    pub sasl_oauthbearer_jwks_endpoint_url: Option<String>,
    /// Audiences of which a token's `aud` must name one, comma-separated
    /// (`sasl.oauthbearer.expected.audience`). Default: unset (a token with `aud` is refused).
    pub sasl_oauthbearer_expected_audience: Option<String>,
    /// The `iss` a token must carry (`sasl.oauthbearer.expected.issuer`). Default: unset.
    pub sasl_oauthbearer_expected_issuer: Option<String>,
    /// The claim that names the principal (`sasl.oauthbearer.sub.claim.name`). Default: sub.
    pub sasl_oauthbearer_sub_claim_name: String,
    /// The claim with the token's scopes (`sasl.oauthbearer.scope.claim.name`). Default: scope.
    pub sasl_oauthbearer_scope_claim_name: String,
    /// Leeway for `exp`, `nbf` and `iat`, in seconds (`sasl.oauthbearer.clock.skew.seconds`).
    /// Default: 30.
    pub sasl_oauthbearer_clock_skew_seconds: u64,
}

/// Kafka's `ssl.*` settings as given, for all SSL listeners (`server.ssl`) or one of them
/// (`server.listener_ssl.<name>`). Each is optional so that a listener's own value can be told
/// from an inherited one; [`Config::listeners`] resolves and checks them ([`SslSettings`]).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SslConfig {
    /// Format of the keystore (`ssl.keystore.type`): only PEM. Default: PEM.
    pub keystore_type: Option<String>,
    /// PEM file with the private key and the certificate chain, leaf first
    /// (`ssl.keystore.location`). Default: unset.
    pub keystore_location: Option<PathBuf>,
    /// The private key itself, PEM (`ssl.keystore.key`); goes with
    /// `keystore_certificate_chain` instead of a file. Default: unset.
    pub keystore_key: Option<String>,
    /// The certificate chain itself, PEM, leaf first (`ssl.keystore.certificate.chain`).
    /// Default: unset.
    pub keystore_certificate_chain: Option<String>,
    /// Store password (`ssl.keystore.password`): PEM files have none; accepted and unused.
    pub keystore_password: Option<String>,
    /// Password of an encrypted PKCS#8 private key, `BEGIN ENCRYPTED PRIVATE KEY`
    /// (`ssl.key.password`). Default: unset (the key is not encrypted).
    pub key_password: Option<String>,
    /// Format of the truststore (`ssl.truststore.type`): only PEM. Default: PEM.
    pub truststore_type: Option<String>,
    /// PEM file with the CA certificates client certificates are checked against
    /// (`ssl.truststore.location`). Default: unset.
    pub truststore_location: Option<PathBuf>,
    /// The CA certificates themselves, PEM (`ssl.truststore.certificates`). Default: unset.
    pub truststore_certificates: Option<String>,
    /// Store password (`ssl.truststore.password`): PEM files have none; accepted and unused.
    pub truststore_password: Option<String>,
    /// Whether clients must show a certificate: `none`, `requested` or `required`
    /// (`ssl.client.auth`). Default: none.
    pub client_auth: Option<String>,
    /// TLS versions offered, comma-separated (`ssl.enabled.protocols`). Default: TLSv1.2,TLSv1.3.
    pub enabled_protocols: Option<String>,
    /// Cipher suites offered, IANA names as Java spells them, comma-separated
    /// (`ssl.cipher.suites`). Default: every suite of the TLS library.
    pub cipher_suites: Option<String>,
    /// From a client certificate's subject to its user name (`ssl.principal.mapping.rules`).
    /// Default: DEFAULT (the subject itself).
    pub principal_mapping_rules: Option<String>,
    /// How a shared-mode broker checks the certificate of another broker it dials on this
    /// inter-broker listener (`ssl.endpoint.identification.algorithm`): `https`, the
    /// certificate must name the host dialled; empty (or blank), it need not (its chain is
    /// still checked against the truststore). Default: https.
    pub endpoint_identification_algorithm: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// Where partition directories live (Kafka: `log.dirs`). Default: `./data`.
    pub dir: PathBuf,
    /// Roll a segment at this size (Kafka: `log.segment.bytes`). Default: 1073741824.
    pub segment_bytes: u64,
    /// Roll a segment after this age (Kafka: `log.roll.ms`). Default: 604800000 (7 days).
    pub segment_ms: i64,
    /// Bytes between offset/time index entries (Kafka: `log.index.interval.bytes`). Default: 4096.
    pub index_interval_bytes: u64,
    /// Largest record batch accepted (Kafka: `message.max.bytes`). Default: 1048588.
    pub max_message_bytes: i32,
    /// Durable mode: appends are fsynced in the background, consumers see data only once it is
    /// fsynced, and `acks=all` is answered after that fsync. Off: Kafka's behaviour (visible on
    /// write, fsync per the flush settings). Default: true.
    pub fsync_acks_all: bool,
    /// fsync a partition after this many messages (Kafka: `log.flush.interval.messages`).
    /// Default: none.
    pub flush_interval_messages: Option<u64>,
    /// fsync dirty partitions this often (Kafka: `log.flush.interval.ms`). Default: none.
    pub flush_interval_ms: Option<u64>,
    /// Delete data older than this (Kafka: `log.retention.ms`); -1 keeps forever.
    /// Default: 604800000 (7 days).
    pub retention_ms: i64,
    /// Delete old segments beyond this size per partition (Kafka: `log.retention.bytes`);
    /// -1 means no limit. Default: -1.
    pub retention_bytes: i64,
    /// Shared mode: how much of a partition's committed log its broker keeps in local
    /// segments (Kafka: `log.local.retention.bytes`, KIP-405); older batches are read from
    /// the object store through the read cache. -2: as `retention.bytes`; -1: keep the whole
    /// log. Topics with `cleanup.policy=compact` always keep their whole log. Default: -2.
    pub local_retention_bytes: i64,
    /// How often retention runs (Kafka: `log.retention.check.interval.ms`). Default: 300000.
    pub retention_check_interval_ms: u64,
    /// Compact topics with `cleanup.policy=compact` (`log.cleaner.enable`). Default: true.
    pub cleaner_enable: bool,
    /// Pause between compaction passes over the compacted topics, in ms
    /// (`log.cleaner.backoff.ms`). Default: 15000.
    pub cleaner_backoff_ms: u64,
    /// Compact a partition once the part not compacted yet is at least this share of its
    /// cleanable bytes; the default of the topic config `min.cleanable.dirty.ratio`
    /// (`log.cleaner.min.cleanable.ratio`). Default: 0.5.
    pub cleaner_min_cleanable_ratio: f64,
    /// Keep tombstones and empty transactions' markers this long after the cleaning that first
    /// saw them, in ms; the default of `delete.retention.ms`
    /// (`log.cleaner.delete.retention.ms`). Default: 86400000.
    pub cleaner_delete_retention_ms: i64,
    /// Leave records younger than this uncompacted, in ms; the default of
    /// `min.compaction.lag.ms` (`log.cleaner.min.compaction.lag.ms`). Default: 0.
    pub cleaner_min_compaction_lag_ms: i64,
    /// Compact a rolled segment at the latest this long after its first record, even below
    /// the dirty ratio, in ms; the default of `max.compaction.lag.ms`
    /// (`log.cleaner.max.compaction.lag.ms`). Default: 9223372036854775807.
    pub cleaner_max_compaction_lag_ms: i64,
    /// Memory for the keys of one compaction pass, in bytes: a pass compacts only as much of
    /// the log as its keys fit in, the rest waits for the next pass
    /// (`log.cleaner.dedupe.buffer.size`). Default: 134217728.
    pub cleaner_dedupe_buffer_size: u64,
    /// Share of the dedupe buffer a pass fills before it stops
    /// (`log.cleaner.io.buffer.load.factor`). Default: 0.9.
    pub cleaner_io_buffer_load_factor: f64,
    /// Most bytes per second the cleaner reads and writes, both counted
    /// (`log.cleaner.io.max.bytes.per.second`). Default: 1.7976931348623157e308 (no limit).
    pub cleaner_io_max_bytes_per_second: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TopicDefaults {
    /// Create unknown topics on Metadata requests (Kafka: `auto.create.topics.enable`).
    /// Default: true.
    pub auto_create: bool,
    /// Partitions of auto-created topics (Kafka: `num.partitions`). Default: 1.
    pub num_partitions: i32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9092".into(),
            advertised: None,
            http_listen: "127.0.0.1:9644".into(),
            listeners: None,
            advertised_listeners: None,
            listener_security_protocol_map: None,
            controller_listener_names: None,
            inter_broker_listener_name: None,
            node_id: 1,
            kafka_version: None,
            cluster_id: None,
            max_request_bytes: 104_857_600,
            fetch_max_bytes: 57_671_680,
            fetch_memory_max_bytes: 256 << 20,
            fetch_session_cache_slots: 1000,
            fetch_session_cache_max_partitions: 1_000_000,
            max_connections: 10_000,
            max_connections_per_ip: i32::MAX as usize,
            max_connections_per_ip_overrides: String::new(),
            connections_max_idle_ms: 600_000,
            // Clients send ApiVersions (or a SASL handshake) as soon as they connect; 10 s
            // leaves room for a slow network while a socket that says nothing is gone 60 times
            // sooner than under the idle timeout.
            first_request_timeout_ms: 10_000,
            shutdown_grace_ms: 5_000,
            max_inflight_requests: 64,
            ssl: SslConfig::default(),
            listener_ssl: HashMap::new(),
            sasl_enabled_mechanisms: None,
            sasl_mechanism_inter_broker_protocol: None,
            sasl_jaas_config: None,
            plain_sasl_jaas_config: None,
            sasl_jaas_file: None,
            connections_max_reauth_ms: 0,
            connection_failed_authentication_delay_ms: 100,
            listener_sasl: HashMap::new(),
            sasl_oauthbearer_jwks_endpoint_url: None,
            sasl_oauthbearer_expected_audience: None,
            sasl_oauthbearer_expected_issuer: None,
            sasl_oauthbearer_sub_claim_name: "sub".into(),
            sasl_oauthbearer_scope_claim_name: "scope".into(),
            sasl_oauthbearer_clock_skew_seconds: 30,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("./data"),
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3600 * 1000,
            index_interval_bytes: 4096,
            max_message_bytes: 1_048_588,
            fsync_acks_all: true,
            flush_interval_messages: None,
            flush_interval_ms: None,
            retention_ms: 7 * 24 * 3600 * 1000,
            retention_bytes: -1,
            local_retention_bytes: -2,
            retention_check_interval_ms: 300_000,
            cleaner_enable: true,
            cleaner_backoff_ms: 15_000,
            cleaner_min_cleanable_ratio: 0.5,
            cleaner_delete_retention_ms: 86_400_000,
            cleaner_min_compaction_lag_ms: 0,
            cleaner_max_compaction_lag_ms: i64::MAX,
            cleaner_dedupe_buffer_size: 128 << 20,
            cleaner_io_buffer_load_factor: 0.9,
            cleaner_io_max_bytes_per_second: f64::MAX,
        }
    }
}

impl Default for TopicDefaults {
    fn default() -> Self {
        Self { auto_create: true, num_partitions: 1 }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid configuration: {0}")]
    Invalid(String),
    #[error("unknown setting `{key}` in {origin}")]
    UnknownKey { key: String, origin: String },
    #[error("setting `{key}` from {origin}: {reason}")]
    BadValue { key: String, origin: String, reason: String },
}

/// Overrides given on the command line; they are the last layer.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub kafka_version: Option<String>,
    pub listen: Option<String>,
    pub advertised: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub node_id: Option<i32>,
}

impl ServerConfig {
    /// The release named by `kafka_version` (checked at load).
    pub fn release(&self) -> Option<Release> {
        self.kafka_version.as_deref().and_then(Release::parse)
    }
}

impl Config {
    /// Loads every layer. `file` is the `--config` argument; `env` is the process environment
    /// (passed in so tests can supply their own).
    pub fn load(
        file: Option<&Path>,
        env: &HashMap<String, String>,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        let mut builder = config::Config::builder();
        let default_file = Path::new("config/gregor.toml");
        if default_file.exists() {
            builder = builder.add_source(config::File::from(default_file));
        }
        if let Some(path) = file {
            let text =
                std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
            if path.extension().is_some_and(|e| e == "properties") {
                let origin = path.display().to_string();
                for (key, value) in parse_properties(&text) {
                    builder = apply_kafka_key(builder, &key, &value, &origin)?;
                }
            } else {
                builder = builder.add_source(config::File::from_str(&text, config::FileFormat::Toml));
            }
        }
        // GREGOR__SECTION__KEY=value
        let mut gregor_env: Vec<_> = env.iter().filter(|(k, _)| k.starts_with("GREGOR__")).collect();
        gregor_env.sort();
        for (k, v) in gregor_env {
            let path = k["GREGOR__".len()..].to_ascii_lowercase().replace("__", ".");
            builder = builder.set_override(&path, v.clone()).map_err(|e| ConfigError::BadValue {
                key: path.clone(),
                origin: format!("environment variable {k}"),
                reason: e.to_string(),
            })?;
        }
        // KAFKA_LOG_DIRS=... as the apache/kafka image reads them, KAFKA_CFG_LOG_DIRS=... as
        // the bitnami image does.
        let mut kafka_env: Vec<_> = env.iter().filter(|(k, _)| k.starts_with("KAFKA_")).collect();
        kafka_env.sort();
        let mut kafka_pairs = Vec::new();
        let mut image_pairs = Vec::new();
        let mut runtime = Vec::new();
        for (k, v) in kafka_env {
            let rest = k.strip_prefix("KAFKA_CFG_").or_else(|| k.strip_prefix("KAFKA_")).unwrap_or(k);
            // The images' spelling: `_` is `.`, `__` is `_`, `___` is `-`.
            let key = rest
                .to_ascii_lowercase()
                .replace("___", "\u{1}")
                .replace("__", "\u{2}")
                .replace('_', ".")
                .replace('\u{1}', "-")
                .replace('\u{2}', "_");
            if let Some(pair) = image_ssl_variable(rest, v, k)? {
                // The image sets these over the variables they stand for: they come last.
                image_pairs.push(pair);
            } else if kafka_key(&key).is_some() {
                kafka_pairs.push((key, v.clone(), format!("environment variable {k}")));
            } else if is_image_variable(rest) {
                if rest == "OPTS" {
                    if let Some(file) = sasl::jaas_file_from_java_opts(v) {
                        let origin = format!("environment variable {k}");
                        image_pairs.push((
                            "java.security.auth.login.config".into(),
                            file.display().to_string(),
                            origin,
                        ));
                    }
                }
                runtime.push(k.as_str());
            } else {
                tracing::warn!(variable = %k, key = %key,
                    "ignoring a Kafka setting gregor does not know; it has no effect");
            }
        }
        if !runtime.is_empty() {
            tracing::info!(variables = %runtime.join(" "),
                "accepted JVM, JMX and container-image variables; they have no meaning for gregor");
        }
        for (key, value, origin) in kafka_pairs.iter().chain(&image_pairs) {
            builder = apply_kafka_key(builder, key, value, origin)?;
        }
        let built = builder.build().map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let mut cfg: Config = built.try_deserialize().map_err(|e| ConfigError::Invalid(e.to_string()))?;
        // A flag replaces whatever the other layers said about listeners — but never quietly
        // turns a secured listener into an open one.
        if let Some(listen) = &overrides.listen {
            if cfg.server.listeners.as_deref().is_some_and(|l| !l.trim().is_empty()) {
                let secured: Vec<String> = cfg
                    .listeners()?
                    .into_iter()
                    .filter(|l| !matches!(l.security, ListenerSecurity::Plaintext))
                    .map(|l| l.name)
                    .collect();
                if !secured.is_empty() {
                    return Err(ConfigError::BadValue {
                        key: "--listen".into(),
                        origin: "command line".into(),
                        reason: format!(
                            "would replace the configured listeners, among them the secured {}, with one \
                             PLAINTEXT listener; drop --listen or the `listeners` setting",
                            secured.join(", ")
                        ),
                    });
                }
            }
            cfg.server.listen = listen.clone();
            cfg.server.listeners = None;
            cfg.server.advertised_listeners = None;
        }
        if let Some(adv) = &overrides.advertised {
            cfg.server.advertised = Some(adv.clone());
            cfg.server.advertised_listeners = None;
        }
        if let Some(dir) = &overrides.data_dir {
            cfg.log.dir = dir.clone();
        }
        if let Some(id) = overrides.node_id {
            cfg.server.node_id = id;
        }
        if let Some(v) = &overrides.kafka_version {
            cfg.server.kafka_version = Some(v.clone());
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Rejects contradictions with a message naming the setting. Never falls back silently.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, reason: String| {
            Err(ConfigError::BadValue { key: key.into(), origin: "configuration".into(), reason })
        };
        if self.server.listen.parse::<SocketAddr>().is_err() && parse_host_port(&self.server.listen).is_none() {
            return bad("server.listen", format!("`{}` is not HOST:PORT", self.server.listen));
        }
        if let Some(adv) = &self.server.advertised {
            if parse_host_port(adv).is_none() {
                return bad("server.advertised", format!("`{adv}` is not HOST:PORT"));
            }
        }
        self.listeners()?;
        if let Some(a) = self.server.http_address() {
            if parse_host_port(a).is_none() {
                return bad("server.http_listen", format!("`{a}` is not HOST:PORT (or \"off\")"));
            }
        }
        if self.server.node_id < 0 {
            return bad("server.node_id", "must be 0 or more".into());
        }
        if let Some(v) = self.server.kafka_version.as_deref().filter(|v| Release::parse(v).is_none()) {
            let names: Vec<&str> = Release::ALL.iter().map(|r| r.name()).collect();
            return bad(
                "server.kafka_version",
                format!("`{v}` is not a release gregor emulates ({})", names.join(", ")),
            );
        }
        let class = self.auth.authorizer_class_name.trim();
        if !class.is_empty() && !AUTHORIZER_CLASSES.contains(&class) {
            return bad(
                "auth.authorizer_class_name",
                format!("`{class}` is not an authorizer gregor implements (use {})", AUTHORIZER_CLASSES[0]),
            );
        }
        if let Some(u) = self.auth.super_users().iter().find(|u| !u.contains(':')) {
            return bad("auth.super_users", format!("`{u}` is not a principal (Type:name, e.g. User:admin)"));
        }
        if self.server.fetch_max_bytes < 1024 {
            return bad("server.fetch_max_bytes", "must be at least 1024".into());
        }
        if self.server.fetch_memory_max_bytes < self.server.fetch_max_bytes {
            return bad(
                "server.fetch_memory_max_bytes",
                format!("must be at least server.fetch_max_bytes ({})", self.server.fetch_max_bytes),
            );
        }
        if self.server.max_request_bytes < 64 {
            return bad("server.max_request_bytes", "must be at least 64".into());
        }
        if self.server.max_connections == 0 || self.server.max_inflight_requests == 0 {
            return bad("server.max_connections", "must be at least 1".into());
        }
        if let Err(reason) = self.server.per_ip_overrides() {
            return bad("server.max_connections_per_ip_overrides", reason);
        }
        if self.server.first_request_timeout_ms == 0 {
            return bad("server.first_request_timeout_ms", "must be at least 1".into());
        }
        if self.log.segment_bytes < 1024 || self.log.segment_bytes > i32::MAX as u64 {
            return bad("log.segment_bytes", "must be between 1024 and 2147483647".into());
        }
        if self.log.segment_ms < 1 {
            return bad("log.segment_ms", "must be positive".into());
        }
        if self.log.max_message_bytes < 64 {
            return bad("log.max_message_bytes", "must be at least 64".into());
        }
        let ratio = self.log.cleaner_min_cleanable_ratio;
        if !(0.0..=1.0).contains(&ratio) {
            return bad("log.cleaner_min_cleanable_ratio", format!("{ratio} is not between 0 and 1"));
        }
        if self.log.cleaner_delete_retention_ms < 0 || self.log.cleaner_min_compaction_lag_ms < 0 {
            return bad(
                "log.cleaner_delete_retention_ms / log.cleaner_min_compaction_lag_ms",
                "must be 0 or more".into(),
            );
        }
        if self.log.cleaner_max_compaction_lag_ms < 1 {
            return bad("log.cleaner_max_compaction_lag_ms", "must be at least 1".into());
        }
        // Kafka asks for room for at least one entry; a key and its offset take more than 24
        // bytes here, so ask for a little more.
        if self.log.cleaner_dedupe_buffer_size < 1024 {
            return bad("log.cleaner_dedupe_buffer_size", "must be at least 1024 bytes".into());
        }
        let load = self.log.cleaner_io_buffer_load_factor;
        if !(load > 0.0 && load <= 1.0) {
            return bad("log.cleaner_io_buffer_load_factor", format!("{load} is not above 0 and at most 1"));
        }
        if self.log.cleaner_io_max_bytes_per_second.is_nan() || self.log.cleaner_io_max_bytes_per_second <= 0.0 {
            return bad("log.cleaner_io_max_bytes_per_second", "must be above 0".into());
        }
        if self.topics.num_partitions < 1 {
            return bad("topics.num_partitions", "must be at least 1".into());
        }
        if self.group.min_session_timeout_ms > self.group.max_session_timeout_ms {
            return bad("group.min_session_timeout_ms", "must not be larger than group.max_session_timeout_ms".into());
        }
        if self.group.consumer_heartbeat_interval_ms >= self.group.consumer_session_timeout_ms {
            return bad(
                "group.consumer_heartbeat_interval_ms",
                "must be smaller than group.consumer_session_timeout_ms".into(),
            );
        }
        if crate::group::consumer::MigrationPolicy::from_name(&self.group.consumer_migration_policy).is_none() {
            return bad(
                "group.consumer_migration_policy",
                format!(
                    "`{}` is not one of bidirectional, upgrade, downgrade, disabled",
                    self.group.consumer_migration_policy
                ),
            );
        }
        if self.group.share_heartbeat_interval_ms >= self.group.share_session_timeout_ms {
            return bad(
                "group.share_heartbeat_interval_ms",
                "must be smaller than group.share_session_timeout_ms".into(),
            );
        }
        if !(2..=10).contains(&self.group.share_delivery_count_limit) {
            return bad("group.share_delivery_count_limit", "must be between 2 and 10, as Kafka's".into());
        }
        if !(1_000..=3_600_000).contains(&self.group.share_record_lock_duration_ms) {
            return bad("group.share_record_lock_duration_ms", "must be between 1000 and 3600000, as Kafka's".into());
        }
        if self.group.share_partition_max_record_locks < 100 || self.group.share_max_share_sessions < 1 {
            return bad(
                "group.share_partition_max_record_locks",
                "must be at least 100 (and group.share_max_share_sessions at least 1)".into(),
            );
        }
        if self.log.flush_interval_messages == Some(0) || self.log.flush_interval_ms == Some(0) {
            return bad("log.flush_interval_*", "must be at least 1 when set".into());
        }
        self.validate_cluster()
    }

    fn validate_cluster(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, reason: &str| {
            Err(ConfigError::BadValue { key: key.into(), origin: "configuration".into(), reason: reason.into() })
        };
        let c = &self.cluster;
        match (c.is_shared(), !c.object_store_url.trim().is_empty()) {
            (false, false) => return Ok(()),
            (false, true) => return bad("cluster.postgres_url", "shared mode needs it with cluster.object_store_url"),
            (true, false) => return bad("cluster.object_store_url", "shared mode needs it with cluster.postgres_url"),
            (true, true) => {}
        }
        if c.heartbeat_interval_ms == 0 || c.heartbeat_interval_ms >= c.session_timeout_ms {
            return bad(
                "cluster.heartbeat_interval_ms",
                "must be at least 1 and smaller than cluster.session_timeout_ms",
            );
        }
        if c.store_timeout_ms < 100 {
            return bad("cluster.store_timeout_ms", "must be at least 100");
        }
        Ok(())
    }
}

/// A listener gregor opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSpec {
    /// Kafka's listener name (PLAINTEXT when only `server.listen` is configured).
    pub name: String,
    /// Address to bind, `HOST:PORT`.
    pub bind: String,
    /// What clients connecting through it are told; `None`: the address each one dialled.
    pub advertised: Option<(String, u16)>,
    /// How its connections are secured (its entry in `listener.security.protocol.map`).
    pub security: ListenerSecurity,
}

/// The security protocols gregor serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenerSecurity {
    Plaintext,
    /// TLS, with the listener's resolved settings.
    Ssl(Box<SslSettings>),
    /// SASL in the clear.
    SaslPlaintext(Box<SaslSettings>),
    /// SASL over TLS.
    SaslSsl(Box<SslSettings>, Box<SaslSettings>),
}

impl ListenerSecurity {
    /// The TLS settings of an SSL or SASL_SSL listener.
    pub fn tls(&self) -> Option<&SslSettings> {
        match self {
            Self::Ssl(s) | Self::SaslSsl(s, _) => Some(s),
            Self::Plaintext | Self::SaslPlaintext(_) => None,
        }
    }

    /// The SASL settings of a SASL_PLAINTEXT or SASL_SSL listener.
    pub fn sasl(&self) -> Option<&SaslSettings> {
        match self {
            Self::SaslPlaintext(s) | Self::SaslSsl(_, s) => Some(s),
            Self::Plaintext | Self::Ssl(_) => None,
        }
    }
}

/// Whether TLS clients must show a certificate (`ssl.client.auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    /// A client may show one; if it does, it must verify.
    Requested,
    Required,
}

/// A TLS version gregor can offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

/// Where a listener's private key and certificate chain come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// One PEM file holding both (`ssl.keystore.location`).
    File(PathBuf),
    /// PEM text given in the settings (`ssl.keystore.key`, `ssl.keystore.certificate.chain`).
    Inline { key: String, chain: String },
}

/// Where the CA certificates that verify clients come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustSource {
    File(PathBuf),
    Inline(String),
}

/// One SSL listener's TLS settings: its own `listener.name.<name>.ssl.*` over the global
/// `ssl.*`, checked. Files are not read here; `server::tls` reads them at start and names the
/// setting ([`SslSettings::key`]) when one is missing or wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SslSettings {
    /// The listener's name, as in `listeners` (upper case).
    pub listener: String,
    pub keystore: KeySource,
    pub key_password: Option<String>,
    pub truststore: Option<TrustSource>,
    pub client_auth: ClientAuth,
    pub protocols: Vec<TlsVersion>,
    /// Names as given; empty for the TLS library's own list.
    pub cipher_suites: Vec<String>,
    pub principal_mapping_rules: String,
    /// Whether a broker dialling this listener checks that the certificate names the host
    /// (`ssl.endpoint.identification.algorithm`).
    pub verify_hostname: bool,
    /// Store passwords given (`ssl.keystore.password`, `ssl.truststore.password`), which PEM
    /// files do not use: named so the start can say so.
    pub unused_passwords: Vec<String>,
    /// The settings this listener sets itself (field names of [`SslConfig`]).
    overridden: Vec<&'static str>,
}

impl SslSettings {
    /// How to name the setting behind `field` (a field of [`SslConfig`]) in a message: its
    /// Kafka name, listener prefix included when this listener sets it, and gregor's TOML path.
    pub fn key(&self, field: &str) -> String {
        ssl_key_name(&self.listener, &self.overridden, field)
    }
}

/// See [`SslSettings::key`].
fn ssl_key_name(listener: &str, overridden: &[&str], field: &str) -> String {
    let kafka = field.replace('_', ".");
    let lower = listener.to_ascii_lowercase();
    if overridden.contains(&field) {
        format!("listener.name.{lower}.ssl.{kafka} (server.listener_ssl.{lower}.{field})")
    } else {
        format!("ssl.{kafka} (server.ssl.{field})")
    }
}

/// Each field of [`SslConfig`] and its path under `server.ssl`. A field's Kafka name is `ssl.`
/// and the field, `_` read as `.`.
const SSL_PATHS: &[(&str, &str)] = &[
    ("keystore_type", "server.ssl.keystore_type"),
    ("keystore_location", "server.ssl.keystore_location"),
    ("keystore_key", "server.ssl.keystore_key"),
    ("keystore_certificate_chain", "server.ssl.keystore_certificate_chain"),
    ("keystore_password", "server.ssl.keystore_password"),
    ("key_password", "server.ssl.key_password"),
    ("truststore_type", "server.ssl.truststore_type"),
    ("truststore_location", "server.ssl.truststore_location"),
    ("truststore_certificates", "server.ssl.truststore_certificates"),
    ("truststore_password", "server.ssl.truststore_password"),
    ("client_auth", "server.ssl.client_auth"),
    ("enabled_protocols", "server.ssl.enabled_protocols"),
    ("cipher_suites", "server.ssl.cipher_suites"),
    ("principal_mapping_rules", "server.ssl.principal_mapping_rules"),
    ("endpoint_identification_algorithm", "server.ssl.endpoint_identification_algorithm"),
];

impl SslConfig {
    /// The value of `field`, blank counted as unset (a compose file's `KAFKA_SSL_KEY_PASSWORD=`).
    fn get(&self, field: &str) -> Option<String> {
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        let value = match field {
            "keystore_type" => self.keystore_type.clone(),
            "keystore_location" => path(&self.keystore_location),
            "keystore_key" => self.keystore_key.clone(),
            "keystore_certificate_chain" => self.keystore_certificate_chain.clone(),
            "keystore_password" => self.keystore_password.clone(),
            "key_password" => self.key_password.clone(),
            "truststore_type" => self.truststore_type.clone(),
            "truststore_location" => path(&self.truststore_location),
            "truststore_certificates" => self.truststore_certificates.clone(),
            "truststore_password" => self.truststore_password.clone(),
            "client_auth" => self.client_auth.clone(),
            "enabled_protocols" => self.enabled_protocols.clone(),
            "cipher_suites" => self.cipher_suites.clone(),
            "principal_mapping_rules" => self.principal_mapping_rules.clone(),
            // Blank has a meaning of its own here: see `ssl_settings`.
            _ => None,
        };
        value.filter(|v| !v.trim().is_empty())
    }
}

impl ServerConfig {
    /// The TLS settings of the SSL listener `name`, resolved and checked.
    pub fn ssl_settings(&self, name: &str) -> Result<SslSettings, ConfigError> {
        let lower = name.to_ascii_lowercase();
        let own = self.listener_ssl.iter().find(|(k, _)| k.to_ascii_lowercase() == lower).map(|(_, v)| v);
        let mut overridden = Vec::new();
        let mut values = HashMap::new();
        for &(field, _) in SSL_PATHS {
            if let Some(v) = own.and_then(|o| o.get(field)) {
                overridden.push(field);
                values.insert(field, v);
            } else if let Some(v) = self.ssl.get(field) {
                values.insert(field, v);
            }
        }
        // Blank is a value of its own here (no host name check), not "unset".
        let endpoint = "endpoint_identification_algorithm";
        let algorithm = match own.and_then(|o| o.endpoint_identification_algorithm.clone()) {
            Some(a) => {
                overridden.push(endpoint);
                Some(a)
            }
            None => self.ssl.endpoint_identification_algorithm.clone(),
        };
        let bad = |field: &str, reason: String| ConfigError::BadValue {
            key: ssl_key_name(name, &overridden, field),
            origin: format!("configuration of the SSL listener {name}"),
            reason,
        };
        let verify_hostname = match algorithm.as_deref().map(str::trim) {
            None => true,
            // Java's two algorithms; both check the name (they differ in wildcards only).
            Some(a) if a.eq_ignore_ascii_case("https") || a.eq_ignore_ascii_case("ldaps") => true,
            Some("") => false,
            Some(other) => {
                return Err(bad(
                    endpoint,
                    format!("`{other}` is not https (check the host name of a broker dialled) or empty (do not)"),
                ))
            }
        };
        // What to run on a JKS or PKCS12 store to get the PEM file gregor reads.
        let keystore_howto = "`openssl pkcs12 -in STORE.p12 -nodes -out server.pem` (key and chain in one file)";
        let truststore_howto = "`openssl pkcs12 -in STORE.p12 -nokeys -out ca.pem`";
        for (field, store, howto) in
            [("keystore_type", "keystore", keystore_howto), ("truststore_type", "truststore", truststore_howto)]
        {
            if let Some(kind) = values.get(field).filter(|t| !t.trim().eq_ignore_ascii_case("PEM")) {
                return Err(bad(
                    field,
                    format!(
                        "{} {store}s are not supported: gregor reads PEM only. Convert the store to PEM \
                         (a JKS one first to PKCS12: `keytool -importkeystore -srckeystore STORE.jks \
                         -destkeystore STORE.p12 -deststoretype PKCS12`; then {howto}) and set it to PEM",
                        kind.trim()
                    ),
                ));
            }
        }
        let (location, key, chain) =
            (values.get("keystore_location"), values.get("keystore_key"), values.get("keystore_certificate_chain"));
        let keystore = match (location, key, chain) {
            (Some(path), None, None) => KeySource::File(PathBuf::from(path)),
            (None, Some(key), Some(chain)) => KeySource::Inline { key: key.clone(), chain: chain.clone() },
            (Some(_), _, _) => {
                return Err(bad(
                    "keystore_location",
                    "is set together with ssl.keystore.key / ssl.keystore.certificate.chain; set one or the other"
                        .into(),
                ))
            }
            (None, Some(_), None) => {
                return Err(bad("keystore_certificate_chain", "is needed with ssl.keystore.key".into()));
            }
            (None, None, Some(_)) => {
                return Err(bad("keystore_key", "is needed with ssl.keystore.certificate.chain".into()));
            }
            (None, None, None) => {
                return Err(bad(
                    "keystore_location",
                    "is not set: an SSL listener needs a private key and certificate chain, in one PEM file \
                     (ssl.keystore.location) or inline (ssl.keystore.key and ssl.keystore.certificate.chain)"
                        .into(),
                ))
            }
        };
        let truststore = match (values.get("truststore_location"), values.get("truststore_certificates")) {
            (Some(_), Some(_)) => {
                return Err(bad(
                    "truststore_location",
                    "is set together with ssl.truststore.certificates; set one or the other".into(),
                ))
            }
            (Some(path), None) => Some(TrustSource::File(PathBuf::from(path))),
            (None, Some(pem)) => Some(TrustSource::Inline(pem.clone())),
            (None, None) => None,
        };
        let client_auth = match values.get("client_auth").map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None | Some("none") => ClientAuth::None,
            Some("requested") => ClientAuth::Requested,
            Some("required") => ClientAuth::Required,
            Some(other) => {
                return Err(bad("client_auth", format!("`{other}` is not one of none, requested, required")));
            }
        };
        if client_auth != ClientAuth::None && truststore.is_none() {
            return Err(bad(
                "truststore_location",
                "is not set: client certificates (ssl.client.auth requested or required) are verified \
                 against the CA certificates of ssl.truststore.location or ssl.truststore.certificates"
                    .into(),
            ));
        }
        let protocols = match values.get("enabled_protocols") {
            Some(list) => parse_tls_versions(list).map_err(|reason| bad("enabled_protocols", reason))?,
            None => vec![TlsVersion::Tls12, TlsVersion::Tls13],
        };
        let cipher_suites = values
            .get("cipher_suites")
            .map(|list| list.split(',').map(str::trim).filter(|c| !c.is_empty()).map(String::from).collect())
            .unwrap_or_default();
        let principal_mapping_rules =
            values.get("principal_mapping_rules").cloned().unwrap_or_else(|| "DEFAULT".into());
        crate::auth::ssl_mapping::SslPrincipalMapper::parse(&principal_mapping_rules)
            .map_err(|e| bad("principal_mapping_rules", e.to_string()))?;
        let unused_passwords = ["keystore_password", "truststore_password"]
            .into_iter()
            .filter(|f| values.contains_key(f))
            .map(|f| ssl_key_name(name, &overridden, f))
            .collect();
        Ok(SslSettings {
            listener: name.to_string(),
            keystore,
            key_password: values.get("key_password").cloned(),
            truststore,
            client_auth,
            protocols,
            cipher_suites,
            principal_mapping_rules,
            verify_hostname,
            unused_passwords,
            overridden,
        })
    }
}

/// `ssl.enabled.protocols`. Versions older than TLS 1.2 are left out with a warning (Java's
/// own security policy disables them too, so a Kafka broker does not offer them either); an
/// unknown name, or a list with nothing gregor can offer, is an error.
fn parse_tls_versions(list: &str) -> Result<Vec<TlsVersion>, String> {
    let mut versions = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match name {
            "TLSv1.2" => versions.push(TlsVersion::Tls12),
            "TLSv1.3" => versions.push(TlsVersion::Tls13),
            "TLSv1" | "TLSv1.1" | "SSLv3" | "SSLv2Hello" => {
                tracing::warn!(protocol = name, "ssl.enabled.protocols: {name} is obsolete and not offered");
            }
            other => return Err(format!("`{other}` is not a TLS version (use TLSv1.2 and/or TLSv1.3)")),
        }
    }
    versions.dedup();
    if versions.is_empty() {
        return Err(format!("`{list}` leaves no version gregor offers: list TLSv1.2 and/or TLSv1.3"));
    }
    Ok(versions)
}

/// Kafka's `listener.security.protocol.map` default.
const DEFAULT_PROTOCOL_MAP: &str = "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL";

/// Splits Kafka's `NAME://HOST:PORT,...`: (name upper-cased as Kafka normalises it, host, port).
fn parse_listener_list(key: &str, text: &str) -> Result<Vec<(String, String, u16)>, ConfigError> {
    let bad = |reason: String| ConfigError::BadValue { key: key.into(), origin: "configuration".into(), reason };
    let mut out: Vec<(String, String, u16)> = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, addr) = entry.split_once("://").ok_or_else(|| bad(format!("`{entry}` is not NAME://HOST:PORT")))?;
        let name = name.trim().to_ascii_uppercase();
        let (host, port) = addr.rsplit_once(':').ok_or_else(|| bad(format!("`{entry}` has no port")))?;
        let port: u16 = port.parse().map_err(|_| bad(format!("`{port}` in `{entry}` is not a port")))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(bad(format!("`{entry}` does not start with a listener name")));
        }
        if out.iter().any(|(n, _, _)| *n == name) {
            return Err(bad(format!("the listener name {name} appears twice")));
        }
        out.push((name, host, port));
    }
    Ok(out)
}

impl Config {
    /// The listeners to open: the named ones of `server.listeners` (Kafka's `listeners` and
    /// the keys that go with it), or `server.listen` alone. Errors name the key at fault.
    pub fn listeners(&self) -> Result<Vec<ListenerSpec>, ConfigError> {
        let s = &self.server;
        let bad = |key: &str, reason: String| ConfigError::BadValue {
            key: key.into(),
            origin: "configuration".into(),
            reason,
        };
        let Some(list) = s.listeners.as_deref().filter(|l| !l.trim().is_empty()) else {
            if s.advertised_listeners.is_some() {
                return Err(bad(
                    "server.advertised_listeners",
                    "names listeners, but no server.listeners (Kafka's `listeners`) defines them".into(),
                ));
            }
            let advertised = s.advertised.as_deref().and_then(parse_host_port);
            return Ok(vec![ListenerSpec {
                name: "PLAINTEXT".into(),
                bind: s.listen.clone(),
                advertised,
                security: ListenerSecurity::Plaintext,
            }]);
        };
        if s.advertised.is_some() {
            return Err(bad(
                "server.advertised",
                "applies to server.listen only; with named listeners use server.advertised_listeners \
                 (Kafka's `advertised.listeners`)"
                    .into(),
            ));
        }
        let listeners = parse_listener_list("server.listeners", list)?;
        let upper = |v: &Option<String>| v.as_deref().unwrap_or("").to_ascii_uppercase();
        let controllers: Vec<String> = upper(&s.controller_listener_names)
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(String::from)
            .collect();
        let map_text = s.listener_security_protocol_map.as_deref().unwrap_or(DEFAULT_PROTOCOL_MAP);
        let mut protocols = HashMap::new();
        for entry in map_text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (name, protocol) = entry.split_once(':').ok_or_else(|| {
                bad("server.listener_security_protocol_map", format!("`{entry}` is not NAME:PROTOCOL"))
            })?;
            protocols.insert(name.trim().to_ascii_uppercase(), protocol.trim().to_ascii_uppercase());
        }
        let mut advertised: HashMap<String, (String, u16)> = HashMap::new();
        if let Some(text) = &s.advertised_listeners {
            for (name, host, port) in parse_listener_list("server.advertised_listeners", text)? {
                if !listeners.iter().any(|(n, _, _)| *n == name) {
                    return Err(bad(
                        "server.advertised_listeners",
                        format!(
                            "names the listener {name}, which server.listeners (Kafka's `listeners`) does not define"
                        ),
                    ));
                }
                if host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_unspecified()) {
                    return Err(bad(
                        "server.advertised_listeners",
                        format!("{name} advertises {host}, which clients cannot dial; name the host they should use"),
                    ));
                }
                // An empty host: tell each client the address it dialled.
                if !host.is_empty() && !controllers.contains(&name) {
                    advertised.insert(name, (host, port));
                }
            }
        }
        let mut specs = Vec::new();
        for (name, host, port) in listeners {
            let protocol = protocols.get(&name).ok_or_else(|| {
                bad(
                    "server.listener_security_protocol_map",
                    format!("has no security protocol for the listener {name} (add `{name}:PLAINTEXT`)"),
                )
            })?;
            if controllers.contains(&name) {
                continue;
            }
            let security = match protocol.as_str() {
                "PLAINTEXT" => ListenerSecurity::Plaintext,
                "SSL" => ListenerSecurity::Ssl(Box::new(s.ssl_settings(&name)?)),
                "SASL_PLAINTEXT" => ListenerSecurity::SaslPlaintext(Box::new(s.sasl_settings(&name)?)),
                "SASL_SSL" => {
                    let sasl = s.sasl_settings(&name)?;
                    ListenerSecurity::SaslSsl(Box::new(s.ssl_settings(&name)?), Box::new(sasl))
                }
                other => {
                    return Err(bad(
                        "server.listener_security_protocol_map",
                        format!(
                            "maps the listener {name} to `{other}`, which is not a security protocol \
                             (PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL)"
                        ),
                    ))
                }
            };
            let bind_host = if host.is_empty() { "0.0.0.0".to_string() } else { host };
            let bind =
                if bind_host.contains(':') { format!("[{bind_host}]:{port}") } else { format!("{bind_host}:{port}") };
            if port != 0 && specs.iter().any(|l: &ListenerSpec| l.bind.ends_with(&format!(":{port}"))) {
                return Err(bad("server.listeners", format!("two listeners use port {port}")));
            }
            specs.push(ListenerSpec { advertised: advertised.remove(&name), name, bind, security });
        }
        if specs.is_empty() {
            return Err(bad(
                "server.listeners",
                "defines only controller listeners; gregor needs one for clients".into(),
            ));
        }
        if let Some(name) = s.inter_broker_listener_name.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
            let name = name.to_ascii_uppercase();
            if !specs.iter().any(|l| l.name == name) {
                return Err(bad(
                    "server.inter_broker_listener_name",
                    format!("names {name}, which is not a broker listener in server.listeners"),
                ));
            }
        }
        Ok(specs)
    }
}

impl ServerConfig {
    /// The HTTP endpoint's address, `None` when it is off.
    pub fn http_address(&self) -> Option<&str> {
        let a = self.http_listen.trim();
        (!a.is_empty() && a != "off").then_some(a)
    }

    /// `max_connections_per_ip_overrides` as (host, count) pairs, hosts not yet resolved.
    pub fn per_ip_overrides(&self) -> Result<Vec<(String, usize)>, String> {
        let text = self.max_connections_per_ip_overrides.trim();
        if text.is_empty() {
            return Ok(Vec::new());
        }
        text.split(',')
            .map(|entry| {
                let entry = entry.trim();
                let (host, count) = entry
                    .rsplit_once(':')
                    .ok_or_else(|| format!("`{entry}` is not host:count (expected `host:count,host:count`)"))?;
                let count =
                    count.trim().parse::<usize>().map_err(|_| format!("`{count}` in `{entry}` is not a count"))?;
                let host = host.trim().trim_start_matches('[').trim_end_matches(']');
                if host.is_empty() {
                    return Err(format!("`{entry}` names no host"));
                }
                Ok((host.to_string(), count))
            })
            .collect()
    }
}

/// Splits `HOST:PORT` (also `[v6]:PORT`).
pub fn parse_host_port(s: &str) -> Option<(String, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let port = port.parse().ok()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (!host.is_empty()).then(|| (host.to_string(), port))
}

/// Java properties, as server.properties files use them: `key=value` or `key: value`, `#`/`!`
/// comments, blank lines, a line ending in a backslash continued on the next (whose leading
/// blanks are dropped: how inline PEM is written), and backslash escapes (`\\`, `\t`, `\n`,
/// `\uXXXX`, `\=`). Values are trimmed at both ends.
fn parse_properties(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let mut logical = line.to_string();
        while logical.chars().rev().take_while(|&c| c == '\\').count() % 2 == 1 {
            logical.pop();
            match lines.next() {
                Some(next) => logical.push_str(next.trim_start()),
                None => break,
            }
        }
        // The first `=` or `:` that no backslash escapes ends the key.
        let mut escaped = false;
        let separator = logical.char_indices().find(|&(_, c)| {
            let found = !escaped && (c == '=' || c == ':');
            escaped = !escaped && c == '\\';
            found
        });
        if let Some((idx, _)) = separator {
            out.push((unescape_property(logical[..idx].trim()), unescape_property(logical[idx + 1..].trim())));
        }
    }
    out
}

/// Java's escapes in a properties key or value.
fn unescape_property(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let hex: String = chars.clone().take(4).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32).filter(|_| hex.len() == 4) {
                    Some(ch) => {
                        out.push(ch);
                        chars.nth(3);
                    }
                    None => out.push('u'),
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// Where the apache/kafka image keeps the files its TLS variables name.
const IMAGE_SECRETS_DIR: &str = "/etc/kafka/secrets";

/// The apache/kafka image's TLS variables (`KAFKA_SSL_KEYSTORE_FILENAME` and the like, `name`
/// without its `KAFKA_`), which name files in its secrets directory instead of setting Kafka
/// settings themselves: the Kafka setting each stands for and its value, as the image's start
/// script derives them. `None` for any other variable.
fn image_ssl_variable(
    name: &str,
    value: &str,
    variable: &str,
) -> Result<Option<(String, String, String)>, ConfigError> {
    let (key, password) = match name {
        "SSL_KEYSTORE_FILENAME" => ("ssl.keystore.location", false),
        "SSL_TRUSTSTORE_FILENAME" => ("ssl.truststore.location", false),
        "SSL_KEY_CREDENTIALS" => ("ssl.key.password", true),
        "SSL_KEYSTORE_CREDENTIALS" => ("ssl.keystore.password", true),
        "SSL_TRUSTSTORE_CREDENTIALS" => ("ssl.truststore.password", true),
        _ => return Ok(None),
    };
    let origin = format!("environment variable {variable}");
    let path = Path::new(IMAGE_SECRETS_DIR).join(value.trim());
    if !password {
        return Ok(Some((key.into(), path.display().to_string(), origin)));
    }
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some((key.into(), text.trim_end_matches(['\n', '\r']).to_string(), origin))),
        Err(e) if key == "ssl.key.password" => Err(ConfigError::BadValue {
            key: variable.into(),
            origin,
            reason: format!("cannot read the key password from {}: {e}", path.display()),
        }),
        // Store passwords mean nothing for PEM files: a missing one is no reason to stop.
        Err(_) => Ok(Some((key.into(), "(unread)".into(), origin))),
    }
}

/// What a Kafka setting means to gregor.
#[derive(Debug, Clone, PartialEq)]
pub enum KafkaKey {
    /// Maps to one of our keys, value as given.
    Maps(&'static str),
    /// `listener.name.<listener>.ssl.<setting>`: one listener's TLS setting, a field of
    /// [`SslConfig`] under `server.listener_ssl.<listener>`.
    ListenerSsl { listener: String, field: &'static str },
    /// `listener.name.<listener>.<sasl setting>`: one listener's SASL setting, a path under
    /// `server.listener_sasl.<listener>` ([`ListenerSaslConfig`]).
    ListenerSasl { listener: String, path: String },
    /// Maps to one of our keys, the value multiplied (hours to milliseconds); -1 stays -1.
    Scaled(&'static str, i64),
    /// Known Kafka setting with no meaning for a single gregor node: accepted and ignored.
    Ignored,
    /// Like [`KafkaKey::Ignored`], and so commonly set that saying so is noise.
    Quiet,
}

/// A `listener.name.<listener>.` SASL setting (the part after the listener): `Some(Some(path))`
/// for a path under `server.listener_sasl.<listener>`, `Some(None)` for one accepted and
/// ignored, `None` for anything else.
fn listener_sasl_setting(setting: &str) -> Option<Option<String>> {
    match setting {
        "sasl.enabled.mechanisms" => return Some(Some("enabled_mechanisms".into())),
        "plain.sasl.jaas.config" => return Some(Some("plain_jaas_config".into())),
        "oauthbearer.sasl.jaas.config" => return Some(Some("oauthbearer_jaas_config".into())),
        "oauthbearer.sasl.server.callback.handler.class" => {
            return Some(Some("oauthbearer_server_callback_handler_class".into()))
        }
        // How this broker would fetch tokens for itself: one gregor node connects to no one.
        "oauthbearer.sasl.login.callback.handler.class" => return Some(None),
        "scram-sha-256.sasl.jaas.config" => return Some(Some("scram_sha_256_jaas_config".into())),
        "scram-sha-512.sasl.jaas.config" => return Some(Some("scram_sha_512_jaas_config".into())),
        _ => {}
    }
    let mechanism = setting.strip_suffix(".connections.max.reauth.ms")?;
    SaslMechanism::from_kafka_name(&mechanism.to_ascii_uppercase())
        .map(|m| Some(format!("reauth_ms.{}", m.kafka_name().to_ascii_lowercase().replace('-', "_"))))
}

/// Variables of the Kafka images that are not broker settings (JVM, JMX, logging, the images'
/// own switches), named without their `KAFKA_` prefix.
fn is_image_variable(name: &str) -> bool {
    const EXACT: &[&str] = &[
        "HOME",
        "VERSION",
        "DEBUG",
        "OPTS",
        "HEAP_OPTS",
        "JVM_PERFORMANCE_OPTS",
        "GC_LOG_OPTS",
        "LOG4J_OPTS",
        "LOG4J_ROOT_LOGLEVEL",
        "LOG4J_LOGGERS",
        "TOOLS_LOG4J_LOGLEVEL",
        "JMX_OPTS",
        "JMX_PORT",
        "JMX_HOSTNAME",
        "ENABLE_KRAFT",
        "KRAFT_CLUSTER_ID",
        "CLUSTER_ID",
        "SKIP_KRAFT_STORAGE_INIT",
        "MOUNTED_CONF_DIR",
        "CONF_FILE",
        "INTER_BROKER_USER",
        "INTER_BROKER_PASSWORD",
        "CLIENT_USERS",
        "CLIENT_PASSWORDS",
        "CERTIFICATE_PASSWORD",
        "TLS_TYPE",
        "TLS_CLIENT_AUTH",
        "INITIAL_BROKER_REGISTRATION",
    ];
    EXACT.contains(&name) || name.starts_with("ZOOKEEPER_") || name.starts_with("CONTROLLER_USER")
}

/// Kafka's TLS settings that change nothing for gregor: how Java picks its TLS engine and
/// random source, and what a dynamic update may change.
const IGNORED_SSL_SETTINGS: &[&str] = &[
    "protocol",
    "provider",
    "keymanager.algorithm",
    "trustmanager.algorithm",
    "secure.random.implementation",
    "allow.dn.changes",
    "allow.san.changes",
];

/// `ssl.<setting>` (without the `ssl.`) as a field of [`SslConfig`], or ignored.
fn ssl_setting(rest: &str) -> Option<KafkaKey> {
    if IGNORED_SSL_SETTINGS.contains(&rest) {
        return Some(KafkaKey::Ignored);
    }
    let field = rest.replace('.', "_");
    SSL_PATHS.iter().find(|(f, _)| *f == field).map(|(f, _)| KafkaKey::Maps(f))
}

/// Translates a Kafka broker setting name.
pub fn kafka_key(key: &str) -> Option<KafkaKey> {
    use KafkaKey::*;
    if let Some(rest) = key.strip_prefix("listener.name.") {
        // The listener name cannot hold a dot, so the first one ends it.
        let (listener, setting) = rest.split_once('.')?;
        let valid = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        if listener.is_empty() || !listener.chars().all(valid) {
            return None;
        }
        if let Some(sasl) = listener_sasl_setting(setting) {
            return Some(match sasl {
                Some(path) => ListenerSasl { listener: listener.to_ascii_lowercase(), path },
                None => Ignored,
            });
        }
        return match ssl_setting(setting.strip_prefix("ssl.")?)? {
            Maps(field) => Some(ListenerSsl { listener: listener.to_ascii_lowercase(), field }),
            other => Some(other),
        };
    }
    if let Some(rest) = key.strip_prefix("ssl.") {
        return match ssl_setting(rest)? {
            Maps(field) => Some(Maps(SSL_PATHS.iter().find(|(f, _)| *f == field).map(|(_, p)| *p)?)),
            other => Some(other),
        };
    }
    Some(match key {
        "listeners" => Maps("server.listeners"),
        "advertised.listeners" => Maps("server.advertised_listeners"),
        "listener.security.protocol.map" => Maps("server.listener_security_protocol_map"),
        "controller.listener.names" => Maps("server.controller_listener_names"),
        "inter.broker.listener.name" => Maps("server.inter_broker_listener_name"),
        "node.id" | "broker.id" => Maps("server.node_id"),
        "cluster.id" => Maps("server.cluster_id"),
        "socket.request.max.bytes" => Maps("server.max_request_bytes"),
        "fetch.max.bytes" => Maps("server.fetch_max_bytes"),
        "max.incremental.fetch.session.cache.slots" => Maps("server.fetch_session_cache_slots"),
        "max.connections" => Maps("server.max_connections"),
        "max.connections.per.ip" => Maps("server.max_connections_per_ip"),
        "max.connections.per.ip.overrides" => Maps("server.max_connections_per_ip_overrides"),
        "connections.max.idle.ms" => Maps("server.connections_max_idle_ms"),
        "log.dirs" | "log.dir" => Maps("log.dir"),
        "log.segment.bytes" => Maps("log.segment_bytes"),
        "log.roll.ms" => Maps("log.segment_ms"),
        "log.index.interval.bytes" => Maps("log.index_interval_bytes"),
        "message.max.bytes" => Maps("log.max_message_bytes"),
        "log.flush.interval.messages" => Maps("log.flush_interval_messages"),
        "log.flush.interval.ms" => Maps("log.flush_interval_ms"),
        "log.retention.ms" => Maps("log.retention_ms"),
        // The coarser forms lose to the finer ones when both are set, as in Kafka (the
        // variables are applied in name order: HOURS, MINUTES, MS).
        "log.retention.minutes" => Scaled("log.retention_ms", 60_000),
        "log.retention.hours" => Scaled("log.retention_ms", 3_600_000),
        "log.roll.hours" => Scaled("log.segment_ms", 3_600_000),
        "log.retention.bytes" => Maps("log.retention_bytes"),
        "log.local.retention.bytes" => Maps("log.local_retention_bytes"),
        "log.retention.check.interval.ms" => Maps("log.retention_check_interval_ms"),
        "log.cleaner.enable" => Maps("log.cleaner_enable"),
        "log.cleaner.backoff.ms" => Maps("log.cleaner_backoff_ms"),
        "log.cleaner.min.cleanable.ratio" => Maps("log.cleaner_min_cleanable_ratio"),
        "log.cleaner.delete.retention.ms" => Maps("log.cleaner_delete_retention_ms"),
        "log.cleaner.min.compaction.lag.ms" => Maps("log.cleaner_min_compaction_lag_ms"),
        "log.cleaner.max.compaction.lag.ms" => Maps("log.cleaner_max_compaction_lag_ms"),
        "log.cleaner.dedupe.buffer.size" => Maps("log.cleaner_dedupe_buffer_size"),
        "log.cleaner.io.buffer.load.factor" => Maps("log.cleaner_io_buffer_load_factor"),
        "log.cleaner.io.max.bytes.per.second" => Maps("log.cleaner_io_max_bytes_per_second"),
        "auto.create.topics.enable" => Maps("topics.auto_create"),
        "num.partitions" => Maps("topics.num_partitions"),
        "group.initial.rebalance.delay.ms" => Maps("group.initial_rebalance_delay_ms"),
        "group.min.session.timeout.ms" => Maps("group.min_session_timeout_ms"),
        "group.max.session.timeout.ms" => Maps("group.max_session_timeout_ms"),
        "group.max.size" => Maps("group.max_size"),
        "offsets.retention.minutes" => Maps("group.offsets_retention_minutes"),
        "offset.metadata.max.bytes" => Maps("group.offset_metadata_max_bytes"),
        "group.consumer.session.timeout.ms" => Maps("group.consumer_session_timeout_ms"),
        "group.consumer.heartbeat.interval.ms" => Maps("group.consumer_heartbeat_interval_ms"),
        "group.consumer.migration.policy" => Maps("group.consumer_migration_policy"),
        "group.share.session.timeout.ms" => Maps("group.share_session_timeout_ms"),
        "group.share.heartbeat.interval.ms" => Maps("group.share_heartbeat_interval_ms"),
        "group.share.record.lock.duration.ms" => Maps("group.share_record_lock_duration_ms"),
        "group.share.delivery.count.limit" => Maps("group.share_delivery_count_limit"),
        "group.share.partition.max.record.locks" => Maps("group.share_partition_max_record_locks"),
        "group.share.max.size" => Maps("group.share_max_size"),
        "group.share.max.share.sessions" => Maps("group.share_max_share_sessions"),
        "transaction.max.timeout.ms" => Maps("transaction.max_timeout_ms"),
        "broker.session.timeout.ms" => Maps("cluster.session_timeout_ms"),
        "broker.heartbeat.interval.ms" => Maps("cluster.heartbeat_interval_ms"),
        "transactional.id.expiration.ms" => Maps("transaction.id_expiration_ms"),
        "producer.id.expiration.ms" => Maps("transaction.producer_id_expiration_ms"),
        "transaction.abort.timed.out.transaction.cleanup.interval.ms" => Maps("transaction.abort_check_interval_ms"),
        "sasl.enabled.mechanisms" => Maps("server.sasl_enabled_mechanisms"),
        "sasl.jaas.config" => Maps("server.sasl_jaas_config"),
        "plain.sasl.jaas.config" => Maps("server.plain_sasl_jaas_config"),
        "connections.max.reauth.ms" => Maps("server.connections_max_reauth_ms"),
        "connection.failed.authentication.delay.ms" => Maps("server.connection_failed_authentication_delay_ms"),
        "sasl.oauthbearer.jwks.endpoint.url" => Maps("server.sasl_oauthbearer_jwks_endpoint_url"),
        "sasl.oauthbearer.expected.audience" => Maps("server.sasl_oauthbearer_expected_audience"),
        "sasl.oauthbearer.expected.issuer" => Maps("server.sasl_oauthbearer_expected_issuer"),
        "sasl.oauthbearer.sub.claim.name" => Maps("server.sasl_oauthbearer_sub_claim_name"),
        "sasl.oauthbearer.scope.claim.name" => Maps("server.sasl_oauthbearer_scope_claim_name"),
        "sasl.oauthbearer.clock.skew.seconds" => Maps("server.sasl_oauthbearer_clock_skew_seconds"),
        // A JWKS file is read once at start; these pace the refreshes of an https endpoint.
        "sasl.oauthbearer.jwks.endpoint.refresh.ms"
        | "sasl.oauthbearer.jwks.endpoint.retry.backoff.ms"
        | "sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms" => Ignored,
        // How a broker gets tokens for its own connections to other brokers: one gregor node
        // has none.
        "sasl.oauthbearer.token.endpoint.url" | "sasl.login.callback.handler.class" => Quiet,
        // The SCRAM login modules take no server-side options: the credentials are the
        // broker's (AlterUserScramCredentials).
        "scram-sha-256.sasl.jaas.config" | "scram-sha-512.sasl.jaas.config" => Ignored,
        // How brokers authenticate to each other and to controllers: one gregor node has
        // neither.
        "sasl.mechanism.inter.broker.protocol" => Maps("server.sasl_mechanism_inter_broker_protocol"),
        "sasl.mechanism.controller.protocol" => Quiet,
        "authorizer.class.name" => Maps("auth.authorizer_class_name"),
        "super.users" => Maps("auth.super_users"),
        "allow.everyone.if.no.acl.found" => Maps("auth.allow_everyone_if_no_acl_found"),
        "process.roles"
        | "controller.quorum.voters"
        | "controller.quorum.bootstrap.servers"
        | "num.network.threads"
        | "num.io.threads"
        | "num.recovery.threads.per.data.dir"
        | "socket.send.buffer.bytes"
        | "socket.receive.buffer.bytes"
        | "offsets.topic.replication.factor"
        | "transaction.state.log.replication.factor"
        | "transaction.state.log.min.isr"
        | "default.replication.factor"
        | "min.insync.replicas"
        | "zookeeper.connect"
        | "zookeeper.connection.timeout.ms"
        | "broker.rack"
        | "delete.topic.enable"
        | "share.coordinator.state.topic.replication.factor"
        | "share.coordinator.state.topic.min.isr"
        // One cleaner thread, reading and writing a batch at a time.
        | "log.cleaner.threads"
        | "log.cleaner.io.buffer.size" => Ignored,
        _ => return None,
    })
}

fn apply_kafka_key(
    builder: config::ConfigBuilder<config::builder::DefaultState>,
    key: &str,
    value: &str,
    origin: &str,
) -> Result<config::ConfigBuilder<config::builder::DefaultState>, ConfigError> {
    let bad = |reason: String| ConfigError::BadValue { key: key.to_string(), origin: origin.to_string(), reason };
    let set = |b: config::ConfigBuilder<_>, path: &str, v: &str| {
        b.set_override(path, v.to_string()).map_err(|e| bad(e.to_string()))
    };
    if key == "java.security.auth.login.config" {
        return set(builder, "server.sasl_jaas_file", value);
    }
    match kafka_key(key) {
        None => Err(ConfigError::UnknownKey { key: key.into(), origin: origin.into() }),
        Some(KafkaKey::Ignored) => {
            tracing::info!(key, origin, "accepted Kafka setting that has no effect on gregor");
            Ok(builder)
        }
        Some(KafkaKey::Quiet) => Ok(builder),
        Some(KafkaKey::ListenerSasl { listener, path }) => {
            set(builder, &format!("server.listener_sasl.{listener}.{path}"), value)
        }
        Some(KafkaKey::Maps(path)) => {
            // Kafka's log.dirs may list several directories; gregor uses one.
            let v = if path == "log.dir" { value.split(',').next().unwrap_or(value).trim() } else { value };
            set(builder, path, v)
        }
        Some(KafkaKey::ListenerSsl { listener, field }) => {
            set(builder, &format!("server.listener_ssl.{listener}.{field}"), value)
        }
        Some(KafkaKey::Scaled(path, factor)) => {
            let n: i64 = value.trim().parse().map_err(|_| bad(format!("`{value}` is not a whole number")))?;
            let scaled =
                if n < 0 { -1 } else { n.checked_mul(factor).ok_or_else(|| bad(format!("`{value}` is too large")))? };
            set(builder, path, &scaled.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_validate() {
        let cfg = Config::load(None, &env(&[]), &Overrides::default()).unwrap();
        assert_eq!(cfg.server.listen, "127.0.0.1:9092");
        assert_eq!(cfg.topics.num_partitions, 1);
        assert!(cfg.topics.auto_create);
    }

    #[test]
    fn gregor_env_and_kafka_env_apply() {
        let cfg = Config::load(
            None,
            &env(&[
                ("GREGOR__LOG__SEGMENT_BYTES", "4096"),
                ("KAFKA_NUM_PARTITIONS", "3"),
                ("KAFKA_LISTENERS", "PLAINTEXT://0.0.0.0:19092"),
                ("KAFKA_ADVERTISED_LISTENERS", "PLAINTEXT://kafka:9092"),
                ("KAFKA_HEAP_OPTS", "-Xmx1G"),
            ]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(cfg.log.segment_bytes, 4096);
        assert_eq!(cfg.topics.num_partitions, 3);
        let listeners = cfg.listeners().unwrap();
        assert_eq!(
            listeners,
            [ListenerSpec {
                name: "PLAINTEXT".into(),
                bind: "0.0.0.0:19092".into(),
                advertised: Some(("kafka".into(), 9092)),
                security: ListenerSecurity::Plaintext,
            }]
        );
    }

    fn listeners_of(pairs: &[(&str, &str)]) -> Result<Vec<ListenerSpec>, String> {
        Config::load(None, &env(pairs), &Overrides::default())
            .map(|c| c.listeners().unwrap())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn named_listeners_as_a_compose_file_sets_them() {
        let spec = |name: &str, bind: &str, adv: Option<(&str, u16)>| ListenerSpec {
            name: name.into(),
            bind: bind.into(),
            advertised: adv.map(|(h, p)| (h.to_string(), p)),
            security: ListenerSecurity::Plaintext,
        };
        // The apache/kafka image's usual two-listener setup, in both spellings.
        for prefix in ["KAFKA_", "KAFKA_CFG_"] {
            let v = |k: &str| format!("{prefix}{k}");
            let (l, a, m, c) = (
                v("LISTENERS"),
                v("ADVERTISED_LISTENERS"),
                v("LISTENER_SECURITY_PROTOCOL_MAP"),
                v("CONTROLLER_LISTENER_NAMES"),
            );
            let got = listeners_of(&[
                (&l, "PLAINTEXT://:29092,CONTROLLER://:29093,PLAINTEXT_HOST://:9092"),
                (&a, "PLAINTEXT://kafka:29092,PLAINTEXT_HOST://localhost:9092"),
                (&m, "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,PLAINTEXT_HOST:PLAINTEXT"),
                (&c, "CONTROLLER"),
                ("KAFKA_INTER_BROKER_LISTENER_NAME", "PLAINTEXT"),
            ])
            .unwrap();
            assert_eq!(
                got,
                [
                    spec("PLAINTEXT", "0.0.0.0:29092", Some(("kafka", 29092))),
                    spec("PLAINTEXT_HOST", "0.0.0.0:9092", Some(("localhost", 9092))),
                ],
                "{prefix}"
            );
        }
        // No advertised listeners: each client is told the address it dialled.
        assert_eq!(
            listeners_of(&[("KAFKA_LISTENERS", "PLAINTEXT://127.0.0.1:9092")]).unwrap(),
            [spec("PLAINTEXT", "127.0.0.1:9092", None)]
        );
        // A flag replaces the listeners of the environment.
        let overrides = Overrides { listen: Some("127.0.0.1:0".into()), ..Default::default() };
        let pairs =
            [("KAFKA_LISTENERS", "A://:1,B://:2"), ("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "A:PLAINTEXT,B:PLAINTEXT")];
        let cfg = Config::load(None, &env(&pairs), &overrides).unwrap();
        assert_eq!(cfg.listeners().unwrap(), [spec("PLAINTEXT", "127.0.0.1:0", None)]);
    }

    #[test]
    fn listener_mistakes_name_the_key() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("KAFKA_LISTENERS", "SASL_PLAINTEXT://:9093")], "enables no mechanism"),
            (
                &[("KAFKA_LISTENERS", "A://:9093"), ("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "A:TLS")],
                "which is not a security protocol",
            ),
            (&[("KAFKA_LISTENERS", "SSL://:9093")], "ssl.keystore.location (server.ssl.keystore_location)"),
            (&[("KAFKA_LISTENERS", "INTERNAL://:9093")], "no security protocol for the listener INTERNAL"),
            (
                &[("KAFKA_LISTENERS", "PLAINTEXT://:9092"), ("KAFKA_ADVERTISED_LISTENERS", "OTHER://h:1")],
                "names the listener OTHER",
            ),
            (
                &[("KAFKA_LISTENERS", "PLAINTEXT://:9092"), ("KAFKA_ADVERTISED_LISTENERS", "PLAINTEXT://0.0.0.0:9092")],
                "which clients cannot dial",
            ),
            (&[("KAFKA_LISTENERS", "PLAINTEXT://:9092,PLAINTEXT://:9093")], "appears twice"),
            (&[("KAFKA_LISTENERS", "localhost:9092")], "is not NAME://HOST:PORT"),
            (
                &[("KAFKA_LISTENERS", "PLAINTEXT://:9092"), ("KAFKA_INTER_BROKER_LISTENER_NAME", "INTERNAL")],
                "server.inter_broker_listener_name",
            ),
        ];
        for (pairs, want) in cases {
            let err = listeners_of(pairs).unwrap_err();
            assert!(err.contains(want), "{pairs:?}: {err}");
            assert!(err.contains("server."), "names the key: {err}");
        }
    }

    /// The SSL listener's settings (the only SSL listener of `pairs`), or the error's text.
    fn ssl_of(pairs: &[(&str, &str)]) -> Result<SslSettings, String> {
        let cfg = Config::load(None, &env(pairs), &Overrides::default()).map_err(|e| e.to_string())?;
        let specs = cfg.listeners().map_err(|e| e.to_string())?;
        specs
            .into_iter()
            .find_map(|l| match l.security {
                ListenerSecurity::Ssl(s) => Some(*s),
                _ => None,
            })
            .ok_or_else(|| "no SSL listener".to_string())
    }

    #[test]
    fn ssl_listener_from_compose_variables() {
        let s = ssl_of(&[
            ("KAFKA_LISTENERS", "PLAINTEXT://:9092,SSL://:9093"),
            ("KAFKA_ADVERTISED_LISTENERS", "PLAINTEXT://kafka:9092,SSL://kafka:9093"),
            ("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "PLAINTEXT:PLAINTEXT,SSL:SSL"),
            ("KAFKA_SSL_KEYSTORE_TYPE", "PEM"),
            ("KAFKA_SSL_KEYSTORE_LOCATION", "/etc/kafka/secrets/server.pem"),
            ("KAFKA_SSL_KEY_PASSWORD", ""),
            ("KAFKA_SSL_TRUSTSTORE_TYPE", "pem"),
            ("KAFKA_SSL_TRUSTSTORE_LOCATION", "/etc/kafka/secrets/ca.pem"),
            ("KAFKA_SSL_CLIENT_AUTH", "required"),
            ("KAFKA_SSL_ENABLED_PROTOCOLS", "TLSv1.3"),
            ("KAFKA_SSL_CIPHER_SUITES", "TLS_AES_256_GCM_SHA384, TLS_AES_128_GCM_SHA256"),
            ("KAFKA_SSL_PRINCIPAL_MAPPING_RULES", "RULE:^CN=([^,]+).*$/$1/L,DEFAULT"),
            ("KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM", ""),
            ("KAFKA_SSL_PROTOCOL", "TLSv1.3"),
        ])
        .unwrap();
        assert_eq!(s.listener, "SSL");
        assert_eq!(s.keystore, KeySource::File("/etc/kafka/secrets/server.pem".into()));
        assert_eq!(s.key_password, None, "a blank value is no value");
        assert_eq!(s.truststore, Some(TrustSource::File("/etc/kafka/secrets/ca.pem".into())));
        assert_eq!(s.client_auth, ClientAuth::Required);
        assert_eq!(s.protocols, [TlsVersion::Tls13]);
        assert_eq!(s.cipher_suites, ["TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256"]);
        assert_eq!(s.principal_mapping_rules, "RULE:^CN=([^,]+).*$/$1/L,DEFAULT");
        // Defaults: both TLS versions, no client certificates, the subject as the name.
        let s = ssl_of(&[("KAFKA_LISTENERS", "SSL://:9093"), ("KAFKA_SSL_KEYSTORE_LOCATION", "/k.pem")]).unwrap();
        assert_eq!((s.client_auth, s.truststore, s.protocols.len()), (ClientAuth::None, None, 2));
        assert_eq!(s.principal_mapping_rules, "DEFAULT");
        // Versions older than TLS 1.2 are dropped, as Java's security policy does.
        let s = ssl_of(&[
            ("KAFKA_LISTENERS", "SSL://:9093"),
            ("KAFKA_SSL_KEYSTORE_LOCATION", "/k.pem"),
            ("KAFKA_SSL_ENABLED_PROTOCOLS", "TLSv1.2,TLSv1.1,TLSv1"),
        ])
        .unwrap();
        assert_eq!(s.protocols, [TlsVersion::Tls12]);
        // SSL settings without an SSL listener change nothing.
        let cfg = Config::load(None, &env(&[("KAFKA_SSL_KEYSTORE_TYPE", "JKS")]), &Overrides::default()).unwrap();
        assert_eq!(cfg.listeners().unwrap()[0].security, ListenerSecurity::Plaintext);
    }

    #[test]
    fn a_listeners_own_ssl_settings_win_and_are_named_in_errors() {
        let base = [
            ("KAFKA_LISTENERS", "CLIENT_SSL://:9093,INTERNAL://:9094"),
            ("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "CLIENT_SSL:SSL,INTERNAL:SSL"),
            ("KAFKA_SSL_KEYSTORE_LOCATION", "/global.pem"),
            ("KAFKA_SSL_TRUSTSTORE_LOCATION", "/ca.pem"),
            ("KAFKA_SSL_CLIENT_AUTH", "required"),
            ("KAFKA_LISTENER_NAME_CLIENT__SSL_SSL_CLIENT_AUTH", "requested"),
            ("KAFKA_LISTENER_NAME_CLIENT__SSL_SSL_KEYSTORE_LOCATION", "/client.pem"),
        ];
        let cfg = Config::load(None, &env(&base), &Overrides::default()).unwrap();
        let by_name: HashMap<String, SslSettings> = cfg
            .listeners()
            .unwrap()
            .into_iter()
            .map(|l| match l.security {
                ListenerSecurity::Ssl(s) => (l.name, *s),
                _ => panic!("{} is SSL", l.name),
            })
            .collect();
        let client = &by_name["CLIENT_SSL"];
        assert_eq!(
            (client.client_auth, &client.keystore),
            (ClientAuth::Requested, &KeySource::File("/client.pem".into()))
        );
        assert_eq!(client.truststore, Some(TrustSource::File("/ca.pem".into())), "inherited");
        let internal = &by_name["INTERNAL"];
        assert_eq!(
            (internal.client_auth, &internal.keystore),
            (ClientAuth::Required, &KeySource::File("/global.pem".into()))
        );
        assert_eq!(
            client.key("client_auth"),
            "listener.name.client_ssl.ssl.client.auth (server.listener_ssl.client_ssl.client_auth)"
        );
        assert_eq!(client.key("truststore_location"), "ssl.truststore.location (server.ssl.truststore_location)");

        let mut bad = base.to_vec();
        bad.push(("KAFKA_LISTENER_NAME_CLIENT__SSL_SSL_KEYSTORE_TYPE", "PKCS12"));
        let err = ssl_of(&bad).unwrap_err();
        assert!(err.contains("listener.name.client_ssl.ssl.keystore.type"), "{err}");
        assert!(
            err.contains("PKCS12 keystores are not supported") && err.contains("Convert the store to PEM"),
            "{err}"
        );
    }

    #[test]
    fn ssl_settings_in_toml_and_properties_files() {
        let dir = tempfile::tempdir().unwrap();
        let toml = dir.path().join("g.toml");
        std::fs::write(
            &toml,
            "[server]\nlisteners = \"PLAINTEXT://:9092,EXTERNAL://:9093\"\n\
             listener_security_protocol_map = \"PLAINTEXT:PLAINTEXT,EXTERNAL:SSL\"\n\
             [server.ssl]\nkeystore_key = \"KEY\"\nkeystore_certificate_chain = \"CHAIN\"\n\
             truststore_certificates = \"CAS\"\n\
             [server.listener_ssl.external]\nclient_auth = \"required\"\n",
        )
        .unwrap();
        let cfg = Config::load(Some(&toml), &env(&[]), &Overrides::default()).unwrap();
        let ListenerSecurity::Ssl(s) = &cfg.listeners().unwrap()[1].security else { panic!("EXTERNAL is SSL") };
        assert_eq!(s.keystore, KeySource::Inline { key: "KEY".into(), chain: "CHAIN".into() });
        assert_eq!((s.client_auth, &s.truststore), (ClientAuth::Required, &Some(TrustSource::Inline("CAS".into()))));

        // A server.properties with inline PEM continued over lines, as Kafka's docs write it.
        let props = dir.path().join("server.properties");
        std::fs::write(
            &props,
            "listeners=SSL://:9093\n\
             ssl.keystore.type=PEM\n\
             ssl.keystore.certificate.chain=-----BEGIN CERTIFICATE----- \\\n    MIIB \\\n    -----END CERTIFICATE-----\n\
             ssl.keystore.key=-----BEGIN PRIVATE KEY----- MIIE -----END PRIVATE KEY-----\n\
             ssl.key.password=s\\=cret\n\
             ssl.principal.mapping.rules=RULE:^CN=((\\\\\\\\, *|\\\\w)+)(,.*|$)/$1/,DEFAULT\n\
             listener.name.ssl.ssl.enabled.protocols=TLSv1.2\n",
        )
        .unwrap();
        let cfg = Config::load(Some(&props), &env(&[]), &Overrides::default()).unwrap();
        let ListenerSecurity::Ssl(s) = &cfg.listeners().unwrap()[0].security else { panic!("SSL") };
        let KeySource::Inline { chain, .. } = &s.keystore else { panic!("inline") };
        assert_eq!(chain, "-----BEGIN CERTIFICATE----- MIIB -----END CERTIFICATE-----");
        assert_eq!(s.key_password.as_deref(), Some("s=cret"));
        assert_eq!(s.principal_mapping_rules, r"RULE:^CN=((\\, *|\w)+)(,.*|$)/$1/,DEFAULT");
        assert_eq!(s.protocols, [TlsVersion::Tls12]);
        std::fs::write(&props, "listeners=SSL://:9093\nssl.keystore.location=/k\nssl.keystore.typo=PEM\n").unwrap();
        let err = Config::load(Some(&props), &env(&[]), &Overrides::default()).unwrap_err().to_string();
        assert!(err.contains("ssl.keystore.typo"), "{err}");
    }

    #[test]
    fn the_kafka_images_secret_file_variables() {
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("key_creds");
        std::fs::write(&creds, "hunter2\n").unwrap();
        let keystore = dir.path().join("server.pem");
        let (creds, keystore) = (creds.display().to_string(), keystore.display().to_string());
        let s = ssl_of(&[
            ("KAFKA_LISTENERS", "SSL://:9093"),
            ("KAFKA_SSL_KEYSTORE_LOCATION", "/overridden.pem"),
            ("KAFKA_SSL_KEYSTORE_FILENAME", &keystore),
            ("KAFKA_SSL_KEY_CREDENTIALS", &creds),
            ("KAFKA_SSL_KEYSTORE_CREDENTIALS", "no-such-file"),
        ])
        .unwrap();
        assert_eq!(s.keystore, KeySource::File(keystore.clone().into()), "the image's file name wins");
        assert_eq!(s.key_password.as_deref(), Some("hunter2"));
        assert_eq!(s.unused_passwords, ["ssl.keystore.password (server.ssl.keystore_password)"]);
        // A file name alone is looked for where the image keeps its secrets.
        let s = ssl_of(&[("KAFKA_LISTENERS", "SSL://:9093"), ("KAFKA_SSL_KEYSTORE_FILENAME", "kafka.pem")]).unwrap();
        assert_eq!(s.keystore, KeySource::File("/etc/kafka/secrets/kafka.pem".into()));
        let err =
            ssl_of(&[("KAFKA_LISTENERS", "SSL://:9093"), ("KAFKA_SSL_KEY_CREDENTIALS", "/no/such/creds")]).unwrap_err();
        assert!(err.contains("KAFKA_SSL_KEY_CREDENTIALS") && err.contains("/no/such/creds"), "{err}");
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn ssl_mistakes_name_the_key() {
        let ssl = [("KAFKA_LISTENERS", "SSL://:9093"), ("KAFKA_SSL_KEYSTORE_LOCATION", "/k.pem")];
        let cases: &[(&[(&str, &str)], &str, &str)] = &[
            (&[("KAFKA_SSL_KEYSTORE_TYPE", "JKS")], "ssl.keystore.type", "JKS keystores are not supported"),
            (&[("KAFKA_SSL_TRUSTSTORE_TYPE", "JKS")], "ssl.truststore.type", "-nokeys -out ca.pem"),
            (&[("KAFKA_SSL_KEYSTORE_KEY", "K")], "ssl.keystore.location", "set one or the other"),
            (&[("KAFKA_SSL_CLIENT_AUTH", "always")], "ssl.client.auth", "`always` is not one of"),
            (&[("KAFKA_SSL_CLIENT_AUTH", "required")], "ssl.truststore.location", "is not set"),
            (&[("KAFKA_SSL_CLIENT_AUTH", "requested")], "ssl.truststore.location", "is not set"),
            (&[("KAFKA_SSL_ENABLED_PROTOCOLS", "TLSv1.1")], "ssl.enabled.protocols", "leaves no version"),
            (&[("KAFKA_SSL_ENABLED_PROTOCOLS", "TLSv9")], "ssl.enabled.protocols", "`TLSv9` is not a TLS version"),
            (&[("KAFKA_SSL_PRINCIPAL_MAPPING_RULES", "RULE:x/y")], "ssl.principal.mapping.rules", "`RULE:x/y`"),
            (&[("KAFKA_SSL_PRINCIPAL_MAPPING_RULES", "RULE:(?=x)/y/")], "ssl.principal.mapping.rules", "pattern"),
            (
                &[("KAFKA_SSL_TRUSTSTORE_LOCATION", "/a"), ("KAFKA_SSL_TRUSTSTORE_CERTIFICATES", "B")],
                "ssl.truststore.location",
                "set one or the other",
            ),
        ];
        for (extra, key, want) in cases {
            let pairs: Vec<_> = ssl.iter().chain(extra.iter()).copied().collect();
            let err = ssl_of(&pairs).unwrap_err();
            assert!(err.contains(key) && err.contains(want), "{extra:?}: {err}");
        }
        let only = |pairs: &[(&str, &str)]| {
            let mut all = vec![("KAFKA_LISTENERS", "SSL://:9093")];
            all.extend_from_slice(pairs);
            ssl_of(&all).unwrap_err()
        };
        assert!(only(&[]).contains("needs a private key and certificate chain"));
        assert!(only(&[("KAFKA_SSL_KEYSTORE_KEY", "K")]).contains("ssl.keystore.certificate.chain"));
        assert!(only(&[("KAFKA_SSL_KEYSTORE_CERTIFICATE_CHAIN", "C")]).contains("ssl.keystore.key"));
    }

    #[test]
    fn properties_continuations_and_escapes() {
        let got = parse_properties("a = 1 \\\n   2\n# c \\\nb\\:c=x\\ty\\u00e9\\\\\nodd=\\\\\\\nnext\n");
        assert_eq!(
            got,
            [
                ("a".to_string(), "1 2".to_string()),
                ("b:c".into(), "x\ty\u{e9}\\".into()),
                ("odd".into(), "\\next".into())
            ]
        );
    }

    #[test]
    fn the_authorizer_is_configured_as_kafka_configures_it() {
        let load = |pairs: &[(&str, &str)]| Config::load(None, &env(pairs), &Overrides::default());
        let off = load(&[]).unwrap();
        assert!(!off.auth.acls_enabled());
        let on = load(&[
            ("KAFKA_AUTHORIZER_CLASS_NAME", "org.apache.kafka.metadata.authorizer.StandardAuthorizer"),
            ("KAFKA_SUPER_USERS", "User:admin;User:ops"),
            ("KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND", "true"),
        ])
        .unwrap();
        assert!(on.auth.acls_enabled() && on.auth.allow_everyone_if_no_acl_found);
        assert_eq!(on.auth.super_users(), ["User:admin", "User:ops"]);
        let err = load(&[("KAFKA_AUTHORIZER_CLASS_NAME", "com.example.MyAuthorizer")]).unwrap_err().to_string();
        assert!(err.contains("auth.authorizer_class_name") && err.contains("com.example.MyAuthorizer"), "{err}");
        let err = load(&[("KAFKA_SUPER_USERS", "admin")]).unwrap_err().to_string();
        assert!(err.contains("auth.super_users"), "{err}");
    }

    #[test]
    fn listen_flag_never_replaces_a_secured_listener_quietly() {
        let flag = Overrides { listen: Some("127.0.0.1:0".into()), ..Default::default() };
        let sasl = env(&[
            ("KAFKA_LISTENERS", "SASL_PLAINTEXT://127.0.0.1:9094"),
            ("KAFKA_SASL_ENABLED_MECHANISMS", "PLAIN"),
            (
                "KAFKA_LISTENER_NAME_SASL__PLAINTEXT_PLAIN_SASL_JAAS_CONFIG",
                "org.apache.kafka.common.security.plain.PlainLoginModule required user_a=\"b\";",
            ),
        ]);
        assert!(Config::load(None, &sasl, &Overrides::default()).is_ok());
        let err = Config::load(None, &sasl, &flag).unwrap_err().to_string();
        assert!(err.contains("--listen") && err.contains("SASL_PLAINTEXT"), "{err}");
        // Plaintext listeners may still be replaced by the flag.
        let plain = env(&[("KAFKA_LISTENERS", "PLAINTEXT://127.0.0.1:9095")]);
        assert_eq!(Config::load(None, &plain, &flag).unwrap().server.listen, "127.0.0.1:0");
    }

    #[test]
    fn retention_in_hours_and_minutes_becomes_milliseconds() {
        let load = |pairs: &[(&str, &str)]| Config::load(None, &env(pairs), &Overrides::default()).unwrap();
        assert_eq!(load(&[("KAFKA_LOG_RETENTION_HOURS", "2")]).log.retention_ms, 7_200_000);
        assert_eq!(load(&[("KAFKA_LOG_RETENTION_MINUTES", "3")]).log.retention_ms, 180_000);
        let both = load(&[("KAFKA_LOG_RETENTION_HOURS", "2"), ("KAFKA_LOG_RETENTION_MS", "5000")]);
        assert_eq!(both.log.retention_ms, 5000, "the finer setting wins, as in Kafka");
        assert_eq!(load(&[("KAFKA_LOG_RETENTION_HOURS", "-1")]).log.retention_ms, -1);
    }

    #[test]
    fn bad_values_name_the_key() {
        let err = Config::load(None, &env(&[("KAFKA_NUM_PARTITIONS", "zero")]), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("num_partitions"), "{err}");
        let err = Config::load(None, &env(&[]), &Overrides { listen: Some("localhost".into()), ..Default::default() })
            .unwrap_err()
            .to_string();
        assert!(err.contains("server.listen"), "{err}");
    }

    #[test]
    fn properties_file_unknown_key_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.properties");
        std::fs::write(&path, "# comment\nnum.partitions=2\nlog.dirs=/tmp/x,/tmp/y\n").unwrap();
        let cfg = Config::load(Some(&path), &env(&[]), &Overrides::default()).unwrap();
        assert_eq!(cfg.topics.num_partitions, 2);
        assert_eq!(cfg.log.dir, PathBuf::from("/tmp/x"));
        std::fs::write(&path, "no.such.setting=1\n").unwrap();
        let err = Config::load(Some(&path), &env(&[]), &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("no.such.setting"), "{err}");
    }

    #[test]
    fn cleaner_settings_come_from_kafka_names_and_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.properties");
        std::fs::write(
            &path,
            "log.cleaner.dedupe.buffer.size=1048576\nlog.cleaner.max.compaction.lag.ms=3600000\n\
             log.cleaner.min.cleanable.ratio=0.1\nlog.cleaner.io.max.bytes.per.second=5e6\n\
             log.cleaner.delete.retention.ms=1000\nlog.cleaner.threads=4\n",
        )
        .unwrap();
        let cfg = Config::load(Some(&path), &env(&[]), &Overrides::default()).unwrap();
        assert_eq!(cfg.log.cleaner_dedupe_buffer_size, 1 << 20);
        assert_eq!(cfg.log.cleaner_max_compaction_lag_ms, 3_600_000);
        assert_eq!(cfg.log.cleaner_min_cleanable_ratio, 0.1);
        assert_eq!(cfg.log.cleaner_io_max_bytes_per_second, 5e6);
        assert_eq!(cfg.log.cleaner_delete_retention_ms, 1000);
        let err = Config::load(None, &env(&[("KAFKA_LOG_CLEANER_MIN_CLEANABLE_RATIO", "1.5")]), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("cleaner_min_cleanable_ratio"), "{err}");
    }

    #[test]
    fn per_ip_limits_come_from_kafka_names() {
        let cfg = Config::load(
            None,
            &env(&[
                ("KAFKA_MAX_CONNECTIONS", "50"),
                ("KAFKA_MAX_CONNECTIONS_PER_IP", "5"),
                ("KAFKA_MAX_CONNECTIONS_PER_IP_OVERRIDES", "127.0.0.1:2, [::1]:0,localhost:7"),
            ]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(cfg.server.max_connections, 50);
        assert_eq!(cfg.server.max_connections_per_ip, 5);
        assert_eq!(
            cfg.server.per_ip_overrides().unwrap(),
            vec![("127.0.0.1".to_string(), 2), ("::1".to_string(), 0), ("localhost".to_string(), 7)]
        );
        let err =
            Config::load(None, &env(&[("KAFKA_MAX_CONNECTIONS_PER_IP_OVERRIDES", "10.0.0.1")]), &Overrides::default())
                .unwrap_err()
                .to_string();
        assert!(err.contains("max_connections_per_ip_overrides"), "{err}");
    }

    #[test]
    fn unknown_toml_key_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.toml");
        std::fs::write(&path, "[log]\nsegmnt_bytes = 5\n").unwrap();
        let err = Config::load(Some(&path), &env(&[]), &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("segmnt_bytes"), "{err}");
    }

    #[test]
    fn kafka_version_names_a_release_gregor_emulates() {
        let cfg =
            Config::load(None, &env(&[("GREGOR__SERVER__KAFKA_VERSION", "3.9.1")]), &Overrides::default()).unwrap();
        assert_eq!(cfg.server.release(), Some(Release::Kafka39));
        let flag = Overrides { kafka_version: Some("2.8".into()), ..Default::default() };
        assert_eq!(Config::load(None, &env(&[]), &flag).unwrap().server.release(), Some(Release::Kafka28));
        assert_eq!(Config::load(None, &env(&[]), &Overrides::default()).unwrap().server.release(), None);
        let err = Config::load(None, &env(&[("GREGOR__SERVER__KAFKA_VERSION", "3.8")]), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("server.kafka_version") && err.contains("2.8, 3.9, 4.1, 4.2"), "{err}");
    }

    #[test]
    fn shared_mode_takes_both_urls() {
        let pg = ("GREGOR__CLUSTER__POSTGRES_URL", "postgres://gregor@127.0.0.1/gregor");
        let objects = ("GREGOR__CLUSTER__OBJECT_STORE_URL", "file:///tmp/objects");
        let preview = ("GREGOR__CLUSTER__PREVIEW", "true");
        let load = |pairs: &[(&str, &str)]| Config::load(None, &env(pairs), &Overrides::default());
        assert!(!load(&[]).unwrap().cluster.is_shared(), "a single node by default");
        let err = load(&[pg, preview]).unwrap_err().to_string();
        assert!(err.contains("cluster.object_store_url"), "{err}");
        let err = load(&[objects, preview]).unwrap_err().to_string();
        assert!(err.contains("cluster.postgres_url"), "{err}");
        // The two URLs suffice; the old preview switch is still accepted.
        assert!(load(&[pg, objects]).unwrap().cluster.is_shared());
        let cfg = load(&[pg, objects, preview]).unwrap();
        assert!(cfg.cluster.is_shared());
        assert_eq!((cfg.cluster.session_timeout_ms, cfg.cluster.heartbeat_interval_ms), (9_000, 2_000));
        // Kafka's names, from the container variables.
        let cfg = load(&[pg, objects, preview, ("KAFKA_BROKER_SESSION_TIMEOUT_MS", "4000")]).unwrap();
        assert_eq!(cfg.cluster.session_timeout_ms, 4_000);
        let err =
            load(&[pg, objects, preview, ("GREGOR__CLUSTER__HEARTBEAT_INTERVAL_MS", "9000")]).unwrap_err().to_string();
        assert!(err.contains("cluster.heartbeat_interval_ms"), "{err}");
        assert_eq!(cfg.cluster.store_timeout_ms, 15_000, "below the clients' 30 s request timeout");
        let err = load(&[pg, objects, preview, ("GREGOR__CLUSTER__STORE_TIMEOUT_MS", "0")]).unwrap_err().to_string();
        assert!(err.contains("cluster.store_timeout_ms"), "{err}");
    }
}
