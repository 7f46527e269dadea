//! The ports, directories and settings of a local cluster, and the file that keeps them between
//! runs: Raft membership records each node's Raft address, so a cluster brought back on the same
//! directory must use exactly the addresses it was created with.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

/// Every node of a local cluster listens on loopback.
pub const HOST: &str = "127.0.0.1";
/// The saved layout, in the cluster directory.
pub const LAYOUT_FILE: &str = "cluster.toml";
pub const DEFAULT_NODES: u16 = 3;
pub const DEFAULT_BASE_PORT: u16 = 9092;
pub const DEFAULT_RAFT_BASE_PORT: u16 = 19092;

/// Settings `cluster up` gives each node itself; an override of one would make that node
/// disagree with the layout (or with the other nodes).
const RESERVED: &[&str] = &[
    "node.id",
    "listeners",
    "advertised.listeners",
    "log.dirs",
    "brook.raft.listener",
    "controller.quorum.voters",
    "controller.quorum.bootstrap.servers",
    "brook.cluster.secret",
    "brook.cluster.secret.file",
];

/// What `DIR/cluster.toml` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    pub nodes: u16,
    pub base_port: u16,
    pub raft_base_port: u16,
    /// Settings passed to every node as `-o key=value`.
    #[serde(default)]
    pub overrides: BTreeMap<String, String>,
}

/// The flags of `cluster up`; `None` where the user gave none.
#[derive(Debug, Clone, Default)]
pub struct Requested {
    pub nodes: Option<u16>,
    pub base_port: Option<u16>,
    pub raft_base_port: Option<u16>,
    pub overrides: Vec<(String, String)>,
}

/// One node of a validated layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeSpec {
    pub id: i32,
    pub port: u16,
    pub raft_port: u16,
}

impl NodeSpec {
    pub fn address(&self) -> String {
        format!("{HOST}:{}", self.port)
    }

    pub fn raft_address(&self) -> String {
        format!("{HOST}:{}", self.raft_port)
    }

    /// The node's data directory under the cluster directory.
    pub fn log_dir(&self, dir: &Path) -> PathBuf {
        dir.join(format!("node-{}", self.id))
    }
}

/// The layout to run: the saved one when there is one (its addresses are fixed for good), else
/// one made from the flags and defaults. Also returns a warning per flag the saved layout
/// overrules.
pub fn resolve(saved: Option<Layout>, requested: &Requested) -> (Layout, Vec<String>) {
    let overrides: BTreeMap<String, String> = requested.overrides.iter().cloned().collect();
    let Some(saved) = saved else {
        let layout = Layout {
            nodes: requested.nodes.unwrap_or(DEFAULT_NODES),
            base_port: requested.base_port.unwrap_or(DEFAULT_BASE_PORT),
            raft_base_port: requested.raft_base_port.unwrap_or(DEFAULT_RAFT_BASE_PORT),
            overrides,
        };
        return (layout, Vec::new());
    };
    let mut warnings = Vec::new();
    let mut conflict = |flag: &str, given: Option<u16>, kept: u16| {
        if let Some(given) = given.filter(|&g| g != kept) {
            warnings.push(format!(
                "{flag} {given} ignored: this cluster was created with {flag} {kept}"
            ));
        }
    };
    conflict("--nodes", requested.nodes, saved.nodes);
    conflict("--base-port", requested.base_port, saved.base_port);
    conflict(
        "--raft-base-port",
        requested.raft_base_port,
        saved.raft_base_port,
    );
    if !requested.overrides.is_empty() && overrides != saved.overrides {
        warnings.push(format!(
            "-o {} ignored: this cluster was created with {} (edit {LAYOUT_FILE} to change them)",
            join_overrides(&overrides),
            if saved.overrides.is_empty() {
                "no overrides".to_string()
            } else {
                format!("-o {}", join_overrides(&saved.overrides))
            }
        ));
    }
    (saved, warnings)
}

fn join_overrides(overrides: &BTreeMap<String, String>) -> String {
    overrides
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" -o ")
}

