"""Consumer groups with confluent-kafka (librdkafka) against real brook clusters.

Members run either as threads of this process (`Member`) or, when a test must SIGKILL one, as
child processes running this file as a script (`ChildMember`, see `child_main`), which report
what they do as JSON lines on stdout. Every message value is distinct, so "everything consumed"
is a set equality and duplicates are visible.

Committed offsets are read two ways: through the coordinator as clients do
(`AdminClient.list_consumer_group_offsets`), and from every node separately with a raw
OffsetFetch (`brookcluster.offset_fetch_from`): brook answers it on any node from the Raft copy.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

import brookutil
from brookcluster import BrookCluster, cluster, offset_fetch_from  # noqa: F401 - fixture

TIMEOUT = 45.0
SESSION_TIMEOUT_MS = 6000


# -- helpers ------------------------------------------------------------------------------------


def wait_until(what: str, check, timeout: float = TIMEOUT, interval: float = 0.1):
    return brookutil.wait_until(what, check, timeout, interval)
def create_topic(c: BrookCluster, name: str, partitions: int | None = None,
                 assignment: list[list[int]] | None = None) -> None:
    admin = AdminClient({"bootstrap.servers": c.bootstrap})
    if assignment is not None:
        # librdkafka wants the partition count with an assignment (-1 means "broker default").
        partitions = len(assignment)
        topic = NewTopic(name, num_partitions=partitions, replica_assignment=assignment)
    else:
        topic = NewTopic(name, num_partitions=partitions, replication_factor=1)
    admin.create_topics([topic], operation_timeout=30)[name].result(timeout=TIMEOUT)

    def led_everywhere():
        for i in c.up_ids():
            md = AdminClient({"bootstrap.servers": c.addr(i)}).list_topics(name, timeout=5)
            t = md.topics.get(name)
            if t is None or t.error is not None or len(t.partitions) != partitions:
                return False
            if any(p.leader < 0 for p in t.partitions.values()):
                return False
        return True

    wait_until(f"{name} with {partitions} led partitions on every running node", led_everywhere)


def owners(c: BrookCluster, topic: str) -> dict[int, int]:
    md = AdminClient({"bootstrap.servers": c.bootstrap}).list_topics(topic, timeout=10)
    return {p: pm.leader for p, pm in md.topics[topic].partitions.items()}


def produce(bootstrap: str, topic: str, tag: str, n: int, partitions: list[int]) -> dict[str, tuple[int, int]]:
    """Produces `n` distinct values `tag-i` round-robin over `partitions` with acks=all; returns
    {value: (partition, offset)} from the delivery reports."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    delivered: dict[str, tuple[int, int]] = {}
    errors = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(err)
        else:
            delivered[msg.value().decode()] = (msg.partition(), msg.offset())

    for i in range(n):
        while True:
            try:
                p.produce(topic, value=f"{tag}-{i}".encode(), partition=partitions[i % len(partitions)],
                          on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    left = p.flush(TIMEOUT)
    assert left == 0, f"{left} messages not delivered within {TIMEOUT}s"
    assert not errors, f"delivery errors: {errors[:5]}"
    assert len(delivered) == n
    return delivered


def end_offsets(delivered: dict[str, tuple[int, int]], partitions) -> dict[int, int]:
    ends = {p: 0 for p in partitions}
    for p, o in delivered.values():
        ends[p] = max(ends[p], o + 1)
    return ends


def committed_via_coordinator(bootstrap: str, group: str, topic: str, partitions) -> dict[int, int]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    req = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in partitions])
    res = admin.list_consumer_group_offsets([req])[group].result(timeout=15)
    out = {}
    for tp in res.topic_partitions:
        if tp.error is not None:
            raise KafkaException(tp.error)
        out[tp.partition] = tp.offset
    return out


