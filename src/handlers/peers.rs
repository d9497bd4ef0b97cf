//! Shared mode: the requests a broker sends to the other brokers of its cluster, for
//! transactions that span them ([`crate::txn::RemoteTxns`]).
//!
//! - The transaction coordinator writes a marker into a partition another broker leads with
//!   WriteTxnMarkers v1, as Kafka's coordinator does; that broker answers once the marker is
//!   committed.
//! - A leader that is not the transaction coordinator checks a transactional write with it
//!   through AddPartitionsToTxn v5, one transaction, `verify_only` (Kafka 3.6+'s KIP-890
//!   verification) or, for Transaction Version 2 producers, adding the partition.
//!
//! - A share group's coordinator resets the group's share-partitions at a partition's leader
//!   with InitializeShareGroupState v0 (a new start offset) or DeleteShareGroupState v0
//!   (forgotten), for AlterShareGroupOffsets, DeleteShareGroupOffsets and DeleteGroups
//!   ([`crate::handlers::share_state`]).
//!
//! Brokers reach each other on the inter-broker listener (`server.inter_broker_listener_name`,
//! else PLAINTEXT, else the first listener) at the address each registered for it, of any
//! security protocol:
//! - on an SSL or SASL_SSL one a broker verifies the other's certificate against the
//!   listener's truststore and presents its own keystore's certificate;
//! - on a SASL one it logs in with `sasl.mechanism.inter.broker.protocol` (PLAIN or SCRAM) as
//!   the user of that mechanism's JAAS entry (`username`, `password`), and logs in afresh on
//!   a new connection before a KIP-368 session lifetime ends.
//!
//! Its principal there is that user, else its certificate's subject (SSL with
//! `ssl.client.auth=required`), else ANONYMOUS. With authorization on, that principal needs
//! CLUSTER_ACTION on the cluster (or to be a super user).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::future::BoxFuture;
use kafka_protocol::messages::add_partitions_to_txn_request::{AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction};
use kafka_protocol::messages::write_txn_markers_request::{WritableTxnMarker, WritableTxnMarkerTopic};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, DeleteShareGroupStateRequest, InitializeShareGroupStateRequest, ProducerId, TopicName,
    TransactionalId, WriteTxnMarkersRequest,
};
use kafka_protocol::protocol::{Request, StrBytes};
use uuid::Uuid;

use crate::broker::Broker;
use crate::client::Connection;
use crate::config::{SaslLogin, SslSettings};
use crate::group::share::{Outcomes, PartitionOutcome};
use crate::handlers::common::str_bytes;
use crate::handlers::error_codes::ResponseError;
use crate::log::producer_state::ControlType;
use crate::txn::TxnError;

/// How long one request to another broker may take, connecting included.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The inter-broker requests, made from blocking threads through the runtime.
#[derive(Debug)]
pub struct Peers {
    links: Arc<Links>,
    runtime: tokio::runtime::Handle,
}

/// Connections to the other brokers, one per broker, one request at a time on each.
struct Links {
    broker: Weak<Broker>,
    /// The listener whose registered addresses this broker dials, and how.
    dialing: Dialing,
    conns: parking_lot::Mutex<HashMap<i32, Arc<tokio::sync::Mutex<Option<Connection>>>>>,
}

impl std::fmt::Debug for Links {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Links").field("dialing", &self.dialing).finish_non_exhaustive()
    }
}

impl Peers {
    /// Installs the inter-broker requests on a shared-mode broker (nothing on a single node),
    /// dialing the others as `dialing` says.
    pub fn install(broker: &Arc<Broker>, dialing: Dialing) {
        if broker.cluster.shared().is_none() {
            return;
        }
        let links = Links { broker: Arc::downgrade(broker), dialing, conns: parking_lot::Mutex::new(HashMap::new()) };
        let peers = Arc::new(Peers { links: Arc::new(links), runtime: tokio::runtime::Handle::current() });
        let _ = broker.remote_txns.set(peers.clone());
        let _ = broker.remote_shares.set(peers);
    }
}

impl Links {
    /// Sends `req` to broker `node` and returns its response.
    async fn call<R: Request>(&self, node: i32, version: i16, req: &R) -> Result<R::Response, String> {
        self.exchange(node, version, req, false).await
    }

    /// [`Links::call`] for an API brokers do not advertise ([`Connection::call_unadvertised`]).
    async fn call_unadvertised<R: Request>(&self, node: i32, version: i16, req: &R) -> Result<R::Response, String> {
        self.exchange(node, version, req, true).await
    }

