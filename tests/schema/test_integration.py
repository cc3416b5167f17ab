"""Schema-aware producing and consuming with klamm's client: SchemaProducer.send(value_schema=...)
and payload.message.decoded_value; an undecodable value is a handler error that ends in the
dead-letter topic, never a crash of the run loop."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from klamm import Events, Kafka, RetryPolicy
from klamm.schema import Schema, SchemaProducer, SchemaRegistry
from tests.schema.schema_helpers import RunningRegistry

ORDER = json.dumps(
    {
        "type": "record",
        "name": "Order",
        "fields": [{"name": "id", "type": "string"}, {"name": "n", "type": "int"}],
    }
)
FAST: dict[str, Any] = {"session_timeout_ms": 6_000, "heartbeat_interval_ms": 500,
                        "max_wait_time_ms": 100}  # fmt: skip


async def _wait(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_send_with_value_schema_and_decoded_values(
    kafka_broker: Any, registry: RunningRegistry, unique: str
) -> None:
    kafka = Kafka(client_id="schema-tests", brokers=[kafka_broker.bootstrap])
    sr = SchemaRegistry(registry.url)
    topic, dlq = f"orders-{unique}", f"orders-{unique}.dlq"
    async with kafka.producer() as producer:
        orders = SchemaProducer(producer, sr)
        await orders.send(topic=topic, value_schema=Schema(ORDER),
                          messages=[{"key": b"o1", "value": {"id": "o1", "n": 1}}])  # fmt: skip
        # A value naming a schema id nobody registered, then a good one.
        await producer.send(
            topic=topic, messages=[{"key": b"bad", "value": b"\x00\x7f\xff\xff\xffx"}]
        )
        await orders.send(topic=topic, value_schema=Schema(ORDER),
                          messages=[{"key": b"o2", "value": {"id": "o2", "n": 2}}])  # fmt: skip
    assert await sr.get_latest_schema_id(f"{topic}-value") > 0

    seen: list[Any] = []
    dead: list[Any] = []

    async def handle(payload: Any) -> None:
        seen.append((payload.message.key, payload.message.decoded_value, payload.topic))

    consumer = kafka.consumer(group_id=f"g-{unique}", **FAST)
    consumer.on(Events.DEAD_LETTER, dead.append)
    async with consumer:
        await consumer.subscribe(topics=[topic], from_beginning=True)
        await consumer.run(
            each_message=sr.decoding(handle),
            retry=RetryPolicy(initial_retry_time_ms=10, max_retry_time_ms=50, retries=1),
            dead_letter_topic=dlq,
        )
        await _wait(lambda: len(seen) == 2 and len(dead) == 1)
    assert seen == [(b"o1", {"id": "o1", "n": 1}, topic), (b"o2", {"id": "o2", "n": 2}, topic)]
    assert dead[0].payload["offset"] == 1
