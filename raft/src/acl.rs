//! Kafka's ACL model: bindings of a resource pattern to an access-control entry, the filters
//! DescribeAcls and DeleteAcls select bindings with, and the rule an authorizer decides by
//! (Kafka's `StandardAuthorizer`): a matching DENY wins, then a matching ALLOW, and a resource
//! no ACL names at all falls back to `allow.everyone.if.no.acl.found`.
//!
//! The enums carry Kafka's wire codes. Bindings are kept by resource pattern, so deciding one
//! request costs lookups for the literal name, the literal wildcard and each prefix of the name,
//! never a scan of every ACL.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// The most ACL bindings the cluster holds.
pub const MAX_ACLS: usize = 10_000;
/// The longest resource name, principal and host an ACL may carry, in bytes.
pub const MAX_RESOURCE_NAME_BYTES: usize = 1_024;
pub const MAX_PRINCIPAL_BYTES: usize = 512;
pub const MAX_HOST_BYTES: usize = 256;
/// The literal name that matches every resource of its type, and the host and principal
/// wildcards.
pub const WILDCARD: &str = "*";
pub const WILDCARD_PRINCIPAL: &str = "User:*";
/// The one name of the cluster resource.
pub const CLUSTER_NAME: &str = "kafka-cluster";

macro_rules! kafka_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $code:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name { $($variant,)* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// Kafka's code.
            pub fn code(self) -> i8 {
                match self { $($name::$variant => $code,)* }
            }

            /// The value of a concrete Kafka code (not UNKNOWN or ANY).
            pub fn from_code(code: i8) -> Option<$name> {
                match code { $($code => Some($name::$variant),)* _ => None }
            }
        }
    };
}

kafka_enum!(
    /// Kafka's `ResourceType`.
    ResourceType {
        Topic = 2,
        Group = 3,
        Cluster = 4,
        TransactionalId = 5,
        DelegationToken = 6,
        User = 7,
    }
);

kafka_enum!(
    /// Kafka's `PatternType` of a stored binding.
    PatternType {
        Literal = 3,
        Prefixed = 4,
    }
);

kafka_enum!(
    /// Kafka's `AclOperation`.
    AclOperation {
        All = 2,
        Read = 3,
        Write = 4,
        Create = 5,
        Delete = 6,
        Alter = 7,
        Describe = 8,
        ClusterAction = 9,
        DescribeConfigs = 10,
        AlterConfigs = 11,
        IdempotentWrite = 12,
        CreateTokens = 13,
        DescribeTokens = 14,
    }
);

kafka_enum!(
    /// Kafka's `AclPermissionType`.
    Permission {
        Deny = 2,
        Allow = 3,
    }
);

/// Kafka's wire code for ANY in every ACL enum, and for MATCH among pattern types.
pub const ANY: i8 = 1;
pub const MATCH: i8 = 2;

impl AclOperation {
    /// Whether an ALLOW for `self` grants `wanted`: ALL grants everything, and READ, WRITE,
    /// DELETE and ALTER grant DESCRIBE, ALTER_CONFIGS grants DESCRIBE_CONFIGS.
    pub fn allows(self, wanted: AclOperation) -> bool {
        use AclOperation as O;
        self == wanted
            || self == O::All
            || (wanted == O::Describe && matches!(self, O::Read | O::Write | O::Delete | O::Alter))
            || (wanted == O::DescribeConfigs && self == O::AlterConfigs)
    }

    /// The operations Kafka defines on a resource type, which authorized-operation bit sets
    /// report on.
    pub fn on(resource: ResourceType) -> &'static [AclOperation] {
        use AclOperation as O;
        match resource {
            ResourceType::Topic => &[
                O::Read,
                O::Write,
                O::Create,
                O::Delete,
                O::Alter,
                O::Describe,
                O::DescribeConfigs,
                O::AlterConfigs,
            ],
            ResourceType::Group => &[O::Read, O::Delete, O::Describe],
            ResourceType::Cluster => &[
                O::Create,
                O::ClusterAction,
                O::DescribeConfigs,
                O::AlterConfigs,
                O::IdempotentWrite,
                O::Alter,
                O::Describe,
            ],
            ResourceType::TransactionalId => &[O::Describe, O::Write],
            ResourceType::DelegationToken => &[O::Describe],
            ResourceType::User => &[O::CreateTokens, O::DescribeTokens],
        }
    }
}

/// Resources named by a literal name or by a prefix.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ResourcePattern {
    pub resource_type: ResourceType,
    pub pattern_type: PatternType,
    pub name: String,
}

