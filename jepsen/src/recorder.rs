//! Recording the history while a run is under way: every entry gets the next index and the
//! time since the start under one lock, so both grow in file order.
//!
//! Entries are written to `history.jsonl` by a background thread every [`FLUSH_EVERY`], not by
//! the workers: a write that blocks (the page cache throttled while the nodes fsync) would
//! otherwise hold the lock and freeze every worker and the nemesis with it, which shows up as
//! a gap in the history that the system under test did not cause. A crashed harness still
//! leaves the history up to its last fraction of a second.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::Value;

use crate::history::{Op, OpType, Process};

const FLUSH_EVERY: Duration = Duration::from_millis(100);

struct Shared {
    start: Instant,
    /// Next index, and entries not yet written.
    pending: Mutex<(u64, Vec<Op>)>,
    out: Mutex<BufWriter<File>>,
    stop: AtomicBool,
}

impl Shared {
    fn flush(&self) {
        // The file lock first: two flushes must not write their batches out of order.
        let Ok(mut out) = self.out.lock() else {
            return;
        };
        let batch = match self.pending.lock() {
            Ok(mut p) => std::mem::take(&mut p.1),
            Err(_) => return,
        };
        for op in &batch {
            if serde_json::to_writer(&mut *out, op).is_ok() {
                let _ = out.write_all(b"\n");
            }
        }
        let _ = out.flush();
    }
}

pub struct Recorder {
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
}

impl Recorder {
    pub fn create(path: &Path) -> Result<Self> {
        let shared = Arc::new(Shared {
            start: Instant::now(),
            pending: Mutex::new((0, Vec::new())),
            out: Mutex::new(BufWriter::new(File::create(path)?)),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        let writer = std::thread::Builder::new()
            .name("history".into())
            .spawn(move || {
                while !s.stop.load(Ordering::Relaxed) {
                    std::thread::sleep(FLUSH_EVERY);
                    s.flush();
                }
            })?;
        Ok(Recorder {
            shared,
            writer: Some(writer),
        })
    }

    /// Nanoseconds since the run started.
    pub fn now(&self) -> u64 {
        self.shared.start.elapsed().as_nanos() as u64
    }

    /// Writes out everything recorded so far.
    pub fn flush(&self) {
        self.shared.flush();
    }

    /// Appends one entry.
    pub fn record(
        &self,
        process: &Process,
        kind: OpType,
        f: &str,
        value: Value,
        error: Option<String>,
        node: Option<u32>,
    ) {
        let Ok(mut p) = self.shared.pending.lock() else {
            return;
        };
        let op = Op {
            index: p.0,
            time: self.now(),
            process: process.clone(),
            kind,
            f: f.to_string(),
            value,
            error,
            node,
        };
        p.0 += 1;
        p.1.push(op);
    }

    pub fn invoke(&self, process: &Process, f: &str, value: Value) {
        self.record(process, OpType::Invoke, f, value, None, None);
    }

    pub fn complete(
        &self,
        process: &Process,
        kind: OpType,
        f: &str,
        value: Value,
        error: Option<String>,
    ) {
        self.record(process, kind, f, value, error, None);
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
        self.shared.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history;

    #[test]
    fn entries_reach_the_file_in_index_order() {
        let dir = std::env::temp_dir().join(format!("brook-jepsen-rec-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("history.jsonl");
        let rec = Recorder::create(&path).unwrap();
        std::thread::scope(|s| {
            for w in 0..4u64 {
                let rec = &rec;
                s.spawn(move || {
                    for _ in 0..100 {
                        rec.invoke(&Process::Worker(w), "poll", Value::Null);
                        rec.complete(&Process::Worker(w), OpType::Ok, "poll", Value::Null, None);
                    }
                });
            }
        });
        rec.flush();
        let ops = history::read(&path).unwrap();
        assert_eq!(ops.len(), 800);
        assert!(ops.iter().enumerate().all(|(i, o)| o.index == i as u64));
        assert!(ops.windows(2).all(|w| w[0].time <= w[1].time));
        assert_eq!(history::pairs(&ops).unwrap().len(), 400);
        drop(rec);
        let _ = std::fs::remove_dir_all(dir);
    }
}
