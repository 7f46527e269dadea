//! brook-tests: helpers for cross-process tests.
//!
//! Every test starts its own `brook node` child process ([`Broker::start`]) on an ephemeral
//! port with a fresh temporary data directory, and talks to it the way real users do: with
//! librdkafka (the `rdkafka` crate), with `kcat`, or with hand-built Kafka requests over a plain
//! TCP socket ([`RawConn`]) when a test needs to control the exact bytes on the wire.
//!
//! The binary is found through `BROOK_BIN`, else `<workspace>/target/release/brook`, else
//! `<workspace>/target/debug/brook`. The broker's stdout and stderr go to `broker.log` in the
//! test's temporary directory; when a test fails its tail is printed (libtest only shows the
//! output of failing tests) and the directory is kept for inspection.
//!
//! A broker started with [`BrokerOptions::secure`] speaks only SASL_SSL ([`secure`]); every
//! client made for it here (rdkafka, kcat, [`RawConn`] through [`Security::connect`]) then
//! follows its [`Security`]. [`scram`] is the SCRAM client those raw connections log in with.

pub mod cluster;
pub mod scram;
pub mod secure;

pub use secure::Security;

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ::anyhow::{anyhow, bail, ensure, Context as _, Result};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    fetch_request::{FetchPartition, FetchTopic},
    fetch_response::PartitionData,
    list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic},
    produce_response::PartitionProduceResponse,
    ApiKey, BrokerId, FetchRequest, InitProducerIdRequest, ListOffsetsRequest, ProducerId,
    RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};

/// How long a broker may take to print its ready line. Generous: CI machines are slow and
/// several brokers start at once.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a broker may take to exit after SIGTERM.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound for "eventually" conditions (data visible, connection closed, retention ran, ...).
pub const EVENTUALLY: Duration = Duration::from_secs(120);
/// Timeout for a single client operation (admin call, metadata, watermarks, raw request).
pub const OP_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// The broker process
// ---------------------------------------------------------------------------------------------

/// The `brook` binary under test.
pub fn brook_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("BROOK_BIN").filter(|b| !b.is_empty()) {
        return PathBuf::from(bin);
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut candidates = Vec::new();
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR").filter(|t| !t.is_empty()) {
        let target = workspace.join(target);
        candidates.push(target.join("release/brook"));
        candidates.push(target.join("debug/brook"));
    }
    candidates.push(workspace.join("target/release/brook"));
    candidates.push(workspace.join("target/debug/brook"));
    candidates
        .iter()
        .find(|c| c.is_file())
        .cloned()
        .unwrap_or_else(|| candidates[candidates.len() - 2].clone())
}

/// Spawn `cmd` with its stderr appended to `log` and its stdout piped to the caller (where
/// brook prints its ready lines).
pub fn spawn_logged(cmd: &mut Command, log: &File) -> Result<(Child, std::process::ChildStdout)> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log.try_clone()?));
    let mut child = cmd
        .spawn()
        .with_context(|| format!("spawning {:?}", cmd.get_program()))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow!("no stdout pipe"))?;
    Ok((child, stdout))
}

/// How to start a broker: `-o key=value` settings, environment variables, advertised listener.
#[derive(Clone, Debug, Default)]
pub struct BrokerOptions {
    settings: Vec<(String, String)>,
    env: Vec<(String, String)>,
    advertised: Option<String>,
    node_id: Option<i32>,
    port: Option<u16>,
    data_dir: Option<PathBuf>,
    security: Security,
}

impl BrokerOptions {
    /// A Kafka-named setting, passed as `-o key=value`.
    pub fn set(&mut self, key: &str, value: impl ToString) -> &mut Self {
        self.settings.push((key.to_string(), value.to_string()));
        self
    }

    /// An environment variable for the broker process (e.g. `BROOK_NUM_PARTITIONS`).
    pub fn env(&mut self, key: &str, value: impl ToString) -> &mut Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// `--advertised-listeners PLAINTEXT://<host_port>` (e.g. a proxy in front of the broker).
    pub fn advertise(&mut self, host_port: &str) -> &mut Self {
        self.advertised = Some(host_port.to_string());
        self
    }

    /// Listen on this port instead of an ephemeral one (needed with [`BrokerOptions::advertise`]:
    /// the ready line then names the advertised address, not the bound one). See [`free_port`].
    pub fn listen_port(&mut self, port: u16) -> &mut Self {
        self.port = Some(port);
        self
    }

    /// `--node-id N`.
    pub fn node_id(&mut self, id: i32) -> &mut Self {
        self.node_id = Some(id);
        self
    }

    /// Keep the data in `dir` (e.g. a small filesystem) instead of the broker's temporary
    /// directory; the caller removes it.
    pub fn data_dir(&mut self, dir: &Path) -> &mut Self {
        self.data_dir = Some(dir.to_path_buf());
        self
    }

    /// Speak only what `security` says (SASL_SSL with ACLs, as `brook cluster up --secure`
    /// sets nodes up; nothing for [`Security::plaintext`]); the broker's clients follow it.
    pub fn secure(&mut self, security: &Security) -> &mut Self {
        for (k, v) in security.node_settings() {
            self.set(k, v);
        }
        self.security = security.clone();
        self
    }

    /// How clients reach brokers started with these options.
    pub fn security(&self) -> &Security {
        &self.security
    }
}

