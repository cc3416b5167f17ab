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

Who owns what: the cleaner manager (cleaner_manager.py) keeps each log's checkpoint (the first
dirty offset, `cleaner-offset`) and delete horizons and says which logs are due; the log
(log.py) owns its segments: the cleaner reads them through `PartitionLog.snapshot()` (a
SegmentReader per segment, scanned by segment.py's one batch scan), writes each group's
rewritten segment through `begin_replacement`, and has the log swap it in with
`replace_segments`, whose `.cleaned`/`.swap` protocol, and the recovery of a swap a crash
interrupted, are the log's (recovery.py, "Segment replacement"). A crash anywhere leaves a
prefix of the groups swapped: nothing lost, nothing resurrected. The checkpoint is only a hint:
a stale one costs a re-cleaning, never data.

Concurrency: cleaning runs in a worker thread while the broker appends and reads. The cleaner
holds none of the log's locks while it reads or writes; `replace_segments` abandons a group
(returns False) whose segments are no longer the log's (retention or DeleteRecords deleted
some, `close` ran). The active segment is never rewritten, so appends are never blocked by more
than a swap (renames and deletes, no data copying). One cleaning at a time per log: LogCleaner
serialises its runs.
"""

from __future__ import annotations

import bisect
import logging
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

from klamm.protocol.compression import Compression
from klamm.protocol.errors import InvalidRecordBatch
from klamm.protocol.record_batch import (
    ATTR_DELETE_HORIZON,
    CONTROL_ABORT,
    CONTROL_COMMIT,
    HEADER,
    BatchHeader,
    Record,
    batch_with_header,
    build_batch,
    control_type,
    decode_batch,
)
from klamm.storage.cleaner_manager import CleanerManager, first_dirty, lag_bound
from klamm.storage.config import LogConfig
from klamm.storage.errors import StorageError
from klamm.storage.log import MAX_RELATIVE_OFFSET, PartitionLog
from klamm.storage.log_manager import LogManager
from klamm.storage.segment import SegmentReader

__all__ = ["CleanResult", "Cleaner", "CleanerStats", "LogCleaner"]

log = logging.getLogger("klamm.storage.cleaner")

# Kafka's producer.id.expiration.ms default (1 day): a producer silent for longer is forgotten by
# the broker, so its last batch no longer needs to be kept for its producer state.
DEFAULT_PRODUCER_EXPIRATION_MS = 86_400_000
# Keys in one cleaning's offset map. Kafka bounds the map by log.cleaner.dedupe.buffer.size
# (128 MiB); a Python dict entry with a short key costs ~100-200 bytes, so a million keys is the
# same order of memory. When the map fills, the cleaning stops after that segment and the rest
# stays dirty for the next run.
DEFAULT_MAX_MAP_KEYS = 1_000_000


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


def _scan_transactions(views: list[SegmentReader]) -> _TxnFacts:
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
    LogCleaner runs one cleaning at a time. `manager` keeps the checkpoints and says which
    logs are due (cleaner_manager.py); by default one of its own."""

    def __init__(
        self,
        *,
        producer_expiration_ms: int = DEFAULT_PRODUCER_EXPIRATION_MS,
        max_map_keys: int = DEFAULT_MAX_MAP_KEYS,
        manager: CleanerManager | None = None,
    ) -> None:
        self._producer_expiration_ms = producer_expiration_ms
        self._max_map_keys = max_map_keys
        self.manager = manager or CleanerManager()

    # --- cleaning ------------------------------------------------------------------------------

    def clean(self, plog: PartitionLog, now_ms: int) -> CleanResult | None:
        """Compact whatever part of the log is cleanable now, whatever its dirty ratio. None if
        there is nothing cleanable (or the log is closed, or not compacted). Raises OSError,
        StorageError or InvalidRecordBatch (a corrupt batch) with the log unchanged or
        consistently swapped."""
        checkpoint = self.manager.checkpoint(plog)
        snap = plog.snapshot()
        if snap is None:
            return None
        with snap:
            if not snap.config.compact:
                return None
            return self._clean(plog, snap.segments, snap.config, now_ms, checkpoint)

    def _clean(
        self,
        plog: PartitionLog,
        views: list[SegmentReader],
        config: LogConfig,
        now_ms: int,
        checkpoint: int | None,
    ) -> CleanResult | None:
        cleanable = lag_bound(views[:-1], config, now_ms)
        facts = _scan_transactions(views)
        if facts.first_unstable is not None:
            # Data of an open transaction may still be aborted: stop before its segment.
            bound = facts.first_unstable
            cleanable = [v for v in cleanable if v.next_offset <= bound]
            while cleanable and cleanable[-1].next_offset > bound:
                cleanable.pop()
        if not cleanable:
            return None
        dirty_from = first_dirty(checkpoint, cleanable[0].base_offset, views[-1].next_offset)
        offset_map, cleanable = self._build_map(cleanable, dirty_from, facts)
        end = views[len(cleanable)].base_offset
        result = CleanResult(plog.directory, dirty_from, end)
        state = _Pass(config, now_ms, offset_map, facts, self._producer_expiration_ms, result)
        self.manager.start_cleaning(plog, dirty_from, checkpoint)  # before the first swap
        groups = _group(cleanable, config)
        for i, group in enumerate(groups):
            group_end = groups[i + 1][0].base_offset if i + 1 < len(groups) else end
            self._clean_group(plog, group, group_end, state)
        cleaned_to = None if result.groups_abandoned else end
        self.manager.done_cleaning(plog, cleaned_to, state.next_horizon)
        log.info(
            "log %s: compacted [%d, %d): %d -> %d bytes, %d records and %d markers removed",
            plog.directory, cleanable[0].base_offset, end, result.bytes_before,
            result.bytes_after, result.records_removed, result.markers_removed,
        )  # fmt: skip
        return result

    def _build_map(
        self, cleanable: list[SegmentReader], first_dirty: int, facts: _TxnFacts
    ) -> tuple[dict[bytes, int], list[SegmentReader]]:
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
        self, plog: PartitionLog, group: list[SegmentReader], end: int, state: _Pass
    ) -> None:
        """Rewrite one group into `<base>-<end>.log.cleaned` and swap it in (or drop the file
        if nothing would change)."""
        result = state.result
        base = group[0].base_offset
        before = sum(v.size for v in group)
        result.segments_before += len(group)
        result.bytes_before += before
        # The rewritten segment is built in memory as it is written; its file takes the
        # segment's own name at the swap.
        replacement = plog.begin_replacement(base, end, group[0].created_ms)
        new = replacement.segment
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
            replacement.finish()
            swapped = plog.replace_segments([view.segment for view in group], replacement)
            if swapped:
                result.segments_after += 1
                result.bytes_after += new.size
            else:
                result.groups_abandoned += 1
                result.segments_after += len(group)
                result.bytes_after += before
        finally:
            if not swapped:
                replacement.discard()

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


