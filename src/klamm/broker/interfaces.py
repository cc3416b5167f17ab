"""The narrow views of the broker that its components are built with.

`Broker` (node.py) builds its components in its constructor and hands each one itself typed as
the view below that the component needs, never the whole `Broker`: a coordinator can read topics,
settings and the clock and wait for durability, and nothing else. Tests hand a component a small
fake of the same shape (tests/broker/test_groups_harness.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from klamm.broker.config import BrokerConfig
    from klamm.broker.partition import Partition
    from klamm.storage import TopicInfo


class Durability(Protocol):
    """The group commit (durability.py): the future resolves once the partition's appends so far
    are durable under the flush policy, and fails with the storage error if they cannot be."""

    def appended(self, partition: Partition) -> asyncio.Future[None]: ...


class Topics(Protocol):
    """The topics the broker holds and the partitions it serves."""

    def topic(self, name: str) -> TopicInfo | None: ...

    def partition(self, topic: str, index: int) -> Partition | None: ...

    def partitions(self) -> Iterator[Partition]: ...

    def create_topic(
        self,
        name: str,
        num_partitions: int | None = None,
        configs: dict[str, str] | None = None,
        *,
        internal: bool = False,
    ) -> TopicInfo: ...


class CoordinatorHost(Topics, Protocol):
    """What the coordinators and the producer state need of the broker: its topics, its
    settings, its clock and its group commit."""

    @property
    def config(self) -> BrokerConfig: ...

    @property
    def durability(self) -> Durability: ...

    def now_ms(self) -> int: ...


class Service(Protocol):
    """A component the broker starts after recovery and stops before closing the logs."""

    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...
