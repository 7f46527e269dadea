//! Per-node wall clocks for the clock nemesis, through libfaketime (Debian `libfaketime`).
//!
//! All nodes share one kernel, so a node's clock is skewed in its process: each node runs with
//! libfaketime preloaded, reading its offset from a file in its directory (re-read about every
//! second). The monotonic clock stays real, so only what a node takes from the wall clock moves:
//! an operator or NTP stepping the clock, not a clock running at another rate.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};

/// Where Debian and a source install put the preload library.
const LIBRARY_DIRS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/faketime",
    "/usr/lib/aarch64-linux-gnu/faketime",
    "/usr/lib/faketime",
    "/usr/local/lib/faketime",
];

/// libfaketime's preload library.
pub fn library() -> Result<PathBuf> {
    LIBRARY_DIRS
        .iter()
        .map(|d| Path::new(d).join("libfaketime.so.1"))
        .find(|p| p.is_file())
        .map_or_else(
            || bail!("the clock nemesis needs libfaketime (Debian package libfaketime)"),
            Ok,
        )
}

/// The file node processes started with [`env`] read their offset from.
fn offset_file(node_dir: &Path) -> PathBuf {
    node_dir.join("faketime")
}

/// The environment that makes a node read its wall clock offset from `node_dir` (zero until
/// [`set_offset`] says otherwise).
pub fn env(library: &Path, node_dir: &Path) -> Result<Vec<(&'static str, String)>> {
    let file = offset_file(node_dir);
    if !file.exists() {
        set_offset(node_dir, 0)?;
    }
    Ok(vec![
        ("LD_PRELOAD", library.display().to_string()),
        ("FAKETIME_TIMESTAMP_FILE", file.display().to_string()),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1".to_string()),
        ("FAKETIME_CACHE_DURATION", "1".to_string()),
    ])
}

/// Sets the node's wall clock `offset_ms` away from the real one. The file is replaced by a
/// rename, so a node never reads half of it.
pub fn set_offset(node_dir: &Path, offset_ms: i64) -> Result<()> {
    let file = offset_file(node_dir);
    let tmp = node_dir.join("faketime.tmp");
    // libfaketime's offsets take a decimal number of seconds.
    let spec = format!("{:+.3}\n", offset_ms as f64 / 1000.0);
    fs::write(&tmp, spec).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, &file).with_context(|| format!("replacing {}", file.display()))
}

/// A clock that jumps between the real time and an offset every `period` until stopped.
pub struct Strobe {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    node_dir: PathBuf,
}

impl Strobe {
    pub fn start(node_dir: &Path, offset_ms: i64, period: Duration) -> Strobe {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let dir = node_dir.to_path_buf();
        let thread = std::thread::spawn(move || {
            let mut skewed = false;
            while !flag.load(Ordering::Relaxed) {
                skewed = !skewed;
                let _ = set_offset(&dir, if skewed { offset_ms } else { 0 });
                std::thread::sleep(period);
            }
        });
        Strobe {
            stop,
            thread: Some(thread),
            node_dir: node_dir.to_path_buf(),
        }
    }

    /// Stops strobing and puts the clock back.
    pub fn finish(mut self) -> Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        set_offset(&self.node_dir, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_written_as_libfaketime_reads_them() {
        let dir = std::env::temp_dir().join(format!("brook-jepsen-clock-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        set_offset(&dir, -90_500).unwrap();
        assert_eq!(fs::read_to_string(offset_file(&dir)).unwrap(), "-90.500\n");
        set_offset(&dir, 0).unwrap();
        assert_eq!(fs::read_to_string(offset_file(&dir)).unwrap(), "+0.000\n");
        fs::remove_dir_all(&dir).unwrap();
    }
}
