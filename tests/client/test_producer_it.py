"""Producer contract against klamm's broker."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from klamm import (
    CompressionTypes,
    ConfigError,
    Events,
    FatalError,
    Kafka,
    Message,
    ProducerFencedError,
    StateError,
)
from tests.client.client_helpers import FAST_CONSUMER, wait_until


async def consume_all(kafka: Kafka, topic: str, count: int) -> list[Any]:
    got: list[Any] = []
    consumer = kafka.consumer(group_id=f"read-{topic}", **FAST_CONSUMER)

    async def handler(payload: Any) -> None:
        got.append(payload.message)

    async with consumer:
        await consumer.subscribe(topics=[topic], from_beginning=True)
        await consumer.run(each_message=handler)
        await wait_until(lambda: len(got) >= count, what=f"{count} messages on {topic}")
    return got


async def test_send_returns_metadata_in_order_and_round_trips(kafka: Kafka, unique: str) -> None:
    topic = f"orders-{unique}"
    producer = kafka.producer(idempotent=True)
    events: list[str] = []
    producer.on(Events.CONNECT, lambda e: events.append(e.type))
    producer.on(Events.DISCONNECT, lambda e: events.append(e.type))
    await producer.connect()
    meta = await producer.send(
        topic=topic,
        messages=[
            Message(key=b"c1", value=b'{"n": 1}', headers={"trace-id": b"t1"}),
            {"key": "c2", "value": "two", "headers": {"multi": [b"a", b"b"]}, "timestamp": 1_000},
            Message(value=None),  # a tombstone
        ],
        compression=CompressionTypes.GZIP,
        acks=-1,
    )
    await producer.disconnect()
    assert events == ["producer.connect", "producer.disconnect"]
    assert [(m.topic, m.partition) for m in meta] == [(topic, 0)] * 3
    assert [m.offset for m in meta] == [0, 1, 2]

    got = await consume_all(kafka, topic, 3)
    assert [(m.key, m.value) for m in got] == [(b"c1", b'{"n": 1}'), (b"c2", b"two"), (None, None)]
    assert got[0].headers == {"trace-id": b"t1"}
    assert got[1].header_list == [("multi", b"a"), ("multi", b"b")]
    assert got[1].timestamp == 1_000
    assert [m.offset for m in got] == [0, 1, 2]


@pytest.mark.parametrize("compression", list(CompressionTypes))
async def test_every_codec_per_send(
    kafka: Kafka, unique: str, compression: CompressionTypes
) -> None:
    topic = f"codec-{compression.value}-{unique}"
    async with kafka.producer() as producer:
        await producer.send(
            topic=topic, messages=[{"value": b"x" * 1000}] * 5, compression=compression
        )
    got = await consume_all(kafka, topic, 5)
    assert [m.value for m in got] == [b"x" * 1000] * 5


async def test_compression_by_value_or_kafkajs_number(kafka: Kafka, unique: str) -> None:
    """KafkaJS passes `CompressionTypes.GZIP`, a number (1); a Python caller may pass "gzip"."""
    topic = f"codec-forms-{unique}"
    async with kafka.producer() as producer:
        await producer.send(topic=topic, messages=[{"value": b"a"}], compression="gzip")
        await producer.send(topic=topic, messages=[{"value": b"b"}], compression=4)  # ZSTD
        await producer.send_batch(
            topic_messages=[{"topic": topic, "messages": [{"value": b"c"}]}], compression="lz4"
        )
        bad_values: list[Any] = ["brotli", "GZIP", 5, True, CompressionTypes, [1]]
        for bad in bad_values:
            with pytest.raises(ConfigError, match=r"CompressionTypes\.GZIP \('gzip' or 1\)"):
                await producer.send(topic=topic, messages=[{"value": b"x"}], compression=bad)
    got = await consume_all(kafka, topic, 3)
    assert [m.value for m in got] == [b"a", b"b", b"c"]


async def test_per_send_acks(kafka: Kafka, unique: str) -> None:
    topic = f"acks-{unique}"
    async with kafka.producer() as producer:
        all_meta = await producer.send(topic=topic, messages=[{"value": b"a"}], acks=-1)
        one_meta = await producer.send(topic=topic, messages=[{"value": b"b"}], acks=1)
        # acks=0: the broker does not answer, so librdkafka reports offset -1 (unknown).
        zero_meta = await producer.send(topic=topic, messages=[{"value": b"c"}], acks=0)
    assert all_meta[0].offset == 0 and one_meta[0].offset == 1
    assert zero_meta[0].offset < 0
    got = await consume_all(kafka, topic, 3)
    assert [m.value for m in got] == [b"a", b"b", b"c"]


async def test_send_batch_to_several_topics(kafka: Kafka, unique: str) -> None:
    a, b = f"orders-{unique}", f"analytics-{unique}"
    async with kafka.producer() as producer:
        meta = await producer.send_batch(
            topic_messages=[
                {"topic": a, "messages": [{"value": b"1"}, {"value": b"2"}]},
                {"topic": b, "messages": [{"value": b"3"}]},
            ]
        )
    # Per partition in the order given; across partitions in the order acknowledged.
    assert sorted((m.topic, m.offset) for m in meta) == sorted([(a, 0), (a, 1), (b, 0)])


async def test_send_batch_mixing_plain_messages_and_headers(kafka: Kafka, unique: str) -> None:
    """Several topics are checked up front: one entry all plain, one needing normalising."""
    a, b = f"plain-{unique}", f"headers-{unique}"
    async with kafka.producer() as producer:
        meta = await producer.send_batch(
            topic_messages=[
                {"topic": a, "messages": [{"value": b"1"}]},
                {"topic": b, "messages": [Message(value=b"2", headers={"h": b"x"})]},
            ]
        )
    assert sorted((m.topic, m.offset) for m in meta) == sorted([(a, 0), (b, 0)])
    got = await consume_all(kafka, b, 1)
    assert got[0].headers == {"h": b"x"}


async def test_explicit_partition(kafka: Kafka, unique: str) -> None:
    topic = f"parts-{unique}"
    async with kafka.admin() as admin:
        await admin.create_topics(topics=[{"topic": topic, "num_partitions": 3}])
    async with kafka.producer() as producer:
        meta = await producer.send(
            topic=topic,
            messages=[Message(value=b"p2", partition=2), Message(value=b"p1", partition=1)],
        )
    assert sorted((m.partition, m.offset) for m in meta) == [(1, 0), (2, 0)]


async def test_bad_input_fails_the_send_before_anything_is_produced(
    kafka: Kafka, unique: str
) -> None:
    """Both ways a plain send is checked: by librdkafka for one produce call, up front for a
    send spanning several; and the caller's dicts come back as they were given."""
    topic = f"bad-{unique}"
    async with kafka.producer() as producer:
        with pytest.raises(ConfigError):
            await producer.send(topic=topic, messages=[{"value": b"ok"}, {"value": 12}])
        many: list[Any] = [{"value": b"ok"} for _ in range(5_000)] + [{"value": 12}]
        with pytest.raises(ConfigError):
            await producer.send(topic=topic, messages=many)
        assert all(m == {"value": b"ok"} for m in many[:-1])
        # bytearray is not what librdkafka takes, but it is bytes-like: converted, then sent.
        meta = await producer.send(topic=topic, messages=[{"value": bytearray(b"first")}])
    assert [m.offset for m in meta] == [0]  # nothing before it reached the topic
    got = await consume_all(kafka, topic, 1)
    assert [m.value for m in got] == [b"first"]


