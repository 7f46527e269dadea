//! Topic settings: which ones exist, their broker-wide defaults, validation, and what
//! DescribeConfigs reports for them.

use std::collections::BTreeMap;

use brook_raft::MAX_TOPIC_CONFIG_BYTES;
use brook_storage::LogConfig;

use super::settings::{Kind, Values, SETTINGS};

/// A topic setting and the broker setting that supplies its default (Kafka's synonym).
pub struct TopicSetting {
    pub name: &'static str,
    pub broker_default: Option<&'static str>,
    pub fixed_default: &'static str,
    pub kind: Kind,
    pub doc: &'static str,
}

pub const TOPIC_SETTINGS: &[TopicSetting] = &[
    TopicSetting {
        name: "cleanup.policy",
        broker_default: None,
        fixed_default: "delete",
        kind: Kind::List,
        doc: "Only `delete` (whole segments past retention); compaction is not implemented.",
    },
    TopicSetting {
        name: "compression.type",
        broker_default: None,
        fixed_default: "producer",
        kind: Kind::String,
        doc: "Only `producer`: batches are stored as the producer compressed them.",
    },
    TopicSetting {
        name: "max.message.bytes",
        broker_default: Some("message.max.bytes"),
        fixed_default: "",
        kind: Kind::Int,
        doc: "Largest record batch accepted.",
    },
    TopicSetting {
        name: "message.timestamp.type",
        broker_default: Some("log.message.timestamp.type"),
        fixed_default: "",
        kind: Kind::String,
        doc: "CreateTime or LogAppendTime.",
    },
    TopicSetting {
        name: "min.insync.replicas",
        broker_default: Some("min.insync.replicas"),
        fixed_default: "",
        kind: Kind::Int,
        doc: "Replicas that must acknowledge acks=all writes.",
    },
    TopicSetting {
        name: "retention.bytes",
        broker_default: Some("log.retention.bytes"),
        fixed_default: "",
        kind: Kind::Long,
        doc: "Partition size above which the oldest segments are deleted; -1 for no limit.",
    },
    TopicSetting {
        name: "retention.ms",
        broker_default: Some("log.retention.ms"),
        fixed_default: "",
        kind: Kind::Long,
        doc: "Age after which whole segments are deleted; -1 keeps forever.",
    },
    TopicSetting {
        name: "segment.bytes",
        broker_default: Some("log.segment.bytes"),
        fixed_default: "",
        kind: Kind::Int,
        doc: "Segment size before a roll.",
    },
    TopicSetting {
        name: "segment.ms",
        broker_default: Some("log.roll.ms"),
        fixed_default: "",
        kind: Kind::Long,
        doc: "Segment age before a roll.",
    },
    TopicSetting {
        name: "unclean.leader.election.enable",
        broker_default: None,
        fixed_default: "false",
        kind: Kind::Boolean,
        doc: "Elect an out-of-sync replica when no in-sync one is live (may lose acknowledged \
              writes).",
    },
    // Kafka 4's other topic configs, accepted so that tools and clients which set them work,
    // stored and described, but not acted on (the README lists them).
    TopicSetting {
        name: "compression.gzip.level",
        broker_default: None,
        fixed_default: "-1",
        kind: Kind::Int,
        doc: INERT,
    },
    TopicSetting {
        name: "compression.lz4.level",
        broker_default: None,
        fixed_default: "9",
        kind: Kind::Int,
        doc: INERT,
    },
    TopicSetting {
        name: "compression.zstd.level",
        broker_default: None,
        fixed_default: "3",
        kind: Kind::Int,
        doc: INERT,
    },
    TopicSetting {
        name: "delete.retention.ms",
        broker_default: None,
        fixed_default: "86400000",
        kind: Kind::Long,
        doc: INERT,
    },
    TopicSetting {
        name: "file.delete.delay.ms",
        broker_default: None,
        fixed_default: "60000",
        kind: Kind::Long,
        doc: INERT,
    },
    TopicSetting {
        name: "flush.messages",
        broker_default: None,
        fixed_default: "9223372036854775807",
        kind: Kind::Long,
        doc: INERT,
    },
    TopicSetting {
        name: "flush.ms",
        broker_default: None,
        fixed_default: "9223372036854775807",
        kind: Kind::Long,
        doc: INERT,
    },
    TopicSetting {
        name: "follower.replication.throttled.replicas",
        broker_default: None,
        fixed_default: "",
        kind: Kind::List,
        doc: INERT,
    },
    TopicSetting {
        name: "index.interval.bytes",
        broker_default: None,
        fixed_default: "4096",
        kind: Kind::Int,
        doc: INERT,
    },
    TopicSetting {
        name: "leader.replication.throttled.replicas",
        broker_default: None,
        fixed_default: "",
        kind: Kind::List,
        doc: INERT,
    },
    TopicSetting {
        name: "local.retention.bytes",
        broker_default: None,
        fixed_default: "-2",
        kind: Kind::Long,
        doc: INERT,
    },
    TopicSetting {
        name: "local.retention.ms",
        broker_default: None,
        fixed_default: "-2",
        kind: Kind::Long,
        doc: INERT,
    },
    TopicSetting {
        name: "max.compaction.lag.ms",
        broker_default: None,
        fixed_default: "9223372036854775807",
        kind: Kind::Long,
        doc: INERT,
    },
    TopicSetting {
        name: "message.timestamp.after.max.ms",
        broker_default: None,
        fixed_default: "3600000",
        kind: Kind::Long,
        doc: INERT,
    },
    TopicSetting {
        name: "message.timestamp.before.max.ms",
        broker_default: None,
        fixed_default: "9223372036854775807",
        kind: Kind::Long,
        doc: INERT,
    },
    TopicSetting {
        name: "min.cleanable.dirty.ratio",
        broker_default: None,
        fixed_default: "0.5",
        kind: Kind::Double,
        doc: INERT,
    },
    TopicSetting {
        name: "min.compaction.lag.ms",
        broker_default: None,
        fixed_default: "0",
        kind: Kind::Long,
        doc: INERT,
    },
    TopicSetting {
        name: "preallocate",
        broker_default: None,
        fixed_default: "false",
        kind: Kind::Boolean,
        doc: INERT,
    },
    TopicSetting {
        name: "remote.log.copy.disable",
        broker_default: None,
        fixed_default: "false",
        kind: Kind::Boolean,
        doc: INERT,
    },
    TopicSetting {
        name: "remote.log.delete.on.disable",
        broker_default: None,
        fixed_default: "false",
        kind: Kind::Boolean,
        doc: INERT,
    },
    TopicSetting {
        name: "remote.storage.enable",
        broker_default: None,
        fixed_default: "false",
        kind: Kind::Boolean,
        doc: INERT,
    },
    TopicSetting {
        name: "segment.index.bytes",
        broker_default: None,
        fixed_default: "10485760",
        kind: Kind::Int,
        doc: INERT,
    },
    TopicSetting {
        name: "segment.jitter.ms",
        broker_default: None,
        fixed_default: "0",
        kind: Kind::Long,
        doc: INERT,
    },
];

