"""Poison-pill batches (issue 11, findings 7, 10 and 12): a CRC-valid batch whose records do not
decode into exactly what its header declares is refused on produce with Kafka's error, so the
partition stays readable by every consumer; a keyless flood on a compacted topic gets a bounded
answer; a big batch walked in a worker thread keeps its connection's append order."""

from __future__ import annotations

import io
import select
import time
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from kio.serial import entity_reader, entity_writer

from klamm.broker.handlers import produce as produce_handler
from klamm.protocol.build import build
from klamm.protocol.compression import Compression, compress
from klamm.protocol.errors import ErrorCode
from klamm.protocol.messages import request_type, response_type
from klamm.protocol.record_batch import (
    HEADER_SIZE,
    MAX_RECORD_ERRORS,
    Record,
    RecordBatch,
    build_batch,
    check_batch,
    crc_of,
    parse_header,
)
from klamm.testing import EmbeddedBroker
from tests.broker.wire import Wire

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def broker():
    with EmbeddedBroker(max_request_bytes=8 * 1024 * 1024) as b:
        yield b


def _now() -> int:
    return int(time.time() * 1000)


def _good(value: bytes = b"good") -> bytes:
    return build_batch(RecordBatch(records=[Record(0, _now(), b"k", value)]))


def _forge(
    *,
    codec: int = 0,
    payload: bytes | None = None,
    count: int | None = None,
    last_delta: int | None = None,
) -> bytes:
    """A one-record batch with its codec, payload or counts replaced and its CRC made valid
    again, as an attacker sends it."""
    out = bytearray(_good())
    if payload is not None:
        out[HEADER_SIZE:] = payload
        out[8:12] = (len(out) - 12).to_bytes(4, "big")
    out[21:23] = (int.from_bytes(out[21:23], "big") & ~7 | codec).to_bytes(2, "big")
    if count is not None:
        out[57:61] = count.to_bytes(4, "big")
    if last_delta is not None:
        out[23:27] = last_delta.to_bytes(4, "big")
    out[17:21] = crc_of(out, 0, len(out)).to_bytes(4, "big")
    return bytes(out)


def _negative_length(codec: Compression) -> bytes:
    inner = bytearray(_good()[HEADER_SIZE:])
    inner[0] = 0x01  # the record's length varint: -1
    return _forge(codec=codec, payload=compress(codec, bytes(inner)))


POISON = {
    "gzip-magic-garbage": (_forge(codec=1, payload=b"\x1f\x8b\x08\x00" + b"\xa5" * 40),
                           ErrorCode.corrupt_message),
    "zstd-magic-garbage": (_forge(codec=4, payload=b"\x28\xb5\x2f\xfd" + b"\xa5" * 40),
                           ErrorCode.corrupt_message),
    "snappy-garbage": (_forge(codec=2, payload=b"\xff\xff\xff\x7f" + b"\xa5" * 40),
                       ErrorCode.corrupt_message),
    "negative-record-length": (_negative_length(Compression.NONE), ErrorCode.invalid_record),
    "negative-record-length-lz4": (_negative_length(Compression.LZ4), ErrorCode.invalid_record),
    # Finding 7: 70 bytes, one real record, count and last offset delta agreeing on 2^31-1.
    "two-billion-offsets": (_forge(count=2**31 - 1, last_delta=2**31 - 2),
                            ErrorCode.invalid_record),
}  # fmt: skip


def _produce(wire: Wire, topic: str, records: bytes, version: int = 9) -> Any:
    response = wire.request(
        0, version, transactional_id=None, acks=-1, timeout=5000,
        topic_data=[{"name": topic, "partition_data": [{"index": 0, "records": records}]}],
    )  # fmt: skip
    return response.responses[0].partition_responses[0]


def _create(wire: Wire, name: str, **configs: str) -> None:
    response = wire.request(
        19, 4, timeout=5000, validate_only=False,
        topics=[{"name": name, "num_partitions": 1, "replication_factor": 1, "assignments": [],
                 "configs": [{"name": k, "value": v} for k, v in configs.items()]}],
    )  # fmt: skip
    assert response.topics[0].error_code == ErrorCode.none


