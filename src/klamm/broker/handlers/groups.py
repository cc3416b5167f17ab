"""Group APIs: FindCoordinator (10), JoinGroup (11), Heartbeat (12), LeaveGroup (13),
SyncGroup (14), DescribeGroups (15), ListGroups (16), OffsetCommit (8), OffsetFetch (9),
DeleteGroups (42), OffsetDelete (47).

Thin: each handler turns the request of any version into a call on the group coordinator
(`klamm.broker.groups`) and its answer into the response of that version.
"""

from __future__ import annotations

from typing import Any

from klamm.broker.context import RequestContext
from klamm.broker.groups import GroupCoordinator
from klamm.broker.groups.coordinator import JoinRequest
from klamm.protocol.api_versions import ApiKey
from klamm.protocol.errors import ErrorCode

# DescribeGroups authorized_operations when the client asks (DESCRIBE, DELETE, READ bits of
# Kafka's AclOperation codes 8, 6, 3; no authorizer means everything is allowed). When it does
# not ask, Kafka sends INT32_MIN ("not provided"), which kafka-python checks.
GROUP_AUTHORIZED_OPERATIONS = (1 << 3) | (1 << 6) | (1 << 8)
AUTHORIZED_OPERATIONS_OMITTED = -(2**31)

KEY_TYPE_GROUP = 0
KEY_TYPE_TRANSACTION = 1


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
                for key in request.coordinator_keys
            ],
        )
    return ctx.response(
        throttle_time=0,
        error_code=error,
        error_message=message,
        node_id=found[0],
        host=found[1],
        port=found[2],
    )


# --- membership ---------------------------------------------------------------------------------


async def handle_join_group(ctx: RequestContext, request: Any) -> Any:
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
        return ctx.response(
            throttle_time=0,
            error_code=result.error,
            generation_id=-1,
            protocol_type=None,
            protocol_name=None if ctx.version >= 7 else "",
            leader="",
            member_id=result.member_id,
            members=[],
        )
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
    error = ctx.broker.groups.heartbeat(
        request.group_id,
        request.generation_id,
        request.member_id,
        getattr(request, "group_instance_id", None),
    )
    return ctx.response(throttle_time=0, error_code=error)


def handle_leave_group(ctx: RequestContext, request: Any) -> Any:
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


async def handle_offset_commit(ctx: RequestContext, request: Any) -> Any:
    offsets: dict[tuple[str, int], tuple[int, int, str | None]] = {}
    for topic in request.topics:
        for p in topic.partitions:
            epoch = getattr(p, "committed_leader_epoch", -1)
            offsets[(topic.name, p.partition_index)] = (
                p.committed_offset,
                epoch,
                p.committed_metadata,
            )
    errors = await ctx.broker.groups.commit_offsets(
        request.group_id,
        request.generation_id_or_member_epoch,
        request.member_id,
        getattr(request, "group_instance_id", None),
        offsets,
    )
    return ctx.response(
        throttle_time=0,
        topics=[
            {
                "name": topic.name,
                "partitions": [
                    {
                        "partition_index": p.partition_index,
                        "error_code": errors[(topic.name, p.partition_index)],
                    }
                    for p in topic.partitions
                ],
            }
            for topic in request.topics
        ],
    )


def _fetch_group(
    coordinator: GroupCoordinator,
    group_id: str,
    topics: Any,
    require_stable: bool,
) -> list[dict[str, Any]]:
    """One group's committed offsets (errors per partition: the request has no group-level
    failure this one coordinator can produce)."""
    wanted = None if topics is None else [(t.name, list(t.partition_indexes)) for t in topics]
    fetched = coordinator.fetch_offsets(group_id, wanted, require_stable)
    return [
        {
            "name": name,
            "partitions": [
                {
                    "partition_index": row.partition,
                    "committed_offset": row.offset,
                    "committed_leader_epoch": row.leader_epoch,
                    "metadata": row.metadata,
                    "error_code": row.error,
                }
                for row in rows
            ],
        }
        for name, rows in fetched
    ]


def handle_offset_fetch(ctx: RequestContext, request: Any) -> Any:
    coordinator = ctx.broker.groups
    require_stable = bool(getattr(request, "require_stable", False))
    if ctx.version >= 8:
        groups = []
        for group in request.groups:
            topics = _fetch_group(coordinator, group.group_id, group.topics, require_stable)
            groups.append(
                {"group_id": group.group_id, "topics": topics, "error_code": ErrorCode.none}
            )
        return ctx.response(throttle_time=0, groups=groups)
    # v1 cannot express "all topics" (null topics arrive as an empty list there).
    topics = _fetch_group(coordinator, request.group_id, request.topics, require_stable)
    return ctx.response(throttle_time=0, topics=topics, error_code=ErrorCode.none)


# --- admin --------------------------------------------------------------------------------------


def handle_describe_groups(ctx: RequestContext, request: Any) -> Any:
    coordinator = ctx.broker.groups
    include_ops = bool(getattr(request, "include_authorized_operations", False))
    ops = GROUP_AUTHORIZED_OPERATIONS if include_ops else AUTHORIZED_OPERATIONS_OMITTED
    groups = []
    # Each group id once, in request order. Kafka answers a repeated id again; clients never
    # repeat one (the Java admin and librdkafka build the list from a set), and 1M copies of ""
    # cost 9 s of encoding on the event loop for nothing.
    for group_id in dict.fromkeys(request.groups):
        summary = coordinator.describe_group(group_id)
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
    errors = await ctx.broker.groups.delete_groups(names)
    return ctx.response(
        throttle_time=0,
        results=[
            {"group_id": name, "error_code": error}
            for name, error in zip(names, errors, strict=True)
        ],
    )


async def handle_offset_delete(ctx: RequestContext, request: Any) -> Any:
    wanted = [(t.name, p.partition_index) for t in request.topics for p in t.partitions]
    top, errors = await ctx.broker.groups.delete_offsets(request.group_id, wanted)
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
