"""Translate KafkaJS-shaped client options into librdkafka configuration (pure, testable)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from klamm.client.errors import ConfigError
from klamm.client.retry import RetryPolicy

# librdkafka's own log lines go to this logger (confluent-kafka accepts a `logger` in the config).
RDKAFKA_LOGGER = logging.getLogger("klamm.client.librdkafka")

_SASL_MECHANISMS = {
    "plain": "PLAIN",
    "scram-sha-256": "SCRAM-SHA-256",
    "scram-sha-512": "SCRAM-SHA-512",
    "oauthbearer": "OAUTHBEARER",
    "gssapi": "GSSAPI",
}
# Friendly TLS option names (KafkaJS passes Node's tls options; we take file locations).
_SSL_KEYS = {
    "ca_location": "ssl.ca.location",
    "ca": "ssl.ca.pem",
    "certificate_location": "ssl.certificate.location",
    "cert": "ssl.certificate.pem",
    "key_location": "ssl.key.location",
    "key": "ssl.key.pem",
    "key_password": "ssl.key.password",
}


def client_config(
    *,
    client_id: str,
    brokers: str | Sequence[str],
    ssl: bool | Mapping[str, Any] | None = None,
    sasl: Mapping[str, Any] | None = None,
    retry: RetryPolicy | None = None,
    connection_timeout_ms: int = 1_000,
    request_timeout_ms: int = 30_000,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The librdkafka settings every producer, consumer and admin of one `Kafka` shares."""
    if isinstance(brokers, str):
        brokers = [b for b in brokers.split(",") if b]
    if not brokers:
        raise ConfigError("brokers must list at least one host:port")
    conf: dict[str, Any] = {
        "bootstrap.servers": ",".join(brokers),
        "client.id": client_id,
        "socket.connection.setup.timeout.ms": max(1_000, connection_timeout_ms),
        "socket.timeout.ms": request_timeout_ms,
        "logger": RDKAFKA_LOGGER,
    }
    conf.update((retry or RetryPolicy()).librdkafka_config())
    if ssl and isinstance(ssl, Mapping):
        for name, value in ssl.items():
            if name == "reject_unauthorized":
                conf["enable.ssl.certificate.verification"] = bool(value)
            elif name == "check_hostname":
                conf["ssl.endpoint.identification.algorithm"] = "https" if value else "none"
            elif name in _SSL_KEYS:
                conf[_SSL_KEYS[name]] = value
            else:
                raise ConfigError(f"unknown ssl option {name!r}")
    if sasl:
        mechanism = str(sasl.get("mechanism", "")).lower()
        if mechanism not in _SASL_MECHANISMS:
            raise ConfigError(f"unknown sasl mechanism {mechanism!r}")
        conf["sasl.mechanism"] = _SASL_MECHANISMS[mechanism]
        if "username" in sasl:
            conf["sasl.username"] = sasl["username"]
        if "password" in sasl:
            conf["sasl.password"] = sasl["password"]
        if "oauth_cb" in sasl:
            conf["oauth_cb"] = sasl["oauth_cb"]
    conf["security.protocol"] = {
        (False, False): "PLAINTEXT",
        (True, False): "SSL",
        (False, True): "SASL_PLAINTEXT",
        (True, True): "SASL_SSL",
    }[(bool(ssl), bool(sasl))]
    if extra:
        conf.update(extra)
    return conf


def acks_value(acks: int | str) -> int:
    """KafkaJS acks: -1 (all), 0, 1. "all" is accepted as well."""
    if acks == "all":
        return -1
    if acks not in (-1, 0, 1):
        raise ConfigError(f"acks must be -1, 0 or 1, not {acks!r}")
    return int(acks)


def timeout_ms(value: object, what: str = "timeout_ms") -> int:
    """A timeout argument in milliseconds: an int >= 0 (a float is rounded), else ConfigError
    (Python would otherwise fail later with a TypeError from arithmetic on a str)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise ConfigError(f"{what} must be milliseconds (an int >= 0), not {value!r}")
    if value < 0:
        raise ConfigError(f"{what} must be >= 0, not {value!r}")
    return int(value)
