"""`klamm topics`: list, create, describe, delete, alter against a live broker."""

from __future__ import annotations

import time

from tests.cli.cli_helpers import Cli, closed_port


def test_create_list_describe_delete(cli: Cli, unique: str) -> None:
    name = f"topics-{unique}"
    created = cli("topics", "create", name, "--partitions", "3", "--config", "retention.ms=60000")
    assert created.code == 0, created.err
    assert f"created topic {name}" in created.out

    listed = cli("topics", "list", "--json")
    assert {"name": name, "partitions": 3, "replication_factor": 1} in listed.json()
    assert not any(t["name"].startswith("__") for t in listed.json())
    assert name in cli("topics", "list").out  # the rich table

    described = cli("topics", "describe", name, "--json").json()[0]
    assert [p["partition"] for p in described["partitions"]] == [0, 1, 2]
    assert all(p["leader"] >= 0 for p in described["partitions"])
    # Only settings that differ from the defaults.
    assert [(c["name"], c["value"]) for c in described["configs"]] == [("retention.ms", "60000")]
    table = cli("topics", "describe", name)
    assert table.code == 0 and "retention.ms" in table.out and "60000" in table.out

    deleted = cli("topics", "delete", name)
    assert deleted.code == 0 and f"deleted topic {name}" in deleted.out
    assert name not in [t["name"] for t in cli("topics", "list", "--json").json()]


def test_list_all_shows_internal_topics(cli: Cli, topic: str) -> None:
    names = [t["name"] for t in cli("topics", "list", "--all", "--json").json()]
    assert topic in names
    assert "__consumer_offsets" in names


def test_create_existing_fails_unless_if_not_exists(cli: Cli, topic: str) -> None:
    again = cli("topics", "create", topic)
    assert again.code == 1
    assert "already exists" in again.err and again.err.count("\n") == 1
    assert cli("topics", "create", topic, "--if-not-exists").code == 0


def test_create_with_broker_default_partitions(cli: Cli, unique: str) -> None:
    name = f"defaults-{unique}"
    assert cli("topics", "create", name).code == 0
    assert len(cli("topics", "describe", name, "--json").json()[0]["partitions"]) == 1


def test_create_invalid_config_is_a_clear_error(cli: Cli, unique: str) -> None:
    result = cli("topics", "create", f"bad-{unique}", "--config", "retention.ms=soon")
    assert result.code == 1
    assert "retention.ms" in result.err


def test_describe_unknown_topic_fails_and_does_not_create_it(cli: Cli, unique: str) -> None:
    name = f"missing-{unique}"
    result = cli("topics", "describe", name)
    assert result.code == 1
    assert result.err == f"klamm topics: unknown topic '{name}'\n"
    assert name not in [t["name"] for t in cli("topics", "list", "--json").json()]


def test_alter_partitions_and_configs(cli: Cli, topic: str) -> None:
    result = cli(
        "topics", "alter", topic, "--partitions", "4", "--config", "cleanup.policy=compact"
    )
    assert result.code == 0, result.err
    assert "partitions 2 -> 4" in result.out
    described = cli("topics", "describe", topic, "--json").json()[0]
    assert len(described["partitions"]) == 4
    assert ("cleanup.policy", "compact") in [(c["name"], c["value"]) for c in described["configs"]]

    assert cli("topics", "alter", topic, "--delete-config", "cleanup.policy").code == 0
    assert cli("topics", "describe", topic, "--json").json()[0]["configs"] == []


def test_alter_errors(cli: Cli, topic: str, unique: str) -> None:
    shrink = cli("topics", "alter", topic, "--partitions", "1")
    assert shrink.code == 2 and "cannot reduce" in shrink.err
    nothing = cli("topics", "alter", topic)
    assert nothing.code == 2 and "nothing to alter" in nothing.err
    unknown = cli("topics", "alter", f"missing-{unique}", "--partitions", "3")
    assert unknown.code == 1 and "unknown topic" in unknown.err


def test_delete_unknown_topic(cli: Cli, unique: str) -> None:
    name = f"missing-{unique}"
    result = cli("topics", "delete", name)
    assert result.code == 1
    assert result.err == f"klamm topics: cannot delete {name}: unknown topic\n"
    assert cli("topics", "delete", name, "--if-exists").code == 0


def test_bad_arguments_exit_2(cli: Cli) -> None:
    assert cli("topics", "create", "x", "--partitions", "0").code == 2
    assert cli("topics", "create", "x", "--config", "no-equals-sign").code == 2
    assert cli("topics", "frobnicate").code == 2


def test_unreachable_cluster_fails_fast_with_one_line(cli: Cli) -> None:
    started = time.monotonic()
    result = cli("topics", "list", bootstrap=closed_port())
    assert time.monotonic() - started < 5
    assert result.code == 1
    assert result.err.startswith("klamm topics: cannot connect to 127.0.0.1:")
    assert result.err.count("\n") == 1


def test_as_a_subprocess(cli_process: Cli, unique: str) -> None:
    name = f"proc-{unique}"
    assert cli_process("topics", "create", name, "--partitions", "2").code == 0
    listed = cli_process("topics", "list", "--json")
    assert listed.code == 0 and name in [t["name"] for t in listed.json()]

    missing = cli_process("topics", "describe", f"missing-{unique}")
    assert missing.code == 1 and "Traceback" not in missing.err
    unreachable = cli_process("topics", "list", bootstrap=closed_port())
    assert unreachable.code == 1
    assert unreachable.err.startswith("klamm topics: cannot connect")
    assert "Traceback" not in unreachable.err
