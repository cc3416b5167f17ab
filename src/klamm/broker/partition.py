"""A partition as the broker serves it: its log, its high watermark, and parked fetches.

The high watermark is the end of the durable prefix of the log (see durability.py); consumers
never read past it. Fetches that found too little data park a future here and are woken the
moment the high watermark advances, which is what sets end-to-end latency.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from klamm.protocol.record_batch import iter_batches

if TYPE_CHECKING:
    from klamm.storage.log import PartitionLog


class Partition:
    __slots__ = (
        "_waiters",
        "aborted_hook",
        "high_watermark",
        "index",
        "internal",
        "log",
        "stable_offset_hook",
        "topic",
    )

    def __init__(
        self, topic: str, index: int, log: PartitionLog, *, internal: bool = False
    ) -> None:
        self.topic = topic
        self.index = index
        self.log = log
        # __consumer_offsets / __transaction_state: written by the coordinators only.
        self.internal = internal
        # After recovery the whole log on disk is the durable prefix.
        self.high_watermark = log.log_end_offset
        self._waiters: set[asyncio.Future[None]] = set()
        self.stable_offset_hook: Callable[[Partition], int] | None = None
        self.aborted_hook: Callable[[Partition, int, int], list[dict[str, int]]] | None = None

    def advance_high_watermark(self, offset: int) -> None:
        if offset <= self.high_watermark:
            return
        self.high_watermark = offset
        self.wake_waiters()

    def wake_waiters(self) -> None:
        """Complete every parked fetch: new data, or the partition is going away."""
        waiters, self._waiters = self._waiters, set()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    @property
    def last_stable_offset(self) -> int:
        """First offset of the earliest open transaction, else the high watermark.
        Transactions (klamm.broker.transactions) replace `stable_offset_hook`."""
        if self.stable_offset_hook is not None:
            return min(self.stable_offset_hook(self), self.high_watermark)
        return self.high_watermark

    def aborted_transactions(self, start: int, end: int) -> list[dict[str, int]]:
        """Aborted transactions overlapping [start, end): (producer_id, first_offset) pairs for
        read_committed fetches."""
        if self.aborted_hook is None:
            return []
        return self.aborted_hook(self, start, end)

    def reset_high_watermark(self) -> None:
        """After truncation or deletion of records: clamp to what the log now holds."""
        self.high_watermark = min(self.high_watermark, self.log.log_end_offset)

    def add_waiter(self, waiter: asyncio.Future[None]) -> None:
        self._waiters.add(waiter)

    def remove_waiter(self, waiter: asyncio.Future[None]) -> None:
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
