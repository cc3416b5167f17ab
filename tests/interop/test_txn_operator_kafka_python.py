"""Operator views of transactions (DescribeProducers, ListTransactions, DescribeTransactions)
through kafka-python's admin client, while a confluent-kafka producer holds a transaction open."""

from __future__ import annotations

from confluent_kafka import Producer
from kafka import KafkaAdminClient, TopicPartition


def test_open_transaction_is_visible_to_operators(kafka_broker, unique: str) -> None:
    topic, txn_id = f"ops-{unique}", f"ops-txn-{unique}"
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap,
                         "transactional.id": txn_id, "linger.ms": 0})  # fmt: skip
    admin = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap, request_timeout_ms=10_000)
    try:
        producer.init_transactions(10)
        producer.begin_transaction()
        for i in range(3):
            producer.produce(topic, value=f"v{i}".encode(), partition=0)
        assert producer.flush(10) == 0

        listed = [t for ts in admin.list_transactions().values() for t in ts]
        mine = [t for t in listed if t.transactional_id == txn_id]
        assert len(mine) == 1 and mine[0].state.value == "Ongoing", listed

        description = admin.describe_transactions([txn_id])[txn_id]
        assert description.state.value == "Ongoing"
        assert TopicPartition(topic, 0) in set(description.topic_partitions)

        producers = admin.describe_producers([TopicPartition(topic, 0)])
        (state,) = producers[TopicPartition(topic, 0)].active_producers
        assert state.producer_id == description.producer_id
        assert state.current_transaction_start_offset == 0
        assert state.last_sequence == 2

        producer.commit_transaction(10)
        after = admin.describe_transactions([txn_id])[txn_id]
        assert after.state.value == "CompleteCommit"
        (state,) = admin.describe_producers([TopicPartition(topic, 0)])[
            TopicPartition(topic, 0)
        ].active_producers
        assert state.current_transaction_start_offset == -1
    finally:
        admin.close()
        producer.flush(5)
