"""aiokafka against klamm: idempotent producer (InitProducerId v0), transactions,
consume-transform-produce with send_offsets_to_transaction."""

from __future__ import annotations

import asyncio

import pytest

aiokafka = pytest.importorskip("aiokafka")
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # noqa: E402


async def _create(bootstrap: str, *topics: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, 1, 1) for t in topics])
    finally:
        await admin.close()


async def _consume(bootstrap: str, topic: str, isolation: str, expect: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
        enable_auto_commit=False, isolation_level=isolation,
    )  # fmt: skip
    await consumer.start()
    values: list[bytes] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        quiet = 0
        while loop.time() < deadline and quiet < 3:
            got = await consumer.getmany(timeout_ms=400)
            batch = [r.value for rs in got.values() for r in rs]
            values.extend(batch)
            quiet = quiet + 1 if (not batch and len(values) >= expect) else 0
    finally:
        await consumer.stop()
    return values


async def test_idempotent_exactly_once_in_order(kafka_broker, unique):
    topic = f"idem-aio-{unique}"
    await _create(kafka_broker.bootstrap, topic)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_broker.bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        futures = [await producer.send(topic, f"m{i}".encode()) for i in range(300)]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    assert await _consume(kafka_broker.bootstrap, topic, "read_uncommitted", 300) == [
        f"m{i}".encode() for i in range(300)
    ]


async def test_commit_one_abort_another(kafka_broker, unique):
    topic = f"txn-aio-{unique}"
    await _create(kafka_broker.bootstrap, topic)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_broker.bootstrap,
                                transactional_id=f"aio-{unique}")  # fmt: skip
    await producer.start()
    try:
        async with producer.transaction():
            for i in range(5):
                await producer.send(topic, f"ok-{i}".encode())
        await producer.begin_transaction()
        for i in range(5):
            await producer.send_and_wait(topic, f"no-{i}".encode())
        await producer.abort_transaction()
    finally:
        await producer.stop()
    assert await _consume(kafka_broker.bootstrap, topic, "read_committed", 5) == [
        f"ok-{i}".encode() for i in range(5)
    ]
    assert len(await _consume(kafka_broker.bootstrap, topic, "read_uncommitted", 10)) == 10


async def test_consume_transform_produce(kafka_broker, unique):
    src, dst, group = f"aio-in-{unique}", f"aio-out-{unique}", f"aio-g-{unique}"
    await _create(kafka_broker.bootstrap, src, dst)
    seed = AIOKafkaProducer(bootstrap_servers=kafka_broker.bootstrap)
    await seed.start()
    for i in range(10):
        await seed.send_and_wait(src, f"in-{i}".encode())
    await seed.stop()
    consumer = AIOKafkaConsumer(
        src, bootstrap_servers=kafka_broker.bootstrap, group_id=group,
        auto_offset_reset="earliest", enable_auto_commit=False,
        isolation_level="read_committed",
    )  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=kafka_broker.bootstrap,
                                transactional_id=f"aio-ctp-{unique}")  # fmt: skip
    await consumer.start()
    await producer.start()
    try:
        records = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while len(records) < 10 and loop.time() < deadline:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
        assert len(records) == 10
        tp = TopicPartition(src, 0)
        await producer.begin_transaction()
        for r in records:
            await producer.send(dst, r.value.upper())
        await producer.send_offsets_to_transaction({tp: 10}, group)
        await producer.abort_transaction()
        assert await consumer.committed(tp) is None

        async with producer.transaction():
            for r in records:
                await producer.send(dst, r.value.upper())
            await producer.send_offsets_to_transaction({tp: 10}, group)
        assert await consumer.committed(tp) == 10
    finally:
        await producer.stop()
        await consumer.stop()
    assert await _consume(kafka_broker.bootstrap, dst, "read_committed", 10) == [
        f"IN-{i}".encode() for i in range(10)
    ]
