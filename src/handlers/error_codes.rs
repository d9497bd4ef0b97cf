//! The one mapping from domain errors to Kafka error codes, and the only place that makes it.
//!
//! Domain modules (`log`, `group`, `broker`) speak in their own error enums; each of them maps
//! to a Kafka code here with an exhaustive `match` (no `_ =>` arm), so adding a variant forces
//! a decision about the code clients will see. The message clients get (KIP-467
//! `error_message`) is the error's `Display`, written for people.

pub use kafka_protocol::error::ResponseError;

use crate::broker::{AlterTopicError, CreateTopicError, DeleteTopicError};
use crate::group::GroupError;
use crate::log::producer_state::SequenceError;
use crate::log::{batch, AppendError, ReadError};
use crate::txn::TxnError;

impl ToKafkaCode for crate::auth::acl::AclError {
    fn kafka_code(&self) -> ResponseError {
        match self {
            Self::Disabled => ResponseError::SecurityDisabled,
            Self::Invalid(_) => ResponseError::InvalidRequest,
            Self::Storage(_) => ResponseError::UnknownServerError,
        }
    }
}

impl ToKafkaCode for crate::auth::scram::ScramError {
    fn kafka_code(&self) -> ResponseError {
        match self {
            Self::Unacceptable(_) => ResponseError::UnacceptableCredential,
            Self::UnknownMechanism => ResponseError::UnsupportedSaslMechanism,
            Self::NotFound(_) => ResponseError::ResourceNotFound,
            Self::Duplicate(_) => ResponseError::DuplicateResource,
            Self::Storage(_) => ResponseError::UnknownServerError,
        }
    }
}

pub trait ToKafkaCode {
    fn kafka_code(&self) -> ResponseError;
}

impl ToKafkaCode for AppendError {
    fn kafka_code(&self) -> ResponseError {
        use batch::BatchError as B;
        match self {
            Self::InvalidBatch(B::CrcMismatch { .. }) | Self::InvalidBatch(B::BadLength { .. }) => {
                ResponseError::CorruptMessage
            }
            Self::InvalidBatch(B::TooLarge { .. }) => ResponseError::MessageTooLarge,
            Self::InvalidBatch(B::UnsupportedMagic { .. }) => ResponseError::UnsupportedForMessageFormat,
            Self::InvalidBatch(B::InconsistentCount { .. }) | Self::InvalidBatch(B::Empty) => {
                ResponseError::InvalidRecord
            }
            // Kafka's record reader throws InvalidRecordException for malformed records
            // (INVALID_RECORD); undecodable compressed data is a CorruptRecordException.
            Self::InvalidBatch(B::InvalidRecord { .. }) => ResponseError::InvalidRecord,
            Self::InvalidBatch(B::Decompress { .. }) => ResponseError::CorruptMessage,
            Self::Sequence(SequenceError::OutOfOrder { .. }) => ResponseError::OutOfOrderSequenceNumber,
            Self::Sequence(SequenceError::FencedEpoch { .. }) => ResponseError::InvalidProducerEpoch,
            Self::Sequence(SequenceError::OutsideTransaction { .. }) => ResponseError::InvalidTxnState,
            Self::ClientControlBatch | Self::MultipleIdempotentBatches | Self::KeylessRecords { .. } => {
                ResponseError::InvalidRecord
            }
            Self::Io(_) => ResponseError::KafkaStorageError,
        }
    }
}

impl ToKafkaCode for ReadError {
    fn kafka_code(&self) -> ResponseError {
        match self {
            Self::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
            // As Kafka 4.1: a CorruptRecordException from the log read becomes CORRUPT_MESSAGE.
            Self::Corrupt { .. } => ResponseError::CorruptMessage,
            Self::Io(_) => ResponseError::KafkaStorageError,
        }
    }
}

impl ToKafkaCode for GroupError {
    fn kafka_code(&self) -> ResponseError {
        match self {
            Self::UnknownMemberId => ResponseError::UnknownMemberId,
            Self::IllegalGeneration => ResponseError::IllegalGeneration,
            Self::RebalanceInProgress => ResponseError::RebalanceInProgress,
            Self::InconsistentGroupProtocol => ResponseError::InconsistentGroupProtocol,
            Self::InvalidSessionTimeout => ResponseError::InvalidSessionTimeout,
            Self::MemberIdRequired(_) => ResponseError::MemberIdRequired,
            Self::FencedInstanceId => ResponseError::FencedInstanceId,
            Self::GroupIdNotFound => ResponseError::GroupIdNotFound,
            Self::NonEmptyGroup => ResponseError::NonEmptyGroup,
            Self::InvalidGroupId => ResponseError::InvalidGroupId,
            Self::CoordinatorNotAvailable => ResponseError::CoordinatorNotAvailable,
            Self::GroupMaxSizeReached => ResponseError::GroupMaxSizeReached,
            Self::UnknownTopicOrPartition => ResponseError::UnknownTopicOrPartition,
            Self::OffsetMetadataTooLarge => ResponseError::OffsetMetadataTooLarge,
            Self::GroupSubscribedToTopic => ResponseError::GroupSubscribedToTopic,
            Self::ProducerFenced => ResponseError::InvalidProducerEpoch,
            Self::StaleMemberEpoch => ResponseError::StaleMemberEpoch,
            Self::Storage(_) => ResponseError::KafkaStorageError,
        }
    }
}

