"""kafka-python and aiokafka against klamm's SASL and TLS listeners.

Both pure-Python clients: PLAIN and SCRAM-SHA-256/512 over SASL_PLAINTEXT, SASL_SSL and SSL, a
produce/consume round trip each (kafka-python's producer is idempotent by default, so
InitProducerId goes through the login too), and a wrong password that fails with the broker's
SASL_AUTHENTICATION_FAILED message while the broker goes on serving."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

import pytest

from klamm.testing import EmbeddedBroker
from tests.interop.auth_support import MECHANISMS, USERS, Certs

pytestmark = pytest.mark.timeout(60)

COUNT = 10
EXPECTED = [f"v{i}".encode() for i in range(COUNT)]


def _topic() -> str:
    return f"auth-{uuid.uuid4().hex[:8]}"


def security_keywords(
    protocol: str, mechanism: str | None, user: str, password: str | None
) -> dict[str, Any]:
    """The security protocol and SASL login, which kafka-python and aiokafka spell alike (their
    TLS settings differ: kp_conf and aio_conf add those)."""
    conf: dict[str, Any] = {"security_protocol": protocol}
    if mechanism is not None:
        conf.update(
            sasl_mechanism=mechanism,
            sasl_plain_username=user,
            sasl_plain_password=USERS[user] if password is None else password,
        )
    return conf


# --- kafka-python ---------------------------------------------------------------------------


def kp_conf(protocol: str, mechanism: str | None, certs: Certs | None, password: str | None = None,
            user: str = "bob") -> dict[str, Any]:  # fmt: skip
    conf = security_keywords(protocol, mechanism, user, password)
    if certs is not None:
        conf.update(ssl_cafile=str(certs.ca), ssl_check_hostname=True)
    return conf


def kp_roundtrip(bootstrap: str, conf: dict[str, Any]) -> list[bytes]:
    from kafka import KafkaConsumer, KafkaProducer

    topic = _topic()
    producer = KafkaProducer(bootstrap_servers=bootstrap, **conf)
    try:
        for value in EXPECTED:
            producer.send(topic, value, key=b"k")
        producer.flush(15)
    finally:
        producer.close()
    consumer = KafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=f"g-{topic}", auto_offset_reset="earliest",
        consumer_timeout_ms=10_000, **conf,
    )  # fmt: skip
    try:
        values = []
        for message in consumer:
            values.append(message.value)
            if len(values) == COUNT:
                break
        consumer.commit()
    finally:
        consumer.close()
    return values


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_kafka_python_sasl_plaintext(sasl_broker: EmbeddedBroker, mechanism: str) -> None:
    conf = kp_conf("SASL_PLAINTEXT", mechanism, None)
    assert kp_roundtrip(sasl_broker.bootstrap, conf) == EXPECTED


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-512"])
def test_kafka_python_sasl_ssl(
    sasl_ssl_broker: EmbeddedBroker, certs: Certs, mechanism: str
) -> None:
    conf = kp_conf("SASL_SSL", mechanism, certs)
    assert kp_roundtrip(sasl_ssl_broker.bootstrap, conf) == EXPECTED


def test_kafka_python_ssl(ssl_broker: EmbeddedBroker, certs: Certs) -> None:
    assert kp_roundtrip(ssl_broker.bootstrap, kp_conf("SSL", None, certs)) == EXPECTED


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_kafka_python_wrong_password(
    sasl_broker: EmbeddedBroker, mechanism: str, caplog: pytest.LogCaptureFixture
) -> None:
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    conf = kp_conf("SASL_PLAINTEXT", mechanism, None, password="nope")
    started = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="kafka"), pytest.raises(KafkaError):
        # kafka-python retries bootstrap until bootstrap_timeout_ms whatever the error (3 s: a
        # SCRAM exchange plus the broker's failed-login delay on a loaded 2-core machine).
        KafkaAdminClient(bootstrap_servers=sasl_broker.bootstrap, bootstrap_timeout_ms=3000, **conf)
    assert time.monotonic() - started < 5
    assert "SaslAuthenticationFailedError" in caplog.text
    assert "Authentication failed" in caplog.text
    good = kp_conf("SASL_PLAINTEXT", mechanism, None)
    assert kp_roundtrip(sasl_broker.bootstrap, good) == EXPECTED


# --- aiokafka -------------------------------------------------------------------------------


def aio_conf(protocol: str, mechanism: str | None, certs: Certs | None, password: str | None = None,
             user: str = "alice") -> dict[str, Any]:  # fmt: skip
    from aiokafka.helpers import create_ssl_context

    conf = security_keywords(protocol, mechanism, user, password)
    if certs is not None:
        conf["ssl_context"] = create_ssl_context(cafile=str(certs.ca))
    return conf


async def aio_roundtrip(bootstrap: str, conf: dict[str, Any]) -> list[bytes]:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    topic = _topic()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **conf)
    await producer.start()
    try:
        for value in EXPECTED:
            await producer.send_and_wait(topic, value, key=b"k")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=f"g-{topic}", auto_offset_reset="earliest",
        **conf,
    )  # fmt: skip
    await consumer.start()
    try:
        values: list[bytes] = []
        async with asyncio.timeout(15):
            async for message in consumer:
                assert message.value is not None
                values.append(message.value)
                if len(values) == COUNT:
                    break
        await consumer.commit()
    finally:
        await consumer.stop()
    return values


@pytest.mark.parametrize("mechanism", MECHANISMS)
async def test_aiokafka_sasl_plaintext(sasl_broker: EmbeddedBroker, mechanism: str) -> None:
    conf = aio_conf("SASL_PLAINTEXT", mechanism, None)
    assert await aio_roundtrip(sasl_broker.bootstrap, conf) == EXPECTED


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256"])
async def test_aiokafka_sasl_ssl(
    sasl_ssl_broker: EmbeddedBroker, certs: Certs, mechanism: str
) -> None:
    conf = aio_conf("SASL_SSL", mechanism, certs)
    assert await aio_roundtrip(sasl_ssl_broker.bootstrap, conf) == EXPECTED


async def test_aiokafka_ssl(ssl_broker: EmbeddedBroker, certs: Certs) -> None:
    assert await aio_roundtrip(ssl_broker.bootstrap, aio_conf("SSL", None, certs)) == EXPECTED


@pytest.mark.parametrize("mechanism", MECHANISMS)
async def test_aiokafka_wrong_password(
    sasl_broker: EmbeddedBroker, mechanism: str, caplog: pytest.LogCaptureFixture
) -> None:
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaError

    conf = aio_conf("SASL_PLAINTEXT", mechanism, None, password="nope")
    producer = AIOKafkaProducer(bootstrap_servers=sasl_broker.bootstrap, **conf)
    started = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="aiokafka"), pytest.raises(KafkaError):
        try:
            await producer.start()
        finally:
            await producer.stop()
    assert time.monotonic() - started < 2
    assert "Authentication failed" in caplog.text
    good = aio_conf("SASL_PLAINTEXT", mechanism, None)
    assert await aio_roundtrip(sasl_broker.bootstrap, good) == EXPECTED