/// A running `brook node` child process with its own temporary data directory.
pub struct Broker {
    child: Option<Child>,
    dir: Option<tempfile::TempDir>,
    opts: BrokerOptions,
    addr: SocketAddr,
    starts: u32,
}

impl Broker {
    /// Starts a broker with default settings. Panics (with the broker's log) if it does not
    /// become ready within [`READY_TIMEOUT`].
    pub fn start() -> Broker {
        Self::start_with(|_| {})
    }

    /// Starts a broker after letting `configure` adjust its options.
    pub fn start_with(configure: impl FnOnce(&mut BrokerOptions)) -> Broker {
        let mut opts = BrokerOptions::default();
        configure(&mut opts);
        match Self::try_start(opts) {
            Ok(broker) => broker,
            Err(e) => panic!("could not start brook: {e:#}"),
        }
    }

    /// Like [`Broker::start_with`], returning the error instead of panicking.
    pub fn try_start(opts: BrokerOptions) -> Result<Broker> {
        let dir = tempfile::Builder::new().prefix("brook-test-").tempdir()?;
        std::fs::create_dir_all(dir.path().join("data"))?;
        let mut broker = Broker {
            child: None,
            dir: Some(dir),
            opts,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            starts: 0,
        };
        broker.spawn()?;
        Ok(broker)
    }

    fn dir(&self) -> &Path {
        self.dir
            .as_ref()
            .map(|d| d.path())
            .unwrap_or_else(|| Path::new("."))
    }

    /// The `--log-dirs` directory (kept across restarts).
    pub fn data_dir(&self) -> PathBuf {
        match &self.opts.data_dir {
            Some(dir) => dir.clone(),
            None => self.dir().join("data"),
        }
    }

    /// Where the broker's stdout and stderr go.
    pub fn log_path(&self) -> PathBuf {
        self.dir().join("broker.log")
    }

