//! `brook group list|describe|delete|reset-offsets` against a real node, with a real
//! librdkafka consumer group: the CLI's output, its exit codes, and its effect on the committed
//! offsets (read back with OffsetFetch through rdkafka).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, ensure, Result};
use brook_tests::cluster::Cluster;
use brook_tests::*;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

const PER_PARTITION: i64 = 10;

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs `brook group <args>` against `broker`.
fn group(broker: &Broker, args: &[&str]) -> Result<Run> {
    group_at(&broker.bootstrap(), args)
}

/// Runs `brook group <args>` with `bootstrap` as its bootstrap server.
fn group_at(bootstrap: &str, args: &[&str]) -> Result<Run> {
    let out = Command::new(brook_bin())
        .arg("group")
        .arg("--bootstrap-server")
        .arg(bootstrap)
        .args(args)
        .env("BROOK_LOG", "warn")
        .output()?;
    let run = Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    eprintln!(
        "$ brook group {}\n{}{}(exit ok: {})",
        args.join(" "),
        run.stdout,
        run.stderr,
        run.ok
    );
    Ok(run)
}

/// The whitespace-separated cells of the table row that starts with `first` and `second`.
fn row<'a>(table: &'a str, first: &str, second: &str) -> Option<Vec<&'a str>> {
    table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells.len() >= 2 && cells[0] == first && cells[1] == second)
}

/// The group's committed offsets for partitions 0 and 1 (OffsetFetch; -1 for none).
fn committed(broker: &Broker, group: &str, topic: &str) -> Result<[i64; 2]> {
    let consumer = consumer(broker, &[("group.id", group)]);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, 0);
    tpl.add_partition(topic, 1);
    let tpl = consumer.committed_offsets(tpl, OP_TIMEOUT)?;
    let mut out = [-1; 2];
    for (p, slot) in out.iter_mut().enumerate() {
        if let Some(e) = tpl.find_partition(topic, p as i32) {
            if let Offset::Offset(o) = e.offset() {
                *slot = o;
            }
        }
    }
    Ok(out)
}

/// A subscribed consumer of `group` that has read everything and committed 10 on partition 0
/// and 4 on partition 1.
fn active_member(broker: &Broker, group: &str, topic: &str) -> Result<BaseConsumer> {
    let consumer = consumer(
        broker,
        &[
            ("group.id", group),
            ("client.id", "admin-test-client"),
            ("auto.offset.reset", "earliest"),
            ("session.timeout.ms", "10000"),
        ],
    );
    consumer.subscribe(&[topic])?;
    let deadline = Instant::now() + EVENTUALLY;
    let mut read = 0;
    while read < 2 * PER_PARTITION {
        ensure!(Instant::now() < deadline, "read only {read} messages");
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            m?;
            read += 1;
        }
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(PER_PARTITION))?;
    tpl.add_partition_offset(topic, 1, Offset::Offset(4))?;
    consumer.commit(&tpl, CommitMode::Sync)?;
    Ok(consumer)
}

