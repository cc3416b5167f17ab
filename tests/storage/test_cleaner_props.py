"""Compaction properties (Hypothesis), crash safety of the segment swap, and compaction running
while the log is appended to."""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import klamm.storage.log as log_mod
from klamm.storage.cleaner import Cleaner
from klamm.storage.log import PartitionLog
from klamm.storage.recovery import recover_interrupted_swaps
from klamm.storage.segment import LogSegment
from klamm.testing import FakeClock
from tests.storage.cleaner_helpers import COMPACT, Row, check_compacted_invariants, keyed, rows

NOW = 10_000
# Tombstones go on the cleaning after the one that stamps them.
PROPS = dataclasses.replace(COMPACT, segment_bytes=300, delete_retention_ms=0)

Op = tuple[int, int | None]  # key index, value (None: tombstone)
ops_strategy = st.lists(
    st.lists(
        st.tuples(st.integers(0, 5), st.one_of(st.none(), st.integers(0, 999))),
        min_size=1,
        max_size=3,
    ),
    min_size=1,
    max_size=60,
)


def fill(plog: PartitionLog, ops: list[list[Op]]) -> None:
    for batch in ops:
        pairs = [(f"k{k}".encode(), None if v is None else f"v{v}".encode()) for k, v in batch]
        plog.append(keyed(pairs))


def expected_below(before: list[Row], active_base: int, *, tombstones: bool) -> list[Row]:
    """The latest record per key among those below the active segment."""
    latest: dict[bytes | None, Row] = {}
    for row in before:
        if row[0] < active_base:
            latest[row[1]] = row
    return sorted(r for r in latest.values() if tombstones or r[2] is not None)


