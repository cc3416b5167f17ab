from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from klamm.protocol.record_batch import decode_batch, iter_batches, records_of
from klamm.storage.config import LogConfig
from klamm.storage.errors import OffsetOutOfRange
from klamm.storage.log import PartitionLog
from klamm.testing import FakeClock
from tests.storage.storage_helpers import make_batch

Opener = Callable[..., PartitionLog]
SMALL = LogConfig(segment_bytes=1000, index_interval_bytes=100)


def fill(plog: PartitionLog, batches: int, per_batch: int = 3, ts0: int = 1000) -> None:
    for i in range(batches):
        plog.append(make_batch(per_batch, timestamp=ts0 + i * 10, tag=i))


def offsets_of(data: bytes) -> list[int]:
    return [r.offset for r in records_of([data])]


def test_append_assigns_contiguous_offsets(open_log: Opener) -> None:
    plog = open_log()
    first = plog.append(make_batch(3))
    second = plog.append(make_batch(2))
    assert (first.base_offset, first.last_offset) == (0, 2)
    assert (second.base_offset, second.last_offset) == (3, 4)
    assert plog.log_end_offset == 5
    assert plog.size_bytes == first.size + second.size


def test_round_trip_across_segment_rolls(open_log: Opener) -> None:
    plog = open_log(SMALL)
    fill(plog, 60)
    assert plog.segment_count > 5
    plog.check_invariants()
    data = b"".join(plog.batches_from(0).__iter__().__next__()[1:])
    assert data
    seen = [r.offset for h, b in plog.batches_from(0) for r in decode_batch(b).records]
    assert seen == list(range(180))
    values = [r.value for r in records_of([b for _, b in plog.batches_from(0)])]
    assert values[3] == bytes([1]) * 10


def test_read_mid_batch_returns_whole_batch(open_log: Opener) -> None:
    plog = open_log(SMALL)
    fill(plog, 40)
    for offset in range(0, 120):
        data = plog.read(offset, 1)  # min one batch
        headers = [h for _, h in iter_batches(data)]
        assert len(headers) == 1
        assert headers[0].base_offset <= offset <= headers[0].last_offset


def test_read_max_bytes_and_kip74(open_log: Opener) -> None:
    plog = open_log(SMALL)
    fill(plog, 40)
    size = len(plog.read(0, 1))
    assert len(plog.read(0, size * 3)) == size * 3
    assert len(plog.read(0, size * 3 + size - 1)) == size * 3
    assert plog.read(0, 1, min_one=False) == b""
    # Never crosses a segment boundary unless the segment has nothing at/after offset.
    data = plog.read(0, 10**9)
    assert 0 < len(data) <= SMALL.segment_bytes
    assert plog.read(plog.log_end_offset, 100) == b""


def test_read_out_of_range(open_log: Opener) -> None:
    plog = open_log()
    fill(plog, 2)
    with pytest.raises(OffsetOutOfRange):
        plog.read(7, 100)
    with pytest.raises(OffsetOutOfRange):
        plog.read(-1, 100)


def test_offsets_survive_reopen(open_log: Opener) -> None:
    plog = open_log(SMALL)
    fill(plog, 30)
    plog.close()
    again = open_log(SMALL)
    assert again.log_end_offset == 90
    again.check_invariants()
    assert again.append(make_batch(1)).base_offset == 90
    assert offsets_of(again.read(89, 10**6))[-2:] == [89, 90]


def test_reopen_without_close_recovers(open_log: Opener) -> None:
    plog = open_log(SMALL)
    fill(plog, 30)
    plog.flush()
    again = open_log(SMALL)  # no close: unclean path, full CRC scan
    assert again.log_end_offset == 90
    again.check_invariants()


