//! Properties of the shared-tree layout, checked against the raw trees: any number of
//! partitions costs three trees, every partition's keys stay under its own id, and nothing
//! one partition does (appends, rolls, retention, truncation, removal) touches another's keys.

use std::collections::BTreeMap;

use crate::directory::Directory;
use crate::keys;
use crate::recovery::tests::small;
use crate::{BatchMeta, Error, PartitionLog, Store};

const TOPIC: [u8; 16] = [3; 16];

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

fn meta(seq: i32) -> BatchMeta {
    BatchMeta {
        last_offset_delta: 1,
        max_timestamp: i64::from(seq),
        producer_id: 5,
        producer_epoch: 0,
        base_sequence: seq,
        leader_epoch: seq / 4,
    }
}

fn push(log: &mut PartitionLog, len: usize) {
    let end = log.log_end_offset();
    let seq = i32::try_from(end).unwrap();
    log.append(end, &meta(seq), &vec![b'a' + (end % 26) as u8; len], 0)
        .unwrap();
}

/// Every key (and value) of partition `id`, in both data trees.
fn keys_of(store: &Store, id: u64) -> BTreeMap<(u8, Vec<u8>), Vec<u8>> {
    let trees = &store.inner().trees;
    let mut all = BTreeMap::new();
    for (n, tree) in [&trees.meta, &trees.batches].into_iter().enumerate() {
        for item in tree.scan_prefix(keys::id_prefix(id)) {
            let (k, v) = item.unwrap();
            all.insert((n as u8, k.to_vec()), v.to_vec());
        }
    }
    all
}

#[test]
fn five_thousand_partitions_cost_three_trees() {
    let (dir, store) = store();
    let trees_before = store.inner().db.tree_names().len();
    for p in 0..5_000 {
        let mut log = store.open_partition(TOPIC, p, small()).unwrap();
        push(&mut log, 10 + (p as usize % 7));
    }
    // The default tree plus directory, meta and batches, however many partitions there are.
    assert_eq!(store.inner().db.tree_names().len(), trees_before);
    assert_eq!(trees_before, 4);
    assert_eq!(store.partitions().unwrap().len(), 5_000);
    drop(store);

    let store = Store::open(dir.path()).unwrap();
    for p in (0..5_000).step_by(7) {
        let log = store.open_partition(TOPIC, p, small()).unwrap();
        assert_eq!(log.log_end_offset(), 2);
        let bytes = log.read(0, usize::MAX, 2).unwrap();
        assert_eq!(bytes.len(), 10 + (p as usize % 7), "partition {p}");
    }
}

#[test]
fn nothing_a_partition_does_touches_its_neighbours_keys() {
    let (_dir, store) = store();
    let mut before = store.open_partition(TOPIC, 0, small()).unwrap();
    let mut log = store.open_partition(TOPIC, 1, small()).unwrap();
    let mut after = store.open_partition(TOPIC, 2, small()).unwrap();
    // Adjacent ids: the neighbours' keys sort right before and after the partition's.
    assert_eq!((before.id + 1, log.id + 1), (log.id, after.id));
    for _ in 0..6 {
        push(&mut before, 40);
        push(&mut after, 40);
    }
    let neighbours = |store: &Store| (keys_of(store, before.id), keys_of(store, after.id));
    let untouched = neighbours(&store);

    for _ in 0..20 {
        push(&mut log, 40);
    }
    assert!(log.segments().len() > 5);
    log.set_high_watermark(30).unwrap();
    log.delete_records_before(13).unwrap();
    log.config.retention_bytes = 200;
    assert!(log.apply_retention(0).unwrap() > 0);
    log.truncate_to_batch(31).unwrap();
    push(&mut log, 40);
    log.truncate_fully(100).unwrap();
    push(&mut log, 40);
    assert_eq!(neighbours(&store), untouched);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (100, 102));

    let id = log.id;
    drop(log);
    store.remove_partition(TOPIC, 1).unwrap();
    assert!(keys_of(&store, id).is_empty());
    assert_eq!(neighbours(&store), untouched);
    // Opened again, it is a new partition under a new id.
    let log = store.open_partition(TOPIC, 1, small()).unwrap();
    assert!(log.id > after.id);
    assert_eq!(log.log_end_offset(), 0);
}

#[test]
fn segments_are_key_ranges_and_retention_removes_them() {
    let (_dir, store) = store();
    let mut log = store.open_partition(TOPIC, 0, small()).unwrap();
    for _ in 0..10 {
        push(&mut log, 40);
    }
    let bases: Vec<u64> = log.segments().iter().map(|s| s.base_offset).collect();
    assert_eq!(bases, vec![0, 4, 8, 12, 16]);
    let id = log.id;
    let batches = |store: &Store| {
        let keys = keys_of(store, id);
        let offsets = keys.keys().filter(|(tree, _)| *tree == 1);
        offsets
            .map(|(_, k)| keys::parse_batch(k).unwrap())
            .collect::<Vec<u64>>()
    };
    assert_eq!(batches(&store), (0..20).step_by(2).collect::<Vec<u64>>());
    log.set_high_watermark(20).unwrap();
    log.delete_records_before(9).unwrap();
    assert_eq!(batches(&store), (8..20).step_by(2).collect::<Vec<u64>>());
    let headers = store
        .inner()
        .trees
        .meta
        .scan_prefix(keys::meta(log.id, keys::SEGMENT));
    assert_eq!(headers.count(), 3);
}

#[test]
fn data_of_a_removal_cut_short_is_swept_on_open() {
    let (dir, store) = store();
    let mut log = store.open_partition(TOPIC, 4, small()).unwrap();
    push(&mut log, 40);
    let mut kept = store.open_partition(TOPIC, 5, small()).unwrap();
    push(&mut kept, 40);
    let (id, kept_id) = (log.id, kept.id);
    drop((log, kept));
    // As if a crash came right after the directory entry went.
    let directory = Directory::open(&store.inner().db).unwrap();
    assert_eq!(directory.remove(TOPIC, 4).unwrap(), Some(id));
    assert!(!keys_of(&store, id).is_empty());
    drop((directory, store));

    let store = Store::open(dir.path()).unwrap();
    assert!(keys_of(&store, id).is_empty());
    assert!(!keys_of(&store, kept_id).is_empty());
    assert_eq!(store.partitions().unwrap(), vec![(TOPIC, 5)]);
}

#[test]
fn a_store_in_the_old_layout_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::Config::new()
        .path(dir.path())
        .segment_size(crate::StoreConfig::default().io_buffer_bytes)
        .open()
        .unwrap();
    db.open_tree("brook/p/0707/0/meta").unwrap();
    drop(db);
    assert!(matches!(
        Store::open(dir.path()),
        Err(Error::UnsupportedFormat(_))
    ));
}

#[test]
fn a_failed_flush_fails_every_later_one() {
    let (_dir, store) = store();
    futures::executor::block_on(store.flush()).unwrap();
    assert!(!store.is_failed());
    store.inject_flush_failure();
    for _ in 0..3 {
        let flushed = futures::executor::block_on(store.flush());
        assert!(matches!(flushed, Err(Error::Sled(_))));
        assert!(store.is_failed());
    }
}
