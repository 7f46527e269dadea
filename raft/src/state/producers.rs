//! Producer ids: the image hands them out in disjoint blocks, so every broker can give ids to
//! idempotent producers from its own block without asking Raft for each one.

use super::{reject, MetadataState};
use crate::codes;
use crate::command::{CommandOutput, CommandResult};

/// Largest block of producer ids one command may reserve.
pub const MAX_PRODUCER_ID_BLOCK: u32 = 1_000_000;

impl MetadataState {
    /// The first producer id not yet handed out.
    pub fn next_producer_id(&self) -> i64 {
        self.next_producer_id
    }

    /// `AllocateProducerIds`: reserve the next `count` ids.
    pub(super) fn apply_allocate_producer_ids(&mut self, count: u32) -> CommandResult {
        if count == 0 || count > MAX_PRODUCER_ID_BLOCK {
            return reject(
                codes::INVALID_REQUEST,
                format!("producer id block size {count} must be in 1..={MAX_PRODUCER_ID_BLOCK}"),
            );
        }
        let start = self.next_producer_id;
        let Some(next) = start.checked_add(i64::from(count)) else {
            return reject(codes::INVALID_REQUEST, "producer ids exhausted");
        };
        self.next_producer_id = next;
        Ok(CommandOutput::ProducerIds { start, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::MetadataCommand;
    use crate::state::testkit::*;

    #[test]
    fn allocate_producer_ids_hands_out_disjoint_blocks() {
        let mut s = MetadataState::default();
        let alloc = |count| MetadataCommand::AllocateProducerIds { count };
        assert_eq!(
            s.apply(&alloc(1000)),
            Ok(CommandOutput::ProducerIds {
                start: 0,
                count: 1000
            })
        );
        assert_eq!(
            s.apply(&alloc(10)),
            Ok(CommandOutput::ProducerIds {
                start: 1000,
                count: 10
            })
        );
        assert_eq!(s.next_producer_id(), 1010);
        assert_rejected(&mut s, alloc(0), codes::INVALID_REQUEST);
        assert_rejected(
            &mut s,
            alloc(MAX_PRODUCER_ID_BLOCK + 1),
            codes::INVALID_REQUEST,
        );
        s.next_producer_id = i64::MAX - 5;
        assert_rejected(&mut s, alloc(10), codes::INVALID_REQUEST);
    }
}