def _consume(bootstrap: str, topic: str, wanted: int) -> list[tuple[int, bytes | None]]:
    """(offset, value) of the first `wanted` records librdkafka reads from the beginning."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": "poison-check",
        "enable.auto.commit": False, "fetch.wait.max.ms": 100,
    })  # fmt: skip
    got: list[tuple[int, bytes | None]] = []
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        deadline = time.monotonic() + 20
        while len(got) < wanted and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is None:
                continue
            assert message.error() is None, message.error()
            got.append((message.offset(), message.value()))
    finally:
        consumer.close()
    return got


@pytest.mark.parametrize("kind", list(POISON))
def test_a_poison_batch_is_refused_and_the_partition_stays_readable(
    broker: EmbeddedBroker, kind: str
) -> None:
    poison, code = POISON[kind]
    topic = f"poison-{kind}"
    with Wire(broker.bootstrap) as wire:
        _create(wire, topic)
        assert _produce(wire, topic, _good(b"before")).base_offset == 0
        refused = _produce(wire, topic, poison)
        assert (refused.error_code, refused.base_offset) == (code, -1)
        assert refused.error_message
        assert _produce(wire, topic, poison, version=7).error_code == code
        after = _produce(wire, topic, _good(b"after"))
        assert (after.error_code, after.base_offset) == (ErrorCode.none, 1)
    assert broker.broker.partition(topic, 0).log.log_end_offset == 2
    assert _consume(broker.bootstrap, topic, 2) == [(0, b"before"), (1, b"after")]


def test_a_keyless_flood_on_a_compacted_topic_gets_a_bounded_answer(
    broker: EmbeddedBroker,
) -> None:
    """Kafka lists every keyless record in record_errors: 3M of them made a 249 MiB response and
    a 30 s stall. The first MAX_RECORD_ERRORS are listed, the message gives the total, and the
    million records are walked in a worker thread while other clients are served."""
    count = 1_000_000
    body = b"".join(  # no key, no value, no headers
        _varint(5 + len(delta)) + b"\x00\x00" + delta + b"\x01\x01\x00"
        for delta in map(_varint, range(count))
    )
    flood = _forge(codec=Compression.ZSTD, payload=compress(Compression.ZSTD, body),
                   count=count, last_delta=count - 1)  # fmt: skip
    assert len(flood) < 1_000_000  # within max.message.bytes
    with Wire(broker.bootstrap) as wire, Wire(broker.bootstrap) as other:
        _create(wire, "poison-compacted", **{"cleanup.policy": "compact"})
        wire.send_raw(wire.header(0, 9) + _encode_produce("poison-compacted", flood))
        slowest = _serve_while_waiting(wire, other)
        refused = _read_produce(wire).responses[0].partition_responses[0]
        assert refused.error_code == ErrorCode.invalid_record
        assert [e.batch_index for e in refused.record_errors] == list(range(MAX_RECORD_ERRORS))
        assert f"{count} record errors" in refused.error_message
        keyed = build_batch(RecordBatch(records=[Record(0, _now(), b"k", b"v")]))
        assert _produce(wire, "poison-compacted", keyed).base_offset == 0
    assert slowest < 1.0, f"another client waited {slowest:.2f}s behind the flood"


def _serve_while_waiting(busy: Wire, other: Wire) -> float:
    """Until `busy` has a response to read, time ApiVersions round trips on `other` (anything
    the event loop answers); the slowest, in seconds."""
    slowest, started = 0.0, time.monotonic()
    while time.monotonic() - started < 50:
        before = time.monotonic()
        other.request(18, 0)
        slowest = max(slowest, time.monotonic() - before)
        if select.select([busy.sock], [], [], 0.01)[0]:
            break
    return slowest


def test_a_batch_walked_in_a_thread_keeps_the_connections_append_order(
    broker: EmbeddedBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch too big to check on the event loop goes to a worker thread; the requests behind
    it on the same connection must still be appended after it, as Kafka serves them."""
    big = build_batch(RecordBatch(
        records=[Record(i, _now(), b"k", b"v" * 10) for i in range(5_000)],
        compression=Compression.LZ4,
    ))  # fmt: skip
    monkeypatch.setattr(produce_handler, "INLINE_RECORDS", 1_000)  # the big one goes to a thread
    walk = produce_handler._walk_in_thread

    def slow_walk(checked: Any) -> Any:
        time.sleep(0.5)  # long enough for the two requests behind it to arrive and start
        return walk(checked)

    monkeypatch.setattr(produce_handler, "_walk_in_thread", slow_walk)
    with Wire(broker.bootstrap) as wire:
        _create(wire, "poison-order")
        requests = [big, _good(b"second"), _good(b"third")]
        for records in requests:  # pipelined: all sent before any answer is read
            wire.send_raw(wire.header(0, 9) + _encode_produce("poison-order", records))
        offsets = []
        for _ in requests:
            response = _read_produce(wire)
            partition = response.responses[0].partition_responses[0]
            assert partition.error_code == ErrorCode.none
            offsets.append(partition.base_offset)
    assert offsets == [0, 5_000, 5_001]


