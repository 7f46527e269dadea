//! brook-jepsen: a Jepsen-style chaos harness for brook.
//!
//! It runs real `brook` processes, drives them with real Kafka clients while a nemesis injects
//! faults, records everything in a history and checks the history afterwards. It never links
//! brook's own crates: what it tests is what users get.
//!
//! - [`history`]: the operation model and `history.jsonl` (invoke/ok/fail/info entries);
//! - [`checker`]: pure functions from a history to a verdict, one module per workload
//!   (queue, list-append, group-offsets, metadata), sharing the `results.json` report;
//! - [`timeline`]: `timeline.svg`, latencies over time with fault windows shaded;
//! - [`logscan`]: panics in node logs make a run invalid;
//! - [`analyze`]: history + logs -> `results.json`, `timeline.svg` (what `check` runs);
//! - [`runner`]: `run`, one test from cluster start to verdict, over [`store`] (the run
//!   directory), [`recorder`] (the history as it happens), [`cluster`] (nodes as processes), [`netns`] (namespaces, partitions), [`disk`] (disk-full),
//!   [`clock`] (skewed clocks),
//!   [`nemesis`] (the fault schedule), [`client`] (rdkafka clients and error classification)
//!   and [`workloads`] (what the workers do); [`secure`] makes the key material of a
//!   `--secure` run, whose clients follow [`client::Security`].

pub mod analyze;
pub mod checker;
pub mod client;
pub mod clock;
pub mod cluster;
pub mod disk;
mod exec;
pub mod history;
pub mod logscan;
pub mod nemesis;
pub mod netns;
pub mod recorder;
pub mod runner;
pub mod secure;
pub mod store;
pub mod timeline;
pub mod workloads;

/// Exit codes besides the verdict's 0 (valid), 1 (invalid) and 2 (unknown).
pub const EXIT_BAD_ARGS: i32 = 254;
pub const EXIT_HARNESS_ERROR: i32 = 255;
