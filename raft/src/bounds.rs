//! Range checks on what a peer sends, made before openraft sees it: a term, index or node id
//! that no real cluster reaches is refused, so arithmetic on it inside openraft cannot overflow
//! (a term of 2^64 - 1 once wrapped on the next election and panicked, on every restart).
//!
//! The bounds leave centuries of headroom: at one election every 100 ms a term reaches
//! [`MAX_TERM`] after 890,000 years, and at a million entries a second an index reaches
//! [`MAX_INDEX`] after 146,000 years. Node ids are Kafka broker ids, non-negative `i32`s.

use crate::error::Error;
use crate::rpc::RaftRequest;
use openraft::EntryPayload;

use crate::typ::{LogId, NodeId, Vote};

pub const MAX_TERM: u64 = 1 << 48;
pub const MAX_INDEX: u64 = 1 << 62;
pub const MAX_NODE_ID: NodeId = i32::MAX as NodeId;

/// Refuse a request carrying a value out of range; the connection it came on is closed.
pub(crate) fn check(req: &RaftRequest) -> Result<(), Error> {
    match req {
        RaftRequest::AppendEntries(r) => {
            vote(&r.vote)?;
            log_id(r.prev_log_id.as_ref())?;
            log_id(r.leader_commit.as_ref())?;
            r.entries.iter().try_for_each(|e| {
                log_id(Some(&e.log_id))?;
                match &e.payload {
                    EntryPayload::Membership(m) => m.nodes().try_for_each(|(id, _)| node(*id)),
                    _ => Ok(()),
                }
            })
        }
        RaftRequest::Vote(r) => {
            vote(&r.vote)?;
            log_id(r.last_log_id.as_ref())
        }
        RaftRequest::InstallSnapshot(r) => {
            vote(&r.vote)?;
            log_id(r.meta.last_log_id.as_ref())?;
            log_id(r.meta.last_membership.log_id().as_ref())
        }
        RaftRequest::ClientWrite(_) => Ok(()),
        RaftRequest::Join { id, .. } | RaftRequest::Promote { id } | RaftRequest::Demote { id } => {
            node(*id)
        }
    }
}

fn vote(v: &Vote) -> Result<(), Error> {
    term(v.leader_id.term)?;
    node(v.leader_id.node_id)
}

fn log_id(id: Option<&LogId>) -> Result<(), Error> {
    let Some(id) = id else { return Ok(()) };
    term(id.leader_id.term)?;
    node(id.leader_id.node_id)?;
    if id.index > MAX_INDEX {
        return Err(Error::OutOfRange(format!(
            "log index {} is over {MAX_INDEX}",
            id.index
        )));
    }
    Ok(())
}

fn term(t: u64) -> Result<(), Error> {
    if t > MAX_TERM {
        return Err(Error::OutOfRange(format!("term {t} is over {MAX_TERM}")));
    }
    Ok(())
}

fn node(id: NodeId) -> Result<(), Error> {
    if id > MAX_NODE_ID {
        return Err(Error::OutOfRange(format!(
            "node id {id} is over {MAX_NODE_ID}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::typ::{AppendEntriesRequest, VoteRequest};

    fn append(term: u64, index: u64) -> RaftRequest {
        RaftRequest::AppendEntries(AppendEntriesRequest {
            vote: Vote::new_committed(term, 1),
            prev_log_id: Some(LogId::new(openraft::CommittedLeaderId::new(1, 1), index)),
            entries: vec![],
            leader_commit: None,
        })
    }

    #[test]
    fn real_values_pass_and_wrapping_ones_do_not() {
        assert!(check(&append(5, 10)).is_ok());
        assert!(check(&append(MAX_TERM, MAX_INDEX)).is_ok());
        assert!(matches!(
            check(&append(u64::MAX, 1)),
            Err(Error::OutOfRange(_))
        ));
        assert!(matches!(
            check(&append(1, u64::MAX)),
            Err(Error::OutOfRange(_))
        ));
        let vote = RaftRequest::Vote(VoteRequest::new(Vote::new(1, u64::MAX), None));
        assert!(check(&vote).is_err());
        let join = RaftRequest::Join {
            id: 1 << 40,
            addr: "x:1".into(),
        };
        assert!(check(&join).is_err());
    }
}
