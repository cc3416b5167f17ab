"""Creating topics never stalls other clients, and is bounded: Kafka's 10,000 partitions per
request, max.broker.partitions per broker, and a bound on the topics one Metadata request
auto-creates (issue 11, finding 11)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from klamm.broker.config import BrokerConfig, config_from_properties
from klamm.protocol.errors import ErrorCode
from klamm.storage import log_manager
from klamm.storage.config import LogConfig
from klamm.storage.log import PartitionLog
from klamm.testing import EmbeddedBroker
from tests.broker.broker_helpers import one_record_batch, produce
from tests.broker.wire import Wire

Created = dict[str, tuple[int, str | None]]


def create_topics(wire: Wire, topics: dict[str, int], *, validate_only: bool = False) -> Created:
    response = wire.request(
        19, 4, timeout=60_000, validate_only=validate_only,
        topics=[{"name": name, "num_partitions": count, "replication_factor": 1,
                 "assignments": [], "configs": []} for name, count in topics.items()],
    )  # fmt: skip
    return {t.name: (t.error_code, t.error_message) for t in response.topics}


def _codes(created: Created) -> dict[str, int]:
    return {name: code for name, (code, _) in created.items()}


def _metadata(wire: Wire, names: list[str], *, create: bool = True) -> dict[str, int]:
    response = wire.request(
        3, 9, topics=[{"name": name} for name in names], allow_auto_topic_creation=create,
        include_cluster_authorized_operations=False, include_topic_authorized_operations=False,
    )  # fmt: skip
    return {t.name: t.error_code for t in response.topics}


def _partitions_of(wire: Wire, name: str) -> int:
    response = wire.request(
        3, 9, topics=[{"name": name}], allow_auto_topic_creation=False,
        include_cluster_authorized_operations=False, include_topic_authorized_operations=False,
    )  # fmt: skip
    return len(response.topics[0].partitions)


def _create_partitions(wire: Wire, counts: dict[str, int]) -> dict[str, int]:
    response = wire.request(
        37, 1, timeout=60_000, validate_only=False,
        topics=[{"name": name, "count": count, "assignments": None}
                for name, count in counts.items()],
    )  # fmt: skip
    return {r.name: r.error_code for r in response.results}


class _Gate:
    """Holds the creation of one partition directory until released: a creation that takes
    as long as the test wants, without making thousands of files."""

    def __init__(self, *directory_names: str) -> None:
        self.directory_names = set(directory_names)
        self.reached = threading.Event()
        self.release = threading.Event()


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Gate]:
    held = _Gate("huge-150", "grow-150")
    real_open = PartitionLog.open

    def open_held(
        directory: Path, config: LogConfig, now_ms: Any, files: Any = None
    ) -> PartitionLog:
        if directory.name in held.directory_names:
            held.reached.set()
            held.release.wait(20)
        return real_open(directory, config, now_ms, files)

    monkeypatch.setattr(log_manager.PartitionLog, "open", staticmethod(open_held))
    yield held
    held.release.set()


def test_other_clients_are_served_while_a_create_topics_runs(gate: _Gate) -> None:
    """The creation's file work (0.7 ms or more a partition: seconds for 10,000) used to run
    on the event loop, where it stalled every client. Here it is held half-way: the others are
    still answered, the half-made topic is invisible, and a second create of the same name
    waits its turn and gets TOPIC_ALREADY_EXISTS."""
    with EmbeddedBroker() as broker, Wire(broker.bootstrap) as victim:
        assert _codes(create_topics(victim, {"victim": 1})) == {"victim": ErrorCode.none}
        outcomes: list[Created] = []

        def create_huge() -> None:
            with Wire(broker.bootstrap, timeout=60) as admin:
                outcomes.append(create_topics(admin, {"huge": 300}))

        creators = [threading.Thread(target=create_huge) for _ in range(2)]
        creators[0].start()
        assert gate.reached.wait(20), "the creation never reached its held partition"
        creators[1].start()
        # The broker answers while the creation is held (the old code blocked its loop here,
        # so these timed out after the Wire's 5 s).
        for _ in range(5):
            assert _metadata(victim, ["victim"], create=False) == {"victim": ErrorCode.none}
            assert produce(victim, "victim", one_record_batch(), acks=-1)[0] == ErrorCode.none
        assert _metadata(victim, ["huge"], create=False) == {
            "huge": ErrorCode.unknown_topic_or_partition
        }
        gate.release.set()
        for creator in creators:
            creator.join(60)
        assert sorted(_codes(o)["huge"] for o in outcomes) == [
            ErrorCode.none,
            ErrorCode.topic_already_exists,
        ]
        assert _partitions_of(victim, "huge") == 300
        assert broker.broker.partition("huge", 299) is not None


def test_other_clients_are_served_while_create_partitions_runs(gate: _Gate) -> None:
    """CreatePartitions made its new partitions on the event loop too."""
    with EmbeddedBroker() as broker, Wire(broker.bootstrap) as victim:
        assert _codes(create_topics(victim, {"victim": 1, "grow": 1})) == {"victim": 0, "grow": 0}
        outcome: list[dict[str, int]] = []

        def grow() -> None:
            with Wire(broker.bootstrap, timeout=60) as admin:
                outcome.append(_create_partitions(admin, {"grow": 300}))

        grower = threading.Thread(target=grow)
        grower.start()
        assert gate.reached.wait(20), "the growth never reached its held partition"
        for _ in range(5):
            assert _metadata(victim, ["victim"], create=False) == {"victim": ErrorCode.none}
            assert produce(victim, "victim", one_record_batch(), acks=-1)[0] == ErrorCode.none
        assert _partitions_of(victim, "grow") == 1  # nothing half-grown is visible
        assert produce(victim, "grow", one_record_batch(), acks=-1)[0] == ErrorCode.none
        gate.release.set()
        grower.join(60)
        assert outcome == [{"grow": ErrorCode.none}]
        assert _partitions_of(victim, "grow") == 300
        assert broker.broker.partition("grow", 299) is not None


def test_deleting_a_topic_removes_its_files_off_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Removing a deleted topic's files (seconds for thousands of partitions) used to run on the
    event loop. Held here half-way: DeleteTopics is answered, others are served, the name can be
    created again, and the files go once the removal runs."""
    held = _Gate()
    real_purge = log_manager.LogManager.purge_deleted

    def purge_held(deleted: log_manager.DeletedTopic) -> None:
        held.reached.set()
        held.release.wait(20)
        real_purge(deleted)

    monkeypatch.setattr(log_manager.LogManager, "purge_deleted", staticmethod(purge_held))
    with EmbeddedBroker() as broker, Wire(broker.bootstrap) as wire:
        assert _codes(create_topics(wire, {"doomed": 3})) == {"doomed": ErrorCode.none}
        response = wire.request(20, 4, topic_names=["doomed"], timeout=30_000)
        assert response.responses[0].error_code == ErrorCode.none
        assert held.reached.wait(20), "the files were never removed"
        aside = list(broker.data_dir.glob("*.deleted"))
        assert len(aside) == 3  # renamed aside, not yet removed
        assert _metadata(wire, ["doomed"], create=False) == {
            "doomed": ErrorCode.unknown_topic_or_partition
        }
        assert _codes(create_topics(wire, {"doomed": 1})) == {"doomed": ErrorCode.none}
        assert produce(wire, "doomed", one_record_batch()) == (ErrorCode.none, 0)
        held.release.set()
        deadline = time.monotonic() + 20
        while any(path.exists() for path in aside) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(path.exists() for path in aside)