const INERT: &str = "Accepted and stored as Kafka defines it; brook does not act on it.";

/// A topic's settings in force.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TopicConfig {
    pub log: LogConfig,
    pub log_append_time: bool,
    pub max_message_bytes: usize,
    pub min_insync_replicas: i32,
    /// Neither the topic nor the broker sets `min.insync.replicas`: the default then is
    /// capped at the replication factor, so small clusters accept acks=all.
    pub min_insync_is_default: bool,
}

/// One DescribeConfigs entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    pub name: String,
    pub value: String,
    /// Kafka's ConfigSource: 1 topic, 2 dynamic broker, 3 dynamic cluster default, 4 static
    /// broker, 5 default.
    pub source: i8,
    pub kind: Kind,
    pub doc: &'static str,
    /// (name, value, source) from the most to the least specific, as Kafka lists synonyms.
    pub synonyms: Vec<(String, String, i8)>,
}

const SOURCE_TOPIC: i8 = 1;
const SOURCE_DEFAULT: i8 = 5;

impl TopicConfig {
    /// The settings in force for a topic whose explicit configs are `explicit`; an unknown name or
    /// a bad value is an error whose text goes back to the client with INVALID_CONFIG.
    pub fn resolve(broker: &Values, explicit: &BTreeMap<String, String>) -> Result<Self, String> {
        let mut bytes = 0;
        for (name, value) in explicit {
            let Some(s) = setting(name) else {
                return Err(format!("unknown topic config `{name}`"));
            };
            check_kind(name, value, s.kind)?;
            bytes += name.len() + value.len();
        }
        if bytes > MAX_TOPIC_CONFIG_BYTES {
            return Err(format!(
                "topic configs of {bytes} bytes exceed the {MAX_TOPIC_CONFIG_BYTES}-byte bound"
            ));
        }
        let value = |name: &str| value_in_force(broker, explicit, name);
        let number = |name: &str, min: i64| -> Result<i64, String> {
            let text = value(name);
            let n: i64 = text
                .trim()
                .parse()
                .map_err(|_| format!("`{name}` must be a number, got `{text}`"))?;
            if n < min {
                return Err(format!("`{name}` must be at least {min}, got {n}"));
            }
            Ok(n)
        };
        match value("cleanup.policy").as_str() {
            "delete" => {}
            other => {
                return Err(format!(
                    "cleanup.policy `{other}` is not supported (only `delete`)"
                ))
            }
        }
        match value("compression.type").as_str() {
            "producer" => {}
            other => {
                return Err(format!(
                    "compression.type `{other}` is not supported: brook stores batches as the producer sent them (`producer`)"
                ))
            }
        }
        let log_append_time = match value("message.timestamp.type").as_str() {
            "CreateTime" => false,
            "LogAppendTime" => true,
            other => {
                return Err(format!(
                    "message.timestamp.type must be CreateTime or LogAppendTime, got `{other}`"
                ))
            }
        };
        let min_insync = number("min.insync.replicas", 1)?;
        let segment_bytes = number("segment.bytes", 14)?;
        Ok(TopicConfig {
            log: LogConfig {
                segment_bytes: u64::try_from(segment_bytes).unwrap_or(u64::MAX),
                segment_ms: number("segment.ms", 1)?,
                retention_ms: number("retention.ms", -1)?,
                retention_bytes: number("retention.bytes", -1)?,
            },
            log_append_time,
            max_message_bytes: usize::try_from(number("max.message.bytes", 0)?)
                .unwrap_or(usize::MAX),
            min_insync_replicas: i32::try_from(min_insync)
                .map_err(|_| "min.insync.replicas is too large".to_string())?,
            min_insync_is_default: !explicit.contains_key("min.insync.replicas")
                && default_value(broker, "min.insync.replicas").1 == SOURCE_DEFAULT,
        })
    }

