//! brook nodes as child processes, each on its own address with the usual ports: in `--local`
//! mode plain processes on loopback addresses 127.0.77.<id> (only process faults there), else
//! each inside its network namespace `jn<id>` on 10.77.0.<10+id> (see [`crate::netns`]).
//!
//! Every child's pid is kept in [`Pids`] so that any exit path, including Ctrl-C handled on
//! another thread, can SIGKILL exactly the processes this harness started.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::netns;

pub const KAFKA_PORT: u16 = 9092;
pub const RAFT_PORT: u16 = 19092;
/// How long a node may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a node may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// The pids of every process this harness started and has not reaped yet, mirrored to a file
/// so that the next run can kill what a crashed harness left behind.
pub struct Pids(Mutex<(BTreeSet<i32>, Option<PathBuf>)>);

/// One registry per harness process: the Ctrl-C handler kills what is in it.
pub static PIDS: Pids = Pids(Mutex::new((BTreeSet::new(), None)));

impl Pids {
    fn update(&self, f: impl FnOnce(&mut BTreeSet<i32>)) {
        if let Ok(mut g) = self.0.lock() {
            f(&mut g.0);
            if let Some(path) = &g.1 {
                let text: String = g.0.iter().map(|p| format!("{p}\n")).collect();
                let _ = fs::write(path, text);
            }
        }
    }

    fn add(&self, pid: u32) {
        self.update(|s| {
            s.insert(pid as i32);
        });
    }

    fn remove(&self, pid: u32) {
        self.update(|s| {
            s.remove(&(pid as i32));
        });
    }

    /// Mirrors the registry to `path` from now on.
    fn set_file(&self, path: PathBuf) {
        if let Ok(mut g) = self.0.lock() {
            g.1 = Some(path);
        }
        self.update(|_| {});
    }

    /// SIGKILLs all of them (SIGKILL also ends stopped processes).
    pub fn kill_all(&self) {
        if let Ok(g) = self.0.lock() {
            for pid in g.0.iter() {
                let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
            }
        }
    }
}

/// Exclusive use of one kind of environment (the loopback addresses, or the namespaces) for the
/// length of a run, across harness processes: a second run waits instead of tearing down the
/// first one's namespaces or fighting over its ports. Taking it also kills the brook nodes a
/// crashed earlier run left behind (their pids are in the file beside the lock).
pub fn exclusive(net: Net, log: &dyn Fn(&str)) -> Result<Flock<File>> {
    let name = match net {
        Net::Local => "local",
        Net::Netns => "netns",
    };
    let dir = std::env::temp_dir();
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(format!("brook-jepsen-{name}.lock")))?;
    let lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(l) => l,
        Err((file, _)) => {
            log("another brook-jepsen run holds the environment; waiting for it");
            Flock::lock(file, FlockArg::LockExclusive)
                .map_err(|(_, e)| anyhow!("locking the environment: {e}"))?
        }
    };
    let pids_file = dir.join(format!("brook-jepsen-{name}.pids"));
    for pid in fs::read_to_string(&pids_file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse::<i32>().ok())
    {
        // Only a brook node: the pid may have been reused by anything since.
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        if cmdline.contains("brook") && cmdline.contains("--node-id") {
            log(&format!("killing leftover node process {pid}"));
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            // Wait until it is gone, so its ports are free for the new nodes.
            let deadline = Instant::now() + Duration::from_secs(5);
            while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    PIDS.set_file(pids_file);
    Ok(lock)
}

pub struct Node {
    pub id: u32,
    pub host: String,
    pub dir: PathBuf,
    pub log: PathBuf,
    child: Option<Child>,
    paused: bool,
}

impl Node {
    pub fn kafka_addr(&self) -> String {
        format!("{}:{KAFKA_PORT}", self.host)
    }

    pub fn raft_addr(&self) -> String {
        format!("{}:{RAFT_PORT}", self.host)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }
}

/// Where the nodes live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Net {
    /// Loopback addresses in the harness's own namespace.
    Local,
    /// One network namespace per node (set up by [`crate::netns::setup`]).
    Netns,
}

pub struct Cluster {
    bin: PathBuf,
    net: Net,
    pub nodes: Vec<Node>,
    /// Extra `-o key=value` settings for every node.
    settings: Vec<String>,
    /// libfaketime, preloaded into every node once clock faults are on.
    faketime: Option<PathBuf>,
}

