//! Every broker setting brook understands: its Kafka name, default, type and meaning. The same
//! table answers DescribeConfigs for the broker, so what is reported is what is in force.

use std::collections::BTreeMap;

/// Where a setting's value came from (DescribeConfigs reports it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Default,
    Static,
    /// A cluster-wide dynamic default (AlterConfigs on broker ""), kept in Raft.
    DynamicDefault,
    /// This broker's own dynamic config (AlterConfigs on its id), kept in Raft.
    DynamicBroker,
}

impl Source {
    /// Kafka's ConfigSource code in DescribeConfigs.
    pub fn code(self) -> i8 {
        match self {
            Source::DynamicBroker => 2,
            Source::DynamicDefault => 3,
            Source::Static => 4,
            Source::Default => 5,
        }
    }
}

/// One broker setting: its Kafka name, its default and what it means.
pub struct Setting {
    pub name: &'static str,
    pub default: &'static str,
    pub kind: Kind,
    pub doc: &'static str,
}

/// The types DescribeConfigs v3+ reports (Kafka's ConfigType numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Boolean = 1,
    String = 2,
    Int = 3,
    Short = 4,
    Long = 5,
    Double = 6,
    List = 7,
    /// A secret: DescribeConfigs marks it sensitive and never returns its value.
    Password = 9,
}

