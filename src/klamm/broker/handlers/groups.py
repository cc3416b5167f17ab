"""Group APIs: FindCoordinator (10), JoinGroup (11), Heartbeat (12), LeaveGroup (13),
SyncGroup (14), DescribeGroups (15), ListGroups (16), OffsetCommit (8), OffsetFetch (9),
DeleteGroups (42), OffsetDelete (47).

Thin: each handler turns the request of any version into a call on the group coordinator
(`klamm.broker.groups`) and its answer into the response of that version.

Authorization first, as Kafka's KafkaApis (Kafka 4's classic-group paths): FindCoordinator needs
DESCRIBE on the group or transactional id; JoinGroup, SyncGroup, Heartbeat, LeaveGroup and
OffsetCommit READ on the group (OffsetCommit also READ on each topic, answered per partition);
OffsetFetch DESCRIBE on the group and on each topic (a fetch of every committed offset leaves out
the topics the principal may not describe); DescribeGroups DESCRIBE (per group); ListGroups lists
only the groups the principal may DESCRIBE, unless it may DESCRIBE the cluster; DeleteGroups
DELETE (per group); OffsetDelete DELETE on the group and READ on each topic. A refused group
answers GROUP_AUTHORIZATION_FAILED before the coordinator sees the request.
"""

from __future__ import annotations

from typing import Any

from klamm.broker.authorizer import checks
from klamm.broker.authorizer.model import Operation, ResourceType
from klamm.broker.context import RequestContext
from klamm.broker.groups.coordinator import JoinRequest
from klamm.protocol.api_versions import ApiKey
from klamm.protocol.errors import ErrorCode

# DescribeGroups authorized_operations when the client does not ask: INT32_MIN ("not
# provided"), which kafka-python checks. When it asks: checks.authorized_operations.
AUTHORIZED_OPERATIONS_OMITTED = checks.AUTHORIZED_OPERATIONS_OMITTED

KEY_TYPE_GROUP = 0
KEY_TYPE_TRANSACTION = 1


def _group_allowed(ctx: RequestContext, operation: Operation, group_id: str) -> bool:
    return checks.allowed(ctx, operation, ResourceType.GROUP, group_id)


def _client_host(ctx: RequestContext) -> str:
    # Kafka shows the peer address as "/ip" (InetAddress.toString of an unresolved host).
    host = ctx.session.peer.rsplit(":", 1)[0] if ctx.session.peer else ""
    return "/" + host.strip("[]")


# --- FindCoordinator ----------------------------------------------------------------------------


def handle_find_coordinator(ctx: RequestContext, request: Any) -> Any:
    host, port = ctx.broker.config.advertised
    node = ctx.broker.config.node_id
    key_type = getattr(request, "key_type", KEY_TYPE_GROUP)
    if key_type in (KEY_TYPE_GROUP, KEY_TYPE_TRANSACTION):
        # One node coordinates every group and every transactional id.
        error, message, found = ErrorCode.none, None, (node, host, port)
    else:
        error, message, found = (
            ErrorCode.invalid_request,
            f"unknown key type {key_type}",
            (-1, "", -1),
        )
    keys = list(request.coordinator_keys) if ctx.version >= 4 else [request.key]
    answers = [(error, message, found)] * len(keys)
    if error == ErrorCode.none and checks.enabled(ctx):
        answers = [_coordinator_for(ctx, key_type, key, found) for key in keys]
    if ctx.version >= 4:
        return ctx.response(
            throttle_time=0,
            coordinators=[
                {
                    "key": key,
                    "node_id": found[0],
                    "host": found[1],
                    "port": found[2],
                    "error_code": error,
                    "error_message": message,
                }
                for key, (error, message, found) in zip(keys, answers, strict=True)
            ],
        )
    error, message, found = answers[0]
    return ctx.response(
        throttle_time=0,
        error_code=error,
        error_message=message,
        node_id=found[0],
        host=found[1],
        port=found[2],
    )


