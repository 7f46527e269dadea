//! The deployable package: `Dockerfile`, `deploy/docker-compose.yml`, `deploy/systemd/` and
//! `deploy/kubernetes/brook.yaml`.
//!
//! Nothing here needs docker, systemd or a Kubernetes cluster, except the image build itself:
//! - the image is built with `docker build` when `docker` is on PATH and its daemon answers
//!   (skipped with a message otherwise); the Dockerfile is always checked (two stages, the
//!   `dist` profile, a non-root user, the data volume);
//! - each deployment's settings are *run*: three real `brook node` processes get exactly the
//!   environment (and command) a compose service, a systemd host or a StatefulSet pod gives
//!   them, with only hosts, ports and paths made local, and must form one cluster whose every
//!   listener answers Metadata with all three brokers under the addresses the deployment
//!   advertises. A mistyped host, a voter list that names the wrong port, a listener without
//!   its published port or a node id the start script gets wrong fails here;
//! - the systemd unit is checked by `systemd-analyze verify` when it is installed, and for the
//!   keys a server unit needs (non-root user, restart, hardening) always.
//!
//! The YAML files are read by [`yaml`], a parser for the subset they use (block maps and lists,
//! quoted scalars, flow lists of scalars, `|` blocks); it refuses anything else rather than
//! misread it, so keep the files within that subset.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Result};
use brook_tests::cluster::{cluster_secret, free_ports, metadata};
use brook_tests::{brook_bin, parse_ready_line, wait_for, RawConn, READY_TIMEOUT};

/// How long a formed cluster may take to list every broker on every listener.
const SETTLE: Duration = Duration::from_secs(60);
/// How long a node may take to exit after SIGTERM.
const STOP: Duration = Duration::from_secs(60);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(rel: &str) -> String {
    let path = repo().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

// ---------------------------------------------------------------------------------------------
// The Dockerfile
// ---------------------------------------------------------------------------------------------

/// What the runtime stage of the Dockerfile gives a container.
#[derive(Debug)]
struct Image {
    env: BTreeMap<String, String>,
    /// ENTRYPOINT followed by CMD.
    command: Vec<String>,
    user: String,
    volumes: Vec<String>,
    exposed: Vec<u16>,
    /// Every RUN of every stage, continuation lines joined.
    runs: Vec<String>,
    /// The RUNs of the runtime (last) stage.
    runtime_runs: Vec<String>,
    stages: usize,
}

/// Reads the Dockerfile's instructions (continuations joined, comments dropped).
fn dockerfile() -> Image {
    let text = read("Dockerfile");
    let mut instructions: Vec<String> = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part.trim());
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                instructions.push(std::mem::take(&mut current));
            }
        }
    }
    let mut image = Image {
        env: BTreeMap::new(),
        command: Vec::new(),
        user: String::new(),
        volumes: Vec::new(),
        exposed: Vec::new(),
        runs: Vec::new(),
        runtime_runs: Vec::new(),
        stages: 0,
    };
    let (mut entrypoint, mut cmd) = (Vec::new(), Vec::new());
    for instruction in instructions {
        let (op, args) = instruction
            .split_once(' ')
            .unwrap_or((instruction.as_str(), ""));
        let args = args.trim();
        match op.to_ascii_uppercase().as_str() {
            // Only the last stage is the image; earlier stages' settings do not reach it.
            "FROM" => {
                image.stages += 1;
                image.env.clear();
                image.user.clear();
                image.volumes.clear();
                image.exposed.clear();
                image.runtime_runs.clear();
                entrypoint.clear();
                cmd.clear();
            }
            "ENV" => {
                for pair in args.split_whitespace() {
                    let (k, v) = pair
                        .split_once('=')
                        .unwrap_or_else(|| panic!("Dockerfile: ENV `{pair}` is not KEY=VALUE"));
                    image.env.insert(k.to_string(), v.to_string());
                }
            }
            "ENTRYPOINT" => entrypoint = exec_form(args),
            "CMD" => cmd = exec_form(args),
            "USER" => image.user = args.to_string(),
            "VOLUME" => image.volumes = exec_form(args),
            "EXPOSE" => {
                image.exposed = args
                    .split_whitespace()
                    .map(|p| p.parse().unwrap())
                    .collect()
            }
            "RUN" => {
                image.runs.push(args.to_string());
                image.runtime_runs.push(args.to_string());
            }
            _ => {}
        }
    }
    image.command = entrypoint.into_iter().chain(cmd).collect();
    image
}

/// `["a", "b"]` (the exec form; the shell form would run brook under `sh`, which does not pass
/// SIGTERM on).
fn exec_form(args: &str) -> Vec<String> {
    let inner = args
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or_else(|| panic!("Dockerfile: `{args}` is not in exec form"));
    inner.split(',').map(|s| unquote(s.trim())).collect()
}

fn unquote(s: &str) -> String {
    for q in ['"', '\''] {
        if let Some(inner) = s.strip_prefix(q).and_then(|s| s.strip_suffix(q)) {
            assert!(!inner.contains('\\'), "escapes are not supported: {s}");
            return inner.to_string();
        }
    }
    s.to_string()
}

