"""Consumer groups with kafka-python against a real brook node.

Two `KafkaConsumer`s in one group, each in its own thread (a kafka-python consumer must be used
from one thread: the test reaches it through `KPMember.call`), consume everything and commit;
`committed()` reports the end offsets; when one member leaves, the other gets every partition in
a new generation and carries on from the committed offsets.
"""

from __future__ import annotations

import faulthandler
import queue
import threading
import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

import brookutil

TIMEOUT = 45.0
POLL_MS = 1000

pytestmark = pytest.mark.brook_opts(**{"group.initial.rebalance.delay.ms": "0"})


def wait_until(what: str, check, timeout: float = TIMEOUT, interval: float = 0.1):
    # On a timeout, show which thread is stuck where (a kafka-python consumer thread that
    # stopped polling shows up here).
    return brookutil.wait_until(
        what, check, timeout, interval, on_timeout=lambda: faulthandler.dump_traceback(all_threads=True)
    )


class KPMember(threading.Thread):
    """A KafkaConsumer polled by its own thread; it commits synchronously after every non-empty
    poll. `call(fn)` runs fn(consumer) on that thread and returns its result."""

    def __init__(self, name: str, bootstrap: str, group: str, topic: str, consumed: list, lock):
        super().__init__(name=f"kp-{name}", daemon=True)
        self.member = name
        self.consumed = consumed
        self.lock = lock
        self.commands: queue.Queue = queue.Queue()
        self.stop_flag = threading.Event()
        self.error: BaseException | None = None
        self.commit_errors: list[str] = []
        self.topic = topic
        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=group,
            client_id=f"kp-{name}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=6000,
            heartbeat_interval_ms=500,
            fetch_max_wait_ms=100,
        )

    def run(self) -> None:
        c = self.consumer
        try:
            # kafka-python 3.0.12 client races, worked around here so that the test checks brook:
            # - A group leader assigns from the topic snapshot its coordinator took at its last
            #   metadata update. If that update came before subscribe(), the leader assigns
            #   nothing and rejoins once it sees the partitions. So wait until the coordinator's
            #   snapshot holds the topic's partitions (the subscribe triggers that update).
            # - A poll whose timeout expires just as its JoinGroup/SyncGroup task completes drops
            #   the result: the member never applies that generation nor heartbeats again and is
            #   expelled after its session timeout. A 1 s poll keeps that window small (the poll
            #   returns as soon as records arrive; commands to the member wait up to one poll).
            assert c.partitions_for_topic(self.topic), f"no partitions known for {self.topic}"
            c.subscribe([self.topic])
            deadline = time.monotonic() + TIMEOUT
            while not c._coordinator._metadata_snapshot.get(self.topic):
                assert time.monotonic() < deadline, f"{self.topic} never reached the group snapshot"
                time.sleep(0.05)
            while not self.stop_flag.is_set():
                batches = c.poll(timeout_ms=POLL_MS)
                got = [r for rs in batches.values() for r in rs]
                if got:
                    with self.lock:
                        for r in got:
                            self.consumed.append((self.member, r.partition, r.offset, r.value.decode()))
                    try:
                        c.commit()
                    except Exception as e:  # noqa: BLE001 - a commit during a rebalance may fail
                        self.commit_errors.append(f"{type(e).__name__}: {e}")
                while True:
                    try:
                        fn, out = self.commands.get_nowait()
                    except queue.Empty:
                        break
                    try:
                        out.put((True, fn(c)))
                    except Exception as e:  # noqa: BLE001 - re-raised in the caller
                        out.put((False, e))
        except BaseException as e:  # noqa: BLE001
            self.error = e
        finally:
            c.close(autocommit=False)  # LeaveGroup

    def call(self, fn, timeout: float = 30.0):
        out: queue.Queue = queue.Queue()
        self.commands.put((fn, out))
        ok, value = out.get(timeout=timeout)
        if not ok:
            raise value
        return value

    def assignment(self) -> set[int]:
        return {tp.partition for tp in self.call(lambda c: c.assignment())}

    def generation(self) -> int:
        return self.call(lambda c: c._coordinator._generation.generation_id)

    def committed(self, topic: str, parts) -> dict[int, int | None]:
        return self.call(lambda c: {p: c.committed(TopicPartition(topic, p)) for p in parts})

    def leave(self) -> None:
        self.stop_flag.set()
        self.join(timeout=30)
        assert not self.is_alive(), f"{self.member} did not close within 30s"


