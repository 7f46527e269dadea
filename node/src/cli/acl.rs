//! `brook acl add|list|remove`: ACL administration over the Kafka protocol (CreateAcls,
//! DescribeAcls and DeleteAcls v3), with the flag names of Kafka's `kafka-acls.sh`.
//!
//! Two departures from kafka-acls, both towards doing less by accident: `add` needs an
//! `--operation` (kafka-acls grants ALL when it is left out), and in `remove` a flag left out
//! matches anything (kafka-acls removes only ALL from the given principals), so `remove` with
//! the flags of an `add` removes at least what that `add` made.

use anyhow::bail;
use brook_raft::acl::{
    AclOperation, PatternType, Permission, ResourceType, ANY, CLUSTER_NAME, MATCH, WILDCARD,
};
use clap::{Args, Subcommand};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{
    ApiKey, CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest, RequestKind, ResponseKind,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::output::{error_text, render_table};
use crate::client::Client;

/// The version of the three ACL requests: the newest the broker serves.
const VERSION: i16 = 3;

/// What a SECURITY_DISABLED answer means for the operator.
const NO_AUTHORIZER: &str = "the cluster has no authorizer: set authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer";

const HEADERS: [&str; 7] = [
    "RESOURCE TYPE",
    "PATTERN TYPE",
    "NAME",
    "PRINCIPAL",
    "HOST",
    "OPERATION",
    "PERMISSION",
];

#[derive(Debug, Subcommand)]
pub enum AclCommand {
    /// Add ACLs: one for each principal, host, operation and resource given.
    Add(ChangeArgs),
    /// List ACLs: every one, or those on the resources given, or of a principal.
    List(ListArgs),
    /// Remove the ACLs that match the flags (a flag left out matches anything) and print them.
    Remove(ChangeArgs),
}

/// The resources an ACL command is about.
#[derive(Debug, Args)]
pub struct ResourceArgs {
    /// A topic (repeatable).
    #[arg(long = "topic", value_name = "TOPIC")]
    topics: Vec<String>,
    /// A consumer group (repeatable).
    #[arg(long = "group", value_name = "GROUP")]
    groups: Vec<String>,
    /// The cluster (its one resource name is `kafka-cluster`).
    #[arg(long)]
    cluster: bool,
    /// A transactional id (repeatable).
    #[arg(long = "transactional-id", value_name = "ID")]
    transactional_ids: Vec<String>,
    /// How resource names are matched: literal or prefixed; list and remove also take any and
    /// match. Default: literal (list without a resource: any).
    #[arg(long, value_name = "TYPE", value_parser = pattern_type)]
    resource_pattern_type: Option<i8>,
}

#[derive(Debug, Args)]
pub struct ChangeArgs {
    #[command(flatten)]
    resource: ResourceArgs,
    /// A principal to allow, TYPE:NAME such as User:alice (repeatable).
    #[arg(long = "allow-principal", value_name = "PRINCIPAL", value_parser = principal)]
    allow_principals: Vec<String>,
    /// A principal to deny (repeatable).
    #[arg(long = "deny-principal", value_name = "PRINCIPAL", value_parser = principal)]
    deny_principals: Vec<String>,
    /// A host the allowed principals may connect from (repeatable). Default: `*` for add,
    /// any host for remove.
    #[arg(long = "allow-host", value_name = "HOST")]
    allow_hosts: Vec<String>,
    /// A host the denied principals are refused from (repeatable); the default is as for
    /// --allow-host.
    #[arg(long = "deny-host", value_name = "HOST")]
    deny_hosts: Vec<String>,
    /// An operation: Read, Write, Create, Delete, Alter, Describe, ClusterAction,
    /// DescribeConfigs, AlterConfigs, IdempotentWrite or All, in any case (repeatable).
    #[arg(long = "operation", value_name = "OPERATION", value_parser = operation)]
    operations: Vec<AclOperation>,
    /// Kafka's producer ACLs: WRITE, DESCRIBE and CREATE on the topics, WRITE and DESCRIBE on
    /// the transactional ids.
    #[arg(long, conflicts_with_all = ["operations", "deny_principals", "deny_hosts"])]
    producer: bool,
    /// Kafka's consumer ACLs: READ and DESCRIBE on the topics, READ on the groups.
    #[arg(long, conflicts_with_all = ["operations", "deny_principals", "deny_hosts"])]
    consumer: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    resource: ResourceArgs,
    /// Only the ACLs of this principal, TYPE:NAME.
    #[arg(long, value_name = "PRINCIPAL", value_parser = principal)]
    principal: Option<String>,
}

pub async fn run(command: AclCommand, bootstrap: &str) -> anyhow::Result<()> {
    match command {
        AclCommand::Add(args) => add(bootstrap, &args).await,
        AclCommand::List(args) => list(bootstrap, &args).await,
        AclCommand::Remove(args) => remove(bootstrap, &args).await,
    }
}

/// A resource named by the flags.
#[derive(Debug, Clone, PartialEq)]
struct Resource {
    resource_type: ResourceType,
    name: String,
}

impl ResourceArgs {
    fn resources(&self) -> Vec<Resource> {
        let named = |resource_type, names: &[String]| {
            names
                .iter()
                .map(|name| Resource {
                    resource_type,
                    name: name.clone(),
                })
                .collect::<Vec<_>>()
        };
        let mut out = named(ResourceType::Topic, &self.topics);
        out.extend(named(ResourceType::Group, &self.groups));
        if self.cluster {
            out.extend(named(ResourceType::Cluster, &[CLUSTER_NAME.to_string()]));
        }
        out.extend(named(
            ResourceType::TransactionalId,
            &self.transactional_ids,
        ));
        out
    }
}

/// An access-control entry of the flags; `None` matches any (remove only).
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    principal: Option<String>,
    host: Option<String>,
    permission: Option<Permission>,
}

