"""Producer-state snapshots: what a partition knows about its idempotent and transactional
producers, saved so that recovery replays only the log tail (Kafka's `.snapshot` files,
ProducerStateManager.java / ProducerSnapshot.json).

File `<20-digit end offset>.snapshot` in the partition directory; the end offset is the offset
after the last batch the snapshot covers. Bytes, big-endian:

     0 magic      4 bytes  b"KPS\\x00"
     4 version    i16      2; 1 is the same without topic_id (read, and written for a snapshot
                           whose topic id is unknown)
     6 crc        u32      CRC-32C of every byte after this field
    10 end_offset i64
    18 topic_id   16 bytes the topic id of the partition it describes (version 2 only)
    34 producers  i32      count, then per producer:
         producer_id i64, epoch i16, coordinator_epoch i32, txn_first_offset i64 (-1: none open),
         last_timestamp i64, batches i8 (<= 5), then per batch (oldest first):
         first_seq i32, last_seq i32, base_offset i64, last_offset i64, timestamp i64
       aborted    i32      count, then that many 34-byte AbortedTxn entries (txn_index.py)

Crash behaviour: written with tmp + fsync + rename, so a file is either whole or absent; a file
that fails its magic, version, CRC or length check is ignored (and deleted) and recovery falls
back to an older snapshot or to replaying the whole log. A snapshot whose end offset is past the
log end (the log tail was cut by recovery), or that names another topic id (it belonged to a
deleted topic of the same name), is discarded the same way, with a warning. The two newest
snapshots are kept.

Concurrency: a snapshot is an immutable value; encoding happens on the caller's thread, the file
write may run in a worker thread. The write goes through a file descriptor of the partition
directory (`write_snapshot_at`), opened by the caller while it knows the directory is that
partition's: if the directory is renamed or removed meanwhile (its topic was deleted), the
snapshot follows it or fails, and never lands in a new directory of the same name. Nothing here
touches the live producer state.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import struct
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import crc32c

from klamm.storage.txn_index import TxnIndex

__all__ = [
    "MAX_CACHED_BATCHES",
    "BatchMetadata",
    "ProducerEntry",
    "Snapshot",
    "decode_snapshot",
    "discard_snapshot",
    "encode_snapshot",
    "load_latest_snapshot",
    "open_directory",
    "write_snapshot",
    "write_snapshot_at",
]

log = logging.getLogger("klamm.storage.producer_state")

MAGIC = b"KPS\x00"
VERSION = 2
_VERSION_WITHOUT_TOPIC_ID = 1
SUFFIX = ".snapshot"
_FILE = re.compile(r"^(\d{20})\.snapshot$")
_HEAD = struct.Struct(">4shI")
_BODY_HEAD = struct.Struct(">q16si")
_BODY_HEAD_V1 = struct.Struct(">qi")
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
    # The partition's topic: a snapshot is refused by a log of another topic of the same name.
    # None in version 1 files.
    topic_id: uuid.UUID | None = None


def encode_snapshot(snapshot: Snapshot) -> bytes:
    if snapshot.topic_id is None:
        version = _VERSION_WITHOUT_TOPIC_ID
        out = bytearray(_BODY_HEAD_V1.pack(snapshot.end_offset, len(snapshot.producers)))
    else:
        version = VERSION
        out = bytearray(
            _BODY_HEAD.pack(snapshot.end_offset, snapshot.topic_id.bytes, len(snapshot.producers))
        )
    for p in snapshot.producers:
        out += _PRODUCER.pack(p.producer_id, p.epoch, p.coordinator_epoch, p.txn_first_offset,
                              p.last_timestamp, len(p.batches))  # fmt: skip
        for b in p.batches:
            out += _BATCH.pack(*b)
    out += _COUNT.pack(len(snapshot.aborted))
    out += snapshot.aborted.encode()
    return _HEAD.pack(MAGIC, version, crc32c.crc32c(bytes(out))) + bytes(out)


def decode_snapshot(data: bytes) -> Snapshot:
    """Raises ValueError for anything but a whole, intact snapshot of a known version."""
    try:
        magic, version, crc = _HEAD.unpack_from(data, 0)
        if magic != MAGIC:
            raise ValueError("not a producer-state snapshot")
        if version not in (VERSION, _VERSION_WITHOUT_TOPIC_ID):
            raise ValueError(f"unknown snapshot version {version}")
        body = memoryview(data)[_HEAD.size :]
        if crc32c.crc32c(body) != crc:
            raise ValueError("snapshot CRC mismatch")
        topic_id: uuid.UUID | None = None
        if version == _VERSION_WITHOUT_TOPIC_ID:
            end_offset, count = _BODY_HEAD_V1.unpack_from(body, 0)
            pos = _BODY_HEAD_V1.size
        else:
            end_offset, raw_id, count = _BODY_HEAD.unpack_from(body, 0)
            pos = _BODY_HEAD.size
            topic_id = uuid.UUID(bytes=raw_id)
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
    return Snapshot(end_offset, producers, aborted, topic_id)


def snapshot_path(directory: Path, end_offset: int) -> Path:
    return directory / f"{end_offset:020d}{SUFFIX}"


def _snapshot_offsets(names: list[str]) -> list[int]:
    offsets = []
    for name in names:
        match = _FILE.match(name)
        if match:
            offsets.append(int(match.group(1)))
    return sorted(offsets)


def open_directory(directory: Path) -> int:
    """A file descriptor of `directory` for `write_snapshot_at` (the caller closes it)."""
    return os.open(directory, os.O_RDONLY | os.O_DIRECTORY)


def write_snapshot_at(dir_fd: int, snapshot: Snapshot) -> str:
    """Write durably into the directory open as `dir_fd` (tmp, fsync, rename, fsync the
    directory), then delete all but the newest KEEP_SNAPSHOTS snapshots there. Returns the file
    name. Raises OSError (FileNotFoundError once the directory was removed)."""
    name = f"{snapshot.end_offset:020d}{SUFFIX}"
    tmp = name + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644, dir_fd=dir_fd)
    try:
        view = memoryview(encode_snapshot(snapshot))
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    os.fsync(dir_fd)
    for offset in _snapshot_offsets(os.listdir(dir_fd))[:-KEEP_SNAPSHOTS]:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{offset:020d}{SUFFIX}", dir_fd=dir_fd)
    return name


def write_snapshot(directory: Path, snapshot: Snapshot) -> Path:
    """`write_snapshot_at` by path, for a directory nothing can replace meanwhile."""
    dir_fd = open_directory(directory)
    try:
        return directory / write_snapshot_at(dir_fd, snapshot)
    finally:
        os.close(dir_fd)


def discard_snapshot(directory: Path, end_offset: int) -> None:
    """Delete a snapshot its log refused (the caller logged why)."""
    snapshot_path(directory, end_offset).unlink(missing_ok=True)


def load_latest_snapshot(
    directory: Path, log_end_offset: int, topic_id: uuid.UUID | None = None
) -> Snapshot | None:
    """The newest intact snapshot not past `log_end_offset` and, when `topic_id` is given, not
    of another topic; deletes unusable ones."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return None
    for offset in reversed(_snapshot_offsets(names)):
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
        if topic_id is not None and snapshot.topic_id not in (None, topic_id):
            log.warning(
                "%s: producer snapshot %s belongs to topic id %s, not to this partition's "
                "topic %s (a deleted topic of the same name); discarded",
                directory, path.name, snapshot.topic_id, topic_id,
            )  # fmt: skip
            path.unlink(missing_ok=True)
            continue
        return snapshot
    return None
