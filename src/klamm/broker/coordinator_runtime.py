"""One runtime for every coordinator that keeps its state in an internal log (Kafka's
CoordinatorRuntime): the group coordinator (`__consumer_offsets`), the transaction coordinator
(`__transaction_state`), and any later one (an ACL store) in a few lines.

A coordinator ("shard", as Kafka calls it) decides purely from its in-memory state which records
express a change, hands them to `CoordinatorRuntime.write`, and the runtime

  1. encodes them into one record batch (transactional when a producer id is given),
  2. appends it to the shard's log and waits until it is durable,
  3. only then applies each record to memory through the shard's `replay` callback,

so memory never runs ahead of the disk, and a write the disk refuses changed nothing. At start-up
`load()` reads the log from its start and calls the same `replay` for every record: live traffic
and recovery share one path (STYLE.md 5).

Unreadable records (one policy for every shard). A batch that does not decode, or a record whose
key or value the shard cannot read (its serde or replay raises `UnreadableRecord`), is skipped
with an error naming the log and the offset, and loading goes on: the broker must always start,
and every record it can read is still recovered (Kafka's loader skips unknown record types too).

Storage errors (one mapping for every shard). A write whose append or fsync fails with a
`StorageError` (full disk, I/O error, closed log) raises `CoordinatorUnavailable`, whose Kafka
code is NOT_COORDINATOR, as Kafka's coordinators map KAFKA_STORAGE_ERROR and
NOT_LEADER_OR_FOLLOWER: every client answers it by finding the coordinator again and retrying.
Anything else is a bug and propagates unchanged.

The runtime reaches storage only through `CoordinatorLog` (append, wait until durable, force to
disk, read from an offset); `PartitionLogWriter` is that interface over a broker partition.

Concurrency: everything runs on the broker's event loop; the only awaits are the fsync wait and
the start-up read (in a thread). Writes of one runtime may interleave; a shard that needs
ordering between its own operations serialises them itself (the transaction coordinator locks
per transactional id), and re-checks its state after each await.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from klamm.protocol.errors import ErrorCode, InvalidRecordBatch
from klamm.protocol.record_batch import (
    CONTROL_COMMIT,
    BatchHeader,
    Record,
    RecordBatch,
    build_batch,
    build_control_batch,
    control_type,
    decode_batch,
)
from klamm.storage import StorageError

if TYPE_CHECKING:
    from klamm.broker.partition import Partition

R = TypeVar("R")

# The coordinator epoch written into transaction markers of an internal log: one node is always
# the coordinator, so its epoch never changes.
MARKER_COORDINATOR_EPOCH = 0


class UnreadableRecord(ValueError):
    """A record a shard cannot read (damaged, not written by a coordinator, or from a newer
    version): raised by a serde or a replay, changing nothing; the runtime skips the record."""


class CoordinatorUnavailable(Exception):
    """The shard's log refused a write (see the module docstring): nothing was applied."""

    code = ErrorCode.not_coordinator

    def __init__(self, log_name: str, cause: StorageError) -> None:
        super().__init__(f"the coordinator cannot write {log_name}: {cause}")
        self.cause = cause


class CoordinatorLog(Protocol):
    """The narrow writer interface a runtime needs of its log."""

    @property
    def name(self) -> str:
        """The log as operators know it (`topic-partition`), for messages."""
        ...

    def append(self, batch: bytes) -> None:
        """Append one batch (raises StorageError, log unchanged, if the disk refuses it)."""
        ...

    def wait_durable(self) -> Awaitable[None]:
        """Resolves once everything appended so far is durable (raises StorageError if not)."""
        ...

    async def force(self) -> None:
        """fsync now, whatever the broker's flush policy (for records whose loss to a power cut
        would break a promise, such as producer id reservations)."""
        ...

    async def read_from(self, offset: int) -> list[tuple[BatchHeader, bytes]]:
        """Every batch from `offset` (clamped to the log start) to the end."""
        ...


class Durability(Protocol):
    def appended(self, partition: Partition) -> Awaitable[None]: ...


class PartitionLogWriter:
    """`CoordinatorLog` over one partition of the broker and its group commit."""

    def __init__(self, partition: Partition, durability: Durability) -> None:
        self._partition = partition
        self._durability = durability

    @property
    def name(self) -> str:
        return self._partition.log.directory.name  # `topic-partition`, as on disk

    def append(self, batch: bytes) -> None:
        self._partition.log.append(bytearray(batch))

    def wait_durable(self) -> Awaitable[None]:
        return self._durability.appended(self._partition)

    async def force(self) -> None:
        await asyncio.to_thread(self._partition.log.flush)

    async def read_from(self, offset: int) -> list[tuple[BatchHeader, bytes]]:
        plog = self._partition.log
        return await asyncio.to_thread(lambda: list(plog.batches_from(offset)))


