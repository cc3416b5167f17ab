"""Which compacted logs are due for cleaning, and where each one's dirty part starts: Kafka's
LogCleanerManager. The cleaning itself is cleaner.py's; the segment swap is the log's.

State owned here:
  * the cleaner checkpoint of each log (`cleaner-offset` in its directory, decimal text, written
    atomically): the first dirty offset. Its presence also means "this log has been compacted,
    so its offsets may have gaps": PartitionLog.open reads it for that (and only reports an
    implausible value), so it is written before a log's first segment is ever replaced. A
    missing or unusable checkpoint means "all dirty": it costs a re-cleaning, never data.
  * per log, the earliest delete horizon its last cleaning left (in memory): the log is due
    again then, even without new dirty data, so expired tombstones and markers do not linger
    (KIP-534). Lost at a restart, which only delays their removal until new data arrives or
    max.compaction.lag.ms forces a cleaning.

Dirtiness (Kafka's LogCleanerManager.cleanableOffsets and grabFilthiestCompactedLog): the
*cleanable* part of a log is its sealed segments from the start up to the first holding a
record younger than min.compaction.lag.ms; its part from the checkpoint on is *dirty*. A log is
due when dirty/cleanable bytes reaches min.cleanable.dirty.ratio, or when its oldest dirty batch
is older than max.compaction.lag.ms, or when a delete horizon has passed (those two: priority
infinity). The dirtiest logs are cleaned first.

Concurrency: thread-safe. The checkpoint of a log is written only by the one cleaning of that
log running at a time (LogCleaner serialises them); horizons are guarded by a lock.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol, TypeVar

from klamm.storage.config import LONG_MAX, LogConfig
from klamm.storage.durable_files import write_atomically
from klamm.storage.errors import StorageError
from klamm.storage.log import CLEANER_OFFSET_FILE, PartitionLog
from klamm.storage.recovery import read_offset_file

__all__ = ["CLEANER_OFFSET_FILE", "CleanerManager", "first_dirty", "lag_bound"]

log = logging.getLogger("klamm.storage.cleaner")


class _Aged(Protocol):
    @property
    def max_timestamp(self) -> int: ...
    @property
    def created_ms(self) -> int: ...


_S = TypeVar("_S", bound=_Aged)


def lag_bound(segments: list[_S], config: LogConfig, now_ms: int) -> list[_S]:
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


def first_dirty(checkpoint: int | None, first_base: int, log_end: int) -> int:
    """The checkpoint, unless it is missing, below the log start or beyond the log end (the
    log was recreated or truncated): then everything is dirty."""
    if checkpoint is None or checkpoint > log_end:
        return first_base
    return max(checkpoint, first_base)


class CleanerManager:
    """Checkpoints, delete horizons and priorities of compacted logs (module docstring)."""

    def __init__(self) -> None:
        # log directory -> earliest delete horizon left by its last cleaning
        self._horizons: dict[Path, int] = {}
        self._lock = threading.Lock()

    # --- checkpoints -----------------------------------------------------------------------

    def checkpoint(self, plog: PartitionLog) -> int | None:
        """The log's first dirty offset as last checkpointed; None when there is none (or it
        is unusable: the whole log is dirty then)."""
        return read_offset_file(plog.directory / CLEANER_OFFSET_FILE)

    def start_cleaning(self, plog: PartitionLog, dirty_from: int, checkpoint: int | None) -> None:
        """Called before a cleaning replaces any segment: from then on the log may have gaps,
        and PartitionLog.open must know, so a log without a checkpoint gets one now (OSError:
        the cleaning must not go on)."""
        if checkpoint is None:
            write_atomically(plog.directory / CLEANER_OFFSET_FILE, f"{dirty_from}\n".encode())

    def done_cleaning(
        self, plog: PartitionLog, cleaned_to: int | None, next_horizon: int | None
    ) -> None:
        """Record a finished cleaning: the next one's first dirty offset (None: the cleaning
        was partial, keep the old checkpoint) and the earliest delete horizon it left."""
        if cleaned_to is not None:
            try:
                write_atomically(plog.directory / CLEANER_OFFSET_FILE, f"{cleaned_to}\n".encode())
            except OSError as exc:  # a stale checkpoint only costs a re-cleaning
                log.warning("log %s: cannot write cleaner checkpoint: %s", plog.directory, exc)
        with self._lock:
            if next_horizon is None:
                self._horizons.pop(plog.directory, None)
            else:
                self._horizons[plog.directory] = next_horizon

    # --- which logs are due ----------------------------------------------------------------

    def priority(self, plog: PartitionLog, now_ms: int) -> float | None:
        """The log's dirty ratio if it is due for cleaning (infinity when max.compaction.lag.ms
        or a passed delete horizon forces it), else None. Reads only in-memory sizes and at most
        one batch header."""
        checkpoint = self.checkpoint(plog)
        found = plog.summaries()
        if found is None:
            return None
        config, segments = found
        if not config.compact:
            return None
        cleanable = lag_bound(segments[:-1], config, now_ms)
        if not cleanable:
            return None
        dirty_from = first_dirty(checkpoint, cleanable[0].base_offset, segments[-1].next_offset)
        dirty = [s for s in cleanable if s.next_offset > dirty_from]
        forced = False
        if dirty and config.max_compaction_lag_ms < LONG_MAX:
            first_ts = plog.segment_first_timestamp(dirty[0].base_offset)
            forced = first_ts is not None and 0 <= first_ts < now_ms - config.max_compaction_lag_ms
        total = sum(s.size for s in cleanable)
        dirty_bytes = sum(s.size for s in dirty)
        with self._lock:
            horizon = self._horizons.get(plog.directory)
        if forced or (horizon is not None and horizon <= now_ms):
            return float("inf")
        if not dirty_bytes or not total:
            return None
        ratio = dirty_bytes / total
        return ratio if ratio >= config.min_cleanable_dirty_ratio else None

    def filthiest(
        self, logs: Iterable[PartitionLog], now_ms: int, max_logs: int | None = None
    ) -> list[PartitionLog]:
        """The logs due for cleaning, dirtiest first (at most `max_logs`). A log whose
        dirtiness cannot be measured is skipped with a warning."""
        due: list[tuple[float, PartitionLog]] = []
        for plog in logs:
            try:
                priority = self.priority(plog, now_ms)
            except (OSError, StorageError) as exc:
                log.warning("log %s: cannot measure dirtiness: %s", plog.directory, exc)
                continue
            if priority is not None:
                due.append((priority, plog))
        due.sort(key=lambda item: -item[0])
        return [plog for _, plog in due[:max_logs]]
