"""kafka-python (pure Python protocol implementation) against a real brook node.

Consumers have no group (group_id=None) and use assign() + seek(); brook has no consumer groups
yet. Producers are idempotent (kafka-python 3's default; asked for explicitly so that a broker
without InitProducerId support fails the test instead of silently turning it off).
"""

from __future__ import annotations

import random
import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, OffsetSpec, OffsetTimestamp
from kafka.errors import MessageSizeTooLargeError, OffsetOutOfRangeError

from brookutil import (
    CLIENT_MAX_REQUEST_BYTES,
    CODECS,
    TOPIC_MAX_MESSAGE_BYTES,
    Deadline,
    Got,
    Msg,
    check_delivered_offsets,
    compare,
    make_messages,
)

TIMEOUT_MS = 30_000

# Kafka error codes.
NONE = 0
UNKNOWN_TOPIC_OR_PARTITION = 3
TOPIC_ALREADY_EXISTS = 36
INVALID_PARTITIONS = 37
INVALID_CONFIG = 40

CREATE_TIME = 0
LOG_APPEND_TIME = 1


# -- helpers ------------------------------------------------------------------------------------


def admin_client(broker) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=TIMEOUT_MS,
                            client_id="brook-python-admin")


def create_topic(broker, name: str, partitions: int, configs: dict | None = None) -> None:
    admin = admin_client(broker)
    try:
        r = admin.create_topics(
            {name: {"num_partitions": partitions, "replication_factor": 1, "configs": configs or {}}},
            timeout_ms=TIMEOUT_MS)
        assert [(t["name"], t["error_code"]) for t in r["topics"]] == [(name, NONE)], r
    finally:
        admin.close()


def make_producer(broker, **conf) -> KafkaProducer:
    base = dict(
        bootstrap_servers=broker.bootstrap,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        max_request_size=CLIENT_MAX_REQUEST_BYTES,
        reconnect_backoff_ms=50,
        reconnect_backoff_max_ms=1000,
        request_timeout_ms=TIMEOUT_MS,
        client_id="brook-python-producer",
    )
    base.update(conf)
    return KafkaProducer(**base)


def make_consumer(broker, **conf) -> KafkaConsumer:
    base = dict(
        bootstrap_servers=broker.bootstrap,
        group_id=None,
        enable_auto_commit=False,
        # A fetch outside the log must raise, never silently jump.
        auto_offset_reset="none",
        reconnect_backoff_ms=50,
        reconnect_backoff_max_ms=1000,
        request_timeout_ms=TIMEOUT_MS,
        client_id="brook-python-consumer",
    )
    base.update(conf)
    return KafkaConsumer(**base)


def send_all(producer: KafkaProducer, topic: str, msgs: list[Msg]) -> list:
    """Send every message with its partition, key, value, headers and timestamp; returns the
    futures in the same order."""
    return [
        producer.send(topic, value=m.value, key=m.key, headers=list(m.headers) or None,
                      partition=m.partition, timestamp_ms=m.timestamp or None)
        for m in msgs
    ]


def produce_all(producer: KafkaProducer, topic: str, msgs: list[Msg], timeout: float = 60) -> list:
    """Send and flush; fill in offsets from RecordMetadata. Returns (msg, exception) failures."""
    futures = send_all(producer, topic, msgs)
    producer.flush(timeout=timeout)
    return collect(msgs, futures)


def collect(msgs: list[Msg], futures: list) -> list:
    failures = []
    for m, f in zip(msgs, futures):
        assert f.is_done, f"{m.describe()}: no result"
        if f.failed():
            failures.append((m, f.exception))
        else:
            md = f.value
            assert (md.partition, md.offset >= 0) == (m.partition, True), f"{m.describe()}: {md}"
            m.offset = md.offset
    return failures


def assert_idempotent(producer: KafkaProducer) -> None:
    tm = producer._transaction_manager
    assert tm is not None, "the producer is not idempotent"
    assert tm.producer_id_and_epoch.producer_id >= 0, "no producer id from InitProducerId"


def to_got(r) -> Got:
    return Got(partition=r.partition, offset=r.offset, key=r.key, value=r.value,
               headers=list(r.headers or []), timestamp=r.timestamp,
               create_time=r.timestamp_type == CREATE_TIME)


