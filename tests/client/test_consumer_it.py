"""Consumer contract against klamm's broker: run/each_message/each_batch, commits, retries,
pause/resume/seek, events and rebalances."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from klamm import (
    ConfigError,
    Event,
    Events,
    Kafka,
    PartitionAssigners,
    RequestError,
    RetryPolicy,
)
from klamm.client.errors import NumberOfRetriesExceeded
from tests.client.client_helpers import FAST_CONSUMER, eventually, wait_until


async def produce(
    kafka: Kafka, topic: str, values: list[bytes], partition: int | None = None
) -> None:
    async with kafka.producer() as producer:
        await producer.send(
            topic=topic, messages=[{"value": v, "partition": partition} for v in values]
        )


async def create(kafka: Kafka, topic: str, partitions: int) -> None:
    async with kafka.admin() as admin:
        await admin.create_topics(topics=[{"topic": topic, "num_partitions": partitions}])


async def committed(kafka: Kafka, group: str, topic: str) -> list[int]:
    async with kafka.admin() as admin:
        offsets = await admin.fetch_offsets(group_id=group, topics=[topic])
    return [p["offset"] for p in offsets[0]["partitions"]]


async def test_each_message_commits_after_the_handler(kafka: Kafka, unique: str) -> None:
    topic, group = f"orders-{unique}", f"payments-{unique}"
    await produce(kafka, topic, [b"a", b"b", b"c"])
    seen: list[tuple[str, int, int, bytes | None]] = []
    joins: list[Event] = []
    commits: list[Event] = []
    consumer = kafka.consumer(group_id=group, **FAST_CONSUMER)
    consumer.on(Events.GROUP_JOIN, joins.append)
    consumer.on(Events.COMMIT_OFFSETS, commits.append)
    starts: list[Event] = []
    consumer.on(Events.START_BATCH_PROCESS, starts.append)
    fetches: list[Event] = []
    consumer.on(Events.FETCH, fetches.append)

    async def handler(payload: Any) -> None:
        await payload.heartbeat()
        seen.append(
            (payload.topic, payload.partition, payload.message.offset, payload.message.value)
        )

    async with consumer:
        await consumer.subscribe(topics=[topic], from_beginning=True)
        await consumer.run(each_message=handler)
        await wait_until(lambda: len(seen) == 3, what="3 messages")
        assert await eventually(lambda: committed(kafka, group, topic), [3]) == [3]
        assert consumer.assignment() == [(topic, 0)]
    assert seen == [(topic, 0, 0, b"a"), (topic, 0, 1, b"b"), (topic, 0, 2, b"c")]
    assert joins and joins[0].payload["member_assignment"] == {topic: [0]}
    assert joins[0].type == "consumer.group_join"
    # KafkaJS: COMMIT_OFFSETS is emitted for commits that succeeded, with these payload keys.
    assert commits and set(commits[-1].payload) == {
        "group_id",
        "member_id",
        "group_generation_id",
        "topics",
    }
    # KafkaJS's payload shapes.
    assert commits[-1].payload["topics"] == [
        {"topic": topic, "partitions": [{"partition": 0, "offset": 3}]}
    ]
    member_id = joins[0].payload["member_id"]
    assert member_id and commits[-1].payload["member_id"] == member_id
    [start] = starts
    assert start.payload == {
        "topic": topic,
        "partition": 0,
        "high_watermark": 3,
        "offset_lag": 0,
        "offset_lag_low": 2,
        "batch_size": 3,
        "first_offset": 0,
        "last_offset": 2,
    }
    assert fetches and fetches[0].payload["number_of_batches"] == 1
    assert fetches[0].payload["duration"] >= 0


async def test_restart_continues_from_committed_offset(kafka: Kafka, unique: str) -> None:
    topic, group = f"orders-{unique}", f"payments-{unique}"
    await produce(kafka, topic, [b"1", b"2"])
    for expected in ([b"1", b"2"], [b"3"]):
        seen: list[bytes | None] = []

        async def handler(payload: Any, seen: list[bytes | None] = seen) -> None:
            seen.append(payload.message.value)

        async with kafka.consumer(group_id=group, **FAST_CONSUMER) as consumer:
            await consumer.subscribe(topics=[topic], from_beginning=True)
            await consumer.run(each_message=handler)
            n = len(expected)
            await wait_until(lambda seen=seen, n=n: len(seen) >= n)
            await asyncio.sleep(0.2)  # nothing else arrives
        assert seen == expected
        await produce(kafka, topic, [b"3"])


async def test_from_beginning_false_reads_only_new(kafka: Kafka, unique: str) -> None:
    topic = f"live-{unique}"
    await produce(kafka, topic, [b"old"])
    seen: list[bytes | None] = []
    assigned = asyncio.Event()
    consumer = kafka.consumer(group_id=f"g-{unique}", **FAST_CONSUMER)
    consumer.on(Events.GROUP_JOIN, lambda e: assigned.set())

    async def handler(payload: Any) -> None:
        seen.append(payload.message.value)

    async with consumer:
        await consumer.subscribe(topics=[topic])
        await consumer.run(each_message=handler)
        await asyncio.wait_for(assigned.wait(), 15)
        # librdkafka resolves "latest" some time after the assignment; a message produced before
        # that is (rightly) skipped too. So produce new messages until one arrives: none of the
        # earlier ones may ever show up, and "old" never.
        for attempt in range(30):
            await produce(kafka, topic, [f"new-{attempt}".encode()])
            with contextlib.suppress(AssertionError):
                await wait_until(lambda: bool(seen), timeout_s=0.5)
                break
        await asyncio.sleep(0.2)
        assert seen and b"old" not in seen
        first = int(seen[0].split(b"-")[1])  # type: ignore[union-attr]
        assert seen == [f"new-{i}".encode() for i in range(first, first + len(seen))]


async def test_each_batch_payload(kafka: Kafka, unique: str) -> None:
    topic, group = f"batch-{unique}", f"g-{unique}"
    await produce(kafka, topic, [str(i).encode() for i in range(20)])
    batches: list[dict[str, Any]] = []

    async def handler(payload: Any) -> None:
        batch = payload.batch
        batches.append(
            {
                "topic": batch.topic,
                "partition": batch.partition,
                "offsets": [m.offset for m in batch.messages],
                "first": batch.first_offset(),
                "last": batch.last_offset(),
                "hw": batch.high_watermark,
                "lag": batch.offset_lag(),
            }
        )
        assert payload.is_running() and not payload.is_stale()
        for m in batch.messages:
            payload.resolve_offset(m.offset)
            await payload.heartbeat()
        assert payload.uncommitted_offsets() == {(topic, 0): batch.last_offset() + 1}
        await payload.commit_offsets_if_necessary()

    async with kafka.consumer(group_id=group, **FAST_CONSUMER) as consumer:
        await consumer.subscribe(topics=[topic], from_beginning=True)
        await consumer.run(each_batch=handler, each_batch_auto_resolve=False)
        await wait_until(lambda: sum(len(b["offsets"]) for b in batches) == 20)
        assert await eventually(lambda: committed(kafka, group, topic), [20]) == [20]
    offsets = [o for b in batches for o in b["offsets"]]
    assert offsets == list(range(20))
    for b in batches:
        assert (b["topic"], b["partition"]) == (topic, 0)
        assert b["first"] == b["offsets"][0] and b["last"] == b["offsets"][-1]
        assert b["hw"] == 20 and b["lag"] == 19 - b["last"]


async def test_each_batch_columns_are_the_messages_values_and_keys(
    kafka: Kafka, unique: str
) -> None:
    """values() and keys() are the batch as columns: the same records as `messages`, in order,
    tombstones and missing keys included; after a retry, only the records not yet resolved."""
    topic, group = f"columns-{unique}", f"g-{unique}"
    sent = [(b"k0", b"v0"), (None, b"v1"), (b"k2", None), (b"k3", b"v3")]
    async with kafka.producer() as producer:
        await producer.send(topic=topic, messages=[{"key": k, "value": v} for k, v in sent])
    calls: list[tuple[list[Any], list[Any], list[Any], list[Any]]] = []

    async def handler(payload: Any) -> None:
        batch = payload.batch
        calls.append(
            (
                batch.values(),
                batch.keys(),
                [m.value for m in batch.messages],
                [m.key for m in batch.messages],
            )
        )
        if len(calls) == 1:  # resolve the first record, then fail: the retry starts after it
            payload.resolve_offset(batch.first_offset())
            raise RuntimeError("try again")

    async with kafka.consumer(group_id=group, **FAST_CONSUMER) as consumer:
        await consumer.subscribe(topics=[topic], from_beginning=True)
        await consumer.run(each_batch=handler, retry=RetryPolicy(initial_retry_time_ms=5))
        await wait_until(lambda: len(calls) >= 2, what="a retried batch")
    (values, keys, message_values, message_keys), retried = calls[0], calls[1]
    assert values == message_values and keys == message_keys
    assert list(zip(keys, values, strict=True)) == sent  # one fetch: the whole batch at once
    assert retried == (values[1:], keys[1:], values[1:], keys[1:])


async def test_each_batch_messages_left_unresolved_are_fetched_again(
    kafka: Kafka, unique: str
) -> None:
    """Without auto-resolve, a handler that resolves half a batch and returns gets the other
    half again (KafkaJS fetches from the resolved offset); nothing is committed past it."""
    topic, group = f"half-{unique}", f"g-{unique}"
    await produce(kafka, topic, [str(i).encode() for i in range(20)])
    processed: list[int] = []

    async def handler(payload: Any) -> None:
        for m in payload.batch.messages[:10]:
            processed.append(m.offset)
            payload.resolve_offset(m.offset)

    async with kafka.consumer(group_id=group, **FAST_CONSUMER) as consumer:
        await consumer.subscribe(topics=[topic], from_beginning=True)
        await consumer.run(each_batch=handler, each_batch_auto_resolve=False)
        await wait_until(lambda: len(processed) >= 20, what="every message")
        assert await eventually(lambda: committed(kafka, group, topic), [20]) == [20]
    assert processed == list(range(20))


async def test_each_batch_paused_mid_batch_gets_the_rest_after_resume(
    kafka: Kafka, unique: str
) -> None:
    """A paused batch is not auto-resolved: the messages after the last one resolved come
    again after resume (KafkaJS would resolve the whole batch and skip them)."""
    topic, group = f"batch-pause-{unique}", f"g-{unique}"
    await produce(kafka, topic, [str(i).encode() for i in range(10)])
    processed: list[int] = []
    resumes: list[Callable[[], None]] = []

    async def handler(payload: Any) -> None:
        for m in payload.batch.messages:
            if m.offset == 3 and not resumes:
                resumes.append(payload.pause())  # e.g. a downstream service said "429"
                return
            processed.append(m.offset)
            payload.resolve_offset(m.offset)

    async with kafka.consumer(group_id=group, **FAST_CONSUMER) as consumer:
        await consumer.subscribe(topics=[topic], from_beginning=True)
        await consumer.run(each_batch=handler)
        await wait_until(lambda: bool(resumes), what="the pause")
        await asyncio.sleep(0.3)
        assert processed == [0, 1, 2]
        resumes[0]()
        await wait_until(lambda: len(processed) >= 10, what="the rest after resume")
        assert await eventually(lambda: committed(kafka, group, topic), [10]) == [10]
    assert processed == list(range(10))


async def test_several_topics_and_a_regex_keep_messages_apart(kafka: Kafka, unique: str) -> None:
    """Partition 0 of two topics: batches must never mix them (one subscribed topic name is
    grouped by partition alone; this covers the other path)."""
    a, b = f"multi-a-{unique}", f"multi-b-{unique}"
    await produce(kafka, a, [b"a0", b"a1", b"a2"])
    await produce(kafka, b, [b"b0", b"b1"])
    for subscription in ([a, b], [f"^multi-[ab]-{unique}$"]):
        seen = await _read_batches(kafka, f"g-{unique}-{len(subscription)}", subscription, 5)
        assert seen == {a: [(0, b"a0"), (1, b"a1"), (2, b"a2")], b: [(0, b"b0"), (1, b"b1")]}


async def _read_batches(
    kafka: Kafka, group: str, topics: list[str], count: int
) -> dict[str, list[tuple[int, bytes | None]]]:
    seen: dict[str, list[tuple[int, bytes | None]]] = {}

    async def handler(payload: Any) -> None:
        batch = payload.batch
        for m in batch.messages:
            seen.setdefault(batch.topic, []).append((m.offset, m.value))

    async with kafka.consumer(group_id=group, **FAST_CONSUMER) as consumer:
        await consumer.subscribe(topics=topics, from_beginning=True)
        await consumer.run(each_batch=handler)
        await wait_until(lambda: sum(map(len, seen.values())) == count, what=f"{count} messages")
    return seen


async def test_each_batch_auto_resolve_threshold_commit(kafka: Kafka, unique: str) -> None:
    topic, group = f"batch-{unique}", f"g-{unique}"
    await produce(kafka, topic, [b"x"] * 10)
    count = 0

    async def handler(payload: Any) -> None:
        nonlocal count
        count += len(payload.batch.messages)

    async with kafka.consumer(group_id=group, **FAST_CONSUMER) as consumer:
        await consumer.subscribe(topics=[topic], from_beginning=True)
        await consumer.run(each_batch=handler, auto_commit_threshold=5, auto_commit_interval_ms=50)
        await wait_until(lambda: count == 10)
        assert await eventually(lambda: committed(kafka, group, topic), [10]) == [10]


async def test_each_message_threshold_commits_before_the_batch_ends(
    kafka: Kafka, unique: str
) -> None:
    topic, group = f"threshold-{unique}", f"g-{unique}"
    await produce(kafka, topic, [b"x"] * 10)
    batches: list[Event] = []
    reached, release = asyncio.Event(), asyncio.Event()

    async def handler(payload: Any) -> None:
        if payload.message.offset == 6:
            reached.set()
            await release.wait()

    consumer = kafka.consumer(group_id=group, **FAST_CONSUMER)
    consumer.on(Events.START_BATCH_PROCESS, batches.append)
    async with consumer:
        await consumer.subscribe(topics=[topic], from_beginning=True)
        await consumer.run(each_message=handler, auto_commit_threshold=2)
        try:
            await asyncio.wait_for(reached.wait(), 30)
            assert batches[0].payload["batch_size"] == 10  # all ten in one batch
            # Offsets 0-5 are resolved and every second one commits: the commit is not left to
            # the end of the batch, which is still being processed.
            assert await eventually(lambda: committed(kafka, group, topic), [6]) == [6]
        finally:
            release.set()  # so that stopping the consumer does not wait on the handler


async def test_handler_error_is_retried_in_order(kafka: Kafka, unique: str) -> None:
    topic = f"retry-{unique}"
    await produce(kafka, topic, [b"a", b"b", b"c"])
    calls: list[bytes | None] = []
    retries: list[Event] = []

    async def handler(payload: Any) -> None:
        calls.append(payload.message.value)
        if payload.message.value == b"b" and calls.count(b"b") < 3:
            raise ConnectionError("payment service down")

    consumer = kafka.consumer(group_id=f"g-{unique}", **FAST_CONSUMER)
    consumer.on(Events.RETRY, retries.append)
    async with consumer:
        await consumer.subscribe(topics=[topic], from_beginning=True)
        await consumer.run(
            each_message=handler, retry=RetryPolicy(initial_retry_time_ms=10, retries=5)
        )
        await wait_until(lambda: b"c" in calls)
    assert calls == [b"a", b"b", b"b", b"b", b"c"]
    assert [e.payload["attempt"] for e in retries] == [1, 2]


async def test_exhausted_retries_without_dlq_restart_the_partition(
    kafka: Kafka, unique: str
) -> None:
    topic, group = f"crash-{unique}", f"g-{unique}"
    await produce(kafka, topic, [b"ok", b"flaky", b"after"])
    calls: list[bytes | None] = []
    crashes: list[Event] = []

    async def handler(payload: Any) -> None:
        calls.append(payload.message.value)
        if payload.message.value == b"flaky" and calls.count(b"flaky") <= 2:
            raise RuntimeError("still failing")

    consumer = kafka.consumer(group_id=group, **FAST_CONSUMER)
    consumer.on(Events.CRASH, crashes.append)
    async with consumer:
        await consumer.subscribe(topics=[topic], from_beginning=True)
        await consumer.run(
            each_message=handler, retry=RetryPolicy(initial_retry_time_ms=10, retries=1)
        )
        await wait_until(lambda: b"after" in calls)
        assert await eventually(lambda: committed(kafka, group, topic), [3]) == [3]
    # Two failed attempts (1 + 1 retry), a restart from "flaky", then success.
    assert calls == [b"ok", b"flaky", b"flaky", b"flaky", b"after"]
    assert len(crashes) == 1 and crashes[0].payload["restart"] is True
    # KafkaJS's retrier gives up with NumberOfRetriesExceeded, carrying the handler's error.
    error = crashes[0].payload["error"]
    assert isinstance(error, NumberOfRetriesExceeded)
    assert isinstance(error.original_error, RuntimeError) and error.retry_count == 1


async def test_restart_on_failure_false_stops_the_consumer(kafka: Kafka, unique: str) -> None:
    topic = f"stop-{unique}"
    await produce(kafka, topic, [b"poison", b"never"])
    calls: list[bytes | None] = []

    async def handler(payload: Any) -> None:
        calls.append(payload.message.value)
        raise ValueError("poison")

    async def no(_: BaseException) -> bool:
        return False

    async with kafka.consumer(group_id=f"g-{unique}", **FAST_CONSUMER) as consumer:
        await consumer.subscribe(topics=[topic], from_beginning=True)
        await consumer.run(
            each_message=handler, retry=RetryPolicy(retries=0, restart_on_failure=no)
        )
        await asyncio.wait_for(consumer.wait_stopped(), 15)
    assert calls == [b"poison"]


async def test_a_crash_commits_what_the_batch_finished_before_it(kafka: Kafka, unique: str) -> None:
    """KafkaJS commits resolved offsets when a handler's retries run out: the two messages done
    before the poison are committed at once, not only when the application calls stop()."""
    topic, group = f"crash-commit-{unique}", f"g-{unique}"
    await produce(kafka, topic, [b"ok", b"ok", b"poison", b"never"])

    async def handler(payload: Any) -> None:
        if payload.message.value == b"poison":
            raise ValueError("poison")

    async def no(_: BaseException) -> bool:
        return False

    async with kafka.consumer(group_id=group, **FAST_CONSUMER) as consumer:
        await consumer.subscribe(topics=[topic], from_beginning=True)
        await consumer.run(
            each_message=handler, retry=RetryPolicy(retries=0, restart_on_failure=no)
        )
        await asyncio.wait_for(consumer.wait_stopped(), 15)
        assert await eventually(lambda: committed(kafka, group, topic), [2]) == [2]


async def test_a_plain_function_is_a_handler_too(kafka: Kafka, unique: str) -> None:
    """KafkaJS awaits whatever the handler returns; a `def` handler must not fail every call
    (after running) and loop through retries and restarts."""
    topic, group = f"sync-{unique}", f"g-{unique}"
    await produce(kafka, topic, [b"a", b"b", b"c"])
    seen: list[bytes | None] = []
    crashes: list[Event] = []
    consumer = kafka.consumer(group_id=group, **FAST_CONSUMER)
    consumer.on(Events.CRASH, crashes.append)
    async with consumer:
        await consumer.subscribe(topics=[topic], from_beginning=True)
        await consumer.run(each_message=lambda payload: seen.append(payload.message.value))
        await wait_until(lambda: len(seen) >= 3)
        assert await eventually(lambda: committed(kafka, group, topic), [3]) == [3]
    assert seen == [b"a", b"b", b"c"] and not crashes


async def test_wrong_subscribe_and_seek_arguments_are_config_errors(
    kafka: Kafka, unique: str
) -> None:
    async with kafka.consumer(group_id=f"g-{unique}", **FAST_CONSUMER) as consumer:
        with pytest.raises(ConfigError, match="list of names"):
            await consumer.subscribe(topics=f"orders-{unique}")  # type: ignore[arg-type]
        for offset in (-5, "x", None):
            with pytest.raises(ConfigError, match="offset"):
                consumer.seek(topic=f"orders-{unique}", partition=0, offset=offset)  # type: ignore[arg-type]


async def test_seek_to_the_logical_beginning_reads_again(kafka: Kafka, unique: str) -> None:
    topic = f"rewind-{unique}"
    await produce(kafka, topic, [b"a", b"b"])
    seen: list[bytes | None] = []

    async def handler(payload: Any) -> None:
        seen.append(payload.message.value)

    async with kafka.consumer(group_id=f"g-{unique}", **FAST_CONSUMER) as consumer:
        await consumer.subscribe(topics=[topic], from_beginning=True)
        await consumer.run(each_message=handler)
        await wait_until(lambda: len(seen) >= 2)
        consumer.seek(topic=topic, partition=0, offset=-2)  # KafkaJS's "-2": the earliest
        await wait_until(lambda: len(seen) >= 4, what="the messages again")
    assert seen == [b"a", b"b", b"a", b"b"]


async def test_stop_closes_the_consumer_even_when_the_final_commit_fails(
    kafka: Kafka, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The final commit can fail (cluster down, membership lost): as in KafkaJS, stop() logs
    it and still closes the consumer, so it leaves the group and no thread stays behind."""
    topic = f"final-{unique}"
    await produce(kafka, topic, [b"a"])
    seen: list[bytes | None] = []

    async def handler(payload: Any) -> None:
        seen.append(payload.message.value)

    consumer = kafka.consumer(group_id=f"g-{unique}", **FAST_CONSUMER)
    await consumer.connect()
    await consumer.subscribe(topics=[topic], from_beginning=True)
    await consumer.run(each_message=handler)
    await wait_until(lambda: seen == [b"a"])

    async def failing_commit(offsets: Any) -> None:
        raise RequestError("coordinator unreachable", retriable=True)

    monkeypatch.setattr(consumer, "_commit_sync", failing_commit)
    await consumer.stop()  # does not raise
    await consumer.disconnect()
    assert consumer._rd is None
    await wait_until(
        lambda: not [t for t in threading.enumerate() if t.name.startswith("klamm-consumer")],
        what="the consumer thread to end",
    )


