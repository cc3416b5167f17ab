"""Recovery keeps what is intact (issue 11, findings 2 and 3): damaged bytes are set aside in
damaged/ and logged, later intact segments and batches stay readable at their offsets, the log
end offset never goes back past them, and implausible checkpoint files are ignored loudly."""

from __future__ import annotations

import logging
import struct
from pathlib import Path

import pytest

from klamm.protocol.record_batch import records_of
from klamm.storage.config import LogConfig
from klamm.storage.log import AppendResult, PartitionLog
from klamm.storage.segment import segment_name
from klamm.testing import FakeClock
from tests.storage.storage_helpers import make_batch

CONFIG = LogConfig(segment_bytes=600, index_interval_bytes=120)
BATCH_LENGTH = slice(8, 12)  # the BatchLength field of a batch header


def build(directory: Path, batches: int = 30, *, clean: bool = False) -> list[AppendResult]:
    plog = PartitionLog.open(directory, CONFIG, FakeClock())
    results = [plog.append(make_batch(5, tag=i)) for i in range(batches)]
    if clean:
        plog.close()  # fsync, clean-shutdown marker
    else:
        plog.discard()  # a crash: no marker, no recovery point
    return results


def offsets(plog: PartitionLog) -> list[int]:
    return [r.offset for r in records_of([b for _, b in plog.batches_from(0)])]


def all_offsets(results: list[AppendResult]) -> list[int]:
    return [o for r in results for o in range(r.base_offset, r.last_offset + 1)]


def segment_path(directory: Path, base: int) -> Path:
    return directory / (segment_name(base) + ".log")


def garble(path: Path, position: int, data: bytes) -> None:
    raw = bytearray(path.read_bytes())
    raw[position : position + len(data)] = data
    path.write_bytes(raw)


def aside_files(directory: Path) -> list[Path]:
    aside = directory / "damaged"
    return sorted(aside.iterdir()) if aside.exists() else []


