"""Group commit: one fsync covers every append waiting at that moment (DESIGN.md §3).

Appends happen on the event loop; `appended(partition)` records that the partition's log must be
made durable up to its current end and returns a future for that moment. One flush round runs at a
time, in a worker thread (fsync never blocks the event loop); appends arriving during a round
wait for the next one, which starts as soon as the current ends. A round's success advances each
partition's high watermark to the end offset it recorded, which is what makes the data visible to
consumers: nothing a consumer reads can be lost by a crash.

With flush policy "os" (Kafka's own default: page cache only), appends are durable "enough" at
once and the high watermark follows the log end immediately.

A log closed while its fsync waited (its topic was deleted) fails its futures with `LogClosed`
and is not logged as a disk failure: the produce handler answers it as a vanished partition.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from klamm.storage.errors import LogClosed

if TYPE_CHECKING:
    from klamm.broker.config import FlushPolicy
    from klamm.broker.partition import Partition

log = logging.getLogger("klamm.broker.durability")


class GroupCommit:
    def __init__(self, policy: FlushPolicy) -> None:
        self._policy = policy
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="klamm-fsync")
        # partition -> (log end offset to make durable, futures waiting for it)
        self._dirty: dict[Partition, tuple[int, list[asyncio.Future[None]]]] = {}
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
        entry = self._dirty.get(partition)
        if entry is None:
            self._dirty[partition] = (end, [future])
        else:
            entry[1].append(future)
            self._dirty[partition] = (end, entry[1])
        if not self._running:
            self._start_round(loop)
        return future

    def _start_round(self, loop: asyncio.AbstractEventLoop) -> None:
        self._running = True
        dirty, self._dirty = self._dirty, {}
        work = loop.run_in_executor(self._executor, _flush_logs, list(dirty))
        work.add_done_callback(lambda done: self._round_done(loop, done, dirty))

    def _round_done(
        self,
        loop: asyncio.AbstractEventLoop,
        done: asyncio.Future[dict[Partition, BaseException]],
        dirty: dict[Partition, tuple[int, list[asyncio.Future[None]]]],
    ) -> None:
        self._running = False
        self.rounds += 1
        failures = done.result()
        for partition, (end, futures) in dirty.items():
            failure = failures.get(partition)
            if failure is None:
                partition.advance_high_watermark(end)
            else:
                _log_failure(partition, len(futures), failure)
            for future in futures:
                if future.done():
                    continue
                if failure is None:
                    future.set_result(None)
                else:
                    future.set_exception(failure)
        if self._dirty:
            self._start_round(loop)

    async def wait_idle(self) -> None:
        """Wait until no round is running and nothing is dirty (shutdown, tests)."""
        while self._running or self._dirty:
            await asyncio.sleep(0.001)

    def close(self) -> None:
        self._executor.shutdown(wait=True)


def _log_failure(partition: Partition, waiting: int, failure: BaseException) -> None:
    if isinstance(failure, LogClosed):
        log.debug("%s-%d was closed (topic deleted) before its fsync; %d appends not "
                  "acknowledged", partition.topic, partition.index, waiting)  # fmt: skip
    else:
        log.error("fsync of %s-%d failed; %d appends not acknowledged: %s",
                  partition.topic, partition.index, waiting, failure)  # fmt: skip


def _flush_logs(partitions: list[Partition]) -> dict[Partition, BaseException]:
    """fsync each log; one failing log (deleted topic, bad disk) does not fail the others."""
    failures: dict[Partition, BaseException] = {}
    for partition in partitions:
        try:
            partition.log.flush()
        except Exception as exc:
            failures[partition] = exc
    return failures