#[test]
fn dockerfile_builds_a_small_non_root_image_of_brook_node() {
    let image = dockerfile();
    assert!(
        image.stages >= 2,
        "a multi-stage build: {} stage(s)",
        image.stages
    );
    let build = image
        .runs
        .iter()
        .find(|r| r.contains("cargo build"))
        .expect("a RUN with cargo build");
    for arg in ["--profile dist", "-p brook-node", "--bin brook", "--locked"] {
        assert!(
            build.contains(arg),
            "the build runs `{build}`, without {arg}"
        );
    }
    assert!(
        !image.runtime_runs.iter().any(|r| r.contains("cargo")),
        "the runtime stage has no Rust toolchain: {:?}",
        image.runtime_runs
    );
    let user = image.user.split(':').next().unwrap_or_default();
    assert!(
        !user.is_empty() && user != "root" && user != "0",
        "the image runs as `{}`",
        image.user
    );
    assert!(
        user.parse::<u32>().is_ok(),
        "USER by number, so Kubernetes' runAsNonRoot can check it: `{user}`"
    );
    assert_eq!(
        image.command.get(1).map(String::as_str),
        Some("node"),
        "the container runs `brook node`: {:?}",
        image.command
    );
    assert!(image.command[0].ends_with("/brook"), "{:?}", image.command);
    let data = image.env.get("BROOK_LOG_DIRS").expect("ENV BROOK_LOG_DIRS");
    assert!(
        image.volumes.contains(data),
        "the data directory {data} is a volume: {:?}",
        image.volumes
    );
    let kafka: u16 = image.env["BROOK_LISTENERS"]
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port in BROOK_LISTENERS");
    assert!(image.exposed.contains(&kafka), "EXPOSE {kafka}");

    // The build context: everything Cargo loads (every workspace member, the patched crates),
    // nothing built locally.
    let ignore = read(".dockerignore");
    let ignored: BTreeSet<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for needed in workspace_members()
        .iter()
        .map(String::as_str)
        .chain(["third_party"])
    {
        assert!(
            !ignored.contains(needed),
            ".dockerignore leaves out {needed}"
        );
    }
    for heavy in ["target", ".git"] {
        assert!(
            ignored.contains(heavy),
            ".dockerignore keeps {heavy} in the context"
        );
    }
}

fn workspace_members() -> Vec<String> {
    let manifest = read("Cargo.toml");
    let line = manifest
        .lines()
        .find(|l| l.trim_start().starts_with("members"))
        .expect("workspace members");
    let list = line.split_once('=').unwrap().1.trim();
    exec_form(list)
}

#[test]
fn dist_profile_and_cargo_install_build_the_brook_binary() {
    let manifest = read("Cargo.toml");
    let dist = toml_section(&manifest, "profile.dist");
    assert_eq!(
        dist.get("inherits").map(String::as_str),
        Some("\"release\"")
    );
    assert_eq!(dist.get("lto").map(String::as_str), Some("\"fat\""));
    assert_eq!(dist.get("codegen-units").map(String::as_str), Some("1"));
    // CI and the tests build `release`: it must stay quick to build.
    let release = toml_section(&manifest, "profile.release");
    assert!(!release.contains_key("lto"), "[profile.release] sets lto");
    // `cargo install --path node` installs the binary the deployments run.
    let node = read("node/Cargo.toml");
    let bin = toml_section(&node, "[bin]");
    assert_eq!(bin.get("name").map(String::as_str), Some("\"brook\""));
}

/// `key = value` lines of one `[section]` (`[[section]]` with `name` "[section]").
fn toml_section(text: &str, name: &str) -> BTreeMap<String, String> {
    let header = format!("[{name}]");
    let mut lines = text.lines().skip_while(|l| l.trim() != header);
    assert!(lines.next().is_some(), "no {header}");
    lines
        .take_while(|l| !l.trim_start().starts_with('['))
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// Runs `cmd` with a time limit; `None` if it could not be started or ran over.
fn run_bounded(cmd: &mut Command, limit: Duration) -> Option<std::process::Output> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + limit;
    while child.try_wait().ok()?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().ok()
}

