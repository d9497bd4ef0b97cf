//! What four Apache Kafka releases advertised in ApiVersions, for version emulation
//! (`--kafka-version`): every API a client can send to a broker of that release, with the
//! versions its broker put in the ApiVersions response under the default configuration.
//!
//! Where the figures come from (the request JSON schemas under
//! `clients/src/main/resources/common/message/`, read with the broker's own rules from
//! `ApiKeys`, `ApiVersionsResponse` and the broker's `ApiVersionManager`):
//!
//! - 2.8: tag `2.8.2` (commit 3146c6ff4a24). ZooKeeper mode, the only production mode of 2.8:
//!   the APIs whose `listeners` include `zkBroker`, with their full `validVersions` (2.8 has no
//!   unstable versions).
//! - 3.9: the `Bump version to 3.9.0` commit cc53a632edcf, the 3.9.0 release (the 3.9 branch and
//!   3.9.1 have the same version ranges). KRaft mode: the APIs whose `listeners` include `broker`.
//!   Against ZooKeeper mode this adds DescribeQuorum, UnregisterBroker,
//!   ListClientMetricsResources, DescribeTopicPartitions, AddRaftVoter and RemoveRaftVoter.
//! - 4.1: the `Bump version to 4.1.0` commit 13f70256db3c, the 4.1.0 release. kafka-protocol 0.18,
//!   which is generated from 4.1.0, carries the same ranges in its message types' `VERSIONS`;
//!   its `ApiKey::valid_versions` also counts the unstable tops (see the tests). The share-group APIs
//!   (KIP-932, a preview in 4.1) are listed: their v1 is stable and the broker advertises them
//!   whether or not share groups are switched on. The streams-group APIs (KIP-1071) are not: their
//!   only version is unstable in 4.1.
//! - 4.2: the `Bump version to 4.2.0` commit a18251bae0b8, the 4.2.0 release, where the
//!   streams-group APIs have a stable v0.
//!
//! Rules applied to every release:
//!
//! - A top version marked `latestVersionUnstable` is left out (`unstable.api.versions.enable`
//!   is off by default), and so is an API with no stable version at all.
//! - Deprecated versions are still advertised; versions a release removed (KIP-896, 4.0) are not,
//!   except that a 4.x broker advertises Produce from v0 although it refuses v0-v2 (KAFKA-18659:
//!   librdkafka will not compress unless it sees Produce v0).
//! - In KRaft a forwardable API needs the controller to support it as well; for these releases
//!   every forwardable broker API is also a controller API with the same range, so this removes
//!   nothing.
//! - Broker-to-broker and broker-to-controller APIs are left out: those `ApiKeys` marks as cluster
//!   actions (LeaderAndIsr, StopReplica, UpdateMetadata, ControlledShutdown, AlterIsr/
//!   AlterPartition, Envelope, the share-group state APIs 83-87, ...) and those only a
//!   controller listens for (Vote, FetchSnapshot, BrokerRegistration, ControllerRegistration,
//!   AssignReplicasToDirs, UpdateRaftVoter, ...). DescribeQuorum and UpdateFeatures carry the
//!   cluster-action mark but are sent by admin clients, so they stay, as do UnregisterBroker,
//!   AddRaftVoter and RemoveRaftVoter (admin APIs a KRaft broker forwards to the controller).
//!   WriteTxnMarkers stays too: every KRaft broker listener lists it (v0-v1, v1 only from 4.0,
//!   KIP-896), and gregor's brokers send it to each other in shared mode.
//! - GetTelemetrySubscriptions and PushTelemetry (KIP-714) are left out: a 3.7+ broker lists them
//!   only when a client-telemetry plugin is configured, and none is by default.
//!
//! An API with no `ApiKey` variant in kafka-protocol 0.18 cannot be listed; it is named in a
//! comment where it would stand (only 4.2's StreamsGroupHeartbeat and StreamsGroupDescribe).
//! 4.2 goes past what kafka-protocol 0.18 can decode for ListOffsets, OffsetCommit, OffsetFetch,
//! ShareFetch, ShareAcknowledge, AddRaftVoter and DescribeShareGroupOffsets.

