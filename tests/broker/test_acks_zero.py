"""Produce with acks=0 as Kafka answers it: never a response; when a partition fails, the
connection is closed instead, after the responses to the requests before it (KafkaApis closes
the connection so that a client expecting no answer learns of the failure)."""

from __future__ import annotations

import struct

import pytest

from klamm.protocol.errors import ErrorCode
from klamm.testing import EmbeddedBroker
from tests.broker.broker_helpers import create_topics, one_record_batch, produce
from tests.broker.wire import Wire


@pytest.fixture(scope="module")
def broker():
    with EmbeddedBroker(auto_create_topics=False) as b:
        yield b


def _produce_acks0(wire: Wire, topic: str, records: bytes) -> None:
    wire.send(
        0, 7, transactional_id=None, acks=0, timeout=5000,
        topic_data=[{"name": topic, "partition_data": [{"index": 0, "records": records}]}],
    )  # fmt: skip


def _corrupt(batch: bytes) -> bytes:
    damaged = bytearray(batch)
    damaged[-1] ^= 0xFF  # the CRC no longer matches
    return bytes(damaged)


def test_acks0_success_keeps_the_connection_and_stores_the_record(broker: EmbeddedBroker) -> None:
    with Wire(broker.bootstrap) as wire:
        assert create_topics(wire, "zero-ok").topics[0].error_code == ErrorCode.none
        _produce_acks0(wire, "zero-ok", one_record_batch(b"a"))
        # No response to the produce: the next answer on the wire is the next request's.
        code, offset = produce(wire, "zero-ok", one_record_batch(b"b"))
        assert (code, offset) == (ErrorCode.none, 1)  # the acks=0 record took offset 0


@pytest.mark.parametrize("case", ["unknown topic", "corrupt batch"])
def test_acks0_failure_closes_the_connection_after_earlier_answers(
    broker: EmbeddedBroker, case: str
) -> None:
    topic = f"zero-{case.replace(' ', '-')}"
    with Wire(broker.bootstrap) as setup:
        if case == "corrupt batch":
            create_topics(setup, topic)
            assert produce(setup, topic, one_record_batch(b"first")) == (ErrorCode.none, 0)
    batch = one_record_batch(b"x")
    with Wire(broker.bootstrap) as wire:
        metadata = wire.send(3, 1, topics=[])  # pipelined before the failing produce
        _produce_acks0(wire, topic, _corrupt(batch) if case == "corrupt batch" else batch)
        frame = wire.recv_frame()  # answered before the close
        assert struct.unpack_from(">i", frame, 0)[0] == metadata
        assert wire.is_closed()
    with Wire(broker.bootstrap) as other:  # the broker serves everyone else, and lost nothing
        if case == "corrupt batch":
            assert produce(other, topic, one_record_batch(b"after")) == (ErrorCode.none, 1)
        else:
            assert other.request(3, 1, topics=[]).brokers[0].port == broker.port