/// The address of node `id`.
pub fn host(net: Net, id: u32) -> String {
    match net {
        Net::Local => format!("127.0.77.{id}"),
        Net::Netns => netns::node_ip(id),
    }
}

impl Cluster {
    /// Plans `n` nodes with data and logs under `nodes_dir/n<id>/`.
    pub fn new(
        bin: &Path,
        n: u32,
        nodes_dir: &Path,
        mut settings: Vec<String>,
        net: Net,
    ) -> Result<Self> {
        if !bin.is_file() {
            bail!(
                "no brook binary at {} (build it with `cargo build --release -p brook-node`, or pass --brook-bin / BROOK_BIN)",
                bin.display()
            );
        }
        // The nodes authenticate each other on the Raft port with one secret, kept in a file
        // so it does not show in process listings.
        fs::create_dir_all(nodes_dir)?;
        let secret = nodes_dir.join("cluster.secret");
        let text: String = (0..32)
            .map(|_| format!("{:02x}", rand::random::<u8>()))
            .collect();
        fs::write(&secret, text)?;
        settings.push(format!("brook.cluster.secret.file={}", secret.display()));
        let mut nodes = Vec::new();
        for id in 1..=n {
            let dir = nodes_dir.join(format!("n{id}"));
            fs::create_dir_all(&dir)?;
            nodes.push(Node {
                id,
                host: host(net, id),
                log: dir.join("broker.log"),
                dir,
                child: None,
                paused: false,
            });
        }
        Ok(Cluster {
            bin: bin.to_path_buf(),
            net,
            nodes,
            settings,
            faketime: None,
        })
    }

    /// Starts nodes with skewable clocks from now on (see [`crate::clock`]).
    pub fn enable_clock_faults(&mut self) -> Result<()> {
        self.faketime = Some(crate::clock::library()?);
        Ok(())
    }

    /// Node `id`'s own directory (its log, its clock offset).
    pub fn node_dir(&self, id: u32) -> Result<PathBuf> {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .map(|n| n.dir.clone())
            .ok_or_else(|| anyhow!("no node {id}"))
    }

    /// Node `id`'s data directory (`--log-dirs`).
    pub fn data_dir(&self, id: u32) -> Result<PathBuf> {
        self.node_dir(id).map(|d| d.join("data"))
    }

    pub fn bootstrap(&self) -> String {
        self.nodes
            .iter()
            .map(Node::kafka_addr)
            .collect::<Vec<_>>()
            .join(",")
    }

    fn peers(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("{}@{}", n.id, n.raft_addr()))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn node(&mut self, id: u32) -> Result<&mut Node> {
        self.nodes
            .iter_mut()
            .find(|n| n.id == id)
            .ok_or_else(|| anyhow!("no node {id}"))
    }

    /// Starts every node and waits for all ready lines.
    pub fn start_all(&mut self) -> Result<()> {
        // In namespaces the addresses are fresh; on the loopback an old node may still be up.
        for n in self.nodes.iter().filter(|_| self.net == Net::Local) {
            for port in [KAFKA_PORT, RAFT_PORT] {
                if TcpListener::bind((n.host.as_str(), port)).is_err() {
                    bail!(
                        "{}:{port} is taken: a leftover brook from an earlier run? (ss -ltnp)",
                        n.host
                    );
                }
            }
        }
        let ids: Vec<u32> = self.nodes.iter().map(|n| n.id).collect();
        let mut offsets = Vec::new();
        for &id in &ids {
            offsets.push(self.spawn(id)?);
        }
        for (&id, offset) in ids.iter().zip(offsets) {
            self.wait_ready(id, offset)?;
        }
        Ok(())
    }

