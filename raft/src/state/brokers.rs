//! The cluster's settings and its brokers: registration, heartbeats, and the liveness judged
//! from them. A change in who is live is what moves partition leaders (an election) and
//! consumer groups (a new placement epoch), so every command here ends by reacting to one.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::replicas::Election;
use super::{reject, MetadataState};
use crate::codes;
use crate::command::{CommandOutput, CommandResult, Endpoint};

/// Kafka's `broker.session.timeout.ms` default: a broker whose last heartbeat is older than
/// this (relative to the newest heartbeat in the log) is not live.
pub const DEFAULT_SESSION_TIMEOUT_MS: u64 = 9_000;

/// At most this many endpoints per broker (its listeners).
pub const MAX_ENDPOINTS: usize = 16;
/// The longest listener name an endpoint may carry.
pub const MAX_LISTENER_NAME_BYTES: usize = 64;
/// The longest host name (DNS's limit).
pub const MAX_HOST_BYTES: usize = 255;

/// A registered broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerState {
    pub id: u64,
    /// Where other nodes reach it (its inter-broker listener).
    pub host: String,
    pub port: u16,
    /// Every listener's advertised address; a client is told the one of the listener it
    /// connected through.
    pub endpoints: Vec<Endpoint>,
    pub rack: Option<String>,
    pub epoch: i64,
    /// Time of the newest heartbeat (or of the registration), in the log's clock.
    pub last_heartbeat_ms: u64,
}

impl MetadataState {
    /// The cluster id, once the cluster was initialized.
    pub fn cluster_id(&self) -> Option<&str> {
        self.cluster_id.as_deref()
    }

    /// How long a broker may go without a heartbeat before it is considered down.
    /// The log's clock: the newest liveness stamp applied.
    pub fn clock_ms(&self) -> u64 {
        self.clock_ms
    }

    pub fn session_timeout_ms(&self) -> u64 {
        self.session_timeout_ms
    }

    /// All registered brokers, by id.
    pub fn brokers(&self) -> &BTreeMap<u64, BrokerState> {
        &self.brokers
    }

    pub fn broker(&self, id: u64) -> Option<&BrokerState> {
        self.brokers.get(&id)
    }

    /// Whether `id` is registered and heartbeated within the session timeout of the newest
    /// heartbeat in the log.
    pub fn is_live(&self, id: u64) -> bool {
        self.brokers.get(&id).is_some_and(|b| self.live(b))
    }

    /// Live brokers in id order.
    pub fn live_brokers(&self) -> impl Iterator<Item = &BrokerState> {
        self.brokers.values().filter(|b| self.live(b))
    }

    /// The ids of the live brokers, as a set: what elections test replicas against.
    pub(super) fn live_ids(&self) -> BTreeSet<u64> {
        self.live_brokers().map(|b| b.id).collect()
    }

    fn live(&self, b: &BrokerState) -> bool {
        self.grace.as_ref().is_some_and(|g| g.contains(&b.id))
            || self.clock_ms.saturating_sub(b.last_heartbeat_ms) <= self.session_timeout_ms
    }

    /// A new leader term began (its first, blank, entry was applied). Heartbeats stall while
    /// the group elects a leader, so without a grace period the first heartbeat after a long
    /// election would declare every other broker down. The brokers live now stay live until
    /// the new leader renews their sessions ([`crate::MetadataCommand::RenewSessions`]);
    /// KRaft's controller likewise restarts the session timers when it takes over.
    pub fn new_term(&mut self) {
        self.grace = Some(self.live_ids());
    }

    /// Whether a new term's leader has yet to renew the sessions.
    pub fn sessions_need_renewal(&self) -> bool {
        self.grace.is_some()
    }

    /// `InitCluster`: only the first one sets the id and the session timeout.
    pub(super) fn apply_init_cluster(
        &mut self,
        cluster_id: &str,
        session_timeout_ms: u64,
    ) -> CommandResult {
        if self.cluster_id.is_none() {
            if cluster_id.is_empty() || session_timeout_ms == 0 {
                return reject(
                    codes::INVALID_REQUEST,
                    "a cluster needs an id and a positive session timeout",
                );
            }
            self.cluster_id = Some(cluster_id.to_owned());
            self.session_timeout_ms = session_timeout_ms;
        }
        self.follow_liveness();
        Ok(CommandOutput::Done)
    }