use kafka_protocol::messages::ApiKey;

pub use crate::config::Release;

impl Release {
    /// Every API this release's broker advertised to clients, as (key, min, max), in key order.
    pub fn apis(self) -> &'static [(ApiKey, i16, i16)] {
        match self {
            Release::Kafka28 => KAFKA_2_8,
            Release::Kafka39 => KAFKA_3_9,
            Release::Kafka41 => KAFKA_4_1,
            Release::Kafka42 => KAFKA_4_2,
        }
    }
}

/// Kafka 2.8 (2.8.2), ZooKeeper-mode broker.
const KAFKA_2_8: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 0, 9),
    (ApiKey::Fetch, 0, 12),
    (ApiKey::ListOffsets, 0, 6),
    (ApiKey::Metadata, 0, 11),
    (ApiKey::OffsetCommit, 0, 8),
    (ApiKey::OffsetFetch, 0, 7),
    (ApiKey::FindCoordinator, 0, 3),
    (ApiKey::JoinGroup, 0, 7),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 4),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 4),
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::CreateTopics, 0, 7),
    (ApiKey::DeleteTopics, 0, 6),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::InitProducerId, 0, 4),
    (ApiKey::OffsetForLeaderEpoch, 0, 4),
    (ApiKey::AddPartitionsToTxn, 0, 3),
    (ApiKey::AddOffsetsToTxn, 0, 3),
    (ApiKey::EndTxn, 0, 3),
    (ApiKey::WriteTxnMarkers, 0, 1),
    (ApiKey::TxnOffsetCommit, 0, 3),
    (ApiKey::DescribeAcls, 0, 2),
    (ApiKey::CreateAcls, 0, 2),
    (ApiKey::DeleteAcls, 0, 2),
    (ApiKey::DescribeConfigs, 0, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::AlterReplicaLogDirs, 0, 2),
    (ApiKey::DescribeLogDirs, 0, 2),
    (ApiKey::SaslAuthenticate, 0, 2),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::CreateDelegationToken, 0, 2),
    (ApiKey::RenewDelegationToken, 0, 2),
    (ApiKey::ExpireDelegationToken, 0, 2),
    (ApiKey::DescribeDelegationToken, 0, 2),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::ElectLeaders, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::AlterPartitionReassignments, 0, 0),
    (ApiKey::ListPartitionReassignments, 0, 0),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::DescribeClientQuotas, 0, 1),
    (ApiKey::AlterClientQuotas, 0, 1),
    (ApiKey::DescribeUserScramCredentials, 0, 0),
    (ApiKey::AlterUserScramCredentials, 0, 0),
    (ApiKey::UpdateFeatures, 0, 0),
    (ApiKey::DescribeCluster, 0, 0),
    (ApiKey::DescribeProducers, 0, 0),
];

