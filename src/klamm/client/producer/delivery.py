"""Delivery tracking: one `Delivery` per send() collects librdkafka's reports and resolves the
send's future; `SendResult` is what send() returns.

Concurrency contract: `report` runs wherever librdkafka serves reports (the event loop's pump,
or disconnect()'s final flush on a worker thread); the future is completed on the loop only
(`call_soon_threadsafe`)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, cast, overload

from klamm.client.errors import KafkaError, from_librdkafka
from klamm.client.messages import RecordMetadata

if TYPE_CHECKING:
    from klamm.client.producer.pump import RdProducer

_new_tuple = tuple.__new__


class Delivery:
    """Collects the delivery reports of one send(); completed on the event loop.

    `report` runs once per produced message and costs more than producing it, so it appends
    librdkafka's three numbers to lists and builds nothing (the interpreter specialises
    `list.append`; an `array.append` costs twice as much). It keeps no librdkafka message
    objects: those are garbage-collected containers, and holding hundreds of thousands alive
    made the collector's passes dominate send() (0.46x raw confluent-kafka). Reports come in
    produce order per partition (librdkafka guarantees it), which is the order the metadata
    keeps."""

    __slots__ = (
        "error", "future", "loop", "offsets", "partitions", "remaining", "source", "timestamps",
        "topics", "total",
    )  # fmt: skip

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        count: int,
        topic: str | None,
        source: RdProducer,
    ) -> None:
        self.loop = loop
        self.source = source  # the librdkafka producer: its fatal error outranks a report's
        self.future: asyncio.Future[SendResult] = loop.create_future()
        # The send's one topic; a send to several records it per message (MultiTopicDelivery).
        self.topics: str | list[str] = topic if topic is not None else []
        self.partitions: list[int] = []
        self.offsets: list[int | None] = []  # None with acks=0: the broker never says
        self.timestamps: list[int] = []  # milliseconds; 0 when librdkafka has none
        self.remaining = count
        self.total = count
        self.error: Any = None

    def report(self, err: Any, msg: Any) -> None:
        """Called by librdkafka once per message (on the loop, or in flush() on a worker)."""
        if err is None:
            self.partitions.append(msg.partition())
            self.offsets.append(msg.offset())
            self.timestamps.append(msg.timestamp()[1])
        elif self.error is None:
            self.error = err
        self.remaining -= 1
        if self.remaining == 0:
            self.loop.call_soon_threadsafe(self._resolve)

    def remaining_unsent(self, enqueued: int) -> int:
        return self.total - enqueued

    def abandon(self, count: int) -> None:
        """`count` messages were never enqueued (produce raised); do not wait for them."""
        self.remaining -= count
        if self.remaining == 0:
            self._resolve()

    def failure(self, err: Any) -> KafkaError:
        """The error this send fails with: librdkafka refused to enqueue (`err` from produce):
        after a fatal error, that error; else librdkafka's `err`."""
        fatal = self.source.fatal
        return from_librdkafka(err if fatal is None else fatal)

    def _resolve(self) -> None:
        if self.future.done():
            return
        if self.error is not None:
            self.future.set_exception(self.source.delivery_failure(self.error))
            return
        self.future.set_result(
            SendResult(self.topics, self.partitions, self.offsets, self.timestamps)
        )


class MultiTopicDelivery(Delivery):
    """A send_batch to several topics: the topic is recorded per message too."""

    __slots__ = ()

    def report(self, err: Any, msg: Any) -> None:
        if err is None:
            cast(list[str], self.topics).append(msg.topic())
        super().report(err, msg)


class SendResult(Sequence[RecordMetadata]):
    """What send() returns: one RecordMetadata per delivered message, a read-only list.

    The RecordMetadata tuples are built on first use from the columns the reports filled: most
    callers never look, and building them would cost send() as much as a third report."""

    __slots__ = ("_columns", "_items")

    def __init__(
        self,
        topics: str | list[str],
        partitions: list[int],
        offsets: list[int | None],
        timestamps: list[int],
    ) -> None:
        self._columns = (topics, partitions, offsets, timestamps)
        self._items: list[RecordMetadata] | None = None

    def _materialise(self) -> list[RecordMetadata]:
        items = self._items
        if items is None:
            topics, partitions, offsets, timestamps = self._columns
            names = itertools.repeat(topics) if isinstance(topics, str) else topics
            # tuple.__new__ skips NamedTuple's Python-level __new__ (same object, cheaper).
            items = [
                _new_tuple(
                    RecordMetadata, (topic, partition, -1 if offset is None else offset, ts or None)
                )
                for topic, partition, offset, ts in zip(
                    names, partitions, offsets, timestamps, strict=False
                )
            ]
            self._items = items
        return items

    def __len__(self) -> int:
        return len(self._columns[1])

    @overload
    def __getitem__(self, index: int) -> RecordMetadata: ...
    @overload
    def __getitem__(self, index: slice) -> list[RecordMetadata]: ...
    def __getitem__(self, index: int | slice) -> RecordMetadata | list[RecordMetadata]:
        return self._materialise()[index]

    def __iter__(self) -> Iterator[RecordMetadata]:
        return iter(self._materialise())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SendResult):
            other = other._materialise()
        return isinstance(other, list | tuple) and self._materialise() == list(other)

    __hash__ = None  # type: ignore[assignment]  # mutable-looking, like a list

    def __repr__(self) -> str:
        return repr(self._materialise())
