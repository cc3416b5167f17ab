"""Produce (0): validate each partition's batch, append it, and answer per `acks`.

acks=0 gets no response (Kafka's behaviour), and when any partition failed the connection is
closed instead, which is how Kafka tells such a client (context.CloseConnection); acks=1 is
answered once the batch is written to the log file (it survives a process crash); acks=-1 once
the group commit has fsynced it (DESIGN.md durability contract). Batches are stored as
received: base offset and leader epoch are rewritten, nothing else.

Every batch's records are walked before it is appended (record_batch.validate_records: inflated
when compressed, exactly the declared records, consecutive offset deltas), as Kafka's
LogValidator walks them. The walk costs ~0.7 µs a record in Python, so a request's first
INLINE_RECORDS records and INLINE_INFLATE_BYTES inflated bytes are checked on the event loop and
the rest in a worker thread: one client's huge compressed batch must not stall every other
client. Appends happen before the handler's first await when nothing went to the thread;
otherwise the handler takes a turn in its connection's `produce_order`, so batches on one
connection are still appended in request order.

Checks run in Kafka's order (KafkaApis.handleProduceRequest, then ReplicaManager.appendRecords
and appendToLocalLog): authorization first (a transactional batch needs WRITE on its
transactional id, else every partition fails TRANSACTIONAL_ID_AUTHORIZATION_FAILED; each topic
needs WRITE, else its partitions fail TOPIC_AUTHORIZATION_FAILED whether it exists or not), then
an unknown partition, then `acks`, then internal topics, then the batch itself. Idempotent
produce needs no check here: Kafka 2.8+ checks IDEMPOTENT_WRITE when the producer id is handed
out (InitProducerId), and a producer id the broker did not hand out is refused anyway.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from typing import Any

from klamm.broker.authorizer import checks
from klamm.broker.authorizer.model import Operation, ResourceType
from klamm.broker.context import CLOSE_CONNECTION, RequestContext
from klamm.broker.partition import Partition
from klamm.broker.schema_validation import SchemaIdIndex
from klamm.protocol.api_versions import ApiKey
from klamm.protocol.compression import InflatesTooFar
from klamm.protocol.errors import ErrorCode, InvalidRecordBatch
from klamm.protocol.hot_responses import (
    PRODUCE_FIRST_VERSION,
    PRODUCE_LAST_VERSION,
    produce_response,
)
from klamm.protocol.record_batch import (
    ATTR_LOG_APPEND_TIME,
    ATTR_TRANSACTIONAL,
    BatchHeader,
    RecordsSummary,
    check_produced_header,
    decode_batch,
    set_log_append_time,
    set_max_timestamp,
    validate_records,
)
from klamm.storage import LogClosed, LogConfig, StorageError

log = logging.getLogger("klamm.broker.produce")

# The acks Kafka accepts (ReplicaManager.isValidRequiredAcks): none, the leader, all in-sync
# replicas. Anything else fails every partition with INVALID_REQUIRED_ACKS and appends nothing.
VALID_ACKS = frozenset({-1, 0, 1})

# How much record checking one request does on the event loop before the rest goes to a worker
# thread: ~15 ms of record walk (bench/validate.py: ~0.7 µs a record) and ~5 ms of inflating
# (zstd/lz4 inflate ~400 MB/s here). Real batches are well inside both (librdkafka's default
# batch.num.messages is 10,000, batch.size 1 MB), so they never pay the thread hop.
INLINE_RECORDS = 20_000
INLINE_INFLATE_BYTES = 2 * 1024 * 1024

# Where a record batch keeps its attributes (int16 after baseOffset, batchLength,
# partitionLeaderEpoch, magic and crc): the transactional flag is read from there before the
# batch is validated, as Kafka's RequestUtils.hasTransactionalRecords reads each first batch.
_ATTRIBUTES_AT = 8 + 4 + 4 + 1 + 4


class _PartitionResult:
    __slots__ = (
        "base_offset", "error", "header", "log_append_time", "message", "partition",
        "record_errors", "records", "summary",
    )  # fmt: skip

    def __init__(self, partition: Partition | None) -> None:
        self.partition = partition
        # Set while the batch is on its way: its bytes and header once the header checks pass,
        # and what the record walk found once it ran.
        self.records: bytes | None = None
        self.header: BatchHeader | None = None
        self.summary: RecordsSummary | None = None
        self.error = ErrorCode.none
        self.message: str | None = None
        self.base_offset = -1
        self.log_append_time = -1
        self.record_errors: list[dict[str, Any]] = []  # per-record rejections (v8+)

    def fail(self, code: ErrorCode, message: str | None = None) -> None:
        self.error = code
        self.message = message


def _check(ctx: RequestContext, topic: str, index: int, records: bytes | None) -> _PartitionResult:
    """The checks that need no record walk; on success the result carries records and header."""
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
    try:
        result.header = check_produced_header(records, partition.log.config.max_message_bytes)
    except InvalidRecordBatch as exc:
        _rejected(ctx, partition, exc)
        result.fail(exc.code, str(exc))
        return result
    result.records = records
    return result


def _rejected(ctx: RequestContext, partition: Partition, exc: InvalidRecordBatch) -> None:
    log.info("rejected batch for %s-%d from %s: %s",
             partition.topic, partition.index, ctx.session.peer, exc)  # fmt: skip


def _walk_on_loop(ctx: RequestContext, checked: list[_PartitionResult]) -> list[_PartitionResult]:
    """Walk the records of `checked` batches on the event loop while the request's budget
    lasts; returns those left for a worker thread."""
    records_left, inflate_left = INLINE_RECORDS, INLINE_INFLATE_BYTES
    for i, result in enumerate(checked):
        header = result.header
        assert header is not None and result.records is not None
        if header.records_count > records_left:
            return checked[i:]
        compressed = header.compression != 0
        try:
            result.summary = validate_records(
                result.records, header, inflate_limit=inflate_left if compressed else None
            )
        except InflatesTooFar:
            return checked[i:]  # past this request's budget: the thread inflates it in full
        except InvalidRecordBatch as exc:
            _fail_walk(ctx, result, exc)
            continue
        records_left -= header.records_count
        if compressed:
            inflate_left -= result.summary.size
    return []


def _walk_in_thread(checked: list[_PartitionResult]) -> list[RecordsSummary | InvalidRecordBatch]:
    """The record walk of batches the event loop left over (runs in a worker thread): pure."""
    out: list[RecordsSummary | InvalidRecordBatch] = []
    for result in checked:
        assert result.header is not None and result.records is not None
        try:
            out.append(validate_records(result.records, result.header))
        except InvalidRecordBatch as exc:
            out.append(exc)
    return out


def _fail_walk(ctx: RequestContext, result: _PartitionResult, exc: InvalidRecordBatch) -> None:
    assert result.partition is not None
    _rejected(ctx, result.partition, exc)
    result.fail(exc.code, str(exc))


def _append(ctx: RequestContext, result: _PartitionResult) -> None:
    """The topic's rules on a walked batch (keys, timestamps), then idempotence and the append."""
    broker = ctx.broker
    partition, header, summary = result.partition, result.header, result.summary
    assert partition is not None and header is not None and summary is not None
    assert result.records is not None
    records = result.records
    topic, index = partition.topic, partition.index
    config = partition.log.config
    if config.compact and summary.null_keys:
        # Compaction keeps the latest record per key, so a compacted topic rejects records
        # without one, listed in record_errors (Kafka's LogValidator.validateKey; librdkafka
        # test 0011) - the first MAX_RECORD_ERRORS of them, the message says how many in all.
        why = (
            f"Compacted topic cannot accept message without key in topic partition {topic}-{index}."
        )
        listed = summary.first_null_keys
        result.fail(
            ErrorCode.invalid_record,
            f"One or more records have been rejected due to {summary.null_keys} record errors "
            f"in total, and only showing the first {len(listed)} in record_errors: {why}",
        )
        result.record_errors = [
            {"batch_index": i, "batch_index_error_message": why} for i in listed
        ]
        return
    validated = config.confluent_value_schema_validation or config.confluent_key_schema_validation
    if validated and _schema_problems(broker.schema_ids, topic, index, records, config, result):
        return
    if not config.log_append_time:
        problem = _timestamp_problem(summary, config, broker.now_ms())
        if problem is not None:
            result.fail(ErrorCode.invalid_timestamp, problem)
            return
    # Idempotence and transactions: sequence and epoch checks before anything is written.
    producers = broker.producers
    check = producers.check_append(partition, header)
    if check is not None:
        # A duplicate of one of the producer's last batches: answer with its original offset.
        if check.error == ErrorCode.none:
            result.base_offset = check.base_offset
        else:
            result.fail(check.error, check.message)
        return
    batch = bytearray(records)
    if config.message_timestamp_type == "LogAppendTime":
        result.log_append_time = broker.now_ms()
        set_log_append_time(batch, result.log_append_time)
    elif (
        header.max_timestamp != summary.max_timestamp
        and not header.attributes & ATTR_LOG_APPEND_TIME
    ):
        set_max_timestamp(batch, summary.max_timestamp)  # Kafka corrects it too (unless the
        # producer claimed LogAppendTime, whose records all carry MaxTimestamp)
    try:
        appended = partition.log.append(batch)
    except StorageError as exc:
        log.error("append to %s-%d failed: %s", topic, index, exc)
        result.fail(exc.code, str(exc))  # a disk failure, or a log closed by a topic deletion
        return
    producers.record_append(partition, header, appended.base_offset)
    result.base_offset = appended.base_offset