impl ChangeArgs {
    /// The operations for each resource: the --operation flags, or those of --producer and
    /// --consumer. An empty list means any operation (remove only).
    fn plan(&self, adding: bool) -> anyhow::Result<Vec<(Resource, Vec<AclOperation>)>> {
        let resources = self.resource.resources();
        if resources.is_empty() {
            bail!("give a resource: --topic, --group, --cluster or --transactional-id");
        }
        if !self.producer && !self.consumer {
            if adding && self.operations.is_empty() {
                bail!("give the operations to allow or deny, e.g. --operation Read (or --producer, --consumer)");
            }
            if adding {
                for r in &resources {
                    for op in &self.operations {
                        if *op != AclOperation::All
                            && !AclOperation::on(r.resource_type).contains(op)
                        {
                            bail!(
                                "{} is not an operation on a {} (it has {})",
                                operation_name(*op),
                                resource_type_name(r.resource_type),
                                AclOperation::on(r.resource_type)
                                    .iter()
                                    .map(|o| operation_name(*o))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            );
                        }
                    }
                }
            }
            return Ok(resources
                .into_iter()
                .map(|r| (r, dedup(self.operations.clone())))
                .collect());
        }
        let r = &self.resource;
        if self.producer && r.topics.is_empty() {
            bail!("with --producer give a --topic");
        }
        if self.consumer && (r.topics.is_empty() || r.groups.is_empty()) {
            bail!("with --consumer give a --topic and a --group");
        }
        use AclOperation as O;
        let mut plan = Vec::new();
        for resource in resources {
            let mut ops = Vec::new();
            match resource.resource_type {
                ResourceType::Topic if self.producer => {
                    ops.extend([O::Write, O::Describe, O::Create])
                }
                ResourceType::TransactionalId if self.producer => {
                    ops.extend([O::Write, O::Describe])
                }
                _ => {}
            }
            match resource.resource_type {
                ResourceType::Topic if self.consumer => ops.extend([O::Read, O::Describe]),
                ResourceType::Group if self.consumer => ops.push(O::Read),
                _ => {}
            }
            if ops.is_empty() {
                bail!(
                    "--producer and --consumer set no ACL on the {} `{}`",
                    resource_type_name(resource.resource_type),
                    resource.name
                );
            }
            plan.push((resource, dedup(ops)));
        }
        Ok(plan)
    }

