//! Growing a running group: a new node asks any member (over the Raft port) to add it, the
//! leader adds it as a learner, waits until it has caught up, and promotes learners to voters
//! while the group has fewer voters than it should.
//!
//! The group keeps an odd number of voters, at most `max_voters` (3 or 5): more voters make
//! every commit wait for more nodes without tolerating more failures per added node, so further
//! nodes stay learners that replicate the metadata without voting.

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

/// How many voters a group of `members` nodes keeps: the largest odd number not above either.
pub fn target_voters(members: usize, max_voters: usize) -> usize {
    let n = members.min(max_voters).max(1);
    if n.is_multiple_of(2) {
        n - 1
    } else {
        n
    }
}

/// Add node `id` with Raft address `addr` to the group `raft` leads. Idempotent: a node that is
/// already a member at the same address is answered as joined (and promoted if a voter is
/// missing), so a joining node can retry after any failure.
pub async fn add_node(raft: &Raft, id: NodeId, addr: String, max_voters: usize) -> JoinReply {
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
    promote(raft, id, max_voters).await
}

/// Promote learners (lowest ids first) until the group has its target number of voters.
async fn promote(raft: &Raft, id: NodeId, max_voters: usize) -> JoinReply {
    let metrics = raft.metrics().borrow().clone();
    let membership = metrics.membership_config.membership().clone();
    let mut voters: BTreeSet<NodeId> = membership.voter_ids().collect();
    let members = membership.nodes().count();
    let target = target_voters(members, max_voters);
    if voters.len() < target {
        let learners: Vec<NodeId> = membership.learner_ids().collect();
        let wanted = target - voters.len();
        voters.extend(learners.into_iter().take(wanted));
        tracing::info!(?voters, "promoting learners to voters");
        if let Err(e) = raft
            .change_membership(ChangeMembers::ReplaceAllVoters(voters.clone()), true)
            .await
        {
            return write_failed(raft, e);
        }
    }
    JoinReply::Joined {
        voter: voters.contains(&id),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voters_stay_odd_and_capped() {
        let cases = [(1, 3, 1), (2, 3, 1), (3, 3, 3), (4, 3, 3), (5, 3, 3)];
        for (members, max, want) in cases {
            assert_eq!(target_voters(members, max), want, "{members} of max {max}");
        }
        assert_eq!(target_voters(4, 5), 3);
        assert_eq!(target_voters(5, 5), 5);
        assert_eq!(target_voters(9, 5), 5);
    }
}
