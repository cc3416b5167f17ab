"""`klamm acls`: add, list and remove ACLs, with kafka-acls.sh's vocabulary.

    klamm acls add --allow-principal User:alice --operation Read --topic orders
    klamm acls add --allow-principal User:app --producer --topic orders- \\
        --resource-pattern-type prefixed --transactional-id app- --idempotent
    klamm acls add --allow-principal User:app --consumer --topic orders --group billing
    klamm acls add --deny-principal User:bob --deny-host 10.0.0.9 --operation All --topic orders
    klamm acls list                                # every ACL
    klamm acls list --topic orders --resource-pattern-type match   # what applies to `orders`
    klamm acls remove --allow-principal User:alice --operation Read --topic orders

Each command makes one ACL per resource x principal x host x operation, as kafka-acls.sh does:
`--allow-host`/`--deny-host` default to `*`, `--operation` to All. `--producer` grants Write,
Describe and Create on the topics (Write and Describe on `--transactional-id`, IdempotentWrite on
the cluster with `--idempotent`); `--consumer` Read and Describe on the topics and Read on the
groups. `remove` deletes the ACLs matching those filters (`--operation`, principals and hosts
left out match any). Like the other operator commands it talks to any Kafka cluster through
confluent-kafka; the cluster needs an authorizer (Kafka's SECURITY_DISABLED otherwise).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any

from klamm.cli._common import (
    CliError,
    add_cluster_command,
    admin_client,
    command,
    console,
    print_json,
    print_table,
    rd,
    table,
    wait,
)

# kafka-acls.sh's operation names (AclOperation in CamelCase), by their lower-case form.
OPERATIONS = {
    name.replace("_", "").lower(): getattr(rd.AclOperation, name)
    for name in ("ALL", "READ", "WRITE", "CREATE", "DELETE", "ALTER", "DESCRIBE",
                 "CLUSTER_ACTION", "DESCRIBE_CONFIGS", "ALTER_CONFIGS", "IDEMPOTENT_WRITE")
}  # fmt: skip
OPERATION_NAMES = (
    "All", "Read", "Write", "Create", "Delete", "Alter", "Describe", "ClusterAction",
    "DescribeConfigs", "AlterConfigs", "IdempotentWrite",
)  # fmt: skip
PATTERN_TYPES = {
    "literal": rd.ResourcePatternType.LITERAL,
    "prefixed": rd.ResourcePatternType.PREFIXED,
    "match": rd.ResourcePatternType.MATCH,  # list and remove only
    "any": rd.ResourcePatternType.ANY,  # list and remove only
}
# The one CLUSTER resource's name (Kafka's Resource.CLUSTER_NAME).
CLUSTER_NAME = "kafka-cluster"
# librdkafka names the CLUSTER resource type BROKER (both are code 4); klamm says cluster.
_RESOURCE_NAMES = {"TOPIC": "topic", "GROUP": "group", "BROKER": "cluster",
                   "TRANSACTIONAL_ID": "transactional-id"}  # fmt: skip


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "acls",
        help="add, list and remove ACLs",
        description="Add, list and remove ACLs (like kafka-acls.sh). The cluster needs an "
        "authorizer (`klamm broker --authorizer`, or Kafka's authorizer.class.name).",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = add_cluster_command(actions, "add", add_command, help="create ACLs")
    _add_resource_args(add, listing=False)
    _add_entry_args(add)
    add.add_argument(
        "--producer",
        action="store_true",
        help="the ACLs a producer needs on --topic (and --transactional-id)",
    )
    add.add_argument(
        "--consumer", action="store_true", help="the ACLs a consumer needs on --topic and --group"
    )
    add.add_argument("--idempotent", action="store_true",
                     help="with --producer: IdempotentWrite on the cluster too")  # fmt: skip
    listing = add_cluster_command(actions, "list", list_command, help="show ACLs")
    _add_resource_args(listing, listing=True)
    listing.add_argument("--principal", action="append", default=[], metavar="PRINCIPAL",
                         help="only this principal's ACLs (repeatable)")  # fmt: skip
    remove = add_cluster_command(actions, "remove", remove_command,
                                 help="delete the ACLs matching the options")  # fmt: skip
    _add_resource_args(remove, listing=True)
    _add_entry_args(remove)


def _add_resource_args(parser: argparse.ArgumentParser, *, listing: bool) -> None:
    group = parser.add_argument_group("resources")
    group.add_argument("--topic", action="append", default=[], metavar="NAME",
                       help="a topic (repeatable; '*' means every topic)")  # fmt: skip
    group.add_argument("--group", action="append", default=[], metavar="NAME",
                       help="a consumer group (repeatable; '*' means every group)")  # fmt: skip
    group.add_argument("--transactional-id", action="append", default=[], metavar="ID",
                       help="a transactional id (repeatable)")  # fmt: skip
    group.add_argument("--cluster", action="store_true", help="the cluster")
    choices = ("literal", "prefixed", "match", "any") if listing else ("literal", "prefixed")
    group.add_argument(
        "--resource-pattern-type", choices=choices, default=None, type=str.lower,
        help="literal names (default) or prefixes"
        + ("; match: every pattern applying to the name; any: both kinds" if listing else ""),
    )  # fmt: skip


def _add_entry_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("entries")
    group.add_argument("--allow-principal", action="append", default=[], metavar="PRINCIPAL",
                       help="Type:name (User:alice, User:* for everyone); repeatable")  # fmt: skip
    group.add_argument("--deny-principal", action="append", default=[], metavar="PRINCIPAL",
                       help="a principal to deny; repeatable")  # fmt: skip
    group.add_argument("--allow-host", action="append", default=[], metavar="HOST",
                       help="client IP address the allow applies to (default *)")  # fmt: skip
    group.add_argument("--deny-host", action="append", default=[], metavar="HOST",
                       help="client IP address the deny applies to (default *)")  # fmt: skip
    group.add_argument("--operation", action="append", default=[], type=_operation,
                       metavar="OPERATION", help=f"one of {', '.join(OPERATION_NAMES)} "
                       "(repeatable; add defaults to All, remove to any)")  # fmt: skip


def _operation(value: str) -> Any:
    operation = OPERATIONS.get(value.replace("_", "").replace("-", "").lower())
    if operation is None:
        raise argparse.ArgumentTypeError(
            f"unknown operation {value!r}; expected one of {', '.join(OPERATION_NAMES)}"
        )
    return operation


def _principal(value: str) -> str:
    kind, sep, name = value.partition(":")
    if not (kind and sep and name):
        raise CliError(f"bad principal {value!r}: expected Type:name, e.g. User:alice", 2)
    return value


# --- building ACLs and filters ---------------------------------------------------------------


def _resources(args: argparse.Namespace) -> list[tuple[Any, str]]:
    found = [(rd.ResourceType.TOPIC, name) for name in args.topic]
    found += [(rd.ResourceType.GROUP, name) for name in args.group]
    found += [(rd.ResourceType.TRANSACTIONAL_ID, name) for name in args.transactional_id]
    if args.cluster:
        found.append((rd.ResourceType.BROKER, CLUSTER_NAME))
    for _, name in found:
        if not name:
            raise CliError("a resource name cannot be empty", 2)
    return found


def _entries(args: argparse.Namespace) -> Iterator[tuple[str, str, Any]]:
    """(principal, host, permission) of every --allow/--deny principal and its hosts."""
    for principals, hosts, permission in (
        (args.allow_principal, args.allow_host, rd.AclPermissionType.ALLOW),
        (args.deny_principal, args.deny_host, rd.AclPermissionType.DENY),
    ):
        for principal in principals:
            for host in hosts or ["*"]:
                yield _principal(principal), host, permission


def _pattern(args: argparse.Namespace, default: str) -> Any:
    return PATTERN_TYPES[args.resource_pattern_type or default]


def _bindings(args: argparse.Namespace) -> list[Any]:
    """kafka-acls.sh's --add: every resource x entry x operation (with --producer/--consumer,
    the operations those roles need on each resource type)."""
    if not args.allow_principal and not args.deny_principal:
        raise CliError("add needs --allow-principal or --deny-principal", 2)
    if args.allow_host and not args.allow_principal:
        raise CliError("--allow-host needs --allow-principal", 2)
    if args.deny_host and not args.deny_principal:
        raise CliError("--deny-host needs --deny-principal", 2)
    resources = _resources(args)
    pattern = _pattern(args, "literal")
    ops = rd.AclOperation
    wanted: list[tuple[Any, str, Any]] = []  # (resource type, name, operation)
    if args.producer or args.consumer:
        if args.operation:
            raise CliError("--operation cannot be combined with --producer or --consumer", 2)
        if not args.topic:
            raise CliError("--producer and --consumer need --topic", 2)
        if args.consumer and not args.group:
            raise CliError("--consumer needs --group", 2)
        for rtype, name in resources:
            if rtype == rd.ResourceType.TOPIC:
                if args.producer:
                    wanted += [(rtype, name, op) for op in (ops.WRITE, ops.DESCRIBE, ops.CREATE)]
                if args.consumer:
                    wanted += [(rtype, name, op) for op in (ops.READ, ops.DESCRIBE)]
            elif rtype == rd.ResourceType.TRANSACTIONAL_ID and args.producer:
                wanted += [(rtype, name, op) for op in (ops.WRITE, ops.DESCRIBE)]
            elif rtype == rd.ResourceType.GROUP and args.consumer:
                wanted.append((rtype, name, ops.READ))
        if args.producer and args.idempotent:
            wanted.append((rd.ResourceType.BROKER, CLUSTER_NAME, ops.IDEMPOTENT_WRITE))
    else:
        if not resources:
            raise CliError("add needs a resource: --topic, --group, --transactional-id or "
                           "--cluster", 2)  # fmt: skip
        for rtype, name in resources:
            wanted += [(rtype, name, op) for op in args.operation or [ops.ALL]]
    bindings = []
    for rtype, name, op in dict.fromkeys(wanted):
        # The cluster is one resource, named exactly: never a prefix.
        kind = rd.ResourcePatternType.LITERAL if rtype == rd.ResourceType.BROKER else pattern
        for principal, host, permission in _entries(args):
            bindings.append(rd.AclBinding(rtype, name, kind, principal, host, op, permission))
    return list(dict.fromkeys(bindings))  # a principal or host given twice: one ACL


def _filters(args: argparse.Namespace, principals: list[str | None]) -> list[Any]:
    """Filters for list and remove: per resource (or any resource), per principal."""
    resources: list[tuple[Any, str | None]] = list(_resources(args))
    pattern = _pattern(args, "literal" if resources else "any")
    if not resources:
        resources = [(rd.ResourceType.ANY, None)]
    filters = []
    for rtype, name in resources:
        for principal in principals:
            for host, permission in _filter_entries(args, principal):
                for op in getattr(args, "operation", []) or [rd.AclOperation.ANY]:
                    filters.append(
                        rd.AclBindingFilter(rtype, name, pattern, principal, host, op, permission)
                    )
    return list(dict.fromkeys(filters))


def _filter_entries(args: argparse.Namespace, principal: str | None) -> list[tuple[Any, Any]]:
    """(host, permission) filters for one principal of `remove` (any, for `list`)."""
    if principal is None or not hasattr(args, "allow_principal"):
        return [(None, rd.AclPermissionType.ANY)]
    allow = principal in args.allow_principal
    hosts = (args.allow_host if allow else args.deny_host) or [None]
    permission = rd.AclPermissionType.ALLOW if allow else rd.AclPermissionType.DENY
    return [(host, permission) for host in hosts]


# --- output --------------------------------------------------------------------------------


def acl_json(binding: Any) -> dict[str, str]:
    return {
        "resource_type": _RESOURCE_NAMES.get(binding.restype.name, binding.restype.name.lower()),
        "name": binding.name,
        "pattern_type": binding.resource_pattern_type.name.lower(),
        "principal": binding.principal,
        "host": binding.host,
        "operation": OPERATION_NAMES[list(OPERATIONS.values()).index(binding.operation)],
        "permission": binding.permission_type.name.capitalize(),
    }


def _sorted(bindings: list[Any]) -> list[dict[str, str]]:
    rows = {tuple(acl_json(b).items()): None for b in bindings}  # one row per ACL
    return sorted((dict(row) for row in rows), key=lambda r: tuple(r.values()))


def _print(rows: list[dict[str, str]], title: str) -> None:
    result = table("resource", "name", "pattern", "principal", "host", "operation",
                   "permission", title=title)  # fmt: skip
    for row in rows:
        result.add_row(*row.values())
    print_table(console(), result)


# --- commands ------------------------------------------------------------------------------


@command("acls")
def add_command(args: argparse.Namespace) -> int:
    bindings = _bindings(args)
    admin = admin_client(args)
    futures = admin.create_acls(bindings, request_timeout=args.timeout)
    for binding in bindings:
        wait(futures[binding], args.timeout)
    rows = _sorted(bindings)
    if args.json:
        print_json({"created": rows})
    else:
        _print(rows, f"created {len(rows)} ACL{'s' if len(rows) != 1 else ''}")
    return 0


@command("acls")
def list_command(args: argparse.Namespace) -> int:
    principals: list[str | None] = [_principal(p) for p in args.principal] or [None]
    admin = admin_client(args)
    found: list[Any] = []
    for acl_filter in _filters(args, principals):
        found += wait(admin.describe_acls(acl_filter, request_timeout=args.timeout), args.timeout)
    rows = _sorted(found)
    if args.json:
        print_json({"acls": rows})
    elif not rows:
        console().print("no ACLs")
    else:
        _print(rows, f"{len(rows)} ACL{'s' if len(rows) != 1 else ''}")
    return 0


@command("acls")
def remove_command(args: argparse.Namespace) -> int:
    if not _resources(args):
        raise CliError(
            "remove needs a resource: --topic, --group, --transactional-id or --cluster "
            "(kafka-acls.sh's rule: no accidental removal of all)", 2,
        )  # fmt: skip
    principals: list[str | None] = [
        _principal(p) for p in (*args.allow_principal, *args.deny_principal)
    ] or [None]
    filters = _filters(args, principals)
    admin = admin_client(args)
    futures = admin.delete_acls(filters, request_timeout=args.timeout)
    removed: list[Any] = []
    for acl_filter in filters:
        removed += wait(futures[acl_filter], args.timeout)
    rows = _sorted(removed)
    if args.json:
        print_json({"removed": rows})
    elif not rows:
        console().print("no ACLs matched: nothing removed")
    else:
        _print(rows, f"removed {len(rows)} ACL{'s' if len(rows) != 1 else ''}")
    return 0
