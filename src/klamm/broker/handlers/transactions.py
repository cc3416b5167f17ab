"""Idempotence and transaction APIs: InitProducerId (22), AddPartitionsToTxn (24),
AddOffsetsToTxn (25), EndTxn (26), WriteTxnMarkers (27), TxnOffsetCommit (28),
DescribeProducers (61), DescribeTransactions (65), ListTransactions (66).

Handlers translate between kio messages and the coordinator (klamm.broker.transactions); every
decision is the coordinator's. Clients older than KIP-588 do not know PRODUCER_FENCED: Kafka
answers them INVALID_PRODUCER_EPOCH instead, and so do we (`_fenced`).

Authorization before the coordinator sees anything, as Kafka's KafkaApis: a transactional id
needs WRITE (TRANSACTIONAL_ID_AUTHORIZATION_FAILED) for InitProducerId, AddPartitionsToTxn,
AddOffsetsToTxn, EndTxn and TxnOffsetCommit; an idempotent producer's InitProducerId needs
IDEMPOTENT_WRITE on the cluster or WRITE on some topic (Kafka 2.8+, KIP-679), else
CLUSTER_AUTHORIZATION_FAILED; AddPartitionsToTxn needs WRITE on each topic (a refused or unknown
one fails the whole request, the others answer OPERATION_NOT_ATTEMPTED); AddOffsetsToTxn and
TxnOffsetCommit READ on the group, TxnOffsetCommit also READ on each topic; WriteTxnMarkers
CLUSTER_ACTION; DescribeProducers READ on each topic; DescribeTransactions and ListTransactions
DESCRIBE on each transactional id (ListTransactions leaves the others out, and both leave out
the topics the principal may not describe).
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Awaitable
from typing import Any

from klamm.broker.authorizer import checks
from klamm.broker.authorizer.model import Operation, ResourceType
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


def _txn_allowed(ctx: RequestContext, transactional_id: str) -> bool:
    return checks.allowed(ctx, Operation.WRITE, ResourceType.TRANSACTIONAL_ID, transactional_id)


def _init_refusal(ctx: RequestContext, transactional_id: str | None) -> ErrorCode | None:
    if transactional_id is not None:
        if not _txn_allowed(ctx, transactional_id):
            return ErrorCode.transactional_id_authorization_failed
    elif not checks.cluster_allowed(
        ctx, Operation.IDEMPOTENT_WRITE, log_denied=False
    ) and not checks.allowed_on_any(ctx, Operation.WRITE, ResourceType.TOPIC):
        return ErrorCode.cluster_authorization_failed
    return None


async def handle_init_producer_id(ctx: RequestContext, request: Any) -> Any:
    refusal = _init_refusal(ctx, request.transactional_id) if checks.enabled(ctx) else None
    if refusal is not None:
        return ctx.response(throttle_time=0, error_code=refusal, producer_id=-1, producer_epoch=-1)
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
    refused = _add_partitions_refused(ctx, request, wanted)
    if refused is not None:
        return _add_partitions_response(ctx, refused)
    try:
        results = await coord.add_partitions(
            request.v3_and_below_transactional_id, request.v3_and_below_producer_id,
            request.v3_and_below_producer_epoch, wanted,
        )  # fmt: skip
    except (TxnError, StorageError) as exc:
        results = dict.fromkeys(wanted, _error(ctx, exc))
    return _add_partitions_response(ctx, results)


def _add_partitions_refused(
    ctx: RequestContext, request: Any, wanted: list[tuple[str, int]]
) -> dict[tuple[str, int], ErrorCode] | None:
    """Kafka's answer when the principal may not add these partitions, else None: the whole
    request fails, refused or unknown partitions with their error, the rest
    OPERATION_NOT_ATTEMPTED (nothing was added). An internal topic is refused with or without
    an authorizer: only the coordinators write there, never a client's transaction."""
    if not _txn_allowed(ctx, request.v3_and_below_transactional_id):
        return dict.fromkeys(wanted, ErrorCode.transactional_id_authorization_failed)
    # Internal topics are never writable by clients: Kafka leaves them out of the topics it
    # asks about, so they are unauthorized even when no authorizer is configured.
    names = {topic for topic, _ in wanted}
    denied = checks.denied(ctx, Operation.WRITE, ResourceType.TOPIC, names)
    denied |= {name for name in names if (info := ctx.broker.topic(name)) and info.internal}
    problems: dict[tuple[str, int], ErrorCode] = {}
    for topic, index in wanted:
        if topic in denied:
            problems[(topic, index)] = ErrorCode.topic_authorization_failed
        elif ctx.broker.partition(topic, index) is None:
            problems[(topic, index)] = ErrorCode.unknown_topic_or_partition
    if not problems:
        return None
    return {tp: problems.get(tp, ErrorCode.operation_not_attempted) for tp in wanted}


