//! The process's resident memory and CPU time, read from `/proc/self` at each scrape.

/// Linux's clock tick for `/proc/<pid>/stat` times (USER_HZ, 100 on every Linux ABI brook
/// runs on).
const TICKS_PER_SECOND: f64 = 100.0;

/// Resident bytes and CPU seconds (user plus system); `None` where `/proc` has no answer.
pub fn usage() -> (Option<u64>, Option<f64>) {
    (rss_bytes(), cpu_seconds())
}

fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces; the fields after it start past its `)`.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_SECOND)
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_process_has_memory_and_cpu() {
        let (rss, cpu) = super::usage();
        assert!(rss.is_some_and(|b| b > 1024 * 1024), "{rss:?}");
        assert!(cpu.is_some_and(|s| s >= 0.0), "{cpu:?}");
    }
}
