"""Crash recovery: any torn or garbled byte costs exactly the batch it hit (and, for a torn
file, what the tear removed); every other batch stays readable at its offset, and the log keeps
working from there (tests/storage/test_recovery_damage.py covers what is set aside)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from klamm.protocol.record_batch import records_of
from klamm.storage.config import LogConfig
from klamm.storage.log import AppendResult, PartitionLog
from klamm.storage.segment import segment_name
from klamm.testing import FakeClock
from tests.storage.storage_helpers import make_batch

CONFIG = LogConfig(segment_bytes=600, index_interval_bytes=120)
LEADER_EPOCH = range(12, 16)  # not covered by the CRC: a flip there is undetectable by design


def build(directory: Path, sizes: list[int]) -> list[AppendResult]:
    plog = PartitionLog.open(directory, CONFIG, FakeClock())
    results = [
        plog.append(make_batch(n, timestamp=1000 + i, value_size=i % 40, tag=i))
        for i, n in enumerate(sizes)
    ]
    plog.discard()  # a crash before any flush: no clean marker, no recovery point
    return results


def expect_log(directory: Path, kept: list[AppendResult], end: int) -> None:
    """The log holds exactly the batches `kept`, at their offsets, and ends at `end`."""
    plog = PartitionLog.open(directory, CONFIG, FakeClock())
    assert plog.log_end_offset == end
    plog.check_invariants()
    got = [r.offset for r in records_of([b for _, b in plog.batches_from(0)])]
    assert got == [o for r in kept for o in range(r.base_offset, r.last_offset + 1)]
    # Appends continue at the right offset, and survive another reopen.
    assert plog.append(make_batch(2)).base_offset == end
    plog.close()
    again = PartitionLog.open(directory, CONFIG, FakeClock())
    assert again.log_end_offset == end + 2
    again.check_invariants()
    again.close()


def expect_prefix(directory: Path, kept: list[AppendResult]) -> None:
    expect_log(directory, kept, kept[-1].last_offset + 1 if kept else 0)


def damage_target(
    results: list[AppendResult], which: int, offset_in_batch: int
) -> tuple[Path, int]:
    r = results[which]
    return Path(segment_name(r.segment_base_offset) + ".log"), r.position + offset_in_batch


sizes_st = st.lists(st.integers(1, 6), min_size=1, max_size=25)


@settings(max_examples=60, deadline=None)
@given(sizes=sizes_st, data=st.data())
def test_truncation_anywhere_keeps_the_rest(sizes: list[int], data: st.DataObject) -> None:
    """A segment file cut short loses what the cut removed; earlier and later segments stay."""
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "p-0"
        results = build(directory, sizes)
        which = data.draw(st.integers(0, len(results) - 1))
        cut = data.draw(st.integers(0, results[which].size - 1))
        name, position = damage_target(results, which, cut)
        with open(directory / name, "r+b") as f:
            f.truncate(position)
        victim = results[which]
        seg, end = victim.segment_base_offset, position
        kept = [r for r in results if r.segment_base_offset != seg or r.position + r.size <= end]
        expect_log(directory, kept, max([r.last_offset + 1 for r in kept] + [victim.base_offset]))


@settings(max_examples=60, deadline=None)
@given(sizes=sizes_st, data=st.data())
def test_flipped_byte_costs_only_its_batch(sizes: list[int], data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "p-0"
        results = build(directory, sizes)
        which = data.draw(st.integers(0, len(results) - 1))
        at = data.draw(
            st.integers(0, results[which].size - 1).filter(lambda i: i not in LEADER_EPOCH)
        )
        bit = data.draw(st.integers(0, 7))
        name, position = damage_target(results, which, at)
        raw = bytearray((directory / name).read_bytes())
        raw[position] ^= 1 << bit
        (directory / name).write_bytes(raw)
        kept = results[:which] + results[which + 1 :]
        end = results[which].base_offset if which == len(results) - 1 else kept[-1].last_offset + 1
        expect_log(directory, kept, end)


def test_every_truncation_of_last_batch(tmp_path: Path) -> None:
    results = build(tmp_path / "src", [3, 1, 4, 1, 5])
    last = results[-1]
    seg = segment_name(last.segment_base_offset) + ".log"
    original = (tmp_path / "src" / seg).read_bytes()
    for cut in range(last.position, last.position + last.size + 1):
        directory = tmp_path / f"cut{cut}"
        directory.mkdir()
        for path in (tmp_path / "src").iterdir():
            (directory / path.name).write_bytes(path.read_bytes())
        (directory / seg).write_bytes(original[:cut])
        whole = cut == last.position + last.size
        expect_prefix(directory, results if whole else results[:-1])


def test_garbage_appended_to_tail(tmp_path: Path) -> None:
    results = build(tmp_path, [2, 2, 2])
    seg = tmp_path / (segment_name(results[-1].segment_base_offset) + ".log")
    with open(seg, "ab") as f:
        f.write(b"\x00" * 100 + bytes(range(256)) * 3)
    expect_prefix(tmp_path, results)


def test_corrupt_middle_segment_keeps_later_ones(tmp_path: Path) -> None:
    results = build(tmp_path, [5] * 30)
    bases = sorted({r.segment_base_offset for r in results})
    assert len(bases) >= 4
    victim = [r for r in results if r.segment_base_offset == bases[1]][1]
    path = tmp_path / (segment_name(bases[1]) + ".log")
    raw = bytearray(path.read_bytes())
    raw[victim.position + 40] ^= 0xFF
    path.write_bytes(raw)
    expect_log(tmp_path, [r for r in results if r is not victim], results[-1].last_offset + 1)
    assert (tmp_path / (segment_name(bases[3]) + ".log")).exists()


def test_missing_middle_segment_keeps_later_ones(tmp_path: Path) -> None:
    results = build(tmp_path, [5] * 30)
    bases = sorted({r.segment_base_offset for r in results})
    (tmp_path / (segment_name(bases[2]) + ".log")).unlink()
    kept = [r for r in results if r.segment_base_offset != bases[2]]
    expect_log(tmp_path, kept, results[-1].last_offset + 1)


def test_clean_shutdown_skips_crc_scan(tmp_path: Path) -> None:
    plog = PartitionLog.open(tmp_path, CONFIG, FakeClock())
    for i in range(30):
        plog.append(make_batch(3, tag=i))
    plog.close()
    assert (tmp_path / ".klamm_cleanshutdown").exists()
    # A payload byte flipped behind the clean marker goes unnoticed (no CRC scan) but the
    # structure is intact, and the marker is gone after open so a crash now means a full scan.
    again = PartitionLog.open(tmp_path, CONFIG, FakeClock())
    assert again.log_end_offset == 90
    assert not (tmp_path / ".klamm_cleanshutdown").exists()
    again.close()


def _flip(directory: Path, result: AppendResult) -> None:
    """Flip a payload byte of that batch: its CRC fails, its framing stays valid."""
    path = directory / (segment_name(result.segment_base_offset) + ".log")
    raw = bytearray(path.read_bytes())
    raw[result.position + 70] ^= 0xFF
    path.write_bytes(raw)


def _offsets(plog: PartitionLog) -> set[int]:
    return {o for h, _ in plog.batches_from(0) for o in range(h.base_offset, h.next_offset)}


def test_recovery_point_skips_crc_of_fsynced_bytes(tmp_path: Path) -> None:
    plog = PartitionLog.open(tmp_path, CONFIG, FakeClock())
    results = [plog.append(make_batch(5, tag=i)) for i in range(30)]
    plog.flush()
    active = results[-1].segment_base_offset
    size = results[-1].position + results[-1].size
    assert (tmp_path / "recovery-point").read_text().strip() == f"{active} {size}"
    unflushed = [plog.append(make_batch(1, value_size=1))]
    assert {r.segment_base_offset for r in unflushed} == {active}  # same segment, no roll
    plog.discard()
    # A payload flip in fsynced bytes is bit rot, not a torn write: the cheap structural check
    # on open does not see it (Kafka's recovery point behaves the same), in a sealed segment
    # or in the active one before the recovery point ...
    sealed = next(r for r in results if r.segment_base_offset < active)
    flushed_active = next(r for r in results if r.segment_base_offset == active)
    for result in (sealed, flushed_active, unflushed[0]):
        _flip(tmp_path, result)
    again = PartitionLog.open(tmp_path, CONFIG, FakeClock())
    got = _offsets(again)
    for seen in (sealed, flushed_active):
        assert set(range(seen.base_offset, seen.last_offset + 1)) <= got  # not seen
    # ... while what was written after it is CRC-checked.
    assert not got & set(range(unflushed[0].base_offset, unflushed[0].last_offset + 1))
    assert again.log_end_offset == unflushed[0].base_offset  # cut there
    again.close()


def test_the_recovery_point_moves_inside_the_active_segment_on_checkpoint(tmp_path: Path) -> None:
    """Recovery time follows what was written since the last checkpoint, not the data held: a
    log that never rolls used to be CRC-checked whole after every crash (issue 17: 1,000
    partitions of 10 MB each are 10 GB of active segments)."""
    big = LogConfig(segment_bytes=1 << 30)
    plog = PartitionLog.open(tmp_path, big, FakeClock())
    results = [plog.append(make_batch(5, tag=i)) for i in range(20)]
    plog.flush()
    assert plog.checkpoint_recovery_point()
    assert not plog.checkpoint_recovery_point()  # nothing new flushed: no write
    later = plog.append(make_batch(5, tag=99))
    plog.flush()  # flushed, but not checkpointed yet
    plog.discard()
    size = results[-1].position + results[-1].size
    assert (tmp_path / "recovery-point").read_text().strip() == f"0 {size}"
    _flip(tmp_path, results[3])  # before the checkpoint: not CRC-checked
    _flip(tmp_path, later)  # after it: CRC-checked and cut
    again = PartitionLog.open(tmp_path, big, FakeClock())
    assert set(range(results[3].base_offset, results[3].last_offset + 1)) <= _offsets(again)
    assert again.log_end_offset == later.base_offset
    again.close()


@pytest.mark.parametrize("text", ["0 999999", "0 -1", "7 0", "x", "0 1 2", "0\n"])
def test_an_implausible_recovery_point_means_a_full_check(tmp_path: Path, text: str) -> None:
    """Set aside (so it cannot come back into force), and recovery CRC-checks from the start;
    `0` alone is what earlier versions wrote (a segment base) and is honoured as such."""
    big = LogConfig(segment_bytes=1 << 30)
    plog = PartitionLog.open(tmp_path, big, FakeClock())
    results = [plog.append(make_batch(5, tag=i)) for i in range(5)]
    plog.discard()
    _flip(tmp_path, results[1])
    (tmp_path / "recovery-point").write_text(text)
    again = PartitionLog.open(tmp_path, big, FakeClock())
    assert not _offsets(again) & set(range(results[1].base_offset, results[1].last_offset + 1))
    assert (tmp_path / "recovery-point").exists() == (text == "0\n")
    again.close()
