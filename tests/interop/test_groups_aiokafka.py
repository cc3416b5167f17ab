"""Consumer groups with aiokafka against klamm (JoinGroup/SyncGroup, OffsetFetch v3 with
topics=null from the admin client)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from tests.interop.python_clients import FAST_GROUP_CONSUMER

pytestmark = pytest.mark.timeout(90)


def make(bootstrap: str, group: str, topic: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=group, **FAST_GROUP_CONSUMER
    )


async def until(check: Callable[[], bool], timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.05)


async def test_split_leave_commit_resume_and_admin(
    bootstrap: str, topic_factory: Callable[..., str], unique: str
) -> None:
    topic, group = topic_factory(6), f"g-{unique}"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    for i in range(12):
        await producer.send_and_wait(topic, f"v{i}".encode(), partition=i % 6)
    a, b = make(bootstrap, group, topic), make(bootstrap, group, topic)
    await asyncio.gather(a.start(), b.start())
    got: list[Any] = []

    async def drain(c: AIOKafkaConsumer) -> None:
        while True:
            batch = await c.getmany(timeout_ms=100)
            for records in batch.values():
                got.extend(records)

    tasks = [asyncio.create_task(drain(c)) for c in (a, b)]
    await until(lambda: len(a.assignment()) == 3 and len(b.assignment()) == 3 and len(got) == 12)
    await a.commit()
    await b.commit()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    offsets = await admin.list_consumer_group_offsets(group)  # OffsetFetch v3, topics=null
    assert {tp.partition: o.offset for tp, o in offsets.items()} == dict.fromkeys(range(6), 2)
    [response] = await admin.describe_consumer_groups([group])
    entry = response.groups[0]  # (error, group id, state, protocol type, protocol, members)
    assert (entry[0], entry[2], entry[4], len(entry[5])) == (
        0,
        "Stable",
        "roundrobin",
        2,
    )  # aiokafka default
    tasks[1].cancel()
    await b.stop()  # LeaveGroup
    await until(lambda: len(a.assignment()) == 6)
    for i in range(6):
        await producer.send_and_wait(topic, b"late", partition=i)
    await until(lambda: len(got) == 18)
    await a.commit({TopicPartition(topic, 1): 3})
    tasks[0].cancel()
    await a.stop()
    c = make(bootstrap, group, topic)
    await c.start()
    assert await c.committed(TopicPartition(topic, 1)) == 3
    await c.stop()
    await admin.close()
    await producer.stop()
