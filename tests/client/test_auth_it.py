"""`Kafka(sasl=...)` against klamm's broker with a SASL_PLAINTEXT listener."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from klamm import AuthenticationError, Kafka, KafkaError, RetryPolicy
from klamm.testing import EmbeddedBroker
from tests.client.client_helpers import FAST_CONSUMER, wait_until


@pytest.fixture(scope="module")
def sasl_broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(security_protocol="SASL_PLAINTEXT", sasl_users={"alice": "pw"}) as b:
        yield b


@pytest.mark.parametrize("mechanism", ["plain", "scram-sha-256", "scram-sha-512"])
async def test_sasl_round_trip(sasl_broker: EmbeddedBroker, unique: str, mechanism: str) -> None:
    kafka = Kafka(
        brokers=[sasl_broker.bootstrap],
        sasl={"mechanism": mechanism, "username": "alice", "password": "pw"},
    )
    topic = f"auth-{unique}"
    async with kafka.producer() as producer:
        await producer.send(topic=topic, messages=[{"value": b"secret"}])
    got: list[Any] = []

    async def handler(payload: Any) -> None:
        got.append(payload.message.value)

    async with kafka.consumer(group_id=f"g-{unique}", **FAST_CONSUMER) as consumer:
        await consumer.subscribe(topics=[topic], from_beginning=True)
        await consumer.run(each_message=handler)
        await wait_until(lambda: got == [b"secret"])


@pytest.mark.parametrize("mechanism", ["plain", "scram-sha-512"])
async def test_wrong_password_is_an_authentication_error_at_connect(
    sasl_broker: EmbeddedBroker, mechanism: str
) -> None:
    """As in KafkaJS, every client's connect() reaches the cluster: a refused login fails there,
    quickly and by name, instead of surfacing later as a timeout."""
    kafka = Kafka(
        brokers=[sasl_broker.bootstrap],
        sasl={"mechanism": mechanism, "username": "alice", "password": "wrong"},
    )
    for client in (kafka.producer(), kafka.admin(), kafka.consumer(group_id="g-refused")):
        started = time.monotonic()
        with pytest.raises(AuthenticationError) as info:
            await client.connect()
        assert time.monotonic() - started < 5
        assert not info.value.retriable
        assert "uthentication" in str(info.value)


async def test_connect_to_nothing_fails_with_a_connection_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here once the socket is closed
    # One 1 s attempt and one retry: connect() gives up after about 2 s.
    kafka = Kafka(brokers=[f"127.0.0.1:{port}"], retry=RetryPolicy(retries=1))
    producer = kafka.producer()
    started = time.monotonic()
    with pytest.raises(KafkaError) as info:
        await producer.connect()
    assert 1.5 < time.monotonic() - started < 5
    assert not isinstance(info.value, AuthenticationError)
    assert not producer.is_connected()
