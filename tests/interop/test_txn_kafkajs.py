"""KafkaJS 2.2.4 (InitProducerId v1) against klamm: idempotent producer, transactions,
consume-transform-produce with sendOffsets (node scripts js/txn_*.js); results are read back
with confluent-kafka in both isolation levels."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.interop.interop_helpers import NodeRunner, create_topic

pytestmark = pytest.mark.timeout(90)


def _consume(bootstrap: str, topic: str, isolation: str, expect: int) -> list[bytes]:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "kjs-txn-check",
                         "enable.auto.commit": False, "isolation.level": isolation})  # fmt: skip
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    values: list[bytes] = []
    deadline = time.monotonic() + 10
    quiet_since: float | None = None
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None or msg.error():
                if len(values) >= expect:
                    quiet_since = quiet_since or time.monotonic()
                    if time.monotonic() - quiet_since > 1.0:
                        break
                continue
            values.append(msg.value())
    finally:
        consumer.close()
    return values


def test_idempotent_exactly_once_in_order(node: NodeRunner, bootstrap: str, unique: str) -> None:
    topic = create_topic(bootstrap, f"idem-kjs-{unique}")
    args = {"bootstrap": bootstrap, "topic": topic, "count": 200}
    result: dict[str, Any] = node("txn_idempotent.js", args)
    assert result["offsets"] == list(range(0, 200, 10))
    assert _consume(bootstrap, topic, "read_uncommitted", 200) == [
        f"m{i}".encode() for i in range(200)
    ]


def test_commit_one_abort_another(node: NodeRunner, bootstrap: str, unique: str) -> None:
    topic = create_topic(bootstrap, f"txn-kjs-{unique}")
    node("txn_commit_abort.js",
         {"bootstrap": bootstrap, "topic": topic, "transactionalId": f"kjs-{unique}"})  # fmt: skip
    ok = [f"ok-{i}".encode() for i in range(5)]
    assert _consume(bootstrap, topic, "read_committed", 6) == [*ok, b"last"]
    everything = _consume(bootstrap, topic, "read_uncommitted", 11)
    assert everything == [*ok, *[f"no-{i}".encode() for i in range(5)], b"last"]


def test_consume_transform_produce(node: NodeRunner, bootstrap: str, unique: str) -> None:
    from confluent_kafka import Consumer, Producer, TopicPartition

    src = create_topic(bootstrap, f"kjs-in-{unique}")
    dst = create_topic(bootstrap, f"kjs-out-{unique}")
    group = f"kjs-g-{unique}"
    seed = Producer({"bootstrap.servers": bootstrap})
    for i in range(10):
        seed.produce(src, f"in-{i}".encode(), partition=0)
    seed.flush(10)
    node("txn_ctp.js", {"bootstrap": bootstrap, "src": src, "dst": dst, "group": group,
                        "transactionalId": f"kjs-ctp-{unique}", "count": 10})  # fmt: skip
    assert _consume(bootstrap, dst, "read_committed", 10) == [f"IN-{i}".encode() for i in range(10)]
    assert len(_consume(bootstrap, dst, "read_uncommitted", 20)) == 20
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        assert consumer.committed([TopicPartition(src, 0)], 10)[0].offset == 10
    finally:
        consumer.close()
