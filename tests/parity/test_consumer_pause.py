"""Parity: pause a whole topic right after run(), then rebalance.

KafkaJS's run() returns once the group is joined, so `pause([{"topic": t}])` right after it
pauses this member's partitions; and a topic paused as a whole stays paused for partitions that
arrive later by rebalance, until resumed (subscriptionState.js)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from klamm import Events
from klamm.testing import EmbeddedBroker
from tests.parity.harness import assert_parity
from tests.parity.scenarios import fast_kafka, wait_for


def shape(paused: list[dict[str, Any]], topic: str) -> list[dict[str, Any]]:
    return [
        {**entry, "topic": "T" if entry["topic"] == topic else entry["topic"]} for entry in paused
    ]


async def pause_scenario(bootstrap: str, topic: str, group: str) -> dict[str, Any]:
    kafka = fast_kafka(bootstrap)
    async with kafka.admin() as admin:
        await admin.create_topics(topics=[{"topic": topic, "num_partitions": 2}])
    async with kafka.producer() as producer:
        messages = [{"partition": p, "value": f"p{p}-{i}"} for p in range(2) for i in range(3)]
        await producer.send(topic=topic, messages=messages)

    options: dict[str, Any] = {
        "group_id": group,
        "max_wait_time_ms": 100,
        "session_timeout_ms": 6000,
        "heartbeat_interval_ms": 300,
    }
    a = kafka.consumer(**options)
    joins_a = 0

    def joined(_: Any) -> None:
        nonlocal joins_a
        joins_a += 1

    a.on(Events.GROUP_JOIN, joined)
    delivered_a: list[str] = []
    delivered_b: list[str] = []

    async def handle_a(payload: Any) -> None:
        delivered_a.append(payload.message.value.decode())

    async def handle_b(payload: Any) -> None:
        delivered_b.append(payload.message.value.decode())

    await a.connect()
    await a.subscribe(topic=topic, from_beginning=True)
    await a.run(each_message=handle_a)
    a.pause([{"topic": topic}])
    paused_after_run = shape(a.paused(), topic)
    await asyncio.sleep(0.5)
    before_b = len(delivered_a)

    b = kafka.consumer(**options)
    await b.connect()
    await b.subscribe(topic=topic, from_beginning=True)
    await b.run(each_message=handle_b)
    await wait_for(lambda: joins_a >= 2, "A rejoined with B")
    await wait_for(lambda: len(delivered_b) == 3, "B read its partition")
    paused_with_b = [
        {"topic": e["topic"], "count": len(e["partitions"])} for e in shape(a.paused(), topic)
    ]
    await b.disconnect()
    await wait_for(lambda: joins_a >= 3, "A rejoined alone")
    await asyncio.sleep(0.5)
    paused_alone = shape(a.paused(), topic)
    before_resume = len(delivered_a)
    a.resume([{"topic": topic}])
    await wait_for(lambda: len(delivered_a) == 3, "A read the rest")
    await asyncio.sleep(0.3)
    await a.disconnect()
    return {
        "paused_after_run": paused_after_run,
        "delivered_a_before_b": before_b,
        "paused_with_b": paused_with_b,
        "delivered_b": len(delivered_b),
        "paused_alone": paused_alone,
        "delivered_a_before_resume": before_resume,
        "delivered_a": len(delivered_a),
        "all": sorted(delivered_a + delivered_b),
    }


async def test_pause_a_topic_then_rebalance(
    parity_broker: EmbeddedBroker, kafkajs: Callable[..., Any], names: Callable[[str], str]
) -> None:
    bootstrap = parity_broker.bootstrap
    args = {"brokers": [bootstrap], "topic": names("t"), "group": names("g")}
    js = await asyncio.to_thread(kafkajs, "consumer_pause.js", args)
    py = await pause_scenario(bootstrap, names("t"), names("g"))
    assert_parity(js, py)
