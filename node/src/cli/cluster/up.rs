//! `brook cluster up`: runs the nodes of a local cluster as child processes of this binary and
//! supervises them until Ctrl-C or SIGTERM.
//!
//! Each node's stdout and stderr go to its log file (`DIR/logs/node-N.log`, see [`super::logs`]);
//! the terminal gets this supervisor's progress, the status table, the nodes' WARN and ERROR
//! lines, and the last lines of a node that exits unexpectedly or does not get ready.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{sleep, sleep_until, timeout, Instant};

use super::layout::{self, Layout, NodeSpec, Requested};
use super::logs::{self, NodeLog};
use super::{secure, status};
use crate::client::security::ClientSecurity;
use crate::client::Client;
use crate::metadata::secret;

/// How long the nodes get to print their ready line, and then to form a healthy cluster.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const HEALTHY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the nodes get to stop after SIGTERM before they are killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
const PROBE_INTERVAL: Duration = Duration::from_millis(500);
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The flags of `brook cluster up`.
#[derive(Debug, Clone)]
pub struct UpArgs {
    pub dir: PathBuf,
    /// `--secure`: a new cluster speaks SASL_SSL only.
    pub secure: bool,
    pub requested: Requested,
}

fn count(nodes: usize) -> String {
    match nodes {
        1 => "1 node".to_string(),
        n => format!("{n} nodes"),
    }
}

/// Writes one line on stderr; a closed stderr must not stop the supervisor.
pub(super) fn say(line: impl std::fmt::Display) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

pub async fn up(args: UpArgs) -> anyhow::Result<()> {
    let dir = std::path::absolute(&args.dir)
        .with_context(|| format!("resolving {}", args.dir.display()))?;
    let saved = layout::load(&dir)?;
    let is_new = saved.is_none();
    let mut requested = args.requested.clone();
    if args.secure && is_new {
        requested.overrides.extend(secure::prepare(&dir)?);
    }
    let (layout, mut warnings) = layout::resolve(saved, &requested);
    if args.secure && !secure::is_secure(&layout.overrides) {
        warnings.push("--secure makes a new cluster secure; this one was made without it".into());
    }
    for warning in warnings {
        say(format_args!(
            "brook: warning: {}: {warning}",
            dir.join(layout::LAYOUT_FILE).display()
        ));
    }
    let nodes = layout.plan()?;
    if is_new {
        layout::save(&dir, &layout)?;
    }
    // Every node authenticates its Raft peers with this one secret, made once per cluster.
    let secret = dir.join(secret::FILE_NAME);
    if !secret.exists() {
        secret::create(&secret)?;
    }
    if secure::is_secure(&layout.overrides) {
        // This process probes the nodes too: as the admin user, over TLS.
        let config = dir.join(secure::CLIENT_PROPERTIES);
        crate::client::security::set_admin(ClientSecurity::load(&config)?);
    }
    let exe = std::env::current_exe().context("finding the brook binary")?;
    // Installed before any child exists, so an early Ctrl-C still stops them.
    let mut signals = Signals::new()?;
    let mut children = Children::new();
    for node in &nodes {
        if let Err(e) = children.spawn(&exe, &layout, &nodes, node, &dir) {
            children.shutdown(&mut signals).await;
            return Err(e);
        }
    }
    say(format_args!(
        "brook: started {} in {}",
        count(nodes.len()),
        dir.display()
    ));
    say(format_args!(
        "brook: node logs are in {}; follow them with `brook cluster logs --dir {} -f`",
        dir.join(logs::LOGS_DIR).display(),
        dir.display()
    ));
    let first = nodes
        .first()
        .map(NodeSpec::address)
        .context("a cluster needs at least one node")?;
    let started = match children.wait_ready(&mut signals, &nodes).await {
        Ok(Started::Ready) => children.wait_healthy(&mut signals, &first, &nodes).await,
        other => other,
    };
    match started {
        Ok(Started::Ready) => {}
        Ok(Started::Interrupted) => {
            children.shutdown(&mut signals).await;
            return Ok(());
        }
        Err(e) => {
            children.shutdown(&mut signals).await;
            return Err(e);
        }
    }
    let mut report = format!("bootstrap servers: {}\n", layout::bootstrap_servers(&nodes));
    if secure::is_secure(&layout.overrides) {
        report.push_str(&format!(
            "SASL_SSL only; client settings (user {}): {} (Java, --command-config), {} (librdkafka, kcat -F)\n",
            secure::ADMIN,
            dir.join(secure::CLIENT_PROPERTIES).display(),
            dir.join(secure::LIBRDKAFKA_CONFIG).display(),
        ));
    }
    match status::collect(&first).await {
        Ok(view) => report.push_str(&status::render(&view)),
        Err(e) => say(format_args!("brook: cluster status: {e:#}")),
    }
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(report.as_bytes());
    let _ = stdout.flush();
    drop(stdout);
    let result = children.supervise(&mut signals).await;
    children.shutdown(&mut signals).await;
    result
}

