//! Group commit: one thread runs `db.flush()` for everyone who asked since the last flush
//! started, so a burst of produce requests across partitions costs one fsync, not one each.
//!
//! A failed flush is final: every later flush fails with the same error. sled itself refuses
//! all writes after an I/O error, and callers rely on it: an append whose flush failed is
//! removed again (see the partition actor), which is only sound if no later flush can report
//! success for writes made after the failed one.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

use futures::channel::oneshot;

use crate::Error;

type Waiter = oneshot::Sender<Result<(), Error>>;

#[derive(Default)]
struct Counters {
    flushes: AtomicU64,
    served: AtomicU64,
    /// Set by tests: the next flush fails as an I/O error would.
    inject_failure: AtomicBool,
    /// A flush failed: the store takes no more writes.
    failed: AtomicBool,
}

pub(crate) struct GroupCommit {
    requests: Option<mpsc::Sender<Waiter>>,
    thread: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
}

impl GroupCommit {
    pub fn start(db: sled::Db) -> Result<GroupCommit, Error> {
        let (tx, rx) = mpsc::channel::<Waiter>();
        let counters = Arc::new(Counters::default());
        let thread_counters = Arc::clone(&counters);
        let thread = std::thread::Builder::new()
            .name("brook-flush".into())
            .spawn(move || run(&db, &rx, &thread_counters))?;
        Ok(GroupCommit {
            requests: Some(tx),
            thread: Some(thread),
            counters,
        })
    }

    /// Enqueues the request now (not on first poll), so the flush that serves it starts after
    /// every write made before this call.
    pub fn request(&self) -> impl Future<Output = Result<(), Error>> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        let queued = self
            .requests
            .as_ref()
            .is_some_and(|requests| requests.send(tx).is_ok());
        async move {
            if !queued {
                return Err(Error::Closed);
            }
            rx.await.unwrap_or(Err(Error::Closed))
        }
    }

    /// Makes the next flush fail (and, failures being final, every one after it).
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn inject_failure(&self) {
        self.counters.inject_failure.store(true, Ordering::Relaxed);
    }

    /// Whether a flush failed (failures being final, the store can take no more writes).
    pub fn failed(&self) -> bool {
        self.counters.failed.load(Ordering::Relaxed)
    }

    pub fn stats(&self) -> (u64, u64) {
        (
            self.counters.flushes.load(Ordering::Relaxed),
            self.counters.served.load(Ordering::Relaxed),
        )
    }
}

fn run(db: &sled::Db, requests: &mpsc::Receiver<Waiter>, counters: &Counters) {
    let mut failed: Option<sled::Error> = None;
    // Ends once every sender is gone and the queue is drained.
    while let Ok(first) = requests.recv() {
        let mut waiters = vec![first];
        waiters.extend(requests.try_iter());
        if failed.is_none() {
            if let Err(e) = flush(db, counters) {
                tracing::error!(error = %e, "group commit flush failed; the store takes no more writes");
                counters.failed.store(true, Ordering::Relaxed);
                failed = Some(e);
            }
        }
        counters.flushes.fetch_add(1, Ordering::Relaxed);
        counters
            .served
            .fetch_add(waiters.len() as u64, Ordering::Relaxed);
        for waiter in waiters {
            let outcome = match &failed {
                None => Ok(()),
                Some(e) => Err(Error::Sled(e.clone())),
            };
            // The caller may have stopped waiting; that is fine.
            let _ = waiter.send(outcome);
        }
    }
}

fn flush(db: &sled::Db, counters: &Counters) -> Result<(), sled::Error> {
    if counters.inject_failure.swap(false, Ordering::Relaxed) {
        return Err(sled::Error::Io(std::io::Error::other(
            "injected flush failure",
        )));
    }
    db.flush().map(|_| ())
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        // Closing the channel lets the thread serve what is queued and exit; joining makes sure
        // its handle on the database is gone before the store can be reopened.
        self.requests = None;
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("group commit thread panicked");
            }
        }
    }
}
