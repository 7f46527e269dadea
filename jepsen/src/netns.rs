//! Network namespaces for the nodes, and the network faults between them.
//!
//! Node `i` runs in namespace `jn<i>` with address 10.77.0.<10+i>/24 on a veth whose other end
//! (`jv<i>`) is a port of the bridge `jbr0` (10.77.0.1/24) in the root namespace, where the
//! clients run. Faults are iptables rules in the nodes' own INPUT chains and only ever name
//! other nodes as sources, so clients (which come from the bridge address) are never cut off,
//! as in Jepsen. Healing flushes those chains.
//!
//! Everything is created by [`setup`] and removed by [`cleanup`], which also runs at start (a
//! harness that was killed leaves its namespaces behind) and from the Ctrl-C handler. Only
//! names this module creates are touched: `jn<digits>`, `jv<digits>`, `jbr0`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;

use crate::exec::run;

pub const BRIDGE: &str = "jbr0";
pub const BRIDGE_ADDR: &str = "10.77.0.1/24";

/// Set while namespaces exist, so the signal handler knows to remove them.
pub static ACTIVE: AtomicBool = AtomicBool::new(false);

pub fn ns(id: u32) -> String {
    format!("jn{id}")
}

fn veth(id: u32) -> String {
    format!("jv{id}")
}

pub fn node_ip(id: u32) -> String {
    format!("10.77.0.{}", 10 + id)
}

/// Runs a command inside node `id`'s namespace.
fn in_ns(id: u32, program: &str, args: &[&str]) -> Result<String> {
    let name = ns(id);
    let mut all = vec!["netns", "exec", name.as_str(), program];
    all.extend_from_slice(args);
    run("ip", &all)
}

fn is_ours(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix)
        .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
}

/// Removes every namespace, veth and bridge of ours, whoever left them.
pub fn cleanup() {
    if let Ok(list) = run("ip", &["netns", "list"]) {
        for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
            if is_ours(name, "jn") {
                let _ = run("ip", &["netns", "del", name]);
            }
        }
    }
    if let Ok(links) = run("ip", &["-o", "link", "show"]) {
        for l in links.lines() {
            // "12: jv1@if11: <...>"
            let Some(name) = l.split(':').nth(1).map(|n| n.trim()) else {
                continue;
            };
            let name = name.split('@').next().unwrap_or(name);
            if is_ours(name, "jv") || name == BRIDGE {
                let _ = run("ip", &["link", "del", name]);
            }
        }
    }
    ACTIVE.store(false, Ordering::SeqCst);
}

/// Creates the bridge and one namespace per node.
pub fn setup(ids: &[u32]) -> Result<()> {
    cleanup();
    ACTIVE.store(true, Ordering::SeqCst);
    run("ip", &["link", "add", BRIDGE, "type", "bridge"])?;
    run("ip", &["addr", "add", BRIDGE_ADDR, "dev", BRIDGE])?;
    run("ip", &["link", "set", BRIDGE, "up"])?;
    for &id in ids {
        let (name, v) = (ns(id), veth(id));
        let peer = format!("jp{id}");
        run("ip", &["netns", "add", &name])?;
        run(
            "ip",
            &["link", "add", &v, "type", "veth", "peer", "name", &peer],
        )?;
        run("ip", &["link", "set", &peer, "netns", &name])?;
        run("ip", &["link", "set", &v, "master", BRIDGE])?;
        run("ip", &["link", "set", &v, "up"])?;
        in_ns(id, "ip", &["link", "set", "lo", "up"])?;
        in_ns(id, "ip", &["link", "set", &peer, "name", "eth0"])?;
        let addr = format!("{}/24", node_ip(id));
        in_ns(id, "ip", &["addr", "add", &addr, "dev", "eth0"])?;
        in_ns(id, "ip", &["link", "set", "eth0", "up"])?;
    }
    Ok(())
}

