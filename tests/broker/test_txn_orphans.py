"""A transaction whose coordinator state is lost (the `__transaction_state` log damaged or removed
while it was open) no longer holds its partition's last stable offset for ever: the broker aborts
it once its timeout has passed, and an operator can end it at once with WriteTxnMarkers. A
transaction the coordinator knows is never ended from outside."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from klamm.protocol.errors import ErrorCode
from klamm.testing import EmbeddedBroker
from tests.broker.txn_wire import (
    add_partitions,
    create_topic,
    end_txn,
    high_watermark,
    init_pid,
    lose_transaction_state,
    open_transactions,
    produce_txn,
    stable_offset,
    write_marker,
)
from tests.broker.wire import Wire

# Short enough for a test, long enough that the first checks after the restart run well before
# it (they take milliseconds). The producer's own timeout must not exceed it.
ORPHAN_TIMEOUT_MS = 3_000
# Generous: the abort is due ORPHAN_TIMEOUT_MS (+ one 1 s sweep) after the restart.
UNBLOCK_DEADLINE_S = 20.0
GROUP = "g-lost"


@pytest.fixture
def lost(tmp_path: Path) -> Iterator[tuple[EmbeddedBroker, int]]:
    """A broker SIGKILLed during a transaction on t-0 (the transactional record at offset 0, a
    plain record after it, a pending offset commit of GROUP), whose `__transaction_state` was
    then lost, restarted. Yields (broker, the transaction's producer id)."""
    data_dir = tmp_path / "data"
    crashed = EmbeddedBroker(data_dir, mode="subprocess").start()
    try:
        with Wire(crashed.bootstrap) as wire:
            create_topic(wire)
            init = init_pid(wire, "lost", timeout_ms=ORPHAN_TIMEOUT_MS)
            pid, epoch = init.producer_id, init.producer_epoch
            assert add_partitions(wire, "lost", pid, epoch) == ErrorCode.none
            assert produce_txn(wire, "lost", pid, epoch, 0, b"uncommitted") == ErrorCode.none
            assert produce_txn(wire, None, -1, -1, -1, b"plain") == ErrorCode.none
            assert stable_offset(wire) == 0
            # The transaction also commits a consumer group's offset (pending until it ends).
            added = wire.request(25, 3, transactional_id="lost", producer_id=pid,
                                 producer_epoch=epoch, group_id=GROUP)  # fmt: skip
            assert added.error_code == ErrorCode.none
            committed = wire.request(
                28, 3, transactional_id="lost", group_id=GROUP, producer_id=pid,
                producer_epoch=epoch, generation_id=-1, member_id="", group_instance_id=None,
                topics=[{"name": "t", "partitions": [
                    {"partition_index": 0, "committed_offset": 1, "committed_leader_epoch": -1,
                     "committed_metadata": None}]}],
            )  # fmt: skip
            assert committed.topics[0].partitions[0].error_code == ErrorCode.none
    finally:
        crashed.kill()  # no clean shutdown: producer state is rebuilt from the log
    lose_transaction_state(data_dir)
    with EmbeddedBroker(data_dir, transaction_max_timeout_ms=ORPHAN_TIMEOUT_MS) as broker:
        yield broker, pid


def group_offset(wire: Wire) -> tuple[ErrorCode, int]:
    """OffsetFetch of GROUP on t-0 with require_stable: (error, committed offset)."""
    response = wire.request(
        9, 7, group_id=GROUP, topics=[{"name": "t", "partition_indexes": [0]}],
        require_stable=True,
    )  # fmt: skip
    partition = response.topics[0].partitions[0]
    return partition.error_code, partition.committed_offset


def wait_unblocked(wire: Wire) -> float:
    """Seconds until t-0's last stable offset reaches its high watermark."""
    started = time.monotonic()
    while stable_offset(wire) < high_watermark(wire):
        assert time.monotonic() - started < UNBLOCK_DEADLINE_S, "the LSO stayed stuck"
        time.sleep(0.1)
    return time.monotonic() - started


def test_orphaned_transaction_is_aborted_after_its_timeout(
    lost: tuple[EmbeddedBroker, int],
) -> None:
    broker, pid = lost
    with Wire(broker.bootstrap) as wire:
        # Right after the restart: the coordinator does not know the transaction, which still
        # holds the LSO (the broker waits out the timeout before ending it).
        described = wire.request(65, 0, transactional_ids=["lost"])
        error = described.transaction_states[0].error_code
        assert error == ErrorCode.transactional_id_not_found
        assert stable_offset(wire) == 0
        assert [p.producer_id for p in open_transactions(wire)] == [pid]
        assert group_offset(wire)[0] == ErrorCode.unstable_offset_commit
        wait_unblocked(wire)
        assert open_transactions(wire) == []
        assert stable_offset(wire) == high_watermark(wire) == 3  # + the ABORT marker
        # The group's pending offset was dropped with the transaction (aborted: never visible).
        deadline = time.monotonic() + UNBLOCK_DEADLINE_S
        while group_offset(wire)[0] == ErrorCode.unstable_offset_commit:
            assert time.monotonic() < deadline, "the group's offset stayed unstable"
            time.sleep(0.1)
        assert group_offset(wire) == (ErrorCode.none, -1)


def test_read_committed_consumer_is_unblocked_and_skips_the_aborted_record(
    lost: tuple[EmbeddedBroker, int],
) -> None:
    broker, _ = lost
    consumer = Consumer({
        "bootstrap.servers": broker.bootstrap, "group.id": "orphans", "enable.auto.commit": False,
        "isolation.level": "read_committed", "auto.offset.reset": "earliest",
    })  # fmt: skip
    try:
        consumer.assign([TopicPartition("t", 0, 0)])
        values = []
        deadline = time.monotonic() + UNBLOCK_DEADLINE_S
        while not values and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                values.append(message.value())
        assert values == [b"plain"]  # never the aborted record, and not stuck behind it
    finally:
        consumer.close()


def test_operator_ends_an_orphaned_transaction_by_hand(
    lost: tuple[EmbeddedBroker, int],
) -> None:
    broker, pid = lost
    with Wire(broker.bootstrap) as wire:
        [producer] = open_transactions(wire)
        epoch, coordinator_epoch = producer.producer_epoch, producer.coordinator_epoch
        # Kafka's checks: a stale producer or coordinator epoch is refused, nothing written.
        assert write_marker(wire, pid, epoch - 1, coordinator_epoch) == (
            ErrorCode.invalid_producer_epoch
        )
        assert write_marker(wire, pid, epoch, coordinator_epoch - 1) == (
            ErrorCode.transaction_coordinator_fenced
        )
        assert write_marker(wire, pid, epoch, coordinator_epoch, partition=7) == (
            ErrorCode.unknown_topic_or_partition
        )
        assert stable_offset(wire) == 0
        # Well before the automatic abort is due: the operator's marker unblocks at once
        # (v2, what Kafka 4's admin client sends to a broker advertising it).
        assert write_marker(wire, pid, epoch, coordinator_epoch, version=2) == ErrorCode.none
        assert stable_offset(wire) == high_watermark(wire) == 3
        assert open_transactions(wire) == []
        # A marker for __consumer_offsets ends the producer's pending offset commits.
        assert group_offset(wire)[0] == ErrorCode.unstable_offset_commit
        assert write_marker(wire, pid, epoch, coordinator_epoch, topic="__consumer_offsets") == (
            ErrorCode.none
        )
        assert group_offset(wire) == (ErrorCode.none, -1)


def test_a_transaction_the_coordinator_knows_is_never_ended_from_outside(
    tmp_path: Path,
) -> None:
    with (
        EmbeddedBroker(tmp_path / "data", transaction_max_timeout_ms=60_000) as broker,
        Wire(broker.bootstrap) as wire,
    ):
        create_topic(wire)
        init = init_pid(wire, "known", timeout_ms=60_000)
        pid, epoch = init.producer_id, init.producer_epoch
        assert add_partitions(wire, "known", pid, epoch) == ErrorCode.none
        assert produce_txn(wire, "known", pid, epoch, 0) == ErrorCode.none
        # A marker by hand would split the transaction's outcome: refused.
        assert write_marker(wire, pid, epoch, 0) == ErrorCode.invalid_txn_state
        assert write_marker(wire, pid, epoch, 0, commit=True) == ErrorCode.invalid_txn_state
        assert stable_offset(wire) == 0
        # The coordinator's sweep leaves it alone too; its own EndTxn commits it.
        time.sleep(1.5)  # more than one sweep
        assert stable_offset(wire) == 0
        assert end_txn(wire, "known", pid, epoch, commit=True) == ErrorCode.none
        assert stable_offset(wire) == high_watermark(wire) == 2


def test_producer_ids_still_in_use_are_not_handed_out_again(
    lost: tuple[EmbeddedBroker, int],
) -> None:
    """The lost log also held the producer id reservations: a new producer must not get the
    orphan's id, or its transaction would adopt (and its commit expose) the orphaned record."""
    broker, pid = lost
    with Wire(broker.bootstrap) as wire:
        assert init_pid(wire, "new", timeout_ms=ORPHAN_TIMEOUT_MS).producer_id > pid
        assert init_pid(wire, None).producer_id > pid
        assert stable_offset(wire) == 0  # still held by the orphan, not adopted by "new"
