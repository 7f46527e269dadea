//! Domain failures as Kafka error codes.

use brook_actors::group::codes;
use brook_actors::PartitionError;
use kafka_protocol::ResponseError;

use crate::metadata::MetaError;

/// The Kafka error a partition failure is reported as.
pub fn partition_error(e: &PartitionError) -> ResponseError {
    use brook_storage::Error as S;
    match e {
        PartitionError::Storage(S::OutOfOrderSequence { .. }) => {
            ResponseError::OutOfOrderSequenceNumber
        }
        PartitionError::Storage(S::InvalidProducerEpoch { .. }) => {
            ResponseError::InvalidProducerEpoch
        }
        PartitionError::Storage(S::OffsetOutOfRange { .. }) => ResponseError::OffsetOutOfRange,
        PartitionError::Storage(_) => ResponseError::KafkaStorageError,
        PartitionError::Wire(_) => ResponseError::CorruptMessage,
        // The actor went away (topic deleted, node stopping): retriable, the client looks again.
        PartitionError::Stopped => ResponseError::NotLeaderOrFollower,
        PartitionError::System(_) => ResponseError::UnknownServerError,
        PartitionError::NotLeader => ResponseError::NotLeaderOrFollower,
        PartitionError::OffsetNotAvailable => ResponseError::OffsetNotAvailable,
        PartitionError::UnknownLeaderEpoch(_) => ResponseError::UnknownLeaderEpoch,
        PartitionError::FencedLeaderEpoch(_) => ResponseError::FencedLeaderEpoch,
        PartitionError::NotEnoughReplicas { .. } => ResponseError::NotEnoughReplicas,
        PartitionError::NotEnoughReplicasAfterAppend { .. } => {
            ResponseError::NotEnoughReplicasAfterAppend
        }
    }
}

/// The Kafka error a refused metadata change is reported as.
pub fn meta_error(e: &MetaError) -> ResponseError {
    ResponseError::try_from_code(e.kafka_code()).unwrap_or(ResponseError::UnknownServerError)
}

/// A failed write as the client should see it: a rejection keeps its code (NOT_COORDINATOR
/// when this node lost the group); anything else means the metadata quorum is unreachable,
/// which the client treats as a coordinator to look up again.
pub(crate) fn store_error(e: &MetaError) -> i16 {
    match e {
        MetaError::Rejected(r) if r.code == codes::MESSAGE_TOO_LARGE => {
            tracing::warn!(error = %r, "group write too large for the metadata log");
            codes::UNKNOWN_SERVER_ERROR
        }
        MetaError::Rejected(r) => r.code,
        other => {
            tracing::warn!(error = %other, "group write through Raft failed");
            codes::COORDINATOR_NOT_AVAILABLE
        }
    }
}