    /// The address from the ready line of the current incarnation (the port changes on
    /// restart unless [`BrokerOptions::listen_port`] fixed it).
    pub fn bootstrap(&self) -> String {
        self.addr.to_string()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How clients reach this broker (see [`BrokerOptions::secure`]).
    pub fn security(&self) -> &Security {
        &self.opts.security
    }

    /// A raw Kafka connection to this broker, authenticated if it is secure.
    pub fn conn(&self) -> Result<RawConn> {
        self.security().connect(self.addr)
    }

    /// Where the broker really listens: the fixed port if one was given, else the ready line's
    /// address.
    pub fn listen_addr(&self) -> SocketAddr {
        match self.opts.port {
            Some(port) => SocketAddr::from(([127, 0, 0, 1], port)),
            None => self.addr,
        }
    }

    /// Process id of the current incarnation.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Whether the current incarnation is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    fn spawn(&mut self) -> Result<()> {
        ensure!(self.child.is_none(), "broker already running");
        let bin = brook_bin();
        ensure!(
            bin.is_file(),
            "brook binary not found at {} (build it with `cargo build --release -p brook-node` or set BROOK_BIN)",
            bin.display()
        );
        self.starts += 1;
        let log_path = self.log_path();
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        writeln!(
            log,
            "===== brook-tests: start #{} of {} =====",
            self.starts,
            bin.display()
        )?;

        let mut cmd = Command::new(&bin);
        cmd.arg("node")
            .arg("--listeners")
            .arg(format!(
                "PLAINTEXT://127.0.0.1:{}",
                self.opts.port.unwrap_or(0)
            ))
            .arg("--log-dirs")
            .arg(self.data_dir());
        if let Some(id) = self.opts.node_id {
            cmd.args(["--node-id", &id.to_string()]);
        }
        if let Some(advertised) = &self.opts.advertised {
            cmd.args([
                "--advertised-listeners",
                &format!("PLAINTEXT://{advertised}"),
            ]);
        }
        for (k, v) in &self.opts.settings {
            cmd.arg("-o").arg(format!("{k}={v}"));
        }
        // BROOK_* variables are settings for the broker; the harness's own must not leak in.
        cmd.env_remove("BROOK_BIN").env("NO_COLOR", "1");
        for (k, v) in &self.opts.env {
            cmd.env(k, v);
        }
        let (mut child, stdout) = spawn_logged(&mut cmd, &log)?;

        // Read stdout on a thread: the first ready line is reported, everything goes to the log.
        let (tx, rx) = mpsc::channel::<Result<SocketAddr>>();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(log, "[stdout] {line}");
                if let Some(addr) = parse_ready_line(&line) {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(Ok(addr));
                    }
                }
            }
            if let Some(tx) = tx.take() {
                let _ = tx.send(Err(anyhow!(
                    "brook closed stdout without printing its ready line"
                )));
            }
        });

        let ready = rx.recv_timeout(READY_TIMEOUT);
        let outcome = match ready {
            Ok(Ok(addr)) => Ok(addr),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(anyhow!(
                "brook printed no ready line within {READY_TIMEOUT:?}"
            )),
        };
        match outcome {
            Ok(addr) => {
                self.addr = addr;
                self.child = Some(child);
                Ok(())
            }
            Err(e) => {
                let _ = child.kill();
                let status = child.wait().ok();
                Err(e.context(format!(
                    "brook start #{} failed (exit status {status:?}); log tail:\n{}",
                    self.starts,
                    self.log_tail(60)
                )))
            }
        }
    }

    /// Waits (up to `timeout`) for the broker to exit on its own, reaps it and returns its exit
    /// status; [`Broker::restart`] then starts it again.
    pub fn wait_for_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let child = self
            .child
            .as_mut()
            .ok_or_else(|| anyhow!("broker is not running"))?;
        loop {
            if let Some(status) = child.try_wait()? {
                self.child = None;
                return Ok(status);
            }
            ensure!(
                Instant::now() < deadline,
                "brook still running after {timeout:?}; log tail:\n{}",
                self.log_tail(40)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL the broker and reap it: nothing gets a chance to be flushed.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("kill9: broker is not running");
        child.kill().expect("SIGKILL brook");
        child.wait().expect("reap brook");
    }

    /// SIGTERM the broker and wait (bounded) for it to exit; returns its exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("terminate: broker is not running");
        let pid = child.id().to_string();
        // `kill` as a shell builtin: no procps needed, no unsafe code.
        let sent = Command::new("sh")
            .args(["-c", "kill -TERM \"$0\"", &pid])
            .status();
        assert!(
            matches!(sent, Ok(s) if s.success()),
            "could not send SIGTERM to {pid}: {sent:?}"
        );
        let deadline = Instant::now() + SHUTDOWN_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("wait for brook") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "brook did not exit within {SHUTDOWN_TIMEOUT:?} of SIGTERM; log tail:\n{}",
                    self.log_tail(60)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the broker again on the same data directory (gracefully stopping it first if it
    /// is still running). The port changes: read [`Broker::bootstrap`] again.
    pub fn restart(&mut self) {
        if self.child.is_some() {
            let status = self.terminate();
            assert!(status.success(), "brook exited with {status} on SIGTERM");
        }
        if let Err(e) = self.spawn() {
            panic!("could not restart brook: {e:#}");
        }
    }

    /// The last `lines` lines of the broker's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read(self.log_path()).map(|b| String::from_utf8_lossy(&b).into_owned());
        match text {
            Ok(text) => {
                let all: Vec<&str> = text.lines().collect();
                all[all.len().saturating_sub(lines)..].join("\n")
            }
            Err(e) => format!("(no log: {e})"),
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // libtest shows this only for failing tests.
        eprintln!(
            "---- brook log tail ({}) ----\n{}\n---- end of brook log ----",
            self.log_path().display(),
            self.log_tail(80)
        );
        if std::thread::panicking() || std::env::var_os("BROOK_KEEP_TEST_DATA").is_some() {
            if let Some(dir) = self.dir.take() {
                eprintln!("kept the broker's directory: {}", dir.keep().display());
            }
        }
    }
}

/// A port that was free a moment ago (bind to port 0, read it, release it).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

/// Parses `brook node <id> ready on <host>:<port>`.
pub fn parse_ready_line(line: &str) -> Option<SocketAddr> {
    let rest = line.trim().strip_prefix("brook node ")?;
    let (_, host_port) = rest.split_once(" ready on ")?;
    host_port.trim().to_socket_addrs().ok()?.next()
}

// ---------------------------------------------------------------------------------------------
// Polling
// ---------------------------------------------------------------------------------------------

/// Polls `check` every 100 ms until it returns `Some`, for at most `timeout`. Errors from
/// `check` are remembered and reported if the deadline passes.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    let mut last = String::from("condition not met");
    loop {
        match check() {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(e) => last = format!("{e:#}"),
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}: {last}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The `p` quantile (0.0 to 1.0) of sorted latencies, for benchmarks.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

/// A name no other call in this process returns.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

// ---------------------------------------------------------------------------------------------
// rdkafka clients
// ---------------------------------------------------------------------------------------------

/// What every rdkafka client of the harness gets, with `security`'s settings.
pub fn client_config(bootstrap: &str, security: &Security) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("socket.timeout.ms", "60000")
        .set("reconnect.backoff.ms", "20")
        .set("reconnect.backoff.max.ms", "500")
        .set("topic.metadata.refresh.interval.ms", "5000");
    security.apply(&mut config);
    config
}

/// A producer for `broker` (acks=all unless overridden), with `extra` settings applied last.
pub fn producer(broker: &Broker, extra: &[(&str, &str)]) -> FutureProducer {
    secure_producer_for(&broker.bootstrap(), broker.security(), extra)
}

/// A producer for any bootstrap address (e.g. a proxy).
pub fn producer_for(bootstrap: &str, extra: &[(&str, &str)]) -> FutureProducer {
    secure_producer_for(bootstrap, &Security::plaintext(), extra)
}

/// [`producer_for`] for brokers that speak what `security` says.
pub fn secure_producer_for(
    bootstrap: &str,
    security: &Security,
    extra: &[(&str, &str)],
) -> FutureProducer {
    let mut config = client_config(bootstrap, security);
    config
        .set("acks", "all")
        .set("message.timeout.ms", "120000")
        .set("request.timeout.ms", "60000")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "2097151");
    for (k, v) in extra {
        config.set(*k, *v);
    }
    config.create().expect("create rdkafka producer")
}

/// A consumer that is only ever `assign`ed with explicit offsets (brook has no consumer groups
/// yet; librdkafka still wants a group.id for `assign`, but never commits or fetches offsets).
pub fn consumer(broker: &Broker, extra: &[(&str, &str)]) -> BaseConsumer {
    let mut config = client_config(&broker.bootstrap(), broker.security());
    config
        .set("group.id", "brook-tests")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "error")
        .set("fetch.wait.max.ms", "100")
        .set("max.partition.fetch.bytes", "8388608")
        .set("fetch.max.bytes", "52428800")
        .set("receive.message.max.bytes", "104858112");
    for (k, v) in extra {
        config.set(*k, *v);
    }
    config.create().expect("create rdkafka consumer")
}

