//! The pure parts of `brook group`: `--topic T:0,1` parsing, offset-reset planning with clamping,
//! lag, error names and consumer-protocol assignment decoding.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::ConsumerProtocolAssignment;
use kafka_protocol::protocol::{Decodable, Message};

/// A `--topic` argument: a topic, optionally restricted to some partitions (`T:0,1,2`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicSpec {
    pub topic: String,
    /// `None`: every partition of the topic.
    pub partitions: Option<Vec<i32>>,
}

/// Parses `T` or `T:P,P...` (Kafka's `--topic` syntax for reset-offsets).
pub fn parse_topic_spec(text: &str) -> Result<TopicSpec, String> {
    let (topic, partitions) = match text.split_once(':') {
        None => (text, None),
        Some((topic, list)) => {
            let mut partitions = Vec::new();
            for part in list.split(',') {
                let part = part.trim();
                let p: i32 = part
                    .parse()
                    .map_err(|_| format!("`{part}` in `{text}` is not a partition number"))?;
                if p < 0 {
                    return Err(format!("partition {p} in `{text}` is negative"));
                }
                if !partitions.contains(&p) {
                    partitions.push(p);
                }
            }
            partitions.sort_unstable();
            (topic, Some(partitions))
        }
    };
    let topic = topic.trim();
    if topic.is_empty() {
        return Err(format!("no topic name in `{text}`"));
    }
    Ok(TopicSpec {
        topic: topic.to_string(),
        partitions,
    })
}

/// Where `reset-offsets` moves a group's offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetStrategy {
    Earliest,
    Latest,
    Offset(i64),
    ShiftBy(i64),
    /// Milliseconds since the epoch: the first offset whose timestamp is at or after it.
    Datetime(i64),
}

/// What the brokers know about one partition when planning a reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionState {
    pub log_start: i64,
    pub log_end: i64,
    /// The group's committed offset, if it has one.
    pub committed: Option<i64>,
    /// For `--to-datetime`: the offset ListOffsets found for the timestamp (`None` or -1: no
    /// record that late, so the log end).
    pub by_time: Option<i64>,
}

/// The new offset of one partition, clamped to `[log start, log end]` as Kafka does.
pub fn plan_offset(strategy: ResetStrategy, state: &PartitionState) -> Result<i64, String> {
    let wanted = match strategy {
        ResetStrategy::Earliest => state.log_start,
        ResetStrategy::Latest => state.log_end,
        ResetStrategy::Offset(n) => n,
        ResetStrategy::ShiftBy(n) => match state.committed {
            Some(current) => current.saturating_add(n),
            None => return Err("there is no committed offset to shift".to_string()),
        },
        ResetStrategy::Datetime(_) => match state.by_time {
            Some(offset) if offset >= 0 => offset,
            _ => state.log_end,
        },
    };
    Ok(clamp(wanted, state.log_start, state.log_end))
}

fn clamp(offset: i64, start: i64, end: i64) -> i64 {
    if offset > end {
        end
    } else if offset < start {
        start
    } else {
        offset
    }
}

/// The lag of a partition: log end minus the committed offset; unknown without either.
pub fn lag(committed: Option<i64>, log_end: Option<i64>) -> Option<i64> {
    Some(log_end? - committed?)
}

/// The partitions of a consumer-protocol assignment (a 2-byte version, then the body), as
/// `(topic, partitions)` pairs. An empty assignment (a member before its first sync) has none.
pub fn decode_assignment(data: &Bytes) -> Result<Vec<(String, Vec<i32>)>, String> {
    if data.is_empty() {
        return Ok(Vec::new());
    }
    let mut buf = data.clone();
    if buf.remaining() < 2 {
        return Err("assignment shorter than its version".to_string());
    }
    let version = buf.get_i16();
    if version < 0 {
        return Err(format!("assignment version {version}"));
    }
    // Newer versions only add fields at the end, so read them as the newest version we know.
    let version = version.min(ConsumerProtocolAssignment::VERSIONS.max);
    let assignment = ConsumerProtocolAssignment::decode(&mut buf, version)
        .map_err(|e| format!("undecodable assignment: {e:#}"))?;
    Ok(assignment
        .assigned_partitions
        .into_iter()
        .map(|tp| (tp.topic.0.to_string(), tp.partitions))
        .collect())
}