    /// The entries of the principal and host flags. `default_host` is the host of a principal
    /// given without hosts (`None`: any host).
    fn entries(&self, default_host: Option<&str>) -> anyhow::Result<Vec<Entry>> {
        let mut out = Vec::new();
        for (principals, hosts, permission, flags) in [
            (
                &self.allow_principals,
                &self.allow_hosts,
                Permission::Allow,
                ("--allow-host", "--allow-principal"),
            ),
            (
                &self.deny_principals,
                &self.deny_hosts,
                Permission::Deny,
                ("--deny-host", "--deny-principal"),
            ),
        ] {
            if principals.is_empty() && !hosts.is_empty() {
                bail!("{} needs a {}", flags.0, flags.1);
            }
            let hosts: Vec<Option<String>> = if hosts.is_empty() {
                vec![default_host.map(str::to_owned)]
            } else {
                hosts.iter().cloned().map(Some).collect()
            };
            for p in principals {
                for h in &hosts {
                    out.push(Entry {
                        principal: Some(p.clone()),
                        host: h.clone(),
                        permission: Some(permission),
                    });
                }
            }
        }
        Ok(dedup(out))
    }
}

/// `items` without repeats, in first-seen order.
fn dedup<T: PartialEq>(items: Vec<T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(items.len());
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

async fn add(bootstrap: &str, args: &ChangeArgs) -> anyhow::Result<()> {
    let pattern_type = args
        .resource
        .resource_pattern_type
        .unwrap_or(PatternType::Literal.code());
    if PatternType::from_code(pattern_type).is_none() {
        bail!("add needs --resource-pattern-type literal or prefixed");
    }
    let plan = args.plan(true)?;
    let entries = args.entries(Some(WILDCARD))?;
    if entries.is_empty() {
        bail!("give a principal: --allow-principal or --deny-principal");
    }
    let mut creations = Vec::new();
    for (resource, ops) in &plan {
        for entry in &entries {
            for op in ops {
                creations.push(
                    AclCreation::default()
                        .with_resource_type(resource.resource_type.code())
                        .with_resource_name(text(&resource.name))
                        .with_resource_pattern_type(pattern_type)
                        .with_principal(text(entry.principal.as_deref().unwrap_or_default()))
                        .with_host(text(entry.host.as_deref().unwrap_or(WILDCARD)))
                        .with_operation(op.code())
                        .with_permission_type(entry.permission.map_or(ANY, Permission::code)),
                );
            }
        }
    }
    let mut client = Client::admin(bootstrap).await?;
    let request = CreateAclsRequest::default().with_creations(creations.clone());
    let ResponseKind::CreateAcls(response) = client
        .call(
            ApiKey::CreateAcls,
            VERSION,
            RequestKind::CreateAcls(request),
        )
        .await?
    else {
        bail!("unexpected response to CreateAcls");
    };
    if response.results.len() != creations.len() {
        bail!(
            "CreateAcls answered {} results for {} ACLs",
            response.results.len(),
            creations.len()
        );
    }
    if response
        .results
        .iter()
        .any(|r| r.error_code == ResponseError::SecurityDisabled.code())
    {
        bail!(NO_AUTHORIZER);
    }
    let mut added = Vec::new();
    let mut failed = 0;
    for (c, r) in creations.iter().zip(&response.results) {
        let row = row(
            c.resource_type,
            &c.resource_name,
            c.resource_pattern_type,
            &c.principal,
            &c.host,
            c.operation,
            c.permission_type,
        );
        if r.error_code == 0 {
            added.push(row);
        } else {
            failed += 1;
            eprintln!(
                "Could not add {}: {}",
                row.join(" "),
                error_text(r.error_code, r.error_message.as_ref())
            );
        }
    }
    if !added.is_empty() {
        println!("Added {} ACL(s):", added.len());
        print!("{}", render_table(&HEADERS, &added));
    }
    if failed > 0 {
        bail!("{failed} of {} ACLs were not added", creations.len());
    }
    Ok(())
}

async fn remove(bootstrap: &str, args: &ChangeArgs) -> anyhow::Result<()> {
    let pattern_type = args
        .resource
        .resource_pattern_type
        .unwrap_or(PatternType::Literal.code());
    let plan = args.plan(false)?;
    let mut entries = args.entries(None)?;
    if entries.is_empty() {
        entries.push(Entry {
            principal: None,
            host: None,
            permission: None,
        });
    }
    let mut filters = Vec::new();
    for (resource, ops) in &plan {
        let ops: Vec<i8> = if ops.is_empty() {
            vec![ANY]
        } else {
            ops.iter().map(|o| o.code()).collect()
        };
        for entry in &entries {
            for op in &ops {
                filters.push(
                    DeleteAclsFilter::default()
                        .with_resource_type_filter(resource.resource_type.code())
                        .with_resource_name_filter(Some(text(&resource.name)))
                        .with_pattern_type_filter(pattern_type)
                        .with_principal_filter(entry.principal.as_deref().map(text))
                        .with_host_filter(entry.host.as_deref().map(text))
                        .with_operation(*op)
                        .with_permission_type(entry.permission.map_or(ANY, Permission::code)),
                );
            }
        }
    }
    let count = filters.len();
    let mut client = Client::admin(bootstrap).await?;
    let request = DeleteAclsRequest::default().with_filters(filters);
    let ResponseKind::DeleteAcls(response) = client
        .call(
            ApiKey::DeleteAcls,
            VERSION,
            RequestKind::DeleteAcls(request),
        )
        .await?
    else {
        bail!("unexpected response to DeleteAcls");
    };
    if response.filter_results.len() != count {
        bail!(
            "DeleteAcls answered {} results for {count} filters",
            response.filter_results.len()
        );
    }
    if response
        .filter_results
        .iter()
        .any(|r| r.error_code == ResponseError::SecurityDisabled.code())
    {
        bail!(NO_AUTHORIZER);
    }
    let mut removed = Vec::new();
    let mut failed = 0;
    for result in &response.filter_results {
        if result.error_code != 0 {
            failed += 1;
            eprintln!(
                "Could not remove ACLs: {}",
                error_text(result.error_code, result.error_message.as_ref())
            );
        }
        for m in &result.matching_acls {
            let row = row(
                m.resource_type,
                &m.resource_name,
                m.pattern_type,
                &m.principal,
                &m.host,
                m.operation,
                m.permission_type,
            );
            if m.error_code != 0 {
                failed += 1;
                eprintln!(
                    "Could not remove {}: {}",
                    row.join(" "),
                    error_text(m.error_code, m.error_message.as_ref())
                );
            } else {
                removed.push(row);
            }
        }
    }
    let removed = dedup(removed);
    if removed.is_empty() {
        println!("No ACL matched.");
    } else {
        println!("Removed {} ACL(s):", removed.len());
        print!("{}", render_table(&HEADERS, &removed));
    }
    if failed > 0 {
        bail!("{failed} removal(s) failed");
    }
    Ok(())
}

async fn list(bootstrap: &str, args: &ListArgs) -> anyhow::Result<()> {
    let resources = args.resource.resources();
    // Without a resource every pattern type is listed; with one, kafka-acls' literal default.
    let pattern_type = args
        .resource
        .resource_pattern_type
        .unwrap_or(if resources.is_empty() {
            ANY
        } else {
            PatternType::Literal.code()
        });
    let filters: Vec<(i8, Option<StrBytes>)> = if resources.is_empty() {
        vec![(ANY, None)]
    } else {
        resources
            .iter()
            .map(|r| (r.resource_type.code(), Some(text(&r.name))))
            .collect()
    };
    let mut client = Client::admin(bootstrap).await?;
    let mut rows = Vec::new();
    for (resource_type, name) in filters {
        let request = DescribeAclsRequest::default()
            .with_resource_type_filter(resource_type)
            .with_resource_name_filter(name)
            .with_pattern_type_filter(pattern_type)
            .with_principal_filter(args.principal.as_deref().map(text))
            .with_host_filter(None)
            .with_operation(ANY)
            .with_permission_type(ANY);
        let ResponseKind::DescribeAcls(response) = client
            .call(
                ApiKey::DescribeAcls,
                VERSION,
                RequestKind::DescribeAcls(request),
            )
            .await?
        else {
            bail!("unexpected response to DescribeAcls");
        };
        if response.error_code == ResponseError::SecurityDisabled.code() {
            bail!(NO_AUTHORIZER);
        }
        if response.error_code != 0 {
            bail!(
                "listing ACLs: {}",
                error_text(response.error_code, response.error_message.as_ref())
            );
        }
        for resource in &response.resources {
            for acl in &resource.acls {
                rows.push(row(
                    resource.resource_type,
                    &resource.resource_name,
                    resource.pattern_type,
                    &acl.principal,
                    &acl.host,
                    acl.operation,
                    acl.permission_type,
                ));
            }
        }
    }
    let rows = dedup(rows);
    if rows.is_empty() {
        println!("No ACL matched.");
    } else {
        print!("{}", render_table(&HEADERS, &rows));
    }
    Ok(())
}

/// One ACL as a table row, with Kafka's enum names.
fn row(
    resource_type: i8,
    name: &str,
    pattern_type: i8,
    principal: &str,
    host: &str,
    operation: i8,
    permission: i8,
) -> Vec<String> {
    vec![
        ResourceType::from_code(resource_type).map_or_else(
            || code_name(resource_type),
            |t| resource_type_name(t).into(),
        ),
        PatternType::from_code(pattern_type)
            .map_or_else(|| code_name(pattern_type), |p| pattern_type_name(p).into()),
        name.to_string(),
        principal.to_string(),
        host.to_string(),
        AclOperation::from_code(operation)
            .map_or_else(|| code_name(operation), |o| operation_name(o).into()),
        Permission::from_code(permission)
            .map_or_else(|| code_name(permission), |p| permission_name(p).into()),
    ]
}

/// The name of a code no concrete value has: Kafka's ANY, MATCH, or the number.
fn code_name(code: i8) -> String {
    match code {
        ANY => "ANY".into(),
        MATCH => "MATCH".into(),
        other => format!("UNKNOWN({other})"),
    }
}

fn resource_type_name(t: ResourceType) -> &'static str {
    match t {
        ResourceType::Topic => "TOPIC",
        ResourceType::Group => "GROUP",
        ResourceType::Cluster => "CLUSTER",
        ResourceType::TransactionalId => "TRANSACTIONAL_ID",
        ResourceType::DelegationToken => "DELEGATION_TOKEN",
        ResourceType::User => "USER",
    }
}

