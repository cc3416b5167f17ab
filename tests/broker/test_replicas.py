"""ElectLeaders (43), AlterPartitionReassignments (45), ListPartitionReassignments (46) on a
single node, answered as Kafka's controller answers them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from klamm.protocol.errors import ErrorCode
from klamm.testing import EmbeddedBroker
from tests.broker.wire import Wire


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as b, Wire(b.bootstrap) as wire:
        created = wire.request(
            19, 4, timeout=5000, validate_only=False,
            topics=[{"name": "placed", "num_partitions": 2, "replication_factor": 1,
                     "assignments": [], "configs": []}],
        )  # fmt: skip
        assert created.topics[0].error_code == ErrorCode.none
        yield b


def _reassign(
    wire: Wire, version: int, partitions: list[dict[str, Any]], topic: str = "placed"
) -> Any:
    return wire.request(45, version, timeout=5000, allow_replication_factor_change=True,
                        topics=[{"name": topic, "partitions": partitions}])  # fmt: skip


@pytest.mark.parametrize("version", [0, 1])
def test_reassignment_to_this_broker_is_a_no_op_and_others_are_refused(
    broker: EmbeddedBroker, version: int
) -> None:
    with Wire(broker.bootstrap) as wire:
        response = _reassign(wire, version, [
            {"partition_index": 0, "replicas": [0]},
            {"partition_index": 1, "replicas": [0, 1]},
            {"partition_index": 7, "replicas": [0]},
        ])  # fmt: skip
        cancel = _reassign(wire, version, [{"partition_index": 0, "replicas": None}])
        unknown = _reassign(wire, version, [{"partition_index": 0, "replicas": [0]}], "nope")
    assert response.error_code == ErrorCode.none
    answers = [(p.partition_index, p.error_code, p.error_message)
               for p in response.responses[0].partitions]  # fmt: skip
    assert answers == [
        (0, ErrorCode.none, None),
        (1, ErrorCode.invalid_replica_assignment,
         "The manual partition assignment includes broker 1, but no such broker is registered."),
        (7, ErrorCode.unknown_topic_or_partition, "Unable to find partition placed:7."),
    ]  # fmt: skip
    cancelled = cancel.responses[0].partitions[0]
    assert (cancelled.error_code, cancelled.error_message) == (
        ErrorCode.no_reassignment_in_progress,
        "No partition reassignment is in progress.",
    )
    assert unknown.responses[0].partitions[0].error_code == ErrorCode.unknown_topic_or_partition


def test_no_reassignment_is_ever_listed(broker: EmbeddedBroker) -> None:
    with Wire(broker.bootstrap) as wire:
        every = wire.request(46, 0, timeout=5000, topics=None)
        named = wire.request(46, 0, timeout=5000,
                             topics=[{"name": "placed", "partition_indexes": [0, 1]}])  # fmt: skip
    for response in (every, named):
        assert (response.error_code, response.topics) == (ErrorCode.none, ())


@pytest.mark.parametrize("version", [0, 1, 2])
def test_elect_leaders_is_never_needed(broker: EmbeddedBroker, version: int) -> None:
    with Wire(broker.bootstrap) as wire:
        named = wire.request(
            43,
            version,
            election_type=0,
            timeout=5000,
            topic_partitions=[
                {"topic": "placed", "partitions": [0, 1, 5]},
                {"topic": "nope", "partitions": [0]},
            ],
        )
        every = wire.request(43, version, election_type=0, timeout=5000, topic_partitions=None)
    results = {(r.topic, p.partition_id): p.error_code
               for r in named.replica_election_results for p in r.partition_result}  # fmt: skip
    assert results == {
        ("placed", 0): ErrorCode.election_not_needed,
        ("placed", 1): ErrorCode.election_not_needed,
        ("placed", 5): ErrorCode.unknown_topic_or_partition,
        ("nope", 0): ErrorCode.unknown_topic_or_partition,
    }
    # Every partition: those already led by their preferred leader are left out (Kafka).
    assert every.replica_election_results == ()


def test_an_unknown_election_type_is_an_invalid_request(broker: EmbeddedBroker) -> None:
    with Wire(broker.bootstrap) as wire:
        response = wire.request(
            43,
            2,
            election_type=5,
            timeout=5000,
            topic_partitions=[{"topic": "placed", "partitions": [0]}],
        )
    assert response.error_code == ErrorCode.invalid_request
    result = response.replica_election_results[0].partition_result[0]
    assert (result.error_code, result.error_message) == (
        ErrorCode.invalid_request,
        "Unknown election type 5",
    )
