"""TLS listeners with real clients: confluent-kafka, kafka-python and kcat over SSL and over
SASL_SSL (SCRAM-SHA-512); mutual TLS with the principal taken from the client certificate (and
mapped by ssl.principal.mapping.rules); a plaintext client on the TLS port never gets a Kafka
answer; a client without a certificate, or with one from another CA, is refused when
certificates are required; a stalled or garbage handshake is closed and the node keeps
serving; a replaced certificate is served to new connections without a restart; a three-node
cluster replicates over mutual TLS (its replica fetchers present the node certificate) and
keeps every acknowledged write when the leader is killed.
"""

from __future__ import annotations

import os
import socket
import ssl
import struct
import subprocess
import time

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import (AdminClient, NewTopic, ScramCredentialInfo, ScramMechanism,
                                   UserScramCredentialUpsertion)
from kafka import KafkaConsumer, KafkaProducer

from brookcluster import BrookCluster
from brookutil import produce_and_read_back, read_values
from certs import Authority
from conftest import Broker, brook_bin

TIMEOUT = 30
ADMIN, ADMIN_PASSWORD = "admin", "admin-secret"


@pytest.fixture
def ca(tmp_path):
    return Authority(tmp_path / "pki")


@pytest.fixture
def start(request, tmp_path):
    """Starts a node with the given settings; stopped when the test ends."""
    started: list[Broker] = []

    def run(opts: dict[str, str]) -> Broker:
        b = Broker(brook_bin(), tmp_path / f"brook{len(started)}", opts)
        request.node._brook_brokers = getattr(request.node, "_brook_brokers", []) + [b]
        started.append(b)
        b.start()
        return b

    yield run
    for b in started:
        b.close()


def tls_opts(ca: Authority, protocol: str = "SSL", **extra: str) -> dict[str, str]:
    server = ca.server()
    return {
        "listener.security.protocol.map": f"PLAINTEXT:{protocol}",
        "ssl.keystore.location": str(server.keystore),
        "ssl.truststore.location": str(ca.cert),
        "brook.request.receive.timeout.ms": "2000",
        **extra,
    }


def ssl_config(broker: Broker, ca: Authority, client=None) -> dict:
    config = {"bootstrap.servers": broker.bootstrap, "security.protocol": "SSL",
              "ssl.ca.location": str(ca.cert)}
    if client is not None:
        config |= {"ssl.certificate.location": str(client.cert),
                   "ssl.key.location": str(client.key)}
    return config


def create_topic(config: dict, topic: str) -> None:
    admin = AdminClient(config)  # kept alive until the future is done
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(TIMEOUT)


def round_trip(config: dict, topic: str, count: int = 10) -> list[bytes]:
    create_topic(config, topic)
    return produce_and_read_back(config, topic, count, TIMEOUT)


def failure_codes(config: dict) -> list[int]:
    """The errors librdkafka reports when it cannot get metadata (it must not get any)."""
    errors: list[KafkaError] = []
    admin = AdminClient({**config, "error_cb": errors.append, "log_level": 0})
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=8)
    admin.poll(1)  # error callbacks run from poll
    return [e.code() for e in errors]


def upsert(user: str) -> UserScramCredentialUpsertion:
    return UserScramCredentialUpsertion(
        user, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096), b"pw")


def peer_certificate(broker: Broker, ca: Authority) -> bytes:
    context = ssl.create_default_context(cafile=str(ca.cert))
    host, port = broker.bootstrap.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            return tls.getpeercert(binary_form=True)


def api_versions_v0() -> bytes:
    body = struct.pack(">hhih", 18, 0, 1, 1) + b"x"
    return struct.pack(">i", len(body)) + body