fn pattern_type_name(p: PatternType) -> &'static str {
    match p {
        PatternType::Literal => "LITERAL",
        PatternType::Prefixed => "PREFIXED",
    }
}

fn permission_name(p: Permission) -> &'static str {
    match p {
        Permission::Allow => "ALLOW",
        Permission::Deny => "DENY",
    }
}

fn operation_name(o: AclOperation) -> &'static str {
    match o {
        AclOperation::All => "ALL",
        AclOperation::Read => "READ",
        AclOperation::Write => "WRITE",
        AclOperation::Create => "CREATE",
        AclOperation::Delete => "DELETE",
        AclOperation::Alter => "ALTER",
        AclOperation::Describe => "DESCRIBE",
        AclOperation::ClusterAction => "CLUSTER_ACTION",
        AclOperation::DescribeConfigs => "DESCRIBE_CONFIGS",
        AclOperation::AlterConfigs => "ALTER_CONFIGS",
        AclOperation::IdempotentWrite => "IDEMPOTENT_WRITE",
        AclOperation::CreateTokens => "CREATE_TOKENS",
        AclOperation::DescribeTokens => "DESCRIBE_TOKENS",
    }
}

/// `name` without case, underscores or dashes, so that Kafka's CamelCase (`DescribeConfigs`)
/// and SNAKE (`DESCRIBE_CONFIGS`) forms compare equal.
fn squash(name: &str) -> String {
    name.chars()
        .filter(|c| *c != '_' && *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Parses `--operation`.
fn operation(text: &str) -> Result<AclOperation, String> {
    let wanted = squash(text.trim());
    AclOperation::ALL
        .iter()
        .copied()
        .find(|o| squash(operation_name(*o)) == wanted)
        .ok_or_else(|| {
            format!("unknown operation `{text}` (Read, Write, Create, Delete, Alter, Describe, ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite, All)")
        })
}

/// Parses `--resource-pattern-type` into Kafka's code.
fn pattern_type(text: &str) -> Result<i8, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "any" => Ok(ANY),
        "match" => Ok(MATCH),
        "literal" => Ok(PatternType::Literal.code()),
        "prefixed" => Ok(PatternType::Prefixed.code()),
        _ => Err(format!(
            "unknown pattern type `{text}` (literal, prefixed, any, match)"
        )),
    }
}