/// Builds the image when docker can; this takes minutes (fat LTO), so only where docker runs.
#[test]
fn docker_image_builds_when_docker_is_available() {
    let Some(info) = run_bounded(Command::new("docker").arg("info"), Duration::from_secs(30))
    else {
        println!("skipped: no `docker` on PATH (or `docker info` hung): the image was not built");
        return;
    };
    if !info.status.success() {
        println!(
            "skipped: the docker daemon does not answer, the image was not built: {}",
            String::from_utf8_lossy(&info.stderr).trim()
        );
        return;
    }
    let tag = format!("brook-package-test:{}", std::process::id());
    let built = Command::new("docker")
        .args(["build", "-t", &tag, "."])
        .current_dir(repo())
        .status()
        .expect("run docker build");
    assert!(built.success(), "docker build failed: {built}");
    let check = |args: &[&str]| -> String {
        let out = Command::new("docker")
            .args(["run", "--rm"])
            .args(args)
            .output()
            .expect("run docker run");
        assert!(out.status.success(), "docker run {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let uid = check(&["--entrypoint", "id", &tag, "-u"]);
    assert_ne!(uid.trim(), "0", "the image runs as root");
    let help = check(&[&tag, "node", "--help"]);
    assert!(help.contains("--node-id"), "brook node --help: {help}");
    let _ = Command::new("docker").args(["image", "rm", &tag]).status();
}

// ---------------------------------------------------------------------------------------------
// A YAML subset
// ---------------------------------------------------------------------------------------------

mod yaml {
    use anyhow::{anyhow, bail, ensure, Result};

    #[derive(Clone, Debug, PartialEq)]
    pub enum Yaml {
        Str(String),
        Map(Vec<(String, Yaml)>),
        List(Vec<Yaml>),
    }

    impl Yaml {
        pub fn get(&self, key: &str) -> Option<&Yaml> {
            match self {
                Yaml::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
                _ => None,
            }
        }

        /// The value at a path of keys; panics with the path if it is missing.
        pub fn at(&self, path: &[&str]) -> &Yaml {
            path.iter().fold(self, |node, key| {
                node.get(key)
                    .unwrap_or_else(|| panic!("no `{}` in the YAML", path.join(".")))
            })
        }

        pub fn str(&self) -> &str {
            match self {
                Yaml::Str(s) => s,
                other => panic!("expected a scalar, found {other:?}"),
            }
        }

        pub fn entries(&self) -> &[(String, Yaml)] {
            match self {
                Yaml::Map(entries) => entries,
                other => panic!("expected a map, found {other:?}"),
            }
        }

        pub fn items(&self) -> &[Yaml] {
            match self {
                Yaml::List(items) => items,
                other => panic!("expected a list, found {other:?}"),
            }
        }
    }

    /// The documents of a `---`-separated stream.
    pub fn parse_all(text: &str) -> Result<Vec<Yaml>> {
        let mut docs = Vec::new();
        let mut current = Vec::new();
        for line in text.lines().chain(["---"]) {
            if line.trim_end() == "---" {
                if current.iter().any(|l: &&str| significant(l)) {
                    docs.push(parse(&current.join("\n"))?);
                }
                current.clear();
            } else {
                current.push(line);
            }
        }
        Ok(docs)
    }

    pub fn parse(text: &str) -> Result<Yaml> {
        let mut lines: Vec<(usize, String)> = text
            .lines()
            .map(|l| {
                ensure!(!l.contains('\t'), "a tab in `{l}`");
                Ok((l.len() - l.trim_start().len(), l.trim_end().to_string()))
            })
            .collect::<Result<_>>()?;
        let mut i = 0;
        skip(&lines, &mut i);
        let indent = lines.get(i).map_or(0, |l| l.0);
        let doc = block(&mut lines, &mut i, indent)?;
        skip(&lines, &mut i);
        ensure!(i == lines.len(), "unexpected `{}`", lines[i].1.trim());
        Ok(doc)
    }

    fn significant(line: &str) -> bool {
        let t = line.trim();
        !t.is_empty() && !t.starts_with('#')
    }

    fn skip(lines: &[(usize, String)], i: &mut usize) {
        while *i < lines.len() && !significant(&lines[*i].1) {
            *i += 1;
        }
    }

    fn block(lines: &mut [(usize, String)], i: &mut usize, indent: usize) -> Result<Yaml> {
        let text = lines[*i].1.trim_start().to_string();
        if text == "-" || text.starts_with("- ") {
            list(lines, i, indent)
        } else {
            map(lines, i, indent)
        }
    }

    fn list(lines: &mut [(usize, String)], i: &mut usize, indent: usize) -> Result<Yaml> {
        let mut items = Vec::new();
        loop {
            skip(lines, i);
            let Some((at, line)) = lines.get(*i) else {
                break;
            };
            let text = line.trim_start();
            if *at != indent || !(text == "-" || text.starts_with("- ")) {
                ensure!(*at <= indent, "unexpected indentation: `{}`", text);
                break;
            }
            let rest = text[1..].trim_start();
            ensure!(!rest.is_empty(), "an empty list item");
            if rest == "|" {
                *i += 1;
                items.push(literal(lines, i, indent));
            } else if key_value(rest).is_some() {
                // `- key: value`: a map whose keys line up with this first one.
                let column = indent + (text.len() - rest.len());
                lines[*i] = (column, rest.to_string());
                items.push(map(lines, i, column)?);
            } else {
                items.push(scalar(rest)?);
                *i += 1;
            }
        }
        Ok(Yaml::List(items))
    }

    fn map(lines: &mut [(usize, String)], i: &mut usize, indent: usize) -> Result<Yaml> {
        let mut entries: Vec<(String, Yaml)> = Vec::new();
        loop {
            skip(lines, i);
            let Some((at, line)) = lines.get(*i) else {
                break;
            };
            if *at != indent {
                ensure!(*at < indent, "unexpected indentation: `{}`", line.trim());
                break;
            }
            let text = line.trim_start().to_string();
            let (key, value) =
                key_value(&text).ok_or_else(|| anyhow!("not `key: value`: `{text}`"))?;
            ensure!(
                !entries.iter().any(|(k, _)| k == key),
                "`{key}` appears twice"
            );
            *i += 1;
            let value = if value.is_empty() {
                skip(lines, i);
                match lines.get(*i) {
                    Some((next, _)) if *next > indent => {
                        let next = *next;
                        block(lines, i, next)?
                    }
                    Some((next, t)) if *next == indent && t.trim_start().starts_with("- ") => {
                        list(lines, i, indent)?
                    }
                    _ => Yaml::Str(String::new()),
                }
            } else if value == "|" {
                literal(lines, i, indent)
            } else {
                scalar(value)?
            };
            entries.push((key.to_string(), value));
        }
        Ok(Yaml::Map(entries))
    }

    /// A `|` block: the following lines indented deeper than its key, that indentation removed.
    fn literal(lines: &[(usize, String)], i: &mut usize, indent: usize) -> Yaml {
        let mut body = Vec::new();
        while let Some((at, line)) = lines.get(*i) {
            if !line.trim().is_empty() && *at <= indent {
                break;
            }
            body.push(line.as_str());
            *i += 1;
        }
        while body.last().is_some_and(|l| l.trim().is_empty()) {
            body.pop();
        }
        let strip = body
            .iter()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.len() - l.trim_start().len())
            .min()
            .unwrap_or(0);
        let mut text: String = body
            .iter()
            .map(|l| l.get(strip..).unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        text.push('\n');
        Yaml::Str(text)
    }

    /// `key: value` or `key:`, with a plain key.
    fn key_value(text: &str) -> Option<(&str, &str)> {
        if text.starts_with(['"', '\'', '[', '{']) {
            return None;
        }
        let (key, value) = match text.split_once(": ") {
            Some((k, v)) => (k, v.trim()),
            None => (text.strip_suffix(':')?, ""),
        };
        (!key.is_empty() && !key.contains(' ')).then_some((key, value))
    }

    fn scalar(text: &str) -> Result<Yaml> {
        if let Some(inner) = text.strip_prefix('[') {
            let inner = inner
                .strip_suffix(']')
                .ok_or_else(|| anyhow!("an unterminated flow list: `{text}`"))?;
            return inner
                .split(',')
                .map(|s| quoted(s.trim()).map(Yaml::Str))
                .collect::<Result<_>>()
                .map(Yaml::List);
        }
        if text.starts_with(['{', '&', '*', '!', '>', '|']) {
            bail!("not in the YAML subset these tests read: `{text}`");
        }
        quoted(text).map(Yaml::Str)
    }

    fn quoted(text: &str) -> Result<String> {
        for q in ['"', '\''] {
            if text.starts_with(q) {
                let inner = text
                    .strip_prefix(q)
                    .and_then(|t| t.strip_suffix(q))
                    .ok_or_else(|| anyhow!("an unterminated string: `{text}`"))?;
                ensure!(
                    !inner.contains('\\') && !inner.contains(q),
                    "escapes are not supported: `{text}`"
                );
                return Ok(inner.to_string());
            }
        }
        ensure!(
            !text.contains(" #"),
            "inline comments are not supported: `{text}`"
        );
        Ok(text.to_string())
    }

    #[test]
    fn reads_the_subset_and_refuses_the_rest() {
        let doc = parse(
            "a:\n  b: \"x: y\"\n  c:\n    - 1\n    - name: n\n      value: v\n  d: [\"p\", 'q']\n  e: |\n    one\n      two\nf: g\n",
        )
        .unwrap();
        assert_eq!(doc.at(&["a", "b"]).str(), "x: y");
        assert_eq!(doc.at(&["a", "c"]).items()[0].str(), "1");
        assert_eq!(doc.at(&["a", "c"]).items()[1].at(&["value"]).str(), "v");
        assert_eq!(doc.at(&["a", "d"]).items().len(), 2);
        assert_eq!(doc.at(&["a", "e"]).str(), "one\n  two\n");
        assert_eq!(doc.at(&["f"]).str(), "g");
        for bad in [
            "a: &x 1\n",
            "a: 1\na: 2\n",
            "a:\n  b: 1\n   c: 2\n",
            "a: {b: 1}\n",
        ] {
            assert!(parse(bad).is_err(), "accepted {bad:?}");
        }
    }
}

use yaml::Yaml;

// ---------------------------------------------------------------------------------------------
// Running a deployment's nodes
// ---------------------------------------------------------------------------------------------

/// One node as a deployment describes it.
#[derive(Clone, Debug)]
struct NodeSpec {
    /// The host name other nodes reach it by (compose service, host, pod DNS name).
    host: String,
    id: i32,
    program: PathBuf,
    args: Vec<String>,
    env: BTreeMap<String, String>,
    /// Published ports, `host port -> container port` (compose `ports:`).
    published: Vec<(u16, u16)>,
}

/// Every `host:port` of the deployment mapped to a free port on 127.0.0.1: a bind address
/// (`0.0.0.0:P` on a node) and the names others use for it (`host:P`) get the same one.
#[derive(Default)]
struct Localizer {
    ports: BTreeMap<(String, u16), u16>,
}

impl Localizer {
    fn port(&mut self, host: &str, port: u16) -> u16 {
        *self
            .ports
            .entry((host.to_string(), port))
            .or_insert_with(|| free_ports(1))
    }

    /// Rewrites the addresses of a comma-separated list of `NAME://host:port`, `id@host:port`
    /// or `host:port` items as `node` would resolve them; other values are left alone. A host
    /// that is not a node of the deployment is an error.
    fn rewrite(
        &mut self,
        node: &NodeSpec,
        hosts: &BTreeSet<String>,
        value: &str,
    ) -> Result<String> {
        let mut out = Vec::new();
        for item in value.split(',') {
            let (prefix, address) = match item.split_once("://") {
                Some((name, rest)) => (format!("{name}://"), rest),
                None => match item.split_once('@') {
                    Some((id, rest)) => (format!("{id}@"), rest),
                    None => (String::new(), item),
                },
            };
            let Some((host, port)) = address
                .rsplit_once(':')
                .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
            else {
                out.push(item.to_string());
                continue;
            };
            let (owner, port) = match host {
                "0.0.0.0" => (node.host.clone(), port),
                "localhost" | "127.0.0.1" => {
                    let &(_, inside) = node
                        .published
                        .iter()
                        .find(|(outside, _)| *outside == port)
                        .ok_or_else(|| {
                            anyhow!(
                                "{} names {host}:{port}, a port it does not publish",
                                node.host
                            )
                        })?;
                    (node.host.clone(), inside)
                }
                h if hosts.contains(h) => (h.to_string(), port),
                h => bail!(
                    "{} names `{h}`, which is none of the nodes {hosts:?}",
                    node.host
                ),
            };
            let local = self.port(&owner, port);
            out.push(format!("{prefix}127.0.0.1:{local}"));
        }
        Ok(out.join(","))
    }
}

/// A running node.
struct Proc {
    id: i32,
    child: Option<Child>,
    log: PathBuf,
}

impl Proc {
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A deployment's three nodes running in a temporary directory.
struct Running {
    procs: Vec<Proc>,
    /// Per node id: listener name -> its advertised address, made local.
    advertised: BTreeMap<i32, BTreeMap<String, String>>,
    /// Per node id: its metrics address, made local, if it has one.
    metrics: BTreeMap<i32, String>,
    _dir: tempfile::TempDir,
}

impl Running {
    fn logs(&self) -> String {
        self.procs
            .iter()
            .map(|p| format!("---- node {} ----\n{}", p.id, p.log_tail()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Starts the nodes with their environment made local: every address as [`Localizer`] maps
/// it, `BROOK_LOG_DIRS` a fresh directory each, and the values `paths` names (e.g. a secret
/// file's path) replaced in every variable. Waits for every ready line.
fn start(deployment: &str, nodes: &[NodeSpec], paths: &[(&str, &Path)]) -> Running {
    let dir = tempfile::Builder::new()
        .prefix(&format!("brook-package-{deployment}-"))
        .tempdir()
        .unwrap();
    let hosts: BTreeSet<String> = nodes.iter().map(|n| n.host.clone()).collect();
    let mut localizer = Localizer::default();
    let mut procs = Vec::new();
    let mut advertised = BTreeMap::new();
    let mut metrics = BTreeMap::new();
    let (tx, rx) = mpsc::channel::<(i32, Result<SocketAddr>)>();
    for node in nodes {
        let mut env = BTreeMap::new();
        for (k, v) in &node.env {
            let mut v = localizer
                .rewrite(node, &hosts, v)
                .unwrap_or_else(|e| panic!("{deployment}: {k}: {e:#}"));
            for (from, to) in paths {
                v = v.replace(from, &to.display().to_string());
            }
            env.insert(k.clone(), v);
        }
        let data = dir.path().join(format!("node-{}", node.id));
        std::fs::create_dir_all(&data).unwrap();
        env.insert("BROOK_LOG_DIRS".into(), data.display().to_string());
        // Each listener advertises an address that reaches it (not another node's), and the
        // one other nodes replicate through names the node's own host, not a published port.
        let named = |key: &str, env: &BTreeMap<String, String>| -> BTreeMap<String, String> {
            env[key]
                .split(',')
                .map(|item| {
                    let (name, addr) = item.split_once("://").unwrap();
                    (name.to_string(), addr.to_string())
                })
                .collect()
        };
        let listeners = named("BROOK_ADVERTISED_LISTENERS", &env);
        let bound = named("BROOK_LISTENERS", &env);
        assert_eq!(
            listeners.keys().collect::<Vec<_>>(),
            bound.keys().collect::<Vec<_>>(),
            "{deployment}: node {}: every listener is advertised",
            node.id
        );
        for (name, addr) in &listeners {
            assert_eq!(
                port_of(addr),
                port_of(&bound[name]),
                "{deployment}: node {} advertises its {name} listener as {}, which is not it",
                node.id,
                named("BROOK_ADVERTISED_LISTENERS", &node.env)[name]
            );
        }
        let inter = node
            .env
            .get("BROOK_INTER_BROKER_LISTENER_NAME")
            .cloned()
            .unwrap_or_else(|| {
                let first = env["BROOK_LISTENERS"].split(',').next().unwrap();
                first.split_once("://").unwrap().0.to_string()
            });
        let inter_addr = &named("BROOK_ADVERTISED_LISTENERS", &node.env)[&inter];
        assert_eq!(
            inter_addr.rsplit_once(':').unwrap().0,
            node.host,
            "{deployment}: node {} replicates through {inter} at {inter_addr}",
            node.id
        );
        advertised.insert(node.id, listeners);
        // The Raft port it binds is the one the voters list gives the others.
        if let (Some(raft), Some(list)) = (
            env.get("BROOK_BROOK_RAFT_LISTENER"),
            env.get("BROOK_CONTROLLER_QUORUM_VOTERS"),
        ) {
            let listed = voters(list).get(&node.id).map(|(_, port)| *port);
            assert_eq!(
                Some(port_of(raft)),
                listed,
                "{deployment}: node {} binds Raft on {} but the voters list it as {}",
                node.id,
                node.env["BROOK_BROOK_RAFT_LISTENER"],
                node.env["BROOK_CONTROLLER_QUORUM_VOTERS"]
            );
        }
        if let Some(addr) = env.get("BROOK_BROOK_METRICS_LISTENER") {
            metrics.insert(node.id, addr.clone());
        }

        let log = dir.path().join(format!("node-{}.log", node.id));
        let log_file = File::create(&log).unwrap();
        let mut cmd = Command::new(&node.program);
        cmd.args(&node.args).env_clear().envs(&env);
        if let Some(path) = std::env::var_os("PATH") {
            cmd.env("PATH", path);
        }
        let (child, stdout) = brook_tests::spawn_logged(&mut cmd, &log_file).unwrap();
        let (tx, id) = (tx.clone(), node.id);
        std::thread::spawn(move || {
            let mut log_file = log_file;
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(log_file, "[stdout] {line}");
                if let (Some(addr), Some(tx)) = (parse_ready_line(&line), tx.take()) {
                    let _ = tx.send((id, Ok(addr)));
                }
            }
            if let Some(tx) = tx.take() {
                let _ = tx.send((id, Err(anyhow!("exited without a ready line"))));
            }
        });
        procs.push(Proc {
            id: node.id,
            child: Some(child),
            log,
        });
    }
    let running = Running {
        procs,
        advertised,
        metrics,
        _dir: dir,
    };
    let deadline = Instant::now() + READY_TIMEOUT;
    for _ in nodes {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((_, Ok(_))) => {}
            Ok((id, Err(e))) => panic!("{deployment}: node {id}: {e:#}\n{}", running.logs()),
            Err(_) => panic!(
                "{deployment}: not every node was ready within {READY_TIMEOUT:?}\n{}",
                running.logs()
            ),
        }
    }
    running
}

/// Every listener of every node answers Metadata with all the nodes, each under its advertised
/// address for that listener; each metrics endpoint sees three Raft voters. Then every node
/// stops cleanly on SIGTERM.
fn check_and_stop(deployment: &str, mut running: Running) {
    let ids: Vec<i32> = running.advertised.keys().copied().collect();
    assert_eq!(ids.len(), 3, "{deployment}: node ids {ids:?}");
    for (id, listeners) in &running.advertised {
        for (name, addr) in listeners {
            let want: BTreeMap<i32, String> = running
                .advertised
                .iter()
                .map(|(other, l)| {
                    let a = l.get(name).unwrap_or_else(|| {
                        panic!("{deployment}: node {other} does not advertise listener {name}")
                    });
                    (*other, a.clone())
                })
                .collect();
            let seen = wait_for(
                &format!("{deployment}: node {id}'s {name} listener ({addr}) to list {want:?}"),
                SETTLE,
                || {
                    let view = metadata(&mut RawConn::connect(addr.as_str())?, Some(&[]))?;
                    ensure!(view.brokers == want, "it lists {:?}", view.brokers);
                    Ok(Some(()))
                },
            );
            if let Err(e) = seen {
                panic!("{e:#}\n{}", running.logs());
            }
        }
    }
    for (id, addr) in &running.metrics {
        let scraped = wait_for(
            &format!("{deployment}: node {id}'s metrics ({addr}) to show three voters"),
            SETTLE,
            || {
                let body = http_get(addr, "/metrics")?;
                ensure!(
                    body.lines().any(|l| l == "brook_raft_voters 3"),
                    "no `brook_raft_voters 3` in {} bytes",
                    body.len()
                );
                Ok(Some(()))
            },
        );
        if let Err(e) = scraped {
            panic!("{e:#}\n{}", running.logs());
        }
    }
    for proc in &mut running.procs {
        let pid = proc.child.as_ref().unwrap().id().to_string();
        let sent = Command::new("sh")
            .args(["-c", "kill -TERM \"$0\"", &pid])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -TERM {pid}");
    }
    let deadline = Instant::now() + STOP;
    for i in 0..running.procs.len() {
        let status = loop {
            if let Some(status) = running.procs[i].child.as_mut().unwrap().try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                panic!(
                    "{deployment}: node {} still running {STOP:?} after SIGTERM\n{}",
                    running.procs[i].id,
                    running.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        running.procs[i].child = None;
        assert!(
            status.success(),
            "{deployment}: node {} exited with {status} on SIGTERM\n{}",
            running.procs[i].id,
            running.logs()
        );
    }
}

/// GET over HTTP/1.0; the body if the status is 200.
fn http_get(addr: &str, path: &str) -> Result<String> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("no end of headers"))?;
    ensure!(
        head.lines().next().is_some_and(|l| l.contains(" 200 ")),
        "{}",
        head.lines().next().unwrap_or_default()
    );
    Ok(body.to_string())
}

/// `id@host:port,...` as id -> (host, port).
fn voters(value: &str) -> BTreeMap<i32, (String, u16)> {
    value
        .split(',')
        .map(|v| {
            let (id, addr) = v.split_once('@').unwrap_or_else(|| panic!("voter `{v}`"));
            let (host, port) = addr.rsplit_once(':').unwrap();
            (
                id.parse().unwrap(),
                (host.to_string(), port.parse().unwrap()),
            )
        })
        .collect()
}

fn port_of(addr: &str) -> u16 {
    addr.rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in `{addr}`"))
}

/// A file holding a fresh cluster secret.
fn secret_file(dir: &Path) -> PathBuf {
    let path = dir.join("cluster.secret");
    std::fs::write(&path, cluster_secret()).unwrap();
    path
}

// ---------------------------------------------------------------------------------------------
// docker-compose.yml
// ---------------------------------------------------------------------------------------------

#[test]
fn compose_file_describes_a_three_node_cluster_that_forms() {
    let compose = yaml::parse(&read("deploy/docker-compose.yml")).expect("docker-compose.yml");
    let image = dockerfile();
    let services = compose.at(&["services"]).entries();
    assert_eq!(services.len(), 3, "three services: {services:?}");
    let declared: BTreeSet<&str> = compose
        .at(&["volumes"])
        .entries()
        .iter()
        .map(|(k, _)| k.as_str())
        .collect();
    let data_dir = &image.env["BROOK_LOG_DIRS"];

    let secret = cluster_secret();
    let mut nodes = Vec::new();
    let mut shared: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut volumes = BTreeSet::new();
    for (name, service) in services {
        // Built from this repository's Dockerfile, so no service pulls a `brook` image.
        let build = service.at(&["build"]);
        let context = repo().join("deploy").join(build.at(&["context"]).str());
        assert!(
            context.join(build.at(&["dockerfile"]).str()).is_file(),
            "{name}: build {build:?}"
        );
        if let Some(hostname) = service.get("hostname") {
            assert_eq!(hostname.str(), name, "{name}: hostname");
        }
        let mut env = image.env.clone();
        for (k, v) in service.at(&["environment"]).entries() {
            env.insert(k.clone(), v.str().to_string());
        }
        for key in [
            "BROOK_CONTROLLER_QUORUM_VOTERS",
            "BROOK_BROOK_CLUSTER_SECRET",
        ] {
            let value = env.get(key).unwrap_or_else(|| panic!("{name}: no {key}"));
            shared.entry(key).or_default().insert(value.clone());
        }
        // The secret comes from the environment, and compose refuses to start without it.
        let reference = &env["BROOK_BROOK_CLUSTER_SECRET"];
        assert!(
            reference.starts_with("${BROOK_CLUSTER_SECRET:?") && reference.ends_with('}'),
            "{name}: BROOK_BROOK_CLUSTER_SECRET={reference}"
        );
        env.insert("BROOK_BROOK_CLUSTER_SECRET".into(), secret.clone());
        // Its own named volume on the image's data directory.
        let mounts: Vec<&str> = service
            .at(&["volumes"])
            .items()
            .iter()
            .map(Yaml::str)
            .collect();
        let volume = mounts
            .iter()
            .find_map(|m| m.strip_suffix(&format!(":{data_dir}")))
            .unwrap_or_else(|| panic!("{name}: no volume on {data_dir}: {mounts:?}"));
        assert!(
            declared.contains(volume),
            "{name}: volume {volume} is not declared"
        );
        assert!(
            volumes.insert(volume.to_string()),
            "{name}: volume {volume} is shared"
        );
        let published = service
            .get("ports")
            .map(|p| {
                p.items()
                    .iter()
                    .map(|p| {
                        let (outside, inside) = p.str().split_once(':').unwrap();
                        (outside.parse().unwrap(), inside.parse().unwrap())
                    })
                    .collect()
            })
            .unwrap_or_default();
        let id: i32 = env["BROOK_NODE_ID"].parse().unwrap();
        nodes.push(NodeSpec {
            host: name.clone(),
            id,
            program: brook_bin(),
            args: image.command[1..].to_vec(),
            env,
            published,
        });
    }
    for (key, values) in &shared {
        assert_eq!(
            values.len(),
            1,
            "{key} differs between services: {values:?}"
        );
    }
    let ids: BTreeSet<i32> = nodes.iter().map(|n| n.id).collect();
    assert_eq!(ids.len(), 3, "distinct node ids: {ids:?}");
    // Every service is a voter, under its own name and Raft port.
    let voters = voters(&nodes[0].env["BROOK_CONTROLLER_QUORUM_VOTERS"]);
    assert_eq!(voters.keys().copied().collect::<BTreeSet<_>>(), ids);
    for node in &nodes {
        let raft = port_of(&node.env["BROOK_BROOK_RAFT_LISTENER"]);
        assert_eq!(
            voters[&node.id],
            (node.host.clone(), raft),
            "voter {} is not {}'s Raft port",
            node.id,
            node.host
        );
    }

    let running = start("compose", &nodes, &[]);
    check_and_stop("compose", running);
}

// ---------------------------------------------------------------------------------------------
// systemd
// ---------------------------------------------------------------------------------------------

/// A unit file's `[Section]` -> `Key=Value` lines, in order.
fn unit_sections(text: &str) -> BTreeMap<String, Vec<(String, String)>> {
    let mut sections: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut current = None;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = Some(name.to_string());
            sections.entry(name.to_string()).or_default();
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("unit line `{line}`"));
        let section = current.clone().expect("a key before any section");
        sections
            .entry(section)
            .or_default()
            .push((k.trim().to_string(), v.trim().to_string()));
    }
    sections
}

fn unit_values<'a>(section: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    section
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// The one value of `key`.
fn unit_value<'a>(section: &'a [(String, String)], key: &str) -> &'a str {
    let values = unit_values(section, key);
    assert_eq!(values.len(), 1, "{key}: {values:?}");
    values[0]
}

/// `KEY=VALUE` lines of an EnvironmentFile.
fn env_file(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("env line `{l}`"));
            (k.to_string(), v.to_string())
        })
        .collect()
}

