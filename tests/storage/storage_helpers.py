"""Helpers shared by the storage tests (a plain module: conftest is not importable)."""

from __future__ import annotations

from klamm.protocol.record_batch import Record, RecordBatch, build_batch


class FakeClock:
    """Injected time for tests: starts at a fixed epoch-ish ms, moves only when told."""

    def __init__(self, start: int = 1_700_000_000_000) -> None:
        self.now = start

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms


def make_batch(
    count: int = 1, timestamp: int = 1_000, value_size: int = 10, tag: int = 0
) -> bytearray:
    """A batch of `count` records with timestamps timestamp, timestamp+1, ..."""
    records = [
        Record(i, timestamp + i, f"k{tag}-{i}".encode(), bytes([tag % 256]) * value_size)
        for i in range(count)
    ]
    return bytearray(build_batch(RecordBatch(records=records)))
