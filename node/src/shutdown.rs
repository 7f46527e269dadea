//! The node's shutdown signal, handed to every connection and background task.
//!
//! The sender lives in [`crate::server::Node`]; each holder of a [`Shutdown`] stops taking new
//! work when it fires and finishes what it started, so shutdown drains instead of aborting.

use tokio::sync::watch;

#[derive(Debug, Clone)]
pub(crate) struct Shutdown {
    signal: watch::Receiver<bool>,
}

impl Shutdown {
    /// A signal and its trigger.
    pub fn new() -> (watch::Sender<bool>, Shutdown) {
        let (tx, signal) = watch::channel(false);
        (tx, Shutdown { signal })
    }

    pub fn is_shutdown(&self) -> bool {
        *self.signal.borrow()
    }

    /// Returns once shutdown began (at once if it already has, or if the trigger is gone).
    pub async fn recv(&mut self) {
        while !self.is_shutdown() {
            if self.signal.changed().await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn recv_returns_once_triggered_and_ever_after() {
        let (tx, mut shutdown) = Shutdown::new();
        assert!(!shutdown.is_shutdown());
        let waiting = tokio::spawn({
            let mut s = shutdown.clone();
            async move { s.recv().await }
        });
        tx.send(true).unwrap_or_default();
        waiting.await.unwrap_or_default();
        assert!(shutdown.is_shutdown());
        shutdown.recv().await;
        let (tx, mut orphan) = Shutdown::new();
        drop(tx);
        orphan.recv().await;
    }
}