pub fn admin(broker: &Broker) -> AdminClient<DefaultClientContext> {
    client_config(&broker.bootstrap(), broker.security())
        .create()
        .expect("create rdkafka admin client")
}

fn admin_options() -> AdminOptions {
    AdminOptions::new()
        .request_timeout(Some(OP_TIMEOUT))
        .operation_timeout(Some(OP_TIMEOUT))
}

/// Creates a topic through the Kafka CreateTopics API and waits until its metadata shows all
/// partitions with a leader.
pub async fn create_topic(
    broker: &Broker,
    name: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) -> Result<()> {
    let admin = admin(broker);
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (k, v) in configs {
        topic = topic.set(k, v);
    }
    let results = admin.create_topics([&topic], &admin_options()).await?;
    for result in results {
        if let Err((topic, code)) = result {
            bail!("CreateTopics {topic}: {code:?}");
        }
    }
    wait_for_partitions(broker, name, partitions)
}

/// Waits until Metadata reports `partitions` partitions with a leader for `topic`.
pub fn wait_for_partitions(broker: &Broker, topic: &str, partitions: i32) -> Result<()> {
    let consumer = consumer(broker, &[("allow.auto.create.topics", "false")]);
    wait_for(&format!("metadata of {topic}"), EVENTUALLY, || {
        let metadata = consumer.fetch_metadata(Some(topic), OP_TIMEOUT)?;
        let Some(t) = metadata.topics().iter().find(|t| t.name() == topic) else {
            return Ok(None);
        };
        if t.error().is_some() {
            return Ok(None);
        }
        let ready = t.partitions().len() == partitions as usize
            && t.partitions().iter().all(|p| p.leader() >= 0);
        Ok(ready.then_some(()))
    })
}

/// Number of partitions of `topic`, from Metadata.
pub fn partition_count(broker: &Broker, topic: &str) -> Result<i32> {
    let consumer = consumer(broker, &[("allow.auto.create.topics", "false")]);
    let metadata = consumer.fetch_metadata(Some(topic), OP_TIMEOUT)?;
    let t = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .ok_or_else(|| anyhow!("topic {topic} not in metadata"))?;
    if let Some(err) = t.error() {
        bail!("metadata error for {topic}: {err:?}");
    }
    Ok(t.partitions().len() as i32)
}

/// Topic configuration as reported by DescribeConfigs.
pub async fn describe_topic_configs(
    broker: &Broker,
    topic: &str,
) -> Result<HashMap<String, String>> {
    let admin = admin(broker);
    let results = admin
        .describe_configs([&ResourceSpecifier::Topic(topic)], &admin_options())
        .await?;
    let resource = results
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("no DescribeConfigs result"))?;
    let resource = resource.map_err(|e| anyhow!("DescribeConfigs {topic}: {e}"))?;
    Ok(resource
        .entries
        .into_iter()
        .filter_map(|e| e.value.map(|v| (e.name, v)))
        .collect())
}

/// A message to produce.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Msg {
    pub partition: Option<i32>,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub timestamp: Option<i64>,
}

impl Msg {
    pub fn value(value: impl Into<Vec<u8>>) -> Msg {
        Msg {
            value: Some(value.into()),
            ..Msg::default()
        }
    }

    pub fn key(mut self, key: impl Into<Vec<u8>>) -> Msg {
        self.key = Some(key.into());
        self
    }

    pub fn header(mut self, name: &str, value: Option<&[u8]>) -> Msg {
        self.headers
            .push((name.to_string(), value.map(|v| v.to_vec())));
        self
    }

    pub fn partition(mut self, partition: i32) -> Msg {
        self.partition = Some(partition);
        self
    }

    pub fn timestamp(mut self, timestamp: i64) -> Msg {
        self.timestamp = Some(timestamp);
        self
    }

    /// What a consumer must read back: key, value and headers.
    pub fn content(&self) -> Content<'_> {
        (self.key.as_deref(), self.value.as_deref(), &self.headers)
    }
}

pub type Content<'a> = (
    Option<&'a [u8]>,
    Option<&'a [u8]>,
    &'a Vec<(String, Option<Vec<u8>>)>,
);

/// A consumed message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    pub partition: i32,
    pub offset: i64,
    pub timestamp: Option<i64>,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl Received {
    pub fn content(&self) -> Content<'_> {
        (self.key.as_deref(), self.value.as_deref(), &self.headers)
    }

    fn from_message<M: Message>(m: &M) -> Received {
        let headers = m
            .headers()
            .map(|hs| {
                hs.iter()
                    .map(|h| (h.key.to_string(), h.value.map(|v| v.to_vec())))
                    .collect()
            })
            .unwrap_or_default();
        Received {
            partition: m.partition(),
            offset: m.offset(),
            timestamp: m.timestamp().to_millis(),
            key: m.key().map(|k| k.to_vec()),
            value: m.payload().map(|v| v.to_vec()),
            headers,
        }
    }
}

/// Where a produced message landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Delivered {
    pub partition: i32,
    pub offset: i64,
}

