"""kafka-python 3 against klamm: produce/consume, codecs, admin, offsets, seek, pause.

kafka-python needs python-snappy, lz4 and zstandard for those codecs (its extras); a missing one
fails the codec test under CI and skips it elsewhere.
"""

from __future__ import annotations

import importlib.util
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# kafka-python 3.0.12 loads its protocol schemas with the deprecated importlib.resources.read_text
# (a DeprecationWarning, which this project's pytest settings turn into errors).
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import ConfigResource, ConfigResourceType, OffsetSpec
    from kafka.errors import InvalidRequestError, TopicAlreadyExistsError

from tests.interop.interop_helpers import (
    CODECS,
    COMPRESSIBLE_RECORDS,
    IN_CI,
    Record,
    assert_compressed,
    assert_same_records,
    wait_until,
)
from tests.interop.python_clients import (
    ASSIGN_ONLY_CONSUMER,
    RECORDS_WITH_KEY_OR_VALUE,
    record_from_consumer_record,
)

pytestmark = pytest.mark.timeout(60)

CODEC_MODULE = {"gzip": "gzip", "snappy": "snappy", "lz4": "lz4.frame", "zstd": "zstandard"}


@pytest.fixture
def make_producer(bootstrap: str) -> Iterator[Callable[..., KafkaProducer]]:
    made: list[KafkaProducer] = []

    def make(**extra: Any) -> KafkaProducer:
        settings: dict[str, Any] = {"enable_idempotence": False, "linger_ms": 5, **extra}
        p = KafkaProducer(bootstrap_servers=bootstrap, **settings)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close(timeout=5)


@pytest.fixture
def make_consumer(bootstrap: str) -> Iterator[Callable[..., KafkaConsumer]]:
    made: list[KafkaConsumer] = []

    def make(**extra: Any) -> KafkaConsumer:
        c = KafkaConsumer(bootstrap_servers=bootstrap, **ASSIGN_ONLY_CONSUMER, **extra)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture
def admin(bootstrap: str) -> Iterator[KafkaAdminClient]:
    a = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    yield a
    a.close()


def produce_all(
    p: KafkaProducer,
    topic: str,
    records: list[Record],
    partition: int = 0,
    timestamps: list[int] | None = None,
) -> list[int]:
    futures = [
        p.send(
            topic,
            key=k,
            value=v,
            headers=h or None,
            partition=partition,
            timestamp_ms=None if timestamps is None else timestamps[i],
        )
        for i, (k, v, h) in enumerate(records)
    ]
    p.flush(timeout=15)
    return [f.get(timeout=15).offset for f in futures]


def consume(c: KafkaConsumer, count: int, timeout: float = 15.0) -> list[Any]:
    out: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(out) < count and time.monotonic() < deadline:
        for _tp, msgs in sorted(c.poll(timeout_ms=200).items()):
            out.extend(msgs)
    assert len(out) == count, f"consumed {len(out)} of {count} messages"
    return out


def poll_quiet(c: KafkaConsumer, seconds: float) -> list[Any]:
    out: list[Any] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for msgs in c.poll(timeout_ms=100).values():
            out.extend(msgs)
    return out


def test_keyed_produce_consume_byte_exact(
    make_producer: Callable[..., KafkaProducer],
    make_consumer: Callable[..., KafkaConsumer],
    topic_factory: Callable[..., str],
) -> None:
    topic = topic_factory(1)
    offsets = produce_all(make_producer(), topic, RECORDS_WITH_KEY_OR_VALUE)
    assert offsets == list(range(len(RECORDS_WITH_KEY_OR_VALUE)))
    c = make_consumer()
    c.assign([TopicPartition(topic, 0)])
    c.seek_to_beginning()
    msgs = consume(c, len(RECORDS_WITH_KEY_OR_VALUE))
    assert [m.offset for m in msgs] == list(range(len(RECORDS_WITH_KEY_OR_VALUE)))
    assert_same_records([record_from_consumer_record(m) for m in msgs], RECORDS_WITH_KEY_OR_VALUE)


@pytest.mark.parametrize("codec", CODECS)
def test_compression_round_trip(
    make_producer: Callable[..., KafkaProducer],
    make_consumer: Callable[..., KafkaConsumer],
    topic_factory: Callable[..., str],
    data_dir: Path,
    codec: str,
) -> None:
    if importlib.util.find_spec(CODEC_MODULE[codec].split(".")[0]) is None:
        message = f"kafka-python needs {CODEC_MODULE[codec]} for {codec}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    topic = topic_factory(1)
    produce_all(make_producer(compression_type=codec, linger_ms=50), topic, COMPRESSIBLE_RECORDS)
    c = make_consumer()
    c.assign([TopicPartition(topic, 0)])
    c.seek_to_beginning()
    assert_same_records(
        [record_from_consumer_record(m) for m in consume(c, len(COMPRESSIBLE_RECORDS))],
        COMPRESSIBLE_RECORDS,
    )
    assert_compressed(data_dir, topic, codec)


