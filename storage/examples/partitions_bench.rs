//! What partitions cost: creates N partitions in a temporary directory, appends batches to
//! each, flushes, and prints the time to create them, the RSS growth while they sit open and
//! idle (sled's shared page cache included), the disk used, how many of sled's blob files
//! that took, and the time to reopen the store and every partition. Prints figures only;
//! nothing here asserts a speed.
//!
//! `cargo run --release -p brook-storage --example partitions_bench -- [partitions]
//!  [batch bytes] [batches per partition] [sled I/O buffer bytes]`
//! (defaults 10000, 100, 1, and `StoreConfig`'s default buffer).
// A benchmark binary: a failure should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Instant;

use brook_storage::{BatchMeta, LogConfig, PartitionLog, Store, StoreConfig};

fn arg<T: std::str::FromStr>(n: usize, default: T) -> T {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

/// Resident set size in KiB, from /proc (0 where there is none).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// (bytes, files, files under a `blobs` directory) below `dir`.
fn disk(dir: &Path) -> (u64, u64, u64) {
    let mut total = (0, 0, 0);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return total;
    };
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            let (bytes, files, blobs) = disk(&entry.path());
            let is_blobs = entry.file_name() == "blobs";
            total.0 += bytes;
            total.1 += files;
            total.2 += if is_blobs { files } else { blobs };
        } else {
            total.0 += meta.len();
            total.1 += 1;
        }
    }
    total
}

fn topic(i: usize) -> ([u8; 16], i32) {
    // A few topics, many partitions each, like a real node.
    let mut id = [0x5a; 16];
    id[0] = (i % 4) as u8;
    (id, (i / 4) as i32)
}

fn meta() -> BatchMeta {
    BatchMeta {
        last_offset_delta: 0,
        max_timestamp: 0,
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        leader_epoch: 0,
    }
}

fn open_all(store: &Store, n: usize) -> Vec<PartitionLog> {
    (0..n)
        .map(|i| {
            let (t, p) = topic(i);
            store.open_partition(t, p, LogConfig::default()).unwrap()
        })
        .collect()
}

fn main() {
    let n: usize = arg(1, 10_000);
    let batch_bytes: usize = arg(2, 100);
    let batches: usize = arg(3, 1);
    let config = StoreConfig {
        io_buffer_bytes: arg(4, StoreConfig::default().io_buffer_bytes),
        ..StoreConfig::default()
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let payload = vec![b'x'; batch_bytes];

    let rss_before = rss_kib();
    let store = Store::open_with(dir, config).unwrap();
    let start = Instant::now();
    let mut logs = open_all(&store, n);
    let create_s = start.elapsed().as_secs_f64();

    let start = Instant::now();
    for _ in 0..batches {
        for log in &mut logs {
            let end = log.log_end_offset();
            log.append(end, &meta(), &payload, 0).unwrap();
        }
    }
    futures::executor::block_on(store.flush()).unwrap();
    let append_s = start.elapsed().as_secs_f64();
    let rss_open = rss_kib().saturating_sub(rss_before);
    let (bytes, files, blobs) = disk(dir);

    drop(logs);
    drop(store);
    let start = Instant::now();
    let store = Store::open_with(dir, config).unwrap();
    let logs = open_all(&store, n);
    let reopen_s = start.elapsed().as_secs_f64();
    let ends: u64 = logs.iter().map(PartitionLog::log_end_offset).sum();
    assert_eq!(ends, (n * batches) as u64, "a batch went missing");

    println!("partitions            {n}");
    println!("batches               {batches} x {batch_bytes} bytes per partition");
    println!("sled I/O buffer       {} KiB", config.io_buffer_bytes >> 10);
    println!("create                {create_s:.2} s");
    let data_mib = (n * batches * batch_bytes) as f64 / (1 << 20) as f64;
    println!(
        "append + flush        {append_s:.2} s ({:.0} MiB/s)",
        data_mib / append_s
    );
    println!(
        "RSS growth, open idle {:.1} MiB ({:.1} KiB per partition)",
        rss_open as f64 / 1024.0,
        rss_open as f64 / n as f64
    );
    println!(
        "disk                  {:.1} MiB in {files} files ({blobs} blob files)",
        bytes as f64 / (1 << 20) as f64
    );
    println!("reopen                {reopen_s:.2} s");
}
