"""Parity: each_batch with resolve_offset() and commit_offsets_if_necessary().

Auto-resolve off and an auto-commit threshold of 2: every second resolved offset is committed by
commit_offsets_if_necessary(), the end of a batch commits what was resolved, a batch left
unfinished is fetched again from its first unresolved offset, and uncommitted_offsets() has
KafkaJS's shape. KafkaJS writes offsets (and, in uncommittedOffsets, partitions) as strings; the
records compare them as numbers (docs/kafkajs.md, What differs)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from klamm import Event, Events
from klamm.testing import EmbeddedBroker
from tests.parity.harness import assert_parity
from tests.parity.scenarios import committed, fast_kafka, wait_for


async def each_batch_scenario(bootstrap: str, topic: str, group: str) -> dict[str, Any]:
    kafka = fast_kafka(bootstrap)
    async with kafka.admin() as admin:
        await admin.create_topics(topics=[{"topic": topic, "num_partitions": 1}])
    async with kafka.producer() as producer:
        await producer.send(topic=topic, messages=[{"value": f"m{i}"} for i in range(10)])

    consumer = kafka.consumer(group_id=group, max_wait_time_ms=100)
    commits: list[int] = []
    generations: list[int] = []

    def on_commit(e: Event) -> None:
        if e.payload["group_generation_id"] not in generations:
            generations.append(e.payload["group_generation_id"])
        commits.extend(p["offset"] for t in e.payload["topics"] for p in t["partitions"])

    consumer.on(Events.COMMIT_OFFSETS, on_commit)
    firsts: list[int] = []
    uncommitted: Any = None
    done = False

    async def handle(payload: Any) -> None:
        nonlocal uncommitted, done
        firsts.append(payload.batch.messages[0].offset)
        for message in payload.batch.messages:
            offset = message.offset
            if len(firsts) == 1 and offset == 5:
                return
            payload.resolve_offset(offset)
            if offset == 2:
                uncommitted = [
                    {**entry, "topic": "T"} for entry in payload.uncommitted_offsets()["topics"]
                ]
            await payload.commit_offsets_if_necessary()
            if offset == 9:
                done = True

    async with consumer:
        await consumer.subscribe(topic=topic, from_beginning=True)
        await consumer.run(
            each_batch=handle, each_batch_auto_resolve=False, auto_commit_threshold=2
        )
        await wait_for(lambda: done, "the last message")
    return {
        "firsts": firsts,
        "uncommitted": uncommitted,
        "commits": commits,
        "generations": generations,
        "committed": await committed(kafka, group, topic),
    }


async def test_each_batch_resolve_offset_and_commit_offsets_if_necessary(
    parity_broker: EmbeddedBroker, kafkajs: Callable[..., Any], names: Callable[[str], str]
) -> None:
    bootstrap = parity_broker.bootstrap
    args = {"brokers": [bootstrap], "topic": names("t"), "group": names("g")}
    js = await asyncio.to_thread(kafkajs, "consumer_each_batch.js", args)
    py = await each_batch_scenario(bootstrap, names("t"), names("g"))
    assert_parity(js, py)
