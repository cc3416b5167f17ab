"""Classic-protocol membership of consumer groups: join, sync, heartbeat, leave, the join and
sync phases with their timers (Kafka's GroupMetadataManager, classic part). `Membership` owns
the groups; the coordinator (coordinator.py) calls its public methods and hands it the two things
it needs of the log: writing a group snapshot (and waiting until durable) and running a write no
request waits for.

Group metadata records are snapshots of a group written when a generation's assignment is fixed
(leader SyncGroup), when a static member is replaced, and when a group empties. Build -> persist
-> apply: a snapshot is built from the state plus the change, made durable, and only then is the
change applied (timers and parked requests live only in memory, so it is applied here, not by
replaying the snapshot); a write the disk refuses changed nothing (Kafka reverts a static
member's replacement whose write failed). A group loaded from a snapshot is Stable with its
members, each of whom must heartbeat within its session timeout to stay.

First-join latency (why not Kafka's fixed 3 s). Kafka holds the first join phase of an Empty group
for group.initial.rebalance.delay.ms (3 s, extended while members keep arriving) so that
consumers started together land in one generation instead of several. We keep that ceiling but
end the phase early once the group is *complete*: every member known to the coordinator has
joined (including ids handed out with MEMBER_ID_REQUIRED whose owners have not come back) and no
new member has arrived for `initial_quiet_ms` (200 ms, several times the gap between consumers
started by one process or deployment wave on one machine). A lone consumer therefore gets its
assignment ~200 ms after joining; a burst of consumers still lands in one generation; a member
that arrives later than the quiet window only costs one ordinary rebalance, as in Kafka.

Concurrency: everything runs on the broker's event loop; awaits happen only around the log
append, and each continuation re-checks the group's generation and state.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from klamm.broker.coordinator_runtime import CoordinatorUnavailable
from klamm.broker.groups.group import ClassicGroup, Member
from klamm.broker.groups.records import GroupValue
from klamm.broker.groups.state import CAN_REBALANCE, GroupState
from klamm.protocol.errors import ErrorCode

if TYPE_CHECKING:
    from klamm.broker.config import BrokerConfig

log = logging.getLogger("klamm.broker.groups")

S = GroupState

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
    """The error a client gets when a write to __consumer_offsets failed: the runtime's code for
    a log that refused it (NOT_COORDINATOR, already logged by the runtime, which every client
    treats as "look the coordinator up again and retry"); anything else is a bug, logged with
    its traceback, and UNKNOWN_SERVER_ERROR. Either way the connection stays up."""
    if isinstance(exc, CoordinatorUnavailable):
        return exc.code
    log.error("%s: writing __consumer_offsets failed", what, exc_info=exc)
    return ErrorCode.unknown_server_error


def _rejoined(member: Member, req: JoinRequest, member_id: str) -> None:
    """A static member's restarted instance takes over `member` under `member_id`."""
    member.member_id = member_id
    member.session_timeout_ms = req.session_timeout_ms
    member.rebalance_timeout_ms = req.rebalance_timeout_ms
    member.client_id, member.client_host = req.client_id, req.client_host
    member.protocols = req.protocols


def _cancel(timer: Timer | None) -> None:
    if timer is not None:
        timer.cancel()


def _resolve(future: asyncio.Future[Any] | None, value: Any) -> None:
    if future is not None and not future.done():
        future.set_result(value)


