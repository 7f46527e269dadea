"""Kafka's admin APIs that operators' tools call, through confluent-kafka's and kafka-python's
AdminClients against a real 3-node brook cluster.

- ElectLeaders, preferred: after its preferred replica returns, a partition is led by it again
  once asked (automatic rebalancing is off here), and asking again needs no election.
- ElectLeaders, unclean: a partition whose in-sync replicas are all down gets a leader from a
  live out-of-sync replica only when asked.
- Topic configs changed at run time (IncrementalAlterConfigs and AlterConfigs): every node
  describes the change, produce obeys it at once, it survives a restart, and bad changes are
  refused with Kafka's codes.
- Dynamic broker configs (the broker defaults of topic configs), cluster-wide and per broker,
  the same way.
"""

from __future__ import annotations

import pytest
from confluent_kafka import ElectionType, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewTopic,
    ResourceType,
)
from kafka import KafkaAdminClient
from kafka.admin import AlterConfigOp
from kafka.admin import ConfigResource as KpResource

import brookutil
from brookcluster import BrookCluster, cluster  # noqa: F401 - fixture

TIMEOUT = 45.0

pytestmark = pytest.mark.brook_opts(**{"auto.leader.rebalance.enable": "false"})


def create(c: BrookCluster, name: str, assignment: list[list[int]]) -> None:
    admin = AdminClient({"bootstrap.servers": c.bootstrap})
    topic = NewTopic(name, num_partitions=len(assignment), replica_assignment=assignment)
    admin.create_topics([topic], operation_timeout=30)[name].result(timeout=TIMEOUT)


def partition(c: BrookCluster, topic: str, p: int, via: int | None = None):
    """(leader, isr) of a partition as the metadata of a live node reports it."""
    addr = c.addr(via if via is not None else c.up_ids()[0])
    md = AdminClient({"bootstrap.servers": addr}).list_topics(topic, timeout=10)
    t = md.topics.get(topic)
    if t is None or t.error is not None or p not in t.partitions:
        return None
    pm = t.partitions[p]
    return pm.leader, sorted(pm.isrs)


def wait_partition(c: BrookCluster, topic: str, p: int, what: str, check):
    return brookutil.wait_until(
        f"{topic}-{p}: {what}", lambda: (s := partition(c, topic, p)) is not None and check(*s) and s,
        TIMEOUT)


def test_preferred_election_moves_leadership_back_to_the_first_replica(cluster):
    create(cluster, "el", [[1, 2, 3], [2, 3, 1]])
    wait_partition(cluster, "el", 0, "all replicas in sync", lambda l, isr: l == 1 and isr == [1, 2, 3])

    cluster.kill9(1)
    wait_partition(cluster, "el", 0, "a new leader", lambda l, isr: l in (2, 3))
    cluster.restart(1)
    wait_partition(cluster, "el", 0, "node 1 back in sync", lambda l, isr: 1 in isr)
    assert partition(cluster, "el", 0)[0] != 1, "leadership moved back with rebalancing off"

    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    tp0 = TopicPartition("el", 0)
    result = admin.elect_leaders(ElectionType.PREFERRED, [tp0]).result(timeout=TIMEOUT)
    assert result == {tp0: None}, result
    for i in cluster.up_ids():
        brookutil.wait_until(f"node {i} to report node 1 leading el-0",
                             lambda i=i: (partition(cluster, "el", 0, via=i) or (None,))[0] == 1,
                             TIMEOUT)

    # Again: nothing to do. A partition that does not exist is named as such.
    missing = TopicPartition("el", 7)
    result = admin.elect_leaders(ElectionType.PREFERRED, [tp0, missing]).result(timeout=TIMEOUT)
    assert result[tp0].code() == KafkaError.ELECTION_NOT_NEEDED, result
    assert result[missing].code() == KafkaError.UNKNOWN_TOPIC_OR_PART, result

    # kafka-python names every partition of the topic itself.
    kp = KafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    try:
        response = kp.elect_leaders(0, ["el"])
    finally:
        kp.close()
    assert response.error_code == 0
    codes = {(r.topic, p.partition_id): p.error_code for r in response.replica_election_results
             for p in r.partition_result}
    assert codes == {("el", 0): 84, ("el", 1): 84}, f"ELECTION_NOT_NEEDED expected: {codes}"

    # Every partition (librdkafka sends a null list): those already led by their preferred
    # replica are left out of the answer, as Kafka's controller does.
    assert admin.elect_leaders(ElectionType.PREFERRED, None).result(timeout=TIMEOUT) == {}


