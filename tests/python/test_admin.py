"""Kafka's admin APIs that operators' tools call, through confluent-kafka's and kafka-python's
AdminClients against a real 3-node brook cluster.

- ElectLeaders, preferred: after its preferred replica returns, a partition is led by it again
  once asked (automatic rebalancing is off here), and asking again needs no election.
- ElectLeaders, unclean: a partition whose in-sync replicas are all down gets a leader from a
  live out-of-sync replica only when asked.
"""

from __future__ import annotations

import pytest
from confluent_kafka import ElectionType, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaAdminClient

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