    /// Starts node `id` (same data directory) and returns where its log stood before, for
    /// [`Self::wait_ready`].
    pub fn spawn(&mut self, id: u32) -> Result<u64> {
        let bin = self.bin.clone();
        let peers = self.peers();
        let settings = self.settings.clone();
        let net = self.net;
        let faketime = self.faketime.clone();
        let node = self.node(id)?;
        if node.child.is_some() {
            return Ok(0);
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)?;
        let offset = log.metadata()?.len();
        // `ip netns exec` execs the binary in place, so the pid is brook's own and signals
        // reach it directly.
        let mut cmd = match net {
            Net::Local => Command::new(&bin),
            Net::Netns => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &netns::ns(id)]).arg(&bin);
                c
            }
        };
        cmd.arg("node")
            .args(["--node-id", &id.to_string()])
            .args(["--listeners", &format!("PLAINTEXT://{}", node.kafka_addr())])
            .args(["--raft-listener", &node.raft_addr()])
            .args(["--peers", &peers])
            .arg("--log-dirs")
            .arg(node.dir.join("data"));
        for s in &settings {
            cmd.args(["-o", s]);
        }
        if let Some(lib) = &faketime {
            cmd.envs(crate::clock::env(lib, &node.dir)?);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            // Own process group: a Ctrl-C on the terminal reaches the harness, which then
            // kills the nodes itself, rather than racing it with a graceful shutdown.
            .process_group(0);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        PIDS.add(child.id());
        node.child = Some(child);
        node.paused = false;
        Ok(offset)
    }

    /// Waits until node `id` printed its ready line after `offset` in its log.
    pub fn wait_ready(&mut self, id: u32, offset: u64) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let node = self.node(id)?;
        let needle = format!("brook node {id} ready on");
        loop {
            let text = fs::read(&node.log).unwrap_or_default();
            let tail = text.get(offset as usize..).unwrap_or_default();
            if String::from_utf8_lossy(tail).contains(&needle) {
                return Ok(());
            }
            if let Some(child) = node.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    node.child = None;
                    bail!(
                        "node {id} exited before it was ready ({status}); see {}",
                        node.log.display()
                    );
                }
            }
            if Instant::now() > deadline {
                bail!("node {id} not ready after {READY_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL, then reap.
    pub fn kill(&mut self, id: u32) -> Result<()> {
        let node = self.node(id)?;
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            PIDS.remove(child.id());
        }
        node.paused = false;
        Ok(())
    }

    /// SIGTERM (a graceful stop), then SIGKILL if it takes too long.
    pub fn terminate(&mut self, id: u32) -> Result<()> {
        let node = self.node(id)?;
        let Some(mut child) = node.child.take() else {
            return Ok(());
        };
        let pid = Pid::from_raw(child.id() as i32);
        if node.paused {
            let _ = kill(pid, Signal::SIGCONT);
            node.paused = false;
        }
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        PIDS.remove(child.id());
        Ok(())
    }

    pub fn pause(&mut self, id: u32) -> Result<()> {
        self.signal(id, Signal::SIGSTOP, true)
    }

    pub fn resume(&mut self, id: u32) -> Result<()> {
        self.signal(id, Signal::SIGCONT, false)
    }

    fn signal(&mut self, id: u32, sig: Signal, paused: bool) -> Result<()> {
        let node = self.node(id)?;
        if let Some(child) = &node.child {
            kill(Pid::from_raw(child.id() as i32), sig)?;
            node.paused = paused;
        }
        Ok(())
    }

    /// Resumes paused nodes and starts stopped ones: the heal at the end of a run.
    pub fn heal(&mut self) -> Result<()> {
        let ids: Vec<u32> = self.nodes.iter().map(|n| n.id).collect();
        let mut started = Vec::new();
        for id in ids {
            let node = self.node(id)?;
            if node.paused {
                self.resume(id)?;
            } else if !node.is_running() {
                started.push((id, self.spawn(id)?));
            }
        }
        for (id, offset) in started {
            self.wait_ready(id, offset)?;
        }
        Ok(())
    }

    /// Stops every node gracefully (their logs end cleanly), killing any that hang.
    pub fn stop_all(&mut self) {
        let ids: Vec<u32> = self.nodes.iter().map(|n| n.id).collect();
        for id in ids {
            let _ = self.terminate(id);
        }
    }

    /// Removes the nodes' data directories (the logs stay).
    pub fn remove_data(&self) {
        for n in &self.nodes {
            let _ = fs::remove_dir_all(n.dir.join("data"));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut child) = n.child.take() {
                let _ = child.kill();
                let _ = child.wait();
                PIDS.remove(child.id());
            }
        }
    }
}
