"""Producer-state snapshots: what a partition knows about its idempotent and transactional
producers, saved so that recovery replays only the log tail (Kafka's `.snapshot` files,
ProducerStateManager.java / ProducerSnapshot.json).

File `<20-digit end offset>.snapshot` in the partition directory; the end offset is the offset
after the last batch the snapshot covers. Bytes, big-endian:

     0 magic      4 bytes  b"KPS\\x00"
     4 version    i16      1
     6 crc        u32      CRC-32C of every byte after this field
    10 end_offset i64
    18 producers  i32      count, then per producer:
         producer_id i64, epoch i16, coordinator_epoch i32, txn_first_offset i64 (-1: none open),
         last_timestamp i64, batches i8 (<= 5), then per batch (oldest first):
         first_seq i32, last_seq i32, base_offset i64, last_offset i64, timestamp i64
       aborted    i32      count, then that many 34-byte AbortedTxn entries (txn_index.py)

Crash behaviour: written with tmp + fsync + rename (`write_atomically`), so a file is either
whole or absent; a file that fails its magic, version, CRC or length check is ignored (and
deleted) and recovery falls back to an older snapshot or to replaying the whole log. A snapshot
whose end offset is past the log end (the log tail was cut by recovery) is discarded the same
way. The two newest snapshots are kept.

Concurrency: a snapshot is an immutable value; encoding happens on the caller's thread, the file
write may run in a worker thread. Nothing here touches the live producer state.
"""

from __future__ import annotations

import logging
import re
import struct
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import crc32c

from klamm.storage.log import write_atomically
from klamm.storage.txn_index import TxnIndex

__all__ = [
    "MAX_CACHED_BATCHES",
    "BatchMetadata",
    "ProducerEntry",
    "Snapshot",
    "decode_snapshot",
    "encode_snapshot",
    "load_latest_snapshot",
    "write_snapshot",
]

log = logging.getLogger("klamm.storage.producer_state")

MAGIC = b"KPS\x00"
VERSION = 1
SUFFIX = ".snapshot"
_FILE = re.compile(r"^(\d{20})\.snapshot$")
_HEAD = struct.Struct(">4shI")
_BODY_HEAD = struct.Struct(">qi")
_PRODUCER = struct.Struct(">qhiqqb")
_BATCH = struct.Struct(">iiqqq")
_COUNT = struct.Struct(">i")
# Kafka keeps the last 5 batches per producer (ProducerStateEntry.NUM_BATCHES_TO_RETAIN): a
# producer has at most max.in.flight.requests.per.connection = 5 batches unacknowledged, so a
# retry is always of one of these.
MAX_CACHED_BATCHES = 5
KEEP_SNAPSHOTS = 2


class BatchMetadata(NamedTuple):
    first_seq: int
    last_seq: int
    base_offset: int
    last_offset: int
    timestamp: int


@dataclass(slots=True)
class ProducerEntry:
    producer_id: int
    epoch: int
    coordinator_epoch: int = -1
    txn_first_offset: int = -1  # first offset of the open transaction in this partition
    last_timestamp: int = -1
    batches: deque[BatchMetadata] = field(default_factory=lambda: deque(maxlen=MAX_CACHED_BATCHES))

    @property
    def last_seq(self) -> int:
        return self.batches[-1].last_seq if self.batches else -1


@dataclass(slots=True)
class Snapshot:
    end_offset: int
    producers: list[ProducerEntry]
    aborted: TxnIndex


def encode_snapshot(snapshot: Snapshot) -> bytes:
    out = bytearray(_BODY_HEAD.pack(snapshot.end_offset, len(snapshot.producers)))
    for p in snapshot.producers:
        out += _PRODUCER.pack(p.producer_id, p.epoch, p.coordinator_epoch, p.txn_first_offset,
                              p.last_timestamp, len(p.batches))  # fmt: skip
        for b in p.batches:
            out += _BATCH.pack(*b)
    out += _COUNT.pack(len(snapshot.aborted))
    out += snapshot.aborted.encode()
    return _HEAD.pack(MAGIC, VERSION, crc32c.crc32c(bytes(out))) + bytes(out)


def decode_snapshot(data: bytes) -> Snapshot:
    """Raises ValueError for anything but a whole, intact snapshot of a known version."""
    try:
        magic, version, crc = _HEAD.unpack_from(data, 0)
        if magic != MAGIC:
            raise ValueError("not a producer-state snapshot")
        if version != VERSION:
            raise ValueError(f"unknown snapshot version {version}")
        body = memoryview(data)[_HEAD.size :]
        if crc32c.crc32c(body) != crc:
            raise ValueError("snapshot CRC mismatch")
        end_offset, count = _BODY_HEAD.unpack_from(body, 0)
        pos = _BODY_HEAD.size
        producers = []
        for _ in range(count):
            pid, epoch, coord, txn_first, last_ts, nbatches = _PRODUCER.unpack_from(body, pos)
            pos += _PRODUCER.size
            entry = ProducerEntry(pid, epoch, coord, txn_first, last_ts)
            for _ in range(nbatches):
                entry.batches.append(BatchMetadata(*_BATCH.unpack_from(body, pos)))
                pos += _BATCH.size
            producers.append(entry)
        (aborted_count,) = _COUNT.unpack_from(body, pos)
        aborted, pos = TxnIndex.decode(body, aborted_count, pos + _COUNT.size)
    except struct.error as exc:
        raise ValueError(f"snapshot is truncated: {exc}") from exc
    if pos != len(body):
        raise ValueError("trailing bytes after snapshot")
    return Snapshot(end_offset, producers, aborted)


def snapshot_path(directory: Path, end_offset: int) -> Path:
    return directory / f"{end_offset:020d}{SUFFIX}"


def _snapshot_offsets(directory: Path) -> list[int]:
    offsets = []
    try:
        names = [p.name for p in directory.iterdir()]
    except FileNotFoundError:
        return []
    for name in names:
        match = _FILE.match(name)
        if match:
            offsets.append(int(match.group(1)))
    return sorted(offsets)


def write_snapshot(directory: Path, snapshot: Snapshot) -> Path:
    """Write durably, then delete all but the newest KEEP_SNAPSHOTS snapshots."""
    path = snapshot_path(directory, snapshot.end_offset)
    write_atomically(path, encode_snapshot(snapshot))
    for offset in _snapshot_offsets(directory)[:-KEEP_SNAPSHOTS]:
        snapshot_path(directory, offset).unlink(missing_ok=True)
    return path


def load_latest_snapshot(directory: Path, log_end_offset: int) -> Snapshot | None:
    """The newest intact snapshot not past `log_end_offset`; deletes unusable ones."""
    for offset in reversed(_snapshot_offsets(directory)):
        path = snapshot_path(directory, offset)
        if offset > log_end_offset:
            log.warning("%s: snapshot at %d is past the log end %d; discarded",
                        directory, offset, log_end_offset)  # fmt: skip
            path.unlink(missing_ok=True)
            continue
        try:
            snapshot = decode_snapshot(path.read_bytes())
        except (OSError, ValueError) as exc:
            log.warning("%s: unusable producer snapshot %s: %s", directory, path.name, exc)
            path.unlink(missing_ok=True)
            continue
        if snapshot.end_offset != offset:
            log.warning("%s: snapshot %s names the wrong offset", directory, path.name)
            path.unlink(missing_ok=True)
            continue
        return snapshot
    return None
