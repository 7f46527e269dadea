//! The scan of node logs: a panic in any broker makes the run invalid, whatever the checkers
//! say, because a panic is a crash the nemesis did not ask for.

use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Lines that mark a panic or an abort in a Rust process's stderr.
const PATTERNS: &[&str] = &["panicked at", "fatal runtime error"];

/// Examples kept per scan.
const MAX_HITS: usize = 32;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LogScan {
    /// Log files scanned.
    pub files: usize,
    pub panics: usize,
    /// `file:line: text` of the first few hits.
    pub hits: Vec<String>,
}

impl LogScan {
    pub fn clean(&self) -> bool {
        self.panics == 0
    }
}

/// Scans `nodes/*/broker.log*` under a run directory.
pub fn scan(run_dir: &Path) -> LogScan {
    let mut out = LogScan::default();
    let Ok(nodes) = fs::read_dir(run_dir.join("nodes")) else {
        return out;
    };
    let mut logs: Vec<_> = nodes
        .flatten()
        .flat_map(|n| fs::read_dir(n.path()).into_iter().flatten().flatten())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("broker.log"))
        })
        .collect();
    logs.sort();
    for log in logs {
        out.files += 1;
        let Ok(bytes) = fs::read(&log) else { continue };
        let text = String::from_utf8_lossy(&bytes);
        for (n, line) in text.lines().enumerate() {
            if PATTERNS.iter().any(|p| line.contains(p)) {
                out.panics += 1;
                if out.hits.len() < MAX_HITS {
                    out.hits
                        .push(format!("{}:{}: {}", log.display(), n + 1, line.trim()));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_panics_in_node_logs() {
        let dir = std::env::temp_dir().join(format!("brook-jepsen-scan-{}", rand::random::<u64>()));
        fs::create_dir_all(dir.join("nodes/n1")).unwrap();
        fs::create_dir_all(dir.join("nodes/n2")).unwrap();
        fs::write(dir.join("nodes/n1/broker.log"), "INFO ready\nINFO bye\n").unwrap();
        assert!(scan(&dir).clean());
        fs::write(
            dir.join("nodes/n2/broker.log"),
            "INFO ready\nthread 'actix-rt' panicked at storage/src/log.rs:10:5:\nboom\n",
        )
        .unwrap();
        let s = scan(&dir);
        assert_eq!((s.files, s.panics), (2, 1));
        assert!(s.hits[0].contains("n2/broker.log:2"));
        let _ = fs::remove_dir_all(dir);
    }
}
