//! Offset commits share Raft entries: commits that arrive while one entry is being written
//! wait, and all of them go into the next entry together.
//!
//! One entry is in flight at a time, so commits are applied in the order they arrived; two
//! commits of the same partition can never overtake each other.

use std::sync::Arc;

use brook_actors::group::{codes, StoreResult};
use brook_raft::{CommandOutput, GroupCommit, MetadataCommand, OffsetCommit};
use tokio::sync::{mpsc, oneshot};

use crate::errors::store_error;
use crate::metadata::{MetaError, Metadata};

/// Commits waiting for an entry; beyond this, committers wait for room (back-pressure).
const QUEUE_DEPTH: usize = 4096;
/// Commits stop joining an entry once it is this large (encoded, roughly): entries stay small
/// next to the metadata log's limit, so a batch never fails for being a batch.
const ENTRY_BYTES: usize = 1024 * 1024;

struct PendingCommit {
    commit: GroupCommit,
    reply: oneshot::Sender<StoreResult<()>>,
}

/// The sending side: cheap to clone. A commit without offsets is a read barrier: once it
/// is answered, this node's copy of the metadata holds every commit acknowledged before it
/// (by any node), whoever coordinates the group.
#[derive(Clone)]
pub struct CommitQueue {
    tx: mpsc::Sender<PendingCommit>,
}

impl CommitQueue {
    /// Start the writer task; `max_offsets` bounds the partitions one entry carries.
    pub fn start(metadata: Arc<Metadata>, node_id: u64, max_offsets: usize) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(write_batches(metadata, node_id, max_offsets, rx));
        CommitQueue { tx }
    }

    /// Commit `offsets` for `group`, as its coordinator since placement epoch `since`;
    /// answered once the entry holding them is applied.
    pub fn commit(
        &self,
        group: String,
        since: u64,
        offsets: Vec<OffsetCommit>,
    ) -> impl std::future::Future<Output = StoreResult<()>> + Send + 'static {
        let tx = self.tx.clone();
        async move {
            let (reply, answer) = oneshot::channel();
            let pending = PendingCommit {
                commit: GroupCommit {
                    group,
                    since,
                    offsets,
                },
                reply,
            };
            tx.send(pending)
                .await
                .map_err(|_| codes::COORDINATOR_NOT_AVAILABLE)?;
            answer
                .await
                .unwrap_or(Err(codes::COORDINATOR_NOT_AVAILABLE))
        }
    }
}

async fn write_batches(
    metadata: Arc<Metadata>,
    node_id: u64,
    max_offsets: usize,
    mut rx: mpsc::Receiver<PendingCommit>,
) {
    let mut carried: Option<PendingCommit> = None;
    loop {
        let first = match carried.take() {
            Some(c) => c,
            None => match rx.recv().await {
                Some(c) => c,
                None => return,
            },
        };
        let mut offsets = first.commit.offsets.len();
        let mut bytes = encoded_size(&first.commit);
        let mut batch = vec![first];
        while offsets < max_offsets && bytes < ENTRY_BYTES {
            match rx.try_recv() {
                Ok(next) if bytes + encoded_size(&next.commit) > ENTRY_BYTES => {
                    carried = Some(next);
                    break;
                }
                Ok(next) => {
                    offsets += next.commit.offsets.len();
                    bytes += encoded_size(&next.commit);
                    batch.push(next);
                }
                Err(_) => break,
            }
        }
        let (commits, replies): (Vec<GroupCommit>, Vec<_>) =
            batch.into_iter().map(|p| (p.commit, p.reply)).unzip();
        let count = commits.len();
        let cmd = MetadataCommand::CommitOffsets {
            coordinator: node_id,
            at_ms: crate::clock::now_ms(),
            commits,
        };
        let results: Vec<StoreResult<()>> = match metadata.write(cmd).await {
            Ok(CommandOutput::GroupResults { codes: answers }) if answers.len() == count => answers
                .into_iter()
                .map(|c| if c == codes::NONE { Ok(()) } else { Err(c) })
                .collect(),
            Ok(other) => {
                tracing::error!(?other, "unexpected answer to an offset commit entry");
                vec![Err(codes::UNKNOWN_SERVER_ERROR); count]
            }
            // Only a single commit can be too large: batches stop well below the limit.
            Err(MetaError::Rejected(r)) if r.code == codes::MESSAGE_TOO_LARGE => {
                tracing::warn!(error = %r, "offset commit too large for one entry");
                vec![Err(codes::INVALID_COMMIT_OFFSET_SIZE); count]
            }
            Err(e) => vec![Err(store_error(&e)); count],
        };
        tracing::debug!(commits = count, offsets, "offset commits written");
        for (reply, result) in replies.into_iter().zip(results) {
            let _ = reply.send(result);
        }
    }
}

/// About what a commit takes in the log: its strings plus the fixed fields.
fn encoded_size(commit: &GroupCommit) -> usize {
    commit.group.len()
        + commit
            .offsets
            .iter()
            .map(|o| o.topic.len() + o.metadata.len() + 40)
            .sum::<usize>()
}