async def test_pause_from_handler_and_resume(kafka: Kafka, unique: str) -> None:
    topic = f"pause-{unique}"
    await create(kafka, topic, 2)
    await produce(kafka, topic, [b"p0-a", b"p0-b", b"p0-c"], partition=0)
    await produce(kafka, topic, [b"p1-a", b"p1-b"], partition=1)
    seen: list[bytes | None] = []
    resumers: list[Any] = []

    async def handler(payload: Any) -> None:
        seen.append(payload.message.value)
        if payload.message.value == b"p0-a":
            resumers.append(payload.pause())

    async with kafka.consumer(group_id=f"g-{unique}", **FAST_CONSUMER) as consumer:
        await consumer.subscribe(topics=[topic], from_beginning=True)
        await consumer.run(each_message=handler)
        await wait_until(lambda: b"p1-b" in seen and resumers)
        await asyncio.sleep(0.5)
        # Partition 0 is paused after its first message; partition 1 went on.
        assert [v for v in seen if v.startswith(b"p0")] == [b"p0-a"]  # type: ignore[union-attr]
        assert consumer.paused() == [{"topic": topic, "partitions": [0]}]
        resumers[0]()
        await wait_until(lambda: b"p0-c" in seen, what="partition 0 after resume")
    assert [v for v in seen if v.startswith(b"p0")] == [b"p0-a", b"p0-b", b"p0-c"]  # type: ignore[union-attr]