def test_more_than_10000_partitions_in_one_create_topics_is_a_policy_violation() -> None:
    """Kafka's controller refuses the whole request (ReplicationControlManager,
    MAX_PARTITIONS_PER_BATCH) before creating anything."""
    with EmbeddedBroker() as broker, Wire(broker.bootstrap) as wire:
        for validate_only in (True, False):
            created = create_topics(wire, {"a": 6_000, "b": 4_001}, validate_only=validate_only)
            assert _codes(created) == {
                "a": ErrorCode.policy_violation,
                "b": ErrorCode.policy_violation,
            }
            assert "partitions per request" in (created["a"][1] or "")
        assert _metadata(wire, ["a", "b"], create=False) == {
            "a": ErrorCode.unknown_topic_or_partition,
            "b": ErrorCode.unknown_topic_or_partition,
        }
        assert _codes(create_topics(wire, {"c": 2, "d": 3})) == {"c": 0, "d": 0}
        assert _create_partitions(wire, {"c": 6_003, "d": 4_003}) == {
            "c": ErrorCode.policy_violation,
            "d": ErrorCode.policy_violation,
        }
        assert (_partitions_of(wire, "c"), _partitions_of(wire, "d")) == (2, 3)


def test_max_broker_partitions_refuses_what_would_exceed_it() -> None:
    # The two internal topics (__consumer_offsets, __transaction_state) hold one each.
    with EmbeddedBroker(max_broker_partitions=10) as broker, Wire(broker.bootstrap) as wire:
        assert _codes(create_topics(wire, {"six": 6})) == {"six": ErrorCode.none}
        refused = create_topics(wire, {"three": 3})
        assert _codes(refused) == {"three": ErrorCode.policy_violation}
        assert "max.broker.partitions" in (refused["three"][1] or "")
        assert _codes(create_topics(wire, {"three": 3}, validate_only=True)) == {
            "three": ErrorCode.policy_violation
        }
        assert _create_partitions(wire, {"six": 9}) == {"six": ErrorCode.policy_violation}
        assert _codes(create_topics(wire, {"two": 2})) == {"two": ErrorCode.none}  # 10 of 10
        assert _metadata(wire, ["auto"]) == {"auto": ErrorCode.policy_violation}
        assert _metadata(wire, ["six", "two"], create=False) == {"six": 0, "two": 0}
        assert _partitions_of(wire, "six") == 6


