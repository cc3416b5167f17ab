"""Log compaction (`cleanup.policy=compact`): Kafka's log cleaner for one PartitionLog, and a
driver that cleans the dirtiest compacted logs of a LogManager.

What a cleaning does (Kafka's Cleaner.java, LogCleaner.scala):
  1. The *cleanable* range is the sealed segments from the log start up to the first of: the
     active segment, the first segment holding a record younger than min.compaction.lag.ms, the
     segment holding the first offset of a still-open transaction. Its part from the cleaner
     checkpoint on is *dirty*; a log is cleaned when dirty/cleanable bytes reaches
     min.cleanable.dirty.ratio, or its oldest dirty batch is older than max.compaction.lag.ms.
  2. A key -> latest offset map is built over the dirty part (aborted transactional records and
     control batches never enter it). The part before the checkpoint is already compacted, so
     its records are superseded only by dirty ones.
  3. The cleanable segments are rewritten in groups of at most segment.bytes, keeping:
       * a record if it is the latest for its key; a record without a key is dropped (Kafka
         rejects them on produce, but a topic switched from delete to compact may hold some);
       * a tombstone (null value) until its batch's delete horizon has passed. The first cleaning
         that keeps a tombstone stamps its batch with horizon = now + delete.retention.ms
         (KIP-534: attribute bit 6, BaseTimestamp holds the horizon);
       * nothing of an aborted transaction: whether a transactional batch was aborted is read
         from the log itself (the producer's next marker), so no broker state is needed;
       * a COMMIT marker until none of its transaction's data is left, then until its horizon
         has passed (stamped the same way). ABORT markers are kept: the broker's aborted-txn
         index (txn_index.py, owned by the broker) would still list the transaction, and a
         read_committed consumer told about it but never shown its marker would drop that
         producer's later records;
       * an emptied batch as a header-only batch (first/last offset, producer id, epoch and
         sequence preserved, zero records) when it is the last batch of a producer that has not
         expired, so producer state rebuilt by replay still knows the producer's last sequence.
     A batch that loses nothing (and needs no new horizon) is copied byte for byte; otherwise it
     is re-encoded with its original base offset, last offset delta, producer fields, leader
     epoch and codec. Offsets never change: compaction leaves gaps, which readers skip.

Files (in the partition directory, next to the segments):

    cleaner-offset                        decimal text, written atomically: the first dirty
                                          offset. Its presence also means "this log has been
                                          compacted, so offsets may have gaps" (see recover).
    <base>-<end>.log.cleaned              a group's rewritten segment, being written
    <base>-<end>.log.swap                 the same file once complete and fsynced: it replaces
                                          every segment with a base offset in [base, end)

Crash behaviour: the rename `.cleaned` -> `.swap` (then fsync of the directory) is the commit
point of one group. After it the old segments are deleted and `.swap` is renamed to
`<base>.log`. `recover_interrupted()`, called by PartitionLog.open before it scans the
directory, deletes every `.cleaned` file (roll back: the old segments are intact) and completes
every `.swap` (roll forward: delete the segment files in its range, which may already be gone,
then rename it). Both steps are idempotent, so a crash during recovery is recovered the same way.
The checkpoint is only a hint: a stale one costs a re-cleaning, never data.

Concurrency: cleaning runs in a worker thread while the broker appends and reads. The cleaner
reads segment files through its own file descriptors (opened under the log's `_lock`, so the
files exist then; an unlinked file stays readable), does every read and write without holding
the log's locks, and takes `_flush_lock` then `_lock` (log.py's order) only to swap a group in:
there it checks that the group's segments are still the log's (retention or DeleteRecords may
have deleted some, `close` may have run) and otherwise abandons the group. The active segment is
never rewritten, so appends are never blocked by more than a swap (renames and deletes, no data
copying). One cleaning at a time per log: LogCleaner serialises its runs.
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import os
import re
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

from klamm.protocol.compression import Compression
from klamm.protocol.errors import InvalidRecordBatch
from klamm.protocol.record_batch import (
    ATTR_DELETE_HORIZON,
    CONTROL_ABORT,
    CONTROL_COMMIT,
    HEADER,
    HEADER_SIZE,
    BatchHeader,
    Record,
    batch_with_header,
    build_batch,
    control_type,
    decode_batch,
)
from klamm.storage.config import LONG_MAX, LogConfig
from klamm.storage.errors import StorageError
from klamm.storage.log import (
    CLEANER_OFFSET_FILE,
    MAX_RELATIVE_OFFSET,
    fsync_dir,
    write_atomically,
)
from klamm.storage.segment import (
    LOG_SUFFIX,
    LogSegment,
    segment_name,
)

if TYPE_CHECKING:
    from klamm.storage.log import PartitionLog
    from klamm.storage.log_manager import LogManager

__all__ = [
    "CLEANER_OFFSET_FILE",
    "CleanResult",
    "Cleaner",
    "CleanerStats",
    "LogCleaner",
    "recover_interrupted",
]

log = logging.getLogger("klamm.storage.cleaner")

CLEANED_SUFFIX = ".log.cleaned"
SWAP_SUFFIX = ".log.swap"
_TEMP_FILE = re.compile(r"^(\d{20})-(\d{20})\.log\.(cleaned|swap)$")
_SEGMENT_FILE = re.compile(r"^(\d{20})\.(log|index|timeindex|txnindex)$")

# Kafka's producer.id.expiration.ms default (1 day): a producer silent for longer is forgotten by
# the broker, so its last batch no longer needs to be kept for its producer state.
DEFAULT_PRODUCER_EXPIRATION_MS = 86_400_000
# Keys in one cleaning's offset map. Kafka bounds the map by log.cleaner.dedupe.buffer.size
# (128 MiB); a Python dict entry with a short key costs ~100-200 bytes, so a million keys is the
# same order of memory. When the map fills, the cleaning stops after that segment and the rest
# stays dirty for the next run.
DEFAULT_MAX_MAP_KEYS = 1_000_000
# Reads of segment files step this much at a time: big enough that per-batch work dominates,
# small enough to keep memory flat on a 1 GiB segment.
READ_CHUNK = 1 << 20
_CRC = struct.Struct(">I")  # the batch CRC field, at byte 17


# --- recovery (called from PartitionLog.open) ------------------------------------------------


def recover_interrupted(directory: Path) -> bool:
    """Finish or roll back a compaction interrupted by a crash (see the module docstring).
    Returns True if the log has ever been compacted, i.e. its offsets may have gaps."""
    compacted = (directory / CLEANER_OFFSET_FILE).exists()
    temps: list[tuple[int, int, str, Path]] = []
    segment_files: list[tuple[int, Path]] = []
    for path in directory.iterdir():
        match = _TEMP_FILE.match(path.name)
        if match is not None:
            temps.append((int(match.group(1)), int(match.group(2)), match.group(3), path))
            continue
        seg = _SEGMENT_FILE.match(path.name)
        if seg is not None:
            segment_files.append((int(seg.group(1)), path))
    changed = False
    for base, end, kind, path in sorted(temps):
        changed = True
        if kind == "cleaned":
            log.info(
                "log %s: rolling back interrupted compaction of [%d, %d)", directory, base, end
            )
            path.unlink(missing_ok=True)
            continue
        log.info("log %s: completing interrupted compaction of [%d, %d)", directory, base, end)
        compacted = True
        for seg_base, seg_path in segment_files:
            if base <= seg_base < end:
                seg_path.unlink(missing_ok=True)
        os.replace(path, directory / (segment_name(base) + LOG_SUFFIX))
    if changed:
        fsync_dir(directory)
    return compacted


# --- results ---------------------------------------------------------------------------------


@dataclass(slots=True)
class CleanResult:
    """What one cleaning of one log did."""

    directory: Path
    first_dirty: int
    cleaned_to: int  # the next cleaning's first dirty offset
    segments_before: int = 0
    segments_after: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    records_removed: int = 0
    tombstones_removed: int = 0
    markers_removed: int = 0
    batches_removed: int = 0
    groups_abandoned: int = 0  # the log changed under the cleaner; retried next run

    @property
    def removed_data(self) -> bool:
        return bool(self.records_removed or self.markers_removed or self.batches_removed)


@dataclass(slots=True)
class CleanerStats:
    """One LogCleaner.clean_all run: a result per log cleaned, plus the failures."""

    results: list[CleanResult] = field(default_factory=list)
    failed: list[Path] = field(default_factory=list)

    @property
    def logs_cleaned(self) -> int:
        return len(self.results)

    @property
    def bytes_reclaimed(self) -> int:
        return sum(r.bytes_before - r.bytes_after for r in self.results)

    @property
    def records_removed(self) -> int:
        return sum(r.records_removed for r in self.results)


# --- snapshot of a log -----------------------------------------------------------------------


@dataclass(slots=True)
class _SegmentView:
    """One segment as it was when the cleaning started, read through the cleaner's own fd."""

    segment: LogSegment
    base_offset: int
    next_offset: int
    size: int
    max_timestamp: int
    created_ms: int
    fd: int

    def batches(self) -> Iterator[tuple[BatchHeader, bytes]]:
        """Every whole batch in [0, size), with its bytes."""
        pos = 0
        buf = b""
        buf_start = 0
        while self.size - pos >= HEADER_SIZE:
            rel = pos - buf_start
            if len(buf) - rel < HEADER_SIZE:
                buf = os.pread(self.fd, min(READ_CHUNK, self.size - pos), pos)
                buf_start, rel = pos, 0
                if len(buf) < HEADER_SIZE:
                    return
            header = BatchHeader(*HEADER.unpack_from(buf, rel))
            if header.size < HEADER_SIZE or pos + header.size > self.size:
                return  # cannot happen below the size the log reported; stop, never guess
            if rel + header.size > len(buf):
                buf = os.pread(self.fd, max(min(READ_CHUNK, self.size - pos), header.size), pos)
                buf_start, rel = pos, 0
            yield header, buf[rel : rel + header.size]
            pos += header.size

    def first_timestamp(self) -> int:
        head = os.pread(self.fd, HEADER_SIZE, 0)
        if len(head) < HEADER_SIZE:
            return -1
        return BatchHeader(*HEADER.unpack_from(head)).base_timestamp