    /// `RegisterBroker`: a newer epoch replaces the registration (a restart), the same epoch is
    /// a retry, an older one is stale.
    // The command's fields, one for one, as every other `apply_*` takes them.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn apply_register_broker(
        &mut self,
        id: u64,
        host: &str,
        port: u16,
        endpoints: &[Endpoint],
        rack: &Option<String>,
        epoch: i64,
        at_ms: u64,
    ) -> CommandResult {
        if let Err(why) = check_address(host, port).and_then(|()| check_endpoints(endpoints)) {
            return reject(codes::INVALID_REQUEST, format!("broker {id}: {why}"));
        }
        let mut restarted = false;
        if let Some(old) = self.brokers.get(&id) {
            if epoch < old.epoch {
                return reject(
                    codes::STALE_BROKER_EPOCH,
                    format!("broker {id}: epoch {epoch} is older than {}", old.epoch),
                );
            }
            restarted = old.epoch < epoch;
        }
        // A (re)registration counts as a heartbeat. Liveness is judged against the newest
        // heartbeat time in the log, so without this a broker registering before any
        // heartbeat (or after a long outage) would look down until its first heartbeat.
        let at = self.clock_ms.max(at_ms);
        self.clock_ms = at;
        self.brokers.insert(
            id,
            BrokerState {
                id,
                host: host.to_owned(),
                port,
                endpoints: endpoints.to_vec(),
                rack: rack.clone(),
                epoch,
                last_heartbeat_ms: at,
            },
        );
        if restarted {
            self.elect_all(|_| Election::Restarted(id));
        }
        self.follow_liveness();
        Ok(CommandOutput::Done)
    }

    /// `BrokerHeartbeat`: the broker is alive at `at_ms`; times never move backwards.
    pub(super) fn apply_broker_heartbeat(&mut self, id: u64, at_ms: u64) -> CommandResult {
        let Some(broker) = self.brokers.get_mut(&id) else {
            return reject(
                codes::BROKER_ID_NOT_REGISTERED,
                format!("broker {id} is not registered"),
            );
        };
        broker.last_heartbeat_ms = broker.last_heartbeat_ms.max(at_ms);
        self.clock_ms = self.clock_ms.max(at_ms);
        self.follow_liveness();
        Ok(CommandOutput::Done)
    }

    /// `RenewSessions`: the new term's leader gives every broker live at the start of the term
    /// a fresh session from its clock, ending the grace period.
    pub(super) fn apply_renew_sessions(&mut self, at_ms: u64) -> CommandResult {
        if let Some(grace) = self.grace.take() {
            for id in grace {
                if let Some(b) = self.brokers.get_mut(&id) {
                    b.last_heartbeat_ms = b.last_heartbeat_ms.max(at_ms);
                }
            }
            self.clock_ms = self.clock_ms.max(at_ms);
        }
        self.follow_liveness();
        Ok(CommandOutput::Done)
    }

    /// React to a possible change of the live brokers: a new placement epoch for the groups,
    /// and elections for the partitions (the controller's reaction to brokers coming and
    /// going).
    fn follow_liveness(&mut self) {
        if self.note_placement() {
            self.elect_all(|topic| Election::Liveness {
                unclean: topic.unclean_election(),
            });
        }
    }
}

fn check_address(host: &str, port: u16) -> Result<(), String> {
    if host.is_empty() || host.len() > MAX_HOST_BYTES || port == 0 {
        return Err(format!(
            "needs a host of 1 to {MAX_HOST_BYTES} bytes and a port"
        ));
    }
    Ok(())
}