def _group(cleanable: list[SegmentReader], config: LogConfig) -> list[list[SegmentReader]]:
    """Consecutive segments whose total size fits segment.bytes and whose offsets fit a
    segment's relative-offset range become one rewritten segment."""
    groups: list[list[SegmentReader]] = []
    current: list[SegmentReader] = []
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
    """Cleans the compacted logs of a LogManager, dirtiest first (as its cleaner's manager
    ranks them). `clean_all` blocks (run it in a worker thread); concurrent calls are
    serialised."""

    def __init__(self, logs: LogManager, cleaner: Cleaner | None = None) -> None:
        self._logs = logs
        self.cleaner = cleaner or Cleaner()
        self._lock = threading.Lock()

    def clean_all(self, now_ms: int, *, max_logs: int | None = None) -> CleanerStats:
        stats = CleanerStats()
        with self._lock:
            logs = (plog for _, _, plog in self._logs.logs())
            for plog in self.cleaner.manager.filthiest(logs, now_ms, max_logs):
                try:
                    result = self.cleaner.clean(plog, now_ms)
                except (OSError, StorageError, InvalidRecordBatch) as exc:
                    log.warning("log %s: compaction failed: %s", plog.directory, exc)
                    stats.failed.append(plog.directory)
                    continue
                if result is not None:
                    stats.results.append(result)
        return stats
