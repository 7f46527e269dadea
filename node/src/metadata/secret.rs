//! The cluster secret: every node of a cluster holds the same one, and the Raft port admits
//! only peers that prove they hold it (`brook_raft::ClusterSecret`).
//!
//! It comes from `brook.cluster.secret`, else the file `brook.cluster.secret.file`, else
//! `<log.dirs>/cluster.secret`. A node with no peers (a single-node cluster) creates that last
//! file with a random secret on its first start, so `brook` alone needs no setup; a node with
//! peers must be given the cluster's secret, since a secret of its own would lock it out.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context};
use brook_raft::ClusterSecret;

use crate::config::{BrokerConfig, SecretSource};

/// The file name of the secret in a data directory (and in `brook cluster up`'s folder).
pub const FILE_NAME: &str = "cluster.secret";

/// This node's cluster secret.
pub fn load(config: &BrokerConfig) -> anyhow::Result<ClusterSecret> {
    let text = match &config.cluster.secret {
        SecretSource::Inline(text) => text.clone(),
        SecretSource::File(path) => read(path)?,
        SecretSource::DataDir => {
            let path = config.log_dirs.join(FILE_NAME);
            if !path.exists() {
                if has_peers(config) {
                    bail!(
                        "a node with peers needs the cluster's secret: set \
                         brook.cluster.secret.file to the file the other nodes use (`brook \
                         cluster up` writes one as {FILE_NAME} in its folder), or copy it to {}",
                        path.display()
                    );
                }
                create(&path)?;
            }
            read(&path)?
        }
    };
    ClusterSecret::new(text.trim().as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Whether this node is configured to talk to other nodes.
fn has_peers(config: &BrokerConfig) -> bool {
    let me = u64::try_from(config.node_id).ok();
    !config.cluster.join.is_empty() || config.cluster.voters.keys().any(|&id| Some(id) != me)
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path)
        .with_context(|| format!("reading the cluster secret from {}", path.display()))
}

/// Write a new random secret to `path`, readable by its owner only.
pub fn create(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let text = ClusterSecret::generate().map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    writeln!(file, "{text}")?;
    file.sync_all()?;
    Ok(())
}
