//! Broker settings, by Kafka's names where Kafka has one.
//!
//! Values come from, in rising precedence: built-in defaults, an optional TOML file, `BROOK_*`
//! environment variables (`BROOK_NUM_PARTITIONS=3` sets `num.partitions`) and command-line flags.
//!
//! - [`settings`]: the table of broker settings and their defaults.
//! - [`listeners`]: the listeners, their protocols and advertised addresses.
//! - [`tls`]: the `ssl.*` settings of a TLS listener.
//! - [`topic`]: topic settings, resolved from a topic's own configs and the broker's defaults.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context};

pub mod listeners;
pub mod settings;
pub mod tls;
pub mod topic;

pub use listeners::{ListenerConfig, SecurityProtocol};
pub use settings::{Kind, Setting, Source, Values, SETTINGS};
use topic::TopicConfig;

/// The settings in force, as strings by name (for DescribeConfigs) and typed (for the code).
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub values: Values,
    /// The settings a topic that sets none of its own gets (validated at start).
    pub topic_defaults: TopicConfig,
    pub node_id: i32,
    /// `listeners`, in order (never empty).
    pub listeners: Vec<ListenerConfig>,
    /// Which of them other nodes use (`inter.broker.listener.name`, default the first).
    pub inter_broker: usize,
    /// `brook.metrics.listener`: where `/metrics` is served (`None`: nowhere).
    pub metrics_listener: Option<String>,
    /// How OAUTHBEARER tokens are checked, when it is enabled.
    pub oauthbearer: Option<crate::security::oauthbearer::OAuthSettings>,
    /// The user `brook.sasl.bootstrap.user` creates, with its password, if it has no
    /// credentials yet.
    pub sasl_bootstrap: Option<(String, String)>,
    pub failed_auth_delay_ms: u64,
    /// `connections.max.reauth.ms` (0: sessions last as long as their connection).
    pub reauth_ms: u64,
    /// `super.users`: principals (`User:alice`) allowed everything.
    pub super_users: Vec<String>,
    /// Whether `authorizer.class.name` turns ACLs on.
    pub authorizer: bool,
    /// `allow.everyone.if.no.acl.found`.
    pub allow_if_no_acl: bool,
    pub log_dirs: PathBuf,
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub auto_create_topics: bool,
    pub socket_request_max_bytes: usize,
    pub fetch_max_bytes: usize,
    pub queued_max_request_bytes: usize,
    pub connections_max_idle_ms: u64,
    pub request_receive_timeout_ms: u64,
    pub max_connections: usize,
    pub max_inflight_per_connection: usize,
    pub retention_check_interval_ms: u64,
    pub arbiters: usize,
    /// `brook.ack.before.flush`: answer acks=1/all before the flush (unsafe on a crash).
    pub ack_before_flush: bool,
    pub replica_lag_max_ms: i64,
    pub auto_leader_rebalance: bool,
    pub leader_imbalance_check_interval_ms: u64,
    pub cluster: ClusterConfig,
    pub groups: GroupConfig,
}

/// The group coordinator's settings.
#[derive(Debug, Clone, Copy)]
pub struct GroupConfig {
    pub coordinator: brook_actors::group::CoordinatorConfig,
    pub offsets_retention_ms: u64,
    pub retention_check_interval_ms: u64,
    pub offset_metadata_max_bytes: usize,
    pub record_max_bytes: u64,
    pub commit_batch_max: usize,
}

/// How this node takes part in the cluster and its metadata Raft group.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub rack: Option<String>,
    /// The Raft port's address; `None` means "from the voters list, else 127.0.0.1:0".
    pub raft_listener: Option<String>,
    /// The initial members (`controller.quorum.voters`), by node id.
    pub voters: BTreeMap<u64, String>,
    /// Raft addresses of a running cluster to join (`controller.quorum.bootstrap.servers`).
    pub join: Vec<String>,
    pub election_timeout_ms: u64,
    pub raft_heartbeat_ms: u64,
    pub snapshot_interval_entries: u64,
    pub max_voters: usize,
    pub heartbeat_interval_ms: u64,
    pub session_timeout_ms: u64,
    /// Where the cluster secret comes from (see `metadata::secret`).
    pub secret: SecretSource,
    /// With `brook.raft.security.protocol=SSL`: mutual TLS on the Raft port, with the node's
    /// `ssl.*` key material (client certificates always required).
    pub raft_tls: Option<tls::TlsSettings>,
}