/// Kafka 3.9 (3.9.0), KRaft-mode broker.
const KAFKA_3_9: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 0, 11),
    (ApiKey::Fetch, 0, 17),
    (ApiKey::ListOffsets, 0, 9),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::OffsetCommit, 0, 9),
    (ApiKey::OffsetFetch, 0, 9),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 0, 7),
    (ApiKey::DeleteTopics, 0, 6),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::OffsetForLeaderEpoch, 0, 4),
    (ApiKey::AddPartitionsToTxn, 0, 5),
    (ApiKey::AddOffsetsToTxn, 0, 4),
    (ApiKey::EndTxn, 0, 4),
    (ApiKey::WriteTxnMarkers, 0, 1),
    (ApiKey::TxnOffsetCommit, 0, 4),
    (ApiKey::DescribeAcls, 0, 3),
    (ApiKey::CreateAcls, 0, 3),
    (ApiKey::DeleteAcls, 0, 3),
    (ApiKey::DescribeConfigs, 0, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::AlterReplicaLogDirs, 0, 2),
    (ApiKey::DescribeLogDirs, 0, 4),
    (ApiKey::SaslAuthenticate, 0, 2),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::CreateDelegationToken, 0, 3),
    (ApiKey::RenewDelegationToken, 0, 2),
    (ApiKey::ExpireDelegationToken, 0, 2),
    (ApiKey::DescribeDelegationToken, 0, 3),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::ElectLeaders, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::AlterPartitionReassignments, 0, 0),
    (ApiKey::ListPartitionReassignments, 0, 0),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::DescribeClientQuotas, 0, 1),
    (ApiKey::AlterClientQuotas, 0, 1),
    (ApiKey::DescribeUserScramCredentials, 0, 0),
    (ApiKey::AlterUserScramCredentials, 0, 0),
    (ApiKey::DescribeQuorum, 0, 2),
    (ApiKey::UpdateFeatures, 0, 1),
    (ApiKey::DescribeCluster, 0, 1),
    (ApiKey::DescribeProducers, 0, 0),
    (ApiKey::UnregisterBroker, 0, 0),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::ListTransactions, 0, 1),
    (ApiKey::ConsumerGroupHeartbeat, 0, 0),
    (ApiKey::ConsumerGroupDescribe, 0, 0),
    (ApiKey::ListConfigResources, 0, 0), // named ListClientMetricsResources until 4.1
    (ApiKey::DescribeTopicPartitions, 0, 0),
    (ApiKey::AddRaftVoter, 0, 0),
    (ApiKey::RemoveRaftVoter, 0, 0),
];

/// Kafka 4.1 (4.1.0).
const KAFKA_4_1: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 0, 13), // JSON says 3-13; 0 is advertised for librdkafka (KAFKA-18659), v0-2 refused
    (ApiKey::Fetch, 4, 18),
    (ApiKey::ListOffsets, 1, 10),
    (ApiKey::Metadata, 0, 13),
    (ApiKey::OffsetCommit, 2, 9), // v10 unstable
    (ApiKey::OffsetFetch, 1, 9),  // v10 unstable
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::JoinGroup, 0, 9), // v0-1 back in 4.1 (KAFKA-19444)
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 6),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::InitProducerId, 0, 5), // v6 unstable
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::AddPartitionsToTxn, 0, 5),
    (ApiKey::AddOffsetsToTxn, 0, 4),
    (ApiKey::EndTxn, 0, 5),
    (ApiKey::WriteTxnMarkers, 1, 1),
    (ApiKey::TxnOffsetCommit, 0, 5),
    (ApiKey::DescribeAcls, 1, 3),
    (ApiKey::CreateAcls, 1, 3),
    (ApiKey::DeleteAcls, 1, 3),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::AlterReplicaLogDirs, 1, 2),
    (ApiKey::DescribeLogDirs, 1, 4),
    (ApiKey::SaslAuthenticate, 0, 2),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::CreateDelegationToken, 1, 3),
    (ApiKey::RenewDelegationToken, 1, 2),
    (ApiKey::ExpireDelegationToken, 1, 2),
    (ApiKey::DescribeDelegationToken, 1, 3),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::ElectLeaders, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::AlterPartitionReassignments, 0, 1),
    (ApiKey::ListPartitionReassignments, 0, 0),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::DescribeClientQuotas, 0, 1),
    (ApiKey::AlterClientQuotas, 0, 1),
    (ApiKey::DescribeUserScramCredentials, 0, 0),
    (ApiKey::AlterUserScramCredentials, 0, 0),
    (ApiKey::DescribeQuorum, 0, 2),
    (ApiKey::UpdateFeatures, 0, 2),
    (ApiKey::DescribeCluster, 0, 2),
    (ApiKey::DescribeProducers, 0, 0),
    (ApiKey::UnregisterBroker, 0, 0),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::ListTransactions, 0, 2),
    (ApiKey::ConsumerGroupHeartbeat, 0, 1),
    (ApiKey::ConsumerGroupDescribe, 0, 1),
    (ApiKey::ListConfigResources, 0, 1),
    (ApiKey::DescribeTopicPartitions, 0, 0),
    (ApiKey::ShareGroupHeartbeat, 1, 1),
    (ApiKey::ShareGroupDescribe, 1, 1),
    (ApiKey::ShareFetch, 1, 1),
    (ApiKey::ShareAcknowledge, 1, 1),
    (ApiKey::AddRaftVoter, 0, 0),
    (ApiKey::RemoveRaftVoter, 0, 0),
    (ApiKey::DescribeShareGroupOffsets, 0, 0),
    (ApiKey::AlterShareGroupOffsets, 0, 0),
    (ApiKey::DeleteShareGroupOffsets, 0, 0),
];

