"""Rates and lag over time, from offsets sampled every few seconds.

No broker reports rates over the Kafka protocol, but every broker reports end offsets and
committed offsets: the produce rate of a partition is the growth of its end offset between two
samples, the consume rate of a group the growth of its committed offsets, and a group's lag the
difference of the two at each sample. The sampler keeps the last `history` samples in memory;
nothing is stored, so a restarted console starts its charts afresh.

Concurrency: one task (`run`) appends samples; pages read `history()` snapshots on the same
event loop, so no lock is needed.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from klamm.client import KafkaError

from .cluster import Cluster
from .errors import ConsoleError

log = logging.getLogger("klamm.console")

TP = tuple[str, int]


@dataclass(frozen=True)
class Sample:
    at: float  # wall-clock seconds (for chart labels)
    ends: dict[TP, int]
    committed: dict[str, dict[TP, int]]

    def lag(self, group_id: str) -> int:
        committed = self.committed.get(group_id, {})
        return sum(max(0, self.ends.get(tp, 0) - off) for tp, off in committed.items())


class Sampler:
    def __init__(
        self,
        cluster: Cluster,
        *,
        interval_s: float,
        history: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._cluster = cluster
        self._interval_s = interval_s
        self._clock = clock
        self._samples: collections.deque[Sample] = collections.deque(maxlen=history)

    @property
    def interval_s(self) -> float:
        return self._interval_s

    async def sample(self) -> None:
        ends = await self._cluster.end_offsets()
        groups = [gid for gid, _state in await self._cluster.group_ids()]
        committed = await self._cluster.committed_totals(groups)
        self._samples.append(Sample(self._clock(), ends, committed))

    async def run(self) -> None:
        """Sample until cancelled; a failed sample is logged and skipped (the cluster may be
        restarting), never the end of the charts."""
        while True:
            try:
                await self.sample()
            except (KafkaError, ConsoleError) as exc:
                log.debug("offset sample failed: %s", exc)
            except Exception:
                # A bug here must not end the charts for the console's lifetime: said once
                # per sample, loudly, and sampling goes on.
                log.warning("offset sample failed unexpectedly", exc_info=True)
            await asyncio.sleep(self._interval_s)

    def samples(self) -> list[Sample]:
        return list(self._samples)

    def produce_rates(self) -> list[tuple[float, float]]:
        """Messages per second produced to the whole cluster, per sample interval."""
        return _rates(self.samples(), lambda s: sum(max(0, v) for v in s.ends.values()))

    def consume_rates(self) -> list[tuple[float, float]]:
        """Offsets per second committed by all groups together."""
        return _rates(self.samples(), lambda s: sum(sum(c.values()) for c in s.committed.values()))

    def topic_rate(self, topic: str) -> float | None:
        """Messages per second into `topic` over the last interval; None before two samples."""
        rates = _rates(
            self.samples()[-2:],
            lambda s: sum(max(0, v) for (t, _), v in s.ends.items() if t == topic),
        )
        return rates[-1][1] if rates else None

    def latest_lag(self, group_id: str) -> int | None:
        """The group's lag at the last sample; None when it was not sampled yet."""
        samples = self.samples()
        if not samples or group_id not in samples[-1].committed:
            return None
        return samples[-1].lag(group_id)

    def lag_history(self, group_id: str) -> list[tuple[float, float]]:
        return [(s.at, float(s.lag(group_id))) for s in self.samples() if group_id in s.committed]


def _rates(samples: list[Sample], total: Callable[[Sample], int]) -> list[tuple[float, float]]:
    out = []
    for before, after in itertools.pairwise(samples):
        elapsed = after.at - before.at
        if elapsed > 0:
            # A deleted topic or a reset group makes the total shrink: no negative rates.
            out.append((after.at, max(0.0, (total(after) - total(before)) / elapsed)))
    return out
