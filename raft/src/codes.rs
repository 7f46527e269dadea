//! The Kafka error codes brook-raft answers with: the crate's one table of them, as plain
//! numbers so that `node` can put them straight into a response without this crate knowing
//! Kafka's wire types.
//!
//! Each constant is named exactly like Kafka's error (the SCREAMING_SNAKE form of its name in
//! Kafka's `Errors`), and its doc comment starts with that name, so a test on the `node` side
//! can pin every one to `kafka_protocol::ResponseError`. Keep the table in code order.

/// UNKNOWN_SERVER_ERROR: a failure no other code describes (storage, encoding, ...).
pub const UNKNOWN_SERVER_ERROR: i16 = -1;
/// NONE: no error.
pub const NONE: i16 = 0;
/// UNKNOWN_TOPIC_OR_PARTITION: the topic (or partition) does not exist.
pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
/// NOT_LEADER_OR_FOLLOWER: the broker does not lead the partition.
pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
/// REQUEST_TIMED_OUT: a metadata write did not finish in time (it may still take effect).
pub const REQUEST_TIMED_OUT: i16 = 7;
/// BROKER_NOT_AVAILABLE: a broker the command refers to is not live.
pub const BROKER_NOT_AVAILABLE: i16 = 8;
/// MESSAGE_TOO_LARGE: the command is too large for one log entry.
pub const MESSAGE_TOO_LARGE: i16 = 10;
/// NOT_COORDINATOR: the broker that wrote a group change is no longer the group's coordinator.
pub const NOT_COORDINATOR: i16 = 16;
/// INVALID_TOPIC_EXCEPTION: the topic name is not a legal Kafka topic name.
pub const INVALID_TOPIC_EXCEPTION: i16 = 17;
/// ILLEGAL_GENERATION: a group record older than the one already stored.
pub const ILLEGAL_GENERATION: i16 = 22;
/// INVALID_COMMIT_OFFSET_SIZE: the commit would take the group state past
/// [`crate::consumer_groups::GROUP_STATE_MAX_BYTES`].
pub const INVALID_COMMIT_OFFSET_SIZE: i16 = 28;
/// TOPIC_ALREADY_EXISTS: a topic with that name (or that topic id) already exists.
pub const TOPIC_ALREADY_EXISTS: i16 = 36;
/// INVALID_PARTITIONS: the partition count is not valid (zero, too large, or not larger than
/// today's).
pub const INVALID_PARTITIONS: i16 = 37;
/// INVALID_REPLICATION_FACTOR: not enough live brokers to place the replicas.
pub const INVALID_REPLICATION_FACTOR: i16 = 38;
/// INVALID_REPLICA_ASSIGNMENT: the replica assignment names a broker that is not registered.
pub const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
/// INVALID_CONFIG: a config name or value the broker does not accept.
pub const INVALID_CONFIG: i16 = 40;
/// NOT_CONTROLLER: no usable Raft leader (none known, unreachable, or stopping); retriable.
pub const NOT_CONTROLLER: i16 = 41;
/// INVALID_REQUEST: the request is malformed in a way no other code describes.
pub const INVALID_REQUEST: i16 = 42;
/// POLICY_VIOLATION: the request would take the cluster past one of its bounds (ACLs).
pub const POLICY_VIOLATION: i16 = 44;
/// NON_EMPTY_GROUP: the group still has members.
pub const NON_EMPTY_GROUP: i16 = 68;
/// GROUP_ID_NOT_FOUND: the group does not exist.
pub const GROUP_ID_NOT_FOUND: i16 = 69;
/// FENCED_LEADER_EPOCH: a leader epoch older than the partition's current one.
pub const FENCED_LEADER_EPOCH: i16 = 74;
/// STALE_BROKER_EPOCH: a broker registered with an epoch older than the one already known.
pub const STALE_BROKER_EPOCH: i16 = 77;
/// PREFERRED_LEADER_NOT_AVAILABLE: the preferred replica is not live or not in sync.
pub const PREFERRED_LEADER_NOT_AVAILABLE: i16 = 80;
/// ELIGIBLE_LEADERS_NOT_AVAILABLE: an unclean election found no live replica to elect.
pub const ELIGIBLE_LEADERS_NOT_AVAILABLE: i16 = 83;
/// ELECTION_NOT_NEEDED: the partition already has the leader the election would pick.
pub const ELECTION_NOT_NEEDED: i16 = 84;
/// NO_REASSIGNMENT_IN_PROGRESS: a reassignment was cancelled where none is in progress.
pub const NO_REASSIGNMENT_IN_PROGRESS: i16 = 85;
/// INVALID_UPDATE_VERSION: an in-sync set change made from an outdated partition epoch.
pub const INVALID_UPDATE_VERSION: i16 = 95;
/// BROKER_ID_NOT_REGISTERED: a heartbeat came from a broker id that never registered.
pub const BROKER_ID_NOT_REGISTERED: i16 = 102;
/// INELIGIBLE_REPLICA: an in-sync set that names a replica which may not be in it.
pub const INELIGIBLE_REPLICA: i16 = 107;
/// SCRAM credential changes (KIP-554).
pub const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
pub const RESOURCE_NOT_FOUND: i16 = 91;
pub const DUPLICATE_RESOURCE: i16 = 92;
pub const UNACCEPTABLE_CREDENTIAL: i16 = 93;
