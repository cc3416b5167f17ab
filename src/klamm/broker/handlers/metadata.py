"""Metadata (3): brokers, cluster id, controller, topics and their partitions.

Unknown topics are created on the spot when the request allows it (v4+ flag; always for v0-3)
and `auto.create.topics.enable` is on, as librdkafka's and kcat's users expect. Kafka answers the
creating request with LEADER_NOT_AVAILABLE and the next one with the topic; a single node has its
leader at once, so klamm returns the new topic directly when it is made within
AUTO_CREATE_WAIT_S (in the broker's admin thread, never on the event loop).

Authorization, as KafkaApis.handleTopicMetadataRequest: a listing of every topic leaves out those
the principal may not DESCRIBE; a topic named but not describable answers
TOPIC_AUTHORIZATION_FAILED, whether it exists or not (its existence is not disclosed); an unknown
topic is auto-created only with CREATE on the cluster or on the topic, else it answers
TOPIC_AUTHORIZATION_FAILED too. `topic_authorized_operations` (v8+) and
`cluster_authorized_operations` (v8-10) are filled when asked for, INT32_MIN when not.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from typing import Any

from klamm.broker.authorizer import checks
from klamm.broker.authorizer.model import Operation, ResourceType
from klamm.broker.context import RequestContext
from klamm.protocol.api_versions import ApiKey
from klamm.protocol.build import build
from klamm.protocol.errors import ErrorCode
from klamm.protocol.messages import response_type
from klamm.storage import InvalidTopicName, StorageError, TopicExists, validate_topic_name

# "Authorized operations not requested" in Kafka's responses.
AUTHORIZED_OPERATIONS_OMITTED = checks.AUTHORIZED_OPERATIONS_OMITTED
# Leader epoch of every partition: one node, never an election.
LEADER_EPOCH = 0
_NULL_UUID = uuid.UUID(int=0)
# Topics one Metadata request may auto-create. A client lists the topics it is about to use, a
# few at a time; 100 lets a producer start on 100 new topics in one round trip, while a request
# naming thousands of unknown names (which once created 3000 topics at once) gets the rest
# LEADER_NOT_AVAILABLE, and its retries create 100 more each, at the admin thread's pace.
MAX_AUTO_CREATED_TOPICS = 100
# How long a Metadata request waits for the topics it auto-creates. A small topic is made in
# milliseconds and answered directly (one round trip for the client); one queued behind a large
# CreateTopics answers LEADER_NOT_AVAILABLE after this instead of holding the connection.
AUTO_CREATE_WAIT_S = 1.0


# (version, node id) -> partition entries 0..n-1, grown to the largest topic asked about.
_PARTITION_ENTRIES: dict[tuple[int, int], tuple[Any, ...]] = {}


def _partition_entries(version: int, node: int, count: int) -> tuple[Any, ...]:
    """A topic's partition list as kio entities. Entry i is the same for every topic (one node
    leads every partition), so entries are built once per version and node and each topic
    takes a prefix: building 50,000 of them from dicts took 0.3 s of a 50,000-partition
    Metadata request. The entities are frozen, so sharing them is safe; they cost ~0.2 KiB per
    partition of the largest topic, per Metadata version in use."""
    entries = _PARTITION_ENTRIES.get((version, node), ())
    if len(entries) < count:
        module = sys.modules[response_type(ApiKey.METADATA, version).__module__]
        cls = module.MetadataResponsePartition
        replicas = (node,)
        entries += tuple(
            build(
                cls,
                error_code=ErrorCode.none,
                partition_index=index,
                leader_id=node,
                leader_epoch=LEADER_EPOCH,
                replica_nodes=replicas,
                isr_nodes=replicas,
                offline_replicas=(),
            )
            for index in range(len(entries), count)
        )
        _PARTITION_ENTRIES[(version, node)] = entries
    return entries if len(entries) == count else entries[:count]


def topic_entry(ctx: RequestContext, name: str) -> dict[str, Any]:
    broker = ctx.broker
    info = broker.topic(name)
    if info is None:
        return {
            "error_code": ErrorCode.unknown_topic_or_partition,
            "name": name,
            "topic_id": _NULL_UUID,
            "is_internal": False,
            "partitions": [],
            "topic_authorized_operations": AUTHORIZED_OPERATIONS_OMITTED,
        }
    node = broker.config.node_id
    return {
        "error_code": ErrorCode.none,
        "name": name,
        "topic_id": info.topic_id,
        "is_internal": info.internal,
        "partitions": _partition_entries(ctx.version, node, info.num_partitions),
        "topic_authorized_operations": AUTHORIZED_OPERATIONS_OMITTED,
    }


def _error_entry(name: str, code: ErrorCode) -> dict[str, Any]:
    return {
        "error_code": code,
        "name": name,
        "topic_id": _NULL_UUID,
        "is_internal": False,
        "partitions": [],
        "topic_authorized_operations": AUTHORIZED_OPERATIONS_OMITTED,
    }


def _distinct(requested: Any) -> list[Any]:
    """Each requested topic once, in first-request order: Kafka's handleTopicMetadataRequest
    takes the names as a Set, so a topic named 500 times is answered (and its partitions
    listed) once, not 500 times. Lookups by id (name None) are keyed by their id."""
    seen: dict[object, Any] = {}
    for item in requested:
        key = item.name if item.name is not None else getattr(item, "topic_id", None)
        seen.setdefault(key, item)
    return list(seen.values())


def handle_metadata(ctx: RequestContext, request: Any) -> Any:
    broker = ctx.broker
    requested = request.topics
    if requested is None or (ctx.version == 0 and not requested):
        names = sorted(broker.logs.topics())
        hidden = checks.denied(ctx, Operation.DESCRIBE, ResourceType.TOPIC, names, log_denied=False)
        topics = [topic_entry(ctx, name) for name in names if name not in hidden]
        return _response(ctx, request, topics)
    named = [i.name for i in requested if i.name is not None]
    denied = checks.denied(ctx, Operation.DESCRIBE, ResourceType.TOPIC, named)
    allow_create = getattr(request, "allow_auto_topic_creation", True)
    if allow_create and broker.config.auto_create_topics:
        missing = [n for n in named if n not in denied and broker.topic(n) is None]
        if missing and not checks.cluster_allowed(ctx, Operation.CREATE, log_denied=False):
            uncreatable = checks.denied(ctx, Operation.CREATE, ResourceType.TOPIC, missing)
            missing = [n for n in missing if n not in uncreatable]
            denied |= uncreatable
        if missing:
            return _auto_create_then_answer(ctx, request, missing, denied)
    return _response(ctx, request, _requested_entries(ctx, requested, {}, denied))


def _requested_entries(
    ctx: RequestContext,
    requested: Any,
    not_created: dict[str, ErrorCode],
    denied: frozenset[str],
) -> list[dict[str, Any]]:
    topics = []
    for item in _distinct(requested):
        name = item.name
        if name is None:  # v10+ lookup by topic id: ids are not served by name-less lookups
            topics.append(_error_entry("", ErrorCode.unknown_topic_id))
        elif name in denied:
            topics.append(_error_entry(name, ErrorCode.topic_authorization_failed))
        elif name in not_created and ctx.broker.topic(name) is None:
            topics.append(_error_entry(name, not_created[name]))
        else:
            topics.append(topic_entry(ctx, name))
    return topics


async def _auto_create_then_answer(
    ctx: RequestContext, request: Any, missing: list[str], denied: frozenset[str]
) -> Any:
    """Create up to MAX_AUTO_CREATED_TOPICS of the missing topics, in the broker's admin
    thread, and wait for them at most AUTO_CREATE_WAIT_S. The rest answer LEADER_NOT_AVAILABLE,
    Kafka's answer for a topic whose creation is under way (every client retries it, and the
    retry creates the next ones); so does a topic another request is creating right now."""
    broker = ctx.broker
    not_created: dict[str, ErrorCode] = {}
    creations: dict[str, asyncio.Task[Any]] = {}
    for name in dict.fromkeys(missing):  # in request order, each name once
        try:
            validate_topic_name(name)  # on the loop: no admin-thread turn for a bad name
        except InvalidTopicName as exc:
            not_created[name] = exc.code
            continue
        if len(creations) >= MAX_AUTO_CREATED_TOPICS:
            not_created[name] = ErrorCode.leader_not_available
            continue
        creations[name] = asyncio.ensure_future(broker.create_topic_in_thread(name))
    if creations:
        await asyncio.wait(creations.values(), timeout=AUTO_CREATE_WAIT_S)
    for name, task in creations.items():
        if not task.done():
            not_created[name] = ErrorCode.leader_not_available
            task.add_done_callback(_retrieve)  # finishes in the background; nobody awaits it
            continue
        failure = task.exception()
        if isinstance(failure, TopicExists):  # being created by another request
            not_created[name] = ErrorCode.leader_not_available
        elif isinstance(failure, StorageError):
            not_created[name] = failure.code
        elif failure is not None:
            raise failure
    entries = _requested_entries(ctx, request.topics, not_created, denied)
    return _response(ctx, request, entries)


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Mark a creation nobody waits for as seen; the broker logged its outcome."""
    if not task.cancelled():
        task.exception()


def _response(ctx: RequestContext, request: Any, topics: list[dict[str, Any]]) -> Any:
    broker = ctx.broker
    if getattr(request, "include_topic_authorized_operations", False):
        for entry in topics:  # every topic the principal may describe, known or not
            if entry["error_code"] != ErrorCode.topic_authorization_failed:
                ops = checks.authorized_operations(ctx, ResourceType.TOPIC, entry["name"])
                entry["topic_authorized_operations"] = ops
    cluster_ops = AUTHORIZED_OPERATIONS_OMITTED
    if getattr(request, "include_cluster_authorized_operations", False):  # v8-10
        cluster_ops = checks.cluster_authorized_operations(ctx)
    host, port = broker.config.advertised
    node = broker.config.node_id
    return ctx.response(
        throttle_time=0,
        brokers=[{"node_id": node, "host": host, "port": port, "rack": None}],
        cluster_id=broker.cluster_id,
        controller_id=node,
        topics=topics,
        cluster_authorized_operations=cluster_ops,
    )


HANDLERS = {ApiKey.METADATA: handle_metadata}
