"""Disk faults: a failed write, roll or fsync never corrupts the log or loses acknowledged data."""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from klamm.storage.config import LogConfig
from klamm.storage.errors import KafkaStorageError, LogClosed
from klamm.storage.log import PartitionLog
from klamm.testing import FakeClock
from tests.storage.storage_helpers import make_batch

CONFIG = LogConfig(segment_bytes=1000, index_interval_bytes=100)
real_write = os.write


def reopen(directory: Path) -> PartitionLog:
    return PartitionLog.open(directory, CONFIG, FakeClock())


def failing_write(after_bytes: int) -> Callable[[int, object], int]:
    """os.write that writes `after_bytes` (possibly a partial write), then fails ENOSPC."""
    budget = [after_bytes]

    def write(fd: int, data: object) -> int:
        view = memoryview(data)  # type: ignore[arg-type]
        if budget[0] <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        n = real_write(fd, view[: budget[0]])
        budget[0] -= n
        return n

    return write


@pytest.mark.parametrize("partial", [0, 1, 30, 61, 80])
def test_enospc_mid_append_rolls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, partial: int
) -> None:
    plog = reopen(tmp_path)
    for i in range(5):
        plog.append(make_batch(2, tag=i))
    before = (plog.log_end_offset, plog.size_bytes, plog.read(0, 10**6))
    monkeypatch.setattr(os, "write", failing_write(partial))
    with pytest.raises(KafkaStorageError, match="No space left"):
        plog.append(make_batch(3, value_size=50))
    monkeypatch.setattr(os, "write", real_write)
    assert (plog.log_end_offset, plog.size_bytes, plog.read(0, 10**6)) == before
    plog.check_invariants()
    # The disk has room again: the log carries on at the right offset.
    assert plog.append(make_batch(1)).base_offset == 10
    plog.flush()
    plog.discard()
    again = reopen(tmp_path)
    assert again.log_end_offset == 11
    again.check_invariants()


def test_enospc_on_roll(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plog = reopen(tmp_path)
    while plog.segment_count == 1:
        end = plog.log_end_offset
        plog.append(make_batch(4, value_size=30))
    # Undo: build a log just below the roll threshold instead.
    plog.delete()
    plog = reopen(tmp_path)
    for _ in range(end // 4):
        plog.append(make_batch(4, value_size=30))
    assert plog.segment_count == 1
    real_open = os.open

    def no_create(path: object, flags: int, *args: int) -> int:
        if flags & os.O_CREAT and str(path).endswith(".log"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(path, flags, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", no_create)
    with pytest.raises(KafkaStorageError, match="cannot roll"):
        plog.append(make_batch(4, value_size=30))
    monkeypatch.setattr(os, "open", real_open)
    assert plog.segment_count == 1 and plog.log_end_offset == end
    assert len(list(tmp_path.glob("*.log"))) == 1
    assert plog.append(make_batch(4, value_size=30)).base_offset == end
    assert plog.segment_count == 2
    plog.check_invariants()


def test_failed_rollback_takes_segment_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plog = reopen(tmp_path)
    plog.append(make_batch(2))
    plog.flush()
    monkeypatch.setattr(os, "write", failing_write(20))
    monkeypatch.setattr(
        os, "ftruncate", lambda fd, size: (_ for _ in ()).throw(OSError(errno.EIO, "EIO"))
    )
    with pytest.raises(KafkaStorageError, match="offline"):
        plog.append(make_batch(2))
    monkeypatch.undo()
    with pytest.raises(KafkaStorageError):
        plog.append(make_batch(2))
    plog.discard()
    again = reopen(tmp_path)  # recovery drops the torn 20 bytes
    assert again.log_end_offset == 2
    again.check_invariants()


def test_failed_fsync_takes_log_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plog = reopen(tmp_path)
    plog.append(make_batch(2))

    def broken(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fdatasync", broken)
    with pytest.raises(KafkaStorageError, match="flush"):
        plog.flush()
    monkeypatch.undo()
    with pytest.raises(KafkaStorageError, match="offline"):
        plog.append(make_batch(1))
    with pytest.raises(KafkaStorageError, match="offline"):
        plog.flush()
    plog.close()
    assert reopen(tmp_path).log_end_offset == 2


def test_index_write_failure_is_not_fatal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plog = reopen(tmp_path)
    for i in range(30):
        plog.append(make_batch(3, tag=i))
    calls = []

    def write(fd: int, data: object) -> int:
        calls.append(fd)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", write)
    plog.flush()  # segment data fsynced; index files are caches and may fail
    monkeypatch.undo()
    assert calls
    plog.discard()
    again = reopen(tmp_path)
    assert again.log_end_offset == 90
    again.check_invariants()


def test_closed_log_refuses(tmp_path: Path) -> None:
    plog = reopen(tmp_path)
    plog.close()
    with pytest.raises(LogClosed):
        plog.append(make_batch(1))
    with pytest.raises(LogClosed):
        plog.read(0, 1)
    plog.close()  # idempotent


def test_flush_concurrent_with_appends(tmp_path: Path) -> None:
    """flush() in a worker thread while appends and retention run: everything appended before
    each flush returned is on disk, and the log stays consistent."""
    clock = FakeClock()
    plog = PartitionLog.open(
        tmp_path, LogConfig(segment_bytes=2000, index_interval_bytes=100, retention_bytes=20000),
        clock,
    )  # fmt: skip
    stop = threading.Event()
    errors: list[BaseException] = []

    def flusher() -> None:
        try:
            while not stop.is_set():
                plog.flush()
                plog.enforce_retention(clock.now_ms())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=flusher)
    thread.start()
    try:
        for i in range(600):
            plog.append(make_batch(2, tag=i))
            if i % 50 == 0:
                plog.read(max(plog.log_start_offset, plog.log_end_offset - 10), 1000)
    finally:
        stop.set()
        thread.join()
    assert not errors
    plog.flush()
    plog.check_invariants()
    plog.discard()
    again = PartitionLog.open(tmp_path, LogConfig(segment_bytes=2000), clock)
    assert again.log_end_offset == 1200
    again.check_invariants()