def test_garbled_header_in_sealed_segment_after_clean_shutdown_keeps_later_segments(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    results = build(tmp_path, clean=True)
    bases = sorted({r.segment_base_offset for r in results})
    assert len(bases) >= 4
    # The last batch of the second segment gets an impossible BatchLength: the clean-shutdown
    # load scans the tail after the last index entry structurally and sees it.
    victim = [r for r in results if r.segment_base_offset == bases[1]][-1]
    path = segment_path(tmp_path, bases[1])
    size_before = path.stat().st_size
    garble(path, victim.position + BATCH_LENGTH.start, struct.pack(">i", 7))
    with caplog.at_level(logging.WARNING, "klamm.storage"):
        plog = PartitionLog.open(tmp_path, CONFIG, FakeClock())
    kept = [r for r in results if r is not victim]
    assert offsets(plog) == all_offsets(kept)
    assert plog.log_end_offset == results[-1].last_offset + 1  # never went back
    for base in bases:
        assert segment_path(tmp_path, base).exists()
    plog.check_invariants()
    # The cut bytes are in damaged/, byte for byte, named by segment and range.
    (aside,) = aside_files(tmp_path)
    assert aside.name.startswith(f"{segment_name(bases[1])}.log.{victim.position}-{size_before}.")
    raw = bytearray(aside.read_bytes())
    assert len(raw) == victim.size
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(
        segment_name(bases[1]) in m and f"offsets [{victim.base_offset}, " in m and str(aside) in m
        for m in errors
    ), errors
    # It stays that way: a restart keeps the gap and every record.
    plog.close()
    again = PartitionLog.open(tmp_path, CONFIG, FakeClock())
    assert offsets(again) == all_offsets(kept)
    again.close()


def test_crc_damage_mid_segment_keeps_the_batches_after_it(tmp_path: Path) -> None:
    results = build(tmp_path)
    bases = sorted({r.segment_base_offset for r in results})
    in_second = [r for r in results if r.segment_base_offset == bases[1]]
    assert len(in_second) >= 3
    victim = in_second[0]  # damage at the start: every other batch of the segment follows it
    garble(segment_path(tmp_path, bases[1]), victim.position + 70, b"\xff")
    plog = PartitionLog.open(tmp_path, CONFIG, FakeClock())
    kept = [r for r in results if r is not victim]
    assert offsets(plog) == all_offsets(kept)
    # The batches after the damaged one form a new segment named by their first offset.
    assert segment_path(tmp_path, in_second[1].base_offset).exists()
    assert plog.read(victim.base_offset, 1 << 20)  # a read in the gap gets the next batch
    plog.check_invariants()
    plog.close()


def test_damage_in_active_segment_does_not_move_the_log_end_back(tmp_path: Path) -> None:
    results = build(tmp_path)
    last_base = results[-1].segment_base_offset
    in_last = [r for r in results if r.segment_base_offset == last_base]
    assert len(in_last) >= 2
    victim = in_last[0]
    garble(segment_path(tmp_path, last_base), victim.position + 70, b"\xff")
    plog = PartitionLog.open(tmp_path, CONFIG, FakeClock())
    assert plog.log_end_offset == results[-1].last_offset + 1
    assert offsets(plog) == all_offsets([r for r in results if r is not victim])
    # New records get new offsets: none of the intact ones is handed out again.
    assert plog.append(make_batch(1)).base_offset == results[-1].last_offset + 1
    plog.close()


def test_missing_middle_segment_keeps_later_segments(tmp_path: Path) -> None:
    results = build(tmp_path)
    bases = sorted({r.segment_base_offset for r in results})
    segment_path(tmp_path, bases[2]).unlink()
    plog = PartitionLog.open(tmp_path, CONFIG, FakeClock())
    kept = [r for r in results if r.segment_base_offset != bases[2]]
    assert offsets(plog) == all_offsets(kept)
    assert plog.log_end_offset == results[-1].last_offset + 1
    plog.close()


def test_overlapping_segment_is_set_aside_not_deleted(tmp_path: Path) -> None:
    results = build(tmp_path)
    bases = sorted({r.segment_base_offset for r in results})
    # A copy of the second segment under a name inside the first one's offsets.
    intruder = segment_path(tmp_path, bases[0] + 1)
    intruder.write_bytes(segment_path(tmp_path, bases[1]).read_bytes())
    plog = PartitionLog.open(tmp_path, CONFIG, FakeClock())
    assert offsets(plog) == all_offsets(results)
    assert not intruder.exists()
    (aside,) = aside_files(tmp_path)
    assert aside.name.startswith(intruder.name + ".")
    assert aside.read_bytes() == segment_path(tmp_path, bases[1]).read_bytes()
    plog.close()


def test_torn_zero_tail_is_cut_without_a_copy(tmp_path: Path) -> None:
    results = build(tmp_path, 3)
    with open(segment_path(tmp_path, 0), "ab") as f:
        f.write(b"\x00" * 4096)
    plog = PartitionLog.open(tmp_path, CONFIG, FakeClock())
    assert offsets(plog) == all_offsets(results)
    assert aside_files(tmp_path) == []
    plog.close()


def test_crash_during_salvage_is_redone_without_duplicates(tmp_path: Path) -> None:
    """A crash after the salvaged segment was written but before the damaged one was cut: the
    next open finds both and must not serve the salvaged batches twice."""
    results = build(tmp_path)
    bases = sorted({r.segment_base_offset for r in results})
    in_second = [r for r in results if r.segment_base_offset == bases[1]]
    victim = in_second[0]
    path = segment_path(tmp_path, bases[1])
    garble(path, victim.position + 70, b"\xff")
    damaged = path.read_bytes()
    PartitionLog.open(tmp_path, CONFIG, FakeClock()).discard()
    path.write_bytes(damaged)  # as if the cut had not happened
    plog = PartitionLog.open(tmp_path, CONFIG, FakeClock())
    assert offsets(plog) == all_offsets([r for r in results if r is not victim])
    plog.check_invariants()
    plog.close()


# --- checkpoint files (finding 3) -------------------------------------------------------------


@pytest.mark.parametrize("content", ["999999\n", "-5\n", "garbage\n", "1_0\n", "\xff\xfe"])
def test_implausible_log_start_offset_is_ignored_loudly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: str
) -> None:
    results = build(tmp_path, 5, clean=True)
    (tmp_path / "log-start-offset").write_bytes(content.encode("latin-1"))
    with caplog.at_level(logging.WARNING, "klamm.storage"):
        plog = PartitionLog.open(tmp_path, CONFIG, FakeClock())
    assert plog.log_start_offset == 0
    assert offsets(plog) == all_offsets(results)
    assert any("log-start-offset" in r.getMessage() for r in caplog.records)
    # Moved aside: it cannot come back into force once the log grows past its value.
    assert not (tmp_path / "log-start-offset").exists()
    assert [p.name.split(".")[0] for p in aside_files(tmp_path)] == ["log-start-offset"]
    plog.close()


