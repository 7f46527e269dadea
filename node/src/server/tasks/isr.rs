//! Writes the leaders' in-sync set changes through Raft (Kafka's AlterPartition). The change
//! applies only if the leader still leads at the epoch and partition epoch it started from; the
//! outcome reaches the actor the usual way, through the metadata.

use std::sync::Arc;

use brook_actors::IsrRequest;
use brook_raft::MetadataCommand;
use tokio::sync::mpsc;

use crate::broker::Broker;

pub(crate) async fn run(broker: Arc<Broker>, mut requests: mpsc::UnboundedReceiver<IsrRequest>) {
    let mut shutdown = broker.shutdown.clone();
    let Ok(me) = u64::try_from(broker.node_id()) else {
        return;
    };
    loop {
        let request = tokio::select! {
            request = requests.recv() => match request {
                Some(request) => request,
                None => return,
            },
            () = shutdown.recv() => return,
        };
        let Some(partition) = u32::try_from(request.key.partition).ok() else {
            continue;
        };
        let isr = request
            .isr
            .iter()
            .filter_map(|&r| u64::try_from(r).ok())
            .collect();
        let command = MetadataCommand::AlterPartition {
            topic_id: request.key.topic_id,
            partition,
            leader: me,
            leader_epoch: request.leader_epoch,
            partition_epoch: request.partition_epoch,
            isr,
        };
        match broker.metadata.write(command).await {
            // The actor learns the new set from the metadata, like every node.
            Ok(_) => {
                tracing::info!(partition = %request.key, isr = ?request.isr, "in-sync set changed")
            }
            // The actor asks again after a while if it still wants the change.
            Err(e) => {
                tracing::warn!(partition = %request.key, isr = ?request.isr, error = %e, "in-sync set change refused")
            }
        }
    }
}
