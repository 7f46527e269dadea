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
        PartitionError::Wire(e) => wire_error(e),
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

/// The Kafka error a refused record batch is reported as: INVALID_RECORD for well-framed data
/// whose records break the rules (a producer must not retry it), CORRUPT_MESSAGE for damage
/// (retriable: the bytes may have been corrupted on the way), UNSUPPORTED_FOR_MESSAGE_FORMAT
/// for message formats before v2.
pub fn wire_error(e: &brook_wire::Error) -> ResponseError {
    match e {
        brook_wire::Error::InvalidRecord { .. } => ResponseError::InvalidRecord,
        brook_wire::Error::UnsupportedMagic(_) => ResponseError::UnsupportedForMessageFormat,
        _ => ResponseError::CorruptMessage,
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

/// Kafka's name for an error code, e.g. `NON_EMPTY_GROUP`.
pub fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        None => "NONE".to_string(),
        Some(ResponseError::Unknown(c)) => format!("UNKNOWN_ERROR_CODE_{c}"),
        Some(e) => screaming_snake(&format!("{e:?}")),
    }
}

fn screaming_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `pub const NAME: i16 = CODE;` of a code table, with its name.
    fn constants(source: &str) -> Vec<(String, i16)> {
        source
            .lines()
            .filter_map(|line| {
                let rest = line.trim().strip_prefix("pub const ")?;
                let (name, rest) = rest.split_once(": i16 = ")?;
                let value = rest.trim_end_matches(';').trim().parse().ok()?;
                Some((name.to_string(), value))
            })
            .collect()
    }

    /// The Kafka error codes of the Raft state machine and of the group coordinator are plain
    /// numbers (those crates do not speak Kafka's wire format); each must be the code Kafka
    /// gives the error it is named after, so a wrong constant fails here.
    #[test]
    fn code_tables_match_kafka() {
        for (table, source) in [
            ("raft", include_str!("../../raft/src/codes.rs")),
            ("actors", include_str!("../../actors/src/group/codes.rs")),
        ] {
            let constants = constants(source);
            assert!(constants.len() >= 10, "{table}: parsed {constants:?}");
            for (name, code) in constants {
                assert_eq!(error_name(code), name, "{table}: {name} = {code}");
            }
        }
    }

    #[test]
    fn error_names_follow_kafka() {
        assert_eq!(error_name(0), "NONE");
        assert_eq!(error_name(36), "TOPIC_ALREADY_EXISTS");
        assert_eq!(error_name(68), "NON_EMPTY_GROUP");
        assert_eq!(error_name(69), "GROUP_ID_NOT_FOUND");
        assert_eq!(error_name(16), "NOT_COORDINATOR");
        assert_eq!(error_name(14), "COORDINATOR_LOAD_IN_PROGRESS");
        assert_eq!(error_name(-1), "UNKNOWN_SERVER_ERROR");
        assert_eq!(error_name(9999), "UNKNOWN_ERROR_CODE_9999");
    }
}
