"""Metadata lists every partition of every topic asked for, whatever order topics of different
sizes are asked in (its partition entries are built once and shared between topics: issue 17,
50,000 partitions in one answer)."""

from __future__ import annotations

import uuid

import pytest

from klamm.protocol.errors import ErrorCode
from klamm.testing import EmbeddedBroker
from tests.broker.wire import Wire

SIZES = {"three": 3, "seven": 7, "one": 1, "five": 5}


@pytest.mark.parametrize("version", [1, 9, 12])
def test_topics_of_every_size_list_their_own_partitions(version: int) -> None:
    with EmbeddedBroker() as broker, Wire(broker.bootstrap) as wire:
        response = wire.request(
            19, 4, timeout=10_000, validate_only=False,
            topics=[{"name": name, "num_partitions": count, "replication_factor": 1,
                     "assignments": [], "configs": []} for name, count in SIZES.items()],
        )  # fmt: skip
        assert {t.error_code for t in response.topics} == {ErrorCode.none}
        node = broker.broker.config.node_id
        for order in (list(SIZES), list(reversed(SIZES))):
            response = wire.request(
                3, version, topics=[{"name": name, "topic_id": uuid.UUID(int=0)} for name in order],
                allow_auto_topic_creation=False, include_cluster_authorized_operations=False,
                include_topic_authorized_operations=False,
            )  # fmt: skip
            assert [t.name for t in response.topics] == order
            for topic in response.topics:
                assert [p.partition_index for p in topic.partitions] == list(
                    range(SIZES[topic.name])
                )
                assert all(
                    p.leader_id == node and list(p.replica_nodes) == [node] == list(p.isr_nodes)
                    for p in topic.partitions
                )
