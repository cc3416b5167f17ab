"""aiokafka against klamm: produce/consume, codecs, admin, offsets, seek, pause (all asyncio)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import for_code

from tests.interop.interop_helpers import (
    CODECS,
    COMPRESSIBLE_RECORDS,
    Record,
    assert_compressed,
    assert_same_records,
)
from tests.interop.python_clients import (
    ASSIGN_ONLY_CONSUMER,
    RECORDS_WITH_KEY_OR_VALUE,
    record_from_consumer_record,
)

pytestmark = pytest.mark.timeout(60)

AioClient = TypeVar("AioClient", AIOKafkaProducer, AIOKafkaConsumer)


@pytest.fixture
async def start_until_teardown() -> AsyncIterator[Callable[[AioClient], Awaitable[AioClient]]]:
    """Starts an aiokafka producer or consumer and stops it when the test is over."""
    started: list[AIOKafkaProducer | AIOKafkaConsumer] = []

    async def start(client: AioClient) -> AioClient:
        await client.start()
        started.append(client)
        return client

    yield start
    for client in reversed(started):
        await client.stop()


@pytest.fixture
def make_producer(
    bootstrap: str, start_until_teardown: Callable[[AIOKafkaProducer], Awaitable[AIOKafkaProducer]]
) -> Callable[..., Awaitable[AIOKafkaProducer]]:
    async def make(**extra: Any) -> AIOKafkaProducer:
        settings = {"linger_ms": 5, **extra}
        return await start_until_teardown(AIOKafkaProducer(bootstrap_servers=bootstrap, **settings))

    return make


@pytest.fixture
def make_consumer(
    bootstrap: str, start_until_teardown: Callable[[AIOKafkaConsumer], Awaitable[AIOKafkaConsumer]]
) -> Callable[..., Awaitable[AIOKafkaConsumer]]:
    async def make(**extra: Any) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, **ASSIGN_ONLY_CONSUMER, **extra)
        return await start_until_teardown(consumer)

    return make


@pytest.fixture
async def admin(bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    a = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await a.start()
    yield a
    await a.close()


async def produce_all(
    p: AIOKafkaProducer,
    topic: str,
    records: list[Record],
    partition: int = 0,
    timestamps: list[int] | None = None,
) -> list[int]:
    futures = [
        await p.send(
            topic,
            key=k,
            value=v,
            headers=h or None,
            partition=partition,
            timestamp_ms=None if timestamps is None else timestamps[i],
        )
        for i, (k, v, h) in enumerate(records)
    ]
    return [(await f).offset for f in futures]


async def consume(c: AIOKafkaConsumer, count: int, timeout: float = 15.0) -> list[Any]:
    out: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(out) < count and time.monotonic() < deadline:
        for _tp, msgs in sorted((await c.getmany(timeout_ms=200)).items()):
            out.extend(msgs)
    assert len(out) == count, f"consumed {len(out)} of {count} messages"
    return out


async def poll_quiet(c: AIOKafkaConsumer, seconds: float) -> list[Any]:
    out: list[Any] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for msgs in (await c.getmany(timeout_ms=100)).values():
            out.extend(msgs)
    return out


async def test_keyed_produce_consume_byte_exact(
    make_producer: Any, make_consumer: Any, topic_factory: Callable[..., str]
) -> None:
    topic = topic_factory(1)
    offsets = await produce_all(await make_producer(), topic, RECORDS_WITH_KEY_OR_VALUE)
    assert offsets == list(range(len(RECORDS_WITH_KEY_OR_VALUE)))
    c = await make_consumer()
    c.assign([TopicPartition(topic, 0)])
    await c.seek_to_beginning()
    msgs = await consume(c, len(RECORDS_WITH_KEY_OR_VALUE))
    assert [m.offset for m in msgs] == list(range(len(RECORDS_WITH_KEY_OR_VALUE)))
    assert_same_records([record_from_consumer_record(m) for m in msgs], RECORDS_WITH_KEY_OR_VALUE)


@pytest.mark.parametrize("codec", CODECS)
async def test_compression_round_trip(
    make_producer: Any,
    make_consumer: Any,
    topic_factory: Callable[..., str],
    data_dir: Path,
    codec: str,
) -> None:
    topic = topic_factory(1)
    p = await make_producer(compression_type=codec, linger_ms=50)
    await produce_all(p, topic, COMPRESSIBLE_RECORDS)
    c = await make_consumer()
    c.assign([TopicPartition(topic, 0)])
    await c.seek_to_beginning()
    assert_same_records(
        [record_from_consumer_record(m) for m in await consume(c, len(COMPRESSIBLE_RECORDS))],
        COMPRESSIBLE_RECORDS,
    )
    assert_compressed(data_dir, topic, codec)


async def test_admin_create_describe_delete(admin: AIOKafkaAdminClient, unique: str) -> None:
    name = f"admin-aio-{unique}"
    resp = await admin.create_topics(
        [NewTopic(name, 3, 1, topic_configs={"retention.ms": "123456"})]
    )
    assert [(t[0], t[1]) for t in resp.topic_errors] == [(name, 0)]
    again = await admin.create_topics([NewTopic(name, 1, 1)])
    assert for_code(again.topic_errors[0][1]).__name__ == "TopicAlreadyExistsError"

    assert name in await admin.list_topics()
    [described] = await admin.describe_topics([name])
    assert described["error_code"] == 0 and len(described["partitions"]) == 3

    [configs_resp] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
    [resource] = configs_resp.to_object()["resources"]
    assert resource["error_code"] == 0 and resource["resource_name"] == name
    configs = {e["config_names"]: e["config_value"] for e in resource["config_entries"]}
    assert configs["retention.ms"] == "123456"
    assert configs["max.message.bytes"] == "1048588"

    cluster = await admin.describe_cluster()
    assert cluster["cluster_id"] and len(cluster["brokers"]) == 1

    await admin.create_partitions({name: NewPartitions(5)})
    [described] = await admin.describe_topics([name])
    assert len(described["partitions"]) == 5

    deleted = await admin.delete_topics([name])
    assert [tuple(t[:2]) for t in deleted.topic_error_codes] == [(name, 0)]
    for _ in range(100):
        if name not in await admin.list_topics():
            break
        await asyncio.sleep(0.05)
    assert name not in await admin.list_topics()


async def test_offsets_earliest_latest_by_timestamp(
    make_producer: Any, make_consumer: Any, topic_factory: Callable[..., str]
) -> None:
    topic = topic_factory(1)
    base = int(time.time() * 1000) - 3_600_000
    stamps = [base + i * 1000 for i in range(10)]
    records: list[Record] = [(None, f"m{i}".encode(), []) for i in range(10)]
    await produce_all(await make_producer(), topic, records, timestamps=stamps)
    tp = TopicPartition(topic, 0)
    c = await make_consumer()
    assert await c.beginning_offsets([tp]) == {tp: 0}
    assert await c.end_offsets([tp]) == {tp: 10}
    found = (await c.offsets_for_times({tp: base + 4500}))[tp]
    assert found is not None and (found.offset, found.timestamp) == (5, stamps[5])
    assert (await c.offsets_for_times({tp: base - 1}))[tp].offset == 0
    assert (await c.offsets_for_times({tp: base + 60_000}))[tp] is None

    c.assign([tp])
    c.seek(tp, found.offset)
    msgs = await consume(c, 5)
    assert [m.offset for m in msgs] == [5, 6, 7, 8, 9]
    assert [m.timestamp for m in msgs] == stamps[5:]


async def test_seek_and_replay(
    make_producer: Any, make_consumer: Any, topic_factory: Callable[..., str]
) -> None:
    topic = topic_factory(1)
    records: list[Record] = [(None, f"m{i}".encode(), []) for i in range(20)]
    await produce_all(await make_producer(), topic, records)
    tp = TopicPartition(topic, 0)
    c = await make_consumer()
    c.assign([tp])
    await c.seek_to_beginning(tp)
    first = await consume(c, 20)
    assert [m.value for m in first] == [f"m{i}".encode() for i in range(20)]
    assert await c.position(tp) == 20

    c.seek(tp, 5)
    assert [m.offset for m in await consume(c, 15)] == list(range(5, 20))
    await c.seek_to_beginning(tp)
    assert [m.value for m in await consume(c, 20)] == [m.value for m in first]
    c.seek(tp, 17)
    assert [m.offset for m in await consume(c, 3)] == [17, 18, 19]
    await c.seek_to_end(tp)
    assert await poll_quiet(c, 0.5) == []
    assert await c.position(tp) == 20


async def test_pause_resume(
    make_producer: Any, make_consumer: Any, topic_factory: Callable[..., str]
) -> None:
    topic = topic_factory(3)
    p = await make_producer()

    async def fill(start: int) -> None:
        for part in range(3):
            batch: list[Record] = [
                (None, f"p{part}-{i}".encode(), []) for i in range(start, start + 5)
            ]
            await produce_all(p, topic, batch, partition=part)

    await fill(0)
    tps = [TopicPartition(topic, part) for part in range(3)]
    c = await make_consumer()
    c.assign(tps)
    await c.seek_to_beginning()
    assert len(await consume(c, 15)) == 15

    c.pause(tps[1])
    assert c.paused() == {tps[1]}
    await fill(5)
    flowing = await consume(c, 10)
    assert sorted({m.partition for m in flowing}) == [0, 2]
    assert await poll_quiet(c, 1.0) == [], "a paused partition delivered messages"

    c.resume(tps[1])
    resumed = await consume(c, 5)
    assert {m.partition for m in resumed} == {1}
    assert [m.value for m in resumed] == [f"p1-{i}".encode() for i in range(5, 10)]