async def test_consumer_pause_resume_and_seek(kafka: Kafka, unique: str) -> None:
    topic = f"seek-{unique}"
    await produce(kafka, topic, [str(i).encode() for i in range(5)])
    seen: list[int] = []
    joined = asyncio.Event()
    consumer = kafka.consumer(group_id=f"g-{unique}", **FAST_CONSUMER)
    consumer.on(Events.GROUP_JOIN, lambda e: joined.set())

    async def handler(payload: Any) -> None:
        seen.append(payload.message.offset)

    async with consumer:
        await consumer.subscribe(topics=[topic], from_beginning=True)
        await consumer.run(each_message=handler)
        await wait_until(lambda: len(seen) == 5)
        consumer.seek(topic=topic, partition=0, offset=2)
        await wait_until(lambda: len(seen) == 8, what="re-read from offset 2")
        consumer.pause([{"topic": topic}])
        await produce(kafka, topic, [b"5"])
        await asyncio.sleep(0.5)
        assert len(seen) == 8
        consumer.resume([{"topic": topic}])
        await wait_until(lambda: len(seen) == 9, what="message after resume")
    assert seen == [0, 1, 2, 3, 4, 2, 3, 4, 5]


async def test_partitions_consumed_concurrently_keeps_partition_order(
    kafka: Kafka, unique: str
) -> None:
    topic = f"conc-{unique}"
    await create(kafka, topic, 3)
    for p in range(3):
        await produce(kafka, topic, [f"{p}-{i}".encode() for i in range(10)], partition=p)
    seen: dict[int, list[int]] = {0: [], 1: [], 2: []}
    active = 0
    max_active = 0

    async def handler(payload: Any) -> None:
        nonlocal active, max_active
        active += 1
        max_active = max(max_active, active)
        await asyncio.sleep(0.001)
        seen[payload.partition].append(payload.message.offset)
        active -= 1

    async with kafka.consumer(group_id=f"g-{unique}", **FAST_CONSUMER) as consumer:
        await consumer.subscribe(topics=[topic], from_beginning=True)
        await consumer.run(each_message=handler, partitions_consumed_concurrently=3)
        await wait_until(lambda: sum(map(len, seen.values())) == 30)
    assert all(seen[p] == list(range(10)) for p in range(3))
    assert max_active > 1


