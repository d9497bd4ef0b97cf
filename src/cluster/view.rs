//! What handlers and coordinators ask the cluster: which brokers there are and where clients
//! reach them, who leads a partition and in which leader epoch, who is the controller, and
//! who coordinates the groups and the transactions.
//!
//! A single node answers "this broker" to all of it, in the log's fixed leader epoch. In shared
//! mode the answers come from the latest view of the coordination store ([`super::shared`]).

use std::sync::Arc;

use crate::log::partition::LEADER_EPOCH;

/// A broker as clients are told it on one listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub id: i32,
    pub host: String,
    pub port: u16,
    pub rack: Option<String>,
}

/// A partition's leader (`None`: no live broker holds it) and its leader epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leadership {
    pub leader: Option<i32>,
    pub epoch: i32,
}

/// The cluster this broker is part of.
#[derive(Debug, Clone)]
pub enum Cluster {
    /// One broker: it leads every partition and coordinates everything.
    Single { node_id: i32 },
    /// Several brokers over PostgreSQL and an object store.
    Shared(Arc<super::shared::Shared>),
}

impl Cluster {
    pub fn node_id(&self) -> i32 {
        match self {
            Cluster::Single { node_id } => *node_id,
            Cluster::Shared(s) => s.node_id(),
        }
    }

    pub fn shared(&self) -> Option<&Arc<super::shared::Shared>> {
        match self {
            Cluster::Single { .. } => None,
            Cluster::Shared(s) => Some(s),
        }
    }

    /// The live brokers a client on `listener` can reach, by id; `me` is this broker as that
    /// client is told it (the address it dialled, or the advertised one). Brokers without
    /// that listener are left out, as Kafka does.
    pub fn nodes(&self, listener: &str, me: Node) -> Vec<Node> {
        match self {
            Cluster::Single { .. } => vec![me],
            Cluster::Shared(s) => {
                let view = s.view();
                let mut nodes: Vec<Node> = view
                    .brokers
                    .iter()
                    .filter(|b| b.node_id != me.id)
                    .filter_map(|b| {
                        let (host, port) = crate::config::parse_host_port(b.listeners.get(listener)?)?;
                        Some(Node { id: b.node_id, host, port, rack: b.rack.clone() })
                    })
                    .collect();
                nodes.push(me);
                nodes.sort_by_key(|n| n.id);
                nodes
            }
        }
    }

    /// Who leads `topic`'s `partition`, in which epoch.
    pub fn leader(&self, topic: &str, partition: i32) -> Leadership {
        match self {
            Cluster::Single { node_id } => Leadership { leader: Some(*node_id), epoch: LEADER_EPOCH },
            Cluster::Shared(s) => {
                let l = s.view().leader(topic, partition);
                // Not sure of its own lease, this broker leads nothing (see `shared`); nor a
                // partition whose log it has not yet rebuilt from the store (`shipping`).
                if l.leader == Some(s.node_id()) && !s.serves(topic, partition, l.epoch) {
                    return Leadership { leader: None, epoch: l.epoch };
                }
                l
            }
        }
    }

    /// Whether this broker leads `topic`'s `partition` (and so may append to it and serve it).
    pub fn leads(&self, topic: &str, partition: i32) -> bool {
        self.leader(topic, partition).leader == Some(self.node_id())
    }

    /// The controller id clients are told: this broker, or the live broker with the lowest id.
    pub fn controller(&self) -> i32 {
        match self {
            Cluster::Single { node_id } => *node_id,
            Cluster::Shared(s) => s.view().brokers.first().map_or(s.node_id(), |b| b.node_id),
        }
    }

    /// The broker coordinating what an internal topic holds (its partition 0's leader):
    /// `__consumer_offsets` for groups, `__transaction_state` for transactions.
    pub fn coordinator(&self, internal_topic: &str) -> Option<i32> {
        self.leader(internal_topic, 0).leader
    }
}
