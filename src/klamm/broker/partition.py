"""A partition as the broker serves it: its log, its high watermark, and parked fetches.

The high watermark is the end of the durable prefix of the log (see durability.py); consumers
never read past it. Fetches that found too little data park a `FetchWaiter` here and are woken
the moment the high watermark advances, which is what sets end-to-end latency.

Waking is O(1) per parked fetch: the partition only tells each waiter *that* it moved; the fetch
decides from offsets whether it has enough (as Kafka's DelayedFetch.tryComplete), so a busy
partition with many parked fetches never re-reads data on the event loop per append.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol

from klamm.protocol.record_batch import iter_batches

if TYPE_CHECKING:
    from klamm.storage import PartitionLog


class FetchWaiter:
    """One parked fetch: the partitions that moved since it last looked, and a future that
    completes at the first such move. Stays registered on its partitions until removed, so a
    fetch over many partitions is not re-registered on every wake-up."""

    __slots__ = ("_future", "woken")

    def __init__(self) -> None:
        self._future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.woken: set[Partition] = set()

    def wake(self, partition: Partition) -> None:
        self.woken.add(partition)
        if not self._future.done():
            self._future.set_result(None)

    async def wait(self, timeout: float) -> set[Partition]:
        """The partitions that moved (empty on timeout), clearing them for the next wait."""
        if not self.woken:
            await asyncio.wait((self._future,), timeout=timeout)
        woken, self.woken = self.woken, set()
        if self._future.done():
            self._future = asyncio.get_running_loop().create_future()
        return woken


class TransactionState(Protocol):
    """Where a partition learns about its transactions: the broker's producer state
    (klamm.broker.transactions.producers), given to each partition when it is attached."""

    def stable_offset(self, partition: Partition) -> int:
        """First offset of the partition's earliest open transaction, else its log end."""
        ...

    def aborted_transactions(
        self, partition: Partition, start: int, end: int
    ) -> list[dict[str, int]]: ...


class Partition:
    __slots__ = (
        "_transactions",
        "_waiters",
        "high_watermark",
        "index",
        "internal",
        "log",
        "topic",
    )

    def __init__(
        self,
        topic: str,
        index: int,
        log: PartitionLog,
        *,
        internal: bool = False,
        transactions: TransactionState | None = None,
    ) -> None:
        self.topic = topic
        self.index = index
        self.log = log
        # __consumer_offsets / __transaction_state: written by the coordinators only.
        self.internal = internal
        # After recovery the whole log on disk is the durable prefix.
        self.high_watermark = log.log_end_offset
        self._waiters: set[FetchWaiter] = set()
        # None: a partition without transactions (tests of the fetch and durability paths).
        self._transactions = transactions

    def advance_high_watermark(self, offset: int) -> None:
        if offset <= self.high_watermark:
            return
        self.high_watermark = offset
        self.wake_waiters()

    def wake_waiters(self) -> None:
        """Tell every parked fetch this partition moved: new data, or it is going away."""
        for waiter in self._waiters:
            waiter.wake(self)

    @property
    def last_stable_offset(self) -> int:
        """First offset of the earliest open transaction, else the high watermark."""
        if self._transactions is not None:
            return min(self._transactions.stable_offset(self), self.high_watermark)
        return self.high_watermark

    def aborted_transactions(self, start: int, end: int) -> list[dict[str, int]]:
        """Aborted transactions overlapping [start, end): (producer_id, first_offset) pairs for
        read_committed fetches."""
        if self._transactions is None:
            return []
        return self._transactions.aborted_transactions(self, start, end)

    def reset_high_watermark(self) -> None:
        """After truncation or deletion of records: clamp to what the log now holds."""
        end = self.log.log_end_offset
        if end < self.high_watermark:
            self.high_watermark = end
            self.wake_waiters()  # parked fetches past the new end answer now

    def add_waiter(self, waiter: FetchWaiter) -> None:
        self._waiters.add(waiter)

    def remove_waiter(self, waiter: FetchWaiter) -> None:
        self._waiters.discard(waiter)

    def read(
        self, offset: int, max_bytes: int, upto: int | None = None, *, min_one: bool = True
    ) -> bytes:
        """Whole batches from the one containing `offset`, none at or past `upto` (default: the
        high watermark). Raises the storage layer's OffsetOutOfRange."""
        limit = self.high_watermark if upto is None else upto
        if offset >= limit:
            if offset > self.log.log_end_offset:
                return self.log.read(offset, max_bytes)  # raises OffsetOutOfRange
            return b""
        data = self.log.read(offset, max_bytes, min_one=min_one)
        end = 0
        for pos, header in iter_batches(data):
            if header.base_offset >= limit:
                break
            end = pos + header.size
        return data if end == len(data) else data[:end]
