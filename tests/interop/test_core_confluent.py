"""confluent-kafka (librdkafka) against klamm: produce/consume, codecs, admin, offsets, seek."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    OffsetSpec,
)

from tests.interop.interop_helpers import (
    CODECS,
    COMPRESSIBLE_RECORDS,
    RECORDS,
    Record,
    assert_compressed,
    assert_same_records,
    wait_until,
)

pytestmark = pytest.mark.timeout(60)


def producer(bootstrap: str, **extra: Any) -> Producer:
    return Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, **extra})


def consumer(bootstrap: str, **extra: Any) -> Consumer:
    # group.id is mandatory in confluent-kafka even for assign(); nothing is committed.
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "interop-assign-only",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "fetch.wait.max.ms": 100,
            "enable.partition.eof": False,
            **extra,
        }
    )


def produce_all(
    p: Producer,
    topic: str,
    records: list[Record],
    partition: int = 0,
    timestamps: list[int] | None = None,
) -> list[int]:
    """Produce and flush; returns the offsets from the delivery reports, raising on any error."""
    offsets: list[int] = []
    errors: list[Any] = []

    def report(err: Any, msg: Message) -> None:
        if err is not None:
            errors.append(err)
        else:
            offsets.append(msg.offset())

    for i, (key, value, headers) in enumerate(records):
        kwargs: dict[str, Any] = {"partition": partition, "on_delivery": report}
        if headers:
            kwargs["headers"] = headers
        if timestamps is not None:
            kwargs["timestamp"] = timestamps[i]
        p.produce(topic, value=value, key=key, **kwargs)
    assert p.flush(15) == 0, "messages still queued after flush"
    assert not errors, f"delivery errors: {errors}"
    return offsets


def consume(c: Consumer, count: int, timeout: float = 15.0) -> list[Message]:
    out: list[Message] = []
    deadline = time.monotonic() + timeout
    while len(out) < count and time.monotonic() < deadline:
        msg = c.poll(0.2)
        if msg is None:
            continue
        if msg.error():
            raise KafkaException(msg.error())
        out.append(msg)
    assert len(out) == count, f"consumed {len(out)} of {count} messages"
    return out


def poll_quiet(c: Consumer, seconds: float) -> list[Message]:
    """Everything delivered within `seconds` (for 'nothing arrives' checks)."""
    out: list[Message] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        msg = c.poll(0.1)
        if msg is not None:
            if msg.error():
                raise KafkaException(msg.error())
            out.append(msg)
    return out


def as_record(msg: Message) -> Record:
    return msg.key(), msg.value(), [(k, v) for k, v in (msg.headers() or [])]


def admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


def test_keyed_produce_consume_byte_exact(
    bootstrap: str, topic_factory: Callable[..., str]
) -> None:
    topic = topic_factory(1)
    p = producer(bootstrap)
    offsets = produce_all(p, topic, RECORDS)
    assert sorted(offsets) == list(range(len(RECORDS)))

    c = consumer(bootstrap)
    try:
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        msgs = consume(c, len(RECORDS))
    finally:
        c.close()
    assert [m.offset() for m in msgs] == list(range(len(RECORDS)))
    assert all(m.partition() == 0 and m.topic() == topic for m in msgs)
    assert_same_records([as_record(m) for m in msgs])


def test_keys_pick_partitions_consistently(
    bootstrap: str, topic_factory: Callable[..., str]
) -> None:
    """Default partitioner: one key always lands in one partition; per-key order is kept."""
    topic = topic_factory(3)
    p = producer(bootstrap)
    errors: list[Any] = []
    for i in range(60):
        p.produce(
            topic,
            key=f"user-{i % 6}".encode(),
            value=str(i).encode(),
            on_delivery=lambda err, _m: errors.append(err) if err else None,
        )
    assert p.flush(15) == 0 and not errors
    c = consumer(bootstrap)
    try:
        c.assign([TopicPartition(topic, part, OFFSET_BEGINNING) for part in range(3)])
        msgs = consume(c, 60)
    finally:
        c.close()
    by_key: dict[bytes, list[tuple[int, int]]] = {}
    for m in msgs:
        by_key.setdefault(m.key(), []).append((m.partition(), int(m.value())))
    assert len(by_key) == 6
    for key, seen in by_key.items():
        assert len({part for part, _ in seen}) == 1, f"{key!r} spread over partitions: {seen}"
        values = [v for _, v in seen]
        assert values == sorted(values), f"{key!r} out of order: {values}"


@pytest.mark.parametrize("codec", CODECS)
def test_compression_round_trip(
    bootstrap: str, data_dir: Path, topic_factory: Callable[..., str], codec: str
) -> None:
    topic = topic_factory(1)
    p = producer(bootstrap, **{"compression.type": codec, "linger.ms": 50})
    produce_all(p, topic, COMPRESSIBLE_RECORDS)
    c = consumer(bootstrap)
    try:
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        msgs = consume(c, len(COMPRESSIBLE_RECORDS))
    finally:
        c.close()
    assert_same_records([as_record(m) for m in msgs], COMPRESSIBLE_RECORDS)
    assert_compressed(data_dir, topic, codec)


def test_admin_create_describe_delete(bootstrap: str, unique: str) -> None:
    a = admin(bootstrap)
    name = f"admin-cf-{unique}"
    futures = a.create_topics(
        [NewTopic(name, 3, 1, config={"retention.ms": "123456", "cleanup.policy": "delete"})],
        operation_timeout=10,
    )
    futures[name].result(timeout=15)

    # Creating it again fails with TOPIC_ALREADY_EXISTS.
    again = a.create_topics([NewTopic(name, 1, 1)], operation_timeout=10)
    with pytest.raises(KafkaException) as info:
        again[name].result(timeout=15)
    assert info.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS

    md = a.list_topics(name, timeout=10)
    assert name in md.topics and md.topics[name].error is None
    assert sorted(md.topics[name].partitions) == [0, 1, 2]
    assert md.cluster_id, "Metadata carries a cluster id"
    assert md.controller_id >= 0

    resource = ConfigResource(ConfigResource.Type.TOPIC, name)
    configs = a.describe_configs([resource])[resource].result(timeout=15)
    assert configs["retention.ms"].value == "123456"
    assert not configs["retention.ms"].is_default
    assert configs["cleanup.policy"].value == "delete"
    assert configs["max.message.bytes"].value == "1048588"  # Kafka's default
    assert configs["max.message.bytes"].is_default

    broker_res = ConfigResource(ConfigResource.Type.BROKER, str(md.controller_id))
    broker_configs = a.describe_configs([broker_res])[broker_res].result(timeout=15)
    assert "num.partitions" in broker_configs

    a.create_partitions([NewPartitions(name, 5)], operation_timeout=10)[name].result(timeout=15)
    assert sorted(a.list_topics(name, timeout=10).topics[name].partitions) == [0, 1, 2, 3, 4]

    a.delete_topics([name], operation_timeout=10)[name].result(timeout=15)
    wait_until(lambda: name not in a.list_topics(timeout=10).topics, what="topic deletion")


def test_produce_to_an_internal_topic_fails_with_topic_exception(bootstrap: str) -> None:
    """A record produced to __consumer_offsets would forge a committed offset: the delivery
    fails with Kafka's INVALID_TOPIC_EXCEPTION, which librdkafka does not retry."""
    p = producer(bootstrap)
    reports: list[KafkaError | None] = []
    p.produce(
        "__consumer_offsets", key=b"\x00\x01forged", value=b"x", partition=0,
        on_delivery=lambda err, _msg: reports.append(err),
    )  # fmt: skip
    assert p.flush(15) == 0
    [error] = reports
    assert error is not None and error.code() == KafkaError.TOPIC_EXCEPTION
    assert not error.retriable()


