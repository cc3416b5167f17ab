"""The group coordinator (classic consumer-group protocol) and committed offsets.

state.py        the group state machine, as data
group.py        one group's membership and the pure decisions about it
records.py      key/value layout of the __consumer_offsets log
offsets.py      committed and transactional-pending offsets
coordinator.py  GroupCoordinator: join/sync/heartbeat/leave, timers, persistence, replay
operations.py   offset commit/fetch, describe/list/delete groups, offset delete, txn hooks
"""

from __future__ import annotations

from klamm.broker.groups.coordinator import GroupCoordinator

__all__ = ["GroupCoordinator"]
