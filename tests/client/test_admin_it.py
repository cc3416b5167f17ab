"""Admin contract against klamm's broker."""

from __future__ import annotations

import time
from typing import Any

from client_helpers import FAST_CONSUMER, wait_until

from klamm import Kafka, ResourceTypes


async def test_topics_lifecycle(kafka: Kafka, unique: str) -> None:
    topic = f"admin-{unique}"
    async with kafka.admin() as admin:
        assert await admin.create_topics(topics=[{"topic": topic, "num_partitions": 3}]) is True
        assert await admin.create_topics(topics=[{"topic": topic, "num_partitions": 3}]) is False
        assert topic in await admin.list_topics()
        md = await admin.fetch_topic_metadata(topics=[topic])
        assert [p["partition_id"] for p in md["topics"][0]["partitions"]] == [0, 1, 2]
        await admin.create_partitions(topic_partitions=[{"topic": topic, "count": 5}])
        md = await admin.fetch_topic_metadata(topics=[topic])
        assert len(md["topics"][0]["partitions"]) == 5
        await admin.delete_topics(topics=[topic])
        await wait_until_async(lambda: admin.list_topics(), lambda names: topic not in names)


async def wait_until_async(probe: Any, ok: Any, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not ok(await probe()):
        assert time.monotonic() < deadline, "timed out"


async def test_configs(kafka: Kafka, unique: str) -> None:
    topic = f"cfg-{unique}"
    async with kafka.admin() as admin:
        await admin.create_topics(
            topics=[
                {
                    "topic": topic,
                    "num_partitions": 1,
                    "config_entries": [{"name": "retention.ms", "value": "3600000"}],
                }
            ]
        )
        resource = {"type": ResourceTypes.TOPIC, "name": topic, "config_names": ["retention.ms"]}
        described = await admin.describe_configs(resources=[resource])
        [entry] = described["resources"][0]["config_entries"]
        assert (entry["config_name"], entry["config_value"]) == ("retention.ms", "3600000")
        await admin.alter_configs(
            resources=[
                {
                    "type": ResourceTypes.TOPIC,
                    "name": topic,
                    "config_entries": [{"name": "retention.ms", "value": "7200000"}],
                }
            ]
        )
        described = await admin.describe_configs(resources=[resource])
        assert described["resources"][0]["config_entries"][0]["config_value"] == "7200000"


async def test_offsets_groups_and_lag(kafka: Kafka, unique: str) -> None:
    topic, group = f"off-{unique}", f"g-{unique}"
    async with kafka.admin() as admin:
        await admin.create_topics(topics=[{"topic": topic, "num_partitions": 2}])
        before = int(time.time() * 1000) - 1
        async with kafka.producer() as producer:
            await producer.send(
                topic=topic, messages=[{"value": b"x", "partition": i % 2} for i in range(6)]
            )
        offsets = await admin.fetch_topic_offsets(topic)
        assert offsets == [
            {"partition": 0, "offset": 3, "high": 3, "low": 0},
            {"partition": 1, "offset": 3, "high": 3, "low": 0},
        ]
        by_ts = await admin.fetch_topic_offsets_by_timestamp(topic, before)
        assert by_ts == [{"partition": 0, "offset": 0}, {"partition": 1, "offset": 0}]
        future = await admin.fetch_topic_offsets_by_timestamp(topic, before + 3_600_000)
        assert future == [{"partition": 0, "offset": 3}, {"partition": 1, "offset": 3}]

        assert await admin.fetch_offsets(group_id=group, topics=[topic]) == [
            {
                "topic": topic,
                "partitions": [{"partition": 0, "offset": -1}, {"partition": 1, "offset": -1}],
            }
        ]
        await admin.set_offsets(
            group_id=group,
            topic=topic,
            partitions=[{"partition": 0, "offset": 1}, {"partition": 1, "offset": 2}],
        )
        lag = await admin.lag(group_id=group, topics=[topic])
        assert [(x["partition"], x["offset"], x["lag"]) for x in lag] == [(0, 1, 2), (1, 2, 1)]
        await admin.reset_offsets(group_id=group, topic=topic, earliest=True)
        fetched = await admin.fetch_offsets(group_id=group, topics=[topic])
        assert [p["offset"] for p in fetched[0]["partitions"]] == [0, 0]
        await admin.reset_offsets(group_id=group, topic=topic)
        fetched = await admin.fetch_offsets(group_id=group, topics=[topic])
        assert [p["offset"] for p in fetched[0]["partitions"]] == [3, 3]

        # A live member shows up in list/describe groups.
        consumer = kafka.consumer(group_id=group, **FAST_CONSUMER)
        async with consumer:
            await consumer.subscribe(topics=[topic])

            async def noop(payload: Any) -> None:
                return None

            await consumer.run(each_message=noop)
            await wait_until(lambda: len(consumer.assignment()) == 2)
            groups = await admin.list_groups()
            assert group in [g["group_id"] for g in groups["groups"]]
            described = await admin.describe_groups(group_ids=[group])
            [member] = described["groups"][0]["members"]
            assert sorted(member["assignment"]) == [(topic, 0), (topic, 1)]
        await admin.delete_groups(group_ids=[group])
        groups = await admin.list_groups()
        assert group not in [g["group_id"] for g in groups["groups"]]
