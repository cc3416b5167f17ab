"""DescribeTopicPartitions (75) as Kafka 4 serves it: every topic or the named ones, in name
order, at most response_partition_limit partitions per answer and a cursor to go on from."""

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
            topics=[{"name": name, "num_partitions": count, "replication_factor": 1,
                     "assignments": [], "configs": []}
                    for name, count in (("dtp-a", 3), ("dtp-b", 2), ("dtp-c", 4))],
        )  # fmt: skip
        assert all(t.error_code == ErrorCode.none for t in created.topics)
        yield b


def _describe(wire: Wire, names: list[str], limit: int = 2000, cursor: Any = None) -> Any:
    return wire.request(75, 0, topics=[{"name": n} for n in names],
                        response_partition_limit=limit, cursor=cursor)  # fmt: skip


def _listed(response: Any) -> list[tuple[str, list[int]]]:
    return [(t.name, [p.partition_index for p in t.partitions]) for t in response.topics]


def test_named_topics_in_name_order_with_partitions_and_errors(broker: EmbeddedBroker) -> None:
    with Wire(broker.bootstrap) as wire:
        response = _describe(wire, ["dtp-b", "no-such", "dtp-a", "bad name!"])
    assert _listed(response) == [
        ("bad name!", []), ("dtp-a", [0, 1, 2]), ("dtp-b", [0, 1]), ("no-such", []),
    ]  # fmt: skip
    codes = {t.name: t.error_code for t in response.topics}
    assert codes == {
        "bad name!": ErrorCode.invalid_topic_exception,
        "dtp-a": ErrorCode.none,
        "dtp-b": ErrorCode.none,
        "no-such": ErrorCode.unknown_topic_or_partition,
    }
    described = response.topics[1]
    assert described.topic_id.int != 0 and not described.is_internal
    partition = described.partitions[0]
    assert (partition.leader_id, partition.replica_nodes, partition.isr_nodes) == (0, (0,), (0,))
    assert response.next_cursor is None


def test_pages_through_every_topic_with_the_cursor(broker: EmbeddedBroker) -> None:
    pages = []
    cursor = None
    with Wire(broker.bootstrap) as wire:
        for _ in range(10):
            response = _describe(wire, [], limit=2, cursor=cursor)
            pages.append(_listed(response))
            if response.next_cursor is None:
                break
            cursor = {"topic_name": response.next_cursor.topic_name,
                      "partition_index": response.next_cursor.partition_index}  # fmt: skip
    user_pages = [[(n, p) for n, p in page if n.startswith("dtp-")] for page in pages]
    assert [page for page in user_pages if page] == [
        [("dtp-a", [0, 1])],
        [("dtp-a", [2]), ("dtp-b", [0])],
        [("dtp-b", [1]), ("dtp-c", [0])],
        [("dtp-c", [1, 2])],
        [("dtp-c", [3])],
    ]


def test_a_full_page_ends_on_the_next_topics_start(broker: EmbeddedBroker) -> None:
    with Wire(broker.bootstrap) as wire:
        response = _describe(wire, ["dtp-a", "dtp-b"], limit=3)
    assert _listed(response) == [("dtp-a", [0, 1, 2])]
    assert (response.next_cursor.topic_name, response.next_cursor.partition_index) == ("dtp-b", 0)


def test_a_cursor_outside_the_named_topics_is_an_invalid_request(broker: EmbeddedBroker) -> None:
    with Wire(broker.bootstrap) as wire:
        response = _describe(wire, ["dtp-a"], cursor={"topic_name": "dtp-b", "partition_index": 0})
        negative = _describe(wire, ["dtp-a"], cursor={"topic_name": "dtp-a", "partition_index": -1})
    for answer in (response, negative):
        assert [(t.name, t.error_code) for t in answer.topics] == [
            ("dtp-a", ErrorCode.invalid_request)
        ]