def test_admin_create_describe_delete(admin: KafkaAdminClient, unique: str) -> None:
    name = f"admin-kp-{unique}"
    admin.create_topics(
        {
            name: {
                "num_partitions": 3,
                "replication_factor": 1,
                "configs": {"retention.ms": "123456"},
            }
        }
    )
    with pytest.raises(TopicAlreadyExistsError):
        admin.create_topics({name: {"num_partitions": 1, "replication_factor": 1}})

    assert name in admin.list_topics()
    described = admin.describe_topics([name])
    assert len(described) == 1 and len(described[0]["partitions"]) == 3

    resource = ConfigResource(ConfigResourceType.TOPIC, name)
    modified = admin.describe_configs([resource])["topic"][name]
    assert modified["retention.ms"]["value"] == "123456"
    everything = admin.describe_configs([resource], config_filter="all")["topic"][name]
    assert everything["max.message.bytes"]["value"] == "1048588"
    assert everything["cleanup.policy"]["value"] == "delete"

    cluster = admin.describe_cluster()
    assert cluster["cluster_id"] and len(cluster["brokers"]) == 1

    admin.create_partitions({name: 5})
    wait_until(
        lambda: len(admin.describe_topics([name])[0]["partitions"]) == 5, what="5 partitions"
    )

    admin.delete_topics([name])
    wait_until(lambda: name not in admin.list_topics(), what="topic deletion")


def test_admin_create_topics_with_a_duplicated_name(admin: KafkaAdminClient, unique: str) -> None:
    """The duplicated name is answered INVALID_REQUEST and not created; the rest of the request
    is (Kafka's ControllerApis.createTopics)."""
    twice, once = f"dup-kp-{unique}", f"single-kp-{unique}"
    with pytest.raises(InvalidRequestError, match="Duplicate topic name"):
        admin.create_topics([twice, twice, once])
    wait_until(lambda: once in admin.list_topics(), what="the other topic created")
    assert twice not in admin.list_topics()


def test_offsets_earliest_latest_by_timestamp(
    make_producer: Callable[..., KafkaProducer],
    make_consumer: Callable[..., KafkaConsumer],
    admin: KafkaAdminClient,
    topic_factory: Callable[..., str],
) -> None:
    topic = topic_factory(1)
    base = int(time.time() * 1000) - 3_600_000
    stamps = [base + i * 1000 for i in range(10)]
    produce_all(
        make_producer(), topic, [(None, f"m{i}".encode(), []) for i in range(10)], timestamps=stamps
    )
    tp = TopicPartition(topic, 0)
    c = make_consumer()
    assert c.beginning_offsets([tp]) == {tp: 0}
    assert c.end_offsets([tp]) == {tp: 10}
    found = c.offsets_for_times({tp: base + 4500})[tp]
    assert found is not None and (found.offset, found.timestamp) == (5, stamps[5])
    assert c.offsets_for_times({tp: base - 1})[tp].offset == 0
    assert c.offsets_for_times({tp: base + 60_000})[tp] is None  # no such record

    c.assign([tp])
    c.seek(tp, found.offset)
    msgs = consume(c, 5)
    assert [m.offset for m in msgs] == [5, 6, 7, 8, 9]
    assert [m.timestamp for m in msgs] == stamps[5:]

    specs = {
        "earliest": (OffsetSpec.EARLIEST, 0),
        "latest": (OffsetSpec.LATEST, 10),
        "max_timestamp": (OffsetSpec.MAX_TIMESTAMP, 9),
        "timestamp": (base + 2500, 3),
    }
    for label, (spec, expected) in specs.items():
        got = admin.list_partition_offsets({tp: spec})[tp]
        assert got.offset == expected, f"{label}: got {got}, expected offset {expected}"


def test_seek_and_replay(
    make_producer: Callable[..., KafkaProducer],
    make_consumer: Callable[..., KafkaConsumer],
    topic_factory: Callable[..., str],
) -> None:
    topic = topic_factory(1)
    produce_all(make_producer(), topic, [(None, f"m{i}".encode(), []) for i in range(20)])
    tp = TopicPartition(topic, 0)
    c = make_consumer()
    c.assign([tp])
    c.seek_to_beginning(tp)
    first = consume(c, 20)
    assert [m.value for m in first] == [f"m{i}".encode() for i in range(20)]
    assert c.position(tp) == 20

    c.seek(tp, 5)
    assert [m.offset for m in consume(c, 15)] == list(range(5, 20))
    c.seek_to_beginning(tp)
    assert [m.value for m in consume(c, 20)] == [m.value for m in first]
    c.seek(tp, 17)
    assert [m.offset for m in consume(c, 3)] == [17, 18, 19]
    c.seek_to_end(tp)
    assert poll_quiet(c, 0.5) == []
    assert c.position(tp) == 20


def test_pause_resume(
    make_producer: Callable[..., KafkaProducer],
    make_consumer: Callable[..., KafkaConsumer],
    topic_factory: Callable[..., str],
) -> None:
    topic = topic_factory(3)
    p = make_producer()

    def fill(start: int) -> None:
        for part in range(3):
            produce_all(
                p,
                topic,
                [(None, f"p{part}-{i}".encode(), []) for i in range(start, start + 5)],
                partition=part,
            )

    fill(0)
    tps = [TopicPartition(topic, part) for part in range(3)]
    c = make_consumer()
    c.assign(tps)
    c.seek_to_beginning()
    assert len(consume(c, 15)) == 15

    c.pause(tps[1])
    assert c.paused() == {tps[1]}
    fill(5)
    flowing = consume(c, 10)
    assert sorted({m.partition for m in flowing}) == [0, 2]
    assert poll_quiet(c, 1.0) == [], "a paused partition delivered messages"

    c.resume(tps[1])
    resumed = consume(c, 5)
    assert {m.partition for m in resumed} == {1}
    assert [m.value for m in resumed] == [f"p1-{i}".encode() for i in range(5, 10)]