async def test_rebalance_cooperative_sticky_two_members(kafka: Kafka, unique: str) -> None:
    topic, group = f"rebal-{unique}", f"g-{unique}"
    await create(kafka, topic, 4)
    options = dict(FAST_CONSUMER, partition_assigners=[PartitionAssigners.COOPERATIVE_STICKY])
    first = kafka.consumer(group_id=group, **options)
    second = kafka.consumer(group_id=group, **options)
    revoked: list[Event] = []
    first.on(Events.PARTITIONS_REVOKED, revoked.append)
    got: dict[str, list[bytes | None]] = {"first": [], "second": []}

    def handler_for(name: str) -> Any:
        async def handler(payload: Any) -> None:
            got[name].append(payload.message.value)

        return handler

    async with first, second:
        await first.subscribe(topics=[topic], from_beginning=True)
        await first.run(each_message=handler_for("first"))
        await wait_until(lambda: len(first.assignment()) == 4, what="first owns all 4")
        await second.subscribe(topics=[topic], from_beginning=True)
        await second.run(each_message=handler_for("second"))
        await wait_until(
            lambda: len(first.assignment()) == 2 and len(second.assignment()) == 2,
            timeout_s=30,
            what="2 + 2 after the second member joins",
        )
        assert not set(first.assignment()) & set(second.assignment())
        async with kafka.producer() as producer:
            await producer.send(
                topic=topic, messages=[{"value": str(p).encode(), "partition": p} for p in range(4)]
            )
        await wait_until(lambda: len(got["first"]) + len(got["second"]) == 4)
    assert revoked and len(revoked[0].payload["partitions"]) == 2


