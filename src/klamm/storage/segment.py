"""One log segment: `<base offset, 20 digits>.log` plus its `.index` and `.timeindex`.

Bytes: the `.log` file is record batches (v2) back to back, exactly as appended after the
broker rewrote base offset and leader epoch; nothing else (no headers, no padding). The index
files are described in `index.py`.

Invariants (checked by `check_invariants`, used in tests):
  1. every byte of [0, size) belongs to a whole batch; batch base offsets strictly increase, and
     each starts at or after the previous batch's next offset;
  2. base_offset <= first batch base offset; next_offset = last batch's next offset
     (base_offset when empty);
  3. index entries point at batch starts, in increasing offset and position order;
  4. max_timestamp/offset_of_max_timestamp describe the batch with the largest MaxTimestamp
     (the first such batch on ties).

Crash behaviour: appends are plain `write`s (no fsync; the log's `flush` does that). A crash can
leave a torn or garbled tail; `load(..., verify=True)` scans batch by batch with `check_batch`
and truncates the file at the first invalid byte. A failed write is rolled back by truncating to
the size before it (`append`).

Descriptors: the `.log` file is a `SegmentFile` (handles.py), opened on demand and closed again
by a shared, bounded cache, so descriptors are bounded however many segments and partitions
there are. Index files are not held open (index.py).

Concurrency: not thread-safe by itself; `PartitionLog` serialises every call under its lock,
except `sync()`, which may run concurrently with `append` (fdatasync covers at least what was
written before it started). Each file operation pins the fd, so the cache never closes it
under a running one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from klamm.protocol.errors import InvalidRecordBatch
from klamm.protocol.record_batch import HEADER, HEADER_SIZE, LOG_OVERHEAD, BatchHeader, check_batch
from klamm.storage.errors import KafkaStorageError
from klamm.storage.handles import SegmentFile, SegmentFiles, default_files
from klamm.storage.index import OffsetIndex, TimeIndex

__all__ = [
    "SEGMENT_FILE",
    "LogSegment",
    "Scanned",
    "SegmentReader",
    "scan_batches",
    "segment_name",
]

LOG_SUFFIX = ".log"
INDEX_SUFFIX = ".index"
TIME_INDEX_SUFFIX = ".timeindex"
TXN_INDEX_SUFFIX = ".txnindex"  # written by txn_index.py; deleted with its segment
# A segment's files: 20 digits (an i64 at most, which the log checks) and one of the suffixes.
SEGMENT_FILE = re.compile(r"^(\d{20})\.(log|index|timeindex|txnindex)$")

# Recovery and scans read this much at a time: big enough that CRC and header parsing dominate
# over syscalls, small enough to keep memory flat on a 1 GiB segment.
SCAN_CHUNK = 1 << 20

MIN_BATCH_LENGTH = HEADER_SIZE - LOG_OVERHEAD  # a batch's BatchLength field can't be smaller
# The indexes store offsets relative to the base as u32, and the log rolls before a batch would
# pass this (log.py's MAX_RELATIVE_OFFSET, Kafka's Int.MaxValue): a batch beyond it in a segment
# was not written there. It is what catches a garbled base offset (not covered by the CRC) in a
# compacted log, where offsets may jump forward.
MAX_RELATIVE_OFFSET = 2**31 - 1


# (position, header, buf, rel) of one batch; buf[rel : rel + header.size] is the whole batch when
# the scan was asked for `whole` batches (or `verify`), else buf may hold only its header.
Scanned = tuple[int, BatchHeader, bytes, int]
Pread = Callable[[int, int], bytes]


def scan_batches(
    pread: Pread, start: int, end: int, *, verify: bool, whole: bool = False
) -> Iterator[Scanned]:
    """Each batch in [start, end) of a segment file read through `pread(position, size)`,
    stopping quietly at the first structurally invalid (or, with `verify`, CRC-failing) batch.
    Reads SCAN_CHUNK at a time; with `whole` (implied by `verify`) every yielded batch is
    entirely in the buffer yielded with it. The one scan of segment bytes: recovery, fetch
    and the cleaner all read through it."""
    whole = whole or verify
    pos = start
    buf = b""
    buf_start = pos
    while end - pos >= HEADER_SIZE:
        rel = pos - buf_start
        if len(buf) - rel < HEADER_SIZE:
            buf = pread(pos, min(SCAN_CHUNK, end - pos))
            buf_start, rel = pos, 0
            if len(buf) < HEADER_SIZE:
                return
        header = BatchHeader(*HEADER.unpack_from(buf, rel))
        if header.batch_length < MIN_BATCH_LENGTH or pos + header.size > end:
            return
        if whole and rel + header.size > len(buf):
            buf = pread(pos, max(min(SCAN_CHUNK, end - pos), header.size))
            buf_start, rel = pos, 0
        if verify:
            try:
                check_batch(buf, rel)
            except InvalidRecordBatch:
                return
        yield pos, header, buf, rel
        pos += header.size


def segment_name(base_offset: int) -> str:
    """Kafka's file stem: the base offset, zero-padded to 20 digits (fits any i64)."""
    return f"{base_offset:020d}"


