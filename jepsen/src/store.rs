//! The run directory, `store/<workload>/<timestamp>/`: `test.json`, `history.jsonl`,
//! `results.json`, `timeline.svg`, `harness.log`, `nodes/n<i>/broker.log`, and a `latest` link
//! beside the runs of a workload.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};

pub struct RunDir {
    pub path: PathBuf,
    log: Mutex<File>,
}

impl RunDir {
    /// Creates a fresh directory for one run of `workload` under `store`.
    pub fn create(store: &Path, workload: &str) -> Result<Self> {
        let parent = store.join(workload);
        let mut path = parent.join(timestamp());
        let mut n = 1;
        while path.exists() {
            // Two runs within the same millisecond (test-all) still get their own directory.
            path = parent.join(format!("{}-{n}", timestamp()));
            n += 1;
        }
        fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path.join("harness.log"))?;
        // `latest` points at the newest run; a stale link from an older run is replaced.
        let latest = parent.join("latest");
        let _ = fs::remove_file(&latest);
        if let Some(name) = path.file_name() {
            let _ = std::os::unix::fs::symlink(name, &latest);
        }
        Ok(RunDir {
            path,
            log: Mutex::new(log),
        })
    }

    /// `nodes/n<id>`, created on first use.
    pub fn node_dir(&self, id: u32) -> Result<PathBuf> {
        let dir = self.path.join("nodes").join(format!("n{id}"));
        fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// One line to `harness.log` and stderr.
    pub fn log(&self, msg: impl AsRef<str>) {
        let line = format!("{} {}\n", timestamp(), msg.as_ref());
        eprint!("{line}");
        if let Ok(mut f) = self.log.lock() {
            let _ = f.write_all(line.as_bytes());
        }
    }
}

/// UTC wall-clock time as `YYYYMMDDTHHMMSS.mmm`, sortable as text.
pub fn timestamp() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}.{:03}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_millis()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(timestamp().len(), "20240101T000000.000".len());
    }
}