/// Produces every message (in order) and waits for all delivery reports; returns where each
/// one landed, or the first delivery error.
pub async fn produce_all(
    producer: &FutureProducer,
    topic: &str,
    messages: &[Msg],
) -> Result<Vec<Delivered>> {
    let mut pending = Vec::with_capacity(messages.len());
    for (i, m) in messages.iter().enumerate() {
        let headers = m
            .headers
            .iter()
            .fold(OwnedHeaders::new(), |hs, (name, value)| {
                hs.insert(Header {
                    key: name.as_str(),
                    value: value.as_deref(),
                })
            });
        loop {
            let mut record = FutureRecord::<[u8], [u8]>::to(topic).headers(headers.clone());
            if let Some(p) = m.partition {
                record = record.partition(p);
            }
            if let Some(k) = &m.key {
                record = record.key(k.as_slice());
            }
            if let Some(v) = &m.value {
                record = record.payload(v.as_slice());
            }
            if let Some(ts) = m.timestamp {
                record = record.timestamp(ts);
            }
            match producer.send_result(record) {
                Ok(delivery) => {
                    pending.push(delivery);
                    break;
                }
                // Local queue full: back-pressure, not synchronization.
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((e, _)) => bail!("enqueueing message {i}: {e}"),
            }
        }
    }
    let results = futures::future::join_all(pending).await;
    results
        .into_iter()
        .enumerate()
        .map(|(i, r)| match r {
            Ok(Ok(d)) => Ok(Delivered {
                partition: d.partition,
                offset: d.offset,
            }),
            Ok(Err((e, _))) => Err(anyhow!("delivery of message {i} failed: {e}")),
            Err(_) => Err(anyhow!(
                "delivery report of message {i} lost (producer dropped)"
            )),
        })
        .collect()
}

/// Low and high watermark of a partition.
pub fn watermarks(broker: &Broker, topic: &str, partition: i32) -> Result<(i64, i64)> {
    let consumer = consumer(broker, &[]);
    Ok(consumer.fetch_watermarks(topic, partition, OP_TIMEOUT)?)
}

/// Reads every partition of `topic` from its earliest offset up to the high watermark observed
/// when the call starts. Returns messages in partition order, then offset order.
pub fn consume_all(broker: &Broker, topic: &str) -> Result<Vec<Received>> {
    let partitions = partition_count(broker, topic)?;
    let mut all = Vec::new();
    let consumer = consumer(broker, &[]);
    let mut ends = HashMap::new();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        let (low, high) = consumer.fetch_watermarks(topic, p, OP_TIMEOUT)?;
        if high > low {
            ends.insert(p, high);
            tpl.add_partition_offset(topic, p, Offset::Offset(low))?;
        }
    }
    if ends.is_empty() {
        return Ok(all);
    }
    consumer.assign(&tpl)?;
    let mut per_partition: HashMap<i32, Vec<Received>> = HashMap::new();
    let mut remaining = ends.len();
    let mut last_progress = Instant::now();
    while remaining > 0 {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                last_progress = Instant::now();
                let r = Received::from_message(&m);
                let end = ends[&r.partition];
                let list = per_partition.entry(r.partition).or_default();
                if r.offset < end {
                    if r.offset + 1 == end {
                        remaining -= 1;
                    }
                    list.push(r);
                }
            }
            Some(Err(e)) => bail!("consuming {topic}: {e}"),
            None => {}
        }
        if last_progress.elapsed() > EVENTUALLY {
            let progress: Vec<String> = (0..partitions)
                .map(|p| {
                    let got = per_partition
                        .get(&p)
                        .and_then(|l| l.last())
                        .map(|r| r.offset);
                    format!("p{p}: last offset {got:?} of end {:?}", ends.get(&p))
                })
                .collect();
            bail!(
                "consuming {topic}: no progress for {EVENTUALLY:?}; {}",
                progress.join(", ")
            );
        }
    }
    for p in 0..partitions {
        all.extend(per_partition.remove(&p).unwrap_or_default());
    }
    Ok(all)
}

/// Produces and consumes a few messages on a fresh topic: the broker serves real clients.
pub async fn assert_healthy(broker: &Broker) {
    let topic = unique_name("healthcheck");
    let result: Result<()> = async {
        create_topic(broker, &topic, 2, &[]).await?;
        let messages: Vec<Msg> = (0..10)
            .map(|i| {
                Msg::value(format!("health {i}"))
                    .key(format!("k{i}"))
                    .partition(i % 2)
            })
            .collect();
        let producer = producer(broker, &[]);
        let delivered = produce_all(&producer, &topic, &messages).await?;
        let received = consume_all(broker, &topic)?;
        ensure!(
            received.len() == messages.len(),
            "read back {} of {} messages",
            received.len(),
            messages.len()
        );
        for (m, d) in messages.iter().zip(&delivered) {
            let r = received
                .iter()
                .find(|r| r.partition == d.partition && r.offset == d.offset)
                .ok_or_else(|| anyhow!("message at {d:?} missing"))?;
            ensure!(
                r.content() == m.content(),
                "at {d:?}: read {r:?}, wrote {m:?}"
            );
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        panic!("broker is not healthy: {e:#}");
    }
}

// ---------------------------------------------------------------------------------------------
// kcat
// ---------------------------------------------------------------------------------------------

/// Runs `kcat -b <broker> <args>` with `stdin`, bounded by [`EVENTUALLY`]; returns stdout, or an
/// error with stderr if it fails.
pub fn kcat(broker: &Broker, args: &[&str], stdin: &[u8]) -> Result<Vec<u8>> {
    let mut child = Command::new("kcat")
        .args(["-b", &broker.bootstrap(), "-X", "broker.address.family=v4"])
        .args(broker.security().kcat_args())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running kcat (apt-get install kcat)")?;
    let mut input = child.stdin.take().ok_or_else(|| anyhow!("no kcat stdin"))?;
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || input.write_all(&data));
    let mut out = child
        .stdout
        .take()
        .ok_or_else(|| anyhow!("no kcat stdout"))?;
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        out.read_to_end(&mut buf).map(|_| buf)
    });
    let mut err = child
        .stderr
        .take()
        .ok_or_else(|| anyhow!("no kcat stderr"))?;
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + EVENTUALLY;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("kcat {args:?} did not finish within {EVENTUALLY:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = writer.join();
    let stdout = reader
        .join()
        .map_err(|_| anyhow!("kcat reader panicked"))??;
    let stderr = err_reader.join().unwrap_or_default();
    ensure!(
        status.success(),
        "kcat {args:?} failed with {status}: {}",
        String::from_utf8_lossy(&stderr)
    );
    Ok(stdout)
}

