"""The operator protocol answered as Kafka 4 answers it (issue 13): DescribeConfigs' types,
documentation, sources and synonyms; Kafka's wording where clients match on it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from klamm.broker.config import BrokerConfig
from klamm.protocol.errors import ErrorCode
from klamm.testing import EmbeddedBroker
from tests.broker.wire import Wire

RESOURCE_TOPIC, RESOURCE_BROKER = 2, 4
TOPIC_CONFIG, STATIC_BROKER_CONFIG, DEFAULT_CONFIG = 1, 4, 5
TYPE_BOOLEAN, TYPE_STRING, TYPE_INT, TYPE_LONG = 1, 2, 3, 5


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    config = BrokerConfig(topic_defaults={"segment.bytes": "2097152"})
    with EmbeddedBroker(config=config, advertised_host="kafka.example") as b:
        yield b


def _describe(wire: Wire, resource_type: int, name: str, **flags: bool) -> dict[str, Any]:
    response = wire.request(
        32, 4, include_synonyms=flags.get("synonyms", False),
        include_documentation=flags.get("documentation", False),
        resources=[{"resource_type": resource_type, "resource_name": name,
                    "configuration_keys": None}],
    )  # fmt: skip
    (result,) = response.results
    assert result.error_code == ErrorCode.none, result.error_message
    return {c.name: c for c in result.configs}


def test_topic_configs_carry_type_and_synonyms_only_when_asked(broker: EmbeddedBroker) -> None:
    with Wire(broker.bootstrap) as wire:
        created = wire.request(
            19, 4, timeout=5000, validate_only=False,
            topics=[{"name": "described", "num_partitions": 1, "replication_factor": 1,
                     "assignments": [], "configs": [{"name": "retention.ms", "value": "1234"}]}],
        )  # fmt: skip
        assert created.topics[0].error_code == ErrorCode.none
        plain = _describe(wire, RESOURCE_TOPIC, "described")
        full = _describe(wire, RESOURCE_TOPIC, "described", synonyms=True, documentation=True)
    assert all(not c.synonyms and c.documentation is None for c in plain.values())
    assert plain["retention.ms"].config_type == TYPE_LONG
    assert plain["cleanup.policy"].config_type == 7  # LIST
    assert all(c.config_type != 0 for c in plain.values())  # never UNKNOWN
    assert all(c.documentation for c in full.values())
    retention = full["retention.ms"]
    assert (retention.value, retention.config_source) == ("1234", TOPIC_CONFIG)
    assert [(s.name, s.value, s.source) for s in retention.synonyms] == [
        ("retention.ms", "1234", TOPIC_CONFIG),
        ("log.retention.ms", "604800000", DEFAULT_CONFIG),
    ]
    segment = full["segment.bytes"]  # set broker-wide: its broker name is the synonym
    assert (segment.value, segment.config_source) == ("2097152", STATIC_BROKER_CONFIG)
    assert [(s.name, s.source) for s in segment.synonyms] == [
        ("log.segment.bytes", STATIC_BROKER_CONFIG),
        ("log.segment.bytes", DEFAULT_CONFIG),
    ]


def test_broker_configs_have_kafka_sources_types_and_read_only(broker: EmbeddedBroker) -> None:
    with Wire(broker.bootstrap) as wire:
        plain = _describe(wire, RESOURCE_BROKER, "0")
        full = _describe(wire, RESOURCE_BROKER, "0", synonyms=True, documentation=True)
    listeners = plain["advertised.listeners"]
    assert listeners.value == f"PLAINTEXT://kafka.example:{broker.port}"
    assert (listeners.config_source, listeners.read_only) == (STATIC_BROKER_CONFIG, True)
    assert listeners.config_type == TYPE_STRING and not listeners.synonyms
    assert plain["num.partitions"].config_source == DEFAULT_CONFIG  # left at Kafka's default
    assert plain["num.partitions"].config_type == TYPE_INT
    assert plain["auto.create.topics.enable"].config_type == TYPE_BOOLEAN
    assert plain["log.segment.bytes"].config_source == STATIC_BROKER_CONFIG
    assert all(c.config_type != 0 and c.read_only for c in plain.values())
    assert all(c.documentation for c in full.values())
    assert [(s.value, s.source) for s in full["log.segment.bytes"].synonyms] == [
        ("2097152", STATIC_BROKER_CONFIG),
        ("1073741824", DEFAULT_CONFIG),
    ]


def _create_one(wire: Wire, name: str, **overrides: Any) -> Any:
    topic = {"name": name, "num_partitions": 1, "replication_factor": 1, "assignments": [],
             "configs": []}  # fmt: skip
    topic.update(overrides)
    response = wire.request(19, 7, timeout=5000, validate_only=False, topics=[topic])
    (result,) = response.topics
    return result


@pytest.mark.parametrize(
    ("overrides", "code", "message"),
    [
        ({"configs": [{"name": "no.such.config", "value": "1"}]}, ErrorCode.invalid_config,
         "Unknown topic config name: no.such.config"),
        ({"replication_factor": 3}, ErrorCode.invalid_replication_factor,
         "Unable to replicate the partition 3 time(s): The target replication factor of 3 "
         "cannot be reached because only 1 broker(s) are registered."),
        ({"replication_factor": 0}, ErrorCode.invalid_replication_factor,
         "Replication factor was set to an invalid non-positive value."),
        ({"num_partitions": 0}, ErrorCode.invalid_partitions,
         "Number of partitions was set to an invalid non-positive value."),
        ({"num_partitions": -1, "replication_factor": -1,
          "assignments": [{"partition_index": 0, "broker_ids": [5]}]},
         ErrorCode.invalid_replica_assignment,
         "The manual partition assignment includes broker 5, but no such broker is registered."),
        ({"assignments": [{"partition_index": 0, "broker_ids": [0]}], "replication_factor": -1},
         ErrorCode.invalid_request,
         "A manual partition assignment was specified, but numPartitions was not set to -1."),
    ],
)  # fmt: skip
def test_create_topics_errors_in_kafka_words(
    broker: EmbeddedBroker, overrides: dict[str, Any], code: ErrorCode, message: str
) -> None:
    with Wire(broker.bootstrap) as wire:
        result = _create_one(wire, "worded", **overrides)
    assert (result.error_code, result.error_message) == (code, message)


def test_existing_topic_and_altered_unknown_config_in_kafka_words(broker: EmbeddedBroker) -> None:
    with Wire(broker.bootstrap) as wire:
        assert _create_one(wire, "exists").error_code == ErrorCode.none
        again = _create_one(wire, "exists")
        altered = wire.request(
            33, 2, validate_only=False,
            resources=[{"resource_type": RESOURCE_TOPIC, "resource_name": "exists",
                        "configs": [{"name": "no.such.config", "value": "1"}]}],
        )  # fmt: skip
    assert (again.error_code, again.error_message) == (
        ErrorCode.topic_already_exists,
        "Topic 'exists' already exists.",
    )
    assert altered.responses[0].error_message == "Unknown topic config name: no.such.config"


def test_txn_offset_commit_checks_only_that_the_topic_exists(broker: EmbeddedBroker) -> None:
    """Kafka's TxnOffsetCommit refuses an unknown topic, not a partition index the topic lacks
    (KafkaApis checks metadataCache.contains(topic)); klamm's retriable refusal made kafka-python
    retry until its transaction timed out."""
    with Wire(broker.bootstrap) as wire:
        assert _create_one(wire, "txn-src").error_code == ErrorCode.none
        init = wire.request(22, 4, transactional_id="op-txn", transaction_timeout=60_000,
                            producer_id=-1, producer_epoch=-1)  # fmt: skip
        pid, epoch = init.producer_id, init.producer_epoch
        added = wire.request(25, 3, transactional_id="op-txn", producer_id=pid,
                             producer_epoch=epoch, group_id="op-group")  # fmt: skip
        assert added.error_code == ErrorCode.none
        committed = wire.request(
            28, 3, transactional_id="op-txn", group_id="op-group", producer_id=pid,
            producer_epoch=epoch, generation_id=-1, member_id="", group_instance_id=None,
            topics=[{"name": name, "partitions": [
                {"partition_index": 7, "committed_offset": 3, "committed_leader_epoch": -1,
                 "committed_metadata": None}]} for name in ("txn-src", "no-such-topic")],
        )  # fmt: skip
        ended = wire.request(26, 3, transactional_id="op-txn", producer_id=pid,
                             producer_epoch=epoch, committed=True)  # fmt: skip
    codes = {t.name: t.partitions[0].error_code for t in committed.topics}
    assert codes == {
        "txn-src": ErrorCode.none,
        "no-such-topic": ErrorCode.unknown_topic_or_partition,
    }
    assert ended.error_code == ErrorCode.none