    /// `min.insync.replicas` in force for a partition with `replication_factor` replicas.
    pub fn min_insync(&self, replication_factor: usize) -> usize {
        let configured = usize::try_from(self.min_insync_replicas).unwrap_or(1);
        if self.min_insync_is_default {
            configured.min(replication_factor).max(1)
        } else {
            configured
        }
    }
}

/// The value of topic config `name` in force: the topic's own, else its default.
pub fn value_in_force(broker: &Values, explicit: &BTreeMap<String, String>, name: &str) -> String {
    explicit
        .get(name)
        .cloned()
        .unwrap_or_else(|| default_value(broker, name).0)
}

/// A value of the config's type, as Kafka's ConfigDef parses it.
fn check_kind(name: &str, value: &str, kind: Kind) -> Result<(), String> {
    let v = value.trim();
    let ok = match kind {
        Kind::Boolean => v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false"),
        Kind::Int => v.parse::<i32>().is_ok(),
        Kind::Short => v.parse::<i16>().is_ok(),
        Kind::Long => v.parse::<i64>().is_ok(),
        Kind::Double => v.parse::<f64>().is_ok_and(f64::is_finite),
        Kind::String | Kind::List | Kind::Password => true,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid value `{value}` for `{name}`: expected {kind:?}"
        ))
    }
}

/// Whether `name` is a topic config (known to brook, acted on or not).
/// Whether broker setting `name` may change at run time (AlterConfigs on a broker): the broker
/// defaults of topic settings, as in Kafka, where they are cluster-wide dynamic configs.
pub fn is_dynamic_broker_config(name: &str) -> bool {
    TOPIC_SETTINGS
        .iter()
        .any(|s| s.broker_default == Some(name))
}

pub fn is_topic_config(name: &str) -> bool {
    setting(name).is_some()
}

/// A list-typed topic config (the only kind IncrementalAlterConfigs may append to or
/// subtract from).
pub fn is_list_config(name: &str) -> bool {
    setting(name).is_some_and(|s| matches!(s.kind, Kind::List))
}

