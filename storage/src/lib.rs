//! brook-storage: the node's durable partition logs on one sled database.
//!
//! The layer knows nothing of Kafka's record format: the caller passes a [`BatchMeta`] with the
//! few header fields the log needs, and the raw batch bytes. Every call blocks on sled (no
//! fsync except in the group-commit thread), so callers run it off their async executor.
//!
//! - `store`: [`Store`], the database handle; opens, lists and removes partitions.
//! - `directory`: which partitions exist, and the compact id their keys are filed under.
//! - `open_set`: the partitions with a live log, so no partition ever has two writers.
//! - `group_commit`: one flusher thread, one fsync for everyone waiting ([`Store::flush`]).
//! - `partition`: [`PartitionLog`] and [`LogConfig`]; appends, rolls, checkpoints.
//! - `read`: fetch by offset, lookups by timestamp.
//! - `retention`: retention and DeleteRecords (whole segments from the front).
//! - `truncate`: truncation from the end (replication).
//! - `recovery`: opening a log, which is also crash recovery.
//! - `segment`: a segment is a key range of the shared batch tree, from its base offset to the
//!   next segment's.
//! - `batch`: [`BatchMeta`] and the small prefix stored in front of every batch.
//! - `producer_state`: idempotent-producer sequences and the 5-batch dedup window.
//! - `epoch_cache`: leader epoch -> start offset.
//! - `keys`: the three shared trees and the keys in them (partition id, then offset).
//! - `error`: the crate's [`Error`].

mod batch;
mod directory;
mod epoch_cache;
mod error;
mod group_commit;
mod keys;
#[cfg(test)]
mod layout_tests;
mod open_set;
mod partition;
mod producer_state;
mod read;
mod recovery;
mod retention;
mod segment;
mod store;
mod truncate;

pub use batch::BatchMeta;
pub use error::Error;
pub use partition::{LogConfig, PartitionLog};
pub use producer_state::ProducerCheck;
pub use segment::SegmentInfo;
pub use store::{Store, StoreConfig};
