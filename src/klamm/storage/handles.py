"""Open segment files on demand, through a bounded cache shared by every log of a broker.

Why: a descriptor held per segment for ever makes the broker's fd count grow with segments and
partitions, so enough of them (or a client forcing rolls) exhaust RLIMIT_NOFILE; then the
listener can no longer accept and logs go offline, and the same happens at the next start.
Here each segment's `.log` file is a `SegmentFile` that the cache keeps open while it is used:
at most `capacity` files stay open, least recently used closed first, reopened on the next
use. That includes active segments (a partition nobody writes to holds no descriptor); busy
ones stay open because they are used most recently. The exception is a *held* file: one the
cleaner is writing under a temporary name, which cannot be reopened by its segment's name
until it is swapped in, so it stays open, outside the count, until `release_hold()`. Index
files are never held open (index.py opens them per write), so they need no bound.

Durability: closing a file loses nothing written through it (the data is in the page cache,
and flush() fsyncs whatever its log lists as dirty, reopening the file when it was closed:
fsync covers every page of the file, whichever fd wrote it). The cache still prefers closing
clean files (synced since their last write), so a dirty file is only closed when nothing clean
is left to close. Linux reports a writeback error to an fd opened after it as long as nobody
saw the error first (errseq_t, since 4.13), and only the file's own log fsyncs it.

Concurrency: every SegmentFile's state and the LRU are guarded by the cache's one lock, held
across os.open/os.close (microseconds) but never across a read, write or fsync. Callers pin a
file for each operation (`use()`); a pinned file is never closed: closing one (eviction, which
another partition's thread may trigger, or `retire`) is deferred to its last unpin. So an fd is
never closed, and its number reused, under a running pread, write or fsync. Lock order: a log's
locks before the cache's; the cache calls nothing outside itself while holding its lock.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from klamm.storage.errors import KafkaStorageError

__all__ = [
    "DEFAULT_CAPACITY",
    "FileUnavailable",
    "SegmentFile",
    "SegmentFiles",
    "SegmentFilesStats",
    "default_files",
]

log = logging.getLogger("klamm.storage")

# Segment files kept open. Appends go to few active segments and reads of old data are mostly
# sequential within one segment, so a small cache hits nearly always; 256 leaves most of a 1024
# fd limit (the common default) for connections, and reopening a file costs a few microseconds.
DEFAULT_CAPACITY = 256

_REOPEN_FLAGS = os.O_RDWR | os.O_APPEND  # as the segment was opened: reads, fsync, truncation


def default_files() -> SegmentFiles:
    """The process-wide cache used by logs opened without one (tools, storage tests); a broker's
    LogManager makes its own, sized by its configuration."""
    return _DEFAULT


class FileUnavailable(KafkaStorageError):
    """A closed segment file could not be reopened (fd limit, file gone). Nothing was lost: the
    operation may be retried once descriptors are free."""


@dataclass(frozen=True, slots=True)
class SegmentFilesStats:
    capacity: int
    open: int  # files open in the cache (at most capacity, plus pinned ones)
    held: int  # files the cleaner is writing (open, outside the count)
    reopens: int  # files reopened after being closed, since the cache was made
    evictions: int  # files closed to respect the capacity


class SegmentFile:
    """One segment's `.log` file, opened on demand. Use it through `use()`, `pread`, `write`,
    `truncate` and `sync`; `retire()` when the segment is closed or deleted."""

    __slots__ = ("_cache", "_fd", "_held", "_pins", "_retired", "_synced", "_writes", "path")

    def __init__(self, cache: SegmentFiles, path: Path, fd: int, *, held: bool) -> None:
        self.path = path
        self._cache = cache
        self._fd = fd
        self._pins = 0
        self._held = held
        self._retired = False
        self._writes = 0  # bumped by every write and truncation
        self._synced = 0  # _writes as of the start of the last successful sync

    @property
    def dirty(self) -> bool:
        return self._writes != self._synced

    @property
    def is_open(self) -> bool:
        return self._fd >= 0

    @contextlib.contextmanager
    def use(self) -> Iterator[int]:
        """The open fd, pinned (never closed) until the block exits."""
        fd = self._cache._pin(self)
        try:
            yield fd
        finally:
            self._cache._unpin(self)

    def pread(self, position: int, size: int) -> bytes:
        with self.use() as fd:
            return os.pread(fd, size, position)

    def write_all(self, data: bytes | bytearray | memoryview) -> None:
        """Write every byte at the end (O_APPEND); an OSError may leave part of it written."""
        view = memoryview(data)
        with self.use() as fd:
            self._writes += 1
            while view:
                view = view[os.write(fd, view) :]

    def truncate(self, size: int) -> None:
        with self.use() as fd:
            self._writes += 1
            os.ftruncate(fd, size)

    def size(self) -> int:
        with self.use() as fd:
            return os.fstat(fd).st_size

    def sync(self) -> None:
        """fdatasync the file (reopening it if it was closed): covers every write made before
        this call, through whichever fd."""
        writes = self._writes
        with self.use() as fd:
            os.fdatasync(fd)
        self._synced = writes

    def release_hold(self) -> None:
        """The file is reachable by its path now: the cache may close it (no-op if not held)."""
        self._cache._release_hold(self)

    def retire(self) -> None:
        """The segment is closed or deleted: close the fd (after its last pin) for good."""
        self._cache._retire(self)


class SegmentFiles:
    """The cache (see the module docstring). One per LogManager; thread-safe."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"segment file cache capacity must be at least 1, not {capacity}")
        self.capacity = capacity
        self._lock = threading.Lock()
        # Open, not held, not retired files, least recently used first (pinned ones included:
        # eviction skips them).
        self._lru: OrderedDict[SegmentFile, None] = OrderedDict()
        self._held = 0
        self._reopens = 0
        self._evictions = 0

    def open(self, path: Path, flags: int, mode: int = 0o644) -> SegmentFile:
        """os.open `path` and track it; out of descriptors, idle files are closed and the open
        retried once. Raises OSError as os.open does."""
        try:
            fd = os.open(path, flags, mode)
        except OSError as exc:
            if exc.errno not in (errno.EMFILE, errno.ENFILE) or not self.release_idle():
                raise
            fd = os.open(path, flags, mode)
        return self.adopt(path, fd)

    def adopt(self, path: Path, fd: int, *, held: bool = False) -> SegmentFile:
        """Track a file its segment has just opened (created or loaded; `held`: being written
        under another name, see the module docstring)."""
        file = SegmentFile(self, path, fd, held=held)
        with self._lock:
            if held:
                self._held += 1
            else:
                self._lru[file] = None
                self._shrink(self.capacity)
        return file

    def set_capacity(self, capacity: int) -> None:
        """Make the capacity `capacity` (at least 1), closing files now if it shrank."""
        with self._lock:
            self.capacity = max(1, capacity)
            self._shrink(self.capacity)

    def limit_capacity(self, capacity: int) -> None:
        """Lower the capacity to `capacity` (at least 1; never raises it), closing files now."""
        with self._lock:
            self.capacity = max(1, min(self.capacity, capacity))
            self._shrink(self.capacity)

    def release_idle(self) -> int:
        """Close every open file not in use and not held (the process is out of descriptors and
        something more urgent needs one); returns how many were closed."""
        with self._lock:
            before = len(self._lru)
            self._shrink(0)
            return before - len(self._lru)

    def statistics(self) -> SegmentFilesStats:
        with self._lock:
            return SegmentFilesStats(
                self.capacity, len(self._lru), self._held, self._reopens, self._evictions
            )

    # --- called by SegmentFile --------------------------------------------------------------

    def _pin(self, file: SegmentFile) -> int:
        with self._lock:
            if file._retired:
                raise OSError(errno.EBADF, f"segment file {file.path} is closed")
            file._pins += 1  # first: never evict what we are opening
            if file._fd < 0:  # never for a held file: held files are not closed
                try:
                    file._fd = self._reopen(file.path)
                except BaseException:
                    file._pins -= 1
                    raise
                self._reopens += 1
                self._lru[file] = None
                self._shrink(self.capacity)
            elif not file._held:
                self._lru.move_to_end(file)
            return file._fd

    def _unpin(self, file: SegmentFile) -> None:
        with self._lock:
            file._pins -= 1
            # Eviction skips pinned files, so only a retirement can be waiting for this unpin.
            if file._pins == 0 and file._retired and file._fd >= 0:
                self._close(file)
            elif len(self._lru) > self.capacity:  # pins held the cache above its bound
                self._shrink(self.capacity)

    def _release_hold(self, file: SegmentFile) -> None:
        with self._lock:
            if file._retired or not file._held:
                return
            file._held = False
            self._held -= 1
            self._lru[file] = None
            self._shrink(self.capacity)

    def _retire(self, file: SegmentFile) -> None:
        with self._lock:
            if file._retired:
                return
            file._retired = True
            if file._held:
                self._held -= 1
            self._lru.pop(file, None)
            if file._pins == 0 and file._fd >= 0:
                self._close(file)

    # --- internals (lock held) --------------------------------------------------------------

    def _reopen(self, path: Path) -> int:
        try:
            return os.open(path, _REOPEN_FLAGS)
        except OSError as exc:
            if exc.errno not in (errno.EMFILE, errno.ENFILE):
                raise FileUnavailable(f"cannot reopen {path}: {exc.strerror}") from exc
        # Out of descriptors (connections took them): give back every idle one and retry once.
        self._shrink(0)
        try:
            return os.open(path, _REOPEN_FLAGS)
        except OSError as exc:
            raise FileUnavailable(f"cannot reopen {path}: {exc.strerror}") from exc

    def _shrink(self, limit: int) -> None:
        """Close least recently used unpinned files until at most `limit` stay open: clean ones
        first, dirty ones only when no clean one is left (see the module docstring)."""
        excess = len(self._lru) - limit
        if excess <= 0:
            return
        for prefer_clean in (True, False):
            for file in list(self._lru):
                if excess <= 0:
                    return
                if file._pins or (prefer_clean and file.dirty):
                    continue
                del self._lru[file]
                self._close(file)
                self._evictions += 1
                excess -= 1

    def _close(self, file: SegmentFile) -> None:
        fd, file._fd = file._fd, -1
        try:
            os.close(fd)
        except OSError as exc:  # nothing to do about it; the fd is gone either way
            log.warning("closing %s failed: %s", file.path, exc)


_DEFAULT = SegmentFiles()
