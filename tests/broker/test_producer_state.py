"""Producer state: Kafka's sequence rules, duplicates, epochs, open/aborted transactions, and
the snapshot format (pure: no broker, no sockets)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from klamm.broker.transactions.producers import PartitionProducers
from klamm.protocol.errors import ErrorCode
from klamm.protocol.record_batch import BatchHeader
from klamm.storage.producer_state import (
    Snapshot,
    decode_snapshot,
    encode_snapshot,
    load_latest_snapshot,
    write_snapshot,
)
from klamm.storage.txn_index import AbortedTxn, TxnIndex

INT32_MAX = 2**31 - 1


def header(
    pid: int = 7, epoch: int = 0, seq: int = 0, count: int = 1, txn: bool = False
) -> BatchHeader:
    return BatchHeader(
        base_offset=0, batch_length=100, partition_leader_epoch=0, magic=2, crc=0,
        attributes=0x10 if txn else 0, last_offset_delta=count - 1, base_timestamp=1,
        max_timestamp=1, producer_id=pid, producer_epoch=epoch, base_sequence=seq,
        records_count=count,
    )  # fmt: skip


def append(state: PartitionProducers, h: BatchHeader, offset: int) -> object:
    result = state.check(h)
    if result is None:
        state.update(h, offset)
    return result


def test_in_sequence_batches_are_accepted_and_gaps_rejected() -> None:
    state = PartitionProducers()
    assert append(state, header(seq=0, count=3), 0) is None
    assert append(state, header(seq=3, count=2), 3) is None
    gap = state.check(header(seq=6))
    assert gap is not None and gap.error == ErrorCode.out_of_order_sequence_number


def test_duplicate_of_last_five_batches_returns_original_offset() -> None:
    state = PartitionProducers()
    for i in range(6):
        append(state, header(seq=i * 2, count=2), 100 + i * 2)
    dup = state.check(header(seq=4, count=2))
    assert dup is not None and dup.error == ErrorCode.none and dup.base_offset == 104
    # The first batch is no longer cached: a retry of it is out of order, not a duplicate.
    old = state.check(header(seq=0, count=2))
    assert old is not None and old.error == ErrorCode.out_of_order_sequence_number


def test_epochs_fence_and_restart_sequences() -> None:
    state = PartitionProducers()
    append(state, header(epoch=1, seq=0), 0)
    stale = state.check(header(epoch=0, seq=1))
    assert stale is not None and stale.error == ErrorCode.invalid_producer_epoch
    bad = state.check(header(epoch=2, seq=5))
    assert bad is not None and bad.error == ErrorCode.out_of_order_sequence_number
    assert append(state, header(epoch=2, seq=0), 1) is None


def test_unknown_producer_may_start_anywhere_and_sequences_wrap() -> None:
    state = PartitionProducers()
    assert append(state, header(seq=INT32_MAX - 1, count=2), 0) is None
    assert append(state, header(seq=0), 2) is None


def test_rejected_batch_changes_nothing() -> None:
    state = PartitionProducers()
    append(state, header(seq=0), 0)
    before = dataclasses.replace(state.producers[7], batches=state.producers[7].batches.copy())
    assert state.check(header(seq=9)) is not None
    assert state.producers[7] == before


def test_open_transaction_holds_the_lso_and_abort_is_indexed() -> None:
    state = PartitionProducers()
    append(state, header(pid=1, txn=True), 10)
    append(state, header(pid=2, txn=True), 11)
    append(state, header(pid=1, seq=1, txn=True), 12)
    assert state.first_unstable_offset() == 10
    state.complete_txn(1, 0, commit=False, marker_offset=13, coordinator_epoch=0, timestamp=5)
    assert state.first_unstable_offset() == 11
    state.complete_txn(2, 0, commit=True, marker_offset=14, coordinator_epoch=0, timestamp=5)
    assert state.first_unstable_offset() is None
    assert state.aborted.entries() == [AbortedTxn(1, 10, 13, 11)]
    assert state.aborted.overlapping(0, 11) == [AbortedTxn(1, 10, 13, 11)]
    assert state.aborted.overlapping(14, 20) == []


def test_marker_with_bumped_epoch_fences_the_old_epoch() -> None:
    state = PartitionProducers()
    append(state, header(pid=1, txn=True), 0)
    state.complete_txn(1, 1, commit=False, marker_offset=1, coordinator_epoch=0, timestamp=5)
    late = state.check(header(pid=1, epoch=0, seq=1, txn=True))
    assert late is not None and late.error == ErrorCode.invalid_producer_epoch


def test_snapshot_round_trip_and_corruption(tmp_path: Path) -> None:
    state = PartitionProducers()
    for i in range(7):
        append(state, header(pid=3, seq=i), i)
    append(state, header(pid=4, txn=True), 7)
    state.aborted.append(AbortedTxn(9, 1, 2, 1))
    snap = state.snapshot(8)
    restored = PartitionProducers.from_snapshot(decode_snapshot(encode_snapshot(snap)))
    assert restored.producers == state.producers
    assert restored.ongoing == {4: 7}
    assert restored.aborted.entries() == state.aborted.entries()

    data = bytearray(encode_snapshot(snap))
    data[-1] ^= 0xFF
    with pytest.raises(ValueError):
        decode_snapshot(bytes(data))
    with pytest.raises(ValueError):
        decode_snapshot(bytes(data[:20]))

    write_snapshot(tmp_path, snap)
    write_snapshot(tmp_path, state.snapshot(20))
    write_snapshot(tmp_path, state.snapshot(30))
    assert len(list(tmp_path.glob("*.snapshot"))) == 2
    # A snapshot past the log end (the tail was cut by recovery) is not used.
    loaded = load_latest_snapshot(tmp_path, 25)
    assert loaded is not None and loaded.end_offset == 20


def test_txn_index_rejects_out_of_order_entries() -> None:
    index = TxnIndex([AbortedTxn(1, 0, 5, 0)])
    with pytest.raises(ValueError):
        index.append(AbortedTxn(2, 1, 5, 0))
    index.append(AbortedTxn(2, 6, 9, 6))
    decoded, _ = TxnIndex.decode(index.encode(), 2)
    assert decoded.entries() == index.entries()
    index.truncate_before(6)
    assert index.entries() == [AbortedTxn(2, 6, 9, 6)]
    assert isinstance(Snapshot(0, [], index).aborted, TxnIndex)


def test_idle_producers_expire_but_not_inside_an_open_transaction() -> None:
    state = PartitionProducers()
    append(state, header(pid=1, seq=0), 0)  # idle since timestamp 1
    append(state, header(pid=2, seq=0, txn=True), 1)  # idle too, but its transaction is open
    assert state.expire(now_ms=1 + 1000, limit_ms=1000) == 0  # not idle *longer* than the limit
    assert state.expire(now_ms=1 + 1001, limit_ms=1000) == 1
    assert set(state.producers) == {2}
    # A forgotten producer is unknown again: any sequence is accepted (rule 4).
    assert append(state, header(pid=1, seq=500), 2) is None
