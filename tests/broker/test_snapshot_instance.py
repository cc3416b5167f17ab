"""A producer-state snapshot belongs to one partition instance (issue 11, finding 4).

Snapshots are taken on the event loop and written later in a worker thread. A topic deleted and
re-created in between must not receive the old partition's snapshot: after a restart it would
hold the new partition's last stable offset at a transaction that never ends there, and every
read_committed consumer would hang. And a snapshot that does not match its log is refused.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path
from typing import Any

import pytest

from klamm.broker.config import BrokerConfig
from klamm.broker.node import Broker
from klamm.broker.transactions import TransactionCoordinator
from klamm.protocol.errors import ErrorCode
from klamm.protocol.record_batch import Record, RecordBatch, build_batch, parse_header
from klamm.storage import producer_state
from klamm.storage.producer_state import ProducerEntry, Snapshot, write_snapshot
from klamm.storage.txn_index import TxnIndex
from tests.broker.wire import Wire

TOPIC = "orders"


async def _broker(data_dir: Path) -> Broker:
    broker = Broker(BrokerConfig(port=0, data_dir=data_dir, flush_policy="os"))
    await broker.start()
    return broker


def _batch(pid: int = -1, epoch: int = -1, seq: int = -1, transactional: bool = False) -> bytes:
    records = [Record(0, 1_700_000_000_000, b"k", b"v")]
    return build_batch(
        RecordBatch(records, producer_id=pid, producer_epoch=epoch, base_sequence=seq,
                    transactional=transactional)
    )  # fmt: skip


def _append(broker: Broker, data: bytes) -> tuple[ErrorCode, int]:
    """The produce path's steps for one batch (producer checks, append, producer update)."""
    partition = broker.partition(TOPIC, 0)
    assert partition is not None
    header = parse_header(data)
    producers = broker.producers
    check = producers.check_append(partition, header)
    if check is not None:
        return check.error, check.base_offset
    appended = partition.log.append(bytearray(data))
    producers.record_append(partition, header, appended.base_offset)
    broker.durability.appended(partition)
    return ErrorCode.none, appended.base_offset


def _read_committed_end(port: int) -> int:
    """ListOffsets latest with isolation_level read_committed: the last stable offset."""
    with Wire(f"127.0.0.1:{port}") as wire:
        response = wire.request(
            2, 7, replica_id=-1, isolation_level=1,
            topics=[{"name": TOPIC, "partitions": [
                {"partition_index": 0, "current_leader_epoch": -1, "timestamp": -1}]}],
        )  # fmt: skip
        partition = response.topics[0].partitions[0]
        assert partition.error_code == ErrorCode.none
        return int(partition.offset)


async def test_snapshot_of_a_deleted_topic_never_lands_in_its_recreated_namesake(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker = await _broker(tmp_path)
    broker.create_topic(TOPIC, 1)
    coord = broker.transactions
    assert isinstance(coord, TransactionCoordinator)
    pid, epoch = await coord.init_producer_id("tx", 60_000)
    await coord.add_partitions("tx", pid, epoch, [(TOPIC, 0)])
    # An open transaction in the old partition: its snapshot names it.
    assert _append(broker, _batch(pid, epoch, 0, transactional=True)) == (ErrorCode.none, 0)

    # Delete and re-create the topic after the snapshot was taken, right before it is written:
    # from inside the worker thread that writes it (the event loop is waiting for that thread).
    encode = producer_state.encode_snapshot

    def recreate_then_encode(snapshot: Snapshot) -> bytes:
        monkeypatch.setattr(producer_state, "encode_snapshot", encode)  # only once
        broker.delete_topic(TOPIC)
        broker.create_topic(TOPIC, 1)
        return encode(snapshot)

    monkeypatch.setattr(producer_state, "encode_snapshot", recreate_then_encode)
    await broker.producers.snapshot_all(only_dirty=True)
    assert producer_state.encode_snapshot is encode  # the topic was re-created mid-write

    assert _append(broker, _batch()) == (ErrorCode.none, 0)  # the new topic's own records
    assert _append(broker, _batch()) == (ErrorCode.none, 1)
    assert list((tmp_path / f"{TOPIC}-0").glob("*.snapshot")) == []
    await broker.stop()

    broker = await _broker(tmp_path)
    try:
        partition = broker.partition(TOPIC, 0)
        assert partition is not None
        assert partition.last_stable_offset == partition.log.log_end_offset == 2
        assert await asyncio.to_thread(_read_committed_end, broker.bound_port) == 2
    finally:
        await broker.stop()


@pytest.mark.parametrize(
    ("topic_id", "why"),
    [(uuid.uuid4(), "belongs to topic id"), (None, "does not match the log")],
    ids=["another-topic-id", "no-topic-id-and-no-such-transaction"],
)
async def test_a_snapshot_that_does_not_match_its_log_is_refused(
    tmp_path: Path, caplog: Any, topic_id: uuid.UUID | None, why: str
) -> None:
    broker = await _broker(tmp_path)
    broker.create_topic(TOPIC, 1)
    assert _append(broker, _batch()) == (ErrorCode.none, 0)
    assert _append(broker, _batch()) == (ErrorCode.none, 1)
    await broker.stop()
    # A snapshot naming a transaction open at offset 0, of a producer this log never saw
    # (a version 1 file when it has no topic id, as written before topic ids were recorded).
    directory = tmp_path / f"{TOPIC}-0"
    stale = Snapshot(1, [ProducerEntry(7, 0, txn_first_offset=0)], TxnIndex(), topic_id)
    path = write_snapshot(directory, stale)

    caplog.set_level(logging.WARNING)
    broker = await _broker(tmp_path)
    try:
        partition = broker.partition(TOPIC, 0)
        assert partition is not None
        assert partition.last_stable_offset == 2
        assert not path.exists()
        assert any(why in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    finally:
        await broker.stop()


async def test_matching_snapshots_are_still_used(tmp_path: Path) -> None:
    """The checks refuse only what does not match: an open transaction in a snapshot of this
    partition survives a restart, and holds the last stable offset until it ends."""
    broker = await _broker(tmp_path)
    broker.create_topic(TOPIC, 1)
    coord = broker.transactions
    assert isinstance(coord, TransactionCoordinator)
    pid, epoch = await coord.init_producer_id("tx", 60_000)
    await coord.add_partitions("tx", pid, epoch, [(TOPIC, 0)])
    assert _append(broker, _batch()) == (ErrorCode.none, 0)
    assert _append(broker, _batch(pid, epoch, 0, transactional=True)) == (ErrorCode.none, 1)
    await broker.stop()
    assert len(list((tmp_path / f"{TOPIC}-0").glob("*.snapshot"))) == 1

    broker = await _broker(tmp_path)
    try:
        partition = broker.partition(TOPIC, 0)
        assert partition is not None
        assert partition.last_stable_offset == 1
        coord = broker.transactions
        await coord.end_txn("tx", pid, epoch, commit=True)
        assert partition.last_stable_offset == partition.log.log_end_offset == 3
    finally:
        await broker.stop()