/// `t1:0,1 t2:3` for a members table.
pub fn format_assignment(assignment: &[(String, Vec<i32>)]) -> String {
    if assignment.is_empty() {
        return "-".to_string();
    }
    assignment
        .iter()
        .map(|(topic, partitions)| {
            let list: Vec<String> = partitions.iter().map(i32::to_string).collect();
            format!("{topic}:{}", list.join(","))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::output::{or_dash, render_table};
    use bytes::{BufMut, BytesMut};
    use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    #[test]
    fn topic_specs() {
        assert_eq!(
            parse_topic_spec("orders"),
            Ok(TopicSpec {
                topic: "orders".into(),
                partitions: None
            })
        );
        assert_eq!(
            parse_topic_spec("orders:2,0, 1,0"),
            Ok(TopicSpec {
                topic: "orders".into(),
                partitions: Some(vec![0, 1, 2])
            })
        );
        assert!(parse_topic_spec("orders:").is_err());
        assert!(parse_topic_spec("orders:a").is_err());
        assert!(parse_topic_spec("orders:-1").is_err());
        assert!(parse_topic_spec(":1").is_err());
    }

    fn state(start: i64, end: i64, committed: Option<i64>) -> PartitionState {
        PartitionState {
            log_start: start,
            log_end: end,
            committed,
            by_time: None,
        }
    }

    #[test]
    fn planning_clamps_to_the_log() {
        let s = state(10, 100, Some(50));
        assert_eq!(plan_offset(ResetStrategy::Earliest, &s), Ok(10));
        assert_eq!(plan_offset(ResetStrategy::Latest, &s), Ok(100));
        assert_eq!(plan_offset(ResetStrategy::Offset(42), &s), Ok(42));
        assert_eq!(plan_offset(ResetStrategy::Offset(5), &s), Ok(10));
        assert_eq!(plan_offset(ResetStrategy::Offset(500), &s), Ok(100));
        assert_eq!(plan_offset(ResetStrategy::ShiftBy(-10), &s), Ok(40));
        assert_eq!(plan_offset(ResetStrategy::ShiftBy(-100), &s), Ok(10));
        assert_eq!(plan_offset(ResetStrategy::ShiftBy(70), &s), Ok(100));
        assert_eq!(plan_offset(ResetStrategy::ShiftBy(i64::MAX), &s), Ok(100));
        assert!(plan_offset(ResetStrategy::ShiftBy(1), &state(0, 5, None)).is_err());
    }

    #[test]
    fn planning_by_time() {
        let mut s = state(10, 100, None);
        s.by_time = Some(60);
        assert_eq!(plan_offset(ResetStrategy::Datetime(1), &s), Ok(60));
        s.by_time = Some(-1);
        assert_eq!(plan_offset(ResetStrategy::Datetime(1), &s), Ok(100));
        s.by_time = None;
        assert_eq!(plan_offset(ResetStrategy::Datetime(1), &s), Ok(100));
    }

    #[test]
    fn lag_needs_both_ends() {
        assert_eq!(lag(Some(3), Some(10)), Some(7));
        assert_eq!(lag(None, Some(10)), None);
        assert_eq!(lag(Some(3), None), None);
        assert_eq!(or_dash(lag(None, Some(1))), "-");
        assert_eq!(or_dash(Some(7)), "7");
    }

    fn encoded(version: i16) -> Bytes {
        let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(vec![
            TopicPartition::default()
                .with_topic(TopicName(StrBytes::from_static_str("a")))
                .with_partitions(vec![0, 2]),
            TopicPartition::default()
                .with_topic(TopicName(StrBytes::from_static_str("b")))
                .with_partitions(vec![1]),
        ]);
        let mut buf = BytesMut::new();
        buf.put_i16(version);
        let body_version = version.min(ConsumerProtocolAssignment::VERSIONS.max);
        assert!(assignment.encode(&mut buf, body_version).is_ok());
        buf.freeze()
    }

    #[test]
    fn assignments_decode() {
        for version in [0, 1, 3] {
            let decoded = decode_assignment(&encoded(version));
            assert_eq!(
                decoded,
                Ok(vec![
                    ("a".to_string(), vec![0, 2]),
                    ("b".to_string(), vec![1])
                ])
            );
        }
        // A newer version with extra trailing bytes still decodes.
        let mut newer = BytesMut::from(&encoded(4)[..]);
        newer.put_u8(0);
        assert!(decode_assignment(&newer.freeze()).is_ok());
        assert_eq!(decode_assignment(&Bytes::new()), Ok(vec![]));
        assert!(decode_assignment(&Bytes::from_static(&[0])).is_err());
        assert!(decode_assignment(&Bytes::from_static(&[0, 0, 0, 0, 0, 9])).is_err());
        assert_eq!(
            format_assignment(&[("a".to_string(), vec![0, 2]), ("b".to_string(), vec![1])]),
            "a:0,2 b:1"
        );
        assert_eq!(format_assignment(&[]), "-");
    }

    #[test]
    fn tables_align() {
        let table = render_table(
            &["TOPIC", "PARTITION", "LAG"],
            &[
                vec!["orders".into(), "0".into(), "-".into()],
                vec!["a".into(), "10".into(), "12345".into()],
            ],
        );
        assert_eq!(
            table,
            "TOPIC   PARTITION  LAG\n\
             orders  0          -\n\
             a       10         12345\n"
        );
        assert_eq!(render_table(&["A", "B"], &[]), "A  B\n");
    }
}
