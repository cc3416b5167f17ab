"""klamm's side of the consumer parity scenarios: shared helpers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from klamm import Kafka, RetryPolicy

# As js/lib.js: fast retries, so purpose-made errors do not wait out the 30 s defaults.
FAST_RETRY = RetryPolicy(initial_retry_time_ms=50, retries=3)


def fast_kafka(bootstrap: str) -> Kafka:
    return Kafka(client_id="klamm-parity", brokers=[bootstrap], retry=FAST_RETRY)


async def wait_for(check: Callable[[], Any], what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def committed(
    kafka: Kafka, group: str, topic: str, *, want: int | None = None, partition: int = 0
) -> int:
    """The group's committed offset (-1: none); with `want`, polls up to 5 s for that value,
    as commits after a seek are asynchronous in both clients."""
    deadline = time.monotonic() + 5.0
    async with kafka.admin() as admin:
        while True:
            [entry] = await admin.fetch_offsets(group_id=group, topics=[topic])
            offsets = {p["partition"]: int(p["offset"]) for p in entry["partitions"]}
            value = offsets.get(partition, -1)
            if want is None or value == want or time.monotonic() > deadline:
                return value
            await asyncio.sleep(0.05)