/// Every broker setting brook understands.
pub const SETTINGS: &[Setting] = &[
    Setting {
        name: "node.id",
        default: "1",
        kind: Kind::Int,
        doc: "This node's id.",
    },
    Setting {
        name: "listeners",
        default: "PLAINTEXT://127.0.0.1:9092",
        kind: Kind::List,
        doc: "The Kafka listeners, NAME://host:port separated by commas (a bare host:port is PLAINTEXT); port 0 picks a free port. \
              listener.name.<name>.ssl.* and listener.name.<name>.sasl.enabled.mechanisms override the shared settings for one listener.",
    },
    Setting {
        name: "advertised.listeners",
        default: "",
        kind: Kind::List,
        doc: "NAME://host:port per listener: what a client that connected through that listener is told; defaults to the bound address.",
    },
    Setting {
        name: "brook.metrics.listener",
        default: "",
        kind: Kind::String,
        doc: "host:port of the Prometheus endpoint (GET /metrics, plain HTTP); empty: no endpoint.",
    },
    Setting {
        name: "inter.broker.listener.name",
        default: "",
        kind: Kind::String,
        doc: "The listener other nodes fetch replicas through; defaults to the first in listeners.",
    },
    Setting {
        name: "listener.security.protocol.map",
        default: "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL",
        kind: Kind::String,
        doc: "Listener names and their security protocols: PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL.",
    },
    Setting {
        name: "sasl.enabled.mechanisms",
        default: "SCRAM-SHA-256,SCRAM-SHA-512",
        kind: Kind::List,
        doc: "SASL mechanisms clients may use on a SASL listener: SCRAM-SHA-256, SCRAM-SHA-512, PLAIN, OAUTHBEARER.",
    },
    Setting {
        name: "connection.failed.authentication.delay.ms",
        default: "100",
        kind: Kind::Int,
        doc: "How long a failed authentication waits before it is answered and the connection closed, so guessing passwords is slow.",
    },
    Setting {
        name: "connections.max.reauth.ms",
        default: "0",
        kind: Kind::Long,
        doc: "When positive, a SASL session lasts this long: the client must re-authenticate on the connection (KIP-368) or it is closed at its next request. 0 leaves sessions unbounded.",
    },
    Setting {
        name: "super.users",
        default: "",
        kind: Kind::List,
        doc: "Principals allowed everything, separated by semicolons (User:admin;User:ops). Without an authorizer, while it is set, only they may describe or change SCRAM credentials.",
    },
    Setting {
        name: "authorizer.class.name",
        default: "",
        kind: Kind::String,
        doc: "org.apache.kafka.metadata.authorizer.StandardAuthorizer turns ACLs on: every request is checked against the ACLs kept in the metadata. Empty allows every request, as Kafka without an authorizer.",
    },
    Setting {
        name: "allow.everyone.if.no.acl.found",
        default: "false",
        kind: Kind::Boolean,
        doc: "With an authorizer: whether a resource no ACL names is open to everyone.",
    },
    Setting {
        name: "brook.sasl.bootstrap.user",
        default: "",
        kind: Kind::String,
        doc: "A SCRAM user created (SHA-256 and SHA-512) when the cluster has no credentials for it, so a new cluster is usable.",
    },
    Setting {
        name: "brook.sasl.bootstrap.password",
        default: "",
        kind: Kind::Password,
        doc: "The password of brook.sasl.bootstrap.user.",
    },
    Setting {
        name: "sasl.oauthbearer.jwks.endpoint.url",
        default: "",
        kind: Kind::String,
        doc: "With OAUTHBEARER enabled: the JWKS whose keys sign valid tokens, as a file (a path or file:// URL) or an https:// URL (plain http is refused).",
    },
    Setting {
        name: "sasl.oauthbearer.jwks.endpoint.refresh.ms",
        default: "3600000",
        kind: Kind::Long,
        doc: "How often the JWKS is read again, so rotated keys are used without a restart; while none could be read yet, every 5 seconds.",
    },
    Setting {
        name: "brook.sasl.oauthbearer.jwks.ca.location",
        default: "/etc/ssl/certs/ca-certificates.crt",
        kind: Kind::String,
        doc: "The PEM CA bundle an https:// JWKS endpoint's certificate must chain to.",
    },
    Setting {
        name: "sasl.oauthbearer.expected.issuer",
        default: "",
        kind: Kind::String,
        doc: "The iss claim a token must carry; empty accepts any issuer.",
    },
    Setting {
        name: "sasl.oauthbearer.expected.audience",
        default: "",
        kind: Kind::List,
        doc: "Audiences one of which a token's aud claim must name; empty accepts any.",
    },
    Setting {
        name: "sasl.oauthbearer.clock.skew.seconds",
        default: "30",
        kind: Kind::Int,
        doc: "How far the token issuer's clock may be from this node's, for exp and nbf.",
    },
    Setting {
        name: "sasl.oauthbearer.sub.claim.name",
        default: "sub",
        kind: Kind::String,
        doc: "The claim that names the principal.",
    },
    Setting {
        name: "ssl.keystore.type",
        default: "PEM",
        kind: Kind::String,
        doc: "The format of the keystore of an SSL or SASL_SSL listener; brook reads PEM only.",
    },
    Setting {
        name: "ssl.keystore.location",
        default: "",
        kind: Kind::String,
        doc: "A PEM file with this node's private key (PKCS#8, PKCS#1 or SEC1, unencrypted) and \
              certificate chain. Re-read when it changes (brook.ssl.reload.interval.ms).",
    },
    Setting {
        name: "ssl.keystore.certificate.chain",
        default: "",
        kind: Kind::Password,
        doc: "The certificate chain in PEM, instead of ssl.keystore.location.",
    },
    Setting {
        name: "ssl.keystore.key",
        default: "",
        kind: Kind::Password,
        doc: "The private key in PEM, instead of ssl.keystore.location.",
    },
    Setting {
        name: "ssl.key.password",
        default: "",
        kind: Kind::Password,
        doc: "Refused when set: brook reads unencrypted private keys only (protect the file).",
    },
    Setting {
        name: "ssl.truststore.type",
        default: "PEM",
        kind: Kind::String,
        doc: "The format of the truststore; brook reads PEM only.",
    },
    Setting {
        name: "ssl.truststore.location",
        default: "",
        kind: Kind::String,
        doc: "A PEM file of the CA certificates client certificates are checked against, and \
              that this node's replica fetchers trust leaders by. Re-read when it changes.",
    },
    Setting {
        name: "ssl.truststore.certificates",
        default: "",
        kind: Kind::Password,
        doc: "The trusted CA certificates in PEM, instead of ssl.truststore.location.",
    },
    Setting {
        name: "ssl.client.auth",
        default: "none",
        kind: Kind::String,
        doc: "Client certificates on a TLS listener: none, requested (checked when given) or \
              required (mutual TLS).",
    },
    Setting {
        name: "ssl.enabled.protocols",
        default: "TLSv1.2,TLSv1.3",
        kind: Kind::List,
        doc: "TLS versions a TLS listener accepts; TLSv1.2 and TLSv1.3 only.",
    },
    Setting {
        name: "ssl.principal.mapping.rules",
        default: "DEFAULT",
        kind: Kind::String,
        doc: "How a client certificate's subject (RFC 2253 form) becomes the principal's name: \
              Kafka's RULE:pattern/replacement/[LU] list; DEFAULT keeps the whole subject.",
    },
    Setting {
        name: "brook.ssl.reload.interval.ms",
        default: "10000",
        kind: Kind::Long,
        doc: "How often the keystore and truststore files are checked; changed files are loaded \
              for new connections without a restart (a bad file is logged and the old one kept).",
    },
    Setting {
        name: "log.dirs",
        default: "./data",
        kind: Kind::String,
        doc: "The data directory.",
    },
    Setting {
        name: "num.partitions",
        default: "1",
        kind: Kind::Int,
        doc: "Partitions of an auto-created topic, or of CreateTopics with -1.",
    },
    Setting {
        name: "default.replication.factor",
        default: "3",
        kind: Kind::Short,
        doc: "Replication factor of auto-created topics and of CreateTopics with -1; capped at \
              the number of live brokers.",
    },
    Setting {
        name: "replica.lag.time.max.ms",
        default: "30000",
        kind: Kind::Long,
        doc: "A follower that has not caught up with its leader for this long leaves the \
              in-sync set.",
    },
    Setting {
        name: "auto.leader.rebalance.enable",
        default: "true",
        kind: Kind::Boolean,
        doc: "Move leadership back to each partition's preferred replica once it is in sync.",
    },
    Setting {
        name: "leader.imbalance.check.interval.seconds",
        default: "300",
        kind: Kind::Long,
        doc: "How often the controller looks for partitions to hand back to their preferred \
              replica.",
    },
    Setting {
        name: "auto.create.topics.enable",
        default: "true",
        kind: Kind::Boolean,
        doc: "Create unknown topics asked for in Metadata.",
    },
    Setting {
        name: "socket.request.max.bytes",
        default: "104857600",
        kind: Kind::Int,
        doc: "Largest request frame accepted; larger closes the connection.",
    },
    Setting {
        name: "queued.max.request.bytes",
        default: "268435456",
        kind: Kind::Long,
        doc: "Request bytes all connections together may hold until answered; reading pauses over it. At least socket.request.max.bytes.",
    },
    Setting {
        name: "connections.max.idle.ms",
        default: "600000",
        kind: Kind::Long,
        doc: "A connection with nothing in flight and nothing arriving for this long is closed.",
    },
    Setting {
        name: "brook.request.receive.timeout.ms",
        default: "30000",
        kind: Kind::Long,
        doc: "Time a request may take to arrive once its first byte came; a slower sender is disconnected.",
    },
    Setting {
        name: "fetch.max.bytes",
        default: "57671680",
        kind: Kind::Int,
        doc: "Most record bytes one Fetch answer carries, whatever the request asks (one batch may exceed it so a consumer always progresses).",
    },
    Setting {
        name: "max.connections",
        default: "10000",
        kind: Kind::Int,
        doc: "Connections served at once; extra ones are closed.",
    },
    Setting {
        name: "brook.max.inflight.requests.per.connection",
        default: "32",
        kind: Kind::Int,
        doc: "Requests of one connection read ahead before reading pauses.",
    },
    Setting {
        name: "message.max.bytes",
        default: "1048588",
        kind: Kind::Int,
        doc: "Largest record batch accepted (topic: max.message.bytes).",
    },
    Setting {
        name: "log.segment.bytes",
        default: "1073741824",
        kind: Kind::Int,
        doc: "Segment size before a roll (topic: segment.bytes).",
    },
    Setting {
        name: "log.roll.ms",
        default: "604800000",
        kind: Kind::Long,
        doc: "Segment age before a roll (topic: segment.ms).",
    },
    Setting {
        name: "log.retention.ms",
        default: "604800000",
        kind: Kind::Long,
        doc: "Age after which whole segments are deleted; -1 keeps forever (topic: retention.ms).",
    },
    Setting {
        name: "log.retention.bytes",
        default: "-1",
        kind: Kind::Long,
        doc: "Partition size above which the oldest segments are deleted (topic: retention.bytes).",
    },
    Setting {
        name: "log.retention.check.interval.ms",
        default: "300000",
        kind: Kind::Long,
        doc: "How often retention runs.",
    },
    Setting {
        name: "log.message.timestamp.type",
        default: "CreateTime",
        kind: Kind::String,
        doc: "CreateTime or LogAppendTime (topic: message.timestamp.type).",
    },
    Setting {
        name: "min.insync.replicas",
        default: "2",
        kind: Kind::Int,
        doc: "In-sync replicas an acks=all write needs; while unset on the topic and the \
              broker, capped at the topic's replication factor.",
    },
    Setting {
        name: "brook.ack.before.flush",
        default: "false",
        kind: Kind::Boolean,
        doc: "Acknowledge writes and show them to consumers before they are flushed to disk, as \
              Kafka does by default. Faster, but a crash loses the last acknowledged writes.",
    },
    Setting {
        name: "brook.arbiters",
        default: "0",
        kind: Kind::Int,
        doc: "Arbiter threads for partition actors; 0 means one per core.",
    },
    Setting {
        name: "broker.rack",
        default: "",
        kind: Kind::String,
        doc: "This node's rack, reported in Metadata.",
    },
    Setting {
        name: "brook.raft.listener",
        default: "",
        kind: Kind::String,
        doc: "host:port of the Raft port; defaults to this node's entry in controller.quorum.voters, else 127.0.0.1:0.",
    },
    Setting {
        name: "brook.raft.security.protocol",
        default: "PLAINTEXT",
        kind: Kind::String,
        doc: "The Raft port's protocol: PLAINTEXT (every frame authenticated with the cluster secret, not encrypted) \
              or SSL (mutual TLS with the node's ssl.* key material and truststore, the cluster secret inside it).",
    },
    Setting {
        name: "controller.quorum.voters",
        default: "",
        kind: Kind::List,
        doc: "The initial Raft members as id@host:port,...; empty for a single node or a node that joins.",
    },
    Setting {
        name: "controller.quorum.bootstrap.servers",
        default: "",
        kind: Kind::List,
        doc: "Raft addresses (host:port,...) of a running cluster this node joins.",
    },
    Setting {
        name: "brook.cluster.secret.file",
        default: "",
        kind: Kind::String,
        doc: "File holding the cluster secret every node shares; the Raft port admits only \
              peers that prove they hold it. Empty means <log.dirs>/cluster.secret, created \
              with a random secret on a node that has no peers.",
    },
    Setting {
        name: "brook.cluster.secret",
        default: "",
        kind: Kind::Password,
        doc: "The cluster secret itself (at least 16 bytes), instead of a file; never \
              described.",
    },
    Setting {
        name: "controller.quorum.election.timeout.ms",
        default: "1000",
        kind: Kind::Int,
        doc: "Raft election timeout; a follower waits between this and twice this for a leader.",
    },
    Setting {
        name: "brook.raft.heartbeat.interval.ms",
        default: "100",
        kind: Kind::Int,
        doc: "How often the Raft leader heartbeats its followers.",
    },
    Setting {
        name: "brook.raft.snapshot.interval.entries",
        default: "10000",
        kind: Kind::Long,
        doc: "Raft log entries between metadata snapshots; the log is compacted behind each.",
    },
    Setting {
        name: "brook.raft.max.voters",
        default: "3",
        kind: Kind::Int,
        doc: "The most voters the Raft group has (3 or 5). A node that joins is a learner (observer) until an operator promotes it (AddRaftVoter, brook cluster promote).",
    },
    Setting {
        name: "broker.heartbeat.interval.ms",
        default: "2000",
        kind: Kind::Int,
        doc: "How often this node heartbeats through Raft.",
    },
    Setting {
        name: "broker.session.timeout.ms",
        default: "9000",
        kind: Kind::Int,
        doc: "A broker without a heartbeat for this long is down (fixed when the cluster forms).",
    },
    Setting {
        name: "group.min.session.timeout.ms",
        default: "6000",
        kind: Kind::Int,
        doc: "Smallest session.timeout.ms a consumer may ask for.",
    },
    Setting {
        name: "group.max.session.timeout.ms",
        default: "1800000",
        kind: Kind::Int,
        doc: "Largest session.timeout.ms a consumer may ask for.",
    },
    Setting {
        name: "group.initial.rebalance.delay.ms",
        default: "3000",
        kind: Kind::Int,
        doc: "How long the first rebalance of an empty group waits for more members.",
    },
    Setting {
        name: "offsets.retention.minutes",
        default: "10080",
        kind: Kind::Int,
        doc: "Committed offsets of a group are dropped this long after it became empty.",
    },
    Setting {
        name: "offsets.retention.check.interval.ms",
        default: "600000",
        kind: Kind::Long,
        doc: "How often expired offsets are dropped.",
    },
    Setting {
        name: "brook.group.record.max.bytes",
        default: "1048588",
        kind: Kind::Int,
        doc: "Largest group record (members with their subscriptions and assignments) written to the metadata log; a bigger generation fails with UNKNOWN_SERVER_ERROR, as Kafka fails a group record over its offsets topic's message size.",
    },
    Setting {
        name: "offset.metadata.max.bytes",
        default: "4096",
        kind: Kind::Int,
        doc: "Largest metadata string of a committed offset.",
    },
    Setting {
        name: "brook.offsets.commit.batch.max",
        default: "10000",
        kind: Kind::Int,
        doc: "Most partition offsets one Raft entry carries; commits arriving together share an entry.",
    },
];

/// Settings as text by name, with where each value came from.
pub type Values = BTreeMap<String, (String, Source)>;