def _coordinator_for(
    ctx: RequestContext, key_type: int, key: str, found: tuple[int, str, int]
) -> tuple[ErrorCode, str | None, tuple[int, str, int]]:
    """Kafka's getCoordinator: the coordinator of a key the principal may DESCRIBE, else the
    authorization error and no node."""
    if key_type == KEY_TYPE_GROUP:
        if not _group_allowed(ctx, Operation.DESCRIBE, key):
            code = ErrorCode.group_authorization_failed
            return code, checks.GROUP_AUTHORIZATION_FAILED, (-1, "", -1)
    elif not checks.allowed(ctx, Operation.DESCRIBE, ResourceType.TRANSACTIONAL_ID, key):
        code = ErrorCode.transactional_id_authorization_failed
        return code, checks.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, (-1, "", -1)
    return ErrorCode.none, None, found


# --- membership ---------------------------------------------------------------------------------


def _join_error(ctx: RequestContext, code: ErrorCode, member_id: str) -> Any:
    return ctx.response(
        throttle_time=0,
        error_code=code,
        generation_id=-1,
        protocol_type=None,
        protocol_name=None if ctx.version >= 7 else "",
        leader="",
        member_id=member_id,
        members=[],
    )


async def handle_join_group(ctx: RequestContext, request: Any) -> Any:
    if not _group_allowed(ctx, Operation.READ, request.group_id):
        return _join_error(ctx, ErrorCode.group_authorization_failed, "")
    session_timeout = int(request.session_timeout.total_seconds() * 1000)
    rebalance = getattr(request, "rebalance_timeout", None)
    result = await ctx.broker.groups.join_group(
        JoinRequest(
            group_id=request.group_id,
            member_id=request.member_id,
            group_instance_id=getattr(request, "group_instance_id", None),
            protocol_type=request.protocol_type,
            protocols=[(p.name, p.metadata) for p in request.protocols],
            session_timeout_ms=session_timeout,
            # v0 has no rebalance timeout: Kafka uses the session timeout.
            rebalance_timeout_ms=(
                session_timeout if rebalance is None else int(rebalance.total_seconds() * 1000)
            ),
            require_known_member_id=ctx.version >= 4,
            client_id=ctx.header.client_id or "",
            client_host=_client_host(ctx),
        )
    )
    if result.error != ErrorCode.none:
        return _join_error(ctx, result.error, result.member_id)
    return ctx.response(
        throttle_time=0,
        error_code=ErrorCode.none,
        generation_id=result.generation,
        protocol_type=result.protocol_type,
        protocol_name=result.protocol,
        leader=result.leader,
        member_id=result.member_id,
        members=[
            {"member_id": member_id, "group_instance_id": instance, "metadata": metadata}
            for member_id, instance, metadata in result.members
        ],
    )


async def handle_sync_group(ctx: RequestContext, request: Any) -> Any:
    if not _group_allowed(ctx, Operation.READ, request.group_id):
        return ctx.response(
            throttle_time=0, error_code=ErrorCode.group_authorization_failed,
            protocol_type=None, protocol_name=None, assignment=b"",
        )  # fmt: skip
    result = await ctx.broker.groups.sync_group(
        request.group_id,
        request.generation_id,
        request.member_id,
        getattr(request, "group_instance_id", None),
        getattr(request, "protocol_type", None),
        getattr(request, "protocol_name", None),
        {a.member_id: a.assignment for a in request.assignments},
    )
    return ctx.response(
        throttle_time=0,
        error_code=result.error,
        protocol_type=result.protocol_type if not result.error else None,
        protocol_name=result.protocol if not result.error else None,
        assignment=result.assignment,
    )


