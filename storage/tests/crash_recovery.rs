//! Crash recovery, in the style of sled's own test_crash_recovery: a child process (this test
//! binary re-executed with an env var) appends and flushes batches, printing each batch only
//! after the flush that covers it resolved. The parent SIGKILLs it at a random moment, reopens
//! the store and checks that every printed batch is there with the right bytes, that the log
//! has no hole, and that the producer state matches the log.
// Test helpers live outside #[test] fns, where clippy's allow-unwrap-in-tests does not reach.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use brook_storage::{BatchMeta, LogConfig, PartitionLog, ProducerCheck, Store};
use common::{TOPIC_A, TOPIC_B};

const CHILD_DIR_ENV: &str = "BROOK_STORAGE_CRASH_CHILD_DIR";
/// Rounds per run; `BROOK_CRASH_ROUNDS` raises it for a soak.
const ROUNDS: usize = 6;
const PRODUCER: i64 = 9;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 2_000,
        segment_ms: -1,
        retention_ms: -1,
        retention_bytes: 8_000,
    }
}

/// Self-describing bytes, so the parent can walk the log without knowing what was written.
fn batch_bytes(base: u64, records: u64, len: usize) -> Vec<u8> {
    let mut v = format!("crash@{base}+{records};").into_bytes();
    let fill = (base % 251) as u8;
    v.resize(len.max(v.len()), fill);
    v
}

/// (base, records) from bytes made by [`batch_bytes`].
fn parse(bytes: &[u8]) -> (u64, u64) {
    let text =
        std::str::from_utf8(&bytes[..bytes.iter().position(|&b| b == b';').unwrap()]).unwrap();
    let (base, records) = text
        .strip_prefix("crash@")
        .unwrap()
        .split_once('+')
        .unwrap();
    (base.parse().unwrap(), records.parse().unwrap())
}

fn meta(base: u64, records: u64) -> BatchMeta {
    BatchMeta {
        last_offset_delta: records as i32 - 1,
        max_timestamp: base as i64,
        producer_id: PRODUCER,
        producer_epoch: 0,
        // The only producer, so its sequence is the offset.
        base_sequence: base as i32,
        leader_epoch: (base / 100) as i32,
    }
}

struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        Rng(nanos ^ (u64::from(std::process::id()) << 32) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Appends forever; prints `ok <partition index> <base> <records> <len>` once flushed.
fn run_child(dir: &Path) -> ! {
    let store = Store::open(dir).unwrap();
    let mut logs = [
        store.open_partition(TOPIC_A, 0, config()).unwrap(),
        store.open_partition(TOPIC_B, 3, config()).unwrap(),
    ];
    let mut rng = Rng::seeded();
    let stdout = std::io::stdout();
    loop {
        let mut written = Vec::new();
        for _ in 0..=rng.below(4) {
            let p = rng.below(2) as usize;
            let log = &mut logs[p];
            let base = log.log_end_offset();
            let records = 1 + rng.below(4);
            let len = 20 + rng.below(300) as usize;
            let m = meta(base, records);
            assert_eq!(
                log.check_append(&m).unwrap(),
                ProducerCheck::Append { base_offset: base }
            );
            log.append(base, &m, &batch_bytes(base, records, len), 0)
                .unwrap();
            written.push((p, base, records, len));
        }
        futures::executor::block_on(store.flush()).unwrap();
        for log in &mut logs {
            log.set_high_watermark(log.log_end_offset()).unwrap();
            log.apply_retention(0).unwrap();
        }
        let mut out = stdout.lock();
        for (p, base, records, len) in written {
            writeln!(out, "ok {p} {base} {records} {len}").unwrap();
        }
        out.flush().unwrap();
    }
}

/// Checks one recovered log against what the child reported as durable.
fn verify(log: &PartitionLog, printed: &[(u64, u64, usize)]) {
    let (start, end) = (log.log_start_offset(), log.log_end_offset());
    // The stored high watermark may trail the last flush by one round; never past the end.
    assert!(log.high_watermark() <= end);
    // Segments tile [first base, end) without gaps.
    let segs = log.segments();
    assert!(segs[0].base_offset <= start);
    for pair in segs.windows(2) {
        assert_eq!(pair[0].end_offset, pair[1].base_offset, "{segs:?}");
    }
    assert_eq!(segs.last().unwrap().end_offset, end);

    // Walk the whole log batch by batch: no hole, every batch where its bytes say.
    let mut offset = start;
    let mut last_batch = None;
    while offset < end {
        let bytes = log.read(offset, 0, u64::MAX).unwrap();
        let (base, records) = parse(&bytes);
        assert!(
            base <= offset && offset < base + records,
            "{offset} in {base}+{records}"
        );
        if offset > start {
            assert_eq!(base, offset, "hole before {base}");
        }
        last_batch = Some((base, records));
        offset = base + records;
    }
    assert_eq!(offset, end);

    // Every flushed batch survived, unless retention legitimately removed it.
    for &(base, records, len) in printed {
        assert!(
            base + records <= end,
            "flushed batch {base} lost (log end {end})"
        );
        if base + records > start {
            let bytes = log.read(base.max(start), 0, u64::MAX).unwrap();
            assert_eq!(&bytes[..], &batch_bytes(base, records, len)[..]);
        }
    }
    if let Some(&(base, _, _)) = printed.last() {
        assert!(base >= start, "retention never reaches the newest batches");
    }

    // The producer state was rebuilt up to the last batch.
    if let Some((base, records)) = last_batch {
        assert_eq!(
            log.check_append(&meta(base, records)).unwrap(),
            ProducerCheck::Duplicate {
                base_offset: base,
                last_offset: base + records - 1
            }
        );
    }
    assert_eq!(
        log.check_append(&meta(end, 1)).unwrap(),
        ProducerCheck::Append { base_offset: end }
    );
    assert_eq!(
        log.end_offset_for_epoch(log.latest_epoch().unwrap_or(0))
            .map(|(_, o)| o),
        (end > 0).then_some(end)
    );
}

#[test]
fn crash_recovery() {
    if let Some(dir) = std::env::var_os(CHILD_DIR_ENV) {
        run_child(Path::new(&dir));
    }
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::seeded();
    let mut printed: [Vec<(u64, u64, usize)>; 2] = Default::default();
    let mut rounds_with_progress = 0;
    let rounds = std::env::var("BROOK_CRASH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(ROUNDS);
    for round in 0..rounds {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "crash_recovery",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let reader = {
            let stdout = child.stdout.take().unwrap();
            let lines = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if line.starts_with("ok ") {
                        lines.lock().unwrap().push(line);
                    }
                }
            })
        };
        std::thread::sleep(Duration::from_millis(200 + rng.below(800)));
        child.kill().unwrap();
        let status = child.wait().unwrap();
        reader.join().unwrap();
        assert!(!status.success(), "child exited on its own: {status}");

        let lines = std::mem::take(&mut *lines.lock().unwrap());
        if !lines.is_empty() {
            rounds_with_progress += 1;
        }
        for line in &lines {
            let f: Vec<&str> = line.split_whitespace().collect();
            let p: usize = f[1].parse().unwrap();
            printed[p].push((
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
                f[4].parse().unwrap(),
            ));
        }
        let store = Store::open(dir.path()).unwrap();
        let a = store.open_partition(TOPIC_A, 0, config()).unwrap();
        let b = store.open_partition(TOPIC_B, 3, config()).unwrap();
        verify(&a, &printed[0]);
        verify(&b, &printed[1]);
        eprintln!(
            "round {round}: {} flushed batches reported; logs end at {} and {}, {} segments",
            lines.len(),
            a.log_end_offset(),
            b.log_end_offset(),
            a.segments().len() + b.segments().len()
        );
    }
    assert!(
        rounds_with_progress >= rounds / 2,
        "the child rarely got anything flushed"
    );
}