class LogSegment:
    """A segment file with its in-memory indexes. See the module docstring for the contract."""

    def __init__(
        self,
        directory: Path,
        base_offset: int,
        index_interval_bytes: int,
        created_ms: int,
        files: SegmentFiles | None = None,
    ) -> None:
        stem = segment_name(base_offset)
        self.directory = directory
        self.base_offset = base_offset
        self.log_path = directory / (stem + LOG_SUFFIX)
        self.offset_index = OffsetIndex(directory / (stem + INDEX_SUFFIX), base_offset)
        self.time_index = TimeIndex(directory / (stem + TIME_INDEX_SUFFIX), base_offset)
        self.index_interval_bytes = index_interval_bytes
        self.created_ms = created_ms
        self.size = 0
        self.next_offset = base_offset
        self.max_timestamp = -1
        self.offset_of_max_timestamp = -1  # base offset of the batch holding max_timestamp
        self._bytes_since_index = 0
        self._files = files or default_files()
        self._file: SegmentFile | None = None  # set by create/load/adopt_file
        self.failed = False  # a write could not be rolled back: refuse further appends

    # --- lifecycle ------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        directory: Path,
        base_offset: int,
        index_interval_bytes: int,
        created_ms: int,
        files: SegmentFiles | None = None,
    ) -> LogSegment:
        """A new, empty segment."""
        seg = cls(directory, base_offset, index_interval_bytes, created_ms, files)
        seg.offset_index.reset_file()
        seg.time_index.reset_file()
        seg._file = seg._files.open(seg.log_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND)
        return seg

    @classmethod
    def adopt_file(
        cls,
        directory: Path,
        base_offset: int,
        index_interval_bytes: int,
        created_ms: int,
        fd: int,
        files: SegmentFiles | None = None,
    ) -> LogSegment:
        """An empty segment written through `fd`, a file opened (O_APPEND) under another name
        that will be renamed to this segment's `.log` (compaction): the fd stays open until
        `seal()`, and only then may the file be closed and reopened, by its final name."""
        seg = cls(directory, base_offset, index_interval_bytes, created_ms, files)
        seg._file = seg._files.adopt(seg.log_path, fd, held=True)
        return seg

    @classmethod
    def load(
        cls,
        directory: Path,
        base_offset: int,
        index_interval_bytes: int,
        created_ms: int,
        *,
        verify: bool,
        allow_gaps: bool = False,
        on_cut: Callable[[LogSegment, int, int], None] | None = None,
        files: SegmentFiles | None = None,
        verify_at: int = 0,
    ) -> tuple[LogSegment, int | None]:
        """Open an existing segment. With `verify`, CRC-check every batch from position
        `verify_at` on (the bytes before it are known fsynced: they get the structural check,
        from the indexes' last entry before it when the indexes are consistent) and truncate at
        the first invalid one; without, trust the indexes when they are consistent and scan only
        the tail after the last index entry. `on_cut(segment, start, end)` is called before
        bytes [start, end) are cut, with the segment describing the valid prefix, so the caller
        can keep them (log.py sets them aside). Returns (segment, position truncated at or
        None)."""
        seg = cls(directory, base_offset, index_interval_bytes, created_ms, files)
        seg._file = seg._files.open(seg.log_path, os.O_RDWR | os.O_APPEND)
        file_size = seg._file.size()
        seg.size = file_size
        if (verify and not verify_at) or not seg._load_indexes(file_size):
            seg.offset_index.clear()
            seg.time_index.clear()
            start = 0
        else:
            if verify:  # entries past the verified point are rebuilt by the CRC scan
                seg.offset_index.truncate_to_position(verify_at)
            start = seg.offset_index.last()[1]
            # The tail after the last entry is rebuilt from the log, so forget its time entries.
            seg.time_index.truncate_to_offset(seg.offset_index.last()[0] + 1)
            seg._restore_max_timestamp()
        valid_end = seg._rebuild_from(
            start, verify=verify, allow_gaps=allow_gaps, verify_at=verify_at if verify else 0
        )
        truncated: int | None = None
        if valid_end < file_size:
            try:
                if on_cut is not None:
                    on_cut(seg, valid_end, file_size)
                seg.truncate_to(valid_end)
            except BaseException:
                seg.close()
                raise
            truncated = valid_end
        return seg, truncated

    def _load_indexes(self, file_size: int) -> bool:
        if not self.offset_index.load(file_size):
            return False
        if not self.time_index.load(2**63 - 1):
            self.offset_index.clear_memory()
            return False
        # Spot-check the last entry: it must point at a batch whose base offset it names.
        offset, position = self.offset_index.last()
        if len(self.offset_index):
            head = self.pread(position, HEADER_SIZE)
            if len(head) < HEADER_SIZE or HEADER.unpack_from(head)[0] != offset:
                self.offset_index.clear_memory()
                self.time_index.clear_memory()
                return False
        return True

    def _restore_max_timestamp(self) -> None:
        last = self.time_index.last()
        if last is not None:
            self.max_timestamp, self.offset_of_max_timestamp = last

    def _rebuild_from(
        self, start: int, *, verify: bool, allow_gaps: bool, verify_at: int = 0
    ) -> int:
        """Scan batches from `start` (0, or the position of the last index entry, whose batch
        already has its entry), re-adding index entries and maxima; returns the end of the
        last valid batch. With `verify`, batches that end past `verify_at` are CRC-checked
        (the ones before it only structurally). Offsets must continue exactly from the
        previous batch unless `allow_gaps` (compacted logs): base offset and leader epoch are
        not covered by the CRC, so contiguity is what catches a garbled base offset."""
        file_size = self.size
        self._bytes_since_index = 0
        expected = self.offset_index.last()[0]
        end = start
        # (from, to, CRC-check): the known-fsynced prefix, then the rest.
        phases = [(start, file_size, verify)]
        if verify and verify_at > start:
            phases = [(start, verify_at, False), (-1, file_size, True)]
        for phase_start, phase_end, crc in phases:
            stopped = False
            scan_from = end if phase_start < 0 else phase_start
            for pos, header, _, _ in self.scan(scan_from, verify=crc, end=phase_end):
                ok = (
                    header.base_offset >= expected if allow_gaps else header.base_offset == expected
                )
                if (
                    not ok
                    or header.last_offset_delta < 0
                    or header.last_offset - self.base_offset > MAX_RELATIVE_OFFSET
                ):
                    stopped = True
                    break
                self._track(header, pos)
                expected = header.next_offset
                end = pos + header.size
            if stopped:
                break
        if start and end == start:
            # The batch an index entry points at is gone: distrust the indexes, start over.
            self.offset_index.clear()
            self.time_index.clear()
            self.max_timestamp = self.offset_of_max_timestamp = -1
            self.size = file_size
            return self._rebuild_from(0, verify=verify, allow_gaps=allow_gaps, verify_at=verify_at)
        if end == 0:
            self.next_offset = self.base_offset
        self.size = end
        return end

    def scan(self, start: int, *, verify: bool, end: int | None = None) -> Iterator[Scanned]:
        """`scan_batches` over this segment's file, from `start` to `end` (its size)."""
        return scan_batches(self.pread, start, self.size if end is None else end, verify=verify)

    def _track(self, header: BatchHeader, position: int) -> None:
        """Account for a batch now stored at `position` (indexes, maxima, size)."""
        if self._bytes_since_index > self.index_interval_bytes:
            self.offset_index.append(header.base_offset, position)
            if self.max_timestamp >= 0:
                self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp)
            self._bytes_since_index = 0
        self._bytes_since_index += header.size
        if header.max_timestamp > self.max_timestamp:
            self.max_timestamp = header.max_timestamp
            self.offset_of_max_timestamp = header.base_offset
        self.next_offset = header.next_offset
        self.size = position + header.size

    def seal(self) -> None:
        """The segment stops being active: record its final max timestamp in the time index
        (so a later load knows it without a scan), as Kafka's onBecomeInactiveSegment does.
        A file written under another name (adopt_file) is closable from now on."""
        if self.max_timestamp >= 0:
            self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp)
        self._handle.release_hold()

    @property
    def _handle(self) -> SegmentFile:
        assert self._file is not None, "a segment is made by create, load or adopt_file"
        return self._file

    def close(self) -> None:
        if self._file is not None:
            self._file.retire()

    def delete(self) -> None:
        self.close()
        txn_index = self.log_path.with_suffix(TXN_INDEX_SUFFIX)
        for path in (self.log_path, self.offset_index.path, self.time_index.path, txn_index):
            path.unlink(missing_ok=True)

    # --- writes ---------------------------------------------------------------------------

    def append(self, batch: bytes | bytearray, header: BatchHeader) -> int:
        """Write one batch at the end; returns its position. On an OS error the file is
        truncated back, nothing in memory changes, and KafkaStorageError is raised."""
        if self.failed:
            raise KafkaStorageError(f"segment {self.log_path} is offline after an I/O error")
        position = self.size
        try:
            self._handle.write_all(batch)
        except OSError as exc:
            self._rollback(position, exc)
            raise KafkaStorageError(
                f"append to {self.log_path} failed: {os.strerror(exc.errno or errno.EIO)}"
            ) from exc
        self._track(header, position)
        return position

    def _rollback(self, size: int, cause: OSError) -> None:
        try:
            self._handle.truncate(size)
        except OSError:
            self.failed = True
            raise KafkaStorageError(
                f"cannot roll back {self.log_path} after {cause}; segment is offline"
            ) from cause

    def truncate_to(self, position: int) -> None:
        """Cut the log at `position` (a batch boundary) and drop index entries beyond it."""
        self._handle.truncate(position)
        self.size = position
        self.offset_index.truncate_to_position(position)

    def sync(self) -> None:
        """fdatasync the log file (reopening it if the cache closed it); raises OSError, or
        FileUnavailable (a KafkaStorageError) when it cannot be reopened."""
        self._handle.sync()

    def write_indexes(self, pending: tuple[tuple[bytes, int], tuple[bytes, int]]) -> None:
        self.offset_index.write_pending(*pending[0])
        self.time_index.write_pending(*pending[1])

    def pending_index_bytes(self) -> tuple[tuple[bytes, int], tuple[bytes, int]]:
        return self.offset_index.pending_bytes(), self.time_index.pending_bytes()

    # --- reads ----------------------------------------------------------------------------

    def pread(self, position: int, size: int) -> bytes:
        return self._handle.pread(position, size)

    def find_batch(self, offset: int) -> tuple[int, BatchHeader] | None:
        """(position, header) of the first batch whose last offset >= `offset`: the batch
        holding it, or the next one after a gap. Scans at most one index interval."""
        _, start = self.offset_index.lookup(offset)
        for pos, header, _, _ in self.scan(start, verify=False, end=self.size):
            if header.last_offset >= offset:
                return pos, header
        return None

    def position_after(self, start: int, max_bytes: int, *, min_one: bool) -> int:
        """End position of the run of whole batches from `start` that fits in `max_bytes`
        (at least one batch when `min_one`)."""
        end = start
        for pos, header, _, _ in self.scan(start, verify=False, end=self.size):
            if pos + header.size - start > max_bytes and not (min_one and pos == start):
                break
            end = pos + header.size
            if end - start >= max_bytes:
                break
        return end

    def check_invariants(self) -> None:
        """Assert the numbered invariants of the module docstring (tests; O(size))."""
        prev_next = self.base_offset
        max_ts, max_off, end = -1, -1, 0
        starts: dict[int, int] = {}
        for pos, header, _, _ in self.scan(0, verify=True, end=self.size):
            assert pos == end, "1: batches back to back"
            assert header.base_offset >= prev_next, "1: base offsets increase"
            starts[pos] = header.base_offset
            prev_next = header.next_offset
            if header.max_timestamp > max_ts:
                max_ts, max_off = header.max_timestamp, header.base_offset
            end = pos + header.size
        assert end == self.size, f"1: {self.size - end} stray bytes at the end"
        assert self.next_offset == prev_next, "2: next offset"
        for off, pos in zip(self.offset_index.offsets, self.offset_index.positions, strict=True):
            assert starts.get(pos) == off, "3: index entry points at its batch"
        assert (self.max_timestamp, self.offset_of_max_timestamp) == (max_ts, max_off), "4"


