"""The admin CLI for a secured node: `brook user` makes, re-keys and deletes a SCRAM user and
`brook acl` grants, lists and removes its ACLs, each run as the real binary with Kafka's
`--command-config`; a confluent-kafka producer logging in as that user shows every change took
effect (refused, allowed, refused again; old password refused, new accepted; deleted user
refused)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, Producer

from brookutil import authorized_node
from conftest import brook_bin

ADMIN, ADMIN_PASSWORD = "admin", "admin-secret"
TOPIC = "cli-secured"
DEADLINE_S = 30

pytestmark = pytest.mark.brook_opts(**authorized_node(
    ADMIN, ADMIN_PASSWORD, **{"connection.failed.authentication.delay.ms": "50"}))


def command_config(folder: Path, user: str, password: str) -> Path:
    """A Kafka client properties file logging in as `user` with SCRAM-SHA-512."""
    path = folder / f"{user}.properties"
    path.write_text(
        "security.protocol=SASL_PLAINTEXT\n"
        "sasl.mechanism=SCRAM-SHA-512\n"
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{user}" password="{password}";\n'
    )
    return path


def brook(broker, config: Path, *args: str, password: str | None = None,
          ok: bool = True) -> subprocess.CompletedProcess:
    """Runs `brook ARGS` against the node; `password` goes in BROOK_USER_PASSWORD. With `ok`,
    a non-zero exit fails the test; without, a zero exit does."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("BROOK_USER_PASSWORD", "BROOK_BOOTSTRAP_SERVER", "BROOK_COMMAND_CONFIG")}
    if password is not None:
        env["BROOK_USER_PASSWORD"] = password
    cmd = [str(brook_bin()), *args, "--bootstrap-server", broker.bootstrap,
           "--command-config", str(config)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
    if (proc.returncode == 0) != ok:
        pytest.fail(f"{' '.join(args)} exited with {proc.returncode}\nstdout: {proc.stdout}\n"
                    f"stderr: {proc.stderr}", pytrace=False)
    return proc


def table(stdout: str, header: str) -> list[tuple[str, ...]]:
    """The rows of the table under the line starting with `header`."""
    lines = stdout.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(header)]
    assert starts, f"no table with header {header!r} in:\n{stdout}"
    return [tuple(line.split()) for line in lines[starts[0] + 1:] if line.strip()]


ACL_HEADER = "RESOURCE TYPE"


def produce_as(broker, user: str, password: str, mechanism: str = "SCRAM-SHA-512") -> int | None:
    """Produces one message to TOPIC as `user` with a fresh producer. Returns None when it is
    delivered, the delivery error code otherwise, or KafkaError._AUTHENTICATION when the login
    is refused."""
    reports: list = []
    errors: list[KafkaError] = []
    producer = Producer({
        "bootstrap.servers": broker.bootstrap,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanisms": mechanism,
        "sasl.username": user,
        "sasl.password": password,
        "message.timeout.ms": 15_000,
        "error_cb": errors.append,
        "log_level": 0,
    })
    try:
        producer.produce(TOPIC, b"v", on_delivery=lambda err, msg: reports.append(err))
        deadline = time.monotonic() + 20
        while not reports and time.monotonic() < deadline:
            producer.poll(0.2)
            if any(e.code() == KafkaError._AUTHENTICATION for e in errors):
                return KafkaError._AUTHENTICATION
        assert reports, f"no delivery report for {user} within 20 s (errors: {errors})"
        return None if reports[0] is None else reports[0].code()
    finally:
        producer.purge()
        producer.flush(5)


