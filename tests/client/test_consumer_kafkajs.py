"""The consumer behaves as KafkaJS's where ported code depends on it (issue 12): regex
subscriptions, per-call from_beginning, argument errors as ConfigError, KafkaJS's event payload
keys, describe_group() and logger(), and restart_on_failure that raises."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import pytest

from klamm import ConfigError, Event, Events, Kafka, RetryPolicy
from tests.client.client_helpers import FAST_CONSUMER, wait_until


async def produce(kafka: Kafka, topic: str, values: list[bytes]) -> None:
    async with kafka.producer() as producer:
        await producer.send(topic=topic, messages=[{"value": v} for v in values])


async def test_subscribe_takes_a_compiled_pattern(kafka: Kafka, unique: str) -> None:
    """KafkaJS's `subscribe({topics: [/rx-.*/]})`; it used to crash run() with AttributeError."""
    topic = f"rx-{unique}"
    await produce(kafka, topic, [b"a"])
    seen: list[str] = []

    async def handler(payload: Any) -> None:
        seen.append(payload.topic)

    async with kafka.consumer(group_id=f"g-{unique}", **FAST_CONSUMER) as consumer:
        await consumer.subscribe(topics=[re.compile(f"rx-{unique}")], from_beginning=True)
        await consumer.run(each_message=handler)
        await wait_until(lambda: seen == [topic], what="the pattern's topic")


async def test_from_beginning_is_per_subscribe_call(kafka: Kafka, unique: str) -> None:
    """KafkaJS applies fromBeginning to the topics of its subscribe() call; klamm used to refuse
    calls that disagree."""
    early, late = f"early-{unique}", f"late-{unique}"
    await produce(kafka, early, [b"e0"])
    await produce(kafka, late, [b"l0"])
    seen: list[bytes] = []

    async def handler(payload: Any) -> None:
        seen.append(payload.message.value)

    async with kafka.consumer(group_id=f"g-{unique}", **FAST_CONSUMER) as consumer:
        await consumer.subscribe(topic=early, from_beginning=True)
        await consumer.subscribe(topic=late, from_beginning=False)
        await consumer.run(each_message=handler)
        await wait_until(lambda: b"e0" in seen, what="the from_beginning topic's old message")
        await produce(kafka, late, [b"l1"])
        await wait_until(lambda: b"l1" in seen, what="the other topic's new message")
    assert b"l0" not in seen


