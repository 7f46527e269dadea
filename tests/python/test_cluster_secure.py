"""`brook cluster up --secure`: three nodes that speak only SASL_SSL, with the CA, the node
certificates, the admin user and the client settings made in the cluster folder. The client
files it writes work unchanged: `brook topic ... --command-config client.properties`,
confluent-kafka with `librdkafka.config` (an RF 3 topic, acks=all) and `kcat -F`. Without them
a client gets nothing, and the admin CLI says the node speaks TLS. The nodes log to
`logs/node-N.log` in the cluster folder; the terminal gets only progress, the report and warnings.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path

from confluent_kafka import Producer

from brookcluster import _bindable
from brookutil import read_values
from conftest import brook_bin

TIMEOUT = 60


def consecutive_ports(n: int) -> int:
    for _ in range(200):
        base = random.randrange(20_000, 30_000)
        if all(_bindable(base + i) for i in range(n)):
            return base
    raise RuntimeError("no free port range")


def librdkafka_config(path: Path) -> dict:
    config = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            key, value = line.split("=", 1)
            config[key] = value
    return config


def output(tmp_path: Path, folder: Path) -> str:
    """The end of cluster up's terminal output and of each node's log, for failure messages."""
    parts = [f"--- cluster up ---\n{(tmp_path / 'up.log').read_text()[-3000:]}"]
    for log in sorted((folder / "logs").glob("node-*.log")):
        parts.append(f"--- {log.name} ---\n{log.read_text()[-3000:]}")
    return "\n".join(parts)


def test_cluster_up_secure(tmp_path):
    folder = tmp_path / "cluster"
    base = consecutive_ports(3)
    raft = consecutive_ports(3)
    log = open(tmp_path / "up.log", "wb")
    up = subprocess.Popen(
        [str(brook_bin()), "cluster", "up", "--secure", "--dir", str(folder),
         "--base-port", str(base), "--raft-base-port", str(raft)],
        stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True)
    report: list[str] = []
    ready = threading.Event()

    def pump():
        for line in up.stdout:
            report.append(line)
            if line.startswith("bootstrap servers:"):
                ready.set()
    threading.Thread(target=pump, daemon=True).start()
    try:
        assert ready.wait(120), output(tmp_path, folder)
        bootstrap = f"127.0.0.1:{base}"
        time.sleep(0.5)  # the rest of the report
        assert any("SASL_SSL only" in line for line in report), report
        for i in (1, 2, 3):
            node_log = (folder / "logs" / f"node-{i}.log").read_text()
            assert f"node started node={i} " in node_log, output(tmp_path, folder)
        assert "node started" not in (tmp_path / "up.log").read_text(), output(tmp_path, folder)
        for private in ("client.properties", "librdkafka.config", "tls/node.pem", "tls/ca.key"):
            assert os.stat(folder / private).st_mode & 0o077 == 0, f"{private} is readable by others"

        brook = [str(brook_bin()), "topic"]
        secured = ["--bootstrap-server", bootstrap, "--command-config", str(folder / "client.properties")]
        subprocess.run(brook + ["create", "secure", "--partitions", "3", "--replication-factor", "3"]
                       + secured, check=True, timeout=TIMEOUT, capture_output=True)
        listed = subprocess.run(brook + ["list"] + secured, check=True, timeout=TIMEOUT,
                                capture_output=True, text=True).stdout
        assert listed.split() == ["secure"]
        plain = subprocess.run(brook + ["list", "--bootstrap-server", bootstrap],
                               timeout=TIMEOUT, capture_output=True, text=True)
        assert plain.returncode != 0 and "answered with TLS" in plain.stderr, plain.stderr

        config = {**librdkafka_config(folder / "librdkafka.config"), "bootstrap.servers": bootstrap}
        producer = Producer({**config, "acks": "all"})
        for i in range(30):
            producer.produce("secure", f"m-{i}".encode(), partition=i % 3)
        assert producer.flush(TIMEOUT) == 0
        got = set(read_values(config, "secure", 30, TIMEOUT))
        assert got == {f"m-{i}".encode() for i in range(30)}

        out = subprocess.run(["kcat", "-F", str(folder / "librdkafka.config"), "-b", bootstrap,
                              "-C", "-t", "secure", "-p", "0", "-o", "beginning", "-e", "-q"],
                             capture_output=True, check=True, timeout=TIMEOUT).stdout
        assert out.split() == [f"m-{i}".encode() for i in range(0, 30, 3)]
    finally:
        os.killpg(up.pid, signal.SIGTERM)
        try:
            up.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait(timeout=30)
        log.close()
    assert up.returncode == 0, output(tmp_path, folder)
