"""Per-partition producer state: idempotent sequence checks, open transactions (the last stable
offset) and aborted transactions (read_committed Fetch).

`PartitionProducers` is pure state with Kafka's ProducerAppendInfo rules, split as Kafka's
ProducerStateManager does into `check()` (validate, no side effects) and `update()` /
`complete_txn()` (mutate), so a rejected batch never changes anything:

1. A batch from an epoch older than the producer's current one: INVALID_PRODUCER_EPOCH.
2. A batch whose (first, last) sequence equals one of the producer's last 5 batches in the same
   epoch is a retry: it is not appended and the original base offset is returned.
3. A new epoch must start at sequence 0; within an epoch `first == last + 1` (wrapping at
   Int32.MAX to 0); anything else is OUT_OF_ORDER_SEQUENCE_NUMBER.
4. A producer this partition knows nothing about (new, or its state was lost with deleted
   segments) may start at any sequence: since KIP-360 Kafka no longer answers
   UNKNOWN_PRODUCER_ID for this, and clients that got it would only bump their epoch.

`ProducerStateService` (`Broker.producers`) holds one `PartitionProducers` per partition,
answers the produce path's `check_append` / `record_append` with a dict lookup and a few integer
comparisons (first of all: a producer id the broker never handed out is refused with
UNKNOWN_PRODUCER_ID, see producer_ids.py; then the transaction coordinator's KIP-890 check,
given at construction), answers each partition's last stable offset and aborted transactions
(every `Partition` is built with it), appends transaction markers for the coordinator, and keeps
the state durable: snapshots (klamm.storage.producer_state) at shutdown and periodically, and
replay of the log tail after the newest snapshot at start-up, so idempotence holds across a
crash.
A snapshot belongs to one partition instance: it records its topic id and is written through a
descriptor of its own log's directory (`write_snapshots`), so a topic deleted and re-created
between taking and writing it never receives it; at load, one of another topic or naming an
open transaction its log does not hold is refused with a warning and the state rebuilt from the
log.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from klamm.broker.transactions.producer_ids import ProducerIdAllocator
from klamm.protocol.errors import ErrorCode, InvalidRecordBatch
from klamm.protocol.record_batch import (
    CONTROL_COMMIT,
    BatchHeader,
    build_control_batch,
    control_type,
    decode_batch,
    parse_header,
)
from klamm.storage import (
    AbortedTxn,
    BatchMetadata,
    ProducerEntry,
    Snapshot,
    StorageError,
    TxnIndex,
    discard_snapshot,
    load_latest_snapshot,
    open_directory,
    write_snapshot_at,
)

if TYPE_CHECKING:
    from klamm.broker.interfaces import CoordinatorHost
    from klamm.broker.partition import Partition
    from klamm.storage import LogManager, PartitionLog

log = logging.getLogger("klamm.broker.producers")

INT32_MAX = 2**31 - 1
# Snapshots bound how much log a restart must replay; Kafka snapshots at every segment roll.
# Without a roll hook from the storage layer we snapshot changed partitions this often.
SNAPSHOT_INTERVAL_S = 30.0


class AppendCheck(NamedTuple):
    """Why a batch must not be appended. error none: a duplicate, answer `base_offset`."""

    error: ErrorCode
    message: str | None
    base_offset: int


def in_sequence(last_seq: int, first_seq: int) -> bool:
    return first_seq == (0 if last_seq == INT32_MAX else last_seq + 1)


class PartitionProducers:
    """The producers of one partition (see the module docstring for the rules)."""

    __slots__ = ("aborted", "dirty", "ongoing", "producers")

    def __init__(self) -> None:
        self.producers: dict[int, ProducerEntry] = {}
        # producer id -> first offset of its open transaction here: the LSO is their minimum.
        self.ongoing: dict[int, int] = {}
        self.aborted = TxnIndex()
        self.dirty = False  # changed since the last snapshot

    # --- validate (pure) -----------------------------------------------------------------------

    def check(self, header: BatchHeader) -> AppendCheck | None:
        entry = self.producers.get(header.producer_id)
        if entry is None:
            return None  # rule 4
        epoch = header.producer_epoch
        if epoch < entry.epoch:
            return AppendCheck(
                ErrorCode.invalid_producer_epoch,
                f"epoch {epoch} is older than the current epoch {entry.epoch}",
                -1,
            )
        first = header.base_sequence
        if epoch != entry.epoch:
            if first != 0:
                return AppendCheck(
                    ErrorCode.out_of_order_sequence_number,
                    f"new epoch {epoch} must start at sequence 0, not {first}",
                    -1,
                )
            return None
        last = header.base_sequence + header.last_offset_delta
        if last > INT32_MAX:
            last -= INT32_MAX + 1
        for batch in entry.batches:
            if batch.first_seq == first and batch.last_seq == last:
                return AppendCheck(ErrorCode.none, None, batch.base_offset)  # rule 2
        if not in_sequence(entry.last_seq, first):
            return AppendCheck(
                ErrorCode.out_of_order_sequence_number,
                f"sequence {first} does not follow {entry.last_seq} (epoch {epoch})",
                -1,
            )
        return None

    # --- commit --------------------------------------------------------------------------------

    def update(self, header: BatchHeader, base_offset: int) -> None:
        """Record an appended data batch of an idempotent or transactional producer."""
        pid = header.producer_id
        entry = self.producers.get(pid)
        if entry is None:
            entry = self.producers[pid] = ProducerEntry(pid, header.producer_epoch)
        elif header.producer_epoch != entry.epoch:
            entry.epoch = header.producer_epoch
            entry.batches.clear()
        last_seq = header.base_sequence + header.last_offset_delta
        if last_seq > INT32_MAX:
            last_seq -= INT32_MAX + 1
        entry.batches.append(
            BatchMetadata(header.base_sequence, last_seq, base_offset,
                          base_offset + header.last_offset_delta, header.max_timestamp)
        )  # fmt: skip
        entry.last_timestamp = header.max_timestamp
        if header.is_transactional and entry.txn_first_offset < 0:
            entry.txn_first_offset = base_offset
            self.ongoing[pid] = base_offset
        self.dirty = True

    def expire(self, now_ms: int, limit_ms: int) -> int:
        """Forget producers idle longer than producer.id.expiration.ms with no open transaction
        here; a later batch from one is accepted at any sequence (rule 4), as in Kafka. The idle
        time runs from the producer's last batch timestamp, as Kafka's does."""
        idle = [
            pid for pid, entry in self.producers.items()
            if entry.txn_first_offset < 0 and now_ms - entry.last_timestamp > limit_ms
        ]  # fmt: skip
        for pid in idle:
            del self.producers[pid]
        if idle:
            self.dirty = True
        return len(idle)

    def complete_txn(
        self, producer_id: int, epoch: int, commit: bool, marker_offset: int,
        coordinator_epoch: int, timestamp: int,
    ) -> None:  # fmt: skip
        """A COMMIT/ABORT marker was appended at `marker_offset`."""
        entry = self.producers.get(producer_id)
        if entry is None:
            entry = self.producers[producer_id] = ProducerEntry(producer_id, epoch)
        elif epoch > entry.epoch:
            # The coordinator bumped the epoch to fence (timeout, InitProducerId): older
            # batches can no longer be retried.
            entry.epoch = epoch
            entry.batches.clear()
        first = entry.txn_first_offset
        entry.txn_first_offset = -1
        entry.coordinator_epoch = coordinator_epoch
        entry.last_timestamp = max(entry.last_timestamp, timestamp)
        self.ongoing.pop(producer_id, None)
        if first >= 0 and not commit:
            lso = min(self.ongoing.values(), default=marker_offset + 1)
            self.aborted.append(AbortedTxn(producer_id, first, marker_offset, lso))
        self.dirty = True

    def replay(self, header: BatchHeader, blob: bytes) -> None:
        """Rebuild from one batch read back from the log (recovery)."""
        if header.producer_id < 0:
            return
        if header.is_control:
            batch = decode_batch(blob)
            if not batch.records:
                return
            value = batch.records[0].value or b""
            coord_epoch = int.from_bytes(value[2:6], "big", signed=True) if len(value) >= 6 else 0
            self.complete_txn(
                header.producer_id, header.producer_epoch,
                control_type(batch) == CONTROL_COMMIT, header.base_offset, coord_epoch,
                header.max_timestamp,
            )  # fmt: skip
        else:
            self.update(header, header.base_offset)

    def first_unstable_offset(self) -> int | None:
        return min(self.ongoing.values()) if self.ongoing else None

    # --- snapshots ---------------------------------------------------------------------------

    def snapshot(self, end_offset: int, topic_id: uuid.UUID | None = None) -> Snapshot:
        producers = [
            ProducerEntry(e.producer_id, e.epoch, e.coordinator_epoch, e.txn_first_offset,
                          e.last_timestamp, e.batches.copy())
            for e in self.producers.values()
        ]  # fmt: skip
        return Snapshot(end_offset, producers, TxnIndex(self.aborted.entries()), topic_id)

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot) -> PartitionProducers:
        state = cls()
        for entry in snapshot.producers:
            state.producers[entry.producer_id] = entry
            if entry.txn_first_offset >= 0:
                state.ongoing[entry.producer_id] = entry.txn_first_offset
        state.aborted = snapshot.aborted
        return state


def load_partition(plog: PartitionLog, topic_id: uuid.UUID | None = None) -> PartitionProducers:
    """Newest usable snapshot plus a replay of every batch after it (blocking: run in a
    worker thread before the partition is served). A snapshot of another topic (`topic_id`) or
    one that does not match the log is refused with a warning, and the state is rebuilt from
    the whole log, as if there were none."""
    end = plog.log_end_offset
    snapshot = load_latest_snapshot(plog.directory, end, topic_id)
    if snapshot is not None:
        mismatch = _mismatch(snapshot, plog)
        if mismatch is not None:
            log.warning("%s: producer snapshot at %d does not match the log (%s); discarded, "
                        "rebuilding producer state from the log", plog.directory,
                        snapshot.end_offset, mismatch)  # fmt: skip
            discard_snapshot(plog.directory, snapshot.end_offset)
            snapshot = None
    if snapshot is not None and snapshot.end_offset >= plog.log_start_offset:
        state = PartitionProducers.from_snapshot(snapshot)
        start = snapshot.end_offset
    else:
        state = PartitionProducers()
        start = plog.log_start_offset
    for header, blob in plog.batches_from(start):
        state.replay(header, blob)
    state.aborted.truncate_before(plog.log_start_offset)
    state.dirty = start != end
    return state


def _mismatch(snapshot: Snapshot, plog: PartitionLog) -> str | None:
    """Why `snapshot` cannot describe `plog`, or None. Every open transaction it names must
    start, still inside the log, with a transactional batch of that producer: a snapshot
    written for another log (a deleted topic's, before snapshots recorded their topic id) would
    otherwise hold the last stable offset at a transaction that will never end."""
    for entry in snapshot.producers:
        first = entry.txn_first_offset
        if first < plog.log_start_offset:
            continue  # none open, or deleted by retention: nothing left to check
        if first >= snapshot.end_offset:
            return f"producer {entry.producer_id}'s transaction starts at {first}, past its end"
        try:
            header = parse_header(plog.read(first, 1))
        except (InvalidRecordBatch, StorageError) as exc:
            return f"cannot read offset {first}: {exc}"
        if (
            header.base_offset != first
            or header.producer_id != entry.producer_id
            or not header.is_transactional
            or header.is_control
        ):
            return (
                f"offset {first} is not the start of a transaction of producer {entry.producer_id}"
            )
    return None


# Is a transactional batch part of its producer's ongoing transaction, and does that include
# the partition (KIP-890 part 1)? None if so, else why not: the transaction coordinator's answer.
TxnCheck = Callable[[BatchHeader, "Partition"], AppendCheck | None]


class ProducerStateService:
    """The broker's producer state (`Broker.producers`): see the module docstring."""

    name = "producers"

    def __init__(
        self, broker: CoordinatorHost, logs: LogManager, producer_ids: ProducerIdAllocator,
        txn_check: TxnCheck, snapshot_interval_s: float = SNAPSHOT_INTERVAL_S,
    ) -> None:  # fmt: skip
        self.broker = broker
        self._logs = logs  # where snapshots go: write_snapshots checks the log is still served
        self._producer_ids = producer_ids
        self._txn_check = txn_check
        self._states: dict[Partition, PartitionProducers] = {}
        self._interval = snapshot_interval_s
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        partitions = [p for p in self.broker.partitions() if not p.topic.startswith("__")]
        ids = [self._topic_id(p) for p in partitions]
        loaded = await asyncio.to_thread(
            lambda: [load_partition(p.log, i) for p, i in zip(partitions, ids, strict=True)]
        )
        for partition, state in zip(partitions, loaded, strict=True):
            self._states[partition] = state
            # Ids still named here were handed out, even if the transaction log that recorded
            # their reservation was lost: never hand them out again (producer_ids.py).
            for producer_id in state.producers:
                self._producer_ids.observe(producer_id)
        self._task = asyncio.create_task(self._snapshot_loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await self.snapshot_all(only_dirty=True)

    # --- the produce path ----------------------------------------------------------------------

    def state(self, partition: Partition) -> PartitionProducers:
        state = self._states.get(partition)
        if state is None:
            # A partition created after start-up (new, so its log is empty or tiny).
            state = load_partition(partition.log, self._topic_id(partition))
            self._states[partition] = state
        return state

    def check_append(self, partition: Partition, header: BatchHeader) -> AppendCheck | None:
        if header.producer_id < 0:
            return None
        if not self._producer_ids.is_allocated(header.producer_id):
            return AppendCheck(
                ErrorCode.unknown_producer_id,
                f"producer id {header.producer_id} was never handed out by this broker "
                "(InitProducerId)",
                -1,
            )
        result = self.state(partition).check(header)
        if result is None and header.is_transactional:
            result = self._txn_check(header, partition)
        return result

    def record_append(self, partition: Partition, header: BatchHeader, base_offset: int) -> None:
        if header.producer_id >= 0:
            self.state(partition).update(header, base_offset)

    # --- markers -------------------------------------------------------------------------------

    def append_marker(
        self, partition: Partition, producer_id: int, epoch: int, commit: bool,
        coordinator_epoch: int,
    ) -> asyncio.Future[None]:  # fmt: skip
        """Append a COMMIT/ABORT marker; the future resolves once it is durable."""
        now = self.broker.now_ms()
        batch = bytearray(
            build_control_batch(commit=commit, producer_id=producer_id, producer_epoch=epoch,
                                coordinator_epoch=coordinator_epoch, timestamp_ms=now)
        )  # fmt: skip
        appended = partition.log.append(batch)
        self.state(partition).complete_txn(
            producer_id, epoch, commit, appended.base_offset, coordinator_epoch, now
        )
        return self.broker.durability.appended(partition)

    # --- what partitions ask (partition.TransactionState) --------------------------------------

    def stable_offset(self, partition: Partition) -> int:
        """First offset of the partition's earliest open transaction, else its log end (also
        for a partition whose state is not loaded yet: it has seen no produce since start-up)."""
        state = self._states.get(partition)
        first = state.first_unstable_offset() if state is not None else None
        return partition.log.log_end_offset if first is None else first

    def aborted_transactions(
        self, partition: Partition, start: int, end: int
    ) -> list[dict[str, int]]:
        state = self._states.get(partition)
        if state is None or not state.aborted:
            return []
        return [
            {"producer_id": e.producer_id, "first_offset": e.first_offset}
            for e in state.aborted.overlapping(start, end)
        ]

    # --- operators -----------------------------------------------------------------------------

    def describe(self, partition: Partition) -> list[dict[str, Any]]:
        state = self.state(partition)
        return [
            {
                "producer_id": e.producer_id,
                "producer_epoch": e.epoch,
                "last_sequence": e.last_seq,
                "last_timestamp": e.last_timestamp,
                "coordinator_epoch": e.coordinator_epoch,
                "current_txn_start_offset": e.txn_first_offset,
            }
            for e in state.producers.values()
        ]

    # --- snapshots -----------------------------------------------------------------------------

    def _topic_id(self, partition: Partition) -> uuid.UUID | None:
        info = self.broker.topic(partition.topic)
        return info.topic_id if info is not None else None

    async def snapshot_all(self, *, only_dirty: bool) -> None:
        work = self.collect_snapshots(only_dirty=only_dirty)
        if work:
            await asyncio.to_thread(write_snapshots, work, self._logs)

    def collect_snapshots(self, *, only_dirty: bool) -> list[PendingSnapshot]:
        """Take the snapshots on the event loop (a consistent cut: appends also run here); the
        caller writes them with `write_snapshots` in a worker thread."""
        work: list[PendingSnapshot] = []
        for partition, state in list(self._states.items()):
            if only_dirty and not state.dirty:
                continue
            # The topic id first: a topic re-created since has no `partition` any more.
            topic_id = self._topic_id(partition)
            if self.broker.partition(partition.topic, partition.index) is not partition:
                del self._states[partition]  # its topic was deleted
                continue
            state.dirty = False
            snapshot = state.snapshot(partition.log.log_end_offset, topic_id)
            work.append(PendingSnapshot(partition.topic, partition.index, partition.log, snapshot))
        return work

    async def _snapshot_loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                self.expire_idle()
                await self.snapshot_all(only_dirty=True)
            except Exception:
                log.exception("producer state snapshot failed")

    def expire_idle(self) -> int:
        """Apply producer.id.expiration.ms on every partition; returns producers forgotten."""
        now, limit = self.broker.now_ms(), self.broker.config.producer_id_expiration_ms
        return sum(state.expire(now, limit) for state in self._states.values())


class PendingSnapshot(NamedTuple):
    """A snapshot taken of one partition log, to be written into its directory."""

    topic: str
    partition: int
    plog: PartitionLog
    snapshot: Snapshot


def write_snapshots(work: list[PendingSnapshot], logs: LogManager) -> None:
    """Write snapshots (blocking: a worker thread). Each goes into the directory of the very
    log it was taken of, never a namesake: the directory is opened first, and used only if the
    log manager still serves that log afterwards. LogManager.delete_topic forgets a log before
    it renames the log's directory, so the open one was the log's own; written through that
    descriptor, the file follows the directory if it is renamed meanwhile, and fails if it is
    removed, instead of landing in a re-created topic's directory of the same name."""
    for item in work:
        directory = item.plog.directory
        try:
            dir_fd = open_directory(directory)
        except FileNotFoundError:
            continue  # its topic was deleted
        except OSError as exc:
            log.warning("cannot write producer snapshot in %s: %s", directory, exc)
            continue
        try:
            if logs.log(item.topic, item.partition) is not item.plog:
                continue  # its topic was deleted (and maybe re-created)
            write_snapshot_at(dir_fd, item.snapshot)
        except FileNotFoundError:
            log.info("producer snapshot for %s not written: its topic was deleted", directory)
        except OSError as exc:
            # A missing snapshot only costs a longer replay at the next start.
            log.warning("cannot write producer snapshot in %s: %s", directory, exc)
        finally:
            os.close(dir_fd)
