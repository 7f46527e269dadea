//! Growing a running group: a new node asks any member (over the Raft port, authenticated with
//! the cluster secret) to add it, and the leader adds it as a learner, which replicates the
//! metadata without voting. A learner becomes a voter only with an operator's consent
//! ([`add_voter`], behind Kafka's AddRaftVoter and `brook cluster promote`), as KIP-853's
//! observers do: holding the secret is not enough to take part in the quorum. The operator
//! may also take a voter's vote away again ([`remove_voter`], RemoveRaftVoter).
//!
//! The group has at most `max_voters` voters (3 or 5): more voters make every commit wait for
//! more nodes without tolerating more failures per added node.

use std::collections::BTreeSet;

use openraft::error::{ChangeMembershipError, ClientWriteError, RaftError};
use openraft::ChangeMembers;
use serde::{Deserialize, Serialize};

use crate::typ::{Node, NodeId, Raft};

/// Voters a group keeps unless configured otherwise.
pub const DEFAULT_MAX_VOTERS: usize = 3;

/// The answer to a join request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum JoinReply {
    /// The node is a member now; `voter` says whether it votes.
    Joined { voter: bool },
    /// The asked node is not the leader; ask `leader` (id and Raft address) if known.
    NotLeader { leader: Option<(NodeId, String)> },
    /// The node cannot join (for example its id is taken by a member at another address).
    Refused(String),
}

/// Add node `id` with Raft address `addr` to the group `raft` leads, as a learner.
/// Idempotent: a node that is already a member at the same address is answered as joined, so
/// a joining node can retry after any failure.
pub async fn add_node(raft: &Raft, id: NodeId, addr: String) -> JoinReply {
    let metrics = raft.metrics().borrow().clone();
    if metrics.current_leader != Some(metrics.id) {
        return not_leader(&metrics);
    }
    let membership = metrics.membership_config.membership().clone();
    match membership.get_node(&id) {
        Some(node) if node.addr != addr => {
            return JoinReply::Refused(format!(
                "node id {id} is already a member with Raft address {}",
                node.addr
            ))
        }
        Some(_) => {}
        None => {
            tracing::info!(node = id, %addr, "adding a node to the metadata group as a learner");
            if let Err(e) = raft.add_learner(id, Node { addr }, true).await {
                return write_failed(raft, e);
            }
        }
    }
    let voter = raft
        .metrics()
        .borrow()
        .membership_config
        .membership()
        .voter_ids()
        .any(|v| v == id);
    JoinReply::Joined { voter }
}

/// Make learner `id` a voter, with an operator's consent, up to `max_voters`. Idempotent: a
/// voter is answered as one.
pub async fn add_voter(raft: &Raft, id: NodeId, max_voters: usize) -> JoinReply {
    let metrics = raft.metrics().borrow().clone();
    if metrics.current_leader != Some(metrics.id) {
        return not_leader(&metrics);
    }
    let membership = metrics.membership_config.membership().clone();
    let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
    if voters.contains(&id) {
        return JoinReply::Joined { voter: true };
    }
    if !membership.learner_ids().any(|l| l == id) {
        return JoinReply::Refused(format!(
            "node {id} is not a member of the metadata group: it must join first"
        ));
    }
    if voters.len() >= max_voters {
        return JoinReply::Refused(format!(
            "the metadata group has {} voters, at most brook.raft.max.voters={max_voters}",
            voters.len()
        ));
    }
    tracing::info!(
        node = id,
        "promoting a learner to voter, as an operator asked"
    );
    match raft
        .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), true)
        .await
    {
        Ok(_) => JoinReply::Joined { voter: true },
        Err(e) => write_failed(raft, e),
    }
}

/// Make voter `id` a learner again, as an operator asked: it keeps replicating the metadata
/// without voting (KRaft's observer). Idempotent: a learner is answered as one. The last
/// voter stays.
pub async fn remove_voter(raft: &Raft, id: NodeId) -> JoinReply {
    let metrics = raft.metrics().borrow().clone();
    if metrics.current_leader != Some(metrics.id) {
        return not_leader(&metrics);
    }
    let voters: BTreeSet<NodeId> = metrics.membership_config.membership().voter_ids().collect();
    if !voters.contains(&id) {
        return JoinReply::Joined { voter: false };
    }
    if voters.len() == 1 {
        return JoinReply::Refused(format!("node {id} is the metadata group's only voter"));
    }
    tracing::info!(
        node = id,
        "removing a voter, as an operator asked; it stays a learner"
    );
    match raft
        .change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([id])), true)
        .await
    {
        Ok(_) => JoinReply::Joined { voter: false },
        Err(e) => write_failed(raft, e),
    }
}

fn not_leader(metrics: &crate::typ::RaftMetrics) -> JoinReply {
    let leader = metrics.current_leader.and_then(|l| {
        metrics
            .membership_config
            .membership()
            .get_node(&l)
            .map(|n| (l, n.addr.clone()))
    });
    JoinReply::NotLeader { leader }
}

fn write_failed(raft: &Raft, e: RaftError<NodeId, ClientWriteError<NodeId, Node>>) -> JoinReply {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(_)) => {
            not_leader(&raft.metrics().borrow().clone())
        }
        // Another change is still in progress: the joining node retries.
        RaftError::APIError(ClientWriteError::ChangeMembershipError(
            ChangeMembershipError::InProgress(_),
        )) => JoinReply::NotLeader { leader: None },
        other => JoinReply::Refused(other.to_string()),
    }
}