def _snapshot(plog: PartitionLog) -> tuple[list[_SegmentView], LogConfig, int] | None:
    """Views of every segment (the last one active) with fds of our own; None if closed."""
    views: list[_SegmentView] = []
    with plog._lock:
        if plog._closed or plog._offline is not None:
            return None
        try:
            for seg in plog._segments:
                fd = os.open(seg.log_path, os.O_RDONLY)
                views.append(
                    _SegmentView(
                        seg, seg.base_offset, seg.next_offset, seg.size, seg.max_timestamp,
                        seg.created_ms, fd,
                    )
                )  # fmt: skip
        except OSError:
            _close_views(views)
            raise
        return views, plog._config, plog.log_start_offset


def _close_views(views: list[_SegmentView]) -> None:
    for view in views:
        with contextlib.suppress(OSError):
            os.close(view.fd)


def _read_checkpoint(directory: Path) -> int | None:
    try:
        return int((directory / CLEANER_OFFSET_FILE).read_text().strip())
    except (FileNotFoundError, ValueError, UnicodeDecodeError):
        return None


# --- transactions, read from the log ---------------------------------------------------------


@dataclass(slots=True)
class _TxnFacts:
    """What a header scan of the whole log says about producers and transactions."""

    # producer id -> (offset of its last batch, that batch's max timestamp)
    last_batch: dict[int, tuple[int, int]] = field(default_factory=dict)
    # producer id -> sorted (first offset, marker offset) of its aborted transactions
    aborted: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    first_unstable: int | None = None  # first offset of the earliest still-open transaction

    def is_aborted(self, header: BatchHeader) -> bool:
        ranges = self.aborted.get(header.producer_id)
        if not ranges:
            return False
        i = bisect.bisect_right(ranges, (header.base_offset, 2**63)) - 1
        return i >= 0 and ranges[i][0] <= header.base_offset <= ranges[i][1]


