"""confluent-kafka (librdkafka) against a real brook node.

Consumers use assign() with explicit offsets (brook has no consumer groups yet); `group.id` is
set only because confluent-kafka refuses to build a Consumer without one, and nothing is ever
committed.
"""

from __future__ import annotations

import random
import time

import pytest
from confluent_kafka import (
    OFFSET_END,
    TIMESTAMP_CREATE_TIME,
    TIMESTAMP_LOG_APPEND_TIME,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import (
    AdminClient,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    OffsetSpec,
    ResourceType,
)

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

TIMEOUT = 30


# -- helpers ------------------------------------------------------------------------------------


class Errors:
    """error_cb sink: fatal client errors fail the test."""

    def __init__(self):
        self.seen: list[KafkaError] = []

    def __call__(self, err: KafkaError) -> None:
        self.seen.append(err)

    def assert_no_fatal(self) -> None:
        fatal = [e for e in self.seen if e.fatal()]
        assert not fatal, f"fatal client errors: {fatal}"


def admin_client(broker) -> AdminClient:
    return AdminClient({"bootstrap.servers": broker.bootstrap})


def create_topic(broker, name: str, partitions: int, config: dict | None = None) -> None:
    admin = admin_client(broker)  # must outlive the future: a destroyed handle fails it
    fs = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})],
        operation_timeout=TIMEOUT,
        request_timeout=TIMEOUT,
    )
    fs[name].result(TIMEOUT)


def make_producer(broker, errors: Errors | None = None, **conf) -> Producer:
    base = {
        "bootstrap.servers": broker.bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "message.max.bytes": CLIENT_MAX_REQUEST_BYTES,
        "reconnect.backoff.ms": 50,
        "reconnect.backoff.max.ms": 1000,
        "message.timeout.ms": 60000,
    }
    if errors is not None:
        base["error_cb"] = errors
    base.update(conf)
    return Producer(base)


def make_consumer(broker, **conf) -> Consumer:
    base = {
        "bootstrap.servers": broker.bootstrap,
        "group.id": "brook-python-tests",  # required by confluent-kafka; never used: assign() only
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        # A fetch outside the log must surface as an error, never as a silent jump.
        "auto.offset.reset": "error",
        "reconnect.backoff.ms": 50,
        "reconnect.backoff.max.ms": 1000,
    }
    base.update(conf)
    return Consumer(base)


def produce_all(producer: Producer, topic: str, msgs: list[Msg], timeout: float = 60) -> list:
    """Produce every message with its partition, key, value, headers and timestamp; fill in the
    offsets from the delivery reports. Returns the list of (msg, KafkaError) delivery failures."""
    failures = []

    def on_delivery(m: Msg):
        def cb(err, rec):
            if err is not None:
                failures.append((m, err))
            else:
                assert rec.partition() == m.partition
                m.offset = rec.offset()

        return cb

    for m in msgs:
        kwargs = dict(partition=m.partition, key=m.key, value=m.value, on_delivery=on_delivery(m))
        if m.headers:
            kwargs["headers"] = m.headers
        if m.timestamp:
            kwargs["timestamp"] = m.timestamp
        while True:
            try:
                producer.produce(topic, **kwargs)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    left = producer.flush(timeout)
    assert left == 0, f"{left} messages still undelivered after {timeout}s"
    return failures


def to_got(msg) -> Got:
    ts_type, ts = msg.timestamp()
    return Got(
        partition=msg.partition(),
        offset=msg.offset(),
        key=msg.key(),
        value=msg.value(),
        headers=list(msg.headers() or []),
        timestamp=ts,
        create_time=ts_type == TIMESTAMP_CREATE_TIME,
    )


def consume(broker, topic: str, until: dict[int, int], start: dict[int, int] | None = None,
            timeout: float = 60, **conf) -> dict[int, list]:
    """Assign the partitions of `until` at `start` (default offset 0) and read until each one
    has reached offset until[p]. Returns the raw confluent messages by partition."""
    start = start or {}
    c = make_consumer(broker, **conf)
    try:
        c.assign([TopicPartition(topic, p, start.get(p, 0)) for p in until])
        got: dict[int, list] = {p: [] for p in until}
        nxt = {p: start.get(p, 0) for p in until}
        d = Deadline(timeout)
        while any(nxt[p] < until[p] for p in until):
            assert d, f"timed out: next offsets {nxt}, wanted {until}"
            msg = c.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                raise KafkaException(msg.error())
            got[msg.partition()].append(msg)
            nxt[msg.partition()] = msg.offset() + 1
        return got
    finally:
        c.close()