async def test_the_same_dict_many_times_through_a_full_queue(kafka: Kafka, unique: str) -> None:
    """librdkafka flags each message it refuses on the message's own dict; one dict given 100
    times must still be sent 100 times when the local queue (10 here) keeps refusing."""
    topic = f"same-{unique}"
    message = {"value": b"same"}
    mixed: list[Any] = [message, Message(value=b"h", headers={"h": b"1"})] * 30
    async with kafka.producer(config={"queue.buffering.max.messages": 10}) as producer:
        meta = await producer.send(topic=topic, messages=[message] * 100, timeout_ms=20_000)
        meta_mixed = await producer.send(topic=topic, messages=mixed, timeout_ms=20_000)
    assert [m.offset for m in meta] == list(range(100))
    assert [m.offset for m in meta_mixed] == list(range(100, 160))
    assert message == {"value": b"same"}


async def test_a_large_send_keeps_order(kafka: Kafka, unique: str) -> None:
    topic = f"large-{unique}"
    messages = [Message(value=str(i).encode()) for i in range(5_000)]
    async with kafka.producer() as producer:
        meta = await producer.send(topic=topic, messages=messages)
    assert [m.offset for m in meta] == list(range(5_000))
    assert messages[-1] == {"value": b"4999"}  # the caller's dicts are not touched


