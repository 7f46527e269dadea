"""OAUTHBEARER with confluent-kafka: JWTs signed here (RS256, openssl) against a JWKS file the
node reads. A valid token produces and consumes, and its `sub` is the principal (a super user
may change credentials, another user may not); an unsigned token, an expired one, one for
another audience, one from another issuer and one signed by a key not in the JWKS are each
refused. With re-authentication on, a session lasts no longer than its token. The JWKS
may come from an HTTPS endpoint (never plain http), whose rotated keys the node picks up.
"""

from __future__ import annotations

import base64
import http.server
import json
import socket
import ssl
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (AdminClient, NewTopic, ScramCredentialInfo, ScramMechanism,
                                   UserScramCredentialUpsertion)

from brookutil import produce_and_read_back
from certs import Authority
from conftest import Broker, brook_bin

TIMEOUT = 30
ISSUER, AUDIENCE = "https://issuer.test", "brook"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Signer:
    """An RSA key (made with openssl) that signs RS256 tokens."""

    def __init__(self, folder: Path, kid: str, file: str):
        self.kid = kid
        self.key = folder / file
        subprocess.run(["openssl", "genrsa", "-out", str(self.key), "2048"], check=True,
                       capture_output=True, timeout=60)

    def jwk(self) -> dict:
        out = subprocess.run(["openssl", "rsa", "-in", str(self.key), "-noout", "-modulus"],
                             check=True, capture_output=True, text=True, timeout=60).stdout
        modulus = bytes.fromhex(out.strip().split("=", 1)[1])
        return {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid,
                "n": b64url(modulus), "e": b64url((65537).to_bytes(3, "big"))}

    def token(self, header: dict | None = None, **claims) -> str:
        now = int(time.time())
        body = {"sub": "svc-admin", "iss": ISSUER, "aud": AUDIENCE, "iat": now,
                "exp": now + 600, **claims}
        head = header or {"alg": "RS256", "typ": "JWT", "kid": self.kid}
        signing_input = f"{b64url(json.dumps(head).encode())}.{b64url(json.dumps(body).encode())}"
        if head.get("alg") == "none":
            return signing_input + "."
        signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(self.key)],
                                   input=signing_input.encode(), check=True,
                                   capture_output=True, timeout=60).stdout
        return f"{signing_input}.{b64url(signature)}"


def oauth_broker(tmp_path, signer: Signer, settings: dict) -> Broker:
    """A node whose only mechanism is OAUTHBEARER, trusting `signer`'s key."""
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [signer.jwk()]}))
    return Broker(brook_bin(), tmp_path / "brook", {
        "listener.security.protocol.map": "PLAINTEXT:SASL_PLAINTEXT",
        "sasl.enabled.mechanisms": "OAUTHBEARER",
        "sasl.oauthbearer.jwks.endpoint.url": f"file://{jwks}",
        **settings,
    })


@pytest.fixture
def setup(request, tmp_path):
    signer = Signer(tmp_path, "key-1", "issuer.pem")
    broker = oauth_broker(tmp_path, signer, {
        "sasl.oauthbearer.expected.issuer": ISSUER,
        "sasl.oauthbearer.expected.audience": AUDIENCE,
        "super.users": "User:svc-admin",
        "connection.failed.authentication.delay.ms": "20",
    })
    request.node._brook_brokers = [broker]
    broker.start()
    yield broker, signer, tmp_path
    broker.close()


def config(broker: Broker, token: str) -> dict:
    return {"bootstrap.servers": broker.bootstrap, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": "OAUTHBEARER",
            "oauth_cb": lambda _config: (token, time.time() + 600)}


def admin(conf: dict) -> AdminClient:
    client = AdminClient(conf)
    client.poll(1)  # serves oauth_cb, so the client has its token
    return client


def refused(conf: dict) -> bool:
    errors: list[KafkaError] = []
    client = admin({**conf, "error_cb": errors.append, "log_level": 0,
                    "reconnect.backoff.ms": 200})
    with pytest.raises(KafkaException):
        client.list_topics(timeout=5)
    client.poll(1)
    return any(e.code() == KafkaError._AUTHENTICATION for e in errors)


def upsert(user: str) -> UserScramCredentialUpsertion:
    return UserScramCredentialUpsertion(
        user, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096), b"pw")


def test_a_signed_token_produces_consumes_and_names_the_principal(setup):
    broker, signer, _ = setup
    conf = config(broker, signer.token())
    client = admin(conf)
    client.create_topics([NewTopic("oauth", 1, 1)])["oauth"].result(TIMEOUT)
    assert produce_and_read_back(conf, "oauth", 5, TIMEOUT) == [f"oauth-{i}".encode() for i in range(5)]
    client.alter_user_scram_credentials([upsert("made-by-admin")])["made-by-admin"].result(TIMEOUT)
    reader = admin(config(broker, signer.token(sub="reader")))
    with pytest.raises(KafkaException) as denied:
        reader.alter_user_scram_credentials([upsert("made-by-reader")])["made-by-reader"].result(TIMEOUT)
    assert "CLUSTER_AUTHORIZATION_FAILED" in str(denied.value), denied.value