def _transactional(request: Any) -> bool:
    """Does any partition's first batch carry the transactional flag?"""
    for topic in request.topic_data:
        for data in topic.partition_data:
            records = data.records
            if (
                records is not None
                and len(records) > _ATTRIBUTES_AT + 1
                and records[_ATTRIBUTES_AT + 1] & ATTR_TRANSACTIONAL  # the low byte (big-endian)
            ):
                return True
    return False


def _refused(request: Any, code: ErrorCode, message: str) -> Any:
    """Every partition of `request` failed with `code`."""
    results = []
    for topic in request.topic_data:
        per_partition = []
        for data in topic.partition_data:
            result = _PartitionResult(None)
            result.fail(code, message)
            per_partition.append((data.index, result))
        results.append((topic.name, per_partition))
    return results


def _unauthorized(ctx: RequestContext, request: Any) -> tuple[Any, frozenset[str]]:
    """(the answer when the whole request is refused or None, the topics it may not write)."""
    if _transactional(request):
        txn_id = request.transactional_id
        if txn_id is None or not checks.allowed(
            ctx, Operation.WRITE, ResourceType.TRANSACTIONAL_ID, txn_id
        ):
            code = ErrorCode.transactional_id_authorization_failed
            why = checks.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
            return _refused(request, code, why), frozenset()
    names = (topic.name for topic in request.topic_data)
    return None, checks.denied(ctx, Operation.WRITE, ResourceType.TOPIC, names)