def consume(broker, topic: str, until: dict[int, int], start: dict[int, int] | None = None,
            timeout: float = 60, **conf) -> dict[int, list]:
    """assign() + seek() the partitions of `until` at `start` (default 0) and read until each has
    reached offset until[p]. Returns ConsumerRecords by partition."""
    start = start or {}
    c = make_consumer(broker, **conf)
    try:
        tps = {p: TopicPartition(topic, p) for p in until}
        c.assign(list(tps.values()))
        for p, tp in tps.items():
            c.seek(tp, start.get(p, 0))
        got: dict[int, list] = {p: [] for p in until}
        nxt = {p: start.get(p, 0) for p in until}
        d = Deadline(timeout)
        while any(nxt[p] < until[p] for p in until):
            assert d, f"timed out: next offsets {nxt}, wanted {until}"
            for tp, records in c.poll(timeout_ms=500).items():
                got[tp.partition].extend(records)
                nxt[tp.partition] = records[-1].offset + 1
        return got
    finally:
        c.close()


def offsets(broker, topic: str, partitions: list[int]) -> dict[int, tuple[int, int]]:
    c = make_consumer(broker)
    try:
        tps = [TopicPartition(topic, p) for p in partitions]
        lo = c.beginning_offsets(tps, timeout_ms=TIMEOUT_MS)
        hi = c.end_offsets(tps, timeout_ms=TIMEOUT_MS)
        return {tp.partition: (lo[tp], hi[tp]) for tp in tps}
    finally:
        c.close()


def check_roundtrip(broker, topic: str, msgs: list[Msg]) -> None:
    parts = check_delivered_offsets(msgs)
    assert offsets(broker, topic, list(parts)) == {p: (0, len(ms)) for p, ms in parts.items()}
    got = consume(broker, topic, {p: len(ms) for p, ms in parts.items()})
    for p, ms in parts.items():
        compare(ms, [to_got(r) for r in got[p]])


def topic_configs(admin: KafkaAdminClient, kind: ConfigResourceType, name: str) -> dict:
    r = admin.describe_configs([ConfigResource(kind, name)], config_filter="all")
    return r[kind.name.lower()][name]


# -- tests --------------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", CODECS)
def test_roundtrip_every_codec(broker, codec):
    """Idempotent producer with `codec`: keys, headers (repeats, empty values), null and empty
    keys/values, 0 B to 1 MiB values. RecordMetadata offsets are where the records are; every
    record comes back complete, in order, exactly once, with its CreateTime timestamp."""
    topic = f"kp-roundtrip-{codec}"
    create_topic(broker, topic, 3, {"max.message.bytes": str(TOPIC_MAX_MESSAGE_BYTES)})
    # kafka-python headers are (str, bytes): no null header values; and it refuses a record
    # whose key and value are both null.
    msgs = make_messages(seed=200 + CODECS.index(codec), partitions=3, n_small=2000,
                         null_header_values=False, null_key_and_value=False)
    producer = make_producer(broker, compression_type=None if codec == "none" else codec)
    try:
        failures = produce_all(producer, topic, msgs)
        assert not failures, f"delivery failures: {[(m.describe(), e) for m, e in failures[:5]]}"
        assert_idempotent(producer)
    finally:
        producer.close(timeout=10)
    check_roundtrip(broker, topic, msgs)


@pytest.mark.brook_opts(**{"message.max.bytes": "3000000"})
def test_admin_topics_and_configs(broker):
    """KafkaAdminClient: CreateTopics with partitions and configs (validate_only, duplicate,
    invalid ones refused with Kafka's codes), Metadata, DescribeConfigs for topics and the
    broker (the values given, with their source; the limits enforced on produce),
    CreatePartitions, DeleteTopics."""
    admin = admin_client(broker)
    try:
        _admin_checks(broker, admin)
    finally:
        admin.close()


