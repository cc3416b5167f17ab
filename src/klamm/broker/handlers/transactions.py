"""Idempotence and transaction APIs: InitProducerId (22), AddPartitionsToTxn (24),
AddOffsetsToTxn (25), EndTxn (26), WriteTxnMarkers (27), TxnOffsetCommit (28),
DescribeProducers (61), DescribeTransactions (65), ListTransactions (66).

Handlers translate between kio messages and the coordinator (klamm.broker.transactions); every
decision is the coordinator's. Clients older than KIP-588 do not know PRODUCER_FENCED: Kafka
answers them INVALID_PRODUCER_EPOCH instead, and so do we (`_fenced`).
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Awaitable
from typing import Any

from klamm.broker.context import RequestContext
from klamm.broker.transactions import TxnError
from klamm.broker.transactions.coordinator import metadata_topics
from klamm.broker.transactions.state import STATE_BY_NAME
from klamm.protocol.api_versions import ApiKey
from klamm.protocol.errors import ErrorCode
from klamm.storage import StorageError

log = logging.getLogger("klamm.broker.transactions")

# First version of each API that knows PRODUCER_FENCED (KIP-588).
_FENCED_SINCE = {
    ApiKey.INIT_PRODUCER_ID: 4,
    ApiKey.ADD_PARTITIONS_TO_TXN: 2,
    ApiKey.ADD_OFFSETS_TO_TXN: 2,
    ApiKey.END_TXN: 2,
    ApiKey.TXN_OFFSET_COMMIT: 3,
}


def _error(ctx: RequestContext, exc: TxnError | StorageError) -> ErrorCode:
    """The wire error of a failed coordinator call, as this version knows it. A storage error
    that reaches a handler (the coordinator maps those of its own writes) is answered as Kafka
    answers a failed coordinator append, NOT_COORDINATOR: never a dropped connection."""
    if isinstance(exc, StorageError):
        log.warning("api %d: the transaction coordinator's storage failed: %s",
                    ctx.header.api_key, exc)  # fmt: skip
        return ErrorCode.not_coordinator
    return _fenced(ctx, exc.code)


def _fenced(ctx: RequestContext, code: ErrorCode) -> ErrorCode:
    if code == ErrorCode.producer_fenced and ctx.version < _FENCED_SINCE[ctx.header.api_key]:
        return ErrorCode.invalid_producer_epoch
    return code


async def handle_init_producer_id(ctx: RequestContext, request: Any) -> Any:
    coord = ctx.broker.transactions
    pid, epoch, error = -1, -1, ErrorCode.none
    timeout_ms = int(request.transaction_timeout.total_seconds() * 1000)
    try:
        pid, epoch = await coord.init_producer_id(
            request.transactional_id, timeout_ms,
            getattr(request, "producer_id", -1), getattr(request, "producer_epoch", -1),
        )  # fmt: skip
    except (TxnError, StorageError) as exc:
        error = _error(ctx, exc)
    return ctx.response(throttle_time=0, error_code=error, producer_id=pid, producer_epoch=epoch)


async def handle_add_partitions_to_txn(ctx: RequestContext, request: Any) -> Any:
    coord = ctx.broker.transactions
    wanted = [(t.name, p) for t in request.v3_and_below_topics for p in t.partitions]
    results: dict[tuple[str, int], ErrorCode]
    try:
        results = await coord.add_partitions(
            request.v3_and_below_transactional_id, request.v3_and_below_producer_id,
            request.v3_and_below_producer_epoch, wanted,
        )  # fmt: skip
    except (TxnError, StorageError) as exc:
        results = dict.fromkeys(wanted, _error(ctx, exc))
    by_topic: dict[str, list[dict[str, Any]]] = {}
    for (topic, index), code in results.items():
        by_topic.setdefault(topic, []).append(
            {"partition_index": index, "partition_error_code": code}
        )
    return ctx.response(
        throttle_time=0,
        error_code=ErrorCode.none,
        results_by_topic_v3_and_below=[
            {"name": topic, "results_by_partition": parts} for topic, parts in by_topic.items()
        ],
    )


async def _error_of(ctx: RequestContext, call: Awaitable[object]) -> ErrorCode:
    """The wire error of a coordinator call: none, or its TxnError as this version knows it."""
    try:
        await call
    except (TxnError, StorageError) as exc:
        return _error(ctx, exc)
    return ErrorCode.none


async def handle_add_offsets_to_txn(ctx: RequestContext, request: Any) -> Any:
    call = ctx.broker.transactions.add_offsets(
        request.transactional_id, request.producer_id, request.producer_epoch, request.group_id
    )
    return ctx.response(throttle_time=0, error_code=await _error_of(ctx, call))


async def handle_end_txn(ctx: RequestContext, request: Any) -> Any:
    call = ctx.broker.transactions.end_txn(
        request.transactional_id, request.producer_id, request.producer_epoch, request.committed
    )
    return ctx.response(throttle_time=0, error_code=await _error_of(ctx, call))


async def handle_txn_offset_commit(ctx: RequestContext, request: Any) -> Any:
    coord = ctx.broker.transactions
    offsets: dict[tuple[str, int], tuple[int, int, str | None]] = {}
    for topic in request.topics:
        for p in topic.partitions:
            offsets[(topic.name, p.partition_index)] = (
                p.committed_offset,
                getattr(p, "committed_leader_epoch", -1),
                p.committed_metadata,
            )
    errors: dict[tuple[str, int], ErrorCode]
    try:
        coord.validate_offset_commit(
            request.transactional_id, request.producer_id, request.producer_epoch,
            request.group_id,
        )  # fmt: skip
    except TxnError as exc:
        errors = dict.fromkeys(offsets, _fenced(ctx, exc.code))
    else:
        errors = await ctx.broker.groups.prepare_txn_offsets(
            request.group_id, request.producer_id, request.producer_epoch, offsets,
            generation=getattr(request, "generation_id", -1),
            member_id=getattr(request, "member_id", ""),
            group_instance_id=getattr(request, "group_instance_id", None),
        )  # fmt: skip
    by_topic: dict[str, list[dict[str, Any]]] = {}
    for (topic, index), code in errors.items():
        by_topic.setdefault(topic, []).append({"partition_index": index, "error_code": code})
    return ctx.response(
        throttle_time=0,
        topics=[{"name": t, "partitions": parts} for t, parts in by_topic.items()],
    )


async def handle_write_txn_markers(ctx: RequestContext, request: Any) -> Any:
    """Markers by hand (an operator ending a hanging transaction); see
    klamm.broker.transactions.orphans for what is refused and why."""
    coord = ctx.broker.transactions
    markers = []
    for marker in request.markers:
        wanted = [(t.name, p) for t in marker.topics for p in t.partition_indexes]
        results = await coord.orphans.write_markers_by_hand(
            marker.producer_id, marker.producer_epoch, marker.transaction_result,
            marker.coordinator_epoch, wanted,
        )  # fmt: skip
        by_topic: dict[str, list[dict[str, Any]]] = {}
        for (topic, index), code in results.items():
            by_topic.setdefault(topic, []).append({"partition_index": index, "error_code": code})
        markers.append({
            "producer_id": marker.producer_id,
            "topics": [{"name": t, "partitions": parts} for t, parts in by_topic.items()],
        })  # fmt: skip
    return ctx.response(markers=markers)


def handle_describe_producers(ctx: RequestContext, request: Any) -> Any:
    producers = ctx.broker.producers
    topics = []
    for topic in request.topics:
        partitions = []
        for index in topic.partition_indexes:
            partition = ctx.broker.partition(topic.name, index)
            entry: dict[str, Any] = {
                "partition_index": index,
                "error_code": ErrorCode.none,
                "error_message": None,
                "active_producers": [],
            }
            if partition is None:
                entry["error_code"] = ErrorCode.unknown_topic_or_partition
            else:
                entry["active_producers"] = producers.describe(partition)
            partitions.append(entry)
        topics.append({"name": topic.name, "partitions": partitions})
    return ctx.response(throttle_time=0, topics=topics)


def _time(ms: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(max(ms, 0) / 1000, tz=datetime.UTC)


def handle_describe_transactions(ctx: RequestContext, request: Any) -> Any:
    coord = ctx.broker.transactions
    states = []
    for txn_id in request.transactional_ids:
        meta = coord.txns.get(txn_id)
        if meta is None:
            states.append({
                "error_code": ErrorCode.transactional_id_not_found,
                "transactional_id": txn_id, "transaction_state": "",
                "transaction_timeout": 0, "transaction_start_time": _time(-1),
                "producer_id": -1, "producer_epoch": -1, "topics": [],
            })  # fmt: skip
            continue
        states.append({
            "error_code": ErrorCode.none, "transactional_id": txn_id,
            "transaction_state": meta.state.kafka_name, "transaction_timeout": meta.timeout_ms,
            "transaction_start_time": _time(meta.txn_start_ms), "producer_id": meta.producer_id,
            "producer_epoch": meta.producer_epoch, "topics": metadata_topics(meta),
        })  # fmt: skip
    return ctx.response(throttle_time=0, transaction_states=states)


def handle_list_transactions(ctx: RequestContext, request: Any) -> Any:
    coord = ctx.broker.transactions
    unknown = [s for s in request.state_filters if s not in STATE_BY_NAME]
    wanted_states = {STATE_BY_NAME[s] for s in request.state_filters if s in STATE_BY_NAME}
    wanted_pids = set(request.producer_id_filters)
    min_duration = getattr(request, "duration_filter", -1)
    now = ctx.broker.now_ms()
    found = []
    for meta in coord.list():
        if request.state_filters and meta.state not in wanted_states:
            continue
        if wanted_pids and meta.producer_id not in wanted_pids:
            continue
        if min_duration >= 0 and (meta.txn_start_ms < 0 or now - meta.txn_start_ms < min_duration):
            continue
        found.append({"transactional_id": meta.transactional_id, "producer_id": meta.producer_id,
                      "transaction_state": meta.state.kafka_name})  # fmt: skip
    return ctx.response(throttle_time=0, error_code=ErrorCode.none,
                        unknown_state_filters=unknown, transaction_states=found)  # fmt: skip


HANDLERS = {
    ApiKey.INIT_PRODUCER_ID: handle_init_producer_id,
    ApiKey.ADD_PARTITIONS_TO_TXN: handle_add_partitions_to_txn,
    ApiKey.ADD_OFFSETS_TO_TXN: handle_add_offsets_to_txn,
    ApiKey.END_TXN: handle_end_txn,
    ApiKey.WRITE_TXN_MARKERS: handle_write_txn_markers,
    ApiKey.TXN_OFFSET_COMMIT: handle_txn_offset_commit,
    ApiKey.DESCRIBE_PRODUCERS: handle_describe_producers,
    ApiKey.DESCRIBE_TRANSACTIONS: handle_describe_transactions,
    ApiKey.LIST_TRANSACTIONS: handle_list_transactions,
}