// ---------------------------------------------------------------------------------------------
// Raw Kafka protocol over a TCP socket, or TLS on one
// ---------------------------------------------------------------------------------------------

/// The bytes of a [`RawConn`]: a plain socket, or TLS over one.
enum Transport {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Transport {
    fn socket(&mut self) -> &mut TcpStream {
        match self {
            Transport::Plain(s) => s,
            Transport::Tls(t) => &mut t.sock,
        }
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Transport::Plain(s) => s.read(buf),
            Transport::Tls(t) => t.read(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Transport::Plain(s) => s.write(buf),
            Transport::Tls(t) => t.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Transport::Plain(s) => s.flush(),
            Transport::Tls(t) => t.flush(),
        }
    }
}

/// A blocking Kafka connection that sends exactly the bytes a test asks for.
pub struct RawConn {
    stream: Transport,
    next_correlation: i32,
}

impl RawConn {
    /// A plain TCP connection (for a secure broker: [`Broker::conn`] or [`Security::connect`]).
    pub fn connect(addr: impl ToSocketAddrs) -> Result<RawConn> {
        let addr = addr
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| anyhow!("no address"))?;
        let stream = TcpStream::connect_timeout(&addr, OP_TIMEOUT)?;
        Self::over(Transport::Plain(stream))
    }

    /// A connection speaking TLS as `tls` on the connected `socket`; the handshake runs with
    /// the first request.
    pub fn over_tls(socket: TcpStream, tls: rustls::ClientConnection) -> Result<RawConn> {
        Self::over(Transport::Tls(Box::new(rustls::StreamOwned::new(
            tls, socket,
        ))))
    }

    fn over(mut stream: Transport) -> Result<RawConn> {
        let socket = stream.socket();
        socket.set_read_timeout(Some(OP_TIMEOUT))?;
        socket.set_write_timeout(Some(OP_TIMEOUT))?;
        socket.set_nodelay(true)?;
        Ok(RawConn {
            stream,
            next_correlation: 1,
        })
    }

    /// The TCP socket (under TLS, if the connection speaks it).
    pub fn stream(&mut self) -> &mut TcpStream {
        self.stream.socket()
    }

    /// Writes bytes as they are (no framing).
    pub fn write_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Writes a length-prefixed frame.
    pub fn send_frame(&mut self, payload: &[u8]) -> std::io::Result<()> {
        let mut frame = Vec::with_capacity(payload.len() + 4);
        frame.extend_from_slice(&(payload.len() as i32).to_be_bytes());
        frame.extend_from_slice(payload);
        self.write_raw(&frame)
    }

    /// Reads one length-prefixed frame; `None` if the broker closed the connection first.
    pub fn read_frame(&mut self) -> Result<Option<Bytes>> {
        let mut len = [0u8; 4];
        if !read_exact_or_closed(&mut self.stream, &mut len)? {
            return Ok(None);
        }
        let len = i32::from_be_bytes(len);
        ensure!(
            (0..=256 * 1024 * 1024).contains(&len),
            "response frame length {len}"
        );
        let mut body = vec![0u8; len as usize];
        ensure!(
            read_exact_or_closed(&mut self.stream, &mut body)?,
            "connection closed mid-response"
        );
        Ok(Some(Bytes::from(body)))
    }

    fn next_correlation(&mut self) -> i32 {
        let c = self.next_correlation;
        self.next_correlation += 1;
        c
    }

    /// Sends `body` (already encoded) under a v1 request header built by hand, so that any API
    /// key and version can be sent, even ones no library knows. Returns the correlation id.
    pub fn send_raw_request(
        &mut self,
        api_key: i16,
        api_version: i16,
        body: &[u8],
    ) -> std::io::Result<i32> {
        let correlation = self.next_correlation();
        let mut payload = Vec::new();
        payload.extend_from_slice(&api_key.to_be_bytes());
        payload.extend_from_slice(&api_version.to_be_bytes());
        payload.extend_from_slice(&correlation.to_be_bytes());
        let client_id = b"brook-tests";
        payload.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
        payload.extend_from_slice(client_id);
        payload.extend_from_slice(body);
        self.send_frame(&payload)?;
        Ok(correlation)
    }

