"""A request body's lengths, checked against the bytes actually there, before kio decodes it.

kio's native decoder reserves room for an array's declared element count before reading any
element. One 24-byte frame declaring four billion elements made it ask for 32 GiB, and the Rust
allocator aborted the whole broker. This module walks a body as its schema lays it out, reading
only lengths: an array count, string, bytes or tagged field that cannot fit in what is left of the
frame is rejected as MalformedFrame, where Kafka's own parser fails on a buffer underflow.

The walk also refuses a null (-1) count for an array its schema does not allow to be null: kio
decodes it as None and the handler, expecting a tuple, failed with a TypeError. Kafka's
generated readers refuse it ("non-nullable field ... was serialized as null"), the request
fails to parse, and the broker closes the connection (SocketServer), as klamm does with any
MalformedFrame.

The walk also finds tagged fields the schema does not know. Kafka skips those (KIP-482: new
tagged fields may be added to a version without bumping it) but kio refuses them, so they are cut
out of the frame before decoding.

The walk also counts array elements, every array of the request together: more than
MAX_REQUEST_ELEMENTS is refused. Kafka has no such bound, but every element costs the broker
decoding, handling and encoding (about 25 us here), so a request of a few megabytes listing a
million distinct group ids or topic names held the event loop, and every other client, for half
a minute.

Each schema is compiled once into a list of steps; a run of fixed-size fields is a single skip.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from functools import cache
from typing import Any

# kio's own field classification, as its decoder uses it (a private module: kio is pinned).
from kio.serial._introspect import (
    EntityField,
    EntityTupleField,
    PrimitiveTupleField,
    classify_field,
    get_schema_field_type,
)

from klamm.protocol.errors import MalformedFrame

# The most array elements one request may hold, all arrays counted. Legitimate requests stay far
# below: one entry per partition (Fetch, Produce, ListOffsets, OffsetCommit ...) with at most
# max.broker.partitions (10,000 by default) partitions, one per topic or group named. At the
# limit a hostile request still costs a few seconds of broker time, against minutes without it.
MAX_REQUEST_ELEMENTS = 100_000

# Unknown tagged fields a walk meets: (count position, count length, count left, [(start, end)]).
Cuts = list[tuple[int, int, int, list[tuple[int, int]]]]


class Walk:
    """What a walk collects on its way: the unknown tagged fields to cut out, and the array
    elements seen so far."""

    __slots__ = ("cuts", "elements")

    def __init__(self) -> None:
        self.cuts: Cuts = []
        self.elements = 0


# A step reads one field at `pos` and returns where the next one starts.
Step = Callable[[bytes, int, Walk], int]

_FIXED_SIZES = {
    "bool": 1,
    "int8": 1,
    "int16": 2,
    "uint16": 2,
    "int32": 4,
    "uint32": 4,
    "timedelta_i32": 4,
    "int64": 8,
    "uint64": 8,
    "float64": 8,
    "timedelta_i64": 8,
    "datetime_i64": 8,
    "uuid": 16,
    "error_code": 2,
}
_STRINGS = {"string"}
_BYTES = {"bytes", "records"}


def checked_body(schema: Any, frame: bytes, pos: int) -> bytes:
    """Return `frame` if every length in its body from `pos` fits, or a copy without the
    tagged fields `schema` does not know. Raises MalformedFrame otherwise."""
    walk = Walk()
    _walker(schema)(frame, pos, walk)
    return _cut(frame, walk.cuts) if walk.cuts else frame


def _uvarint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    for i in range(pos, min(pos + 5, len(buf))):
        byte = buf[i]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, i + 1
        shift += 7
    raise MalformedFrame(f"truncated or over-long varint at byte {pos}")


def _skip(size: int) -> Step:
    def skip(buf: bytes, pos: int, walk: Walk) -> int:
        end = pos + size
        if end > len(buf):
            raise MalformedFrame(f"request ends inside a field at byte {pos}")
        return end

    return skip


def _nullable_entity(item: Step) -> Step:
    """A nullable struct (DescribeTopicPartitions' cursor): an int8 marker, -1 for null, then
    the struct when present (Kafka's generated readers)."""

    def entity(buf: bytes, pos: int, walk: Walk) -> int:
        if pos >= len(buf):
            raise MalformedFrame(f"request ends inside a field at byte {pos}")
        if buf[pos] >= 0x80:  # negative: null (Kafka reads any negative marker so)
            return pos + 1
        return item(buf, pos + 1, walk)

    return entity


def _signed_length(width: int) -> Callable[[bytes, int], tuple[int, int]]:
    """A legacy (non-flexible) length prefix: int16 for strings, int32 for bytes and arrays."""

    def read(buf: bytes, pos: int) -> tuple[int, int]:
        end = pos + width
        if end > len(buf):
            raise MalformedFrame(f"request ends inside a length at byte {pos}")
        return int.from_bytes(buf[pos:end], "big", signed=True), end

    return read


def _compact_length(buf: bytes, pos: int) -> tuple[int, int]:
    """A compact length prefix: uvarint N + 1, with 0 for null."""
    value, pos = _uvarint(buf, pos)
    return value - 1, pos


def _sized(read_length: Callable[[bytes, int], tuple[int, int]]) -> Step:
    def sized(buf: bytes, pos: int, walk: Walk) -> int:
        length, pos = read_length(buf, pos)
        end = pos + max(length, 0)  # -1 is null
        if end > len(buf):
            raise MalformedFrame(f"a {length}-byte field at byte {pos} overruns the request")
        return end

    return sized


def _array(
    read_length: Callable[[bytes, int], tuple[int, int]],
    item: Step,
    min_item: int,
    name: str,
    nullable: bool,
) -> Step:
    def array(buf: bytes, pos: int, walk: Walk) -> int:
        count, pos = read_length(buf, pos)
        if count < 0 and not (nullable and count == -1):
            what = "null" if count == -1 else f"{count} elements"
            raise MalformedFrame(f"non-nullable array {name!r} at byte {pos} is {what}")
        if count * min_item > len(buf) - pos:
            raise MalformedFrame(f"an array of {count} at byte {pos} overruns the request")
        walk.elements += max(count, 0)
        if walk.elements > MAX_REQUEST_ELEMENTS:
            raise MalformedFrame(
                f"the request holds more than {MAX_REQUEST_ELEMENTS} array elements "
                f"(array {name!r} at byte {pos} adds {count})"
            )
        for _ in range(count):
            pos = item(buf, pos, walk)
        return pos

    return array


def _tagged_fields(known: frozenset[int]) -> Step:
    def tagged(buf: bytes, pos: int, walk: Walk) -> int:
        count_pos = pos
        count, pos = _uvarint(buf, pos)
        if count > len(buf) - pos:
            raise MalformedFrame(f"{count} tagged fields at byte {count_pos} overrun the request")
        unknown: list[tuple[int, int]] = []
        for _ in range(count):
            start = pos
            tag, pos = _uvarint(buf, pos)
            size, pos = _uvarint(buf, pos)
            pos += size
            if pos > len(buf):
                raise MalformedFrame(f"tagged field {tag} at byte {start} overruns the request")
            if tag not in known:
                unknown.append((start, pos))
        if unknown:
            walk.cuts.append(
                (count_pos, _uvarint(buf, count_pos)[1] - count_pos, count - len(unknown), unknown)
            )
        return pos

    return tagged


@cache
def _walker(schema: Any) -> Step:
    steps, _ = _compile(schema)

    def walk_entity(buf: bytes, pos: int, walk: Walk) -> int:
        for step in steps:
            pos = step(buf, pos, walk)
        return pos

    return walk_entity


@cache
def _compile(schema: Any) -> tuple[list[Step], int]:
    """The steps for one entity, and the fewest bytes it can take."""
    flexible = bool(schema.__flexible__)
    string_length = _compact_length if flexible else _signed_length(2)
    other_length = _compact_length if flexible else _signed_length(4)
    steps: list[Step] = []
    fixed = 0  # bytes of fixed-size fields not yet turned into a skip
    smallest = 0
    known_tags = set()

    def flush() -> None:
        nonlocal fixed
        if fixed:
            steps.append(_skip(fixed))
            fixed = 0

    for field in dataclasses.fields(schema):
        if "tag" in field.metadata:  # lives in the tagged-field section
            known_tags.add(field.metadata["tag"])
            continue
        kind = classify_field(field)
        if isinstance(kind, EntityTupleField | EntityField):
            _, item_size = _compile(kind.type_)
            item = _walker(kind.type_)
            flush()
            if isinstance(kind, EntityField) and _nullable(field):
                steps.append(_nullable_entity(item))
                smallest += 1
            elif isinstance(kind, EntityField):
                steps.append(item)
                smallest += item_size
            else:
                steps.append(
                    _array(other_length, item, max(item_size, 1), field.name, _nullable(field))
                )
                smallest += 1
            continue
        kafka_type = get_schema_field_type(field)
        if isinstance(kind, PrimitiveTupleField):
            item_size, item = _primitive(kafka_type, string_length, other_length)
            flush()
            steps.append(
                _array(other_length, item, max(item_size, 1), field.name, _nullable(field))
            )
            smallest += 1
            continue
        size = _FIXED_SIZES.get(kafka_type)
        if size is not None:
            fixed += size
            smallest += size
            continue
        _, item = _primitive(kafka_type, string_length, other_length)
        flush()
        steps.append(item)
        smallest += 1
    flush()
    if flexible:
        steps.append(_tagged_fields(frozenset(known_tags)))
        smallest += 1
    return steps, smallest


def _nullable(field: dataclasses.Field[Any]) -> bool:
    """The field itself may be null (`tuple[...] | None`), not merely its elements."""
    union = typing.get_origin(field.type) in (types.UnionType, typing.Union)
    return union and types.NoneType in typing.get_args(field.type)


def _primitive(
    kafka_type: str,
    string_length: Callable[[bytes, int], tuple[int, int]],
    other_length: Callable[[bytes, int], tuple[int, int]],
) -> tuple[int, Step]:
    """A primitive's smallest size and its step."""
    size = _FIXED_SIZES.get(kafka_type)
    if size is not None:
        return size, _skip(size)
    if kafka_type in _STRINGS:
        return 1, _sized(string_length)
    if kafka_type in _BYTES:
        return 1, _sized(other_length)
    raise NotImplementedError(f"no bounds check for kafka type {kafka_type!r}")


def _cut(frame: bytes, cuts: Cuts) -> bytes:
    """`frame` without the unknown tagged fields, each section's count rewritten."""
    out = bytearray()
    pos = 0
    for count_pos, count_len, count_left, spans in sorted(cuts):
        out += frame[pos:count_pos]
        out += _encode_uvarint(count_left)
        pos = count_pos + count_len
        for start, end in spans:
            out += frame[pos:start]
            pos = end
    out += frame[pos:]
    return bytes(out)


def _encode_uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