/// Where a node finds the cluster secret.
#[derive(Clone)]
pub enum SecretSource {
    /// `brook.cluster.secret`.
    Inline(String),
    /// `brook.cluster.secret.file`.
    File(PathBuf),
    /// Neither set: `<log.dirs>/cluster.secret`.
    DataDir,
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::Inline(_) => f.write_str("Inline(..)"),
            SecretSource::File(path) => write!(f, "File({})", path.display()),
            SecretSource::DataDir => f.write_str("DataDir"),
        }
    }
}

impl BrokerConfig {
    /// Builds the configuration from layered sources; later layers win.
    pub fn load(
        file: Option<&std::path::Path>,
        env: impl IntoIterator<Item = (String, String)>,
        flags: &[(String, String)],
    ) -> anyhow::Result<Self> {
        let mut values: Values = SETTINGS
            .iter()
            .map(|s| (s.name.to_string(), (s.default.to_string(), Source::Default)))
            .collect();
        let mut set = |name: String, value: String, origin: &str| -> anyhow::Result<()> {
            let known = |n: &str| SETTINGS.iter().any(|s| s.name == n);
            if !known(&name) && !listeners::is_override(&name, known) {
                bail!("unknown setting `{name}` ({origin})");
            }
            values.insert(name, (value, Source::Static));
            Ok(())
        };
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let table: toml::Table =
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
            let mut flat = Vec::new();
            flatten_toml("", &table, &mut flat);
            for (name, value) in flat {
                set(name, value, "config file")?;
            }
        }
        for (key, value) in env {
            let Some(rest) = key.strip_prefix("BROOK_") else {
                continue;
            };
            let name = rest.to_ascii_lowercase().replace('_', ".");
            // Other BROOK_* variables (BROOK_LOG, BROOK_BIN, ...) are not settings.
            if SETTINGS.iter().any(|s| s.name == name) {
                set(name, value, "environment")?;
            }
        }
        for (name, value) in flags {
            set(name.clone(), value.clone(), "command line")?;
        }
        Self::from_values(values)
    }

    fn from_values(values: Values) -> anyhow::Result<Self> {
        let get = |name: &str| values.get(name).map(|(v, _)| v.as_str()).unwrap_or("");
        let (listeners, inter_broker) = listeners::parse(&values)?;
        let oauthbearer = if listeners
            .iter()
            .any(|l| l.sasl_mechanisms.iter().any(|m| m == "OAUTHBEARER"))
        {
            Some(oauth_settings(&get)?)
        } else {
            None
        };
        let sasl_bootstrap = match (
            get("brook.sasl.bootstrap.user"),
            get("brook.sasl.bootstrap.password"),
        ) {
            ("", "") => None,
            ("", _) | (_, "") => {
                bail!("brook.sasl.bootstrap.user and brook.sasl.bootstrap.password go together")
            }
            (user, password) => Some((user.to_string(), password.to_string())),
        };
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let arbiters: usize = parse(get("brook.arbiters"), "brook.arbiters")?;
        // Topic defaults are validated the way topic configs are, so a bad default fails at start.
        let topic_defaults =
            TopicConfig::resolve(&values, &BTreeMap::new()).map_err(|e| anyhow::anyhow!("{e}"))?;
        let config = BrokerConfig {
            topic_defaults,
            node_id: parse(get("node.id"), "node.id")?,
            listeners,
            inter_broker,
            metrics_listener: Some(get("brook.metrics.listener").trim().to_string())
                .filter(|l| !l.is_empty()),
            oauthbearer,
            sasl_bootstrap,
            failed_auth_delay_ms: parse(
                get("connection.failed.authentication.delay.ms"),
                "connection.failed.authentication.delay.ms",
            )?,
            reauth_ms: parse(
                get("connections.max.reauth.ms"),
                "connections.max.reauth.ms",
            )?,
            super_users: get("super.users")
                .split(';')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect(),
            authorizer: authorizer(get("authorizer.class.name"))?,
            allow_if_no_acl: parse(
                get("allow.everyone.if.no.acl.found"),
                "allow.everyone.if.no.acl.found",
            )?,
            log_dirs: PathBuf::from(get("log.dirs")),
            num_partitions: positive(get("num.partitions"), "num.partitions")?,
            default_replication_factor: parse(
                get("default.replication.factor"),
                "default.replication.factor",
            )?,
            auto_create_topics: parse(
                get("auto.create.topics.enable"),
                "auto.create.topics.enable",
            )?,
            socket_request_max_bytes: positive(
                get("socket.request.max.bytes"),
                "socket.request.max.bytes",
            )?,
            fetch_max_bytes: positive(get("fetch.max.bytes"), "fetch.max.bytes")?,
            queued_max_request_bytes: positive(
                get("queued.max.request.bytes"),
                "queued.max.request.bytes",
            )?,
            connections_max_idle_ms: positive(
                get("connections.max.idle.ms"),
                "connections.max.idle.ms",
            )?,
            request_receive_timeout_ms: positive(
                get("brook.request.receive.timeout.ms"),
                "brook.request.receive.timeout.ms",
            )?,
            max_connections: positive(get("max.connections"), "max.connections")?,
            max_inflight_per_connection: positive(
                get("brook.max.inflight.requests.per.connection"),
                "brook.max.inflight.requests.per.connection",
            )?,
            retention_check_interval_ms: positive(
                get("log.retention.check.interval.ms"),
                "log.retention.check.interval.ms",
            )?,
            arbiters: if arbiters == 0 { cores } else { arbiters },
            ack_before_flush: parse(get("brook.ack.before.flush"), "brook.ack.before.flush")?,
            replica_lag_max_ms: positive(
                get("replica.lag.time.max.ms"),
                "replica.lag.time.max.ms",
            )?,
            auto_leader_rebalance: parse(
                get("auto.leader.rebalance.enable"),
                "auto.leader.rebalance.enable",
            )?,
            leader_imbalance_check_interval_ms: positive::<u64>(
                get("leader.imbalance.check.interval.seconds"),
                "leader.imbalance.check.interval.seconds",
            )?
            .saturating_mul(1000),
            cluster: ClusterConfig::from_values(&get)?,
            groups: GroupConfig::from_values(&get)?,
            values,
        };
        if config.queued_max_request_bytes < config.socket_request_max_bytes {
            bail!(
                "queued.max.request.bytes ({}) must be at least socket.request.max.bytes ({}), or a largest request could never be read",
                config.queued_max_request_bytes,
                config.socket_request_max_bytes
            );
        }
        Ok(config)
    }

    /// A setting's value as text ("" when unset).
    pub fn value(&self, name: &str) -> &str {
        self.values.get(name).map_or("", |(v, _)| v.as_str())
    }
}