def wait_committed(bootstrap: str, group: str, topic: str, want: dict[int, int]) -> None:
    """The coordinator (found as clients find it) reports `want` as the committed offsets."""

    def ok():
        have = committed_via_coordinator(bootstrap, group, topic, list(want))
        if have != want:
            raise AssertionError(f"committed {have}")
        return True

    wait_until(f"group {group}'s committed offsets to reach {want}", ok)


def wait_committed_on_every_node(c: BrookCluster, group: str, topic: str, want: dict[int, int]) -> None:
    """A raw OffsetFetch to each running node returns `want` (each answers from its Raft copy,
    which may trail the leader briefly)."""
    for i in c.up_ids():
        def ask():
            have = offset_fetch_from(c.addr(i), i, group, topic, sorted(want))
            if have != want:
                raise AssertionError(f"node {i} answers {have}")
            return True

        wait_until(f"node {i} to report committed offsets {want} for {group}", ask, timeout=20)


class Record:
    """What the members of one group did, shared by their threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.consumed: list[tuple[str, int, int, str]] = []  # (member, partition, offset, value)
        self.events: list[tuple[float, str, str, list[int]]] = []  # (t, member, kind, partitions)
        self.owner: dict[int, str] = {}
        self.violations: list[str] = []
        self.commit_errors: list[str] = []
        self.errors: list[str] = []

    def assigned(self, member: str, parts: list[int]) -> None:
        with self.lock:
            self.events.append((time.monotonic(), member, "assign", sorted(parts)))
            for p in parts:
                held = self.owner.get(p)
                if held is not None and held != member:
                    self.violations.append(f"p{p} assigned to {member} while {held} owns it")
                self.owner[p] = member

    def revoked(self, member: str, parts: list[int], kind: str = "revoke") -> None:
        with self.lock:
            self.events.append((time.monotonic(), member, kind, sorted(parts)))
            for p in parts:
                if self.owner.get(p) == member:
                    del self.owner[p]

    def owned_by(self) -> dict[str, list[int]]:
        with self.lock:
            out: dict[str, list[int]] = {}
            for p, m in self.owner.items():
                out.setdefault(m, []).append(p)
            return {m: sorted(ps) for m, ps in out.items()}

    def values(self) -> set[str]:
        with self.lock:
            return {v for _, _, _, v in self.consumed}


def consumer_conf(bootstrap: str, group: str, extra: dict | None = None) -> dict:
    conf = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "session.timeout.ms": SESSION_TIMEOUT_MS,
        "heartbeat.interval.ms": 500,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "fetch.wait.max.ms": 100,
        "topic.metadata.refresh.interval.ms": 2000,
    }
    conf.update(extra or {})
    return conf


def commit_batch(consumer: Consumer, topic: str, msgs) -> dict[int, int]:
    """Synchronously commits the offsets after the last message of each partition in `msgs`."""
    last: dict[int, int] = {}
    for m in msgs:
        last[m.partition()] = max(last.get(m.partition(), -1), m.offset())
    offsets = [TopicPartition(topic, p, o + 1) for p, o in last.items()]
    if offsets:
        consumer.commit(offsets=offsets, asynchronous=False)
    return {p: o + 1 for p, o in last.items()}


class Member(threading.Thread):
    """A group member in a thread: consume, record, commit synchronously after each batch."""

    def __init__(self, name: str, bootstrap: str, group: str, topic: str, rec: Record,
                 extra: dict | None = None):
        super().__init__(name=f"member-{name}", daemon=True)
        self.member = name
        self.topic = topic
        self.rec = rec
        self.conf = consumer_conf(bootstrap, group, extra)
        self.stop_flag = threading.Event()
        self.closed = threading.Event()

    def run(self) -> None:
        c = Consumer(self.conf)
        rec = self.rec
        c.subscribe(
            [self.topic],
            on_assign=lambda _c, ps: rec.assigned(self.member, [tp.partition for tp in ps]),
            on_revoke=lambda _c, ps: rec.revoked(self.member, [tp.partition for tp in ps]),
            on_lost=lambda _c, ps: rec.revoked(self.member, [tp.partition for tp in ps], "lost"),
        )
        try:
            while not self.stop_flag.is_set():
                msgs = c.consume(num_messages=200, timeout=0.2)
                good = []
                for m in msgs:
                    if m.error():
                        if m.error().code() != KafkaError._PARTITION_EOF:
                            with rec.lock:
                                rec.errors.append(f"{self.member}: {m.error()}")
                        continue
                    good.append(m)
                with rec.lock:
                    for m in good:
                        rec.consumed.append((self.member, m.partition(), m.offset(), m.value().decode()))
                try:
                    commit_batch(c, self.topic, good)
                except KafkaException as e:
                    with rec.lock:
                        rec.commit_errors.append(f"{self.member}: {e}")
        finally:
            c.close()  # LeaveGroup
            self.closed.set()

    def stop(self) -> None:
        self.stop_flag.set()
        self.join(timeout=30)
        assert not self.is_alive(), f"member {self.member} did not close within 30s"


def stop_all(members) -> None:
    for m in members:
        m.stop_flag.set()
    for m in members:
        m.stop()


def wait_settled(rec: Record, names: list[str], partitions: list[int], what: str = "",
                 timeout: float = TIMEOUT) -> dict[str, list[int]]:
    """Waits until every partition is owned and each of `names` owns some, none shared (the
    owner map cannot hold a partition twice; overlaps are recorded as violations)."""

    def settled():
        owned = rec.owned_by()
        if set(owned) != set(names):
            return False
        if sorted(p for ps in owned.values() for p in ps) != sorted(partitions):
            return False
        return owned

    return wait_until(f"the group to settle with members {names} over {partitions} {what}",
                      settled, timeout=timeout)


# -- 1: three members on a 3-node cluster -------------------------------------------------------


def test_three_members_consume_everything_and_every_node_reports_the_commits(cluster):
    topic, group, parts = "g1-topic", "g1", list(range(12))
    create_topic(cluster, topic, 12)
    assert set(owners(cluster, topic).values()) == {1, 2, 3}, "partitions should span all nodes"
    rec = Record()
    members = [Member(n, cluster.bootstrap, group, topic, rec) for n in ("a", "b", "c")]
    for m in members:
        m.start()
    try:
        owned = wait_settled(rec, ["a", "b", "c"], parts)
        sizes = sorted(len(ps) for ps in owned.values())
        assert sizes == [4, 4, 4], f"unbalanced assignment {owned}"
        events_at_settle = len(rec.events)

        delivered = produce(cluster.bootstrap, topic, "g1", 3000, parts)
        want = end_offsets(delivered, parts)
        wait_until("all 3000 messages to be consumed", lambda: rec.values() >= set(delivered), timeout=60)
        assert rec.values() == set(delivered), "consumed values that were never produced"
        wait_committed(cluster.bootstrap, group, topic, want)

        with rec.lock:
            later_events = rec.events[events_at_settle:]
            consumed = list(rec.consumed)
        assert not rec.violations, f"partitions owned twice: {rec.violations}"
        assert not later_events, f"the stable group rebalanced while consuming: {later_events}"
        assert not rec.errors, rec.errors
        # Each message was consumed once, by the member that owns its partition.
        seen: dict[str, int] = {}
        for member, p, _o, v in consumed:
            seen[v] = seen.get(v, 0) + 1
            assert p in owned[member], f"{v} on p{p} consumed by {member}, which owns {owned[member]}"
        dups = {v: k for v, k in seen.items() if k > 1}
        assert not dups, f"{len(dups)} messages consumed more than once in a stable group: {list(dups)[:10]}"
        assert not rec.commit_errors, rec.commit_errors[:5]
    finally:
        stop_all(members)

    # Every node has the commits in its Raft copy.
    wait_committed_on_every_node(cluster, group, topic, want)


# -- 2: a member is SIGKILLed; another leaves with close() -------------------------------------


class ChildMember:
    """A group member in a child process (this file run as a script), killable with SIGKILL.
    Its stdout is JSON lines: assign/revoke/lost events, consumed messages, commits."""

    def __init__(self, name: str, bootstrap: str, group: str, topic: str, rec: Record, logdir: Path):
        self.name = name
        self.rec = rec
        self.commits: dict[int, int] = {}  # last acknowledged commit per partition
        self.commit_lock = threading.Lock()
        self.stderr = open(logdir / f"child-{name}.stderr", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--child", name, bootstrap, group, topic],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, text=True, bufsize=1,
        )
        self.exited = threading.Event()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            kind = ev["ev"]
            if kind == "assign":
                self.rec.assigned(self.name, ev["parts"])
            elif kind in ("revoke", "lost"):
                self.rec.revoked(self.name, ev["parts"], kind)
            elif kind == "msgs":
                with self.rec.lock:
                    for p, o, v in ev["msgs"]:
                        self.rec.consumed.append((self.name, p, o, v))
            elif kind == "commit":
                with self.commit_lock:
                    self.commits.update({int(p): o for p, o in ev["offsets"].items()})
            elif kind == "error":
                with self.rec.lock:
                    self.rec.errors.append(f"{self.name}: {ev['error']}")
        self.exited.set()

    def command(self, text: str) -> None:
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def close(self) -> None:
        """Graceful: the child calls close() (LeaveGroup) and exits."""
        self.command("close")

    def reap(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self.stderr.close()


def child_main(name: str, bootstrap: str, group: str, topic: str) -> None:
    """The child side of ChildMember: commands on stdin are `commit off` (stop committing)
    and `close` (close the consumer, i.e. LeaveGroup, and exit)."""
    out_lock = threading.Lock()

    def emit(**ev):
        with out_lock:
            sys.stdout.write(json.dumps(ev) + "\n")
            sys.stdout.flush()

    state = {"commit": True, "close": False}

    def commands():
        for line in sys.stdin:
            cmd = line.strip()
            if cmd == "commit off":
                state["commit"] = False
            elif cmd == "close":
                state["close"] = True

    threading.Thread(target=commands, daemon=True).start()
    c = Consumer(consumer_conf(bootstrap, group))
    c.subscribe(
        [topic],
        on_assign=lambda _c, ps: emit(ev="assign", parts=[tp.partition for tp in ps]),
        on_revoke=lambda _c, ps: emit(ev="revoke", parts=[tp.partition for tp in ps]),
        on_lost=lambda _c, ps: emit(ev="lost", parts=[tp.partition for tp in ps]),
    )
    while not state["close"]:
        msgs = c.consume(num_messages=200, timeout=0.2)
        good = []
        for m in msgs:
            if m.error():
                if m.error().code() != KafkaError._PARTITION_EOF:
                    emit(ev="error", error=str(m.error()))
                continue
            good.append(m)
        if good:
            emit(ev="msgs", msgs=[[m.partition(), m.offset(), m.value().decode()] for m in good])
            if state["commit"]:
                try:
                    emit(ev="commit", offsets=commit_batch(c, topic, good))
                except KafkaException as e:
                    emit(ev="error", error=f"commit: {e}")
    c.close()
    emit(ev="closed")


def test_killed_member_is_replaced_after_session_timeout_and_leaving_member_at_once(cluster, tmp_path):
    topic, group, parts = "g2-topic", "g2", list(range(6))
    create_topic(cluster, topic, 6)
    rec = Record()
    kids = {n: ChildMember(n, cluster.bootstrap, group, topic, rec, tmp_path) for n in ("a", "b", "c")}
    try:
        owned = wait_settled(rec, ["a", "b", "c"], parts)
        produced: dict[str, tuple[int, int]] = {}

        # Batch 1: consumed and committed by everyone.
        b1 = produce(cluster.bootstrap, topic, "b1", 300, parts)
        produced.update(b1)
        want1 = end_offsets(b1, parts)
        wait_until("batch 1 to be consumed", lambda: rec.values() >= set(b1))
        wait_committed(cluster.bootstrap, group, topic, want1)

        # Batch 2: c consumes its share but commits none of it.
        victim = "c"
        victim_parts = owned[victim]
        kids[victim].command("commit off")
        time.sleep(0.5)  # the command is read by the child's stdin thread before batch 2 arrives
        b2 = produce(cluster.bootstrap, topic, "b2", 300, parts)
        produced.update(b2)
        want2 = end_offsets(b2, parts)
        wait_until("batch 2 to be consumed", lambda: rec.values() >= set(b2))
        survivors_parts = [p for p in parts if p not in victim_parts]
        wait_committed(cluster.bootstrap, group, topic,
                       {p: (want2[p] if p in survivors_parts else want1[p]) for p in parts})

        with rec.lock:
            n_before = len(rec.consumed)
        t_kill = time.monotonic()
        kids[victim].kill9()
        rec.revoked(victim, victim_parts, "killed")  # it owns nothing any more (no callback)

        # The survivors take over c's partitions once its session timed out.
        def taken_over():
            o = rec.owned_by()
            return o if sorted(p for m in ("a", "b") for p in o.get(m, [])) == parts else False

        owned_after = wait_until("a and b to own every partition after c was killed", taken_over, timeout=30)
        takeover_s = time.monotonic() - t_kill
        print(f"takeover after SIGKILL: {takeover_s:.1f}s ({owned_after})")
        assert takeover_s >= (SESSION_TIMEOUT_MS / 1000) * 0.8, (
            f"c's partitions were reassigned {takeover_s:.1f}s after it was killed, before its "
            f"{SESSION_TIMEOUT_MS} ms session timed out")

        # They re-consume exactly c's uncommitted batch-2 messages, from its committed offsets.
        wait_until("c's uncommitted messages to be consumed again by a survivor",
                   lambda: all(
                       any(m != victim and p == vp and o == want2[vp] - 1
                           for m, p, o, _ in rec.consumed[n_before:])
                       for vp in victim_parts))
        with rec.lock:
            after = [(m, p, o) for m, p, o, _ in rec.consumed[n_before:] if p in victim_parts]
        for vp in victim_parts:
            offs = sorted(o for m, p, o in after if p == vp and m != victim)
            assert offs and offs[0] == want1[vp], (
                f"p{vp}: after the takeover consumption restarted at {offs[:3]}, expected c's "
                f"committed offset {want1[vp]}")
            assert offs == list(range(want1[vp], want2[vp])), (
                f"p{vp}: redelivered offsets {offs[:5]}... are not exactly the uncommitted "
                f"{want1[vp]}..{want2[vp] - 1}")

        # Batch 3: nothing lost, everything committed.
        b3 = produce(cluster.bootstrap, topic, "b3", 300, parts)
        produced.update(b3)
        want3 = end_offsets(b3, parts)
        wait_until("batch 3 to be consumed", lambda: rec.values() >= set(b3))
        wait_committed(cluster.bootstrap, group, topic, want3)
        assert rec.values() == set(produced)

        # b leaves with close(): a owns everything well before a session timeout.
        t_leave = time.monotonic()
        kids["b"].close()

        def a_owns_all():
            o = rec.owned_by()
            return o if o.get("a") == parts else False

        wait_until("a to own every partition after b left", a_owns_all, timeout=30)
        leave_s = time.monotonic() - t_leave
        print(f"rebalance after LeaveGroup: {leave_s:.2f}s")
        assert leave_s < (SESSION_TIMEOUT_MS / 1000) / 2, (
            f"a got b's partitions {leave_s:.1f}s after b's LeaveGroup; a leaving member should "
            f"trigger an immediate rebalance, not wait for the {SESSION_TIMEOUT_MS} ms session")
        assert kids["b"].exited.wait(15), "b did not exit after close()"

        b4 = produce(cluster.bootstrap, topic, "b4", 120, parts)
        produced.update(b4)
        wait_until("batch 4 to be consumed by a alone", lambda: rec.values() >= set(b4))
        wait_committed(cluster.bootstrap, group, topic, end_offsets(b4, parts))
        assert rec.values() == set(produced)
        assert not rec.violations, rec.violations
        assert not rec.errors, rec.errors[:5]
    finally:
        for k in kids.values():
            if k.proc.poll() is None:
                k.close()
        for k in kids.values():
            try:
                k.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            k.reap()


# -- 3: the coordinator's node is killed -------------------------------------------------------


def coordinator_of(bootstrap: str, group: str) -> int:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    d = admin.describe_consumer_groups([group], request_timeout=10)[group].result(timeout=15)
    return d.coordinator.id


def test_group_survives_its_coordinator_being_killed(cluster):
    topic, group = "g3-topic", "g3"
    coord = coordinator_of(cluster.bootstrap, group)
    others = [i for i in cluster.ids if i != coord]
    parts = list(range(6))
    create_topic(cluster, topic, assignment=[[others[p % 2]] for p in parts])
    assert set(owners(cluster, topic).values()) == set(others)

    rec = Record()
    members = [Member(n, cluster.bootstrap, group, topic, rec) for n in ("a", "b")]
    for m in members:
        m.start()
    watch_stop = threading.Event()
    history: list[tuple[float, int, dict[int, int]]] = []
    watch_errors: list[str] = []
    try:
        wait_settled(rec, ["a", "b"], parts)
        b1 = produce(cluster.bootstrap, topic, "c1", 300, parts)
        want1 = end_offsets(b1, parts)
        wait_until("batch 1 to be consumed", lambda: rec.values() >= set(b1))
        wait_committed(cluster.bootstrap, group, topic, want1)
        assert coordinator_of(cluster.bootstrap, group) == coord, "the coordinator moved by itself"

        # Watch the committed offsets on the surviving nodes while the coordinator dies.
        def watch():
            while not watch_stop.is_set():
                for i in others:
                    try:
                        history.append((time.monotonic(), i,
                                        offset_fetch_from(cluster.addr(i), i, group, topic, parts)))
                    except Exception as e:  # noqa: BLE001
                        watch_errors.append(f"node {i}: {e}")
                time.sleep(0.2)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        t_kill = time.monotonic()
        cluster.kill9(coord)

        live = ",".join(cluster.addr(i) for i in others)
        b2 = produce(live, topic, "c2", 300, parts)
        want2 = end_offsets(b2, parts)
        wait_until("batch 2 to be consumed after the coordinator died", lambda: rec.values() >= set(b2),
                   timeout=60)
        wait_committed(live, group, topic, want2)
        print(f"batch 2 consumed and committed {time.monotonic() - t_kill:.1f}s after the kill")
        new_coord = coordinator_of(live, group)
        assert new_coord in others, f"coordinator {new_coord} after node {coord} was killed"
        wait_committed_on_every_node(cluster, group, topic, want2)
    finally:
        watch_stop.set()
        stop_all(members)

    # No node ever reported a committed offset going backwards.
    last: dict[int, dict[int, int]] = {}
    for t, i, offs in history:
        prev = last.get(i, want1)
        back = {p: (prev[p], o) for p, o in offs.items() if o < prev.get(p, -1)}
        assert not back, f"node {i} reported committed offsets going backwards (before, after): {back}"
        last[i] = offs
    assert history, f"no OffsetFetch answer from the surviving nodes: {watch_errors[:5]}"
    assert rec.values() == set(b1) | set(b2)
    assert not rec.violations, rec.violations


# -- 4: a whole-cluster restart keeps the committed offsets ------------------------------------


def test_committed_offsets_survive_a_cluster_restart(cluster):
    topic, group, parts = "g4-topic", "g4", list(range(6))
    create_topic(cluster, topic, 6)
    rec = Record()
    members = [Member(n, cluster.bootstrap, group, topic, rec) for n in ("a", "b")]
    for m in members:
        m.start()
    try:
        wait_settled(rec, ["a", "b"], parts)
        b1 = produce(cluster.bootstrap, topic, "r1", 600, parts)
        want1 = end_offsets(b1, parts)
        wait_until("batch 1 to be consumed", lambda: rec.values() >= set(b1))
        wait_committed(cluster.bootstrap, group, topic, want1)
    finally:
        stop_all(members)
    wait_committed_on_every_node(cluster, group, topic, want1)

    statuses = cluster.stop_all()
    assert all(s == 0 for s in statuses.values()), f"exit statuses on SIGTERM: {statuses}"
    cluster.start_all()
    cluster.wait_settled()

    wait_committed_on_every_node(cluster, group, topic, want1)
    assert committed_via_coordinator(cluster.bootstrap, group, topic, parts) == want1

    # A new member resumes at the committed offsets: it sees only what came after.
    b2 = produce(cluster.bootstrap, topic, "r2", 120, parts)
    rec2 = Record()
    m = Member("z", cluster.bootstrap, group, topic, rec2)
    m.start()
    try:
        wait_until("batch 2 to be consumed after the restart", lambda: rec2.values() >= set(b2))
        wait_committed(cluster.bootstrap, group, topic, end_offsets(b2, parts))
    finally:
        m.stop()
    assert rec2.values() == set(b2), (
        f"after the restart the group re-consumed {len(rec2.values() - set(b2))} committed messages")


# -- 7: cooperative-sticky --------------------------------------------------------------------


def test_cooperative_sticky_third_member_joins_incrementally(cluster):
    topic, group, parts = "g7-topic", "g7", list(range(6))
    create_topic(cluster, topic, 6)
    rec = Record()
    extra = {"partition.assignment.strategy": "cooperative-sticky"}
    members = [Member(n, cluster.bootstrap, group, topic, rec, extra) for n in ("a", "b")]
    for m in members:
        m.start()
    try:
        first = wait_settled(rec, ["a", "b"], parts)
        assert sorted(len(ps) for ps in first.values()) == [3, 3], first
        b1 = produce(cluster.bootstrap, topic, "k1", 600, parts)
        wait_until("batch 1 to be consumed", lambda: rec.values() >= set(b1))
        n_events = len(rec.events)

        c = Member("c", cluster.bootstrap, group, topic, rec, extra)
        members.append(c)
        c.start()
        second = wait_settled(rec, ["a", "b", "c"], parts, "after c joined")
        assert sorted(len(ps) for ps in second.values()) == [2, 2, 2], second
        with rec.lock:
            events = rec.events[n_events:]
        print("events after c joined:", events)
        # Incremental: a and b each gave up exactly what c got, kept the rest, and were never
        # revoked wholesale (an eager rebalance revokes everything first).
        for name in ("a", "b"):
            revoked = [p for _, m, k, ps in events if m == name and k == "revoke" for p in ps]
            assigned = [p for _, m, k, ps in events if m == name and k == "assign" for p in ps]
            assert revoked, f"{name} had nothing revoked when c joined: {events}"
            assert set(revoked) < set(first[name]), (
                f"{name} had {revoked} revoked out of {first[name]}: not incremental")
            assert set(assigned) <= set(first[name]), f"{name} was assigned {assigned} when c joined"
            assert set(second[name]) == set(first[name]) - set(revoked), (name, first, second, events)
        assert not any(k == "lost" for _, _, k, _ in events), events

        b2 = produce(cluster.bootstrap, topic, "k2", 600, parts)
        wait_until("batch 2 to be consumed", lambda: rec.values() >= set(b2))
        wait_committed(cluster.bootstrap, group, topic, end_offsets(b2, parts))
        assert rec.values() == set(b1) | set(b2)
        assert not rec.violations, f"partitions owned twice: {rec.violations}"
        assert not rec.errors, rec.errors[:5]
    finally:
        stop_all(members)


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--child":
        child_main(*sys.argv[2:])
    else:
        sys.exit(f"usage: {sys.argv[0]} --child NAME BOOTSTRAP GROUP TOPIC (run by pytest)")