#[test]
fn systemd_unit_is_a_hardened_service_whose_env_file_forms_a_cluster() {
    let text = read("deploy/systemd/brook.service");
    let unit = unit_sections(&text);
    for section in ["Unit", "Service", "Install"] {
        assert!(unit.contains_key(section), "no [{section}]");
    }
    let service = &unit["Service"];
    let one = |key: &str| unit_value(service, key);
    let user = one("User");
    assert!(
        !user.is_empty() && user != "root" && user != "0",
        "User={user}"
    );
    assert!(
        ["on-failure", "always", "on-abnormal"].contains(&one("Restart")),
        "Restart={}",
        one("Restart")
    );
    for (key, value) in [
        ("NoNewPrivileges", "true"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "true"),
        ("PrivateTmp", "true"),
        ("KillSignal", "SIGTERM"),
    ] {
        assert_eq!(one(key), value, "{key}");
    }
    assert_eq!(one("CapabilityBoundingSet"), "", "no capabilities");
    assert_eq!(
        unit_values(&unit["Install"], "WantedBy"),
        ["multi-user.target"]
    );
    let exec: Vec<&str> = one("ExecStart").split_whitespace().collect();
    assert!(
        exec[0].starts_with('/') && exec[0].ends_with("/brook") && exec.get(1) == Some(&"node"),
        "ExecStart={exec:?}"
    );
    // The env file the unit reads is the example one, and the data directory it names is the
    // unit's StateDirectory (which ProtectSystem=strict leaves writable).
    let env_path = one("EnvironmentFile");
    assert!(
        env_path.ends_with("/brook.env"),
        "EnvironmentFile={env_path}"
    );
    let example = env_file(&read("deploy/systemd/brook.env"));
    assert_eq!(
        example.get("BROOK_LOG_DIRS").map(String::as_str),
        Some(format!("/var/lib/{}", one("StateDirectory")).as_str()),
        "BROOK_LOG_DIRS is the StateDirectory"
    );

    if let Some(verify) = systemd_verify(&text) {
        panic!("systemd-analyze verify:\n{verify}");
    }

    // Run three hosts: each gets the unit's Environment=, the example env file with its own
    // node id and advertised host (what the file says to change per host), the secret where
    // LoadCredential= puts it, and ExecStart's command.
    let dir = tempfile::tempdir().unwrap();
    let credentials = dir.path().join("credentials");
    std::fs::create_dir_all(&credentials).unwrap();
    let mut unit_env = BTreeMap::new();
    for assignment in unit_values(service, "Environment") {
        let (k, v) = assignment.split_once('=').unwrap();
        unit_env.insert(k.to_string(), v.to_string());
    }
    let credential = one("LoadCredential");
    let (name, source) = credential.split_once(':').unwrap();
    assert!(source.starts_with('/'), "LoadCredential={credential}");
    secret_file(&credentials);
    assert_eq!(
        unit_env
            .get("BROOK_BROOK_CLUSTER_SECRET_FILE")
            .map(String::as_str),
        Some(format!("%d/{name}").as_str()),
        "the cluster secret file is the credential"
    );
    let voters = voters(&example["BROOK_CONTROLLER_QUORUM_VOTERS"]);
    let first_host = &voters[&example["BROOK_NODE_ID"].parse::<i32>().unwrap()].0;
    assert!(
        example["BROOK_ADVERTISED_LISTENERS"].contains(first_host.as_str()),
        "the example advertises its own voter host {first_host}"
    );
    let nodes: Vec<NodeSpec> = voters
        .iter()
        .map(|(&id, (host, _))| {
            let mut env = unit_env.clone();
            env.extend(example.clone());
            env.insert("BROOK_NODE_ID".into(), id.to_string());
            let advertised = env["BROOK_ADVERTISED_LISTENERS"].replace(first_host.as_str(), host);
            env.insert("BROOK_ADVERTISED_LISTENERS".into(), advertised);
            NodeSpec {
                host: host.clone(),
                id,
                program: brook_bin(),
                args: exec[1..].iter().map(|s| s.to_string()).collect(),
                env,
                published: Vec::new(),
            }
        })
        .collect();
    let running = start("systemd", &nodes, &[("%d", &credentials)]);
    check_and_stop("systemd", running);
}

