"""Helpers shared by the storage tests (the fake clock is public: klamm.testing.FakeClock)."""

from __future__ import annotations

from klamm.protocol.record_batch import Record, RecordBatch, build_batch


def make_batch(
    count: int = 1, timestamp: int = 1_000, value_size: int = 10, tag: int = 0
) -> bytearray:
    """A batch of `count` records with timestamps timestamp, timestamp+1, ..."""
    records = [
        Record(i, timestamp + i, f"k{tag}-{i}".encode(), bytes([tag % 256]) * value_size)
        for i in range(count)
    ]
    return bytearray(build_batch(RecordBatch(records=records)))