fn setting(name: &str) -> Option<&'static TopicSetting> {
    TOPIC_SETTINGS.iter().find(|s| s.name == name)
}

/// A topic setting's value when the topic does not set it, and where that value came from.
fn default_value(broker: &Values, name: &str) -> (String, i8) {
    match setting(name) {
        Some(TopicSetting {
            broker_default: Some(key),
            ..
        }) => match broker.get(*key) {
            Some((value, source)) => (value.clone(), source.code()),
            None => (String::new(), SOURCE_DEFAULT),
        },
        Some(s) => (s.fixed_default.to_string(), SOURCE_DEFAULT),
        None => (String::new(), SOURCE_DEFAULT),
    }
}

/// Every topic setting with its value in force, for DescribeConfigs and CreateTopics v5+.
pub fn describe_topic(broker: &Values, explicit: &BTreeMap<String, String>) -> Vec<ConfigEntry> {
    TOPIC_SETTINGS
        .iter()
        .map(|s| {
            let (default, default_source) = default_value(broker, s.name);
            let mut synonyms = Vec::new();
            let (value, source) = match explicit.get(s.name) {
                Some(v) => {
                    synonyms.push((s.name.to_string(), v.clone(), SOURCE_TOPIC));
                    (v.clone(), SOURCE_TOPIC)
                }
                None => (default.clone(), default_source),
            };
            if let Some(key) = s.broker_default {
                synonyms.push((key.to_string(), default, default_source));
            }
            ConfigEntry {
                name: s.name.to_string(),
                value,
                source,
                kind: s.kind,
                doc: s.doc,
                synonyms,
            }
        })
        .collect()
}

/// Every broker setting with its value in force.
pub fn describe_broker(broker: &Values) -> Vec<ConfigEntry> {
    SETTINGS
        .iter()
        .map(|s| {
            let (value, source) = broker
                .get(s.name)
                .map(|(v, src)| (v.clone(), src.code()))
                .unwrap_or_default();
            ConfigEntry {
                name: s.name.to_string(),
                synonyms: vec![(s.name.to_string(), value.clone(), source)],
                value,
                source,
                kind: s.kind,
                doc: s.doc,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Source;

    fn broker(flags: &[(&str, &str)]) -> Values {
        let flags: Vec<_> = flags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut values: Values = SETTINGS
            .iter()
            .map(|s| (s.name.to_string(), (s.default.to_string(), Source::Default)))
            .collect();
        values.extend(flags.into_iter().map(|(k, v)| (k, (v, Source::Static))));
        values
    }

    #[test]
    fn topic_values_override_broker_defaults() {
        let b = broker(&[("log.retention.ms", "5000")]);
        let explicit = BTreeMap::from([("segment.bytes".to_string(), "16384".to_string())]);
        let c = TopicConfig::resolve(&b, &explicit).unwrap();
        assert_eq!(c.log.segment_bytes, 16384);
        assert_eq!(c.log.retention_ms, 5000);
        let entries = describe_topic(&b, &explicit);
        let seg = entries.iter().find(|e| e.name == "segment.bytes").unwrap();
        assert_eq!((seg.value.as_str(), seg.source), ("16384", SOURCE_TOPIC));
        let ret = entries.iter().find(|e| e.name == "retention.ms").unwrap();
        assert_eq!(
            (ret.value.as_str(), ret.source),
            ("5000", Source::Static.code())
        );
        let max = entries
            .iter()
            .find(|e| e.name == "max.message.bytes")
            .unwrap();
        assert_eq!(
            (max.value.as_str(), max.source),
            ("1048588", SOURCE_DEFAULT)
        );
    }

    #[test]
    fn bad_topic_configs_are_refused_with_a_reason() {
        let b = broker(&[]);
        for (k, v) in [
            ("segment.bytes", "10"),
            ("retention.ms", "-2"),
            ("cleanup.policy", "compact"),
            ("nope", "1"),
            ("message.timestamp.type", "x"),
            ("preallocate", "maybe"),
            ("min.cleanable.dirty.ratio", "NaN"),
            ("flush.messages", "9223372036854775808"),
        ] {
            let explicit = BTreeMap::from([(k.to_string(), v.to_string())]);
            let err = TopicConfig::resolve(&b, &explicit).unwrap_err();
            assert!(err.contains(k) || err.contains(v), "{k}={v}: {err}");
        }
    }
}