def _add_partitions_response(ctx: RequestContext, results: dict[tuple[str, int], ErrorCode]) -> Any:
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
    refusal = None
    if not _txn_allowed(ctx, request.transactional_id):
        refusal = ErrorCode.transactional_id_authorization_failed
    elif not checks.allowed(ctx, Operation.READ, ResourceType.GROUP, request.group_id):
        refusal = ErrorCode.group_authorization_failed
    if refusal is not None:
        return ctx.response(throttle_time=0, error_code=refusal)
    call = ctx.broker.transactions.add_offsets(
        request.transactional_id, request.producer_id, request.producer_epoch, request.group_id
    )
    return ctx.response(throttle_time=0, error_code=await _error_of(ctx, call))


async def handle_end_txn(ctx: RequestContext, request: Any) -> Any:
    if not _txn_allowed(ctx, request.transactional_id):
        code = ErrorCode.transactional_id_authorization_failed
        return ctx.response(throttle_time=0, error_code=code)
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
    refusal, denied = _txn_offsets_refusal(ctx, request)
    if refusal is not None:
        errors = dict.fromkeys(offsets, refusal)
        return _txn_offsets_response(ctx, errors)
    refused_tps = [tp for tp in offsets if tp[0] in denied]
    for tp in refused_tps:
        del offsets[tp]
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
    if refused_tps:
        errors = dict(errors)
        errors.update(dict.fromkeys(refused_tps, ErrorCode.topic_authorization_failed))
    return _txn_offsets_response(ctx, errors)


def _txn_offsets_refusal(
    ctx: RequestContext, request: Any
) -> tuple[ErrorCode | None, frozenset[str]]:
    """(the error of every partition when the request is refused, the topics it may not READ)."""
    if not checks.enabled(ctx):
        return None, frozenset()
    if not _txn_allowed(ctx, request.transactional_id):
        return ErrorCode.transactional_id_authorization_failed, frozenset()
    if not checks.allowed(ctx, Operation.READ, ResourceType.GROUP, request.group_id):
        return ErrorCode.group_authorization_failed, frozenset()
    names = (topic.name for topic in request.topics)
    return None, checks.denied(ctx, Operation.READ, ResourceType.TOPIC, names)


def _txn_offsets_response(ctx: RequestContext, errors: dict[tuple[str, int], ErrorCode]) -> Any:
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
    allowed = checks.cluster_allowed(ctx, Operation.CLUSTER_ACTION)
    markers = []
    for marker in request.markers:
        wanted = [(t.name, p) for t in marker.topics for p in t.partition_indexes]
        if not allowed:  # Kafka's WriteTxnMarkersRequest.getErrorResponse
            results = dict.fromkeys(wanted, ErrorCode.cluster_authorization_failed)
        else:
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
    names = (topic.name for topic in request.topics)
    denied = checks.denied(ctx, Operation.READ, ResourceType.TOPIC, names)
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
            if topic.name in denied:
                entry["error_code"] = ErrorCode.topic_authorization_failed
            elif partition is None:
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
        if not checks.allowed(ctx, Operation.DESCRIBE, ResourceType.TRANSACTIONAL_ID, txn_id):
            states.append({
                "error_code": ErrorCode.transactional_id_authorization_failed,
                "transactional_id": txn_id, "transaction_state": "",
                "transaction_timeout": 0, "transaction_start_time": _time(-1),
                "producer_id": -1, "producer_epoch": -1, "topics": [],
            })  # fmt: skip
            continue
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
            "producer_epoch": meta.producer_epoch,
            "topics": _describable(ctx, metadata_topics(meta)),
        })  # fmt: skip
    return ctx.response(throttle_time=0, transaction_states=states)


def _describable(ctx: RequestContext, topics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The transaction's topics the principal may DESCRIBE (Kafka removes the others)."""
    hidden = checks.denied(
        ctx, Operation.DESCRIBE, ResourceType.TOPIC, (t["topic"] for t in topics), log_denied=False
    )
    return [t for t in topics if t["topic"] not in hidden] if hidden else topics


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
    hidden = checks.denied(ctx, Operation.DESCRIBE, ResourceType.TRANSACTIONAL_ID,
                           (str(f["transactional_id"]) for f in found),
                           log_denied=False)  # fmt: skip
    if hidden:
        found = [f for f in found if f["transactional_id"] not in hidden]
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
