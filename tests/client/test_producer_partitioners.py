"""KafkaJS's partitioners: the same key lands on the same partition as from KafkaJS 2.2.4, and a
custom partitioner (create_partitioner) chooses partitions in Python."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from klamm import ConfigError, Kafka, Partitioners
from klamm.client.partitioners import _legacy_murmur2, murmur2

# (key, KafkaJS legacy murmur2, KafkaJS default murmur2), printed by KafkaJS 2.2.4's own
# src/producer/partitioners/{legacy,default}/murmur2.js under node (tests/parity checks more
# keys live against node).
GOLDEN = [
    (b"c1", 681647426, 2069367011),
    (b"c2", 312953934, -1855343131),
    (b"c3", -194659896, 1044721541),
    (b"", 275646684, 275646681),
    (b"a", -809885833, -1563381124),
    (b"ab", -1686076413, 316155434),
    (b"abc", 1545667907, 479470107),
    (b"abcd", -2139815384, -1323649548),
    (b"abcde", 1468550417, 461995741),
    ("ü-ñ".encode(), -1613994342, -359537958),
    (b"order-42", -1977366203, 501153024),
]


@pytest.mark.parametrize(("key", "legacy", "default"), GOLDEN)
def test_murmur2_is_kafkajs_byte_for_byte(key: bytes, legacy: int, default: int) -> None:
    assert _legacy_murmur2(key) == legacy
    assert murmur2(key) == default


def test_partitioners_follow_kafkajs_rules() -> None:
    metadata = [{"partition_id": i, "leader": 0 if i != 1 else -1} for i in range(3)]
    for factory, hash_key in (
        (Partitioners.LegacyPartitioner, _legacy_murmur2),
        (Partitioners.DefaultPartitioner, murmur2),
    ):
        partition = factory()
        keyed = partition(topic="t", partition_metadata=metadata, message={"key": "order-42"})
        assert keyed == (hash_key(b"order-42") & 0x7FFFFFFF) % 3  # over all partitions
        assert partition(topic="t", partition_metadata=metadata, message={"partition": 1}) == 1
        # No key: round robin over the partitions that have a leader.
        turns = [partition(topic="t", partition_metadata=metadata, message={}) for _ in range(4)]
        assert set(turns) == {0, 2} and turns[0] != turns[1]
    assert Partitioners.JavaCompatiblePartitioner is Partitioners.DefaultPartitioner


async def test_legacy_and_custom_partitioners_place_messages(kafka: Kafka, unique: str) -> None:
    topic = f"parts-{unique}"
    keys = [f"k{i}" for i in range(12)]
    async with kafka.admin() as admin:
        await admin.create_topics(topics=[{"topic": topic, "num_partitions": 5}])
    async with kafka.producer(create_partitioner=Partitioners.LegacyPartitioner) as producer:
        meta = await producer.send(topic=topic, messages=[{"key": k, "value": b"v"} for k in keys])
    legacy = sorted((_legacy_murmur2(k.encode()) & 0x7FFFFFFF) % 5 for k in keys)
    assert sorted(m.partition for m in meta) == legacy
    assert legacy != sorted((murmur2(k.encode()) & 0x7FFFFFFF) % 5 for k in keys)

    seen: list[tuple[str, int, Any]] = []

    def last_partition() -> Any:
        def partition(
            *, topic: str, partition_metadata: Sequence[Mapping[str, Any]], message: Any
        ) -> int:
            seen.append((topic, len(partition_metadata), message.get("value")))
            return int(partition_metadata[-1]["partition_id"])

        return partition

    async with kafka.producer(create_partitioner=last_partition) as producer:
        meta = await producer.send(
            topic=topic,
            messages=[{"value": b"a"}, {"value": b"b", "headers": {"h": b"1"}}, {"value": b"c"}],
        )
        assert [m.partition for m in meta] == [4, 4, 4]
        assert seen == [(topic, 5, b"a"), (topic, 5, b"b"), (topic, 5, b"c")]
        explicit = await producer.send(topic=topic, messages=[{"value": b"d", "partition": 0}])
        assert explicit[0].partition == 0 and len(seen) == 3  # an explicit partition wins

    def out_of_range() -> Any:
        return lambda **_: 99

    async with kafka.producer(create_partitioner=out_of_range) as producer:
        with pytest.raises(ConfigError):
            await producer.send(topic=topic, messages=[{"value": b"x"}])
    with pytest.raises(ConfigError):
        kafka.producer(create_partitioner="murmur2")  # type: ignore[arg-type]
