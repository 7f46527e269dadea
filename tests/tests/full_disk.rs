//! A full disk: a node whose data filesystem fills up must not linger half-alive, accepting
//! connections it can no longer serve (before, its Raft core died on ENOSPC and every metadata
//! write failed for good while the node looked healthy). It stops with an error naming the
//! cause; started again once there is space, it has every write it acknowledged. Needs root
//! (the data directory is a small tmpfs).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _, Result};
use brook_tests::*;
use rdkafka::producer::FutureRecord;

const TOPIC: &str = "filling";
/// Small enough to fill in seconds, large enough for a node to start in.
const SMALL: &str = "size=24m";
const ROOMY: &str = "size=256m";
/// How long the node may keep running once its store failed: its health check runs every 5 s.
const EXIT_WITHIN: Duration = Duration::from_secs(60);

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A tmpfs mounted at a new directory, unmounted when dropped.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount() -> Result<Tmpfs> {
        let dir = tempfile::Builder::new().prefix("brook-full-").tempdir()?;
        mount(dir.path(), &["-t", "tmpfs", "-o", SMALL, "tmpfs"])?;
        Ok(Tmpfs(dir))
    }

    fn grow(&self) -> Result<()> {
        mount(self.0.path(), &["-o", &format!("remount,{ROOMY}")])
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

fn mount(at: &Path, args: &[&str]) -> Result<()> {
    let status = Command::new("mount").args(args).arg(at).status()?;
    ensure!(
        status.success(),
        "mount {args:?} {}: {status}",
        at.display()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_disk_fills_stops_and_keeps_what_it_acknowledged() -> Result<()> {
    if !is_root() {
        eprintln!("not root: skipping the full-disk test (it mounts a tmpfs)");
        return Ok(());
    }
    let disk = Tmpfs::mount()?;
    let mut broker = Broker::start_with(|o| {
        o.data_dir(disk.0.path());
    });
    create_topic(&broker, TOPIC, 1, &[]).await?;
    let producer = producer(
        &broker,
        &[
            ("enable.idempotence", "true"),
            ("message.timeout.ms", "20000"),
            ("linger.ms", "5"),
        ],
    );
    // Write 1 KiB messages, 200 at a time, until a write fails or the node is gone: at most
    // the filesystem's size, so the loop is bounded.
    let mut acknowledged: Vec<String> = Vec::new();
    let mut failed = None;
    let started = Instant::now();
    'fill: for round in 0..200 {
        let mut pending = Vec::new();
        for i in 0..200 {
            let value = format!("{round:03}-{i:03}-{}", "x".repeat(1000));
            let delivery = producer.send_result(FutureRecord::<(), _>::to(TOPIC).payload(&value));
            match delivery {
                Ok(d) => pending.push((value, d)),
                Err((e, _)) => {
                    failed = Some(format!("enqueue: {e}"));
                    break;
                }
            }
        }
        for (value, delivery) in pending {
            match delivery.await {
                Ok(Ok(_)) => acknowledged.push(value),
                Ok(Err((e, _))) => failed = Some(e.to_string()),
                Err(_) => failed = Some("delivery canceled".to_string()),
            }
        }
        if failed.is_some() || !broker.is_running() {
            break 'fill;
        }
    }
    ensure!(
        failed.is_some() || !broker.is_running(),
        "{} writes acknowledged on a {SMALL} filesystem without any failing",
        acknowledged.len()
    );
    drop(producer);
    let status = broker
        .wait_for_exit(EXIT_WITHIN)
        .context("the node lingers with a full disk")?;
    ensure!(
        !status.success(),
        "a failed store must exit with an error: {status}"
    );
    let log = std::fs::read_to_string(broker.log_path())?;
    ensure!(
        log.contains("can no longer flush") || log.contains("Raft member"),
        "the log does not say why the node stopped:\n{}",
        broker.log_tail(30)
    );
    eprintln!(
        "MEASURED full disk: {} writes acknowledged, then {failed:?}; exited {:.1} s after the \
         first write with {status}",
        acknowledged.len(),
        started.elapsed().as_secs_f64()
    );

    disk.grow()?;
    broker.restart();
    let read: Vec<String> = consume_all(&broker, TOPIC)?
        .into_iter()
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
        .collect();
    let present: std::collections::HashSet<&String> = read.iter().collect();
    let kept = acknowledged.iter().filter(|v| present.contains(v)).count();
    ensure!(
        kept == acknowledged.len(),
        "{kept} of {} acknowledged writes read back after the restart",
        acknowledged.len()
    );
    let mut unique = read.clone();
    unique.sort();
    unique.dedup();
    ensure!(unique.len() == read.len(), "duplicates in the log");
    drop(broker);
    Ok(())
}
