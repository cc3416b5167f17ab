"""The transaction coordinator with a fake clock: lifecycle, fencing, timeouts, bad input,
replay after a restart, and producer ids never reused."""

from __future__ import annotations

import logging
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from klamm.broker.config import BrokerConfig
from klamm.broker.node import Broker
from klamm.broker.transactions import TransactionCoordinator, TxnError
from klamm.broker.transactions.coordinator import TXN_TOPIC
from klamm.broker.transactions.state import InvalidTransition, TxnState, encode_key, transition
from klamm.protocol.errors import ErrorCode
from klamm.protocol.record_batch import BatchHeader, Record, RecordBatch, build_batch, crc_of


class Clock:
    def __init__(self) -> None:
        self.ms = 1_700_000_000_000

    def __call__(self) -> int:
        return self.ms


async def _broker(data_dir: Path, clock: Clock) -> Broker:
    broker = Broker(BrokerConfig(port=0, data_dir=data_dir, flush_policy="os"), now_ms=clock)
    await broker.start()
    return broker


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def broker(tmp_path: Path, clock: Clock) -> AsyncIterator[Broker]:
    b = await _broker(tmp_path, clock)
    b.create_topic("t", 2)
    yield b
    await b.stop()


def coord_of(broker: Broker) -> TransactionCoordinator:
    coord = broker.transactions
    assert isinstance(coord, TransactionCoordinator)
    return coord


def txn_header(pid: int, epoch: int) -> BatchHeader:
    return BatchHeader(0, 100, 0, 2, 0, 0x10, 0, 1, 1, pid, epoch, 0, 1)


async def test_commit_lifecycle_and_retry(broker: Broker) -> None:
    coord = coord_of(broker)
    pid, epoch = await coord.init_producer_id("a", 60_000)
    assert epoch == 0
    assert await coord.add_partitions("a", pid, epoch, [("t", 0)]) == {("t", 0): ErrorCode.none}
    assert coord.txns["a"].state == TxnState.ONGOING
    await coord.end_txn("a", pid, epoch, commit=True)
    assert coord.txns["a"].state == TxnState.COMPLETE_COMMIT
    await coord.end_txn("a", pid, epoch, commit=True)  # a retry is answered none
    with pytest.raises(TxnError) as info:
        await coord.end_txn("a", pid, epoch, commit=False)
    assert info.value.code == ErrorCode.invalid_txn_state


async def test_bad_input(broker: Broker) -> None:
    coord = coord_of(broker)
    with pytest.raises(TxnError) as info:
        await coord.init_producer_id("a", 10**9)
    assert info.value.code == ErrorCode.invalid_transaction_timeout
    pid, epoch = await coord.init_producer_id("a", 60_000)
    with pytest.raises(TxnError) as info:
        await coord.end_txn("a", pid, epoch, commit=True)  # nothing open
    assert info.value.code == ErrorCode.invalid_txn_state
    with pytest.raises(TxnError) as info:
        await coord.add_partitions("a", pid + 1, epoch, [("t", 0)])
    assert info.value.code == ErrorCode.invalid_producer_id_mapping
    with pytest.raises(TxnError) as info:
        await coord.add_partitions("unknown", pid, epoch, [("t", 0)])
    assert info.value.code == ErrorCode.invalid_producer_id_mapping
    result = await coord.add_partitions("a", pid, epoch, [("t", 0), ("nope", 0)])
    assert result == {("t", 0): ErrorCode.operation_not_attempted,
                      ("nope", 0): ErrorCode.unknown_topic_or_partition}  # fmt: skip
    # A transactional batch to a partition not in the transaction.
    partition = broker.partition("t", 1)
    assert partition is not None
    check = broker.producers.check_append(partition, txn_header(pid, epoch))
    assert check is not None and check.error == ErrorCode.invalid_txn_state


async def test_init_while_ongoing_fences_the_zombie_and_aborts(broker: Broker) -> None:
    coord = coord_of(broker)
    pid, epoch = await coord.init_producer_id("a", 60_000)
    await coord.add_partitions("a", pid, epoch, [("t", 0)])
    partition = broker.partition("t", 0)
    assert partition is not None
    producers = broker.producers
    assert producers.check_append(partition, txn_header(pid, epoch)) is None
    producers.record_append(partition, txn_header(pid, epoch), 0)
    assert producers.state(partition).ongoing == {pid: 0}
    pid2, epoch2 = await coord.init_producer_id("a", 60_000)
    assert pid2 == pid and epoch2 > epoch
    stale = producers.check_append(partition, txn_header(pid, epoch))
    assert stale is not None and stale.error == ErrorCode.invalid_producer_epoch
    with pytest.raises(TxnError) as info:
        await coord.end_txn("a", pid, epoch, commit=True)
    assert info.value.code == ErrorCode.producer_fenced
    assert producers.state(partition).ongoing == {}
    assert [a.producer_id for a in producers.state(partition).aborted.entries()] == [pid]


async def test_timeout_aborts_with_fenced_epoch(broker: Broker, clock: Clock) -> None:
    coord = coord_of(broker)
    pid, epoch = await coord.init_producer_id("slow", 5_000)
    await coord.add_partitions("slow", pid, epoch, [("t", 0)])
    clock.ms += 4_000
    assert await coord.abort_expired() == []
    clock.ms += 2_000
    assert await coord.abort_expired() == ["slow"]
    meta = coord.txns["slow"]
    assert meta.state == TxnState.COMPLETE_ABORT and meta.producer_epoch == epoch + 1
    with pytest.raises(TxnError) as info:
        await coord.end_txn("slow", pid, epoch, commit=True)
    assert info.value.code == ErrorCode.producer_fenced
    # KIP-360: the producer re-initialises with its old epoch and carries on.
    assert await coord.init_producer_id("slow", 5_000, pid, epoch) == (pid, epoch + 2)


