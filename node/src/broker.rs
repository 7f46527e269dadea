//! The state every request handler shares, and nothing more: settings, the metadata, this node's
//! partition actors and replica fetchers, its group coordinator, the store, and the lease that
//! lets it lead.

use std::sync::Arc;

use brook_actors::{PartitionHandle, PartitionKey, PartitionRegistry};
use brook_storage::Store;
use uuid::Uuid;

use crate::clock::Lease;
use crate::config::BrokerConfig;
use crate::groups::Coordinator;
use crate::metadata::{Metadata, MetadataImage};
use crate::replication::Followers;
use crate::shutdown::Shutdown;

pub(crate) struct Broker {
    pub config: BrokerConfig,
    pub metadata: Arc<Metadata>,
    pub partitions: PartitionRegistry,
    pub groups: Coordinator,
    /// The replica fetchers of the partitions this node follows.
    pub followers: Followers,
    pub store: Store,
    /// The Kafka listeners, in the order `listeners` gives them.
    pub listeners: Vec<Arc<Listener>>,
    /// Long polls return early once the node begins to shut down.
    pub shutdown: Shutdown,
    /// Serialises runs of [`crate::partitions::reconcile`].
    pub reconciling: tokio::sync::Mutex<()>,
    /// Renewed by each committed heartbeat; see [`Lease`].
    pub lease: Lease,
    /// Request bytes read and not yet answered, across all connections
    /// (`queued.max.request.bytes`).
    pub request_budget: Arc<tokio::sync::Semaphore>,
    /// The secret this cluster's nodes prove themselves with (Raft port and `BROOK-NODE`).
    pub cluster_secret: brook_raft::ClusterSecret,
    /// The Raft port's TLS, with `brook.raft.security.protocol=SSL` (reloaded like a listener's).
    pub raft_tls: Option<Arc<crate::security::tls::Tls>>,
    /// What `/metrics` reports.
    pub metrics: crate::metrics::Metrics,
    /// Checks OAUTHBEARER tokens, when that mechanism is enabled.
    pub jwt: Option<Arc<crate::security::oauthbearer::JwtValidator>>,
}

impl Broker {
    pub fn node_id(&self) -> i32 {
        self.config.node_id
    }

    pub fn image(&self) -> Arc<MetadataImage> {
        self.metadata.image()
    }

    /// A heartbeat sent at `sent` was committed: this node keeps leading until the lease it
    /// implies runs out.
    pub fn renew_lease(&self, sent: std::time::Instant) {
        let session = self.image().session_timeout_ms();
        let interval = self.config.cluster.heartbeat_interval_ms;
        self.lease.renew(sent, session, interval);
    }

    /// The listener other nodes fetch replicas through (`inter.broker.listener.name`).
    pub fn inter_broker(&self) -> Option<&Listener> {
        self.listeners.get(self.config.inter_broker).map(|l| &**l)
    }

    /// Where a client that connected through `listener` reaches this node.
    pub fn address(&self, listener: &str) -> Option<(&str, i32)> {
        self.listeners
            .iter()
            .find(|l| &*l.name == listener)
            .map(|l| (l.advertised.0.as_str(), l.advertised.1))
    }

    /// Decides requests against the ACLs.
    pub fn authorizer(&self) -> crate::security::authorizer::Authorizer<'_> {
        crate::security::authorizer::Authorizer {
            config: &self.config,
            metadata: &self.metadata,
        }
    }

    /// The actor of a partition this node holds a replica of.
    pub fn partition(&self, topic_id: Uuid, partition: i32) -> Option<PartitionHandle> {
        self.partitions.get(key(topic_id, partition))
    }

    /// The replication factor a topic gets when the request does not name one:
    /// `default.replication.factor`, capped at the live brokers.
    pub fn default_replication_factor(&self) -> u32 {
        let live = self.image().brokers().filter(|b| b.live).count().max(1);
        let configured = usize::try_from(self.config.default_replication_factor).unwrap_or(1);
        u32::try_from(configured.clamp(1, live)).unwrap_or(1)
    }
}

/// One Kafka listener, as its connections see it.
pub(crate) struct Listener {
    /// Its name in upper case (`PLAINTEXT`, `CLIENT`, ...).
    pub name: Arc<str>,
    pub protocol: crate::config::SecurityProtocol,
    /// The TLS configuration, on an SSL or SASL_SSL listener.
    pub tls: Option<Arc<crate::security::tls::Tls>>,
    /// The SASL mechanisms clients may use (none unless the listener speaks SASL).
    pub sasl_mechanisms: Vec<String>,
    /// The host and port a client that connected through it is told.
    pub advertised: (String, i32),
}

impl Listener {
    /// This listener's endpoint, as the broker registers it.
    pub fn endpoint(&self) -> brook_raft::Endpoint {
        brook_raft::Endpoint {
            listener: self.name.to_string(),
            host: self.advertised.0.clone(),
            port: u16::try_from(self.advertised.1).unwrap_or(0),
        }
    }
}

pub(crate) fn key(topic_id: Uuid, partition: i32) -> PartitionKey {
    PartitionKey {
        topic_id: topic_id.into_bytes(),
        partition,
    }
}
