//! `brook config describe|set|delete`, like `kafka-configs.sh`: a topic's configs, a broker's
//! (`--broker N`, sent to that broker as Kafka's tools do) or the cluster-wide broker defaults
//! (`--broker-defaults`, Kafka's `--entity-default`), read with DescribeConfigs and changed with
//! IncrementalAlterConfigs.

use anyhow::bail;
use clap::{Args, Subcommand};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    ApiKey, DescribeConfigsRequest, IncrementalAlterConfigsRequest, RequestKind, ResponseKind,
};
use kafka_protocol::protocol::StrBytes;

use super::group::client::Cluster;
use super::key_value;
use super::output::{check, render_table};

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
/// Kafka's ConfigSource codes, as `kafka-configs` names them.
const SOURCES: [&str; 9] = [
    "UNKNOWN",
    "DYNAMIC_TOPIC_CONFIG",
    "DYNAMIC_BROKER_CONFIG",
    "DYNAMIC_DEFAULT_BROKER_CONFIG",
    "STATIC_BROKER_CONFIG",
    "DEFAULT_CONFIG",
    "DYNAMIC_BROKER_LOGGER_CONFIG",
    "CLIENT_METRICS_CONFIG",
    "GROUP_CONFIG",
];
const DEFAULT_CONFIG: i8 = 5;

/// Which configs: exactly one of a topic, a broker, or the cluster-wide broker defaults.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct Entity {
    #[arg(long)]
    pub topic: Option<String>,
    #[arg(long)]
    pub broker: Option<i32>,
    /// The cluster-wide broker defaults (Kafka's `--entity-default`).
    #[arg(long)]
    pub broker_defaults: bool,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Show the configs set (with --all, every config with its default).
    Describe {
        #[command(flatten)]
        entity: Entity,
        #[arg(long)]
        all: bool,
    },
    /// Set configs: KEY=VALUE ...
    Set {
        #[command(flatten)]
        entity: Entity,
        #[arg(value_parser = key_value, required = true)]
        configs: Vec<(String, String)>,
        /// Only check the change.
        #[arg(long)]
        validate_only: bool,
    },
    /// Return configs to their defaults: KEY ...
    Delete {
        #[command(flatten)]
        entity: Entity,
        #[arg(required = true)]
        keys: Vec<String>,
    },
}

pub async fn run(command: ConfigCommand, bootstrap: &str) -> anyhow::Result<()> {
    let mut cluster = Cluster::connect(bootstrap).await?;
    match command {
        ConfigCommand::Describe { entity, all } => {
            describe(&mut cluster, bootstrap, &entity, all).await
        }
        ConfigCommand::Set {
            entity,
            configs,
            validate_only,
        } => {
            let ops = configs.into_iter().map(|(k, v)| (k, Some(v), 0)).collect();
            alter(&mut cluster, bootstrap, &entity, ops, validate_only).await
        }
        ConfigCommand::Delete { entity, keys } => {
            let ops = keys.into_iter().map(|k| (k, None, 1)).collect();
            alter(&mut cluster, bootstrap, &entity, ops, false).await
        }
    }
}

/// The resource type and name, and the node to ask: a broker's own configs only it answers.
fn target(
    cluster: &Cluster,
    bootstrap: &str,
    entity: &Entity,
) -> anyhow::Result<(i8, String, String)> {
    match (&entity.topic, entity.broker) {
        (Some(topic), _) => Ok((TOPIC, topic.clone(), first(bootstrap))),
        (None, Some(id)) => match cluster.brokers.get(&id) {
            Some(node) => Ok((BROKER, id.to_string(), node.addr())),
            None => bail!("broker {id} is not a live broker of the cluster"),
        },
        (None, None) => Ok((BROKER, String::new(), first(bootstrap))),
    }
}

fn first(bootstrap: &str) -> String {
    bootstrap
        .split(',')
        .next()
        .unwrap_or(bootstrap)
        .trim()
        .to_string()
}

fn describe_what(resource_type: i8, name: &str) -> String {
    match (resource_type, name) {
        (TOPIC, name) => format!("topic {name}"),
        (_, "") => "the cluster-wide broker defaults".to_string(),
        (_, id) => format!("broker {id}"),
    }
}

async fn describe(
    cluster: &mut Cluster,
    bootstrap: &str,
    entity: &Entity,
    all: bool,
) -> anyhow::Result<()> {
    let (resource_type, name, addr) = target(cluster, bootstrap, entity)?;
    let request =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(StrBytes::from_string(name.clone()))
            .with_configuration_keys(None)]);
    let response = cluster
        .call(
            &addr,
            ApiKey::DescribeConfigs,
            4,
            RequestKind::DescribeConfigs(request),
        )
        .await?;
    let ResponseKind::DescribeConfigs(response) = response else {
        bail!("unexpected answer to DescribeConfigs");
    };
    let what = describe_what(resource_type, &name);
    let mut rows = Vec::new();
    for result in response.results {
        check(
            result.error_code,
            result.error_message.as_ref(),
            &format!("describing {what}"),
        )?;
        for c in result.configs {
            if !all && c.config_source == DEFAULT_CONFIG {
                continue;
            }
            let value = if c.is_sensitive {
                "(sensitive)".to_string()
            } else {
                c.value.map(|v| v.to_string()).unwrap_or_default()
            };
            let source = usize::try_from(c.config_source)
                .ok()
                .and_then(|s| SOURCES.get(s))
                .copied()
                .unwrap_or("UNKNOWN");
            let writable = if c.read_only { "read-only" } else { "dynamic" };
            rows.push(vec![
                c.name.to_string(),
                value,
                source.to_string(),
                writable.to_string(),
            ]);
        }
    }
    println!("Configs of {what}:");
    print!(
        "{}",
        render_table(&["NAME", "VALUE", "SOURCE", "CHANGE"], &rows)
    );
    Ok(())
}

/// IncrementalAlterConfigs with (name, value, operation) triples: 0 SET, 1 DELETE.
async fn alter(
    cluster: &mut Cluster,
    bootstrap: &str,
    entity: &Entity,
    ops: Vec<(String, Option<String>, i8)>,
    validate_only: bool,
) -> anyhow::Result<()> {
    let (resource_type, name, addr) = target(cluster, bootstrap, entity)?;
    let configs = ops
        .into_iter()
        .map(|(k, v, op)| {
            AlterableConfig::default()
                .with_name(StrBytes::from_string(k))
                .with_config_operation(op)
                .with_value(v.map(StrBytes::from_string))
        })
        .collect();
    let request = IncrementalAlterConfigsRequest::default()
        .with_validate_only(validate_only)
        .with_resources(vec![AlterConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(StrBytes::from_string(name.clone()))
            .with_configs(configs)]);
    let response = cluster
        .call(
            &addr,
            ApiKey::IncrementalAlterConfigs,
            1,
            RequestKind::IncrementalAlterConfigs(request),
        )
        .await?;
    let ResponseKind::IncrementalAlterConfigs(response) = response else {
        bail!("unexpected answer to IncrementalAlterConfigs");
    };
    let what = describe_what(resource_type, &name);
    for r in response.responses {
        check(
            r.error_code,
            r.error_message.as_ref(),
            &format!("changing {what}"),
        )?;
    }
    if validate_only {
        println!("The change to {what} is valid (nothing changed).");
    } else {
        println!("Changed the configs of {what}.");
    }
    Ok(())
}
