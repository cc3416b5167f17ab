"""What handlers receive, without a broker: the each_message payload and its message."""

from __future__ import annotations

from typing import Any

import confluent_kafka

from klamm import EachMessagePayload, KafkaMessage


class _Consumer:
    """The two consumer calls a payload makes."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def heartbeat_event(self) -> None:
        self.calls.append(("heartbeat", None))

    def pause(self, spec: Any) -> None:
        self.calls.append(("pause", spec))

    def resume(self, spec: Any) -> None:
        self.calls.append(("resume", spec))


def raw_message() -> Any:
    return confluent_kafka.Message(
        topic="orders",
        partition=3,
        offset=41,
        key=b"c1",
        value=b"paid",
        headers=[("trace", b"a"), ("trace", b"b")],
        timestamp=(confluent_kafka.TIMESTAMP_CREATE_TIME, 1_700_000_000_000),
    )


def test_the_each_message_payload_is_the_message_it_carries() -> None:
    # One object per message instead of two (docs/performance.md): the payload is its message.
    consumer: Any = _Consumer()
    payload = EachMessagePayload(consumer, "orders", 3, raw_message())
    message = payload.message
    assert message is payload
    assert isinstance(message, KafkaMessage)
    assert (payload.topic, payload.partition) == ("orders", 3)
    assert (message.key, message.value, message.offset) == (b"c1", b"paid", 41)
    assert message.timestamp == 1_700_000_000_000
    assert message.header_list == [("trace", b"a"), ("trace", b"b")]
    assert message.headers == {"trace": b"b"}
    assert message.size == len(b"paid")
    assert repr(message) == "KafkaMessage(topic='orders', partition=3, offset=41, key=b'c1')"


async def test_the_payload_heartbeats_and_pauses_its_partition() -> None:
    consumer: Any = _Consumer()
    payload = EachMessagePayload(consumer, "orders", 3, raw_message())
    await payload.heartbeat()
    resume = payload.pause()
    resume()
    spec = [{"topic": "orders", "partitions": [3]}]
    assert consumer.calls == [("heartbeat", None), ("pause", spec), ("resume", spec)]
