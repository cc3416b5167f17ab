"""`Kafka(sasl=...)` against klamm's broker with a SASL_PLAINTEXT listener."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from client_helpers import FAST_CONSUMER, wait_until

from klamm import Kafka, KafkaTimeoutError
from klamm.testing import EmbeddedBroker


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


async def test_wrong_password_fails_the_send(sasl_broker: EmbeddedBroker, unique: str) -> None:
    """librdkafka reports authentication failures on its error callback and keeps the message
    queued, so the send surfaces as a timeout (not yet as an authentication error)."""
    kafka = Kafka(
        brokers=[sasl_broker.bootstrap],
        sasl={"mechanism": "plain", "username": "alice", "password": "wrong"},
    )
    producer = kafka.producer()
    await producer.connect()
    with pytest.raises(KafkaTimeoutError):
        await producer.send(topic=f"auth-{unique}", messages=[{"value": b"x"}], timeout_ms=2_000)
    await producer.disconnect(timeout_ms=100)
