//! Kafka clients (librdkafka through the `rdkafka` crate) and Jepsen's error classification.
//!
//! An error either says the operation definitely did not happen (`fail`: unknown topic,
//! invalid topic, fenced producer, out-of-order sequence, a record the broker refused), or
//! leaves its outcome unknown (`info`: timeouts, disconnects, NOT_LEADER_OR_FOLLOWER, unknown
//! server errors, anything else). After `info` the worker throws its clients away and
//! continues as a new process, as Jepsen does, so no later operation of the old client can be
//! confused with the new one's.
//!
//! Every client of a run, and every `brook` admin command the harness runs, follows the run's
//! [`Security`]: in the clear, or SASL_SSL as the admin user with `--secure`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::BaseConsumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::FutureProducer;

/// How long librdkafka keeps trying to deliver one record before reporting a timeout.
pub const MESSAGE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Definitely did not happen.
    Fail,
    /// May or may not have happened.
    Info,
}

/// The error code inside a client error, if it has one.
pub fn code(e: &KafkaError) -> Option<RDKafkaErrorCode> {
    match e {
        KafkaError::MessageProduction(c)
        | KafkaError::MessageConsumption(c)
        | KafkaError::MessageConsumptionFatal(c)
        | KafkaError::MetadataFetch(c)
        | KafkaError::AdminOp(c)
        | KafkaError::ConsumerCommit(c)
        | KafkaError::OffsetFetch(c)
        | KafkaError::Global(c) => Some(*c),
        _ => None,
    }
}

pub fn classify(e: &KafkaError) -> Outcome {
    use RDKafkaErrorCode as C;
    match code(e) {
        Some(
            C::UnknownTopicOrPartition
            | C::UnknownTopic
            | C::UnknownPartition
            | C::InvalidTopic
            | C::TopicAlreadyExists
            | C::InvalidPartitions
            | C::InvalidReplicationFactor
            | C::PolicyViolation
            | C::TopicDeletionDisabled
            | C::MessageSizeTooLarge
            | C::InvalidRecord
            | C::OutOfOrderSequenceNumber
            | C::InvalidProducerEpoch
            | C::ProducerFenced
            | C::UnsupportedVersion
            | C::InvalidRequest
            // A commit the coordinator refused because the member's generation is over.
            | C::IllegalGeneration
            | C::UnknownMemberId
            | C::RebalanceInProgress,
        ) => Outcome::Fail,
        _ => Outcome::Info,
    }
}

/// A short kebab-case name for the history (`unknown-topic`, `message-timed-out`, ...).
pub fn error_name(e: &KafkaError) -> String {
    use RDKafkaErrorCode as C;
    match code(e) {
        Some(C::UnknownTopicOrPartition | C::UnknownTopic) => "unknown-topic".into(),
        Some(c) => kebab(&format!("{c:?}")),
        None => match e {
            KafkaError::Canceled => "canceled".into(),
            KafkaError::PartitionEOF(_) => "partition-eof".into(),
            _ => "client-error".into(),
        },
    }
}