def wait_for_produce(broker, user: str, password: str, want: int | None,
                     mechanism: str = "SCRAM-SHA-512") -> None:
    """Waits until producing as `user` gives `want` (None: delivered); fails at the deadline."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        got = produce_as(broker, user, password, mechanism)
        if got == want:
            return
        if time.monotonic() > deadline:
            name = lambda c: "delivered" if c is None else KafkaError(c).name()
            pytest.fail(f"producing as {user} ({mechanism}): wanted {name(want)}, got {name(got)}",
                        pytrace=False)
        time.sleep(0.2)


def test_users_and_acls_from_the_cli(broker, tmp_path):
    admin = command_config(tmp_path, ADMIN, ADMIN_PASSWORD)
    brook(broker, admin, "topic", "create", TOPIC, "--partitions", "1",
          "--replication-factor", "1")

    # A password is needed, and is never prompted for.
    missing = brook(broker, admin, "user", "create", "alice", ok=False)
    assert "BROOK_USER_PASSWORD" in missing.stderr, missing.stderr

    password_file = tmp_path / "alice.password"
    password_file.write_text("alice-one\n")
    created = brook(broker, admin, "user", "create", "alice", "--password-file",
                    str(password_file))
    assert "alice-one" not in created.stdout + created.stderr
    users = table(brook(broker, admin, "user", "list").stdout, "USER")
    alice = sorted(row for row in users if row[0] == "alice")
    assert alice == [("alice", "SCRAM-SHA-256", "8192"), ("alice", "SCRAM-SHA-512", "8192")], users

    # Logged in (both mechanisms work) but not authorized: no ACL names the topic.
    no_acl = KafkaError.TOPIC_AUTHORIZATION_FAILED
    wait_for_produce(broker, "alice", "alice-one", no_acl)
    wait_for_produce(broker, "alice", "alice-one", no_acl, mechanism="SCRAM-SHA-256")
    # alice may not manage ACLs herself.
    as_alice = command_config(tmp_path, "alice", "alice-one")
    denied = brook(broker, as_alice, "acl", "list", ok=False)
    assert "CLUSTER_AUTHORIZATION_FAILED" in denied.stderr, denied.stderr

    grant = ["--allow-principal", "User:alice", "--operation", "Write", "--operation",
             "Describe", "--topic", TOPIC]
    added = brook(broker, admin, "acl", "add", *grant)
    expected = {
        ("TOPIC", "LITERAL", TOPIC, "User:alice", "*", "WRITE", "ALLOW"),
        ("TOPIC", "LITERAL", TOPIC, "User:alice", "*", "DESCRIBE", "ALLOW"),
    }
    assert set(table(added.stdout, ACL_HEADER)) == expected, added.stdout
    wait_for_produce(broker, "alice", "alice-one", None)

    listed = brook(broker, admin, "acl", "list", "--topic", TOPIC).stdout
    assert set(table(listed, ACL_HEADER)) == expected, listed
    everything = brook(broker, admin, "acl", "list").stdout
    assert expected <= set(table(everything, ACL_HEADER)), everything
    others = brook(broker, admin, "acl", "list", "--principal", "User:bob").stdout
    assert "No ACL matched." in others, others

    removed = brook(broker, admin, "acl", "remove", *grant)
    assert set(table(removed.stdout, ACL_HEADER)) == expected, removed.stdout
    after = brook(broker, admin, "acl", "list", "--topic", TOPIC).stdout
    assert "No ACL matched." in after, after
    wait_for_produce(broker, "alice", "alice-one", no_acl)

    # A new password from the environment: the old one is refused, the new one logs in.
    brook(broker, admin, "user", "passwd", "alice", "--iterations", "4096", password="alice-two")
    users = table(brook(broker, admin, "user", "list", "alice").stdout, "USER")
    assert sorted(users) == [("alice", "SCRAM-SHA-256", "4096"),
                             ("alice", "SCRAM-SHA-512", "4096")], users
    wait_for_produce(broker, "alice", "alice-one", KafkaError._AUTHENTICATION)
    wait_for_produce(broker, "alice", "alice-two", no_acl)

    deleted = brook(broker, admin, "user", "delete", "alice")
    assert "SCRAM-SHA-256" in deleted.stdout and "SCRAM-SHA-512" in deleted.stdout, deleted.stdout
    listed = brook(broker, admin, "user", "list").stdout
    users = [] if "No SCRAM users." in listed else table(listed, "USER")
    assert not [row for row in users if row[0] == "alice"], users
    wait_for_produce(broker, "alice", "alice-two", KafkaError._AUTHENTICATION)
    wait_for_produce(broker, "alice", "alice-two", KafkaError._AUTHENTICATION,
                     mechanism="SCRAM-SHA-256")

    # Deleting what is not there fails with Kafka's error name.
    for mechanism in ["SCRAM-SHA-256", "all"]:
        gone = brook(broker, admin, "user", "delete", "alice", "--mechanism", mechanism, ok=False)
        assert "RESOURCE_NOT_FOUND" in gone.stderr, gone.stderr


@pytest.mark.brook_opts(**{"authorizer.class.name": ""})
def test_acl_commands_without_an_authorizer(broker, tmp_path):
    admin = command_config(tmp_path, ADMIN, ADMIN_PASSWORD)
    for args in [["acl", "list"],
                 ["acl", "add", "--allow-principal", "User:alice", "--operation", "Read",
                  "--topic", TOPIC],
                 ["acl", "remove", "--topic", TOPIC]]:
        failed = brook(broker, admin, *args, ok=False)
        assert "set authorizer.class.name=" in failed.stderr, failed.stderr