class SegmentReader:
    """A segment as it was when `reader()` was called, read through a descriptor of its own
    (not the cache's): it stays readable even if the segment is deleted meanwhile (an unlinked
    file is readable through an open fd), and the cache never closes it. The cleaner reads
    through these. `close()` it when done; it is a context manager."""

    def __init__(self, segment: LogSegment, fd: int) -> None:
        self.segment = segment  # what the log's segment-replacement checks identity against
        self.base_offset = segment.base_offset
        self.next_offset = segment.next_offset
        self.size = segment.size
        self.max_timestamp = segment.max_timestamp
        self.created_ms = segment.created_ms
        self._fd = fd

    @classmethod
    def open(cls, segment: LogSegment) -> SegmentReader:
        """Open `segment`'s file (the caller holds its log's lock, so it exists). OSError."""
        return cls(segment, os.open(segment.log_path, os.O_RDONLY))

    def pread(self, position: int, size: int) -> bytes:
        return os.pread(self._fd, size, position)

    def batches(self) -> Iterator[tuple[BatchHeader, bytes]]:
        """Every whole batch in [0, size), with its bytes."""
        for _, header, buf, rel in scan_batches(self.pread, 0, self.size, verify=False, whole=True):
            yield header, buf[rel : rel + header.size]

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> SegmentReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