async def handle_produce(ctx: RequestContext, request: Any) -> Any:
    denied: frozenset[str] = frozenset()
    if checks.enabled(ctx):
        refused, denied = _unauthorized(ctx, request)
        if refused is not None:
            return CLOSE_CONNECTION if request.acks == 0 else _response(ctx, refused)
    if request.acks not in VALID_ACKS:
        return _response(ctx, _reject_acks(ctx, request, denied))
    results: list[tuple[str, list[tuple[int, _PartitionResult]]]] = []
    checked: list[_PartitionResult] = []
    for topic in request.topic_data:
        per_partition = []
        refused_topic = topic.name in denied
        for data in topic.partition_data:
            if refused_topic:
                result = _PartitionResult(None)
                result.fail(ErrorCode.topic_authorization_failed, checks.TOPIC_AUTHORIZATION_FAILED)
                per_partition.append((data.index, result))
                continue
            result = _check(ctx, topic.name, data.index, data.records)
            if result.error == ErrorCode.none:
                checked.append(result)
            per_partition.append((data.index, result))
        results.append((topic.name, per_partition))
    left = _walk_on_loop(ctx, checked)
    order = ctx.session.produce_order
    if left or order.busy:
        before, turn = order.take()
        try:
            if left:
                found = await asyncio.to_thread(_walk_in_thread, left)
                for result, walked in zip(left, found, strict=True):
                    if isinstance(walked, InvalidRecordBatch):
                        _fail_walk(ctx, result, walked)
                    else:
                        result.summary = walked
            if before is not None:
                await before
            durable = _append_all(ctx, checked, urgent=request.acks == -1)
        finally:
            order.done(turn)
    else:
        durable = _append_all(ctx, checked, urgent=request.acks == -1)

    if request.acks == 0:
        for _, future in durable:
            future.add_done_callback(_consume_exception)
        failed = any(
            r.error != ErrorCode.none for _, per_partition in results for _, r in per_partition
        )
        return CLOSE_CONNECTION if failed else None
    if request.acks == -1 and durable:
        outcomes = await asyncio.gather(*(f for _, f in durable), return_exceptions=True)
        for (result, _), outcome in zip(durable, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                _fail_not_durable(ctx, result, outcome)
    else:
        for _, future in durable:
            future.add_done_callback(_consume_exception)
    return _response(ctx, results)


def _append_all(
    ctx: RequestContext, checked: list[_PartitionResult], *, urgent: bool
) -> list[tuple[_PartitionResult, asyncio.Future[None]]]:
    """Append every batch that passed its checks; the futures say when each is durable. Only
    acks=all (`urgent`) waits for the fsync: acks=0/1 appends are flushed after it."""
    durable = []
    for result in checked:
        if result.error != ErrorCode.none:
            continue
        _append(ctx, result)
        if result.error == ErrorCode.none and result.partition is not None:
            flushed = ctx.broker.durability.appended(result.partition, urgent=urgent)
            durable.append((result, flushed))
        result.records = None  # the request's bytes need not outlive it
    return durable


def _reject_acks(
    ctx: RequestContext, request: Any, denied: frozenset[str]
) -> list[tuple[str, list[tuple[int, _PartitionResult]]]]:
    """INVALID_REQUIRED_ACKS for every partition that exists; an unknown one still answers
    UNKNOWN_TOPIC_OR_PARTITION, and a topic the principal may not write
    TOPIC_AUTHORIZATION_FAILED, which Kafka checks before it looks at `acks`."""
    why = f"acks must be -1, 0 or 1, not {request.acks}"
    results = []
    for topic in request.topic_data:
        per_partition = []
        for data in topic.partition_data:
            partition = ctx.broker.partition(topic.name, data.index)
            result = _PartitionResult(partition)
            if topic.name in denied:
                result.partition = None
                result.fail(ErrorCode.topic_authorization_failed, checks.TOPIC_AUTHORIZATION_FAILED)
            elif partition is None:
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
    topics: list[tuple[str, list[dict[str, Any]]]] = [
        (
            name,
            [
                {
                    "index": index,
                    "error_code": result.error,
                    "base_offset": result.base_offset,
                    "log_append_time": result.log_append_time,
                    "log_start_offset": (
                        result.partition.log.log_start_offset if result.partition else -1
                    ),
                    "record_errors": result.record_errors,
                    "error_message": result.message,
                }
                for index, result in per_partition
            ],
        )
        for name, per_partition in results
    ]
    version = ctx.header.api_version
    if PRODUCE_FIRST_VERSION <= version <= PRODUCE_LAST_VERSION:
        # Encoded here, not through kio (protocol/hot_responses.py: ~1 µs a partition less).
        return produce_response(version, 0, topics)
    return ctx.response(
        responses=[
            {
                "name": name,
                "partition_responses": [
                    {**p, "log_append_time": _timestamp(p["log_append_time"])} for p in partitions
                ],
            }
            for name, partitions in topics
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


def _timestamp_problem(summary: RecordsSummary, config: LogConfig, now: int) -> str | None:
    """message.timestamp.before/after.max.ms for CreateTime topics. Kafka checks each record;
    the walk found the batch's smallest and largest record timestamps, which bound them all."""
    if summary.max_timestamp - now > config.message_timestamp_after_max_ms:
        return f"timestamp {summary.max_timestamp} is too far in the future (now {now})"
    if now - summary.min_timestamp > config.message_timestamp_before_max_ms:
        return f"timestamp {summary.min_timestamp} is too far in the past (now {now})"
    return None


def _timestamp(ms: int) -> datetime.datetime | None:
    if ms < 0:
        return None
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)


def _consume_exception(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()  # logged by the group commit; retrieved here so asyncio stays quiet


HANDLERS = {ApiKey.PRODUCE: handle_produce}