/// SIGINT (Ctrl-C reaches only the supervisor: each node has its own process group) and SIGTERM.
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Self> {
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            terminate: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
        })
    }

    /// The name of the next signal.
    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            Some(()) = self.interrupt.recv() => "SIGINT",
            Some(()) = self.terminate.recv() => "SIGTERM",
            else => std::future::pending().await,
        }
    }
}

/// What the supervisor asks every child's watcher to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Run,
    Term,
    Kill,
}

enum Started {
    Ready,
    Interrupted,
}

/// The running nodes. Each child is owned by a watcher task that reaps it and relays stop
/// requests, so a pid is only ever signalled before it has been reaped (and could be reused).
struct Children {
    stop: watch::Sender<Stop>,
    exits_tx: mpsc::UnboundedSender<(i32, std::io::Result<ExitStatus>)>,
    exits: mpsc::UnboundedReceiver<(i32, std::io::Result<ExitStatus>)>,
    ready_tx: mpsc::UnboundedSender<i32>,
    ready: mpsc::UnboundedReceiver<i32>,
    running: BTreeSet<i32>,
    /// Each node's log, shared by the readers of its stdout and stderr.
    logs: BTreeMap<i32, SharedLog>,
    /// The readers of each node's output, awaited before its tail is printed.
    readers: BTreeMap<i32, Vec<JoinHandle<()>>>,
    tasks: Vec<JoinHandle<()>>,
}

type SharedLog = Arc<Mutex<NodeLog>>;

/// The last lines of a node's log; a reader that panicked holding the lock left it usable.
fn tail_of(log: &SharedLog) -> Vec<String> {
    let log = log.lock().unwrap_or_else(|e| e.into_inner());
    log.tail().map(str::to_string).collect()
}

impl Children {
    fn new() -> Self {
        let (stop, _) = watch::channel(Stop::Run);
        let (exits_tx, exits) = mpsc::unbounded_channel();
        let (ready_tx, ready) = mpsc::unbounded_channel();
        Children {
            stop,
            exits_tx,
            exits,
            ready_tx,
            ready,
            running: BTreeSet::new(),
            logs: BTreeMap::new(),
            readers: BTreeMap::new(),
            tasks: Vec::new(),
        }
    }