impl GroupConfig {
    fn from_values<'a>(get: &impl Fn(&str) -> &'a str) -> anyhow::Result<Self> {
        let min_session_timeout_ms: i32 = positive(
            get("group.min.session.timeout.ms"),
            "group.min.session.timeout.ms",
        )?;
        let max_session_timeout_ms: i32 = positive(
            get("group.max.session.timeout.ms"),
            "group.max.session.timeout.ms",
        )?;
        if min_session_timeout_ms > max_session_timeout_ms {
            bail!("group.min.session.timeout.ms must not exceed group.max.session.timeout.ms");
        }
        let retention_minutes: u64 = positive(
            get("offsets.retention.minutes"),
            "offsets.retention.minutes",
        )?;
        Ok(GroupConfig {
            coordinator: brook_actors::group::CoordinatorConfig {
                min_session_timeout_ms,
                max_session_timeout_ms,
                initial_rebalance_delay_ms: parse(
                    get("group.initial.rebalance.delay.ms"),
                    "group.initial.rebalance.delay.ms",
                )?,
            },
            offsets_retention_ms: retention_minutes.saturating_mul(60_000),
            retention_check_interval_ms: positive(
                get("offsets.retention.check.interval.ms"),
                "offsets.retention.check.interval.ms",
            )?,
            offset_metadata_max_bytes: parse(
                get("offset.metadata.max.bytes"),
                "offset.metadata.max.bytes",
            )?,
            record_max_bytes: positive(
                get("brook.group.record.max.bytes"),
                "brook.group.record.max.bytes",
            )?,
            commit_batch_max: positive(
                get("brook.offsets.commit.batch.max"),
                "brook.offsets.commit.batch.max",
            )?,
        })
    }
}

