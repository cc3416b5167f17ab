"""Metadata (3): brokers, cluster id, controller, topics and their partitions.

Unknown topics are created on the spot when the request allows it (v4+ flag; always for v0-3)
and `auto.create.topics.enable` is on, as librdkafka's and kcat's users expect. Kafka answers the
creating request with LEADER_NOT_AVAILABLE and the next one with the topic; a single node has its
leader at once, so klamm returns the new topic directly.
"""

from __future__ import annotations

import uuid
from typing import Any

from klamm.broker.context import RequestContext
from klamm.protocol.api_versions import ApiKey
from klamm.protocol.errors import ErrorCode
from klamm.storage.errors import InvalidTopicName, StorageError

# "Authorized operations not requested" in Kafka's responses.
AUTHORIZED_OPERATIONS_OMITTED = -(2**31)
# Leader epoch of every partition: one node, never an election.
LEADER_EPOCH = 0
_NULL_UUID = uuid.UUID(int=0)


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
        "partitions": [
            {
                "error_code": ErrorCode.none,
                "partition_index": index,
                "leader_id": node,
                "leader_epoch": LEADER_EPOCH,
                "replica_nodes": [node],
                "isr_nodes": [node],
                "offline_replicas": [],
            }
            for index in range(info.num_partitions)
        ],
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
        topics = [topic_entry(ctx, name) for name in names]
    else:
        allow_create = getattr(request, "allow_auto_topic_creation", True)
        topics = []
        for item in _distinct(requested):
            name = item.name
            if name is None:  # v10+ lookup by topic id: ids are not served by name-less lookups
                topics.append(_error_entry("", ErrorCode.unknown_topic_id))
                continue
            if broker.topic(name) is None and allow_create and broker.config.auto_create_topics:
                try:
                    broker.create_topic(name)
                except InvalidTopicName:
                    topics.append(_error_entry(name, ErrorCode.invalid_topic_exception))
                    continue
                except StorageError as exc:
                    topics.append(_error_entry(name, exc.code))
                    continue
            topics.append(topic_entry(ctx, name))
    host, port = broker.config.advertised
    node = broker.config.node_id
    return ctx.response(
        throttle_time=0,
        brokers=[{"node_id": node, "host": host, "port": port, "rack": None}],
        cluster_id=broker.cluster_id,
        controller_id=node,
        topics=topics,
        cluster_authorized_operations=AUTHORIZED_OPERATIONS_OMITTED,
    )


HANDLERS = {ApiKey.METADATA: handle_metadata}
