"""The production patterns end to end on klamm's broker: dead-letter topic, idempotent processing
across a consumer restart, and transactional consume-transform-produce."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from typing import Any

import pytest

from klamm import Event, Events, Kafka, KafkaError, Message, RetryPolicy
from klamm.patterns import SQLiteStore, idempotent
from tests.client.client_helpers import FAST_CONSUMER, eventually, wait_until


async def read(kafka: Kafka, topic: str, count: int, **options: Any) -> list[Any]:
    got: list[Any] = []

    async def handler(payload: Any) -> None:
        got.append(payload.message)

    group = f"reader-{topic}-{uuid.uuid4().hex[:6]}"
    async with kafka.consumer(group_id=group, **FAST_CONSUMER, **options) as c:
        await c.subscribe(topics=[topic], from_beginning=True)
        await c.run(each_message=handler)
        await wait_until(lambda: len(got) >= count, what=f"{count} on {topic}")
        await asyncio.sleep(0.3)  # and no more than that
    return got


async def committed(kafka: Kafka, group: str, topic: str) -> list[int]:
    async with kafka.admin() as admin:
        offsets = await admin.fetch_offsets(group_id=group, topics=[topic])
    return [p["offset"] for p in offsets[0]["partitions"]]


async def test_poison_message_lands_in_dlq_with_metadata(kafka: Kafka, unique: str) -> None:
    topic, dlq, group = f"orders-{unique}", f"orders-{unique}.dlq", f"payments-{unique}"
    async with kafka.producer() as producer:
        await producer.send(
            topic=topic,
            messages=[
                Message(key=b"c1", value=b"ok-1"),
                Message(key=b"c2", value=b"poison", headers={"trace-id": b"t-9"}),
                Message(key=b"c3", value=b"ok-2"),
            ],
        )
    processed: list[bytes | None] = []
    dead: list[Event] = []

    async def handler(payload: Any) -> None:
        if payload.message.value == b"poison":
            raise ValueError("amount is not a number")
        processed.append(payload.message.value)

    consumer = kafka.consumer(group_id=group, **FAST_CONSUMER)
    consumer.on(Events.DEAD_LETTER, dead.append)
    before = dt.datetime.now(dt.UTC)
    async with consumer:
        await consumer.subscribe(topics=[topic], from_beginning=True)
        await consumer.run(
            each_message=handler,
            retry=RetryPolicy(initial_retry_time_ms=10, retries=3),
            dead_letter_topic=dlq,
        )
        await wait_until(lambda: processed == [b"ok-1", b"ok-2"])
        assert await eventually(lambda: committed(kafka, group, topic), [3]) == [3]
    assert len(dead) == 1 and dead[0].payload["offset"] == 1

    [record] = await read(kafka, dlq, 1)
    assert record.key == b"c2" and record.value == b"poison"
    headers = record.headers
    assert headers["trace-id"] == b"t-9"
    assert headers["original-topic"] == topic.encode()
    assert headers["original-partition"] == b"0"
    assert headers["original-offset"] == b"1"
    assert headers["error"] == b"ValueError: amount is not a number"
    assert headers["retry-count"] == b"3"
    failed_at = dt.datetime.fromisoformat((headers["failed-at"] or b"").decode())
    assert before <= failed_at <= dt.datetime.now(dt.UTC)


async def test_a_message_the_dead_letter_topic_refuses_crashes_visibly(
    kafka: Kafka, unique: str
) -> None:
    """A dead-letter send that cannot succeed (the message is too large for the dead-letter
    topic) is handled as without a DLQ: a CRASH event and KafkaJS's restart policy. It used to
    end the run loop silently: no event, and the consumer still "running"."""
    topic, dlq = f"big-{unique}", f"big-{unique}.dlq"
    small = [{"name": "max.message.bytes", "value": "1000"}]
    async with kafka.admin() as admin:
        await admin.create_topics(
            topics=[{"topic": topic}, {"topic": dlq, "config_entries": small}]
        )
    async with kafka.producer() as producer:
        await producer.send(topic=topic, messages=[{"value": b"x" * 2_000}])
    crashes: list[Event] = []

    async def handler(payload: Any) -> None:
        raise ValueError("cannot process")

    async def no(_: BaseException) -> bool:
        return False

    consumer = kafka.consumer(group_id=f"g-{unique}", **FAST_CONSUMER)
    consumer.on(Events.CRASH, crashes.append)
    async with consumer:
        await consumer.subscribe(topics=[topic], from_beginning=True)
        await consumer.run(
            each_message=handler,
            retry=RetryPolicy(retries=0, restart_on_failure=no),
            dead_letter_topic=dlq,
        )
        await asyncio.wait_for(consumer.wait_stopped(), 30)
    [crash] = crashes
    assert isinstance(crash.payload["error"], KafkaError)
    assert not crash.payload["error"].retriable and crash.payload["restart"] is False


async def test_each_batch_dlq_skips_only_the_poison(kafka: Kafka, unique: str) -> None:
    topic, dlq = f"batch-{unique}", f"batch-{unique}.dlq"
    async with kafka.producer() as producer:
        await producer.send(topic=topic, messages=[{"value": v} for v in (b"1", b"x", b"3")])
    done: list[bytes | None] = []

    async def handler(payload: Any) -> None:
        for m in payload.batch.messages:
            if m.value == b"x":
                raise ValueError("bad record")
            done.append(m.value)
            payload.resolve_offset(m.offset)

    async with kafka.consumer(group_id=f"g-{unique}", **FAST_CONSUMER) as consumer:
        await consumer.subscribe(topics=[topic], from_beginning=True)
        await consumer.run(
            each_batch=handler,
            retry=RetryPolicy(initial_retry_time_ms=5, retries=1),
            dead_letter_topic=dlq,
        )
        await wait_until(lambda: b"3" in done)
    assert done == [b"1", b"3"]  # "1" was resolved before the failure: not processed again
    [record] = await read(kafka, dlq, 1)
    assert record.value == b"x" and record.headers["original-offset"] == b"1"


async def test_idempotent_processing_across_consumer_restart(
    kafka: Kafka, unique: str, tmp_path: Any
) -> None:
    """The first consumer processes everything but dies before committing (auto_commit off),
    so the second one gets every message again: no duplicate business rows."""
    topic, group = f"payments-{unique}", f"payment-service-{unique}"
    async with kafka.producer() as producer:
        await producer.send(
            topic=topic, messages=[{"key": f"o{i}", "value": str(i * 10)} for i in range(5)]
        )
    store = SQLiteStore(str(tmp_path / "payments.db"))
    async with store.transaction() as tx:
        await tx.execute("CREATE TABLE payments (order_id TEXT, amount INTEGER)")
    deliveries = 0

    async def process(payload: Any, tx: Any) -> None:
        nonlocal deliveries
        deliveries += 1
        await tx.execute(
            "INSERT INTO payments VALUES (?, ?)",
            (payload.message.key.decode(), int(payload.message.value)),
        )

    seen = 0

    async def counting(payload: Any) -> None:
        nonlocal seen
        await handler(payload)
        seen += 1

    handler = idempotent(store, process)
    for auto_commit in (False, True):
        seen = 0
        async with kafka.consumer(group_id=group, **FAST_CONSUMER) as consumer:
            await consumer.subscribe(topics=[topic], from_beginning=True)
            await consumer.run(each_message=counting, auto_commit=auto_commit)
            await wait_until(lambda: seen == 5, what="5 deliveries")  # noqa: B023
    assert deliveries == 5  # the 5 redeliveries were recognised
    async with store.transaction() as tx:
        rows = await tx.execute("SELECT order_id, amount FROM payments ORDER BY order_id")
    assert rows == [(f"o{i}", i * 10) for i in range(5)]
    assert await eventually(lambda: committed(kafka, group, topic), [5]) == [5]
    await store.close()


async def test_transactional_consume_transform_produce(kafka: Kafka, unique: str) -> None:
    source, sink, group = f"orders-{unique}", f"processed-{unique}", f"eos-{unique}"
    async with kafka.producer() as producer:
        await producer.send(topic=source, messages=[{"value": str(i)} for i in range(6)])
    producer = kafka.producer(transactional_id=f"processor-{unique}")
    consumer = kafka.consumer(group_id=group, **FAST_CONSUMER)
    handled = 0

    async def handler(payload: Any) -> None:
        nonlocal handled
        value = int(payload.message.value)
        try:
            async with producer.transaction() as txn:
                await txn.send(topic=sink, messages=[{"value": str(value * 100)}])
                await txn.send_offsets(
                    consumer=consumer,
                    offsets={(payload.topic, payload.partition): payload.message.offset + 1},
                )
                if value == 3:
                    raise LookupError("abort this one")
        except LookupError:
            pass
        handled += 1

    async with producer, consumer:
        await consumer.subscribe(topics=[source], from_beginning=True)
        await consumer.run(each_message=handler, auto_commit=False)
        await wait_until(lambda: handled == 6)
        # Offsets came only through transactions; the aborted one (offset 3) was superseded.
        assert await eventually(lambda: committed(kafka, group, source), [6]) == [6]
    got = await read(kafka, sink, 5)
    assert [m.value for m in got] == [b"0", b"100", b"200", b"400", b"500"]
    uncommitted = await read(kafka, sink, 6, read_uncommitted=True)
    assert sorted(m.value for m in uncommitted) == sorted(
        [b"0", b"100", b"200", b"300", b"400", b"500"]
    )


async def test_a_commit_cancelled_midway_frees_the_producer(
    kafka: Kafka, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancelling the task (a wait_for timeout) while librdkafka commits: the commit finishes
    in its worker thread, and the producer must not stay "in a transaction" for good."""
    topic = f"txn-cancel-{unique}"
    async with kafka.producer(transactional_id=f"tx-{unique}") as producer:
        rd = producer._default

        class SlowCommit:  # librdkafka's producer, with a commit that takes a while
            def __getattr__(self, name: str) -> Any:
                return getattr(rd, name)

            def commit_transaction(self, timeout: float) -> None:
                time.sleep(1.0)
                rd.commit_transaction(timeout)

        monkeypatch.setattr(type(producer), "_default", property(lambda _self: SlowCommit()))

        async def work() -> Any:
            async with producer.transaction() as txn:
                await txn.send(topic=topic, messages=[{"value": b"first"}])
            return txn

        with pytest.raises(TimeoutError):
            await asyncio.wait_for(work(), 0.3)
        await asyncio.sleep(1.5)  # the commit ends in its thread
        async with producer.transaction() as txn:
            await txn.send(topic=topic, messages=[{"value": b"second"}])
    got = await read(kafka, topic, 2, read_uncommitted=False)
    assert [m.value for m in got] == [b"first", b"second"]


async def test_explicit_commit_and_abort(kafka: Kafka, unique: str) -> None:
    topic = f"txn-{unique}"
    async with kafka.producer(transactional_id=f"tx-{unique}") as producer:
        txn = await producer.transaction()
        await txn.send(topic=topic, messages=[{"value": b"kept"}])
        await txn.commit()
        assert not txn.is_active()
        txn = await producer.transaction()
        await txn.send(topic=topic, messages=[{"value": b"dropped"}])
        await txn.abort()
        with pytest.raises(ValueError):
            async with producer.transaction() as t:
                await t.send(topic=topic, messages=[{"value": b"dropped-too"}])
                raise ValueError("boom")
        async with producer.transaction() as t:
            await t.send(topic=topic, messages=[{"value": b"kept-2"}])
    got = await read(kafka, topic, 2)
    assert [m.value for m in got] == [b"kept", b"kept-2"]
