"""Segment files are opened on demand through a bounded cache (handles.py): descriptors scale
with active segments, not with segments; reads, flushes and restarts still see everything."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import pytest

from klamm.protocol.record_batch import records_of
from klamm.storage.config import LogConfig
from klamm.storage.errors import KafkaStorageError
from klamm.storage.handles import FileUnavailable, SegmentFiles
from klamm.storage.log import PartitionLog
from klamm.testing import FakeClock
from tests.storage.storage_helpers import make_batch

# One batch per segment: every append rolls (the batches are ~100 bytes).
ROLL_EVERY_BATCH = LogConfig(segment_bytes=50, index_interval_bytes=100)
SEGMENTS = 60
CAPACITY = 4


def open_fds_under(directory: Path) -> int:
    """Descriptors of this process open on files under `directory` (Linux /proc)."""
    count = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue  # the listing's own fd, closed by now
        if target.startswith(str(directory)):
            count += 1
    return count


def filled_log(directory: Path, clock: FakeClock, files: SegmentFiles) -> PartitionLog:
    plog = PartitionLog.open(directory, ROLL_EVERY_BATCH, clock, files)
    for i in range(SEGMENTS):
        plog.append(make_batch(1, timestamp=1000 + i, tag=i))
    assert plog.segment_count == SEGMENTS
    return plog


def all_values(plog: PartitionLog) -> list[bytes | None]:
    return [r.value for r in records_of(list(_chunks(plog)))]


def _chunks(plog: PartitionLog) -> list[bytes]:
    out, offset = [], 0
    while offset < plog.log_end_offset:
        data = plog.read(offset, 10_000)
        out.append(data)
        offset = records_of([data])[-1].offset + 1
    return out


def test_sealed_segments_do_not_hold_a_descriptor_each(tmp_path: Path, clock: FakeClock) -> None:
    """60 segments, a cache of 4: at most 4 files are open, while
    appending, reading old data, and after a restart (the issue: 1 fd per segment, for ever)."""
    files = SegmentFiles(CAPACITY)
    plog = filled_log(tmp_path / "t-0", clock, files)
    assert open_fds_under(tmp_path) <= CAPACITY
    expected = [bytes([i]) * 10 for i in range(SEGMENTS)]
    assert all_values(plog) == expected  # every old segment reopened on demand
    assert open_fds_under(tmp_path) <= CAPACITY
    assert files.statistics().reopens >= SEGMENTS - CAPACITY
    plog.flush()
    plog.close()
    assert open_fds_under(tmp_path) == 0

    for clean in (True, False):  # a clean restart, then a recovery that CRC-checks every file
        if not clean:
            (tmp_path / "t-0" / "recovery-point").unlink(missing_ok=True)
        again = PartitionLog.open(tmp_path / "t-0", ROLL_EVERY_BATCH, clock, files)
        assert again.segment_count == len(expected)
        assert open_fds_under(tmp_path) <= CAPACITY
        assert all_values(again) == expected
        again.append(make_batch(1, tag=99))  # the active segment takes appends
        expected.append(bytes([99]) * 10)
        again.check_invariants()
        assert open_fds_under(tmp_path) <= CAPACITY
        if clean:
            again.close()
        else:
            again.discard()  # a crash: no clean-shutdown marker


def test_many_partitions_share_the_bound(tmp_path: Path, clock: FakeClock) -> None:
    """Descriptors do not grow with partitions either: 30 logs written round-robin through a
    cache of 4 (the active segment of a quiet partition holds no descriptor); every append,
    flush and read still lands."""
    files = SegmentFiles(CAPACITY)
    logs = [PartitionLog.open(tmp_path / f"t-{i}", LogConfig(), clock, files) for i in range(30)]
    for round_ in range(3):
        for i, plog in enumerate(logs):
            plog.append(make_batch(1, tag=round_ * 30 + i))
        for plog in logs:
            plog.flush()
        assert open_fds_under(tmp_path) <= CAPACITY
    for i, plog in enumerate(logs):
        assert all_values(plog) == [bytes([r * 30 + i]) * 10 for r in range(3)]
        plog.close()
    assert open_fds_under(tmp_path) == 0


def test_flush_fsyncs_a_dirty_sealed_segment_whose_file_was_closed(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Appends, rolls past the cache's capacity, then one flush: every segment written is
    fsynced, including those the cache closed while they were still dirty."""
    synced: set[int] = set()
    real = os.fdatasync

    def recording(fd: int) -> None:
        synced.add(os.fstat(fd).st_ino)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", recording)
    files = SegmentFiles(CAPACITY)
    plog = filled_log(tmp_path / "t-0", clock, files)
    assert files.statistics().evictions > 0  # dirty files had to go: nothing clean was left
    plog.flush()
    inodes = {p.stat().st_ino for p in (tmp_path / "t-0").glob("*.log")}
    assert len(inodes) == SEGMENTS and inodes <= synced
    plog.close()


