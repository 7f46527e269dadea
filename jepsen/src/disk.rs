//! The disk-full fault: each node's data directory is a small ext4 filesystem on a loop device
//! (images under `$TMPDIR/brook-jepsen-disks/`), and the fault fills it with a ballast file
//! until writes fail with ENOSPC; stopping it deletes the ballast. Set up only when the
//! nemesis includes disk-full (it needs root), and unmounted at start, on exit and on Ctrl-C.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;

use crate::exec::run;

/// Size of each node's filesystem: room for a run's data, small enough to fill in a moment.
const SIZE: u64 = 256 << 20;
const BALLAST: &str = "jepsen-ballast";

/// Set while loop mounts exist, so the signal handler knows to remove them.
pub static ACTIVE: AtomicBool = AtomicBool::new(false);

fn images() -> PathBuf {
    std::env::temp_dir().join("brook-jepsen-disks")
}

/// Unmounts and detaches every filesystem on one of our images, and deletes the images.
pub fn cleanup() {
    let Ok(entries) = fs::read_dir(images()) else {
        return;
    };
    let mounts = fs::read_to_string("/proc/mounts").unwrap_or_default();
    for img in entries.flatten().map(|e| e.path()) {
        let Some(img_str) = img.to_str() else {
            continue;
        };
        // "/dev/loop0: [65024]:10010733 (/tmp/brook-jepsen-disks/n1.img)"
        let loops = run("losetup", &["-j", img_str]).unwrap_or_default();
        for dev in loops.lines().filter_map(|l| l.split(':').next()) {
            for line in mounts.lines() {
                let mut f = line.split_whitespace();
                if let (Some(src), Some(target)) = (f.next(), f.next()) {
                    if src == dev {
                        let _ = run("umount", &["-l", target]);
                    }
                }
            }
            let _ = run("losetup", &["-d", dev]);
        }
        let _ = fs::remove_file(&img);
    }
    ACTIVE.store(false, Ordering::SeqCst);
}

/// Mounts a fresh small filesystem at each `(id, data dir)`.
pub fn setup(dirs: &[(u32, PathBuf)]) -> Result<()> {
    cleanup();
    ACTIVE.store(true, Ordering::SeqCst);
    fs::create_dir_all(images())?;
    for (id, dir) in dirs {
        let img = images().join(format!("n{id}.img"));
        File::create(&img)?.set_len(SIZE)?;
        let img = img.to_string_lossy().into_owned();
        run("mkfs.ext4", &["-q", "-F", &img])?;
        fs::create_dir_all(dir)?;
        run("mount", &["-o", "loop", &img, &dir.to_string_lossy()])?;
    }
    Ok(())
}

/// Fills the filesystem holding `dir` until a write fails.
pub fn fill(dir: &Path) -> Result<u64> {
    let mut f = File::create(dir.join(BALLAST))?;
    let chunk = vec![0u8; 1 << 20];
    let mut written = 0u64;
    while written < SIZE {
        match f.write(&chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => written += n as u64,
        }
    }
    let _ = f.sync_all();
    Ok(written)
}

/// Frees the space again.
pub fn free(dir: &Path) -> Result<()> {
    match fs::remove_file(dir.join(BALLAST)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

/// Unmounts when dropped.
pub struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        cleanup();
    }
}