    fn spawn(
        &mut self,
        exe: &Path,
        layout: &Layout,
        nodes: &[NodeSpec],
        node: &NodeSpec,
        dir: &Path,
    ) -> anyhow::Result<()> {
        let id = node.id;
        let log = Arc::new(Mutex::new(NodeLog::open(dir, id)?));
        let mut child = Command::new(exe)
            .args(layout::node_args(layout, nodes, node, dir))
            // Plain text in the log files (tracing colours its levels on a terminal otherwise).
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group: a terminal's Ctrl-C goes to the supervisor only, which
            // then stops the nodes in order.
            .process_group(0)
            // Should the supervisor fail before it stops them, the nodes do not outlive it.
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting node {id} ({})", exe.display()))?;
        let readers = self.readers.entry(id).or_default();
        if let Some(out) = child.stdout.take() {
            let ready = self.ready_tx.clone();
            readers.push(tokio::spawn(forward(id, out, log.clone(), Some(ready))));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(tokio::spawn(forward(id, err, log.clone(), None)));
        }
        self.logs.insert(id, log);
        self.tasks.push(tokio::spawn(watch_child(
            id,
            child,
            self.stop.subscribe(),
            self.exits_tx.clone(),
        )));
        self.running.insert(id);
        Ok(())
    }

    /// Reports a node's exit; one the supervisor did not ask for also gets the end of its log.
    async fn exited(&mut self, id: i32, status: std::io::Result<ExitStatus>, expected: bool) {
        self.running.remove(&id);
        if !expected {
            // Its last lines may still be in the pipes: the readers end once those are drained.
            for reader in self.readers.remove(&id).unwrap_or_default() {
                let _ = timeout(Duration::from_secs(2), reader).await;
            }
            self.print_tail(id);
        }
        match status {
            Ok(status) => say(format_args!("[node-{id}] exited with {status}")),
            Err(e) => say(format_args!(
                "[node-{id}] exited (its status is unknown: {e})"
            )),
        }
    }

    /// The last lines of node `id`'s log, on the terminal.
    fn print_tail(&self, id: i32) {
        let Some(log) = self.logs.get(&id) else {
            return;
        };
        let path = log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .path()
            .display()
            .to_string();
        say(format_args!(
            "[node-{id}] ---- the end of its log ({path}) ----"
        ));
        for line in tail_of(log) {
            say(format_args!("[node-{id}] {line}"));
        }
        say(format_args!("[node-{id}] ---- end ----"));
    }

