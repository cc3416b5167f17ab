"""The group coordinator: the entry points of every group operation (membership, offsets, group
admin, offsets retention, the transaction coordinator's hooks), over the `__consumer_offsets`
log that makes them survive restarts.

Owners (Kafka's GroupCoordinatorShard, GroupMetadataManager, OffsetMetadataManager): this class
is the shard; `membership.Membership` owns the groups and their membership (join, sync,
heartbeat, leave, timers); `offsets.OffsetManager` owns committed offsets; the
coordinator runtime (`broker/coordinator_runtime.py`) owns the log: it appends records, waits
until they are durable, and replays them into memory through `replay` below, which dispatches
each record to its owner; at start-up it replays the whole log the same way, skipping what it
cannot read. A failed write raises `CoordinatorUnavailable`, answered NOT_COORDINATOR.

Flow of a change: validate against the in-memory state, build the records that express it
without touching the state, make them durable, then apply them (build -> persist -> replay;
STYLE.md 5, 6): a write the disk refuses changes nothing. Offset records are applied by replay.
Group metadata records are snapshots of a group (see membership.py); live, the change they
snapshot is applied by Membership once the snapshot is durable.

Concurrency: everything runs on the broker's event loop; awaits happen only around the log
append, and each continuation re-checks the group's generation and state.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from klamm.broker.coordinator_runtime import (
    CoordinatorRuntime,
    PartitionLogWriter,
)
from klamm.broker.groups.group import ClassicGroup
from klamm.broker.groups.membership import INITIAL_QUIET_MS as INITIAL_QUIET_MS
from klamm.broker.groups.membership import JoinRequest as JoinRequest
from klamm.broker.groups.membership import JoinResult as JoinResult
from klamm.broker.groups.membership import LoopScheduler, Membership, Scheduler, Timer
from klamm.broker.groups.membership import SyncResult as SyncResult
from klamm.broker.groups.membership import append_error as append_error
from klamm.broker.groups.offsets import Commit, FetchedOffset, OffsetManager, TopicPartition
from klamm.broker.groups.records import (
    GroupKey,
    GroupRecord,
    GroupRecordSerde,
    GroupValue,
    OffsetKey,
    OffsetValue,
)
from klamm.broker.groups.state import GroupState
from klamm.protocol.errors import ErrorCode

if TYPE_CHECKING:
    from klamm.broker.interfaces import CoordinatorHost

log = logging.getLogger("klamm.broker.groups")

S = GroupState
OFFSETS_TOPIC = "__consumer_offsets"
# One partition: a single node coordinates every group, and one log keeps replay simple.
OFFSETS_TOPIC_CONFIG = {"cleanup.policy": "compact", "segment.bytes": str(100 * 1024 * 1024)}


@dataclass(slots=True)
class GroupSummary:
    group_id: str
    state: str
    protocol_type: str
    protocol: str
    members: list[dict[str, object]] = field(default_factory=list)


def _partition_count(broker: CoordinatorHost) -> Callable[[str], int | None]:
    def count(topic: str) -> int | None:
        info = broker.topic(topic)
        return None if info is None else int(info.num_partitions)

    return count


def _cancel(timer: Timer | None) -> None:
    if timer is not None:
        timer.cancel()


class GroupCoordinator:
    name = "groups"

    def __init__(
        self,
        broker: CoordinatorHost,
        scheduler: Scheduler | None = None,
        initial_quiet_ms: int = INITIAL_QUIET_MS,
    ) -> None:
        self.broker = broker
        self.config = broker.config
        self.now_ms = broker.now_ms
        self.scheduler: Scheduler = scheduler or LoopScheduler()
        # Committed offsets and group membership have one owner each (Kafka's
        # OffsetMetadataManager and GroupMetadataManager); this class is their shard.
        self.offsets = OffsetManager(_partition_count(broker), broker.now_ms)
        self.membership = Membership(
            broker.config, broker.now_ms, self.scheduler, initial_quiet_ms,
            write_snapshot=self._write_snapshot, spawn=self._spawn,
            has_offsets=self.offsets.has_offsets,
        )  # fmt: skip
        self._runtime: CoordinatorRuntime[GroupRecord] | None = None
        self._expiry_timer: Timer | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.broker.topic(OFFSETS_TOPIC) is None:
            self.broker.create_topic(OFFSETS_TOPIC, 1, dict(OFFSETS_TOPIC_CONFIG), internal=True)
        partition = self.broker.partition(OFFSETS_TOPIC, 0)
        assert partition is not None, "just created"
        self._runtime = CoordinatorRuntime(
            PartitionLogWriter(partition, self.broker.durability), GroupRecordSerde(),
            self.replay, now_ms=self.now_ms, logger=log,
            replay_end_txn=self.offsets.replay_end_txn,
        )  # fmt: skip
        await self._runtime.load()
        self.membership.loaded()
        self._schedule_expiry()
        log.info("group coordinator loaded %d groups from %s", len(self.groups), OFFSETS_TOPIC)

    async def stop(self) -> None:
        _cancel(self._expiry_timer)
        self.membership.stop()
        for task in list(self._tasks):
            await asyncio.gather(task, return_exceptions=True)

    # --- persistence and replay -----------------------------------------------------------------

    async def _write(
        self,
        records: Sequence[GroupRecord],
        *,
        replay: bool = True,
        producer_id: int = -1,
        producer_epoch: int = -1,
    ) -> None:
        """Make records durable in __consumer_offsets, then (unless `replay` is False: a group
        snapshot whose change the caller applies) replay them. CoordinatorUnavailable if the log
        refuses them, nothing applied."""
        assert self._runtime is not None, "start() loads the log first"
        await self._runtime.write(
            records, replay=replay, producer_id=producer_id, producer_epoch=producer_epoch
        )

    async def _write_snapshot(self, group_id: str, value: GroupValue) -> None:
        await self._write([(GroupKey(group_id), value)], replay=False)

    def replay(self, record: GroupRecord, producer_id: int | None = None) -> None:
        """Apply one durable record to the in-memory state, dispatched to its owner (start-up,
        and live writes once durable). `producer_id`: the record's transactional producer."""
        key, value = record
        if isinstance(key, OffsetKey):
            assert value is None or isinstance(value, OffsetValue)
            self.offsets.replay(key, value, producer_id)
            if producer_id is None and value is not None:
                self.membership.get_or_create(key.group)
            return
        assert value is None or isinstance(value, GroupValue)
        self.membership.replay(key.group, value)

    @property
    def groups(self) -> dict[str, ClassicGroup]:
        """The groups, to read (Membership changes them)."""
        return self.membership.groups

    # --- membership (owned by self.membership) -------------------------------------------------

    async def join_group(self, req: JoinRequest) -> JoinResult:
        return await self.membership.join_group(req)

    async def sync_group(
        self,
        group_id: str,
        generation: int,
        member_id: str,
        instance_id: str | None,
        protocol_type: str | None,
        protocol: str | None,
        assignments: dict[str, bytes],
    ) -> SyncResult:
        return await self.membership.sync_group(
            group_id, generation, member_id, instance_id, protocol_type, protocol, assignments
        )

    def heartbeat(
        self, group_id: str, generation: int, member_id: str, instance_id: str | None
    ) -> ErrorCode:
        return self.membership.heartbeat(group_id, generation, member_id, instance_id)

    def leave_group(
        self, group_id: str, leaving: list[tuple[str, str | None]]
    ) -> tuple[ErrorCode, list[ErrorCode]]:
        return self.membership.leave_group(group_id, leaving)

    # --- background writes ---------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, object]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            # Nobody waits on these writes (an emptied group, offsets retention): a full disk
            # is one warning line, a bug a traceback. Retention retries at its next round.
            append_error(exc, "background group metadata write")

    # --- offsets retention ----------------------------------------------------------------------

    def _schedule_expiry(self) -> None:
        # Kafka's offsets.retention.check.interval.ms (10 min), or faster for short retentions.
        interval = max(min(600_000, self.config.offsets_retention_ms), 1_000)

        def fire() -> None:
            self._spawn(self.expire_offsets())
            self._schedule_expiry()

        self._expiry_timer = self.scheduler.call_later(interval, fire)

    async def expire_offsets(self) -> int:
        """Delete offsets past retention, and groups left Empty with none (Kafka
        cleanupGroupMetadata). Returns how many offsets were removed."""
        now = self.now_ms()
        retention = self.config.offsets_retention_ms
        removed = 0
        for group_id in list(self.groups):
            group = self.groups[group_id]
            if self.offsets.has_pending(group_id):
                continue
            if group.is_(S.STABLE):
                subscribed = group.subscribed_topics()
                if subscribed is None:
                    continue  # cannot tell which topics it still reads: keep everything
                keys = self.offsets.expired(group_id, now, retention, None, subscribed)
            elif group.is_(S.EMPTY):
                empty_since = group.state_timestamp if group.protocol_type else None
                keys = self.offsets.expired(group_id, now, retention, empty_since)
            else:
                continue
            records: list[GroupRecord] = [(k, None) for k in keys]
            remaining = len(self.offsets.of_group(group_id)) - len(keys)
            drop_group = remaining == 0 and not group.members and not group.pending_members
            if drop_group:
                records.append((GroupKey(group_id), None))
            if not records:
                continue
            # Replayed here rather than by the runtime: the group is dropped only if it is still
            # the Empty one decided on (a member may have joined while the write waited).
            await self._write(records, replay=False)
            for key in keys:
                self.offsets.replay(key, None, None)
            removed += len(keys)
            if drop_group and self.groups.get(group_id) is group and group.is_(S.EMPTY):
                self.membership.remove(group)
        return removed

    # --- offsets (owned by self.offsets) ---------------------------------------------------------

    async def commit_offsets(
        self,
        group_id: str,
        generation: int,
        member_id: str,
        instance_id: str | None,
        offsets: dict[TopicPartition, Commit],
    ) -> dict[TopicPartition, ErrorCode]:
        """OffsetCommit: an error per partition."""
        group = self.groups.get(group_id)
        if group is None:
            if generation >= 0:
                # A member of a group we do not know (expired, deleted): its generation is stale.
                return dict.fromkeys(offsets, ErrorCode.illegal_generation)
            group = self.membership.get_or_create(group_id)
        error = group.validate_offset_commit(
            generation, member_id, instance_id, transactional=False
        )
        if error:
            self.membership.drop_if_unused(group)
            return dict.fromkeys(offsets, error)
        member = group.members.get(member_id)
        if member is not None:
            self.membership.schedule_heartbeat(group, member)  # a commit proves the member is alive
        errors, records = self.offsets.commit_records(group_id, offsets)
        if records:
            try:
                await self._write(records)
            except Exception as exc:
                return dict.fromkeys(offsets, append_error(exc, f"group {group_id}: OffsetCommit"))
        self.membership.drop_if_unused(group)
        return errors

    def fetch_offsets(
        self, group_id: str, topics: list[tuple[str, list[int]]] | None, require_stable: bool
    ) -> list[tuple[str, list[FetchedOffset]]]:
        """OffsetFetch (`topics` None: every partition the group has committed)."""
        return self.offsets.fetch(group_id, topics, require_stable)

    async def delete_offsets(
        self, group_id: str, partitions: list[TopicPartition]
    ) -> tuple[ErrorCode, dict[TopicPartition, ErrorCode]]:
        """OffsetDelete: only for partitions of topics the group is not consuming."""
        group = self.groups.get(group_id)
        if not group_id:
            return ErrorCode.invalid_group_id, {}
        if group is None or group.is_(S.DEAD):
            return ErrorCode.group_id_not_found, {}
        subscribed: frozenset[str] | None = frozenset()
        if not group.is_(S.EMPTY):
            subscribed = group.subscribed_topics()
        if subscribed is None:
            return ErrorCode.non_empty_group, {}
        errors, records = self.offsets.delete_records(group_id, partitions, subscribed)
        if records:
            try:
                await self._write(records)
            except Exception as exc:
                # Kafka answers a failed append of OffsetDelete at the top level.
                return append_error(exc, f"group {group_id}: OffsetDelete"), {}
        return ErrorCode.none, errors

    # --- transactional offset commits (called by the transaction coordinator) -------------------

    async def prepare_txn_offsets(
        self,
        group_id: str,
        producer_id: int,
        producer_epoch: int,
        offsets: dict[TopicPartition, Commit],
        *,
        generation: int = -1,
        member_id: str = "",
        group_instance_id: str | None = None,
    ) -> dict[TopicPartition, ErrorCode]:
        """TxnOffsetCommit: store offsets as pending until `complete_txn_offsets`. `offsets`
        maps (topic, partition) to (offset, leader epoch, metadata)."""
        group = self.groups.get(group_id)
        if group is not None and (generation >= 0 or member_id or group_instance_id is not None):
            # TxnOffsetCommit v3+ carries the member (KIP-447): fence zombies of old generations.
            error = group.validate_offset_commit(
                generation, member_id, group_instance_id, transactional=True
            )
            if error:
                return dict.fromkeys(offsets, error)
        # Kafka checks only that the topic exists here: a partition index the topic lacks is
        # committed as asked. Refusing it made kafka-python retry the (retriable) error until
        # its transaction timed out and it was fenced.
        errors, records = self.offsets.commit_records(group_id, offsets, topic_only=True)
        if records:
            try:
                await self._write(records, producer_id=producer_id, producer_epoch=producer_epoch)
            except Exception as exc:
                error = append_error(exc, f"group {group_id}: TxnOffsetCommit")
                return dict.fromkeys(offsets, error)
            self.membership.get_or_create(group_id)
        return errors

    async def complete_txn_offsets(
        self, producer_id: int, commit: bool, producer_epoch: int = -1
    ) -> None:
        """The transaction ended: make its offsets visible (commit) or drop them (abort); the
        marker is durable in __consumer_offsets before this returns (CoordinatorUnavailable if
        it cannot be written)."""
        if producer_id not in self.offsets.pending_producers():
            return
        assert self._runtime is not None, "start() loads the log first"
        await self._runtime.write_end_txn(producer_id, producer_epoch, commit)

    def pending_txn_producers(self) -> list[int]:
        """Producers with transactional offsets still pending (their transaction not ended)."""
        return self.offsets.pending_producers()

    # --- describe / list / delete -----------------------------------------------------------------

    def describe_group(self, group_id: str) -> GroupSummary:
        group = self.groups.get(group_id)
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

    def list_groups(self, states: list[str]) -> list[tuple[str, str, str]]:
        wanted = {s.lower() for s in states}
        return [
            (group.group_id, group.protocol_type or "", group.state.value)
            for group in self.groups.values()
            if not group.is_(S.DEAD) and (not wanted or group.state.value.lower() in wanted)
        ]

    async def delete_groups(self, group_ids: list[str]) -> list[ErrorCode]:
        results: list[ErrorCode] = []
        for group_id in group_ids:
            group = self.groups.get(group_id)
            if not group_id:
                results.append(ErrorCode.invalid_group_id)
            elif group is None or group.is_(S.DEAD):
                results.append(ErrorCode.group_id_not_found)
            elif not group.is_(S.EMPTY) or group.pending_members:
                results.append(ErrorCode.non_empty_group)
            else:
                records = self.offsets.group_tombstones(group_id)
                records.append((GroupKey(group_id), None))
                try:
                    await self._write(records)
                except Exception as exc:
                    results.append(append_error(exc, f"group {group_id}: DeleteGroups"))
                    continue
                self.membership.remove(group)
                results.append(ErrorCode.none)
        return results
