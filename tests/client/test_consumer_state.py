"""The consumer's state owners on their own: SubscriptionState (KafkaJS's subscriptionState.js
semantics for pause/resume) and OffsetManager (resolved offsets and the commit policy)."""

from __future__ import annotations

import pytest

from klamm import ConfigError
from klamm.client.consumer_args import generation_of
from klamm.client.offsets import OffsetManager
from klamm.client.subscription import SubscriptionState


def test_a_paused_topic_stays_paused_for_partitions_assigned_later() -> None:
    s = SubscriptionState()
    s.subscribe(["t"], from_beginning=False)
    assert s.pause([{"topic": "t"}]) == []  # nothing assigned yet, but the pause is kept
    s.assign([("t", 0), ("t", 1)], incremental=False)
    assert s.paused() == [{"topic": "t", "partitions": [0, 1]}]
    assert s.is_stale(("t", 0))  # the runner will not process what it has in hand
    s.assign([("t", 2)], incremental=False)  # a rebalance: another partition arrives
    assert s.paused() == [{"topic": "t", "partitions": [2]}]
    assert s.resume([{"topic": "t"}]) == [("t", 2)]
    assert s.paused() == [] and not s.is_paused(("t", 0))


def test_resuming_one_partition_of_a_paused_topic_keeps_the_others_paused() -> None:
    s = SubscriptionState()
    s.assign([("t", 0), ("t", 1)], incremental=False)
    s.pause([{"topic": "t"}])
    assert s.resume([{"topic": "t", "partitions": [1]}]) == [("t", 1)]
    assert s.paused() == [{"topic": "t", "partitions": [0]}]
    # KafkaJS: pausing listed partitions replaces a whole-topic pause.
    s.pause([{"topic": "t", "partitions": [1]}])
    assert s.paused() == [{"topic": "t", "partitions": [1]}]


def test_per_call_from_beginning() -> None:
    s = SubscriptionState()
    s.subscribe(["a"], from_beginning=True)
    s.subscribe(["b", "a"], from_beginning=False)  # the first call for a topic decides
    s.subscribe(["^c-.*"], from_beginning=True)
    assert (s.from_beginning("a"), s.from_beginning("b")) == (True, False)
    assert s.uniform_start() is None
    assert s.from_beginning("c-1") is None and s.pattern_from_beginning("c-1") is True
    assert s.pattern_from_beginning("other") is False


@pytest.mark.parametrize(
    "spec", ["t", [{"partitions": [0]}], [{"topic": "t", "partitions": "0"}], [{"topic": 1}]]
)
def test_malformed_pause_specs_are_config_errors(spec: object) -> None:
    with pytest.raises(ConfigError):
        SubscriptionState().pause(spec)  # type: ignore[arg-type]


def test_seek_marks_stale_and_remembers_the_offset() -> None:
    s = SubscriptionState()
    s.assign([("t", 0)], incremental=False)
    s.mark_seeked(("t", 0), 10)
    assert s.is_stale(("t", 0)) and s.sought(("t", 0)) == 10 and s.seek_epoch(("t", 0)) == 1
    s.clear_stale()
    assert not s.is_stale(("t", 0))


def test_offset_manager_threshold_and_interval() -> None:
    now = [0.0]
    m = OffsetManager(clock=lambda: now[0])
    m.configure(auto_commit=True, interval_ms=None, threshold=2)
    m.resolve(("t", 0), 1)
    assert not m.commit_due()
    m.resolve(("t", 0), 2)
    assert m.commit_due() and m.take_resolved() == {("t", 0): 2}
    assert not m.has_uncommitted() and m.position(("t", 0)) == 2  # kept across commits

    m.configure(auto_commit=True, interval_ms=1000, threshold=None)
    m.resolve(("t", 0), 3)
    assert not m.commit_due()
    now[0] = 1.0
    assert m.commit_due()
    assert m.forget([("t", 0)]) == {("t", 0): 3} and m.position(("t", 0)) is None

    m.configure(auto_commit=False, interval_ms=1000, threshold=1)
    m.resolve(("t", 0), 4)
    assert not m.commits_within_batches() and not m.commit_due()


def test_generation_from_librdkafkas_group_metadata() -> None:
    # As confluent-kafka 2.16 / librdkafka 2.16 serialize it (captured), generation 1.
    blob = b"CGMDv2:\x01\x00\x00\x00gx\x00rdkafka-0199\x00\x00inst\x00"
    assert generation_of(blob) == 1
    assert generation_of(b"CGMDv2:\xff\xff\xff\xffgx\x00\x00\x01") == -1
    assert generation_of(b"CGMDv3:....") is None and generation_of(object()) is None
