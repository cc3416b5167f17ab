"""Shared pieces of the authentication interop tests: users, certificates, broker settings.

Each test module gets its own brokers from the module-scoped fixtures in conftest.py
(thread mode); nothing here starts a process by itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Passwords with ':' and ',' and non-ASCII: they reach the broker through every config path.
USERS = {"alice": "alice-secret", "bob": "b0b:p,w-ü"}
MECHANISMS = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]

# A SASL broker that lets consumer groups form at once (no 3 s initial rebalance delay).
FAST_GROUPS: dict[str, Any] = {"group_initial_rebalance_delay_ms": 0}


@dataclass(frozen=True)
class Certs:
    ca: Path  # PEM of the test CA: what clients trust
    cert: Path  # the broker's certificate chain (for 127.0.0.1 and localhost)
    key: Path  # the broker's private key


def make_certs(directory: Path) -> Certs:
    """A throwaway CA and a server certificate for 127.0.0.1, written as PEM files."""
    import trustme

    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    certs = Certs(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    ca.cert_pem.write_to_path(str(certs.ca))
    server.private_key_pem.write_to_path(str(certs.key))
    certs.cert.write_bytes(b"".join(blob.bytes() for blob in server.cert_chain_pems))
    return certs


def tls_settings(certs: Certs) -> dict[str, Any]:
    return {"ssl_certfile": certs.cert, "ssl_keyfile": certs.key}


def sasl_settings(protocol: str = "SASL_PLAINTEXT") -> dict[str, Any]:
    return {"security_protocol": protocol, "sasl_users": dict(USERS), **FAST_GROUPS}


def librdkafka_conf(
    bootstrap: str,
    protocol: str,
    mechanism: str | None = None,
    user: str = "alice",
    password: str | None = None,
    ca: Path | None = None,
) -> dict[str, Any]:
    """confluent-kafka / kcat settings for a listener."""
    conf: dict[str, Any] = {"bootstrap.servers": bootstrap, "security.protocol": protocol}
    if mechanism is not None:
        conf["sasl.mechanism"] = mechanism
        conf["sasl.username"] = user
        conf["sasl.password"] = USERS[user] if password is None else password
    if ca is not None:
        conf["ssl.ca.location"] = str(ca)
    return conf
