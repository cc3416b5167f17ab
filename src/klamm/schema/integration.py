"""Schema-aware producing and consuming on klamm's client, as a thin layer over it.

    registry = SchemaRegistry("http://127.0.0.1:8081")
    orders = SchemaProducer(producer, registry)
    await orders.send(topic="orders", messages=[{"key": b"o1", "value": {...}}],
                      value_schema=Schema(avro_json))

    async def handle(payload):          # payload.message.decoded_value: the decoded value
        ...
    await consumer.run(each_message=registry.decoding(handle))

`send` registers the schema under Confluent's TopicNameStrategy subject (`<topic>-value`,
`<topic>-key`) once per process, encodes each value in Confluent's wire format, and hands plain
bytes to `Producer.send`. `decoding` wraps an each_message handler: a value that cannot be decoded
(unknown id, not Confluent-framed, bad payload) raises SerdeError inside the handler, so the run
loop treats it as any handler error - retried, then sent to the dead-letter topic - and never
crashes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from klamm.client import EachMessagePayload, Producer, RecordMetadata
from klamm.schema.client import Schema, SchemaRegistry

SchemaInput = Schema | str | int  # a schema (str: AVRO text), or an id already registered


class SchemaProducer:
    def __init__(self, producer: Producer, registry: SchemaRegistry) -> None:
        self.producer = producer
        self.registry = registry
        self._ids: dict[tuple[str, Schema], int] = {}

    async def schema_id(self, subject: str, schema: SchemaInput) -> int:
        if isinstance(schema, int):
            return schema
        schema = Schema(schema) if isinstance(schema, str) else schema
        sid = self._ids.get((subject, schema))
        if sid is None:
            sid = await self.registry.register(schema, subject=subject)
            self._ids[(subject, schema)] = sid
        return sid

    async def send(
        self,
        *,
        topic: str,
        messages: Sequence[Mapping[str, Any]],
        value_schema: SchemaInput | None = None,
        key_schema: SchemaInput | None = None,
        **options: Any,
    ) -> Sequence[RecordMetadata]:
        value_id = (
            None if value_schema is None else await self.schema_id(f"{topic}-value", value_schema)
        )
        key_id = None if key_schema is None else await self.schema_id(f"{topic}-key", key_schema)
        encoded = []
        for message in messages:
            out = dict(message)
            if value_id is not None and out.get("value") is not None:
                out["value"] = await self.registry.encode(value_id, out["value"])
            if key_id is not None and out.get("key") is not None:
                out["key"] = await self.registry.encode(key_id, out["key"])
            encoded.append(out)
        return await self.producer.send(topic=topic, messages=encoded, **options)


class DecodedMessage:
    """A consumed message with `decoded_value` (and `decoded_key` when asked); every other
    attribute is the KafkaMessage's."""

    def __init__(self, message: Any, decoded_value: Any, decoded_key: Any) -> None:
        self._message = message
        self.decoded_value = decoded_value
        self.decoded_key = decoded_key

    def __getattr__(self, name: str) -> Any:
        return getattr(self._message, name)


class DecodedPayload:
    """An each_message payload whose `message` is a DecodedMessage; the rest is the payload's."""

    def __init__(self, payload: EachMessagePayload, message: DecodedMessage) -> None:
        self._payload = payload
        self.message = message

    def __getattr__(self, name: str) -> Any:
        return getattr(self._payload, name)


def decoding(
    registry: SchemaRegistry,
    handler: Callable[[DecodedPayload], Awaitable[None]],
    *,
    keys: bool = False,
) -> Callable[[EachMessagePayload], Awaitable[None]]:
    """An each_message handler that decodes the value (and the key, with `keys=True`) first."""

    async def each_message(payload: EachMessagePayload) -> None:
        message = payload.message
        value = None if message.value is None else await registry.decode(message.value)
        key = None
        if keys and message.key is not None:
            key = await registry.decode(message.key)
        await handler(DecodedPayload(payload, DecodedMessage(message, value, key)))

    return each_message
