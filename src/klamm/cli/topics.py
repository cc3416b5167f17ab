"""`klamm topics`: list, create, describe, delete and alter topics, like kafka-topics.sh.

Works against any Kafka cluster through confluent-kafka's AdminClient:

    klamm topics list
    klamm topics create orders --partitions 6 --config retention.ms=86400000
    klamm topics describe orders
    klamm topics alter orders --partitions 12 --config cleanup.policy=compact
    klamm topics delete orders
"""

from __future__ import annotations

import argparse
from typing import Any

from confluent_kafka import KafkaException

from klamm.cli._common import (
    CliError,
    add_cluster_command,
    admin_client,
    command,
    console,
    describe_error,
    key_value,
    positive_int,
    print_json,
    print_table,
    rd,
    report_deletions,
    require_topic,
    table,
    topic_metadata,
    wait,
)
from klamm.cli.configs import (
    add_alter_args,
    alter_configs,
    configs_table,
    describe_configs,
    entry_json,
    is_override,
)

# Kafka's internal topics (__consumer_offsets, __transaction_state) all start with "__"; a user
# listing topics rarely wants them, so `list` hides them unless --all.
INTERNAL_PREFIX = "__"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "topics",
        help="list, create, describe, delete and alter topics",
        description="Manage topics on any Kafka cluster (like kafka-topics.sh).",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    ls = add_cluster_command(actions, "list", list_command, help="list topics")
    ls.add_argument("--all", action="store_true", help="include internal topics (__*)")

    create = add_cluster_command(actions, "create", create_command, help="create a topic")
    create.add_argument("topic")
    create.add_argument(
        "--partitions", type=positive_int, default=None, help="(default: the broker's)"
    )
    create.add_argument("--replication-factor", type=positive_int, default=None,
                        help="(default: the broker's)")  # fmt: skip
    create.add_argument(
        "--config",
        dest="configs",
        type=key_value,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="topic config (repeatable)",
    )
    create.add_argument(
        "--if-not-exists", action="store_true", help="succeed if the topic already exists"
    )

    describe = add_cluster_command(
        actions, "describe", describe_command, help="partitions, leaders and overridden configs"
    )
    describe.add_argument("topics", nargs="+", metavar="TOPIC")

    delete = add_cluster_command(actions, "delete", delete_command, help="delete topics")
    delete.add_argument("topics", nargs="+", metavar="TOPIC")
    delete.add_argument("--if-exists", action="store_true", help="succeed if a topic is absent")

    alter = add_cluster_command(
        actions, "alter", alter_command, help="add partitions, set or delete configs"
    )
    alter.add_argument("topic")
    alter.add_argument(
        "--partitions", type=positive_int, default=None, help="new total partition count"
    )
    add_alter_args(alter)


@command("topics")
def list_command(args: argparse.Namespace) -> int:
    admin = admin_client(args)
    metadata = topic_metadata(admin, None, args.timeout)
    rows = []
    for name in sorted(metadata.topics):
        if name.startswith(INTERNAL_PREFIX) and not args.all:
            continue
        partitions = metadata.topics[name].partitions
        replicas = max((len(p.replicas) for p in partitions.values()), default=0)
        rows.append({"name": name, "partitions": len(partitions), "replication_factor": replicas})
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        console().print("no topics")
        return 0
    result = table("topic", "partitions", "replication", numeric=("partitions", "replication"))
    for row in rows:
        result.add_row(row["name"], str(row["partitions"]), str(row["replication_factor"]))
    print_table(console(), result)
    return 0


@command("topics")
def create_command(args: argparse.Namespace) -> int:
    admin = admin_client(args)
    # -1 asks the broker for its num.partitions / default.replication.factor (CreateTopics v4+).
    new = rd.NewTopic(
        args.topic,
        num_partitions=args.partitions or -1,
        replication_factor=args.replication_factor or -1,
        config=dict(args.configs),
    )
    futures = admin.create_topics([new], request_timeout=args.timeout)
    created = True
    try:
        wait(futures[args.topic], args.timeout)
    except KafkaException as exc:
        if not (args.if_not_exists and exc.args[0].code() == exc.args[0].TOPIC_ALREADY_EXISTS):
            raise CliError(f"cannot create topic {args.topic!r}: {describe_error(exc)}") from None
        created = False
    if args.json:
        print_json({"topic": args.topic, "created": created})
    elif created:
        console().print(f"created topic {args.topic}")
    else:
        console().print(f"topic {args.topic} already exists")
    return 0