async def test_wrong_argument_types_are_config_errors(kafka: Kafka, unique: str) -> None:
    async def handler(payload: Any) -> None:
        pass

    def custom_assigner(**_: Any) -> Any:  # KafkaJS's custom assigner: librdkafka cannot run it
        return None

    with pytest.raises(ConfigError, match="custom assigner"):
        kafka.consumer(group_id="g", partition_assigners=[custom_assigner])  # type: ignore[list-item]
    with pytest.raises(ConfigError):
        kafka.consumer(group_id="g", session_timeout_ms="30000")  # type: ignore[arg-type]
    consumer = kafka.consumer(group_id=f"g-{unique}", **FAST_CONSUMER)
    for bad_topics in ([1], [None], 5):
        with pytest.raises(ConfigError):
            await consumer.subscribe(topics=bad_topics)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        await consumer.subscribe(topic="t", from_beginning="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        consumer.seek(topic="t", partition="0", offset=1)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        consumer.pause("t")  # type: ignore[arg-type]
    for bad in ("t", [{"topic": "t"}], [{"topic": "t", "partition": 0, "offset": "x"}]):
        with pytest.raises(ConfigError):
            await consumer.commit_offsets(bad)
    async with consumer:
        await consumer.subscribe(topic=f"t-{unique}")
        with pytest.raises(ConfigError):
            await consumer.run(each_message="handler")  # type: ignore[arg-type]
        with pytest.raises(ConfigError):
            await consumer.run(each_message=handler, auto_commit="no")  # type: ignore[arg-type]
        with pytest.raises(ConfigError):
            await consumer.run(each_message=handler, retry={"retries": 1})  # type: ignore[arg-type]


async def test_events_carry_kafkajs_payload_keys(kafka: Kafka, unique: str) -> None:
    topic = f"ev-{unique}"
    await produce(kafka, topic, [b"a"])
    events: dict[str, list[Event]] = {}
    consumer = kafka.consumer(group_id=f"g-{unique}", **FAST_CONSUMER)
    for event in (Events.GROUP_JOIN, Events.FETCH, Events.FETCH_START, Events.HEARTBEAT):
        consumer.on(event, lambda e: events.setdefault(e.type, []).append(e))
    seen: list[int] = []

    async def handler(payload: Any) -> None:
        await payload.heartbeat()
        seen.append(payload.message.offset)

    async with consumer:
        await consumer.subscribe(topic=topic, from_beginning=True)
        await consumer.run(each_message=handler)
        await wait_until(lambda: seen == [0])
    join = events["consumer.group_join"][0].payload
    assert set(join) == {
        "group_id", "member_id", "leader_id", "is_leader", "member_assignment",
        "group_protocol", "duration",
    }  # fmt: skip
    assert set(events["consumer.fetch"][0].payload) == {"number_of_batches", "duration", "node_id"}
    assert set(events["consumer.fetch_start"][0].payload) == {"node_id"}
    heartbeat = events["consumer.heartbeat"][0].payload
    assert set(heartbeat) == {"group_id", "member_id", "group_generation_id"}
    assert heartbeat["member_id"] == join["member_id"]
    assert (
        isinstance(heartbeat["group_generation_id"], int) and heartbeat["group_generation_id"] > 0
    )


async def test_describe_group_logger_and_uncommitted_offsets(kafka: Kafka, unique: str) -> None:
    topic = f"dg-{unique}"
    await produce(kafka, topic, [b"a"])
    consumer = kafka.consumer(group_id=f"g-{unique}", **FAST_CONSUMER)
    assert isinstance(consumer.logger(), logging.LoggerAdapter)
    assert consumer.uncommitted_offsets() == {"topics": []}
    seen: list[int] = []

    async def handler(payload: Any) -> None:
        seen.append(payload.message.offset)

    async with consumer:
        await consumer.subscribe(topic=topic, from_beginning=True)
        await consumer.run(each_message=handler)
        group = await consumer.describe_group()
    assert group["group_id"] == f"g-{unique}" and group["state"] == "Stable"
    assert group["members"][0]["member_assignment"] == {topic: [0]}


async def test_a_restart_on_failure_that_raises_restarts(kafka: Kafka, unique: str) -> None:
    """KafkaJS: a restartOnFailure that throws defaults to restarting; klamm used to stop."""
    topic = f"rof-{unique}"
    await produce(kafka, topic, [b"poison", b"after"])
    crashes: list[Event] = []
    calls: list[bytes] = []

    async def handler(payload: Any) -> None:
        calls.append(payload.message.value)
        if len(calls) == 1:
            raise RuntimeError("once")

    async def broken(_: BaseException) -> bool:
        raise ValueError("the callback itself fails")

    consumer = kafka.consumer(group_id=f"g-{unique}", **FAST_CONSUMER)
    consumer.on(Events.CRASH, crashes.append)
    async with consumer:
        await consumer.subscribe(topic=topic, from_beginning=True)
        retry = RetryPolicy(initial_retry_time_ms=10, retries=0, restart_on_failure=broken)
        await consumer.run(each_message=handler, retry=retry)
        await wait_until(lambda: b"after" in calls, what="the restarted consumer")
    assert [c.payload["restart"] for c in crashes] == [True]


async def test_seek_without_auto_commit_resolves_the_offset(kafka: Kafka, unique: str) -> None:
    """KafkaJS's offsetManager.seek with autoCommit off resolves offset - 1: the next commit
    stores the sought offset, and nothing is committed by the seek itself."""
    topic = f"seek-nc-{unique}"
    await produce(kafka, topic, [b"a", b"b"])
    seen: list[int] = []

    async def handler(payload: Any) -> None:
        seen.append(payload.message.offset)

    async with kafka.consumer(group_id=f"g-{unique}", **FAST_CONSUMER) as consumer:
        await consumer.subscribe(topic=topic, from_beginning=True)
        await consumer.run(each_message=handler, auto_commit=False)
        await wait_until(lambda: seen == [0, 1])
        consumer.seek(topic=topic, partition=0, offset=7)
        assert consumer.uncommitted_offsets() == {
            "topics": [{"topic": topic, "partitions": [{"partition": 0, "offset": 7}]}]
        }


async def test_after_a_crash_without_restart_the_consumer_can_run_again(
    kafka: Kafka, unique: str
) -> None:
    """The crash disconnected the consumer (KafkaJS's onCrash); it used to stay "already
    running", holding its partitions, so run() refused until the process restarted."""
    topic = f"rerun-{unique}"
    await produce(kafka, topic, [b"poison", b"after"])
    calls: list[bytes] = []

    async def handler(payload: Any) -> None:
        calls.append(payload.message.value)
        if calls == [b"poison"]:
            raise RuntimeError("first attempt")

    async def no(_: BaseException) -> bool:
        return False

    consumer = kafka.consumer(group_id=f"g-{unique}", **FAST_CONSUMER)
    async with consumer:
        await consumer.subscribe(topic=topic, from_beginning=True)
        await consumer.run(
            each_message=handler, retry=RetryPolicy(retries=0, restart_on_failure=no)
        )
        await asyncio.wait_for(consumer.wait_stopped(), 15)
        assert consumer.assignment() == []  # it left the group
        await consumer.connect()
        await consumer.run(each_message=handler)
        await wait_until(lambda: b"after" in calls, what="the second run")
    assert calls == [b"poison", b"poison", b"after"]