def watermarks(broker, topic: str, partition: int) -> tuple[int, int]:
    c = make_consumer(broker)
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=TIMEOUT, cached=False)
    finally:
        c.close()


def source(entry) -> ConfigSource:
    return ConfigSource(int(getattr(entry.source, "value", entry.source)))


def error_code(exc: BaseException) -> int:
    assert isinstance(exc, KafkaException), f"expected a KafkaException, got {exc!r}"
    return exc.args[0].code()


def check_roundtrip(broker, topic: str, msgs: list[Msg], check_ts: bool = True) -> None:
    """Delivery offsets are 0..n-1 per partition in produce order, the high watermark is n, and
    consuming from 0 gives back exactly the produced records."""
    parts = check_delivered_offsets(msgs)
    for p, ms in parts.items():
        assert watermarks(broker, topic, p) == (0, len(ms)), f"p{p} watermarks"
    got = consume(broker, topic, {p: len(ms) for p, ms in parts.items()})
    for p, ms in parts.items():
        compare(ms, [to_got(g) for g in got[p]], check_ts=check_ts)


# -- tests --------------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", CODECS)
def test_roundtrip_every_codec(broker, codec):
    """Idempotent acks=all producer with `codec`: keys, headers (null values, repeats), null and
    empty keys/values, 0 B to 1 MiB values. Every delivery report offset is where the record is;
    every record comes back complete, in order, exactly once, with its CreateTime timestamp."""
    topic = f"roundtrip-{codec}"
    create_topic(broker, topic, 3, {"max.message.bytes": str(TOPIC_MAX_MESSAGE_BYTES)})
    msgs = make_messages(seed=100 + CODECS.index(codec), partitions=3)
    errors = Errors()
    producer = make_producer(broker, errors, **{"compression.type": codec})
    failures = produce_all(producer, topic, msgs)
    assert not failures, f"delivery failures: {[(m.describe(), e) for m, e in failures[:5]]}"
    errors.assert_no_fatal()
    check_roundtrip(broker, topic, msgs)


def test_acks_0_and_1(broker):
    """Non-idempotent producers with acks=1 (offsets reported) and acks=0 (fire and forget):
    everything sent arrives, in order."""
    topic = "acks"
    create_topic(broker, topic, 1)
    ones = make_messages(seed=1, partitions=1, n_small=500, n_medium=5, large=[])
    p1 = make_producer(broker, **{"enable.idempotence": False, "acks": 1})
    assert not produce_all(p1, topic, ones)
    check_delivered_offsets(ones)
    del p1
    zeros = make_messages(seed=0, partitions=1, n_small=500, n_medium=5, large=[])
    p0 = make_producer(broker, **{"enable.idempotence": False, "acks": 0, "compression.type": "lz4"})
    assert not produce_all(p0, topic, zeros)
    del p0
    # acks=0 reports no offsets: they are whatever follows the acks=1 messages, in order.
    for i, m in enumerate(zeros):
        m.offset = len(ones) + i
    got = consume(broker, topic, {0: len(ones) + len(zeros)})
    compare(ones + zeros, [to_got(g) for g in got[0]])
    assert watermarks(broker, topic, 0) == (0, len(ones) + len(zeros))