    /// Encodes and sends a request with the header version its API and version call for.
    pub fn send_request<R: Request>(&mut self, version: i16, request: &R) -> Result<i32> {
        let correlation = self.next_correlation();
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation)
            .with_client_id(Some(StrBytes::from_static_str("brook-tests")));
        let mut buf = BytesMut::new();
        header.encode(&mut buf, R::header_version(version))?;
        request.encode(&mut buf, version)?;
        self.send_frame(&buf)?;
        Ok(correlation)
    }

    /// Reads and decodes the response to a request sent with [`RawConn::send_request`].
    pub fn read_response<R: Request>(
        &mut self,
        version: i16,
        correlation: i32,
    ) -> Result<R::Response> {
        let mut frame = self.read_frame()?.ok_or_else(|| {
            anyhow!(
                "connection closed instead of a response to api {} v{version}",
                R::KEY
            )
        })?;
        let header = ResponseHeader::decode(&mut frame, R::Response::header_version(version))?;
        ensure!(
            header.correlation_id == correlation,
            "response correlation id {} != request {correlation}",
            header.correlation_id
        );
        let response = R::Response::decode(&mut frame, version)?;
        ensure!(
            !frame.has_remaining(),
            "{} bytes left after the response",
            frame.remaining()
        );
        Ok(response)
    }

    /// Sends a request and reads its response.
    pub fn call<R: Request>(&mut self, version: i16, request: &R) -> Result<R::Response> {
        let correlation = self.send_request(version, request)?;
        self.read_response::<R>(version, correlation)
    }

    /// Waits (bounded) for the broker to close the connection. Fails if it answers instead or
    /// keeps the connection open past `timeout`.
    pub fn expect_closed(&mut self, timeout: Duration) -> Result<()> {
        self.stream.socket().set_read_timeout(Some(timeout))?;
        let mut buf = [0u8; 4096];
        let result = self.stream.read(&mut buf);
        self.stream.socket().set_read_timeout(Some(OP_TIMEOUT))?;
        match result {
            Ok(0) => Ok(()),
            Ok(n) => bail!(
                "expected the broker to close the connection, but it sent {n} bytes: {:02x?}",
                &buf[..n.min(64)]
            ),
            Err(e) if is_closed_error(&e) => Ok(()),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                bail!("the broker kept the connection open for {timeout:?}")
            }
            Err(e) => Err(e.into()),
        }
    }
}

fn is_closed_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::BrokenPipe
            | ErrorKind::UnexpectedEof
    )
}

/// `read_exact` that returns `false` if the peer closed (or reset) before the first byte.
fn read_exact_or_closed(stream: &mut impl Read, buf: &mut [u8]) -> Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        match stream.read(&mut buf[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => bail!("connection closed after {filled} of {} bytes", buf.len()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if filled == 0 && is_closed_error(&e) => return Ok(false),
            Err(e) => return Err(anyhow!(e).context(format!("reading {} bytes", buf.len()))),
        }
    }
    Ok(true)
}

pub fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// Kafka error codes the tests assert on.
pub mod codes {
    pub const NONE: i16 = 0;
    pub const OFFSET_OUT_OF_RANGE: i16 = 1;
    pub const CORRUPT_MESSAGE: i16 = 2;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const UNSUPPORTED_VERSION: i16 = 35;
    pub const UNSUPPORTED_FOR_MESSAGE_FORMAT: i16 = 43;
    pub const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
    pub const DUPLICATE_SEQUENCE_NUMBER: i16 = 46;
    pub const INVALID_RECORD: i16 = 87;
}

/// Versions the raw helpers speak (all within what brook advertises, topic names not ids).
pub const PRODUCE_VERSION: i16 = 9;
pub const FETCH_VERSION: i16 = 12;
pub const LIST_OFFSETS_VERSION: i16 = 7;
pub const INIT_PRODUCER_ID_VERSION: i16 = 4;

/// An idempotent producer identity from InitProducerId.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProducerIdentity {
    pub id: i64,
    pub epoch: i16,
}

pub const NO_PRODUCER: ProducerIdentity = ProducerIdentity { id: -1, epoch: -1 };

/// InitProducerId for an idempotent (non-transactional) producer.
pub fn init_producer_id(conn: &mut RawConn) -> Result<ProducerIdentity> {
    let request = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60000)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let response = conn.call(INIT_PRODUCER_ID_VERSION, &request)?;
    ensure!(
        response.error_code == 0,
        "InitProducerId error {}",
        response.error_code
    );
    Ok(ProducerIdentity {
        id: response.producer_id.0,
        epoch: response.producer_epoch,
    })
}

/// Encodes one record batch of `values` (keys `k<i>`) with the given magic, producer identity,
/// base sequence and first timestamp (one millisecond apart).
pub fn record_batch(
    values: &[&[u8]],
    magic: i8,
    producer: ProducerIdentity,
    base_sequence: i32,
    first_timestamp: i64,
    compression: Compression,
) -> Result<Bytes> {
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: producer.id,
            producer_epoch: producer.epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder derives the batch's base sequence from the first record and splits
            // batches where offset - sequence changes, so sequences always count up (from -1
            // for a non-idempotent batch).
            sequence: base_sequence.wrapping_add(i as i32),
            timestamp: first_timestamp + i as i64,
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::copy_from_slice(v)),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: magic,
            compression,
        },
    )?;
    Ok(buf.freeze())
}

