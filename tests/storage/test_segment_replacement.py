"""PartitionLog's segment-replacement interface (what compaction uses): a snapshot read through
descriptors of its own, a replacement written beside the log, and an atomic swap that refuses
segments that are no longer the log's."""

from __future__ import annotations

from pathlib import Path

from klamm.protocol.record_batch import parse_header
from klamm.storage.config import LogConfig
from klamm.storage.log import PartitionLog, SegmentReplacement
from klamm.testing import FakeClock
from tests.storage.storage_helpers import make_batch

SMALL = LogConfig(segment_bytes=300, cleanup_policy=("compact",))


def filled(directory: Path, batches: int = 12) -> PartitionLog:
    plog = PartitionLog.open(directory, SMALL, FakeClock())
    for i in range(batches):
        plog.append(make_batch(value_size=40, tag=i))
    assert plog.segment_count >= 4
    return plog


def everything(plog: PartitionLog) -> bytes:
    return b"".join(blob for _, blob in plog.batches_from(plog.log_start_offset))


def replacement_keeping_last_batch(
    plog: PartitionLog, group: list[int], end: int
) -> tuple[SegmentReplacement, list[bytes]]:
    """A replacement for the segments at indexes `group` of a snapshot, holding only the last
    batch of each (what a compaction that drops the rest would write)."""
    snap = plog.snapshot()
    assert snap is not None
    with snap:
        readers = [snap.segments[i] for i in group]
        new = plog.begin_replacement(readers[0].base_offset, end, readers[0].created_ms)
        kept = []
        for reader in readers:
            header, blob = list(reader.batches())[-1]
            new.segment.append(blob, header)
            kept.append(blob)
        new.finish()
    return new, kept


def test_replace_a_run_of_sealed_segments(tmp_path: Path) -> None:
    plog = filled(tmp_path / "p-0")
    snap = plog.snapshot()
    assert snap is not None
    with snap:
        olds = [r.segment for r in snap.segments[:2]]
        end = snap.segments[2].base_offset
    before = everything(plog)
    new, kept = replacement_keeping_last_batch(plog, [0, 1], end)
    assert new.path.name.endswith(".log.cleaned") and new.path.exists()
    assert plog.replace_segments(olds, new)
    after = everything(plog)
    assert after.startswith(b"".join(kept)) and before.endswith(after[len(b"".join(kept)) :])
    names = {p.name for p in plog.directory.iterdir()}
    assert not [n for n in names if n.endswith((".cleaned", ".swap"))]
    assert f"{olds[1].base_offset:020d}.log" not in names
    plog.check_invariants()
    plog.flush()
    plog.close()
    reopened = PartitionLog.open(tmp_path / "p-0", SMALL, FakeClock())
    assert everything(reopened) == after
    reopened.close()


def test_replacement_of_segments_no_longer_the_logs_is_refused(tmp_path: Path) -> None:
    plog = filled(tmp_path / "p-0")
    snap = plog.snapshot()
    assert snap is not None
    with snap:
        olds = [r.segment for r in snap.segments[:2]]
        end = snap.segments[2].base_offset
        new, _ = replacement_keeping_last_batch(plog, [0, 1], end)
        # DeleteRecords deletes the first segment while the replacement was being written.
        plog.delete_records_before(olds[0].next_offset)
        # The snapshot still reads the deleted segment through its own descriptor.
        assert list(snap.segments[0].batches())
    before = everything(plog)
    assert not plog.replace_segments(olds, new)
    new.discard()
    assert not new.path.exists()
    assert everything(plog) == before
    plog.close()


def test_the_active_segment_is_never_replaced(tmp_path: Path) -> None:
    plog = filled(tmp_path / "p-0")
    snap = plog.snapshot()
    assert snap is not None
    with snap:
        last = len(snap.segments) - 1
        active = snap.segments[last]
        new = plog.begin_replacement(active.base_offset, active.next_offset, active.created_ms)
        for header, blob in active.batches():
            new.segment.append(blob, header)
        new.finish()
        assert not plog.replace_segments([active.segment], new)
    new.discard()
    assert plog.segment_count == last + 1
    plog.check_invariants()
    plog.close()


def test_summaries_describe_each_segment_in_memory(tmp_path: Path) -> None:
    plog = filled(tmp_path / "p-0")
    found = plog.summaries()
    assert found is not None
    config, segments = found
    assert config == SMALL
    assert segments[0].base_offset == 0
    assert [s.base_offset for s in segments[1:]] == [s.next_offset for s in segments[:-1]]
    assert segments[-1].next_offset == plog.log_end_offset
    assert sum(s.size for s in segments) == plog.size_bytes
    assert plog.segment_first_timestamp(0) == parse_header(plog.read(0, 1)).base_timestamp
    assert plog.segment_first_timestamp(1) is None  # no segment starts there
    plog.close()
    assert plog.summaries() is None and plog.snapshot() is None


def test_a_replacement_must_name_exactly_the_segments_it_replaces(tmp_path: Path) -> None:
    """After a crash, recovery deletes every segment the `.swap` name's range covers: a range
    reaching into the next segment would delete it, so such a swap is refused up front."""
    plog = filled(tmp_path / "p-0")
    snap = plog.snapshot()
    assert snap is not None
    with snap:
        olds = [r.segment for r in snap.segments[:2]]
        too_far = snap.segments[2].next_offset  # covers the third segment too
    before = everything(plog)
    new, _ = replacement_keeping_last_batch(plog, [0, 1], too_far)
    assert not plog.replace_segments(olds, new)
    new.discard()
    assert not plog.replace_segments([], new)
    assert everything(plog) == before
    plog.close()