def test_plausible_log_start_offset_is_kept(tmp_path: Path) -> None:
    build(tmp_path, 5, clean=True)
    (tmp_path / "log-start-offset").write_text("7\n")
    plog = PartitionLog.open(tmp_path, CONFIG, FakeClock())
    assert plog.log_start_offset == 7
    assert (tmp_path / "log-start-offset").exists()
    plog.close()


def test_recovery_point_past_the_last_segment_still_crc_checks_the_active_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    results = build(tmp_path)
    last = results[-1]
    (tmp_path / "recovery-point").write_text(f"{last.last_offset + 1000}\n")
    # A payload flip in the last batch: only a CRC check finds it.
    garble(segment_path(tmp_path, last.segment_base_offset), last.position + 70, b"\xff")
    with caplog.at_level(logging.WARNING, "klamm.storage"):
        plog = PartitionLog.open(tmp_path, CONFIG, FakeClock())
    assert plog.log_end_offset == last.base_offset
    assert any("recovery-point" in r.getMessage() for r in caplog.records)
    assert not (tmp_path / "recovery-point").exists()
    plog.close()


def test_implausible_cleaner_offset_is_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    results = build(tmp_path, 5, clean=True)
    (tmp_path / "cleaner-offset").write_text("nonsense\n")
    with caplog.at_level(logging.WARNING, "klamm.storage"):
        plog = PartitionLog.open(tmp_path, CONFIG, FakeClock())
    assert offsets(plog) == all_offsets(results)
    assert any("cleaner-offset" in r.getMessage() for r in caplog.records)
    plog.close()


def test_garbled_base_offset_in_a_compacted_log_does_not_throw_the_log_end_ahead(
    tmp_path: Path,
) -> None:
    """Offsets of a compacted log may jump forward, and the base offset is not covered by the
    CRC: a flipped high bit used to move the log end 2^52 ahead, after which the index could
    not be written (struct.error at close)."""
    config = LogConfig(segment_bytes=600, index_interval_bytes=120, cleanup_policy=("compact",))
    plog = PartitionLog.open(tmp_path, config, FakeClock())
    results = [plog.append(make_batch(5, tag=i)) for i in range(30)]
    plog.discard()
    last = results[-1]
    path = segment_path(tmp_path, last.segment_base_offset)
    raw = bytearray(path.read_bytes())
    raw[last.position + 1] ^= 0x10  # bit 52 of the base offset
    path.write_bytes(raw)
    plog = PartitionLog.open(tmp_path, config, FakeClock())
    assert plog.log_end_offset == last.base_offset
    assert offsets(plog) == all_offsets(results[:-1])
    plog.append(make_batch(1))
    plog.close()
    (aside,) = aside_files(tmp_path)
    assert aside.stat().st_size == last.size
