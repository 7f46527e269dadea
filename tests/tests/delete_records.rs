//! DeleteRecords through librdkafka's admin client against three nodes (replication factor 3):
//! the answer is the low watermark, consumers start there, an offset past the high watermark is
//! OFFSET_OUT_OF_RANGE, and the followers delete too, so a new leader after a kill starts its
//! log at the same offset.

use std::time::Duration;

use anyhow::{anyhow, ensure, Result};
use brook_tests::cluster::*;
use brook_tests::*;
use rdkafka::admin::AdminOptions;
use rdkafka::{Offset, TopicPartitionList};

const TOPIC: &str = "purged";

/// The earliest offset of `partition` as its current leader answers ListOffsets.
fn earliest(c: &Cluster, partition: i32) -> Result<i64> {
    wait_for(
        "a leader to answer ListOffsets",
        Duration::from_secs(60),
        || {
            let leader = c.partition(c.up_ids()[0], TOPIC, partition)?.leader;
            ensure!(leader > 0 && c.is_up(leader), "no live leader yet");
            let (code, offset, _) = list_offset(&mut c.conn(leader)?, TOPIC, partition, -2)?;
            ensure!(code == 0, "ListOffsets error {code}");
            Ok(Some(offset))
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_records_stay_deleted_on_every_replica() -> Result<()> {
    let mut c = Cluster::start(3);
    c.create_replicated_topic(1, TOPIC, 2, 3, &[("min.insync.replicas", "2")])?;
    let messages: Vec<Msg> = (0..100)
        .map(|i| Msg::value(format!("m{i}")).partition(0))
        .collect();
    produce_all(&producer(c.node(1), &[]), TOPIC, &messages).await?;

    let mut offsets = TopicPartitionList::new();
    offsets.add_partition_offset(TOPIC, 0, Offset::Offset(40))?;
    offsets.add_partition_offset(TOPIC, 1, Offset::Offset(1000))?;
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let answered = admin(c.node(1)).delete_records(&offsets, &options).await?;
    let p0 = answered
        .find_partition(TOPIC, 0)
        .ok_or_else(|| anyhow!("no answer for partition 0"))?;
    ensure!(p0.error().is_ok(), "partition 0: {:?}", p0.error());
    ensure!(
        p0.offset() == Offset::Offset(40),
        "low watermark {:?}",
        p0.offset()
    );
    let p1 = answered
        .find_partition(TOPIC, 1)
        .ok_or_else(|| anyhow!("no answer for partition 1"))?;
    ensure!(
        format!("{:?}", p1.error()).contains("OffsetOutOfRange"),
        "partition 1 past its high watermark: {:?}",
        p1.error()
    );

    ensure!(earliest(&c, 0)? == 40);
    let read: Vec<i64> = consume_all(c.node(1), TOPIC)?
        .into_iter()
        .map(|r| r.offset)
        .collect();
    ensure!(read == (40..100).collect::<Vec<_>>(), "read {read:?}");

    // Every replica deleted: whichever follower leads next starts at 40 as well.
    let leader = c.partition(1, TOPIC, 0)?.leader;
    c.kill9(leader);
    let next = wait_for("a new leader", Duration::from_secs(60), || {
        let id = c.up_ids()[0];
        let p = c.partition(id, TOPIC, 0)?;
        Ok((p.leader > 0 && p.leader != leader).then_some(p.leader))
    })?;
    ensure!(
        earliest(&c, 0)? == 40,
        "node {next} leads from another offset"
    );
    c.restart(leader);
    Ok(())
}
