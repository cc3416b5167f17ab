"""Transactions: the producer owns whether one is open; send_offsets takes KafkaJS's
consumer_group_id= as well as the consumer."""

from __future__ import annotations

import confluent_kafka
import pytest

from klamm import ConfigError, Kafka
from klamm.client.transactions import group_metadata_for


def test_group_metadata_for_a_group_id_is_librdkafkas_own() -> None:
    """The bytes sent for consumer_group_id= are what librdkafka writes for a consumer of that
    group that has not joined (no generation, no member id, no instance id)."""
    for group in ("g", "orders-service", "gruppe-ü"):
        consumer = confluent_kafka.Consumer(
            {"bootstrap.servers": "127.0.0.1:9", "group.id": group, "log_level": 0}
        )
        try:
            assert group_metadata_for(group) == consumer.consumer_group_metadata()
        finally:
            consumer.close()
    for bad in ("", None, 3, "a\x00b"):
        with pytest.raises(ConfigError):
            group_metadata_for(bad)  # type: ignore[arg-type]


async def test_send_offsets_with_consumer_group_id(kafka: Kafka, unique: str) -> None:
    """KafkaJS's sendOffsets({consumerGroupId, topics}): committed with the transaction, and
    not when it aborts."""
    topic, group = f"txn-so-{unique}", f"txn-so-g-{unique}"
    admin = kafka.admin()
    async with admin, kafka.producer(transactional_id=f"tx-so-{unique}") as producer:
        await admin.create_topics(topics=[{"topic": topic, "num_partitions": 2}])
        assert not producer.in_transaction()
        async with producer.transaction() as txn:
            assert producer.in_transaction()
            await txn.send(topic=topic, messages=[{"value": b"x"}])
            await txn.send_offsets(
                consumer_group_id=group,
                topics=[{"topic": topic, "partitions": [{"partition": 0, "offset": 5}]}],
            )
        assert not producer.in_transaction()
        txn = await producer.transaction()
        await txn.send_offsets(consumer_group_id=group, offsets={(topic, 1): 7})
        await txn.abort()
        fetched = await admin.fetch_offsets(group_id=group, topics=[topic])
        assert [(p["partition"], p["offset"]) for p in fetched[0]["partitions"]] == [
            (0, 5),
            (1, -1),
        ]
        async with producer.transaction() as txn:
            with pytest.raises(ConfigError):
                await txn.send_offsets(offsets={(topic, 0): 1})  # no group named
            with pytest.raises(ConfigError):
                await txn.send_offsets(
                    consumer_group_id=group, topics=[{"topic": topic, "partitions": [{}]}]
                )
            # A wrong argument changes nothing: the transaction is still open, and commits.
            with pytest.raises(ConfigError):
                await txn.commit(timeout_ms="soon")  # type: ignore[arg-type]
            with pytest.raises(ConfigError):
                await txn.abort(timeout_ms=-1)
            assert txn.is_active() and producer.in_transaction()
