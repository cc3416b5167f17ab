"""`klamm groups`: list, describe (members, offsets, lag), delete, reset-offsets."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from confluent_kafka import Consumer

from klamm.cli import _common
from klamm.testing import EmbeddedBroker
from tests.cli.cli_helpers import Cli


def _consume_as_group(cli: Cli, topic: str, group: str) -> None:
    """Commit offsets for `group` by reading the topic to its end with `klamm consume -g`."""
    result = cli("consume", topic, "-g", group, "-o", "beginning", "-e")
    assert result.code == 0, result.err


@contextmanager
def active_member(bootstrap: str, topic: str, group: str) -> Iterator[Consumer]:
    """A live member of `group`, holding its assignment until the block exits."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "client.id": "cli-test-member",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    deadline = time.monotonic() + 20
    while not consumer.assignment():
        assert time.monotonic() < deadline, "the member never got an assignment"
        consumer.poll(0.1)
    try:
        yield consumer
    finally:
        consumer.close()


def test_list_and_describe_committed_offsets_and_lag(cli: Cli, topic: str, unique: str) -> None:
    group = f"cli-group-{unique}"
    cli("produce", topic, "-p", "0", stdin=b"a\nb\n")
    cli("produce", topic, "-p", "1", stdin=b"c\n")
    _consume_as_group(cli, topic, group)
    cli("produce", topic, "-p", "0", stdin=b"d\ne\ne\n")  # 3 messages of lag on partition 0

    listed = cli("groups", "list", "--json")
    assert listed.code == 0, listed.err
    assert {"group": group, "state": "EMPTY", "simple": False} in listed.json()
    assert group in cli("groups", "list").out

    described = cli("groups", "describe", group, "--json")
    assert described.code == 0, described.err
    info = described.json()[0]
    assert info["state"] == "EMPTY" and info["members"] == []
    lag = {(p["partition"], p["committed"], p["end"], p["lag"]) for p in info["partitions"]}
    assert lag == {(0, 2, 5, 3), (1, 1, 1, 0)}

    table = cli("groups", "describe", group)
    assert table.code == 0 and "total lag: 3" in table.out and topic in table.out


def test_describe_shows_active_members(
    cli: Cli, kafka_broker: EmbeddedBroker, topic: str, unique: str
) -> None:
    group = f"cli-live-{unique}"
    cli("produce", topic, stdin=b"x\n")
    with active_member(kafka_broker.bootstrap, topic, group):
        info = cli("groups", "describe", group, "--json").json()[0]
        assert info["state"] == "STABLE"
        [member] = info["members"]
        assert member["client_id"] == "cli-test-member"
        assigned = {(a["topic"], a["partition"]) for a in member["assignment"]}
        assert assigned == {(topic, 0), (topic, 1)}
        assert {p["member_id"] for p in info["partitions"]} == {member["member_id"]}
        assert "cli-test-member" in cli("groups", "describe", group).out

        # Kafka's rule: no resets under a live member.
        refused = cli(
            "groups", "reset-offsets", group, "--topic", topic, "--to-earliest", "--execute"
        )
        assert refused.code == 1 and "inactive" in refused.err
        busy = cli("groups", "delete", group)
        assert busy.code == 1 and "active members" in busy.err