fn kebab(camel: &str) -> String {
    let mut out = String::new();
    for (i, ch) in camel.chars().enumerate() {
        if ch.is_ascii_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.push(ch.to_ascii_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
}

/// How clients reach the nodes: in the clear, or with the librdkafka settings and the
/// `--command-config` file [`crate::secure::prepare`] made.
#[derive(Clone, Debug, Default)]
pub struct Security {
    settings: Vec<(String, String)>,
    command_config: Option<PathBuf>,
}

impl Security {
    pub fn plaintext() -> Self {
        Self::default()
    }

    /// Clients with librdkafka `settings`; brook's admin commands with `command_config`.
    pub fn sasl_ssl(settings: Vec<(String, String)>, command_config: PathBuf) -> Self {
        Security {
            settings,
            command_config: Some(command_config),
        }
    }

    pub fn is_secure(&self) -> bool {
        self.command_config.is_some()
    }

    /// Adds the security settings to a client's configuration.
    pub fn apply(&self, c: &mut ClientConfig) {
        for (k, v) in &self.settings {
            c.set(k, v);
        }
    }

    /// Arguments for a `brook` admin command (`topic`, `cluster status`, ...).
    pub fn command_args(&self) -> Vec<OsString> {
        match &self.command_config {
            Some(path) => vec!["--command-config".into(), path.into()],
            None => Vec::new(),
        }
    }
}

/// The settings of a client that only needs to reach the nodes (admin clients): the bootstrap
/// list, IPv4, and the run's security.
pub fn config(bootstrap: &str, security: &Security) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4");
    security.apply(&mut c);
    c
}

/// Settings every client gets: short timeouts, so a fault shows up as an error within a few
/// seconds rather than as a client that hangs for a minute.
fn base(bootstrap: &str, security: &Security) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("socket.timeout.ms", "5000")
        .set("socket.connection.setup.timeout.ms", "5000")
        .set("reconnect.backoff.ms", "20")
        .set("reconnect.backoff.max.ms", "500")
        .set("topic.metadata.refresh.interval.ms", "2000")
        .set("metadata.max.age.ms", "6000")
        .set("log_level", "3");
    security.apply(&mut c);
    c
}

/// A producer; `safe` turns on idempotence (acks=all and high retries come with it).
pub fn producer(bootstrap: &str, security: &Security, safe: bool) -> Result<FutureProducer> {
    let mut c = base(bootstrap, security);
    c.set("acks", "all")
        .set("enable.idempotence", if safe { "true" } else { "false" })
        .set(
            "message.timeout.ms",
            MESSAGE_TIMEOUT.as_millis().to_string(),
        )
        .set("request.timeout.ms", "5000")
        .set("retry.backoff.ms", "50")
        .set("linger.ms", "0");
    if safe {
        c.set("retries", "1000000");
    }
    c.create().context("creating a producer")
}

/// A consumer that only ever uses `assign`; `group` names the consumer group for the
/// workloads that commit offsets.
pub fn consumer(
    bootstrap: &str,
    security: &Security,
    group: &str,
    safe: bool,
) -> Result<BaseConsumer> {
    consumer_with(bootstrap, security, group, safe, &[])
}

/// [`consumer`] with `extra` settings applied last.
pub fn consumer_with(
    bootstrap: &str,
    security: &Security,
    group: &str,
    safe: bool,
    extra: &[(&str, &str)],
) -> Result<BaseConsumer> {
    let mut c = base(bootstrap, security);
    c.set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("fetch.wait.max.ms", "100")
        .set(
            "isolation.level",
            if safe {
                "read_committed"
            } else {
                "read_uncommitted"
            },
        );
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create().context("creating a consumer")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definite_and_indeterminate_errors() {
        use RDKafkaErrorCode as C;
        let produce = |c| KafkaError::MessageProduction(c);
        assert_eq!(
            classify(&produce(C::UnknownTopicOrPartition)),
            Outcome::Fail
        );
        assert_eq!(
            classify(&produce(C::OutOfOrderSequenceNumber)),
            Outcome::Fail
        );
        assert_eq!(classify(&produce(C::ProducerFenced)), Outcome::Fail);
        assert_eq!(classify(&produce(C::MessageTimedOut)), Outcome::Info);
        assert_eq!(classify(&produce(C::NotLeaderForPartition)), Outcome::Info);
        assert_eq!(classify(&produce(C::Unknown)), Outcome::Info);
        assert_eq!(classify(&KafkaError::Canceled), Outcome::Info);
        assert_eq!(
            error_name(&produce(C::MessageTimedOut)),
            "message-timed-out"
        );
        assert_eq!(
            error_name(&produce(C::UnknownTopicOrPartition)),
            "unknown-topic"
        );
        assert_eq!(
            error_name(&KafkaError::AdminOp(C::TopicAlreadyExists)),
            "topic-already-exists"
        );
        assert_eq!(error_name(&KafkaError::Canceled), "canceled");
    }
}
