"""kafka-python's admin client against three brook nodes: describe_log_dirs (DescribeLogDirs,
one request per broker) lists on every node the replicas it holds with the bytes their logs
hold and the space of its filesystem; describe_topic_partitions (DescribeTopicPartitions,
KIP-966) describes topics, reports a missing one, and pages through partitions by cursor.
"""

from __future__ import annotations

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from brookcluster import cluster  # noqa: F401 - fixture
from brookutil import wait_until

TIMEOUT_MS = 30_000
TOPIC = "logdirs"
PARTITIONS = 2
MESSAGES = 100  # per partition
VALUE_BYTES = 1000

UNKNOWN_TOPIC_OR_PARTITION = 3


@pytest.fixture
def admin(cluster):
    client = KafkaAdminClient(bootstrap_servers=cluster.bootstrap,
                              request_timeout_ms=TIMEOUT_MS, client_id="brook-python-admin")
    try:
        yield client
    finally:
        client.close()


def create_replicated(admin, cluster, name: str, partitions: int, replication: int) -> None:
    admin.create_topics([NewTopic(name, num_partitions=partitions,
                                  replication_factor=replication)], timeout_ms=TIMEOUT_MS)

    def ready():
        described = admin.describe_topic_partitions([name])["topics"]
        return (len(described) == 1 and described[0]["error_code"] == 0
                and len(described[0]["partitions"]) == partitions
                and all(p["leader_id"] >= 0 and len(p["isr_nodes"]) == replication
                        for p in described[0]["partitions"]))

    wait_until(f"{name} to have leaders and full in-sync sets", ready, timeout=60)


def sizes_by_broker(admin) -> dict[int, dict[int, tuple[int, int]]]:
    """{broker: {partition of TOPIC: (size, offset lag)}} from describe_log_dirs."""
    out = {}
    for answer in admin.describe_log_dirs():
        held = {}
        for d in answer["log_dirs"]:
            assert d["error_code"] == 0, d
            for t in d["topics"]:
                if t["name"] == TOPIC:
                    for p in t["partitions"]:
                        held[p["partition_index"]] = (p["partition_size"], p["offset_lag"])
        out[answer["broker"]] = held
    return out


def test_describe_log_dirs_lists_every_nodes_replicas_with_their_size(cluster, admin):
    create_replicated(admin, cluster, TOPIC, PARTITIONS, 3)
    producer = KafkaProducer(bootstrap_servers=cluster.bootstrap, acks="all",
                             request_timeout_ms=TIMEOUT_MS)
    try:
        for i in range(MESSAGES * PARTITIONS):
            value = f"m{i}-".encode().ljust(VALUE_BYTES, b"x")
            producer.send(TOPIC, value=value, partition=i % PARTITIONS)
        producer.flush(timeout=60)
    finally:
        producer.close()
    produced = MESSAGES * VALUE_BYTES

    # Followers copy asynchronously: wait until every node holds every partition in full.
    def settled():
        by_broker = sizes_by_broker(admin)
        complete = (sorted(by_broker) == cluster.ids
                    and all(sorted(held) == list(range(PARTITIONS))
                            for held in by_broker.values()))
        full = all(size >= produced and lag == 0
                   for held in by_broker.values() for size, lag in held.values())
        return by_broker if complete and full else None

    by_broker = wait_until("every replica to hold what was produced", settled, timeout=60)
    for broker, held in by_broker.items():
        assert held == by_broker[1], by_broker
        assert all(size < 2 * produced for size, _ in held.values()), by_broker

    # Each answer names the node's one log dir, absolute, with its filesystem's space (v4).
    for answer in admin.describe_log_dirs():
        [d] = answer["log_dirs"]
        assert d["log_dir"].startswith("/"), d
        assert d["total_bytes"] > 0 and 0 < d["usable_bytes"] <= d["total_bytes"], d

    # Named partitions: only those held; a partition that does not exist is left out.
    [answer] = admin.describe_log_dirs({TOPIC: [1, 9]}, brokers=[2])
    [d] = answer["log_dirs"]
    listed = [(t["name"], [p["partition_index"] for p in t["partitions"]]) for t in d["topics"]]
    assert listed == [(TOPIC, [1])], listed


def test_describe_topic_partitions_describes_reports_missing_and_pages(cluster, admin):
    create_replicated(admin, cluster, "first", 3, 3)
    create_replicated(admin, cluster, "second", 2, 1)

    answer = admin.describe_topic_partitions(["second", "missing", "first"])
    assert answer["next_cursor"] is None, answer
    topics = {t["name"]: t for t in answer["topics"]}
    assert [t["name"] for t in answer["topics"]] == ["first", "missing", "second"], answer
    assert topics["missing"]["error_code"] == UNKNOWN_TOPIC_OR_PARTITION, answer
    first = topics["first"]
    assert first["error_code"] == 0 and not first["is_internal"], first
    assert [p["partition_index"] for p in first["partitions"]] == [0, 1, 2], first
    for p in first["partitions"]:
        assert sorted(p["replica_nodes"]) == [1, 2, 3], p
        assert sorted(p["isr_nodes"]) == [1, 2, 3], p
        assert p["leader_id"] in p["replica_nodes"] and p["leader_epoch"] >= 0, p
        assert p["offline_replicas"] == [], p
    assert [len(p["replica_nodes"]) for p in topics["second"]["partitions"]] == [1, 1], answer

    # Two partitions per page: first 0-1, first 2 and second 0, second 1.
    pages = []
    cursor = None
    while True:
        answer = admin.describe_topic_partitions(["first", "second"], response_partition_limit=2,
                                                 cursor=cursor)
        pages.append([(t["name"], p["partition_index"])
                      for t in answer["topics"] for p in t["partitions"]])
        cursor = answer["next_cursor"]
        if cursor is None or len(pages) > 5:
            break
    assert pages == [[("first", 0), ("first", 1)], [("first", 2), ("second", 0)],
                     [("second", 1)]], pages
