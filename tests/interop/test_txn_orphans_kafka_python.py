"""A transaction left hanging by a crash that also lost the coordinator's state, ended by hand
with kafka-python's admin client (DescribeProducers, then WriteTxnMarkers: what
kafka-transactions.sh abort does); kafka-python's read_committed consumer then reads on."""

from __future__ import annotations

import time
from pathlib import Path

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import AbortTransactionSpec

from klamm.protocol.errors import ErrorCode
from klamm.testing import EmbeddedBroker
from tests.broker.txn_wire import (
    add_partitions,
    create_topic,
    init_pid,
    lose_transaction_state,
    produce_txn,
    stable_offset,
)
from tests.broker.wire import Wire


def test_hanging_transaction_after_a_crash_is_aborted_by_hand(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    crashed = EmbeddedBroker(data_dir, mode="subprocess").start()
    try:
        with Wire(crashed.bootstrap) as wire:
            create_topic(wire)
            init = init_pid(wire, "crashed")
            pid, epoch = init.producer_id, init.producer_epoch
            assert add_partitions(wire, "crashed", pid, epoch) == ErrorCode.none
            assert produce_txn(wire, "crashed", pid, epoch, 0, b"uncommitted") == ErrorCode.none
            assert produce_txn(wire, None, -1, -1, -1, b"after") == ErrorCode.none
    finally:
        crashed.kill()  # SIGKILL mid-transaction: no snapshot, no clean shutdown
    lose_transaction_state(data_dir)

    with EmbeddedBroker(data_dir) as broker:
        tp = TopicPartition("t", 0)
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10_000)
        try:
            (state,) = admin.describe_producers([tp])[tp].active_producers
            assert (state.producer_id, state.current_transaction_start_offset) == (pid, 0)
            with Wire(broker.bootstrap) as wire:
                assert stable_offset(wire) == 0  # stuck: the coordinator knows nothing of it
            admin.abort_transaction(AbortTransactionSpec(
                tp, state.producer_id, state.producer_epoch, state.coordinator_epoch
            ))  # fmt: skip
            (state,) = admin.describe_producers([tp])[tp].active_producers
            assert state.current_transaction_start_offset == -1
        finally:
            admin.close()

        consumer = KafkaConsumer(
            bootstrap_servers=broker.bootstrap, isolation_level="read_committed",
            auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=10_000,
        )  # fmt: skip
        try:
            consumer.assign([tp])
            values = []
            deadline = time.monotonic() + 20
            while not values and time.monotonic() < deadline:
                for records in consumer.poll(timeout_ms=500).values():
                    values += [r.value for r in records]
            assert values == [b"after"]
        finally:
            consumer.close()