def test_offsets_earliest_latest_by_timestamp(
    bootstrap: str, topic_factory: Callable[..., str]
) -> None:
    topic = topic_factory(1)
    base = int(time.time() * 1000) - 3_600_000
    stamps = [base + i * 1000 for i in range(10)]
    records: list[Record] = [(None, f"m{i}".encode(), []) for i in range(10)]
    p = producer(bootstrap, **{"linger.ms": 0})
    produce_all(p, topic, records, timestamps=stamps)

    c = consumer(bootstrap)
    try:
        assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10) == (0, 10)
        found = c.offsets_for_times([TopicPartition(topic, 0, base + 4500)], timeout=10)
        assert found[0].offset == 5
        assert c.offsets_for_times([TopicPartition(topic, 0, base - 1)], timeout=10)[0].offset == 0
        assert c.offsets_for_times([TopicPartition(topic, 0, stamps[3])], timeout=10)[0].offset == 3
        # After the last timestamp: no such offset (librdkafka reports -1 = OFFSET_END).
        late = c.offsets_for_times([TopicPartition(topic, 0, base + 60_000)], timeout=10)
        assert late[0].offset == OFFSET_END

        # Start consuming at the offset found by timestamp.
        c.assign([TopicPartition(topic, 0, found[0].offset)])
        msgs = consume(c, 5)
        assert [m.offset() for m in msgs] == [5, 6, 7, 8, 9]
        assert [m.timestamp()[1] for m in msgs] == stamps[5:]
    finally:
        c.close()

    # The admin API: ListOffsets with earliest, latest, max-timestamp and a timestamp.
    a = admin(bootstrap)
    tp = TopicPartition(topic, 0)
    specs = {
        "earliest": (OffsetSpec.earliest(), 0),
        "latest": (OffsetSpec.latest(), 10),
        "max_timestamp": (OffsetSpec.max_timestamp(), 9),
        "timestamp": (OffsetSpec.for_timestamp(base + 2500), 3),
    }
    for label, (spec, expected) in specs.items():
        result = a.list_offsets({tp: spec}, request_timeout=10)[tp].result(timeout=15)
        assert result.offset == expected, f"{label}: got {result.offset}, expected {expected}"


