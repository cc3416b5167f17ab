"""PartitionLog: one partition's directory of segments, the API the broker appends to and
fetches from.

Files in the partition directory:

    <20-digit base offset>.log / .index / .timeindex   segments (see segment.py, index.py)
    log-start-offset      decimal text: the log start offset when DeleteRecords raised it above
                          the first segment's base (written atomically: tmp, fsync, rename)
    .klamm_cleanshutdown  present only between a clean `close()` and the next `open()` (a
                          LogManager instead writes one marker for its whole data directory:
                          see log_manager.py; it opens the log with `clean_shutdown=True`)
    recovery-point        `<segment base> <position>`: every byte of the log before that
                          position of that segment was fsynced; written (atomically) by
                          `flush()` after a roll and by `checkpoint_recovery_point()` (on a
                          timer); older versions wrote the segment base alone (position 0)
    damaged/              what recovery set aside (recovery.py): never read, never deleted
    cleaner-offset        the cleaner's checkpoint (cleaner_manager.py owns it; see below)
    <base>-<end>.log.cleaned / .log.swap
                          a segment replacement being written / committed (`replace_segments`;
                          recovery.py finishes or rolls it back at open)

Crash behaviour:
  * Appends are not fsynced; `flush()` fsyncs every segment written since the previous flush
    and the directory when segments were created, so everything appended before `flush()` was
    called is durable when it returns.
  * `open()` after a clean shutdown trusts consistent index files and scans only segment tails.
    Otherwise every byte from the recovery point on is CRC-checked batch by batch (older,
    fsynced ones get the cheap structural check), so recovery time follows what was written
    since the last checkpoint, not the data held. What fails is handled as under "Damage".
  * Checkpoint files are hints, checked against the segments: a `recovery-point` past the last
    segment's base (it would exempt the active segment from the CRC check) or a
    `log-start-offset` past the log end (it would hide every record), or either one not a
    non-negative decimal, is ignored with a warning and moved into damaged/ (left in place it
    would come back into force once the log grew past it). An implausible `cleaner-offset`
    is only reported: the cleaner manager (cleaner_manager.py, which owns that file) treats it
    as "all dirty", and its presence says the log may have gaps.
  * A segment replacement (`replace_segments`, what compaction does) interrupted by a crash
    is finished or rolled back by `open()` before anything else is read (recovery.py,
    "Segment replacement").

Damage (a torn tail, a garbled batch in any segment, a missing or overlapping segment file):
recovery never unlinks acknowledged data and logs exactly what it skipped (file, byte range,
offsets), at ERROR when intact data follows the damage and at WARNING for a torn tail.
  * The bytes cut from a segment (from the first invalid batch to the end of its file) are
    copied into damaged/ and fsynced before the file is truncated (all-zero tails, which a file
    system leaves after a crash, hold nothing and are just cut).
  * Intact batches after the damaged one (found by searching the cut bytes for the next batch
    with a valid CRC and a base offset at or after where the log stops) are written back as a
    new segment named by their base offset; later segments are kept as they are. The log thus
    keeps an offset gap where the damaged batch was, as compacted logs do: Fetch skips it
    exactly as it skips compacted-away offsets, and every client handles that.
  * A segment whose base offset is below the end of the one before it (overlapping offsets,
    which cannot both be served) is set aside whole; a missing segment file is a gap.
Why keep later data with a gap rather than cut the log there (Kafka truncates at the first
invalid batch, and drops later segments): cutting moves the log end offset back past records
that are intact and may have been acknowledged, so new appends would reuse their offsets, and a
consumer that had committed past them would skip the new records while one that had not would
read different records at the same offsets. A gap loses only the damaged batch, keeps the rest
readable at its original offsets, and never hands an offset out twice.
  * A failed write (ENOSPC, EIO) is rolled back by truncating the segment to its size before
    the append: state is unchanged and KafkaStorageError is raised. A failed fsync takes the
    log offline (after a failed fsync Linux may drop dirty pages, so a retry could falsely
    succeed): later appends and flushes raise KafkaStorageError until the log is reopened.

Concurrency contract: `append`, `read` and the other operations may be called from the broker's
event-loop thread while `flush()` (and `enforce_retention`, `delete_records_before`,
`replace_segments`, `close`) run in worker threads. `_lock` guards every in-memory structure
and is held only briefly; `flush()` does its fsyncs outside it, holding `_flush_lock`, which
anything that closes segment file descriptors also takes first, so an fd is never closed (and
reused) under a running fsync.
Lock order: `_flush_lock` before `_lock`.

Compaction works from outside through three public steps, none of which holds a lock while it
reads or writes data: `snapshot()` opens a SegmentReader (its own descriptor) per segment under
`_lock`; the cleaner reads and writes the replacement (`begin_replacement`) without locks; and
`replace_segments` takes `_flush_lock` then `_lock` only to rename and delete files and to
swap the segment list, after checking that the segments it replaces are still this log's
(retention, DeleteRecords or `close` may have run). The active segment is never replaced, so
appends wait at most for a swap's renames and deletes, never for data being copied.

Descriptors: segment files are opened through a `SegmentFiles` cache (handles.py) shared by
every log of a LogManager, which may close any segment's file from any thread when it needs
the descriptor, but never while an operation has it pinned (each pread, write, truncate and
fsync pins it), so that guarantee does not depend on this log's locks. A flush reopens a file
the cache closed; if it cannot (no descriptor free) the flush fails with FileUnavailable and
the segments stay dirty for the next one: no fsync ran, so the log stays online.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import logging
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from klamm.protocol.errors import ErrorCode, InvalidRecordBatch
from klamm.protocol.record_batch import (
    HEADER,
    HEADER_SIZE,
    BatchHeader,
    assign_offsets,
    find_by_timestamp,
    iter_batches,
    parse_header,
)
from klamm.storage.config import LogConfig
from klamm.storage.durable_files import fsync_dir, write_atomically
from klamm.storage.errors import KafkaStorageError, LogClosed, OffsetOutOfRange
from klamm.storage.handles import FileUnavailable, SegmentFiles, default_files
from klamm.storage.recovery import (
    CLEANED_SUFFIX,
    DAMAGED_DIR,
    SWAP_SUFFIX,
    check_cleaner_offset,
    move_aside,
    read_checkpoint,
    read_recovery_point,
    recover_interrupted_swaps,
    replacement_name,
    set_aside_cut,
    set_aside_segment,
)
from klamm.storage.segment import (
    INDEX_SUFFIX,
    LOG_SUFFIX,
    SEGMENT_FILE,
    TIME_INDEX_SUFFIX,
    LogSegment,
    SegmentReader,
    segment_name,
)

__all__ = [
    "AppendResult",
    "LogSnapshot",
    "PartitionLog",
    "SegmentReplacement",
    "SegmentSummary",
]

log = logging.getLogger("klamm.storage")

CLEAN_SHUTDOWN_FILE = ".klamm_cleanshutdown"
LOG_START_OFFSET_FILE = "log-start-offset"
RECOVERY_POINT_FILE = "recovery-point"
# The cleaner's checkpoint, owned by cleaner_manager.py; its presence tells `open` that the log
# has been compacted, so its offsets may have gaps.
CLEANER_OFFSET_FILE = "cleaner-offset"
_OTHER_STATE_FILE = re.compile(r"^\d{20}\.snapshot$")

MAX_OFFSET = 2**63 - 1  # offsets are i64 on the wire and in the index files

# Offsets inside a segment are stored relative to its base as u32 in the indexes; roll before
# a batch could overflow that (Kafka rolls at Int.MaxValue for the same reason).
MAX_RELATIVE_OFFSET = 2**31 - 1

# batches_from reads this much per step: one read covers many small batches while holding the
# lock only briefly.
REPLAY_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class SegmentSummary:
    """What a log knows in memory about one of its segments (`PartitionLog.summaries`)."""

    base_offset: int
    next_offset: int
    size: int
    max_timestamp: int  # -1 when no batch has a timestamp
    created_ms: int


@dataclass(slots=True)
class LogSnapshot:
    """Every segment of a log (the last one active) as it was at `PartitionLog.snapshot`, each
    read through a descriptor of its own; a context manager that closes them."""

    segments: list[SegmentReader]
    config: LogConfig
    log_start_offset: int

    def close(self) -> None:
        for reader in self.segments:
            reader.close()

    def __enter__(self) -> LogSnapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(slots=True)
class SegmentReplacement:
    """A segment being written to replace the log's segments with base offsets in
    [base_offset, end) (`PartitionLog.begin_replacement`). Append to `segment`; `finish()`
    makes it durable; then `PartitionLog.replace_segments` swaps it in, or `discard()`."""

    segment: LogSegment  # named as its final `<base>.log`; written through `fd`
    end: int
    path: Path  # the `.cleaned` file it is written to until the swap
    fd: int  # owned by `segment` (held open in the cache until `finish`)

    @property
    def base_offset(self) -> int:
        return self.segment.base_offset

    def finish(self) -> None:
        """fsync the file (before the swap makes it part of the log) and seal the segment."""
        os.fsync(self.fd)
        self.segment.seal()

    def discard(self) -> None:
        """Close and delete the file (not swapped in)."""
        self.segment.close()
        self.path.unlink(missing_ok=True)


@dataclass(frozen=True, slots=True)
class AppendResult:
    base_offset: int
    last_offset: int
    max_timestamp: int
    log_start_offset: int
    segment_base_offset: int
    position: int  # of the batch in its segment file
    size: int


class PartitionLog:
    """An append-only log of record batches for one partition. See the module docstring."""

    def __init__(
        self,
        directory: Path,
        config: LogConfig,
        now_ms: Callable[[], int],
        segments: list[LogSegment],
        log_start_offset: int,
        files: SegmentFiles | None = None,
    ) -> None:
        self.directory = directory
        self._config = config
        self._now_ms = now_ms
        self._segments = segments
        self._files = files or default_files()
        self._bases = [s.base_offset for s in segments]
        self._log_start_offset = log_start_offset
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._dirty: dict[int, LogSegment] = {}  # base offset -> segment written since flush
        self._dir_dirty = False
        # (segment base, position): every byte before it is fsynced. `_recovery_point` is what
        # the recovery-point file says; `_flushed` what the last flush made durable.
        self._recovery_point = (segments[-1].base_offset if segments else 0, 0)
        self._flushed = self._recovery_point
        self._offline: str | None = None
        self._closed = False

    # --- open / recovery -------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        directory: Path,
        config: LogConfig,
        now_ms: Callable[[], int],
        files: SegmentFiles | None = None,
        *,
        clean_shutdown: bool = False,
    ) -> PartitionLog:
        """Create the directory or recover the log in it (see the crash behaviour above).
        `files`: the cache its segment files are opened through (handles.py); by default the
        process-wide one. `clean_shutdown`: the caller knows the log was closed cleanly (by
        `close(mark_clean=False)`) and has durably forgotten that before this call, as the
        log's own marker would be."""
        try:
            return cls._open(directory, config, now_ms, files, clean_shutdown)
        except OSError as exc:
            # The file and the OS's words: what an operator needs to fix it.
            cause = f"{exc.strerror}: {exc.filename}" if exc.strerror and exc.filename else exc
            raise KafkaStorageError(f"cannot open log {directory}: {cause}") from exc

    @classmethod
    def _open(
        cls,
        directory: Path,
        config: LogConfig,
        now_ms: Callable[[], int],
        files: SegmentFiles | None,
        clean_shutdown: bool,
    ) -> PartitionLog:
        directory.mkdir(parents=True, exist_ok=True)
        # One listing serves every step below (at start-up, on a cold cache, each listdir of
        # each partition is a disk read).
        names = os.listdir(directory)
        marker = directory / CLEAN_SHUTDOWN_FILE
        clean = clean_shutdown
        if CLEAN_SHUTDOWN_FILE in names:
            clean = True
            marker.unlink()
            # Durably forget the marker before writing anything: a crash from now on must
            # trigger a full recovery.
            fsync_dir(directory)
        # Finish or roll back a segment replacement a crash interrupted. A log ever compacted
        # may have offset gaps even if its cleanup.policy no longer says compact.
        swapped = recover_interrupted_swaps(directory, names)
        if swapped or any(n.endswith((CLEANED_SUFFIX, SWAP_SUFFIX)) for n in names):
            names = os.listdir(directory)  # the replacement changed the directory
        compacted = swapped or CLEANER_OFFSET_FILE in names
        created = now_ms()
        bases = cls._scan_directory(directory, created, names)
        # CRC-checked: segments from this base on, from this position in the first of them.
        verify_from: tuple[int, int] | None = None
        if not clean:
            verify_from = read_recovery_point(directory, RECOVERY_POINT_FILE, created, bases)
            verify_from = verify_from or (0, 0)
        segments: list[LogSegment] = []
        try:
            cls._load_segments(
                directory, config, bases, segments, verify_from,
                allow_gaps=config.compact or compacted, created=created, files=files,
            )  # fmt: skip
            if verify_from is not None and verify_from[1]:
                cls._check_recovery_point(directory, segments, verify_from, created)
            log_end = segments[-1].next_offset if segments else None
            start = read_checkpoint(
                directory, LOG_START_OFFSET_FILE, created, log_end,
                "it is past the log end offset: every record would be out of range",
            )  # fmt: skip
            if compacted:
                check_cleaner_offset(directory, CLEANER_OFFSET_FILE, log_end)
            if not segments:
                # No segment left: start where the log started (the checkpoint, if any), so
                # offsets handed out before are not handed out again.
                seg = LogSegment.create(
                    directory, start or 0, config.index_interval_bytes, created, files
                )
                fsync_dir(directory)
                segments.append(seg)
        except BaseException:
            for seg in segments:
                seg.close()
            raise
        log_end = segments[-1].next_offset
        log_start = min(max(start or 0, segments[0].base_offset), log_end)
        return cls(directory, config, now_ms, segments, log_start, files)

    @classmethod
    def _load_segments(
        cls,
        directory: Path,
        config: LogConfig,
        bases: list[int],
        segments: list[LogSegment],
        verify_from: tuple[int, int] | None,
        *,
        allow_gaps: bool,
        created: int,
        files: SegmentFiles | None,
    ) -> None:
        """Load every segment into `segments` (see "Damage" in the module docstring): a segment
        overlapping the one before is set aside, a cut tail is copied aside, and the intact
        batches after a damaged one become a new segment, loaded in turn."""
        pending = list(bases)  # ascending; a salvaged segment is inserted at the front
        salvaged: set[int] = set()
        while pending:
            base = pending.pop(0)
            if segments and base < segments[-1].next_offset:
                moved = set_aside_segment(directory, base, created)
                log.error(
                    "log %s: segment %s overlaps offsets below %d that the log already holds; "
                    "set aside as %s", directory, segment_name(base) + LOG_SUFFIX,
                    segments[-1].next_offset, moved,
                )  # fmt: skip
                continue
            if segments and base > segments[-1].next_offset and not allow_gaps:
                log.warning(
                    "log %s: offsets [%d, %d) are missing (damaged and set aside, or their "
                    "segment file is gone); readers skip them", directory,
                    segments[-1].next_offset, base,
                )  # fmt: skip
            next_base = pending[0] if pending else None

            def on_cut(
                seg: LogSegment, start: int, end: int, limit: int | None = next_base
            ) -> None:
                found = set_aside_cut(
                    directory, seg, start, end, limit, allow_gaps=allow_gaps, now_ms=created
                )
                if found is not None:
                    pending.insert(0, found)
                    salvaged.add(found)

            verify_at = 0
            if verify_from is not None and base == verify_from[0] and base not in salvaged:
                verify_at = verify_from[1]
            seg, _ = LogSegment.load(
                directory, base, config.index_interval_bytes, created,
                verify=base in salvaged or (verify_from is not None and base >= verify_from[0]),
                allow_gaps=allow_gaps, on_cut=on_cut, files=files, verify_at=verify_at,
            )  # fmt: skip
            segments.append(seg)

    @staticmethod
    def _check_recovery_point(
        directory: Path, segments: list[LogSegment], point: tuple[int, int], now_ms: int
    ) -> None:
        """A recovery point inside a segment that recovery cut below it (its "fsynced" bytes
        were damaged) is set aside: left in place, it would exempt the bytes appended there
        from the next recovery's CRC check."""
        base, position = point
        seg = next((s for s in segments if s.base_offset == base), None)
        if seg is None or seg.size < position:
            moved = move_aside(directory / RECOVERY_POINT_FILE, now_ms)
            log.warning("log %s: recovery point %d:%d is past what recovery kept; moved to %s",
                        directory, base, position, moved)  # fmt: skip

    @staticmethod
    def _scan_directory(directory: Path, now_ms: int, names: list[str]) -> list[int]:
        """Segment base offsets found in `names` (the directory's listing); removes leftover
        tmp files and orphan index files, and sets aside segment files whose name no broker
        could have written."""
        logs: set[int] = set()
        others: list[tuple[int, Path]] = []
        for path in (directory / name for name in names):
            if path.name.endswith(".tmp") or path.name.endswith(".deleted"):
                path.unlink(missing_ok=True)
                continue
            match = SEGMENT_FILE.match(path.name)
            if match is None and _OTHER_STATE_FILE.match(path.name):
                continue  # producer-state snapshots: owned by producer_state.py
            if match is None:
                if path.name not in (
                    LOG_START_OFFSET_FILE, RECOVERY_POINT_FILE, CLEAN_SHUTDOWN_FILE,
                    CLEANER_OFFSET_FILE, DAMAGED_DIR,
                ):  # fmt: skip
                    log.warning("log %s: ignoring unexpected file %s", directory, path.name)
                continue
            if int(match.group(1)) > MAX_OFFSET:
                # 20 digits can name more than an i64 holds; no broker wrote this file.
                moved = move_aside(path, now_ms)
                log.error("log %s: %s names an offset beyond 2^63-1; set aside as %s",
                          directory, path.name, moved)  # fmt: skip
            elif match.group(2) == "log":
                logs.add(int(match.group(1)))
            else:
                others.append((int(match.group(1)), path))
        for base, path in others:
            if base not in logs:
                path.unlink(missing_ok=True)
        return sorted(logs)

    # --- properties ------------------------------------------------------------------------

    @property
    def config(self) -> LogConfig:
        return self._config

    def update_config(self, config: LogConfig) -> None:
        """Apply new topic settings; they take effect from the next append or retention run."""
        with self._lock:
            self._config = config

    @property
    def log_start_offset(self) -> int:
        return self._log_start_offset

    @property
    def log_end_offset(self) -> int:
        return self._segments[-1].next_offset

    @property
    def size_bytes(self) -> int:
        with self._lock:
            return sum(s.size for s in self._segments)

    @property
    def segment_count(self) -> int:
        return len(self._segments)

    def _check_writable(self) -> None:
        if self._closed:
            raise LogClosed(f"log {self.directory} is closed")
        if self._offline is not None:
            raise KafkaStorageError(f"log {self.directory} is offline: {self._offline}")

    # --- append / flush --------------------------------------------------------------------

    def append(self, batch: bytearray, leader_epoch: int = 0) -> AppendResult:
        """Append one validated batch, assigning it offsets from log_end_offset (in place).
        Does not fsync. Raises KafkaStorageError with the log unchanged if the write fails."""
        with self._lock:
            self._check_writable()
            header = parse_header(batch)
            if header.size != len(batch):
                raise InvalidRecordBatch(
                    ErrorCode.corrupt_message, "append takes exactly one whole record batch"
                )
            active = self._segments[-1]
            if self._should_roll(active, header):
                active = self._roll()
            base = active.next_offset
            assign_offsets(batch, base, leader_epoch)
            header = dataclasses.replace(
                header, base_offset=base, partition_leader_epoch=leader_epoch
            )
            position = active.append(batch, header)
            self._dirty[active.base_offset] = active
            return AppendResult(
                base_offset=base,
                last_offset=header.last_offset,
                max_timestamp=header.max_timestamp,
                log_start_offset=self._log_start_offset,
                segment_base_offset=active.base_offset,
                position=position,
                size=header.size,
            )

    def _should_roll(self, active: LogSegment, header: BatchHeader) -> bool:
        if active.size == 0:
            return False
        config = self._config
        if active.size + header.size > config.segment_bytes:
            return True
        if self._now_ms() - active.created_ms >= config.segment_ms - config.segment_jitter_ms:
            return True
        if active.next_offset + header.last_offset_delta - active.base_offset > MAX_RELATIVE_OFFSET:
            return True
        # Kafka rolls when the offset index file is full; ours grows, but keep the bound.
        return len(active.offset_index) * 8 >= config.segment_index_bytes

    def _roll(self) -> LogSegment:
        """Start a new active segment at the log end offset (caller holds `_lock`)."""
        old = self._segments[-1]
        try:
            new = LogSegment.create(
                self.directory,
                old.next_offset,
                self._config.index_interval_bytes,
                self._now_ms(),
                self._files,
            )
        except OSError as exc:
            stem = f"{old.next_offset:020d}"
            for suffix in (LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX):
                with contextlib.suppress(OSError):
                    (self.directory / (stem + suffix)).unlink(missing_ok=True)
            raise KafkaStorageError(f"cannot roll log {self.directory}: {exc}") from exc
        old.seal()
        self._dirty[old.base_offset] = old
        self._dirty[new.base_offset] = new
        self._dir_dirty = True
        self._segments.append(new)
        self._bases.append(new.base_offset)
        return new

    def flush(self) -> None:
        """fsync every segment written since the last flush (and the directory if segments
        were created). Everything appended before this call is durable when it returns."""
        with self._flush_lock:
            with self._lock:
                self._check_writable()
                dirty = list(self._dirty.values())
                self._dirty.clear()
                dir_dirty, self._dir_dirty = self._dir_dirty, False
                pending = [(seg, seg.pending_index_bytes()) for seg in dirty]
                # Every byte written so far is durable after the fsyncs below, so recovery need
                # not CRC-check it.
                active = self._segments[-1]
                flushed = (active.base_offset, active.size)
            try:
                for seg in dirty:
                    seg.sync()
                if dir_dirty:
                    self._fsync_directory()
            except FileUnavailable:
                # A file or the directory could not be opened (fd limit): no fsync failed, so
                # nothing is known lost. Keep everything dirty for the next flush; stay online.
                with self._lock:
                    for seg in dirty:
                        self._dirty.setdefault(seg.base_offset, seg)
                    self._dir_dirty = self._dir_dirty or dir_dirty
                raise
            except OSError as exc:
                with self._lock:
                    self._offline = f"fsync failed: {exc}"
                raise KafkaStorageError(f"flush of {self.directory} failed: {exc}") from exc
            self._flushed = max(self._flushed, flushed)
            if flushed[0] > self._recovery_point[0]:
                # After a roll: one extra fsync per segment, not per flush (the position inside
                # the active segment is checkpointed by checkpoint_recovery_point, on a timer).
                self._write_recovery_point()
            self._write_indexes(pending)

    def checkpoint_recovery_point(self) -> bool:
        """Record what the last flush made durable (if it moved), so that recovery after a
        crash CRC-checks only what was written since: Kafka's recovery-point checkpoint, taken
        every log.flush.offset.checkpoint.interval.ms, but down to the byte. Returns whether a
        file was written (two fsyncs)."""
        with self._flush_lock:
            if self._closed or self._flushed <= self._recovery_point:
                return False
            return self._write_recovery_point()

    def _write_recovery_point(self) -> bool:
        """Called with `_flush_lock` held. It is an optimisation (a stale recovery point means a
        longer scan), so failing it is not fatal."""
        base, position = point = self._flushed
        try:
            write_atomically(self.directory / RECOVERY_POINT_FILE, f"{base} {position}\n".encode())
        except OSError as exc:
            log.warning("log %s: cannot write recovery point: %s", self.directory, exc)
            return False
        self._recovery_point = point
        return True

    def _fsync_directory(self) -> None:
        """fsync_dir, telling a directory that cannot be opened (FileUnavailable) from a failed
        fsync (OSError)."""
        try:
            fd = os.open(self.directory, os.O_RDONLY)
        except OSError as exc:
            raise FileUnavailable(f"cannot open {self.directory}: {exc.strerror}") from exc
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _write_indexes(
        self, pending: list[tuple[LogSegment, tuple[tuple[bytes, int], tuple[bytes, int]]]]
    ) -> None:
        """Index files are caches: a failure to write them only costs a rebuild on open."""
        for seg, entries in pending:
            try:
                seg.write_indexes(entries)
            except OSError as exc:
                log.warning("log %s: cannot write index of %d: %s", self.directory,
                            seg.base_offset, exc)  # fmt: skip
                seg.offset_index.reset_file()
                seg.time_index.reset_file()

    # --- reads -----------------------------------------------------------------------------

    def _check_offset(self, offset: int) -> None:
        if offset < self._log_start_offset or offset > self.log_end_offset:
            raise OffsetOutOfRange(offset, self._log_start_offset, self.log_end_offset)

    def read(self, offset: int, max_bytes: int, *, min_one: bool = True) -> bytes:
        """Whole batches from the one containing `offset`, at most `max_bytes` of them, but at
        least one batch when `min_one` (KIP-74). b"" at the log end."""
        with self._lock:
            if self._closed:
                raise LogClosed(f"log {self.directory} is closed")
            self._check_offset(offset)
            if offset == self.log_end_offset:
                return b""
            i = max(0, bisect.bisect_right(self._bases, offset) - 1)
            for seg in self._segments[i:]:
                found = seg.find_batch(offset)
                if found is None:
                    continue
                position = found[0]
                end = seg.position_after(position, max_bytes, min_one=min_one)
                return seg.pread(position, end - position)
            return b""

    def batches_from(self, offset: int) -> Iterator[tuple[BatchHeader, bytes]]:
        """Every batch from the one containing `offset` (clamped to the log start) to the
        current end, for replaying state. Holds the lock only while reading each chunk."""
        next_offset = max(offset, self._log_start_offset)
        while next_offset < self.log_end_offset:
            try:
                data = self.read(next_offset, REPLAY_CHUNK)
            except OffsetOutOfRange:
                next_offset = self._log_start_offset  # retention moved the start under us
                continue
            if not data:
                return
            for pos, header in iter_batches(data):
                yield header, data[pos : pos + header.size]
                next_offset = header.next_offset

    def offset_for_timestamp(self, timestamp_ms: int) -> tuple[int, int] | None:
        """(offset, timestamp) of the first record at or after the log start whose timestamp
        is >= `timestamp_ms`; None when there is none (ListOffsets with a timestamp).

        Segment and batch MaxTimestamps and the time index pick the one batch that straddles
        the timestamp; only its records are read (find_by_timestamp: no objects, stops at the
        match), and outside the lock, so appends never wait behind a big batch's inflating."""
        after = -1  # the last offset of a batch already read without a match
        while True:
            with self._lock:
                start = self._log_start_offset
                found = self._batch_reaching(timestamp_ms, max(start, after + 1))
            if found is None:
                return None
            blob, header = found
            hit = find_by_timestamp(blob, timestamp_ms, min_offset=start)
            if hit is not None:
                return hit
            after = header.last_offset  # a MaxTimestamp above its records: look further

    def _batch_reaching(self, timestamp_ms: int, first: int) -> tuple[bytes, BatchHeader] | None:
        """The bytes and header of the first batch holding offsets >= `first` whose
        MaxTimestamp is >= `timestamp_ms`; the caller holds the lock."""
        for seg in self._segments:
            if seg.size == 0 or seg.max_timestamp < timestamp_ms or seg.next_offset <= first:
                continue
            from_offset = max(seg.time_index.lookup(timestamp_ms), first)
            _, position = seg.offset_index.lookup(from_offset)
            for pos, header, _, _ in seg.scan(position, verify=False):
                if header.max_timestamp >= timestamp_ms and header.last_offset >= from_offset:
                    return seg.pread(pos, header.size), header
        return None

    def max_timestamp(self) -> tuple[int, int] | None:
        """(offset, timestamp) of the first record carrying the largest timestamp
        (ListOffsets MAX_TIMESTAMP, -3); None for an empty log. Reads that batch's records
        outside the lock, as `offset_for_timestamp`."""
        with self._lock:
            best: LogSegment | None = None
            for seg in self._segments:
                if seg.size and (best is None or seg.max_timestamp > best.max_timestamp):
                    best = seg
            if best is None:
                return None
            largest = best.max_timestamp
            found = best.find_batch(best.offset_of_max_timestamp)
            if found is None:
                return None
            pos, header = found
            blob = best.pread(pos, header.size)
        hit = find_by_timestamp(blob, largest, exact=True)
        return hit if hit is not None else (header.base_offset, header.max_timestamp)

    # --- segment replacement (compaction: see the module docstring) --------------------------

    def summaries(self) -> tuple[LogConfig, list[SegmentSummary]] | None:
        """The config and every segment's in-memory summary (the last one active); None when
        the log is closed or offline. No file is read."""
        with self._lock:
            if self._closed or self._offline is not None:
                return None
            return self._config, [
                SegmentSummary(s.base_offset, s.next_offset, s.size, s.max_timestamp, s.created_ms)
                for s in self._segments
            ]

    def segment_first_timestamp(self, segment_base: int) -> int | None:
        """BaseTimestamp of the first batch of the segment starting at `segment_base`; None
        if there is no such segment any more, or it is empty."""
        with self._lock:
            i = bisect.bisect_left(self._bases, segment_base)
            if self._closed or i == len(self._bases) or self._bases[i] != segment_base:
                return None
            head = self._segments[i].pread(0, HEADER_SIZE)
        if len(head) < HEADER_SIZE:
            return None
        return BatchHeader(*HEADER.unpack_from(head)).base_timestamp

    def snapshot(self) -> LogSnapshot | None:
        """Every segment as it is now, each with a reader of its own that stays readable
        whatever happens to the log meanwhile; None when the log is closed or offline. The
        caller closes it. Raises OSError (no descriptor free) with nothing left open."""
        readers: list[SegmentReader] = []
        with self._lock:
            if self._closed or self._offline is not None:
                return None
            try:
                for seg in self._segments:
                    readers.append(SegmentReader.open(seg))
            except OSError:
                for reader in readers:
                    reader.close()
                raise
            return LogSnapshot(readers, self._config, self._log_start_offset)

    def begin_replacement(self, base: int, end: int, created_ms: int) -> SegmentReplacement:
        """A new, empty segment at `base` to replace the segments with base offsets in
        [base, end), written as `<base>-<end>.log.cleaned` (recovery.py rolls that back after
        a crash) and opened in this log's descriptor cache, held open until `finish()`."""
        path = self.directory / replacement_name(base, end)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
        try:
            segment = LogSegment.adopt_file(
                self.directory, base, self._config.index_interval_bytes, created_ms, fd,
                self._files,
            )  # fmt: skip
        except BaseException:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        return SegmentReplacement(segment, end, path, fd)

    def replace_segments(self, olds: list[LogSegment], new: SegmentReplacement) -> bool:
        """Atomically replace the run of sealed segments `olds` by `new` (finished), on disk
        and in memory; the caller then owns nothing (`new` belongs to the log). False, with
        nothing changed (the caller discards `new`), if `olds` are no longer a run of this
        log's sealed segments (retention, DeleteRecords or close ran meanwhile), if `new`'s
        range [base, end) does not cover exactly them, or if the log is offline.
        Crash-safe: the rename to `.swap` is the commit point (recovery.py). If a rename or
        fsync fails after it, the log goes offline and OSError is raised: reopening it
        completes the swap."""
        swap = new.path.with_name(new.path.name[: -len(CLEANED_SUFFIX)] + SWAP_SUFFIX)
        with self._flush_lock, self._lock:
            segments = self._segments
            at = next((i for i, s in enumerate(segments) if olds and s is olds[0]), None)
            if (
                self._closed
                or self._offline is not None
                or at is None
                or at + len(olds) >= len(segments)  # never the active segment
                or any(a is not b for a, b in zip(segments[at : at + len(olds)], olds, strict=True))
                # Recovery after a crash deletes the segments its name's range covers: exactly
                # `olds`, never the segment after them.
                or new.base_offset != olds[0].base_offset
                or not olds[-1].base_offset < new.end <= segments[at + len(olds)].base_offset
            ):
                return False
            os.replace(new.path, swap)
            try:
                fsync_dir(self.directory)  # the commit point: from here recovery rolls forward
                for seg in olds:
                    seg.delete()
                    self._dirty.pop(seg.base_offset, None)
                os.replace(swap, new.segment.log_path)
                fsync_dir(self.directory)
            except OSError as exc:
                # Memory no longer matches the files; reopening the log completes the swap.
                self._offline = f"compaction swap failed: {exc}"
                log.error("log %s: compaction swap failed, log offline: %s", self.directory, exc)
                raise
            segments[at : at + len(olds)] = [new.segment]
            self._bases[at : at + len(olds)] = [new.base_offset]
            self._dirty[new.base_offset] = new.segment  # the next flush writes its index files
            return True

    # --- retention -------------------------------------------------------------------------

    def enforce_retention(self, now_ms: int, durable_end: int | None = None) -> int:
        """Delete whole segments past retention.ms (by their max timestamp) or while the log
        exceeds retention.bytes, and any segment wholly below the log start offset. Returns how
        many were deleted.

        The active segment is included, as in Kafka (UnifiedLog.deletableSegments), when it
        holds records and all of them are below `durable_end` (the partition's high watermark):
        a new empty segment is rolled first, since a log always keeps one. Without it a quiet
        topic, which never fills a segment, would keep its records forever."""
        with self._flush_lock, self._lock:
            if self._closed:
                return 0
            config = self._config
            doomed = 0
            if config.delete:
                active = self._segments[-1]
                candidates = self._segments
                if active.size == 0 or durable_end is None or active.next_offset > durable_end:
                    candidates = self._segments[:-1]
                total = sum(s.size for s in self._segments)
                for seg in candidates:
                    # A segment without timestamps ages from when it was opened or created.
                    newest = seg.max_timestamp if seg.max_timestamp >= 0 else seg.created_ms
                    expired = config.retention_ms >= 0 and now_ms - newest > config.retention_ms
                    oversize = config.retention_bytes >= 0 and (
                        total - seg.size >= config.retention_bytes
                    )
                    if not (expired or oversize):
                        break
                    total -= seg.size
                    doomed += 1
                if doomed == len(self._segments):
                    self._roll()
            return self._delete_first(doomed, self._segments[doomed].base_offset)

    def delete_records_before(self, offset: int) -> int:
        """Raise the log start offset to `offset` (DeleteRecords) and delete the segments it
        covers wholly; returns how many were deleted. An offset at or below the start is a
        no-op; beyond the log end raises OffsetOutOfRange."""
        with self._flush_lock, self._lock:
            self._check_writable()
            if offset > self.log_end_offset:
                raise OffsetOutOfRange(offset, self._log_start_offset, self.log_end_offset)
            if offset <= self._log_start_offset:  # Kafka: a no-op, not an error
                return 0
            doomed = 0
            for seg in self._segments[:-1]:
                if seg.next_offset > offset:
                    break
                doomed += 1
            count = self._delete_first(doomed, offset)
            write_atomically(self.directory / LOG_START_OFFSET_FILE, f"{offset}\n".encode())
            return count

    def _delete_first(self, count: int, new_start: int) -> int:
        """Delete the first `count` segments (never the active one) and raise the log start
        offset to `new_start`; caller holds both locks."""
        for seg in self._segments[:count]:
            seg.delete()
            self._dirty.pop(seg.base_offset, None)
        del self._segments[:count]
        del self._bases[:count]
        self._log_start_offset = max(self._log_start_offset, new_start)
        if count:
            log.info("log %s: deleted %d segment(s); log start offset %d",
                     self.directory, count, self._log_start_offset)  # fmt: skip
        return count

    # --- lifecycle -------------------------------------------------------------------------

    def close(self, *, mark_clean: bool = True) -> bool:
        """Flush, write index files and (`mark_clean`) the clean-shutdown marker, close every
        file. Returns whether the close was clean: everything durable and the indexes written,
        so the next `open` may trust them. A LogManager passes `mark_clean=False` and records
        that answer in one marker for all its logs (a marker per log costs a directory fsync
        per partition at every stop and start: minutes at 50,000 partitions)."""
        with self._flush_lock, self._lock:
            if self._closed:
                return False
            self._closed = True
            clean = self._offline is None
            try:
                if clean:
                    for seg in self._segments:
                        seg.sync()
                    pending = [(s, s.pending_index_bytes()) for s in self._segments]
                    self._write_indexes(pending)
                    if mark_clean:
                        (self.directory / CLEAN_SHUTDOWN_FILE).touch()
                        fsync_dir(self.directory)
            except (OSError, FileUnavailable) as exc:
                log.warning("log %s: unclean close: %s", self.directory, exc)
                clean = False
            finally:
                for seg in self._segments:
                    seg.close()
            return clean

    def discard(self) -> None:
        """Close every file without flushing or marking a clean shutdown (the caller is about
        to remove the directory)."""
        with self._flush_lock, self._lock:
            self._closed = True
            for seg in self._segments:
                seg.close()

    def delete(self) -> None:
        """Close without flushing and remove the directory."""
        self.discard()
        shutil.rmtree(self.directory, ignore_errors=True)

    def check_invariants(self) -> None:
        """Assert segment invariants and that segments continue each other (tests)."""
        with self._lock:
            for seg in self._segments:
                seg.check_invariants()
            for a, b in zip(self._segments, self._segments[1:], strict=False):
                # A gap is allowed: compaction, or damage recovery set aside (module docstring).
                assert b.base_offset >= a.next_offset, "segments do not overlap"
            assert self._log_start_offset <= self.log_end_offset
