//! `brook produce` and `brook consume` against a real node, checked with librdkafka: keyed
//! lines land in the partition the Java client's murmur2 partitioner picks (librdkafka's
//! `partitioner=murmur2` agrees), headers and values arrive intact, `brook consume` prints them
//! in the format asked, stops at `-c` records or at the end with `-e`, and with `--group`
//! resumes from the offsets it committed.

// Test helpers outside #[test] functions unwrap too: a failure should stop the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use anyhow::{ensure, Context, Result};
use brook_tests::*;

/// Runs `brook ARGS` with `stdin`; its stdout, or the error with its stderr.
fn brook(broker: &Broker, args: &[&str], stdin: &str) -> Result<String> {
    let mut child = Command::new(brook_bin())
        .args(args)
        .args(["--bootstrap-server", &broker.bootstrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(stdin.as_bytes())?;
    let out = child.wait_with_output()?;
    ensure!(
        out.status.success(),
        "brook {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

fn sorted_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_and_consume_from_the_command_line() -> Result<()> {
    let broker = Broker::start();
    create_topic(&broker, "lines", 4, &[]).await?;
    create_topic(&broker, "by-librdkafka", 4, &[]).await?;

    let input: String = (0..40).map(|i| format!("key-{i}:value {i}\n")).collect();
    brook(
        &broker,
        &["produce", "lines", "-K", ":", "-H", "origin=cli"],
        &input,
    )?;

    // librdkafka with the Java client's partitioner puts each key where brook produce did.
    let producer = producer(&broker, &[("partitioner", "murmur2")]);
    let same: Vec<Msg> = (0..40)
        .map(|i| Msg::value(format!("value {i}")).key(format!("key-{i}")))
        .collect();
    produce_all(&producer, "by-librdkafka", &same).await?;
    let partition_of = |records: Vec<Received>| -> BTreeMap<Vec<u8>, i32> {
        records
            .into_iter()
            .map(|r| (r.key.unwrap_or_default(), r.partition))
            .collect()
    };
    let ours = consume_all(&broker, "lines")?;
    assert_eq!(ours.len(), 40);
    for r in &ours {
        assert_eq!(
            r.headers,
            vec![("origin".to_string(), Some(b"cli".to_vec()))]
        );
    }
    let ours = partition_of(ours);
    let theirs = partition_of(consume_all(&broker, "by-librdkafka")?);
    assert_eq!(ours, theirs, "partition per key");
    assert!(
        ours.values()
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            > 1,
        "keys spread over partitions"
    );

    // Everything, in kcat's format language.
    let printed = brook(
        &broker,
        &[
            "consume",
            "lines",
            "--from-beginning",
            "-e",
            "-f",
            "%k:%v %h\\n",
        ],
        "",
    )?;
    let want: Vec<String> = sorted_lines(&input)
        .into_iter()
        .map(|l| format!("{l} origin=cli"))
        .collect();
    assert_eq!(sorted_lines(&printed), want);

    // -c stops after that many records.
    let three = brook(
        &broker,
        &["consume", "lines", "--from-beginning", "-c", "3"],
        "",
    )?;
    assert_eq!(three.lines().count(), 3);

    // A group resumes where it committed.
    let group = [
        "consume",
        "lines",
        "-e",
        "--from-beginning",
        "-g",
        "cli-group",
    ];
    assert_eq!(brook(&broker, &group, "")?.lines().count(), 40);
    assert_eq!(brook(&broker, &group, "")?, "");
    brook(&broker, &["produce", "lines", "-p", "2"], "late\n")?;
    assert_eq!(brook(&broker, &group, "")?, "late\n");
    Ok(())
}

/// `brook config` as `kafka-configs` is used: a topic config set, described with its source and
/// deleted; the cluster-wide broker defaults reach a topic that sets nothing; a static broker
/// setting is refused with Kafka's error, and the command fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configs_from_the_command_line() -> Result<()> {
    let broker = Broker::start_with(|o| {
        o.node_id(1);
    });
    create_topic(&broker, "configured", 1, &[]).await?;
    let described = |entity: &[&str]| -> Result<String> {
        let mut args = vec!["config", "describe"];
        args.extend_from_slice(entity);
        brook(&broker, &args, "")
    };
    let row = |table: &str, name: &str| -> Option<String> {
        table
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
    };

    brook(
        &broker,
        &[
            "config",
            "set",
            "--topic",
            "configured",
            "retention.ms=60000",
        ],
        "",
    )?;
    let topic = described(&["--topic", "configured"])?;
    assert_eq!(
        row(&topic, "retention.ms").as_deref(),
        Some("retention.ms 60000 DYNAMIC_TOPIC_CONFIG dynamic"),
        "{topic}"
    );
    brook(
        &broker,
        &["config", "delete", "--topic", "configured", "retention.ms"],
        "",
    )?;
    let topic = described(&["--topic", "configured"])?;
    assert_eq!(
        row(&topic, "retention.ms"),
        None,
        "only set configs: {topic}"
    );

    brook(
        &broker,
        &[
            "config",
            "set",
            "--broker-defaults",
            "log.retention.ms=120000",
        ],
        "",
    )?;
    let defaults = described(&["--broker-defaults"])?;
    assert_eq!(
        row(&defaults, "log.retention.ms").as_deref(),
        Some("log.retention.ms 120000 DYNAMIC_DEFAULT_BROKER_CONFIG dynamic"),
        "{defaults}"
    );
    let all = described(&["--topic", "configured", "--all"])?;
    assert_eq!(
        row(&all, "retention.ms").as_deref(),
        Some("retention.ms 120000 DYNAMIC_DEFAULT_BROKER_CONFIG dynamic"),
        "{all}"
    );
    let node = described(&["--broker", "1"])?;
    assert!(
        row(&node, "log.dirs").is_some_and(|r| r.ends_with("STATIC_BROKER_CONFIG read-only")),
        "{node}"
    );

    let refused = brook(
        &broker,
        &["config", "set", "--broker", "1", "log.dirs=/x"],
        "",
    );
    let why = format!("{:#}", refused.expect_err("a static setting changed"));
    assert!(why.contains("INVALID_REQUEST"), "{why}");
    Ok(())
}
