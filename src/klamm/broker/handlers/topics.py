"""Topic administration: CreateTopics (19), DeleteTopics (20), CreatePartitions (37),
DeleteRecords (21), DescribeCluster (60).

One node means replication factor 1: -1 ("broker default") and 1 are accepted, anything larger
gets INVALID_REPLICATION_FACTOR as Kafka gives when a cluster has fewer brokers than asked for.

Authorization, as Kafka's ControllerApis and KafkaApis: CreateTopics needs CREATE on the cluster
or on each topic (TOPIC_AUTHORIZATION_FAILED, "Authorization failed."), and a created topic's
configs are returned only with DESCRIBE_CONFIGS on it (else topic_config_error_code says
TOPIC_AUTHORIZATION_FAILED); DeleteTopics needs DESCRIBE and DELETE; CreatePartitions ALTER;
DeleteRecords DELETE, each per topic and answered TOPIC_AUTHORIZATION_FAILED whether the topic
exists or not. DescribeCluster needs nothing (Kafka serves the broker list to anyone) but fills
`cluster_authorized_operations` when asked: 0 without DESCRIBE on the cluster.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from klamm.broker.authorizer import checks
from klamm.broker.authorizer.model import Operation, ResourceType
from klamm.broker.context import RequestContext
from klamm.broker.handlers.configs import describe_topic_configs
from klamm.broker.handlers.metadata import AUTHORIZED_OPERATIONS_OMITTED
from klamm.protocol.api_versions import ApiKey
from klamm.protocol.errors import ErrorCode
from klamm.storage import OffsetOutOfRange, StorageError, TopicExists

# Kafka's controller refuses a CreateTopics or CreatePartitions asking for more than 10,000
# partitions in all (ReplicationControlManager.MAX_PARTITIONS_PER_BATCH): one request must not
# make the broker build an unbounded batch of work.
MAX_PARTITIONS_PER_REQUEST = 10_000


def _created_entry(name: str) -> dict[str, Any]:
    """One CreateTopics result before anything is known: no id, counts -1 (as Kafka answers
    for a topic it did not create)."""
    return {
        "name": name,
        "topic_id": None,
        "error_code": ErrorCode.none,
        "error_message": None,
        "topic_config_error_code": 0,
        "num_partitions": -1,
        "replication_factor": -1,
        "configs": None,
    }


def _partition_count(ctx: RequestContext, topic: Any) -> int:
    """How many partitions an entry asks for, counted as Kafka's controller counts them for its
    per-request bound (ReplicationControlManager.validateTotalNumberOfPartitions)."""
    if topic.assignments:
        return len(topic.assignments)
    if topic.num_partitions == -1:
        return int(ctx.broker.config.num_partitions)
    return max(int(topic.num_partitions), 0)


async def _create_one(
    ctx: RequestContext, topic: Any, validate_only: bool, describable: bool
) -> dict[str, Any]:
    broker = ctx.broker
    entry = _created_entry(topic.name)

    def fail(code: ErrorCode, message: str) -> dict[str, Any]:
        entry["error_code"], entry["error_message"] = code, message
        return entry

    # The checks and their words are Kafka's controller's (ReplicationControlManager.createTopic
    # and validateManualPartitionAssignment): admin tools and frameworks match on them.
    node = broker.config.node_id
    num_partitions = topic.num_partitions
    if topic.assignments:
        if topic.replication_factor != -1:
            return fail(
                ErrorCode.invalid_request,
                "A manual partition assignment was specified, but replication factor was not "
                "set to -1.",
            )
        if topic.num_partitions != -1:
            return fail(
                ErrorCode.invalid_request,
                "A manual partition assignment was specified, but numPartitions was not set to -1.",
            )
        for assignment in topic.assignments:
            replicas = list(assignment.broker_ids)
            if not replicas:
                return fail(
                    ErrorCode.invalid_replica_assignment,
                    "The manual partition assignment includes an empty replica list.",
                )
            stranger = next((r for r in replicas if r != node), None)
            if stranger is not None:
                return fail(
                    ErrorCode.invalid_replica_assignment,
                    f"The manual partition assignment includes broker {stranger}, but no such "
                    "broker is registered.",
                )
            if len(replicas) > 1:
                return fail(
                    ErrorCode.invalid_replica_assignment,
                    f"The manual partition assignment includes the broker {node} more than once.",
                )
        num_partitions = len(topic.assignments)
    elif topic.replication_factor < -1 or topic.replication_factor == 0:
        return fail(
            ErrorCode.invalid_replication_factor,
            "Replication factor was set to an invalid non-positive value.",
        )
    elif num_partitions < -1 or num_partitions == 0:
        return fail(
            ErrorCode.invalid_partitions,
            "Number of partitions was set to an invalid non-positive value.",
        )
    elif topic.replication_factor > 1:
        factor = topic.replication_factor
        return fail(
            ErrorCode.invalid_replication_factor,
            f"Unable to replicate the partition {factor} time(s): The target replication factor "
            f"of {factor} cannot be reached because only 1 broker(s) are registered.",
        )
    if num_partitions == -1:
        num_partitions = broker.config.num_partitions
    configs = {c.name: c.value for c in topic.configs}
    try:
        if validate_only:
            broker.logs.validate_create(topic.name, num_partitions, configs)
            entry.update(num_partitions=num_partitions, replication_factor=1)
            return entry
        # The files are made in the broker's admin thread: a 10,000-partition topic takes
        # seconds there, during which the loop keeps serving everyone else.
        info = await broker.create_topic_in_thread(topic.name, num_partitions, configs)
    except TopicExists as exc:
        return fail(exc.code, f"Topic '{topic.name}' already exists.")
    except StorageError as exc:
        return fail(exc.code, str(exc))
    if not describable:
        # Created, but its configs (and counts) are not the principal's to see.
        entry["topic_id"] = info.topic_id
        entry["topic_config_error_code"] = ErrorCode.topic_authorization_failed
        return entry
    entry.update(
        topic_id=info.topic_id,
        num_partitions=info.num_partitions,
        replication_factor=1,
        configs=[
            {
                "name": c["name"],
                "value": c["value"],
                "read_only": c["read_only"],
                "config_source": c["config_source"],
                "is_sensitive": c["is_sensitive"],
            }
            for c in describe_topic_configs(ctx, topic.name, None)
        ],
    )
    return entry


async def handle_create_topics(ctx: RequestContext, request: Any) -> Any:
    """A name given more than once creates nothing: which of its entries would be meant? Kafka
    (ControllerApis.createTopics) answers it once, with INVALID_REQUEST.

    A request asking for more than MAX_PARTITIONS_PER_REQUEST partitions in all creates nothing
    and answers every topic POLICY_VIOLATION, as Kafka's controller does."""
    duplicated = _duplicated(topic.name for topic in request.topics)
    names = [topic.name for topic in request.topics]
    uncreatable: frozenset[str] = frozenset()
    if not checks.cluster_allowed(ctx, Operation.CREATE, log_denied=False):
        uncreatable = checks.denied(ctx, Operation.CREATE, ResourceType.TOPIC, names)
    hidden = checks.denied(
        ctx, Operation.DESCRIBE_CONFIGS, ResourceType.TOPIC, names, log_denied=False
    )
    total = sum(
        _partition_count(ctx, t)
        for t in request.topics
        if t.name not in duplicated and t.name not in uncreatable
    )
    answered: set[str] = set()
    topics = []
    for topic in request.topics:
        if topic.name in answered:
            continue
        answered.add(topic.name)
        if topic.name in duplicated:
            topics.append(_duplicate_entry(topic.name))
        elif topic.name in uncreatable:
            entry = _created_entry(topic.name)
            entry["error_code"] = ErrorCode.topic_authorization_failed
            entry["error_message"] = "Authorization failed."
            topics.append(entry)
        elif total > MAX_PARTITIONS_PER_REQUEST:
            entry = _created_entry(topic.name)
            entry["error_code"] = ErrorCode.policy_violation
            entry["error_message"] = (
                f"Excessively large number of partitions per request: {total}, "
                f"at most {MAX_PARTITIONS_PER_REQUEST}."
            )
            topics.append(entry)
        else:
            describable = topic.name not in hidden
            topics.append(await _create_one(ctx, topic, request.validate_only, describable))
    return ctx.response(throttle_time=0, topics=topics)


