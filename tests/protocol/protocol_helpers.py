"""Helpers shared by the protocol tests and the broker's: which request versions klamm decodes,
and minimal request bodies with a null count in one array."""

from __future__ import annotations

import dataclasses
import struct
import types
import typing
from collections.abc import Iterator
from typing import Any

from kio.serial._introspect import (
    EntityField,
    EntityTupleField,
    classify_field,
    get_schema_field_type,
)

from klamm.protocol.api_versions import ADVERTISED_ONLY, SUPPORTED
from klamm.protocol.messages import request_type

# Every (api key, version) klamm decodes.
DECODED = [
    (key, version)
    for key, versions in SUPPORTED.items()
    for version in range(versions.min, versions.max + 1)
    if version not in ADVERTISED_ONLY.get(key, ())
]

# Bytes of each fixed-size kio type: a minimal body has zeros there.
_FIXED = {"bool": 1, "int8": 1, "int16": 2, "uint16": 2, "int32": 4, "uint32": 4, "int64": 8,
          "uint64": 8, "float64": 8, "uuid": 16, "error_code": 2, "timedelta_i32": 4,
          "timedelta_i64": 8, "datetime_i64": 8}  # fmt: skip


def _fields(schema: Any) -> list[Any]:
    return [f for f in dataclasses.fields(schema) if "tag" not in f.metadata]


def _nullable(field: Any) -> bool:
    return typing.get_origin(field.type) is types.UnionType and types.NoneType in typing.get_args(
        field.type
    )


def _arrays(schema: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Paths to every array a request may not send as null, through one element of each
    array on the way."""
    for field in _fields(schema):
        kind = classify_field(field)
        path = (*prefix, field.name)
        if kind.is_array and not _nullable(field):
            yield path
        if isinstance(kind, EntityTupleField | EntityField):
            yield from _arrays(kind.type_, path)


def minimal_body(schema: Any, target: tuple[str, ...], count: int) -> bytes:
    """The smallest body of `schema` (zeros, empty strings and arrays), except along `target`:
    one element in each array on the way, and `count` (-1: null) as the last array's count."""
    flexible = schema.__flexible__
    out = b""
    for field in _fields(schema):
        kind = classify_field(field)
        on_path = bool(target) and target[0] == field.name
        if kind.is_array:
            n = (count if len(target) == 1 else 1) if on_path else 0
            out += _uvarint(n + 1) if flexible else struct.pack(">i", n)
            if n == 1 and isinstance(kind, EntityTupleField):
                out += minimal_body(kind.type_, target[1:] if on_path else (), count)
            elif n == 1:
                out += _minimal_primitive(get_schema_field_type(field), flexible)
        elif isinstance(kind, EntityField):
            marker = b"\x01" if _nullable(field) else b""  # a nullable struct, present
            out += marker + minimal_body(kind.type_, target[1:] if on_path else (), count)
        else:
            out += _minimal_primitive(get_schema_field_type(field), flexible)
    return out + (b"\0" if flexible else b"")


def _minimal_primitive(kafka_type: str, flexible: bool) -> bytes:
    if kafka_type in _FIXED:
        return b"\0" * _FIXED[kafka_type]
    if flexible:
        return b"\x01"  # empty compact string or bytes
    return b"\0\0" if kafka_type == "string" else b"\0\0\0\0"


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    return bytes([*out, value])


NULL_ARRAY_CASES = [
    (key, version, path) for key, version in DECODED for path in _arrays(request_type(key, version))
]