def test_ssl_with_confluent_kafka_kafka_python_and_kcat(start, ca):
    broker = start(tls_opts(ca))
    config = ssl_config(broker, ca)
    assert round_trip(config, "tls-ck") == [f"tls-ck-{i}".encode() for i in range(10)]

    topic = "tls-others"
    create_topic(config, topic)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, security_protocol="SSL",
                             ssl_cafile=str(ca.cert), acks="all")
    for i in range(3):
        producer.send(topic, f"python-{i}".encode()).get(timeout=TIMEOUT)
    producer.close()
    kcat = ["kcat", "-b", broker.bootstrap, "-X", "security.protocol=SSL",
            "-X", f"ssl.ca.location={ca.cert}"]
    subprocess.run(kcat + ["-P", "-t", topic], input=b"kcat-0\nkcat-1\n", check=True,
                   timeout=TIMEOUT)
    out = subprocess.run(kcat + ["-C", "-t", topic, "-o", "beginning", "-e", "-q"],
                         capture_output=True, check=True, timeout=TIMEOUT).stdout
    want = [b"python-0", b"python-1", b"python-2", b"kcat-0", b"kcat-1"]
    assert out.split() == want
    consumer = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, security_protocol="SSL",
                             ssl_cafile=str(ca.cert), auto_offset_reset="earliest",
                             consumer_timeout_ms=10_000)
    values = [m.value for m in consumer]
    consumer.close()
    assert values[:5] == want


def test_the_tls_port_never_answers_in_plaintext(start, ca):
    broker = start(tls_opts(ca))
    host, port = broker.bootstrap.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(api_versions_v0())
        reply = b""
        while chunk := s.recv(4096):
            reply += chunk
    # Nothing, or a TLS alert record (content type 21, version 3.x): never a Kafka frame.
    assert reply == b"" or (reply[0] == 21 and reply[1] == 3), reply[:16]
    codes = failure_codes({"bootstrap.servers": broker.bootstrap})
    assert codes, "a plaintext client reported no error"
    assert round_trip(ssl_config(broker, ca), "still-ok", 1) == [b"still-ok-0"]


def test_stalled_and_garbage_handshakes_are_closed(start, ca):
    broker = start(tls_opts(ca))
    host, port = broker.bootstrap.split(":")
    with socket.create_connection((host, int(port)), timeout=30) as stalled:
        began = time.monotonic()
        assert stalled.recv(1) == b"", "a silent client was answered"
        # brook.request.receive.timeout.ms is 2 s here: closed by then, with room for load.
        assert time.monotonic() - began < 25
    with socket.create_connection((host, int(port)), timeout=10) as garbage:
        garbage.sendall(os.urandom(64 * 1024))
        try:
            while garbage.recv(4096):
                pass
        except ConnectionResetError:
            pass
    assert round_trip(ssl_config(broker, ca), "after-garbage", 1) == [b"after-garbage-0"]


def test_mutual_tls_principal_comes_from_the_certificate(start, ca):
    broker = start(tls_opts(
        ca, **{"ssl.client.auth": "required",
               "ssl.principal.mapping.rules": "RULE:^CN=([^,]*),O=ops$/$1/L,DEFAULT",
               "super.users": "User:root;User:CN=auditor,O=audit"}))
    root = ca.issue("/O=ops/CN=Root")      # maps to User:root
    auditor = ca.issue("/O=audit/CN=auditor")  # no rule but DEFAULT: the whole subject
    alice = ca.issue("/O=eng/CN=alice")
    assert round_trip(ssl_config(broker, ca, alice), "mtls", 3) == [b"mtls-0", b"mtls-1", b"mtls-2"]

    # Only super users may change SCRAM credentials: the principal is what the certificate says.
    for client, user in ((root, "made-by-root"), (auditor, "made-by-auditor")):
        admin = AdminClient(ssl_config(broker, ca, client))
        admin.alter_user_scram_credentials([upsert(user)])[user].result(TIMEOUT)
    as_alice = AdminClient(ssl_config(broker, ca, alice))
    with pytest.raises(KafkaException) as denied:
        as_alice.alter_user_scram_credentials([upsert("made-by-alice")])["made-by-alice"].result(TIMEOUT)
    assert "CLUSTER_AUTHORIZATION_FAILED" in str(denied.value), denied.value

    # No certificate, or one from another CA: the handshake fails; no metadata.
    rogue = Authority(ca.folder / "rogue", "rogue CA").issue("/O=ops/CN=root")
    assert failure_codes(ssl_config(broker, ca)), "a client without a certificate got in"
    assert failure_codes(ssl_config(broker, ca, rogue)), "a certificate of another CA got in"
    assert "TLS handshake failed" in broker.log_tail(200)