fn wait_for_state(broker: &Broker, group_id: &str, state: &str) -> Result<()> {
    wait_for(&format!("group {group_id} {state}"), EVENTUALLY, || {
        let run = group(broker, &["describe", group_id])?;
        Ok((run.ok && run.stdout.contains(&format!("state: {state} "))).then_some(()))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_admin_commands() -> Result<()> {
    let broker = Broker::start();
    let topic = unique_name("admin-topic");
    let group_id = unique_name("admin-group");
    create_topic(&broker, &topic, 2, &[]).await?;
    let base = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64 - 100_000;
    let messages: Vec<Msg> = (0..2)
        .flat_map(|p| {
            (0..PER_PARTITION).map(move |i| {
                Msg::value(format!("m{i}"))
                    .partition(p)
                    .timestamp(base + i * 1000)
            })
        })
        .collect();
    produce_all(&producer(&broker, &[]), &topic, &messages).await?;

    let member = active_member(&broker, &group_id, &topic)?;
    wait_for_state(&broker, &group_id, "Stable")?;

    // describe: state, the member and its assignment, committed offsets, log ends and lag.
    let run = group(&broker, &["describe", &group_id])?;
    ensure!(run.ok, "describe failed");
    ensure!(run.stdout.contains("protocol type: consumer"));
    ensure!(run.stdout.contains("admin-test-client"));
    ensure!(run.stdout.contains(&format!("{topic}:0,1")), "assignment");
    let p0 = row(&run.stdout, &topic, "0").ok_or_else(|| anyhow::anyhow!("no row for 0"))?;
    let p1 = row(&run.stdout, &topic, "1").ok_or_else(|| anyhow::anyhow!("no row for 1"))?;
    ensure!(p0[2..5] == ["10", "10", "0"], "partition 0: {p0:?}");
    ensure!(p1[2..5] == ["4", "10", "6"], "partition 1: {p1:?}");
    ensure!(
        p0[5] != "-" && p0[7] == "admin-test-client",
        "owner of 0: {p0:?}"
    );

    // list: every broker's groups; the state filter applies.
    let run = group(&broker, &["list"])?;
    ensure!(run.ok);
    ensure!(row(&run.stdout, &group_id, "Stable").is_some());
    let run = group(&broker, &["list", "--state", "empty"])?;
    ensure!(run.ok && row(&run.stdout, &group_id, "Stable").is_none());

    // An active group is neither reset nor deleted.
    let run = group(
        &broker,
        &[
            "reset-offsets",
            &group_id,
            "--all-topics",
            "--to-earliest",
            "--execute",
        ],
    )?;
    ensure!(
        !run.ok && run.stderr.contains("inactive"),
        "reset of an active group"
    );
    let run = group(&broker, &["delete", &group_id])?;
    ensure!(!run.ok && run.stdout.contains("NON_EMPTY_GROUP"));

    member.unsubscribe();
    drop(member);
    wait_for_state(&broker, &group_id, "Empty")?;
    ensure!(committed(&broker, &group_id, &topic)? == [10, 4]);

    // A dry run prints the plan and changes nothing.
    let run = group(
        &broker,
        &[
            "reset-offsets",
            &group_id,
            "--topic",
            &topic,
            "--to-earliest",
        ],
    )?;
    ensure!(run.ok && run.stdout.contains("NEW-OFFSET"));
    ensure!(row(&run.stdout, &group_id, &topic).is_some());
    ensure!(
        committed(&broker, &group_id, &topic)? == [10, 4],
        "dry run committed"
    );

    let reset = |args: &[&str], expected: [i64; 2]| -> Result<()> {
        let mut all = vec!["reset-offsets", group_id.as_str()];
        all.extend_from_slice(args);
        all.push("--execute");
        let run = group(&broker, &all)?;
        ensure!(run.ok, "reset {args:?} failed");
        let got = committed(&broker, &group_id, &topic)?;
        if got != expected {
            bail!("after {args:?}: committed {got:?}, expected {expected:?}");
        }
        Ok(())
    };
    reset(&["--topic", &topic, "--to-earliest"], [0, 0])?;
    reset(
        &["--topic", &format!("{topic}:1"), "--shift-by", "3"],
        [0, 3],
    )?;
    reset(&["--all-topics", "--shift-by", "-5"], [0, 0])?;
    reset(&["--all-topics", "--to-offset", "100"], [10, 10])?;
    reset(
        &["--topic", &format!("{topic}:0"), "--to-offset", "7"],
        [7, 10],
    )?;
    reset(
        &["--all-topics", "--to-datetime", &(base + 4500).to_string()],
        [5, 5],
    )?;
    reset(&["--topic", &topic, "--to-latest"], [10, 10])?;

    let run = group(&broker, &["describe", &group_id])?;
    ensure!(run.ok && run.stdout.contains("has no active members"));
    let p1 = row(&run.stdout, &topic, "1").ok_or_else(|| anyhow::anyhow!("no row for 1"))?;
    ensure!(p1[2..] == ["10", "10", "0", "-", "-", "-"], "{p1:?}");

    // Bad arguments are refused before anything is committed.
    let run = group(
        &broker,
        &[
            "reset-offsets",
            &group_id,
            "--topic",
            &format!("{topic}:7"),
            "--to-earliest",
        ],
    )?;
    ensure!(!run.ok && run.stderr.contains("no partition 7"));

    // delete: an empty group goes; a second delete and a describe say it does not exist.
    let run = group(&broker, &["delete", &group_id])?;
    ensure!(run.ok && run.stdout.contains("succeeded"));
    let run = group(&broker, &["delete", &group_id])?;
    ensure!(!run.ok && run.stdout.contains("GROUP_ID_NOT_FOUND"));
    let run = group(&broker, &["describe", &group_id])?;
    ensure!(!run.ok && run.stderr.contains("does not exist"));
    ensure!(committed(&broker, &group_id, &topic)? == [-1, -1]);
    Ok(())
}

/// Three nodes, twelve groups spread over coordinators by the metadata: `list` at one node
/// merges every broker's answer (each lists only the groups it coordinates), and reset-offsets,
/// describe --all-groups and delete through any node reach each group's coordinator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_admin_across_coordinators() -> Result<()> {
    const GROUPS: usize = 12;
    let c = Cluster::start(3);
    let topic = unique_name("spread-topic");
    c.create_topic(1, &topic, 3)?;
    let messages: Vec<Msg> = (0..3)
        .flat_map(|p| (0..PER_PARTITION).map(move |i| Msg::value(format!("m{i}")).partition(p)))
        .collect();
    produce_all(&producer(c.node(1), &[]), &topic, &messages).await?;

    // Groups made by committing offsets, each through a different node.
    let prefix = unique_name("spread-group");
    let groups: Vec<String> = (0..GROUPS).map(|i| format!("{prefix}-{i}")).collect();
    for (i, g) in groups.iter().enumerate() {
        let via = c.bootstrap(1 + (i % 3) as i32);
        let offset = (i as i64 % PER_PARTITION).to_string();
        let run = group_at(
            &via,
            &[
                "reset-offsets",
                g,
                "--topic",
                &topic,
                "--to-offset",
                &offset,
                "--execute",
            ],
        )?;
        ensure!(run.ok, "reset of {g} through {via}");
    }

    let run = group_at(&c.bootstrap(2), &["list"])?;
    ensure!(run.ok, "list failed");
    let mut coordinators = BTreeSet::new();
    let mut listed = BTreeMap::new();
    for line in run.stdout.lines().skip(1) {
        let cells: Vec<&str> = line.split_whitespace().collect();
        ensure!(cells.len() >= 4, "short line {line:?}");
        if groups.iter().any(|g| g == cells[0]) {
            ensure!(
                listed
                    .insert(cells[0].to_string(), cells[1].to_string())
                    .is_none(),
                "{} listed twice",
                cells[0]
            );
            coordinators.insert(cells[3].to_string());
        }
    }
    ensure!(listed.len() == GROUPS, "listed {listed:?}");
    ensure!(listed.values().all(|s| s == "Empty"), "states {listed:?}");
    ensure!(
        coordinators.len() > 1,
        "one coordinator for all groups: {coordinators:?}"
    );

    let run = group_at(&c.bootstrap(3), &["describe", "--all-groups"])?;
    ensure!(run.ok, "describe --all-groups failed");
    // Each group committed i % 10 on every partition: rows of (current offset, lag) by group.
    let mut rows: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut current = String::new();
    for line in run.stdout.lines() {
        let cells: Vec<&str> = line.split_whitespace().collect();
        if cells.len() == 2 && cells[0] == "GROUP" {
            current = cells[1].to_string();
        } else if cells.len() >= 5 && cells[0] == topic {
            let row = (cells[2].to_string(), cells[4].to_string());
            rows.entry(current.clone()).or_default().push(row);
        }
    }
    for (i, g) in groups.iter().enumerate() {
        let offset = i as i64 % PER_PARTITION;
        let want = (offset.to_string(), (PER_PARTITION - offset).to_string());
        ensure!(
            rows.get(g) == Some(&vec![want; 3]),
            "{g}: {:?}",
            rows.get(g)
        );
    }

    let mut args = vec!["delete"];
    args.extend(groups.iter().map(String::as_str));
    let run = group_at(&c.bootstrap(1), &args)?;
    ensure!(run.ok, "delete failed");
    ensure!(run.stdout.matches("succeeded").count() == GROUPS);
    let run = group_at(&c.bootstrap(1), &["list"])?;
    ensure!(run.ok && !groups.iter().any(|g| run.stdout.contains(g.as_str())));
    Ok(())
}

/// Offsets are clamped to the log: after retention moved a partition's log start past 0,
/// resetting to offset 0, shifting far back or to the earliest all commit the log start, and
/// shifting far forward commits the log end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_offsets_clamps_to_the_log_start_after_retention() -> Result<()> {
    const OLD: i64 = 300;
    const NEW: i64 = 20;
    let broker = Broker::start_with(|o| {
        o.set("log.retention.check.interval.ms", 500);
    });
    let topic = unique_name("retained");
    let group_id = unique_name("retained-group");
    create_topic(
        &broker,
        &topic,
        1,
        &[("segment.bytes", "16384"), ("retention.ms", "600000")],
    )
    .await?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;
    let producer = producer(&broker, &[("linger.ms", "0"), ("batch.num.messages", "20")]);
    let record = |i: i64, ts: i64| Msg::value(vec![b'.'; 200]).partition(0).timestamp(ts + i);
    let old: Vec<Msg> = (0..OLD).map(|i| record(i, now - 7_200_000)).collect();
    produce_all(&producer, &topic, &old).await?;
    let new: Vec<Msg> = (0..NEW).map(|i| record(i, now - 60_000)).collect();
    produce_all(&producer, &topic, &new).await?;
    let start = wait_for("retention to move the log start", EVENTUALLY, || {
        let (low, _) = watermarks(&broker, &topic, 0)?;
        Ok((low > 0).then_some(low))
    })?;
    // Not synchronization: let retention passes settle before reading the log start for good.
    std::thread::sleep(Duration::from_millis(1500));
    let (start_now, end) = watermarks(&broker, &topic, 0)?;
    ensure!(start_now >= start && start_now <= OLD && end == OLD + NEW);
    let start = start_now;

    let reset = |args: &[&str]| -> Result<i64> {
        let mut all = vec![
            "reset-offsets",
            group_id.as_str(),
            "--topic",
            topic.as_str(),
        ];
        all.extend_from_slice(args);
        all.push("--execute");
        let run = group(&broker, &all)?;
        ensure!(run.ok, "reset {args:?} failed");
        Ok(committed(&broker, &group_id, &topic)?[0])
    };
    ensure!(reset(&["--to-offset", "0"])? == start);
    ensure!(reset(&["--to-latest"])? == end);
    ensure!(reset(&["--shift-by", "-100000"])? == start);
    ensure!(reset(&["--shift-by", "100000"])? == end);
    ensure!(reset(&["--to-earliest"])? == start);
    ensure!(reset(&["--to-datetime", &(now - 60_000).to_string()])? == OLD);

    let run = group(&broker, &["describe", &group_id])?;
    let row = row(&run.stdout, &topic, "0").ok_or_else(|| anyhow::anyhow!("no row"))?;
    let (current, end_s, lag) = (OLD.to_string(), end.to_string(), NEW.to_string());
    ensure!(
        row[2..5] == [current.as_str(), end_s.as_str(), lag.as_str()],
        "{row:?}"
    );
    Ok(())
}
