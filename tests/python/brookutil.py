"""Client-independent helpers for the Python client tests: the messages to produce and the
comparison of what came back with what the producer was told."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]

# Topic and client limits for the mixed-size tests: a 1 MiB value plus its record and batch
# framing is over Kafka's default 1 MiB limits, so the topic allows 4 MiB batches.
TOPIC_MAX_MESSAGE_BYTES = 4 * 1024 * 1024
CLIENT_MAX_REQUEST_BYTES = 8 * 1024 * 1024

# (size, kind) of the large values mixed into every codec run. "random" does not compress,
# so the batch on the wire is over 1 MiB even when compressed.
LARGE_VALUES = [
    (262_144, "text"),
    (524_288, "random"),
    (1_000_000, "random"),
    (1_048_576, "random"),
    (1_048_576, "text"),
]

HEADER_KEYS = ["trace-id", "content-type", "x", "dup", "ünïcødé-ключ", ""]


@dataclass
class Msg:
    index: int
    partition: int
    key: bytes | None
    value: bytes | None
    headers: list = field(default_factory=list)
    timestamp: int = 0
    # Filled in from the delivery report / RecordMetadata.
    offset: int | None = None

    def describe(self) -> str:
        return (
            f"msg #{self.index} p{self.partition}@{self.offset} key={short(self.key)} "
            f"value={short(self.value)} headers={[(k, short(v)) for k, v in self.headers]} "
            f"ts={self.timestamp}"
        )


def short(b: bytes | None) -> str:
    if b is None:
        return "None"
    if len(b) <= 24:
        return repr(b)
    return f"<{len(b)} B {b[:12]!r}...>"


def text_bytes(rng: random.Random, n: int) -> bytes:
    words = [b"brook", b"kafka", b"partition", b"offset", b"segment", b"sled", b"actor", b"\n"]
    out = bytearray()
    while len(out) < n:
        out += rng.choice(words) + b" "
    return bytes(out[:n])


def some_bytes(rng: random.Random, n: int) -> bytes:
    return rng.randbytes(n) if rng.random() < 0.5 else text_bytes(rng, n)


def make_messages(
    seed: int,
    partitions: int,
    n_small: int = 2000,
    n_medium: int = 30,
    large: list[tuple[int, str]] | None = None,
    null_header_values: bool = True,
    null_key_and_value: bool = True,
) -> list[Msg]:
    """Mostly small messages with every combination of null/empty/non-empty keys, values and
    headers, some medium (1-64 KiB) and a few large (up to 1 MiB) ones spread among them. Each
    message has an explicit partition and a distinct CreateTime timestamp."""
    rng = random.Random(seed)
    large = LARGE_VALUES if large is None else large
    base_ts = int(time.time() * 1000) - 3_600_000
    msgs: list[Msg] = []

    def key() -> bytes | None:
        r = rng.random()
        if r < 0.2:
            return None
        if r < 0.25:
            return b""
        if r < 0.8:
            return b"key-%d" % rng.randrange(1000)
        return rng.randbytes(rng.randrange(1, 64))

    def headers() -> list:
        if rng.random() < 0.6:
            return []
        hs = []
        for _ in range(rng.randrange(1, 4)):
            k = rng.choice(HEADER_KEYS)
            if null_header_values and rng.random() < 0.1:
                v = None
            else:
                v = some_bytes(rng, rng.choice([0, 1, 8, 36, 200]))
            hs.append((k, v))
        if rng.random() < 0.2:
            hs.append(hs[0])  # repeated header keys keep their order and multiplicity
        return hs

    sizes: list[tuple[str, int]] = [("small", 0)] * n_small + [("medium", 0)] * n_medium
    sizes += [("large", i) for i in range(len(large))]
    rng.shuffle(sizes)
    for i, (kind, which) in enumerate(sizes):
        if kind == "small":
            r = rng.random()
            if r < 0.05:
                value = None
            elif r < 0.10:
                value = b""
            else:
                value = some_bytes(rng, rng.choice([1, 2, 10, 50, 100, 300, 1000]))
        elif kind == "medium":
            value = some_bytes(rng, rng.randrange(1024, 65536))
        else:
            n, how = large[which]
            value = rng.randbytes(n) if how == "random" else text_bytes(rng, n)
        k = key()
        if k is None and value is None and not null_key_and_value:
            value = b""
        msgs.append(
            Msg(
                index=i,
                partition=rng.randrange(partitions),
                key=k,
                value=value,
                headers=headers(),
                timestamp=base_ts + i,
            )
        )
    return msgs


def by_partition(msgs: list[Msg]) -> dict[int, list[Msg]]:
    out: dict[int, list[Msg]] = {}
    for m in msgs:
        out.setdefault(m.partition, []).append(m)
    return out


def check_delivered_offsets(msgs: list[Msg]) -> dict[int, list[Msg]]:
    """Every message got an offset; per partition the offsets are 0, 1, 2, ... in the order the
    messages were produced (no gap, no duplicate, order kept). Returns the messages by partition
    in offset order."""
    parts = by_partition(msgs)
    for p, ms in parts.items():
        offsets = [m.offset for m in ms]
        assert None not in offsets, f"p{p}: some messages got no offset"
        assert offsets == list(range(len(ms))), (
            f"p{p}: delivered offsets are not 0..{len(ms) - 1} in produce order: "
            f"first difference at {first_diff(offsets, list(range(len(ms))))}"
        )
    return parts


def first_diff(a: list, b: list):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return f"index {i}: {x!r} != {y!r}"
    return f"lengths {len(a)} != {len(b)}"


@dataclass
class Got:
    """A consumed record, client-independent."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list
    timestamp: int
    create_time: bool


