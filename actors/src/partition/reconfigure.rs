//! A topic's configs changed at run time (AlterConfigs): the actor and its log take the new
//! settings for what comes next. Segments already rolled stay as they are; retention applies
//! the new limits on its next pass.

use actix::prelude::*;

use super::{PartitionActor, PartitionConfig};

/// The partition's settings as the metadata now has them; sent after every metadata change,
/// so an unchanged config is the common case and costs a comparison.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct Reconfigure(pub PartitionConfig);

impl Handler<Reconfigure> for PartitionActor {
    type Result = ();

    fn handle(&mut self, msg: Reconfigure, _ctx: &mut Self::Context) {
        if msg.0 == self.config {
            return;
        }
        tracing::info!(partition = %self.key, config = ?msg.0, "settings changed");
        self.config = msg.0;
        if let Some(log) = self.log.as_mut() {
            log.set_config(msg.0.log);
        }
    }
}
