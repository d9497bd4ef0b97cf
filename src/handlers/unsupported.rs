//! Error responses for APIs gregor does not serve yet.
//!
//! A client that sends one anyway gets that API's response with UNSUPPORTED_VERSION in its
//! top-level error code, encoded at the version it asked for, instead of a dropped connection.
//! APIs whose response has no top-level error code (or versions the codec cannot encode) still
//! close the connection, as Apache Kafka does for requests it cannot handle. Remove an API from
//! this list when it gets a handler.

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, HeaderVersion};

use super::codec::encode_response;
use crate::handlers::error_codes::ResponseError;

fn encode_error<R: Default + Encodable + HeaderVersion>(
    correlation_id: i32,
    version: i16,
    set_error: impl FnOnce(&mut R),
) -> Option<Bytes> {
    let mut r = R::default();
    set_error(&mut r);
    encode_response(correlation_id, version, &r).ok()
}

/// The encoded error response, or `None` when there is no faithful way to say it.
pub fn error_response(key: ApiKey, version: i16, correlation_id: i32) -> Option<Bytes> {
    let code = ResponseError::UnsupportedVersion.code();
    match key {
        ApiKey::SaslHandshake => {
            encode_error::<SaslHandshakeResponse>(correlation_id, version, |r| r.error_code = code)
        }
        ApiKey::AddPartitionsToTxn => {
            encode_error::<AddPartitionsToTxnResponse>(correlation_id, version, |r| r.error_code = code)
        }
        ApiKey::AddOffsetsToTxn => {
            encode_error::<AddOffsetsToTxnResponse>(correlation_id, version, |r| r.error_code = code)
        }
        ApiKey::EndTxn => encode_error::<EndTxnResponse>(correlation_id, version, |r| r.error_code = code),
        ApiKey::DescribeAcls => encode_error::<DescribeAclsResponse>(correlation_id, version, |r| r.error_code = code),
        ApiKey::DescribeLogDirs => {
            encode_error::<DescribeLogDirsResponse>(correlation_id, version, |r| r.error_code = code)
        }
        ApiKey::SaslAuthenticate => {
            encode_error::<SaslAuthenticateResponse>(correlation_id, version, |r| r.error_code = code)
        }
        ApiKey::CreateDelegationToken => {
            encode_error::<CreateDelegationTokenResponse>(correlation_id, version, |r| r.error_code = code)
        }
        ApiKey::RenewDelegationToken => {
            encode_error::<RenewDelegationTokenResponse>(correlation_id, version, |r| r.error_code = code)
        }
        ApiKey::ExpireDelegationToken => {
            encode_error::<ExpireDelegationTokenResponse>(correlation_id, version, |r| r.error_code = code)
        }
        ApiKey::DescribeDelegationToken => {
            encode_error::<DescribeDelegationTokenResponse>(correlation_id, version, |r| r.error_code = code)
        }
        ApiKey::ElectLeaders => encode_error::<ElectLeadersResponse>(correlation_id, version, |r| r.error_code = code),
        ApiKey::AlterPartitionReassignments => {
            encode_error::<AlterPartitionReassignmentsResponse>(correlation_id, version, |r| r.error_code = code)
        }
        ApiKey::ListPartitionReassignments => {
            encode_error::<ListPartitionReassignmentsResponse>(correlation_id, version, |r| r.error_code = code)
        }
        ApiKey::DescribeClientQuotas => {
            encode_error::<DescribeClientQuotasResponse>(correlation_id, version, |r| r.error_code = code)
        }
        ApiKey::DescribeUserScramCredentials => {
            encode_error::<DescribeUserScramCredentialsResponse>(correlation_id, version, |r| r.error_code = code)
        }
        ApiKey::Vote => encode_error::<VoteResponse>(correlation_id, version, |r| r.error_code = code),
        ApiKey::BeginQuorumEpoch => {
            encode_error::<BeginQuorumEpochResponse>(correlation_id, version, |r| r.error_code = code)
        }
        ApiKey::EndQuorumEpoch => {
            encode_error::<EndQuorumEpochResponse>(correlation_id, version, |r| r.error_code = code)
        }
        ApiKey::DescribeQuorum => {
            encode_error::<DescribeQuorumResponse>(correlation_id, version, |r| r.error_code = code)
        }
        ApiKey::AlterPartition => {
            encode_error::<AlterPartitionResponse>(correlation_id, version, |r| r.error_code = code)
        }
        ApiKey::UpdateFeatures => {
            encode_error::<UpdateFeaturesResponse>(correlation_id, version, |r| r.error_code = code)
        }
        ApiKey::Envelope => encode_error::<EnvelopeResponse>(correlation_id, version, |r| r.error_code = code),
        ApiKey::FetchSnapshot => {
            encode_error::<FetchSnapshotResponse>(correlation_id, version, |r| r.error_code = code)
        }
        ApiKey::DescribeCluster => {
            encode_error::<DescribeClusterResponse>(correlation_id, version, |r| r.error_code = code)
        }
        ApiKey::BrokerRegistration => {
            encode_error::<BrokerRegistrationResponse>(correlation_id, version, |r| r.error_code = code)
        }
        ApiKey::BrokerHeartbeat => {
            encode_error::<BrokerHeartbeatResponse>(correlation_id, version, |r| r.error_code = code)
        }
        ApiKey::UnregisterBroker => {
            encode_error::<UnregisterBrokerResponse>(correlation_id, version, |r| r.error_code = code)
        }
        ApiKey::ListTransactions => {
            encode_error::<ListTransactionsResponse>(correlation_id, version, |r| r.error_code = code)
        }
        ApiKey::AllocateProducerIds => {
            encode_error::<AllocateProducerIdsResponse>(correlation_id, version, |r| r.error_code = code)
        }
        ApiKey::ConsumerGroupHeartbeat => {
            encode_error::<ConsumerGroupHeartbeatResponse>(correlation_id, version, |r| r.error_code = code)
        }
        ApiKey::ControllerRegistration => {
            encode_error::<ControllerRegistrationResponse>(correlation_id, version, |r| r.error_code = code)
        }
        ApiKey::GetTelemetrySubscriptions => {
            encode_error::<GetTelemetrySubscriptionsResponse>(correlation_id, version, |r| r.error_code = code)
        }
        ApiKey::PushTelemetry => {
            encode_error::<PushTelemetryResponse>(correlation_id, version, |r| r.error_code = code)
        }
        ApiKey::AssignReplicasToDirs => {
            encode_error::<AssignReplicasToDirsResponse>(correlation_id, version, |r| r.error_code = code)
        }
        ApiKey::ListConfigResources => {
            encode_error::<ListConfigResourcesResponse>(correlation_id, version, |r| r.error_code = code)
        }
        ApiKey::ShareGroupHeartbeat => {
            encode_error::<ShareGroupHeartbeatResponse>(correlation_id, version, |r| r.error_code = code)
        }
        ApiKey::ShareFetch => encode_error::<ShareFetchResponse>(correlation_id, version, |r| r.error_code = code),
        ApiKey::ShareAcknowledge => {
            encode_error::<ShareAcknowledgeResponse>(correlation_id, version, |r| r.error_code = code)
        }
        ApiKey::AddRaftVoter => encode_error::<AddRaftVoterResponse>(correlation_id, version, |r| r.error_code = code),
        ApiKey::RemoveRaftVoter => {
            encode_error::<RemoveRaftVoterResponse>(correlation_id, version, |r| r.error_code = code)
        }
        ApiKey::UpdateRaftVoter => {
            encode_error::<UpdateRaftVoterResponse>(correlation_id, version, |r| r.error_code = code)
        }
        ApiKey::AlterShareGroupOffsets => {
            encode_error::<AlterShareGroupOffsetsResponse>(correlation_id, version, |r| r.error_code = code)
        }
        ApiKey::DeleteShareGroupOffsets => {
            encode_error::<DeleteShareGroupOffsetsResponse>(correlation_id, version, |r| r.error_code = code)
        }
        _ => None,
    }
}
