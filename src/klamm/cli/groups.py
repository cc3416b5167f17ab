"""`klamm groups`: list, describe, delete consumer groups and reset their offsets.

Modelled on kafka-consumer-groups.sh:

    klamm groups list
    klamm groups describe billing          # members, and per partition: committed, end, lag
    klamm groups delete billing
    klamm groups reset-offsets billing --topic orders --to-earliest             # dry run
    klamm groups reset-offsets billing --topic orders:0,1 --to-offset 42 --execute

Offsets can only be reset while the group has no active members (Kafka refuses the commit
otherwise), and the reset is a dry run unless --execute is given.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition

from klamm.cli._common import (
    CliError,
    add_cluster_command,
    admin_client,
    command,
    console,
    describe_error,
    print_json,
    print_table,
    rd,
    report_deletions,
    require_topic,
    table,
    wait,
)

# Group states in which nobody consumes, so offsets may be changed (Kafka's own rule).
INACTIVE_STATES = {"EMPTY", "DEAD", "UNKNOWN"}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "groups",
        help="list, describe and delete consumer groups; reset their offsets",
        description="Manage consumer groups (like kafka-consumer-groups.sh).",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    add_cluster_command(actions, "list", list_command, help="list consumer groups")

    describe = add_cluster_command(
        actions, "describe", describe_command, help="members, committed offsets and lag"
    )
    describe.add_argument("groups", nargs="+", metavar="GROUP")

    delete = add_cluster_command(
        actions, "delete", delete_command, help="delete consumer groups (must be empty)"
    )
    delete.add_argument("groups", nargs="+", metavar="GROUP")

    reset = add_cluster_command(
        actions, "reset-offsets", reset_command, help="move committed offsets (dry run by default)"
    )
    reset.add_argument("group", metavar="GROUP")
    scope = reset.add_mutually_exclusive_group(required=True)
    scope.add_argument(
        "--topic",
        dest="topics",
        action="append",
        metavar="TOPIC[:P,P...]",
        help="topic, optionally with partitions (repeatable)",
    )
    scope.add_argument(
        "--all-topics", action="store_true", help="every topic the group has offsets for"
    )
    target = reset.add_mutually_exclusive_group(required=True)
    target.add_argument("--to-earliest", action="store_true")
    target.add_argument("--to-latest", action="store_true")
    target.add_argument("--to-offset", type=int, metavar="N")
    target.add_argument(
        "--to-datetime",
        type=_iso_datetime,
        metavar="ISO",
        help="first offset at or after this time, e.g. 2024-05-01T12:00:00Z (naive = local)",
    )
    reset.add_argument("--execute", action="store_true", help="apply (default: only show)")


def _iso_datetime(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO 8601 time, got {value!r}") from None


def _state(description: Any) -> str:
    return str(description.state.name) if description.state is not None else "UNKNOWN"


# --- list ------------------------------------------------------------------------------------


@command("groups")
def list_command(args: argparse.Namespace) -> int:
    admin = admin_client(args)
    result = wait(admin.list_consumer_groups(request_timeout=args.timeout), args.timeout)
    if result.errors:
        raise CliError(f"cannot list groups: {describe_error(result.errors[0])}")
    rows = [
        {
            "group": listing.group_id,
            "state": listing.state.name if listing.state is not None else "UNKNOWN",
            "simple": bool(listing.is_simple_consumer_group),
        }
        for listing in sorted(result.valid, key=lambda listing: listing.group_id)
    ]
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        console().print("no consumer groups")
        return 0
    out = table("group", "state", "type")
    for row in rows:
        out.add_row(row["group"], row["state"].lower(), "simple" if row["simple"] else "consumer")
    print_table(console(), out)
    return 0


# --- describe --------------------------------------------------------------------------------


@dataclass
class PartitionLag:
    topic: str
    partition: int
    committed: int | None
    end: int | None
    member: Any = None  # the MemberDescription it is assigned to, if any

    @property
    def lag(self) -> int | None:
        if self.committed is None or self.end is None:
            return None
        return max(0, self.end - self.committed)


def committed_offsets(admin: Any, group: str, timeout: float) -> dict[tuple[str, int], int]:
    """The group's committed offsets, by (topic, partition); partitions without one omitted."""
    futures = admin.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group)], request_timeout=timeout
    )
    result = wait(futures[group], timeout)
    return {
        (tp.topic, tp.partition): tp.offset
        for tp in result.topic_partitions
        if tp.offset >= 0 and tp.error is None
    }


