"""Parity: a handler that fails for good crashes the consumer as KafkaJS's does.

KafkaJS's onCrash disconnects first (the member leaves the group; STOP and DISCONNECT come
before CRASH), then restarts only for a retriable error (NumberOfRetriesExceeded) that
`restart_on_failure` does not veto; a programming error (TypeError) is not retried and does not
restart. Member B, started after the crash, gets the partition at once when A did not restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from klamm import Event, Events, RetryPolicy
from klamm.testing import EmbeddedBroker
from tests.parity.harness import assert_parity
from tests.parity.scenarios import fast_kafka, wait_for

LIFECYCLE = [Events.CONNECT, Events.GROUP_JOIN, Events.STOP, Events.DISCONNECT, Events.CRASH]


async def crash_scenario(bootstrap: str, topic: str, group: str, variant: str) -> dict[str, Any]:
    kafka = fast_kafka(bootstrap)
    async with kafka.admin() as admin:
        await admin.create_topics(topics=[{"topic": topic, "num_partitions": 1}])
    async with kafka.producer() as producer:
        values = ["m0", "m1", "poison", "m3"]
        await producer.send(topic=topic, messages=[{"value": v} for v in values])

    async def no(_: BaseException) -> bool:
        return False

    retry = RetryPolicy(
        initial_retry_time_ms=50,
        retries=1,
        restart_on_failure=no if variant == "no_restart" else None,
    )
    a = kafka.consumer(group_id=group, max_wait_time_ms=100, retry=retry)
    events: list[str] = []
    crash: dict[str, Any] | None = None
    joins = 0

    def on_event(e: Event) -> None:
        nonlocal crash, joins
        if crash is None:
            events.append(e.type)
        if e.type == "consumer.group_join":
            joins += 1
        if e.type == "consumer.crash":
            crash = {
                "keys": sorted(e.payload),
                "restart": e.payload["restart"],
                "error": type(e.payload["error"]).__name__,
            }

    for event in LIFECYCLE:
        a.on(event, on_event)
    poison_attempts = 0
    delivered_a: list[str] = []

    async def handle_a(payload: Any) -> None:
        nonlocal poison_attempts
        value = payload.message.value.decode()
        if value == "poison":
            poison_attempts += 1
            if variant == "type_error":
                None.boom()  # type: ignore[attr-defined]
            if variant == "no_restart" or poison_attempts <= 2:
                raise RuntimeError("poison")
        delivered_a.append(value)

    await a.connect()
    await a.subscribe(topic=topic, from_beginning=True)
    await a.run(each_message=handle_a)
    await wait_for(lambda: crash is not None, "CRASH")
    assert crash is not None
    joins_at_crash = joins
    if crash["restart"]:
        await wait_for(lambda: "m3" in delivered_a, "A after its restart")
    else:
        await asyncio.sleep(0.5)  # a restart that should not come
    rejoined = joins > joins_at_crash

    b = kafka.consumer(group_id=group, max_wait_time_ms=100)
    delivered_b: list[str] = []

    async def handle_b(payload: Any) -> None:
        delivered_b.append(payload.message.value.decode())

    await b.connect()
    await b.subscribe(topic=topic, from_beginning=True)
    await b.run(each_message=handle_b)
    deadline = time.monotonic() + (2 if crash["restart"] else 10)
    while "m3" not in delivered_b and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await b.disconnect()
    await a.disconnect()
    return {
        "events": events,
        "crash": crash,
        "poison_attempts": poison_attempts,
        "delivered_a": delivered_a,
        "rejoined": rejoined,
        "delivered_b": delivered_b,
    }


@pytest.mark.parametrize("variant", ["no_restart", "restart", "type_error"])
async def test_crash(
    parity_broker: EmbeddedBroker,
    kafkajs: Callable[..., Any],
    names: Callable[[str], str],
    variant: str,
) -> None:
    bootstrap = parity_broker.bootstrap
    args = {"brokers": [bootstrap], "topic": names("t"), "group": names("g"), "variant": variant}
    js = await asyncio.to_thread(kafkajs, "consumer_crash.js", args)
    py = await crash_scenario(bootstrap, names("t"), names("g"), variant)
    assert_parity(js, py)
