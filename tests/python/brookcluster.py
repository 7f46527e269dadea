"""A multi-node brook cluster for the Python client tests.

`BrookCluster` runs N `brook node` processes (node ids 1..N) that form one cluster through a
static list of Raft voters, each with its own data directory and stderr log, on Kafka and Raft
ports chosen once and kept for good (Raft membership records every node's Raft address, so a
restarted node must come back on the same one). Each node is a `conftest.Broker`: ready line on
stdout, SIGKILL, SIGTERM, restart on the same port and directory.

Use the `cluster` fixture (import it into a test module) for a 3-node cluster with consumer-group
friendly settings; `@pytest.mark.brook_opts(...)` settings apply to every node. Nodes still
running at teardown are stopped, and their log tails are attached to a failing test's report.
"""

from __future__ import annotations

import random
import secrets
import socket
import threading
import time
from pathlib import Path

import pytest

from conftest import Broker, BrokerError, brook_bin

HOST = "127.0.0.1"

# Settings every cluster node gets unless the test overrides them: no initial rebalance delay,
# quick broker liveness (so a killed node's groups move to a live coordinator within seconds).
DEFAULT_OPTS = {
    "group.initial.rebalance.delay.ms": "0",
    "broker.heartbeat.interval.ms": "500",
    "broker.session.timeout.ms": "3000",
}

_TAKEN: set[int] = set()
_TAKEN_LOCK = threading.Lock()


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
            return True
        except OSError:
            return False


def free_port() -> int:
    """A port that is free now and was not handed out before by this process, below Linux's
    ephemeral range (an outgoing connection cannot take it while its node is down)."""
    with _TAKEN_LOCK:
        for _ in range(10_000):
            port = random.randrange(10_000, 32_000)
            if port not in _TAKEN and _bindable(port):
                _TAKEN.add(port)
                return port
    raise RuntimeError("no free port found")


