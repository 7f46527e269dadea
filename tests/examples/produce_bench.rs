//! Produce/consume throughput against a real `brook` process, with librdkafka.
//!
//! ```sh
//! cargo run --release -p brook-tests --example produce_bench -- [messages] [size]
//! ```
//! Starts brook (`BROOK_BIN`, default target/release/brook) on a free port in a temporary
//! directory, then for acks=1 and acks=all, one partition and eight, produces `messages` records
//! of `size` bytes and prints messages/s, MiB/s and delivery-latency percentiles, then reads
//! everything back and prints consume throughput. Figures only: nothing here asserts a speed.
//!
//! `BENCH_PROTOCOL=SASL_SSL` runs the same over a SASL_SSL listener (TLS with a certificate made
//! here, SCRAM-SHA-512), for the cost of security next to PLAINTEXT.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use brook_tests::percentile;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};

struct Brook(Child);

impl Drop for Brook {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn brook_bin() -> String {
    std::env::var("BROOK_BIN").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../target/release/brook").to_string()
    })
}

/// librdkafka settings, by name.
type Settings = Vec<(String, String)>;

/// The client settings and node flags of a SASL_SSL run, with its certificate made in `dir`.
fn sasl_ssl(dir: &std::path::Path) -> anyhow::Result<(Settings, Vec<String>)> {
    let ca_key = rcgen::KeyPair::generate()?;
    let mut ca = rcgen::CertificateParams::default();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "brook bench CA");
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate()?;
    let cert =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])?.signed_by(&key, &issuer)?;
    let (ca_file, keystore) = (dir.join("ca.pem"), dir.join("node.pem"));
    std::fs::write(&ca_file, ca_cert.pem())?;
    std::fs::write(&keystore, format!("{}{}", key.serialize_pem(), cert.pem()))?;
    let client: Settings = [
        ("security.protocol", "SASL_SSL".to_string()),
        ("sasl.mechanisms", "SCRAM-SHA-512".to_string()),
        ("sasl.username", "bench".to_string()),
        ("sasl.password", "bench-password".to_string()),
        ("ssl.ca.location", ca_file.display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let properties: String = client.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    std::fs::write(dir.join("client.properties"), properties)?;
    let node = [
        "listener.security.protocol.map=PLAINTEXT:SASL_SSL".to_string(),
        format!("ssl.keystore.location={}", keystore.display()),
        "sasl.enabled.mechanisms=SCRAM-SHA-512".to_string(),
        "brook.sasl.bootstrap.user=bench".to_string(),
        "brook.sasl.bootstrap.password=bench-password".to_string(),
    ]
    .into_iter()
    .flat_map(|o| ["-o".to_string(), o])
    .collect();
    Ok((client, node))
}

fn start_brook(dir: &std::path::Path, settings: &[String]) -> anyhow::Result<(Brook, String)> {
    let mut child = Command::new(brook_bin())
        .args([
            "node",
            "--listeners",
            "PLAINTEXT://127.0.0.1:0",
            "--log-dirs",
        ])
        .arg(dir.join("data"))
        .args(settings)
        .env("BROOK_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let address = line
        .trim()
        .rsplit(' ')
        .next()
        .ok_or_else(|| anyhow::anyhow!("no ready line: {line}"))?
        .to_string();
    Ok((Brook(child), address))
}

/// A librdkafka configuration for `bootstrap` with the run's security settings.
fn client(bootstrap: &str, security: &[(String, String)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    for (k, v) in security {
        config.set(k, v);
    }
    config
}

async fn produce(
    security: &[(String, String)],
    bootstrap: &str,
    topic: &str,
    acks: &str,
    partitions: i32,
    messages: usize,
    size: usize,
) -> anyhow::Result<()> {
    let producer: FutureProducer = client(bootstrap, security)
        .set("acks", acks)
        .set("linger.ms", "5")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "1000000")
        .set("topic.metadata.refresh.interval.ms", "-1")
        .create()?;
    let payload = vec![b'x'; size];
    let started = Instant::now();
    let mut pending = Vec::with_capacity(messages);
    for i in 0..messages {
        let partition = (i as i32) % partitions;
        let sent = Instant::now();
        let delivery = producer
            .send_result(
                FutureRecord::<(), _>::to(topic)
                    .payload(&payload)
                    .partition(partition),
            )
            .map_err(|(e, _)| e)?;
        pending.push(async move {
            let result = delivery.await;
            (result, sent.elapsed())
        });
    }
    let mut latencies = Vec::with_capacity(messages);
    for (result, latency) in futures::future::join_all(pending).await {
        match result {
            Ok(Ok(_)) => latencies.push(latency),
            Ok(Err((e, _))) => anyhow::bail!("delivery failed: {e}"),
            Err(_) => anyhow::bail!("delivery cancelled"),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    println!(
        "produce acks={acks:<3} partitions={partitions}: {:>9.0} msg/s {:>7.1} MiB/s  p50 {:>6.1} ms  p99 {:>6.1} ms",
        messages as f64 / elapsed,
        (messages * size) as f64 / elapsed / (1024.0 * 1024.0),
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
    );
    Ok(())
}

fn consume(
    security: &[(String, String)],
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    messages: usize,
    size: usize,
) -> anyhow::Result<()> {
    let consumer: BaseConsumer = client(bootstrap, security)
        .set("group.id", "bench")
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "52428800")
        .create()?;
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    let started = Instant::now();
    let mut seen = 0usize;
    while seen < messages {
        if started.elapsed() > Duration::from_secs(300) {
            anyhow::bail!("consumed only {seen} of {messages}");
        }
        if let Some(message) = consumer.poll(Duration::from_millis(500)) {
            let message = message?;
            seen += usize::from(message.payload().is_some());
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "consume            partitions={partitions}: {:>9.0} msg/s {:>7.1} MiB/s",
        messages as f64 / elapsed,
        (messages * size) as f64 / elapsed / (1024.0 * 1024.0)
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let messages: usize = args.get(1).map_or(Ok(200_000), |s| s.parse())?;
    let size: usize = args.get(2).map_or(Ok(1024), |s| s.parse())?;
    let dir = tempfile::tempdir()?;
    let protocol = std::env::var("BENCH_PROTOCOL").unwrap_or_else(|_| "PLAINTEXT".to_string());
    let (security, settings) = match protocol.as_str() {
        "PLAINTEXT" => {
            std::fs::write(
                dir.path().join("client.properties"),
                "security.protocol=PLAINTEXT\n",
            )?;
            (Vec::new(), Vec::new())
        }
        "SASL_SSL" => sasl_ssl(dir.path())?,
        other => anyhow::bail!("BENCH_PROTOCOL={other}: PLAINTEXT or SASL_SSL"),
    };
    let (_brook, bootstrap) = start_brook(dir.path(), &settings)?;
    println!("brook at {bootstrap} ({protocol}): {messages} messages of {size} bytes");
    for partitions in [1, 8] {
        for acks in ["1", "all"] {
            let topic = format!("bench-{partitions}-{acks}");
            let status = Command::new(brook_bin())
                .args([
                    "topic",
                    "create",
                    &topic,
                    "--partitions",
                    &partitions.to_string(),
                    "--bootstrap-server",
                    &bootstrap,
                ])
                .arg("--command-config")
                .arg(dir.path().join("client.properties"))
                .stdout(Stdio::null())
                .status()?;
            anyhow::ensure!(status.success(), "creating {topic} failed");
            produce(
                &security, &bootstrap, &topic, acks, partitions, messages, size,
            )
            .await?;
            consume(&security, &bootstrap, &topic, partitions, messages, size)?;
        }
    }
    Ok(())
}