/// Who may (or may not) do what from where.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AccessEntry {
    /// `Type:name`, e.g. `User:alice`; `User:*` is every user.
    pub principal: String,
    /// An IP address, or `*`.
    pub host: String,
    pub operation: AclOperation,
    pub permission: Permission,
}

/// One ACL.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AclBinding {
    pub pattern: ResourcePattern,
    pub entry: AccessEntry,
}

impl AclBinding {
    /// Why the binding cannot be stored, in Kafka's words where Kafka has some.
    pub fn invalid(&self) -> Option<String> {
        let p = &self.pattern;
        let e = &self.entry;
        if p.name.is_empty() {
            return Some("Resource name should not be empty".into());
        }
        if p.resource_type == ResourceType::Cluster && p.name != CLUSTER_NAME {
            return Some(format!(
                "The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
            ));
        }
        if p.name.len() > MAX_RESOURCE_NAME_BYTES {
            return Some(format!(
                "a resource name has at most {MAX_RESOURCE_NAME_BYTES} bytes"
            ));
        }
        match e.principal.split_once(':') {
            Some((kind, name)) if !kind.is_empty() && !name.is_empty() => {}
            _ => return Some(format!("Could not parse principal from `{}`", e.principal)),
        }
        if e.principal.len() > MAX_PRINCIPAL_BYTES {
            return Some(format!(
                "a principal has at most {MAX_PRINCIPAL_BYTES} bytes"
            ));
        }
        if e.host.is_empty() || e.host.len() > MAX_HOST_BYTES {
            return Some(format!("a host has 1 to {MAX_HOST_BYTES} bytes"));
        }
        None
    }
}

/// Which bindings DescribeAcls and DeleteAcls select: `None` is ANY.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclFilter {
    pub resource_type: Option<ResourceType>,
    pub pattern: PatternFilter,
    pub name: Option<String>,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: Option<AclOperation>,
    pub permission: Option<Permission>,
}

/// How a filter selects resource patterns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PatternFilter {
    /// Any pattern type; a name must equal the pattern's.
    #[default]
    Any,
    /// Every pattern that would apply to a resource with the filter's name (literal, wildcard,
    /// or a prefix of it).
    Match,
    /// Exactly this pattern type.
    Exact(PatternType),
}

impl AclFilter {
    /// Kafka's `ResourcePatternFilter.matches` and `AccessControlEntryFilter.matches`.
    pub fn matches(&self, b: &AclBinding) -> bool {
        let (p, e) = (&b.pattern, &b.entry);
        let same = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        let resource = self.resource_type.is_none_or(|t| t == p.resource_type)
            && match (self.pattern, &self.name) {
                (PatternFilter::Exact(t), _) if t != p.pattern_type => false,
                (_, None) => true,
                (PatternFilter::Match, Some(name)) => match p.pattern_type {
                    PatternType::Literal => *name == p.name || p.name == WILDCARD,
                    PatternType::Prefixed => name.starts_with(&p.name),
                },
                (_, Some(name)) => *name == p.name,
            };
        resource
            && same(&self.principal, &e.principal)
            && same(&self.host, &e.host)
            && self.operation.is_none_or(|o| o == e.operation)
            && self.permission.is_none_or(|o| o == e.permission)
    }
}

/// A request to decide: `principal` (`User:alice`) from `host` wants `operation` on the
/// resource `name` of `resource_type`.
#[derive(Debug, Clone, Copy)]
pub struct Action<'a> {
    pub principal: &'a str,
    pub host: &'a str,
    pub operation: AclOperation,
    pub resource_type: ResourceType,
    pub name: &'a str,
}

/// What the ACLs say about an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    Denied,
    /// No ACL names the resource at all.
    NoAcls,
}

/// Every ACL binding, by resource type and pattern type, then by name: a name's literal and
/// prefix lookups borrow the name, and allocate nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acls {
    by_pattern: BTreeMap<(ResourceType, PatternType), BTreeMap<String, BTreeSet<AccessEntry>>>,
    count: usize,
}