def test_seek_and_replay(bootstrap: str, topic_factory: Callable[..., str]) -> None:
    topic = topic_factory(1)
    p = producer(bootstrap)
    produce_all(p, topic, [(None, f"m{i}".encode(), []) for i in range(20)])
    c = consumer(bootstrap)
    try:
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        first = consume(c, 20)
        assert [m.value() for m in first] == [f"m{i}".encode() for i in range(20)]

        c.seek(TopicPartition(topic, 0, 5))
        again = consume(c, 15)
        assert [m.offset() for m in again] == list(range(5, 20))

        c.seek(TopicPartition(topic, 0, OFFSET_BEGINNING))
        replay = consume(c, 20)
        assert [m.value() for m in replay] == [m.value() for m in first]

        # A fresh assignment at an explicit offset.
        c.unassign()
        c.assign([TopicPartition(topic, 0, 17)])
        assert [m.offset() for m in consume(c, 3)] == [17, 18, 19]
        assert poll_quiet(c, 0.5) == []
    finally:
        c.close()


def test_pause_resume(bootstrap: str, topic_factory: Callable[..., str]) -> None:
    topic = topic_factory(3)
    p = producer(bootstrap)

    def fill(start: int) -> None:
        for part in range(3):
            produce_all(
                p,
                topic,
                [(None, f"p{part}-{i}".encode(), []) for i in range(start, start + 5)],
                partition=part,
            )

    fill(0)
    c = consumer(bootstrap)
    try:
        c.assign([TopicPartition(topic, part, OFFSET_BEGINNING) for part in range(3)])
        assert len(consume(c, 15)) == 15

        paused = [TopicPartition(topic, 1)]
        c.pause(paused)
        fill(5)
        flowing = consume(c, 10)
        assert sorted({m.partition() for m in flowing}) == [0, 2]
        assert poll_quiet(c, 1.0) == [], "a paused partition delivered messages"

        c.resume(paused)
        resumed = consume(c, 5)
        assert {m.partition() for m in resumed} == {1}
        assert [m.offset() for m in resumed] == [5, 6, 7, 8, 9]
        assert [m.value() for m in resumed] == [f"p1-{i}".encode() for i in range(5, 10)]
    finally:
        c.close()


def test_delete_records_refused_on_internal_and_compacted_topics(
    bootstrap: str, topic_factory: Callable[..., str]
) -> None:
    """Kafka refuses DeleteRecords on internal topics (the coordinators replay their state from
    them: offsets, transactions, producer ids) and on topics whose policy is not "delete"."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    compacted, plain = topic_factory(1, **{"cleanup.policy": "compact"}), topic_factory(1)
    p = producer(bootstrap)
    for topic in (compacted, plain):
        p.produce(topic, key=b"k", value=b"v", partition=0)
    assert p.flush(15) == 0
    wanted = {
        "__consumer_offsets": KafkaError.TOPIC_EXCEPTION,
        "__transaction_state": KafkaError.TOPIC_EXCEPTION,
        compacted: KafkaError.POLICY_VIOLATION,
    }
    futures = admin.delete_records([TopicPartition(t, 0, OFFSET_END) for t in [*wanted, plain]])
    for tp, future in futures.items():
        if tp.topic == plain:
            assert future.result(15).low_watermark == 1
            continue
        with pytest.raises(KafkaException) as refused:
            future.result(15)
        assert refused.value.args[0].code() == wanted[tp.topic], tp.topic
    # Nor may their policy change: retention would then delete that state.
    to_delete = ConfigEntry("cleanup.policy", "delete", incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource("topic", "__transaction_state", incremental_configs=[to_delete])
    with pytest.raises(KafkaException) as refused:
        admin.incremental_alter_configs([resource])[resource].result(15)
    assert refused.value.args[0].code() == KafkaError.POLICY_VIOLATION
