"""confluent-kafka (librdkafka) against klamm: idempotent and transactional producers."""

from __future__ import annotations

import uuid

import pytest

ck = pytest.importorskip("confluent_kafka")
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402


def _create(bootstrap: str, topic: str, partitions: int = 1) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
        future.result(10)


def _consume(bootstrap: str, topic: str, isolation: str, expect: int, timeout: float = 10.0) -> list[bytes]:
    consumer = ck.Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"g-{uuid.uuid4().hex[:8]}",
        "auto.offset.reset": "earliest", "enable.auto.commit": False,
        "isolation.level": isolation,
    })  # fmt: skip
    consumer.subscribe([topic])
    values: list[bytes] = []
    import time

    deadline = time.monotonic() + timeout
    idle_after = None
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None:
                if len(values) >= expect:
                    idle_after = idle_after or time.monotonic()
                    if time.monotonic() - idle_after > 1.0:
                        break
                continue
            if msg.error():
                continue
            values.append(msg.value())
    finally:
        consumer.close()
    return values


def test_idempotent_exactly_once_in_order(kafka_broker, unique):
    topic = f"idem-ck-{unique}"
    _create(kafka_broker.bootstrap, topic)
    producer = ck.Producer({
        "bootstrap.servers": kafka_broker.bootstrap, "enable.idempotence": True,
        "linger.ms": 5,
    })  # fmt: skip
    for i in range(500):
        producer.produce(topic, f"m{i}".encode())
    assert producer.flush(15) == 0
    values = _consume(kafka_broker.bootstrap, topic, "read_uncommitted", 500)
    assert values == [f"m{i}".encode() for i in range(500)]


def test_commit_one_abort_another(kafka_broker, unique):
    topic = f"txn-ck-{unique}"
    _create(kafka_broker.bootstrap, topic, 2)
    producer = ck.Producer({
        "bootstrap.servers": kafka_broker.bootstrap, "transactional.id": f"tx-{unique}",
    })  # fmt: skip
    producer.init_transactions(15)
    producer.begin_transaction()
    for i in range(10):
        producer.produce(topic, f"committed-{i}".encode(), partition=i % 2)
    producer.commit_transaction(15)
    producer.begin_transaction()
    for i in range(10):
        producer.produce(topic, f"aborted-{i}".encode(), partition=i % 2)
    producer.flush(15)
    producer.abort_transaction(15)
    producer.begin_transaction()
    producer.produce(topic, b"last", partition=0)
    producer.commit_transaction(15)

    committed = _consume(kafka_broker.bootstrap, topic, "read_committed", 11)
    assert sorted(committed) == sorted([f"committed-{i}".encode() for i in range(10)] + [b"last"])
    everything = _consume(kafka_broker.bootstrap, topic, "read_uncommitted", 21)
    assert len(everything) == 21
