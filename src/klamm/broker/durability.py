"""Group commit: one fsync covers every append waiting at that moment (DESIGN.md §3).

Appends happen on the event loop; `appended(partition)` records that the partition's log must be
made durable up to its current end and returns a future for that moment. One flush round runs at a
time, in a worker thread (fsync never blocks the event loop); appends arriving during a round
wait for the next one, which starts as soon as the current ends. A round's success advances each
partition's high watermark to the end offset it recorded, which is what makes the data visible to
consumers: nothing a consumer reads can be lost by a crash.

With flush policy "os" (Kafka's own default: page cache only), appends are durable "enough" at
once and the high watermark follows the log end immediately.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from klamm.broker.config import FlushPolicy
    from klamm.broker.partition import Partition

log = logging.getLogger("klamm.broker.durability")


class GroupCommit:
    def __init__(self, policy: FlushPolicy) -> None:
        self._policy = policy
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="klamm-fsync")
        self._dirty: dict[Partition, int] = {}
        self._waiting: list[asyncio.Future[None]] = []
        self._running = False
        self.rounds = 0  # number of flush rounds run: for tests and metrics

    def appended(self, partition: Partition) -> asyncio.Future[None]:
        """Mark `partition` as appended to; the future resolves once that data is durable."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        end = partition.log.log_end_offset
        if self._policy == "os":
            partition.advance_high_watermark(end)
            future.set_result(None)
            return future
        self._dirty[partition] = end
        self._waiting.append(future)
        if not self._running:
            self._start_round(loop)
        return future

    def _start_round(self, loop: asyncio.AbstractEventLoop) -> None:
        self._running = True
        dirty, self._dirty = self._dirty, {}
        waiting, self._waiting = self._waiting, []
        work = loop.run_in_executor(self._executor, _flush_logs, list(dirty))
        work.add_done_callback(lambda done: self._round_done(loop, done, dirty, waiting))

    def _round_done(
        self,
        loop: asyncio.AbstractEventLoop,
        done: asyncio.Future[None],
        dirty: dict[Partition, int],
        waiting: list[asyncio.Future[None]],
    ) -> None:
        self._running = False
        self.rounds += 1
        exc = done.exception()
        if exc is None:
            for partition, end in dirty.items():
                partition.advance_high_watermark(end)
        else:
            log.error("fsync failed; %d appends not acknowledged", len(waiting), exc_info=exc)
        for future in waiting:
            if future.done():
                continue
            if exc is None:
                future.set_result(None)
            else:
                future.set_exception(exc)
        if self._dirty:
            self._start_round(loop)

    async def wait_idle(self) -> None:
        """Wait until no round is running and nothing is dirty (shutdown, tests)."""
        while self._running or self._dirty:
            await asyncio.sleep(0.001)

    def close(self) -> None:
        self._executor.shutdown(wait=True)


def _flush_logs(partitions: list[Partition]) -> None:
    for partition in partitions:
        partition.log.flush()