    async fn exchange<R: Request>(
        &self,
        node: i32,
        version: i16,
        req: &R,
        unadvertised: bool,
    ) -> Result<R::Response, String> {
        let listener = &self.dialing.listener;
        let broker = self.broker.upgrade().ok_or("the broker is stopping")?;
        let shared = broker.cluster.shared().ok_or("not in shared mode")?;
        let address = shared
            .view()
            .brokers
            .iter()
            .find(|b| b.node_id == node)
            .and_then(|b| b.listeners.get(listener).cloned())
            .ok_or_else(|| format!("broker {node} is not live or has no {listener} listener"))?;
        let slot = self.conns.lock().entry(node).or_default().clone();
        let mut conn = slot.lock().await;
        let exchange = async {
            if conn.as_ref().is_some_and(Connection::session_ending) {
                *conn = None;
            }
            if conn.is_none() {
                let (tls, sasl) = (self.dialing.tls.as_ref(), self.dialing.sasl.as_ref());
                let opened = Connection::open_with(&address, "gregor-broker", tls, sasl).await;
                *conn = Some(opened.map_err(|e| format!("{e:#}"))?);
            }
            let c = conn.as_mut().ok_or("no connection")?;
            let answer = match unadvertised {
                true => c.call_unadvertised(version, req).await,
                false => c.call(version, req).await,
            };
            answer.map_err(|e| format!("{e:#}"))
        };
        let outcome = tokio::time::timeout(TIMEOUT, exchange).await.unwrap_or_else(|_| {
            Err(format!("broker {node} at {address} did not answer within {} s", TIMEOUT.as_secs()))
        });
        if outcome.is_err() {
            // The next request reconnects (the address may have changed with a restart).
            *conn = None;
        }
        outcome
    }
}

impl crate::txn::RemoteTxns for Peers {
    fn write_marker(
        &self,
        node: i32,
        tp: &(String, i32),
        producer_id: i64,
        epoch: i16,
        control: ControlType,
    ) -> Result<bool, String> {
        let links = self.links.clone();
        let req = WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(epoch)
            .with_transaction_result(control == ControlType::Commit)
            .with_coordinator_epoch(0)
            .with_topics(vec![WritableTxnMarkerTopic::default()
                .with_name(TopicName(str_bytes(&tp.0)))
                .with_partition_indexes(vec![tp.1])])]);
        let resp = crate::blocking::wait_on(&self.runtime, async move { links.call(node, 1, &req).await })
            .ok_or("the runtime is stopping")??;
        let code = resp
            .markers
            .first()
            .and_then(|m| m.topics.first())
            .and_then(|t| t.partitions.first())
            .map(|p| p.error_code)
            .ok_or_else(|| format!("broker {node} answered WriteTxnMarkers without the partition"))?;
        match ResponseError::try_from_code(code) {
            None => Ok(true),
            Some(ResponseError::UnknownTopicOrPartition) => Ok(false),
            Some(e) => Err(format!("broker {node} refused the marker for {}-{}: {e:?}", tp.0, tp.1)),
        }
    }

    fn check_partition(
        &self,
        node: i32,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        tp: &(String, i32),
        add: bool,
    ) -> Result<(), TxnError> {
        let links = self.links.clone();
        let req =
            AddPartitionsToTxnRequest::default().with_transactions(vec![AddPartitionsToTxnTransaction::default()
                .with_transactional_id(TransactionalId(str_bytes(transactional_id)))
                .with_producer_id(ProducerId(producer_id))
                .with_producer_epoch(epoch)
                .with_verify_only(!add)
                .with_topics(vec![AddPartitionsToTxnTopic::default()
                    .with_name(TopicName(str_bytes(&tp.0)))
                    .with_partitions(vec![tp.1])])]);
        let resp = crate::blocking::wait_on(&self.runtime, async move { links.call(node, 5, &req).await })
            .ok_or_else(|| TxnError::Unverified("the runtime is stopping".into()))?
            .map_err(TxnError::Unverified)?;
        let code = if resp.error_code != 0 {
            resp.error_code
        } else {
            resp.results_by_transaction
                .first()
                .and_then(|t| t.topic_results.first())
                .and_then(|t| t.results_by_partition.first())
                .map(|p| p.partition_error_code)
                .ok_or_else(|| TxnError::Unverified(format!("broker {node} answered without the partition")))?
        };
        match ResponseError::try_from_code(code) {
            None => Ok(()),
            Some(ResponseError::TransactionAbortable | ResponseError::InvalidTxnState) => {
                Err(TxnError::PartitionNotAdded)
            }
            Some(
                ResponseError::NotCoordinator
                | ResponseError::CoordinatorNotAvailable
                | ResponseError::CoordinatorLoadInProgress
                | ResponseError::ConcurrentTransactions,
            ) => Err(TxnError::Unverified(format!("broker {node} answered {code}; retry"))),
            Some(e) => Err(TxnError::Remote { node, code, message: format!("{e:?}") }),
        }
    }
}

/// The inter-broker listener as its settings give it: see [`inter_broker_listener`].
#[derive(Debug, Clone)]
pub struct InterBrokerListener {
    pub name: String,
    /// Its TLS settings, when it is an SSL or SASL_SSL one (the caller builds the TLS side).
    pub tls: Option<SslSettings>,
    /// How a broker logs in to it, when it is a SASL one.
    pub sasl: Option<SaslLogin>,
}

