"""KafkaJS's partitioners, computing the same partition for the same key as KafkaJS 2.2.4.

    kafka.producer(create_partitioner=Partitioners.LegacyPartitioner)
    kafka.producer(create_partitioner=my_factory)   # my_factory() -> partitioner

A partitioner factory takes no argument and returns the partitioner: a callable taking
`topic`, `partition_metadata` (`[{"partition_id", "leader", "replicas", "isr"}]`, every partition
of the topic) and `message` (the message dict being sent) as keyword arguments, and returning
the partition number. That is KafkaJS's ICustomPartitioner, in snake_case.

- `DefaultPartitioner` (KafkaJS's default since 2.0, Java's): murmur2 of the key, positive,
  modulo the partition count. librdkafka's `murmur2_random` computes the same for keyed messages,
  so the producer leaves the default to librdkafka (in C, no Python per message); keyless
  messages then go to a random partition, where KafkaJS's round-robins from a random start.
- `LegacyPartitioner` (KafkaJS 1.x's default): KafkaJS's older murmur2, which computes in
  JavaScript doubles and so differs from Java's for most keys. `_legacy_murmur2` reproduces its
  arithmetic exactly (a double product rounds to 53 bits before the int32 conversion).

A custom or legacy partitioner runs in Python for each message that names no partition.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK32 = 0xFFFFFFFF


class Partitioner(Protocol):
    def __call__(
        self,
        *,
        topic: str,
        partition_metadata: Sequence[Mapping[str, Any]],
        message: Mapping[str, Any],
    ) -> int: ...


PartitionerFactory = Callable[[], Partitioner]


def _key_bytes(key: object) -> bytes:
    """KafkaJS hashes `Buffer.from(String(key))` unless the key is a Buffer."""
    if isinstance(key, bytes | bytearray | memoryview):
        return bytes(key)
    return str(key).encode()


def _int32(value: int) -> int:
    value &= _MASK32
    return value - (1 << 32) if value & 0x80000000 else value


def murmur2(key: bytes) -> int:
    """Java's (and KafkaJS 2.x's default) murmur2, as a signed 32-bit int."""
    length = len(key)
    h = (_SEED ^ length) & _MASK32
    for i in range(length // 4):
        k = int.from_bytes(key[i * 4 : i * 4 + 4], "little")
        k = (k * _M) & _MASK32
        k ^= k >> 24
        k = (k * _M) & _MASK32
        h = ((h * _M) & _MASK32) ^ k
    rest = length % 4
    tail = length & ~3
    if rest == 3:
        h ^= key[tail + 2] << 16
    if rest >= 2:
        h ^= key[tail + 1] << 8
    if rest >= 1:
        h ^= key[tail]
        h = (h * _M) & _MASK32
    h ^= h >> 13
    h = (h * _M) & _MASK32
    h ^= h >> 15
    return _int32(h)


def _to_int32(x: float) -> int:
    """JavaScript's ToInt32 of a (finite) double."""
    return _int32(int(x))


def _to_uint32(x: float) -> int:
    return int(x) & _MASK32


def _legacy_murmur2(key: bytes) -> int:
    """KafkaJS's legacy murmur2 (src/producer/partitioners/legacy/murmur2.js) step by step:
    `*=` is a double multiplication, `^` and `>>>` convert to 32 bits first, and the block loop
    runs while i < length / 4 in floating point, so a key whose length is not a multiple of
    4 gets one more block, its missing bytes read as 0, before the tail is mixed in again."""
    length = len(key)

    def byte(i: int) -> int:
        return key[i] if i < length else 0  # `undefined & 0xff` is 0 in JavaScript

    h: float = _to_int32(_SEED) ^ length
    for i in range(-(-length // 4)):
        i4 = i * 4
        # (b0) + (b1 << 8) + (b2 << 16) + (b3 << 24): the last shift is an int32 (may be < 0).
        k: float = (
            byte(i4) + (byte(i4 + 1) << 8) + (byte(i4 + 2) << 16) + _int32(byte(i4 + 3) << 24)
        )
        k = float(k) * _M
        k = _to_int32(k) ^ (_to_uint32(k) >> 24)
        k = float(k) * _M
        h = float(h) * _M
        h = _to_int32(h) ^ _to_int32(k)
    rest = length % 4
    tail = length & ~3
    if rest:
        if rest == 3:
            h = _to_int32(h) ^ (key[tail + 2] << 16)
        if rest >= 2:
            h = _to_int32(h) ^ (key[tail + 1] << 8)
        h = _to_int32(h) ^ key[tail]
        h = float(h) * _M
    h = _to_int32(h) ^ (_to_uint32(h) >> 13)
    h = float(h) * _M
    return _to_int32(h) ^ (_to_uint32(h) >> 15)


def _murmur2_partitioner(hash_key: Callable[[bytes], int]) -> PartitionerFactory:
    """KafkaJS's partitioner skeleton (legacy/partitioner.js): an explicit partition wins; a
    key is hashed over all partitions; no key round-robins over the partitions with a leader,
    from a random start per topic."""

    def create() -> Partitioner:
        counters: dict[str, itertools.count[int]] = {}

        def partition(
            *,
            topic: str,
            partition_metadata: Sequence[Mapping[str, Any]],
            message: Mapping[str, Any],
        ) -> int:
            explicit = message.get("partition")
            if explicit is not None:
                return int(explicit)
            count = len(partition_metadata)
            key = message.get("key")
            if key is not None:
                return (hash_key(_key_bytes(key)) & 0x7FFFFFFF) % count
            counter = counters.get(topic)
            if counter is None:
                counter = counters[topic] = itertools.count(random.getrandbits(32) + 1)
            turn = next(counter) & 0x7FFFFFFF
            available = [p for p in partition_metadata if p.get("leader", 0) >= 0]
            if available:
                return int(available[turn % len(available)]["partition_id"])
            return turn % count

        return partition

    return create


class Partitioners:
    """KafkaJS's `Partitioners`: factories for `kafka.producer(create_partitioner=...)`."""

    DefaultPartitioner: PartitionerFactory = staticmethod(_murmur2_partitioner(murmur2))
    LegacyPartitioner: PartitionerFactory = staticmethod(_murmur2_partitioner(_legacy_murmur2))
    #: KafkaJS's deprecated name for DefaultPartitioner.
    JavaCompatiblePartitioner: PartitionerFactory = DefaultPartitioner


__all__ = ["Partitioner", "PartitionerFactory", "Partitioners", "murmur2"]
