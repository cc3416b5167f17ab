"""confluent-kafka (librdkafka) against klamm's SASL and TLS listeners.

PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 over SASL_PLAINTEXT and SASL_SSL, plain SSL, a wrong
password (an authentication error within a second, the broker keeps serving others), a
mechanism the broker does not enable, and a subprocess broker (uvloop, `klamm broker`)."""

from __future__ import annotations

import contextlib
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from klamm.testing import EmbeddedBroker
from tests.interop.auth_support import (
    MECHANISMS,
    USERS,
    Certs,
    librdkafka_conf,
    sasl_settings,
    tls_settings,
)


def roundtrip(conf: dict[str, Any], count: int = 20) -> list[bytes]:
    """Produce `count` records to a new topic, then read them back in a consumer group."""
    topic = f"auth-{uuid.uuid4().hex[:8]}"
    producer = Producer({**conf, "linger.ms": 0})
    for i in range(count):
        producer.produce(topic, f"v{i}".encode(), key=b"k")
    assert producer.flush(15) == 0
    consumer = Consumer(
        {**conf, "group.id": f"g-{topic}", "auto.offset.reset": "earliest",
         "enable.auto.commit": False}
    )  # fmt: skip
    consumer.subscribe([topic])
    values: list[bytes] = []
    deadline = time.monotonic() + 20
    try:
        while len(values) < count and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is None:
                continue
            assert message.error() is None, message.error()
            values.append(message.value())
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    return values


def expected(count: int = 20) -> list[bytes]:
    return [f"v{i}".encode() for i in range(count)]


def auth_error(conf: dict[str, Any], timeout: float = 5.0) -> tuple[KafkaError, float]:
    """The first error librdkafka reports for a client that cannot log in, and how soon."""
    errors: list[KafkaError] = []
    admin = AdminClient({**conf, "error_cb": errors.append})
    started = time.monotonic()
    while not errors and time.monotonic() - started < timeout:
        admin.poll(0.05)
        with contextlib.suppress(KafkaException):  # the error comes through error_cb
            admin.list_topics(timeout=0.2)
    assert errors, "no error reported"
    return errors[0], time.monotonic() - started


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_sasl_plaintext_roundtrip(sasl_broker: EmbeddedBroker, mechanism: str) -> None:
    conf = librdkafka_conf(sasl_broker.bootstrap, "SASL_PLAINTEXT", mechanism, user="bob")
    assert roundtrip(conf) == expected()


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_wrong_password_fails_fast_and_others_keep_working(
    sasl_broker: EmbeddedBroker, mechanism: str
) -> None:
    bad = librdkafka_conf(sasl_broker.bootstrap, "SASL_PLAINTEXT", mechanism, password="nope")
    error, elapsed = auth_error(bad)
    assert error.code() == KafkaError._AUTHENTICATION, error
    assert "Authentication failed" in error.str()
    assert elapsed < 2.0
    good = librdkafka_conf(sasl_broker.bootstrap, "SASL_PLAINTEXT", mechanism)
    assert roundtrip(good, 3) == expected(3)


def test_unknown_user_gets_the_same_error(sasl_broker: EmbeddedBroker) -> None:
    conf = librdkafka_conf(sasl_broker.bootstrap, "SASL_PLAINTEXT", "SCRAM-SHA-256",
                           user="alice", password="x")  # fmt: skip
    conf["sasl.username"] = "mallory"
    error, _ = auth_error(conf)
    assert error.code() == KafkaError._AUTHENTICATION


def test_disabled_mechanism_is_refused() -> None:
    with EmbeddedBroker(**sasl_settings(), sasl_mechanisms=("SCRAM-SHA-512",)) as broker:
        conf = librdkafka_conf(broker.bootstrap, "SASL_PLAINTEXT", "PLAIN")
        error, _ = auth_error(conf)
        assert error.code() == KafkaError._AUTHENTICATION, error
        assert "SCRAM-SHA-512" in error.str()  # the broker's list of enabled mechanisms


def test_plaintext_client_on_sasl_listener_is_refused(sasl_broker: EmbeddedBroker) -> None:
    # Its Metadata request arrives before any login: the broker closes the connection.
    error, _ = auth_error({"bootstrap.servers": sasl_broker.bootstrap})
    assert error.code() in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN), error


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_sasl_ssl_roundtrip(sasl_ssl_broker: EmbeddedBroker, certs: Certs, mechanism: str) -> None:
    conf = librdkafka_conf(sasl_ssl_broker.bootstrap, "SASL_SSL", mechanism, ca=certs.ca)
    assert roundtrip(conf) == expected()


def test_ssl_roundtrip(ssl_broker: EmbeddedBroker, certs: Certs) -> None:
    conf = librdkafka_conf(ssl_broker.bootstrap, "SSL", ca=certs.ca)
    assert roundtrip(conf) == expected()


def test_ssl_client_that_does_not_trust_the_ca_is_refused(
    ssl_broker: EmbeddedBroker, certs: Certs
) -> None:
    error, _ = auth_error({"bootstrap.servers": ssl_broker.bootstrap, "security.protocol": "SSL"})
    assert error.code() in (KafkaError._SSL, KafkaError._TRANSPORT), error
    # ...and the broker still serves a client that does.
    conf = librdkafka_conf(ssl_broker.bootstrap, "SSL", ca=certs.ca)
    assert roundtrip(conf, 2) == expected(2)


def test_subprocess_broker_sasl_ssl_with_uvloop(certs: Certs, tmp_path: Path) -> None:
    """`python -m klamm broker` (uvloop when installed) with SASL_SSL from a properties file."""
    settings = {**sasl_settings("SASL_SSL"), **tls_settings(certs)}
    with EmbeddedBroker(tmp_path / "data", mode="subprocess", **settings) as broker:
        conf = librdkafka_conf(broker.bootstrap, "SASL_SSL", "SCRAM-SHA-512", user="bob",
                               ca=certs.ca)  # fmt: skip
        assert roundtrip(conf, 5) == expected(5)
        bad = {**conf, "sasl.password": "nope"}
        error, _ = auth_error(bad)
        assert error.code() == KafkaError._AUTHENTICATION
        log = broker.log_text()
    assert "SASL_SSL://" in log
    assert USERS["bob"] not in log and "nope" not in log  # passwords never reach the log
