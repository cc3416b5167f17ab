"""`SchemaRegistry`: the client side, in the spirit of KafkaJS's @kafkajs/confluent-schema-registry.

    registry = SchemaRegistry("http://127.0.0.1:8081")
    schema_id = await registry.register(Schema(avro_json), subject="orders-value")
    data = await registry.encode(schema_id, {"id": "o1", "amount": 9.5})
    value = await registry.decode(data)

Values use Confluent's wire format: magic byte 0, the 4-byte big-endian schema id, then the payload
(Avro binary; JSON text; for Protobuf the message-index list, then the message). Schemas fetched by
id are cached (an id never changes meaning). HTTP uses the standard library in a worker thread, so
the event loop never blocks and klamm needs no HTTP client dependency.

Encoding or decoding errors raise `SerdeError` (an unknown id: `UnknownSchemaError`), never crash a
consumer's run loop: in an each-message handler they are a handler error like any other, retried
and then sent to the dead-letter topic.
"""

from __future__ import annotations

import asyncio
import io
import json
import struct
import urllib.error
import urllib.parse
import urllib.request
import weakref
from dataclasses import dataclass, field
from typing import Any

from klamm.schema.formats import ParsedSchema, parse
from klamm.schema.records import Reference

MAGIC = 0
HEADER = struct.Struct(">bI")  # magic byte, schema id
MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"
HTTP_TIMEOUT = 30.0  # seconds per registry request
_POOLS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


class SchemaRegistryError(Exception):
    """The registry answered an error: `status` (HTTP) and Confluent's `error_code`."""

    def __init__(self, status: int, error_code: int, message: str) -> None:
        super().__init__(f"{message} (HTTP {status}, error {error_code})")
        self.status, self.error_code, self.message = status, error_code, message


class SerdeError(ValueError):
    """A value could not be encoded with, or decoded from, a schema."""


class UnknownSchemaError(SerdeError):
    """The bytes name a schema id the registry does not have (or they are not Confluent-framed)."""


@dataclass(frozen=True)
class Schema:
    schema: str
    schema_type: str = "AVRO"
    references: tuple[Reference, ...] = field(default=())

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schema": self.schema}
        if self.schema_type != "AVRO":
            out["schemaType"] = self.schema_type
        if self.references:
            out["references"] = [r.to_json() for r in self.references]
        return out


class SchemaRegistry:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self._by_id: dict[int, tuple[Schema, ParsedSchema]] = {}

    # --- REST -------------------------------------------------------------------------------------

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Content-Type": MEDIA_TYPE, "Accept": MEDIA_TYPE},
        )
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            with exc:
                try:
                    err = json.loads(exc.read())
                except ValueError:
                    err = {}
            raise SchemaRegistryError(
                exc.code, int(err.get("error_code", exc.code)), str(err.get("message", exc.reason))
            ) from None

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        return await asyncio.to_thread(self._request, method, path, body)

    async def register(self, schema: Schema | str, subject: str) -> int:
        """Register `schema` (AVRO when given as a string) under `subject`; returns its id."""
        schema = Schema(schema) if isinstance(schema, str) else schema
        quoted = urllib.parse.quote(subject, safe="")
        return int((await self._call("POST", f"/subjects/{quoted}/versions", schema.body()))["id"])

    async def get_latest_schema_id(self, subject: str) -> int:
        quoted = urllib.parse.quote(subject, safe="")
        return int((await self._call("GET", f"/subjects/{quoted}/versions/latest"))["id"])

    async def get_schema(self, schema_id: int) -> Schema:
        return (await self._schema(schema_id))[0]

    async def _schema(self, schema_id: int) -> tuple[Schema, ParsedSchema]:
        hit = self._by_id.get(schema_id)
        if hit is not None:
            return hit
        try:
            body = await self._call("GET", f"/schemas/ids/{schema_id}")
        except SchemaRegistryError as exc:
            if exc.status == 404:
                raise UnknownSchemaError(f"schema id {schema_id} is not in the registry") from None
            raise
        refs = tuple(
            Reference(r["name"], r["subject"], int(r["version"]))
            for r in body.get("references") or ()
        )
        schema = Schema(body["schema"], body.get("schemaType", "AVRO"), refs)
        resolved: dict[str, ParsedSchema] = {}
        for ref in refs:
            quoted = urllib.parse.quote(ref.subject, safe="")
            version = await self._call("GET", f"/subjects/{quoted}/versions/{ref.version}")
            resolved[ref.name] = (await self._schema(int(version["id"])))[1]
        parsed = await asyncio.to_thread(parse, schema.schema_type, schema.schema, resolved)
        self._by_id[schema_id] = (schema, parsed)
        return schema, parsed

    def decoding(self, handler: Any, *, keys: bool = False) -> Any:
        """Wrap an each_message handler so `payload.message.decoded_value` is the decoded value
        (integration.py)."""
        from klamm.schema.integration import decoding

        return decoding(self, handler, keys=keys)

    # --- serdes -----------------------------------------------------------------------------------

    async def encode(self, schema_id: int, value: Any) -> bytes:
        _, parsed = await self._schema(schema_id)
        return HEADER.pack(MAGIC, schema_id) + _encode(parsed, value)

    async def decode(self, data: bytes) -> Any:
        if len(data) < HEADER.size or data[0] != MAGIC:
            raise UnknownSchemaError("not Confluent wire format (magic byte 0 and a schema id)")
        _, schema_id = HEADER.unpack_from(data)
        _, parsed = await self._schema(schema_id)
        return _decode(parsed, data[HEADER.size :])