def _scan_transactions(views: list[_SegmentView]) -> _TxnFacts:
    facts = _TxnFacts()
    open_txns: dict[int, int] = {}
    for view in views:
        for header, blob in view.batches():
            pid = header.producer_id
            if pid < 0:
                continue
            facts.last_batch[pid] = (header.last_offset, header.max_timestamp)
            if not header.is_transactional:
                continue
            if not header.is_control:
                open_txns.setdefault(pid, header.base_offset)
                continue
            first = open_txns.pop(pid, None)
            if first is not None and _control_kind(blob) == CONTROL_ABORT:
                facts.aborted.setdefault(pid, []).append((first, header.base_offset))
    if open_txns:
        facts.first_unstable = min(open_txns.values())
    return facts


def _control_kind(blob: bytes) -> int:
    try:
        return control_type(decode_batch(blob))
    except (InvalidRecordBatch, IndexError):
        return -1  # unreadable marker: treated as neither kind, so it is kept


# --- re-encoding -----------------------------------------------------------------------------


def _encode(header: BatchHeader, records: list[Record], horizon: int | None) -> bytes:
    """`header`'s batch holding only `records`: base offset, last offset delta, producer
    fields, leader epoch, timestamp type and codec kept (Kafka's buildRetainedRecordsInto).
    With a delete horizon, BaseTimestamp is the horizon. Without records it is Kafka's empty
    header-only batch (uncompressed)."""
    batch = batch_with_header(header, records)
    return build_batch(
        replace(
            batch,
            compression=batch.compression if records else Compression.NONE,
            max_timestamp=header.max_timestamp if batch.log_append_time or not records else None,
            delete_horizon_ms=horizon,
        )
    )