async def test_a_slow_backlog_does_not_hold_up_a_rebalance(kafka: Kafka, unique: str) -> None:
    """A member working through a fetch of slow messages stops at its cycle's time budget
    (the heartbeat interval) to let librdkafka serve a pending rebalance; the rest is fetched
    again. Without the budget the newcomer waited for the whole fetch (about 12 s here) and a
    longer one got the first member evicted while it went on processing."""
    topic, group = f"slow-{unique}", f"g-{unique}"
    await create(kafka, topic, 2)
    async with kafka.producer() as producer:
        await producer.send(
            topic=topic, messages=[{"value": b"%d" % i, "partition": i % 2} for i in range(120)]
        )
    done: dict[str, list[tuple[int, int]]] = {"first": [], "second": []}

    def handler_for(name: str) -> Any:
        async def handler(payload: Any) -> None:
            await asyncio.sleep(0.1)  # a call to a slow service
            done[name].append((payload.partition, payload.message.offset))

        return handler

    first = kafka.consumer(group_id=group, **FAST_CONSUMER)
    second = kafka.consumer(group_id=group, **FAST_CONSUMER)
    async with first, second:
        await first.subscribe(topics=[topic], from_beginning=True)
        await first.run(each_message=handler_for("first"))
        await wait_until(lambda: len(done["first"]) >= 3, what="the first member at work")
        await second.subscribe(topics=[topic], from_beginning=True)
        joined = time.monotonic()
        await second.run(each_message=handler_for("second"))
        await wait_until(lambda: len(second.assignment()) == 1, timeout_s=30, what="a partition")
        assert time.monotonic() - joined < 4
        await wait_until(
            lambda: len(set(done["first"]) | set(done["second"])) == 120,
            timeout_s=60,
            what="every message",
        )
    # At-least-once: a message may come twice across the handover, none is skipped.
    for name in done:
        for partition in (0, 1):
            offsets = [o for p, o in done[name] if p == partition]
            assert offsets == sorted(offsets), f"{name} out of order on partition {partition}"