impl Layout {
    /// Checks the layout and lists its nodes, ids from 1.
    pub fn plan(&self) -> anyhow::Result<Vec<NodeSpec>> {
        if self.nodes == 0 {
            bail!("a cluster needs at least one node");
        }
        if self.base_port == 0 || self.raft_base_port == 0 {
            // Port 0 picks a free port at each start; a cluster's addresses must stay fixed.
            bail!("the base ports must not be 0");
        }
        if let Some(key) = self
            .overrides
            .keys()
            .find(|k| RESERVED.contains(&k.as_str()))
        {
            bail!("-o {key}=... is not allowed: `brook cluster up` sets {key} for each node");
        }
        let last = |base: u16, flag: &str| {
            base.checked_add(self.nodes - 1).with_context(|| {
                format!("{} nodes from {flag} {base} go past port 65535", self.nodes)
            })
        };
        let last_port = last(self.base_port, "--base-port")?;
        let last_raft = last(self.raft_base_port, "--raft-base-port")?;
        if self.base_port <= last_raft && self.raft_base_port <= last_port {
            bail!(
                "Kafka ports {}-{last_port} and Raft ports {}-{last_raft} overlap",
                self.base_port,
                self.raft_base_port
            );
        }
        Ok((0..self.nodes)
            .map(|offset| NodeSpec {
                id: i32::from(offset) + 1,
                port: self.base_port + offset,
                raft_port: self.raft_base_port + offset,
            })
            .collect())
    }
}

/// `controller.quorum.voters`: `1@host:port,2@host:port,...` with the Raft addresses.
pub fn voters(nodes: &[NodeSpec]) -> String {
    nodes
        .iter()
        .map(|n| format!("{}@{}", n.id, n.raft_address()))
        .collect::<Vec<_>>()
        .join(",")
}

/// What Kafka clients take as `bootstrap.servers`.
pub fn bootstrap_servers(nodes: &[NodeSpec]) -> String {
    nodes
        .iter()
        .map(NodeSpec::address)
        .collect::<Vec<_>>()
        .join(",")
}

/// The arguments of `brook` that run `node` of a cluster in `dir`.
pub fn node_args(
    layout: &Layout,
    nodes: &[NodeSpec],
    node: &NodeSpec,
    dir: &Path,
) -> Vec<OsString> {
    let mut args: Vec<OsString> = [
        "node".to_string(),
        "--node-id".to_string(),
        node.id.to_string(),
        "--listeners".to_string(),
        format!("PLAINTEXT://{}", node.address()),
        "--raft-listener".to_string(),
        node.raft_address(),
        "--peers".to_string(),
        voters(nodes),
        "--log-dirs".to_string(),
    ]
    .into_iter()
    .map(OsString::from)
    .collect();
    args.push(node.log_dir(dir).into_os_string());
    let mut secret = OsString::from("brook.cluster.secret.file=");
    secret.push(dir.join(crate::metadata::secret::FILE_NAME));
    args.extend(["-o".into(), secret]);
    for (key, value) in &layout.overrides {
        args.push("-o".into());
        args.push(format!("{key}={value}").into());
    }
    args
}

