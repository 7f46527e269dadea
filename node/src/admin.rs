//! `brook topic ...`: admin commands that speak the Kafka protocol to any node, as Kafka's own
//! tools do.

use anyhow::{bail, Context};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, DeleteTopicsRequest, DescribeConfigsRequest, MetadataRequest,
    MetadataResponse, RequestHeader, RequestKind, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A connection to one node, sending one request at a time.
pub struct AdminClient {
    stream: TcpStream,
    correlation_id: i32,
}

impl AdminClient {
    pub async fn connect(bootstrap: &str) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(bootstrap)
            .await
            .with_context(|| format!("connecting to {bootstrap}"))?;
        Ok(AdminClient {
            stream,
            correlation_id: 0,
        })
    }

    pub async fn call(
        &mut self,
        key: ApiKey,
        version: i16,
        body: RequestKind,
    ) -> anyhow::Result<ResponseKind> {
        self.correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("brook-admin")));
        let frame = brook_wire::response::encode_request(&header, &body)?;
        self.stream.write_all(&frame).await?;
        let len = self.stream.read_i32().await.context("reading response")?;
        let len = usize::try_from(len).context("negative response length")?;
        let mut buf = vec![0u8; len];
        self.stream.read_exact(&mut buf).await?;
        let (correlation_id, response) =
            brook_wire::response::decode_response(key, version, bytes::Bytes::from(buf))?;
        if correlation_id != self.correlation_id {
            bail!(
                "response to request {correlation_id}, expected {}",
                self.correlation_id
            );
        }
        Ok(response)
    }

    pub async fn metadata(
        &mut self,
        topics: Option<Vec<String>>,
    ) -> anyhow::Result<MetadataResponse> {
        let topics = topics.map(|names| {
            names
                .into_iter()
                .map(|n| MetadataRequestTopic::default().with_name(Some(topic_name(n))))
                .collect()
        });
        let request = MetadataRequest::default()
            .with_topics(topics)
            .with_allow_auto_topic_creation(false);
        match self
            .call(ApiKey::Metadata, 12, RequestKind::Metadata(request))
            .await?
        {
            ResponseKind::Metadata(r) => Ok(r),
            other => bail!("unexpected response {other:?}"),
        }
    }
}

fn topic_name(name: String) -> TopicName {
    TopicName(StrBytes::from_string(name))
}

fn check(code: i16, message: Option<&StrBytes>, what: &str) -> anyhow::Result<()> {
    if code == 0 {
        return Ok(());
    }
    let error = ResponseError::try_from_code(code)
        .map_or_else(|| format!("error {code}"), |e| format!("{e:?}"));
    match message {
        Some(m) => bail!("{what}: {error}: {}", m.as_str()),
        None => bail!("{what}: {error}"),
    }
}

pub async fn create_topic(
    bootstrap: &str,
    name: &str,
    partitions: i32,
    replication_factor: i16,
    configs: &[(String, String)],
) -> anyhow::Result<()> {
    let mut client = AdminClient::connect(bootstrap).await?;
    let topic = CreatableTopic::default()
        .with_name(topic_name(name.to_string()))
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

pub async fn delete_topic(bootstrap: &str, name: &str) -> anyhow::Result<()> {
    let mut client = AdminClient::connect(bootstrap).await?;
    let request = DeleteTopicsRequest::default()
        .with_topics(vec![
            DeleteTopicState::default().with_name(Some(topic_name(name.to_string())))
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

pub async fn list_topics(bootstrap: &str) -> anyhow::Result<()> {
    let mut client = AdminClient::connect(bootstrap).await?;
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
pub async fn describe_topics(bootstrap: &str, name: Option<&str>) -> anyhow::Result<()> {
    let mut client = AdminClient::connect(bootstrap).await?;
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
