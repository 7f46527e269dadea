//! A member of a group as its coordinator holds it in memory, and the protocol choice across
//! members. The broker never looks inside protocol metadata: any assignor works.

use std::time::Duration;

use actix::SpawnHandle;
use bytes::Bytes;
use tokio::sync::oneshot;

use crate::group::messages::{JoinResult, Protocol, SyncResult};

pub(crate) struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    /// In the member's order of preference.
    pub protocols: Vec<Protocol>,
    pub assignment: Bytes,
    /// Its JoinGroup, held until the join barrier completes.
    pub awaiting_join: Option<oneshot::Sender<JoinResult>>,
    /// Its SyncGroup, held until the leader's assignment is stored.
    pub awaiting_sync: Option<oneshot::Sender<SyncResult>>,
    /// The session timer: the member is removed when it fires.
    pub expiry: Option<SpawnHandle>,
}

impl Member {
    /// The member's metadata for `protocol`.
    pub fn metadata(&self, protocol: Option<&str>) -> Bytes {
        protocol
            .and_then(|name| self.protocols.iter().find(|p| p.name == name))
            .map(|p| p.metadata.clone())
            .unwrap_or_default()
    }

    /// Whether a rejoin brings exactly the protocols (names, order and metadata) it had.
    pub fn matches(&self, protocols: &[Protocol]) -> bool {
        self.protocols == protocols
    }

    pub fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|p| p.name == protocol)
    }
}

/// The protocols every member supports, in the first member's order of preference.
pub(crate) fn common_protocols<'a>(
    members: impl Iterator<Item = &'a Member> + Clone,
) -> Vec<String> {
    let mut all = members.clone();
    let Some(first) = all.next() else {
        return Vec::new();
    };
    first
        .protocols
        .iter()
        .map(|p| p.name.clone())
        .filter(|name| members.clone().all(|m| m.supports(name)))
        .collect()
}

/// Kafka's choice: among the protocols all members support, each member votes for the one it
/// prefers most; the most votes win, ties going to the first member's preference.
pub(crate) fn select_protocol<'a>(
    members: impl Iterator<Item = &'a Member> + Clone,
) -> Option<String> {
    let candidates = common_protocols(members.clone());
    let mut votes = vec![0usize; candidates.len()];
    for m in members {
        if let Some(i) = m
            .protocols
            .iter()
            .find_map(|p| candidates.iter().position(|c| *c == p.name))
        {
            votes[i] += 1;
        }
    }
    let best = votes.iter().copied().max()?;
    let i = votes.iter().position(|&v| v == best)?;
    candidates.get(i).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(protocols: &[&str]) -> Member {
        Member {
            id: String::new(),
            instance_id: None,
            client_id: String::new(),
            client_host: String::new(),
            session_timeout: Duration::from_secs(10),
            rebalance_timeout: Duration::from_secs(10),
            protocols: protocols
                .iter()
                .map(|n| Protocol {
                    name: (*n).into(),
                    metadata: Bytes::from(n.to_string()),
                })
                .collect(),
            assignment: Bytes::new(),
            awaiting_join: None,
            awaiting_sync: None,
            expiry: None,
        }
    }

    #[test]
    fn the_protocol_most_members_prefer_wins() {
        let ms = [
            member(&["range", "cooperative-sticky"]),
            member(&["cooperative-sticky", "range"]),
            member(&["cooperative-sticky", "range", "roundrobin"]),
        ];
        assert_eq!(
            select_protocol(ms.iter()).as_deref(),
            Some("cooperative-sticky")
        );
        assert_eq!(common_protocols(ms.iter()), ["range", "cooperative-sticky"]);
    }

    #[test]
    fn only_common_protocols_count() {
        let ms = [member(&["roundrobin", "range"]), member(&["range"])];
        assert_eq!(select_protocol(ms.iter()).as_deref(), Some("range"));
        let none = [member(&["a"]), member(&["b"])];
        assert_eq!(select_protocol(none.iter()), None);
        assert_eq!(ms[0].metadata(Some("range")), Bytes::from("range"));
        assert_eq!(ms[0].metadata(Some("x")), Bytes::new());
    }
}
