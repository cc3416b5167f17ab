"""Helpers shared by the cleaner tests (a plain module: conftest is not importable)."""

from __future__ import annotations

from klamm.protocol.record_batch import (
    Record,
    RecordBatch,
    build_batch,
    build_control_batch,
    decode_batch,
)
from klamm.storage.config import LogConfig
from klamm.storage.log import PartitionLog

# Small segments so a few dozen records span several of them; everything cleanable at once.
COMPACT = LogConfig(
    cleanup_policy=("compact",),
    segment_bytes=600,
    index_interval_bytes=100,
    delete_retention_ms=1_000,
    min_cleanable_dirty_ratio=0.0,
)

Row = tuple[int, bytes | None, bytes | None]  # offset, key, value


def keyed(
    pairs: list[tuple[bytes | None, bytes | None]],
    ts: int = 1_000,
    *,
    producer_id: int = -1,
    epoch: int = -1,
    sequence: int = -1,
    transactional: bool = False,
) -> bytearray:
    records = [Record(i, ts + i, k, v) for i, (k, v) in enumerate(pairs)]
    return bytearray(
        build_batch(
            RecordBatch(
                records=records,
                producer_id=producer_id,
                producer_epoch=epoch,
                base_sequence=sequence,
                transactional=transactional,
            )
        )
    )


def marker(producer_id: int, *, commit: bool, ts: int = 1_000) -> bytearray:
    return bytearray(
        build_control_batch(
            commit=commit, producer_id=producer_id, producer_epoch=0, coordinator_epoch=0,
            timestamp_ms=ts,
        )
    )  # fmt: skip


def rows(plog: PartitionLog, *, controls: bool = False) -> list[Row]:
    """Every record readable from the log start, in order (control records only if asked)."""
    out: list[Row] = []
    for header, blob in plog.batches_from(plog.log_start_offset):
        if header.is_control and not controls:
            continue
        out.extend((r.offset, r.key, r.value) for r in decode_batch(blob).records)
    return out


def batches(plog: PartitionLog) -> list[bytes]:
    return [blob for _, blob in plog.batches_from(plog.log_start_offset)]


def check_compacted_invariants(plog: PartitionLog) -> None:
    """PartitionLog.check_invariants, allowing gaps between segments (compaction leaves them)."""
    with plog._lock:
        for seg in plog._segments:
            seg.check_invariants()
        for a, b in zip(plog._segments, plog._segments[1:], strict=False):
            assert b.base_offset >= a.next_offset, "segments in offset order"
        assert plog._bases == [s.base_offset for s in plog._segments]
