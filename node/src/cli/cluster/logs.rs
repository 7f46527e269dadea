//! The nodes' log files of a local cluster: where `brook cluster up` writes them
//! ([`NodeLog`], `DIR/logs/node-N.log`, rotated to `node-N.log.1`), and `brook cluster logs`,
//! which prints their last lines and follows them.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};

/// The folder of the node logs, under the cluster's folder.
pub const LOGS_DIR: &str = "logs";

/// What bounds a node's log on disk: once `node-N.log` passes this size (checked when the node
/// starts and after every line), it is renamed to `node-N.log.1`, replacing the previous one,
/// and a new `node-N.log` is started. A node thus never holds more than about twice this much.
/// Renaming rather than copying keeps a `brook cluster logs -f` reader consistent: it sees the
/// file's inode change and reopens it.
pub const ROTATE_BYTES: u64 = 64 * 1024 * 1024;

/// How many of a node's last lines the supervisor keeps in memory, to print them when the node
/// exits unexpectedly or does not get ready.
const TAIL_LINES: usize = 20;

/// How often `--follow` looks for new lines.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(200);

/// Node `id`'s log file in the cluster folder `dir`.
pub fn log_path(dir: &Path, id: i32) -> PathBuf {
    dir.join(LOGS_DIR).join(format!("node-{id}.log"))
}

fn rotated_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".1");
    PathBuf::from(name)
}

/// One node's log file as the supervisor writes it: every line of the node's stdout and stderr,
/// appended, with the last few kept in memory.
pub struct NodeLog {
    path: PathBuf,
    file: File,
    size: u64,
    tail: VecDeque<String>,
    /// A write failed (a full disk): said once on the terminal, not for every line.
    failed: bool,
}

impl NodeLog {
    /// Opens (appends to) node `id`'s log, rotating it first if it is past [`ROTATE_BYTES`], and
    /// writes a header line, so each start of the node is visible in the file.
    pub fn open(dir: &Path, id: i32) -> anyhow::Result<NodeLog> {
        let path = log_path(dir, id);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        if std::fs::metadata(&path).is_ok_and(|m| m.len() > ROTATE_BYTES) {
            std::fs::rename(&path, rotated_path(&path))
                .with_context(|| format!("rotating {}", path.display()))?;
        }
        let file = append(&path)?;
        let size = file
            .metadata()
            .with_context(|| format!("reading {}", path.display()))?
            .len();
        let mut log = NodeLog {
            path,
            file,
            size,
            tail: VecDeque::new(),
            failed: false,
        };
        log.write(&format!(
            "==== brook cluster up: node {id} starting at {} ====",
            now()
        ));
        Ok(log)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line (without its newline). A failed write is reported once and otherwise
    /// ignored: a node must not stop because its log cannot be written.
    pub fn write(&mut self, line: &str) {
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(line.to_string());
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        // One write per line on an O_APPEND file: a reader never sees two lines interleaved.
        match self.file.write_all(&bytes) {
            Ok(()) => self.size += bytes.len() as u64,
            Err(e) => self.fail(format!("writing {}: {e}", self.path.display())),
        }
        if self.size > ROTATE_BYTES {
            if let Err(e) = self.rotate() {
                self.fail(format!("rotating {}: {e:#}", self.path.display()));
            }
        }
    }

    fn rotate(&mut self) -> anyhow::Result<()> {
        std::fs::rename(&self.path, rotated_path(&self.path))?;
        self.file = append(&self.path)?;
        self.size = 0;
        Ok(())
    }

    fn fail(&mut self, what: String) {
        if !self.failed {
            self.failed = true;
            super::up::say(format_args!("brook: warning: {what}"));
        }
    }

    /// The last lines written, oldest first.
    pub fn tail(&self) -> impl Iterator<Item = &str> {
        self.tail.iter().map(String::as_str)
    }
}

fn append(path: &Path) -> anyhow::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))
}

/// The current time as the node log lines show it (tracing's default, RFC 3339 in UTC).
fn now() -> String {
    use tracing_subscriber::fmt::format::Writer;
    use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
    let mut text = String::new();
    if SystemTime.format_time(&mut Writer::new(&mut text)).is_err() {
        text = "(unknown time)".into();
    }
    text
}

/// The flags of `brook cluster logs`.
#[derive(Debug, Clone)]
pub struct LogsArgs {
    pub dir: PathBuf,
    pub node: Option<i32>,
    pub follow: bool,
    pub lines: usize,
}