def _unreadable_batches(now: int) -> list[bytearray]:
    """What a client could append to __transaction_state before produce there was refused,
    and what a damaged log holds: each batch must be skipped at start-up, never fatal."""
    keys_and_values = [
        (b"not json", b"x"),
        (b"[1, 2]", b"x"),  # JSON, but not an object
        (b'{"kind": 1, "id": []}', b"x"),
        (encode_key("pid_block"), b"many"),
        (encode_key("txn", "kept"), b'{"v": 1, "pid": "x"}'),  # must not wipe out "kept"
        (encode_key("txn", "future"), b'{"v": 99}'),
    ]
    batches = [
        bytearray(build_batch(RecordBatch([Record(0, now, k, v)]))) for k, v in keys_and_values
    ]
    # A batch whose CRC holds but whose records do not decode: it claims three, holds one.
    wrong_count = bytearray(build_batch(RecordBatch([Record(0, now, b"k", b"v")])))
    struct.pack_into(">i", wrong_count, 23, 2)  # last offset delta
    struct.pack_into(">i", wrong_count, 57, 3)  # records count
    struct.pack_into(">I", wrong_count, 17, crc_of(wrong_count, 0, len(wrong_count)))
    return [*batches, wrong_count]


async def test_unreadable_transaction_records_are_skipped_at_start(
    tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    broker = await _broker(tmp_path, clock)
    pid, epoch = await coord_of(broker).init_producer_id("kept", 60_000)
    txn_log = broker.partition(TXN_TOPIC, 0)
    assert txn_log is not None
    offsets = [txn_log.log.append(b).base_offset for b in _unreadable_batches(clock.ms)]
    await broker.stop()

    with caplog.at_level(logging.WARNING, logger="klamm.broker.transactions"):
        broker = await _broker(tmp_path, clock)
    try:
        coord = coord_of(broker)
        kept = coord.txns["kept"]
        assert set(coord.txns) == {"kept"}
        assert (kept.producer_id, kept.producer_epoch) == (pid, epoch)
        skipped = [r.getMessage() for r in caplog.records if "skipping" in r.getMessage()]
        assert len(skipped) == len(offsets)
        for offset, message in zip(offsets, skipped, strict=True):
            assert f"{TXN_TOPIC}-0 at offset {offset}:" in message
        assert (await coord.init_producer_id(None, 0))[0] > pid  # ids still never reused
    finally:
        await broker.stop()


async def test_state_and_pids_survive_restart(tmp_path: Path, clock: Clock) -> None:
    broker = await _broker(tmp_path, clock)
    broker.create_topic("t", 1)
    coord = coord_of(broker)
    pid, epoch = await coord.init_producer_id("a", 60_000)
    await coord.add_partitions("a", pid, epoch, [("t", 0)])
    idem = (await coord.init_producer_id(None, 0))[0]
    await broker.stop()

    broker = await _broker(tmp_path, clock)
    try:
        coord = coord_of(broker)
        meta = coord.txns["a"]
        assert (meta.producer_id, meta.producer_epoch, meta.state) == (pid, epoch, TxnState.ONGOING)
        assert meta.partitions == {("t", 0)}
        new_pid = (await coord.init_producer_id(None, 0))[0]
        assert new_pid > max(pid, idem)
        await coord.end_txn("a", pid, epoch, commit=False)
    finally:
        await broker.stop()


def test_transition_table_is_enforced() -> None:
    meta = transition(None, TxnState.EMPTY, transactional_id="x", producer_id=1,
                      producer_epoch=0, timeout_ms=1)  # fmt: skip
    with pytest.raises(InvalidTransition):
        transition(meta, TxnState.PREPARE_COMMIT)
    ongoing = transition(meta, TxnState.ONGOING)
    assert transition(ongoing, TxnState.PREPARE_ABORT).state == TxnState.PREPARE_ABORT


async def test_finished_transactional_ids_expire_and_stay_forgotten(
    tmp_path: Path, clock: Clock
) -> None:
    broker = await _broker(tmp_path, clock)
    broker.create_topic("t", 1)
    coord = coord_of(broker)
    week = broker.config.transactional_id_expiration_ms
    done_pid, epoch = await coord.init_producer_id("done", 60_000)
    await coord.add_partitions("done", done_pid, epoch, [("t", 0)])
    await coord.end_txn("done", done_pid, epoch, commit=True)
    busy_pid, busy_epoch = await coord.init_producer_id("busy", 60_000)
    await coord.add_partitions("busy", busy_pid, busy_epoch, [("t", 0)])
    clock.ms += week  # not idle *longer* than the limit yet
    assert await coord.expire_transactional_ids() == []
    clock.ms += 1
    # "busy" is still ongoing (long past its timeout, but expiry never aborts anything)
    assert await coord.expire_transactional_ids() == ["done"]
    await broker.stop()

    broker = await _broker(tmp_path, clock)  # the tombstone is replayed
    try:
        coord = coord_of(broker)
        assert set(coord.txns) == {"busy"}
        # The id can be used again, with a new producer id.
        new_pid, new_epoch = await coord.init_producer_id("done", 60_000)
        assert new_pid != done_pid and new_epoch == 0
    finally:
        await broker.stop()
