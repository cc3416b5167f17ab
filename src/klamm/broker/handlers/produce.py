"""Produce (0): validate each partition's batch, append it, and answer per `acks`.

acks=0 gets no response (Kafka's behaviour); acks=1 is answered once the batch is written to
the log file (it survives a process crash); acks=-1 once the group commit has fsynced it
(DESIGN.md durability contract). Appends happen before the handler's first await, so batches on
one connection are appended in request order. Batches are stored as received: only the header
is read and base offset / leader epoch rewritten.

Checks run in Kafka's order (KafkaApis.handleProduceRequest, then ReplicaManager.appendRecords
and appendToLocalLog): an unknown partition first, then `acks`, then internal topics, then the
batch itself.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from typing import Any

from klamm.broker.context import RequestContext
from klamm.broker.partition import Partition
from klamm.broker.schema_validation import SchemaIdIndex
from klamm.protocol.api_versions import ApiKey
from klamm.protocol.errors import ErrorCode, InvalidRecordBatch
from klamm.protocol.record_batch import (
    BatchHeader,
    decode_batch,
    set_log_append_time,
    validate_produced_batch,
)
from klamm.storage.config import LogConfig
from klamm.storage.errors import LogClosed, StorageError

log = logging.getLogger("klamm.broker.produce")

# The acks Kafka accepts (ReplicaManager.isValidRequiredAcks): none, the leader, all in-sync
# replicas. Anything else fails every partition with INVALID_REQUIRED_ACKS and appends nothing.
VALID_ACKS = frozenset({-1, 0, 1})


class _PartitionResult:
    __slots__ = ("base_offset", "error", "log_append_time", "message", "partition", "record_errors")

    def __init__(self, partition: Partition | None) -> None:
        self.partition = partition
        self.error = ErrorCode.none
        self.message: str | None = None
        self.base_offset = -1
        self.log_append_time = -1
        self.record_errors: list[dict[str, Any]] = []  # per-record rejections (v8+)

    def fail(self, code: ErrorCode, message: str | None = None) -> None:
        self.error = code
        self.message = message


def _append(ctx: RequestContext, topic: str, index: int, records: bytes | None) -> _PartitionResult:
    broker = ctx.broker
    partition = broker.partition(topic, index)
    result = _PartitionResult(partition)
    if partition is None:
        result.fail(broker.missing_partition_error(topic, index))
        return result
    if records is None:
        result.fail(ErrorCode.invalid_record, "null records")
        return result
    if partition.internal:
        # Only the coordinators write __consumer_offsets and __transaction_state: a client's
        # record there would forge committed offsets or transaction state, and one the
        # coordinator cannot read is replayed at every start (Kafka's appendToLocalLog).
        result.fail(ErrorCode.invalid_topic_exception, f"Cannot append to internal topic {topic}")
        return result
    config = partition.log.config
    try:
        header = validate_produced_batch(records, config.max_message_bytes)
    except InvalidRecordBatch as exc:
        log.info("rejected batch for %s-%d from %s: %s", topic, index, ctx.session.peer, exc)
        result.fail(exc.code, str(exc))
        return result
    if config.compact:
        # Compaction keeps the latest record per key, so a compacted topic rejects records
        # without one, each listed in record_errors (Kafka's LogValidator.validateKey;
        # librdkafka test 0011). Decoding costs per record: only compacted topics pay it.
        try:
            keyless = [i for i, r in enumerate(decode_batch(records).records) if r.key is None]
        except InvalidRecordBatch as exc:
            result.fail(exc.code, str(exc))
            return result
        if keyless:
            why = (
                "Compacted topic cannot accept message without key in topic partition "
                f"{topic}-{index}."
            )
            result.fail(ErrorCode.invalid_record, why)
            result.record_errors = [
                {"batch_index": i, "batch_index_error_message": why} for i in keyless
            ]
            return result
    validated = config.confluent_value_schema_validation or config.confluent_key_schema_validation
    if validated and _schema_problems(broker.schema_ids, topic, index, records, config, result):
        return result
    if not config.log_append_time:
        problem = _timestamp_problem(header, config, broker.now_ms())
        if problem is not None:
            result.fail(ErrorCode.invalid_timestamp, problem)
            return result
    # Idempotence and transactions: sequence and epoch checks before anything is written.
    producers = broker.services["producers"]
    check = producers.check_append(partition, header)
    if check is not None:
        # A duplicate of one of the producer's last batches: answer with its original offset.
        if check.error == ErrorCode.none:
            result.base_offset = check.base_offset
        else:
            result.fail(check.error, check.message)
        return result
    batch = bytearray(records)
    if config.message_timestamp_type == "LogAppendTime":
        result.log_append_time = broker.now_ms()
        set_log_append_time(batch, result.log_append_time)
    try:
        appended = partition.log.append(batch)
    except StorageError as exc:
        log.error("append to %s-%d failed: %s", topic, index, exc)
        result.fail(exc.code, str(exc))  # a disk failure, or a log closed by a topic deletion
        return result
    producers.record_append(partition, header, appended.base_offset)
    result.base_offset = appended.base_offset
    return result


async def handle_produce(ctx: RequestContext, request: Any) -> Any:
    if request.acks not in VALID_ACKS:
        return _response(ctx, _reject_acks(ctx, request))
    broker = ctx.broker
    results: list[tuple[str, list[tuple[int, _PartitionResult]]]] = []
    durable: list[tuple[_PartitionResult, asyncio.Future[None]]] = []
    for topic in request.topic_data:
        per_partition = []
        for data in topic.partition_data:
            result = _append(ctx, topic.name, data.index, data.records)
            if result.error == ErrorCode.none and result.partition is not None:
                durable.append((result, broker.durability.appended(result.partition)))
            per_partition.append((data.index, result))
        results.append((topic.name, per_partition))

    if request.acks == 0:
        for _, future in durable:
            future.add_done_callback(_consume_exception)
        return None
    if request.acks == -1 and durable:
        outcomes = await asyncio.gather(*(f for _, f in durable), return_exceptions=True)
        for (result, _), outcome in zip(durable, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                _fail_not_durable(ctx, result, outcome)
    else:
        for _, future in durable:
            future.add_done_callback(_consume_exception)
    return _response(ctx, results)


def _reject_acks(
    ctx: RequestContext, request: Any
) -> list[tuple[str, list[tuple[int, _PartitionResult]]]]:
    """INVALID_REQUIRED_ACKS for every partition that exists; an unknown one still answers
    UNKNOWN_TOPIC_OR_PARTITION, which Kafka checks before it looks at `acks`."""
    why = f"acks must be -1, 0 or 1, not {request.acks}"
    results = []
    for topic in request.topic_data:
        per_partition = []
        for data in topic.partition_data:
            partition = ctx.broker.partition(topic.name, data.index)
            result = _PartitionResult(partition)
            if partition is None:
                result.fail(ErrorCode.unknown_topic_or_partition)
            else:
                result.fail(ErrorCode.invalid_required_acks, why)
            per_partition.append((data.index, result))
        results.append((topic.name, per_partition))
    return results


def _fail_not_durable(ctx: RequestContext, result: _PartitionResult, exc: BaseException) -> None:
    """An appended batch whose fsync did not happen. A log closed under the wait means its topic
    was deleted, not that the disk failed: Kafka's DelayedProduce then answers
    UNKNOWN_TOPIC_OR_PARTITION, or NOT_LEADER_OR_FOLLOWER while the partition exists again
    (recreated) or is being shut down."""
    partition = result.partition
    assert partition is not None
    if isinstance(exc, LogClosed):
        if ctx.broker.partition(partition.topic, partition.index) is None:
            result.fail(ErrorCode.unknown_topic_or_partition, "the topic was deleted")
        else:
            result.fail(exc.code, str(exc))
    elif isinstance(exc, StorageError):
        result.fail(exc.code, str(exc))
    else:
        result.fail(ErrorCode.kafka_storage_error, f"fsync failed: {exc}")


def _response(
    ctx: RequestContext, results: list[tuple[str, list[tuple[int, _PartitionResult]]]]
) -> Any:
    return ctx.response(
        responses=[
            {
                "name": name,
                "partition_responses": [
                    {
                        "index": index,
                        "error_code": result.error,
                        "base_offset": result.base_offset,
                        "log_append_time": _timestamp(result.log_append_time),
                        "log_start_offset": (
                            result.partition.log.log_start_offset if result.partition else -1
                        ),
                        "record_errors": result.record_errors,
                        "error_message": result.message,
                    }
                    for index, result in per_partition
                ],
            }
            for name, per_partition in results
        ],
        throttle_time=0,
    )


def _schema_problems(
    schema_ids: SchemaIdIndex,
    topic: str,
    index: int,
    records: bytes,
    config: LogConfig,
    result: _PartitionResult,
) -> bool:
    """Broker-side schema validation (schema_validation.py); fails `result` and returns True when a
    record names no schema registered for the topic's subject."""
    try:
        decoded = decode_batch(records).records
    except InvalidRecordBatch as exc:
        result.fail(exc.code, str(exc))
        return True
    problems = schema_ids.problems(
        topic,
        decoded,
        key=config.confluent_key_schema_validation,
        value=config.confluent_value_schema_validation,
    )
    if not problems:
        return False
    first = problems[0][1]
    result.fail(ErrorCode.invalid_record, f"Schema validation failed in topic partition "
                f"{topic}-{index}: {first}")  # fmt: skip
    result.record_errors = [
        {"batch_index": i, "batch_index_error_message": why} for i, why in problems
    ]
    return True


def _timestamp_problem(header: BatchHeader, config: LogConfig, now: int) -> str | None:
    """message.timestamp.before/after.max.ms for CreateTime topics. Kafka checks each record; the
    header carries the batch's largest timestamp and its first record's, which bound the checks
    without decoding records on the hot path."""
    if header.max_timestamp - now > config.message_timestamp_after_max_ms:
        return f"timestamp {header.max_timestamp} is too far in the future (now {now})"
    if now - header.base_timestamp > config.message_timestamp_before_max_ms:
        return f"timestamp {header.base_timestamp} is too far in the past (now {now})"
    return None


def _timestamp(ms: int) -> datetime.datetime | None:
    if ms < 0:
        return None
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)


def _consume_exception(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()  # logged by the group commit; retrieved here so asyncio stays quiet


HANDLERS = {ApiKey.PRODUCE: handle_produce}