/// `brook cluster logs`: the last lines of every node's log (or one node's), prefixed with the
/// node when there are several; with `follow`, then every new line until Ctrl-C.
pub async fn logs(args: LogsArgs) -> anyhow::Result<()> {
    let files = log_files(&args.dir, args.node)?;
    let prefixed = files.len() > 1;
    let mut out = Output { prefixed };
    let mut followers = Vec::new();
    for (id, path) in files {
        let (lines, end) =
            last_lines(&path, args.lines).with_context(|| format!("reading {}", path.display()))?;
        for line in &lines {
            if !out.line(id, line) {
                return Ok(());
            }
        }
        followers.push(Follower::new(id, path, end));
    }
    if !args.follow {
        return Ok(());
    }
    let mut interrupt = std::pin::pin!(tokio::signal::ctrl_c());
    loop {
        for follower in &mut followers {
            if !follower.poll(&mut out) {
                return Ok(());
            }
        }
        tokio::select! {
            _ = &mut interrupt => return Ok(()),
            _ = tokio::time::sleep(FOLLOW_INTERVAL) => {}
        }
    }
}

/// The log files to show, by node id.
fn log_files(dir: &Path, node: Option<i32>) -> anyhow::Result<Vec<(i32, PathBuf)>> {
    let logs = dir.join(LOGS_DIR);
    if let Some(id) = node {
        let path = log_path(dir, id);
        if !path.is_file() {
            bail!(
                "no log of node {id}: {} does not exist (is {} the folder `brook cluster up --dir` used?)",
                path.display(),
                dir.display()
            );
        }
        return Ok(vec![(id, path)]);
    }
    let entries = std::fs::read_dir(&logs).with_context(|| {
        format!(
            "reading {} (is {} the folder `brook cluster up --dir` used?)",
            logs.display(),
            dir.display()
        )
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", logs.display()))?;
        let name = entry.file_name();
        let id = name
            .to_str()
            .and_then(|n| n.strip_prefix("node-"))
            .and_then(|n| n.strip_suffix(".log"))
            .and_then(|n| n.parse::<i32>().ok());
        if let Some(id) = id {
            files.push((id, entry.path()));
        }
    }
    if files.is_empty() {
        bail!("no node logs in {}", logs.display());
    }
    files.sort();
    Ok(files)
}

/// Writes lines on stdout; `false` once stdout is closed (e.g. piped into `head`).
struct Output {
    prefixed: bool,
}

impl Output {
    fn line(&mut self, id: i32, line: &str) -> bool {
        let mut stdout = std::io::stdout().lock();
        let written = if self.prefixed {
            writeln!(stdout, "[node-{id}] {line}")
        } else {
            writeln!(stdout, "{line}")
        };
        written.and_then(|()| stdout.flush()).is_ok()
    }
}

/// The last `n` complete lines of the file at `path`, and the offset just past them (where
/// following continues; a line still being written is left for it).
fn last_lines(path: &Path, n: usize) -> std::io::Result<(Vec<String>, u64)> {
    const CHUNK: u64 = 64 * 1024;
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    // Read backwards until the chunks hold more than n newlines: then the last n lines are
    // whole, whether or not the file ends with a newline.
    let mut start = len;
    let mut buf: Vec<u8> = Vec::new();
    while start > 0 && buf.iter().filter(|b| **b == b'\n').count() <= n {
        let from = start.saturating_sub(CHUNK);
        let mut chunk = vec![0; usize::try_from(start - from).unwrap_or(0)];
        file.seek(SeekFrom::Start(from))?;
        file.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&buf);
        buf = chunk;
        start = from;
    }
    let complete = buf.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let end = start + complete as u64;
    let text = String::from_utf8_lossy(&buf[..complete]);
    let all: Vec<&str> = text.lines().collect();
    let lines = all[all.len().saturating_sub(n)..]
        .iter()
        .map(|l| l.to_string())
        .collect();
    Ok((lines, end))
}

/// Follows one node's log across rotation (a new inode at the path) and truncation (a file
/// shorter than what was read).
struct Follower {
    id: i32,
    path: PathBuf,
    file: Option<File>,
    inode: Option<u64>,
    pos: u64,
    partial: Vec<u8>,
}

impl Follower {
    fn new(id: i32, path: PathBuf, pos: u64) -> Follower {
        let file = File::open(&path).ok();
        let inode = file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map(|m| m.ino());
        Follower {
            id,
            path,
            file,
            inode,
            pos,
            partial: Vec::new(),
        }
    }

