//! The broker server: start-up and shutdown of a node ([`Node`]), the Kafka listener, the
//! connection loop, and the background tasks.
//!
//! Start-up opens the store, starts the actors, joins the metadata Raft group, binds the
//! listener and serves; shutdown stops accepting, answers the requests in flight, drains the
//! background tasks, flushes and stops the actors.

mod bootstrap_user;
mod connection;
mod listener;
mod tasks;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use brook_actors::group::GroupRegistry;
use brook_actors::{ActorSystem, PartitionRegistry};
use brook_storage::Store;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::broker::{Broker, Listener};
use crate::config::BrokerConfig;
use crate::groups::{CommitQueue, Coordinator, RaftGroupStore};
use crate::metadata::{formation, secret, Metadata};
use crate::replication::{FetcherContext, Followers};
use crate::security::oauthbearer::JwtValidator;
use crate::security::tls::Tls;
use crate::shutdown::Shutdown;
use tasks::Tasks;

/// How long shutdown waits for the background loops to finish what they are doing.
const DRAIN_GRACE: Duration = Duration::from_secs(10);

pub struct Node {
    /// The address the first listener is bound to (useful with port 0).
    pub local_addr: SocketAddr,
    /// The addresses every listener is bound to, in order.
    pub local_addrs: Vec<SocketAddr>,
    /// The address of this node's Raft port, as peers reach it.
    pub raft_addr: String,
    broker: Arc<Broker>,
    shutdown: watch::Sender<bool>,
    servers: Vec<JoinHandle<()>>,
    tasks: Tasks,
    actors: ActorSystem,
    /// Why the node can no longer serve (its Raft member stopped), once that happens.
    fatal: tokio::sync::mpsc::Receiver<String>,
}

