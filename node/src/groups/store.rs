//! The group coordinator's durable state on the metadata Raft group: [`RaftGroupStore`]
//! implements the actors' [`GroupStore`] with Raft commands.

use std::sync::Arc;
use std::time::Duration;

use brook_actors::group::{
    codes, GroupStore, LoadedGroup, OffsetToCommit, StoreResult, StoredGroup, StoredMember,
};
use brook_raft::{CommandOutput, GroupRecord, MemberRecord, MetadataCommand, OffsetCommit};
use bytes::Bytes;
use futures::future::{BoxFuture, FutureExt};

use super::CommitQueue;
use crate::errors::store_error;
use crate::metadata::Metadata;

/// How long a load waits for this node's image to include its own barrier write.
const LOAD_CATCH_UP: Duration = Duration::from_secs(10);

pub struct RaftGroupStore {
    metadata: Arc<Metadata>,
    node_id: u64,
    commits: CommitQueue,
    /// The largest group record a coordinator writes (`brook.group.record.max.bytes`).
    record_max_bytes: u64,
}

impl RaftGroupStore {
    pub fn new(
        metadata: Arc<Metadata>,
        node_id: u64,
        commits: CommitQueue,
        record_max_bytes: u64,
    ) -> Self {
        RaftGroupStore {
            metadata,
            node_id,
            commits,
            record_max_bytes,
        }
    }

    fn write(&self, cmd: MetadataCommand) -> BoxFuture<'static, StoreResult<CommandOutput>> {
        let metadata = self.metadata.clone();
        async move { metadata.write(cmd).await.map_err(|e| store_error(&e)) }.boxed()
    }
}

impl GroupStore for RaftGroupStore {
    /// A heartbeat of this broker goes through Raft first, and the load waits until the local
    /// image shows it: by then every entry committed before the load began (such as the last
    /// commits of the previous coordinator) is applied here too. The group is loaded at the
    /// placement epoch of that image, if this node coordinates it there.
    fn load(&self, group: &str) -> BoxFuture<'static, StoreResult<LoadedGroup>> {
        let metadata = self.metadata.clone();
        let (me, group) = (self.node_id, group.to_owned());
        async move {
            let at_ms = crate::clock::now_ms();
            let (_, index) = metadata
                .write_indexed(MetadataCommand::BrokerHeartbeat { id: me, at_ms })
                .await
                .map_err(|e| store_error(&e))?;
            let reader = metadata.raft().reader();
            let mut applied = reader.subscribe();
            let seen = |r: &brook_raft::MetadataReader| {
                r.last_applied()
                    .is_some_and(|applied| applied.index >= index)
            };
            let caught_up = tokio::time::timeout(LOAD_CATCH_UP, async {
                while !seen(&reader) {
                    if applied.changed().await.is_err() {
                        return false;
                    }
                }
                true
            })
            .await
            .unwrap_or(false);
            if !caught_up {
                return Err(codes::COORDINATOR_LOAD_IN_PROGRESS);
            }
            reader.read(|s| {
                let epoch = s.placement_epoch();
                if !s.coordinates_since(&group, me, epoch) {
                    return Err(codes::NOT_COORDINATOR);
                }
                let stored = s.groups().get(&group).map(|g| from_record(&g.record));
                Ok(LoadedGroup { stored, epoch })
            })
        }
        .boxed()
    }

    fn coordinates(&self, group: &str, epoch: u64) -> bool {
        self.metadata
            .raft()
            .reader()
            .read(|s| s.coordinates_since(group, self.node_id, epoch))
    }

    fn store(
        &self,
        group: &str,
        epoch: u64,
        record: StoredGroup,
    ) -> BoxFuture<'static, StoreResult<()>> {
        let record = to_record(record);
        // Members choose the size of their subscriptions and assignments; what goes into the
        // replicated state is bounded as Kafka bounds a group's record in __consumer_offsets
        // (MESSAGE_TOO_LARGE, which SyncGroup reports as UNKNOWN_SERVER_ERROR).
        let size = bincode::serialized_size(&record).unwrap_or(u64::MAX);
        if size > self.record_max_bytes {
            tracing::warn!(
                group,
                size,
                limit = self.record_max_bytes,
                "group record too large; not stored"
            );
            return futures::future::ready(Err(codes::UNKNOWN_SERVER_ERROR)).boxed();
        }
        let cmd = MetadataCommand::StoreGroup {
            coordinator: self.node_id,
            since: epoch,
            group: group.to_owned(),
            record,
        };
        self.write(cmd).map(|r| r.map(|_| ())).boxed()
    }

    fn commit(
        &self,
        group: &str,
        epoch: u64,
        offsets: Vec<OffsetToCommit>,
    ) -> BoxFuture<'static, StoreResult<()>> {
        let offsets = offsets
            .into_iter()
            .map(|o| OffsetCommit {
                topic: o.topic,
                partition: o.partition,
                offset: o.offset,
                leader_epoch: o.leader_epoch,
                metadata: o.metadata,
            })
            .collect();
        self.commits
            .commit(group.to_owned(), epoch, offsets)
            .boxed()
    }

    fn delete(&self, group: &str, epoch: u64) -> BoxFuture<'static, StoreResult<()>> {
        let cmd = MetadataCommand::DeleteGroup {
            coordinator: self.node_id,
            since: epoch,
            group: group.to_owned(),
        };
        self.write(cmd).map(|r| r.map(|_| ())).boxed()
    }

    fn delete_offsets(
        &self,
        group: &str,
        epoch: u64,
        partitions: Vec<(String, i32)>,
    ) -> BoxFuture<'static, StoreResult<()>> {
        let cmd = MetadataCommand::DeleteOffsets {
            coordinator: self.node_id,
            since: epoch,
            group: group.to_owned(),
            partitions,
        };
        self.write(cmd).map(|r| r.map(|_| ())).boxed()
    }
}

fn to_record(g: StoredGroup) -> GroupRecord {
    GroupRecord {
        protocol_type: g.protocol_type,
        generation: g.generation,
        protocol: g.protocol,
        leader: g.leader,
        members: g
            .members
            .into_iter()
            .map(|m| MemberRecord {
                member_id: m.member_id,
                instance_id: m.instance_id,
                client_id: m.client_id,
                client_host: m.client_host,
                session_timeout_ms: m.session_timeout_ms,
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                subscription: m.subscription.to_vec(),
                assignment: m.assignment.to_vec(),
            })
            .collect(),
        state_since_ms: g.state_since_ms,
    }
}

fn from_record(g: &GroupRecord) -> StoredGroup {
    StoredGroup {
        protocol_type: g.protocol_type.clone(),
        generation: g.generation,
        protocol: g.protocol.clone(),
        leader: g.leader.clone(),
        members: g
            .members
            .iter()
            .map(|m| StoredMember {
                member_id: m.member_id.clone(),
                instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                session_timeout_ms: m.session_timeout_ms,
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                subscription: Bytes::from(m.subscription.clone()),
                assignment: Bytes::from(m.assignment.clone()),
            })
            .collect(),
        state_since_ms: g.state_since_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let stored = StoredGroup {
            protocol_type: Some("consumer".into()),
            generation: 4,
            protocol: Some("range".into()),
            leader: Some("m1".into()),
            members: vec![StoredMember {
                member_id: "m1".into(),
                instance_id: Some("i1".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                session_timeout_ms: 10_000,
                rebalance_timeout_ms: 30_000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"asg"),
            }],
            state_since_ms: 99,
        };
        assert_eq!(from_record(&to_record(stored.clone())), stored);
    }
}
