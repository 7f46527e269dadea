//! What a group coordinator needs from the replicated metadata, as a trait the node implements
//! (this crate never sees Raft), and the records that cross it.

use bytes::Bytes;
use futures::future::BoxFuture;

/// A group's recorded generation: what a new coordinator starts from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredGroup {
    pub protocol_type: Option<String>,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub members: Vec<StoredMember>,
    /// When the group entered its current state, in milliseconds since the Unix epoch.
    pub state_since_ms: u64,
}

/// One member of a recorded generation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    /// The member's metadata for the group's protocol.
    pub subscription: Bytes,
    pub assignment: Bytes,
}

/// One partition's offset to commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetToCommit {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
}

/// A store answer: `Err` carries the Kafka error code to give the client.
pub type StoreResult<T> = Result<T, i16>;

/// What a coordinator starts a group from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadedGroup {
    pub stored: Option<StoredGroup>,
    /// The placement epoch the group was loaded at: every write names it, and is refused if
    /// this node stopped coordinating the group at any point since.
    pub epoch: u64,
}

/// The replicated home of group state. Every method is answered only once the change is
/// durable in the metadata log (or refused), so an acknowledged commit survives the coordinator.
pub trait GroupStore: Send + Sync + 'static {
    /// The group's recorded state, read only after every change written before this call (by
    /// any coordinator) is visible here; NOT_COORDINATOR if this node does not coordinate it.
    fn load(&self, group: &str) -> BoxFuture<'static, StoreResult<LoadedGroup>>;
    /// Whether, as far as this node knows, it has coordinated the group throughout since
    /// `epoch`. A quick local check: writes are checked again where they are applied.
    fn coordinates(&self, group: &str, epoch: u64) -> bool;
    /// Record a completed generation (or the group becoming empty).
    fn store(
        &self,
        group: &str,
        epoch: u64,
        record: StoredGroup,
    ) -> BoxFuture<'static, StoreResult<()>>;
    /// Commit offsets for the group.
    fn commit(
        &self,
        group: &str,
        epoch: u64,
        offsets: Vec<OffsetToCommit>,
    ) -> BoxFuture<'static, StoreResult<()>>;
    /// Delete an empty group and its offsets.
    fn delete(&self, group: &str, epoch: u64) -> BoxFuture<'static, StoreResult<()>>;
    /// Forget the committed offsets of some partitions.
    fn delete_offsets(
        &self,
        group: &str,
        epoch: u64,
        partitions: Vec<(String, i32)>,
    ) -> BoxFuture<'static, StoreResult<()>>;
}