async def test_misuse_is_reported(kafka: Kafka, unique: str) -> None:
    producer = kafka.producer(idempotent=True)
    with pytest.raises(StateError):
        await producer.send(topic=f"t-{unique}", messages=[{"value": b"x"}])
    async with producer:
        with pytest.raises(ConfigError):
            await producer.send(topic=f"t-{unique}", messages=[{"value": b"x"}], acks=1)
        with pytest.raises(ConfigError):
            producer.transaction()
    txn_producer = kafka.producer(transactional_id=f"tx-{unique}")
    async with txn_producer:
        with pytest.raises(StateError):
            await txn_producer.send(topic=f"t-{unique}", messages=[{"value": b"x"}])


async def test_a_fenced_producer_fails_its_sends_instead_of_hanging(
    kafka: Kafka, unique: str
) -> None:
    """A newer instance with the same transactional id fences the old one. librdkafka reports
    that once, as an exception out of poll(): the old producer's pending send must fail with
    ProducerFencedError (it used to wait forever), later sends must fail at once, and
    disconnect() must still finish. Every wait is bounded, so a regression fails, not hangs."""
    topic, txn_id = f"fenced-{unique}", f"fenced-{unique}"
    async with kafka.admin() as admin:
        await admin.create_topics(topics=[{"topic": topic, "num_partitions": 1}])
    old = kafka.producer(transactional_id=txn_id)
    await asyncio.wait_for(old.connect(), 15)
    try:
        txn = await old.transaction()
        await asyncio.wait_for(txn.send(topic=topic, messages=[{"value": b"a"}]), 15)
        async with kafka.producer(transactional_id=txn_id):  # connect() fences `old`
            with pytest.raises(ProducerFencedError) as fenced:
                await asyncio.wait_for(txn.send(topic=topic, messages=[{"value": b"b"}]), 15)
            assert fenced.value.retriable is False
            with pytest.raises(ProducerFencedError):  # before producing anything
                await asyncio.wait_for(txn.send(topic=topic, messages=[{"value": b"c"}]), 2)
            with pytest.raises(FatalError):
                await asyncio.wait_for(txn.commit(), 15)
    finally:
        await asyncio.wait_for(old.disconnect(timeout_ms=2_000), 15)


async def test_keys_partition_like_kafkajs_and_java(kafka: Kafka, unique: str) -> None:
    """murmur2(key) % partitions, the Java/KafkaJS DefaultPartitioner; librdkafka's default
    (CRC32) would put these keys on partitions [1, 3, 5] instead of [1, 5, 5]."""
    topic = f"keys-{unique}"
    async with kafka.admin() as admin:
        await admin.create_topics(topics=[{"topic": topic, "num_partitions": 6}])
    async with kafka.producer() as producer:
        meta = await producer.send(
            topic=topic, messages=[{"key": k, "value": b"v"} for k in ("c1", "c2", "c3")]
        )
    assert len(meta) == 3
    expected = sorted(_murmur2_partition(k.encode(), 6) for k in ("c1", "c2", "c3"))
    assert sorted(m.partition for m in meta) == expected


def _murmur2_partition(key: bytes, partitions: int) -> int:
    """Kafka's Utils.murmur2 (seed 0x9747b28c), then toPositive(h) % partitions."""
    m, r = 0x5BD1E995, 24
    length = len(key)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(key[i : i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    tail = length % 4
    base = length - tail
    if tail == 3:
        h ^= key[base + 2] << 16
    if tail >= 2:
        h ^= key[base + 1] << 8
    if tail >= 1:
        h ^= key[base]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return (h & 0x7FFFFFFF) % partitions
