"""DescribeLogDirs (35): one log directory with every hosted partition's size, as Kafka answers
it for a single-directory broker."""

from __future__ import annotations

import pytest

from klamm.protocol.errors import ErrorCode
from klamm.testing import EmbeddedBroker
from tests.broker.broker_helpers import create_topics, one_record_batch, produce
from tests.broker.wire import Wire


@pytest.fixture(scope="module")
def broker():
    with EmbeddedBroker() as b:
        yield b


def _sizes(result: object) -> dict[tuple[str, int], int]:
    return {(t.name, p.partition_index): p.partition_size
            for t in result.topics for p in t.partitions}  # type: ignore[attr-defined]  # fmt: skip


@pytest.mark.parametrize("version", [1, 2, 3, 4])
def test_every_partition_and_its_size(broker: EmbeddedBroker, version: int) -> None:
    with Wire(broker.bootstrap) as wire:
        create_topics(wire, "dirs", partitions=2)
        assert produce(wire, "dirs", one_record_batch(b"x" * 1000))[0] == ErrorCode.none
        response = wire.request(35, version, topics=None)
    [result] = response.results
    assert result.error_code == ErrorCode.none
    assert result.log_dir == str(broker.data_dir.resolve())
    sizes = _sizes(result)
    assert sizes[("dirs", 0)] >= 1000 > sizes[("dirs", 1)] == 0
    assert ("__consumer_offsets", 0) in sizes
    if version >= 4:
        assert result.total_bytes > 0 and 0 <= result.usable_bytes <= result.total_bytes


def test_named_partitions_only_those_hosted(broker: EmbeddedBroker) -> None:
    with Wire(broker.bootstrap) as wire:
        create_topics(wire, "dirs-named", partitions=3)
        response = wire.request(35, 4, topics=[
            {"topic": "dirs-named", "partitions": [2, 0, 2, 7]},
            {"topic": "no-such-topic", "partitions": [0]},
        ])  # fmt: skip
    assert sorted(_sizes(response.results[0])) == [("dirs-named", 0), ("dirs-named", 2)]