def _duplicated(keys: Iterable[Any]) -> set[Any]:
    """Names (or ids) a request lists more than once: Kafka answers each such topic once, with
    INVALID_REQUEST, and leaves it alone (which of the entries would be meant?)."""
    seen: set[Any] = set()
    duplicated: set[Any] = set()
    for key in keys:
        if key in seen:
            duplicated.add(key)
        seen.add(key)
    return duplicated


def _duplicate_entry(name: str) -> dict[str, Any]:
    entry = _created_entry(name)
    entry["error_code"], entry["error_message"] = ErrorCode.invalid_request, "Duplicate topic name."
    return entry


def handle_delete_topics(ctx: RequestContext, request: Any) -> Any:
    broker = ctx.broker
    names: list[tuple[str | None, Any]] = []
    if ctx.version >= 6:
        names = [(t.name, t.topic_id) for t in request.topics]
    else:
        names = [(name, None) for name in request.topic_names]
    responses = []
    by_id = {info.topic_id: name for name, info in broker.logs.topics().items()}
    duplicated = _duplicated(name if name is not None else topic_id for name, topic_id in names)
    resolved = [name if name is not None else by_id.get(topic_id) for name, topic_id in names]
    known = [name for name in resolved if name is not None]
    # Kafka's ControllerApis.deleteTopics: DESCRIBE and DELETE on each topic.
    denied = checks.denied(ctx, Operation.DESCRIBE, ResourceType.TOPIC, known)
    denied |= checks.denied(ctx, Operation.DELETE, ResourceType.TOPIC, known)
    answered: set[Any] = set()
    for name, topic_id in names:
        key = name if name is not None else topic_id
        if key in answered:
            continue
        answered.add(key)
        if name is None and topic_id is not None:
            name = by_id.get(topic_id)
        entry: dict[str, Any] = {
            "name": name,
            "topic_id": topic_id,
            "error_code": ErrorCode.none,
            "error_message": None,
        }
        info = broker.topic(name) if name is not None else None
        if key in duplicated:
            entry["error_code"] = ErrorCode.invalid_request
            entry["error_message"] = (
                "Duplicate topic id." if key is topic_id else "Duplicate topic name."
            )
        elif name is not None and name in denied:
            entry["error_code"] = ErrorCode.topic_authorization_failed
            entry["error_message"] = checks.TOPIC_AUTHORIZATION_FAILED
            if key is topic_id:
                entry["name"] = None  # the id's name is not the principal's to learn
        elif info is None:
            entry["error_code"] = (
                ErrorCode.unknown_topic_id if name is None else ErrorCode.unknown_topic_or_partition
            )
        elif info.internal:
            entry["error_code"] = ErrorCode.invalid_topic_exception
            entry["error_message"] = f"internal topic {name} cannot be deleted"
        else:
            entry["topic_id"] = info.topic_id
            try:
                broker.delete_topic(info.name)
            except StorageError as exc:
                entry["error_code"], entry["error_message"] = exc.code, str(exc)
        responses.append(entry)
    return ctx.response(throttle_time=0, responses=responses)