impl ClusterConfig {
    fn from_values<'a>(get: &impl Fn(&str) -> &'a str) -> anyhow::Result<Self> {
        let non_empty = |text: &str| Some(text.trim().to_string()).filter(|t| !t.is_empty());
        let election_timeout_ms: u64 = positive(
            get("controller.quorum.election.timeout.ms"),
            "controller.quorum.election.timeout.ms",
        )?;
        let raft_heartbeat_ms: u64 = positive(
            get("brook.raft.heartbeat.interval.ms"),
            "brook.raft.heartbeat.interval.ms",
        )?;
        if raft_heartbeat_ms >= election_timeout_ms {
            bail!("brook.raft.heartbeat.interval.ms must be below controller.quorum.election.timeout.ms");
        }
        let heartbeat_interval_ms: u64 = positive(
            get("broker.heartbeat.interval.ms"),
            "broker.heartbeat.interval.ms",
        )?;
        let session_timeout_ms: u64 = positive(
            get("broker.session.timeout.ms"),
            "broker.session.timeout.ms",
        )?;
        if heartbeat_interval_ms >= session_timeout_ms {
            bail!("broker.heartbeat.interval.ms must be below broker.session.timeout.ms");
        }
        let max_voters: usize = positive(get("brook.raft.max.voters"), "brook.raft.max.voters")?;
        if max_voters.is_multiple_of(2) {
            bail!("brook.raft.max.voters must be odd (3 or 5), got {max_voters}");
        }
        Ok(ClusterConfig {
            rack: non_empty(get("broker.rack")),
            raft_listener: non_empty(get("brook.raft.listener")),
            voters: parse_voters(get("controller.quorum.voters"))?,
            join: get("controller.quorum.bootstrap.servers")
                .split(',')
                .filter_map(non_empty)
                .collect(),
            election_timeout_ms,
            raft_heartbeat_ms,
            snapshot_interval_entries: positive(
                get("brook.raft.snapshot.interval.entries"),
                "brook.raft.snapshot.interval.entries",
            )?,
            max_voters,
            heartbeat_interval_ms,
            session_timeout_ms,
            raft_tls: raft_tls(get)?,
            secret: match (
                get("brook.cluster.secret"),
                get("brook.cluster.secret.file"),
            ) {
                ("", "") => SecretSource::DataDir,
                (text, "") => SecretSource::Inline(text.to_string()),
                ("", path) => SecretSource::File(PathBuf::from(path)),
                _ => bail!("set brook.cluster.secret or brook.cluster.secret.file, not both"),
            },
        })
    }
}

/// `brook.raft.security.protocol`: PLAINTEXT (authenticated by the cluster secret, not
/// encrypted) or SSL (mutual TLS with the truststore's CAs, the cluster secret inside it).
fn raft_tls<'a>(get: &impl Fn(&str) -> &'a str) -> anyhow::Result<Option<tls::TlsSettings>> {
    match get("brook.raft.security.protocol")
        .trim()
        .to_ascii_uppercase()
        .as_str()
    {
        "" | "PLAINTEXT" => Ok(None),
        "SSL" => {
            let mut settings = tls::TlsSettings::from_values(get)
                .context("brook.raft.security.protocol=SSL takes the node's ssl.* settings")?;
            if settings.truststore.is_none() {
                bail!("brook.raft.security.protocol=SSL needs ssl.truststore.location: the CA every node's certificate is checked against");
            }
            settings.client_auth = tls::ClientAuth::Required;
            Ok(Some(settings))
        }
        other => bail!("brook.raft.security.protocol={other}: PLAINTEXT or SSL"),
    }
}

/// `1@host:port,2@host:port` (Kafka's `controller.quorum.voters` format).
pub fn parse_voters(text: &str) -> anyhow::Result<BTreeMap<u64, String>> {
    let mut voters = BTreeMap::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (id, addr) = entry
            .split_once('@')
            .ok_or_else(|| anyhow::anyhow!("voter `{entry}` is not id@host:port"))?;
        let id: u64 = parse(id, "controller.quorum.voters")?;
        if !addr.contains(':') {
            bail!("voter `{entry}` has no port");
        }
        if voters.insert(id, addr.to_string()).is_some() {
            bail!("voter id {id} appears twice in controller.quorum.voters");
        }
    }
    Ok(voters)
}

fn flatten_toml(prefix: &str, table: &toml::Table, out: &mut Vec<(String, String)>) {
    for (key, value) in table {
        let name = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(inner) => flatten_toml(&name, inner, out),
            toml::Value::String(s) => out.push((name, s.clone())),
            other => out.push((name, other.to_string())),
        }
    }
}

fn parse<T: std::str::FromStr>(text: &str, name: &str) -> anyhow::Result<T> {
    text.trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("setting `{name}`: cannot parse `{text}`"))
}

fn positive<T: std::str::FromStr + PartialOrd + Default>(
    text: &str,
    name: &str,
) -> anyhow::Result<T> {
    let value: T = parse(text, name)?;
    if value <= T::default() {
        bail!("setting `{name}` must be positive, got `{text}`");
    }
    Ok(value)
}

