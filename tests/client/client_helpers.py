"""Helpers shared by the client's integration tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

# Small timeouts so group joins, rebalances and fetch waits take milliseconds, not seconds.
FAST_CONSUMER: dict[str, Any] = {
    "session_timeout_ms": 6_000,
    "heartbeat_interval_ms": 500,
    "max_wait_time_ms": 100,
    "metadata_max_age_ms": 1_000,
    "config": {"topic.metadata.refresh.interval.ms": 1_000},
}


async def wait_until(
    condition: Callable[[], bool], timeout_s: float = 15.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def eventually(
    probe: Callable[[], Awaitable[Any]], expected: Any, timeout_s: float = 15.0
) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = await probe()
        if value == expected or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.1)