def test_unclean_election_only_when_asked(cluster):
    create(cluster, "uc", [[2, 3]])
    wait_partition(cluster, "uc", 0, "both replicas in sync", lambda l, isr: l == 2 and isr == [2, 3])

    # Node 3 dies and leaves the in-sync set; then node 2, the last in-sync replica, dies as
    # node 3 returns (two of the three nodes stay up, so the metadata quorum holds).
    cluster.kill9(3)
    wait_partition(cluster, "uc", 0, "node 3 out of sync", lambda l, isr: l == 2 and isr == [2])
    cluster.kill9(2)
    cluster.restart(3)
    wait_partition(cluster, "uc", 0, "no leader", lambda l, isr: l == -1 and isr == [2])
    cluster.wait_for_brokers([1, 3])
    # Node 3 is live but was not in sync: no clean election picks it.
    assert partition(cluster, "uc", 0) == (-1, [2])

    # A preferred election cannot help (node 2 is down).
    kp = KafkaAdminClient(bootstrap_servers=cluster.addr(1))
    try:
        preferred = kp.elect_leaders(0, {"uc": [0]}, raise_errors=False)
        codes = [p.error_code for r in preferred.replica_election_results for p in r.partition_result]
        assert codes == [80], f"PREFERRED_LEADER_NOT_AVAILABLE expected, got {codes}"
        unclean = kp.elect_leaders(1, {"uc": [0]})
        codes = [p.error_code for r in unclean.replica_election_results for p in r.partition_result]
        assert codes == [0], codes
    finally:
        kp.close()
    leader, isr = wait_partition(cluster, "uc", 0, "node 3 leads", lambda l, isr: l == 3)
    assert isr == [3], isr

    # It takes writes again (acks=1: with one in-sync replica of two, acks=all is refused
    # while brook's default min.insync.replicas is 2).
    p = Producer({"bootstrap.servers": cluster.addr(1), "acks": "1"})
    errors = []
    p.produce("uc", b"after", partition=0, on_delivery=lambda err, msg: err and errors.append(err))
    assert p.flush(TIMEOUT) == 0 and not errors, errors


def topic_configs(c: BrookCluster, topic: str, node: int) -> dict:
    """{name: ConfigEntry} of a topic as node `node` describes it."""
    admin = AdminClient({"bootstrap.servers": c.addr(node)})
    res = ConfigResource(ResourceType.TOPIC, topic)
    return admin.describe_configs([res])[res].result(timeout=TIMEOUT)