# --- the cleaning of one log -----------------------------------------------------------------


@dataclass(slots=True)
class _Pass:
    """State of one cleaning pass, carried from batch to batch and group to group."""

    config: LogConfig
    now_ms: int
    offset_map: dict[bytes, int]
    facts: _TxnFacts
    producer_expiration_ms: int
    result: CleanResult
    # producer id -> whether data of its current transaction survived this pass (so its marker
    # must stay: replaying data without a marker would leave the transaction open)
    txn_kept: dict[int, bool] = field(default_factory=dict)
    next_horizon: int | None = None  # earliest delete horizon still pending after this pass

    def is_live_producers_last(self, header: BatchHeader) -> bool:
        last = self.facts.last_batch.get(header.producer_id)
        return (
            last is not None
            and last[0] == header.last_offset
            and self.now_ms - last[1] < self.producer_expiration_ms
        )

    def note_horizon(self, horizon: int) -> None:
        if self.next_horizon is None or horizon < self.next_horizon:
            self.next_horizon = horizon


class Cleaner:
    """Compacts PartitionLogs (see the module docstring). Thread-safe across different logs;
    LogCleaner runs one cleaning at a time."""

    def __init__(
        self,
        *,
        producer_expiration_ms: int = DEFAULT_PRODUCER_EXPIRATION_MS,
        max_map_keys: int = DEFAULT_MAX_MAP_KEYS,
    ) -> None:
        self._producer_expiration_ms = producer_expiration_ms
        self._max_map_keys = max_map_keys
        # log directory -> earliest delete horizon left by its last cleaning: the log is due again
        # then, even without new dirty data, so expired tombstones do not linger (KIP-534).
        self._horizons: dict[Path, int] = {}
        self._horizons_lock = threading.Lock()

    # --- is a log due? -----------------------------------------------------------------------

    def priority(self, plog: PartitionLog, now_ms: int) -> float | None:
        """The log's dirty ratio if it is due for cleaning (infinity when max.compaction.lag.ms
        or a passed delete horizon forces it), else None. Reads only in-memory sizes and at most
        one batch header."""
        checkpoint = _read_checkpoint(plog.directory)
        with plog._lock:
            config = plog._config
            if plog._closed or plog._offline is not None or not config.compact:
                return None
            cleanable = _lag_bound(plog._segments[:-1], config, now_ms)
            if not cleanable:
                return None
            first_dirty = _first_dirty(checkpoint, cleanable[0].base_offset, plog.log_end_offset)
            dirty = [s for s in cleanable if s.next_offset > first_dirty]
            forced = False
            if dirty and config.max_compaction_lag_ms < LONG_MAX:
                head = dirty[0].pread(0, HEADER_SIZE)
                if len(head) == HEADER_SIZE:
                    first_ts = BatchHeader(*HEADER.unpack_from(head)).base_timestamp
                    forced = 0 <= first_ts < now_ms - config.max_compaction_lag_ms
            total = sum(s.size for s in cleanable)
            dirty_bytes = sum(s.size for s in dirty)
        with self._horizons_lock:
            horizon = self._horizons.get(plog.directory)
        if forced or (horizon is not None and horizon <= now_ms):
            return float("inf")
        if not dirty_bytes or not total:
            return None
        ratio = dirty_bytes / total
        return ratio if ratio >= config.min_cleanable_dirty_ratio else None

    # --- cleaning ------------------------------------------------------------------------------

    def clean(self, plog: PartitionLog, now_ms: int) -> CleanResult | None:
        """Compact whatever part of the log is cleanable now, whatever its dirty ratio. None if
        there is nothing cleanable (or the log is closed, or not compacted). Raises OSError,
        StorageError or InvalidRecordBatch (a corrupt batch) with the log unchanged or
        consistently swapped."""
        checkpoint = _read_checkpoint(plog.directory)
        snap = _snapshot(plog)
        if snap is None:
            return None
        views, config, _ = snap
        if not config.compact:
            _close_views(views)
            return None
        try:
            return self._clean(plog, views, config, now_ms, checkpoint)
        finally:
            _close_views(views)

    def _clean(
        self,
        plog: PartitionLog,
        views: list[_SegmentView],
        config: LogConfig,
        now_ms: int,
        checkpoint: int | None,
    ) -> CleanResult | None:
        cleanable = _lag_bound(views[:-1], config, now_ms)
        facts = _scan_transactions(views)
        if facts.first_unstable is not None:
            # Data of an open transaction may still be aborted: stop before its segment.
            bound = facts.first_unstable
            cleanable = [v for v in cleanable if v.next_offset <= bound]
            while cleanable and cleanable[-1].next_offset > bound:
                cleanable.pop()
        if not cleanable:
            return None
        first_dirty = _first_dirty(checkpoint, cleanable[0].base_offset, views[-1].next_offset)
        offset_map, cleanable = self._build_map(cleanable, first_dirty, facts)
        end = views[len(cleanable)].base_offset
        result = CleanResult(plog.directory, first_dirty, end)
        state = _Pass(config, now_ms, offset_map, facts, self._producer_expiration_ms, result)
        if checkpoint is None:
            # Before the first swap: from now on the log may have gaps, and recovery must know.
            write_atomically(plog.directory / CLEANER_OFFSET_FILE, f"{first_dirty}\n".encode())
        groups = _group(cleanable, config)
        for i, group in enumerate(groups):
            group_end = groups[i + 1][0].base_offset if i + 1 < len(groups) else end
            self._clean_group(plog, group, group_end, state)
        if not result.groups_abandoned:
            try:
                write_atomically(plog.directory / CLEANER_OFFSET_FILE, f"{end}\n".encode())
            except OSError as exc:  # a stale checkpoint only costs a re-cleaning
                log.warning("log %s: cannot write cleaner checkpoint: %s", plog.directory, exc)
        with self._horizons_lock:
            if state.next_horizon is None:
                self._horizons.pop(plog.directory, None)
            else:
                self._horizons[plog.directory] = state.next_horizon
        log.info(
            "log %s: compacted [%d, %d): %d -> %d bytes, %d records and %d markers removed",
            plog.directory, cleanable[0].base_offset, end, result.bytes_before,
            result.bytes_after, result.records_removed, result.markers_removed,
        )  # fmt: skip
        return result

    def _build_map(
        self, cleanable: list[_SegmentView], first_dirty: int, facts: _TxnFacts
    ) -> tuple[dict[bytes, int], list[_SegmentView]]:
        """Key -> offset of its latest record in the dirty part. When the map fills, the
        cleanable range ends after the segment that filled it (at least one dirty segment)."""
        offset_map: dict[bytes, int] = {}
        for i, view in enumerate(cleanable):
            if view.next_offset <= first_dirty:
                continue
            for header, blob in view.batches():
                if header.last_offset < first_dirty or header.is_control:
                    continue
                if header.is_transactional and facts.is_aborted(header):
                    continue
                for record in decode_batch(blob).records:
                    if record.key is not None and record.offset >= first_dirty:
                        offset_map[record.key] = record.offset
            if len(offset_map) >= self._max_map_keys and i + 1 < len(cleanable):
                return offset_map, cleanable[: i + 1]
        return offset_map, cleanable

    def _clean_group(
        self, plog: PartitionLog, group: list[_SegmentView], end: int, state: _Pass
    ) -> None:
        """Rewrite one group into `<base>-<end>.log.cleaned` and swap it in (or drop the file
        if nothing would change)."""
        result = state.result
        base = group[0].base_offset
        before = sum(v.size for v in group)
        result.segments_before += len(group)
        result.bytes_before += before
        path = plog.directory / f"{segment_name(base)}-{segment_name(end)}{CLEANED_SUFFIX}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
        # The rewritten segment is built in memory as it is written, through this fd; the file
        # takes the segment's own name at the swap.
        new = LogSegment.adopt_file(
            plog.directory, base, state.config.index_interval_bytes, group[0].created_ms, fd,
            plog.segment_files,
        )  # fmt: skip
        swapped = False
        try:
            changed = len(group) > 1
            for view in group:
                for header, blob in view.batches():
                    out = self._filter(header, blob, state)
                    if out is not blob:
                        changed = True
                    if out is not None:
                        new.append(out, BatchHeader(*HEADER.unpack_from(out)))
            if not changed:
                result.segments_after += 1
                result.bytes_after += before
                return
            os.fsync(fd)
            new.seal()
            swapped = self._swap(plog, group, new, path)
            if swapped:
                result.segments_after += 1
                result.bytes_after += new.size
            else:
                result.groups_abandoned += 1
                result.segments_after += len(group)
                result.bytes_after += before
        finally:
            if not swapped:
                new.close()
                path.unlink(missing_ok=True)

    def _filter(self, header: BatchHeader, blob: bytes, state: _Pass) -> bytes | None:
        """The batch to write in place of `blob`: `blob` itself when nothing changes, a
        re-encoded batch, or None to drop it."""
        if header.is_control:
            return self._filter_marker(header, blob, state)
        result = state.result
        keep_empty = header.producer_id >= 0 and state.is_live_producers_last(header)
        has_horizon = bool(header.attributes & ATTR_DELETE_HORIZON)
        if header.is_transactional and state.facts.is_aborted(header):
            kept: list[Record] = []
            removed = header.records_count
            tombstones = False
        else:
            records = decode_batch(blob).records
            horizon_passed = has_horizon and header.base_timestamp <= state.now_ms
            kept = []
            tombstones = False
            for record in records:
                if record.key is None:
                    continue
                latest = state.offset_map.get(record.key)
                if latest is not None and record.offset < latest:
                    continue
                if record.value is None:
                    if horizon_passed:
                        result.tombstones_removed += 1
                        continue
                    tombstones = True
                kept.append(record)
            removed = len(records) - len(kept)
        result.records_removed += removed
        if not kept and not keep_empty:
            result.batches_removed += 1
            return None
        out: bytes
        if not removed and (not tombstones or has_horizon):
            out = blob  # byte for byte (also an already empty batch that must stay)
        elif kept:
            horizon: int | None = None
            if has_horizon:
                horizon = header.base_timestamp
            elif tombstones:
                horizon = state.now_ms + state.config.delete_retention_ms
            out = _encode(header, kept, horizon)
        else:
            out = _encode(header, [], None)
        if tombstones:
            state.note_horizon(
                header.base_timestamp
                if has_horizon
                else state.now_ms + state.config.delete_retention_ms
            )
        if header.is_transactional:
            state.txn_kept[header.producer_id] = True
        return out

    def _filter_marker(self, header: BatchHeader, blob: bytes, state: _Pass) -> bytes | None:
        """A COMMIT marker goes once its transaction has no data left and its horizon has
        passed; any other control batch stays (see the module docstring on ABORT markers)."""
        had_data = state.txn_kept.pop(header.producer_id, False)
        if had_data or _control_kind(blob) != CONTROL_COMMIT:
            return blob
        if state.is_live_producers_last(header):
            return blob  # the producer's state is rebuilt from it
        if header.attributes & ATTR_DELETE_HORIZON:
            if header.base_timestamp <= state.now_ms:
                state.result.markers_removed += 1
                state.result.batches_removed += 1
                return None
            state.note_horizon(header.base_timestamp)
            return blob
        horizon = state.now_ms + state.config.delete_retention_ms
        state.note_horizon(horizon)
        return _encode(header, decode_batch(blob).records, horizon)

    def _swap(
        self, plog: PartitionLog, group: list[_SegmentView], new: LogSegment, path: Path
    ) -> bool:
        """Replace the group's segments by `new` (whose file is `path`), on disk and in the log.
        False, with nothing changed, if the group's segments are no longer the log's."""
        olds = [view.segment for view in group]
        swap = path.with_name(path.name[: -len(CLEANED_SUFFIX)] + SWAP_SUFFIX)
        directory = plog.directory
        with plog._flush_lock, plog._lock:
            segments = plog._segments
            at = next((i for i, s in enumerate(segments) if s is olds[0]), None)
            if (
                plog._closed
                or plog._offline is not None
                or at is None
                or at + len(olds) >= len(segments)  # never the active segment
                or any(a is not b for a, b in zip(segments[at : at + len(olds)], olds, strict=True))
            ):
                return False
            os.replace(path, swap)
            try:
                fsync_dir(directory)  # the commit point: from here recovery rolls forward
                for seg in olds:
                    seg.delete()
                    plog._dirty.pop(seg.base_offset, None)
                os.replace(swap, new.log_path)
                fsync_dir(directory)
            except OSError as exc:
                # Memory no longer matches the files; reopening the log completes the swap.
                plog._offline = f"compaction swap failed: {exc}"
                log.error("log %s: compaction swap failed, log offline: %s", directory, exc)
                raise
            segments[at : at + len(olds)] = [new]
            plog._bases[at : at + len(olds)] = [new.base_offset]
            plog._dirty[new.base_offset] = new  # the next flush writes its index files
            return True


