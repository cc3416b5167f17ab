"""The operator protocol (issue 13) through real admin clients: kafka-python 3's and
confluent-kafka's. (librdkafka 2.16's describe_topics still sends Metadata to a broker offering
DescribeTopicPartitions; kafka-python's describe_topic_partitions sends it.)"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka import ElectionType, KafkaException, TopicCollection
from confluent_kafka import TopicPartition as CfTopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin import ConfigResource as CfConfigResource

with warnings.catch_warnings():  # kafka-python 3.0.12: see test_core_kafka_python.py
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import KafkaAdminClient, TopicPartition
    from kafka.admin import ConfigResource, ConfigResourceType
    from kafka.errors import InvalidReplicationAssignmentError

from tests.interop.interop_helpers import NodeRunner

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def kp_admin(bootstrap: str) -> Iterator[KafkaAdminClient]:
    a = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    yield a
    a.close()


def test_confluent_describe_topics_and_configs(
    bootstrap: str, topic_factory: Callable[..., str]
) -> None:
    name = topic_factory(3)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    described = admin.describe_topics(TopicCollection([name]))[name].result(timeout=15)
    assert described.name == name and not described.is_internal
    assert [p.id for p in described.partitions] == [0, 1, 2]
    assert all(p.leader is not None and p.leader.id == 0 for p in described.partitions)
    missing = admin.describe_topics(TopicCollection(["no-such-topic"]))["no-such-topic"]
    with pytest.raises(KafkaException):
        missing.result(timeout=15)

    resource = CfConfigResource(CfConfigResource.Type.TOPIC, name)
    configs = admin.describe_configs([resource])[resource].result(timeout=15)
    # librdkafka always asks for synonyms: the broker-level name and Kafka's default.
    assert list(configs["retention.ms"].synonyms) == ["log.retention.ms"]
    broker = CfConfigResource(CfConfigResource.Type.BROKER, "0")
    entries = admin.describe_configs([broker])[broker].result(timeout=15)
    listeners = entries["advertised.listeners"]
    assert listeners.is_read_only and listeners.source == 4  # STATIC_BROKER_CONFIG


def test_confluent_elect_leaders_is_not_needed(
    bootstrap: str, topic_factory: Callable[..., str]
) -> None:
    name = topic_factory(2)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    partitions = [CfTopicPartition(name, 0), CfTopicPartition(name, 1)]
    result = admin.elect_leaders(ElectionType.PREFERRED, partitions).result(timeout=15)
    assert {(tp.topic, tp.partition): err.code() for tp, err in result.items()} == {
        (name, 0): 84,  # ELECTION_NOT_NEEDED
        (name, 1): 84,
    }


def test_kafka_python_describe_configs_synonyms_only_when_asked(
    kp_admin: KafkaAdminClient, topic_factory: Callable[..., str]
) -> None:
    name = topic_factory(1, **{"retention.ms": "1234"})
    resource = ConfigResource(ConfigResourceType.TOPIC, name)
    plain = kp_admin.describe_configs([resource], config_filter="all")["topic"][name]
    full = kp_admin.describe_configs([resource], include_synonyms=True, config_filter="all")
    synonyms = full["topic"][name]["retention.ms"]["synonyms"]
    assert not plain["retention.ms"].get("synonyms")
    assert [s["name"] for s in synonyms] == ["retention.ms", "log.retention.ms"]


def test_kafka_python_partition_tools(
    kp_admin: KafkaAdminClient, topic_factory: Callable[..., str]
) -> None:
    name = topic_factory(2)
    first = kp_admin.describe_topic_partitions([name], response_partition_limit=1)
    assert [p["partition_index"] for p in first["topics"][0]["partitions"]] == [0]
    assert first["next_cursor"] == {"topic_name": name, "partition_index": 1}
    rest = kp_admin.describe_topic_partitions([name], cursor=first["next_cursor"])
    assert [p["partition_index"] for p in rest["topics"][0]["partitions"]] == [1]
    assert rest["next_cursor"] is None

    assert kp_admin.list_partition_reassignments() == {}
    kept = kp_admin.alter_partition_reassignments({TopicPartition(name, 0): [0]})
    assert kept == {TopicPartition(name, 0): None}  # [this broker] is the replica set already
    refused = kp_admin.alter_partition_reassignments({TopicPartition(name, 1): [0, 1]})
    assert refused == {TopicPartition(name, 1): InvalidReplicationAssignmentError}

    elected = kp_admin.elect_leaders(0, {name: [0, 1]}, raise_errors=False)
    codes = [(r.topic, p.partition_id, p.error_code)
             for r in elected.replica_election_results for p in r.partition_result]  # fmt: skip
    assert codes == [(name, 0, 84), (name, 1, 84)]  # ELECTION_NOT_NEEDED


def test_kafka_python_commits_offsets_of_a_partition_the_topic_lacks(
    bootstrap: str, topic_factory: Callable[..., str], unique: str
) -> None:
    """Kafka's TxnOffsetCommit checks only that the topic exists; klamm refused the partition
    with a retriable error and kafka-python retried until its transaction timed out (60 s)."""
    from kafka import KafkaProducer
    from kafka.structs import OffsetAndMetadata

    src = topic_factory(1)
    producer = KafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"kp-op-{unique}")
    try:
        producer.init_transactions()
        producer.begin_transaction()
        producer.send_offsets_to_transaction(
            {TopicPartition(src, 3): OffsetAndMetadata(7, "", -1)}, f"kp-op-g-{unique}"
        )
        started = time.monotonic()
        producer.commit_transaction()
        assert time.monotonic() - started < 30  # was 60 s of retries, then fenced
    finally:
        producer.close(timeout=5)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets(f"kp-op-g-{unique}")[f"kp-op-g-{unique}"]
    finally:
        admin.close()
    assert offsets[TopicPartition(src, 3)].offset == 7


def test_kafkajs_synonyms_and_reassignments(node: NodeRunner, bootstrap: str, unique: str) -> None:
    out: dict[str, Any] = node(
        "operator_admin.js", {"bootstrap": bootstrap, "topic": f"kjs-op-{unique}"}
    )
    assert out["plainSynonyms"] == []
    assert out["synonyms"] == [
        ["retention.ms", "1234", 1],  # TOPIC_CONFIG
        ["log.retention.ms", "604800000", 5],  # DEFAULT_CONFIG
    ]
    assert out["listed"] == {"topics": []}
    assert out["kept"] is True  # [this broker]: the replica set it has
    assert out["refused"] == {
        "name": "KafkaJSAggregateError",
        "types": ["INVALID_REPLICA_ASSIGNMENT"],
    }
