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

confluent-kafka's AdminClient has none of these APIs, so this command sends them itself: one
blocking connection per broker, one request at a time, message bodies from kio through
klamm.protocol, the brokers and partition leaders from librdkafka's metadata. It speaks
PLAINTEXT and SSL (`-X security.protocol=SSL -X ssl.ca.location=...`), not SASL.
"""

from __future__ import annotations

import argparse
import io
import socket
import ssl
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kio.serial import entity_reader, entity_writer
from kio.serial.errors import DecodeError

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
from klamm.protocol.build import build
from klamm.protocol.errors import ErrorCode
from klamm.protocol.framing import frame
from klamm.protocol.messages import request_type, response_type

# The API versions used: each is served by Kafka 3.x and 4.x alike (WriteTxnMarkers v0 is gone
# in Kafka 4, v1 exists since 2.4), and by klamm.
DESCRIBE_PRODUCERS = (61, 0)
LIST_TRANSACTIONS = (66, 0)
WRITE_TXN_MARKERS = (27, 1)
CLIENT_ID = "klamm-cli"
# The largest response accepted: these answers are a few KiB; a broker saying more is not one.
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
# Kafka's transaction.max.timeout.ms default, in minutes: no transaction may legally stay open
# longer, so kafka-transactions.sh find-hanging uses it as its default too.
DEFAULT_MAX_TRANSACTION_TIMEOUT_MIN = 15
# States in which a coordinator will still end the transaction itself (ListTransactions names).
OPEN_STATES = frozenset({"Ongoing", "PrepareCommit", "PrepareAbort", "PrepareEpochFence"})


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
    _tls(args)  # refuse what this command cannot speak before connecting at all
    rows = []
    for node, address in sorted(_brokers(args).items()):
        with _connect(args, address) as broker:
            response = broker.request(*LIST_TRANSACTIONS, state_filters=[], producer_id_filters=[])
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
    _tls(args)  # refuse what this command cannot speak before connecting at all
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
    _tls(args)  # refuse what this command cannot speak before connecting at all
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
    _tls(args)  # refuse what this command cannot speak before connecting at all
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
    with _connect(args, _leader(args, topic, index)) as broker:
        response = broker.request(
            *WRITE_TXN_MARKERS,
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
    _check(code, where)
    done = {"topic": topic, "partition": index, "producer_id": pid, "producer_epoch": epoch,
            "coordinator_epoch": coordinator_epoch}  # fmt: skip
    if args.json:
        print_json(done)
    else:
        console().print(f"aborted the transaction of producer {pid} (epoch {epoch}) in {where}")
    return 0


# --- talking to brokers ----------------------------------------------------------------------


def _check(code: ErrorCode, where: str) -> None:
    if code != ErrorCode.none:
        raise CliError(f"{where}: {code.name.upper()}")


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
        with _connect(args, leader) as broker:
            response = broker.request(
                *DESCRIBE_PRODUCERS, topics=[{"name": topic, "partition_indexes": wanted}]
            )
        for partition in response.topics[0].partitions:
            _check(partition.error_code, f"{topic}-{partition.partition_index}")
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
        with _connect(args, address) as broker:
            response = broker.request(
                *LIST_TRANSACTIONS, state_filters=sorted(OPEN_STATES),
                producer_id_filters=sorted(producer_ids),
            )  # fmt: skip
        _check(response.error_code, f"broker {node}")
        known |= {t.producer_id for t in response.transaction_states
                  if t.transaction_state in OPEN_STATES}  # fmt: skip
    return known


@contextmanager
def _connect(args: argparse.Namespace, address: tuple[str, int]) -> Iterator[_Connection]:
    connection = _Connection(address, args.timeout, _tls(args))
    try:
        yield connection
    finally:
        connection.close()


def _tls(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The TLS context that -X security.protocol=SSL (and ssl.* properties) ask for."""
    props = dict(args.client_props)
    protocol = props.get("security.protocol", "plaintext").lower()
    if protocol == "plaintext":
        return None
    if protocol != "ssl":
        raise CliError(f"klamm transactions speaks PLAINTEXT and SSL, not {protocol.upper()}")
    context = ssl.create_default_context(cafile=props.get("ssl.ca.location"))
    if props.get("enable.ssl.certificate.verification", "true").lower() == "false":
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if "ssl.certificate.location" in props:
        context.load_cert_chain(props["ssl.certificate.location"], props.get("ssl.key.location"))
    return context


class _Connection:
    """One blocking connection to one broker; `request` sends one request, reads its answer."""

    def __init__(
        self, address: tuple[str, int], timeout: float, tls: ssl.SSLContext | None
    ) -> None:
        host, port = address
        self._where = f"{host}:{port}"
        try:
            sock = socket.create_connection(address, timeout)
            self._sock = tls.wrap_socket(sock, server_hostname=host) if tls else sock
        except OSError as exc:
            raise CliError(f"cannot connect to {self._where}: {exc.strerror or exc}") from None
        self._correlation = 0

    def close(self) -> None:
        self._sock.close()

    def request(self, api_key: int, version: int, **fields: Any) -> Any:
        cls = request_type(api_key, version)
        body = io.BytesIO()
        entity_writer(cls)(body, build(cls, **fields))
        self._correlation += 1
        client = CLIENT_ID.encode()
        header = struct.pack(">hhih", api_key, version, self._correlation, len(client)) + client
        if cls.__flexible__:
            header += b"\0"  # no tagged fields
        try:
            self._sock.sendall(frame(header + body.getvalue()))
            (size,) = struct.unpack(">i", self._read(4))
            if not 4 <= size <= MAX_RESPONSE_BYTES:
                raise CliError(f"{self._where} sent a response of {size} bytes")
            answer = self._read(size)
        except TimeoutError:
            raise CliError(f"timed out waiting for {self._where}") from None
        except OSError as exc:
            raise CliError(f"lost the connection to {self._where}: {exc}") from None
        (correlation,) = struct.unpack_from(">i", answer, 0)
        if correlation != self._correlation:
            raise CliError(f"{self._where} answered request {correlation}, not {self._correlation}")
        response = response_type(api_key, version)
        try:
            pos = _skip_tagged_fields(answer, 4) if response.__flexible__ else 4
            value, _ = entity_reader(response)(answer, pos)
        except (DecodeError, IndexError, struct.error) as exc:
            raise CliError(f"{self._where} sent a response that cannot be read: {exc}") from None
        return value

    def _read(self, n: int) -> bytes:
        data = bytearray()
        while len(data) < n:
            chunk = self._sock.recv(n - len(data))
            if not chunk:
                raise CliError(f"{self._where} closed the connection (unsupported request?)")
            data += chunk
        return bytes(data)


def _skip_tagged_fields(buf: bytes, pos: int) -> int:
    """Past a flexible response header's tagged fields (count, then tag/size/bytes each)."""
    count, pos = _uvarint(buf, pos)
    for _ in range(count):
        _, pos = _uvarint(buf, pos)
        size, pos = _uvarint(buf, pos)
        pos += size
    return pos


def _uvarint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
