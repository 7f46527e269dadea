//! Several named listeners on every node of a three-node cluster, as a Kafka operator sets
//! them up: `INTERNAL` (PLAINTEXT, the inter-broker listener, advertised as 127.0.0.1) and
//! `CLIENT` (SASL_PLAINTEXT with PLAIN through `listener.name.client.sasl.enabled.mechanisms`,
//! advertised as `localhost`). Each listener enforces its own protocol, and Metadata,
//! FindCoordinator and DescribeCluster answer a client with the addresses of the listener it
//! came through, so a client on either one stays on it. Records produced with acks=all through
//! `CLIENT` are replicated over `INTERNAL` and read back through `INTERNAL`.

// Test helpers outside #[test] functions unwrap too: a failure should stop the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{ensure, Result};
use brook_tests::cluster::{
    cluster_secret, consume_to_ends, free_ports, metadata, TOPIC_ALREADY_EXISTS,
};
use brook_tests::*;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::{
    CreateTopicsRequest, DescribeClusterRequest, FindCoordinatorRequest, SaslAuthenticateRequest,
    SaslHandshakeRequest,
};
use kafka_protocol::protocol::StrBytes;

const USER: &str = "alice";
const PASSWORD: &str = "alice-secret";

struct Ports {
    internal: u16,
    client: u16,
    raft: u16,
}

/// Three nodes, each with an INTERNAL and a CLIENT listener.
fn start() -> (Vec<Broker>, Vec<Ports>) {
    let ports: Vec<Ports> = (0..3)
        .map(|_| Ports {
            internal: free_ports(1),
            client: free_ports(1),
            raft: free_ports(1),
        })
        .collect();
    let peers = ports
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{}@127.0.0.1:{}", i + 1, p.raft))
        .collect::<Vec<_>>()
        .join(",");
    let secret = cluster_secret();
    let brokers = std::thread::scope(|s| {
        let handles: Vec<_> = ports
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let mut o = BrokerOptions::default();
                o.node_id(i as i32 + 1)
                    .set(
                        "listeners",
                        format!(
                            "INTERNAL://127.0.0.1:{},CLIENT://127.0.0.1:{}",
                            p.internal, p.client
                        ),
                    )
                    .set(
                        "advertised.listeners",
                        format!(
                            "INTERNAL://127.0.0.1:{},CLIENT://localhost:{}",
                            p.internal, p.client
                        ),
                    )
                    .set(
                        "listener.security.protocol.map",
                        "INTERNAL:PLAINTEXT,CLIENT:SASL_PLAINTEXT",
                    )
                    .set("inter.broker.listener.name", "INTERNAL")
                    .set("listener.name.client.sasl.enabled.mechanisms", "PLAIN")
                    .set("brook.sasl.bootstrap.user", USER)
                    .set("brook.sasl.bootstrap.password", PASSWORD)
                    .set("brook.cluster.secret", &secret)
                    .set("brook.raft.listener", format!("127.0.0.1:{}", p.raft))
                    .set("controller.quorum.voters", &peers);
                s.spawn(move || Broker::try_start(o))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().unwrap())
            .collect()
    });
    (brokers, ports)
}

/// A raw connection to a CLIENT listener, logged in with PLAIN.
fn client_conn(port: u16) -> Result<RawConn> {
    let mut conn = RawConn::connect(("127.0.0.1", port))?;
    let handshake = conn.call(
        1,
        &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN")),
    )?;
    ensure!(handshake.error_code == 0, "handshake: {handshake:?}");
    let token = format!("\0{USER}\0{PASSWORD}").into_bytes();
    let auth = conn.call(
        2,
        &SaslAuthenticateRequest::default().with_auth_bytes(token.into()),
    )?;
    ensure!(auth.error_code == 0, "authentication: {auth:?}");
    Ok(conn)
}

fn internal_conn(port: u16) -> Result<RawConn> {
    RawConn::connect(("127.0.0.1", port))
}

/// What each listener advertises, by node id.
fn expected(ports: &[Ports], host: &str, port: impl Fn(&Ports) -> u16) -> BTreeMap<i32, String> {
    ports
        .iter()
        .enumerate()
        .map(|(i, p)| (i as i32 + 1, format!("{host}:{}", port(p))))
        .collect()
}

