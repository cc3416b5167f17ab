"""klamm.schema.SchemaRegistry: register, encode and decode in Confluent's wire format, for all
three types, interchangeable with confluent-kafka's serializers."""

from __future__ import annotations

import json

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from klamm.schema import Schema, SchemaRegistry, SchemaRegistryError, SerdeError, UnknownSchemaError
from tests.schema.schema_helpers import RunningRegistry

AVRO = json.dumps(
    {
        "type": "record",
        "name": "Order",
        "fields": [{"name": "id", "type": "string"}, {"name": "n", "type": "int"}],
    }
)
JSON_SCHEMA = json.dumps(
    {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}
)
PROTO = (
    'syntax = "proto3";\npackage p{u};\n'
    "message A {{ string id = 1; }}\nmessage B {{ int32 n = 1; }}\n"
)


async def test_avro_encode_decode_and_confluent_reads_it(
    registry: RunningRegistry, unique: str
) -> None:
    client = SchemaRegistry(registry.url)
    sid = await client.register(AVRO, subject=f"c-{unique}-value")
    assert await client.get_latest_schema_id(f"c-{unique}-value") == sid
    data = await client.encode(sid, {"id": "o1", "n": 3})
    assert data[:5] == b"\x00" + sid.to_bytes(4, "big")
    assert await client.decode(data) == {"id": "o1", "n": 3}
    with SchemaRegistryClient({"url": registry.url}) as confluent:
        ctx = SerializationContext("t", MessageField.VALUE)
        assert AvroDeserializer(confluent)(data, ctx) == {"id": "o1", "n": 3}


async def test_json_and_protobuf(registry: RunningRegistry, unique: str) -> None:
    client = SchemaRegistry(registry.url)
    jid = await client.register(Schema(JSON_SCHEMA, "JSON"), subject=f"j-{unique}")
    assert await client.decode(await client.encode(jid, {"id": "x"})) == {"id": "x"}
    with pytest.raises(SerdeError):
        await client.encode(jid, {"id": 5})  # the schema says string
    pid = await client.register(Schema(PROTO.format(u=unique), "PROTOBUF"), subject=f"p-{unique}")
    decoded = await client.decode(b"\x00" + pid.to_bytes(4, "big") + b"\x02\x02" + b"\x08\x07")
    assert type(decoded).__name__ == "B" and decoded.n == 7  # message index [1]: the second type
    assert (await client.decode(await client.encode(pid, decoded))).n == 7


async def test_errors_are_clear(registry: RunningRegistry, unique: str) -> None:
    client = SchemaRegistry(registry.url)
    with pytest.raises(UnknownSchemaError):
        await client.decode(b"\x00\x7f\xff\xff\xf0payload")
    with pytest.raises(UnknownSchemaError):
        await client.decode(b"plain bytes")
    with pytest.raises(SchemaRegistryError) as info:
        await client.register(Schema("{nope", "AVRO"), subject=f"bad-{unique}")
    assert info.value.error_code == 42201
    with pytest.raises(SchemaRegistryError) as missing:
        await client.get_latest_schema_id(f"none-{unique}")
    assert missing.value.error_code == 40401
