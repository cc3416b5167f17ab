"""Sparse offset and time indexes of one segment: in memory, mirrored to files.

Bytes (big-endian, the same as Kafka's `OffsetIndex.java` / `TimeIndex.java`):

    <base>.index      8-byte entries: relative offset u32, file position u32
    <base>.timeindex 12-byte entries: max timestamp so far i64, relative offset u32

Entries are strictly increasing in both fields (time: in timestamp). One pair is added per
`index.interval.bytes` of log, so a lookup scans at most that many bytes of batch headers.

Crash behaviour: the files are caches, never checksummed and never trusted blindly. The
segment writes new entries only in `flush()`/`close()`; a torn or stale file is detected on load
(`load` rejects non-monotonic entries, positions beyond the log, or a partial entry) and the
segment rebuilds the index by scanning its log.

Concurrency: an index has one writer (the log's append path, under the log's lock);
`pending_bytes()` snapshots unwritten entries under that lock and `write_pending()` writes them
from the flushing thread, which is the only one touching the file.
"""

from __future__ import annotations

import bisect
import os
import struct
from array import array
from pathlib import Path

__all__ = ["OffsetIndex", "TimeIndex"]

_OFFSET_ENTRY = struct.Struct(">II")
_TIME_ENTRY = struct.Struct(">qI")


class _IndexFile:
    """Shared file handling: read all bytes, append new ones, reset."""

    entry_size: int

    def __init__(self, path: Path) -> None:
        self.path = path
        self._written = 0  # entries already in the file

    def _read_raw(self) -> bytes | None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        if len(data) % self.entry_size:
            return None
        return data

    def _append_file(self, data: bytes, count: int) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        self._written = count

    def reset_file(self) -> None:
        """Rewrite the file from memory on the next write (after a rebuild)."""
        self.path.unlink(missing_ok=True)
        self._written = 0

    def delete(self) -> None:
        self.reset_file()


class OffsetIndex(_IndexFile):
    entry_size = _OFFSET_ENTRY.size

    def __init__(self, path: Path, base_offset: int) -> None:
        super().__init__(path)
        self.base_offset = base_offset
        self.offsets = array("q")  # absolute offsets, for bisect
        self.positions = array("q")

    def __len__(self) -> int:
        return len(self.offsets)

    def append(self, offset: int, position: int) -> None:
        self.offsets.append(offset)
        self.positions.append(position)

    def lookup(self, offset: int) -> tuple[int, int]:
        """(offset, position) of the greatest entry <= offset; (base, 0) if none."""
        i = bisect.bisect_right(self.offsets, offset) - 1
        if i < 0:
            return self.base_offset, 0
        return self.offsets[i], self.positions[i]

    def last(self) -> tuple[int, int]:
        if not self.offsets:
            return self.base_offset, 0
        return self.offsets[-1], self.positions[-1]

    def truncate_to_position(self, position: int) -> None:
        """Drop entries at or beyond `position` (the log was truncated there)."""
        keep = bisect.bisect_left(self.positions, position)
        del self.offsets[keep:]
        del self.positions[keep:]
        if keep < self._written:
            self.reset_file()

    def clear(self) -> None:
        del self.offsets[:]
        del self.positions[:]
        self.reset_file()

    def load(self, log_size: int) -> bool:
        """Read the file; False (and empty) when missing or inconsistent with a log of
        `log_size` bytes."""
        data = self._read_raw()
        self.clear_memory()
        if data is None:
            return False
        prev_off = prev_pos = -1
        for rel, pos in _OFFSET_ENTRY.iter_unpack(data):
            off = self.base_offset + rel
            if off <= prev_off or pos <= prev_pos or pos >= log_size:
                self.clear_memory()
                return False
            self.offsets.append(off)
            self.positions.append(pos)
            prev_off, prev_pos = off, pos
        self._written = len(self.offsets)
        return True

    def clear_memory(self) -> None:
        del self.offsets[:]
        del self.positions[:]
        self._written = 0

    def pending_bytes(self) -> tuple[bytes, int]:
        """Unwritten entries and the entry count they bring the file to."""
        count = len(self.offsets)
        out = bytearray()
        for i in range(self._written, count):
            out += _OFFSET_ENTRY.pack(self.offsets[i] - self.base_offset, self.positions[i])
        return bytes(out), count

    def write_pending(self, data: bytes, count: int) -> None:
        if count > self._written:
            self._append_file(data, count)


class TimeIndex(_IndexFile):
    entry_size = _TIME_ENTRY.size

    def __init__(self, path: Path, base_offset: int) -> None:
        super().__init__(path)
        self.base_offset = base_offset
        self.timestamps = array("q")
        self.offsets = array("q")

    def __len__(self) -> int:
        return len(self.timestamps)

    def maybe_append(self, timestamp: int, offset: int) -> None:
        """Add (timestamp, offset) if it raises the max timestamp (entries stay monotonic)."""
        if not self.timestamps or timestamp > self.timestamps[-1]:
            self.timestamps.append(timestamp)
            self.offsets.append(offset)

    def lookup(self, timestamp: int) -> int:
        """Offset to start scanning from for the first record with ts >= `timestamp`: the entry
        with the greatest timestamp <= target (every earlier batch is strictly older, as an entry
        is attributed to the first batch reaching that maximum); the base offset if none."""
        i = bisect.bisect_right(self.timestamps, timestamp) - 1
        if i < 0:
            return self.base_offset
        return self.offsets[i]

    def last(self) -> tuple[int, int] | None:
        if not self.timestamps:
            return None
        return self.timestamps[-1], self.offsets[-1]

    def truncate_to_offset(self, offset: int) -> None:
        """Drop entries pointing at or beyond `offset`."""
        keep = bisect.bisect_left(self.offsets, offset)
        del self.timestamps[keep:]
        del self.offsets[keep:]
        if keep < self._written:
            self.reset_file()

    def clear(self) -> None:
        self.clear_memory()
        self.reset_file()

    def clear_memory(self) -> None:
        del self.timestamps[:]
        del self.offsets[:]
        self._written = 0

    def load(self, next_offset_bound: int) -> bool:
        data = self._read_raw()
        self.clear_memory()
        if data is None:
            return False
        prev_ts = prev_off = None
        for ts, rel in _TIME_ENTRY.iter_unpack(data):
            off = self.base_offset + rel
            if (
                (prev_ts is not None and ts <= prev_ts)
                or (prev_off is not None and off < prev_off)
                or off >= next_offset_bound
            ):
                self.clear_memory()
                return False
            self.timestamps.append(ts)
            self.offsets.append(off)
            prev_ts, prev_off = ts, off
        self._written = len(self.timestamps)
        return True

    def pending_bytes(self) -> tuple[bytes, int]:
        count = len(self.timestamps)
        out = bytearray()
        for i in range(self._written, count):
            out += _TIME_ENTRY.pack(self.timestamps[i], self.offsets[i] - self.base_offset)
        return bytes(out), count

    def write_pending(self, data: bytes, count: int) -> None:
        if count > self._written:
            self._append_file(data, count)