def list_offsets(
    admin: Any, partitions: list[tuple[str, int]], spec: Any, timeout: float
) -> dict[tuple[str, int], int]:
    """One OffsetSpec (earliest, latest, a timestamp) resolved for each partition."""
    if not partitions:
        return {}
    request = {TopicPartition(topic, partition): spec for topic, partition in partitions}
    futures = admin.list_offsets(request, request_timeout=timeout)
    return {(tp.topic, tp.partition): wait(f, timeout).offset for tp, f in futures.items()}


def describe_group(admin: Any, group: str, timeout: float) -> tuple[Any, list[PartitionLag]]:
    description = wait(
        admin.describe_consumer_groups([group], request_timeout=timeout)[group], timeout
    )
    committed = committed_offsets(admin, group, timeout)
    owners: dict[tuple[str, int], Any] = {}
    for member in description.members:
        for tp in member.assignment.topic_partitions if member.assignment else []:
            owners[(tp.topic, tp.partition)] = member
    keys = sorted(set(committed) | set(owners))
    ends = list_offsets(admin, keys, rd.OffsetSpec.latest(), timeout)
    rows = [
        PartitionLag(topic, partition, committed.get((topic, partition)),
                     ends.get((topic, partition)), owners.get((topic, partition)))
        for topic, partition in keys
    ]  # fmt: skip
    return description, rows


def _member_json(member: Any) -> dict[str, Any]:
    assignment = member.assignment.topic_partitions if member.assignment else []
    return {
        "member_id": member.member_id,
        "group_instance_id": member.group_instance_id,
        "client_id": member.client_id,
        "host": member.host,
        "assignment": [{"topic": tp.topic, "partition": tp.partition} for tp in assignment],
    }


def _group_json(description: Any, rows: list[PartitionLag]) -> dict[str, Any]:
    coordinator = description.coordinator
    return {
        "group": description.group_id,
        "state": _state(description),
        "assignor": description.partition_assignor,
        "coordinator": coordinator.id if coordinator is not None else None,
        "members": [_member_json(member) for member in description.members],
        "partitions": [
            {
                "topic": row.topic,
                "partition": row.partition,
                "committed": row.committed,
                "end": row.end,
                "lag": row.lag,
                "member_id": row.member.member_id if row.member else None,
            }
            for row in rows
        ],
    }


def _print_group(description: Any, rows: list[PartitionLag]) -> None:
    out = console()
    coordinator = description.coordinator
    total_lag = sum(row.lag or 0 for row in rows)
    out.print(
        f"[bold]{description.group_id}[/bold]  state: {_state(description).lower()}  "
        f"assignor: {description.partition_assignor or '-'}  "
        f"coordinator: {coordinator.id if coordinator is not None else '-'}  "
        f"members: {len(description.members)}  total lag: {total_lag}"
    )
    if rows:
        offsets = table(
            "topic", "partition", "committed", "log end", "lag", "member", "host", "client id",
            numeric=("partition", "committed", "log end", "lag"),
        )  # fmt: skip
        for row in rows:
            offsets.add_row(
                row.topic,
                str(row.partition),
                _dash(row.committed),
                _dash(row.end),
                _dash(row.lag),
                row.member.member_id if row.member else "-",
                row.member.host if row.member else "-",
                row.member.client_id if row.member else "-",
            )
        print_table(out, offsets)
    elif description.members:
        out.print("no partitions assigned and no committed offsets")


def _dash(value: int | None) -> str:
    return "-" if value is None else str(value)


def _exists(description: Any, rows: list[PartitionLag]) -> bool:
    # Kafka answers DescribeGroups for an unknown group with state Dead and no members, so a group
    # "exists" when it has members or committed offsets.
    return bool(description.members) or any(row.committed is not None for row in rows)


@command("groups")
def describe_command(args: argparse.Namespace) -> int:
    admin = admin_client(args)
    described = []
    for group in args.groups:
        description, rows = describe_group(admin, group, args.timeout)
        if not _exists(description, rows):
            raise CliError(f"unknown consumer group {group!r}")
        described.append((description, rows))
    if args.json:
        print_json([_group_json(description, rows) for description, rows in described])
        return 0
    for description, rows in described:
        _print_group(description, rows)
    return 0


# --- delete ----------------------------------------------------------------------------------


