"""`klamm transactions`: find and end hanging transactions.

Modelled on kafka-transactions.sh, with its vocabulary and columns:

    klamm transactions list
    klamm transactions describe-producers --topic orders --partition 0
    klamm transactions find-hanging --topic orders [--partition 0] [--max-transaction-timeout 15]
    klamm transactions abort --topic orders --partition 0 --start-offset 42
    klamm transactions abort --topic orders --partition 0 --producer-id 7 --producer-epoch 0 \\
        --coordinator-epoch 0

A transaction hangs when a partition holds it open but its coordinator will never end it (its
coordinator state was lost, or a client bug): the partition's last stable offset stays at its
first offset, and every read_committed consumer stops there. `find-hanging` lists the open
transactions (DescribeProducers) older than --max-transaction-timeout whose producer no
coordinator reports as holding a transaction open (ListTransactions); `abort` writes an ABORT
marker into the partition with the producer's id and epochs, as kafka-transactions.sh does.
A klamm broker refuses to abort a transaction its coordinator still holds open.

confluent-kafka's AdminClient has none of these APIs, so this command sends them through
klamm.client.wire (one blocking connection per request), message bodies built from plain values
by klamm.protocol.build, the brokers and partition leaders from librdkafka's metadata. It connects
as the -X librdkafka properties say, to any listener kind: PLAINTEXT, SSL
(`-X security.protocol=SSL -X ssl.ca.location=...`), SASL_PLAINTEXT or SASL_SSL with PLAIN,
SCRAM-SHA-256 or SCRAM-SHA-512 (`-X sasl.mechanism=SCRAM-SHA-512 -X sasl.username=...
-X sasl.password=...`). A broker with an authorizer answers what the user may see: ListTransactions
lists only the transactional ids it may describe, and a refusal names the ACL to ask for.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from klamm.cli._common import (
    CliError,
    add_cluster_command,
    admin_client,
    command,
    console,
    non_negative_int,
    print_json,
    print_table,
    require_topic,
    table,
    topic_metadata,
)
from klamm.client.wire import (
    DESCRIBE_PRODUCERS,
    LIST_TRANSACTIONS,
    WRITE_TXN_MARKERS,
    RawClient,
    WireError,
    request_type,
)
from klamm.protocol.build import build
from klamm.protocol.errors import ErrorCode

CLIENT_ID = "klamm-cli"
# Kafka's transaction.max.timeout.ms default, in minutes: no transaction may legally stay open
# longer, so kafka-transactions.sh find-hanging uses it as its default too.
DEFAULT_MAX_TRANSACTION_TIMEOUT_MIN = 15
# States in which a coordinator will still end the transaction itself (ListTransactions names).
OPEN_STATES = frozenset({"Ongoing", "PrepareCommit", "PrepareAbort", "PrepareEpochFence"})
_AUTHORIZATION_FAILURES = frozenset(
    {ErrorCode.topic_authorization_failed, ErrorCode.cluster_authorization_failed}
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "transactions",
        help="list transactions; find and abort hanging ones",
        description="Inspect transactions and end hanging ones (like kafka-transactions.sh).",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    add_cluster_command(actions, "list", list_command, help="transactional ids and their state")

    producers = add_cluster_command(
        actions, "describe-producers", describe_producers_command,
        help="the producers of a partition and their open transactions",
    )  # fmt: skip
    _add_partition_args(producers, partition_required=True)

    hanging = add_cluster_command(
        actions, "find-hanging", find_hanging_command,
        help="open transactions that no coordinator will end",
    )  # fmt: skip
    _add_partition_args(hanging, partition_required=False)
    hanging.add_argument(
        "--max-transaction-timeout", type=non_negative_int,
        default=DEFAULT_MAX_TRANSACTION_TIMEOUT_MIN, metavar="MINUTES",
        help="only transactions open at least this long "
        f"(default {DEFAULT_MAX_TRANSACTION_TIMEOUT_MIN}, Kafka's transaction.max.timeout.ms)",
    )  # fmt: skip

    abort = add_cluster_command(
        actions, "abort", abort_command, help="end a hanging transaction with an ABORT marker"
    )
    _add_partition_args(abort, partition_required=True)
    which = abort.add_mutually_exclusive_group(required=True)
    which.add_argument("--start-offset", type=non_negative_int, metavar="OFFSET",
                       help="the first offset of the transaction (see find-hanging)")  # fmt: skip
    which.add_argument("--producer-id", type=non_negative_int, metavar="ID",
                       help="with --producer-epoch and --coordinator-epoch")  # fmt: skip
    abort.add_argument("--producer-epoch", type=non_negative_int, metavar="EPOCH")
    abort.add_argument("--coordinator-epoch", type=non_negative_int, metavar="EPOCH")


def _add_partition_args(parser: argparse.ArgumentParser, *, partition_required: bool) -> None:
    parser.add_argument("--topic", required=True, metavar="TOPIC")
    parser.add_argument(
        "--partition", type=non_negative_int, required=partition_required, metavar="PARTITION",
        help=None if partition_required else "one partition (default: every partition)",
    )  # fmt: skip


# --- commands --------------------------------------------------------------------------------


@command("transactions list")
def list_command(args: argparse.Namespace) -> int:
    _raw_client(args)  # refuse settings it cannot use before connecting at all
    rows = []
    for node, address in sorted(_brokers(args).items()):
        response = _ask(args, address, LIST_TRANSACTIONS, state_filters=[], producer_id_filters=[])
        _check(response.error_code, f"broker {node}")
        rows += [
            {"transactional_id": t.transactional_id, "coordinator": node,
             "producer_id": t.producer_id, "state": t.transaction_state}
            for t in response.transaction_states
        ]  # fmt: skip
    rows.sort(key=lambda r: r["transactional_id"])
    if args.json:
        print_json(rows)
        return 0
    result = table("TransactionalId", "Coordinator", "ProducerId", "TransactionState",
                   numeric=("Coordinator", "ProducerId"))  # fmt: skip
    for r in rows:
        result.add_row(r["transactional_id"], str(r["coordinator"]), str(r["producer_id"]),
                       r["state"])  # fmt: skip
    print_table(console(), result)
    return 0


@command("transactions describe-producers")
def describe_producers_command(args: argparse.Namespace) -> int:
    _raw_client(args)  # refuse settings it cannot use before connecting at all
    producers = _describe_producers(args, args.topic, [args.partition])[args.partition]
    if args.json:
        print_json(producers)
        return 0
    result = table("ProducerId", "ProducerEpoch", "LatestCoordinatorEpoch", "LastSequence",
                   "LastTimestamp", "CurrentTransactionStartOffset",
                   numeric=("ProducerId", "ProducerEpoch", "LatestCoordinatorEpoch",
                            "LastSequence", "LastTimestamp",
                            "CurrentTransactionStartOffset"))  # fmt: skip
    for p in producers:
        start = p["current_txn_start_offset"]
        result.add_row(str(p["producer_id"]), str(p["producer_epoch"]),
                       str(p["coordinator_epoch"]), str(p["last_sequence"]),
                       str(p["last_timestamp"]), "None" if start < 0 else str(start))  # fmt: skip
    print_table(console(), result)
    return 0


@command("transactions find-hanging")
def find_hanging_command(args: argparse.Namespace) -> int:
    _raw_client(args)  # refuse settings it cannot use before connecting at all
    now_ms = time.time_ns() // 1_000_000
    min_age_ms = args.max_transaction_timeout * 60_000
    meta = require_topic(admin_client(args), args.topic, args.timeout)
    indexes = sorted(meta.partitions) if args.partition is None else [args.partition]
    candidates = []
    for index, producers in sorted(_describe_producers(args, args.topic, indexes).items()):
        for p in producers:
            age = now_ms - p["last_timestamp"]
            if p["current_txn_start_offset"] >= 0 and age >= min_age_ms:
                candidates.append({"topic": args.topic, "partition": index, **p,
                                   "duration_min": age // 60_000})  # fmt: skip
    # Only ask the coordinators about producers that might hang.
    known = _open_producer_ids(args, {c["producer_id"] for c in candidates})
    hanging = [c for c in candidates if c["producer_id"] not in known]
    if args.json:
        print_json(hanging)
        return 0
    result = table("Topic", "Partition", "ProducerId", "ProducerEpoch", "CoordinatorEpoch",
                   "StartOffset", "LastTimestamp", "Duration(min)",
                   numeric=("Partition", "ProducerId", "ProducerEpoch", "CoordinatorEpoch",
                            "StartOffset", "LastTimestamp", "Duration(min)"))  # fmt: skip
    for h in hanging:
        result.add_row(h["topic"], str(h["partition"]), str(h["producer_id"]),
                       str(h["producer_epoch"]), str(h["coordinator_epoch"]),
                       str(h["current_txn_start_offset"]), str(h["last_timestamp"]),
                       str(h["duration_min"]))  # fmt: skip
    print_table(console(), result)
    return 0


@command("transactions abort")
def abort_command(args: argparse.Namespace) -> int:
    _raw_client(args)  # refuse settings it cannot use before connecting at all
    topic, index = args.topic, args.partition
    where = f"{topic}-{index}"
    if args.start_offset is not None:
        producers = _describe_producers(args, topic, [index])[index]
        found = [p for p in producers if p["current_txn_start_offset"] == args.start_offset]
        if not found:
            raise CliError(f"no open transaction starts at offset {args.start_offset} in {where}")
        target = found[0]
        pid, epoch, coordinator_epoch = (
            target["producer_id"],
            target["producer_epoch"],
            target["coordinator_epoch"],
        )
    else:
        if args.producer_epoch is None or args.coordinator_epoch is None:
            raise CliError("--producer-id needs --producer-epoch and --coordinator-epoch", 2)
        pid, epoch, coordinator_epoch = (
            args.producer_id,
            args.producer_epoch,
            args.coordinator_epoch,
        )
    response = _ask(
        args, _leader(args, topic, index), WRITE_TXN_MARKERS,
        markers=[{
            "producer_id": pid, "producer_epoch": epoch, "transaction_result": False,
            "coordinator_epoch": coordinator_epoch,
            "topics": [{"name": topic, "partition_indexes": [index]}],
        }],
    )  # fmt: skip
    code = response.markers[0].topics[0].partitions[0].error_code
    if code == ErrorCode.invalid_txn_state:
        raise CliError(f"{where}: the coordinator holds the transaction of producer {pid} open; "
                       "end it with its producer, or wait for its timeout")  # fmt: skip
    _check(code, where, needs="ClusterAction on the cluster")
    done = {"topic": topic, "partition": index, "producer_id": pid, "producer_epoch": epoch,
            "coordinator_epoch": coordinator_epoch}  # fmt: skip
    if args.json:
        print_json(done)
    else:
        console().print(f"aborted the transaction of producer {pid} (epoch {epoch}) in {where}")
    return 0


# --- talking to brokers ----------------------------------------------------------------------


def _check(code: ErrorCode, where: str, needs: str = "") -> None:
    """The broker's refusal as the command's error line; an authorization failure says which
    ACL the user lacks (what KafkaApis checks for the request)."""
    if code == ErrorCode.none:
        return
    message = f"{where}: {code.name.upper()}"
    if needs and code in _AUTHORIZATION_FAILURES:
        message += f" (the user needs the {needs} permission; see `klamm acls add`)"
    raise CliError(message)


def _brokers(args: argparse.Namespace) -> dict[int, tuple[str, int]]:
    meta = topic_metadata(admin_client(args), None, args.timeout)
    return {node: (b.host, b.port) for node, b in meta.brokers.items()}


def _leader(args: argparse.Namespace, topic: str, index: int) -> tuple[str, int]:
    return _leaders(args, topic, [index])[index]


def _leaders(
    args: argparse.Namespace, topic: str, indexes: list[int]
) -> dict[int, tuple[str, int]]:
    """The (host, port) of each partition's leader."""
    client = admin_client(args)
    meta = require_topic(client, topic, args.timeout)
    cluster = topic_metadata(client, topic, args.timeout)
    leaders = {}
    for index in indexes:
        partition = meta.partitions.get(index)
        if partition is None:
            raise CliError(f"unknown partition {topic}-{index}")
        broker = cluster.brokers.get(partition.leader)
        if broker is None:
            raise CliError(f"partition {topic}-{index} has no leader")
        leaders[index] = (broker.host, broker.port)
    return leaders


