"""The transaction coordinator: producer ids and epochs, fencing, the transaction lifecycle,
markers, and transaction timeouts (Kafka's TransactionCoordinator.scala).

Replayable (STYLE 5): every operation decides purely from the current metadata what the next
metadata is (`state.transition`) and writes it as a record to `__transaction_state` through the
coordinator runtime (coordinator_runtime.py), which waits until the record is durable and only
then applies it with `replay()` — the same function start-up runs over the whole log. So the
in-memory state never runs ahead of the disk, and recovery and live traffic share one path. The
runtime also owns the policy for records that cannot be read (skipped, logged) and the mapping of
storage errors (NOT_COORDINATOR).

EndTxn writes PrepareCommit/PrepareAbort (the decision), then a marker to every partition of
the transaction and the group offsets' outcome, then CompleteCommit/CompleteAbort, and answers
after all of it is durable (Kafka answers after the Prepare record; answering later costs a
little latency and means a read_committed consumer sees the data as soon as the producer's
commit returns). A crash between Prepare and Complete is finished at start-up: markers are
written again, which is harmless (a marker for a producer without an open transaction in a
partition changes nothing). Transactions open longer than their timeout are aborted by a
sweeper with a bumped epoch, which fences the late producer.

Producer ids come from a `ProducerIdAllocator` (producer_ids.py), shared with the produce path,
which refuses ids never handed out; its block reservations are records in this log, fsynced
before any id of the block is handed out, so ids are never reused after a restart.

Lost state (beyond Kafka, which trusts its coordinator's log). If `__transaction_state` loses
records while transactions are open, their partitions would hold the last stable offset for
ever: the sweep aborts such orphans after a timeout (orphans.py), ids still in use in data
partitions are never handed out again, and WriteTxnMarkers (also orphans.py) lets an operator
end one at once. A transaction this coordinator knows is only ever ended by itself.

Storage errors: a write the disk refuses changes no state and is answered NOT_COORDINATOR, as
Kafka maps KAFKA_STORAGE_ERROR; a decided transaction whose markers failed stays in its Prepare
state and is completed by the client's retry or the next sweep.

Concurrency: one asyncio lock per transactional id serialises its operations (they await disk
writes in between); the allocator has its own lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

from klamm.broker.coordinator_runtime import (
    CoordinatorRuntime,
    CoordinatorUnavailable,
    PartitionLogWriter,
)
from klamm.broker.transactions.orphans import Orphans
from klamm.broker.transactions.producer_ids import ProducerIdAllocator
from klamm.broker.transactions.producers import AppendCheck, ProducerStateService
from klamm.broker.transactions.state import (
    COMPLETE,
    COORDINATOR_EPOCH,
    NO_EPOCH,
    NO_PRODUCER_ID,
    PREPARING,
    TXN_TOPIC,
    TxnMetadata,
    TxnState,
    decode_key,
    decode_metadata,
    decode_pid_block,
    encode_key,
    encode_metadata,
    transition,
)
from klamm.protocol.errors import ErrorCode
from klamm.protocol.record_batch import BatchHeader
from klamm.storage import LogClosed, StorageError

if TYPE_CHECKING:
    from klamm.broker.interfaces import CoordinatorHost
    from klamm.broker.partition import Partition

log = logging.getLogger("klamm.broker.transactions")

# Kafka's transaction.abort.timed.out.transaction.cleanup.interval.ms is 10 s; a shorter sweep
# costs one dict scan and makes timeouts precise enough for tests.
SWEEP_INTERVAL_MS = 1000
S = TxnState


# States in which a transactional id holds no transaction, so it may expire.
_FINISHED = frozenset({S.EMPTY, S.COMPLETE_COMMIT, S.COMPLETE_ABORT})
# States in which this coordinator will still write the transaction's markers itself.
_OPEN = frozenset({S.ONGOING, S.PREPARE_COMMIT, S.PREPARE_ABORT, S.PREPARE_EPOCH_FENCE})


# A record of __transaction_state as stored: key and value bytes (`replay` decodes them).
TxnLogRecord = tuple[bytes, bytes | None]


class RawSerde:
    """Records are kept as bytes; `replay` decodes them (raising TxnRecordError)."""

    def serialize(self, record: TxnLogRecord) -> TxnLogRecord:
        return record

    def deserialize(self, key: bytes, value: bytes | None) -> TxnLogRecord:
        return key, value


class TxnError(Exception):
    def __init__(self, code: ErrorCode, message: str = "") -> None:
        super().__init__(message or code.name)
        self.code = code


def _unavailable(exc: StorageError) -> TxnError:
    """A coordinator write that the disk refused, as Kafka's TransactionStateManager answers a
    failed append: KAFKA_STORAGE_ERROR and NOT_LEADER_OR_FOLLOWER become NOT_COORDINATOR, which
    clients answer by looking the coordinator up again and retrying."""
    return TxnError(ErrorCode.not_coordinator, f"the coordinator cannot write: {exc}")


class TxnOffsets(Protocol):
    """What the transaction coordinator needs of the group coordinator: the offsets that
    transactions committed (TxnOffsetCommit), pending until their transaction ends."""

    async def complete_txn_offsets(
        self, producer_id: int, commit: bool, producer_epoch: int = -1
    ) -> None: ...

    def pending_txn_producers(self) -> list[int]: ...


class TransactionCoordinator:
    name = "transactions"

    def __init__(
        self, broker: CoordinatorHost, *, producers: ProducerStateService, groups: TxnOffsets,
        producer_ids: ProducerIdAllocator, sweep_interval_ms: int = SWEEP_INTERVAL_MS,
    ) -> None:  # fmt: skip
        self.broker = broker
        # Markers go through the producer state (the partitions' LSO follows them); a
        # transaction's offsets are the group coordinator's.
        self.producers = producers
        self.groups = groups
        self.txns: dict[str, TxnMetadata] = {}
        self._by_pid: dict[int, TxnMetadata] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        # Shared with the produce path (ProducerStateService), which refuses unallocated ids.
        self.producer_ids = producer_ids
        self._sweep_interval_ms = sweep_interval_ms
        self._task: asyncio.Task[None] | None = None
        # Open transactions this coordinator does not know, and markers by hand (orphans.py).
        self.orphans = Orphans(self, broker, producers, groups)
        self._runtime: CoordinatorRuntime[TxnLogRecord] | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        broker = self.broker
        if broker.topic(TXN_TOPIC) is None:
            broker.create_topic(TXN_TOPIC, 1, {"cleanup.policy": "compact"}, internal=True)
        partition = broker.partition(TXN_TOPIC, 0)
        assert partition is not None
        self._runtime = CoordinatorRuntime(
            PartitionLogWriter(partition, broker.durability), RawSerde(),
            lambda record, _producer: self.replay(*record), now_ms=broker.now_ms, logger=log,
        )  # fmt: skip
        await self._runtime.load()
        await self.complete_prepared()
        self._task = asyncio.create_task(self._sweep_loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    # --- records -----------------------------------------------------------------------------

    def replay(self, key: bytes, value: bytes | None) -> None:
        """Apply one record (raises TxnRecordError, changing nothing, if it cannot be read: the
        runtime then skips it, as Kafka's loader skips unknown keys. A record is unreadable when
        damaged or appended by a client before internal topics refused produce)."""
        kind, name = decode_key(key)
        if kind == "pid_block":
            self.producer_ids.replay_block(decode_pid_block(value))
            return
        if kind != "txn":
            return
        meta = None if value is None else decode_metadata(name, value)
        old = self.txns.pop(name, None)
        if old is not None and self._by_pid.get(old.producer_id) is old:
            del self._by_pid[old.producer_id]
        if meta is None:
            return
        self.txns[name] = meta
        self._by_pid[meta.producer_id] = meta
        self.producer_ids.observe(meta.producer_id)
        self.producer_ids.observe(meta.last_producer_id)

    async def _write(self, entries: Iterable[tuple[bytes, bytes | None]]) -> None:
        """Append records to the transaction log, wait until durable, then apply them. A
        refused write applied nothing, so memory still matches the disk; the client retries."""
        assert self._runtime is not None
        try:
            await self._runtime.write(list(entries))
        except CoordinatorUnavailable as exc:
            raise TxnError(exc.code, str(exc)) from exc

    async def _store(self, meta: TxnMetadata) -> TxnMetadata:
        await self._write([(encode_key("txn", meta.transactional_id), encode_metadata(meta))])
        return meta

    def _lock(self, transactional_id: str) -> asyncio.Lock:
        lock = self._locks.get(transactional_id)
        if lock is None:
            lock = self._locks[transactional_id] = asyncio.Lock()
        return lock

    async def allocate_producer_id(self) -> int:
        return await self.producer_ids.allocate(self._reserve_pid_block)

    async def _reserve_pid_block(self, end: int) -> None:
        """Make the reservation of the ids below `end` durable. fsynced even with flush policy
        "os": a reservation lost to a power cut could hand out ids again, and a reused id makes
        its new producer's first batch look like a retry of the old one's."""
        await self._write([(encode_key("pid_block"), str(end).encode())])
        assert self._runtime is not None
        try:
            await self._runtime.force()
        except CoordinatorUnavailable as exc:
            raise TxnError(exc.code, str(exc)) from exc

    # --- InitProducerId ----------------------------------------------------------------------

    async def init_producer_id(
        self, transactional_id: str | None, timeout_ms: int,
        expected_pid: int = NO_PRODUCER_ID, expected_epoch: int = NO_EPOCH,
    ) -> tuple[int, int]:  # fmt: skip
        """(producer id, epoch) or TxnError."""
        if not transactional_id:
            # Idempotent producer: always a fresh id (Kafka ignores the KIP-360 fields here).
            return await self.allocate_producer_id(), 0
        if timeout_ms <= 0 or timeout_ms > self.broker.config.transaction_max_timeout_ms:
            raise TxnError(
                ErrorCode.invalid_transaction_timeout,
                f"transaction timeout {timeout_ms} ms is not in (0, "
                f"{self.broker.config.transaction_max_timeout_ms}]",
            )
        async with self._lock(transactional_id):
            now = self.broker.now_ms()
            meta = self.txns.get(transactional_id)
            if meta is None:
                pid = await self.allocate_producer_id()
                meta = transition(
                    None, S.EMPTY, transactional_id=transactional_id, producer_id=pid,
                    producer_epoch=0, timeout_ms=timeout_ms, last_update_ms=now,
                )  # fmt: skip
                await self._store(meta)
                return pid, 0
            if expected_pid != NO_PRODUCER_ID and not _is_known_producer(
                meta, expected_pid, expected_epoch
            ):
                raise TxnError(ErrorCode.producer_fenced, "producer id/epoch is stale")
            if meta.state in PREPARING:
                await self._complete(meta)  # finish the decided transaction first
                meta = self.txns[transactional_id]
            if meta.state == S.ONGOING:
                # Fence the zombie: bump the epoch and abort its transaction with the new one.
                fenced = transition(meta, S.PREPARE_EPOCH_FENCE, last_update_ms=now)
                fenced = transition(
                    fenced, S.PREPARE_ABORT, producer_epoch=meta.producer_epoch + 1,
                    last_producer_epoch=meta.producer_epoch,
                )  # fmt: skip
                await self._store(fenced)
                meta = await self._complete(fenced)
            if (
                expected_pid != NO_PRODUCER_ID
                and (expected_pid, expected_epoch) != (meta.producer_id, meta.producer_epoch)
                and meta.state == S.EMPTY
            ):
                return meta.producer_id, meta.producer_epoch  # a retry of a completed bump
            if meta.epoch_exhausted:
                pid = await self.allocate_producer_id()
                bumped = transition(
                    meta, S.EMPTY, producer_id=pid, producer_epoch=0,
                    last_producer_id=meta.producer_id, last_producer_epoch=meta.producer_epoch,
                    timeout_ms=timeout_ms, last_update_ms=now, partitions=frozenset(),
                    groups=frozenset(), txn_start_ms=-1,
                )  # fmt: skip
            else:
                bumped = transition(
                    meta, S.EMPTY, producer_epoch=meta.producer_epoch + 1,
                    last_producer_id=meta.producer_id, last_producer_epoch=meta.producer_epoch,
                    timeout_ms=timeout_ms, last_update_ms=now, partitions=frozenset(),
                    groups=frozenset(), txn_start_ms=-1,
                )  # fmt: skip
            await self._store(bumped)
            return bumped.producer_id, bumped.producer_epoch

    # --- AddPartitionsToTxn / AddOffsetsToTxn ----------------------------------------------

    def _validate(self, transactional_id: str, producer_id: int, epoch: int) -> TxnMetadata:
        meta = self.txns.get(transactional_id)
        if meta is None or meta.producer_id != producer_id:
            raise TxnError(ErrorCode.invalid_producer_id_mapping)
        if epoch != meta.producer_epoch:
            raise TxnError(ErrorCode.producer_fenced, "a newer producer epoch exists")
        return meta

    async def add_partitions(
        self, transactional_id: str, producer_id: int, epoch: int,
        partitions: list[tuple[str, int]],
    ) -> dict[tuple[str, int], ErrorCode]:  # fmt: skip
        """Per partition: none, or raises TxnError for a request-level error. Unknown
        partitions fail the whole request as Kafka does (the others: OPERATION_NOT_ATTEMPTED)."""
        unknown = {tp for tp in partitions if self.broker.partition(*tp) is None}
        if unknown:
            return {
                tp: ErrorCode.unknown_topic_or_partition
                if tp in unknown
                else ErrorCode.operation_not_attempted
                for tp in partitions
            }
        async with self._lock(transactional_id):
            meta = self._validate(transactional_id, producer_id, epoch)
            await self._begin(meta, partitions=partitions)
            return dict.fromkeys(partitions, ErrorCode.none)

    async def add_offsets(
        self, transactional_id: str, producer_id: int, epoch: int, group_id: str
    ) -> None:
        async with self._lock(transactional_id):
            meta = self._validate(transactional_id, producer_id, epoch)
            await self._begin(meta, groups=[group_id])

    async def _begin(
        self, meta: TxnMetadata, *, partitions: Iterable[tuple[str, int]] = (),
        groups: Iterable[str] = (),
    ) -> None:  # fmt: skip
        if meta.state in PREPARING or meta.state == S.PREPARE_EPOCH_FENCE:
            raise TxnError(ErrorCode.concurrent_transactions)
        if meta.state not in (S.EMPTY, S.ONGOING, *COMPLETE):
            raise TxnError(ErrorCode.invalid_txn_state)
        new_partitions = meta.partitions | frozenset(partitions)
        new_groups = meta.groups | frozenset(groups)
        if (
            meta.state == S.ONGOING
            and new_partitions == meta.partitions
            and new_groups == meta.groups
        ):
            return  # nothing new: no write
        now = self.broker.now_ms()
        start = meta.txn_start_ms if meta.state == S.ONGOING else now
        await self._store(
            transition(meta, S.ONGOING, partitions=new_partitions, groups=new_groups,
                       txn_start_ms=start, last_update_ms=now)
        )  # fmt: skip

    # --- EndTxn ------------------------------------------------------------------------------

    async def end_txn(
        self, transactional_id: str, producer_id: int, epoch: int, commit: bool
    ) -> None:
        async with self._lock(transactional_id):
            meta = self.txns.get(transactional_id)
            if meta is None or meta.producer_id != producer_id:
                raise TxnError(ErrorCode.invalid_producer_id_mapping)
            if epoch != meta.producer_epoch:
                raise TxnError(ErrorCode.producer_fenced, "a newer producer epoch exists")
            state = meta.state
            if state == S.ONGOING:
                target = S.PREPARE_COMMIT if commit else S.PREPARE_ABORT
                prepared = transition(meta, target, last_update_ms=self.broker.now_ms())
                await self._store(prepared)
                await self._complete(prepared)
                return
            if state == (S.COMPLETE_COMMIT if commit else S.COMPLETE_ABORT):
                return  # a retry of an EndTxn that already completed
            if state == (S.PREPARE_COMMIT if commit else S.PREPARE_ABORT):
                await self._complete(meta)
                return
            if state in PREPARING or state == S.PREPARE_EPOCH_FENCE:
                raise TxnError(ErrorCode.concurrent_transactions)
            raise TxnError(
                ErrorCode.invalid_txn_state,
                f"cannot {'commit' if commit else 'abort'} in state {state.kafka_name}",
            )

    async def _complete(self, meta: TxnMetadata) -> TxnMetadata:
        """Write markers and the group offsets' outcome for a decided transaction, then the
        Complete record (caller holds the transactional id's lock)."""
        commit = meta.state == S.PREPARE_COMMIT
        partitions = [
            p for p in (self.broker.partition(t, i) for t, i in sorted(meta.partitions))
            if p is not None  # deleted meanwhile: nothing to mark
        ]  # fmt: skip
        await self._write_markers(partitions, meta.producer_id, meta.producer_epoch, commit)
        if meta.groups:
            try:
                await self.groups.complete_txn_offsets(
                    meta.producer_id, commit, meta.producer_epoch
                )
            except CoordinatorUnavailable as exc:
                log.warning("transaction %s: writing its offsets' outcome failed: %s",
                            meta.transactional_id, exc)  # fmt: skip
                raise TxnError(exc.code, str(exc)) from exc
        completed = transition(
            meta, S.COMPLETE_COMMIT if commit else S.COMPLETE_ABORT,
            partitions=frozenset(), groups=frozenset(), last_update_ms=self.broker.now_ms(),
        )  # fmt: skip
        return await self._store(completed)

    async def _write_markers(
        self, partitions: list[Partition], producer_id: int, epoch: int, commit: bool
    ) -> None:
        """Append a marker to each partition and wait until all are durable. A partition whose
        log closed meanwhile (its topic was deleted) needs none; any other storage error is
        raised as TxnError once every append has settled, and the decided transaction stays in
        its Prepare state, so a retry writes the markers again (harmless where they landed)."""
        outcome = await self.append_markers(
            partitions, producer_id, epoch, commit, COORDINATOR_EPOCH
        )
        failures = [exc for exc in outcome.values() if not isinstance(exc, LogClosed | None)]
        if failures:
            log.warning("writing %s markers of producer %d failed: %s",
                        "COMMIT" if commit else "ABORT", producer_id, failures[0])  # fmt: skip
            raise _unavailable(failures[0])

    async def append_markers(
        self, partitions: list[Partition], producer_id: int, epoch: int, commit: bool,
        coordinator_epoch: int,
    ) -> dict[Partition, StorageError | None]:  # fmt: skip
        """Append a marker to each partition (all before the first await, so a caller's checks
        still hold when they land) and wait until they are durable: per partition, None or the
        storage error that refused it. Anything else is a bug and raised."""
        outcome: dict[Partition, StorageError | None] = {}
        waits: dict[Partition, asyncio.Future[None]] = {}
        for partition in partitions:
            try:
                waits[partition] = self.producers.append_marker(
                    partition, producer_id, epoch, commit, coordinator_epoch
                )
            except StorageError as exc:
                outcome[partition] = exc
        results = await asyncio.gather(*waits.values(), return_exceptions=True)
        for partition, result in zip(waits, results, strict=True):
            if isinstance(result, StorageError):
                outcome[partition] = result
            elif isinstance(result, BaseException):
                raise result
            else:
                outcome[partition] = None
        return outcome

    # --- the produce path ----------------------------------------------------------------------

    def check_txn_append(self, header: BatchHeader, partition: Partition) -> AppendCheck | None:
        """KIP-890 part 1: a transactional batch must belong to the producer's ongoing
        transaction, and that transaction must include the partition."""
        meta = self._by_pid.get(header.producer_id)
        if meta is not None and header.producer_epoch < meta.producer_epoch:
            return AppendCheck(ErrorCode.invalid_producer_epoch, "producer was fenced", -1)
        if (
            meta is None
            or meta.state != S.ONGOING
            or (partition.topic, partition.index) not in meta.partitions
        ):
            return AppendCheck(
                ErrorCode.invalid_txn_state, "partition was not added to the transaction", -1
            )
        return None

    # --- timeouts ------------------------------------------------------------------------------

    async def complete_prepared(self) -> list[str]:
        """Write the markers of every decided transaction still in a Prepare state: left by a
        crash (start-up) or by a marker write that failed (the sweep retries it, as Kafka's
        marker channel retries until it succeeds). Returns the ids completed."""
        done = []
        for txn_id in [m.transactional_id for m in self.txns.values() if m.state in PREPARING]:
            async with self._lock(txn_id):
                meta = self.txns.get(txn_id)
                if meta is None or meta.state not in PREPARING:
                    continue
                try:
                    await self._complete(meta)
                except TxnError as exc:
                    log.warning("transaction %s stays %s until a later retry: %s",
                                txn_id, meta.state.kafka_name, exc)  # fmt: skip
                    continue
                done.append(txn_id)
        return done

    async def abort_expired(self) -> list[str]:
        """Abort every ongoing transaction older than its timeout, bumping the epoch so the
        producer is fenced (Kafka's abortTimedOutTransactions). Returns the ids aborted."""
        now = self.broker.now_ms()
        expired = [
            m.transactional_id for m in self.txns.values()
            if m.state == S.ONGOING and now - m.txn_start_ms > m.timeout_ms
        ]  # fmt: skip
        done = []
        for txn_id in expired:
            async with self._lock(txn_id):
                meta = self.txns.get(txn_id)
                if meta is None or meta.state != S.ONGOING:
                    continue
                if now - meta.txn_start_ms <= meta.timeout_ms:
                    continue
                log.info("aborting transaction %s: open longer than %d ms", txn_id, meta.timeout_ms)
                fenced = transition(
                    meta, S.PREPARE_ABORT, producer_epoch=meta.producer_epoch + 1,
                    last_producer_epoch=meta.producer_epoch, last_update_ms=now,
                )  # fmt: skip
                try:
                    await self._store(fenced)
                    await self._complete(fenced)
                except TxnError as exc:
                    log.warning("aborting transaction %s failed; retried later: %s", txn_id, exc)
                    continue
                done.append(txn_id)
        return done

    async def expire_transactional_ids(self) -> list[str]:
        """Forget transactional ids that finished and stayed idle longer than
        transactional.id.expiration.ms (Kafka's removeExpiredTransactionalIds): a tombstone in
        the transaction log, so a restart forgets them too. Returns the ids forgotten."""
        now = self.broker.now_ms()
        limit = self.broker.config.transactional_id_expiration_ms
        cutoff = now - limit

        def expired(meta: TxnMetadata | None) -> bool:
            if meta is None or meta.state not in _FINISHED:
                return False
            return 0 <= meta.last_update_ms < cutoff

        idle = [m.transactional_id for m in self.txns.values() if expired(m)]
        forgotten = []
        for txn_id in idle:
            async with self._lock(txn_id):
                if not expired(self.txns.get(txn_id)):
                    continue
                try:
                    await self._write([(encode_key("txn", txn_id), None)])
                except TxnError as exc:
                    log.warning("cannot forget transactional id %s yet: %s", txn_id, exc)
                    break  # the disk refuses writes: the next sweep tries again
                forgotten.append(txn_id)
            self._locks.pop(txn_id, None)
        if forgotten:
            log.info("forgot %d idle transactional ids", len(forgotten))
        return forgotten

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_interval_ms / 1000)
            try:
                await self.complete_prepared()
                await self.abort_expired()
                await self.orphans.abort_due()
                await self.expire_transactional_ids()
            except Exception:
                log.exception("transaction timeout sweep failed")

    # --- transactions the coordinator does not know (orphans.py) -------------------------------

    def knows_open(self, producer_id: int) -> bool:
        """Does this coordinator hold a transaction of `producer_id` whose markers it will still
        write itself (Ongoing, or decided but not Complete)? Such a transaction may yet commit."""
        meta = self._by_pid.get(producer_id)
        return meta is not None and meta.state in _OPEN

    def by_producer_id(self, producer_id: int) -> TxnMetadata | None:
        """The transactional id's metadata whose current producer id this is, if any."""
        return self._by_pid.get(producer_id)

    # --- TxnOffsetCommit ---------------------------------------------------------------------

    def validate_offset_commit(
        self, transactional_id: str, producer_id: int, epoch: int, group_id: str
    ) -> None:
        meta = self._validate(transactional_id, producer_id, epoch)
        if meta.state != S.ONGOING or group_id not in meta.groups:
            raise TxnError(ErrorCode.invalid_txn_state, "AddOffsetsToTxn was not called")

    # --- operators -----------------------------------------------------------------------------

    def list(self) -> list[TxnMetadata]:
        return list(self.txns.values())


def _is_known_producer(meta: TxnMetadata, pid: int, epoch: int) -> bool:
    """KIP-360: the producer's idea of its id/epoch is current, or the one before the last
    bump (a retry), else it is a zombie."""
    if pid == meta.producer_id and epoch == meta.producer_epoch:
        return True
    return (pid == meta.last_producer_id and epoch == meta.last_producer_epoch) or (
        pid == meta.producer_id and epoch == meta.last_producer_epoch
    )


def metadata_topics(meta: TxnMetadata) -> list[dict[str, Any]]:
    by_topic: dict[str, list[int]] = {}
    for topic, index in sorted(meta.partitions):
        by_topic.setdefault(topic, []).append(index)
    return [{"topic": t, "partitions": p} for t, p in by_topic.items()]