def handle_heartbeat(ctx: RequestContext, request: Any) -> Any:
    if not _group_allowed(ctx, Operation.READ, request.group_id):
        return ctx.response(throttle_time=0, error_code=ErrorCode.group_authorization_failed)
    error = ctx.broker.groups.heartbeat(
        request.group_id,
        request.generation_id,
        request.member_id,
        getattr(request, "group_instance_id", None),
    )
    return ctx.response(throttle_time=0, error_code=error)


def handle_leave_group(ctx: RequestContext, request: Any) -> Any:
    if not _group_allowed(ctx, Operation.READ, request.group_id):
        code = ErrorCode.group_authorization_failed
        return ctx.response(throttle_time=0, error_code=code, members=[])
    if ctx.version >= 3:
        leaving = [(m.member_id, m.group_instance_id) for m in request.members]
    else:
        leaving = [(request.member_id, None)]
    top, errors = ctx.broker.groups.leave_group(request.group_id, leaving)
    if ctx.version < 3 and top == ErrorCode.none:
        top = errors[0]  # v0-2 carry the one member's error at the top level
    return ctx.response(
        throttle_time=0,
        error_code=top,
        members=[
            {"member_id": member_id, "group_instance_id": instance, "error_code": error}
            for (member_id, instance), error in zip(leaving, errors, strict=True)
        ],
    )


# --- offsets ------------------------------------------------------------------------------------


def _per_partition(topics: Any, code: ErrorCode) -> list[dict[str, Any]]:
    """`code` for every partition a commit names (Kafka's getErrorResponse)."""
    return [
        {"name": t.name, "partitions": [
            {"partition_index": p.partition_index, "error_code": code} for p in t.partitions]}
        for t in topics
    ]  # fmt: skip


async def handle_offset_commit(ctx: RequestContext, request: Any) -> Any:
    if not _group_allowed(ctx, Operation.READ, request.group_id):
        code = ErrorCode.group_authorization_failed
        return ctx.response(throttle_time=0, topics=_per_partition(request.topics, code))
    names = (topic.name for topic in request.topics)
    denied = checks.denied(ctx, Operation.READ, ResourceType.TOPIC, names)
    offsets: dict[tuple[str, int], tuple[int, int, str | None]] = {}
    for topic in request.topics:
        if topic.name in denied:
            continue
        for p in topic.partitions:
            epoch = getattr(p, "committed_leader_epoch", -1)
            offsets[(topic.name, p.partition_index)] = (
                p.committed_offset,
                epoch,
                p.committed_metadata,
            )
    errors: dict[tuple[str, int], ErrorCode] = {}
    if offsets or not denied:  # Kafka does not call the coordinator when nothing is left
        errors = await ctx.broker.groups.commit_offsets(
            request.group_id,
            request.generation_id_or_member_epoch,
            request.member_id,
            getattr(request, "group_instance_id", None),
            offsets,
        )
    refused = ErrorCode.topic_authorization_failed
    return ctx.response(
        throttle_time=0,
        topics=[
            {
                "name": topic.name,
                "partitions": [
                    {
                        "partition_index": p.partition_index,
                        "error_code": (
                            refused
                            if topic.name in denied
                            else errors[(topic.name, p.partition_index)]
                        ),
                    }
                    for p in topic.partitions
                ],
            }
            for topic in request.topics
        ],
    )