class BrookCluster:
    def __init__(self, workdir: Path, n: int = 3, overrides: dict[str, str] | None = None,
                 binary: Path | None = None, client_config: dict | None = None):
        self.binary = binary or brook_bin()
        # What a client needs beyond the bootstrap servers (TLS or SASL settings).
        self.client_config = dict(client_config or {})
        self.workdir = workdir
        self.n = n
        self.opts = dict(DEFAULT_OPTS)
        self.opts.update(overrides or {})
        self.ports = {i: free_port() for i in range(1, n + 1)}
        self.raft_ports = {i: free_port() for i in range(1, n + 1)}
        peers = ",".join(f"{i}@{HOST}:{self.raft_ports[i]}" for i in self.ids)
        # The nodes authenticate each other on the Raft port with one secret.
        self.opts.setdefault("brook.cluster.secret", secrets.token_hex(32))
        self.nodes: dict[int, Broker] = {}
        for i in self.ids:
            node_opts = dict(self.opts)
            node_opts.update({
                "node.id": str(i),
                "controller.quorum.voters": peers,
                "brook.raft.listener": f"{HOST}:{self.raft_ports[i]}",
            })
            self.nodes[i] = Broker(self.binary, workdir / f"n{i}", node_opts)

    # -- addresses -------------------------------------------------------------------------------

    @property
    def ids(self) -> list[int]:
        return list(range(1, self.n + 1))

    def addr(self, i: int) -> str:
        return f"{HOST}:{self.ports[i]}"

    @property
    def bootstrap(self) -> str:
        """Every node's address (clients find the live ones)."""
        return ",".join(self.addr(i) for i in self.ids)

    def up_ids(self) -> list[int]:
        return [i for i in self.ids if self.nodes[i].running]

    # -- lifecycle -------------------------------------------------------------------------------

    def _start_nodes(self, ids: list[int], restart: bool) -> None:
        # Concurrently: a node is ready only once a quorum registered it.
        errors: dict[int, Exception] = {}

        def run(i: int) -> None:
            try:
                if restart:
                    self.nodes[i].restart()
                else:
                    self.nodes[i].start(port=self.ports[i])
            except Exception as e:  # noqa: BLE001 - reported below
                errors[i] = e

        threads = [threading.Thread(target=run, args=(i,)) for i in ids]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise BrokerError("; ".join(f"node {i}: {e}" for i, e in sorted(errors.items())))

    def start(self) -> None:
        """Starts every node and waits until each lists all of them as live brokers."""
        self._start_nodes(self.ids, restart=False)
        self.wait_settled()

    def wait_settled(self, timeout: float = 30.0) -> None:
        """Waits until every running node lists exactly the running nodes as live brokers, for
        one broker heartbeat interval and again after it (a registration counts as live only
        until the first heartbeats move the log's clock; see tests/src/cluster.rs)."""
        up = self.up_ids()
        self.wait_for_brokers(up, timeout)
        time.sleep(int(self.opts["broker.heartbeat.interval.ms"]) / 1000.0)
        self.wait_for_brokers(up, timeout)

    def wait_for_brokers(self, want: list[int], timeout: float = 30.0) -> None:
        from confluent_kafka.admin import AdminClient

        want_set = set(want)
        deadline = time.monotonic() + timeout
        for i in self.up_ids():
            admin = AdminClient({**self.client_config, "bootstrap.servers": self.addr(i)})
            seen = None
            while True:
                try:
                    md = admin.list_topics(timeout=5)
                    # librdkafka merges what it learns into its own broker list; ask the node
                    # itself (controller/broker lists come from the node's answer).
                    seen = set(md.brokers)
                except Exception as e:  # noqa: BLE001
                    seen = f"error {e}"
                if seen == want_set:
                    break
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"node {i} lists brokers {seen}, expected {sorted(want_set)} "
                        f"within {timeout:.0f}s")
                time.sleep(0.2)

    def kill9(self, i: int) -> None:
        self.nodes[i].kill9()

    def terminate(self, i: int) -> int | None:
        return self.nodes[i].stop()

    def restart(self, i: int) -> None:
        """Starts node `i` again on its ports and directory (SIGTERM first if it runs)."""
        self.nodes[i].restart()

    def stop_all(self) -> dict[int, int | None]:
        """SIGTERM every running node at once and waits for all; returns the exit statuses."""
        statuses: dict[int, int | None] = {}

        def run(i: int) -> None:
            statuses[i] = self.nodes[i].stop()

        threads = [threading.Thread(target=run, args=(i,)) for i in self.up_ids()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return statuses

    def start_all(self) -> None:
        """Starts every stopped node at once and waits for all ready lines."""
        down = [i for i in self.ids if not self.nodes[i].running]
        self._start_nodes(down, restart=True)

    def close(self) -> None:
        for node in self.nodes.values():
            try:
                node.close()
            except Exception:  # noqa: BLE001 - keep stopping the others
                if node.proc is not None and node.proc.poll() is None:
                    node.proc.kill()
                    node.proc.wait(timeout=30)

    def log_tails(self, lines: int = 40) -> str:
        return "\n".join(
            f"--- node {i} ({self.nodes[i].log_path}) ---\n{self.nodes[i].log_tail(lines)}"
            for i in self.ids
        )


@pytest.fixture
def cluster(request, tmp_path):
    """A running 3-node cluster (DEFAULT_OPTS plus any brook_opts marks), stopped at teardown."""
    binary = brook_bin()
    if not binary.exists():
        pytest.fail(f"brook binary not found at {binary} (set BROOK_BIN)", pytrace=False)
    overrides: dict[str, str] = {}
    for mark in reversed(list(request.node.iter_markers("brook_opts"))):
        overrides.update({k: str(v) for k, v in mark.kwargs.items()})
    c = BrookCluster(tmp_path / "cluster", 3, overrides, binary)
    request.node._brook_brokers = getattr(request.node, "_brook_brokers", []) + list(
        c.nodes.values())
    try:
        c.start()
        yield c
    finally:
        c.close()


# -- committed offsets as one particular node reports them ------------------------------------------


def offset_fetch_from(addr: str, node_id: int, group: str, topic: str,
                      partitions: list[int]) -> dict[int, int]:
    """Sends OffsetFetch for `group` straight to node `node_id` (at `addr`), not to the group's
    coordinator as clients do, and returns {partition: committed offset (-1 if none)}. Brook
    answers OffsetFetch on any node from its copy of the Raft metadata."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=addr, request_timeout_ms=10_000)
    try:
        async def fetch():
            out = {}
            specs = {group: [(topic, p) for p in partitions]}
            for gid, request in admin._list_group_offsets_requests(specs):
                response = await admin._manager.send(request, node_id=node_id)
                for _g, offsets in admin._list_group_offsets_process_response(
                        response, group_id=gid).items():
                    for tp, om in offsets.items():
                        if tp.topic == topic:
                            out[tp.partition] = om.offset
            return out

        return admin._manager.run(fetch)
    finally:
        admin.close()
