//! Helpers shared by the actor tests: a partition replica over its own store and actor
//! system, driven the way the node drives it, and batches to feed it.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use brook_actors::*;
use brook_storage::{LogConfig, Store};
use brook_wire::batch::{validate_batches, BatchHeader};
use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use tokio::sync::mpsc;

pub const KEY: PartitionKey = PartitionKey {
    topic_id: [7; 16],
    partition: 0,
};

pub fn config() -> PartitionConfig {
    PartitionConfig {
        log: LogConfig::default(),
        log_append_time: false,
        ack_before_flush: false,
        replica_lag_max_ms: 30_000,
    }
}

pub fn batch(values: &[&str]) -> (BytesMut, BatchHeader) {
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder starts a new batch wherever offset - sequence changes.
            sequence: (i as i32) - 1,
            timestamp: 1_000 + i as i64,
            key: None,
            value: Some(Bytes::from(v.to_string())),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
    let header = validate_batches(&buf).unwrap()[0].1;
    (buf, header)
}

pub struct Replica {
    _dir: tempfile::TempDir,
    _system: ActorSystem,
    _isr_requests: mpsc::UnboundedReceiver<IsrRequest>,
    pub handle: PartitionHandle,
    pub store: Store,
}

pub fn replica(me: i32) -> Replica {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let system = ActorSystem::start(1).unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let registry = PartitionRegistry::new(store.clone(), me, tx, system.arbiters().to_vec());
    let handle = registry.open(KEY, config()).unwrap();
    Replica {
        _dir: dir,
        _system: system,
        _isr_requests: rx,
        handle,
        store,
    }
}

/// Leads `epoch` of a partition with replicas [me, other].
pub fn lead(r: &Replica, me: i32, epoch: i32, isr: &[i32], min_insync: usize) {
    r.handle.addr.do_send(BecomeLeader(Leadership {
        leader_epoch: epoch,
        partition_epoch: 0,
        replicas: vec![me, 3 - me],
        isr: isr.to_vec(),
        min_insync,
    }));
}

pub fn follow(r: &Replica, leader: i32, epoch: i32) {
    r.handle.addr.do_send(BecomeFollower {
        leader: Some(leader),
        leader_epoch: epoch,
    });
}

pub async fn append(r: &Replica, values: &[&str], acks: Acks) -> Result<Appended, PartitionError> {
    let (batch, header) = batch(values);
    append_bytes(r, batch, header, acks).await
}

pub async fn fetch(
    leader: &Replica,
    replica: i32,
    offset: u64,
    last_epoch: i32,
    epoch: i32,
) -> Result<ReplicaRead, PartitionError> {
    ask(&leader.handle.addr, |reply| ReplicaFetch {
        replica,
        offset,
        last_fetched_epoch: last_epoch,
        current_leader_epoch: epoch,
        log_start: -1,
        max_bytes: 1 << 20,
        reply,
    })
    .await
}

pub async fn copy(follower: &Replica, records: Bytes, hw: u64, epoch: i32) -> FollowerPosition {
    ask(&follower.handle.addr, |reply| AppendAsFollower {
        leader_epoch: epoch,
        records,
        leader_high_watermark: hw,
        leader_log_start: 0,
        reply,
    })
    .await
    .unwrap()
}

pub async fn latest(r: &Replica) -> Result<OffsetAnswer, PartitionError> {
    list_offset(r, OffsetQuery::Latest).await
}

/// Appends `batch` as a producer would, with the header the node's pre-check read from it.
pub async fn append_bytes(
    r: &Replica,
    batch: BytesMut,
    header: BatchHeader,
    acks: Acks,
) -> Result<Appended, PartitionError> {
    ask(&r.handle.addr, |reply| AppendBatch {
        batch,
        header,
        acks,
        reply,
    })
    .await
}

/// Everything a consumer can read, from offset 0.
pub async fn read_all(r: &Replica) -> Bytes {
    ask(&r.handle.addr, |reply| ReadRecords {
        offset: 0,
        max_bytes: usize::MAX,
        reply,
    })
    .await
    .unwrap()
    .records
}

pub async fn list_offset(r: &Replica, query: OffsetQuery) -> Result<OffsetAnswer, PartitionError> {
    ask(&r.handle.addr, |reply| ListOffset { query, reply }).await
}

/// A batch at offset 0, epoch 1, whose records section is `records` as given (compressed if
/// `codec` says so) and which claims `count` records: a real batch's header with the length,
/// count, last offset delta and codec rewritten, and the CRC fixed, so the header passes and
/// only the records are wrong.
pub fn with_records(codec: Compression, count: i32, records: &[u8]) -> BytesMut {
    const ATTRIBUTES: usize = 21;
    let mut bytes = batch(&["template"]).0[..61].to_vec();
    bytes[12..16].copy_from_slice(&1i32.to_be_bytes());
    bytes.extend_from_slice(records);
    let fields: [(usize, i32); 3] = [
        (8, i32::try_from(bytes.len() - 12).unwrap()),
        (57, count),
        (23, count.wrapping_sub(1)),
    ];
    for (at, value) in fields {
        bytes[at..at + 4].copy_from_slice(&value.to_be_bytes());
    }
    bytes[ATTRIBUTES + 1] = (bytes[ATTRIBUTES + 1] & !0x07) | codec as u8;
    let crc = crc32c::crc32c(&bytes[ATTRIBUTES..]);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    BytesMut::from(&bytes[..])
}
