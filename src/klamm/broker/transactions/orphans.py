"""Open transactions the transaction coordinator does not know ("orphans"), and markers written
by hand (beyond Kafka, which trusts its coordinator's log).

An orphan is an open transaction in a data partition (or transactional offsets pending in
`__consumer_offsets`) whose producer the coordinator holds no open transaction for: its
`__transaction_state` records were lost (a damaged or removed log) while it was open. It can
never commit, because EndTxn needs the coordinator's state, and it holds the partition's last
stable offset, and every read_committed consumer, for ever.

`Orphans.abort_due` (run by the coordinator's sweep) aborts each once it has been seen orphaned
for its timeout; `Orphans.write_markers_by_hand` serves WriteTxnMarkers, with which an operator
ends one at once. Neither ever touches a transaction the coordinator knows is open
(`TransactionCoordinator.knows_open`): the coordinator ends those itself, and a marker from
outside would split one transaction's outcome between its partitions.

State: when each orphan was first seen, owned here and changed only by `abort_due`.
Concurrency: runs on the event loop; each check and the marker append it guards happen with no
await in between (`TransactionCoordinator.append_markers` appends before its first await).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from klamm.broker.coordinator_runtime import CoordinatorUnavailable
from klamm.broker.groups.coordinator import OFFSETS_TOPIC
from klamm.broker.transactions.state import COORDINATOR_EPOCH, NO_EPOCH, TXN_TOPIC
from klamm.protocol.errors import ErrorCode

if TYPE_CHECKING:
    from klamm.broker.interfaces import CoordinatorHost
    from klamm.broker.partition import Partition
    from klamm.broker.transactions.coordinator import TransactionCoordinator, TxnOffsets
    from klamm.broker.transactions.producers import ProducerStateService

log = logging.getLogger("klamm.broker.transactions")

# The scan checks this many partitions between yields to the event loop: about 1 ms of work
# (2 us a partition measured), so a broker with many partitions never stalls other clients for
# a whole scan.
ORPHAN_SCAN_BATCH = 500


class Orphans:
    def __init__(
        self, coordinator: TransactionCoordinator, broker: CoordinatorHost,
        producers: ProducerStateService, groups: TxnOffsets,
    ) -> None:  # fmt: skip
        self._coordinator = coordinator
        self._broker = broker
        self._producers = producers
        self._groups = groups
        # (topic, partition, producer id, first offset) -> when the sweep first saw it orphaned;
        # ("__consumer_offsets", -1, producer id, -1) for pending transactional offsets.
        self._seen: dict[tuple[str, int, int, int], int] = {}

    def _orphan_timeout_ms(self, producer_id: int) -> int:
        """How long an orphaned transaction may stay open: its producer's transaction timeout
        if this coordinator still knows the producer, else transaction.max.timeout.ms, the
        longest any transaction may legally stay open (Kafka's own bound)."""
        meta = self._coordinator.by_producer_id(producer_id)
        if meta is not None:
            return meta.timeout_ms
        return self._broker.config.transaction_max_timeout_ms

    async def abort_due(self) -> list[tuple[str, int, int]]:
        """Abort the orphans whose timeout has passed (the coordinator's sweep calls this).

        Each one is aborted, with its producer's epoch, once it has been seen orphaned for its
        timeout (`_orphan_timeout_ms`, counted from the first sweep that saw it, since when it
        was opened is lost with the state), as the coordinator's own timeout would have aborted
        it. Transactional offset commits waiting in `__consumer_offsets` for such a producer are
        dropped the same way. A transaction this coordinator knows is never touched here: its
        own EndTxn, timeout or fencing ends it. Returns (topic, partition, producer id) aborted;
        `__consumer_offsets` entries have partition -1."""
        now = self._broker.now_ms()
        seen: dict[tuple[str, int, int, int], int] = {}
        due: list[tuple[Partition | None, int, int, int]] = []  # partition, pid, epoch, c.epoch

        def note(key: tuple[str, int, int, int], where: str) -> bool:
            """Remember an orphan; True once its timeout has passed."""
            since = self._seen.get(key)
            timeout = self._orphan_timeout_ms(key[2])
            if since is None:
                since = now
                log.warning(
                    "%s holds an open transaction of producer %d that the transaction "
                    "coordinator does not know (its state in %s was lost?); it is aborted in "
                    "%d ms unless ended by hand (klamm transactions abort)",
                    where, key[2], TXN_TOPIC, timeout,
                )  # fmt: skip
            seen[key] = since
            return now - since >= timeout

        for i, partition in enumerate(list(self._broker.partitions())):
            if i and i % ORPHAN_SCAN_BATCH == 0:
                await asyncio.sleep(0)  # let requests in between: see ORPHAN_SCAN_BATCH
            # Cheap filter: only a partition whose LSO trails its high watermark has an open
            # transaction that holds anyone back.
            if partition.internal or partition.last_stable_offset >= partition.high_watermark:
                continue
            for producer in self._producers.describe(partition):
                start, pid = producer["current_txn_start_offset"], producer["producer_id"]
                if start < 0 or self._coordinator.knows_open(pid):
                    continue
                key = (partition.topic, partition.index, pid, start)
                where = f"partition {partition.topic}-{partition.index} (from offset {start})"
                if note(key, where):
                    due.append((partition, pid, producer["producer_epoch"],
                                producer["coordinator_epoch"]))  # fmt: skip
        for pid in self._groups.pending_txn_producers():
            if not self._coordinator.knows_open(pid) and note(
                (OFFSETS_TOPIC, -1, pid, -1), OFFSETS_TOPIC
            ):
                due.append((None, pid, NO_EPOCH, COORDINATOR_EPOCH))
        self._seen = seen
        aborted: list[tuple[str, int, int]] = []
        for target, pid, epoch, coordinator_epoch in due:
            if self._coordinator.knows_open(pid):
                continue  # re-initialised while an earlier abort awaited its write
            if target is None:
                where, index = OFFSETS_TOPIC, -1
                try:
                    await self._groups.complete_txn_offsets(pid, False, epoch)
                except CoordinatorUnavailable as exc:
                    log.warning("dropping the pending offsets of producer %d failed: %s", pid, exc)
                    continue
            else:
                if self._broker.partition(target.topic, target.index) is not target:
                    continue  # deleted meanwhile
                where, index = target.topic, target.index
                outcome = await self._coordinator.append_markers(
                    [target], pid, epoch, False, max(coordinator_epoch, COORDINATOR_EPOCH)
                )
                failure = outcome.get(target)
                if failure is not None:
                    log.warning("aborting the orphaned transaction of producer %d in %s-%d "
                                "failed; retried later: %s",
                                pid, where, index, failure)  # fmt: skip
                    continue
            log.warning("aborted the orphaned transaction of producer %d in %s%s", pid, where,
                        "" if index < 0 else f"-{index}")  # fmt: skip
            self._seen = {k: v for k, v in self._seen.items() if k[:3] != (where, index, pid)}
            aborted.append((where, index, pid))
        return aborted

    async def write_markers_by_hand(
        self, producer_id: int, epoch: int, commit: bool, coordinator_epoch: int,
        partitions: list[tuple[str, int]],
    ) -> dict[tuple[str, int], ErrorCode]:  # fmt: skip
        """WriteTxnMarkers (API 27), which in Kafka only the coordinator sends and which an
        operator's tool (kafka-transactions.sh abort, klamm transactions abort) uses to end a
        hanging transaction. Per partition, Kafka's checks: an epoch older than the producer's
        is INVALID_PRODUCER_EPOCH, an older coordinator epoch TRANSACTION_COORDINATOR_FENCED.
        Beyond Kafka, a transaction this coordinator still holds open is refused with
        INVALID_TXN_STATE: the coordinator writes its markers itself, and a marker by hand
        would split one transaction's outcome between its partitions. A marker for
        `__consumer_offsets` ends the producer's pending transactional offset commits."""
        results: dict[tuple[str, int], ErrorCode] = {}
        targets: dict[Partition, tuple[str, int]] = {}
        for tp in dict.fromkeys(partitions):
            partition = self._broker.partition(*tp)
            if partition is None:
                results[tp] = ErrorCode.unknown_topic_or_partition
            elif self._coordinator.knows_open(producer_id):
                results[tp] = ErrorCode.invalid_txn_state
            elif partition.internal:
                # Only __consumer_offsets takes a marker (it ends pending offsets, below).
                results[tp] = (
                    ErrorCode.none if tp[0] == OFFSETS_TOPIC else ErrorCode.invalid_topic_exception
                )
            else:
                results[tp] = self._check_marker(partition, producer_id, epoch, coordinator_epoch)
                if results[tp] == ErrorCode.none:
                    targets[partition] = tp
        outcome = await self._coordinator.append_markers(
            list(targets), producer_id, epoch, commit, coordinator_epoch
        )
        for partition, failure in outcome.items():
            if failure is not None:
                log.warning("marker by hand for producer %d in %s-%d failed: %s",
                            producer_id, partition.topic, partition.index, failure)  # fmt: skip
                results[targets[partition]] = failure.code
        for tp, code in results.items():
            if tp[0] == OFFSETS_TOPIC and code == ErrorCode.none:
                try:
                    await self._groups.complete_txn_offsets(producer_id, commit, epoch)
                except CoordinatorUnavailable as exc:
                    results[tp] = exc.cause.code  # as a data partition's failed marker
        done = [f"{t}-{p}" for t, p in results if results[(t, p)] == ErrorCode.none]
        if done:
            log.warning("%s marker for producer %d (epoch %d) written by hand to %s",
                        "COMMIT" if commit else "ABORT", producer_id, epoch,
                        ", ".join(done))  # fmt: skip
        return results

    def _check_marker(
        self, partition: Partition, producer_id: int, epoch: int, coordinator_epoch: int
    ) -> ErrorCode:
        """Kafka's checks of a marker against the producer's state in the partition."""
        for producer in self._producers.describe(partition):
            if producer["producer_id"] != producer_id:
                continue
            if epoch < producer["producer_epoch"]:
                return ErrorCode.invalid_producer_epoch
            if coordinator_epoch < producer["coordinator_epoch"]:
                return ErrorCode.transaction_coordinator_fenced
        return ErrorCode.none
