"""The produce loop every throughput benchmark runs: confluent-kafka as fast as it goes."""

from __future__ import annotations

import time
from collections.abc import Callable

from confluent_kafka import Producer

__all__ = ["produce_all"]


def produce_all(
    producer: Producer,
    topic: str,
    payload: bytes,
    count: int,
    *,
    partitions: int = 1,
    flush_timeout_s: float = 120,
    on_progress: Callable[[int], None] | None = None,
) -> float:
    """Produce `count` copies of `payload` round-robin over partitions 0..`partitions`-1 and wait
    until every one is acknowledged; returns the seconds that took. Waits out a full local
    queue (BufferError) instead of failing; `on_progress(sent)` every 10,000 messages. Raises
    RuntimeError when a message is undelivered or failed."""
    errors: list[object] = []

    def report(err: object, _msg: object) -> None:
        if err is not None:
            errors.append(err)

    started = time.perf_counter()
    i = 0
    while i < count:
        try:
            producer.produce(topic, payload, partition=i % partitions, on_delivery=report)
        except BufferError:
            producer.poll(0.001)
            continue
        i += 1
        if i % 10_000 == 0:
            producer.poll(0)
            if on_progress is not None:
                on_progress(i)
    remaining = producer.flush(flush_timeout_s)
    elapsed = time.perf_counter() - started
    if remaining or errors:
        raise RuntimeError(f"{remaining} undelivered, {len(errors)} errors, e.g. {errors[:3]}")
    return elapsed