def _admin_checks(broker, admin: KafkaAdminClient) -> None:
    name = "kp-admin"
    configs = {
        "retention.ms": "172800456",
        "retention.bytes": "123456789",
        "segment.bytes": "4194304",
        "max.message.bytes": "2000000",
        "message.timestamp.type": "LogAppendTime",
    }
    r = admin.create_topics(
        {name: {"num_partitions": 3, "replication_factor": 1, "configs": configs},
         "kp-plain": {"num_partitions": 1, "replication_factor": 1}},
        timeout_ms=TIMEOUT_MS)
    assert sorted((t["name"], t["error_code"]) for t in r["topics"]) == [("kp-admin", NONE), ("kp-plain", NONE)], r

    r = admin.create_topics({"kp-validate-only": {"num_partitions": 2, "replication_factor": 1}},
                            timeout_ms=TIMEOUT_MS, validate_only=True)
    assert [(t["name"], t["error_code"]) for t in r["topics"]] == [("kp-validate-only", NONE)], r

    r = admin.create_topics(
        {name: {"num_partitions": 1, "replication_factor": 1},
         "kp-bad-value": {"num_partitions": 1, "replication_factor": 1,
                          "configs": {"segment.bytes": "big"}},
         "kp-bad-name": {"num_partitions": 1, "replication_factor": 1,
                         "configs": {"no.such.setting": "x"}},
         "kp-no-partitions": {"num_partitions": 0, "replication_factor": 1}},
        timeout_ms=TIMEOUT_MS, raise_errors=False)
    codes = {t["name"]: t["error_code"] for t in r["topics"]}
    assert codes == {name: TOPIC_ALREADY_EXISTS, "kp-bad-value": INVALID_CONFIG,
                     "kp-bad-name": INVALID_CONFIG, "kp-no-partitions": INVALID_PARTITIONS}, r

    listed = set(admin.list_topics())
    assert {name, "kp-plain"} <= listed
    assert not listed & {"kp-validate-only", "kp-bad-value", "kp-bad-name", "kp-no-partitions"}, listed
    [t] = admin.describe_topics([name])
    assert t["error_code"] == NONE
    parts = sorted(t["partitions"], key=lambda p: p["partition_index"])
    assert [p["partition_index"] for p in parts] == [0, 1, 2]
    for p in parts:
        assert p["error_code"] == NONE
        assert p["leader_id"] == broker.node_id
        assert list(p["replica_nodes"]) == [broker.node_id]

    entries = topic_configs(admin, ConfigResourceType.TOPIC, name)
    for k, v in configs.items():
        assert k in entries, f"{k} missing from DescribeConfigs"
        assert entries[k]["value"] == v, f"{k}: {entries[k]['value']!r} != {v!r}"
        assert entries[k]["config_source"] == "DYNAMIC_TOPIC_CONFIG", (k, entries[k])
    assert entries["cleanup.policy"]["value"] == "delete"
    assert entries["cleanup.policy"]["config_source"] != "DYNAMIC_TOPIC_CONFIG"
    plain = topic_configs(admin, ConfigResourceType.TOPIC, "kp-plain")
    assert plain["max.message.bytes"]["value"] == "3000000"
    assert plain["max.message.bytes"]["config_source"] == "STATIC_BROKER_CONFIG"
    assert plain["message.timestamp.type"]["value"] == "CreateTime"
    node = topic_configs(admin, ConfigResourceType.BROKER, str(broker.node_id))
    assert node["message.max.bytes"]["value"] == "3000000"
    assert node["message.max.bytes"]["config_source"] == "STATIC_BROKER_CONFIG"

    # The limits are enforced: a refused batch takes no offset.
    rnd = random.Random(9)
    p = make_producer(broker, enable_idempotence=False, acks=1, linger_ms=0)
    try:
        for topic, size, ok in [("kp-admin", 2_500_000, False), ("kp-admin", 1_500_000, True),
                                ("kp-plain", 3_500_000, False), ("kp-plain", 2_500_000, True)]:
            f = p.send(topic, value=rnd.randbytes(size), partition=0)
            p.flush(timeout=60)
            if ok:
                md = f.get(timeout=0)
                assert md.offset == 0, f"{size} B to {topic} at offset {md.offset}"
            else:
                with pytest.raises(MessageSizeTooLargeError):
                    f.get(timeout=0)
        # LogAppendTime on kp-admin: RecordMetadata and the record carry the broker's time.
        before = int(time.time() * 1000)
        f = p.send(name, value=b"stamped", partition=1, timestamp_ms=1_000_000_000_000)
        p.flush(timeout=30)
        after = int(time.time() * 1000)
        md = f.get(timeout=0)
    finally:
        p.close(timeout=10)
    assert md.offset == 0
    assert before - 1 <= md.timestamp <= after + 1, f"LogAppendTime {md.timestamp} outside [{before}, {after}]"
    [rec] = consume(broker, name, {1: 1})[1]
    assert (rec.value, rec.timestamp_type, rec.timestamp) == (b"stamped", LOG_APPEND_TIME, md.timestamp)

    admin.create_partitions({name: 5}, timeout_ms=TIMEOUT_MS)
    [t] = admin.describe_topics([name])
    assert sorted(p["partition_index"] for p in t["partitions"]) == [0, 1, 2, 3, 4]
    p = make_producer(broker)
    try:
        f = p.send(name, value=b"new partition", partition=4)
        p.flush(timeout=30)
        assert f.get(timeout=0).offset == 0
    finally:
        p.close(timeout=10)
    assert offsets(broker, name, [4]) == {4: (0, 1)}

    r = admin.delete_topics([name, "kp-plain"], timeout_ms=TIMEOUT_MS)
    assert sorted((t["name"], t["error_code"]) for t in r["topics"]) == [("kp-admin", NONE), ("kp-plain", NONE)], r
    listed = set(admin.list_topics())
    assert name not in listed and "kp-plain" not in listed
    r = admin.delete_topics(["kp-never-existed"], timeout_ms=TIMEOUT_MS, raise_errors=False)
    assert [(t["name"], t["error_code"]) for t in r["topics"]] == [("kp-never-existed", UNKNOWN_TOPIC_OR_PARTITION)], r

    # The name can be used again: a new, empty topic with default configs.
    r = admin.create_topics({name: {"num_partitions": 1, "replication_factor": 1}}, timeout_ms=TIMEOUT_MS)
    assert [(t["name"], t["error_code"]) for t in r["topics"]] == [(name, NONE)], r
    entries = topic_configs(admin, ConfigResourceType.TOPIC, name)
    assert entries["retention.ms"]["value"] == "604800000", "the old topic's configs came back"
    assert entries["message.timestamp.type"]["value"] == "CreateTime"
    assert offsets(broker, name, [0]) == {0: (0, 0)}, "the old topic's records came back"


