//! `brook topic create|list|describe|delete`, over the Kafka protocol as Kafka's
//! `kafka-topics.sh` does it.

use anyhow::bail;
use clap::Subcommand;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, DeleteTopicsRequest, DescribeConfigsRequest, RequestKind,
    ResponseKind,
};
use kafka_protocol::protocol::StrBytes;

use super::key_value;
use super::output::check;
use crate::client::{topic_name, Client};

#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    Create {
        name: String,
        #[arg(long, default_value_t = -1)]
        partitions: i32,
        #[arg(long, default_value_t = -1)]
        replication_factor: i16,
        /// A topic config, e.g. --config retention.ms=60000 (repeatable).
        #[arg(long = "config", value_name = "KEY=VALUE", value_parser = key_value)]
        configs: Vec<(String, String)>,
    },
    List,
    Describe {
        name: Option<String>,
    },
    Delete {
        name: String,
    },
}

pub async fn run(command: TopicCommand, bootstrap: &str) -> anyhow::Result<()> {
    match command {
        TopicCommand::Create {
            name,
            partitions,
            replication_factor,
            configs,
        } => create(bootstrap, &name, partitions, replication_factor, &configs).await,
        TopicCommand::List => list(bootstrap).await,
        TopicCommand::Describe { name } => describe(bootstrap, name.as_deref()).await,
        TopicCommand::Delete { name } => delete(bootstrap, &name).await,
    }
}

pub async fn create(
    bootstrap: &str,
    name: &str,
    partitions: i32,
    replication_factor: i16,
    configs: &[(String, String)],
) -> anyhow::Result<()> {
    let mut client = Client::admin(bootstrap).await?;
    let topic = CreatableTopic::default()
        .with_name(topic_name(name))
        .with_num_partitions(partitions)
        .with_replication_factor(replication_factor)
        .with_configs(
            configs
                .iter()
                .map(|(k, v)| {
                    CreatableTopicConfig::default()
                        .with_name(StrBytes::from_string(k.clone()))
                        .with_value(Some(StrBytes::from_string(v.clone())))
                })
                .collect(),
        );
    let request = CreateTopicsRequest::default()
        .with_topics(vec![topic])
        .with_timeout_ms(30_000);
    let ResponseKind::CreateTopics(response) = client
        .call(ApiKey::CreateTopics, 7, RequestKind::CreateTopics(request))
        .await?
    else {
        bail!("unexpected response to CreateTopics");
    };
    for t in &response.topics {
        check(
            t.error_code,
            t.error_message.as_ref(),
            &format!("creating topic `{name}`"),
        )?;
    }
    println!("Created topic {name}.");
    Ok(())
}

pub async fn delete(bootstrap: &str, name: &str) -> anyhow::Result<()> {
    let mut client = Client::admin(bootstrap).await?;
    let request = DeleteTopicsRequest::default()
        .with_topics(vec![
            DeleteTopicState::default().with_name(Some(topic_name(name)))
        ])
        .with_timeout_ms(30_000);
    let ResponseKind::DeleteTopics(response) = client
        .call(ApiKey::DeleteTopics, 6, RequestKind::DeleteTopics(request))
        .await?
    else {
        bail!("unexpected response to DeleteTopics");
    };
    for t in &response.responses {
        check(
            t.error_code,
            t.error_message.as_ref(),
            &format!("deleting topic `{name}`"),
        )?;
    }
    println!("Deleted topic {name}.");
    Ok(())
}

pub async fn list(bootstrap: &str) -> anyhow::Result<()> {
    let mut client = Client::admin(bootstrap).await?;
    let response = client.metadata(None).await?;
    let mut names: Vec<_> = response
        .topics
        .iter()
        .filter_map(|t| t.name.as_ref().map(|n| n.to_string()))
        .collect();
    names.sort();
    for name in names {
        println!("{name}");
    }
    Ok(())
}

/// Prints topics in the layout of `kafka-topics.sh --describe`.
pub async fn describe(bootstrap: &str, name: Option<&str>) -> anyhow::Result<()> {
    let mut client = Client::admin(bootstrap).await?;
    let response = client.metadata(name.map(|n| vec![n.to_string()])).await?;
    let mut topics = response.topics;
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    for topic in topics {
        let topic_name = topic
            .name
            .as_ref()
            .map_or_else(String::new, |n| n.to_string());
        check(
            topic.error_code,
            None,
            &format!("describing topic `{topic_name}`"),
        )?;
        let request = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_string(topic_name.clone())),
        ]);
        let configs = match client
            .call(
                ApiKey::DescribeConfigs,
                4,
                RequestKind::DescribeConfigs(request),
            )
            .await?
        {
            ResponseKind::DescribeConfigs(r) => r
                .results
                .iter()
                .flat_map(|r| r.configs.iter())
                .filter(|c| c.config_source == 1)
                .map(|c| {
                    format!(
                        "{}={}",
                        c.name.as_str(),
                        c.value.as_ref().map_or("", |v| v.as_str())
                    )
                })
                .collect::<Vec<_>>()
                .join(","),
            _ => String::new(),
        };
        let replication = topic
            .partitions
            .first()
            .map_or(0, |p| p.replica_nodes.len());
        println!(
            "Topic: {topic_name}\tTopicId: {}\tPartitionCount: {}\tReplicationFactor: {replication}\tConfigs: {configs}",
            topic.topic_id,
            topic.partitions.len()
        );
        let mut partitions = topic.partitions;
        partitions.sort_by_key(|p| p.partition_index);
        for p in partitions {
            let ids = |v: &[kafka_protocol::messages::BrokerId]| {
                v.iter()
                    .map(|b| b.0.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            };
            println!(
                "\tTopic: {topic_name}\tPartition: {}\tLeader: {}\tReplicas: {}\tIsr: {}",
                p.partition_index,
                p.leader_id.0,
                ids(&p.replica_nodes),
                ids(&p.isr_nodes)
            );
        }
    }
    Ok(())
}