@command("topics")
def describe_command(args: argparse.Namespace) -> int:
    admin = admin_client(args)
    described = []
    for name in args.topics:
        meta = require_topic(admin, name, args.timeout)
        configs = [
            entry
            for entry in describe_configs(admin, "topic", name, args.timeout)
            if is_override("topic", entry)
        ]
        described.append((name, meta, configs))
    if args.json:
        print_json([_topic_json(name, meta, configs) for name, meta, configs in described])
        return 0
    out = console()
    for name, meta, configs in described:
        out.print(f"[bold]{name}[/bold]  partitions: {len(meta.partitions)}")
        partitions = table("partition", "leader", "replicas", "isr", numeric=("partition",))
        for pid in sorted(meta.partitions):
            part = meta.partitions[pid]
            partitions.add_row(
                str(pid),
                str(part.leader) if part.leader >= 0 else "none",
                ",".join(map(str, part.replicas)),
                ",".join(map(str, part.isrs)),
            )
        print_table(out, partitions)
        if configs:
            print_table(out, configs_table(configs, "configs (overrides)"))
        else:
            out.print("configs: all defaults")
    return 0


def _topic_json(name: str, meta: Any, configs: list[Any]) -> dict[str, Any]:
    return {
        "name": name,
        "partitions": [
            {
                "partition": pid,
                "leader": meta.partitions[pid].leader,
                "replicas": list(meta.partitions[pid].replicas),
                "isr": list(meta.partitions[pid].isrs),
            }
            for pid in sorted(meta.partitions)
        ],
        "configs": [entry_json(entry) for entry in configs],
    }


@command("topics")
def delete_command(args: argparse.Namespace) -> int:
    admin = admin_client(args)
    futures = admin.delete_topics(list(args.topics), request_timeout=args.timeout)
    deleted, failures = [], []
    for name in args.topics:
        try:
            wait(futures[name], args.timeout)
            deleted.append(name)
        except KafkaException as exc:
            err = exc.args[0]
            if not (args.if_exists and err.code() == err.UNKNOWN_TOPIC_OR_PART):
                failures.append(f"{name}: {_delete_reason(exc)}")
    return report_deletions(args, "topic", deleted, failures)


def _delete_reason(exc: KafkaException) -> str:
    err = exc.args[0]
    return "unknown topic" if err.code() == err.UNKNOWN_TOPIC_OR_PART else describe_error(exc)


@command("topics")
def alter_command(args: argparse.Namespace) -> int:
    if args.partitions is None and not args.set_configs and not args.delete_configs:
        raise CliError("nothing to alter: give --partitions, --config or --delete-config", 2)
    admin = admin_client(args)
    meta = require_topic(admin, args.topic, args.timeout)
    changes = []
    if args.partitions is not None and args.partitions != len(meta.partitions):
        if args.partitions < len(meta.partitions):
            raise CliError(
                f"topic {args.topic!r} has {len(meta.partitions)} partitions; "
                "Kafka cannot reduce the partition count",
                2,
            )
        futures = admin.create_partitions(
            [rd.NewPartitions(args.topic, args.partitions)], request_timeout=args.timeout
        )
        wait(futures[args.topic], args.timeout)
        changes.append(f"partitions {len(meta.partitions)} -> {args.partitions}")
    if args.set_configs or args.delete_configs:
        alter_configs(
            admin, "topic", args.topic, args.set_configs, args.delete_configs, args.timeout
        )
        changes += [f"{k}={v}" for k, v in args.set_configs]
        changes += [f"-{k}" for k in args.delete_configs]
    if args.json:
        print_json({"topic": args.topic, "changes": changes})
    else:
        console().print(f"altered topic {args.topic}: {', '.join(changes) or 'no change'}")
    return 0
