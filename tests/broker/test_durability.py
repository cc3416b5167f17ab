"""Group commit: data becomes visible (high watermark) and acknowledged only after fsync, one
fsync covers every append waiting at that moment, and one failing log fails only its own
appends."""

from __future__ import annotations

import asyncio
import threading

from klamm.broker.durability import GroupCommit
from klamm.broker.partition import Partition


class FakeLog:
    def __init__(self) -> None:
        self.log_end_offset = 0
        self.log_start_offset = 0
        self.flushes = 0
        self.gate = threading.Event()
        self.gate.set()
        self.fail = False

    def flush(self) -> None:
        self.gate.wait(5)
        if self.fail:
            raise OSError("EIO")
        self.flushes += 1


def _partition(name: str) -> tuple[Partition, FakeLog]:
    log = FakeLog()
    return Partition(name, 0, log), log  # type: ignore[arg-type]


async def test_high_watermark_moves_only_after_fsync() -> None:
    commit = GroupCommit("fsync")
    partition, log = _partition("a")
    log.gate.clear()
    log.log_end_offset = 5
    durable = commit.appended(partition)
    await asyncio.sleep(0.05)
    assert partition.high_watermark == 0 and not durable.done()
    log.gate.set()
    await asyncio.wait_for(durable, 5)
    assert partition.high_watermark == 5
    commit.close()


async def test_appends_during_a_round_share_the_next_fsync() -> None:
    commit = GroupCommit("fsync")
    partition, log = _partition("a")
    log.gate.clear()
    log.log_end_offset = 1
    first = commit.appended(partition)
    await asyncio.sleep(0.02)
    waiting = []
    for end in range(2, 12):
        log.log_end_offset = end
        waiting.append(commit.appended(partition))
    log.gate.set()
    await asyncio.wait_for(asyncio.gather(first, *waiting), 5)
    assert log.flushes == 2  # ten appends, one fsync
    assert partition.high_watermark == 11
    commit.close()


async def test_a_failing_log_fails_only_its_own_appends() -> None:
    commit = GroupCommit("fsync")
    good, good_log = _partition("good")
    bad, bad_log = _partition("bad")
    bad_log.fail = True
    good_log.log_end_offset = bad_log.log_end_offset = 3
    ok = commit.appended(good)
    failed = commit.appended(bad)
    await asyncio.wait_for(ok, 5)
    try:
        await asyncio.wait_for(failed, 5)
        raise AssertionError("expected the fsync failure")
    except OSError:
        pass
    assert (good.high_watermark, bad.high_watermark) == (3, 0)
    commit.close()


async def test_page_cache_policy_acknowledges_at_once() -> None:
    commit = GroupCommit("os")
    partition, log = _partition("a")
    log.log_end_offset = 4
    assert commit.appended(partition).done()
    assert partition.high_watermark == 4 and log.flushes == 0
    commit.close()
