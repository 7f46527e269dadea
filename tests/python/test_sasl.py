"""SASL on a SASL_PLAINTEXT listener with real clients: confluent-kafka (SCRAM-SHA-512,
SCRAM-SHA-256, PLAIN), kafka-python (SCRAM-SHA-256) and kcat (SCRAM-SHA-512, on Debian's
librdkafka 2.0.2, which repeats its client nonce in the client-final message as Kafka accepts,
and PLAIN) produce and consume
as the bootstrap user; a wrong password is refused; a request before authentication closes the
connection; users made with AlterUserScramCredentials can log in, are described without secrets,
and may not change credentials unless they are super users.
"""

from __future__ import annotations

import socket
import struct
import subprocess
import time

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import (AdminClient, NewTopic, ScramMechanism,
                                   ScramCredentialInfo, UserScramCredentialUpsertion)
from kafka import KafkaConsumer, KafkaProducer

from brookutil import produce_and_read_back, read_values

ADMIN, ADMIN_PASSWORD = "admin", "admin-secret"
TIMEOUT = 30

pytestmark = pytest.mark.brook_opts(**{
    # The listener the fixture names PLAINTEXT speaks SASL_PLAINTEXT, by Kafka's map.
    "listener.security.protocol.map": "PLAINTEXT:SASL_PLAINTEXT",
    "sasl.enabled.mechanisms": "SCRAM-SHA-256,SCRAM-SHA-512,PLAIN",
    "brook.sasl.bootstrap.user": ADMIN,
    "brook.sasl.bootstrap.password": ADMIN_PASSWORD,
    "super.users": f"User:{ADMIN}",
    "connection.failed.authentication.delay.ms": "50",
})


def sasl(broker, mechanism: str, user: str = ADMIN, password: str = ADMIN_PASSWORD) -> dict:
    return {
        "bootstrap.servers": broker.bootstrap,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanisms": mechanism,
        "sasl.username": user,
        "sasl.password": password,
    }


def create_topic(broker, name: str) -> None:
    admin = AdminClient(sasl(broker, "SCRAM-SHA-512"))
    admin.create_topics([NewTopic(name, 1, 1)])[name].result(TIMEOUT)


def round_trip(config: dict, topic: str, count: int = 10) -> list[bytes]:
    return produce_and_read_back(config, topic, count, TIMEOUT)


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"])
def test_confluent_kafka_produces_and_consumes(broker, mechanism):
    topic = f"sasl-{mechanism.lower()}"
    create_topic(broker, topic)
    got = round_trip(sasl(broker, mechanism), topic)
    assert got == [f"{topic}-{i}".encode() for i in range(10)]


def refused(config: dict) -> bool:
    """Whether librdkafka reports an authentication failure (through its error callback)
    rather than getting metadata."""
    errors: list[KafkaError] = []
    admin = AdminClient({**config, "error_cb": errors.append, "log_level": 0})
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=10)
    admin.poll(1)  # error callbacks run from poll
    return any(e.code() == KafkaError._AUTHENTICATION for e in errors)


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "PLAIN"])
def test_wrong_password_is_refused(broker, mechanism):
    assert refused(sasl(broker, mechanism, password="not-the-password"))
    assert "SASL authentication failed" in broker.log_tail(200), "no log line for the failure"


def test_a_request_before_authentication_closes_the_connection(broker):
    host, port = broker.bootstrap.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        # Metadata v0 for all topics, correlation id 7, client id "x".
        body = struct.pack(">hhih", 3, 0, 7, 1) + b"x" + struct.pack(">i", 0)
        s.sendall(struct.pack(">i", len(body)) + body)
        assert s.recv(4096) == b"", "the broker answered before authentication"


