"""What kafka-python and aiokafka share, written once for both.

aiokafka follows kafka-python's API: consumers take the same keyword names and hand out
ConsumerRecords with the same attributes. So the settings and the record conversion live here,
while each test module keeps its own client calls (one is sync, the other asyncio).
"""

from __future__ import annotations

from typing import Any

from tests.interop.interop_helpers import RECORDS, Record

# Both refuse a record whose key and value are both null (kafka-python: "Need at least one: key
# or value"), so their copy of the canonical set leaves that one out.
RECORDS_WITH_KEY_OR_VALUE: list[Record] = [
    r for r in RECORDS if r[0] is not None or r[1] is not None
]

# A consumer for assign(): no group, nothing committed, reading from the earliest offset.
ASSIGN_ONLY_CONSUMER: dict[str, Any] = {
    "group_id": None,
    "enable_auto_commit": False,
    "fetch_max_wait_ms": 100,
    "auto_offset_reset": "earliest",
}

# A group member that reads from the earliest offset and commits only when told to, with short
# session, heartbeat and fetch waits so joins, leaves and rebalances settle quickly.
# The group id is left to the caller.
FAST_GROUP_CONSUMER: dict[str, Any] = {
    "auto_offset_reset": "earliest",
    "enable_auto_commit": False,
    "session_timeout_ms": 6000,
    "heartbeat_interval_ms": 300,
    "fetch_max_wait_ms": 100,
}


def record_from_consumer_record(msg: Any) -> Record:
    """A kafka-python or aiokafka ConsumerRecord as (key, value, headers)."""
    return msg.key, msg.value, [(k, v) for k, v in (msg.headers or [])]