@pytest.mark.brook_opts(**{"message.max.bytes": "3000000"})
def test_admin_topics_and_configs(broker):
    """CreateTopics with partitions and configs (and validate_only, duplicate, invalid),
    Metadata, DescribeConfigs (topic and broker: the values given, with their source; limits
    enforced on produce), CreatePartitions, DeleteTopics."""
    admin = admin_client(broker)
    name = "admin-topic"
    configs = {
        "retention.ms": "86400123",
        "retention.bytes": "987654321",
        "segment.bytes": "2097152",
        "segment.ms": "3600000",
        "max.message.bytes": "2000000",
        "message.timestamp.type": "CreateTime",
    }
    fs = admin.create_topics(
        [NewTopic(name, num_partitions=4, replication_factor=1, config=configs),
         NewTopic("plain-topic", num_partitions=1, replication_factor=1)],
        operation_timeout=TIMEOUT, request_timeout=TIMEOUT)
    for f in fs.values():
        f.result(TIMEOUT)

    # validate_only checks and creates nothing.
    fs = admin.create_topics([NewTopic("validate-only", 2, 1)], validate_only=True,
                             request_timeout=TIMEOUT)
    fs["validate-only"].result(TIMEOUT)

    # Refusals, each with Kafka's error code.
    fs = admin.create_topics(
        [NewTopic(name, 1, 1),
         NewTopic("bad-value", 1, 1, config={"retention.ms": "soon"}),
         NewTopic("bad-name", 1, 1, config={"no.such.setting": "1"}),
         NewTopic("no-partitions", 0, 1)],
        operation_timeout=TIMEOUT, request_timeout=TIMEOUT)
    expected_codes = {
        name: KafkaError.TOPIC_ALREADY_EXISTS,
        "bad-value": KafkaError.INVALID_CONFIG,
        "bad-name": KafkaError.INVALID_CONFIG,
        "no-partitions": KafkaError.INVALID_PARTITIONS,
    }
    for topic, code in expected_codes.items():
        with pytest.raises(KafkaException) as e:
            fs[topic].result(TIMEOUT)
        assert error_code(e.value) == code, f"{topic}: {e.value}"

    md = admin.list_topics(timeout=TIMEOUT)
    assert name in md.topics and "plain-topic" in md.topics
    for absent in ("validate-only", "bad-value", "bad-name", "no-partitions"):
        assert absent not in md.topics, f"{absent} should not have been created"
    assert broker.node_id in md.brokers
    assert md.brokers[broker.node_id].port == broker.port
    t = md.topics[name]
    assert t.error is None
    assert sorted(t.partitions) == [0, 1, 2, 3]
    for p in t.partitions.values():
        assert p.error is None
        assert p.leader == broker.node_id
        assert list(p.replicas) == [broker.node_id]

    # DescribeConfigs: the topic's own values, marked as topic configs...
    res = ConfigResource(ResourceType.TOPIC, name)
    entries = admin.describe_configs([res], request_timeout=TIMEOUT)[res].result(TIMEOUT)
    for k, v in configs.items():
        assert k in entries, f"{k} missing from DescribeConfigs"
        assert entries[k].value == v, f"{k}: {entries[k].value!r} != {v!r}"
        assert source(entries[k]) == ConfigSource.DYNAMIC_TOPIC_CONFIG, k
        assert not entries[k].is_default, k
    assert entries["cleanup.policy"].value == "delete"
    assert source(entries["cleanup.policy"]) != ConfigSource.DYNAMIC_TOPIC_CONFIG
    # ...and a topic without overrides inherits the broker's -o message.max.bytes.
    plain = ConfigResource(ResourceType.TOPIC, "plain-topic")
    entries = admin.describe_configs([plain], request_timeout=TIMEOUT)[plain].result(TIMEOUT)
    assert entries["max.message.bytes"].value == "3000000"
    assert source(entries["max.message.bytes"]) == ConfigSource.STATIC_BROKER_CONFIG
    assert entries["retention.ms"].value == "604800000"  # log.retention.ms default: 7 days
    assert source(entries["retention.ms"]) != ConfigSource.DYNAMIC_TOPIC_CONFIG
    node = ConfigResource(ResourceType.BROKER, str(broker.node_id))
    entries = admin.describe_configs([node], request_timeout=TIMEOUT)[node].result(TIMEOUT)
    assert entries["message.max.bytes"].value == "3000000"
    assert source(entries["message.max.bytes"]) == ConfigSource.STATIC_BROKER_CONFIG
    assert entries["auto.create.topics.enable"].value == "true"

    # The limits are enforced: admin-topic takes batches up to 2000000 bytes, plain-topic up to
    # the broker's 3000000. A refused batch takes no offset.
    rnd = random.Random(7)
    sizes = [("admin-topic", 2_500_000, False), ("admin-topic", 1_500_000, True),
             ("plain-topic", 3_500_000, False), ("plain-topic", 2_500_000, True)]
    p = make_producer(broker, **{"enable.idempotence": False, "acks": 1, "linger.ms": 0})
    outcomes = []
    for topic, size, ok in sizes:
        m = Msg(index=len(outcomes), partition=0, key=None, value=rnd.randbytes(size))
        outcomes.append((topic, size, ok, m, produce_all(p, topic, [m])))
    del p
    for topic, size, ok, m, failures in outcomes:
        if ok:
            assert not failures, f"{size} B to {topic}: {failures[0][1]}"
            assert m.offset == 0, f"{size} B to {topic} at offset {m.offset}"
        else:
            assert len(failures) == 1, f"{size} B to {topic} was accepted at {m.offset}"
            assert failures[0][1].code() == KafkaError.MSG_SIZE_TOO_LARGE, failures[0][1]

    # CreatePartitions: 4 -> 6, and the new partition takes writes.
    admin.create_partitions([NewPartitions(name, 6)], request_timeout=TIMEOUT)[name].result(TIMEOUT)
    md = admin.list_topics(timeout=TIMEOUT)
    assert sorted(md.topics[name].partitions) == [0, 1, 2, 3, 4, 5]
    p = make_producer(broker)
    m = Msg(index=0, partition=5, key=b"k", value=b"on a new partition")
    assert not produce_all(p, name, [m])
    del p
    assert m.offset == 0
    assert watermarks(broker, name, 5) == (0, 1)

    # DeleteTopics: gone from metadata and configs; the name can be created afresh, empty.
    fs = admin.delete_topics([name, "plain-topic"], operation_timeout=TIMEOUT, request_timeout=TIMEOUT)
    for f in fs.values():
        f.result(TIMEOUT)
    md = admin.list_topics(timeout=TIMEOUT)
    assert name not in md.topics and "plain-topic" not in md.topics
    with pytest.raises(KafkaException) as e:
        admin.describe_configs([res], request_timeout=TIMEOUT)[res].result(TIMEOUT)
    assert error_code(e.value) == KafkaError.UNKNOWN_TOPIC_OR_PART, e.value
    fs = admin.delete_topics(["never-existed"], operation_timeout=TIMEOUT, request_timeout=TIMEOUT)
    with pytest.raises(KafkaException) as e:
        fs["never-existed"].result(TIMEOUT)
    assert error_code(e.value) == KafkaError.UNKNOWN_TOPIC_OR_PART, e.value

    create_topic(broker, name, 2)
    md = admin.list_topics(timeout=TIMEOUT)
    assert sorted(md.topics[name].partitions) == [0, 1]
    entries = admin.describe_configs([res], request_timeout=TIMEOUT)[res].result(TIMEOUT)
    assert entries["retention.ms"].value == "604800000", "the old topic's configs came back"
    assert watermarks(broker, name, 0) == (0, 0), "the old topic's records came back"