/// Parses a principal, `TYPE:NAME` as Kafka writes it (`User:alice`).
fn principal(text: &str) -> Result<String, String> {
    match text.split_once(':') {
        Some((kind, name)) if !kind.is_empty() && !name.is_empty() => Ok(text.to_string()),
        _ => Err(format!(
            "a principal is TYPE:NAME, e.g. User:alice, not `{text}`"
        )),
    }
}

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        command: AclCommand,
    }

    fn change(args: &[&str]) -> ChangeArgs {
        let argv = std::iter::once("acl").chain(args.iter().copied());
        match Cli::try_parse_from(argv).map(|c| c.command) {
            Ok(AclCommand::Add(a) | AclCommand::Remove(a)) => a,
            other => panic!("not a change: {:?}", other.err()),
        }
    }

    #[test]
    fn operations_parse_in_camel_and_snake_case() {
        assert_eq!(operation("Read"), Ok(AclOperation::Read));
        assert_eq!(
            operation("DescribeConfigs"),
            Ok(AclOperation::DescribeConfigs)
        );
        assert_eq!(
            operation("IDEMPOTENT_WRITE"),
            Ok(AclOperation::IdempotentWrite)
        );
        assert_eq!(operation("all"), Ok(AclOperation::All));
        assert!(operation("Any").is_err());
        assert!(operation("Reed").is_err());
    }

    #[test]
    fn add_makes_one_binding_per_principal_host_operation_and_resource() {
        let a = change(&[
            "add",
            "--allow-principal",
            "User:alice",
            "--deny-principal",
            "User:eve",
            "--deny-host",
            "10.0.0.1",
            "--operation",
            "Read",
            "--operation",
            "Describe",
            "--topic",
            "t",
            "--group",
            "g",
        ]);
        let plan = a.plan(true).unwrap();
        assert_eq!(plan.len(), 2);
        let entries = a.entries(Some(WILDCARD)).unwrap();
        assert_eq!(
            entries,
            vec![
                Entry {
                    principal: Some("User:alice".into()),
                    host: Some("*".into()),
                    permission: Some(Permission::Allow),
                },
                Entry {
                    principal: Some("User:eve".into()),
                    host: Some("10.0.0.1".into()),
                    permission: Some(Permission::Deny),
                },
            ]
        );
        // WRITE is not an operation on a group.
        let bad = change(&[
            "add",
            "--allow-principal",
            "User:a",
            "--operation",
            "Write",
            "--group",
            "g",
        ]);
        assert!(bad.plan(true).is_err());
        // add needs an operation; remove does not.
        let bare = change(&["add", "--allow-principal", "User:a", "--topic", "t"]);
        assert!(bare.plan(true).is_err());
        assert_eq!(bare.plan(false).unwrap()[0].1, vec![]);
    }

    #[test]
    fn producer_and_consumer_sets() {
        let a = change(&[
            "add",
            "--allow-principal",
            "User:a",
            "--producer",
            "--consumer",
            "--topic",
            "t",
            "--group",
            "g",
        ]);
        use AclOperation as O;
        let plan = a.plan(true).unwrap();
        assert_eq!(plan[0].1, vec![O::Write, O::Describe, O::Create, O::Read]);
        assert_eq!(plan[1].1, vec![O::Read]);
        let no_group = change(&[
            "add",
            "--allow-principal",
            "User:a",
            "--consumer",
            "--topic",
            "t",
        ]);
        assert!(no_group.plan(true).is_err());
        assert!(Cli::try_parse_from([
            "acl",
            "add",
            "--producer",
            "--operation",
            "Read",
            "--topic",
            "t"
        ])
        .is_err());
    }

    #[test]
    fn principals_and_pattern_types_are_checked() {
        assert!(principal("alice").is_err());
        assert!(principal("User:").is_err());
        assert_eq!(principal("User:a:b"), Ok("User:a:b".into()));
        assert_eq!(pattern_type("PREFIXED"), Ok(4));
        assert_eq!(pattern_type("match"), Ok(MATCH));
        assert!(pattern_type("glob").is_err());
        let hosts_only = change(&["remove", "--allow-host", "h", "--topic", "t"]);
        assert!(hosts_only.entries(None).is_err());
    }
}
