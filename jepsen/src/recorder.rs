//! Recording the history while a run is under way: every entry gets the next index and the
//! time since the start, and goes to `history.jsonl` at once, so a crashed harness still
//! leaves the history up to its last operation.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::Result;
use serde_json::Value;

use crate::history::{Op, OpType, Process};

pub struct Recorder {
    start: Instant,
    inner: Mutex<Inner>,
}

struct Inner {
    next: u64,
    out: BufWriter<File>,
}

impl Recorder {
    pub fn create(path: &Path) -> Result<Self> {
        Ok(Recorder {
            start: Instant::now(),
            inner: Mutex::new(Inner {
                next: 0,
                out: BufWriter::new(File::create(path)?),
            }),
        })
    }

    /// Nanoseconds since the run started.
    pub fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Appends one entry. Index and time are taken under the lock, so both grow in file order.
    pub fn record(
        &self,
        process: &Process,
        kind: OpType,
        f: &str,
        value: Value,
        error: Option<String>,
        node: Option<u32>,
    ) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let op = Op {
            index: inner.next,
            time: self.now(),
            process: process.clone(),
            kind,
            f: f.to_string(),
            value,
            error,
            node,
        };
        inner.next += 1;
        if serde_json::to_writer(&mut inner.out, &op).is_ok() {
            let _ = inner.out.write_all(b"\n");
        }
        let _ = inner.out.flush();
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
