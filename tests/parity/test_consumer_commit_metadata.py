"""Parity: commit_offsets() keeps each offset's `metadata`, as KafkaJS's commitOffsets does.

The committed offsets are read back twice: with librdkafka's committed() (what any Kafka client
sees: the metadata reached the broker), and with klamm's admin.fetch_offsets, KafkaJS's way."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import confluent_kafka

from klamm.testing import EmbeddedBroker
from tests.parity.harness import assert_parity
from tests.parity.scenarios import fast_kafka


async def commit_scenario(bootstrap: str, topic: str, group: str, *, read_with: str) -> Any:
    kafka = fast_kafka(bootstrap)
    async with kafka.admin() as admin:
        await admin.create_topics(topics=[{"topic": topic, "num_partitions": 2}])
        async with kafka.consumer(group_id=group, max_wait_time_ms=100) as consumer:
            await consumer.subscribe(topic=topic)

            async def ignore(payload: Any) -> None:
                pass

            await consumer.run(each_message=ignore)
            await consumer.commit_offsets(
                [
                    {"topic": topic, "partition": 0, "offset": "5", "metadata": "event-id-3"},
                    {"topic": topic, "partition": 1, "offset": "7"},
                ]
            )
        if read_with == "admin":
            [entry] = await admin.fetch_offsets(group_id=group, topics=[topic])
            rows = [(p["partition"], p["offset"], p.get("metadata")) for p in entry["partitions"]]
        else:
            rows = await asyncio.to_thread(_librdkafka_committed, bootstrap, topic, group)
    return {
        "committed": [
            {"partition": p, "offset": int(o), "metadata": m or None} for p, o, m in sorted(rows)
        ]
    }


def _librdkafka_committed(bootstrap: str, topic: str, group: str) -> list[Any]:
    reader = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        tps = [confluent_kafka.TopicPartition(topic, p) for p in (0, 1)]
        return [(tp.partition, tp.offset, tp.metadata) for tp in reader.committed(tps, 10)]
    finally:
        reader.close()


async def test_commit_metadata_reaches_the_broker(
    parity_broker: EmbeddedBroker, kafkajs: Callable[..., Any], names: Callable[[str], str]
) -> None:
    bootstrap = parity_broker.bootstrap
    args = {"brokers": [bootstrap], "topic": names("t"), "group": names("g")}
    js = await asyncio.to_thread(kafkajs, "consumer_commit_metadata.js", args)
    py = await commit_scenario(bootstrap, names("t"), names("g"), read_with="librdkafka")
    assert_parity(js, py)


async def test_commit_metadata_round_trip_through_the_admin(
    parity_broker: EmbeddedBroker, kafkajs: Callable[..., Any], names: Callable[[str], str]
) -> None:
    bootstrap = parity_broker.bootstrap
    args = {"brokers": [bootstrap], "topic": names("t"), "group": names("g")}
    js = await asyncio.to_thread(kafkajs, "consumer_commit_metadata.js", args)
    py = await commit_scenario(bootstrap, names("t"), names("g"), read_with="admin")
    assert_parity(js, py)