def test_reset_offsets_dry_run_then_execute(cli: Cli, topic: str, unique: str) -> None:
    group = f"cli-reset-{unique}"
    cli("produce", topic, "-p", "0", stdin=b"0\n1\n2\n3\n")
    cli("produce", topic, "-p", "1", stdin=b"0\n")
    _consume_as_group(cli, topic, group)

    dry = cli("groups", "reset-offsets", group, "--topic", topic, "--to-earliest", "--json")
    assert dry.code == 0, dry.err
    assert dry.json()["executed"] is False
    assert {(p["partition"], p["current"], p["new"]) for p in dry.json()["partitions"]} == {
        (0, 4, 0),
        (1, 1, 0),
    }
    assert "dry run" in cli("groups", "reset-offsets", group, "--topic", topic, "--to-latest").out
    committed = cli("groups", "describe", group, "--json").json()[0]["partitions"]
    assert {p["committed"] for p in committed} == {4, 1}  # unchanged

    done = cli("groups", "reset-offsets", group, "--topic", f"{topic}:0", "--to-offset", "1",
               "--execute")  # fmt: skip
    assert done.code == 0, done.err
    committed = cli("groups", "describe", group, "--json").json()[0]["partitions"]
    assert {(p["partition"], p["committed"]) for p in committed} == {(0, 1), (1, 1)}
    # The group now re-reads from offset 1 of partition 0.
    again = cli("consume", topic, "-g", group, "-o", "beginning", "-e")
    assert again.out.splitlines() == ["1", "2", "3"]

    # --to-offset beyond the log is clamped to its end, as kafka-consumer-groups.sh does.
    clamped = cli("groups", "reset-offsets", group, "--all-topics", "--to-offset", "99", "--json")
    assert {(p["partition"], p["new"]) for p in clamped.json()["partitions"]} == {(0, 4), (1, 1)}

    by_time = cli("groups", "reset-offsets", group, "--all-topics", "--json",
                  "--to-datetime", "2000-01-01T00:00:00+00:00", "--execute")  # fmt: skip
    assert by_time.code == 0, by_time.err
    assert {p["new"] for p in by_time.json()["partitions"]} == {0}


def test_delete_group(cli: Cli, topic: str, unique: str) -> None:
    group = f"cli-delete-{unique}"
    cli("produce", topic, stdin=b"x\n")
    _consume_as_group(cli, topic, group)
    deleted = cli("groups", "delete", group)
    assert deleted.code == 0, deleted.err
    assert f"deleted group {group}" in deleted.out
    assert group not in [g["group"] for g in cli("groups", "list", "--json").json()]


def test_errors(cli: Cli, topic: str, unique: str) -> None:
    missing = f"cli-missing-{unique}"
    unknown = cli("groups", "describe", missing)
    assert unknown.code == 1
    assert unknown.err == f"klamm groups: unknown consumer group '{missing}'\n"
    gone = cli("groups", "delete", missing)
    assert gone.code == 1 and "unknown consumer group" in gone.err

    no_offsets = cli("groups", "reset-offsets", missing, "--all-topics", "--to-earliest")
    assert no_offsets.code == 1 and "no committed offsets" in no_offsets.err
    no_topic = cli("groups", "reset-offsets", missing, "--topic", f"t-{unique}", "--to-latest")
    assert no_topic.code == 1 and "unknown topic" in no_topic.err
    bad_partition = cli("groups", "reset-offsets", missing, "--topic", f"{topic}:x", "--to-latest")
    assert bad_partition.code == 2
    # argparse: a target is required, targets are exclusive, times must parse.
    assert cli("groups", "reset-offsets", missing, "--topic", topic).code == 2
    assert cli("groups", "reset-offsets", missing, "--topic", topic, "--to-earliest",
               "--to-latest").code == 2  # fmt: skip
    assert cli("groups", "reset-offsets", missing, "--topic", topic,
               "--to-datetime", "yesterday").code == 2  # fmt: skip


def test_describe_on_a_narrow_terminal_truncates_nothing(
    cli: Cli, topic: str, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = f"cli-narrow-{unique}"
    cli("produce", topic, "-p", "0", stdin=b"a\nb\nc\n")
    _consume_as_group(cli, topic, group)
    monkeypatch.setattr(_common, "PIPE_WIDTH", 40)  # the console's width: a 40-column terminal
    described = cli("groups", "describe", group)
    assert described.code == 0, described.err
    assert "…" not in described.out
    for header in ("topic", "partition", "committed", "log end", "lag"):
        assert header in described.out
