"""Issue 12 item 8: a send that timed out leaves no unretrieved exception behind; an unknown
topic is a retriable TopicError from the admin as from the producer; a wrong argument type is a
ConfigError, never a raw TypeError or ValueError from deep inside."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from klamm import ConfigError, Kafka, KafkaTimeoutError, TopicError


async def test_a_send_that_timed_out_leaves_no_unretrieved_exception(
    kafka: Kafka, unique: str
) -> None:
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        # The delivery itself fails a little later (the topic never appears).
        config = {"message.timeout.ms": 1_500, "topic.metadata.propagation.max.ms": 500}
        producer = kafka.producer(allow_auto_topic_creation=False, config=config)
        async with producer:
            with pytest.raises(KafkaTimeoutError):
                await producer.send(
                    topic=f"never-{unique}", messages=[{"value": b"x"}], timeout_ms=50
                )
            await producer.flush(timeout_ms=10_000)  # the delivery has failed by now
        gc.collect()  # an unretrieved exception is reported when its future is collected
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
    assert not [c for c in reported if "never retrieved" in str(c.get("message"))], reported


async def test_an_unknown_topic_is_a_retriable_topic_error_from_the_admin(
    kafka: Kafka, unique: str
) -> None:
    async with kafka.admin() as admin:
        for call in (
            lambda: admin.fetch_topic_metadata(topics=[f"nope-{unique}"]),
            lambda: admin.fetch_topic_offsets(f"nope-{unique}"),
        ):
            with pytest.raises(TopicError) as failed:
                await call()
            assert failed.value.retriable, "KafkaJS and the producer retry an unknown topic"


_Call = Callable[[Any, Any], Awaitable[Any]]
_PRODUCER_MISUSE: dict[str, _Call] = {
    "messages=None": lambda p, _: p.send(topic="t", messages=None),
    "messages a str": lambda p, _: p.send(topic="t", messages="abc"),
    "messages one dict": lambda p, _: p.send(topic="t", messages={"value": b"x"}),
    "headers not pairs": lambda p, _: p.send(topic="t", messages=[{"value": b"", "headers": [1]}]),
    "timeout_ms a str": lambda p, _: p.send(topic="t", messages=[{"value": b"1"}], timeout_ms="x"),
    "topic_messages=None": lambda p, _: p.send_batch(topic_messages=None),
    "topic_messages of ints": lambda p, _: p.send_batch(topic_messages=[1]),
    "flush timeout a str": lambda p, _: p.flush(timeout_ms="x"),
    "create_topics timeout": lambda _, a: a.create_topics(topics=[{"topic": "z"}], timeout_ms="x"),
    "delete_topics timeout": lambda _, a: a.delete_topics(topics=["z"], timeout_ms=-1),
    "by_timestamp timestamp": lambda _, a: a.fetch_topic_offsets_by_timestamp("t", "x"),
}


@pytest.mark.parametrize("call", list(_PRODUCER_MISUSE.values()), ids=list(_PRODUCER_MISUSE))
async def test_wrong_argument_types_are_config_errors(kafka: Kafka, call: _Call) -> None:
    async with kafka.producer() as producer, kafka.admin() as admin:
        with pytest.raises(ConfigError):
            await asyncio.wait_for(call(producer, admin), 10)


@pytest.mark.parametrize(
    "options",
    [
        {"retry": "fast"},
        {"transactional_id": 5},
        {"transactional_id": "t", "transaction_timeout_ms": "x"},
        {"config": [("linger.ms", 5)]},
        {"create_partitioner": "murmur2"},
    ],
    ids=repr,
)
def test_wrong_producer_options_are_config_errors(kafka: Kafka, options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        kafka.producer(**options)