@settings(max_examples=40, deadline=None)
@given(ops=ops_strategy)
def test_compaction_properties(ops: list[list[Op]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        plog = PartitionLog.open(Path(tmp) / "p-0", PROPS, FakeClock())
        fill(plog, ops)
        before = rows(plog)
        active_base = plog._segments[-1].base_offset
        end = plog.log_end_offset
        cleaner = Cleaner()
        for tombstones in (True, False):  # 1st stamps the horizon (now + 0), 2nd removes
            cleaner.clean(plog, NOW)
            after = rows(plog)
            # Nothing reordered or altered: the result is a subsequence of the original.
            it = iter(before)
            assert all(any(row == old for old in it) for row in after)
            # The active segment is untouched; below it, exactly the latest record per key.
            assert [r for r in after if r[0] >= active_base] == [
                r for r in before if r[0] >= active_base
            ]
            below = [r for r in after if r[0] < active_base]
            assert below == expected_below(before, active_base, tombstones=tombstones)
            for offset, key, value in below:  # readable at the original offset
                assert (offset, key, value) in rows_at(plog, offset)
            assert plog.log_end_offset == end
            check_compacted_invariants(plog)
        plog.close()
        reopened = PartitionLog.open(Path(tmp) / "p-0", PROPS, FakeClock())
        assert rows(reopened) == after
        reopened.close()


def rows_at(plog: PartitionLog, offset: int) -> list[Row]:
    from klamm.protocol.record_batch import records_of

    return [(r.offset, r.key, r.value) for r in records_of([plog.read(offset, 1)])]


# --- crash in the middle of a compaction -----------------------------------------------------


class Crash(BaseException):
    """The process dies here: nothing after this point runs (no except/finally cleanup that
    would matter: files are left as they are)."""


def crash_after(count: int, m: pytest.MonkeyPatch) -> Callable[[], bool]:
    """Make the `count`-th file-system step of a compaction (the cleaner's writes and the
    log's swap) raise Crash; returns "crashed?"."""
    seen = [0]

    def step() -> None:
        seen[0] += 1
        if seen[0] == count:
            raise Crash

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        def hooked(*args: Any, **kwargs: Any) -> Any:
            step()
            return fn(*args, **kwargs)

        return hooked

    m.setattr(log_mod.os, "replace", wrap(log_mod.os.replace))
    m.setattr(log_mod.os, "fsync", wrap(log_mod.os.fsync))
    m.setattr(log_mod, "fsync_dir", wrap(log_mod.fsync_dir))
    m.setattr(LogSegment, "delete", wrap(LogSegment.delete))
    return lambda: seen[0] >= count


def test_crash_anywhere_in_a_compaction_recovers(tmp_path: Path) -> None:
    ops: list[list[Op]] = [[(i % 4, i)] for i in range(40)] + [[(1, None)]] * 3
    ops += [[(5, i)] for i in range(12)]
    reference = PartitionLog.open(tmp_path / "ref-0", COMPACT, FakeClock())
    fill(reference, ops)
    old = rows(reference)
    Cleaner().clean(reference, NOW)
    new = rows(reference)
    assert new != old
    outcomes = set()
    for count in range(1, 200):
        directory = tmp_path / f"c{count}-0"
        plog = PartitionLog.open(directory, COMPACT, FakeClock())
        fill(plog, ops)
        with pytest.MonkeyPatch.context() as m:
            crashed = crash_after(count, m)
            with contextlib.suppress(Crash):
                Cleaner().clean(plog, NOW)
            done = not crashed()
        plog.discard()  # the process is gone: no flush, no clean-shutdown marker
        reopened = PartitionLog.open(directory, COMPACT, FakeClock())
        got = rows(reopened)
        # Each group swaps atomically, so a crash leaves the old log with a prefix of its
        # groups compacted: nothing lost, nothing resurrected, every key's latest intact.
        assert set(new) <= set(got) <= set(old), f"crash at step {count}"
        assert got == sorted(got) and latest(got) == latest(old)
        outcomes.add("new" if got == new else "old" if got == old else "partial")
        check_compacted_invariants(reopened)
        assert not [p for p in directory.iterdir() if p.name.endswith((".cleaned", ".swap"))]
        reopened.close()
        if done:
            break
    else:
        pytest.fail("the compaction never completed")
    assert {"old", "new"} <= outcomes


def latest(got: list[Row]) -> dict[bytes | None, Row]:
    return {row[1]: row for row in got}


def test_recovery_rolls_back_cleaned_and_completes_swap(tmp_path: Path) -> None:
    plog = PartitionLog.open(tmp_path / "p-0", COMPACT, FakeClock())
    fill(plog, [[(i % 3, i)] for i in range(30)])
    bases = [s.base_offset for s in plog._segments]
    plog.close()
    directory = tmp_path / "p-0"
    stem = f"{bases[0]:020d}-{bases[2]:020d}"
    (directory / f"{stem}.log.cleaned").write_bytes(b"half written")
    assert recover_interrupted_swaps(directory) is False
    assert not (directory / f"{stem}.log.cleaned").exists()
    # A complete swap file replaces every segment in its range, even if some are gone already.
    first = (directory / f"{bases[1]:020d}.log").read_bytes()
    (directory / f"{bases[0]:020d}.log").unlink()
    (directory / f"{stem}.log.swap").write_bytes(first)
    assert recover_interrupted_swaps(directory) is True
    names = sorted(p.name for p in directory.iterdir())
    assert f"{bases[1]:020d}.log" not in names and f"{bases[0]:020d}.log" in names
    reopened = PartitionLog.open(directory, COMPACT, FakeClock())
    assert rows(reopened)[0][0] == bases[1]  # the swapped-in content, at its own offsets
    check_compacted_invariants(reopened)
    reopened.close()


# --- concurrency -----------------------------------------------------------------------------


def test_appends_and_reads_continue_while_compacting(tmp_path: Path) -> None:
    plog = PartitionLog.open(tmp_path / "p-0", COMPACT, FakeClock())
    total = 1500
    offsets: list[int] = []
    errors: list[BaseException] = []

    def producer() -> None:
        try:
            for i in range(total):
                offsets.append(
                    plog.append(keyed([(f"k{i % 7}".encode(), f"{i}".encode())])).base_offset
                )
                if i % 100 == 0:
                    plog.flush()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=producer)
    thread.start()
    cleaner = Cleaner()
    runs = 0
    while thread.is_alive() or runs < 2:
        cleaner.clean(plog, NOW)
        rows(plog)  # readers walk the log while segments are swapped
        runs += 1
    thread.join()
    assert not errors
    assert offsets == list(range(total))
    cleaner.clean(plog, NOW)
    after = rows(plog)
    latest = {f"k{k}".encode(): None for k in range(7)}
    for i in range(total):
        latest[f"k{i % 7}".encode()] = f"{i}".encode()
    final = {key: value for _, key, value in after}
    assert final == latest
    check_compacted_invariants(plog)
    plog.close()
    reopened = PartitionLog.open(tmp_path / "p-0", COMPACT, FakeClock())
    assert rows(reopened) == after
    reopened.close()