/// `systemd-analyze verify` of the unit with ExecStart pointing at the binary under test;
/// `Some(complaints)` if it found any, `None` if it found none or is not installed.
fn systemd_verify(unit: &str) -> Option<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("brook.service");
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .and_then(|e| e.split_whitespace().next())
        .unwrap();
    std::fs::write(
        &path,
        unit.replace(exec, &brook_bin().display().to_string()),
    )
    .unwrap();
    let Some(out) = run_bounded(
        Command::new("systemd-analyze").arg("verify").arg(&path),
        Duration::from_secs(60),
    ) else {
        println!("systemd-analyze is not installed (or hung): the unit was not verified by it");
        return None;
    };
    // It exits 0 on unknown keys and bad values too, and only warns; any line about the unit
    // is a complaint.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let complaints: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("brook.service"))
        .collect();
    (!out.status.success() || !complaints.is_empty())
        .then(|| format!("exit {}\n{}", out.status, complaints.join("\n")))
}

// ---------------------------------------------------------------------------------------------
// Kubernetes
// ---------------------------------------------------------------------------------------------

/// The documents of one kind.
fn of_kind<'a>(docs: &'a [Yaml], kind: &str) -> Vec<&'a Yaml> {
    docs.iter()
        .filter(|d| d.get("kind").map(Yaml::str) == Some(kind))
        .collect()
}