/// At most [`MAX_ENDPOINTS`], each with a distinct listener name of 1 to
/// [`MAX_LISTENER_NAME_BYTES`] bytes and an address.
fn check_endpoints(endpoints: &[Endpoint]) -> Result<(), String> {
    if endpoints.len() > MAX_ENDPOINTS {
        return Err(format!("at most {MAX_ENDPOINTS} endpoints"));
    }
    for (i, e) in endpoints.iter().enumerate() {
        if e.listener.is_empty() || e.listener.len() > MAX_LISTENER_NAME_BYTES {
            return Err(format!(
                "a listener name has 1 to {MAX_LISTENER_NAME_BYTES} bytes"
            ));
        }
        if endpoints[..i].iter().any(|o| o.listener == e.listener) {
            return Err(format!("listener {} is given twice", e.listener));
        }
        check_address(&e.host, e.port)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::MetadataCommand;
    use crate::state::testkit::*;

    #[test]
    fn only_the_first_init_cluster_applies() {
        let mut s = MetadataState::default();
        assert_eq!(s.cluster_id(), None);
        assert_rejected(
            &mut s,
            MetadataCommand::InitCluster {
                cluster_id: String::new(),
                session_timeout_ms: 5_000,
            },
            codes::INVALID_REQUEST,
        );
        let init = |id: &str, timeout| MetadataCommand::InitCluster {
            cluster_id: id.into(),
            session_timeout_ms: timeout,
        };
        assert_eq!(s.apply(&init("a", 5_000)), Ok(CommandOutput::Done));
        assert_eq!(s.apply(&init("b", 7_000)), Ok(CommandOutput::Done));
        assert_eq!((s.cluster_id(), s.session_timeout_ms()), (Some("a"), 5_000));
    }

    #[test]
    fn register_broker_and_reregister() {
        let mut s = with_brokers(&[1, 2]);
        assert_eq!(s.brokers().len(), 2);
        assert_eq!(s.broker(1).unwrap().host, "host1");
        // A newer epoch replaces the registration.
        let newer = MetadataCommand::RegisterBroker {
            id: 1,
            host: "new".into(),
            port: 9093,
            endpoints: Vec::new(),
            rack: Some("r1".into()),
            epoch: 2,
            at_ms: 0,
        };
        s.apply(&newer).unwrap();
        let b = s.broker(1).unwrap();
        assert_eq!((b.host.as_str(), b.port, b.epoch), ("new", 9093, 2));
        assert_eq!(b.rack.as_deref(), Some("r1"));
        // The same epoch again is an idempotent retry.
        s.apply(&newer).unwrap();
    }

    #[test]
    fn register_broker_rejections() {
        let mut s = with_brokers(&[1]);
        s.apply(&MetadataCommand::RegisterBroker {
            id: 1,
            host: "h".into(),
            port: 1,
            endpoints: Vec::new(),
            rack: None,
            epoch: 5,
            at_ms: 0,
        })
        .unwrap();
        let stale = MetadataCommand::RegisterBroker {
            id: 1,
            host: "h".into(),
            port: 1,
            endpoints: Vec::new(),
            rack: None,
            epoch: 4,
            at_ms: 0,
        };
        assert_rejected(&mut s, stale, codes::STALE_BROKER_EPOCH);
        let no_host = MetadataCommand::RegisterBroker {
            id: 2,
            host: String::new(),
            port: 1,
            endpoints: Vec::new(),
            rack: None,
            epoch: 0,
            at_ms: 0,
        };
        assert_rejected(&mut s, no_host, codes::INVALID_REQUEST);
        let no_port = MetadataCommand::RegisterBroker {
            id: 2,
            host: "h".into(),
            port: 0,
            endpoints: Vec::new(),
            rack: None,
            epoch: 0,
            at_ms: 0,
        };
        assert_rejected(&mut s, no_port, codes::INVALID_REQUEST);
        let with = |endpoints: Vec<Endpoint>| MetadataCommand::RegisterBroker {
            id: 2,
            host: "h".into(),
            port: 1,
            endpoints,
            rack: None,
            epoch: 0,
            at_ms: 0,
        };
        let endpoint = |listener: &str, host: &str, port| Endpoint {
            listener: listener.into(),
            host: host.into(),
            port,
        };
        let twice = vec![endpoint("A", "h", 1), endpoint("A", "h", 2)];
        assert_rejected(&mut s, with(twice), codes::INVALID_REQUEST);
        let nameless = vec![endpoint("", "h", 1)];
        assert_rejected(&mut s, with(nameless), codes::INVALID_REQUEST);
        let long_host = vec![endpoint("A", &"h".repeat(MAX_HOST_BYTES + 1), 1)];
        assert_rejected(&mut s, with(long_host), codes::INVALID_REQUEST);
        let many = (0..=MAX_ENDPOINTS)
            .map(|i| endpoint(&format!("L{i}"), "h", 1))
            .collect();
        assert_rejected(&mut s, with(many), codes::INVALID_REQUEST);
        let two = vec![endpoint("A", "a", 1), endpoint("B", "b", 2)];
        s.apply(&with(two.clone())).unwrap();
        assert_eq!(s.broker(2).unwrap().endpoints, two);
    }

    #[test]
    fn heartbeats_decide_liveness() {
        let mut s = with_brokers(&[1, 2, 3]);
        let hb = |id, at_ms| MetadataCommand::BrokerHeartbeat { id, at_ms };
        s.apply(&hb(1, 100_000)).unwrap();
        s.apply(&hb(2, 95_000)).unwrap();
        // Broker 3 never heartbeated: 100 s behind the log's clock.
        assert!(s.is_live(1) && s.is_live(2) && !s.is_live(3));
        let live: Vec<u64> = s.live_brokers().map(|b| b.id).collect();
        assert_eq!(live, vec![1, 2]);
        // A late heartbeat with an older time does not move anything backwards.
        s.apply(&hb(1, 50_000)).unwrap();
        assert_eq!(s.broker(1).unwrap().last_heartbeat_ms, 100_000);
        // Re-registration makes a broker live again.
        s.apply(&MetadataCommand::RegisterBroker {
            id: 3,
            host: "h".into(),
            port: 1,
            endpoints: Vec::new(),
            rack: None,
            epoch: 2,
            at_ms: 0,
        })
        .unwrap();
        assert!(s.is_live(3));
        assert_rejected(&mut s, hb(9, 1), codes::BROKER_ID_NOT_REGISTERED);
        // A registration is a heartbeat at its own time: live at once, and the clock moves.
        s.apply(&MetadataCommand::RegisterBroker {
            id: 4,
            host: "h".into(),
            port: 1,
            endpoints: Vec::new(),
            rack: None,
            epoch: 1,
            at_ms: 200_000,
        })
        .unwrap();
        assert!(s.is_live(4) && !s.is_live(1));
    }

    #[test]
    fn a_new_term_renews_the_sessions_of_live_brokers() {
        let mut s = with_brokers(&[1, 2, 3]);
        s.apply(&create_rf("t", 1, 3, 3)).unwrap();
        let before = s.topic("t").unwrap().clone();
        // The group had no leader for longer than the session timeout; heartbeats stamped
        // before and during the election arrive late, out of order.
        s.new_term();
        assert!(s.sessions_need_renewal());
        s.apply(&heartbeat(1, 20_000)).unwrap();
        s.apply(&heartbeat(2, 5_000)).unwrap();
        assert!(s.is_live(2) && s.is_live(3));
        assert_eq!(s.topic("t").unwrap(), &before, "nobody lost leadership");
        // The new leader renews every session from its clock.
        s.apply(&MetadataCommand::RenewSessions { at_ms: 21_000 })
            .unwrap();
        assert!(!s.sessions_need_renewal());
        s.apply(&heartbeat(1, 29_000)).unwrap();
        assert!(s.is_live(2) && s.is_live(3));
        assert_eq!(s.topic("t").unwrap(), &before);
        // Without a new term, a silent broker is declared down.
        s.apply(&heartbeat(1, 31_000)).unwrap();
        s.apply(&heartbeat(2, 31_000)).unwrap();
        assert!(!s.is_live(3) && s.is_live(2));
    }
}
