"""The classic consumer-group state machine, as data (Kafka's ClassicGroupState).

Every state lists the states a group may come from; `ClassicGroup.transition` refuses anything
else, so an illegal transition is a loud bug rather than a wedged group. What each state answers
is documented here once, and implemented by `klamm.broker.groups.coordinator`:

    Empty                 no members; the group exists because it has committed offsets, or
                          because every member left. A JoinGroup moves it to PreparingRebalance.
                          Heartbeat/SyncGroup -> UNKNOWN_MEMBER_ID. OffsetCommit with generation -1
                          and no member id is allowed ("simple" consumers using assign()).
                          Offsets expire offsets.retention.ms after the group became Empty.
    PreparingRebalance    waiting for every member to (re)join, bounded by the largest rebalance
                          timeout. Heartbeat -> REBALANCE_IN_PROGRESS (how members learn to
                          rejoin). SyncGroup -> REBALANCE_IN_PROGRESS. OffsetCommit with the
                          current generation is allowed, so eager clients can commit while
                          revoking. JoinGroup parks until the join phase completes.
    CompletingRebalance   every member has its JoinGroup answer; waiting for the leader's
                          SyncGroup with the assignment. Followers' SyncGroups park until then.
                          Heartbeat -> NONE. OffsetCommit -> REBALANCE_IN_PROGRESS. A JoinGroup
                          with changed metadata starts a new rebalance.
    Stable                the leader's assignment has been handed out. Heartbeat -> NONE;
                          SyncGroup returns the member's assignment again; a JoinGroup from the
                          leader or with changed metadata starts a rebalance, any other JoinGroup
                          is answered with the current generation.
    Dead                  the group has been deleted (DeleteGroups, offsets expired). Every request
                          -> COORDINATOR_NOT_AVAILABLE, so clients rediscover and recreate it.
"""

from __future__ import annotations

from enum import Enum


class GroupState(Enum):
    # Values are Kafka's names: DescribeGroups/ListGroups put them on the wire verbatim.
    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"

    @property
    def valid_previous(self) -> frozenset[GroupState]:
        return _VALID_PREVIOUS[self]


_S = GroupState
_VALID_PREVIOUS: dict[GroupState, frozenset[GroupState]] = {
    _S.EMPTY: frozenset({_S.PREPARING_REBALANCE}),
    _S.PREPARING_REBALANCE: frozenset({_S.STABLE, _S.COMPLETING_REBALANCE, _S.EMPTY}),
    _S.COMPLETING_REBALANCE: frozenset({_S.PREPARING_REBALANCE}),
    _S.STABLE: frozenset({_S.COMPLETING_REBALANCE}),
    _S.DEAD: frozenset({_S.STABLE, _S.PREPARING_REBALANCE, _S.COMPLETING_REBALANCE, _S.EMPTY,
                        _S.DEAD}),
}  # fmt: skip

# States from which a JoinGroup or a departure may start a new rebalance (Kafka canRebalance).
CAN_REBALANCE = frozenset({_S.STABLE, _S.COMPLETING_REBALANCE, _S.EMPTY})


class IllegalTransition(RuntimeError):
    def __init__(self, group_id: str, current: GroupState, target: GroupState) -> None:
        super().__init__(
            f"group {group_id!r}: illegal transition {current.value} -> {target.value}"
        )
