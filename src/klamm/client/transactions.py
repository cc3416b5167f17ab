"""Transactions: `async with producer.transaction() as txn:` commits on exit, aborts on error.

States (one transaction object, used once):

    NEW ──begin──▶ ACTIVE ──commit──▶ COMMITTED
                     │  └──abort───▶ ABORTED
                     └─(commit failed, abortable)──abort──▶ ABORTED (error re-raised)

librdkafka's commit/abort/send_offsets block until the coordinator answers, so they run in a
thread; begin is local and cheap.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import confluent_kafka

from klamm.client.errors import (
    ConfigError,
    RetriableError,
    StateError,
    TransactionAbortableError,
    from_librdkafka,
)
from klamm.client.messages import CompressionTypes, RecordMetadata

if TYPE_CHECKING:
    from collections.abc import Generator

    from klamm.client.consumer import Consumer
    from klamm.client.producer import MessageInput, Producer


class TxnState(enum.Enum):
    NEW = "new"
    ACTIVE = "active"
    COMMITTED = "committed"
    ABORTED = "aborted"
    # The task was cancelled while librdkafka committed or aborted: that call finishes in its
    # worker thread, with an outcome this object never learns. The producer is free again.
    UNKNOWN = "unknown"


# Retriable commit failures (e.g. coordinator moving) are retried this many times, as librdkafka's
# docs advise, before giving up and aborting.
_COMMIT_ATTEMPTS = 3


class Transaction:
    def __init__(self, producer: Producer) -> None:
        self._producer = producer
        self.state = TxnState.NEW

    # Both `await producer.transaction()` and `async with producer.transaction()` begin it.
    def __await__(self) -> Generator[Any, None, Transaction]:
        return self._begin().__await__()

    async def __aenter__(self) -> Transaction:
        return await self._begin()

    async def __aexit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if self.state is not TxnState.ACTIVE:
            return  # committed or aborted explicitly inside the block
        if exc_type is None:
            await self.commit()
        else:
            await self.abort()

    async def _begin(self) -> Transaction:
        if self.state is not TxnState.NEW:
            raise StateError(f"transaction already {self.state.value}")
        if self._producer._in_transaction:
            raise StateError("this producer already has an active transaction")
        try:
            self._producer._default.begin_transaction()
        except confluent_kafka.KafkaException as exc:
            raise from_librdkafka(exc) from None
        self._producer._in_transaction = True
        self.state = TxnState.ACTIVE
        return self

    def is_active(self) -> bool:
        return self.state is TxnState.ACTIVE

    async def send(
        self,
        *,
        topic: str,
        messages: Sequence[MessageInput],
        compression: CompressionTypes | str | int | None = None,
        timeout_ms: int | None = None,
    ) -> Sequence[RecordMetadata]:
        self._check_active()
        return await self._producer.send(
            topic=topic, messages=messages, compression=compression, timeout_ms=timeout_ms
        )

    async def send_batch(
        self, *, topic_messages: Sequence[Mapping[str, Any]], timeout_ms: int | None = None
    ) -> Sequence[RecordMetadata]:
        self._check_active()
        return await self._producer.send_batch(topic_messages=topic_messages, timeout_ms=timeout_ms)

    async def send_offsets(
        self,
        *,
        consumer: Consumer,
        offsets: Mapping[tuple[str, int], int] | None = None,
        topics: Sequence[Mapping[str, Any]] | None = None,
        timeout_ms: int = 30_000,
    ) -> None:
        """Commit consumer offsets as part of this transaction (exactly-once consume→produce).

        `offsets` maps (topic, partition) to the NEXT offset to read (last processed + 1), as
        Kafka commits. KafkaJS's `topics=[{"topic", "partitions": [{"partition", "offset"}]}]`
        is accepted too. The consumer's group metadata (generation, member id) is sent along, so a
        zombie that lost its partitions in a rebalance is fenced by the broker (KIP-447)."""
        self._check_active()
        tps = _topic_partitions(offsets, topics)
        metadata = consumer.group_metadata()
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(
                None,
                self._producer._default.send_offsets_to_transaction,
                tps,
                metadata,
                timeout_ms / 1000,
            )
        except confluent_kafka.KafkaException as exc:
            raise from_librdkafka(exc) from None

    async def commit(self, timeout_ms: int = 60_000) -> None:
        self._check_active()
        loop = asyncio.get_running_loop()
        rd = self._producer._default
        for attempt in range(_COMMIT_ATTEMPTS):
            try:
                await loop.run_in_executor(None, rd.commit_transaction, timeout_ms / 1000)
                break
            except asyncio.CancelledError:
                self._finish(TxnState.UNKNOWN)  # or the producer would stay "in a transaction"
                raise
            except confluent_kafka.KafkaException as exc:
                error = from_librdkafka(exc)
                if isinstance(error, RetriableError) and attempt + 1 < _COMMIT_ATTEMPTS:
                    continue
                if isinstance(error, TransactionAbortableError | RetriableError):
                    await self.abort()
                else:
                    self._finish(TxnState.ABORTED)
                raise error from None
        self._finish(TxnState.COMMITTED)

    async def abort(self, timeout_ms: int = 60_000) -> None:
        self._check_active()
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(
                None, self._producer._default.abort_transaction, timeout_ms / 1000
            )
        except asyncio.CancelledError:
            self._finish(TxnState.UNKNOWN)
            raise
        except confluent_kafka.KafkaException as exc:
            self._finish(TxnState.ABORTED)
            raise from_librdkafka(exc) from None
        self._finish(TxnState.ABORTED)

    def _finish(self, state: TxnState) -> None:
        self.state = state
        self._producer._in_transaction = False

    def _check_active(self) -> None:
        if self.state is not TxnState.ACTIVE:
            raise StateError(f"transaction is {self.state.value}, not active")


def _topic_partitions(
    offsets: Mapping[tuple[str, int], int] | None, topics: Sequence[Mapping[str, Any]] | None
) -> list[confluent_kafka.TopicPartition]:
    if (offsets is None) == (topics is None):
        raise ConfigError("give exactly one of offsets= or topics=")
    tps = []
    if offsets is not None:
        for (topic, partition), offset in offsets.items():
            tps.append(confluent_kafka.TopicPartition(topic, partition, int(offset)))
    else:
        for entry in topics or ():
            for p in entry["partitions"]:
                tps.append(
                    confluent_kafka.TopicPartition(entry["topic"], p["partition"], int(p["offset"]))
                )
    return tps
