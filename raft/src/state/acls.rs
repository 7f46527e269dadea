//! ACL bindings (Kafka's `CreateAcls` and `DeleteAcls`). Every binding is checked here too, so
//! whatever reaches the log, at most [`MAX_ACLS`] well-formed bindings are kept.

use super::{reject, MetadataState};
use crate::acl::{AclBinding, AclFilter, Acls, MAX_ACLS};
use crate::codes;
use crate::command::{CommandOutput, CommandResult};

impl MetadataState {
    pub fn acls(&self) -> &Acls {
        &self.acls
    }

    /// Adds every binding, or none: a binding that exists already is not an error.
    pub(super) fn apply_create_acls(&mut self, bindings: &[AclBinding]) -> CommandResult {
        if let Some(why) = bindings.iter().find_map(AclBinding::invalid) {
            return reject(codes::INVALID_REQUEST, why);
        }
        let new = bindings.iter().filter(|b| !self.acls.contains(b)).count();
        if self.acls.len() + new > MAX_ACLS {
            return reject(
                codes::POLICY_VIOLATION,
                format!("the cluster holds at most {MAX_ACLS} ACLs"),
            );
        }
        for b in bindings {
            self.acls.insert(b.clone());
        }
        Ok(CommandOutput::Done)
    }

    /// Removes what each filter matches, in order; each filter's result lists the bindings it
    /// removed.
    pub(super) fn apply_delete_acls(&mut self, filters: &[AclFilter]) -> CommandResult {
        let removed = filters
            .iter()
            .map(|f| self.acls.remove_matching(f))
            .collect();
        Ok(CommandOutput::AclsDeleted { removed })
    }
}
