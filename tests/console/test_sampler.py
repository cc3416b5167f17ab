"""Rates and lag from sampled offsets: the arithmetic, on a scripted cluster and clock."""

from __future__ import annotations

from typing import Any

import pytest

from klamm.console.sampler import Sampler


class ScriptedCluster:
    """Answers the sampler's three questions from a list of (ends, committed) snapshots."""

    def __init__(self, snapshots: list[tuple[dict[Any, int], dict[str, dict[Any, int]]]]) -> None:
        self._snapshots = snapshots
        self._now: tuple[dict[Any, int], dict[str, dict[Any, int]]] = snapshots[0]

    def advance(self) -> None:
        self._now = self._snapshots.pop(0)

    async def end_offsets(self) -> dict[Any, int]:
        return self._now[0]

    async def group_ids(self) -> list[tuple[str, str]]:
        return [(g, "STABLE") for g in self._now[1]]

    async def committed_totals(self, ids: list[str]) -> dict[str, dict[Any, int]]:
        return {g: self._now[1][g] for g in ids}


async def test_rates_and_lag_come_from_offset_differences() -> None:
    t0, t1 = ("orders", 0), ("orders", 1)
    cluster = ScriptedCluster([
        ({t0: 100, t1: 0}, {"billing": {t0: 50}}),
        ({t0: 150, t1: 50}, {"billing": {t0: 100, t1: 10}}),   # +100 produced, +60 committed
        ({t0: 150, t1: 50}, {"billing": {t0: 150, t1: 50}}),   # nothing produced, caught up
        ({t0: 0, t1: 0}, {}),                                  # topic deleted, group gone
    ])  # fmt: skip
    clock = iter([1000.0, 1010.0, 1020.0, 1030.0])
    sampler = Sampler(cluster, interval_s=10, history=10, clock=lambda: next(clock))  # type: ignore[arg-type]
    for _ in range(4):
        cluster.advance()
        await sampler.sample()
    assert sampler.produce_rates() == [(1010.0, 10.0), (1020.0, 0.0), (1030.0, 0.0)]
    assert sampler.consume_rates() == [(1010.0, 6.0), (1020.0, 9.0), (1030.0, 0.0)]
    assert sampler.lag_history("billing") == [(1000.0, 50.0), (1010.0, 90.0), (1020.0, 0.0)]
    assert sampler.latest_lag("billing") is None  # not in the last sample
    assert sampler.topic_rate("orders") == 0.0


async def test_history_is_bounded() -> None:
    cluster = ScriptedCluster([({("t", 0): i}, {}) for i in range(20)])
    ticks = iter(float(i) for i in range(20))
    sampler = Sampler(cluster, interval_s=1, history=5, clock=lambda: next(ticks))  # type: ignore[arg-type]
    for _ in range(20):
        cluster.advance()
        await sampler.sample()
    assert len(sampler.samples()) == 5
    assert sampler.produce_rates() == [(float(i), 1.0) for i in range(16, 20)]


@pytest.mark.parametrize("points", [[], [(0.0, 1.0)]])
def test_a_chart_needs_two_samples(points: list[tuple[float, float]]) -> None:
    from klamm.console.render import chart_svg

    assert "collecting samples" in chart_svg(points, label="x", unit="y")
