"""The coordinator runtime on an in-memory log: what every shard (groups, transactions, a later
ACL store) relies on. The shard here is the few lines a new coordinator needs: a serde, a
`replay`, and a dict of state."""

from __future__ import annotations

import logging
import struct
from collections.abc import Awaitable

import pytest

from klamm.broker.coordinator_runtime import (
    CoordinatorRuntime,
    CoordinatorUnavailable,
    UnreadableRecord,
)
from klamm.protocol.errors import ErrorCode
from klamm.protocol.record_batch import (
    BatchHeader,
    Record,
    RecordBatch,
    build_batch,
    check_batch,
    crc_of,
)
from klamm.storage.errors import KafkaStorageError

log = logging.getLogger("test.shard")


class MemoryLog:
    """`CoordinatorLog` in memory; `refuse_append` / `refuse_durable` play a failing disk."""

    name = "__acls-0"

    def __init__(self) -> None:
        self.batches: list[bytes] = []
        self.next_offset = 0
        self.refuse_append = False
        self.refuse_durable = False
        self.forced = 0

    def append(self, batch: bytes) -> None:
        if self.refuse_append:
            raise KafkaStorageError("No space left on device")
        stored = bytearray(batch)
        struct.pack_into(">q", stored, 0, self.next_offset)  # the log assigns offsets
        self.next_offset = check_batch(stored).next_offset
        self.batches.append(bytes(stored))

    def wait_durable(self) -> Awaitable[None]:
        return self._durable()

    async def _durable(self) -> None:
        if self.refuse_durable:
            raise KafkaStorageError("fsync failed: Input/output error")

    async def force(self) -> None:
        self.forced += 1

    async def read_from(self, offset: int) -> list[tuple[BatchHeader, bytes]]:
        return [(check_batch(b), b) for b in self.batches if check_batch(b).next_offset > offset]


# --- a third shard in a few lines: name -> permission, a tombstone deletes -----------------------

Acl = tuple[str, str | None]


class AclSerde:
    def serialize(self, record: Acl) -> tuple[bytes, bytes | None]:
        name, value = record
        return name.encode(), None if value is None else value.encode()

    def deserialize(self, key: bytes, value: bytes | None) -> Acl:
        try:
            return key.decode(), None if value is None else value.decode()
        except UnicodeDecodeError as exc:
            raise UnreadableRecord(str(exc)) from exc


class AclShard:
    def __init__(self, memory: MemoryLog) -> None:
        self.acls: dict[str, str] = {}
        self.ended: list[tuple[int, bool]] = []
        self.runtime = CoordinatorRuntime(
            memory, AclSerde(), self.replay, now_ms=lambda: 1_000, logger=log,
            replay_end_txn=lambda pid, commit: self.ended.append((pid, commit)),
        )  # fmt: skip

    def replay(self, record: Acl, producer_id: int | None) -> None:
        name, value = record
        if value == "unknown-version":
            raise UnreadableRecord("a record from a newer version")
        if value is None:
            self.acls.pop(name, None)
        else:
            self.acls[name] = value


async def test_written_records_are_applied_once_durable_and_reloaded() -> None:
    memory = MemoryLog()
    shard = AclShard(memory)
    await shard.runtime.write([("alice", "read"), ("bob", "write")])
    await shard.runtime.write([("bob", None)])
    assert shard.acls == {"alice": "read"}
    restarted = AclShard(memory)
    assert await restarted.runtime.load() == 2
    assert restarted.acls == shard.acls


async def test_a_write_the_log_refuses_changes_nothing() -> None:
    memory = MemoryLog()
    shard = AclShard(memory)
    await shard.runtime.write([("alice", "read")])
    for failure in ("refuse_append", "refuse_durable"):
        setattr(memory, failure, True)
        with pytest.raises(CoordinatorUnavailable) as info:
            await shard.runtime.write([("alice", None), ("carol", "all")])
        assert info.value.code == ErrorCode.not_coordinator  # clients look it up and retry
        assert isinstance(info.value.cause, KafkaStorageError)
        assert shard.acls == {"alice": "read"}
        setattr(memory, failure, False)


async def test_a_snapshot_write_is_not_replayed() -> None:
    shard = AclShard(MemoryLog())
    await shard.runtime.write([("alice", "read")], replay=False)
    assert shard.acls == {}  # the caller applies the change it snapshots


async def test_unreadable_batches_and_records_are_skipped_at_load(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One policy for every shard: what cannot be read is skipped with an error naming the log
    and the offset; everything readable around it is loaded."""
    memory = MemoryLog()
    shard = AclShard(memory)
    await shard.runtime.write([("alice", "read")])  # offset 0
    # A batch whose CRC holds but whose records do not decode: it claims three, holds one.
    wrong_count = bytearray(build_batch(RecordBatch([Record(0, 1, b"k", b"v")])))
    struct.pack_into(">i", wrong_count, 23, 2)  # last offset delta
    struct.pack_into(">i", wrong_count, 57, 3)  # records count
    struct.pack_into(">I", wrong_count, 17, crc_of(wrong_count, 0, len(wrong_count)))
    memory.append(bytes(wrong_count))  # offsets 1-3
    # A key the serde cannot read, then a good record in the same batch.
    memory.append(
        build_batch(RecordBatch([Record(0, 1, b"\xff", b"x"), Record(1, 1, b"bob", b"w")]))
    )
    # Offset 6: a record of a newer version, which the shard's replay refuses.
    memory.append(build_batch(RecordBatch([Record(0, 1, b"eve", b"unknown-version")])))
    reloaded = AclShard(memory)
    with caplog.at_level(logging.ERROR, logger="test.shard"):
        await reloaded.runtime.load()
    assert reloaded.acls == {"alice": "read", "bob": "w"}
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        "skipping unreadable batch in __acls-0 at offset 1",
        "skipping unreadable record in __acls-0 at offset 4",
        "skipping unreadable record in __acls-0 at offset 6",
    ]


async def test_transactional_records_and_their_marker() -> None:
    memory = MemoryLog()
    shard = AclShard(memory)
    seen: list[int | None] = []
    shard.runtime = CoordinatorRuntime(
        memory, AclSerde(), lambda r, pid: seen.append(pid), now_ms=lambda: 1, logger=log,
        replay_end_txn=lambda pid, commit: shard.ended.append((pid, commit)),
    )  # fmt: skip
    await shard.runtime.write([("alice", "read")], producer_id=7, producer_epoch=0)
    await shard.runtime.write_end_txn(7, 0, commit=True)
    assert seen == [7] and shard.ended == [(7, True)]
    reloaded = AclShard(memory)
    await reloaded.runtime.load()
    assert reloaded.ended == [(7, True)]
    await shard.runtime.force()
    assert memory.forced == 1
