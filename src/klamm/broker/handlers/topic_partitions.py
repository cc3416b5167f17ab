"""DescribeTopicPartitions (75): topic description with pagination, as Kafka 4 serves it
(DescribeTopicPartitionsRequestHandler and KRaftMetadataCache.describeTopicResponse).

Kafka 4's Java admin and librdkafka >= 2.10 describe topics with it when the broker offers it.
An empty topic list means every topic; topics are answered in name order, and at most
`response_partition_limit` partitions (capped at MAX_PARTITIONS_PER_RESPONSE) go in one answer.
When the limit cuts the answer short, `next_cursor` names the topic and partition to ask from
next. A cursor makes the broker skip topics named before the cursor's topic and, in that topic,
the partitions before its index. Topics asked for by name that do not exist get their error
(UNKNOWN_TOPIC_OR_PARTITION, or INVALID_TOPIC_EXCEPTION for a name Kafka would refuse); a listing
of every topic has nothing to report for those.

Authorization (Kafka's DescribeTopicPartitionsRequestHandler): topics the principal may not
DESCRIBE are left out of a listing of every topic; named ones answer TOPIC_AUTHORIZATION_FAILED
after the described topics, whether they exist or not. Every described topic carries its
`topic_authorized_operations` (this API has no flag to ask: Kafka always fills them, every
operation when no authorizer is configured).
"""

from __future__ import annotations

import uuid
from typing import Any

from klamm.broker.authorizer import checks
from klamm.broker.authorizer.model import Operation, ResourceType
from klamm.broker.context import RequestContext
from klamm.broker.handlers.metadata import AUTHORIZED_OPERATIONS_OMITTED, LEADER_EPOCH
from klamm.protocol.api_versions import ApiKey
from klamm.protocol.errors import ErrorCode
from klamm.storage import InvalidTopicName, validate_topic_name

# Kafka's max.request.partition.size.limit default: the most partitions one answer lists,
# whatever the request asks; a request asking fewer than 1 gets 1 (Kafka's floor too).
MAX_PARTITIONS_PER_RESPONSE = 2000
# Kafka's topic id for a topic it does not describe.
_ZERO_UUID = uuid.UUID(int=0)


def _error_topic(name: str, code: ErrorCode) -> dict[str, Any]:
    return {
        "error_code": code,
        "name": name,
        "topic_id": _ZERO_UUID,
        "is_internal": False,
        "partitions": [],
        "topic_authorized_operations": AUTHORIZED_OPERATIONS_OMITTED,
    }


def _invalid(request: Any) -> list[dict[str, Any]]:
    """Kafka's answer to a request it refuses as a whole (DescribeTopicPartitionsRequest.
    getErrorResponse): each requested topic with the error, nothing else."""
    return [_error_topic(t.name, ErrorCode.invalid_request) for t in request.topics]


def handle_describe_topic_partitions(ctx: RequestContext, request: Any) -> Any:
    broker = ctx.broker
    every_topic = not request.topics
    cursor = request.cursor
    cursor_topic = cursor.topic_name if cursor is not None else ""
    if every_topic:
        names = {name for name in broker.logs.topics() if name >= cursor_topic}
    else:
        names = {t.name for t in request.topics if t.name >= cursor_topic}
        if cursor is not None and cursor.topic_name not in names:
            # The cursor's topic must be one of those asked for (Kafka's InvalidRequestException).
            return ctx.response(throttle_time=0, topics=_invalid(request), next_cursor=None)
    if cursor is not None and cursor.partition_index < 0:
        return ctx.response(throttle_time=0, topics=_invalid(request), next_cursor=None)
    denied = checks.denied(ctx, Operation.DESCRIBE, ResourceType.TOPIC, names)
    names -= denied
    refused = [] if every_topic else sorted(denied)
    remaining = max(min(MAX_PARTITIONS_PER_RESPONSE, request.response_partition_limit), 1)
    node = broker.config.node_id
    topics: list[dict[str, Any]] = []
    next_cursor = None
    for name in sorted(names):
        if remaining == 0:
            # Every partition of the topics before this one was listed: go on from its start.
            next_cursor = {"topic_name": name, "partition_index": 0}
            break
        info = broker.topic(name)
        if info is None:
            if not every_topic:
                try:
                    validate_topic_name(name)
                    code = ErrorCode.unknown_topic_or_partition
                except InvalidTopicName as exc:
                    code = exc.code
                entry = _error_topic(name, code)  # Kafka fills its operations too
                entry["topic_authorized_operations"] = checks.authorized_operations(
                    ctx, ResourceType.TOPIC, name
                )
                topics.append(entry)
            continue
        start = cursor.partition_index if cursor is not None and name == cursor_topic else 0
        end = min(info.num_partitions, start + remaining)
        partitions = [
            {
                "error_code": ErrorCode.none,
                "partition_index": index,
                "leader_id": node,
                "leader_epoch": LEADER_EPOCH,
                "replica_nodes": [node],
                "isr_nodes": [node],
                "eligible_leader_replicas": [],
                "last_known_elr": [],
                "offline_replicas": [],
            }
            for index in range(start, end)
        ]
        topics.append(
            {
                "error_code": ErrorCode.none,
                "name": name,
                "topic_id": info.topic_id,
                "is_internal": info.internal,
                "partitions": partitions,
                "topic_authorized_operations": checks.authorized_operations(
                    ctx, ResourceType.TOPIC, name
                ),
            }
        )
        if end < info.num_partitions:
            next_cursor = {"topic_name": name, "partition_index": end}
            break
        remaining -= len(partitions)
    topics.extend(_error_topic(name, ErrorCode.topic_authorization_failed) for name in refused)
    return ctx.response(throttle_time=0, topics=topics, next_cursor=next_cursor)


HANDLERS = {ApiKey.DESCRIBE_TOPIC_PARTITIONS: handle_describe_topic_partitions}