#[test]
fn kubernetes_statefulset_pods_form_a_cluster_under_their_dns_names() {
    let docs = yaml::parse_all(&read("deploy/kubernetes/brook.yaml")).expect("brook.yaml");
    let kind = |k: &str| of_kind(&docs, k);
    let set = *kind("StatefulSet").first().expect("a StatefulSet");
    let name = set.at(&["metadata", "name"]).str();
    let replicas: usize = set.at(&["spec", "replicas"]).str().parse().unwrap();
    assert_eq!(replicas, 3);
    assert_eq!(
        set.at(&["spec", "podManagementPolicy"]).str(),
        "Parallel",
        "no node is ready before a quorum runs, so pods must start together"
    );
    let headless_name = set.at(&["spec", "serviceName"]).str();
    let headless = kind("Service")
        .into_iter()
        .find(|s| s.at(&["metadata", "name"]).str() == headless_name)
        .expect("the StatefulSet's service");
    assert_eq!(headless.at(&["spec", "clusterIP"]).str(), "None");
    assert_eq!(
        headless.at(&["spec", "publishNotReadyAddresses"]).str(),
        "true",
        "Raft peers must resolve before they are ready"
    );
    let pod = set.at(&["spec", "template", "spec"]);
    assert_eq!(pod.at(&["securityContext", "runAsNonRoot"]).str(), "true");
    let uid = pod.at(&["securityContext", "runAsUser"]).str();
    assert_eq!(
        Some(uid),
        dockerfile().user.split(':').next(),
        "runAsUser is the image's user"
    );
    let container = &pod.at(&["containers"]).items()[0];
    let command: Vec<&str> = container
        .at(&["command"])
        .items()
        .iter()
        .map(Yaml::str)
        .collect();
    let script = container.at(&["args"]).items()[0].str();
    assert_eq!(command, ["/bin/sh", "-c"]);

    // The secret the manifest ships is a placeholder brook refuses (under 16 bytes), and the
    // pods read the key it is mounted under.
    let secret = *kind("Secret").first().expect("a Secret");
    let secret_name = secret.at(&["metadata", "name"]).str();
    let (key, placeholder) = &secret.at(&["stringData"]).entries()[0];
    assert!(placeholder.str().len() < 16, "the shipped secret is usable");
    let volume = pod
        .at(&["volumes"])
        .items()
        .iter()
        .find(|v| v.get("secret").is_some())
        .expect("a secret volume");
    assert_eq!(volume.at(&["secret", "secretName"]).str(), secret_name);
    let mount = container
        .at(&["volumeMounts"])
        .items()
        .iter()
        .find(|m| m.at(&["name"]).str() == volume.at(&["name"]).str())
        .expect("the secret volume is mounted");
    let secret_path = format!("{}/{}", mount.at(&["mountPath"]).str(), key);

    // Pods brook-0..2 in namespace `ns`: the env with Kubernetes' $(VAR) references expanded,
    // the start script run by sh with the image's binary replaced by the one under test.
    let namespace = "ns";
    let dir = tempfile::tempdir().unwrap();
    let secret_local = secret_file(dir.path());
    let nodes: Vec<NodeSpec> = (0..replicas)
        .map(|ordinal| {
            let pod_name = format!("{name}-{ordinal}");
            let mut env = BTreeMap::from([("HOSTNAME".to_string(), pod_name.clone())]);
            for var in container.at(&["env"]).items() {
                let var_name = var.at(&["name"]).str();
                let value = match var.get("value") {
                    Some(v) => v.str().to_string(),
                    None => match var.at(&["valueFrom", "fieldRef", "fieldPath"]).str() {
                        "metadata.name" => pod_name.clone(),
                        "metadata.namespace" => namespace.to_string(),
                        other => panic!("{var_name}: fieldPath {other}"),
                    },
                };
                let value = value
                    .replace("$(POD_NAME)", &pod_name)
                    .replace("$(POD_NAMESPACE)", namespace);
                assert!(!value.contains("$("), "{var_name}={value}");
                env.insert(var_name.to_string(), value);
            }
            assert_eq!(
                env.get("BROOK_BROOK_CLUSTER_SECRET_FILE"),
                Some(&secret_path),
                "the secret file is the mounted secret"
            );
            let host = format!("{pod_name}.{headless_name}.{namespace}.svc.cluster.local");
            NodeSpec {
                host,
                id: ordinal as i32 + 1,
                program: PathBuf::from("/bin/sh"),
                args: vec![
                    "-c".into(),
                    script.replace("/usr/local/bin/brook", &brook_bin().display().to_string()),
                ],
                env,
                published: Vec::new(),
            }
        })
        .collect();
    // The node ids the script derives are the ones the voters list gives the pods' names.
    let voters = voters(&nodes[0].env["BROOK_CONTROLLER_QUORUM_VOTERS"]);
    let named: BTreeMap<i32, String> = nodes.iter().map(|n| (n.id, n.host.clone())).collect();
    assert_eq!(
        voters
            .iter()
            .map(|(id, (h, _))| (*id, h.clone()))
            .collect::<BTreeMap<_, _>>(),
        named,
        "the voters are the pods, node id = ordinal + 1"
    );
    let running = start(
        "kubernetes",
        &nodes,
        &[(secret_path.as_str(), secret_local.as_path())],
    );
    check_and_stop("kubernetes", running);
}
