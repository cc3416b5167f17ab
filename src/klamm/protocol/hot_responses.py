"""Fetch and Produce responses encoded without kio's generic writer: the hot paths.

kio encodes a response field by field through per-type writer functions, with a type check
on every value: about 1.5 µs per partition of a Fetch response (bench/profile_broker.py, 1000
partitions: 60% of the broker's CPU while consuming). A Fetch response is mostly the same
handful of fixed-size fields per partition, so this module packs each partition's fixed part
with one struct call and joins the parts, records included, once. Produce responses likewise
(about 1 µs a partition). Only the layouts the broker answers are covered (FetchResponse v4-12,
ProduceResponse v3-9, no tagged fields set, which is all the broker ever sends);
tests/protocol/test_protocol_hot_responses.py checks every version byte for byte against kio's
encoding of the same values.

Layout (FetchResponse.json; "flexible" = v12+: compact lengths and tagged fields):

    throttle_time_ms i32, error_code i16 (v7+), session_id i32 (v7+)
    responses [topic string, partitions [
        partition_index i32, error_code i16, high_watermark i64, last_stable_offset i64,
        log_start_offset i64 (v5+), aborted_transactions nullable [producer_id i64,
        first_offset i64, (tags)], preferred_read_replica i32 (v11+), records nullable bytes,
        (tags)], (tags)]
    (tags)

    ProduceResponse (flexible = v9+):
    responses [name string, partition_responses [index i32, error_code i16, base_offset i64,
        log_append_time_ms i64, log_start_offset i64 (v5+), record_errors [batch_index i32,
        batch_index_error_message nullable string, (tags)] (v8+), error_message nullable
        string (v8+), (tags)], (tags)]
    throttle_time_ms i32, (tags)
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

_I32 = struct.Struct(">i")
_I16 = struct.Struct(">h")
_TOP_V7 = struct.Struct(">ihi")  # throttle_time_ms, error_code, session_id
_PARTITION_V4 = struct.Struct(">ihqq")  # index, error_code, high_watermark, last_stable_offset
_PARTITION_V5 = struct.Struct(">ihqqq")  # ... and log_start_offset
_ABORTED = struct.Struct(">qq")  # producer_id, first_offset
_NO_TAGS = b"\0"
_PRODUCED_V3 = struct.Struct(">ihqq")  # index, error_code, base_offset, log_append_time_ms
_PRODUCED_V5 = struct.Struct(">ihqqq")  # ... and log_start_offset
FLEXIBLE_FROM = 12
FIRST_VERSION = 4
LAST_VERSION = 12
PRODUCE_FLEXIBLE_FROM = 9
PRODUCE_FIRST_VERSION = 3
PRODUCE_LAST_VERSION = 9


@dataclass(frozen=True, slots=True)
class EncodedResponse:
    """A response body already encoded: its parts, in order (protocol.messages.encode_response
    puts the response header before them)."""

    api_key: int
    version: int
    flexible: bool
    parts: Sequence[bytes]


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _string(value: str, flexible: bool) -> bytes:
    data = value.encode()
    return (_uvarint(len(data) + 1) if flexible else _I16.pack(len(data))) + data


def _nullable_string(value: str | None, flexible: bool) -> bytes:
    if value is None:
        return _NO_TAGS if flexible else _I16.pack(-1)
    return _string(value, flexible)


def _array_length(length: int | None, flexible: bool) -> bytes:
    """An array's (or bytes field's) length; None is null."""
    if flexible:
        return _uvarint(0 if length is None else length + 1)
    return _I32.pack(-1 if length is None else length)


def fetch_response(
    version: int, throttle_ms: int, error_code: int, session_id: int, topics: list[dict[str, Any]]
) -> EncodedResponse:
    """A FetchResponse of `version` (FIRST_VERSION to LAST_VERSION). `topics` is what the fetch
    handler collects: [{"topic", "partitions": [{"partition_index", "error_code",
    "high_watermark", "last_stable_offset", "log_start_offset", "aborted_transactions" (None or
    [{"producer_id", "first_offset"}]), "preferred_read_replica", "records" (bytes or None)}]}]."""
    if not FIRST_VERSION <= version <= LAST_VERSION:
        raise ValueError(f"no fast encoding of FetchResponse v{version}")
    flexible = version >= FLEXIBLE_FROM
    fixed = _PARTITION_V5 if version >= 5 else _PARTITION_V4
    replica = version >= 11
    parts: list[bytes] = []
    add = parts.append
    add(
        _TOP_V7.pack(throttle_ms, error_code, session_id)
        if version >= 7
        else _I32.pack(throttle_ms)
    )
    add(_array_length(len(topics), flexible))
    for topic in topics:
        partitions = topic["partitions"]
        add(_string(topic["topic"], flexible))
        add(_array_length(len(partitions), flexible))
        for p in partitions:
            if version >= 5:
                add(fixed.pack(p["partition_index"], p["error_code"], p["high_watermark"],
                               p["last_stable_offset"], p["log_start_offset"]))  # fmt: skip
            else:
                add(fixed.pack(p["partition_index"], p["error_code"], p["high_watermark"],
                               p["last_stable_offset"]))  # fmt: skip
            aborted = p["aborted_transactions"]
            if aborted is None:
                add(_array_length(None, flexible))
            else:
                add(_array_length(len(aborted), flexible))
                for txn in aborted:
                    add(_ABORTED.pack(txn["producer_id"], txn["first_offset"]))
                    if flexible:
                        add(_NO_TAGS)
            if replica:
                add(_I32.pack(p["preferred_read_replica"]))
            records = p["records"]
            add(_array_length(None if records is None else len(records), flexible))
            if records:
                add(records)
            if flexible:
                add(_NO_TAGS)
        if flexible:
            add(_NO_TAGS)
    if flexible:
        add(_NO_TAGS)
    return EncodedResponse(1, version, flexible, parts)


def produce_response(
    version: int, throttle_ms: int, topics: list[tuple[str, list[dict[str, Any]]]]
) -> EncodedResponse:
    """A ProduceResponse of `version` (PRODUCE_FIRST_VERSION to PRODUCE_LAST_VERSION). `topics`
    is [(name, [{"index", "error_code", "base_offset", "log_append_time" (ms, -1: none),
    "log_start_offset", "record_errors" ([{"batch_index", "batch_index_error_message"}]),
    "error_message"}])]."""
    if not PRODUCE_FIRST_VERSION <= version <= PRODUCE_LAST_VERSION:
        raise ValueError(f"no fast encoding of ProduceResponse v{version}")
    flexible = version >= PRODUCE_FLEXIBLE_FROM
    errors = version >= 8
    parts: list[bytes] = []
    add = parts.append
    add(_array_length(len(topics), flexible))
    for name, partitions in topics:
        add(_string(name, flexible))
        add(_array_length(len(partitions), flexible))
        for p in partitions:
            if version >= 5:
                add(_PRODUCED_V5.pack(p["index"], p["error_code"], p["base_offset"],
                                      p["log_append_time"], p["log_start_offset"]))  # fmt: skip
            else:
                add(_PRODUCED_V3.pack(p["index"], p["error_code"], p["base_offset"],
                                      p["log_append_time"]))  # fmt: skip
            if errors:
                record_errors = p["record_errors"]
                add(_array_length(len(record_errors), flexible))
                for e in record_errors:
                    add(_I32.pack(e["batch_index"]))
                    add(_nullable_string(e["batch_index_error_message"], flexible))
                    if flexible:
                        add(_NO_TAGS)
                add(_nullable_string(p["error_message"], flexible))
            if flexible:
                add(_NO_TAGS)
        if flexible:
            add(_NO_TAGS)
    add(_I32.pack(throttle_ms))
    if flexible:
        add(_NO_TAGS)
    return EncodedResponse(0, version, flexible, parts)
