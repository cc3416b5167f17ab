"""confluent-kafka (librdkafka) against klamm: idempotent and transactional producers."""

from __future__ import annotations

import pytest

from tests.interop.interop_helpers import throwaway_group_consumer

ck = pytest.importorskip("confluent_kafka")
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402


def _create(bootstrap: str, topic: str, partitions: int = 1) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
        future.result(10)


def _consume(
    bootstrap: str, topic: str, isolation: str, expect: int, timeout: float = 10.0
) -> list[bytes]:
    consumer = throwaway_group_consumer(bootstrap, topic, {"isolation.level": isolation})
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


def test_consume_transform_produce_commits_offsets_with_txn(kafka_broker, unique):
    src, dst, group = f"ctp-in-{unique}", f"ctp-out-{unique}", f"ctp-g-{unique}"
    _create(kafka_broker.bootstrap, src)
    _create(kafka_broker.bootstrap, dst)
    seed = ck.Producer({"bootstrap.servers": kafka_broker.bootstrap})
    for i in range(20):
        seed.produce(src, f"in-{i}".encode())
    seed.flush(10)

    consumer = ck.Consumer({
        "bootstrap.servers": kafka_broker.bootstrap, "group.id": group,
        "auto.offset.reset": "earliest", "enable.auto.commit": False,
        "isolation.level": "read_committed",
    })  # fmt: skip
    producer = ck.Producer({
        "bootstrap.servers": kafka_broker.bootstrap, "transactional.id": f"ctp-{unique}",
    })  # fmt: skip
    producer.init_transactions(15)
    consumer.subscribe([src])
    try:
        batch = []
        while len(batch) < 20:
            msgs = consumer.consume(20 - len(batch), timeout=1.0)
            batch.extend(m for m in msgs if not m.error())
        tp = ck.TopicPartition(src, 0)

        # First attempt: first 10 transformed, offsets sent, then aborted.
        producer.begin_transaction()
        for m in batch[:10]:
            producer.produce(dst, m.value().upper())
        producer.send_offsets_to_transaction(
            [ck.TopicPartition(src, 0, batch[9].offset() + 1)],
            consumer.consumer_group_metadata(),
            10,
        )
        producer.abort_transaction(15)
        committed = consumer.committed([tp], 10)[0].offset
        assert committed < 0, "aborted transaction must not commit the group's offsets"

        # Second attempt: everything, committed.
        producer.begin_transaction()
        for m in batch:
            producer.produce(dst, m.value().upper())
        producer.send_offsets_to_transaction(
            [ck.TopicPartition(src, 0, batch[-1].offset() + 1)],
            consumer.consumer_group_metadata(),
            10,
        )
        producer.commit_transaction(15)
        assert consumer.committed([tp], 10)[0].offset == 20
    finally:
        consumer.close()
    out = _consume(kafka_broker.bootstrap, dst, "read_committed", 20)
    assert out == [f"IN-{i}".encode() for i in range(20)]


def test_bad_input_errors(kafka_broker, unique):
    """A transaction timeout above transaction.max.timeout.ms is refused; a zombie is fenced."""
    producer = ck.Producer({
        "bootstrap.servers": kafka_broker.bootstrap, "transactional.id": f"bad-{unique}",
        "transaction.timeout.ms": 3_600_000,
    })  # fmt: skip
    with pytest.raises(ck.KafkaException) as info:
        producer.init_transactions(10)
    assert info.value.args[0].code() == ck.KafkaError.INVALID_TRANSACTION_TIMEOUT

    topic = f"fence-ck-{unique}"
    _create(kafka_broker.bootstrap, topic)
    conf = {"bootstrap.servers": kafka_broker.bootstrap, "transactional.id": f"z-{unique}"}
    zombie = ck.Producer(conf)
    zombie.init_transactions(10)
    zombie.begin_transaction()
    zombie.produce(topic, b"zombie")
    zombie.flush(10)
    fresh = ck.Producer(conf)
    fresh.init_transactions(10)  # fences the zombie and aborts its open transaction
    fresh.begin_transaction()
    fresh.produce(topic, b"fresh")
    fresh.commit_transaction(10)
    with pytest.raises(ck.KafkaException) as info:
        zombie.commit_transaction(10)
    assert info.value.args[0].fatal() or info.value.args[0].txn_requires_abort()
    assert _consume(kafka_broker.bootstrap, topic, "read_committed", 1) == [b"fresh"]


def test_offsets_by_timestamp_stop_at_the_last_stable_offset(kafka_broker, unique):
    """A read_committed lookup must not answer an offset inside an open transaction (Kafka's
    Partition.fetchOffsetForTimestamp bounds it by the last stable offset)."""
    import time

    from confluent_kafka import IsolationLevel, TopicPartition
    from confluent_kafka.admin import OffsetSpec

    topic = f"lso-ts-{unique}"
    bootstrap = kafka_broker.bootstrap
    _create(bootstrap, topic)
    before = int(time.time() * 1000) - 10_000
    plain = ck.Producer({"bootstrap.servers": bootstrap})
    plain.produce(topic, b"before", timestamp=before)
    assert plain.flush(10) == 0
    txn = ck.Producer({"bootstrap.servers": bootstrap, "transactional.id": f"lso-{unique}"})
    txn.init_transactions(10)
    txn.begin_transaction()
    txn.produce(topic, b"open", timestamp=before + 1_000)
    assert txn.flush(10) == 0
    admin = AdminClient({"bootstrap.servers": bootstrap})
    tp = TopicPartition(topic, 0)

    def lookup(isolation, spec):
        return admin.list_offsets({tp: spec}, isolation_level=isolation)[tp].result(10).offset

    at_open = OffsetSpec.for_timestamp(before + 1)  # the first record at or after: "open"
    assert lookup(IsolationLevel.READ_UNCOMMITTED, at_open) == 1
    assert lookup(IsolationLevel.READ_UNCOMMITTED, OffsetSpec.max_timestamp()) == 1
    assert lookup(IsolationLevel.READ_COMMITTED, at_open) == -1  # offset 1 is not stable yet
    assert lookup(IsolationLevel.READ_COMMITTED, OffsetSpec.max_timestamp()) == -1
    txn.commit_transaction(10)
    assert lookup(IsolationLevel.READ_COMMITTED, at_open) == 1
