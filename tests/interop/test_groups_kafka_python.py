"""Consumer groups with kafka-python against klamm."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any

import pytest

# kafka-python 3.0.12 loads its schemas with the deprecated importlib.resources.read_text.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import KafkaAdminClient
    from kafka.structs import OffsetAndMetadata

from tests.interop.python_clients import FAST_GROUP_CONSUMER

pytestmark = pytest.mark.timeout(90)


def consumer(bootstrap: str, group: str, topic: str, **extra: Any) -> KafkaConsumer:
    return KafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=group, **FAST_GROUP_CONSUMER, **extra
    )


def produce(bootstrap: str, topic: str, partitions: int, per_partition: int) -> None:
    p = KafkaProducer(bootstrap_servers=bootstrap)
    for i in range(partitions * per_partition):
        p.send(topic, f"v{i}".encode(), partition=i % partitions)
    p.flush(15)
    p.close()


def pump(consumers: list[KafkaConsumer], until: Callable[[], bool], timeout: float = 30.0,
         sink: list[Any] | None = None) -> None:  # fmt: skip
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, "timed out"
        for c in consumers:
            for records in c.poll(timeout_ms=50).values():
                if sink is not None:
                    sink.extend(records)


def owned(c: KafkaConsumer) -> set[int]:
    return {tp.partition for tp in c.assignment()}


def test_split_leave_resume_describe_and_lag(
    bootstrap: str, topic_factory: Callable[..., str], unique: str
) -> None:
    topic, group = topic_factory(6), f"g-{unique}"
    produce(bootstrap, topic, 6, 3)
    a = consumer(bootstrap, group, topic, client_id="kp-a")
    b = consumer(bootstrap, group, topic, client_id="kp-b")
    got: list[Any] = []
    pump([a, b], lambda: len(owned(a)) == 3 and len(owned(b)) == 3 and len(got) == 18, sink=got)
    assert owned(a) | owned(b) == set(range(6))
    a.commit()
    b.commit()
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    desc = admin.describe_groups([group], include_authorized_operations=True)[group]
    assert desc["group_state"] == "Stable" and desc["protocol_data"] == "range", desc
    assert sorted(m["client_id"] for m in desc["members"]) == ["kp-a", "kp-b"]
    assert sum(len(str(m["member_assignment"])) > 0 for m in desc["members"]) == 2
    listed = admin.list_groups(states_filter=["Stable"])
    assert group in {g["group_id"] for g in listed}, listed
    produce(bootstrap, topic, 6, 1)
    # Two groups in one OffsetFetch v8 request, all topics of each (topics=null).
    both = admin.list_group_offsets([group, f"none-{unique}"])
    assert both[f"none-{unique}"] == {}
    offsets = both[group]
    assert {tp.partition: o.offset for tp, o in offsets.items()} == dict.fromkeys(range(6), 3)
    ends = a.end_offsets([TopicPartition(topic, p) for p in range(6)])
    lag = {tp.partition: ends[tp] - o.offset for tp, o in offsets.items()}
    assert lag == dict.fromkeys(range(6), 1)
    b.close()  # LeaveGroup
    pump([a], lambda: len(owned(a)) == 6, sink=got)
    pump([a], lambda: len(got) == 24, sink=got)
    a.commit({TopicPartition(topic, 0): OffsetAndMetadata(4, "kp-meta", -1)})
    a.close()
    c = consumer(bootstrap, group, topic)
    committed = c.committed(TopicPartition(topic, 0), metadata=True)
    assert (committed.offset, committed.metadata) == (4, "kp-meta")
    c.close()
    admin.close()


def test_two_groups_each_read_everything(
    bootstrap: str, topic_factory: Callable[..., str], unique: str
) -> None:
    topic = topic_factory(3)
    produce(bootstrap, topic, 3, 4)
    for name in ("x", "y"):
        c = consumer(bootstrap, f"g{name}-{unique}", topic)
        got: list[Any] = []
        pump([c], lambda got=got: len(got) == 12, sink=got)  # type: ignore[misc]
        c.close()
