"""The group coordinator (classic consumer-group protocol) and committed offsets.

state.py        the group state machine, as data
group.py        one group's membership and the pure decisions about it
records.py      key/value layout of the __consumer_offsets log
offsets.py      OffsetManager: committed and transactional-pending offsets, the records that
                change them, replay of offset records
membership.py   Membership: join/sync/heartbeat/leave, the join and sync phases, timers
coordinator.py  GroupCoordinator, the shard: entry points of every group operation, describe/
                list/delete groups, offsets retention, replay dispatch to Membership and
                OffsetManager; writes and loads __consumer_offsets through
                broker/coordinator_runtime.py
"""

from __future__ import annotations

from klamm.broker.groups.coordinator import GroupCoordinator

__all__ = ["GroupCoordinator"]
