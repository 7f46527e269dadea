//! DescribeLogDirs on one replica: how many bytes its log holds and how far its log end is
//! behind the partition's high watermark.

use actix::prelude::*;

use super::messages::Reply;
use super::{PartitionActor, Role};

/// How one replica's log stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogDescription {
    /// The record batches the log holds, in bytes (see [`brook_storage::PartitionLog::size_bytes`]).
    pub size_bytes: u64,
    /// 0 on the leader. On a follower, the leader's high watermark as its last copied answer
    /// gave it, minus this log's end (0 when caught up, or when no answer came since the
    /// replica took its role: Kafka reports 0 when it does not know either).
    pub offset_lag: u64,
}

/// Describe this replica's log.
#[derive(Message)]
#[rtype(result = "()")]
pub struct DescribeLog {
    pub reply: Reply<LogDescription>,
}

impl Handler<DescribeLog> for PartitionActor {
    type Result = ();

    fn handle(&mut self, msg: DescribeLog, _ctx: &mut Self::Context) {
        let answer = self.log().map(|log| {
            let offset_lag = match self.role {
                Role::Leader(_) => 0,
                Role::Follower {
                    leader_high_watermark,
                    ..
                } => leader_high_watermark.map_or(0, |hw| hw.saturating_sub(log.log_end_offset())),
            };
            LogDescription {
                size_bytes: log.size_bytes(),
                offset_lag,
            }
        });
        let _ = msg.reply.send(answer);
    }
}
