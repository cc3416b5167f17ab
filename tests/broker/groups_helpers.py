"""A group coordinator on a fake broker and a fake clock: no sockets, no real time.

`Harness` gives the coordinator a real PartitionLog in a temp directory (so replay reads what
live traffic wrote) and a `FakeScheduler` whose timers fire only when a test advances time.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from klamm.broker.config import BrokerConfig
from klamm.broker.groups import GroupCoordinator
from klamm.broker.groups.coordinator import JoinRequest, JoinResult
from klamm.storage.config import LogConfig
from klamm.storage.log import PartitionLog


class FakeTimer:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeScheduler:
    """Timers in ms of a clock that moves only in `advance`."""

    def __init__(self, start_ms: int = 1_000_000) -> None:
        self.now = start_ms
        self._queue: list[tuple[int, int, FakeTimer, Callable[[], None]]] = []
        self._seq = itertools.count()

    def now_ms(self) -> int:
        return self.now

    def call_later(self, delay_ms: int, callback: Callable[[], None]) -> FakeTimer:
        timer = FakeTimer()
        heapq.heappush(self._queue, (self.now + max(delay_ms, 0), next(self._seq), timer, callback))
        return timer

    async def advance(self, ms: int) -> None:
        """Move time forward, firing due timers in order and letting woken tasks run."""
        await settle()  # tasks created just before run first, as they would in real time
        target = self.now + ms
        while self._queue and self._queue[0][0] <= target:
            deadline, _, timer, callback = heapq.heappop(self._queue)
            self.now = deadline
            if not timer.cancelled:
                callback()
            await settle()
        self.now = target
        await settle()


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


class FakeDurability:
    def appended(self, partition: Any) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


class FakeBroker:
    def __init__(self, data_dir: Path, clock: FakeScheduler, **settings: Any) -> None:
        self.config = BrokerConfig(data_dir=data_dir, **settings)
        self.now_ms = clock.now_ms
        self.durability = FakeDurability()
        self.data_dir = data_dir
        self._topics: dict[str, SimpleNamespace] = {}
        self._partitions: dict[tuple[str, int], SimpleNamespace] = {}

    def topic(self, name: str) -> Any:
        return self._topics.get(name)

    def partition(self, name: str, index: int) -> Any:
        return self._partitions.get((name, index))

    def create_topic(
        self, name: str, n: int = 1, configs: Any = None, *, internal: bool = False
    ) -> Any:
        info = SimpleNamespace(name=name, num_partitions=n, internal=internal)
        self._topics[name] = info
        for i in range(n):
            if name.startswith("__"):
                plog = PartitionLog.open(self.data_dir / f"{name}-{i}", LogConfig(), self.now_ms)
                self._partitions[(name, i)] = SimpleNamespace(log=plog)
        return info

    def reopen(self) -> None:
        """Close the internal logs and open them again, as a restart does."""
        for (name, i), part in self._partitions.items():
            part.log.close()
            part.log = PartitionLog.open(self.data_dir / f"{name}-{i}", LogConfig(), self.now_ms)


class Harness:
    def __init__(self, tmp: Path, **settings: Any) -> None:
        self.clock = FakeScheduler()
        settings.setdefault("group_initial_rebalance_delay_ms", 3000)
        self.broker = FakeBroker(tmp, self.clock, **settings)
        self.broker.create_topic("orders", 6)
        self.coordinator = self._new()

    def _new(self) -> GroupCoordinator:
        return GroupCoordinator(self.broker, scheduler=self.clock)  # type: ignore[arg-type]

    async def start(self) -> GroupCoordinator:
        await self.coordinator.start()
        return self.coordinator

    async def restart(self) -> GroupCoordinator:
        await self.coordinator.stop()
        self.broker.reopen()
        self.coordinator = self._new()
        await self.coordinator.start()
        return self.coordinator

    def join(
        self,
        group: str,
        member_id: str = "",
        *,
        instance: str | None = None,
        protocols: list[tuple[str, bytes]] | None = None,
        protocol_type: str = "consumer",
        session_ms: int = 10_000,
        rebalance_ms: int = 30_000,
        v4: bool = True,
    ) -> asyncio.Task[JoinResult]:
        request = JoinRequest(
            group_id=group,
            member_id=member_id,
            group_instance_id=instance,
            protocol_type=protocol_type,
            protocols=protocols or [("range", b"meta")],
            session_timeout_ms=session_ms,
            rebalance_timeout_ms=rebalance_ms,
            require_known_member_id=v4,
            client_id="c",
            client_host="/127.0.0.1",
        )
        return asyncio.ensure_future(self.coordinator.join_group(request))

    async def join_new(self, group: str, **kw: Any) -> asyncio.Task[JoinResult]:
        """A v4+ first join: MEMBER_ID_REQUIRED, then the join with the given id (parked)."""
        first = await self.join(group, **kw)
        assert first.error.name == "member_id_required", first
        task = self.join(group, first.member_id, **kw)
        await settle()
        return task

    def check(self) -> None:
        for group in self.coordinator.groups.values():
            group.check_invariants()
