"""`klamm transactions`: find a hanging transaction (its coordinator state lost) and abort it by
hand, in kafka-transactions.sh's vocabulary; a transaction the coordinator holds open is refused."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from klamm.protocol.errors import ErrorCode
from klamm.testing import EmbeddedBroker
from tests.broker.txn_wire import (
    add_partitions,
    create_topic,
    high_watermark,
    init_pid,
    lose_transaction_state,
    produce_txn,
    stable_offset,
)
from tests.broker.wire import Wire
from tests.cli.cli_helpers import Cli

AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
CLI = Path(__file__).resolve().parents[2] / "src" / "klamm" / "cli"


@pytest.fixture
def hanging(tmp_path: Path) -> Iterator[tuple[EmbeddedBroker, int]]:
    """A broker whose t-0 holds an open transaction (offset 0, then a plain record) that its
    coordinator lost, and a second one ("alive", offset 2) that the coordinator knows. The
    default transaction.max.timeout.ms (15 min) keeps the broker from aborting either."""
    broker = EmbeddedBroker(tmp_path / "data")
    with broker:
        with Wire(broker.bootstrap) as wire:
            create_topic(wire)
            init = init_pid(wire, "lost")
            pid, epoch = init.producer_id, init.producer_epoch
            assert add_partitions(wire, "lost", pid, epoch) == ErrorCode.none
            assert produce_txn(wire, "lost", pid, epoch, 0) == ErrorCode.none
            assert produce_txn(wire, None, -1, -1, -1) == ErrorCode.none
        broker.stop()
        lose_transaction_state(broker.data_dir)
        broker.start()
        with Wire(broker.bootstrap) as wire:
            alive = init_pid(wire, "alive")
            assert add_partitions(wire, "alive", alive.producer_id, 0) == ErrorCode.none
            assert produce_txn(wire, "alive", alive.producer_id, 0, 0) == ErrorCode.none
        yield broker, pid


def test_find_hanging_and_abort_by_start_offset(
    cli: Cli, hanging: tuple[EmbeddedBroker, int]
) -> None:
    broker, pid = hanging
    run = lambda *argv: cli("transactions", *argv, bootstrap=broker.bootstrap)  # noqa: E731

    described = run("describe-producers", "--topic", "t", "--partition", "0", "--json")
    assert described.code == 0, described.err
    starts = {p["producer_id"]: p["current_txn_start_offset"] for p in described.json()}
    assert starts[pid] == 0
    table = run("describe-producers", "--topic", "t", "--partition", "0").out
    assert "CurrentTransactionStartOffset" in table and str(pid) in table

    found = run("find-hanging", "--topic", "t", "--max-transaction-timeout", "0", "--json")
    assert found.code == 0, found.err
    # Only the lost one: the coordinator still holds "alive" open.
    assert [(h["partition"], h["producer_id"], h["current_txn_start_offset"])
            for h in found.json()] == [(0, pid, 0)]  # fmt: skip

    listed = run("list", "--json")
    assert listed.code == 0, listed.err
    assert [t["transactional_id"] for t in listed.json()] == ["alive"]

    missing = run("abort", "--topic", "t", "--partition", "0", "--start-offset", "1")
    assert missing.code == 1
    assert "no open transaction starts at offset 1 in t-0" in missing.err

    aborted = run("abort", "--topic", "t", "--partition", "0", "--start-offset", "0")
    assert aborted.code == 0, aborted.err
    assert f"aborted the transaction of producer {pid}" in aborted.out
    with Wire(broker.bootstrap) as wire:
        # The LSO moved on to the known transaction's first offset, no further.
        assert stable_offset(wire) == 2 < high_watermark(wire)
    again = run("find-hanging", "--topic", "t", "--max-transaction-timeout", "0", "--json")
    assert again.json() == []


def test_abort_of_a_transaction_the_coordinator_holds_open_is_refused(
    cli: Cli, hanging: tuple[EmbeddedBroker, int]
) -> None:
    broker, _ = hanging
    result = cli("transactions", "abort", "--topic", "t", "--partition", "0",
                 "--start-offset", "2", bootstrap=broker.bootstrap)  # fmt: skip
    assert result.code == 1
    assert "the coordinator holds the transaction of producer" in result.err
    with Wire(broker.bootstrap) as wire:
        assert stable_offset(wire) == 0


def test_abort_by_producer_id_and_bad_input(cli: Cli, hanging: tuple[EmbeddedBroker, int]) -> None:
    broker, pid = hanging
    run = lambda *argv: cli("transactions", *argv, bootstrap=broker.bootstrap)  # noqa: E731
    incomplete = run("abort", "--topic", "t", "--partition", "0", "--producer-id", str(pid))
    assert incomplete.code == 2 and "--producer-epoch" in incomplete.err
    unknown = run("abort", "--topic", "t", "--partition", "9", "--start-offset", "0")
    assert unknown.code == 1 and "unknown partition t-9" in unknown.err
    gssapi = run("list", "-X", "security.protocol=SASL_PLAINTEXT")
    assert gssapi.code == 1 and "sasl.mechanism GSSAPI is not one" in gssapi.err
    done = run("abort", "--topic", "t", "--partition", "0", "--producer-id", str(pid),
               "--producer-epoch", "0", "--coordinator-epoch", "0", "--json")  # fmt: skip
    assert done.code == 0, done.err
    assert done.json()["producer_id"] == pid
    with Wire(broker.bootstrap) as wire:
        assert stable_offset(wire) == 2


def sasl_props(user: str, password: str, mechanism: str = "SCRAM-SHA-256") -> list[str]:
    return ["-X", "security.protocol=SASL_PLAINTEXT", "-X", f"sasl.mechanism={mechanism}",
            "-X", f"sasl.username={user}", "-X", f"sasl.password={password}"]  # fmt: skip


def test_over_sasl_with_acls(cli: Cli, tmp_path: Path) -> None:
    """A shared broker (SASL and ACLs): the super user sees the open transaction and its
    producer; a user with Describe on the topic only is told which permission is missing."""
    import confluent_kafka

    users = {"admin": "admin-pw", "bob": "bob-pw"}
    with EmbeddedBroker(
        tmp_path, security_protocol="SASL_PLAINTEXT", sasl_users=users,
        authorizer_class_name=AUTHORIZER, super_users=("User:admin",),
    ) as broker:  # fmt: skip
        admin, bob = sasl_props("admin", "admin-pw"), sasl_props("bob", "bob-pw", "PLAIN")
        run = lambda *argv: cli("transactions", *argv, bootstrap=broker.bootstrap)  # noqa: E731
        assert cli("topics", "create", "t", *admin, bootstrap=broker.bootstrap).code == 0
        granted = cli("acls", "add", "--allow-principal", "User:bob", "--operation", "Describe",
                      "--topic", "t", *admin, bootstrap=broker.bootstrap)  # fmt: skip
        assert granted.code == 0, granted.err
        producer = confluent_kafka.Producer({
            "bootstrap.servers": broker.bootstrap, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "admin",
            "sasl.password": "admin-pw", "transactional.id": "open-one",
        })  # fmt: skip
        producer.init_transactions(10)
        producer.begin_transaction()
        producer.produce("t", b"v", partition=0)
        assert producer.flush(10) == 0

        listed = run("list", "--json", *admin)
        assert listed.code == 0, listed.err
        assert [(t["transactional_id"], t["state"]) for t in listed.json()] == [
            ("open-one", "Ongoing")
        ]
        producers = run("describe-producers", "--topic", "t", "--partition", "0", "--json",
                        *admin)  # fmt: skip
        assert producers.code == 0, producers.err
        assert [p["current_txn_start_offset"] for p in producers.json()] == [0]

        # bob may not describe the transactional id: he is shown none, as Kafka filters.
        assert run("list", "--json", *bob).json() == []
        refused = run("describe-producers", "--topic", "t", "--partition", "0", *bob)
        assert refused.code == 1
        assert "t-0: TOPIC_AUTHORIZATION_FAILED (the user needs the Read on topic t" in (
            refused.err
        )
        # (librdkafka, which finds the brokers, is the first to be refused here.)
        wrong = run("list", "--timeout", "2", *sasl_props("bob", "not-his"))
        assert wrong.code == 1 and len(wrong.err.strip().splitlines()) == 1
        producer.abort_transaction(10)


def test_the_command_reaches_clusters_only_through_clients_and_protocol() -> None:
    """Like the other operator commands it never imports broker or storage code; unlike them
    it may use klamm.protocol, for the APIs confluent-kafka's AdminClient lacks."""
    names: set[str] = set()
    for node in ast.walk(ast.parse((CLI / "transactions.py").read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    assert not [
        n for n in names if n.startswith(("klamm.broker", "klamm.storage", "klamm.testing"))
    ]
