"""Two-phase topic creation (prepare in a worker thread, publish on the loop) and the broker's
partition limit, at the storage level (issue 11, finding 11)."""

from __future__ import annotations

from pathlib import Path

import pytest

from klamm.storage.errors import InvalidTopicName, PolicyViolation, TopicExists, UnknownTopic
from klamm.storage.log_manager import LogManager
from klamm.testing import FakeClock


def _manager(path: Path, clock: FakeClock, max_partitions: int | None = None) -> LogManager:
    lm = LogManager(path, clock, max_partitions=max_partitions)
    lm.load()
    return lm


def test_a_prepared_topic_is_invisible_and_its_name_reserved(
    tmp_path: Path, clock: FakeClock
) -> None:
    lm = _manager(tmp_path, clock)
    prepared = lm.prepare_topic("t.x", 3)
    assert lm.topic("t.x") is None and lm.log("t.x", 0) is None
    with pytest.raises(TopicExists):
        lm.prepare_topic("t.x", 1)
    with pytest.raises(InvalidTopicName):  # collides with the reserved name
        lm.prepare_topic("t_x", 1)
    info = lm.publish_topic(prepared)
    assert lm.topic("t.x") == info and lm.log("t.x", 2) is not None
    with pytest.raises(TopicExists):
        lm.prepare_topic("t.x", 1)
    lm.close()
    again = _manager(tmp_path, clock)
    assert again.topic("t.x") == info
    again.close()


def test_a_failed_prepare_releases_the_name(tmp_path: Path, clock: FakeClock) -> None:
    lm = _manager(tmp_path, clock)
    with pytest.raises(Exception):  # noqa: B017 - any config error
        lm.prepare_topic("t", 1, {"retention.ms": "soon"})
    lm.create_topic("t", 1)
    lm.close()


def test_a_prepared_topic_closed_before_publishing_is_there_at_the_next_start(
    tmp_path: Path, clock: FakeClock
) -> None:
    lm = _manager(tmp_path, clock)
    prepared = lm.prepare_topic("t", 2)
    lm.close()
    again = _manager(tmp_path, clock)
    assert again.topic("t") == prepared.info and again.log("t", 1) is not None
    again.close()


def test_max_partitions_counts_topics_being_created(tmp_path: Path, clock: FakeClock) -> None:
    lm = _manager(tmp_path, clock, max_partitions=5)
    lm.prepare_topic("a", 3)
    with pytest.raises(PolicyViolation):
        lm.prepare_topic("b", 3)
    lm.create_topic("__internal", 3, internal=True)  # the coordinators' topics are never refused
    with pytest.raises(PolicyViolation):
        lm.create_topic("c", 1)
    lm.close()


def test_prepared_partitions_are_invisible_until_published(
    tmp_path: Path, clock: FakeClock
) -> None:
    lm = _manager(tmp_path, clock)
    lm.create_topic("t", 1)
    prepared = lm.prepare_partitions("t", 3)
    assert lm.topic("t").num_partitions == 1 and lm.log("t", 2) is None  # type: ignore[union-attr]
    lm.alter_topic_configs("t", {"retention.ms": "1234"})  # meanwhile: the new logs follow it
    info = lm.publish_partitions(prepared)
    assert info.num_partitions == 3 and info.configs == {"retention.ms": "1234"}
    new_log = lm.log("t", 2)
    assert new_log is not None and new_log.config.retention_ms == 1234
    lm.close()
    again = _manager(tmp_path, clock)
    assert again.topic("t") == info and again.log("t", 2) is not None
    again.close()


def test_partitions_of_a_topic_deleted_meanwhile_are_removed(
    tmp_path: Path, clock: FakeClock
) -> None:
    lm = _manager(tmp_path, clock)
    lm.create_topic("t", 1)
    prepared = lm.prepare_partitions("t", 3)
    lm.delete_topic("t")
    with pytest.raises(UnknownTopic):
        lm.publish_partitions(prepared)
    assert not (tmp_path / "t-2").exists()
    lm.create_topic("t", 1)  # the name is free again
    assert lm.topic("t").num_partitions == 1  # type: ignore[union-attr]
    lm.close()


def test_an_unpublished_growth_leaves_the_topic_as_it_was(tmp_path: Path, clock: FakeClock) -> None:
    lm = _manager(tmp_path, clock, max_partitions=6)
    lm.create_topic("t", 2)
    lm.prepare_partitions("t", 5)
    with pytest.raises(PolicyViolation):  # the partitions being added count
        lm.create_topic("u", 2)
    lm.close()
    again = _manager(tmp_path, clock)
    assert again.topic("t").num_partitions == 2  # type: ignore[union-attr]
    assert again.create_partitions("t", 4).num_partitions == 4  # empty leftovers replaced
    again.close()
