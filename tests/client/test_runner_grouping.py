"""How the run loop splits one fetch into per-partition batches (no broker needed)."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import confluent_kafka
import pytest

from klamm.client.offsets import OffsetManager
from klamm.client.retry import RetryPolicy
from klamm.client.runner import Runner
from klamm.client.subscription import SubscriptionState


def runner(topics: list[str], assigned: set[tuple[str, int]]) -> Runner:
    consumer: Any = SimpleNamespace(group_id="g", seek_again=lambda tp: None)
    subscription = SubscriptionState()
    subscription.subscribe(topics, from_beginning=False)
    subscription.assign(assigned, incremental=False)
    return Runner(
        consumer,
        subscription=subscription,
        offsets=OffsetManager(),
        each_message=None,
        each_batch=None,
        each_batch_auto_resolve=True,
        concurrency=1,
        retry=RetryPolicy(),
        dead_letter_topic=None,
        cycle_budget_s=3.0,
    )


def message(topic: str, partition: int, offset: int) -> Any:
    return confluent_kafka.Message(topic=topic, partition=partition, offset=offset, value=b"v")


def error(code: int) -> Any:
    return confluent_kafka.Message(topic="t", partition=0, error=confluent_kafka.KafkaError(code))


def offsets(batches: dict[tuple[str, int], list[Any]]) -> dict[tuple[str, int], list[int]]:
    return {tp: [m.offset() for m in raws] for tp, raws in batches.items()}


def test_one_topic_splits_by_partition_keeping_each_partitions_order() -> None:
    fetch = [message("t", p, o) for p, o in [(0, 5), (0, 6), (1, 9), (1, 10), (0, 7), (2, 1)]]
    r = runner(["t"], {("t", 0), ("t", 1), ("t", 2)})
    assert offsets(r._group(fetch, {})) == {("t", 0): [5, 6, 7], ("t", 1): [9, 10], ("t", 2): [1]}


def test_several_topics_never_mix_partitions_of_the_same_number() -> None:
    fetch = [message("a", 0, 1), message("b", 0, 1), message("a", 0, 2)]
    r = runner(["a", "b"], {("a", 0), ("b", 0)})
    assert offsets(r._group(fetch, {})) == {("a", 0): [1, 2], ("b", 0): [1]}


def test_fetch_errors_are_dropped_and_logged_except_end_of_partition(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fetch = [
        message("t", 0, 1),
        error(confluent_kafka.KafkaError._PARTITION_EOF),
        error(confluent_kafka.KafkaError.TOPIC_AUTHORIZATION_FAILED),
        message("t", 0, 2),
    ]
    r = runner(["t"], {("t", 0)})
    with caplog.at_level(logging.WARNING, logger="klamm.client"):
        assert offsets(r._group(fetch, {})) == {("t", 0): [1, 2]}
    assert len(caplog.records) == 1
    assert "authoriz" in caplog.records[0].getMessage().lower()


def test_partitions_no_longer_assigned_or_seeked_meanwhile_are_dropped() -> None:
    fetch = [message("t", 0, 1), message("t", 1, 1), message("t", 2, 1)]
    r = runner(["t"], {("t", 0), ("t", 1)})  # partition 2 was revoked during the fetch
    r._subs.mark_seeked(("t", 1), 0)  # partition 1 was seeked during the fetch
    assert offsets(r._group(fetch, {("t", 1): 0})) == {("t", 0): [1]}