def test_offsets_for_times_and_list_offsets(broker):
    """Consumer beginning_offsets/end_offsets/offsets_for_times and the admin's ListOffsets
    (earliest, latest, max timestamp, by timestamp) over several batches with non-monotonic
    timestamps; an empty partition; seeking to a looked-up offset."""
    topic = "kp-times"
    create_topic(broker, topic, 2)
    t0 = int(time.time() * 1000) - 600_000
    ts = [t0 + i * 1000 for i in range(60)]
    ts[42] = t0 + 200_000  # the maximum, in the middle
    msgs = [Msg(index=i, partition=0, key=None, value=b"v%d" % i, timestamp=ts[i]) for i in range(60)]
    p = make_producer(broker)
    try:
        for chunk in range(6):
            assert not produce_all(p, topic, msgs[chunk * 10:(chunk + 1) * 10])
    finally:
        p.close(timeout=10)
    check_delivered_offsets(msgs)
    tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    cases = {t0 - 1: 0, t0: 0, t0 + 7000: 7, t0 + 6001: 7, t0 + 41_000: 41,
             t0 + 42_000: 42, t0 + 55_000: 42, t0 + 200_000: 42}

    c = make_consumer(broker)
    try:
        assert c.beginning_offsets([tp0, tp1], timeout_ms=TIMEOUT_MS) == {tp0: 0, tp1: 0}
        assert c.end_offsets([tp0, tp1], timeout_ms=TIMEOUT_MS) == {tp0: 60, tp1: 0}
        for target, offset in cases.items():
            r = c.offsets_for_times({tp0: target}, timeout_ms=TIMEOUT_MS)
            assert r[tp0] is not None, f"offsets_for_times(t0{target - t0:+d}) found nothing"
            assert (r[tp0].offset, r[tp0].timestamp) == (offset, ts[offset]), f"t0{target - t0:+d}"
        r = c.offsets_for_times({tp0: t0 + 200_001, tp1: t0}, timeout_ms=TIMEOUT_MS)
        assert r == {tp0: None, tp1: None}, r
        # Seek to a looked-up offset and read from there.
        c.assign([tp0])
        c.seek(tp0, c.offsets_for_times({tp0: t0 + 6001}, timeout_ms=TIMEOUT_MS)[tp0].offset)
        d = Deadline(30)
        first = None
        while first is None:
            assert d, "nothing consumed after seeking"
            recs = c.poll(timeout_ms=500, max_records=1).get(tp0)
            first = recs[0] if recs else None
        assert (first.offset, first.value, first.timestamp) == (7, b"v7", ts[7])
    finally:
        c.close()

    admin = admin_client(broker)
    try:
        r = admin.list_partition_offsets({tp0: OffsetSpec.EARLIEST, tp1: OffsetSpec.EARLIEST})
        assert (r[tp0].offset, r[tp1].offset) == (0, 0)
        r = admin.list_partition_offsets({tp0: OffsetSpec.LATEST, tp1: OffsetSpec.LATEST})
        assert (r[tp0].offset, r[tp1].offset) == (60, 0)
        r = admin.list_partition_offsets({tp0: OffsetSpec.MAX_TIMESTAMP})
        assert (r[tp0].offset, r[tp0].timestamp) == (42, t0 + 200_000)
        for target, offset in cases.items():
            r = admin.list_partition_offsets({tp0: OffsetTimestamp(target)})
            assert (r[tp0].offset, r[tp0].timestamp) == (offset, ts[offset]), f"t0{target - t0:+d}"
        r = admin.list_partition_offsets({tp0: OffsetTimestamp(t0 + 200_001)})
        assert r[tp0].offset == -1, r
    finally:
        admin.close()


