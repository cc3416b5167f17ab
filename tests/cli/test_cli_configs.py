"""`klamm configs`: describe and alter topic and broker configs."""

from __future__ import annotations

from tests.cli.cli_helpers import Cli


def test_describe_topic_shows_only_overrides(cli: Cli, topic: str) -> None:
    empty = cli("configs", "describe", "topic", topic)
    assert empty.code == 0 and "no settings differ" in empty.out

    assert cli("configs", "alter", "topic", topic, "--config", "retention.ms=1000").code == 0
    described = cli("configs", "describe", "topic", topic, "--json").json()
    assert described["configs"] == [
        {
            "name": "retention.ms",
            "value": "1000",
            "source": "DYNAMIC_TOPIC_CONFIG",
            "default": False,
            "read_only": False,
            "sensitive": False,
        }
    ]
    table = cli("configs", "describe", "topic", topic)
    assert "retention.ms" in table.out and "dynamic_topic" in table.out


def test_describe_all_includes_defaults(cli: Cli, topic: str) -> None:
    configs = cli("configs", "describe", "topic", topic, "--all", "--json").json()["configs"]
    by_name = {c["name"]: c for c in configs}
    assert by_name["cleanup.policy"]["value"] == "delete"
    assert by_name["cleanup.policy"]["source"] in ("DEFAULT_CONFIG", "STATIC_BROKER_CONFIG")


def test_alter_set_and_delete(cli: Cli, topic: str) -> None:
    result = cli(
        "configs", "alter", "topic", topic,
        "--config", "retention.ms=1000", "--config", "cleanup.policy=compact",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert "retention.ms=1000" in result.out
    result = cli("configs", "alter", "topic", topic, "--delete-config", "retention.ms")
    assert result.code == 0
    names = [
        c["name"] for c in cli("configs", "describe", "topic", topic, "--json").json()["configs"]
    ]
    assert names == ["cleanup.policy"]


def test_alter_errors(cli: Cli, topic: str, unique: str) -> None:
    nothing = cli("configs", "alter", "topic", topic)
    assert nothing.code == 2 and "nothing to alter" in nothing.err
    bad_value = cli("configs", "alter", "topic", topic, "--config", "retention.ms=soon")
    assert bad_value.code == 1 and "retention.ms" in bad_value.err
    bad_key = cli("configs", "alter", "topic", topic, "--config", "no.such.config=1")
    assert bad_key.code == 1 and "no.such.config" in bad_key.err
    unknown = cli("configs", "describe", "topic", f"missing-{unique}")
    assert unknown.code == 1 and "unknown topic" in unknown.err


def test_broker_configs(cli: Cli) -> None:
    described = cli("configs", "describe", "broker", "0", "--json")
    assert described.code == 0, described.err
    configs = {c["name"]: c for c in described.json()["configs"]}
    # Without --all, what the broker's configuration sets (STATIC_BROKER_CONFIG), as Kafka
    # reports it: settings left at Kafka's default (num.partitions=1) are DEFAULT_CONFIG.
    assert "advertised.listeners" in configs and "num.partitions" not in configs
    # With --all, the defaults topics inherit, under their broker-level names, as Kafka lists.
    every = cli("configs", "describe", "broker", "0", "--all", "--json").json()["configs"]
    defaults = {c["name"]: c["value"] for c in every}
    assert defaults["log.retention.ms"] == "604800000"
    assert defaults["log.retention.hours"] == "168"
    assert defaults["message.max.bytes"] == "1048588"
    assert defaults["num.partitions"] == "1"
    assert "num.partitions" in cli("configs", "describe", "broker", "0", "--all").out

    unknown = cli("configs", "describe", "broker", "7")
    assert unknown.code == 1 and unknown.err == "klamm configs: unknown broker id 7 (brokers: 0)\n"
    not_an_id = cli("configs", "describe", "broker", "zero")
    assert not_an_id.code == 2
    # klamm's broker settings are static (server.properties): the broker refuses, we report it.
    refused = cli("configs", "alter", "broker", "0", "--config", "num.partitions=3")
    assert refused.code == 1 and refused.err.count("\n") == 1