/// The saved layout of the cluster in `dir`, if it has one.
pub fn load(dir: &Path) -> anyhow::Result<Option<Layout>> {
    let path = dir.join(LAYOUT_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let layout = toml::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
    Ok(Some(layout))
}

/// Saves `layout` in `dir` (created if missing); written aside and renamed so that an
/// interrupted save never leaves a half-written layout behind.
pub fn save(dir: &Path, layout: &Layout) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(LAYOUT_FILE);
    let body = toml::to_string(layout).context("encoding the cluster layout")?;
    let text = format!(
        "# Written by `brook cluster up`. Raft membership keeps each node's Raft address, so the\n\
         # ports must not change while the node directories hold data; overrides may.\n{body}"
    );
    let tmp = dir.join(format!("{LAYOUT_FILE}.tmp"));
    // Owner-only: the overrides may hold a password (`--secure`'s bootstrap user).
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("writing {}", tmp.display()))?;
        file.write_all(text.as_bytes())
            .with_context(|| format!("writing {}", tmp.display()))?;
    }
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(nodes: u16, base_port: u16, raft_base_port: u16) -> Layout {
        Layout {
            nodes,
            base_port,
            raft_base_port,
            overrides: BTreeMap::new(),
        }
    }

    #[test]
    fn defaults_without_a_saved_layout() {
        let (l, warnings) = resolve(None, &Requested::default());
        assert_eq!(l, layout(3, 9092, 19092));
        assert!(warnings.is_empty());
    }

    #[test]
    fn flags_make_a_new_layout() {
        let requested = Requested {
            nodes: Some(5),
            base_port: Some(29092),
            raft_base_port: None,
            overrides: vec![
                ("num.partitions".into(), "2".into()),
                ("num.partitions".into(), "3".into()),
            ],
        };
        let (l, warnings) = resolve(None, &requested);
        assert_eq!((l.nodes, l.base_port, l.raft_base_port), (5, 29092, 19092));
        // The last of repeated overrides wins, as it does for `brook node`.
        assert_eq!(
            l.overrides.get("num.partitions").map(String::as_str),
            Some("3")
        );
        assert!(warnings.is_empty());
    }

    #[test]
    fn a_saved_layout_wins_over_conflicting_flags() {
        let mut saved = layout(3, 29092, 39092);
        saved.overrides.insert("num.partitions".into(), "3".into());
        let requested = Requested {
            nodes: Some(5),
            base_port: Some(29092),
            raft_base_port: Some(1000),
            overrides: vec![("num.partitions".into(), "4".into())],
        };
        let (l, warnings) = resolve(Some(saved.clone()), &requested);
        assert_eq!(l, saved);
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(warnings[0].contains("--nodes 5 ignored"), "{warnings:?}");
        assert!(
            warnings[1].contains("--raft-base-port 1000"),
            "{warnings:?}"
        );
        assert!(warnings[2].contains("num.partitions=3"), "{warnings:?}");
    }

    #[test]
    fn a_saved_layout_with_matching_or_no_flags_warns_nothing() {
        let saved = layout(3, 29092, 39092);
        let (l, warnings) = resolve(Some(saved.clone()), &Requested::default());
        assert_eq!((l, warnings.len()), (saved.clone(), 0));
        let same = Requested {
            nodes: Some(3),
            base_port: Some(29092),
            raft_base_port: Some(39092),
            overrides: Vec::new(),
        };
        assert!(resolve(Some(saved), &same).1.is_empty());
    }

    #[test]
    fn plan_numbers_nodes_and_ports_from_one() {
        let nodes = layout(3, 9092, 19092).plan().unwrap();
        assert_eq!(
            nodes,
            vec![
                NodeSpec {
                    id: 1,
                    port: 9092,
                    raft_port: 19092
                },
                NodeSpec {
                    id: 2,
                    port: 9093,
                    raft_port: 19093
                },
                NodeSpec {
                    id: 3,
                    port: 9094,
                    raft_port: 19094
                },
            ]
        );
        assert_eq!(
            voters(&nodes),
            "1@127.0.0.1:19092,2@127.0.0.1:19093,3@127.0.0.1:19094"
        );
        assert_eq!(
            bootstrap_servers(&nodes),
            "127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094"
        );
    }

    #[test]
    fn plan_refuses_bad_layouts() {
        assert!(layout(0, 9092, 19092).plan().is_err());
        assert!(layout(3, 0, 19092).plan().is_err());
        assert!(layout(3, 65534, 19092).plan().is_err());
        assert!(layout(2, 65534, 19092).plan().is_ok());
        // Overlapping ranges, from either side.
        assert!(layout(3, 9092, 9094).plan().is_err());
        assert!(layout(3, 9094, 9092).plan().is_err());
        assert!(layout(3, 9092, 9095).plan().is_ok());
        let mut l = layout(3, 9092, 19092);
        l.overrides.insert("listeners".into(), "x".into());
        assert!(l.plan().is_err());
    }

    #[test]
    fn node_args_pass_the_layout_and_overrides() {
        let mut l = layout(2, 29092, 39092);
        l.overrides.insert("num.partitions".into(), "3".into());
        let nodes = l.plan().unwrap();
        let args = node_args(&l, &nodes, &nodes[1], Path::new("/tmp/cl"));
        let args: Vec<_> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "node",
                "--node-id",
                "2",
                "--listeners",
                "PLAINTEXT://127.0.0.1:29093",
                "--raft-listener",
                "127.0.0.1:39093",
                "--peers",
                "1@127.0.0.1:39092,2@127.0.0.1:39093",
                "--log-dirs",
                "/tmp/cl/node-2",
                "-o",
                "brook.cluster.secret.file=/tmp/cl/cluster.secret",
                "-o",
                "num.partitions=3",
            ]
        );
    }

    #[test]
    fn save_then_load_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("cluster");
        assert_eq!(load(&sub).unwrap(), None);
        let mut l = layout(3, 29092, 39092);
        l.overrides
            .insert("log.retention.ms".into(), "60000".into());
        save(&sub, &l).unwrap();
        assert_eq!(load(&sub).unwrap(), Some(l));
        std::fs::write(sub.join(LAYOUT_FILE), "nodes = \"three\"").unwrap();
        assert!(load(&sub).is_err());
    }
}