class _Aged(Protocol):
    max_timestamp: int
    created_ms: int


_S = TypeVar("_S", bound=_Aged)


def _lag_bound(segments: list[_S], config: LogConfig, now_ms: int) -> list[_S]:
    """The leading sealed segments old enough for min.compaction.lag.ms."""
    if config.min_compaction_lag_ms <= 0:
        return list(segments)
    out: list[_S] = []
    for seg in segments:
        newest = seg.max_timestamp if seg.max_timestamp >= 0 else seg.created_ms
        if now_ms - newest < config.min_compaction_lag_ms:
            break
        out.append(seg)
    return out


def _first_dirty(checkpoint: int | None, first_base: int, log_end: int) -> int:
    """The checkpoint, unless it is missing, below the log start or beyond the log end (the
    log was recreated or truncated): then everything is dirty."""
    if checkpoint is None or checkpoint > log_end:
        return first_base
    return max(checkpoint, first_base)


def _group(cleanable: list[_SegmentView], config: LogConfig) -> list[list[_SegmentView]]:
    """Consecutive segments whose total size fits segment.bytes and whose offsets fit a
    segment's relative-offset range become one rewritten segment."""
    groups: list[list[_SegmentView]] = []
    current: list[_SegmentView] = []
    size = 0
    for view in cleanable:
        if current and (
            size + view.size > config.segment_bytes
            or view.next_offset - 1 - current[0].base_offset > MAX_RELATIVE_OFFSET
        ):
            groups.append(current)
            current, size = [], 0
        current.append(view)
        size += view.size
    if current:
        groups.append(current)
    return groups


