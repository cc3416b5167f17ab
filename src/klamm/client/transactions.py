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

from klamm.client.config import timeout_ms as check_timeout
from klamm.client.errors import (
    ConfigError,
    KafkaError,
    RetriableError,
    StateError,
    TransactionAbortableError,
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
        self._producer.begin_transaction()
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
        consumer: Consumer | None = None,
        consumer_group_id: str | None = None,
        offsets: Mapping[tuple[str, int], int] | None = None,
        topics: Sequence[Mapping[str, Any]] | None = None,
        timeout_ms: int = 30_000,
    ) -> None:
        """Commit consumer offsets as part of this transaction (exactly-once consume→produce).

        `offsets` maps (topic, partition) to the NEXT offset to read (last processed + 1), as
        Kafka commits. KafkaJS's `topics=[{"topic", "partitions": [{"partition", "offset"}]}]`
        is accepted too.

        Name the group with `consumer=` (preferred): its group metadata (generation, member id)
        is sent along, so a zombie that lost its partitions in a rebalance is fenced by the
        broker (KIP-447). Or with `consumer_group_id=`, as KafkaJS's sendOffsets({consumerGroupId})
        does: the offsets are committed for the group without that fencing."""
        self._check_active()
        timeout_ms = check_timeout(timeout_ms)
        if (consumer is None) == (consumer_group_id is None):
            raise ConfigError("give exactly one of consumer= or consumer_group_id=")
        tps = _topic_partitions(offsets, topics)
        if consumer is not None:
            metadata = consumer.group_metadata()
        else:
            metadata = group_metadata_for(consumer_group_id)
        await self._producer.send_offsets_to_transaction(tps, metadata, timeout_ms)

    async def commit(self, timeout_ms: int = 60_000) -> None:
        self._check_active()
        timeout_ms = check_timeout(timeout_ms)  # before anything: a bad argument changes nothing
        for attempt in range(_COMMIT_ATTEMPTS):
            try:
                await self._producer.commit_transaction(timeout_ms)
                break
            except asyncio.CancelledError:
                self._finish(TxnState.UNKNOWN)  # or the producer would stay "in a transaction"
                raise
            except KafkaError as error:
                if isinstance(error, RetriableError) and attempt + 1 < _COMMIT_ATTEMPTS:
                    continue
                if isinstance(error, TransactionAbortableError | RetriableError):
                    await self.abort()
                else:
                    self._finish(TxnState.ABORTED)
                raise
        self._finish(TxnState.COMMITTED)

    async def abort(self, timeout_ms: int = 60_000) -> None:
        self._check_active()
        timeout_ms = check_timeout(timeout_ms)
        try:
            await self._producer.abort_transaction(timeout_ms)
        except asyncio.CancelledError:
            self._finish(TxnState.UNKNOWN)
            raise
        except KafkaError:
            self._finish(TxnState.ABORTED)
            raise
        self._finish(TxnState.ABORTED)

    def _finish(self, state: TxnState) -> None:
        self.state = state
        self._producer.end_transaction()

    def _check_active(self) -> None:
        if self.state is not TxnState.ACTIVE:
            raise StateError(f"transaction is {self.state.value}, not active")


# librdkafka's serialised consumer group metadata (rd_kafka_consumer_group_metadata_write, the
# bytes confluent-kafka's Consumer.consumer_group_metadata() returns): a version tag, the
# generation (int32, big-endian), then NUL-terminated group id and member id, then a flag byte
# saying the group instance id is absent. A group named by id only has no generation (-1) and no
# member id, which is what KafkaJS's sendOffsets({consumerGroupId}) sends in TxnOffsetCommit.
_CGMD_TAG = b"CGMDv2:"
_NO_GENERATION = b"\xff\xff\xff\xff"
_NO_INSTANCE_ID = b"\x01"


def group_metadata_for(group_id: str | None) -> bytes:
    """Group metadata naming `group_id` only, for send_offsets(consumer_group_id=...)."""
    if not isinstance(group_id, str) or not group_id or "\x00" in group_id:
        raise ConfigError(f"consumer_group_id must be a non-empty str, got {group_id!r}")
    return _CGMD_TAG + _NO_GENERATION + group_id.encode() + b"\x00" + b"\x00" + _NO_INSTANCE_ID


def _topic_partitions(
    offsets: Mapping[tuple[str, int], int] | None, topics: Sequence[Mapping[str, Any]] | None
) -> list[confluent_kafka.TopicPartition]:
    if (offsets is None) == (topics is None):
        raise ConfigError("give exactly one of offsets= or topics=")
    tps = []
    try:
        if offsets is not None:
            for (topic, partition), offset in offsets.items():
                tps.append(confluent_kafka.TopicPartition(topic, partition, int(offset)))
        else:
            for entry in topics or ():
                for p in entry["partitions"]:
                    tps.append(
                        confluent_kafka.TopicPartition(
                            entry["topic"], p["partition"], int(p["offset"])
                        )
                    )
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        # KafkaJS's shape is {"topic", "partitions": [{"partition", "offset"}]}; offsets= maps
        # (topic, partition) to an int offset. Say which argument is wrong, not librdkafka's words.
        raise ConfigError(
            "send_offsets takes offsets={(topic, partition): offset} or "
            f"topics=[{{'topic', 'partitions': [{{'partition', 'offset'}}]}}]: {exc!r}"
        ) from None
    return tps
