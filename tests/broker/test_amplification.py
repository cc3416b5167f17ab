"""A small request naming the same thing many times does not multiply the broker's work
(issue 11, finding 10): Metadata and ListOffsets answer duplicates as Kafka does (a set of
topics; INVALID_REQUEST for a partition listed twice), DescribeGroups and DescribeConfigs answer
each distinct entry once."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from klamm.protocol.errors import ErrorCode
from klamm.protocol.record_batch import Record, RecordBatch, build_batch
from klamm.testing import EmbeddedBroker
from tests.broker.wire import Wire

RESOURCE_TOPIC = 2


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as b:
        yield b


def _create(wire: Wire, name: str, partitions: int) -> None:
    response = wire.request(
        19, 4, timeout=30_000, validate_only=False,
        topics=[{"name": name, "num_partitions": partitions, "replication_factor": 1,
                 "assignments": [], "configs": []}],
    )  # fmt: skip
    assert response.topics[0].error_code == ErrorCode.none


def test_metadata_answers_a_repeated_topic_once(broker: EmbeddedBroker) -> None:
    """Kafka's handleTopicMetadataRequest takes the names as a set: naming a 100-partition
    topic 500 times lists its partitions once, not 50 000 times."""
    with Wire(broker.bootstrap, timeout=60) as wire:
        _create(wire, "many-partitions", 100)
        response = wire.request(
            3, 9, topics=[{"name": "many-partitions"}] * 500 + [{"name": "absent-topic"}],
            allow_auto_topic_creation=False, include_cluster_authorized_operations=False,
            include_topic_authorized_operations=False,
        )  # fmt: skip
    assert [t.name for t in response.topics] == ["many-partitions", "absent-topic"]
    assert len(response.topics[0].partitions) == 100
    assert response.topics[1].error_code == ErrorCode.unknown_topic_or_partition


def test_describe_groups_answers_each_distinct_id_once(broker: EmbeddedBroker) -> None:
    """90 000 empty ids (a 180 KB request, under the 100,000-element limit of protocol/bounds.py)
    used to build and encode 90 000 answers."""
    with Wire(broker.bootstrap, timeout=60) as wire:
        started = time.monotonic()
        response = wire.request(
            15,
            5,
            groups=[""] * 90_000 + ["no-such-group", ""],
            include_authorized_operations=False,
        )
        elapsed = time.monotonic() - started
    assert [g.group_id for g in response.groups] == ["", "no-such-group"]
    assert response.groups[0].error_code == ErrorCode.invalid_group_id
    assert response.groups[1].error_code == ErrorCode.none
    assert response.groups[1].group_state == "Dead"
    assert elapsed < 10  # decoding the request is what is left: well under a second here


def test_describe_configs_answers_a_repeated_resource_once(broker: EmbeddedBroker) -> None:
    with Wire(broker.bootstrap, timeout=60) as wire:
        _create(wire, "configs-once", 1)
        listing = {"resource_type": RESOURCE_TOPIC, "resource_name": "configs-once"}
        narrow = {**listing, "configuration_keys": ["retention.ms"]}
        response = wire.request(
            32, 4, include_synonyms=False, include_documentation=False,
            resources=[{**listing, "configuration_keys": None}] * 2000 + [narrow, narrow],
        )  # fmt: skip
    assert len(response.results) == 2  # all configs once; the one asked-for key once
    assert len(response.results[0].configs) > 1
    assert [c.name for c in response.results[1].configs] == ["retention.ms"]


def test_list_offsets_refuses_a_partition_listed_twice(broker: EmbeddedBroker) -> None:
    """As Kafka: every listing of a duplicated partition gets INVALID_REQUEST (and no lookup);
    other partitions are answered normally."""
    batch = build_batch(RecordBatch(records=[Record(0, 1_700_000_000_000, b"k", b"v")]))
    with Wire(broker.bootstrap) as wire:
        _create(wire, "offsets-dup", 2)
        produced = wire.request(
            0, 7, transactional_id=None, acks=-1, timeout=5000,
            topic_data=[{"name": "offsets-dup",
                         "partition_data": [{"index": 1, "records": batch}]}],
        )  # fmt: skip
        assert produced.responses[0].partition_responses[0].error_code == ErrorCode.none
        listing = {"current_leader_epoch": -1, "timestamp": 0}
        response = wire.request(
            2, 7, replica_id=-1, isolation_level=0,
            topics=[{"name": "offsets-dup", "partitions": [
                {**listing, "partition_index": 0}, {**listing, "partition_index": 1},
                {**listing, "partition_index": 0}]}],
        )  # fmt: skip
    answers = [(p.partition_index, p.error_code, p.offset) for p in response.topics[0].partitions]
    assert answers == [
        (0, ErrorCode.invalid_request, -1),
        (1, ErrorCode.none, 0),
        (0, ErrorCode.invalid_request, -1),
    ]