/// How this broker dials the others.
pub struct Dialing {
    /// The listener whose registered addresses it dials.
    pub listener: String,
    pub tls: Option<tokio_rustls::TlsConnector>,
    pub sasl: Option<SaslLogin>,
}

impl std::fmt::Debug for Dialing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dialing")
            .field("listener", &self.listener)
            .field("tls", &self.tls.is_some())
            .field("sasl", &self.sasl)
            .finish()
    }
}

/// The listener brokers dial each other on: `server.inter_broker_listener_name`, else
/// PLAINTEXT, else the first; with its TLS settings and, for a SASL one, the login
/// `sasl.mechanism.inter.broker.protocol` and the listener's JAAS entries give. `Err`: why
/// a broker cannot dial it.
pub fn inter_broker_listener(config: &crate::config::Config) -> Result<InterBrokerListener, String> {
    let listeners = config.listeners().map_err(|e| e.to_string())?;
    let chosen = match config.server.inter_broker_listener_name.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        Some(name) => listeners.iter().find(|l| l.name.eq_ignore_ascii_case(name)),
        None => listeners.iter().find(|l| l.name == "PLAINTEXT").or(listeners.first()),
    }
    .ok_or("no listener to reach the other brokers on")?;
    let sasl = match chosen.security.sasl() {
        Some(settings) => Some(config.server.inter_broker_login(settings).map_err(|e| e.to_string())?),
        None => None,
    };
    Ok(InterBrokerListener { name: chosen.name.clone(), tls: chosen.security.tls().cloned(), sasl })
}

impl crate::group::share::RemoteShares for Peers {
    fn reset(
        &self,
        node: i32,
        group_id: &str,
        parts: Vec<((Uuid, i32), Option<i64>)>,
    ) -> BoxFuture<'static, Result<Outcomes, String>> {
        let (links, group) = (self.links.clone(), str_bytes(group_id));
        Box::pin(async move {
            // One request of each kind: new start offsets, and share-partitions forgotten.
            // Per topic: (partition, new start offset), and the partitions forgotten.
            type Asked = (Vec<(i32, i64)>, Vec<i32>);
            let mut topics: BTreeMap<Uuid, Asked> = BTreeMap::new();
            for &((t, p), start) in &parts {
                let (starts, forgotten) = topics.entry(t).or_default();
                match start {
                    Some(s) => starts.push((p, s)),
                    None => forgotten.push(p),
                }
            }
            let mut answered: HashMap<(Uuid, i32), PartitionOutcome> = HashMap::new();
            let outcome = |code: i16, message: Option<StrBytes>| match code {
                0 => Ok(()),
                c => Err((c, message.map_or_else(|| format!("broker {node} answered error {c}"), |m| m.to_string()))),
            };
            if topics.values().any(|(s, _)| !s.is_empty()) {
                use kafka_protocol::messages::initialize_share_group_state_request::{
                    InitializeStateData, PartitionData,
                };
                let data = topics.iter().filter(|(_, (s, _))| !s.is_empty()).map(|(t, (starts, _))| {
                    let partitions = starts
                        .iter()
                        .map(|&(p, s)| PartitionData::default().with_partition(p).with_start_offset(s))
                        .collect();
                    InitializeStateData::default().with_topic_id(*t).with_partitions(partitions)
                });
                let req = InitializeShareGroupStateRequest::default()
                    .with_group_id(group.clone())
                    .with_topics(data.collect());
                for t in links.call_unadvertised(node, 0, &req).await?.results {
                    for p in t.partitions {
                        answered.insert((t.topic_id, p.partition), outcome(p.error_code, p.error_message));
                    }
                }
            }
            if topics.values().any(|(_, f)| !f.is_empty()) {
                use kafka_protocol::messages::delete_share_group_state_request::{DeleteStateData, PartitionData};
                let data = topics.iter().filter(|(_, (_, f))| !f.is_empty()).map(|(t, (_, forgotten))| {
                    let partitions = forgotten.iter().map(|&p| PartitionData::default().with_partition(p)).collect();
                    DeleteStateData::default().with_topic_id(*t).with_partitions(partitions)
                });
                let req = DeleteShareGroupStateRequest::default().with_group_id(group).with_topics(data.collect());
                for t in links.call_unadvertised(node, 0, &req).await?.results {
                    for p in t.partitions {
                        answered.insert((t.topic_id, p.partition), outcome(p.error_code, p.error_message));
                    }
                }
            }
            Ok(parts
                .into_iter()
                .map(|(tp, _)| {
                    let missing = || {
                        Err((
                            ResponseError::UnknownServerError.code(),
                            format!("broker {node} answered without partition {}", tp.1),
                        ))
                    };
                    (tp, answered.remove(&tp).unwrap_or_else(missing))
                })
                .collect())
        })
    }
}