/// Produce (v9, acks=-1) of one batch per listed partition of one topic; returns the partition
/// responses in request order.
pub fn produce_raw(
    conn: &mut RawConn,
    topic: &str,
    batches: &[(i32, Bytes)],
) -> Result<Vec<PartitionProduceResponse>> {
    crate::cluster::produce_with_acks(conn, topic, -1, 30_000, batches)
}

/// A consumer's Fetch (v12) naming partition `partition` of `topic` from `offset`, `times`
/// times over (a hostile client may repeat it; a client names it once).
pub fn fetch_request(
    topic: &str,
    partition: i32,
    offset: i64,
    max_wait_ms: i32,
    times: usize,
) -> FetchRequest {
    let wanted = FetchPartition::default()
        .with_partition(partition)
        .with_fetch_offset(offset)
        .with_log_start_offset(-1)
        .with_partition_max_bytes(16 * 1024 * 1024);
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(64 * 1024 * 1024)
        .with_isolation_level(0)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(vec![wanted; times])])
}

/// Fetch (v12) of one partition from `offset`.
pub fn fetch_raw(
    conn: &mut RawConn,
    topic: &str,
    partition: i32,
    offset: i64,
    max_wait_ms: i32,
) -> Result<PartitionData> {
    let request = fetch_request(topic, partition, offset, max_wait_ms, 1);
    let response = conn.call(FETCH_VERSION, &request)?;
    ensure!(
        response.error_code == 0,
        "Fetch top-level error {}",
        response.error_code
    );
    response
        .responses
        .into_iter()
        .find(|t| t.topic.0.as_str() == topic)
        .and_then(|t| {
            t.partitions
                .into_iter()
                .find(|p| p.partition_index == partition)
        })
        .ok_or_else(|| anyhow!("no fetch response for {topic}/{partition}"))
}

/// Decodes the complete record batches in a fetch response's `records` (a trailing partial
/// batch, which Kafka allows, is ignored).
pub fn decode_records(records: Option<&Bytes>) -> Result<Vec<Record>> {
    let Some(records) = records else {
        return Ok(Vec::new());
    };
    let mut buf = records.clone();
    let mut out = Vec::new();
    while buf.remaining() >= 12 {
        let batch_len = i32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
        ensure!(batch_len >= 0, "negative batch length {batch_len}");
        let total = 12 + batch_len as usize;
        if buf.remaining() < total {
            break;
        }
        let mut batch = buf.split_to(total);
        let set = RecordBatchDecoder::decode(&mut batch)?;
        out.extend(set.records);
    }
    Ok(out)
}

/// Reads a whole partition with raw Fetch requests, from `from` to the high watermark.
pub fn fetch_all_raw(
    conn: &mut RawConn,
    topic: &str,
    partition: i32,
    from: i64,
) -> Result<Vec<Record>> {
    let mut out = Vec::new();
    let mut next = from;
    let deadline = Instant::now() + EVENTUALLY;
    loop {
        let data = fetch_raw(conn, topic, partition, next, 100)?;
        ensure!(
            data.error_code == 0,
            "Fetch {topic}/{partition}@{next}: error {}",
            data.error_code
        );
        for r in decode_records(data.records.as_ref())? {
            if r.offset >= next {
                next = r.offset + 1;
                out.push(r);
            }
        }
        if next >= data.high_watermark {
            return Ok(out);
        }
        ensure!(
            Instant::now() < deadline,
            "fetching {topic}/{partition}: stuck at {next} of {}",
            data.high_watermark
        );
    }
}

/// ListOffsets (v7) of one partition: `(error_code, offset, timestamp)`. `timestamp` is a time
/// in ms or -1 (latest), -2 (earliest), -3 (max timestamp).
pub fn list_offset(
    conn: &mut RawConn,
    topic: &str,
    partition: i32,
    timestamp: i64,
) -> Result<(i16, i64, i64)> {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(0)
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(partition)
                .with_current_leader_epoch(-1)
                .with_timestamp(timestamp)])]);
    let response = conn.call(LIST_OFFSETS_VERSION, &request)?;
    let p = response
        .topics
        .into_iter()
        .find(|t| t.name.0.as_str() == topic)
        .and_then(|t| {
            t.partitions
                .into_iter()
                .find(|p| p.partition_index == partition)
        })
        .ok_or_else(|| anyhow!("no ListOffsets response for {topic}/{partition}"))?;
    Ok((p.error_code, p.offset, p.timestamp))
}

/// The api key of a request frame's payload (first two bytes).
pub fn frame_api_key(payload: &[u8]) -> Option<i16> {
    (payload.len() >= 2).then(|| i16::from_be_bytes([payload[0], payload[1]]))
}

/// The api key a test uses to name Produce in proxies.
pub const PRODUCE_KEY: i16 = ApiKey::Produce as i16;

/// Writes `bytes` to a file (debug helper for failing tests).
pub fn dump(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = File::create(path)?;
    f.write_all(bytes)?;
    Ok(())
}

/// Puts a big-endian i32 length in front of `payload`.
pub fn framed(payload: &[u8]) -> Vec<u8> {
    let mut buf = BytesMut::with_capacity(payload.len() + 4);
    buf.put_i32(payload.len() as i32);
    buf.put_slice(payload);
    buf.to_vec()
}
