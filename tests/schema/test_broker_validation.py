"""Broker-side schema validation: `confluent.value.schema.validation=true` on a topic makes the
broker refuse records whose value names no schema registered under `<topic>-value`, with Kafka's
INVALID_RECORD and a message saying why (schema_validation.py)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from klamm.protocol.errors import ErrorCode
from klamm.protocol.record_batch import Record, RecordBatch, build_batch
from klamm.schema import SchemaRegistry
from tests.broker.wire import Wire
from tests.schema.schema_helpers import RunningRegistry

ORDER = json.dumps(
    {"type": "record", "name": "Order", "fields": [{"name": "id", "type": "string"}]}
)


def _produce(bootstrap: str, topic: str, value: bytes | None, key: bytes | None = None) -> Any:
    """Produce one record; returns None on success, else the KafkaError."""
    outcome: list[Any] = []
    producer = Producer({"bootstrap.servers": bootstrap, "message.send.max.retries": 0})
    producer.produce(topic, value=value, key=key, on_delivery=lambda err, _msg: outcome.append(err))
    producer.flush(30)
    return outcome[0]


async def test_value_validation(kafka_broker: Any, registry: RunningRegistry, unique: str) -> None:
    bootstrap = kafka_broker.bootstrap
    topic = f"validated-{unique}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = NewTopic(topic, 1, config={"confluent.value.schema.validation": "true"})
    admin.create_topics([new])[topic].result(30)
    sr = SchemaRegistry(registry.url)
    sid = await sr.register(ORDER, subject=f"{topic}-value")
    other = await sr.register(
        json.dumps({"type": "record", "name": "Other", "fields": []}), subject=f"else-{unique}"
    )

    def produce(value: bytes | None) -> Any:
        return _produce(bootstrap, topic, value)

    good = await sr.encode(sid, {"id": "o1"})
    assert await asyncio.to_thread(produce, good) is None
    assert await asyncio.to_thread(produce, None) is None  # a tombstone carries no schema

    raw = await asyncio.to_thread(produce, b'{"id": "o1"}')
    assert raw.code() == KafkaError.INVALID_RECORD

    # The message and the records at fault, as a raw Produce v9 shows them: a batch of a good
    # record, an unframed one and one naming another subject's schema is refused whole.
    now = int(time.time() * 1000)
    values = [good, b'{"id": "o1"}', await sr.encode(other, {})]
    batch = build_batch(
        RecordBatch(records=[Record(i, now, None, v) for i, v in enumerate(values)])
    )
    end = kafka_broker.broker.partition(topic, 0).log.log_end_offset
    with Wire(bootstrap) as wire:
        response = wire.request(
            0, 9, transactional_id=None, acks=-1, timeout=5000,
            topic_data=[{"name": topic, "partition_data": [{"index": 0, "records": batch}]}],
        )  # fmt: skip
    result = response.responses[0].partition_responses[0]
    assert result.error_code == ErrorCode.invalid_record
    assert result.error_message.startswith(f"Schema validation failed in topic partition {topic}-0")
    assert "not in Confluent's wire format" in result.error_message
    errors = {e.batch_index: e.batch_index_error_message for e in result.record_errors}
    assert sorted(errors) == [1, 2]
    assert f"schema id {other} " in errors[2] and f"{topic}-value" in errors[2]
    assert kafka_broker.broker.partition(topic, 0).log.log_end_offset == end  # nothing appended

    # A schema registered after the broker last read `_schemas` is accepted on first use.
    newer = json.dumps(
        {"type": "record", "name": "Order", "fields": [
            {"name": "id", "type": "string"}, {"name": "n", "type": "int", "default": 0}]}
    )  # fmt: skip
    sid2 = await sr.register(newer, subject=f"{topic}-value")
    assert await asyncio.to_thread(produce, await sr.encode(sid2, {"id": "o2", "n": 1})) is None


def test_topics_without_the_config_take_anything(kafka_broker: Any, unique: str) -> None:
    assert _produce(kafka_broker.bootstrap, f"free-{unique}", b"plain bytes") is None