def test_eviction_never_closes_a_pinned_file(tmp_path: Path) -> None:
    """A file in use (a running pread or fsync) stays open whoever evicts; so does its fd
    number, which the OS could otherwise reuse for another file under the operation."""
    files = SegmentFiles(1)
    paths = [tmp_path / f"{i}.log" for i in range(3)]
    for path in paths:
        path.write_bytes(b"x" * 10)
    first = files.adopt(paths[0], os.open(paths[0], os.O_RDWR))
    with first.use() as fd:
        for path in paths[1:]:  # each adoption exceeds the capacity of 1
            files.adopt(path, os.open(path, os.O_RDWR))
        assert first.is_open and os.fstat(fd).st_ino == paths[0].stat().st_ino
        first.retire()  # closing the segment while in use: deferred to the unpin
        assert first.is_open
    assert not first.is_open
    with pytest.raises(OSError):
        first.pread(0, 1)


def test_a_concurrent_fsync_keeps_its_file(tmp_path: Path) -> None:
    """fsync of a sealed segment in one thread while another thread's reads churn the cache."""
    files = SegmentFiles(1)
    paths = [tmp_path / f"{i}.log" for i in range(8)]
    for path in paths:
        path.write_bytes(b"y" * 100)
    handles = [files.adopt(p, os.open(p, os.O_RDWR)) for p in paths]
    stop = threading.Event()
    errors: list[BaseException] = []

    def churn() -> None:
        try:
            while not stop.is_set():
                for handle in handles[1:]:
                    assert handle.pread(0, 100) == b"y" * 100
        except BaseException as exc:  # reported below
            errors.append(exc)

    thread = threading.Thread(target=churn)
    thread.start()
    try:
        for _ in range(300):
            handles[0].sync()
            assert handles[0].pread(0, 100) == b"y" * 100
    finally:
        stop.set()
        thread.join()
    assert not errors
    assert files.statistics().open <= 2  # the capacity, plus one pinned at most


def test_clean_files_are_closed_before_dirty_ones(tmp_path: Path) -> None:
    files = SegmentFiles(2)
    paths = [tmp_path / f"{i}.log" for i in range(3)]
    for path in paths:
        path.write_bytes(b"")
    dirty = files.adopt(paths[0], os.open(paths[0], os.O_RDWR | os.O_APPEND))
    dirty.write_all(b"unsynced")
    clean = files.adopt(paths[1], os.open(paths[1], os.O_RDWR))
    files.adopt(paths[2], os.open(paths[2], os.O_RDWR))
    assert dirty.is_open and not clean.is_open  # the older, dirty one stayed
    dirty.sync()
    assert not dirty.dirty


