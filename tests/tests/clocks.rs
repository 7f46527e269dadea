//! A node's wall clock can be stepped (an operator, NTP) without the node refusing to start:
//! the node runs under libfaketime (Debian `libfaketime`, which `scripts/test.sh` installs),
//! reading its offset from a file the test writes.

use std::path::{Path, PathBuf};

use anyhow::{ensure, Context as _, Result};
use brook_tests::*;

/// Debian's preload library (amd64 and arm64).
fn libfaketime() -> Result<PathBuf> {
    [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
    .context("libfaketime is not installed (Debian package libfaketime)")
}

/// The broker epochs this node registered with, in order, from its log (`epoch=N`, maybe
/// with colour codes around the `=`).
fn registered_epochs(log: &Path) -> Result<Vec<i64>> {
    let text = std::fs::read_to_string(log)?;
    Ok(text
        .lines()
        .filter(|l| l.contains("registered as a broker"))
        .filter_map(|l| {
            let value = &l[l.rfind('=')? + 1..];
            let value = value.rsplit('m').next().unwrap_or(value);
            value.trim().parse().ok()
        })
        .collect())
}

/// The broker epoch was the start time, and an epoch older than the registered one was refused
/// with STALE_BROKER_EPOCH: a node restarted a day behind its previous start exited. It now
/// registers one past the epoch the log holds, and its data is all there.
#[tokio::test(flavor = "multi_thread")]
async fn a_node_restarted_with_its_clock_a_day_behind_rejoins() -> Result<()> {
    let clock = tempfile::Builder::new().prefix("brook-clock-").tempdir()?;
    let offset = clock.path().join("faketime");
    std::fs::write(&offset, "+0\n")?;
    let library = libfaketime()?;
    let mut broker = Broker::start_with(|o| {
        o.env("LD_PRELOAD", library.display())
            .env("FAKETIME_TIMESTAMP_FILE", offset.display())
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    });
    create_topic(&broker, "clocks", 1, &[]).await?;
    let before: Vec<Msg> = (0..10).map(|i| Msg::value(format!("before-{i}"))).collect();
    produce_all(&producer(&broker, &[]), "clocks", &before).await?;

    std::fs::write(&offset, "-86400\n")?;
    broker.restart();
    let after: Vec<Msg> = (0..10).map(|i| Msg::value(format!("after-{i}"))).collect();
    produce_all(&producer(&broker, &[]), "clocks", &after).await?;

    let epochs = registered_epochs(&broker.log_path())?;
    ensure!(epochs.len() == 2, "two registrations expected: {epochs:?}");
    ensure!(
        epochs[1] == epochs[0] + 1,
        "the restart registers one past the old epoch: {epochs:?}"
    );
    let read: Vec<Vec<u8>> = consume_all(&broker, "clocks")?
        .into_iter()
        .filter_map(|r| r.value)
        .collect();
    let expected: Vec<Vec<u8>> = before
        .iter()
        .chain(&after)
        .filter_map(|m| m.value.clone())
        .collect();
    ensure!(read == expected, "read back {} of 20 messages", read.len());
    Ok(())
}
