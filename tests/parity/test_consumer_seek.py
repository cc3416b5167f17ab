"""Parity: seek() then restart. KafkaJS's offset manager commits a sought offset at once (with
auto-commit on), so a member that seeks and stops leaves the group at the sought offset."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from klamm.testing import EmbeddedBroker
from tests.parity.harness import assert_parity
from tests.parity.scenarios import committed, fast_kafka, wait_for


async def seek_scenario(bootstrap: str, topic: str, group: str) -> dict[str, Any]:
    kafka = fast_kafka(bootstrap)
    async with kafka.admin() as admin:
        await admin.create_topics(topics=[{"topic": topic, "num_partitions": 1}])
    async with kafka.producer() as producer:
        await producer.send(topic=topic, messages=[{"value": f"m{i}"} for i in range(20)])

    a = kafka.consumer(group_id=group, max_wait_time_ms=100)
    delivered_a: list[int] = []
    gate = asyncio.Event()
    held = asyncio.Event()

    async def handle_a(payload: Any) -> None:
        offset = payload.message.offset
        delivered_a.append(offset)
        if offset == 0:
            a.seek(topic=topic, partition=0, offset="10")
        if offset == 10:
            held.set()
            await gate.wait()

    await a.connect()
    await a.subscribe(topic=topic, from_beginning=True)
    await a.run(each_message=handle_a)
    await asyncio.wait_for(held.wait(), 30)
    after_seek = await committed(kafka, group, topic, want=10)
    stopping = asyncio.ensure_future(a.disconnect())
    gate.set()
    await stopping
    after_stop = await committed(kafka, group, topic)

    b = kafka.consumer(group_id=group, max_wait_time_ms=100)
    delivered_b: list[int] = []

    async def handle_b(payload: Any) -> None:
        delivered_b.append(payload.message.offset)

    async with b:
        await b.subscribe(topic=topic, from_beginning=True)
        await b.run(each_message=handle_b)
        await wait_for(lambda: 19 in delivered_b, "B at the end")
    return {
        "delivered_a": delivered_a,
        "committed_after_seek": after_seek,
        "committed_after_stop": after_stop,
        "delivered_b": delivered_b,
    }


async def test_seek_then_restart(
    parity_broker: EmbeddedBroker, kafkajs: Callable[..., Any], names: Callable[[str], str]
) -> None:
    bootstrap = parity_broker.bootstrap
    js = await asyncio.to_thread(
        kafkajs,
        "consumer_seek.js",
        {"brokers": [bootstrap], "topic": names("t"), "group": names("g")},
    )
    py = await seek_scenario(bootstrap, names("t"), names("g"))
    assert py["committed_after_seek"] == 10, py  # what the old client got wrong
    assert_parity(js, py)