def test_index_is_sparse_and_used(open_log: Opener, tmp_path: Path) -> None:
    plog = open_log(LogConfig(index_interval_bytes=200))
    fill(plog, 50)
    seg = plog._segments[0]
    assert 5 < len(seg.offset_index) < 50
    plog.close()
    assert (tmp_path / "t-0" / "00000000000000000000.index").stat().st_size == 8 * len(
        seg.offset_index
    )


@pytest.mark.parametrize("damage", ["delete", "garbage", "truncate", "stale"])
def test_index_files_rebuilt(open_log: Opener, tmp_path: Path, damage: str) -> None:
    plog = open_log(LogConfig(segment_bytes=3000, index_interval_bytes=150))
    fill(plog, 60)
    expected = [plog.read(o, 1) for o in range(0, 180, 7)]
    ts = [plog.offset_for_timestamp(t) for t in (900, 1200, 1501, 1590, 9999)]
    plog.close()
    for path in (tmp_path / "t-0").glob("*index"):
        if damage == "delete":
            path.unlink()
        elif damage == "garbage":
            path.write_bytes(b"\xff" * 37)
        elif damage == "truncate":
            path.write_bytes(path.read_bytes()[:-3])
        else:
            path.write_bytes(b"\x00\x00\x00\x05\x00\x00\x00\x10" * 3)
    again = open_log(LogConfig(segment_bytes=3000, index_interval_bytes=150))
    again.check_invariants()
    assert [again.read(o, 1) for o in range(0, 180, 7)] == expected
    assert [again.offset_for_timestamp(t) for t in (900, 1200, 1501, 1590, 9999)] == ts


def test_offset_for_timestamp_across_segments(open_log: Opener) -> None:
    plog = open_log(SMALL)
    fill(plog, 40)  # batch i: offsets 3i..3i+2, timestamps 1000+10i .. +2
    assert plog.offset_for_timestamp(0) == (0, 1000)
    assert plog.offset_for_timestamp(1001) == (1, 1001)
    assert plog.offset_for_timestamp(1003) == (3, 1010)
    assert plog.offset_for_timestamp(1250) == (75, 1250)
    assert plog.offset_for_timestamp(1392) == (119, 1392)
    assert plog.offset_for_timestamp(1393) is None
    for target in range(990, 1400, 3):
        expected = next(
            ((3 * i + j, 1000 + 10 * i + j) for i in range(40) for j in range(3)
             if 1000 + 10 * i + j >= target),
            None,
        )  # fmt: skip
        assert plog.offset_for_timestamp(target) == expected


def test_offset_for_timestamp_non_monotonic(open_log: Opener) -> None:
    plog = open_log(SMALL)
    for i, ts in enumerate([500, 100, 900, 300, 900, 50]):
        plog.append(make_batch(2, timestamp=ts, tag=i))
    assert plog.offset_for_timestamp(200) == (0, 500)
    assert plog.offset_for_timestamp(600) == (4, 900)
    assert plog.max_timestamp() == (5, 901)


def test_max_timestamp(open_log: Opener) -> None:
    plog = open_log(SMALL)
    assert plog.max_timestamp() is None
    fill(plog, 20)
    assert plog.max_timestamp() == (59, 1192)
    plog.close()
    assert open_log(SMALL).max_timestamp() == (59, 1192)


def test_retention_by_time(open_log: Opener, clock: FakeClock) -> None:
    config = LogConfig(segment_bytes=1000, retention_ms=1000)
    plog = open_log(config)
    fill(plog, 40, ts0=clock.now_ms())
    segments = plog.segment_count
    assert plog.enforce_retention(clock.now_ms()) == 0
    deleted = plog.enforce_retention(clock.now_ms() + 1000 + 250)
    assert 0 < deleted < segments
    assert plog.segment_count == segments - deleted
    assert plog.log_start_offset == plog._segments[0].base_offset
    with pytest.raises(OffsetOutOfRange):
        plog.read(0, 100)
    # Everything but the active segment goes eventually.
    plog.enforce_retention(clock.now_ms() + 10**9)
    assert plog.segment_count == 1
    plog.check_invariants()


