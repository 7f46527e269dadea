//! Who may do what: Kafka's ACL authorizer over the bindings kept in the metadata.
//!
//! Without `authorizer.class.name` every request is allowed, as in Kafka. With it, brook's own
//! nodes (authenticated with the cluster secret) and `super.users` may do anything; anyone
//! else needs an ACL, and a resource no ACL names is open only when
//! `allow.everyone.if.no.acl.found` says so.

use brook_raft::acl::{AclOperation, Action, ResourceType, Verdict, CLUSTER_NAME};

use super::Principal;
use crate::config::BrokerConfig;
use crate::metadata::Metadata;

/// Kafka's sentinel for "authorized operations were not asked for".
pub(crate) const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;

/// A principal, as a request arrives with it, and where from.
#[derive(Clone, Copy)]
pub(crate) struct Requester<'a> {
    pub principal: &'a Principal,
    /// The client's address as Kafka shows it (`/127.0.0.1`).
    pub host: &'a str,
}

pub(crate) struct Authorizer<'a> {
    pub config: &'a BrokerConfig,
    pub metadata: &'a Metadata,
}

impl Authorizer<'_> {
    pub fn enabled(&self) -> bool {
        self.config.authorizer
    }

    /// Whether `who` may do `operation` on the resource.
    pub fn allows(
        &self,
        who: Requester<'_>,
        operation: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        if !self.config.authorizer || self.is_super(who.principal) {
            return true;
        }
        let principal = who.principal.to_string();
        let action = Action {
            principal: &principal,
            host: who.host.trim_start_matches('/'),
            operation,
            resource_type,
            name,
        };
        match self.metadata.acls(|acls| acls.decide(&action)) {
            Verdict::Allowed => true,
            Verdict::Denied => false,
            Verdict::NoAcls => self.config.allow_if_no_acl,
        }
    }

    /// Whether `who` may do `operation` on some resource of the type (KIP-679).
    pub fn allows_some(
        &self,
        who: Requester<'_>,
        operation: AclOperation,
        resource_type: ResourceType,
    ) -> bool {
        if !self.config.authorizer || self.is_super(who.principal) {
            return true;
        }
        let principal = who.principal.to_string();
        let host = who.host.trim_start_matches('/');
        self.metadata.acls(|acls| {
            acls.allows_some(&principal, host, operation, resource_type)
                || (self.config.allow_if_no_acl && acls.is_empty())
        })
    }

    /// Whether `who` may do `operation` on the cluster.
    pub fn allows_on_cluster(&self, who: Requester<'_>, operation: AclOperation) -> bool {
        self.allows(who, operation, ResourceType::Cluster, CLUSTER_NAME)
    }

    /// Kafka's authorized-operations bit set: bit `code` for each operation on the resource
    /// that `who` may do.
    pub fn operations(&self, who: Requester<'_>, resource_type: ResourceType, name: &str) -> i32 {
        AclOperation::on(resource_type)
            .iter()
            .filter(|op| self.allows(who, **op, resource_type, name))
            .fold(0, |bits, op| bits | (1 << op.code()))
    }

    /// Whether `who` may read or change SCRAM credentials: the cluster permission with an
    /// authorizer; without one, `super.users` while it is set (stricter than Kafka, which
    /// lets anyone).
    pub fn manages_credentials(&self, who: Requester<'_>, operation: AclOperation) -> bool {
        if self.config.authorizer {
            self.allows_on_cluster(who, operation)
        } else {
            self.config.super_users.is_empty() || self.is_super(who.principal)
        }
    }

    fn is_super(&self, principal: &Principal) -> bool {
        matches!(principal, Principal::Node(_))
            || self
                .config
                .super_users
                .iter()
                .any(|p| *p == principal.to_string())
    }
}
