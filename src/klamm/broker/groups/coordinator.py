"""The group coordinator: classic-protocol membership (join, sync, heartbeat, leave), its timers,
and the `__consumer_offsets` log that makes it survive restarts.

Flow of a request: the coordinator validates against in-memory state, mutates it, and when the
change must survive a crash it appends records to `__consumer_offsets` and waits for the fsync
(`broker.durability.appended`) before answering. At start-up `start()` reads that log from the
beginning and `replay`s every record, so offsets take the same path live and at recovery. Group
metadata records are snapshots of a group written when a generation's assignment is fixed (leader
SyncGroup), when a static member is replaced, and when a group empties; a group loaded from one is
Stable with its members, each of whom must heartbeat within its session timeout to stay.

First-join latency (why not Kafka's fixed 3 s). Kafka holds the first join phase of an Empty group
for group.initial.rebalance.delay.ms (3 s, extended while members keep arriving) so that
consumers started together land in one generation instead of several. We keep that ceiling but
end the phase early once the group is *complete*: every member known to the coordinator has
joined (including ids handed out with MEMBER_ID_REQUIRED whose owners have not come back) and no
new member has arrived for `initial_quiet_ms` (200 ms, several times the gap between consumers
started by one process or deployment wave on one machine). A lone consumer therefore gets its
assignment ~200 ms after joining; a burst of consumers still lands in one generation; a member
that arrives later than the quiet window only costs one ordinary rebalance, as in Kafka.

Membership operations are in this module; offset and admin operations, offsets retention
included, in `operations.py`.
Concurrency: everything runs on the broker's event loop; awaits happen only around the log
append, and each continuation re-checks the group's generation and state.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from klamm.broker.groups.group import ClassicGroup, Member
from klamm.broker.groups.offsets import OffsetStore
from klamm.broker.groups.records import (
    GroupKey,
    Key,
    OffsetKey,
    RecordFormatError,
    Value,
    decode_key,
    decode_value,
    encode_key,
    encode_value,
)
from klamm.broker.groups.state import CAN_REBALANCE, GroupState
from klamm.protocol.errors import ErrorCode, InvalidRecordBatch
from klamm.protocol.record_batch import (
    CONTROL_COMMIT,
    Record,
    RecordBatch,
    build_batch,
    build_control_batch,
    control_type,
    decode_batch,
)
from klamm.storage.errors import StorageError

if TYPE_CHECKING:
    from klamm.broker.node import Broker

log = logging.getLogger("klamm.broker.groups")

S = GroupState
OFFSETS_TOPIC = "__consumer_offsets"
# One partition: a single node coordinates every group, and one log keeps replay simple.
OFFSETS_TOPIC_CONFIG = {"cleanup.policy": "compact", "segment.bytes": str(100 * 1024 * 1024)}
# See the module docstring.
INITIAL_QUIET_MS = 200
# Kafka's group.classic.new.member.join.timeout: a new member that got its join answer but never
# comes back is dropped after this long rather than its session timeout.
NEW_MEMBER_JOIN_TIMEOUT_MS = 300_000


class Timer(Protocol):
    def cancel(self) -> None: ...


class Scheduler(Protocol):
    """Timers in milliseconds; tests inject a fake that advances time by hand."""

    def call_later(self, delay_ms: int, callback: Callable[[], None]) -> Timer: ...


class LoopScheduler:
    def call_later(self, delay_ms: int, callback: Callable[[], None]) -> Timer:
        return asyncio.get_running_loop().call_later(max(delay_ms, 0) / 1000, callback)


@dataclass(slots=True)
class JoinRequest:
    group_id: str
    member_id: str
    group_instance_id: str | None
    protocol_type: str
    protocols: list[tuple[str, bytes]]
    session_timeout_ms: int
    rebalance_timeout_ms: int
    require_known_member_id: bool = True  # JoinGroup v4+ (KIP-394)
    client_id: str = ""
    client_host: str = ""


@dataclass(slots=True)
class JoinResult:
    error: ErrorCode
    member_id: str = ""
    generation: int = -1
    protocol_type: str | None = None
    protocol: str | None = None
    leader: str = ""
    members: list[tuple[str, str | None, bytes]] = field(default_factory=list)


@dataclass(slots=True)
class SyncResult:
    error: ErrorCode
    assignment: bytes = b""
    protocol_type: str | None = None
    protocol: str | None = None


def append_error(exc: BaseException, what: str) -> ErrorCode:
    """The error a client gets when a write to __consumer_offsets failed, as Kafka's group
    coordinator maps a failed append (GroupCoordinatorService, GroupMetadataManager): a failed
    disk (KAFKA_STORAGE_ERROR) or a closed log (NOT_LEADER_OR_FOLLOWER) is NOT_COORDINATOR, which
    every client treats as "look the coordinator up again and retry"; anything else is a bug,
    logged with its traceback, and UNKNOWN_SERVER_ERROR. Either way the connection stays up."""
    if isinstance(exc, StorageError):
        log.warning("%s: writing %s failed: %s", what, OFFSETS_TOPIC, exc)
        return ErrorCode.not_coordinator
    log.error("%s: writing %s failed", what, OFFSETS_TOPIC, exc_info=exc)
    return ErrorCode.unknown_server_error


def _cancel(timer: Timer | None) -> None:
    if timer is not None:
        timer.cancel()


def _resolve(future: asyncio.Future[Any] | None, value: Any) -> None:
    if future is not None and not future.done():
        future.set_result(value)


class GroupCoordinator:
    name = "groups"

    def __init__(
        self,
        broker: Broker,
        scheduler: Scheduler | None = None,
        initial_quiet_ms: int = INITIAL_QUIET_MS,
    ) -> None:
        self.broker = broker
        self.config = broker.config
        self.now_ms = broker.now_ms
        self.scheduler: Scheduler = scheduler or LoopScheduler()
        self.initial_quiet_ms = initial_quiet_ms
        self.groups: dict[str, ClassicGroup] = {}
        self.offsets = OffsetStore()
        self._partition: Any = None
        self._expiry_timer: Timer | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.broker.topic(OFFSETS_TOPIC) is None:
            self.broker.create_topic(OFFSETS_TOPIC, 1, dict(OFFSETS_TOPIC_CONFIG), internal=True)
        self._partition = self.broker.partition(OFFSETS_TOPIC, 0)
        plog = self._partition.log
        loaded = await asyncio.to_thread(lambda: list(plog.batches_from(plog.log_start_offset)))
        for header, data in loaded:
            self._replay_batch(header.base_offset, data)
        for group in self.groups.values():
            for member in group.members.values():
                self._schedule_heartbeat(group, member)
        self._schedule_expiry()
        log.info("group coordinator loaded %d groups from %s", len(self.groups), OFFSETS_TOPIC)

    async def stop(self) -> None:
        _cancel(self._expiry_timer)
        for group in self.groups.values():
            for timer in (group.join_timer, group.quiet_timer, group.sync_timer):
                _cancel(timer)
            for member in group.members.values():
                _cancel(member.heartbeat_timer)
                _resolve(member.join_future, JoinResult(ErrorCode.coordinator_not_available))
                _resolve(member.sync_future, SyncResult(ErrorCode.coordinator_not_available))
            for timer in group.pending_members.values():
                _cancel(timer)
        for task in list(self._tasks):
            await asyncio.gather(task, return_exceptions=True)

    # --- persistence and replay -----------------------------------------------------------------

    async def persist(
        self,
        records: list[tuple[Key, Value | None]],
        *,
        producer_id: int = -1,
        producer_epoch: int = -1,
    ) -> None:
        """Append records to __consumer_offsets and wait until they are durable."""
        now = self.now_ms()
        batch = RecordBatch(
            records=[
                Record(i, now, encode_key(key), encode_value(value))
                for i, (key, value) in enumerate(records)
            ],
            transactional=producer_id >= 0,
            producer_id=producer_id,
            producer_epoch=producer_epoch,
        )
        await self._append(build_batch(batch))

    async def persist_marker(self, producer_id: int, producer_epoch: int, commit: bool) -> None:
        marker = build_control_batch(
            commit=commit,
            producer_id=producer_id,
            producer_epoch=producer_epoch,
            coordinator_epoch=0,
            timestamp_ms=self.now_ms(),
        )
        await self._append(marker)

    async def _append(self, batch: bytes) -> None:
        self._partition.log.append(bytearray(batch))
        await self.broker.durability.appended(self._partition)

    def _replay_batch(self, base_offset: int, data: bytes) -> None:
        try:
            batch = decode_batch(data)
            if batch.control:
                self.offsets.complete(batch.producer_id, control_type(batch) == CONTROL_COMMIT)
                return
            producer = batch.producer_id if batch.transactional else None
            for record in batch.records:
                if record.key is None:
                    continue
                key = decode_key(record.key)
                self.replay(key, decode_value(key, record.value), producer)
        except (InvalidRecordBatch, RecordFormatError, ValueError) as exc:
            # A batch or record we cannot read must not stop the broker: skip it, loudly.
            log.error("skipping unreadable batch in %s-0 at offset %d: %s",
                      OFFSETS_TOPIC, base_offset, exc)  # fmt: skip

    def replay(self, key: Key, value: Value | None, producer_id: int | None = None) -> None:
        """Apply one durable record to the in-memory state (start-up and live offset commits)."""
        if isinstance(key, OffsetKey):
            if producer_id is not None:
                self.offsets.apply_pending(producer_id, key, value)  # type: ignore[arg-type]
                return
            self.offsets.apply(key, value)  # type: ignore[arg-type]
            if value is not None and key.group not in self.groups:
                self.groups[key.group] = ClassicGroup(key.group, state_timestamp=self.now_ms())
            return
        if value is None:
            self.groups.pop(key.group, None)
        else:
            self.groups[key.group] = ClassicGroup.from_value(key.group, value)  # type: ignore[arg-type]

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            # Nobody waits on these writes (an emptied group, offsets retention): a full disk
            # is one warning line, a bug a traceback. Retention retries at its next round.
            append_error(exc, "background group metadata write")

    def _store_group_soon(self, group: ClassicGroup) -> None:
        """Persist a group snapshot no request is waiting on (a group that emptied)."""
        self._spawn(self.persist([(GroupKey(group.group_id), group.to_value())]))

    # --- lookups --------------------------------------------------------------------------------

    def _validate_member(
        self, group: ClassicGroup, member_id: str, instance_id: str | None
    ) -> ErrorCode:
        """Kafka validateCurrentMember: the static instance's current id must be this one."""
        if instance_id is not None:
            current = group.static_members.get(instance_id)
            if current is None:
                return ErrorCode.unknown_member_id
            if current != member_id:
                return ErrorCode.fenced_instance_id
            return ErrorCode.none
        if member_id not in group.members:
            return ErrorCode.unknown_member_id
        return ErrorCode.none

    # --- JoinGroup ------------------------------------------------------------------------------

    async def join_group(self, req: JoinRequest) -> JoinResult:
        if not req.group_id:
            return JoinResult(ErrorCode.invalid_group_id, req.member_id)
        if not (
            self.config.group_min_session_timeout_ms
            <= req.session_timeout_ms
            <= self.config.group_max_session_timeout_ms
        ):
            return JoinResult(ErrorCode.invalid_session_timeout, req.member_id)
        group = self.groups.get(req.group_id)
        if group is None:
            if req.member_id:
                return JoinResult(ErrorCode.unknown_member_id, req.member_id)
            group = self.groups[req.group_id] = ClassicGroup(req.group_id)
            group.state_timestamp = self.now_ms()
        if group.is_(S.DEAD):
            # A group deleted under the member: the client rediscovers the coordinator.
            return JoinResult(ErrorCode.coordinator_not_available, req.member_id)
        if not group.supports(req.protocol_type, req.protocols):
            return JoinResult(ErrorCode.inconsistent_group_protocol, req.member_id)
        if not req.member_id:
            return await self._join_new_member(group, req)
        return await self._join_known_member(group, req)

    async def _join_new_member(self, group: ClassicGroup, req: JoinRequest) -> JoinResult:
        member_id = f"{req.client_id or 'member'}-{uuid.uuid4()}"
        if req.group_instance_id is not None:
            return await self._join_static_member(group, req, member_id)
        if req.require_known_member_id:
            # KIP-394: hand out the id; the member is pending until it joins with it, bounded by
            # its session timeout so that a client that never comes back does not block joins.
            timer = self.scheduler.call_later(
                req.session_timeout_ms, lambda: self._expire_pending(group, member_id)
            )
            group.pending_members[member_id] = timer
            return JoinResult(ErrorCode.member_id_required, member_id)
        return await self._add_member_and_rebalance(group, req, member_id)

    async def _join_static_member(
        self, group: ClassicGroup, req: JoinRequest, new_id: str
    ) -> JoinResult:
        instance = req.group_instance_id
        assert instance is not None
        old_id = group.static_members.get(instance)
        if old_id is None:
            return await self._add_member_and_rebalance(group, req, new_id)
        # A known instance restarted (KIP-345): it takes over its old membership under a new
        # id, and the old id is fenced.
        old = group.members[old_id]
        _resolve(old.join_future, JoinResult(ErrorCode.fenced_instance_id, old_id))
        _resolve(old.sync_future, SyncResult(ErrorCode.fenced_instance_id))
        old.join_future = old.sync_future = None
        member = group.replace_static(instance, old_id, new_id)
        member.session_timeout_ms = req.session_timeout_ms
        member.rebalance_timeout_ms = req.rebalance_timeout_ms
        member.client_id, member.client_host = req.client_id, req.client_host
        member.protocols = req.protocols
        if group.is_(S.STABLE) and group.protocol in {name for name, _ in req.protocols}:
            # Same generation, same assignment, no rebalance; a leader is told it leads but
            # gets no member list, so it does not reassign.
            self._schedule_heartbeat(group, member)
            generation = group.generation
            try:
                await self.persist([(GroupKey(group.group_id), group.to_value())])
            except Exception as exc:
                error = append_error(exc, f"group {group.group_id}: static member replacement")
                return JoinResult(error, new_id)
            if group.generation != generation or new_id not in group.members:
                return JoinResult(ErrorCode.rebalance_in_progress, new_id)
            return JoinResult(
                ErrorCode.none,
                member_id=new_id,
                generation=group.generation,
                protocol_type=group.protocol_type,
                protocol=group.protocol,
                leader=group.leader or "",
            )
        return await self._rebalance_and_wait(group, member, "static member rejoined")

    async def _join_known_member(self, group: ClassicGroup, req: JoinRequest) -> JoinResult:
        if req.member_id in group.pending_members:
            if req.group_instance_id is not None:
                return JoinResult(ErrorCode.unknown_member_id, req.member_id)
            _cancel(group.pending_members.pop(req.member_id))
            return await self._add_member_and_rebalance(group, req, req.member_id)
        error = self._validate_member(group, req.member_id, req.group_instance_id)
        if error:
            return JoinResult(error, req.member_id)
        member = group.members[req.member_id]
        if group.is_(S.PREPARING_REBALANCE):
            member.protocols = req.protocols
            return await self._wait_join(group, member)
        if group.is_(S.COMPLETING_REBALANCE):
            if member.matches(req.protocols):
                # The member lost our answer: give it again (the leader gets the members).
                return self._join_result(group, member)
            member.protocols = req.protocols
            return await self._rebalance_and_wait(group, member, "member changed metadata")
        if group.is_(S.STABLE):
            if group.leader == member.member_id or not member.matches(req.protocols):
                # A leader rejoining wants a new assignment (e.g. subscribed topics changed).
                member.protocols = req.protocols
                return await self._rebalance_and_wait(group, member, "leader or metadata")
            self._schedule_heartbeat(group, member)
            return self._join_result(group, member)
        return JoinResult(ErrorCode.unknown_member_id, req.member_id)

    async def _add_member_and_rebalance(
        self, group: ClassicGroup, req: JoinRequest, member_id: str
    ) -> JoinResult:
        member = Member(
            member_id=member_id,
            group_instance_id=req.group_instance_id,
            client_id=req.client_id,
            client_host=req.client_host,
            rebalance_timeout_ms=req.rebalance_timeout_ms,
            session_timeout_ms=req.session_timeout_ms,
            protocol_type=req.protocol_type,
            protocols=req.protocols,
        )
        group.add(member)
        group.new_member_added = True
        if group.initial_phase:
            self._restart_quiet_timer(group)
        return await self._rebalance_and_wait(group, member, f"new member {member_id}")

    async def _rebalance_and_wait(
        self, group: ClassicGroup, member: Member, reason: str
    ) -> JoinResult:
        future: asyncio.Future[JoinResult] = asyncio.get_running_loop().create_future()
        member.join_future = future
        if group.is_(*CAN_REBALANCE):
            self.prepare_rebalance(group, reason)
        self._maybe_complete_join(group)
        return await future

    async def _wait_join(self, group: ClassicGroup, member: Member) -> JoinResult:
        future: asyncio.Future[JoinResult] = asyncio.get_running_loop().create_future()
        _resolve(member.join_future, JoinResult(ErrorCode.rebalance_in_progress, member.member_id))
        member.join_future = future
        self._maybe_complete_join(group)
        return await future

    def _join_result(self, group: ClassicGroup, member: Member) -> JoinResult:
        is_leader = group.leader == member.member_id
        return JoinResult(
            ErrorCode.none,
            member_id=member.member_id,
            generation=group.generation,
            protocol_type=group.protocol_type,
            protocol=group.protocol,
            leader=group.leader or "",
            members=[
                (m.member_id, m.group_instance_id, m.metadata(group.protocol))
                for m in group.members.values()
            ]
            if is_leader
            else [],
        )

    # --- the join phase -------------------------------------------------------------------------

    def prepare_rebalance(self, group: ClassicGroup, reason: str) -> None:
        log.debug("group %s: rebalance (%s)", group.group_id, reason)
        if group.is_(S.COMPLETING_REBALANCE):
            # Kafka resetAndPropagateAssignmentError: parked SyncGroups learn the generation is
            # over and rejoin.
            for m in group.members.values():
                m.assignment = b""
                _resolve(m.sync_future, SyncResult(ErrorCode.rebalance_in_progress))
                m.sync_future = None
        _cancel(group.sync_timer)
        group.pending_sync.clear()
        initial = group.is_(S.EMPTY)
        group.transition(S.PREPARING_REBALANCE, self.now_ms())
        _cancel(group.join_timer)
        if initial:
            group.initial_phase = True
            group.new_member_added = False
            delay = self.config.group_initial_rebalance_delay_ms
            remaining = max(group.max_rebalance_timeout_ms() - delay, 0)
            self._schedule_initial_delay(group, delay, remaining)
            self._restart_quiet_timer(group)
        else:
            group.initial_phase = False
            group.join_timer = self.scheduler.call_later(
                group.max_rebalance_timeout_ms(), lambda: self._join_deadline(group)
            )

    def _schedule_initial_delay(self, group: ClassicGroup, delay: int, remaining: int) -> None:
        def fire() -> None:
            if not group.is_(S.PREPARING_REBALANCE) or not group.initial_phase:
                return
            if group.new_member_added and remaining > 0:
                # Kafka InitialDelayedJoin: members are still arriving, wait a little more.
                group.new_member_added = False
                step = min(self.config.group_initial_rebalance_delay_ms, remaining)
                self._schedule_initial_delay(group, step, remaining - step)
            else:
                self.complete_join(group)

        group.join_timer = self.scheduler.call_later(delay, fire)

    def _restart_quiet_timer(self, group: ClassicGroup) -> None:
        _cancel(group.quiet_timer)

        def fire() -> None:
            group.quiet_timer = None
            self._maybe_complete_join(group)

        group.quiet_timer = self.scheduler.call_later(self.initial_quiet_ms, fire)

    def _maybe_complete_join(self, group: ClassicGroup) -> None:
        if not group.is_(S.PREPARING_REBALANCE) or not group.has_all_members_joined():
            return
        if group.initial_phase and group.quiet_timer is not None:
            return  # the quiet window is still open; its timer calls back
        self.complete_join(group)

    def _join_deadline(self, group: ClassicGroup) -> None:
        if group.is_(S.PREPARING_REBALANCE):
            self.complete_join(group)

    def complete_join(self, group: ClassicGroup) -> None:
        """End the join phase (Kafka onCompleteJoin): drop members that did not rejoin, start
        the next generation, answer every parked JoinGroup."""
        _cancel(group.join_timer)
        _cancel(group.quiet_timer)
        group.join_timer = group.quiet_timer = None
        group.initial_phase = False
        for member in list(group.members.values()):
            if not member.awaiting_join:
                self._remove_member(group, member)
        now = self.now_ms()
        group.generation += 1
        if not group.members:
            group.protocol = None
            group.leader = None
            group.transition(S.EMPTY, now)
            self._store_group_soon(group)
            return
        group.elect_joined_leader()
        group.protocol = group.select_protocol()
        group.transition(S.COMPLETING_REBALANCE, now)
        group.pending_sync = set(group.members)
        for member in group.members.values():
            future, member.join_future = member.join_future, None
            _resolve(future, self._join_result(group, member))
            member.is_new = False
            self._schedule_heartbeat(group, member)
        generation = group.generation
        group.sync_timer = self.scheduler.call_later(
            group.max_rebalance_timeout_ms(), lambda: self._sync_deadline(group, generation)
        )

    def _sync_deadline(self, group: ClassicGroup, generation: int) -> None:
        """Members that got their join answer but never synced are dropped (Kafka pending-sync
        timeout), so one lost client cannot hold the group in CompletingRebalance forever."""
        if group.generation != generation or not group.is_(S.COMPLETING_REBALANCE, S.STABLE):
            return
        missing = [group.members[m] for m in group.pending_sync if m in group.members]
        for member in missing:
            self._remove_member(group, member)
        if missing:
            self.prepare_rebalance(group, "members did not sync")

    # --- SyncGroup ------------------------------------------------------------------------------

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
        group = self.groups.get(group_id)
        if group is None:
            return SyncResult(ErrorCode.unknown_member_id)
        if group.is_(S.DEAD):
            return SyncResult(ErrorCode.coordinator_not_available)
        error = self._validate_member(group, member_id, instance_id)
        if error:
            return SyncResult(error)
        if generation != group.generation:
            return SyncResult(ErrorCode.illegal_generation)
        if (protocol_type is not None and protocol_type != group.protocol_type) or (
            protocol is not None and protocol != group.protocol
        ):
            return SyncResult(ErrorCode.inconsistent_group_protocol)
        if group.is_(S.EMPTY):
            return SyncResult(ErrorCode.unknown_member_id)
        if group.is_(S.PREPARING_REBALANCE):
            return SyncResult(ErrorCode.rebalance_in_progress)
        member = group.members[member_id]
        self._schedule_heartbeat(group, member)
        group.pending_sync.discard(member_id)
        if group.is_(S.STABLE):
            return self._sync_result(group, member)
        future: asyncio.Future[SyncResult] = asyncio.get_running_loop().create_future()
        _resolve(member.sync_future, SyncResult(ErrorCode.rebalance_in_progress))
        member.sync_future = future
        if member_id == group.leader:
            await self._store_assignment(group, assignments)
        return await future

    async def _store_assignment(self, group: ClassicGroup, assignments: dict[str, bytes]) -> None:
        generation = group.generation
        for member in group.members.values():
            # Members the leader left out get an empty assignment, as in Kafka.
            member.assignment = assignments.get(member.member_id, b"")
        try:
            await self.persist([(GroupKey(group.group_id), group.to_value())])
        except Exception as exc:
            error = append_error(exc, f"group {group.group_id}: storing the assignment")
            if group.generation == generation and group.is_(S.COMPLETING_REBALANCE):
                for m in group.members.values():
                    m.assignment = b""
                    _resolve(m.sync_future, SyncResult(error))
                    m.sync_future = None
                self.prepare_rebalance(group, "storing the assignment failed")
            return
        if group.generation != generation or not group.is_(S.COMPLETING_REBALANCE):
            return  # a newer rebalance started meanwhile; its errors reached the members
        group.transition(S.STABLE, self.now_ms())
        for member in group.members.values():
            future, member.sync_future = member.sync_future, None
            _resolve(future, self._sync_result(group, member))

    def _sync_result(self, group: ClassicGroup, member: Member) -> SyncResult:
        return SyncResult(ErrorCode.none, member.assignment, group.protocol_type, group.protocol)

    # --- Heartbeat ------------------------------------------------------------------------------

    def heartbeat(
        self, group_id: str, generation: int, member_id: str, instance_id: str | None
    ) -> ErrorCode:
        group = self.groups.get(group_id)
        if group is None:
            return ErrorCode.unknown_member_id
        if group.is_(S.DEAD):
            return ErrorCode.coordinator_not_available
        if group.is_(S.EMPTY):
            return ErrorCode.unknown_member_id
        error = self._validate_member(group, member_id, instance_id)
        if error:
            return error
        if generation != group.generation:
            return ErrorCode.illegal_generation
        self._schedule_heartbeat(group, group.members[member_id])
        if group.is_(S.PREPARING_REBALANCE):
            return ErrorCode.rebalance_in_progress
        return ErrorCode.none

    def _schedule_heartbeat(self, group: ClassicGroup, member: Member) -> None:
        _cancel(member.heartbeat_timer)
        member_id = member.member_id
        timeout = NEW_MEMBER_JOIN_TIMEOUT_MS if member.is_new else member.session_timeout_ms
        member.heartbeat_timer = self.scheduler.call_later(
            timeout, lambda: self._expire_member(group, member_id)
        )

    def _expire_member(self, group: ClassicGroup, member_id: str) -> None:
        member = group.members.get(member_id)
        if member is None or self.groups.get(group.group_id) is not group:
            return
        if member.awaiting_join or member.sync_future is not None:
            # Kafka shouldKeepAlive: a member parked in a join or sync is alive; the phase
            # deadline bounds it.
            self._schedule_heartbeat(group, member)
            return
        log.info("group %s: member %s session expired", group.group_id, member_id)
        self._remove_member_and_update(group, member)

    def _expire_pending(self, group: ClassicGroup, member_id: str) -> None:
        if group.pending_members.pop(member_id, None) is not None:
            self._maybe_complete_join(group)
            self._maybe_drop_empty(group)

    def _maybe_drop_empty(self, group: ClassicGroup) -> None:
        """A group created by a JoinGroup that never got a member leaves no trace."""
        if (
            group.is_(S.EMPTY)
            and not group.members
            and not group.pending_members
            and group.generation == 0
            and not self.offsets.has_offsets(group.group_id)
            and self.groups.get(group.group_id) is group
        ):
            del self.groups[group.group_id]

    # --- LeaveGroup -----------------------------------------------------------------------------

    def leave_group(
        self, group_id: str, leaving: list[tuple[str, str | None]]
    ) -> tuple[ErrorCode, list[ErrorCode]]:
        group = self.groups.get(group_id)
        if group is None:
            return ErrorCode.none, [ErrorCode.unknown_member_id for _ in leaving]
        if group.is_(S.DEAD):
            return ErrorCode.coordinator_not_available, [ErrorCode.none for _ in leaving]
        return ErrorCode.none, [self._leave_one(group, m, i) for m, i in leaving]

    def _leave_one(self, group: ClassicGroup, member_id: str, instance_id: str | None) -> ErrorCode:
        if instance_id is not None:
            current = group.static_members.get(instance_id)
            if current is None:
                return ErrorCode.unknown_member_id
            if member_id and member_id != current:
                return ErrorCode.fenced_instance_id
            member_id = current
        elif member_id in group.pending_members:
            _cancel(group.pending_members.pop(member_id))
            self._maybe_complete_join(group)
            self._maybe_drop_empty(group)
            return ErrorCode.none
        member = group.members.get(member_id)
        if member is None:
            return ErrorCode.unknown_member_id
        log.info("group %s: member %s left", group.group_id, member_id)
        self._remove_member_and_update(group, member)
        return ErrorCode.none

    # --- removal --------------------------------------------------------------------------------

    def _remove_member(self, group: ClassicGroup, member: Member) -> None:
        _cancel(member.heartbeat_timer)
        _resolve(member.join_future, JoinResult(ErrorCode.unknown_member_id, member.member_id))
        _resolve(member.sync_future, SyncResult(ErrorCode.unknown_member_id))
        member.join_future = member.sync_future = None
        group.remove(member.member_id)

    def _remove_member_and_update(self, group: ClassicGroup, member: Member) -> None:
        self._remove_member(group, member)
        if group.is_(S.STABLE, S.COMPLETING_REBALANCE):
            self.prepare_rebalance(group, f"member {member.member_id} left")
        self._maybe_complete_join(group)

    # --- offsets retention ----------------------------------------------------------------------

    def _schedule_expiry(self) -> None:
        # Kafka's offsets.retention.check.interval.ms (10 min), or faster for short retentions.
        interval = max(min(600_000, self.config.offsets_retention_ms), 1_000)

        def fire() -> None:
            self._spawn(self.expire_offsets())
            self._schedule_expiry()

        self._expiry_timer = self.scheduler.call_later(interval, fire)

    async def expire_offsets(self) -> int:
        """Delete offsets past retention (see operations.expire_offsets)."""
        from klamm.broker.groups import operations

        return await operations.expire_offsets(self)

    # --- hooks for the transaction coordinator --------------------------------------------------

    async def prepare_txn_offsets(
        self,
        group_id: str,
        producer_id: int,
        producer_epoch: int,
        offsets: dict[tuple[str, int], tuple[int, int, str | None]],
        *,
        generation: int = -1,
        member_id: str = "",
        group_instance_id: str | None = None,
    ) -> dict[tuple[str, int], ErrorCode]:
        """TxnOffsetCommit: store offsets as pending until `complete_txn_offsets`. `offsets`
        maps (topic, partition) to (offset, leader epoch, metadata)."""
        from klamm.broker.groups import operations

        return await operations.prepare_txn_offsets(
            self, group_id, producer_id, producer_epoch, offsets,
            generation, member_id, group_instance_id,
        )  # fmt: skip

    async def complete_txn_offsets(
        self, producer_id: int, commit: bool, producer_epoch: int = -1
    ) -> None:
        """The transaction ended: make its offsets visible (commit) or drop them (abort); the
        marker is durable in __consumer_offsets before this returns."""
        from klamm.broker.groups import operations

        await operations.complete_txn_offsets(self, producer_id, commit, producer_epoch)