def _describe_producers(
    args: argparse.Namespace, topic: str, indexes: list[int]
) -> dict[int, list[dict[str, int]]]:
    """DescribeProducers of each partition, asked of its leader."""
    by_leader: dict[tuple[str, int], list[int]] = {}
    for index, leader in _leaders(args, topic, indexes).items():
        by_leader.setdefault(leader, []).append(index)
    found: dict[int, list[dict[str, int]]] = {}
    for leader, wanted in by_leader.items():
        response = _ask(
            args, leader, DESCRIBE_PRODUCERS, topics=[{"name": topic, "partition_indexes": wanted}]
        )
        for partition in response.topics[0].partitions:
            _check(partition.error_code, f"{topic}-{partition.partition_index}",
                   needs=f"Read on topic {topic}")  # fmt: skip
            found[partition.partition_index] = [
                {"producer_id": p.producer_id, "producer_epoch": p.producer_epoch,
                 "coordinator_epoch": p.coordinator_epoch, "last_sequence": p.last_sequence,
                 "last_timestamp": p.last_timestamp,
                 "current_txn_start_offset": p.current_txn_start_offset}
                for p in partition.active_producers
            ]  # fmt: skip
    return found


def _open_producer_ids(args: argparse.Namespace, producer_ids: set[int]) -> set[int]:
    """Which of these producers some coordinator holds a transaction open for."""
    if not producer_ids:
        return set()
    known = set()
    for node, address in _brokers(args).items():
        response = _ask(
            args, address, LIST_TRANSACTIONS, state_filters=sorted(OPEN_STATES),
            producer_id_filters=sorted(producer_ids),
        )  # fmt: skip
        _check(response.error_code, f"broker {node}")
        known |= {t.producer_id for t in response.transaction_states
                  if t.transaction_state in OPEN_STATES}  # fmt: skip
    return known


def _ask(args: argparse.Namespace, address: tuple[str, int], api_key: int, **fields: Any) -> Any:
    """One request to the broker at `address`, its body built from `fields`; the broker's
    failures become the command's one-line error."""
    client = _raw_client(args)
    try:
        return client.request(*address, api_key, build(request_type(api_key), **fields))
    except WireError as exc:
        raise CliError(str(exc)) from None


def _raw_client(args: argparse.Namespace) -> RawClient:
    """A client connecting as the -X librdkafka properties ask (security.protocol, sasl.*,
    ssl.*); a setting it cannot use is the command's error line."""
    try:
        return RawClient.from_config(CLIENT_ID, dict(args.client_props), args.timeout)
    except WireError as exc:
        raise CliError(f"klamm transactions: {exc}") from None