    /// Waits for every node's ready line.
    async fn wait_ready(
        &mut self,
        signals: &mut Signals,
        nodes: &[NodeSpec],
    ) -> anyhow::Result<Started> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut ready = BTreeSet::new();
        while ready.len() < nodes.len() {
            tokio::select! {
                name = signals.recv() => {
                    say(format_args!("brook: {name} while starting: stopping the cluster"));
                    return Ok(Started::Interrupted);
                }
                Some(id) = self.ready.recv() => {
                    ready.insert(id);
                }
                Some((id, status)) = self.exits.recv() => {
                    self.exited(id, status, false).await;
                    bail!("node {id} exited before it was ready (the end of its log is above)");
                }
                _ = sleep_until(deadline) => {
                    let missing: Vec<String> = nodes
                        .iter()
                        .filter(|n| !ready.contains(&n.id))
                        .map(|n| {
                            self.print_tail(n.id);
                            n.id.to_string()
                        })
                        .collect();
                    bail!(
                        "nodes {} were not ready after {} s",
                        missing.join(", "),
                        READY_TIMEOUT.as_secs()
                    );
                }
            }
        }
        say("brook: every node is ready; waiting for the cluster to form");
        Ok(Started::Ready)
    }

    /// Waits until node `first` lists every node as a broker and knows a controller.
    async fn wait_healthy(
        &mut self,
        signals: &mut Signals,
        first: &str,
        nodes: &[NodeSpec],
    ) -> anyhow::Result<Started> {
        let deadline = Instant::now() + HEALTHY_TIMEOUT;
        // One connection for all probes, so the node logs one connection rather than one per
        // probe; dropped after a failure, since its state is then unknown.
        let mut client = None;
        loop {
            let last = match timeout(PROBE_TIMEOUT, probe(&mut client, first, nodes)).await {
                Ok(Ok(None)) => return Ok(Started::Ready),
                Ok(Ok(Some(state))) => state,
                Ok(Err(e)) => {
                    client = None;
                    format!("{e:#}")
                }
                Err(_) => {
                    client = None;
                    format!("{first} did not answer within {PROBE_TIMEOUT:?}")
                }
            };
            tokio::select! {
                name = signals.recv() => {
                    say(format_args!("brook: {name} while starting: stopping the cluster"));
                    return Ok(Started::Interrupted);
                }
                Some((id, status)) = self.exits.recv() => {
                    self.exited(id, status, false).await;
                    bail!("node {id} exited before the cluster was healthy (the end of its log is above)");
                }
                _ = sleep_until(deadline) => {
                    bail!(
                        "the cluster was not healthy after {} s: {last}",
                        HEALTHY_TIMEOUT.as_secs()
                    );
                }
                _ = sleep(PROBE_INTERVAL) => {}
            }
        }
    }

    /// Runs until a signal; nodes that exit meanwhile are reported, not restarted.
    async fn supervise(&mut self, signals: &mut Signals) -> anyhow::Result<()> {
        loop {
            tokio::select! {
                name = signals.recv() => {
                    say(format_args!("brook: {name}: stopping the cluster"));
                    return Ok(());
                }
                Some((id, status)) = self.exits.recv() => {
                    self.exited(id, status, false).await;
                    if self.running.is_empty() {
                        bail!("every node has exited");
                    }
                }
            }
        }
    }

    /// SIGTERM to every node, SIGKILL to those still running after [`STOP_TIMEOUT`] or a second
    /// signal; returns once all have exited and their output is printed.
    async fn shutdown(&mut self, signals: &mut Signals) {
        if !self.running.is_empty() {
            say(format_args!(
                "brook: stopping {}",
                count(self.running.len())
            ));
            let _ = self.stop.send(Stop::Term);
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        // SIGKILL cannot be refused; this only bounds the wait should a watcher be lost.
        let give_up = deadline + STOP_TIMEOUT;
        let mut killed = false;
        while !self.running.is_empty() {
            tokio::select! {
                Some((id, status)) = self.exits.recv() => self.exited(id, status, true).await,
                _ = sleep_until(give_up) => {
                    say(format_args!("brook: gave up waiting for nodes {:?}", self.running));
                    break;
                }
                _ = sleep_until(deadline), if !killed => {
                    say(format_args!(
                        "brook: nodes {:?} still running after {} s: killing them",
                        self.running,
                        STOP_TIMEOUT.as_secs()
                    ));
                    let _ = self.stop.send(Stop::Kill);
                    killed = true;
                }
                name = signals.recv(), if !killed => {
                    say(format_args!("brook: {name} again: killing the nodes"));
                    let _ = self.stop.send(Stop::Kill);
                    killed = true;
                }
            }
        }
        // The readers end when the nodes' pipes close; a node's own children could keep a pipe
        // open, hence the bound.
        let readers: Vec<JoinHandle<()>> = std::mem::take(&mut self.readers)
            .into_values()
            .flatten()
            .collect();
        for task in self.tasks.drain(..).chain(readers) {
            let _ = timeout(Duration::from_secs(5), task).await;
        }
    }
}

/// `None` once `first` lists all `nodes` as brokers and names a controller; else what is
/// missing.
async fn probe(
    client: &mut Option<Client>,
    first: &str,
    nodes: &[NodeSpec],
) -> anyhow::Result<Option<String>> {
    let connected = match client {
        Some(c) => c,
        None => client.insert(status::connect(first).await?),
    };
    let metadata = status::metadata(connected, first).await?;
    let brokers: BTreeSet<i32> = metadata.brokers.iter().map(|b| b.node_id.0).collect();
    let missing: Vec<String> = nodes
        .iter()
        .filter(|n| !brokers.contains(&n.id))
        .map(|n| n.id.to_string())
        .collect();
    let controller = metadata.controller_id.0;
    if missing.is_empty() && controller != -1 {
        return Ok(None);
    }
    Ok(Some(format!(
        "{first} lists brokers {brokers:?} (missing {}), controller {controller}",
        if missing.is_empty() {
            "none".to_string()
        } else {
            missing.join(", ")
        }
    )))
}