    /// Prints what was appended since the last poll; `false` once stdout is closed.
    fn poll(&mut self, out: &mut Output) -> bool {
        // Between the rename and the new file's creation the path may be missing for a moment.
        let Ok(meta) = std::fs::metadata(&self.path) else {
            return true;
        };
        if self.inode != Some(meta.ino()) {
            // Rotated: the rest of the old file first (it is still open), then the new one.
            if !self.read_new(out) {
                return false;
            }
            self.file = File::open(&self.path).ok();
            self.inode = self
                .file
                .as_ref()
                .and_then(|f| f.metadata().ok())
                .map(|m| m.ino());
            self.pos = 0;
            self.partial.clear();
        } else if meta.len() < self.pos {
            // Truncated in place: start over at its beginning.
            self.pos = 0;
            self.partial.clear();
        }
        self.read_new(out)
    }

    fn read_new(&mut self, out: &mut Output) -> bool {
        let Some(file) = &mut self.file else {
            return true;
        };
        let mut data = Vec::new();
        let read = file
            .seek(SeekFrom::Start(self.pos))
            .and_then(|_| file.read_to_end(&mut data));
        if read.is_err() || data.is_empty() {
            return true;
        }
        self.pos += data.len() as u64;
        self.partial.extend_from_slice(&data);
        let Some(last) = self.partial.iter().rposition(|b| *b == b'\n') else {
            return true;
        };
        let complete: Vec<u8> = self.partial.drain(..=last).collect();
        let text = String::from_utf8_lossy(&complete);
        text.lines().all(|line| out.line(self.id, line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str, n: usize) -> (Vec<String>, u64) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node-1.log");
        std::fs::write(&path, text).unwrap();
        last_lines(&path, n).unwrap()
    }

    #[test]
    fn last_lines_are_whole_lines() {
        assert_eq!(lines("a\nb\nc\n", 2), (vec!["b".into(), "c".into()], 6));
        assert_eq!(lines("a\nb\nc\n", 5).0, vec!["a", "b", "c"]);
        // A line still being written is left for --follow.
        assert_eq!(lines("a\nb\nc", 2), (vec!["a".into(), "b".into()], 4));
        assert_eq!(lines("", 3), (vec![], 0));
        assert_eq!(lines("a\n", 0), (vec![], 2));
        // Across chunk boundaries.
        let long: String = (0..50_000).map(|i| format!("line {i}\n")).collect();
        let (got, end) = lines(&long, 3);
        assert_eq!(got, vec!["line 49997", "line 49998", "line 49999"]);
        assert_eq!(end, long.len() as u64);
    }

    #[test]
    fn follower_reads_across_rotation_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node-1.log");
        std::fs::write(&path, "old\n").unwrap();
        let mut follower = Follower::new(1, path.clone(), 4);
        let mut out = Output { prefixed: false };
        let append = |text: &str| {
            let mut f = OpenOptions::new().append(true).open(&path).unwrap();
            f.write_all(text.as_bytes()).unwrap();
        };
        append("one\ntw");
        assert!(follower.poll(&mut out));
        assert_eq!(follower.partial, b"tw");
        append("o\n");
        assert!(follower.poll(&mut out));
        assert!(follower.partial.is_empty());
        assert_eq!(follower.pos, 12);
        std::fs::rename(&path, rotated_path(&path)).unwrap();
        std::fs::write(&path, "new\n").unwrap();
        assert!(follower.poll(&mut out));
        assert_eq!(follower.pos, 4);
        std::fs::write(&path, "").unwrap();
        assert!(follower.poll(&mut out));
        assert_eq!(follower.pos, 0);
    }

    #[test]
    fn node_log_rotates_past_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = NodeLog::open(dir.path(), 2).unwrap();
        let header = std::fs::read_to_string(log.path()).unwrap();
        assert!(header.starts_with("==== brook cluster up: node 2 starting at "));
        log.size = ROTATE_BYTES;
        log.write("the line past the bound");
        let rotated = std::fs::read_to_string(rotated_path(log.path())).unwrap();
        assert!(rotated.ends_with("the line past the bound\n"), "{rotated}");
        assert_eq!(std::fs::metadata(log.path()).unwrap().len(), 0);
        log.write("next");
        assert_eq!(std::fs::read_to_string(log.path()).unwrap(), "next\n");
        assert_eq!(log.tail().last(), Some("next"));
    }
}