def compare(expected: list[Msg], got: list[Got], check_ts: bool = True) -> None:
    """`got` (one partition, in consumption order) is exactly `expected` (in offset order)."""
    assert len(got) == len(expected), (
        f"consumed {len(got)} records, expected {len(expected)}; "
        f"offsets consumed: {[g.offset for g in got][:20]}..."
    )
    for m, g in zip(expected, got):
        where = f"{m.describe()} vs consumed p{g.partition}@{g.offset}"
        assert g.offset == m.offset, f"offset differs: {where}"
        assert g.key == m.key, f"key differs ({short(g.key)}): {where}"
        assert g.value == m.value, f"value differs ({short(g.value)}): {where}"
        assert list(g.headers) == list(m.headers), f"headers differ ({g.headers!r}): {where}"
        if check_ts:
            assert g.create_time, f"timestamp type is not CreateTime: {where}"
            assert g.timestamp == m.timestamp, f"timestamp differs ({g.timestamp}): {where}"


class Deadline:
    """A bounded wait: `while d.left(): ...`."""

    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return max(0.0, self.end - time.monotonic())

    def __bool__(self) -> bool:
        return self.left() > 0


def wait_until(what: str, check, timeout: float, interval: float = 0.1, on_timeout=None):
    """Calls `check` until it returns something truthy; fails with `what` and the last value
    (or exception) after `timeout` seconds, after calling `on_timeout` (for diagnostics)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            result = check()
            if result:
                return result
            last = result
        except Exception as e:  # noqa: BLE001 - reported on timeout
            last = f"{type(e).__name__}: {e}"
        if time.monotonic() > deadline:
            if on_timeout is not None:
                on_timeout()
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


def read_values(config: dict, topic: str, count: int, timeout: float = 30.0) -> list[bytes]:
    """Up to `count` values of `topic` from the beginning, read by a consumer of a fresh group
    (confluent-kafka with `config`), within `timeout` seconds."""
    from confluent_kafka import Consumer

    consumer = Consumer({**config, "group.id": f"g-{random.getrandbits(40):x}",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                got.append(msg.value())
    finally:
        consumer.close()
    return got


def produce_and_read_back(config: dict, topic: str, count: int = 10,
                          timeout: float = 30.0) -> list[bytes]:
    """Produces `<topic>-0` .. `<topic>-<count-1>` with acks=all, then reads them back."""
    from confluent_kafka import Producer

    producer = Producer({**config, "acks": "all"})
    for i in range(count):
        producer.produce(topic, f"{topic}-{i}".encode())
    assert producer.flush(timeout) == 0, "messages left undelivered"
    return read_values(config, topic, count, timeout)


def authorized_node(admin: str, password: str, **extra: str) -> dict:
    """Settings of a node with a SASL_PLAINTEXT listener (SCRAM), `admin` as its bootstrap
    user and only super user, and ACLs on."""
    return {
        "listener.security.protocol.map": "PLAINTEXT:SASL_PLAINTEXT",
        "sasl.enabled.mechanisms": "SCRAM-SHA-256,SCRAM-SHA-512",
        "brook.sasl.bootstrap.user": admin,
        "brook.sasl.bootstrap.password": password,
        "super.users": f"User:{admin}",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        **extra,
    }