def test_retention_takes_the_active_segment_once_it_is_durable(
    open_log: Opener, clock: FakeClock
) -> None:
    """A quiet topic never fills a segment: Kafka still expires its records, rolling an empty
    segment first (a log keeps one). Records not yet below the high watermark stay."""
    plog = open_log(LogConfig(retention_ms=1000))
    fill(plog, 5, ts0=clock.now_ms())  # 15 records in the one (active) segment
    later = clock.now_ms() + 1000 + 250
    assert plog.enforce_retention(later) == 0  # the caller gave no high watermark
    assert plog.enforce_retention(later, durable_end=14) == 0  # offset 14 is not durable yet
    assert plog.enforce_retention(later, durable_end=15) == 1
    assert (plog.log_start_offset, plog.log_end_offset, plog.segment_count) == (15, 15, 1)
    fill(plog, 1, ts0=later)  # appends go on at the end
    assert plog.log_end_offset == 18
    plog.check_invariants()
    plog.close()
    reopened = open_log(LogConfig(retention_ms=1000))
    assert (reopened.log_start_offset, reopened.log_end_offset) == (15, 18)


def test_retention_by_size(open_log: Opener) -> None:
    plog = open_log(LogConfig(segment_bytes=1000, retention_bytes=2500))
    fill(plog, 60)
    plog.enforce_retention(0)
    assert plog.size_bytes - plog._segments[0].size < 2500
    assert plog.segment_count >= 2
    plog.check_invariants()


def test_retention_unlimited_and_compact(open_log: Opener) -> None:
    plog = open_log(LogConfig(segment_bytes=1000, retention_ms=-1))
    fill(plog, 30)
    assert plog.enforce_retention(10**15) == 0


def test_delete_records_before(open_log: Opener) -> None:
    plog = open_log(SMALL)
    fill(plog, 40)
    segments = plog.segment_count
    deleted = plog.delete_records_before(50)
    assert deleted >= 1 and plog.segment_count == segments - deleted
    assert plog.log_start_offset == 50
    assert offsets_of(plog.read(50, 1))[0] <= 50
    with pytest.raises(OffsetOutOfRange):
        plog.read(49, 1)
    assert plog.delete_records_before(10) == 0
    plog.close()
    assert open_log(SMALL).log_start_offset == 50
    with pytest.raises(OffsetOutOfRange):
        open_log(SMALL).delete_records_before(10**6)


def test_segment_ms_roll(open_log: Opener, clock: FakeClock) -> None:
    plog = open_log(LogConfig(segment_ms=1000))
    fill(plog, 3)
    assert plog.segment_count == 1
    clock.advance(1000)
    fill(plog, 1)
    assert plog.segment_count == 2
    plog.check_invariants()


def test_empty_log_reopens(open_log: Opener) -> None:
    open_log().close()
    plog = open_log()
    assert (plog.log_start_offset, plog.log_end_offset) == (0, 0)
    assert plog.read(0, 10) == b""
    assert plog.offset_for_timestamp(0) is None


def test_garbage_files_in_directory(open_log: Opener, tmp_path: Path) -> None:
    plog = open_log(SMALL)
    fill(plog, 10)
    plog.close()
    directory = tmp_path / "t-0"
    (directory / "notes.txt").write_text("hello")
    (directory / "00000000000000099999.index").write_bytes(b"junk")  # orphan
    (directory / "00000000000000088888.log").write_bytes(b"\x00" * 100)  # garbage segment
    again = open_log(SMALL)
    # The garbage segment holds nothing, but its name says offsets up to 88888 were handed out
    # (as an empty active segment after a lost one would): the log end never goes back.
    assert again.log_end_offset == 88888
    assert [h.base_offset for h, _ in again.batches_from(0)][-1] < 30
    again.check_invariants()
    assert not (directory / "00000000000000099999.index").exists()