def test_one_metadata_request_auto_creates_a_bounded_number_of_topics() -> None:
    """150 unknown names: 100 are created, the rest get LEADER_NOT_AVAILABLE (retriable: a
    topic being created) and are not; the client's retry creates them. (A created topic is
    answered directly unless its creation outlasts AUTO_CREATE_WAIT_S: then it answers
    LEADER_NOT_AVAILABLE too, and is there at the next request.)"""
    names = [f"auto-{i:03d}" for i in range(150)]
    with EmbeddedBroker() as broker, Wire(broker.bootstrap, timeout=60) as wire:
        first = _metadata(wire, names)
        assert {first[n] for n in names[:100]} <= {ErrorCode.none, ErrorCode.leader_not_available}
        assert [first[n] for n in names[100:]] == [ErrorCode.leader_not_available] * 50
        created = _wait_for(lambda: _metadata(wire, names[:100], create=False), ErrorCode.none)
        assert created == {n: ErrorCode.none for n in names[:100]}
        assert _metadata(wire, names[100:], create=False) == {
            n: ErrorCode.unknown_topic_or_partition for n in names[100:]
        }
        assert _wait_for(lambda: _metadata(wire, names), ErrorCode.none) == {
            n: ErrorCode.none for n in names
        }
        assert _metadata(wire, ["bad name!"]) == {"bad name!": ErrorCode.invalid_topic_exception}


def _wait_for(ask: Callable[[], dict[str, int]], code: int) -> dict[str, int]:
    """Ask until every topic answers `code` (a slow machine may outlast one request's wait)."""
    deadline = time.monotonic() + 30
    while True:
        answer = ask()
        if set(answer.values()) == {code} or time.monotonic() > deadline:
            return answer
        time.sleep(0.1)


def test_max_broker_partitions_is_read_from_server_properties() -> None:
    assert BrokerConfig().max_broker_partitions == 10_000
    config = config_from_properties({"max.broker.partitions": "50"}, BrokerConfig())
    assert config.max_broker_partitions == 50