class RecordSerde(Protocol[R]):
    """How a shard's records are stored as Kafka record keys and values."""

    def serialize(self, record: R) -> tuple[bytes, bytes | None]: ...

    def deserialize(self, key: bytes, value: bytes | None) -> R:
        """The record (raises UnreadableRecord if it cannot be read)."""
        ...


# replay(record, producer id of its transactional batch or None)
Replay = Callable[[R, "int | None"], None]
# replay_end_txn(producer id, committed?): a transaction marker in the shard's log.
ReplayEndTxn = Callable[[int, bool], None]


class CoordinatorRuntime(Generic[R]):
    def __init__(
        self,
        log: CoordinatorLog,
        serde: RecordSerde[R],
        replay: Replay[R],
        *,
        now_ms: Callable[[], int],
        logger: logging.Logger,
        replay_end_txn: ReplayEndTxn | None = None,
    ) -> None:
        self._log = log
        self._serde = serde
        self._replay = replay
        self._replay_end_txn = replay_end_txn
        self._now_ms = now_ms
        # The shard's own logger, so operators find its messages where they always were.
        self._logger = logger

    @property
    def log_name(self) -> str:
        return self._log.name

    # --- loading ------------------------------------------------------------------------------

    async def load(self) -> int:
        """Replay the whole log into the shard; returns how many batches were read."""
        batches = await self._log.read_from(0)
        for header, data in batches:
            self._replay_batch(header.base_offset, data)
        return len(batches)

    def _replay_batch(self, base_offset: int, data: bytes) -> None:
        try:
            batch = decode_batch(data)
        except InvalidRecordBatch as exc:
            self._logger.error("skipping unreadable batch in %s at offset %d: %s",
                               self._log.name, base_offset, exc)  # fmt: skip
            return
        if batch.control:
            if self._replay_end_txn is not None:
                self._replay_end_txn(batch.producer_id, control_type(batch) == CONTROL_COMMIT)
            return
        producer = batch.producer_id if batch.transactional else None
        for record in batch.records:
            if record.key is None:
                continue  # not a coordinator record: nothing to apply
            try:
                self._replay(self._serde.deserialize(record.key, record.value), producer)
            except UnreadableRecord as exc:
                self._logger.error("skipping unreadable record in %s at offset %d: %s",
                                   self._log.name, record.offset, exc)  # fmt: skip

    # --- writing ------------------------------------------------------------------------------

    async def write(
        self,
        records: Sequence[R],
        *,
        producer_id: int = -1,
        producer_epoch: int = -1,
        replay: bool = True,
    ) -> None:
        """Append `records` as one batch, wait until durable, then replay them (unless the
        shard already holds the change, `replay=False`: a classic group's snapshot). Raises
        CoordinatorUnavailable, having applied nothing, if the log refuses them."""
        now = self._now_ms()
        encoded = [self._serde.serialize(r) for r in records]
        batch = RecordBatch(
            records=[Record(i, now, k, v) for i, (k, v) in enumerate(encoded)],
            transactional=producer_id >= 0,
            producer_id=producer_id,
            producer_epoch=producer_epoch,
        )
        await self._append(build_batch(batch))
        if replay:
            producer = producer_id if producer_id >= 0 else None
            for record in records:
                self._replay(record, producer)

    async def write_end_txn(self, producer_id: int, producer_epoch: int, commit: bool) -> None:
        """Append a transaction marker for `producer_id`, wait until durable, then replay it."""
        marker = build_control_batch(
            commit=commit,
            producer_id=producer_id,
            producer_epoch=producer_epoch,
            coordinator_epoch=MARKER_COORDINATOR_EPOCH,
            timestamp_ms=self._now_ms(),
        )
        await self._append(marker)
        if self._replay_end_txn is not None:
            self._replay_end_txn(producer_id, commit)

    async def force(self) -> None:
        """fsync the log now (see CoordinatorLog.force); CoordinatorUnavailable if it fails."""
        try:
            await self._log.force()
        except StorageError as exc:
            raise self._unavailable(exc) from exc

    async def _append(self, batch: bytes) -> None:
        try:
            self._log.append(batch)
            await self._log.wait_durable()
        except StorageError as exc:
            raise self._unavailable(exc) from exc

    def _unavailable(self, exc: StorageError) -> CoordinatorUnavailable:
        self._logger.warning("writing %s failed: %s", self._log.name, exc)
        return CoordinatorUnavailable(self._log.name, exc)
