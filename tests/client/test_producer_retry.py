"""The retry policy reaches send(): a send that cannot be delivered fails when KafkaJS's retrier
would give up, with KafkaJS's NumberOfRetriesExceeded (not retriable) caused by what went wrong."""

from __future__ import annotations

import asyncio
import time

import pytest

from klamm import (
    Kafka,
    KafkaConnectionError,
    NonRetriableError,
    NumberOfRetriesExceeded,
    RetryPolicy,
    TopicError,
)
from klamm.testing import EmbeddedBroker

# 2 retries from 100 ms: waits 100 + 200 ms, plus 1 s of connection timeout per attempt.
SHORT = RetryPolicy(retries=2, initial_retry_time_ms=100)
SHORT_BUDGET_S = SHORT.delivery_timeout_ms(1_000) / 1000
# Generous: librdkafka checks message timeouts about once a second; the old code waited 30 s
# (missing topic) or 300 s (broker down), so either fails clearly.
BOUND_S = SHORT_BUDGET_S + 6


def test_the_budget_follows_the_policy() -> None:
    assert SHORT.waits_ms() == [100, 200]
    assert SHORT.delivery_timeout_ms(1_000) == 3_300
    assert RetryPolicy().delivery_timeout_ms(1_000) == 300 + 600 + 1_200 + 2_400 + 4_800 + 6_000
    assert RetryPolicy(retries=3, max_retry_time_ms=500).waits_ms() == [300, 500, 500]


async def test_send_with_the_broker_down_fails_per_the_retry_policy() -> None:
    with EmbeddedBroker() as broker:
        kafka = Kafka(brokers=[broker.bootstrap], retry=SHORT)
        producer = kafka.producer()
        await producer.connect()
        try:
            await producer.send(topic="down", messages=[{"value": b"before"}])
            broker.stop()
            started = time.monotonic()
            with pytest.raises(NumberOfRetriesExceeded) as failed:
                await asyncio.wait_for(
                    producer.send(topic="down", messages=[{"value": b"after"}]), BOUND_S
                )
            elapsed = time.monotonic() - started
        finally:
            await producer.disconnect(timeout_ms=0)
    error = failed.value
    assert isinstance(error, NonRetriableError) and not error.retriable
    assert isinstance(error.cause, KafkaConnectionError), repr(error.cause)
    assert error.__cause__ is error.cause
    assert error.retry_count == 2
    assert elapsed >= SHORT_BUDGET_S - 0.5  # librdkafka kept trying for the policy's budget


async def test_a_missing_topic_without_auto_creation_fails_per_the_retry_policy(
    kafka_broker: EmbeddedBroker, unique: str
) -> None:
    kafka = Kafka(brokers=[kafka_broker.bootstrap], retry=SHORT)
    async with kafka.producer(allow_auto_topic_creation=False) as producer:
        with pytest.raises(NumberOfRetriesExceeded) as failed:
            await asyncio.wait_for(
                producer.send(topic=f"missing-{unique}", messages=[{"value": b"x"}]), BOUND_S
            )
    assert not failed.value.retriable
    assert isinstance(failed.value.cause, TopicError) and failed.value.cause.retriable
