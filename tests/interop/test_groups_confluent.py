"""Consumer groups with confluent-kafka (librdkafka) against klamm: assignment split, leave,
committed offsets across consumer and broker restarts, independent groups, admin describe/list,
lag, cooperative-sticky, static membership and first-message latency."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from klamm.testing import EmbeddedBroker

pytestmark = pytest.mark.timeout(90)


def group_consumer(bootstrap: str, group: str, **extra: Any) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 300,
            "fetch.wait.max.ms": 100,
            "enable.auto.commit": False,
            **extra,
        }
    )


def produce(bootstrap: str, topic: str, partitions: int, per_partition: int, tag: str = "") -> None:
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(partitions * per_partition):
        p.produce(topic, value=f"{tag}{i}".encode(), partition=i % partitions)
    assert p.flush(15) == 0


def pump(consumers: list[Consumer], until: Callable[[], bool], timeout: float = 20.0,
         sink: list[Any] | None = None) -> None:  # fmt: skip
    """Poll every consumer in turn (callbacks run in poll) until `until()` holds."""
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, "timed out"
        for c in consumers:
            msg = c.poll(0.05)
            if msg is not None and not msg.error() and sink is not None:
                sink.append(msg)


def owned(c: Consumer) -> set[int]:
    return {tp.partition for tp in c.assignment()}


def test_two_members_split_six_partitions_then_one_owns_all(
    bootstrap: str, topic_factory: Callable[..., str], unique: str
) -> None:
    topic = topic_factory(6)
    a = group_consumer(bootstrap, f"g-{unique}")
    b = group_consumer(bootstrap, f"g-{unique}")
    a.subscribe([topic])
    b.subscribe([topic])
    pump([a, b], lambda: len(owned(a)) == 3 and len(owned(b)) == 3)
    assert owned(a) | owned(b) == set(range(6))
    b.close()  # LeaveGroup: a is told to rejoin at its next heartbeat
    pump([a], lambda: len(owned(a)) == 6)
    a.close()


def test_first_message_within_one_second_of_subscribe(
    bootstrap: str, topic_factory: Callable[..., str], unique: str
) -> None:
    topic = topic_factory(1)
    produce(bootstrap, topic, 1, 1)
    c = group_consumer(bootstrap, f"g-{unique}")
    started = time.monotonic()
    c.subscribe([topic])
    got: list[Any] = []
    pump([c], lambda: bool(got), sink=got, timeout=10)
    elapsed = time.monotonic() - started
    c.close()
    assert elapsed < 1.0, f"first message after {elapsed:.2f} s"


def test_committed_offsets_resume_without_loss_and_metadata_round_trips(
    bootstrap: str, topic_factory: Callable[..., str], unique: str
) -> None:
    topic, group = topic_factory(3), f"g-{unique}"
    produce(bootstrap, topic, 3, 10, "a")
    c = group_consumer(bootstrap, group)
    c.subscribe([topic])
    first: list[Any] = []
    pump([c], lambda: len(first) >= 15, sink=first)
    c.commit(asynchronous=False)
    seen = {(m.partition(), m.offset()) for m in first}
    c.close()
    c = group_consumer(bootstrap, group)
    c.subscribe([topic])
    rest: list[Any] = []
    pump([c], lambda: len(seen | {(m.partition(), m.offset()) for m in rest}) == 30, sink=rest)
    assert not seen & {(m.partition(), m.offset()) for m in rest}, "committed records re-read"
    meta = [TopicPartition(topic, 0, 7, metadata="state:ümlaut")]
    c.commit(offsets=meta, asynchronous=False)
    [tp] = c.committed([TopicPartition(topic, 0)], timeout=10)
    assert (tp.offset, tp.metadata) == (7, "state:ümlaut")
    c.close()


def test_two_groups_each_read_everything(
    bootstrap: str, topic_factory: Callable[..., str], unique: str
) -> None:
    topic = topic_factory(4)
    produce(bootstrap, topic, 4, 5)
    a = group_consumer(bootstrap, f"ga-{unique}")
    b = group_consumer(bootstrap, f"gb-{unique}")
    a.subscribe([topic])
    b.subscribe([topic])
    got_a: list[Any] = []
    got_b: list[Any] = []
    pump([a], lambda: len(got_a) == 20, sink=got_a)
    pump([b], lambda: len(got_b) == 20, sink=got_b)
    a.close()
    b.close()


def test_describe_list_and_lag(
    bootstrap: str, topic_factory: Callable[..., str], unique: str
) -> None:
    topic, group = topic_factory(6), f"g-{unique}"
    produce(bootstrap, topic, 6, 4)
    a = group_consumer(bootstrap, group, **{"client.id": "alpha"})
    b = group_consumer(bootstrap, group, **{"client.id": "beta"})
    a.subscribe([topic])
    b.subscribe([topic])
    pump([a, b], lambda: len(owned(a)) == 3 and len(owned(b)) == 3)
    a.commit(offsets=[TopicPartition(topic, p, 1) for p in owned(a)], asynchronous=False)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    desc = admin.describe_consumer_groups([group])[group].result(timeout=10)
    assert desc.state.name == "STABLE"
    assert desc.partition_assignor == "range"
    assert sorted(m.client_id for m in desc.members) == ["alpha", "beta"]
    parts = sorted(tp.partition for m in desc.members for tp in m.assignment.topic_partitions)
    assert parts == list(range(6))
    listed = {g.group_id for g in admin.list_consumer_groups().result(timeout=10).valid}
    assert group in listed
    # Lag as kafka-consumer-groups computes it: high watermark - committed.
    lags = {}
    for p in owned(a):
        _low, high = a.get_watermark_offsets(TopicPartition(topic, p), timeout=5)
        [committed] = a.committed([TopicPartition(topic, p)], timeout=5)
        lags[p] = high - committed.offset
    assert set(lags.values()) == {3}
    a.close()
    b.close()


def test_cooperative_sticky_keeps_partitions_that_stay(
    bootstrap: str, topic_factory: Callable[..., str], unique: str
) -> None:
    topic, group = topic_factory(6), f"g-{unique}"
    revoked: list[set[int]] = []

    def on_revoke(consumer: Consumer, parts: list[TopicPartition]) -> None:
        revoked.append({tp.partition for tp in parts})

    conf = {"partition.assignment.strategy": "cooperative-sticky"}
    a = group_consumer(bootstrap, group, **conf)
    a.subscribe([topic], on_revoke=on_revoke)
    pump([a], lambda: len(owned(a)) == 6)
    before = owned(a)
    b = group_consumer(bootstrap, group, **conf)
    b.subscribe([topic])
    pump([a, b], lambda: len(owned(a)) == 3 and len(owned(b)) == 3)
    kept = owned(a)
    assert kept <= before
    # Incremental: only the partitions that moved were revoked from a, never the kept ones.
    assert all(not (r & kept) for r in revoked), revoked
    assert set().union(*revoked) == before - kept
    b.close()
    a.close()


def test_static_member_restart_within_session_timeout_causes_no_rebalance(
    bootstrap: str, topic_factory: Callable[..., str], unique: str, kafka_broker: Any
) -> None:
    topic, group = topic_factory(4), f"g-{unique}"
    static = {"group.instance.id": f"inst-{unique}", "session.timeout.ms": 10000}
    a = group_consumer(bootstrap, group, **static)
    other = group_consumer(bootstrap, group)
    a.subscribe([topic])
    other.subscribe([topic])
    pump([a, other], lambda: len(owned(a)) == 2 and len(owned(other)) == 2)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    mine = owned(a)
    gen_before = _generation(kafka_broker, group)
    a.close()  # a static member does not send LeaveGroup on close
    revoked: list[Any] = []
    other_poll_until = time.monotonic() + 1
    while time.monotonic() < other_poll_until:
        other.poll(0.05)
    a = group_consumer(bootstrap, group, **static)
    a.subscribe([topic], on_revoke=lambda c, p: revoked.append(p))
    pump([a, other], lambda: owned(a) == mine)
    for _ in range(10):
        other.poll(0.05)
    assert _generation(kafka_broker, group) == gen_before, "the restart caused a rebalance"
    assert len(owned(other)) == 2
    desc = admin.describe_consumer_groups([group])[group].result(timeout=10)
    assert len(desc.members) == 2
    a.close()
    other.close()


def _generation(kafka_broker: Any, group: str) -> int:
    """The group's generation, straight from the coordinator of the in-process broker."""
    return int(kafka_broker.broker.groups.groups[group].generation)