def produce_one(bootstrap: str, topic: str, value: bytes):
    """The delivery error of one acks=all message, or None."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "message.max.bytes": 10_000_000})
    out = []
    p.produce(topic, value, partition=0, on_delivery=lambda err, msg: out.append(err))
    assert p.flush(TIMEOUT) == 0, "not delivered in time"
    return out[0]


def test_topic_configs_change_at_run_time(cluster):
    create(cluster, "cfg", [[1, 2, 3]])
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})

    def incremental(*entries, validate_only=False):
        res = ConfigResource(ResourceType.TOPIC, "cfg", incremental_configs=list(entries))
        return admin.incremental_alter_configs([res], validate_only=validate_only)[res].result(
            timeout=TIMEOUT)

    def entry(name, value, op=AlterConfigOpType.SET):
        return ConfigEntry(name, value, incremental_operation=op)

    # A smaller max.message.bytes takes effect at once; delete.retention.ms is accepted (inert).
    assert produce_one(cluster.bootstrap, "cfg", b"x" * 5000) is None
    incremental(entry("max.message.bytes", "2000"), entry("delete.retention.ms", "1000"))
    for i in cluster.up_ids():
        brookutil.wait_until(
            f"node {i} to describe max.message.bytes=2000",
            lambda i=i: topic_configs(cluster, "cfg", i)["max.message.bytes"].value == "2000",
            TIMEOUT)
    described = topic_configs(cluster, "cfg", 1)["max.message.bytes"]
    assert described.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value, described
    assert not described.is_read_only
    assert topic_configs(cluster, "cfg", 2)["delete.retention.ms"].value == "1000"
    err = brookutil.wait_until(
        "a 5000-byte message to be refused",
        lambda: (e := produce_one(cluster.bootstrap, "cfg", b"x" * 5000)) is not None and e,
        TIMEOUT)
    assert err.code() == KafkaError.MSG_SIZE_TOO_LARGE, err

    # validate_only changes nothing; bad values and unknown names are INVALID_CONFIG.
    incremental(entry("max.message.bytes", "9999"), validate_only=True)
    assert topic_configs(cluster, "cfg", 1)["max.message.bytes"].value == "2000"
    for bad in (entry("retention.ms", "soon"), entry("no.such.config", "1"),
                entry("preallocate", "maybe")):
        with pytest.raises(KafkaException) as e:
            incremental(bad)
        assert e.value.args[0].code() == KafkaError.INVALID_CONFIG, (bad, e.value)
    # APPEND and SUBTRACT work on list configs only.
    incremental(entry("leader.replication.throttled.replicas", "0:1", AlterConfigOpType.APPEND))
    incremental(entry("leader.replication.throttled.replicas", "0:2", AlterConfigOpType.APPEND))
    incremental(entry("leader.replication.throttled.replicas", "0:1", AlterConfigOpType.SUBTRACT))
    assert topic_configs(cluster, "cfg", 3)["leader.replication.throttled.replicas"].value == "0:2"
    with pytest.raises(KafkaException) as e:
        incremental(entry("retention.ms", "5", AlterConfigOpType.APPEND))
    assert e.value.args[0].code() == KafkaError.INVALID_REQUEST, e.value

    # The change survives a restart of every node.
    for i in cluster.ids:
        cluster.terminate(i)
        cluster.restart(i)
    cluster.wait_settled()
    assert topic_configs(cluster, "cfg", 2)["max.message.bytes"].value == "2000"

    # DELETE returns a config to its default: the large message goes through again.
    incremental(entry("max.message.bytes", None, AlterConfigOpType.DELETE))
    brookutil.wait_until(
        "a 5000-byte message to be accepted again",
        lambda: produce_one(cluster.bootstrap, "cfg", b"x" * 5000) is None, TIMEOUT)

    # kafka-python: the legacy AlterConfigs replaces the whole set (kafka-python fills in the
    # other modified configs itself), and IncrementalAlterConfigs sets one.
    kp = KafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    try:
        kp.alter_configs([KpResource("TOPIC", "cfg", configs={"segment.ms": "600000"})],
                         incremental=False)
        kp.alter_configs([KpResource("TOPIC", "cfg", configs={
            "retention.ms": (AlterConfigOp.SET, "3600000")})], incremental=True)
    finally:
        kp.close()
    configs = topic_configs(cluster, "cfg", 1)
    assert configs["segment.ms"].value == "600000"
    assert configs["retention.ms"].value == "3600000"
    assert configs["delete.retention.ms"].value == "1000", "kafka-python kept the other configs"



def broker_configs(c: BrookCluster, node: int, name: str | None = None) -> dict:
    """{name: ConfigEntry} of broker `name` (default: the node itself) as node `node` describes it."""
    admin = AdminClient({"bootstrap.servers": c.addr(node)})
    res = ConfigResource(ResourceType.BROKER, str(node) if name is None else name)
    return admin.describe_configs([res])[res].result(timeout=TIMEOUT)


def test_broker_configs_change_at_run_time(cluster):
    """The broker defaults of topic configs are dynamic, as in Kafka: set for one broker (here)
    or the whole cluster (resource "", which neither client sends; tests/tests/configs.rs sends
    it), kept in Raft, applied without a restart."""
    create(cluster, "dyn", [[1, 2, 3]])
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})

    def alter(name, *entries, validate_only=False):
        res = ConfigResource(ResourceType.BROKER, name, incremental_configs=list(entries))
        return admin.incremental_alter_configs([res], validate_only=validate_only)[res].result(
            timeout=TIMEOUT)

    def entry(name, value, op=AlterConfigOpType.SET):
        return ConfigEntry(name, value, incremental_operation=op)

    # Broker 1 leads dyn-0: its own message.max.bytes applies to topics that set none.
    assert produce_one(cluster.bootstrap, "dyn", b"x" * 5000) is None
    alter("1", entry("message.max.bytes", "2000"), entry("log.retention.ms", "7200000"))
    brookutil.wait_until(
        "node 1 to describe its own message.max.bytes",
        lambda: broker_configs(cluster, 1)["message.max.bytes"].value == "2000", TIMEOUT)
    described = broker_configs(cluster, 1)["message.max.bytes"]
    assert described.source == ConfigSource.DYNAMIC_BROKER_CONFIG.value, described
    assert not described.is_read_only
    assert broker_configs(cluster, 1)["log.dirs"].is_read_only
    assert broker_configs(cluster, 1)["log.retention.ms"].value == "7200000"
    # Other brokers keep their own values.
    assert broker_configs(cluster, 2)["message.max.bytes"].value == "1048588"
    assert broker_configs(cluster, 3)["log.retention.ms"].value == "604800000"
    err = brookutil.wait_until(
        "a 5000-byte message to be refused",
        lambda: (e := produce_one(cluster.bootstrap, "dyn", b"x" * 5000)) is not None and e,
        TIMEOUT)
    assert err.code() == KafkaError.MSG_SIZE_TOO_LARGE, err

    # validate_only changes nothing; static settings and bad values are refused.
    alter("1", entry("message.max.bytes", "9999"), validate_only=True)
    assert broker_configs(cluster, 1)["message.max.bytes"].value == "2000"
    for bad, code in ((entry("log.dirs", "/elsewhere"), KafkaError.INVALID_REQUEST),
                      (entry("log.retention.ms", "soon"), KafkaError.INVALID_CONFIG)):
        with pytest.raises(KafkaException) as e:
            alter("1", bad)
        assert e.value.args[0].code() == code, (bad, e.value)

    # Kept across a restart of every node.
    for i in cluster.ids:
        cluster.terminate(i)
        cluster.restart(i)
    cluster.wait_settled()
    assert broker_configs(cluster, 1)["message.max.bytes"].value == "2000"

    # kafka-python: IncrementalAlterConfigs deletes one; the large message goes through again.
    kp = KafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    try:
        kp.alter_configs([KpResource("BROKER", "1", configs={
            "message.max.bytes": (AlterConfigOp.DELETE, None)})], incremental=True)
    finally:
        kp.close()
    brookutil.wait_until(
        "a 5000-byte message to be accepted again",
        lambda: produce_one(cluster.bootstrap, "dyn", b"x" * 5000) is None, TIMEOUT)
    assert broker_configs(cluster, 1)["log.retention.ms"].value == "7200000"