@pytest.mark.brook_opts(**{"log.retention.check.interval.ms": "100"})
def test_fetch_below_log_start_is_out_of_range(broker):
    """After retention deleted the oldest segments, beginning_offsets reports the new log start,
    reading from it returns the kept records intact, and a fetch at offset 0 raises
    OffsetOutOfRangeError."""
    topic = "kp-retained"
    create_topic(broker, topic, 1, {"segment.bytes": "16384", "retention.bytes": "32768"})
    rnd = random.Random(5)
    msgs = [Msg(index=i, partition=0, key=b"%d" % i, value=rnd.randbytes(1000), timestamp=0)
            for i in range(300)]
    p = make_producer(broker)
    try:
        for chunk in range(30):
            assert not produce_all(p, topic, msgs[chunk * 10:(chunk + 1) * 10])
    finally:
        p.close(timeout=10)
    check_delivered_offsets(msgs)
    d = Deadline(60)
    while True:
        lo, hi = offsets(broker, topic, [0])[0]
        if lo > 0:
            break
        assert d, "retention never deleted a segment (log start still 0)"
        time.sleep(0.2)
    assert 0 < lo < hi == 300
    got = consume(broker, topic, {0: 300}, start={0: lo})[0]
    assert [r.offset for r in got] == list(range(lo, 300))
    assert [(r.key, r.value) for r in got] == [(m.key, m.value) for m in msgs[lo:]]

    c = make_consumer(broker)
    try:
        tp = TopicPartition(topic, 0)
        c.assign([tp])
        c.seek(tp, 0)
        d = Deadline(30)
        with pytest.raises(OffsetOutOfRangeError):
            while d:
                recs = c.poll(timeout_ms=500)
                assert not recs, f"fetched {sum(map(len, recs.values()))} records below the log start {lo}"
    finally:
        c.close()


def test_acked_writes_survive_kill9(broker):
    """Idempotent acks=all producer. Wave 1 is acknowledged, then the node is SIGKILLed in the
    middle of wave 2 and restarted on the same port and data directory; the producer carries
    on. Every message is delivered exactly once at the offset in its RecordMetadata, in produce
    order, through the crash and through a second kill -9 after a flush."""
    topic = "kp-durable"
    create_topic(broker, topic, 3)
    wave1 = make_messages(seed=21, partitions=3, n_small=1000, n_medium=10, large=[],
                          null_header_values=False, null_key_and_value=False)
    wave2 = make_messages(seed=22, partitions=3, n_small=3000, n_medium=10, large=[],
                          null_header_values=False, null_key_and_value=False)
    for i, m in enumerate(wave2):
        m.index = len(wave1) + i
    p = make_producer(broker, linger_ms=2, batch_size=4096, delivery_timeout_ms=120_000)
    try:
        assert not produce_all(p, topic, wave1)
        check_delivered_offsets(wave1)
        futures = send_all(p, topic, wave2)
        d = Deadline(60)
        while sum(f.is_done for f in futures) < 300:
            assert d, "wave 2 is not being acknowledged"
            time.sleep(0.002)
        broker.kill9()
        done_at_kill = sum(f.is_done for f in futures)
        assert done_at_kill < len(wave2), "wave 2 finished before the kill; nothing was in flight"
        broker.restart()
        p.flush(timeout=110)
        failures = collect(wave2, futures)
        assert not failures, f"{len(failures)} delivery failures, e.g. {failures[0][0].describe()}: {failures[0][1]!r}"
        assert_idempotent(p)
    finally:
        p.close(timeout=10)

    everything = wave1 + wave2
    check_roundtrip(broker, topic, everything)
    broker.kill9()
    broker.restart()
    check_roundtrip(broker, topic, everything)
