"""Producer ids: which ones the broker has handed out, and the next one (Kafka's
ProducerIdManager).

Ids are handed out by InitProducerId in increasing order from blocks reserved ahead, as Kafka's
brokers reserve blocks of 1000 from the controller: a record naming the block's end is written to
`__transaction_state` and made durable (fsynced, whatever the flush policy) before any id of the
block is handed out, so one disk write covers a thousand producers.

Invariants (checked by tests/broker/test_producer_id_forgery.py):

1. Every id ever handed out is below `next_id`, and `next_id` never decreases, across restarts
   too: at start-up it is at least the end of the newest reserved block (the unused rest of
   that block is skipped, since which of its ids went out is not recorded), and above every
   producer id the transaction log or any partition's producer state still names. So no id is
   ever handed out twice.
2. Hence an id at or above `next_id` was never handed out: a batch carrying one was forged (or
   comes from a broker whose data was replaced). Accepting it would be a trap: the next real
   producer to get that id sends epoch 0 sequence 0 too, its first batch would be taken for a
   retry of the forged one, acknowledged at the forged record's offset, and dropped. Produce
   refuses such a batch with UNKNOWN_PRODUCER_ID; clients answer that by asking for a new id.
   (Kafka itself does not check this: going beyond it costs one comparison per batch.)

Concurrency: event loop only. `allocate` holds its own lock, since reserving a block awaits a
disk write; the other methods never await.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

__all__ = ["PID_BLOCK", "ProducerIdAllocator"]

log = logging.getLogger("klamm.broker.transactions")

# Kafka reserves producer ids from the controller in blocks of 1000 (ProducerIdManager): one
# durable write per thousand InitProducerId calls, and at most 999 ids skipped by a restart.
PID_BLOCK = 1000
# Counting from 0 at a million InitProducerId a second takes over 2000 years to get here, so a
# stored id this high was forged (written before this broker refused unallocated ids). It is not
# counted as handed out (it never will be), lest it push `next_id` towards the Int64 limit where
# InitProducerId could no longer answer.
UNREACHABLE_ID = 2**56


class ProducerIdAllocator:
    """See the module docstring."""

    def __init__(self, block_size: int = PID_BLOCK) -> None:
        self._block_size = block_size
        self._next = 0  # the next id to hand out (invariant 1)
        self._block_end = 0  # ids below this are reserved by a durable record
        self._reserving = -1  # the block end `allocate` is writing right now
        self._lock = asyncio.Lock()

    @property
    def next_id(self) -> int:
        return self._next

    def is_allocated(self, producer_id: int) -> bool:
        """May `producer_id` have been handed out by this broker (invariant 2)?"""
        return 0 <= producer_id < self._next

    def observe(self, producer_id: int) -> None:
        """An id found in stored state (transaction log, a partition's producers) at start-up:
        it was handed out, so it is never handed out again."""
        if producer_id >= UNREACHABLE_ID:
            log.warning("ignoring stored producer id %d: no broker hands out ids that high",
                        producer_id)  # fmt: skip
        elif producer_id >= self._next:
            self._next = producer_id + 1

    def replay_block(self, end: int) -> None:
        """A block-reservation record read back at start-up: every id of the block counts as
        handed out. (The record `allocate` is writing right now is applied by `allocate`, once
        `reserve` has made it durable.)"""
        if end == self._reserving:
            return
        self._block_end = max(self._block_end, end)
        self._next = max(self._next, end)

    async def allocate(self, reserve: Callable[[int], Awaitable[None]]) -> int:
        """The next id. `reserve(end)` must make a block-reservation record durable (and may
        replay it); if it raises, no id is handed out, nothing changes here, and the next call
        reserves again."""
        async with self._lock:
            if self._next >= self._block_end:
                end = self._next + self._block_size
                self._reserving = end
                try:
                    await reserve(end)
                finally:
                    self._reserving = -1
                self._block_end = max(self._block_end, end)
            producer_id = self._next
            self._next += 1
            return producer_id