# --- the driver ------------------------------------------------------------------------------


class LogCleaner:
    """Cleans the compacted logs of a LogManager, dirtiest first. `clean_all` blocks (run it in
    a worker thread); concurrent calls are serialised."""

    def __init__(self, manager: LogManager, cleaner: Cleaner | None = None) -> None:
        self._manager = manager
        self.cleaner = cleaner or Cleaner()
        self._lock = threading.Lock()

    def clean_all(self, now_ms: int, *, max_logs: int | None = None) -> CleanerStats:
        stats = CleanerStats()
        with self._lock:
            due: list[tuple[float, PartitionLog]] = []
            for _, _, plog in self._manager.logs():
                try:
                    priority = self.cleaner.priority(plog, now_ms)
                except (OSError, StorageError) as exc:
                    log.warning("log %s: cannot measure dirtiness: %s", plog.directory, exc)
                    continue
                if priority is not None:
                    due.append((priority, plog))
            due.sort(key=lambda item: -item[0])
            for _, plog in due[:max_logs]:
                try:
                    result = self.cleaner.clean(plog, now_ms)
                except (OSError, StorageError, InvalidRecordBatch) as exc:
                    log.warning("log %s: compaction failed: %s", plog.directory, exc)
                    stats.failed.append(plog.directory)
                    continue
                if result is not None:
                    stats.results.append(result)
        return stats