def _fetch_group(ctx: RequestContext, group_id: str, topics: Any, require_stable: bool) -> Any:
    """One group's committed offsets, or its error: (topics, group error). Kafka's
    fetchOffsetsForGroup: DESCRIBE on the group, then on each topic; a topic the principal may
    not describe answers TOPIC_AUTHORIZATION_FAILED for each partition asked, and is left out
    of a fetch of every committed offset."""
    if not _group_allowed(ctx, Operation.DESCRIBE, group_id):
        return None, ErrorCode.group_authorization_failed
    denied: frozenset[str] = frozenset()
    wanted = None
    if topics is not None:
        names = (t.name for t in topics)
        denied = checks.denied(ctx, Operation.DESCRIBE, ResourceType.TOPIC, names)
        wanted = [(t.name, list(t.partition_indexes)) for t in topics if t.name not in denied]
    fetched = ctx.broker.groups.fetch_offsets(group_id, wanted, require_stable)
    if topics is None and checks.enabled(ctx):
        fetched_names = (n for n, _ in fetched)
        hidden = checks.denied(
            ctx, Operation.DESCRIBE, ResourceType.TOPIC, fetched_names, log_denied=False
        )
        fetched = [(name, rows) for name, rows in fetched if name not in hidden]
    answered = {
        name: [
            {
                "partition_index": row.partition,
                "committed_offset": row.offset,
                "committed_leader_epoch": row.leader_epoch,
                "metadata": row.metadata,
                "error_code": row.error,
            }
            for row in rows
        ]
        for name, rows in fetched
    }
    if denied:  # in request order, each refused partition with Kafka's "no offset" answer
        for t in topics:
            if t.name in denied:
                answered[t.name] = [_no_offset(i, ErrorCode.topic_authorization_failed)
                                    for i in t.partition_indexes]  # fmt: skip
        order = {t.name: i for i, t in enumerate(topics)}
        answered = dict(sorted(answered.items(), key=lambda item: order.get(item[0], 0)))
    return [{"name": name, "partitions": rows} for name, rows in answered.items()], ErrorCode.none


def _no_offset(index: int, code: ErrorCode) -> dict[str, Any]:
    return {"partition_index": index, "committed_offset": -1, "committed_leader_epoch": -1,
            "metadata": "", "error_code": code}  # fmt: skip


def handle_offset_fetch(ctx: RequestContext, request: Any) -> Any:
    require_stable = bool(getattr(request, "require_stable", False))
    if ctx.version >= 8:
        groups = []
        for group in request.groups:
            topics, error = _fetch_group(ctx, group.group_id, group.topics, require_stable)
            groups.append({"group_id": group.group_id, "topics": topics or [], "error_code": error})
        return ctx.response(throttle_time=0, groups=groups)
    # v1 cannot express "all topics" (null topics arrive as an empty list there).
    topics, error = _fetch_group(ctx, request.group_id, request.topics, require_stable)
    if topics is None:
        # Kafka's OffsetFetchResponse.groupError: v2+ carry the error at the top level; v1 has
        # none, so every partition asked carries it.
        topics = []
        if ctx.version < 2:
            topics = [{"name": t.name, "partitions": [_no_offset(i, error)
                       for i in t.partition_indexes]} for t in request.topics or ()]  # fmt: skip
    return ctx.response(throttle_time=0, topics=topics, error_code=error)


# --- admin --------------------------------------------------------------------------------------


def handle_describe_groups(ctx: RequestContext, request: Any) -> Any:
    coordinator = ctx.broker.groups
    include_ops = bool(getattr(request, "include_authorized_operations", False))
    groups = []
    # Each group id once, in request order. Kafka answers a repeated id again; clients never
    # repeat one (the Java admin and librdkafka build the list from a set), and 1M copies of ""
    # cost 9 s of encoding on the event loop for nothing.
    for group_id in dict.fromkeys(request.groups):
        if not _group_allowed(ctx, Operation.DESCRIBE, group_id):
            # Kafka's DescribeGroupsResponse.groupError: nothing but the error.
            groups.append({
                "error_code": ErrorCode.group_authorization_failed, "group_id": group_id,
                "group_state": "", "protocol_type": "", "protocol_data": "", "members": [],
                "authorized_operations": AUTHORIZED_OPERATIONS_OMITTED,
            })  # fmt: skip
            continue
        summary = coordinator.describe_group(group_id)
        ops = AUTHORIZED_OPERATIONS_OMITTED
        if include_ops:
            ops = checks.authorized_operations(ctx, ResourceType.GROUP, group_id)
        groups.append(
            {
                "error_code": ErrorCode.invalid_group_id if not group_id else ErrorCode.none,
                "group_id": group_id,
                "group_state": summary.state,
                "protocol_type": summary.protocol_type,
                "protocol_data": summary.protocol,
                "members": summary.members,
                "authorized_operations": ops,
            }
        )
    return ctx.response(throttle_time=0, groups=groups)


