"""One classic group's membership: members, generation, leader, chosen protocol (no I/O).

`ClassicGroup` holds what Kafka's ClassicGroup holds and the pure decisions about it (protocol
vote, leader choice, "has everyone joined"); the coordinator drives it through the state machine
of `state.py` and owns every timer and future. Invariants (checked by `check_invariants`, which
the unit tests call after every step):

  1. `leader` is None or a current member.
  2. `static_members` maps each instance id to a current member whose `group_instance_id` is it.
  3. Empty and Dead groups have no members.
  4. CompletingRebalance and Stable groups have a protocol and a leader.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from klamm.broker.groups.records import GroupValue, MemberValue, subscribed_topics
from klamm.broker.groups.state import GroupState, IllegalTransition


@dataclass(slots=True)
class Member:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    protocol_type: str
    protocols: list[tuple[str, bytes]]  # in the member's order of preference
    assignment: bytes = b""
    # Futures of a parked JoinGroup / SyncGroup: set while the member waits for the phase to end.
    join_future: asyncio.Future[Any] | None = None
    sync_future: asyncio.Future[Any] | None = None
    # A member that has never completed a join (Kafka isNew): bounded by the join deadline, not
    # by heartbeats.
    is_new: bool = True
    heartbeat_timer: Any = None

    @property
    def awaiting_join(self) -> bool:
        return self.join_future is not None

    def metadata(self, protocol: str | None) -> bytes:
        for name, data in self.protocols:
            if name == protocol:
                return data
        return b""

    def matches(self, protocols: list[tuple[str, bytes]]) -> bool:
        """Same protocols, same metadata, same order: a rejoin that needs no rebalance."""
        return self.protocols == protocols

    def to_value(self, protocol: str | None) -> MemberValue:
        return MemberValue(
            member_id=self.member_id,
            group_instance_id=self.group_instance_id,
            client_id=self.client_id,
            client_host=self.client_host,
            rebalance_timeout=self.rebalance_timeout_ms,
            session_timeout=self.session_timeout_ms,
            subscription=self.metadata(protocol),
            assignment=self.assignment,
        )


@dataclass(slots=True)
class ClassicGroup:
    group_id: str
    state: GroupState = GroupState.EMPTY
    state_timestamp: int = 0  # ms of the last transition (Kafka currentStateTimestamp)
    protocol_type: str | None = None
    protocol: str | None = None
    generation: int = 0
    leader: str | None = None
    members: dict[str, Member] = field(default_factory=dict)
    # Member ids handed out with MEMBER_ID_REQUIRED whose owners have not joined yet (KIP-394).
    pending_members: dict[str, Any] = field(default_factory=dict)  # id -> expiry timer
    static_members: dict[str, str] = field(default_factory=dict)  # instance id -> member id
    # Members of the current generation that have not sent SyncGroup yet.
    pending_sync: set[str] = field(default_factory=set)
    # Join phase bookkeeping (see coordinator: initial delay and quiet window).
    initial_phase: bool = False
    new_member_added: bool = False
    join_timer: Any = None
    quiet_timer: Any = None
    sync_timer: Any = None

    # --- state ---------------------------------------------------------------------------------

    def is_(self, *states: GroupState) -> bool:
        return self.state in states

    def transition(self, target: GroupState, now_ms: int) -> None:
        if self.state not in target.valid_previous:
            raise IllegalTransition(self.group_id, self.state, target)
        self.state = target
        self.state_timestamp = now_ms

    # --- membership ----------------------------------------------------------------------------

    def add(self, member: Member) -> None:
        if not self.members:
            self.protocol_type = member.protocol_type
        self.members[member.member_id] = member
        if member.group_instance_id is not None:
            self.static_members[member.group_instance_id] = member.member_id
        if self.leader is None:
            self.leader = member.member_id

    def remove(self, member_id: str) -> Member | None:
        member = self.members.pop(member_id, None)
        if member is None:
            return None
        instance = member.group_instance_id
        if instance is not None and self.static_members.get(instance) == member_id:
            del self.static_members[instance]
        self.pending_sync.discard(member_id)
        if self.leader == member_id:
            # Prefer a member that has already rejoined, so a join phase can complete.
            joined = [m for m in self.members.values() if m.awaiting_join]
            pick = joined or list(self.members.values())
            self.leader = pick[0].member_id if pick else None
        return member

    def replace_static(self, instance_id: str, old_id: str, new_id: str) -> Member:
        """A static member restarted: the same member under a new id (KIP-345)."""
        member = self.members.pop(old_id)
        member.member_id = new_id
        self.members[new_id] = member
        self.static_members[instance_id] = new_id
        if self.leader == old_id:
            self.leader = new_id
        if old_id in self.pending_sync:
            self.pending_sync.discard(old_id)
            self.pending_sync.add(new_id)
        return member

    def has_all_members_joined(self) -> bool:
        return not self.pending_members and all(m.awaiting_join for m in self.members.values())

    def max_rebalance_timeout_ms(self) -> int:
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0)

    def elect_joined_leader(self) -> None:
        """At the end of a join phase the leader must be a member that rejoined (Kafka
        maybeElectNewJoinedLeader)."""
        leader = self.members.get(self.leader or "")
        if leader is not None and leader.awaiting_join:
            return
        joined = [m.member_id for m in self.members.values() if m.awaiting_join]
        self.leader = joined[0] if joined else None

    # --- protocols -----------------------------------------------------------------------------

    def candidate_protocols(self) -> list[str]:
        """Protocols every member supports, in the first member's order of preference."""
        members = list(self.members.values())
        if not members:
            return []
        common = set.intersection(*({name for name, _ in m.protocols} for m in members))
        return [name for name, _ in members[0].protocols if name in common]

    def supports(self, protocol_type: str, protocols: list[tuple[str, bytes]]) -> bool:
        """Can a member with these protocols join? (Kafka supportsProtocols.)"""
        if not protocol_type or not protocols:
            return False
        if not self.members:
            return True
        if protocol_type != self.protocol_type:
            return False
        names = {name for name, _ in protocols}
        return bool(names & set(self.candidate_protocols()))

    def select_protocol(self) -> str:
        """Each member votes for its most preferred protocol that all members support; the
        protocol with most votes wins (Kafka selectProtocol). Ties go to the protocol listed
        first by the first member, so the choice is deterministic."""
        candidates = self.candidate_protocols()
        if not candidates:
            raise RuntimeError(f"group {self.group_id!r} has no common protocol")
        votes = dict.fromkeys(candidates, 0)
        for member in self.members.values():
            choice = next(name for name, _ in member.protocols if name in votes)
            votes[choice] += 1
        best = max(votes.values())
        return next(name for name in candidates if votes[name] == best)

    def subscribed_topics(self) -> frozenset[str] | None:
        """Topics the members subscribe to, None if unknown (non-consumer protocol)."""
        if self.protocol_type != "consumer" or self.protocol is None:
            return None
        topics: set[str] = set()
        for member in self.members.values():
            parsed = subscribed_topics(member.metadata(self.protocol))
            if parsed is None:
                return None
            topics |= parsed
        return frozenset(topics)

    # --- persistence ---------------------------------------------------------------------------

    def to_value(self) -> GroupValue:
        return GroupValue(
            protocol_type=self.protocol_type or "",
            generation=self.generation,
            protocol=self.protocol,
            leader=self.leader,
            state_timestamp=self.state_timestamp,
            members=tuple(m.to_value(self.protocol) for m in self.members.values()),
        )

    @classmethod
    def from_value(cls, group_id: str, value: GroupValue) -> ClassicGroup:
        """A group as loaded at start-up: Stable with its members if it had any, else Empty."""
        group = cls(
            group_id,
            state=GroupState.STABLE if value.members else GroupState.EMPTY,
            state_timestamp=value.state_timestamp,
            protocol_type=value.protocol_type or None,
            protocol=value.protocol,
            generation=value.generation,
        )
        for m in value.members:
            member = Member(
                member_id=m.member_id,
                group_instance_id=m.group_instance_id,
                client_id=m.client_id,
                client_host=m.client_host,
                rebalance_timeout_ms=m.rebalance_timeout,
                session_timeout_ms=m.session_timeout,
                protocol_type=value.protocol_type,
                protocols=[(value.protocol or "", m.subscription)],
                assignment=m.assignment,
                is_new=False,
            )
            group.add(member)
        group.leader = value.leader if value.leader in group.members else group.leader
        return group

    # --- invariants ----------------------------------------------------------------------------

    def check_invariants(self) -> None:
        assert self.leader is None or self.leader in self.members, "1: leader is a member"
        for instance, member_id in self.static_members.items():
            member = self.members.get(member_id)
            assert member is not None and member.group_instance_id == instance, "2: static map"
        if self.state in (GroupState.EMPTY, GroupState.DEAD):
            assert not self.members, "3: empty group has no members"
        if self.state in (GroupState.COMPLETING_REBALANCE, GroupState.STABLE):
            assert self.protocol is not None and self.leader is not None, "4: protocol+leader"