def _encode(parsed: ParsedSchema, value: Any) -> bytes:
    try:
        if parsed.schema_type == "AVRO":
            import fastavro

            out = io.BytesIO()
            fastavro.schemaless_writer(out, parsed.parsed, value)  # type: ignore[attr-defined]
            return out.getvalue()
        if parsed.schema_type == "JSON":
            parsed.validator().validate(value)  # type: ignore[attr-defined]
            return json.dumps(value, separators=(",", ":")).encode()
        # PROTOBUF: a message of one of the schema's top-level types; index list [0] is "the
        # first message", written as the single byte 0 (Confluent's shortcut).
        names = [m.name for m in parsed.descriptor.message_type]  # type: ignore[attr-defined]
        index = names.index(value.DESCRIPTOR.name)
        prefix = b"\x00" if index == 0 else _zigzag_varints([1, index])
        return prefix + bytes(value.SerializeToString())
    except SerdeError:
        raise
    except Exception as exc:
        raise SerdeError(f"cannot encode with the {parsed.schema_type} schema: {exc}") from exc


def _decode(parsed: ParsedSchema, payload: bytes) -> Any:
    try:
        if parsed.schema_type == "AVRO":
            import fastavro

            return fastavro.schemaless_reader(io.BytesIO(payload), parsed.parsed, None)  # type: ignore[attr-defined]
        if parsed.schema_type == "JSON":
            return json.loads(payload)
        indexes, offset = _read_indexes(payload)
        cls = _message_class(parsed, indexes)
        message = cls()
        message.ParseFromString(payload[offset:])
        return message
    except SerdeError:
        raise
    except Exception as exc:
        raise SerdeError(f"cannot decode with the {parsed.schema_type} schema: {exc}") from exc


def _zigzag_varints(values: list[int]) -> bytes:
    out = bytearray()
    for v in values:
        z = (v << 1) ^ (v >> 63)
        while True:
            byte = z & 0x7F
            z >>= 7
            out.append(byte | (0x80 if z else 0))
            if not z:
                break
    return bytes(out)


def _read_varint(data: bytes, offset: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if offset >= len(data) or shift > 63:
            raise SerdeError("truncated Protobuf message-index list")
        byte = data[offset]
        offset += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            z = result
            return (z >> 1) ^ -(z & 1), offset


def _read_indexes(payload: bytes) -> tuple[list[int], int]:
    count, offset = _read_varint(payload, 0)
    if count == 0:
        return [0], offset
    if count < 0 or count > len(payload):
        raise SerdeError("malformed Protobuf message-index list")
    indexes = []
    for _ in range(count):
        value, offset = _read_varint(payload, offset)
        indexes.append(value)
    return indexes, offset


def _message_class(parsed: Any, indexes: list[int]) -> Any:
    from google.protobuf import descriptor_pool, message_factory

    pool = _POOLS.get(parsed)
    if pool is None:  # one pool per schema: names in two schemas' files may clash
        pool = descriptor_pool.DescriptorPool()
        for dep in parsed.deps:
            pool.Add(dep)
        pool.Add(parsed.descriptor)
        _POOLS[parsed] = pool
    proto = parsed.descriptor.message_type[indexes[0]]
    name = proto.name
    for i in indexes[1:]:
        proto = proto.nested_type[i]
        name += "." + proto.name
    full = f"{parsed.descriptor.package}.{name}" if parsed.descriptor.package else name
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(full))