class Membership:
    """Owner of the classic groups: members, generations, phases, timers, parked requests."""

    def __init__(
        self,
        config: BrokerConfig,
        now_ms: Callable[[], int],
        scheduler: Scheduler,
        initial_quiet_ms: int,
        *,
        write_snapshot: Callable[[str, GroupValue], Coroutine[Any, Any, None]],
        spawn: Callable[[Coroutine[Any, Any, object]], None],
        has_offsets: Callable[[str], bool],
    ) -> None:
        """`write_snapshot(group id, value)` makes a group snapshot durable (raises
        CoordinatorUnavailable if the log refuses it); `spawn` runs a write nobody waits for;
        `has_offsets(group id)` tells whether a group still has committed offsets."""
        self.config = config
        self.now_ms = now_ms
        self.scheduler = scheduler
        self.initial_quiet_ms = initial_quiet_ms
        self.groups: dict[str, ClassicGroup] = {}
        self._write_snapshot = write_snapshot
        self._spawn = spawn
        self._has_offsets = has_offsets

    # --- groups, as replay and the admin operations change them --------------------------------

    def replay(self, group_id: str, value: GroupValue | None) -> None:
        """A durable group snapshot (start-up) or tombstone (start-up, DeleteGroups)."""
        if value is None:
            self.groups.pop(group_id, None)
        else:
            self.groups[group_id] = ClassicGroup.from_value(group_id, value)

    def get_or_create(self, group_id: str) -> ClassicGroup:
        """The group, created Empty if unknown (offsets committed outside any membership)."""
        group = self.groups.get(group_id)
        if group is None:
            group = self.groups[group_id] = ClassicGroup(group_id, state_timestamp=self.now_ms())
        return group

    def remove(self, group: ClassicGroup) -> None:
        """The group was deleted (DeleteGroups, retention): an Empty group becomes Dead, so a
        request still holding it answers as for a deleted group."""
        if group.is_(S.EMPTY):
            group.transition(S.DEAD, self.now_ms())
        if self.groups.get(group.group_id) is group:
            del self.groups[group.group_id]

    def loaded(self) -> None:
        """After start-up replay: every loaded member must heartbeat within its session."""
        for group in self.groups.values():
            for member in group.members.values():
                self.schedule_heartbeat(group, member)

    def stop(self) -> None:
        """Cancel every timer and answer every parked request: the coordinator is going away."""
        for group in self.groups.values():
            for timer in (group.join_timer, group.quiet_timer, group.sync_timer):
                _cancel(timer)
            for member in group.members.values():
                _cancel(member.heartbeat_timer)
                _resolve(member.join_future, JoinResult(ErrorCode.coordinator_not_available))
                _resolve(member.sync_future, SyncResult(ErrorCode.coordinator_not_available))
            for timer in group.pending_members.values():
                _cancel(timer)

    def _store_group_soon(self, group: ClassicGroup) -> None:
        """Persist a group snapshot no request is waiting on (a group that emptied)."""
        self._spawn(self._write_snapshot(group.group_id, group.to_value()))

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
        if group.is_(S.STABLE) and group.protocol in {name for name, _ in req.protocols}:
            # Same generation, same assignment, no rebalance; a leader is told it leads but
            # gets no member list, so it does not reassign. The replacement is stored before it
            # is applied: if the write fails, the old member stays as it was (Kafka reverts it).
            generation = group.generation
            replacement = dataclasses.replace(
                group.members[old_id], join_future=None, sync_future=None, heartbeat_timer=None
            )
            _rejoined(replacement, req, new_id)
            value = group.to_value(replacing=(old_id, replacement))
            try:
                await self._write_snapshot(group.group_id, value)
            except Exception as exc:
                error = append_error(exc, f"group {group.group_id}: static member replacement")
                return JoinResult(error)
            if group.static_members.get(instance) != old_id or group.generation != generation:
                # The group moved on while the snapshot was written (the old member left, a
                # rebalance began): the member joins again, as after any rebalance.
                return JoinResult(ErrorCode.rebalance_in_progress, new_id)
            member = self._replace_static_member(group, req, old_id, new_id)
            self.schedule_heartbeat(group, member)
            return JoinResult(
                ErrorCode.none,
                member_id=new_id,
                generation=group.generation,
                protocol_type=group.protocol_type,
                protocol=group.protocol,
                leader=group.leader or "",
            )
        member = self._replace_static_member(group, req, old_id, new_id)
        return await self._rebalance_and_wait(group, member, "static member rejoined")

    def _replace_static_member(
        self, group: ClassicGroup, req: JoinRequest, old_id: str, new_id: str
    ) -> Member:
        old = group.members[old_id]
        _resolve(old.join_future, JoinResult(ErrorCode.fenced_instance_id, old_id))
        _resolve(old.sync_future, SyncResult(ErrorCode.fenced_instance_id))
        old.join_future = old.sync_future = None
        assert req.group_instance_id is not None
        member = group.replace_static(req.group_instance_id, old_id, new_id)
        _rejoined(member, req, new_id)
        return member

    async def _join_known_member(self, group: ClassicGroup, req: JoinRequest) -> JoinResult:
        if req.member_id in group.pending_members:
            if req.group_instance_id is not None:
                return JoinResult(ErrorCode.unknown_member_id, req.member_id)
            _cancel(group.pending_members.pop(req.member_id))
            return await self._add_member_and_rebalance(group, req, req.member_id)
        error = group.validate_member(req.member_id, req.group_instance_id)
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
            self.schedule_heartbeat(group, member)
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
            self.schedule_heartbeat(group, member)
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
        error = group.validate_member(member_id, instance_id)
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
        self.schedule_heartbeat(group, member)
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
        """Store the leader's assignment, then give it to the members (members the leader left
        out get an empty one, as in Kafka); if it cannot be stored, the generation is over."""
        generation = group.generation
        try:
            await self._write_snapshot(group.group_id, group.to_value(assignments=assignments))
        except Exception as exc:
            error = append_error(exc, f"group {group.group_id}: storing the assignment")
            if group.generation == generation and group.is_(S.COMPLETING_REBALANCE):
                for m in group.members.values():
                    _resolve(m.sync_future, SyncResult(error))
                    m.sync_future = None
                self.prepare_rebalance(group, "storing the assignment failed")
            return
        if group.generation != generation or not group.is_(S.COMPLETING_REBALANCE):
            return  # a newer rebalance started meanwhile; its errors reached the members
        group.transition(S.STABLE, self.now_ms())
        for member in group.members.values():
            member.assignment = assignments.get(member.member_id, b"")
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
        error = group.validate_member(member_id, instance_id)
        if error:
            return error
        if generation != group.generation:
            return ErrorCode.illegal_generation
        self.schedule_heartbeat(group, group.members[member_id])
        if group.is_(S.PREPARING_REBALANCE):
            return ErrorCode.rebalance_in_progress
        return ErrorCode.none

    def schedule_heartbeat(self, group: ClassicGroup, member: Member) -> None:
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
            self.schedule_heartbeat(group, member)
            return
        log.info("group %s: member %s session expired", group.group_id, member_id)
        self._remove_member_and_update(group, member)

    def _expire_pending(self, group: ClassicGroup, member_id: str) -> None:
        if group.pending_members.pop(member_id, None) is not None:
            self._maybe_complete_join(group)
            self.drop_if_unused(group)

    def drop_if_unused(self, group: ClassicGroup) -> None:
        """A group created by a JoinGroup that never got a member leaves no trace."""
        if (
            group.is_(S.EMPTY)
            and not group.members
            and not group.pending_members
            and group.generation == 0
            and not self._has_offsets(group.group_id)
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
            self.drop_if_unused(group)
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