/// Kafka 4.2 (4.2.0).
const KAFKA_4_2: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 0, 13), // as in 4.1
    (ApiKey::Fetch, 4, 18),
    (ApiKey::ListOffsets, 1, 11),
    (ApiKey::Metadata, 0, 13),
    (ApiKey::OffsetCommit, 2, 10),
    (ApiKey::OffsetFetch, 1, 10),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 6),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::InitProducerId, 0, 5), // v6 unstable
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::AddPartitionsToTxn, 0, 5),
    (ApiKey::AddOffsetsToTxn, 0, 4),
    (ApiKey::EndTxn, 0, 5),
    (ApiKey::WriteTxnMarkers, 1, 1),
    (ApiKey::TxnOffsetCommit, 0, 5),
    (ApiKey::DescribeAcls, 1, 3),
    (ApiKey::CreateAcls, 1, 3),
    (ApiKey::DeleteAcls, 1, 3),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::AlterReplicaLogDirs, 1, 2),
    (ApiKey::DescribeLogDirs, 1, 4),
    (ApiKey::SaslAuthenticate, 0, 2),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::CreateDelegationToken, 1, 3),
    (ApiKey::RenewDelegationToken, 1, 2),
    (ApiKey::ExpireDelegationToken, 1, 2),
    (ApiKey::DescribeDelegationToken, 1, 3),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::ElectLeaders, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::AlterPartitionReassignments, 0, 1),
    (ApiKey::ListPartitionReassignments, 0, 0),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::DescribeClientQuotas, 0, 1),
    (ApiKey::AlterClientQuotas, 0, 1),
    (ApiKey::DescribeUserScramCredentials, 0, 0),
    (ApiKey::AlterUserScramCredentials, 0, 0),
    (ApiKey::DescribeQuorum, 0, 2),
    (ApiKey::UpdateFeatures, 0, 2),
    (ApiKey::DescribeCluster, 0, 2),
    (ApiKey::DescribeProducers, 0, 0),
    (ApiKey::UnregisterBroker, 0, 0),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::ListTransactions, 0, 2),
    (ApiKey::ConsumerGroupHeartbeat, 0, 1),
    (ApiKey::ConsumerGroupDescribe, 0, 1),
    (ApiKey::ListConfigResources, 0, 1),
    (ApiKey::DescribeTopicPartitions, 0, 0),
    (ApiKey::ShareGroupHeartbeat, 1, 1),
    (ApiKey::ShareGroupDescribe, 1, 1),
    (ApiKey::ShareFetch, 1, 2),
    (ApiKey::ShareAcknowledge, 1, 2),
    (ApiKey::AddRaftVoter, 0, 1),
    (ApiKey::RemoveRaftVoter, 0, 0),
    // 88 StreamsGroupHeartbeat v0-0: no ApiKey variant in kafka-protocol 0.18, left out
    // 89 StreamsGroupDescribe v0-0: no ApiKey variant in kafka-protocol 0.18, left out
    (ApiKey::DescribeShareGroupOffsets, 0, 1),
    (ApiKey::AlterShareGroupOffsets, 0, 0),
    (ApiKey::DeleteShareGroupOffsets, 0, 0),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_takes_major_minor_and_ignores_the_patch_level() {
        assert_eq!(Release::parse("2.8"), Some(Release::Kafka28));
        assert_eq!(Release::parse("2.8.2"), Some(Release::Kafka28));
        assert_eq!(Release::parse("3.9"), Some(Release::Kafka39));
        assert_eq!(Release::parse("3.9.1"), Some(Release::Kafka39));
        assert_eq!(Release::parse("4.1"), Some(Release::Kafka41));
        assert_eq!(Release::parse("4.1.0"), Some(Release::Kafka41));
        assert_eq!(Release::parse("4.2"), Some(Release::Kafka42));
        assert_eq!(Release::parse("4.2.0"), Some(Release::Kafka42));
        for bad in ["", "4", "4.", "4.0", "3.8", "2.8.", "2.8.x", "v3.9", "3.9-rc1", "04.1x", "4.1 "] {
            assert_eq!(Release::parse(bad), None, "{bad:?}");
        }
        for r in Release::ALL {
            assert_eq!(Release::parse(r.name()), Some(r));
        }
    }

    #[test]
    fn tables_are_in_key_order_without_duplicates_and_ranges_are_sane() {
        for r in Release::ALL {
            let apis = r.apis();
            assert!(!apis.is_empty());
            for w in apis.windows(2) {
                assert!((w[0].0 as i16) < (w[1].0 as i16), "{}: {:?} before {:?}", r.name(), w[0].0, w[1].0);
            }
            for &(key, min, max) in apis {
                assert!((0..=max).contains(&min), "{}: {key:?} {min}..={max}", r.name());
            }
        }
    }

    fn range(r: Release, key: ApiKey) -> Option<(i16, i16)> {
        r.apis().iter().find(|a| a.0 == key).map(|a| (a.1, a.2))
    }

    #[test]
    fn inter_broker_and_telemetry_apis_are_never_listed() {
        for r in Release::ALL {
            for key in [
                ApiKey::AlterPartition,
                ApiKey::Envelope,
                ApiKey::Vote,
                ApiKey::FetchSnapshot,
                ApiKey::BrokerHeartbeat,
                ApiKey::AllocateProducerIds,
                ApiKey::ReadShareGroupState,
                ApiKey::GetTelemetrySubscriptions,
                ApiKey::PushTelemetry,
            ] {
                assert_eq!(range(r, key), None, "{} lists {key:?}", r.name());
            }
        }
    }

    #[test]
    fn kafka_4_1_matches_kafka_protocol_0_18() {
        // kafka-protocol 0.18 is generated from Kafka 4.1.0. `ApiKey::valid_versions` keeps the
        // unstable top versions (the message types' own `VERSIONS` drop them), so each 4.1 row is
        // the crate's range less those, with Produce's librdkafka floor.
        let unstable_top = [ApiKey::OffsetCommit, ApiKey::OffsetFetch, ApiKey::InitProducerId];
        for &(key, min, max) in KAFKA_4_1 {
            let v = key.valid_versions();
            let want_min = if key == ApiKey::Produce { 0 } else { v.min };
            let want_max = if unstable_top.contains(&key) { v.max - 1 } else { v.max };
            assert_eq!((min, max), (want_min, want_max), "{key:?}");
        }
    }

    #[test]
    fn unstable_and_early_access_versions_are_left_out() {
        assert_eq!(range(Release::Kafka39, ApiKey::ShareFetch), None);
        assert_eq!(range(Release::Kafka41, ApiKey::OffsetCommit), Some((2, 9)));
        assert_eq!(range(Release::Kafka42, ApiKey::OffsetCommit), Some((2, 10)));
        assert_eq!(range(Release::Kafka42, ApiKey::InitProducerId), Some((0, 5)));
    }

    #[test]
    fn produce_is_advertised_from_v0_in_every_release() {
        for r in Release::ALL {
            assert_eq!(range(r, ApiKey::Produce).map(|p| p.0), Some(0), "{}", r.name());
        }
    }
}