async def handle_create_partitions(ctx: RequestContext, request: Any) -> Any:
    broker = ctx.broker
    results = []
    duplicated = _duplicated(topic.name for topic in request.topics)
    names = (topic.name for topic in request.topics)
    denied = checks.denied(ctx, Operation.ALTER, ResourceType.TOPIC, names)
    # Kafka's controller bounds the new partitions of one request as it bounds CreateTopics.
    total = 0
    for topic in request.topics:
        current = broker.topic(topic.name)
        if current is not None and topic.name not in duplicated and topic.name not in denied:
            total += max(topic.count - current.num_partitions, 0)
    answered: set[str] = set()
    for topic in request.topics:
        if topic.name in answered:
            continue
        answered.add(topic.name)
        entry: dict[str, Any] = {
            "name": topic.name,
            "error_code": ErrorCode.none,
            "error_message": None,
        }
        info = broker.topic(topic.name)
        if topic.name in duplicated:
            entry["error_code"] = ErrorCode.invalid_request
            entry["error_message"] = "Duplicate topic in request."
        elif topic.name in denied:
            entry["error_code"] = ErrorCode.topic_authorization_failed
            entry["error_message"] = checks.TOPIC_AUTHORIZATION_FAILED
        elif total > MAX_PARTITIONS_PER_REQUEST:
            entry["error_code"] = ErrorCode.policy_violation
            entry["error_message"] = (
                f"Unable to perform excessively large batch operation: {total} new partitions, "
                f"at most {MAX_PARTITIONS_PER_REQUEST}."
            )
        elif info is None:
            entry["error_code"] = ErrorCode.unknown_topic_or_partition
        elif topic.count <= info.num_partitions:
            entry["error_code"] = ErrorCode.invalid_partitions
            entry["error_message"] = (
                f"topic currently has {info.num_partitions} partitions, "
                f"{topic.count} would not be an increase"
            )
        elif not request.validate_only:
            try:
                # The new partitions' files are made in the admin thread, as for CreateTopics.
                await broker.create_partitions_in_thread(topic.name, topic.count)
            except StorageError as exc:
                entry["error_code"], entry["error_message"] = exc.code, str(exc)
        results.append(entry)
    return ctx.response(throttle_time=0, results=results)