def _varint(value: int) -> bytes:
    out = bytearray()
    raw = (value << 1) ^ (value >> 63)
    while raw >= 0x80:
        out.append(raw & 0x7F | 0x80)
        raw >>= 7
    out.append(raw)
    return bytes(out)


def _encode_produce(topic: str, records: bytes) -> bytes:
    cls = request_type(0, 9)
    body = io.BytesIO()
    entity_writer(cls)(body, build(
        cls, transactional_id=None, acks=-1, timeout=5000,
        topic_data=[{"name": topic, "partition_data": [{"index": 0, "records": records}]}],
    ))  # fmt: skip
    return body.getvalue()


def _read_produce(wire: Wire) -> Any:
    """The next Produce v9 response, whatever its correlation id (requests were pipelined)."""
    frame = wire.recv_frame()
    value, _ = entity_reader(response_type(0, 9))(frame, 5)  # correlation id, tagged fields
    return value


def test_a_wrong_max_timestamp_is_corrected_as_kafka_does(broker: EmbeddedBroker) -> None:
    """The time index, retention and ListOffsets trust MaxTimestamp; a producer that
    understates it would hide its records from a lookup by timestamp."""
    now = _now()
    records = [Record(0, now - 10, b"k", b"a"), Record(1, now, b"k", b"b")]
    batch = build_batch(RecordBatch(records=records, max_timestamp=now - 10))
    with Wire(broker.bootstrap) as wire:
        _create(wire, "poison-max-ts")
        assert _produce(wire, "poison-max-ts", batch).error_code == ErrorCode.none
        stored = broker.broker.partition("poison-max-ts", 0).log.read(0, 1 << 20)
        assert parse_header(stored).max_timestamp == now
        check_batch(stored)  # CRC recomputed
        response = wire.request(
            2, 7, replica_id=-1, isolation_level=0,
            topics=[{"name": "poison-max-ts", "partitions": [
                {"partition_index": 0, "current_leader_epoch": -1, "timestamp": now}]}],
        )  # fmt: skip
        found = response.topics[0].partitions[0]
        assert (found.error_code, found.offset, found.timestamp) == (ErrorCode.none, 1, now)


def test_a_stored_record_bomb_does_not_stall_other_clients_lookups(
    broker: EmbeddedBroker,
) -> None:
    """A batch of 1M records stored before produce validated them (planted under the produce
    path here), whose MaxTimestamp promises a record no record has: a ListOffsets by timestamp
    must read all of it. That used to build a million records on the event loop (seconds,
    hundreds of MiB); now the records are only scanned, in a worker thread."""
    count = 1_000_000
    now = _now()
    record = _varint(6) + b"\x00\x00\x00\x01\x01\x00"  # every record alike: compresses to little
    payload = compress(Compression.ZSTD, record * count)
    bomb = bytearray(_forge(codec=Compression.ZSTD, payload=payload, count=count,
                            last_delta=count - 1))  # fmt: skip
    bomb[35:43] = (now + 60_000).to_bytes(8, "big")  # MaxTimestamp above every record's
    bomb[17:21] = crc_of(bomb, 0, len(bomb)).to_bytes(4, "big")
    with Wire(broker.bootstrap) as lookup, Wire(broker.bootstrap) as other:
        _create(lookup, "poison-bomb")
        broker.broker.partition("poison-bomb", 0).log.append(bomb)
        assert _produce(lookup, "poison-bomb", _good()).base_offset == count
        lookup.send_raw(lookup.header(2, 7) + _encode_list_offsets("poison-bomb", now + 30_000))
        slowest = _serve_while_waiting(lookup, other)
        frame = lookup.recv_frame()
    found = entity_reader(response_type(2, 7))(frame, 5)[0].topics[0].partitions[0]
    assert (found.error_code, found.offset) == (ErrorCode.none, -1)
    assert slowest < 1.0, f"another client waited {slowest:.2f}s behind the lookup"


def _encode_list_offsets(topic: str, timestamp: int) -> bytes:
    cls = request_type(2, 7)
    body = io.BytesIO()
    entity_writer(cls)(body, build(
        cls, replica_id=-1, isolation_level=0,
        topics=[{"name": topic, "partitions": [
            {"partition_index": 0, "current_leader_epoch": -1, "timestamp": timestamp}]}],
    ))  # fmt: skip
    return body.getvalue()
