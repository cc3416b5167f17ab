"""kafka-python 3.x against klamm: idempotent producer (its default), transactions,
consume-transform-produce with send_offsets_to_transaction."""

from __future__ import annotations

import time

import pytest

kafka = pytest.importorskip("kafka")
from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka.admin import KafkaAdminClient, NewTopic  # noqa: E402


def _create(bootstrap: str, *topics: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(t, 1, 1) for t in topics])
    finally:
        admin.close()


def _consume(bootstrap: str, topic: str, isolation: str, expect: int) -> list[bytes]:
    consumer = KafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
        enable_auto_commit=False, isolation_level=isolation, consumer_timeout_ms=1500,
    )  # fmt: skip
    values: list[bytes] = []
    deadline = time.monotonic() + 10
    try:
        while time.monotonic() < deadline:
            got = [r.value for r in consumer]
            values.extend(got)
            if len(values) >= expect and not got:
                break
    finally:
        consumer.close()
    return values


def test_idempotent_exactly_once_in_order(kafka_broker, unique):
    topic = f"idem-kp-{unique}"
    _create(kafka_broker.bootstrap, topic)
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, enable_idempotence=True)
    for i in range(300):
        producer.send(topic, f"m{i}".encode())
    producer.flush(15)
    producer.close()
    assert _consume(kafka_broker.bootstrap, topic, "read_uncommitted", 300) == [
        f"m{i}".encode() for i in range(300)
    ]


def test_commit_one_abort_another(kafka_broker, unique):
    topic = f"txn-kp-{unique}"
    _create(kafka_broker.bootstrap, topic)
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap,
                             transactional_id=f"kp-{unique}")  # fmt: skip
    producer.init_transactions()
    producer.begin_transaction()
    for i in range(5):
        producer.send(topic, f"ok-{i}".encode())
    producer.commit_transaction()
    producer.begin_transaction()
    for i in range(5):
        producer.send(topic, f"no-{i}".encode())
    producer.flush()
    producer.abort_transaction()
    producer.close()
    assert _consume(kafka_broker.bootstrap, topic, "read_committed", 5) == [
        f"ok-{i}".encode() for i in range(5)
    ]
    assert len(_consume(kafka_broker.bootstrap, topic, "read_uncommitted", 10)) == 10


def test_consume_transform_produce(kafka_broker, unique):
    src, dst, group = f"kp-in-{unique}", f"kp-out-{unique}", f"kp-g-{unique}"
    _create(kafka_broker.bootstrap, src, dst)
    seed = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap)
    for i in range(10):
        seed.send(src, f"in-{i}".encode())
    seed.flush()
    seed.close()
    consumer = KafkaConsumer(
        src, bootstrap_servers=kafka_broker.bootstrap, group_id=group,
        auto_offset_reset="earliest", enable_auto_commit=False,
        isolation_level="read_committed",
    )  # fmt: skip
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap,
                             transactional_id=f"kp-ctp-{unique}")  # fmt: skip
    producer.init_transactions()
    records = []
    deadline = time.monotonic() + 20
    while len(records) < 10 and time.monotonic() < deadline:
        for batch in consumer.poll(500).values():
            records.extend(batch)
    assert len(records) == 10
    tp = TopicPartition(src, 0)
    from kafka.structs import OffsetAndMetadata

    producer.begin_transaction()
    for r in records:
        producer.send(dst, r.value.upper())
    producer.send_offsets_to_transaction(
        {tp: OffsetAndMetadata(10, "", -1)}, consumer.group_metadata()
    )
    producer.abort_transaction()
    assert consumer.committed(tp) is None

    producer.begin_transaction()
    for r in records:
        producer.send(dst, r.value.upper())
    producer.send_offsets_to_transaction(
        {tp: OffsetAndMetadata(10, "", -1)}, consumer.group_metadata()
    )
    producer.commit_transaction()
    assert consumer.committed(tp) == 10
    consumer.close()
    producer.close()
    assert _consume(kafka_broker.bootstrap, dst, "read_committed", 10) == [
        f"IN-{i}".encode() for i in range(10)
    ]
