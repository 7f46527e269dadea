//! The actix System on its own thread, with a pool of arbiters for partition actors.

use std::sync::mpsc;
use std::thread::JoinHandle;

use actix_rt::{Arbiter, ArbiterHandle, System};

use crate::PartitionError;

/// A running actix System and the arbiters partition actors are spread over.
pub struct ActorSystem {
    system: System,
    handles: Vec<ArbiterHandle>,
    /// Owned so shutdown can wait for their threads: actors hold partition logs (and sled's
    /// lock on the data directory) until their arbiter has stopped.
    arbiters: Vec<Arbiter>,
    thread: Option<JoinHandle<()>>,
}

impl ActorSystem {
    /// Starts the System thread and `arbiters` arbiter threads (at least one).
    pub fn start(arbiters: usize) -> Result<Self, PartitionError> {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("brook-actix".into())
            .spawn(move || {
                let runner = System::new();
                let started: std::io::Result<Vec<Arbiter>> =
                    (0..arbiters.max(1)).map(|_| Arbiter::try_new()).collect();
                match started {
                    Ok(list) => {
                        let _ = tx.send(Ok((System::current(), list)));
                        if let Err(e) = runner.run() {
                            tracing::error!(error = %e, "actix system stopped with an error");
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                    }
                }
            })
            .map_err(|e| PartitionError::System(e.to_string()))?;
        let (system, arbiters) = rx
            .recv()
            .map_err(|e| PartitionError::System(e.to_string()))?
            .map_err(PartitionError::System)?;
        Ok(ActorSystem {
            system,
            handles: arbiters.iter().map(Arbiter::handle).collect(),
            arbiters,
            thread: Some(thread),
        })
    }

    pub fn arbiters(&self) -> &[ArbiterHandle] {
        &self.handles
    }

    /// Stops every arbiter and the System, and waits for the System thread.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        for arbiter in self.arbiters.drain(..) {
            arbiter.stop();
            if arbiter.join().is_err() {
                tracing::error!("an arbiter thread panicked");
            }
        }
        self.system.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ActorSystem {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}
