"""Helpers shared by the broker tests: raw-wire produce and create, the broker's side of a
connection, a fake log for group commit."""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from klamm.broker.connection import KafkaConnection
from klamm.protocol.record_batch import Record, RecordBatch, build_batch
from klamm.storage.errors import LogClosed
from klamm.testing import EmbeddedBroker
from tests.broker.wire import Wire

T = TypeVar("T")


def on_loop(broker: EmbeddedBroker, fn: Callable[[], T]) -> T:
    """Run `fn` on the broker's event loop thread: its state is only consistent there."""
    return broker.call(fn)


def connection_of(broker: EmbeddedBroker, wire: Wire) -> weakref.ref[KafkaConnection]:
    """The broker's side of `wire`, once it has accepted it (a weak reference: the test must
    not keep it alive)."""
    peer = f"127.0.0.1:{wire.sock.getsockname()[1]}"

    def find() -> weakref.ref[KafkaConnection] | None:
        found = [c for c in broker.broker.connections if c.session.peer == peer]
        return weakref.ref(found[0]) if found else None

    deadline = time.monotonic() + 5
    while (ref := on_loop(broker, find)) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ref is not None, "the broker never accepted the connection"
    return ref


def stable(broker: EmbeddedBroker, measure: Callable[[], Any]) -> Any:
    """`measure()` once it has stopped changing: the broker has done all it will do."""
    deadline = time.monotonic() + 5
    last, same = None, 0
    while time.monotonic() < deadline and same < 3:
        time.sleep(0.1)
        now = on_loop(broker, measure)
        same = same + 1 if now == last else 0
        last = now
    return last


class FakeLog:
    def __init__(self) -> None:
        self.log_end_offset = 0
        self.log_start_offset = 0
        self.flushes = 0
        self.gate = threading.Event()
        self.gate.set()
        self.fail = False
        self.closed = False

    def flush(self) -> None:
        self.gate.wait(5)
        if self.closed:
            raise LogClosed("log is closed")
        if self.fail:
            raise OSError("EIO")
        self.flushes += 1


def produce(
    wire: Wire, topic: str, records: bytes, version: int = 7, acks: int = -1
) -> tuple[int, int]:
    response = wire.request(
        0, version, transactional_id=None, acks=acks, timeout=5000,
        topic_data=[{"name": topic, "partition_data": [{"index": 0, "records": records}]}],
    )  # fmt: skip
    partition = response.responses[0].partition_responses[0]
    return partition.error_code, partition.base_offset


def create_topics(wire: Wire, *names: str, partitions: int = 1) -> Any:
    return wire.request(
        19, 4, timeout=5000, validate_only=False,
        topics=[{"name": name, "num_partitions": partitions, "replication_factor": 1,
                 "assignments": [], "configs": []} for name in names],
    )  # fmt: skip


def one_record_batch(value: bytes = b"v") -> bytes:
    return build_batch(RecordBatch(records=[Record(0, 1_700_000_000_000, b"k", value)]))
