"""Long-poll Fetch: a parked fetch answers the moment data becomes readable, or the moment its
topic is deleted, not at max_wait."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from klamm.protocol.errors import ErrorCode
from klamm.protocol.record_batch import Record, RecordBatch, build_batch
from klamm.testing import EmbeddedBroker
from tests.broker.wire import Wire

MAX_WAIT_MS = 10_000


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as b:
        yield b


def _create(broker: EmbeddedBroker, topic: str) -> None:
    with Wire(broker.bootstrap) as wire:
        wire.request(3, 4, topics=[{"name": topic}], allow_auto_topic_creation=True)


def _parked_fetch(broker: EmbeddedBroker, topic: str, out: dict[str, Any]) -> threading.Thread:
    def run() -> None:
        with Wire(broker.bootstrap, timeout=MAX_WAIT_MS / 1000 + 5) as wire:
            started = time.monotonic()
            response = wire.request(
                1, 11, replica_id=-1, max_wait=MAX_WAIT_MS, min_bytes=1, max_bytes=1 << 20,
                isolation_level=0, session_id=0, session_epoch=-1, forgotten_topics_data=[],
                rack_id="",
                topics=[{"topic": topic, "partitions": [{
                    "partition": 0, "current_leader_epoch": -1, "fetch_offset": 0,
                    "log_start_offset": -1, "partition_max_bytes": 1 << 20}]}],
            )  # fmt: skip
            out["seconds"] = time.monotonic() - started
            out["partition"] = response.responses[0].partitions[0]

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(0.3)  # let it park
    return thread


def test_parked_fetch_wakes_when_data_arrives(broker: EmbeddedBroker) -> None:
    _create(broker, "wake-on-data")
    out: dict[str, Any] = {}
    thread = _parked_fetch(broker, "wake-on-data", out)
    batch = build_batch(RecordBatch(records=[Record(0, int(time.time() * 1000), b"k", b"v")]))
    with Wire(broker.bootstrap) as wire:
        wire.request(
            0, 7, transactional_id=None, acks=-1, timeout=5000,
            topic_data=[{"name": "wake-on-data",
                         "partition_data": [{"index": 0, "records": batch}]}],
        )  # fmt: skip
    thread.join(MAX_WAIT_MS / 1000 + 5)
    assert out["partition"].error_code == ErrorCode.none
    assert out["partition"].records
    assert out["seconds"] < 2


def test_parked_fetch_answers_when_its_topic_is_deleted(broker: EmbeddedBroker) -> None:
    _create(broker, "wake-on-delete")
    out: dict[str, Any] = {}
    thread = _parked_fetch(broker, "wake-on-delete", out)
    with Wire(broker.bootstrap) as wire:
        deleted = wire.request(20, 4, topic_names=["wake-on-delete"], timeout=5000)
        assert deleted.responses[0].error_code == ErrorCode.none
    thread.join(MAX_WAIT_MS / 1000 + 5)
    assert out["partition"].error_code == ErrorCode.unknown_topic_or_partition
    assert out["seconds"] < 2