/// Copies a child's output to its log line by line, and its WARN and ERROR lines to stderr,
/// prefixed with its node; on stdout also reports the node's ready line.
async fn forward(
    id: i32,
    stream: impl AsyncRead + Unpin,
    log: SharedLog,
    ready: Option<mpsc::UnboundedSender<i32>>,
) {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.strip_suffix('\n').unwrap_or(&text);
        // A short blocking write under a lock held by this node's two readers only.
        log.lock().unwrap_or_else(|e| e.into_inner()).write(text);
        if is_alert(text) {
            say(format_args!("[node-{id}] {text}"));
        }
        if let Some(ready) = &ready {
            if ready_line_id(text) == Some(id) {
                let _ = ready.send(id);
            }
        }
    }
}

/// Whether a node's log line is a WARN or ERROR event: in tracing's default format the level
/// follows the timestamp (`2026-12-08T04:36:27.123456Z  WARN target: message`).
fn is_alert(line: &str) -> bool {
    let mut words = line.split_whitespace();
    let _timestamp = words.next();
    matches!(words.next(), Some("WARN" | "ERROR"))
}

/// The node id of a `brook node <id> ready on <host>:<port>` line.
fn ready_line_id(line: &str) -> Option<i32> {
    let (id, address) = line.strip_prefix("brook node ")?.split_once(" ready on ")?;
    if address.is_empty() {
        return None;
    }
    id.parse().ok()
}

/// Owns one child: reaps it, reports its exit, and signals it when the supervisor asks.
async fn watch_child(
    id: i32,
    mut child: Child,
    mut stop: watch::Receiver<Stop>,
    exits: mpsc::UnboundedSender<(i32, std::io::Result<ExitStatus>)>,
) {
    loop {
        tokio::select! {
            status = child.wait() => {
                let _ = exits.send((id, status));
                return;
            }
            changed = stop.changed() => {
                if changed.is_err() {
                    // The supervisor is gone; kill_on_drop covers the child when the runtime
                    // drops this task, so just wait for it.
                    let status = child.wait().await;
                    let _ = exits.send((id, status));
                    return;
                }
                let request = *stop.borrow_and_update();
                match request {
                    Stop::Run => {}
                    Stop::Term => terminate(&mut child),
                    Stop::Kill => {
                        let _ = child.start_kill();
                    }
                }
            }
        }
    }
}

/// SIGTERM, the signal `brook node` stops gracefully on.
fn terminate(child: &mut Child) {
    // Until try_wait reaps it the pid is still ours, so it cannot name another process.
    if let (Ok(None), Some(pid)) = (child.try_wait(), child.id()) {
        if let Ok(pid) = i32::try_from(pid) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_warnings_and_errors_only() {
        let line = |level: &str| {
            format!("2026-12-08T04:36:27.123456Z {level:>5} brook_node::server: connection closed")
        };
        assert!(is_alert(&line("WARN")));
        assert!(is_alert(&line("ERROR")));
        assert!(!is_alert(&line("INFO")));
        assert!(!is_alert(&line("DEBUG")));
        assert!(!is_alert("brook node 2 ready on 127.0.0.1:9093"));
        assert!(!is_alert("WARN at the start is not a tracing line"));
    }

    #[test]
    fn reads_ready_lines() {
        assert_eq!(
            ready_line_id("brook node 2 ready on 127.0.0.1:9093"),
            Some(2)
        );
        assert_eq!(ready_line_id("brook node 2 ready on "), None);
        assert_eq!(ready_line_id("brook node x ready on 127.0.0.1:9093"), None);
        assert_eq!(
            ready_line_id("INFO brook node 2 ready on 127.0.0.1:9093"),
            None
        );
    }
}