def handle_list_groups(ctx: RequestContext, request: Any) -> Any:
    states = list(getattr(request, "states_filter", ()) or ())
    listed = ctx.broker.groups.list_groups(states)
    if checks.enabled(ctx) and not checks.cluster_allowed(
        ctx, Operation.DESCRIBE, log_denied=False
    ):
        # Kafka lists every group to a principal that may DESCRIBE the cluster (as before ACLs
        # on groups existed), else only those it may DESCRIBE.
        hidden = checks.denied(
            ctx,
            Operation.DESCRIBE,
            ResourceType.GROUP,
            (g for g, _, _ in listed),
            log_denied=False,
        )
        listed = [entry for entry in listed if entry[0] not in hidden]
    return ctx.response(
        throttle_time=0,
        error_code=ErrorCode.none,
        groups=[
            {"group_id": gid, "protocol_type": ptype, "group_state": state}
            for gid, ptype, state in listed
        ],
    )


async def handle_delete_groups(ctx: RequestContext, request: Any) -> Any:
    names = list(request.groups_names)
    denied = checks.denied(ctx, Operation.DELETE, ResourceType.GROUP, names)
    allowed = [name for name in names if name not in denied]
    deleted = dict(zip(allowed, await ctx.broker.groups.delete_groups(allowed), strict=True))
    refused = ErrorCode.group_authorization_failed
    errors = [refused if name in denied else deleted[name] for name in names]
    return ctx.response(
        throttle_time=0,
        results=[
            {"group_id": name, "error_code": error}
            for name, error in zip(names, errors, strict=True)
        ],
    )


async def handle_offset_delete(ctx: RequestContext, request: Any) -> Any:
    if not _group_allowed(ctx, Operation.DELETE, request.group_id):
        return ctx.response(throttle_time=0, error_code=ErrorCode.group_authorization_failed,
                            topics=[])  # fmt: skip
    names = (t.name for t in request.topics)
    denied = checks.denied(ctx, Operation.READ, ResourceType.TOPIC, names)
    wanted = [
        (t.name, p.partition_index)
        for t in request.topics
        if t.name not in denied
        for p in t.partitions
    ]
    top, errors = await ctx.broker.groups.delete_offsets(request.group_id, wanted)
    for t in request.topics:
        if t.name in denied:
            for p in t.partitions:
                errors[(t.name, p.partition_index)] = ErrorCode.topic_authorization_failed
    return ctx.response(
        throttle_time=0,
        error_code=top,
        topics=[
            {
                "name": t.name,
                "partitions": [
                    {
                        "partition_index": p.partition_index,
                        "error_code": errors.get((t.name, p.partition_index), ErrorCode.none),
                    }
                    for p in t.partitions
                ],
            }
            for t in request.topics
        ]
        if not top
        else [],
    )


HANDLERS = {
    ApiKey.FIND_COORDINATOR: handle_find_coordinator,
    ApiKey.JOIN_GROUP: handle_join_group,
    ApiKey.SYNC_GROUP: handle_sync_group,
    ApiKey.HEARTBEAT: handle_heartbeat,
    ApiKey.LEAVE_GROUP: handle_leave_group,
    ApiKey.OFFSET_COMMIT: handle_offset_commit,
    ApiKey.OFFSET_FETCH: handle_offset_fetch,
    ApiKey.DESCRIBE_GROUPS: handle_describe_groups,
    ApiKey.LIST_GROUPS: handle_list_groups,
    ApiKey.DELETE_GROUPS: handle_delete_groups,
    ApiKey.OFFSET_DELETE: handle_offset_delete,
}