def test_out_of_descriptors_frees_idle_files_and_retries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EMFILE on a reopen (connections took the descriptors): every idle file is closed and the
    open retried; if that fails too, FileUnavailable (a storage error, nothing lost)."""
    files = SegmentFiles(3)
    paths = [tmp_path / f"{i}.log" for i in range(4)]
    for path in paths:
        path.write_bytes(b"z")
    handles = [files.adopt(p, os.open(p, os.O_RDWR)) for p in paths]
    assert not handles[0].is_open and files.statistics().open == 3
    real_open = os.open
    calls = 0

    def emfile_once(path: object, flags: int, mode: int = 0o777) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError(errno.EMFILE, "Too many open files")
        return real_open(path, flags, mode)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", emfile_once)
    assert handles[0].pread(0, 1) == b"z"
    assert calls == 2 and files.statistics().open == 1  # the idle ones went

    def emfile(path: object, flags: int, mode: int = 0o777) -> int:
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(os, "open", emfile)
    with pytest.raises(FileUnavailable):
        handles[1].pread(0, 1)


def test_flush_that_cannot_reopen_a_file_keeps_it_dirty(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No fd to reopen a sealed segment for its fsync: the flush fails with a storage error,
    the log stays online, and the next flush fsyncs what was left."""
    files = SegmentFiles(CAPACITY)
    plog = filled_log(tmp_path / "t-0", clock, files)
    real_open = os.open

    def no_fds(*args: object, **kwargs: object) -> int:
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(os, "open", no_fds)
    with pytest.raises(KafkaStorageError):
        plog.flush()
    monkeypatch.setattr(os, "open", real_open)
    plog.append(make_batch(1, tag=150))  # still online
    synced: set[int] = set()
    real_sync = os.fdatasync

    def recording(fd: int) -> None:
        synced.add(os.fstat(fd).st_ino)
        real_sync(fd)

    monkeypatch.setattr(os, "fdatasync", recording)
    plog.flush()  # online, and it fsyncs every segment written
    inodes = {p.stat().st_ino for p in (tmp_path / "t-0").glob("*.log")}
    assert inodes <= synced
    plog.close()


def test_flush_that_cannot_open_the_directory_stays_online(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A roll makes the directory dirty; no descriptor to open it for its fsync is not a failed
    fsync: the log stays online and the next flush syncs the directory."""
    plog = PartitionLog.open(tmp_path / "t-0", ROLL_EVERY_BATCH, clock, SegmentFiles(CAPACITY))
    plog.append(make_batch(1))
    plog.append(make_batch(1))  # a roll
    real_open = os.open

    def no_dir_fd(path: object, flags: int, mode: int = 0o777) -> int:
        if Path(str(path)).is_dir():
            raise OSError(errno.EMFILE, "Too many open files")
        return real_open(path, flags, mode)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", no_dir_fd)
    with pytest.raises(KafkaStorageError):
        plog.flush()
    monkeypatch.setattr(os, "open", real_open)
    synced_dirs: list[str] = []
    real_fsync = os.fsync

    def recording(fd: int) -> None:
        synced_dirs.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording)
    plog.append(make_batch(1))  # online
    plog.flush()
    assert str(tmp_path / "t-0") in synced_dirs
    plog.close()


def test_a_roll_out_of_descriptors_closes_idle_files_and_succeeds(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EMFILE when a roll creates the next segment: idle files are given back, the new file is
    created, the append lands."""
    files = SegmentFiles(CAPACITY)
    plog = filled_log(tmp_path / "t-0", clock, files)
    real_open = os.open
    calls = 0

    def emfile_once(path: object, flags: int, mode: int = 0o777) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError(errno.EMFILE, "Too many open files")
        return real_open(path, flags, mode)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", emfile_once)
    plog.append(make_batch(1, tag=200))
    monkeypatch.setattr(os, "open", real_open)
    assert calls == 2 and plog.segment_count == SEGMENTS + 1
    assert all_values(plog)[-1] == bytes([200]) * 10
    plog.close()
