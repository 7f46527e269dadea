"""OAUTHBEARER with confluent-kafka: JWTs signed here (RS256, openssl) against a JWKS file the
node reads. A valid token produces and consumes, and its `sub` is the principal (a super user
may change credentials, another user may not); an unsigned token, an expired one, one for
another audience, one from another issuer and one signed by a key not in the JWKS are each
refused.
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (AdminClient, NewTopic, ScramCredentialInfo, ScramMechanism,
                                   UserScramCredentialUpsertion)

from brookutil import produce_and_read_back
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


@pytest.fixture
def setup(request, tmp_path):
    signer = Signer(tmp_path, "key-1", "issuer.pem")
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [signer.jwk()]}))
    broker = Broker(brook_bin(), tmp_path / "brook", {
        "listener.security.protocol.map": "PLAINTEXT:SASL_PLAINTEXT",
        "sasl.enabled.mechanisms": "OAUTHBEARER",
        "sasl.oauthbearer.jwks.endpoint.url": f"file://{jwks}",
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