def test_kafka_python_and_kcat(broker):
    topic = "sasl-other-clients"
    create_topic(broker, topic)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, security_protocol="SASL_PLAINTEXT",
                             sasl_mechanism="SCRAM-SHA-256", sasl_plain_username=ADMIN,
                             sasl_plain_password=ADMIN_PASSWORD, acks="all")
    for i in range(5):
        producer.send(topic, f"python-{i}".encode()).get(timeout=TIMEOUT)
    producer.close()
    def kcat(mechanism: str) -> list[str]:
        return ["kcat", "-b", broker.bootstrap, "-X", "security.protocol=SASL_PLAINTEXT",
                "-X", f"sasl.mechanisms={mechanism}", "-X", f"sasl.username={ADMIN}",
                "-X", f"sasl.password={ADMIN_PASSWORD}"]
    subprocess.run(kcat("SCRAM-SHA-512") + ["-P", "-t", topic], input=b"kcat-0\nkcat-1\n",
                   check=True, timeout=TIMEOUT)
    out = subprocess.run(kcat("PLAIN") + ["-C", "-t", topic, "-o", "beginning", "-e", "-q"],
                         capture_output=True, check=True, timeout=TIMEOUT).stdout
    assert out.split() == [b"python-0", b"python-1", b"python-2", b"python-3", b"python-4",
                           b"kcat-0", b"kcat-1"]
    consumer = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap,
                             security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-256",
                             sasl_plain_username=ADMIN, sasl_plain_password=ADMIN_PASSWORD,
                             auto_offset_reset="earliest", consumer_timeout_ms=10_000)
    values = [m.value for m in consumer]
    consumer.close()
    assert values[:7] == [b"python-0", b"python-1", b"python-2", b"python-3", b"python-4",
                          b"kcat-0", b"kcat-1"]


def test_users_made_with_alter_user_scram_credentials(broker):
    admin = AdminClient(sasl(broker, "SCRAM-SHA-512"))
    alice = UserScramCredentialUpsertion(
        "alice", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 8192), b"alice-pw")
    admin.alter_user_scram_credentials([alice])["alice"].result(TIMEOUT)
    described = admin.describe_user_scram_credentials(["alice"])["alice"].result(TIMEOUT)
    infos = described.scram_credential_infos
    assert [(i.mechanism, i.iterations) for i in infos] == [(ScramMechanism.SCRAM_SHA_256, 8192)]

    topic = "sasl-alice"
    create_topic(broker, topic)
    got = round_trip(sasl(broker, "SCRAM-SHA-256", "alice", "alice-pw"), topic, 3)
    assert got == [f"{topic}-{i}".encode() for i in range(3)]
    # alice has no SHA-512 credential, and a wrong password fails.
    for mechanism, password in [("SCRAM-SHA-512", "alice-pw"), ("SCRAM-SHA-256", "wrong")]:
        assert refused(sasl(broker, mechanism, "alice", password)), mechanism

    # alice is not a super user: she may not change anyone's credentials.
    as_alice = AdminClient(sasl(broker, "SCRAM-SHA-256", "alice", "alice-pw"))
    mallory = UserScramCredentialUpsertion(
        ADMIN, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096), b"taken-over")
    with pytest.raises(KafkaException) as denied:
        as_alice.alter_user_scram_credentials([mallory])[ADMIN].result(TIMEOUT)
    assert "CLUSTER_AUTHORIZATION_FAILED" in str(denied.value), denied.value
    # The admin still logs in with the old password.
    assert AdminClient(sasl(broker, "SCRAM-SHA-512")).list_topics(timeout=TIMEOUT).topics


@pytest.mark.brook_opts(**{"connections.max.reauth.ms": "2000"})
def test_librdkafka_re_authenticates_before_its_session_ends(broker):
    """KIP-368: with sessions of 2 s, a producer that keeps sending for 6 s re-authenticates on
    its connection; the node never has to close a connection for an expired session."""
    topic = "sasl-reauth"
    create_topic(broker, topic)
    producer = Producer({**sasl(broker, "SCRAM-SHA-512"), "acks": "all"})
    sent = 0
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        producer.produce(topic, f"m-{sent}".encode())
        assert producer.flush(TIMEOUT) == 0
        sent += 1
        time.sleep(0.05)
    assert sent > 10
    assert "SASL session expired" not in broker.log_tail(1_000_000), "a client did not re-authenticate"
    got = read_values(sasl(broker, "SCRAM-SHA-512"), topic, sent, TIMEOUT)
    assert got == [f"m-{i}".encode() for i in range(sent)]