def test_log_append_time(broker):
    """A topic with message.timestamp.type=LogAppendTime stamps records with the broker's clock:
    the delivery report and the consumed record carry the same LogAppendTime, not the
    producer's timestamp."""
    topic = "append-time"
    create_topic(broker, topic, 1, {"message.timestamp.type": "LogAppendTime"})
    old = 1_000_000_000_000  # 2001
    msgs = [Msg(index=i, partition=0, key=None, value=b"v%d" % i, timestamp=old + i) for i in range(20)]
    reports = {}

    p = make_producer(broker)
    before = int(time.time() * 1000)
    for m in msgs:
        p.produce(topic, value=m.value, partition=0, timestamp=m.timestamp,
                  on_delivery=lambda err, rec, m=m: reports.__setitem__(m.index, (err, rec.offset(), rec.timestamp())))
    assert p.flush(TIMEOUT) == 0
    after = int(time.time() * 1000)
    del p
    for m in msgs:
        err, offset, (ts_type, ts) = reports[m.index]
        assert err is None
        m.offset = offset
        assert ts_type == TIMESTAMP_LOG_APPEND_TIME, f"delivery report timestamp type {ts_type}"
        assert before - 1 <= ts <= after + 1, f"append time {ts} outside [{before}, {after}]"
    got = consume(broker, topic, {0: len(msgs)})[0]
    for m, g in zip(msgs, got):
        assert g.offset() == m.offset and g.value() == m.value
        ts_type, ts = g.timestamp()
        assert ts_type == TIMESTAMP_LOG_APPEND_TIME
        assert ts == reports[m.index][2][1], "consumed LogAppendTime differs from the produce response"


