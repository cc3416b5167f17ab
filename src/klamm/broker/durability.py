"""Group commit: one fsync covers every append waiting at that moment (DESIGN.md §3).

Appends happen on the event loop; `appended(partition)` records that the partition's log must be
made durable up to its current end and returns a future for that moment. One flush round runs at a
time (per lane, below); appends arriving during a round wait for the next one, which starts as
soon as the current ends. A round's success advances each partition's high watermark to the end
offset it recorded, which is what makes the data visible to consumers: nothing a consumer reads
can be lost by a crash.

Who waits comes first. An append is *urgent* when someone waits for its fsync before being
answered (acks=all, the coordinators' own records) and *lazy* when nobody does (acks=0 and acks=1
are answered once the write reaches the OS; their fsync only moves the high watermark). Each kind
has its own lane (rounds, threads), and the lanes run side by side: a client writing to thousands
of partitions with acks=0 fills the lazy lane, and a small acks=all write never waits behind those
fsyncs (it once did: such a client moved another's acks=all median from 1 ms to 981 ms). Lazy
partitions still flush continuously, so their data reaches consumers. An urgent append takes over
the lazy waiters of its partition that are not yet in a round: one fsync covers both. Two lanes
may flush the same log at once; its flush lock serialises them (storage/log.py).

Within a lane, a round's fsyncs run in parallel on the lane's threads (fsync releases the GIL, and
the file system commits concurrent fsyncs together: measured here, 500 small fsyncs cost 195 us
each on 1 thread, 93 on 2, 72 on 4, 67 on 8).

With flush policy "os" (Kafka's own default: page cache only), appends are durable "enough" at
once and the high watermark follows the log end immediately.

A log closed while its fsync waited (its topic was deleted) fails its futures with `LogClosed`
and is not logged as a disk failure: the produce handler answers it as a vanished partition.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from klamm.storage import LogClosed

if TYPE_CHECKING:
    from klamm.broker.config import FlushPolicy
    from klamm.broker.partition import Partition

log = logging.getLogger("klamm.broker.durability")

# Threads per lane. Urgent rounds are small (the appends of the last round's duration), and
# two threads keep one slow fsync from holding the others. The lazy lane may hold thousands of
# partitions; one thread flushes them at ~5,000 fsyncs a second here (a partition written again
# meanwhile is flushed once), and leaves the file system's journal, the GIL and the 2 cores to
# the urgent lane and the event loop. (bench/fsync_fanout.py: 1 and 2 lazy threads were within
# this machine's noise for the victim; 1 is the lighter load.)
URGENT_THREADS = 2
LAZY_THREADS = 1

# partition -> (log end offset to make durable, futures waiting for it)
_Waiting = dict["Partition", tuple[int, list[asyncio.Future[None]]]]


class _Lane:
    """Rounds of one kind of append: one round at a time, its fsyncs spread over the lane's
    threads; appends arriving during a round wait for the next, which starts when it ends."""

    def __init__(self, name: str, threads: int) -> None:
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)
        self._threads = threads
        self.waiting: _Waiting = {}  # for the next round
        self.running = False
        # Set while no round runs. `waiting` is never non-empty while idle (add() starts a round,
        # a finished round starts the next), so idle means nothing left to make durable.
        self.idle = asyncio.Event()
        self.idle.set()
        self.rounds = 0

    def add(self, partition: Partition, end: int, futures: list[asyncio.Future[None]]) -> None:
        entry = self.waiting.get(partition)
        if entry is not None:
            futures = entry[1] + futures
        self.waiting[partition] = (end, futures)
        if not self.running:
            self._start_round(asyncio.get_running_loop())

    def _start_round(self, loop: asyncio.AbstractEventLoop) -> None:
        self.running = True
        self.idle.clear()
        batch, self.waiting = self.waiting, {}
        queue = collections.deque(batch)
        workers = [
            loop.run_in_executor(self._executor, _flush_logs, queue)
            for _ in range(min(self._threads, len(queue)))
        ]
        work = asyncio.gather(*workers)
        work.add_done_callback(lambda done: self._round_done(loop, done, batch))

    def _round_done(
        self,
        loop: asyncio.AbstractEventLoop,
        done: asyncio.Future[list[dict[Partition, BaseException]]],
        batch: _Waiting,
    ) -> None:
        self.running = False
        self.rounds += 1
        failures: dict[Partition, BaseException] = {}
        for part in done.result():
            failures.update(part)
        for partition, (end, futures) in batch.items():
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
        if self.waiting:
            self._start_round(loop)
        else:
            self.idle.set()

    def close(self) -> None:
        self._executor.shutdown(wait=True)


class GroupCommit:
    def __init__(self, policy: FlushPolicy) -> None:
        self._policy = policy
        self._urgent = _Lane("klamm-fsync", URGENT_THREADS)
        self._lazy = _Lane("klamm-fsync-lazy", LAZY_THREADS)

    @property
    def rounds(self) -> int:
        """Flush rounds run, both lanes: for tests and metrics."""
        return self._urgent.rounds + self._lazy.rounds

    def appended(self, partition: Partition, *, urgent: bool = True) -> asyncio.Future[None]:
        """Mark `partition` as appended to; the future resolves once that data is durable.
        `urgent=False` when nobody waits for the answer (acks=0/1): see the module docstring."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        end = partition.log.log_end_offset
        if self._policy == "os":
            partition.advance_high_watermark(end)
            future.set_result(None)
            return future
        futures = [future]
        if urgent:
            lazy = self._lazy.waiting.pop(partition, None)  # one fsync covers both
            if lazy is not None:
                futures = lazy[1] + futures
            self._urgent.add(partition, end, futures)
        elif partition in self._urgent.waiting:
            self._urgent.add(partition, end, futures)
        else:
            self._lazy.add(partition, end, futures)
        return future

    async def wait_idle(self) -> None:
        """Wait until no round is running and nothing is dirty (shutdown, tests)."""
        # An append may start a round on either lane while we wait on the other: done only when
        # both are idle at the same moment.
        lanes = (self._urgent, self._lazy)
        while busy := [lane for lane in lanes if not lane.idle.is_set()]:
            await busy[0].idle.wait()

    def close(self) -> None:
        self._urgent.close()
        self._lazy.close()


def _log_failure(partition: Partition, waiting: int, failure: BaseException) -> None:
    if isinstance(failure, LogClosed):
        log.debug("%s-%d was closed (topic deleted) before its fsync; %d appends not "
                  "acknowledged", partition.topic, partition.index, waiting)  # fmt: skip
    else:
        log.error("fsync of %s-%d failed; %d appends not acknowledged: %s",
                  partition.topic, partition.index, waiting, failure)  # fmt: skip


def _flush_logs(queue: collections.deque[Partition]) -> dict[Partition, BaseException]:
    """fsync logs taken from `queue` (shared by the round's workers) until it is empty; one
    failing log (deleted topic, bad disk) does not fail the others."""
    failures: dict[Partition, BaseException] = {}
    while True:
        try:
            partition = queue.popleft()  # atomic: each log is flushed by one worker
        except IndexError:
            return failures
        try:
            partition.log.flush()
        except Exception as exc:
            failures[partition] = exc
