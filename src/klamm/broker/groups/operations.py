"""Offset and admin operations of the group coordinator: OffsetCommit, OffsetFetch,
DescribeGroups, ListGroups, DeleteGroups, OffsetDelete, offsets retention, and the
transactional-commit hooks.

Each operation validates against the coordinator's state without touching it, builds the records
that express the change, makes them durable, and only then applies them through
`GroupCoordinator.replay` — the same path recovery takes (STYLE.md 5, 6).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from klamm.broker.groups.coordinator import append_error
from klamm.broker.groups.group import ClassicGroup
from klamm.broker.groups.records import GroupKey, Key, OffsetKey, OffsetValue, Value
from klamm.broker.groups.state import GroupState
from klamm.protocol.errors import ErrorCode

if TYPE_CHECKING:
    from klamm.broker.groups.coordinator import GroupCoordinator

S = GroupState
TopicPartition = tuple[str, int]
# (offset, leader epoch, metadata) as a client commits it.
Commit = tuple[int, int, str | None]
# Kafka's offset.metadata.max.bytes.
OFFSET_METADATA_MAX_BYTES = 4096
# DescribeGroups authorized_operations when the client asks (DESCRIBE, DELETE, READ bits of
# Kafka's AclOperation codes 8, 6, 3; no authorizer means everything is allowed). When it does
# not ask, Kafka sends INT32_MIN ("not provided"), which kafka-python checks.
GROUP_AUTHORIZED_OPERATIONS = (1 << 3) | (1 << 6) | (1 << 8)
AUTHORIZED_OPERATIONS_OMITTED = -(2**31)


def _topic_error(coord: GroupCoordinator, topic: str, partition: int) -> ErrorCode:
    info = coord.broker.topic(topic)
    if info is None or not 0 <= partition < info.num_partitions:
        return ErrorCode.unknown_topic_or_partition
    return ErrorCode.none


def _validate_commit(
    coord: GroupCoordinator,
    group: ClassicGroup,
    generation: int,
    member_id: str,
    instance_id: str | None,
    *,
    transactional: bool = False,
) -> ErrorCode:
    """Kafka ClassicGroup.validateOffsetCommit."""
    if group.is_(S.DEAD):
        return ErrorCode.coordinator_not_available
    if generation < 0 and group.is_(S.EMPTY):
        return ErrorCode.none  # a "simple" consumer (assign()) or an admin committing
    if generation >= 0 or member_id or instance_id is not None:
        error = coord._validate_member(group, member_id, instance_id)
        if error:
            return error
        if generation != group.generation:
            return ErrorCode.illegal_generation
    elif not transactional:
        # No member and no generation: commits are accepted only while the group is empty.
        return ErrorCode.unknown_member_id
    if not transactional and group.is_(S.COMPLETING_REBALANCE):
        return ErrorCode.rebalance_in_progress
    return ErrorCode.none


def _build_offsets(
    coord: GroupCoordinator, group_id: str, offsets: dict[TopicPartition, Commit]
) -> tuple[dict[TopicPartition, ErrorCode], list[tuple[Key, Value | None]]]:
    now = coord.now_ms()
    errors: dict[TopicPartition, ErrorCode] = {}
    records: list[tuple[Key, Value | None]] = []
    for (topic, partition), (offset, epoch, metadata) in offsets.items():
        error = _topic_error(coord, topic, partition)
        if not error and len((metadata or "").encode()) > OFFSET_METADATA_MAX_BYTES:
            error = ErrorCode.offset_metadata_too_large
        errors[(topic, partition)] = error
        if not error:
            value = OffsetValue(offset, epoch, metadata or "", now)
            records.append((OffsetKey(group_id, topic, partition), value))
    return errors, records


async def commit_offsets(
    coord: GroupCoordinator,
    group_id: str,
    generation: int,
    member_id: str,
    instance_id: str | None,
    offsets: dict[TopicPartition, Commit],
) -> dict[TopicPartition, ErrorCode]:
    group = coord.groups.get(group_id)
    if group is None:
        if generation >= 0:
            # A member of a group we do not know (expired, deleted): its generation is stale.
            return dict.fromkeys(offsets, ErrorCode.illegal_generation)
        group = ClassicGroup(group_id, state_timestamp=coord.now_ms())
        coord.groups[group_id] = group
    error = _validate_commit(coord, group, generation, member_id, instance_id)
    if error:
        coord._maybe_drop_empty(group)
        return dict.fromkeys(offsets, error)
    member = group.members.get(member_id)
    if member is not None:
        coord._schedule_heartbeat(group, member)  # a commit proves the member is alive
    errors, records = _build_offsets(coord, group_id, offsets)
    if records:
        try:
            await coord.persist(records)
        except Exception as exc:
            return dict.fromkeys(offsets, append_error(exc, f"group {group_id}: OffsetCommit"))
        for key, value in records:
            coord.replay(key, value)
    coord._maybe_drop_empty(group)
    return errors


@dataclass(slots=True)
class FetchedOffset:
    partition: int
    offset: int = -1
    leader_epoch: int = -1
    metadata: str = ""  # Kafka's NO_METADATA
    error: ErrorCode = ErrorCode.none


def fetch_offsets(
    coord: GroupCoordinator,
    group_id: str,
    topics: list[tuple[str, list[int]]] | None,
    require_stable: bool,
) -> list[tuple[str, list[FetchedOffset]]]:
    """Committed offsets of `topics` (None: every partition the group has committed)."""
    committed = coord.offsets.of_group(group_id)
    if topics is None:
        by_topic: dict[str, list[int]] = {}
        for topic, partition in sorted(committed):
            by_topic.setdefault(topic, []).append(partition)
        topics = list(by_topic.items())
    result: list[tuple[str, list[FetchedOffset]]] = []
    for topic, partitions in topics:
        rows: list[FetchedOffset] = []
        for partition in partitions:
            tp = (topic, partition)
            if require_stable and coord.offsets.is_pending(group_id, tp):
                rows.append(FetchedOffset(partition, error=ErrorCode.unstable_offset_commit))
                continue
            value = committed.get(tp)
            if value is None:
                rows.append(FetchedOffset(partition))
            else:
                rows.append(
                    FetchedOffset(partition, value.offset, value.leader_epoch, value.metadata)
                )
        result.append((topic, rows))
    return result


# --- describe / list / delete -------------------------------------------------------------------


@dataclass(slots=True)
class GroupSummary:
    group_id: str
    state: str
    protocol_type: str
    protocol: str
    members: list[dict[str, object]] = field(default_factory=list)


def describe_group(coord: GroupCoordinator, group_id: str) -> GroupSummary:
    group = coord.groups.get(group_id)
    if group is None:
        return GroupSummary(group_id, S.DEAD.value, "", "")
    stable = group.is_(S.STABLE)
    members: list[dict[str, object]] = [
        {
            "member_id": m.member_id,
            "group_instance_id": m.group_instance_id,
            "client_id": m.client_id,
            "client_host": m.client_host,
            # Kafka shows metadata and assignment only once the generation is Stable.
            "member_metadata": m.metadata(group.protocol) if stable else b"",
            "member_assignment": m.assignment if stable else b"",
        }
        for m in group.members.values()
    ]
    return GroupSummary(
        group_id,
        group.state.value,
        group.protocol_type or "",
        (group.protocol or "") if stable else "",
        members,
    )


def list_groups(coord: GroupCoordinator, states: list[str]) -> list[tuple[str, str, str]]:
    wanted = {s.lower() for s in states}
    return [
        (group.group_id, group.protocol_type or "", group.state.value)
        for group in coord.groups.values()
        if not group.is_(S.DEAD) and (not wanted or group.state.value.lower() in wanted)
    ]


async def delete_groups(coord: GroupCoordinator, group_ids: list[str]) -> list[ErrorCode]:
    results: list[ErrorCode] = []
    for group_id in group_ids:
        group = coord.groups.get(group_id)
        if not group_id:
            results.append(ErrorCode.invalid_group_id)
        elif group is None or group.is_(S.DEAD):
            results.append(ErrorCode.group_id_not_found)
        elif not group.is_(S.EMPTY) or group.pending_members:
            results.append(ErrorCode.non_empty_group)
        else:
            records: list[tuple[Key, Value | None]] = [
                (OffsetKey(group_id, t, p), None) for (t, p) in coord.offsets.of_group(group_id)
            ]
            records.append((GroupKey(group_id), None))
            try:
                await coord.persist(records)
            except Exception as exc:
                results.append(append_error(exc, f"group {group_id}: DeleteGroups"))
                continue
            for key, value in records:
                coord.replay(key, value)
            if group.is_(S.EMPTY):
                group.transition(S.DEAD, coord.now_ms())
            coord.groups.pop(group_id, None)
            results.append(ErrorCode.none)
    return results


async def delete_offsets(
    coord: GroupCoordinator, group_id: str, partitions: list[TopicPartition]
) -> tuple[ErrorCode, dict[TopicPartition, ErrorCode]]:
    """OffsetDelete: only for partitions of topics the group is not consuming."""
    group = coord.groups.get(group_id)
    if not group_id:
        return ErrorCode.invalid_group_id, {}
    if group is None or group.is_(S.DEAD):
        return ErrorCode.group_id_not_found, {}
    subscribed: frozenset[str] | None = frozenset()
    if not group.is_(S.EMPTY):
        subscribed = group.subscribed_topics()
        if subscribed is None:
            return ErrorCode.non_empty_group, {}
    errors: dict[TopicPartition, ErrorCode] = {}
    records: list[tuple[Key, Value | None]] = []
    committed = coord.offsets.of_group(group_id)
    for topic, partition in partitions:
        error = _topic_error(coord, topic, partition)
        if not error and topic in (subscribed or ()):
            error = ErrorCode.group_subscribed_to_topic
        errors[(topic, partition)] = error
        if not error and (topic, partition) in committed:
            records.append((OffsetKey(group_id, topic, partition), None))
    if records:
        try:
            await coord.persist(records)
        except Exception as exc:
            # Kafka answers a failed append of OffsetDelete at the top level.
            return append_error(exc, f"group {group_id}: OffsetDelete"), {}
        for key, value in records:
            coord.replay(key, value)
    return ErrorCode.none, errors


# --- transactional offset commits ---------------------------------------------------------------


async def prepare_txn_offsets(
    coord: GroupCoordinator,
    group_id: str,
    producer_id: int,
    producer_epoch: int,
    offsets: dict[TopicPartition, Commit],
    generation: int = -1,
    member_id: str = "",
    instance_id: str | None = None,
) -> dict[TopicPartition, ErrorCode]:
    group = coord.groups.get(group_id)
    if group is not None and (generation >= 0 or member_id or instance_id is not None):
        # TxnOffsetCommit v3+ carries the member (KIP-447): fence zombies of old generations.
        error = _validate_commit(
            coord, group, generation, member_id, instance_id, transactional=True
        )
        if error:
            return dict.fromkeys(offsets, error)
    errors, records = _build_offsets(coord, group_id, offsets)
    if records:
        try:
            await coord.persist(records, producer_id=producer_id, producer_epoch=producer_epoch)
        except Exception as exc:
            error = append_error(exc, f"group {group_id}: TxnOffsetCommit")
            return dict.fromkeys(offsets, error)
        for key, value in records:
            coord.replay(key, value, producer_id)
        coord.groups.setdefault(group_id, ClassicGroup(group_id, state_timestamp=coord.now_ms()))
    return errors


async def complete_txn_offsets(
    coord: GroupCoordinator, producer_id: int, commit: bool, producer_epoch: int = -1
) -> None:
    if producer_id not in coord.offsets.pending_producers():
        return
    await coord.persist_marker(producer_id, producer_epoch, commit)
    coord.offsets.complete(producer_id, commit)


async def expire_offsets(coord: GroupCoordinator) -> int:
    """Delete offsets past retention, and groups left Empty with none (Kafka
    cleanupGroupMetadata). Returns how many offsets were removed."""
    now = coord.now_ms()
    retention = coord.config.offsets_retention_ms
    removed = 0
    for group_id in list(coord.groups):
        group = coord.groups[group_id]
        if coord.offsets.has_pending(group_id):
            continue
        if group.is_(S.STABLE):
            subscribed = group.subscribed_topics()
            if subscribed is None:
                continue  # cannot tell which topics it still reads: keep everything
            keys = coord.offsets.expired(group_id, now, retention, None, subscribed)
        elif group.is_(S.EMPTY):
            empty_since = group.state_timestamp if group.protocol_type else None
            keys = coord.offsets.expired(group_id, now, retention, empty_since)
        else:
            continue
        records: list[tuple[Key, Value | None]] = [(k, None) for k in keys]
        remaining = len(coord.offsets.of_group(group_id)) - len(keys)
        drop_group = remaining == 0 and not group.members and not group.pending_members
        if drop_group:
            records.append((GroupKey(group_id), None))
        if not records:
            continue
        await coord.persist(records)
        for key in keys:
            coord.offsets.apply(key, None)
        removed += len(keys)
        if drop_group and coord.groups.get(group_id) is group and group.is_(S.EMPTY):
            group.transition(S.DEAD, now)
            del coord.groups[group_id]
    return removed
