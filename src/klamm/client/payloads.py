"""What handlers receive: KafkaJS's eachMessage and eachBatch payloads, snake_case."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import confluent_kafka

from klamm.client.errors import ConfigError
from klamm.client.messages import KafkaMessage, MessageList

if TYPE_CHECKING:
    from klamm.client.consumer import Consumer

Resume = Callable[[], None]

# librdkafka's accessors, mapped over a whole batch in C by the column methods below.
_message_value: Callable[[Any], bytes | None] = confluent_kafka.Message.value
_message_key: Callable[[Any], bytes | None] = confluent_kafka.Message.key


class Batch:
    """The messages of one partition from one fetch, in offset order.

    `messages` are KafkaJS-style message objects. `values()` and `keys()` are the same records
    as columns: each a list built in C, with no object per message. A handler that reads every
    value that way runs at about 0.9x raw confluent-kafka's throughput, where iterating
    `messages` reaches about 0.77x (docs/performance.md)."""

    __slots__ = ("_consumer", "_high_watermark", "messages", "partition", "topic")

    def __init__(
        self, consumer: Consumer, topic: str, partition: int, messages: MessageList
    ) -> None:
        self._consumer = consumer
        self.topic = topic
        self.partition = partition
        self.messages = messages
        self._high_watermark: int | None = None

    @property
    def high_watermark(self) -> int:
        """The partition's end offset as of the last fetch response (next offset to be written)."""
        if self._high_watermark is None:
            self._high_watermark = self._consumer.high_watermark(
                self.topic, self.partition, fallback=self.last_offset() + 1
            )
        return self._high_watermark

    def values(self) -> list[bytes | None]:
        """Every message's value, in offset order: `[m.value for m in batch.messages]`, fast."""
        return list(map(_message_value, self.messages._raws))

    def keys(self) -> list[bytes | None]:
        """Every message's key, in offset order: `[m.key for m in batch.messages]`, fast."""
        return list(map(_message_key, self.messages._raws))

    def is_empty(self) -> bool:
        return not self.messages

    def first_offset(self) -> int | None:
        return self.messages[0].offset if self.messages else None

    def last_offset(self) -> int:
        """Offset of the last message; for an empty batch, high watermark - 1 (as KafkaJS)."""
        if self.messages:
            return self.messages[-1].offset
        return self.high_watermark - 1

    def offset_lag(self) -> int:
        """Messages behind the end of the partition after this batch."""
        return max(0, self.high_watermark - 1 - self.last_offset())

    def offset_lag_low(self) -> int:
        """Messages behind the end of the partition counted from this batch's first message."""
        first = self.first_offset()
        return max(0, self.high_watermark - 1 - (first if first is not None else 0))


class EachMessagePayload(KafkaMessage):
    """What each_message handlers receive: `topic`, `partition`, `message`, `heartbeat()` and
    `pause()`, as KafkaJS's eachMessage payload.

    The payload is also the message it carries (`payload.message is payload`): one object a
    message instead of two. Building an object costs a Python call however small it is, and
    this one saves about 80 ns a message, a fifth of what each_message costs the run loop
    (docs/performance.md). `payload.message` is a KafkaMessage like any other: it shows its
    fields and nothing else in its repr, and users still reach them as `payload.message.value`.
    The run loop builds payloads; the constructor takes librdkafka's message."""

    __slots__ = ("_consumer", "partition", "topic")

    def __init__(self, consumer: Consumer, topic: str, partition: int, raw: Any) -> None:
        # KafkaMessage's fields are set here rather than by calling its __init__: a second call
        # would cost what sharing the object saves.
        self._raw = raw
        self.value = raw.value()
        self._headers = None
        self._consumer = consumer
        self.topic = topic
        self.partition = partition

    @property
    def message(self) -> KafkaMessage:
        return self

    async def heartbeat(self) -> None:
        """librdkafka heartbeats on its own thread; kept so KafkaJS code ports unchanged."""
        self._consumer.heartbeat_event()

    def pause(self) -> Resume:
        """Pause this partition after the current message; returns a function that resumes it."""
        return _pause_one(self._consumer, self.topic, self.partition)


class EachBatchPayload:
    __slots__ = ("_consumer", "batch")

    def __init__(self, consumer: Consumer, batch: Batch) -> None:
        self._consumer = consumer
        self.batch = batch

    def resolve_offset(self, offset: int) -> None:
        """Mark `offset` processed: the next commit will commit `offset + 1`."""
        try:
            next_offset = int(offset) + 1  # KafkaJS passes offsets as strings
        except (TypeError, ValueError):
            raise ConfigError(f"resolve_offset() takes an offset, not {offset!r}") from None
        self._consumer.resolve((self.batch.topic, self.batch.partition), next_offset)

    async def heartbeat(self) -> None:
        self._consumer.heartbeat_event()

    async def commit_offsets_if_necessary(self, offsets: Any = None) -> None:
        """With no argument: commit resolved offsets when the auto-commit interval or threshold
        says so. With KafkaJS's `{"topics": [...]}` shape (or a list of {topic, partition,
        offset}): commit exactly those."""
        if offsets is None:
            self._consumer.commit_if_necessary()
        else:
            await self._consumer.commit_offsets(offsets)

    def uncommitted_offsets(self) -> dict[str, Any]:
        """KafkaJS's shape: `{"topics": [{"topic", "partitions": [{"partition", "offset"}]}]}`,
        offsets being the next to read (what a commit would store)."""
        return self._consumer.uncommitted_offsets()

    def is_running(self) -> bool:
        return self._consumer.is_running()

    def is_stale(self) -> bool:
        """True once this partition was seeked, paused or revoked: stop processing the batch."""
        return self._consumer.is_stale(self.batch.topic, self.batch.partition)

    def pause(self) -> Resume:
        return _pause_one(self._consumer, self.batch.topic, self.batch.partition)


def _pause_one(consumer: Consumer, topic: str, partition: int) -> Resume:
    spec = [{"topic": topic, "partitions": [partition]}]
    consumer.pause(spec)
    return lambda: consumer.resume(spec)


EachMessageHandler = Callable[[EachMessagePayload], Awaitable[None]]
EachBatchHandler = Callable[[EachBatchPayload], Awaitable[None]]