def handle_delete_records(ctx: RequestContext, request: Any) -> Any:
    """Raise each partition's log start offset; -1 means "up to the high watermark"."""
    names = (topic.name for topic in request.topics)
    denied = checks.denied(ctx, Operation.DELETE, ResourceType.TOPIC, names)
    topics = []
    for topic in request.topics:
        partitions = []
        for wanted in topic.partitions:
            entry: dict[str, Any] = {
                "partition_index": wanted.partition_index,
                "low_watermark": -1,
                "error_code": ErrorCode.none,
            }
            partition = ctx.broker.partition(topic.name, wanted.partition_index)
            if topic.name in denied:
                entry["error_code"] = ErrorCode.topic_authorization_failed
            elif partition is None:
                entry["error_code"] = ErrorCode.unknown_topic_or_partition
            elif partition.internal:
                # Kafka's ReplicaManager refuses: the coordinators' state lives there (committed
                # offsets, transactions, producer id blocks), and is replayed from it at start.
                entry["error_code"] = ErrorCode.invalid_topic_exception
            elif not partition.log.config.delete:
                # Kafka's Partition.deleteRecordsOnLeader: only a "delete" policy allows it.
                entry["error_code"] = ErrorCode.policy_violation
            else:
                offset = partition.high_watermark if wanted.offset == -1 else wanted.offset
                if offset < 0 or offset > partition.high_watermark:
                    entry["error_code"] = ErrorCode.offset_out_of_range
                else:
                    try:
                        partition.log.delete_records_before(offset)
                    except OffsetOutOfRange:
                        entry["error_code"] = ErrorCode.offset_out_of_range
                    except StorageError as exc:
                        entry["error_code"] = exc.code
                    entry["low_watermark"] = partition.log.log_start_offset
            partitions.append(entry)
        topics.append({"name": topic.name, "partitions": partitions})
    return ctx.response(throttle_time=0, topics=topics)


def handle_describe_cluster(ctx: RequestContext, request: Any) -> Any:
    broker = ctx.broker
    host, port = broker.config.advertised
    ops = AUTHORIZED_OPERATIONS_OMITTED
    if request.include_cluster_authorized_operations:
        ops = checks.cluster_authorized_operations(ctx)
    return ctx.response(
        throttle_time=0,
        error_code=ErrorCode.none,
        error_message=None,
        endpoint_type=1,
        cluster_id=broker.cluster_id,
        controller_id=broker.config.node_id,
        brokers=[{"broker_id": broker.config.node_id, "host": host, "port": port, "rack": None}],
        cluster_authorized_operations=ops,
    )


HANDLERS = {
    ApiKey.CREATE_TOPICS: handle_create_topics,
    ApiKey.DELETE_TOPICS: handle_delete_topics,
    ApiKey.CREATE_PARTITIONS: handle_create_partitions,
    ApiKey.DELETE_RECORDS: handle_delete_records,
    ApiKey.DESCRIBE_CLUSTER: handle_describe_cluster,
}
