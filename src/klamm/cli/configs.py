"""`klamm configs`: describe and alter topic and broker configs, like kafka-configs.sh.

    klamm configs describe topic orders            # settings that differ from the defaults
    klamm configs describe topic orders --all      # every setting, with its source
    klamm configs describe broker 1
    klamm configs alter topic orders --config retention.ms=3600000 --delete-config cleanup.policy

Alters are incremental (IncrementalAlterConfigs): settings not named are left as they are.
`klamm topics describe/alter` reuse `describe_configs` and `alter_configs` from here.
"""

from __future__ import annotations

import argparse
from typing import Any

from confluent_kafka.admin import AdminClient

from klamm.cli._common import (
    CliError,
    add_cluster_command,
    admin_client,
    command,
    console,
    key_value,
    print_json,
    print_table,
    rd,
    require_topic,
    table,
    topic_metadata,
    wait,
)

RESOURCE_TYPES = {"topic": rd.ResourceType.TOPIC, "broker": rd.ResourceType.BROKER}

# Sources that mean "set on this resource" rather than inherited. STATIC_BROKER_CONFIG counts as
# inherited for a topic (it is server.properties) but is the only kind of setting a broker with no
# dynamic config reports, so broker describes show it.
_OVERRIDES = {
    "topic": {rd.ConfigSource.DYNAMIC_TOPIC_CONFIG},
    "broker": {
        rd.ConfigSource.DYNAMIC_BROKER_CONFIG,
        rd.ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG,
        rd.ConfigSource.STATIC_BROKER_CONFIG,
    },
}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "configs",
        help="describe and alter topic and broker configs",
        description="Describe and alter topic and broker configs (like kafka-configs.sh).",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    describe = add_cluster_command(
        actions, "describe", describe_command, help="show a resource's configs"
    )
    _add_resource_args(describe)
    describe.add_argument(
        "--all", action="store_true", help="include settings left at their defaults"
    )

    alter = add_cluster_command(
        actions, "alter", alter_command, help="set or delete configs (incrementally)"
    )
    _add_resource_args(alter)
    add_alter_args(alter)


def _add_resource_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("resource_type", choices=sorted(RESOURCE_TYPES), metavar="topic|broker")
    parser.add_argument("resource_name", metavar="NAME", help="topic name, or broker id")


def add_alter_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        dest="set_configs",
        type=key_value,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a config (repeatable)",
    )
    parser.add_argument(
        "--delete-config",
        dest="delete_configs",
        action="append",
        default=[],
        metavar="NAME",
        help="remove an override, back to the default (repeatable)",
    )


# --- operations (shared with `klamm topics`) -------------------------------------------------


def describe_configs(
    admin: AdminClient, resource_type: str, name: str, timeout: float
) -> list[Any]:
    resource = rd.ConfigResource(RESOURCE_TYPES[resource_type], name)
    futures = admin.describe_configs([resource], request_timeout=timeout)
    entries: dict[str, Any] = wait(futures[resource], timeout)
    return sorted(entries.values(), key=lambda entry: entry.name)


def is_override(resource_type: str, entry: Any) -> bool:
    return rd.ConfigSource(entry.source) in _OVERRIDES[resource_type]


def alter_configs(
    admin: AdminClient,
    resource_type: str,
    name: str,
    set_configs: list[tuple[str, str]],
    delete_configs: list[str],
    timeout: float,
) -> None:
    entries = [
        rd.ConfigEntry(key, value, incremental_operation=rd.AlterConfigOpType.SET)
        for key, value in set_configs
    ] + [
        rd.ConfigEntry(key, None, incremental_operation=rd.AlterConfigOpType.DELETE)
        for key in delete_configs
    ]
    resource = rd.ConfigResource(RESOURCE_TYPES[resource_type], name, incremental_configs=entries)
    futures = admin.incremental_alter_configs([resource], request_timeout=timeout)
    wait(futures[resource], timeout)


def entry_json(entry: Any) -> dict[str, Any]:
    return {
        "name": entry.name,
        "value": None if entry.is_sensitive else entry.value,
        "source": rd.ConfigSource(entry.source).name,
        "default": bool(entry.is_default),
        "read_only": bool(entry.is_read_only),
        "sensitive": bool(entry.is_sensitive),
    }


def configs_table(entries: list[Any], title: str) -> Any:
    result = table("name", "value", "source", title=title)
    for entry in entries:
        value = "(sensitive)" if entry.is_sensitive else (entry.value or "")
        source = rd.ConfigSource(entry.source).name.lower().removesuffix("_config")
        result.add_row(entry.name, value, source + (", read-only" if entry.is_read_only else ""))
    return result


# --- commands --------------------------------------------------------------------------------


def _validate_resource(args: argparse.Namespace) -> None:
    if args.resource_type == "broker" and not args.resource_name.isdigit():
        raise CliError(f"broker NAME must be a broker id, got {args.resource_name!r}", 2)


def _check_exists(admin: AdminClient, args: argparse.Namespace) -> None:
    # librdkafka sends a broker resource's request to that broker: an unknown id would only
    # time out, so name the problem up front. Topics get the same courtesy.
    if args.resource_type == "broker":
        brokers = topic_metadata(admin, None, args.timeout).brokers
        if int(args.resource_name) not in brokers:
            known = ", ".join(str(b) for b in sorted(brokers))
            raise CliError(f"unknown broker id {args.resource_name} (brokers: {known})")
    else:
        require_topic(admin, args.resource_name, args.timeout)


@command("configs")
def describe_command(args: argparse.Namespace) -> int:
    _validate_resource(args)
    admin = admin_client(args)
    _check_exists(admin, args)
    entries = describe_configs(admin, args.resource_type, args.resource_name, args.timeout)
    if not args.all:
        entries = [entry for entry in entries if is_override(args.resource_type, entry)]
    if args.json:
        print_json(
            {
                "resource_type": args.resource_type,
                "name": args.resource_name,
                "configs": [entry_json(entry) for entry in entries],
            }
        )
        return 0
    title = f"{args.resource_type} {args.resource_name}"
    if not entries:
        console().print(f"{title}: no settings differ from the defaults (--all lists them)")
        return 0
    print_table(console(), configs_table(entries, title))
    return 0


@command("configs")
def alter_command(args: argparse.Namespace) -> int:
    _validate_resource(args)
    if not args.set_configs and not args.delete_configs:
        raise CliError("nothing to alter: give --config NAME=VALUE or --delete-config NAME", 2)
    admin = admin_client(args)
    _check_exists(admin, args)
    alter_configs(
        admin,
        args.resource_type,
        args.resource_name,
        args.set_configs,
        args.delete_configs,
        args.timeout,
    )
    if args.json:
        print_json(
            {
                "resource_type": args.resource_type,
                "name": args.resource_name,
                "set": dict(args.set_configs),
                "deleted": args.delete_configs,
            }
        )
    else:
        changes = [f"{k}={v}" for k, v in args.set_configs]
        changes += [f"-{k}" for k in args.delete_configs]
        console().print(f"altered {args.resource_type} {args.resource_name}: {', '.join(changes)}")
    return 0