impl Node {
    /// Start a node and return once it is part of the cluster: its Raft member is running,
    /// the cluster is formed or joined, and this broker is registered (which needs a quorum,
    /// so the first node of a new cluster waits here for the others).
    pub async fn start(config: BrokerConfig) -> anyhow::Result<Node> {
        let dir = config.log_dirs.clone();
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let store = tokio::task::spawn_blocking(move || Store::open(&dir))
            .await?
            .with_context(|| format!("opening the data directory {}", config.log_dirs.display()))?;
        let actors = ActorSystem::start(config.arbiters)?;
        let (isr_requests, isr_queue) = tokio::sync::mpsc::unbounded_channel();
        let partitions = PartitionRegistry::new(
            store.clone(),
            config.node_id,
            isr_requests,
            actors.arbiters().to_vec(),
        );
        let cluster_secret = secret::load(&config)?;
        let jwt = match &config.oauthbearer {
            Some(settings) => Some(Arc::new(
                JwtValidator::load(settings.clone())
                    .await
                    .context("sasl.oauthbearer.jwks.endpoint.url")?,
            )),
            None => None,
        };
        let raft_tls = match &config.cluster.raft_tls {
            Some(settings) => Some(Arc::new(
                Tls::load(settings.clone()).context("the Raft port's ssl.* settings")?,
            )),
            None => None,
        };
        let (raft, raft_addr) =
            formation::start_raft(&config, cluster_secret.clone(), raft_tls.clone()).await?;
        formation::form(&raft, &config, &raft_addr).await?;
        let metadata = Arc::new(Metadata::new(raft, config.values.clone()));
        let node_id = u64::try_from(config.node_id).unwrap_or_default();
        let commits = CommitQueue::start(metadata.clone(), node_id, config.groups.commit_batch_max);
        let groups = Coordinator {
            registry: GroupRegistry::new(
                Arc::new(RaftGroupStore::new(
                    metadata.clone(),
                    node_id,
                    commits.clone(),
                    config.groups.record_max_bytes,
                )),
                actors.arbiters().to_vec(),
                config.groups.coordinator,
            ),
            commits,
            config: config.groups,
            metadata: metadata.clone(),
            node_id: config.node_id,
        };
        let (sockets, listeners) = bind_listeners(&config).await?;
        let local_addrs = sockets
            .iter()
            .map(TcpListener::local_addr)
            .collect::<std::io::Result<Vec<_>>>()?;
        let local_addr = *local_addrs.first().context("no listener")?;
        let inter_broker = listeners
            .get(config.inter_broker)
            .context("no inter-broker listener")?
            .clone();
        let metrics_socket = match &config.metrics_listener {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding brook.metrics.listener {addr}"))?,
            ),
            None => None,
        };
        let request_budget = Arc::new(tokio::sync::Semaphore::new(config.queued_max_request_bytes));
        let (shutdown, signal) = Shutdown::new();
        let broker = Arc::new(Broker {
            followers: Followers::new(FetcherContext {
                node_id: config.node_id,
                metadata: metadata.clone(),
                shutdown: signal.clone(),
                secret: cluster_secret.clone(),
                tls: inter_broker.tls.clone(),
            }),
            config,
            metadata,
            partitions,
            groups,
            store,
            listeners: listeners.clone(),
            shutdown: signal,
            reconciling: tokio::sync::Mutex::new(()),
            lease: Default::default(),
            request_budget,
            cluster_secret,
            raft_tls,
            metrics: crate::metrics::Metrics::new(crate::handlers::APIS.iter().map(|a| a.key)),
            jwt,
        });
        if let Some(socket) = metrics_socket {
            tracing::info!(addr = %socket.local_addr()?, "serving /metrics");
            tokio::spawn(crate::metrics::http::serve(socket, broker.clone()));
        }
        let connections = Arc::new(tokio::sync::Semaphore::new(broker.config.max_connections));
        let servers = sockets
            .into_iter()
            .zip(listeners)
            .map(|(socket, l)| {
                tokio::spawn(listener::run(
                    socket,
                    l,
                    connections.clone(),
                    broker.clone(),
                ))
            })
            .collect();
        let (fatal_tx, fatal) = tokio::sync::mpsc::channel(1);
        let mut node = Node {
            local_addr,
            local_addrs,
            raft_addr,
            broker: broker.clone(),
            shutdown,
            servers,
            tasks: Tasks::start(&broker, isr_queue, fatal_tx),
            actors,
            fatal,
        };
        if let Err(e) = tasks::membership::register(&broker).await {
            let _ = node.shutdown().await;
            return Err(e);
        }
        if let Err(e) = bootstrap_user::create(&broker).await {
            let _ = node.shutdown().await;
            return Err(e.context("creating brook.sasl.bootstrap.user"));
        }
        node.tasks.start_heartbeat(&broker);
        // Ready means ready: the partitions this node leads have their actors (with the roles
        // the registration gave them) before the node says so, so a client that connects at
        // once is not sent away with NOT_LEADER_OR_FOLLOWER.
        crate::partitions::reconcile_or_log(&broker).await;
        tracing::info!(
            node = broker.node_id(),
            listeners = %broker
                .listeners
                .iter()
                .zip(&node.local_addrs)
                .map(|(l, bound)| format!("{}://{bound} (advertised {}:{})", l.name, l.advertised.0, l.advertised.1))
                .collect::<Vec<_>>()
                .join(", "),
            raft = %node.raft_addr,
            topics = broker.image().topics().count(),
            "node started"
        );
        Ok(node)
    }

    /// Returns once the node can no longer serve, with the reason; the caller shuts it down
    /// and exits with an error.
    pub async fn failed(&mut self) -> String {
        self.fatal
            .recv()
            .await
            .unwrap_or_else(|| "the node's health watch ended".to_string())
    }

    /// The first listener's advertised address (the one scripts and tests connect to).
    pub fn advertised(&self) -> (String, i32) {
        self.broker
            .listeners
            .first()
            .map_or_else(|| (String::new(), 0), |l| l.advertised.clone())
    }

    /// Graceful stop: no new connections or requests, in-flight requests answered, data
    /// flushed, the Raft member stopped.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        for server in self.servers {
            if let Err(e) = server.await {
                tracing::error!(error = %e, "listener task failed");
            }
        }
        self.tasks.drain(DRAIN_GRACE).await;
        self.broker.followers.stop();
        self.broker.store.flush().await.context("final flush")?;
        if let Err(e) = self.broker.metadata.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown failed");
        }
        let actors = self.actors;
        tokio::task::spawn_blocking(move || actors.shutdown()).await?;
        tracing::info!("node stopped");
        Ok(())
    }
}

/// Binds every listener, loads its TLS key material, and works out what it advertises (its
/// `advertised.listeners` entry, else the bound address).
async fn bind_listeners(
    config: &BrokerConfig,
) -> anyhow::Result<(Vec<TcpListener>, Vec<Arc<Listener>>)> {
    let mut sockets = Vec::new();
    let mut listeners = Vec::new();
    for l in &config.listeners {
        let tls = match &l.tls {
            Some(settings) => Some(Arc::new(
                Tls::load(settings.clone())
                    .with_context(|| format!("the ssl.* settings of listener {}", l.name))?,
            )),
            None => None,
        };
        let socket = TcpListener::bind(l.bind)
            .await
            .with_context(|| format!("binding listener {} on {}", l.name, l.bind))?;
        let bound = socket.local_addr()?;
        let advertised = match &l.advertised {
            Some((host, port)) => (host.clone(), i32::from(*port)),
            None if bound.ip().is_unspecified() => {
                tracing::warn!(listener = %l.name, "listening on all interfaces without advertised.listeners; advertising 127.0.0.1");
                ("127.0.0.1".to_string(), i32::from(bound.port()))
            }
            None => (bound.ip().to_string(), i32::from(bound.port())),
        };
        sockets.push(socket);
        listeners.push(Arc::new(Listener {
            name: Arc::from(l.name.as_str()),
            protocol: l.protocol,
            tls,
            sasl_mechanisms: l.sasl_mechanisms.clone(),
            advertised,
        }));
    }
    Ok((sockets, listeners))
}