/// Removes every fault rule from every node.
pub fn heal(ids: &[u32]) -> Result<()> {
    for &id in ids {
        in_ns(id, "iptables", &["-w", "-F", "INPUT"])?;
    }
    Ok(())
}

/// Makes each node drop what comes from the nodes it holds a grudge against.
pub fn partition(grudge: &BTreeMap<u32, BTreeSet<u32>>) -> Result<()> {
    for (&id, peers) in grudge {
        for &peer in peers {
            let src = node_ip(peer);
            in_ns(
                id,
                "iptables",
                &["-w", "-A", "INPUT", "-s", &src, "-j", "DROP"],
            )?;
        }
    }
    Ok(())
}

/// Drops a fraction of the packets between nodes (not from clients).
pub fn packet_loss(ids: &[u32], probability: f64) -> Result<()> {
    let p = format!("{probability:.3}");
    for &id in ids {
        for &peer in ids.iter().filter(|&&p| p != id) {
            let src = node_ip(peer);
            in_ns(
                id,
                "iptables",
                &[
                    "-w",
                    "-A",
                    "INPUT",
                    "-s",
                    &src,
                    "-m",
                    "statistic",
                    "--mode",
                    "random",
                    "--probability",
                    &p,
                    "-j",
                    "DROP",
                ],
            )?;
        }
    }
    Ok(())
}

/// Removes the namespaces when dropped (every exit path that unwinds).
pub struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        cleanup();
    }
}

/// Grudges of the partition shapes: `node -> nodes it drops packets from`.
pub mod shapes {
    use super::*;

    /// `x` cut off from everyone, both ways.
    pub fn isolate(ids: &[u32], x: u32) -> BTreeMap<u32, BTreeSet<u32>> {
        split(
            &[x],
            &ids.iter().copied().filter(|&i| i != x).collect::<Vec<_>>(),
        )
    }

    /// Two sides that cannot reach each other.
    pub fn split(a: &[u32], b: &[u32]) -> BTreeMap<u32, BTreeSet<u32>> {
        let mut g: BTreeMap<u32, BTreeSet<u32>> = BTreeMap::new();
        for &x in a {
            for &y in b {
                g.entry(x).or_default().insert(y);
                g.entry(y).or_default().insert(x);
            }
        }
        g
    }

    /// Jepsen's majorities ring: every node sees a majority (itself and the next ones around
    /// the ring), and no two nodes see the same majority.
    pub fn ring(ids: &[u32]) -> BTreeMap<u32, BTreeSet<u32>> {
        let n = ids.len();
        let q = n / 2 + 1;
        let mut g = BTreeMap::new();
        for (k, &id) in ids.iter().enumerate() {
            let sees: BTreeSet<u32> = (0..q).map(|j| ids[(k + j) % n]).collect();
            let drops: BTreeSet<u32> = ids.iter().copied().filter(|i| !sees.contains(i)).collect();
            if !drops.is_empty() {
                g.insert(id, drops);
            }
        }
        g
    }
}

#[cfg(test)]
mod tests {
    use super::shapes::*;
    use super::*;

    #[test]
    fn partition_shapes() {
        let ids = [1, 2, 3, 4, 5];
        let g = isolate(&ids, 3);
        assert_eq!(g[&3], BTreeSet::from([1, 2, 4, 5]));
        assert_eq!(g[&1], BTreeSet::from([3]));
        let g = split(&[1, 2], &[3, 4, 5]);
        assert_eq!(g[&1], BTreeSet::from([3, 4, 5]));
        assert_eq!(g[&5], BTreeSet::from([1, 2]));
        let g = ring(&ids);
        // Node 1 sees 1, 2, 3 and drops 4 and 5; every node drops exactly two.
        assert_eq!(g[&1], BTreeSet::from([4, 5]));
        assert!(g.values().all(|d| d.len() == 2));
        assert!(is_ours("jn12", "jn") && !is_ours("jn", "jn") && !is_ours("jnx", "jn"));
    }
}
