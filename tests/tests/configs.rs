//! Cluster-wide dynamic broker configs (Kafka's resource name "", what `kafka-configs
//! --entity-default` sends; neither Python client can), on a three-node cluster with raw
//! requests: every node reports them with source DYNAMIC_DEFAULT_BROKER_CONFIG, topics without
//! their own value take them (a produce over the new message.max.bytes is refused), the legacy
//! AlterConfigs replaces the whole set, a static setting is refused, and a restarted node
//! still has them. Per-broker configs are driven by the AdminClients in
//! `tests/python/test_admin.py`.

// Test helpers outside #[test] functions unwrap too: a failure should stop the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, ensure, Result};
use brook_tests::cluster::{produce_with_acks, Cluster};
use brook_tests::*;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::{
    alter_configs_request, incremental_alter_configs_request, AlterConfigsRequest,
    DescribeConfigsRequest, IncrementalAlterConfigsRequest,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;

const TOPIC_RESOURCE: i8 = 2;
const BROKER_RESOURCE: i8 = 4;
const DYNAMIC_DEFAULT_BROKER_CONFIG: i8 = 3;
const MESSAGE_TOO_LARGE: i16 = 10;
const INVALID_REQUEST: i16 = 42;

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// IncrementalAlterConfigs SET on the cluster-wide defaults.
fn set_cluster_wide(conn: &mut RawConn, configs: &[(&str, &str)]) -> Result<i16> {
    let configs = configs
        .iter()
        .map(|(k, v)| {
            incremental_alter_configs_request::AlterableConfig::default()
                .with_name(text(k))
                .with_config_operation(0)
                .with_value(Some(text(v)))
        })
        .collect();
    let resource = incremental_alter_configs_request::AlterConfigsResource::default()
        .with_resource_type(BROKER_RESOURCE)
        .with_resource_name(text(""))
        .with_configs(configs);
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![resource]);
    let response = conn.call(1, &request)?;
    Ok(response.responses[0].error_code)
}

/// (value, source, read-only) of every config of a resource, as the connected node reports it.
fn describe(
    conn: &mut RawConn,
    resource_type: i8,
    name: &str,
) -> Result<BTreeMap<String, (String, i8, bool)>> {
    let resource = DescribeConfigsResource::default()
        .with_resource_type(resource_type)
        .with_resource_name(text(name))
        .with_configuration_keys(None);
    let request = DescribeConfigsRequest::default().with_resources(vec![resource]);
    let result = conn.call(4, &request)?.results.remove(0);
    ensure!(result.error_code == 0, "describe {name}: {result:?}");
    Ok(result
        .configs
        .into_iter()
        .map(|c| {
            let value = c.value.map(|v| v.to_string()).unwrap_or_default();
            (c.name.to_string(), (value, c.config_source, c.read_only))
        })
        .collect())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[test]
fn cluster_wide_broker_configs_reach_every_node_and_topic() -> Result<()> {
    let mut c = Cluster::start(3);
    let view = c.create_replicated_topic(1, "defaults", 1, 3, &[])?;
    let leader = view.leaders()[0];
    let code = set_cluster_wide(
        &mut c.conn(2)?,
        &[
            ("message.max.bytes", "2000"),
            ("log.retention.ms", "7200000"),
        ],
    )?;
    assert_eq!(code, 0);

    let dynamic = |value: &str| (value.to_string(), DYNAMIC_DEFAULT_BROKER_CONFIG, false);
    for id in c.ids() {
        wait_for(
            &format!("node {id} to apply the defaults"),
            EVENTUALLY,
            || {
                let broker = describe(&mut c.conn(id)?, BROKER_RESOURCE, &id.to_string())?;
                Ok((broker["message.max.bytes"] == dynamic("2000")).then_some(()))
            },
        )?;
        let mut conn = c.conn(id)?;
        let cluster_wide = describe(&mut conn, BROKER_RESOURCE, "")?;
        assert_eq!(
            cluster_wide,
            BTreeMap::from([
                ("log.retention.ms".to_string(), dynamic("7200000")),
                ("message.max.bytes".to_string(), dynamic("2000")),
            ])
        );
        let broker = describe(&mut conn, BROKER_RESOURCE, &id.to_string())?;
        assert!(broker["log.dirs"].2, "a static setting is read-only");
        let topic = describe(&mut conn, TOPIC_RESOURCE, "defaults")?;
        assert_eq!(
            (topic["retention.ms"].0.as_str(), topic["retention.ms"].1),
            ("7200000", DYNAMIC_DEFAULT_BROKER_CONFIG)
        );
    }

    // The topic sets no max.message.bytes: a 3000-byte batch is now too large.
    let batch = record_batch(
        &[&[b'x'; 3000][..]],
        2,
        NO_PRODUCER,
        -1,
        now_ms(),
        Compression::None,
    )?;
    let answer = produce_with_acks(&mut c.conn(leader)?, "defaults", -1, 30_000, &[(0, batch)])?;
    assert_eq!(answer[0].error_code, MESSAGE_TOO_LARGE);

    // Static settings do not change at run time.
    let refused = set_cluster_wide(&mut c.conn(1)?, &[("log.dirs", "/elsewhere")])?;
    assert_eq!(refused, INVALID_REQUEST);

    // The legacy AlterConfigs replaces the whole cluster-wide set.
    let only = alter_configs_request::AlterableConfig::default()
        .with_name(text("log.retention.ms"))
        .with_value(Some(text("3600000")));
    let resource = alter_configs_request::AlterConfigsResource::default()
        .with_resource_type(BROKER_RESOURCE)
        .with_resource_name(text(""))
        .with_configs(vec![only]);
    let response = c.conn(3)?.call(
        2,
        &AlterConfigsRequest::default().with_resources(vec![resource]),
    )?;
    assert_eq!(response.responses[0].error_code, 0);

    // A node that restarts reads them back from the Raft state.
    c.kill9(2);
    c.restart(2);
    wait_for("node 2 to report the replaced set", EVENTUALLY, || {
        let cluster_wide = describe(&mut c.conn(2)?, BROKER_RESOURCE, "")?;
        let want = BTreeMap::from([("log.retention.ms".to_string(), dynamic("3600000"))]);
        Ok((cluster_wide == want).then_some(()))
    })?;
    let broker = describe(&mut c.conn(2)?, BROKER_RESOURCE, "2")?;
    let max = broker
        .get("message.max.bytes")
        .ok_or_else(|| anyhow!("no message.max.bytes"))?;
    assert_eq!(max.0, "1048588", "back to the default once no longer set");
    Ok(())
}