def test_bad_tokens_are_refused(setup):
    broker, signer, folder = setup
    stranger = Signer(folder, "key-1", "stranger.pem")  # same kid, a key not in the JWKS
    now = int(time.time())
    bad = {
        "unsigned": signer.token(header={"alg": "none", "typ": "JWT"}),
        "expired": signer.token(exp=now - 3600, iat=now - 7200),
        "wrong audience": signer.token(aud="someone-else"),
        "wrong issuer": signer.token(iss="https://evil.test"),
        "unknown key": stranger.token(),
    }
    for case, token in bad.items():
        assert refused(config(broker, token)), case
    log = broker.log_tail(1_000_000)
    for reason in ("alg none is not accepted", "expired", "audience", "issuer", "does not verify"):
        assert reason in log, f"no log line saying `{reason}`"


def sasl_oauthbearer(port: int, token: str) -> tuple[int, int]:
    """A raw SaslHandshake v1 and SaslAuthenticate v1 with `token`: the error code and the
    session lifetime the node grants (KIP-368)."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        def exact(n: int) -> bytes:
            data = b""
            while len(data) < n:
                chunk = sock.recv(n - len(data))
                assert chunk, "connection closed"
                data += chunk
            return data

        def call(api: int, body: bytes, correlation: int) -> bytes:
            client = b"brook-tests"
            frame = struct.pack(">hhih", api, 1, correlation, len(client)) + client + body
            sock.sendall(struct.pack(">i", len(frame)) + frame)
            answer = exact(struct.unpack(">i", exact(4))[0])
            assert struct.unpack(">i", answer[:4])[0] == correlation
            return answer[4:]

        mechanism = b"OAUTHBEARER"
        shake = call(17, struct.pack(">h", len(mechanism)) + mechanism, 1)
        assert struct.unpack(">h", shake[:2])[0] == 0
        message = f"n,,\x01auth=Bearer {token}\x01\x01".encode()
        answer = call(36, struct.pack(">i", len(message)) + message, 2)
        error, text_len = struct.unpack(">hh", answer[:4])
        at = 4 + max(text_len, 0)
        at += 4 + max(struct.unpack(">i", answer[at:at + 4])[0], 0)
        return error, struct.unpack(">q", answer[at:at + 8])[0]


def test_a_session_ends_with_its_token(tmp_path):
    signer = Signer(tmp_path, "key-1", "issuer.pem")
    broker = oauth_broker(tmp_path, signer, {"connections.max.reauth.ms": "600000"})
    broker.start()
    try:
        now = int(time.time())
        error, session = sasl_oauthbearer(broker.port, signer.token(exp=now + 20))
        assert error == 0
        assert 0 < session <= 20_000, session
        error, session = sasl_oauthbearer(broker.port, signer.token(exp=now + 3600))
        assert error == 0
        assert 590_000 < session <= 600_000, session
    finally:
        broker.close()


class JwksServer:
    """An HTTPS server (the test's CA) serving a JWKS that the test can replace."""

    def __init__(self, folder: Path, keys: list[dict]):
        self.authority = Authority(folder / "idp-ca", "idp test CA")
        served = self.issued = self.authority.server()
        self.body = json.dumps({"keys": keys}).encode()
        self.requests = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(served.cert), str(served.key))
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}/keys.json"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def serve(self, keys: list[dict]) -> None:
        self.body = json.dumps({"keys": keys}).encode()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_the_jwks_comes_over_https_and_rotated_keys_are_used(tmp_path):
    first = Signer(tmp_path, "key-1", "first.pem")
    second = Signer(tmp_path, "key-2", "second.pem")
    idp = JwksServer(tmp_path, [first.jwk()])
    broker = Broker(brook_bin(), tmp_path / "brook", {
        "listener.security.protocol.map": "PLAINTEXT:SASL_PLAINTEXT",
        "sasl.enabled.mechanisms": "OAUTHBEARER",
        "sasl.oauthbearer.jwks.endpoint.url": idp.url,
        "brook.sasl.oauthbearer.jwks.ca.location": str(idp.authority.cert),
        "sasl.oauthbearer.jwks.endpoint.refresh.ms": "500",
        "connection.failed.authentication.delay.ms": "20",
    })
    broker.start()
    try:
        assert sasl_oauthbearer(broker.port, first.token())[0] == 0
        assert sasl_oauthbearer(broker.port, second.token())[0] == 58
        # The provider rotates to the second key: the node picks it up without a restart.
        idp.serve([second.jwk()])
        deadline = time.monotonic() + TIMEOUT
        while sasl_oauthbearer(broker.port, second.token())[0] != 0:
            assert time.monotonic() < deadline, "the rotated key was never used"
            time.sleep(0.2)
        assert sasl_oauthbearer(broker.port, first.token())[0] == 58
        # A key set that does not parse keeps the previous keys.
        idp.body = b"not json"
        seen = idp.requests
        while idp.requests < seen + 2:
            assert time.monotonic() < deadline, "the JWKS was not read again"
            time.sleep(0.2)
        assert sasl_oauthbearer(broker.port, second.token())[0] == 0
        assert "is not a JSON key set" in broker.log_tail(1_000_000)
    finally:
        broker.close()
        idp.close()


def test_a_jwks_over_plain_http_is_refused_at_start(tmp_path):
    broker = Broker(brook_bin(), tmp_path / "brook", {
        "listener.security.protocol.map": "PLAINTEXT:SASL_PLAINTEXT",
        "sasl.enabled.mechanisms": "OAUTHBEARER",
        "sasl.oauthbearer.jwks.endpoint.url": "http://127.0.0.1:1/keys.json",
    })
    with pytest.raises(Exception):
        broker.start()
    assert "never plain http" in broker.log_tail(1_000_000)
    broker.close()