/// The `sasl.oauthbearer.*` settings; the JWKS is a file or an `https://` endpoint, whose
/// server certificate must chain to `brook.sasl.oauthbearer.jwks.ca.location`.
fn oauth_settings<'a>(
    get: &impl Fn(&str) -> &'a str,
) -> anyhow::Result<crate::security::oauthbearer::OAuthSettings> {
    let url = get("sasl.oauthbearer.jwks.endpoint.url").trim();
    if url.is_empty() {
        bail!("OAUTHBEARER needs sasl.oauthbearer.jwks.endpoint.url (a JWKS file or https:// URL)");
    }
    let ca = PathBuf::from(get("brook.sasl.oauthbearer.jwks.ca.location").trim());
    let jwks = crate::security::jwks::JwksSource::parse(url, ca)
        .context("sasl.oauthbearer.jwks.endpoint.url")?;
    let text = |name: &str| Some(get(name).trim().to_string()).filter(|v| !v.is_empty());
    Ok(crate::security::oauthbearer::OAuthSettings {
        jwks,
        refresh_ms: positive(
            get("sasl.oauthbearer.jwks.endpoint.refresh.ms"),
            "sasl.oauthbearer.jwks.endpoint.refresh.ms",
        )?,
        issuer: text("sasl.oauthbearer.expected.issuer"),
        audience: get("sasl.oauthbearer.expected.audience")
            .split(',')
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty())
            .collect(),
        clock_skew_s: parse(
            get("sasl.oauthbearer.clock.skew.seconds"),
            "sasl.oauthbearer.clock.skew.seconds",
        )?,
        principal_claim: text("sasl.oauthbearer.sub.claim.name").unwrap_or_else(|| "sub".into()),
    })
}

/// Kafka's authorizer classes turn brook's ACL authorizer on; anything else is refused rather
/// than quietly leaving every request allowed.
fn authorizer(class: &str) -> anyhow::Result<bool> {
    const KNOWN: [&str; 2] = [
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "kafka.security.authorizer.AclAuthorizer",
    ];
    match class.trim() {
        "" => Ok(false),
        c if KNOWN.contains(&c) => Ok(true),
        c => bail!("authorizer.class.name={c} is not known; use {}", KNOWN[0]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_serve_localhost_9092_under_data() {
        let c = BrokerConfig::load(None, Vec::new(), &[]).unwrap();
        assert_eq!(c.listeners.len(), 1);
        assert_eq!(c.listeners[0].name, "PLAINTEXT");
        assert_eq!(c.listeners[0].bind, "127.0.0.1:9092".parse().unwrap());
        assert_eq!(c.log_dirs, PathBuf::from("./data"));
        assert_eq!(c.num_partitions, 1);
        assert!(c.auto_create_topics);
        assert_eq!(c.socket_request_max_bytes, 100 * 1024 * 1024);
    }

    #[test]
    fn flags_beat_environment_which_beats_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("brook.toml");
        std::fs::write(
            &file,
            "num.partitions = 2\nlog.dirs = \"/from/file\"\n[log.retention]\nms = 1000\n",
        )
        .unwrap();
        let env = vec![
            ("BROOK_NUM_PARTITIONS".to_string(), "3".to_string()),
            ("BROOK_LOG".to_string(), "debug".to_string()),
        ];
        let c =
            BrokerConfig::load(Some(&file), env, &flags(&[("log.dirs", "/from/flag")])).unwrap();
        assert_eq!(c.num_partitions, 3);
        assert_eq!(c.log_dirs, PathBuf::from("/from/flag"));
        assert_eq!(c.value("log.retention.ms"), "1000");
        assert_eq!(c.values["log.retention.ms"].1, Source::Static);
        assert_eq!(c.values["message.max.bytes"].1, Source::Default);
    }

    #[test]
    fn bad_values_and_unknown_names_are_refused() {
        assert!(BrokerConfig::load(None, Vec::new(), &flags(&[("num.partitions", "0")])).is_err());
        assert!(BrokerConfig::load(None, Vec::new(), &flags(&[("no.such.thing", "1")])).is_err());
        assert!(
            BrokerConfig::load(None, Vec::new(), &flags(&[("listeners", "SSL://h:1")])).is_err()
        );
        assert!(BrokerConfig::load(
            None,
            Vec::new(),
            &flags(&[("log.message.timestamp.type", "Sometimes")])
        )
        .is_err());
    }
}
