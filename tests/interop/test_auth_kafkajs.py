"""KafkaJS against klamm's SASL and TLS listeners (node script `js/auth_roundtrip.js`).

KafkaJS picks SaslAuthenticate when the broker advertises it (research/brokers.md §1.5), so
this covers the v1 handshake path with PLAIN and SCRAM-SHA-256/512, over SASL_PLAINTEXT and
SASL_SSL, and a wrong password."""

from __future__ import annotations

import uuid

import pytest

from klamm.testing import EmbeddedBroker
from tests.interop.auth_support import USERS, Certs
from tests.interop.interop_helpers import NodeRunner

pytestmark = pytest.mark.timeout(60)

COUNT = 10
EXPECTED = [f"v{i}" for i in range(COUNT)]
KAFKAJS_MECHANISM = {"PLAIN": "plain", "SCRAM-SHA-256": "scram-sha-256",
                     "SCRAM-SHA-512": "scram-sha-512"}  # fmt: skip


def _args(broker: EmbeddedBroker, mechanism: str, password: str | None = None,
          ca: str | None = None) -> dict[str, object]:  # fmt: skip
    return {
        "brokers": [broker.bootstrap],
        "sasl": {
            "mechanism": KAFKAJS_MECHANISM[mechanism],
            "username": "bob",
            "password": USERS["bob"] if password is None else password,
        },
        "ca": ca,
        "topic": f"auth-js-{uuid.uuid4().hex[:8]}",
        "count": COUNT,
    }


@pytest.mark.parametrize("mechanism", list(KAFKAJS_MECHANISM))
def test_sasl_plaintext(node: NodeRunner, sasl_broker: EmbeddedBroker, mechanism: str) -> None:
    result = node("auth_roundtrip.js", _args(sasl_broker, mechanism))
    assert result == {"values": EXPECTED}


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-512"])
def test_sasl_ssl(
    node: NodeRunner, sasl_ssl_broker: EmbeddedBroker, certs: Certs, mechanism: str
) -> None:
    args = _args(sasl_ssl_broker, mechanism, ca=certs.ca.read_text())
    assert node("auth_roundtrip.js", args) == {"values": EXPECTED}


@pytest.mark.parametrize("mechanism", list(KAFKAJS_MECHANISM))
def test_wrong_password(node: NodeRunner, sasl_broker: EmbeddedBroker, mechanism: str) -> None:
    args = {**_args(sasl_broker, mechanism, password="nope"), "retries": 0}
    result = node("auth_roundtrip.js", args)
    assert result["error"] == "KafkaJSSASLAuthenticationError", result
    assert "Authentication failed" in result["message"]
    assert result["elapsedMs"] < 3000
