"""ElectLeaders (43), AlterPartitionReassignments (45), ListPartitionReassignments (46): replica
placement and leadership, answered truthfully for a single node (Kafka's controller,
ReplicationControlManager, gives the answers and their words).

Every partition has one replica, this broker, which leads it: no reassignment is ever in
progress, the only replica set a reassignment may ask for is [this broker] (a no-op), and no
election is ever needed.

Authorization (Kafka's KafkaApis.handleElectLeaders and ControllerApis): ElectLeaders and
AlterPartitionReassignments need ALTER on the cluster, ListPartitionReassignments DESCRIBE;
without it the answer is CLUSTER_AUTHORIZATION_FAILED.
"""

from __future__ import annotations

from typing import Any

from klamm.broker.authorizer import checks
from klamm.broker.authorizer.model import Operation
from klamm.broker.context import RequestContext
from klamm.protocol.api_versions import ApiKey
from klamm.protocol.errors import ErrorCode

# ElectionType in ElectLeaders v1+: PREFERRED (0) and UNCLEAN (1); v0 always means PREFERRED.
_ELECTION_TYPES = (0, 1)
# Kafka's default messages (Errors.java) for the errors answered without a specific one.
_ELECTION_NOT_NEEDED = "Leader election not needed for topic partition."
_NO_REASSIGNMENT = "No partition reassignment is in progress."


def _missing_partition(ctx: RequestContext, topic: str, index: int) -> str | None:
    """Kafka's words for a topic or partition the cluster does not have, or None."""
    info = ctx.broker.topic(topic)
    if info is None:
        return f"Unable to find a topic named {topic}."
    if not 0 <= index < info.num_partitions:
        return f"Unable to find partition {topic}:{index}."
    return None


def _replica_set_error(node: int, replicas: list[int]) -> str | None:
    """Kafka's validateManualPartitionAssignment, with one registered broker."""
    if not replicas:
        return "The manual partition assignment includes an empty replica list."
    for replica in replicas:
        if replica != node:
            return (
                f"The manual partition assignment includes broker {replica}, but no such "
                "broker is registered."
            )
    if len(replicas) > 1:
        return f"The manual partition assignment includes the broker {node} more than once."
    return None


def _reassign_one(ctx: RequestContext, topic: str, partition: Any) -> dict[str, Any]:
    code, message = ErrorCode.none, None
    missing = _missing_partition(ctx, topic, partition.partition_index)
    if missing is not None:
        code, message = ErrorCode.unknown_topic_or_partition, missing
    elif partition.replicas is None:  # a cancel: nothing is ever being reassigned
        code, message = ErrorCode.no_reassignment_in_progress, _NO_REASSIGNMENT
    else:
        problem = _replica_set_error(ctx.broker.config.node_id, list(partition.replicas))
        if problem is not None:
            code, message = ErrorCode.invalid_replica_assignment, problem
        # [this broker] is the partition's replica set already: nothing to move.
    return {"partition_index": partition.partition_index, "error_code": code,
            "error_message": message}  # fmt: skip


def handle_alter_partition_reassignments(ctx: RequestContext, request: Any) -> Any:
    if not checks.cluster_allowed(ctx, Operation.ALTER):
        # Kafka's AlterPartitionReassignmentsRequest.getErrorResponse: the error at the top and
        # on every partition.
        code, message = ErrorCode.cluster_authorization_failed, checks.CLUSTER_AUTHORIZATION_FAILED
        change = getattr(request, "allow_replication_factor_change", True)
        return ctx.response(
            throttle_time=0,
            allow_replication_factor_change=change,
            error_code=code,
            error_message=message,
            responses=[
                {"name": topic.name, "partitions": [
                    {"partition_index": p.partition_index, "error_code": code,
                     "error_message": message} for p in topic.partitions]}
                for topic in request.topics
            ],
        )  # fmt: skip
    responses = [
        {
            "name": topic.name,
            "partitions": [_reassign_one(ctx, topic.name, p) for p in topic.partitions],
        }
        for topic in request.topics
    ]
    return ctx.response(
        throttle_time=0,
        allow_replication_factor_change=getattr(request, "allow_replication_factor_change", True),
        error_code=ErrorCode.none,
        error_message=None,
        responses=responses,
    )


def handle_list_partition_reassignments(ctx: RequestContext, request: Any) -> Any:
    """Nothing is ever being reassigned; unknown topics are left out, as Kafka does."""
    if not checks.cluster_allowed(ctx, Operation.DESCRIBE):
        return ctx.response(
            throttle_time=0, error_code=ErrorCode.cluster_authorization_failed,
            error_message=checks.CLUSTER_AUTHORIZATION_FAILED, topics=[],
        )  # fmt: skip
    return ctx.response(throttle_time=0, error_code=ErrorCode.none, error_message=None, topics=[])


def handle_elect_leaders(ctx: RequestContext, request: Any) -> Any:
    election_type = getattr(request, "election_type", 0)
    refused = not checks.cluster_allowed(ctx, Operation.ALTER)
    if refused or election_type not in _ELECTION_TYPES:
        # Kafka refuses the whole request (ClusterAuthorizationException before it looks at the
        # election type, InvalidRequestException), each partition included.
        code = ErrorCode.invalid_request
        message: str | None = f"Unknown election type {election_type}"
        if refused:
            code, message = ErrorCode.cluster_authorization_failed, None
        results = [
            {"topic": t.topic, "partition_result": [
                {"partition_id": p, "error_code": code, "error_message": message}
                for p in t.partitions]}
            for t in request.topic_partitions or ()
        ]  # fmt: skip
        return ctx.response(throttle_time=0, error_code=code, replica_election_results=results)
    if request.topic_partitions is None:
        # Every partition: Kafka leaves out those that already have the wanted leader, which
        # here is all of them.
        return ctx.response(throttle_time=0, error_code=ErrorCode.none, replica_election_results=[])
    results = []
    for topic in request.topic_partitions:
        partition_results = []
        for index in topic.partitions:
            code, message = ErrorCode.election_not_needed, _ELECTION_NOT_NEEDED
            info = ctx.broker.topic(topic.topic)
            if info is None:
                code, message = (
                    ErrorCode.unknown_topic_or_partition,
                    f"No such topic as {topic.topic}",
                )
            elif not 0 <= index < info.num_partitions:
                code = ErrorCode.unknown_topic_or_partition
                message = f"No such partition as {topic.topic}-{index}"
            partition_results.append(
                {"partition_id": index, "error_code": code, "error_message": message}
            )
        results.append({"topic": topic.topic, "partition_result": partition_results})
    return ctx.response(
        throttle_time=0, error_code=ErrorCode.none, replica_election_results=results
    )


HANDLERS = {
    ApiKey.ELECT_LEADERS: handle_elect_leaders,
    ApiKey.ALTER_PARTITION_REASSIGNMENTS: handle_alter_partition_reassignments,
    ApiKey.LIST_PARTITION_REASSIGNMENTS: handle_list_partition_reassignments,
}