def test_list_offsets_and_offsets_for_times(broker):
    """ListOffsets earliest/latest/max-timestamp/by-timestamp through the AdminClient, and
    offsets_for_times / watermarks through the consumer, over several batches whose
    timestamps are not monotonic."""
    topic = "times"
    create_topic(broker, topic, 2)
    t0 = int(time.time() * 1000) - 600_000
    ts = [t0 + i * 1000 for i in range(50)]
    ts[30] = t0 + 100_000  # the maximum, in the middle
    msgs = [Msg(index=i, partition=0, key=b"%d" % i, value=b"value-%d" % i, timestamp=ts[i])
            for i in range(50)]
    p = make_producer(broker)
    for chunk in range(5):  # five flushes: five batches at least
        assert not produce_all(p, topic, msgs[chunk * 10:(chunk + 1) * 10])
    del p
    check_delivered_offsets(msgs)
    tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)

    admin = admin_client(broker)

    def list_offsets(tp, spec):
        return admin.list_offsets({tp: spec}, request_timeout=TIMEOUT)[tp].result(TIMEOUT)

    assert list_offsets(tp0, OffsetSpec.earliest()).offset == 0
    assert list_offsets(tp0, OffsetSpec.latest()).offset == 50
    assert list_offsets(tp1, OffsetSpec.earliest()).offset == 0
    assert list_offsets(tp1, OffsetSpec.latest()).offset == 0
    mx = list_offsets(tp0, OffsetSpec.max_timestamp())
    assert (mx.offset, mx.timestamp) == (30, t0 + 100_000)
    # The first offset whose timestamp is >= the target.
    cases = {
        t0 - 5000: 0,
        t0: 0,
        t0 + 10_000: 10,
        t0 + 10_000 - 1: 10,
        t0 + 29_500: 30,
        t0 + 40_000: 30,  # offset 30's timestamp (the max) is >= it and comes first
        t0 + 100_000: 30,
    }
    for target, offset in cases.items():
        r = list_offsets(tp0, OffsetSpec.for_timestamp(target))
        assert r.offset == offset, f"for_timestamp(t0{target - t0:+d}) -> {r.offset}, want {offset}"
        assert r.timestamp == ts[offset], f"for_timestamp(t0{target - t0:+d}) timestamp"
    assert list_offsets(tp0, OffsetSpec.for_timestamp(t0 + 100_001)).offset == -1

    c = make_consumer(broker)
    try:
        assert c.get_watermark_offsets(tp0, timeout=TIMEOUT, cached=False) == (0, 50)
        assert c.get_watermark_offsets(tp1, timeout=TIMEOUT, cached=False) == (0, 0)
        for target, offset in cases.items():
            r = c.offsets_for_times([TopicPartition(topic, 0, target)], timeout=TIMEOUT)
            assert r[0].error is None
            assert r[0].offset == offset, f"offsets_for_times(t0{target - t0:+d}) -> {r[0].offset}"
        r = c.offsets_for_times([TopicPartition(topic, 0, t0 + 100_001),
                                 TopicPartition(topic, 1, t0)], timeout=TIMEOUT)
        assert [x.offset for x in r] == [OFFSET_END, OFFSET_END]
    finally:
        c.close()

    # Reading from a looked-up offset starts at that record.
    got = consume(broker, topic, {0: 11}, start={0: 10})[0]
    assert [(g.offset(), g.value(), g.timestamp()[1]) for g in got] == [(10, b"value-10", ts[10])]