@pytest.mark.parametrize("crash", [False, True], ids=["clean", "sigkill"])
def test_group_state_and_offsets_survive_broker_restart(crash: bool, unique: str) -> None:
    with EmbeddedBroker(mode="subprocess") as broker:
        bs = broker.bootstrap
        topic, group = f"t-{unique}", f"g-{unique}"
        admin = AdminClient({"bootstrap.servers": bs})
        admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(10)
        produce(bs, topic, 2, 5)
        c = group_consumer(bs, group)
        c.subscribe([topic])
        got: list[Any] = []
        pump([c], lambda: len(got) == 10, sink=got)
        c.commit(asynchronous=False)
        if crash:
            broker.kill()
            broker.start()
        else:
            broker.restart()
        # The live consumer carries on with its membership, then a new member resumes.
        produce(bs, topic, 2, 2, "after")
        pump([c], lambda: len(got) == 14, sink=got, timeout=30)
        c.commit(asynchronous=False)
        c.close()
        fresh = group_consumer(bs, group)
        fresh.subscribe([topic])
        more: list[Any] = []
        deadline = time.monotonic() + 3
        pump([fresh], lambda: len(owned(fresh)) == 2)
        while time.monotonic() < deadline:
            msg = fresh.poll(0.1)
            if msg is not None and not msg.error():
                more.append(msg)
        committed = fresh.committed([TopicPartition(topic, p) for p in range(2)], timeout=10)
        assert [tp.offset for tp in committed] == [7, 7]
        assert more == [], "a committed record was delivered again after the restart"
        fresh.close()
