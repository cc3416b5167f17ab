"""Backpressure: a client that pipelines requests and never reads its socket costs the broker a
bounded amount of memory, not one response per request; once it reads, it gets every response,
in order, and a client that leaves instead releases what the broker held for it."""

from __future__ import annotations

import gc
import io
import struct
import time
from collections.abc import Iterator

import pytest
from kio.serial import entity_reader, entity_writer

from klamm.protocol.build import build
from klamm.protocol.errors import ErrorCode
from klamm.protocol.messages import request_type, response_type
from klamm.protocol.record_batch import Record, RecordBatch, build_batch
from klamm.testing import EmbeddedBroker
from tests.broker.broker_helpers import connection_of, stable
from tests.broker.wire import Wire

FETCH, FETCH_VERSION = 1, 11
VALUE = 256 * 1024  # each fetch answers with one stored batch of this size
REQUESTS = 200  # ~50 MiB of responses if the broker buffered them all
# Well above what a bounded broker holds (the transport's high-water mark plus about two
# bursts of 16 responses), well below what it holds if it answers every request it reads.
BOUND = REQUESTS * VALUE // 4


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as b:
        yield b


def _topic_with_a_big_batch(broker: EmbeddedBroker, topic: str) -> None:
    with Wire(broker.bootstrap) as wire:
        wire.request(3, 4, topics=[{"name": topic}], allow_auto_topic_creation=True)
        batch = build_batch(RecordBatch(records=[Record(0, 1_700_000_000_000, b"k", b"v" * VALUE)]))
        response = wire.request(
            0, 7, transactional_id=None, acks=-1, timeout=5000,
            topic_data=[{"name": topic, "partition_data": [{"index": 0, "records": batch}]}],
        )  # fmt: skip
        assert response.responses[0].partition_responses[0].error_code == ErrorCode.none


def _pipelined_fetches(wire: Wire, topic: str, count: int) -> bytes:
    """`count` Fetch frames from offset 0, correlation ids 1..count, in one buffer."""
    cls = request_type(FETCH, FETCH_VERSION)
    body = io.BytesIO()
    fields = dict(
        replica_id=-1, max_wait=0, min_bytes=1, max_bytes=1 << 20, isolation_level=0,
        session_id=0, session_epoch=-1, forgotten_topics_data=[], rack_id="",
        topics=[{"topic": topic, "partitions": [{
            "partition": 0, "current_leader_epoch": -1, "fetch_offset": 0,
            "log_start_offset": -1, "partition_max_bytes": 1 << 20}]}],
    )  # fmt: skip
    entity_writer(cls)(body, build(cls, **fields))
    frames = []
    for _ in range(count):
        payload = wire.header(FETCH, FETCH_VERSION) + body.getvalue()
        frames.append(struct.pack(">i", len(payload)) + payload)
    return b"".join(frames)


def _non_reading_client(broker: EmbeddedBroker, topic: str) -> Wire:
    """A client that sends REQUESTS fetches at once and reads nothing (yet)."""
    _topic_with_a_big_batch(broker, topic)
    wire = Wire(broker.bootstrap, timeout=10)
    wire.sock.sendall(_pipelined_fetches(wire, topic, REQUESTS))
    return wire


def test_a_client_that_does_not_read_costs_bounded_memory(
    broker: EmbeddedBroker, unique: str
) -> None:
    started_before = broker.broker.request_counts[FETCH]
    with _non_reading_client(broker, f"bp-{unique}") as wire:
        ref = connection_of(broker, wire)

        def held() -> tuple[int, int]:
            connection = ref()
            assert connection is not None
            return connection.buffered_bytes(), broker.broker.request_counts[FETCH]

        buffered, started = stable(broker, held)
        assert buffered < BOUND, f"{buffered} bytes buffered for a client that does not read"
        assert started - started_before < REQUESTS  # the rest wait, unread or unstarted

        # Now it reads: every response arrives, in request order, none of them damaged.
        reader = entity_reader(response_type(FETCH, FETCH_VERSION))
        for correlation in range(1, REQUESTS + 1):
            frame = wire.recv_frame()
            assert struct.unpack_from(">i", frame, 0)[0] == correlation
            response, _ = reader(frame, 4)  # after the correlation id (v11: no tagged fields)
            partition = response.responses[0].partitions[0]
            assert partition.error_code == ErrorCode.none
            assert len(partition.records) > VALUE
        assert wire.request(3, 1, topics=[]).brokers  # and the connection still serves


def test_a_client_that_leaves_unread_releases_what_the_broker_held(
    broker: EmbeddedBroker, unique: str
) -> None:
    # The broker must let go of the connection and everything it held by reference counting
    # alone, not whenever a garbage collector pass comes by.
    gc.disable()
    try:
        with _non_reading_client(broker, f"bp-gone-{unique}") as wire:
            ref = connection_of(broker, wire)
            buffered = stable(broker, lambda: ref().buffered_bytes())  # type: ignore[union-attr]
            assert buffered > 0  # the broker does hold responses for it
        # closed without reading a byte
        deadline = time.monotonic() + 5
        while ref() is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ref() is None
    finally:
        gc.enable()