def test_sasl_ssl_with_scram(start, ca):
    broker = start(tls_opts(ca, "SASL_SSL", **{
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "brook.sasl.bootstrap.user": ADMIN,
        "brook.sasl.bootstrap.password": ADMIN_PASSWORD,
        "connection.failed.authentication.delay.ms": "50"}))
    config = {"bootstrap.servers": broker.bootstrap, "security.protocol": "SASL_SSL",
              "ssl.ca.location": str(ca.cert), "sasl.mechanisms": "SCRAM-SHA-512",
              "sasl.username": ADMIN, "sasl.password": ADMIN_PASSWORD}
    assert round_trip(config, "sasl-ssl", 5) == [f"sasl-ssl-{i}".encode() for i in range(5)]
    assert KafkaError._AUTHENTICATION in failure_codes({**config, "sasl.password": "wrong"})
    # TLS alone is not enough on a SASL_SSL listener.
    assert failure_codes(ssl_config(broker, ca))

    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, security_protocol="SASL_SSL",
                             ssl_cafile=str(ca.cert), sasl_mechanism="SCRAM-SHA-512",
                             sasl_plain_username=ADMIN, sasl_plain_password=ADMIN_PASSWORD,
                             acks="all")
    producer.send("sasl-ssl", b"python").get(timeout=TIMEOUT)
    producer.close()
    kcat = ["kcat", "-b", broker.bootstrap, "-X", "security.protocol=SASL_SSL",
            "-X", f"ssl.ca.location={ca.cert}", "-X", "sasl.mechanisms=SCRAM-SHA-512",
            "-X", f"sasl.username={ADMIN}", "-X", f"sasl.password={ADMIN_PASSWORD}"]
    out = subprocess.run(kcat + ["-C", "-t", "sasl-ssl", "-o", "beginning", "-e", "-q"],
                         capture_output=True, check=True, timeout=TIMEOUT).stdout
    assert out.split() == [f"sasl-ssl-{i}".encode() for i in range(5)] + [b"python"]


def test_a_replaced_certificate_is_served_without_a_restart(start, ca):
    opts = tls_opts(ca, **{"brook.ssl.reload.interval.ms": "200"})
    broker = start(opts)
    keystore = opts["ssl.keystore.location"]
    first = peer_certificate(broker, ca)
    # A broken file is not loaded: the node keeps serving the certificate it has.
    with open(keystore, "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    deadline = time.monotonic() + TIMEOUT
    while "cannot be used" not in broker.log_tail(200):
        assert time.monotonic() < deadline, "the broken keystore was not noticed"
        time.sleep(0.1)
    assert peer_certificate(broker, ca) == first

    renewed = ca.server()
    tmp = f"{keystore}.tmp"
    with open(tmp, "w") as f:
        f.write(renewed.keystore.read_text())
    os.replace(tmp, keystore)
    deadline = time.monotonic() + TIMEOUT
    while (served := peer_certificate(broker, ca)) == first:
        assert time.monotonic() < deadline, "the renewed certificate was never served"
        time.sleep(0.1)
    assert served == ssl.PEM_cert_to_DER_cert(renewed.cert.read_text())
    assert round_trip(ssl_config(broker, ca), "renewed", 1) == [b"renewed-0"]


def test_a_cluster_replicates_over_mutual_tls(tmp_path, ca):
    client = ca.issue("/O=eng/CN=app")
    client_config = {"security.protocol": "SSL", "ssl.ca.location": str(ca.cert),
                     "ssl.certificate.location": str(client.cert),
                     "ssl.key.location": str(client.key)}
    cluster = BrookCluster(tmp_path / "cluster", 3,
                           tls_opts(ca, **{"ssl.client.auth": "required"}),
                           client_config=client_config)
    try:
        cluster.start()
        config = {**client_config, "bootstrap.servers": cluster.bootstrap}
        admin = AdminClient(config)
        admin.create_topics([NewTopic("tls-rf3", 1, 3)])["tls-rf3"].result(TIMEOUT)
        producer = Producer({**config, "acks": "all", "enable.idempotence": True})
        for i in range(200):
            producer.produce("tls-rf3", f"m-{i}".encode())
        assert producer.flush(TIMEOUT) == 0
        leader = admin.list_topics("tls-rf3", timeout=TIMEOUT).topics["tls-rf3"].partitions[0].leader
        # Acknowledged with acks=all means the followers fetched it over TLS: the leader's
        # death loses nothing.
        cluster.kill9(leader)
        got = read_values(config, "tls-rf3", 200, 60)
        assert got == [f"m-{i}".encode() for i in range(200)]
    finally:
        cluster.close()
