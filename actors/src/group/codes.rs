//! The Kafka error codes brook's actors and their callers answer with, as the protocol's
//! `ErrorCode` numbers. This is the crate's one table: each constant bears the name of Kafka's
//! error exactly (and repeats it in its doc), so a test can pin every one to
//! `kafka_protocol::ResponseError` without the actors depending on the wire types.

/// NONE: no error.
pub const NONE: i16 = 0;
/// UNKNOWN_SERVER_ERROR: an unexpected failure on the broker.
pub const UNKNOWN_SERVER_ERROR: i16 = -1;
/// UNKNOWN_TOPIC_OR_PARTITION: the topic or partition does not exist.
pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
/// MESSAGE_TOO_LARGE: the request carries more than the broker accepts.
pub const MESSAGE_TOO_LARGE: i16 = 10;
/// OFFSET_METADATA_TOO_LARGE: a committed offset's metadata string is too long.
pub const OFFSET_METADATA_TOO_LARGE: i16 = 12;
/// COORDINATOR_LOAD_IN_PROGRESS: the coordinator is still loading the group (retriable).
pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
/// COORDINATOR_NOT_AVAILABLE: no coordinator can serve the group right now (retriable).
pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
/// NOT_COORDINATOR: this node does not coordinate the group; find the coordinator again.
pub const NOT_COORDINATOR: i16 = 16;
/// ILLEGAL_GENERATION: the member names a generation the group is not in.
pub const ILLEGAL_GENERATION: i16 = 22;
/// INCONSISTENT_GROUP_PROTOCOL: the member's protocol type or protocols do not match the
/// group's.
pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
/// INVALID_GROUP_ID: the group id is empty.
pub const INVALID_GROUP_ID: i16 = 24;
/// UNKNOWN_MEMBER_ID: the member id is not a member of the group.
pub const UNKNOWN_MEMBER_ID: i16 = 25;
/// INVALID_SESSION_TIMEOUT: the session timeout is outside the broker's allowed range.
pub const INVALID_SESSION_TIMEOUT: i16 = 26;
/// REBALANCE_IN_PROGRESS: the group is rebalancing; the member must rejoin.
pub const REBALANCE_IN_PROGRESS: i16 = 27;
/// INVALID_COMMIT_OFFSET_SIZE: the commit is too large to record.
pub const INVALID_COMMIT_OFFSET_SIZE: i16 = 28;
/// NON_EMPTY_GROUP: the group still has members, so it cannot be deleted.
pub const NON_EMPTY_GROUP: i16 = 68;
/// GROUP_ID_NOT_FOUND: the group does not exist.
pub const GROUP_ID_NOT_FOUND: i16 = 69;
/// MEMBER_ID_REQUIRED: a new member must rejoin with the member id it was given (KIP-394).
pub const MEMBER_ID_REQUIRED: i16 = 79;
/// FENCED_INSTANCE_ID: another member id has taken over this static member's instance id.
pub const FENCED_INSTANCE_ID: i16 = 82;
/// GROUP_SUBSCRIBED_TO_TOPIC: the group's members still consume the topic, so its offsets
/// cannot be deleted.
pub const GROUP_SUBSCRIBED_TO_TOPIC: i16 = 86;