@command("groups")
def delete_command(args: argparse.Namespace) -> int:
    admin = admin_client(args)
    futures = admin.delete_consumer_groups(list(args.groups), request_timeout=args.timeout)
    deleted, failures = [], []
    for group in args.groups:
        try:
            wait(futures[group], args.timeout)
            deleted.append(group)
        except KafkaException as exc:
            failures.append(f"{group}: {_delete_reason(exc)}")
    return report_deletions(args, "group", deleted, failures)


def _delete_reason(exc: KafkaException) -> str:
    err = exc.args[0]
    if err.code() == err.GROUP_ID_NOT_FOUND:
        return "unknown consumer group"
    if err.code() == err.NON_EMPTY_GROUP:
        return "the group has active members"
    return describe_error(exc)


# --- reset-offsets ---------------------------------------------------------------------------


def _scope(
    admin: Any, args: argparse.Namespace, committed: dict[tuple[str, int], int]
) -> list[tuple[str, int]]:
    """The (topic, partition) pairs a reset applies to."""
    if args.all_topics:
        if not committed:
            raise CliError(f"group {args.group!r} has no committed offsets; name a --topic")
        return sorted(committed)
    pairs: list[tuple[str, int]] = []
    for spec in args.topics:
        topic, _, wanted = spec.partition(":")
        meta = require_topic(admin, topic, args.timeout)
        if not wanted:
            pairs += [(topic, p) for p in sorted(meta.partitions)]
            continue
        for item in wanted.split(","):
            if not item.strip().isdigit():
                raise CliError(f"bad --topic {spec!r}: expected TOPIC or TOPIC:P,P,...", 2)
            if int(item) not in meta.partitions:
                raise CliError(f"topic {topic!r} has no partition {item}")
            pairs.append((topic, int(item)))
    return pairs


def _targets(
    admin: Any, args: argparse.Namespace, pairs: list[tuple[str, int]]
) -> dict[tuple[str, int], int]:
    """The new offset of each partition, clamped to the log's range as Kafka does."""
    earliest = list_offsets(admin, pairs, rd.OffsetSpec.earliest(), args.timeout)
    latest = list_offsets(admin, pairs, rd.OffsetSpec.latest(), args.timeout)
    if args.to_earliest:
        return earliest
    if args.to_latest:
        return latest
    if args.to_offset is not None:
        return {key: min(max(args.to_offset, earliest[key]), latest[key]) for key in pairs}
    timestamp_ms = int(args.to_datetime.timestamp() * 1000)
    found = list_offsets(admin, pairs, rd.OffsetSpec.for_timestamp(timestamp_ms), args.timeout)
    # No message at or after the time: the end of the log (nothing to re-read).
    return {key: found[key] if found[key] >= 0 else latest[key] for key in pairs}


@command("groups")
def reset_command(args: argparse.Namespace) -> int:
    admin = admin_client(args)
    description = wait(
        admin.describe_consumer_groups([args.group], request_timeout=args.timeout)[args.group],
        args.timeout,
    )
    state = _state(description)
    if args.execute and (description.members or state not in INACTIVE_STATES):
        raise CliError(
            f"offsets of group {args.group!r} can only be reset while it is inactive "
            f"(state: {state.lower()}, {len(description.members)} members)"
        )
    committed = committed_offsets(admin, args.group, args.timeout)
    pairs = _scope(admin, args, committed)
    targets = _targets(admin, args, pairs)
    if args.execute:
        request = ConsumerGroupTopicPartitions(
            args.group, [TopicPartition(t, p, targets[(t, p)]) for t, p in pairs]
        )
        futures = admin.alter_consumer_group_offsets([request], request_timeout=args.timeout)
        result = wait(futures[args.group], args.timeout)
        failed = [tp for tp in result.topic_partitions if tp.error is not None]
        if failed:
            tp = failed[0]
            raise CliError(f"cannot reset {tp.topic}[{tp.partition}]: {describe_error(tp.error)}")
    rows: list[dict[str, Any]] = [
        {"topic": t, "partition": p, "current": committed.get((t, p)), "new": targets[(t, p)]}
        for t, p in pairs
    ]
    if args.json:
        print_json({"group": args.group, "executed": bool(args.execute), "partitions": rows})
        return 0
    out = table("topic", "partition", "current", "new", numeric=("partition", "current", "new"))
    for row in rows:
        out.add_row(row["topic"], str(row["partition"]), _dash(row["current"]), str(row["new"]))
    con = console()
    print_table(con, out)
    if args.execute:
        con.print(f"reset offsets of group {args.group} on {len(rows)} partitions")
    else:
        con.print("dry run: nothing changed; add --execute to apply")
    return 0
