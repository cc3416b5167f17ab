"""confluent-kafka (librdkafka) against klamm's log cleaning. Compaction: a compacted topic keeps
the latest value per key, drops tombstoned keys after delete.retention.ms, stays readable from
the start across the gaps compaction leaves, and rejects records without a key (librdkafka test
0011). Retention: records past retention.ms go even on a quiet topic."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from klamm.testing import EmbeddedBroker
from tests.interop.interop_helpers import throwaway_group_consumer

ck = pytest.importorskip("confluent_kafka")
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

KEYS = 20
UPDATES = 15
TOMBSTONED = 5  # keys 0..4 end with a tombstone
# Small segments so the updates span many (internal.segment.bytes: Kafka's testing-only override,
# as segment.bytes has a 1 MiB floor); ratio and horizon low so the broker's loop (every 200 ms)
# cleans as soon as segments are sealed and drops tombstones on the next pass.
TOPIC_CONFIG = {
    "cleanup.policy": "compact",
    "internal.segment.bytes": "2000",
    "min.cleanable.dirty.ratio": "0.01",
    "delete.retention.ms": "0",
}


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(retention_check_interval_ms=200) as embedded:
        yield embedded


def _create(bootstrap: str, topic: str, configs: dict[str, str]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, 1, 1, config=configs)]).values():
        future.result(10)


def _read_all(bootstrap: str, topic: str, timeout: float = 10.0) -> list[tuple[int, bytes, Any]]:
    """Every record from the beginning, through a consumer group (offset reset: earliest)."""
    consumer = throwaway_group_consumer(bootstrap, topic, {"enable.partition.eof": True})
    out: list[tuple[int, bytes, Any]] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == ck.KafkaError._PARTITION_EOF:
                    break
                continue
            out.append((msg.offset(), msg.key(), msg.value()))
    finally:
        consumer.close()
    return out


def test_compacted_topic_keeps_latest_value_per_key(broker: EmbeddedBroker, unique: str) -> None:
    topic = f"compact-ck-{unique}"
    _create(broker.bootstrap, topic, TOPIC_CONFIG)
    producer = ck.Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})
    latest: dict[bytes, bytes | None] = {}
    for round_ in range(UPDATES):
        for k in range(KEYS):
            key, value = f"key-{k}".encode(), f"value-{round_}-{k}".encode() * 4
            producer.produce(topic, value, key)
            latest[key] = value
        producer.flush(10)
    for k in range(TOMBSTONED):
        producer.produce(topic, None, f"key-{k}".encode())
        latest[f"key-{k}".encode()] = None
    producer.flush(10)
    # Compaction never touches the active segment: push the updates out of it.
    for i in range(60):
        producer.produce(topic, b"f" * 100, f"filler-{i}".encode())
    assert producer.flush(10) == 0
    total = KEYS * UPDATES + TOMBSTONED + 60

    wanted = {k: v for k, v in latest.items() if v is not None}
    deadline = time.monotonic() + 20
    while True:
        records = _read_all(broker.bootstrap, topic)
        seen = {key: value for _, key, value in records if key.startswith(b"key-")}
        keyed = [key for _, key, _ in records if key.startswith(b"key-")]
        if (seen == wanted and len(keyed) == len(wanted)) or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert seen == wanted  # latest values only; tombstoned keys gone
    assert len(keyed) == len(wanted)  # one record per surviving key
    offsets = [offset for offset, _, _ in records]
    assert offsets == sorted(offsets) and len(offsets) < total  # read across the gaps
    fillers = [key for _, key, _ in records if key.startswith(b"filler-")]
    assert fillers == [f"filler-{i}".encode() for i in range(60)]


def test_compacted_topic_rejects_null_keys(broker: EmbeddedBroker, unique: str) -> None:
    topic = f"compact-nokey-{unique}"
    _create(broker.bootstrap, topic, {"cleanup.policy": "compact"})
    producer = ck.Producer({"bootstrap.servers": broker.bootstrap, "retries": 0})
    errors: list[Any] = []
    producer.produce(topic, b"no key", on_delivery=lambda err, msg: errors.append(err))
    producer.produce(topic, b"keyed", b"k", on_delivery=lambda err, msg: errors.append(err))
    producer.flush(10)
    assert len(errors) == 2
    codes = sorted(err.code() if err else 0 for err in errors)
    assert ck.KafkaError.INVALID_RECORD in codes


def test_time_retention_expires_a_quiet_topic(broker: EmbeddedBroker) -> None:
    """Three records never fill a segment; Kafka still deletes them once retention.ms passes
    (it rolls the active segment), and the topic goes on from offset 3."""
    topic = f"quiet-{time.monotonic_ns()}"
    _create(broker.bootstrap, topic, {"retention.ms": "300"})
    producer = ck.Producer({"bootstrap.servers": broker.bootstrap})
    for value in (b"a", b"b", b"c"):
        producer.produce(topic, value)
    assert producer.flush(10) == 0
    watcher = ck.Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"w-{topic}"})
    try:
        deadline = time.monotonic() + 10
        while watcher.get_watermark_offsets(ck.TopicPartition(topic, 0), 5) != (3, 3):
            assert time.monotonic() < deadline, "records past retention.ms were kept"
            time.sleep(0.1)
    finally:
        watcher.close()
    assert _read_all(broker.bootstrap, topic, timeout=2) == []
    offsets: list[int] = []  # (not read back: it expires as quickly)
    producer.produce(topic, b"d", on_delivery=lambda _err, msg: offsets.append(msg.offset()))
    assert producer.flush(10) == 0
    assert offsets == [3]
