"""kcat (Debian 1.7.1, librdkafka 2.0.2) against klamm's SASL and TLS listeners.

This librdkafka is built with sasl_plain and sasl_scram, so all three mechanisms are covered,
plus SASL_SSL, SSL, and a wrong password."""

from __future__ import annotations

import subprocess
import uuid

import pytest

from klamm.testing import EmbeddedBroker
from tests.interop.auth_support import MECHANISMS, USERS, Certs, librdkafka_conf

pytestmark = pytest.mark.timeout(60)

LINES = [f"v{i}" for i in range(10)]


def _x(conf: dict[str, object]) -> list[str]:
    args = ["-b", str(conf.pop("bootstrap.servers"))]
    for key, value in conf.items():
        args += ["-X", f"{key}={value}"]
    return args


def kcat_roundtrip(kcat: str, conf: dict[str, object]) -> list[str]:
    topic = f"auth-kcat-{uuid.uuid4().hex[:8]}"
    base = _x(dict(conf))
    subprocess.run([kcat, *base, "-P", "-t", topic], input="\n".join(LINES) + "\n",
                   text=True, check=True, timeout=20, capture_output=True)  # fmt: skip
    out = subprocess.run([kcat, *base, "-C", "-t", topic, "-o", "beginning", "-e", "-q"],
                         text=True, check=True, timeout=20, capture_output=True)  # fmt: skip
    return out.stdout.splitlines()


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_sasl_plaintext(kcat: str, sasl_broker: EmbeddedBroker, mechanism: str) -> None:
    conf = librdkafka_conf(sasl_broker.bootstrap, "SASL_PLAINTEXT", mechanism, user="bob")
    assert kcat_roundtrip(kcat, conf) == LINES


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256"])
def test_sasl_ssl(kcat: str, sasl_ssl_broker: EmbeddedBroker, certs: Certs, mechanism: str) -> None:
    conf = librdkafka_conf(sasl_ssl_broker.bootstrap, "SASL_SSL", mechanism, ca=certs.ca)
    assert kcat_roundtrip(kcat, conf) == LINES


def test_ssl(kcat: str, ssl_broker: EmbeddedBroker, certs: Certs) -> None:
    assert kcat_roundtrip(kcat, librdkafka_conf(ssl_broker.bootstrap, "SSL", ca=certs.ca)) == LINES


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_wrong_password(kcat: str, sasl_broker: EmbeddedBroker, mechanism: str) -> None:
    conf = librdkafka_conf(sasl_broker.bootstrap, "SASL_PLAINTEXT", mechanism, password="nope")
    proc = subprocess.run([kcat, *_x(conf), "-L", "-m", "2"],
                          text=True, timeout=20, capture_output=True)  # fmt: skip
    assert proc.returncode != 0
    assert "SASL authentication error: Authentication failed" in proc.stderr
    assert USERS["alice"] not in proc.stderr