impl Acls {
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Every binding, in pattern order.
    pub fn iter(&self) -> impl Iterator<Item = AclBinding> + '_ {
        self.patterns().flat_map(|(pattern, entries)| {
            entries.iter().map(move |entry| AclBinding {
                pattern: pattern.clone(),
                entry: entry.clone(),
            })
        })
    }

    /// Every resource pattern with its entries.
    fn patterns(&self) -> impl Iterator<Item = (ResourcePattern, &BTreeSet<AccessEntry>)> {
        self.by_pattern
            .iter()
            .flat_map(|(&(resource_type, pattern_type), names)| {
                names.iter().map(move |(name, entries)| {
                    let pattern = ResourcePattern {
                        resource_type,
                        pattern_type,
                        name: name.clone(),
                    };
                    (pattern, entries)
                })
            })
    }

    fn entries(&self, p: &ResourcePattern) -> Option<&BTreeSet<AccessEntry>> {
        self.by_pattern
            .get(&(p.resource_type, p.pattern_type))?
            .get(&p.name)
    }

    pub fn contains(&self, b: &AclBinding) -> bool {
        self.entries(&b.pattern)
            .is_some_and(|e| e.contains(&b.entry))
    }

    /// Adds a binding; `false` if it was there already.
    pub(crate) fn insert(&mut self, b: AclBinding) -> bool {
        let p = b.pattern;
        let added = self
            .by_pattern
            .entry((p.resource_type, p.pattern_type))
            .or_default()
            .entry(p.name)
            .or_default()
            .insert(b.entry);
        self.count += usize::from(added);
        added
    }

    /// Removes and returns every binding `filter` matches.
    pub(crate) fn remove_matching(&mut self, filter: &AclFilter) -> Vec<AclBinding> {
        let doomed: Vec<AclBinding> = self.iter().filter(|b| filter.matches(b)).collect();
        for b in &doomed {
            let p = &b.pattern;
            let key = (p.resource_type, p.pattern_type);
            let Some(names) = self.by_pattern.get_mut(&key) else {
                continue;
            };
            if let Some(entries) = names.get_mut(&p.name) {
                entries.remove(&b.entry);
                if entries.is_empty() {
                    names.remove(&p.name);
                }
            }
            if names.is_empty() {
                self.by_pattern.remove(&key);
            }
        }
        self.count -= doomed.len();
        doomed
    }

    /// Kafka's rule: any matching DENY denies; else any matching ALLOW allows; else the
    /// action is denied, or [`Verdict::NoAcls`] when no ACL names the resource.
    pub fn decide(&self, action: &Action<'_>) -> Verdict {
        let mut named = false;
        let mut allowed = false;
        for entries in self.applicable(action.resource_type, action.name) {
            named = true;
            for e in entries {
                let who = e.principal == action.principal
                    || (e.principal == WILDCARD_PRINCIPAL && action.principal.starts_with("User:"));
                if !who || (e.host != WILDCARD && e.host != action.host) {
                    continue;
                }
                match e.permission {
                    Permission::Deny
                        if e.operation == action.operation || e.operation == AclOperation::All =>
                    {
                        return Verdict::Denied;
                    }
                    Permission::Allow if e.operation.allows(action.operation) => allowed = true,
                    _ => {}
                }
            }
        }
        match (allowed, named) {
            (true, _) => Verdict::Allowed,
            (false, true) => Verdict::Denied,
            (false, false) => Verdict::NoAcls,
        }
    }

    /// Whether some resource of the type is open to the principal for `operation` (Kafka's
    /// `authorizeByResourceType`, KIP-679): an ALLOW on some pattern that no DENY overrides
    /// (a DENY on the literal wildcard overrides every one).
    pub fn allows_some(
        &self,
        principal: &str,
        host: &str,
        operation: AclOperation,
        resource_type: ResourceType,
    ) -> bool {
        self.patterns()
            .filter(|(p, _)| p.resource_type == resource_type)
            .any(|(p, entries)| {
                let action = Action {
                    principal,
                    host,
                    operation,
                    resource_type,
                    name: &p.name,
                };
                entries
                    .iter()
                    .any(|e| e.permission == Permission::Allow && e.operation.allows(operation))
                    && self.decide(&action) == Verdict::Allowed
            })
    }

    /// The entries of every pattern that applies to the resource: its literal name, the
    /// literal wildcard, and every prefixed pattern the name starts with (one lookup per
    /// prefix, so the cost follows the name's length, not the number of ACLs).
    fn applicable(&self, resource_type: ResourceType, name: &str) -> Vec<&BTreeSet<AccessEntry>> {
        let mut found = Vec::new();
        if let Some(literal) = self.by_pattern.get(&(resource_type, PatternType::Literal)) {
            found.extend(literal.get(name));
            if name != WILDCARD {
                found.extend(literal.get(WILDCARD));
            }
        }
        if let Some(prefixed) = self.by_pattern.get(&(resource_type, PatternType::Prefixed)) {
            let prefixes = name.char_indices().map(|(i, c)| &name[..i + c.len_utf8()]);
            found.extend(prefixes.filter_map(|prefix| prefixed.get(prefix)));
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(
        t: ResourceType,
        pattern_type: PatternType,
        name: &str,
        principal: &str,
        operation: AclOperation,
        permission: Permission,
    ) -> AclBinding {
        AclBinding {
            pattern: ResourcePattern {
                resource_type: t,
                pattern_type,
                name: name.into(),
            },
            entry: AccessEntry {
                principal: principal.into(),
                host: WILDCARD.into(),
                operation,
                permission,
            },
        }
    }

    fn action<'a>(principal: &'a str, operation: AclOperation, name: &'a str) -> Action<'a> {
        Action {
            principal,
            host: "127.0.0.1",
            operation,
            resource_type: ResourceType::Topic,
            name,
        }
    }

    use AclOperation as O;
    use PatternType::{Literal, Prefixed};
    use Permission::{Allow, Deny};
    use ResourceType::Topic;

    #[test]
    fn deny_beats_allow_and_implied_operations_allow_describe() {
        let mut acls = Acls::default();
        acls.insert(binding(
            Topic,
            Prefixed,
            "orders-",
            "User:*",
            O::Read,
            Allow,
        ));
        acls.insert(binding(
            Topic,
            Literal,
            "orders-eu",
            "User:eve",
            O::All,
            Deny,
        ));
        assert_eq!(acls.len(), 2);
        let decide = |p, o, n| acls.decide(&action(p, o, n));
        assert_eq!(decide("User:bob", O::Read, "orders-us"), Verdict::Allowed);
        assert_eq!(
            decide("User:bob", O::Describe, "orders-us"),
            Verdict::Allowed
        );
        assert_eq!(decide("User:bob", O::Write, "orders-us"), Verdict::Denied);
        assert_eq!(decide("User:eve", O::Read, "orders-eu"), Verdict::Denied);
        assert_eq!(decide("User:eve", O::Read, "orders-us"), Verdict::Allowed);
        assert_eq!(decide("User:bob", O::Read, "payments"), Verdict::NoAcls);
        assert!(acls.allows_some("User:bob", "127.0.0.1", O::Read, Topic));
        assert!(!acls.allows_some("User:bob", "127.0.0.1", O::Write, Topic));
        // A deny of DESCRIBE does not deny READ, as in Kafka.
        acls.insert(binding(Topic, Literal, "*", "User:bob", O::Describe, Deny));
        assert_eq!(
            acls.decide(&action("User:bob", O::Read, "orders-us")),
            Verdict::Allowed
        );
        assert_eq!(
            acls.decide(&action("User:bob", O::Describe, "orders-us")),
            Verdict::Denied
        );
    }

    #[test]
    fn filters_match_as_kafka_describes() {
        let mut acls = Acls::default();
        acls.insert(binding(Topic, Prefixed, "ord", "User:a", O::Read, Allow));
        acls.insert(binding(Topic, Literal, "orders", "User:b", O::Write, Allow));
        acls.insert(binding(Topic, Literal, "*", "User:c", O::Read, Allow));
        let count = |f: AclFilter| acls.iter().filter(|b| f.matches(b)).count();
        assert_eq!(count(AclFilter::default()), 3);
        let named = |pattern| AclFilter {
            name: Some("orders".into()),
            pattern,
            ..AclFilter::default()
        };
        assert_eq!(count(named(PatternFilter::Any)), 1);
        assert_eq!(count(named(PatternFilter::Match)), 3);
        assert_eq!(count(named(PatternFilter::Exact(Prefixed))), 0);
        let mut removed = acls.clone();
        let gone = removed.remove_matching(&AclFilter {
            principal: Some("User:a".into()),
            ..AclFilter::default()
        });
        assert_eq!(gone.len(), 1);
        assert_eq!(removed.len(), 2);
        assert!(!removed.contains(&gone[0]));
    }

    #[test]
    fn removed_bindings_no_longer_decide() {
        let mut acls = Acls::default();
        acls.insert(binding(Topic, Literal, "t", "User:bob", O::Write, Allow));
        assert_eq!(
            acls.decide(&action("User:bob", O::Describe, "t")),
            Verdict::Allowed
        );
        assert_eq!(acls.remove_matching(&AclFilter::default()).len(), 1);
        assert!(acls.is_empty());
        assert_eq!(
            acls.decide(&action("User:bob", O::Describe, "t")),
            Verdict::NoAcls
        );
    }

    #[test]
    fn bindings_are_validated() {
        let ok = binding(Topic, Literal, "t", "User:a", O::Read, Allow);
        assert!(ok.invalid().is_none());
        let mut bad = ok.clone();
        bad.entry.principal = "alice".into();
        assert!(bad.invalid().is_some());
        let mut bad = ok.clone();
        bad.pattern.resource_type = ResourceType::Cluster;
        assert!(bad.invalid().is_some());
        bad.pattern.name = CLUSTER_NAME.into();
        assert!(bad.invalid().is_none());
    }
}