@pytest.mark.brook_opts(**{"log.retention.check.interval.ms": "100"})
def test_retention_moves_earliest_offset(broker):
    """With small segments and retention.bytes, retention deletes the oldest segments:
    ListOffsets earliest moves up, the latest stays, the kept records are intact, a fetch below
    the log start is OFFSET_OUT_OF_RANGE, and a timestamp lookup before the log start gives
    the new earliest offset."""
    topic = "retained"
    create_topic(broker, topic, 1, {"segment.bytes": "16384", "retention.bytes": "32768"})
    rnd = random.Random(3)
    t0 = int(time.time() * 1000) - 60_000
    msgs = [Msg(index=i, partition=0, key=b"%d" % i, value=rnd.randbytes(1000), timestamp=t0 + i)
            for i in range(400)]
    p = make_producer(broker)
    for chunk in range(40):
        assert not produce_all(p, topic, msgs[chunk * 10:(chunk + 1) * 10])
    del p
    check_delivered_offsets(msgs)

    admin = admin_client(broker)
    tp = TopicPartition(topic, 0)
    earliest = 0
    d = Deadline(60)
    while earliest == 0:
        assert d, "retention never deleted a segment (earliest offset still 0)"
        earliest = admin.list_offsets({tp: OffsetSpec.earliest()}, request_timeout=TIMEOUT)[tp].result(TIMEOUT).offset
        if earliest == 0:
            time.sleep(0.2)
    assert 0 < earliest < 400
    assert admin.list_offsets({tp: OffsetSpec.latest()}, request_timeout=TIMEOUT)[tp].result(TIMEOUT).offset == 400
    # Deletion is by whole segments, oldest first: what is left is the tail of the log; read
    # from the earliest offset the broker reports now (it may move further meanwhile).
    earliest = admin.list_offsets({tp: OffsetSpec.earliest()}, request_timeout=TIMEOUT)[tp].result(TIMEOUT).offset
    got = consume(broker, topic, {0: 400}, start={0: earliest})[0]
    compare(msgs[earliest:], [to_got(g) for g in got])

    c = make_consumer(broker)
    try:
        r = c.offsets_for_times([TopicPartition(topic, 0, t0)], timeout=TIMEOUT)
        assert earliest <= r[0].offset < 400, f"timestamp before the log start -> {r[0].offset}"
        lo, hi = c.get_watermark_offsets(tp, timeout=TIMEOUT, cached=False)
        assert lo >= earliest and hi == 400
        # Offset 0 is gone: the fetch fails with OFFSET_OUT_OF_RANGE (reset policy "error").
        c.assign([TopicPartition(topic, 0, 0)])
        d = Deadline(30)
        while True:
            assert d, "no error for a fetch below the log start offset"
            m = c.poll(0.5)
            if m is None:
                continue
            assert m.error() is not None, f"fetched offset {m.offset()} below the log start {lo}"
            assert m.error().code() in (KafkaError._AUTO_OFFSET_RESET, KafkaError.OFFSET_OUT_OF_RANGE), m.error()
            break
    finally:
        c.close()


def test_acked_writes_survive_kill9(broker):
    """acks=all idempotent producer. Wave 1 is acknowledged, then the node is SIGKILLed in the
    middle of wave 2 and restarted on the same port and data directory; the producer carries
    on. Every message is delivered exactly once, and every record is where its delivery report
    said, in produce order, through the crash and through a second kill -9 after a flush."""
    topic = "durable"
    create_topic(broker, topic, 3)
    wave1 = make_messages(seed=11, partitions=3, n_small=1500, n_medium=10, large=[])
    wave2 = make_messages(seed=12, partitions=3, n_small=4000, n_medium=10, large=[])
    for i, m in enumerate(wave2):
        m.index = len(wave1) + i
    errors = Errors()
    p = make_producer(broker, errors, **{"linger.ms": 2, "batch.num.messages": 50})
    assert not produce_all(p, topic, wave1)
    check_delivered_offsets(wave1)

    failures = []
    acked = []

    def on_delivery(m):
        def cb(err, rec):
            if err is not None:
                failures.append((m, err))
            else:
                m.offset = rec.offset()
                acked.append(m)
        return cb

    for m in wave2:
        while True:
            try:
                p.produce(topic, partition=m.partition, key=m.key, value=m.value,
                          headers=m.headers or None, timestamp=m.timestamp, on_delivery=on_delivery(m))
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    d = Deadline(60)
    while len(acked) < 300:
        assert d, f"only {len(acked)} of wave 2 acknowledged"
        p.poll(0.01)
    acked_before_kill = list(acked)
    broker.kill9()
    assert len(acked_before_kill) < len(wave2), "wave 2 finished before the kill; nothing was in flight"
    broker.restart()
    left = p.flush(90)
    assert left == 0, f"{left} messages undelivered after the restart"
    assert not failures, f"{len(failures)} delivery failures, e.g. {failures[0][0].describe()}: {failures[0][1]}"
    errors.assert_no_fatal()
    del p

    everything = wave1 + wave2
    check_roundtrip(broker, topic, everything)

    # Acknowledged, flushed, then kill -9 with nothing in flight: all of it is still there.
    broker.kill9()
    broker.restart()
    check_roundtrip(broker, topic, everything)