impl ToKafkaCode for crate::group::consumer::HeartbeatError {
    fn kafka_code(&self) -> ResponseError {
        match self {
            Self::InvalidRequest(_) => ResponseError::InvalidRequest,
            Self::UnsupportedAssignor(_) => ResponseError::UnsupportedAssignor,
            Self::UnknownMemberId(_) => ResponseError::UnknownMemberId,
            Self::FencedMemberEpoch(_) => ResponseError::FencedMemberEpoch,
            Self::UnreleasedInstanceId(_) => ResponseError::UnreleasedInstanceId,
            Self::GroupIdNotFound(_) => ResponseError::GroupIdNotFound,
            Self::GroupMaxSizeReached(_) => ResponseError::GroupMaxSizeReached,
            Self::FencedInstanceId(_) => ResponseError::FencedInstanceId,
            Self::InvalidRegularExpression(_) => ResponseError::InvalidRegularExpression,
        }
    }
}

impl ToKafkaCode for CreateTopicError {
    fn kafka_code(&self) -> ResponseError {
        match self {
            Self::AlreadyExists(_) => ResponseError::TopicAlreadyExists,
            Self::InvalidName(_) => ResponseError::InvalidTopicException,
            Self::InvalidPartitions(_) => ResponseError::InvalidPartitions,
            Self::InvalidReplicationFactor(_) => ResponseError::InvalidReplicationFactor,
            Self::InvalidReplicaAssignment(_) => ResponseError::InvalidReplicaAssignment,
            Self::InvalidConfig(_) => ResponseError::InvalidConfig,
            Self::InvalidRequest(_) => ResponseError::InvalidRequest,
            Self::Unavailable(_) => ResponseError::RequestTimedOut,
            Self::Io(_) => ResponseError::KafkaStorageError,
        }
    }
}

impl ToKafkaCode for DeleteTopicError {
    fn kafka_code(&self) -> ResponseError {
        match self {
            Self::UnknownTopic => ResponseError::UnknownTopicOrPartition,
            Self::Unavailable(_) => ResponseError::RequestTimedOut,
            Self::Io(_) => ResponseError::KafkaStorageError,
        }
    }
}

impl ToKafkaCode for AlterTopicError {
    fn kafka_code(&self) -> ResponseError {
        match self {
            Self::UnknownTopic => ResponseError::UnknownTopicOrPartition,
            Self::InvalidPartitions(_) => ResponseError::InvalidPartitions,
            Self::InvalidReplicaAssignment(_) => ResponseError::InvalidReplicaAssignment,
            Self::InvalidConfig(_) => ResponseError::InvalidConfig,
            Self::Unavailable(_) => ResponseError::RequestTimedOut,
            Self::Io(_) => ResponseError::KafkaStorageError,
        }
    }
}

impl ToKafkaCode for TxnError {
    fn kafka_code(&self) -> ResponseError {
        match self {
            Self::InvalidTimeout { .. } => ResponseError::InvalidTransactionTimeout,
            Self::NoProducerId(_) | Self::ProducerIdMapping { .. } => ResponseError::InvalidProducerIdMapping,
            // Requests older than KIP-588's versions get INVALID_PRODUCER_EPOCH instead
            // (`fenced_code`).
            Self::Fenced { .. } => ResponseError::ProducerFenced,
            Self::Concurrent => ResponseError::ConcurrentTransactions,
            Self::InvalidState(_) | Self::PartitionNotAdded => ResponseError::InvalidTxnState,
            Self::NotFound => ResponseError::TransactionalIdNotFound,
            Self::UnknownPartition => ResponseError::UnknownTopicOrPartition,
            Self::NotAttempted => ResponseError::OperationNotAttempted,
            // The state log could not be written: retriable, as Kafka's coordinator answers.
            Self::Storage(_) => ResponseError::CoordinatorNotAvailable,
            // Kafka 4.1's leader answers a produce whose verification could not be made with a
            // retriable NOT_ENOUGH_REPLICAS.
            Self::Unverified(_) => ResponseError::NotEnoughReplicas,
            Self::Remote { code, .. } => {
                ResponseError::try_from_code(*code).unwrap_or(ResponseError::UnknownServerError)
            }
        }
    }
}

/// The code for a transaction error at a request version: PRODUCER_FENCED exists only from
/// the versions KIP-588 added (`fenced_from`); older requests get INVALID_PRODUCER_EPOCH.
pub fn txn_code(e: &TxnError, version: i16, fenced_from: i16) -> ResponseError {
    match e.kafka_code() {
        ResponseError::ProducerFenced if version < fenced_from => ResponseError::InvalidProducerEpoch,
        code => code,
    }
}