def produce(bootstrap: str, topic: str, tag: str, n: int, parts: list[int]) -> dict[int, int]:
    """n distinct values `tag-i` round-robin over parts with acks=all; returns the end offsets."""
    p = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        futures = [p.send(topic, value=f"{tag}-{i}".encode(), partition=parts[i % len(parts)])
                   for i in range(n)]
        p.flush(timeout=TIMEOUT)
        ends: dict[int, int] = {q: 0 for q in parts}
        for f in futures:
            md = f.get(timeout=TIMEOUT)
            ends[md.partition] = max(ends[md.partition], md.offset + 1)
        return ends
    finally:
        p.close()


def test_kafka_python_group_commits_and_rebalances_when_a_member_leaves(broker):
    topic, group, parts = "kp-groups", "kp-group", [0, 1, 2, 3]
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])
        consumed: list = []
        lock = threading.Lock()
        members = [KPMember(n, broker.bootstrap, group, topic, consumed, lock) for n in ("m1", "m2")]
        m1, m2 = members
        try:
            for m in members:
                m.start()
            def check_settled():
                a1, a2 = m1.assignment(), m2.assignment()
                if not (a1 and a2 and not (a1 & a2) and (a1 | a2) == set(parts)):
                    raise AssertionError(f"m1 {a1}, m2 {a2}")
                return a1, a2

            a1, a2 = wait_until("m1 and m2 to split the partitions", check_settled)
            gen1 = m1.generation()
            assert m2.generation() == gen1, "members report different generations"

            ends = produce(broker.bootstrap, topic, "p1", 800, parts)
            values1 = {f"p1-{i}" for i in range(800)}

            def values():
                with lock:
                    return {v for _, _, _, v in consumed}

            wait_until("all 800 messages to be consumed", lambda: values() >= values1)
            assert values() == values1
            with lock:
                for member, p, _, v in consumed:
                    assert p in (a1 if member == "m1" else a2), f"{v} on p{p} consumed by {member}"

            # committed() (OffsetFetch through the coordinator) reports the end offsets, for
            # every partition, from both members.
            for m in members:
                wait_until(f"{m.member}.committed() to report the end offsets {ends}",
                           lambda m=m: m.committed(topic, parts) == ends)
            offsets = admin.list_group_offsets(group)[group]
            assert {tp.partition: om.offset for tp, om in offsets.items() if tp.topic == topic} == ends

            # m2 leaves: m1 gets every partition in a new generation.
            t_leave = time.monotonic()
            m2.leave()
            wait_until("m1 to own every partition after m2 left", lambda: m1.assignment() == set(parts))
            gen2 = m1.generation()
            print(f"m1 owns everything {time.monotonic() - t_leave:.2f}s after m2 left; "
                  f"generation {gen1} -> {gen2}")
            assert gen2 > gen1, f"generation {gen2} after a member left, was {gen1}"
            assert m2.error is None, m2.error

            ends2 = produce(broker.bootstrap, topic, "p2", 200, parts)
            values2 = {f"p2-{i}" for i in range(200)}
            wait_until("the second batch to be consumed by m1", lambda: values() >= values2)
            assert values() == values1 | values2, "lost or foreign messages"
            # m1 resumed m2's partitions at their committed offsets: no p1 message twice.
            with lock:
                counts: dict[str, int] = {}
                for _, _, _, v in consumed:
                    counts[v] = counts.get(v, 0) + 1
            assert all(k == 1 for k in counts.values()), (
                f"redelivered: {[v for v, k in counts.items() if k > 1][:10]}")
            wait_until(f"m1.committed() to report {ends2}", lambda: m1.committed(topic, parts) == ends2)
            assert m1.error is None, m1.error
            assert not m1.commit_errors, m1.commit_errors
            described = admin.describe_groups([group])
            print("describe_groups:", described)
        finally:
            for m in members:
                if m.is_alive():
                    m.leave()
    finally:
        admin.close()
