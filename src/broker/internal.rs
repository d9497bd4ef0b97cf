//! The broker's own logs seen as topics. `__consumer_offsets`, `__share_group_state` and
//! `__transaction_state` are single partitions owned by the group, share and transaction
//! coordinators, not entries of the topic store; clients see them as Kafka shows them: listed by Metadata as internal once they hold
//! anything (Kafka creates them on first use), describable, readable, and not writable.

use std::collections::BTreeMap;
use std::sync::Arc;

use uuid::Uuid;

use super::Broker;
use crate::group::share::SHARE_STATE_TOPIC;
use crate::group::OFFSETS_TOPIC;
use crate::metadata::TopicMeta;
use crate::txn::TXN_TOPIC;

/// The internal topics, in name order.
pub const INTERNAL_TOPICS: [&str; 3] = [OFFSETS_TOPIC, SHARE_STATE_TOPIC, TXN_TOPIC];

pub fn is_internal(name: &str) -> bool {
    INTERNAL_TOPICS.contains(&name)
}

pub(super) use crate::cluster::internal_topic_id;

impl Broker {
    /// An internal topic's metadata. Asked for by name it always exists (Kafka creates it
    /// when a client names it); listings show it only once used (see [`Broker::all_topics`]).
    pub fn internal_topic(&self, name: &str) -> Option<Arc<TopicMeta>> {
        let name = INTERNAL_TOPICS.into_iter().find(|n| *n == name)?;
        self.partition(name, 0)?;
        // Kafka's settings for these topics, as DescribeConfigs shows them as overrides.
        let configs = BTreeMap::from([
            ("cleanup.policy".to_string(), "compact".to_string()),
            ("compression.type".to_string(), "producer".to_string()),
            ("segment.bytes".to_string(), "104857600".to_string()),
        ]);
        Some(Arc::new(TopicMeta { name: Arc::from(name), id: self.internal_topic_id(name), partitions: 1, configs }))
    }

    fn internal_topic_id(&self, name: &str) -> Uuid {
        internal_topic_id(&self.node.cluster_id, name)
    }

    /// A topic by name: a user topic or a used internal one.
    pub fn topic(&self, name: &str) -> Option<Arc<TopicMeta>> {
        self.topics.get(name).or_else(|| self.internal_topic(name))
    }

    /// A topic by id: a user topic or a used internal one.
    pub fn topic_by_id(&self, id: &Uuid) -> Option<Arc<TopicMeta>> {
        self.topics
            .get_by_id(id)
            .or_else(|| INTERNAL_TOPICS.into_iter().filter_map(|n| self.internal_topic(n)).find(|t| t.id == *id))
    }

    /// Every topic clients can see in listings: user topics and the internal ones that hold a
    /// record, in name order.
    pub fn all_topics(&self) -> Vec<Arc<TopicMeta>> {
        let mut all = self.topics.list();
        let used = |n: &str| self.partition(n, 0).is_some_and(|log| log.offsets().high_watermark > 0);
        all.extend(INTERNAL_TOPICS.into_iter().filter(|n| used(n)).filter_map(|n| self.internal_topic(n)));
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }
}