#[test]
fn each_listener_tells_clients_its_own_addresses() -> Result<()> {
    let (_brokers, ports) = start();
    let internal = expected(&ports, "127.0.0.1", |p| p.internal);
    let client = expected(&ports, "localhost", |p| p.client);

    // Metadata: the brokers as the caller's listener reaches them, on every node.
    for p in &ports {
        wait_for("every broker listed through INTERNAL", EVENTUALLY, || {
            let seen = metadata(&mut internal_conn(p.internal)?, Some(&[]))?.brokers;
            Ok((seen == internal).then_some(()))
        })?;
        wait_for("every broker listed through CLIENT", EVENTUALLY, || {
            let seen = metadata(&mut client_conn(p.client)?, Some(&[]))?.brokers;
            Ok((seen == client).then_some(()))
        })?;
    }

    // Each listener speaks its own protocol: CLIENT answers nothing but ApiVersions and SASL
    // before a login, INTERNAL needs none.
    let mut anonymous = RawConn::connect(("127.0.0.1", ports[0].client))?;
    anonymous.send_request(12, &kafka_protocol::messages::MetadataRequest::default())?;
    anonymous.expect_closed(Duration::from_secs(10))?;

    // DescribeCluster and FindCoordinator name addresses of the caller's listener too.
    let hosts = |brokers: Vec<
        kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker,
    >| {
        brokers
            .into_iter()
            .map(|b| (b.broker_id.0, format!("{}:{}", b.host.as_str(), b.port)))
            .collect::<BTreeMap<_, _>>()
    };
    let described = client_conn(ports[1].client)?.call(1, &DescribeClusterRequest::default())?;
    assert_eq!(hosts(described.brokers), client);
    let described =
        internal_conn(ports[1].internal)?.call(1, &DescribeClusterRequest::default())?;
    assert_eq!(hosts(described.brokers), internal);
    let find = FindCoordinatorRequest::default()
        .with_key_type(0)
        .with_coordinator_keys(vec![StrBytes::from_static_str("listeners-group")]);
    let coordinator = |mut conn: RawConn| -> Result<Option<String>> {
        let found = conn.call(4, &find)?;
        let c = &found.coordinators[0];
        Ok((c.error_code == 0).then(|| format!("{}:{}", c.host.as_str(), c.port)))
    };
    let via_client = wait_for("a coordinator through CLIENT", EVENTUALLY, || {
        coordinator(client_conn(ports[2].client)?)
    })?;
    let via_internal = wait_for("a coordinator through INTERNAL", EVENTUALLY, || {
        coordinator(internal_conn(ports[2].internal)?)
    })?;
    assert!(client.values().any(|a| *a == via_client), "{via_client}");
    assert!(
        internal.values().any(|a| *a == via_internal),
        "{via_internal}"
    );
    Ok(())
}

#[test]
fn records_produced_through_one_listener_are_replicated_and_read_through_another() -> Result<()> {
    let (_brokers, ports) = start();
    let topic = unique_name("listeners");
    let create = CreateTopicsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(topic_name(&topic))
            .with_num_partitions(3)
            .with_replication_factor(3)]);
    let created = wait_for("the topic created through CLIENT", EVENTUALLY, || {
        let response = client_conn(ports[0].client)?.call(7, &create)?;
        let code = response.topics[0].error_code;
        Ok((code == 0 || code == TOPIC_ALREADY_EXISTS).then_some(code))
    })?;
    assert!(created == 0 || created == TOPIC_ALREADY_EXISTS);

    // rdkafka through CLIENT: it bootstraps at localhost and stays on CLIENT's addresses.
    let bootstrap = format!("localhost:{}", ports[0].client);
    let producer = producer_for(
        &bootstrap,
        &[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "PLAIN"),
            ("sasl.username", USER),
            ("sasl.password", PASSWORD),
            ("acks", "all"),
            ("enable.idempotence", "true"),
        ],
    );
    let messages: Vec<Msg> = (0..60)
        .map(|i| Msg::value(format!("m{i}")).partition(i % 3))
        .collect();
    let runtime = tokio::runtime::Runtime::new()?;
    let delivered = runtime.block_on(produce_all(&producer, &topic, &messages))?;
    assert_eq!(delivered.len(), messages.len());

    // acks=all answered: every in-sync follower fetched over INTERNAL. Read it all back
    // through INTERNAL with a plaintext client.
    let mut ends = BTreeMap::new();
    for d in &delivered {
        let end = ends.entry(d.partition).or_insert(0);
        *end = (*end).max(d.offset + 1);
    }
    let bootstrap = format!("127.0.0.1:{}", ports[1].internal);
    let read = consume_to_ends(&bootstrap, &topic, &ends)?;
    let mut values: Vec<String> = read
        .values()
        .flatten()
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
        .collect();
    values.sort();
    let mut want: Vec<String> = (0..60).map(|i| format!("m{i}")).collect();
    want.sort();
    assert_eq!(values, want);
    Ok(())
}
