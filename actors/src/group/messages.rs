//! The requests a group actor serves and its answers. They mirror the Kafka APIs without the
//! wire types (which stay in the node); every message carries a oneshot for its answer.

use actix::Message;
use bytes::Bytes;
use tokio::sync::oneshot;

use crate::group::store::OffsetToCommit;

/// A protocol (assignor) a member supports, with its metadata for that protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protocol {
    pub name: String,
    pub metadata: Bytes,
}

/// JoinGroup.
#[derive(Message)]
#[rtype(result = "()")]
pub struct JoinGroup {
    /// Empty for a member joining for the first time.
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<Protocol>,
    /// JoinGroup v4+: a new dynamic member first gets MEMBER_ID_REQUIRED with its id (KIP-394).
    pub require_known_member_id: bool,
    pub reply: oneshot::Sender<JoinResult>,
}

/// A member as the group leader sees it in the JoinGroup answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub metadata: Bytes,
}

/// The JoinGroup answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JoinResult {
    pub error: i16,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Filled for the leader only.
    pub members: Vec<JoinedMember>,
    /// The leader's static member rejoined without a rebalance: it gets the members but must
    /// not assign (KIP-814).
    pub skip_assignment: bool,
}

impl JoinResult {
    pub fn error(error: i16, member_id: &str) -> Self {
        JoinResult {
            error,
            generation: -1,
            member_id: member_id.to_owned(),
            ..Default::default()
        }
    }
}

/// SyncGroup.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SyncGroup {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub generation: i32,
    /// v5+: checked against the group's when present.
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    /// From the leader: each member's assignment.
    pub assignments: Vec<(String, Bytes)>,
    pub reply: oneshot::Sender<SyncResult>,
}

/// The SyncGroup answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncResult {
    pub error: i16,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub assignment: Bytes,
}

impl SyncResult {
    pub fn error(error: i16) -> Self {
        SyncResult {
            error,
            ..Default::default()
        }
    }
}

/// Heartbeat; answered with an error code.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Heartbeat {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub generation: i32,
    pub reply: oneshot::Sender<i16>,
}

/// One member leaving (LeaveGroup v3+ lists several).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeavingMember {
    pub member_id: String,
    pub instance_id: Option<String>,
}

/// LeaveGroup.
#[derive(Message)]
#[rtype(result = "()")]
pub struct LeaveGroup {
    pub members: Vec<LeavingMember>,
    pub reply: oneshot::Sender<LeaveResult>,
}

/// The LeaveGroup answer: a group-level code and one per member, in request order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaveResult {
    pub error: i16,
    pub members: Vec<i16>,
}

/// OffsetCommit for one group; the node has already checked the partitions themselves.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CommitOffsets {
    pub member_id: String,
    pub instance_id: Option<String>,
    /// -1 for a standalone commit (a consumer that assigns partitions itself).
    pub generation: i32,
    pub offsets: Vec<OffsetToCommit>,
    /// One code for every offset of the request.
    pub reply: oneshot::Sender<i16>,
}

/// DescribeGroups for one group.
#[derive(Message)]
#[rtype(result = "()")]
pub struct DescribeGroup {
    pub reply: oneshot::Sender<GroupDescription>,
}

/// A member in a DescribeGroups answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberDescription {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// The member's metadata for the chosen protocol (DescribeGroups shows it only while the
    /// group is Stable, as Kafka does).
    pub metadata: Bytes,
    pub assignment: Bytes,
}

/// What DescribeGroups and ListGroups say about a group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupDescription {
    pub error: i16,
    /// Kafka's state name: Empty, PreparingRebalance, CompletingRebalance, Stable or Dead.
    pub state: &'static str,
    /// Whether the group exists at all (a group nobody joined or committed to does not).
    pub exists: bool,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<MemberDescription>,
}

/// DeleteGroups for one group; answered with an error code.
#[derive(Message)]
#[rtype(result = "()")]
pub struct DeleteGroup {
    pub reply: oneshot::Sender<i16>,
}

/// OffsetDelete: a group-level code, and one per partition.
#[derive(Message)]
#[rtype(result = "()")]
pub struct DeleteOffsets {
    pub partitions: Vec<(String, i32)>,
    pub reply: oneshot::Sender<(i16, Vec<i16>)>,
}

/// This node no longer coordinates the group: answer what is pending with NOT_COORDINATOR and
/// stop.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Unload;
