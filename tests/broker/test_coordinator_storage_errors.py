"""A coordinator whose log write fails (disk full, I/O error) answers Kafka's error code for it and
keeps the connection: NOT_COORDINATOR, which clients answer by finding the coordinator again and
retrying (Kafka's TransactionStateManager and GroupCoordinatorService map KAFKA_STORAGE_ERROR to
it). Once the disk has room again, the same requests succeed and nothing was half-applied."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import pytest

from klamm.broker.transactions import TransactionCoordinator
from klamm.protocol.errors import ErrorCode
from klamm.storage.errors import KafkaStorageError
from klamm.storage.log import PartitionLog
from klamm.testing import EmbeddedBroker
from tests.broker.txn_wire import (
    add_partitions,
    end_txn,
    high_watermark,
    init_pid,
    produce_txn,
    stable_offset,
)
from tests.broker.wire import Wire

TXN_LOG = "__transaction_state-0"
OFFSETS_LOG = "__consumer_offsets-0"


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    # Thread mode: the fault is injected into this process's storage layer. A short initial
    # rebalance delay lets a lone member's JoinGroup return quickly.
    with EmbeddedBroker(group_initial_rebalance_delay_ms=0) as b:
        with Wire(b.bootstrap) as wire:
            response = wire.request(
                19, 4, timeout=5000, validate_only=False,
                topics=[{"name": "t", "num_partitions": 1, "replication_factor": 1,
                         "assignments": [], "configs": []}],
            )  # fmt: skip
            assert response.topics[0].error_code == ErrorCode.none
        yield b


@contextlib.contextmanager
def full_disk(monkeypatch: pytest.MonkeyPatch, *logs: str) -> Iterator[None]:
    """Appends to the named partition logs fail as on a full disk (the storage layer's contract:
    KafkaStorageError, log unchanged); every other log is untouched."""
    real_append = PartitionLog.append

    def append(self: PartitionLog, batch: bytearray, leader_epoch: int = 0) -> Any:
        if self.directory.name in logs:
            raise KafkaStorageError(f"cannot append to {self.directory}: No space left on device")
        return real_append(self, batch, leader_epoch)

    with monkeypatch.context() as patch:
        patch.setattr(PartitionLog, "append", append)
        yield


@contextlib.contextmanager
def failing_fsync(monkeypatch: pytest.MonkeyPatch, *logs: str) -> Iterator[None]:
    """fsync of the named partition logs fails (EIO): the append landed, its durability did
    not, so nothing may be applied or acknowledged."""
    real_flush = PartitionLog.flush

    def flush(self: PartitionLog) -> None:
        if self.directory.name in logs:
            raise KafkaStorageError(f"flush of {self.directory} failed: Input/output error")
        real_flush(self)

    with monkeypatch.context() as patch:
        patch.setattr(PartitionLog, "flush", flush)
        yield


def alive(wire: Wire) -> None:
    """The connection still serves requests (the old code closed it after a traceback)."""
    assert wire.request(3, 1, topics=[]).brokers


# --- the transaction coordinator ------------------------------------------------------------------


def test_init_producer_id_on_a_full_disk(
    broker: EmbeddedBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Wire(broker.bootstrap) as wire:
        with full_disk(monkeypatch, TXN_LOG):
            for txn_id in ("full-disk-init", None):  # transactional, then idempotent
                response = init_pid(wire, txn_id)
                assert response.error_code == ErrorCode.not_coordinator
                assert response.producer_id == -1
                alive(wire)
        # Room again: the same request succeeds.
        response = init_pid(wire, "full-disk-init")
        assert response.error_code == ErrorCode.none and response.producer_id >= 0
        assert init_pid(wire, None).error_code == ErrorCode.none


def test_init_producer_id_whose_fsync_fails(
    broker: EmbeddedBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Wire(broker.bootstrap) as wire:
        with failing_fsync(monkeypatch, TXN_LOG):
            response = init_pid(wire, "failed-fsync-init")
            assert response.error_code == ErrorCode.not_coordinator
            alive(wire)
        # Not applied: the transactional id is still unknown to the coordinator.
        described = wire.request(65, 0, transactional_ids=["failed-fsync-init"])
        error = described.transaction_states[0].error_code
        assert error == ErrorCode.transactional_id_not_found


def test_a_storage_error_escaping_the_coordinator_is_still_answered(
    broker: EmbeddedBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The handlers' safety net: a storage error from a coordinator path that does not map it
    itself (say, a direct fsync of a producer id reservation) is NOT_COORDINATOR too."""

    async def allocate(self: TransactionCoordinator) -> int:
        raise KafkaStorageError("fsync of the producer id reservation failed")

    with Wire(broker.bootstrap) as wire:
        with monkeypatch.context() as patch:
            patch.setattr(TransactionCoordinator, "allocate_producer_id", allocate)
            assert init_pid(wire, None).error_code == ErrorCode.not_coordinator
            alive(wire)
        assert init_pid(wire, None).error_code == ErrorCode.none


def test_add_partitions_offsets_and_end_txn_on_a_full_disk(
    broker: EmbeddedBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    txn = "full-disk-txn"
    with Wire(broker.bootstrap) as wire:
        init = init_pid(wire, txn)
        pid, epoch = init.producer_id, init.producer_epoch
        with full_disk(monkeypatch, TXN_LOG):
            assert add_partitions(wire, txn, pid, epoch) == ErrorCode.not_coordinator
            alive(wire)
            response = wire.request(25, 3, transactional_id=txn, producer_id=pid,
                                    producer_epoch=epoch, group_id="g-txn")  # fmt: skip
            assert response.error_code == ErrorCode.not_coordinator
            alive(wire)
        assert add_partitions(wire, txn, pid, epoch) == ErrorCode.none
        with full_disk(monkeypatch, TXN_LOG):
            assert end_txn(wire, txn, pid, epoch, commit=False) == ErrorCode.not_coordinator
            alive(wire)
        assert end_txn(wire, txn, pid, epoch, commit=False) == ErrorCode.none


def test_end_txn_whose_markers_cannot_be_written_is_retried(
    broker: EmbeddedBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The decision (PrepareCommit) is durable but the data partition refuses the marker: the
    client gets a retriable error, and its retry (or the coordinator's sweep) completes it."""
    txn = "full-data-disk"
    with Wire(broker.bootstrap) as wire:
        init = init_pid(wire, txn)
        pid, epoch = init.producer_id, init.producer_epoch
        assert add_partitions(wire, txn, pid, epoch) == ErrorCode.none
        assert produce_txn(wire, txn, pid, epoch, 0) == ErrorCode.none
        end = high_watermark(wire)
        assert stable_offset(wire) < end  # the open transaction holds the LSO
        with full_disk(monkeypatch, "t-0"):
            assert end_txn(wire, txn, pid, epoch, commit=True) == ErrorCode.not_coordinator
            alive(wire)
        assert end_txn(wire, txn, pid, epoch, commit=True) == ErrorCode.none
        assert stable_offset(wire) == high_watermark(wire) == end + 1  # the marker


# --- the group coordinator ------------------------------------------------------------------------


def _join(wire: Wire, group: str, instance: str | None = None) -> Any:
    return wire.request(
        11, 5, group_id=group, session_timeout=30_000, rebalance_timeout=30_000, member_id="",
        group_instance_id=instance, protocol_type="consumer",
        protocols=[{"name": "range", "metadata": b""}],
    )  # fmt: skip


def _sync(wire: Wire, group: str, joined: Any, instance: str | None = None) -> Any:
    return wire.request(
        14, 5, group_id=group, generation_id=joined.generation_id, member_id=joined.member_id,
        group_instance_id=instance, protocol_type="consumer", protocol_name="range",
        assignments=[{"member_id": joined.member_id, "assignment": b"a"}],
    )  # fmt: skip


def _commit(wire: Wire, group: str, offset: int) -> ErrorCode:
    response = wire.request(
        8, 8, group_id=group, generation_id_or_member_epoch=-1, member_id="",
        group_instance_id=None,
        topics=[{"name": "t", "partitions": [
            {"partition_index": 0, "committed_offset": offset, "committed_leader_epoch": -1,
             "committed_metadata": None}]}],
    )  # fmt: skip
    code: ErrorCode = response.topics[0].partitions[0].error_code
    return code


def test_offset_commit_delete_and_group_deletion_on_a_full_disk(
    broker: EmbeddedBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = "full-disk-offsets"
    with Wire(broker.bootstrap) as wire:
        assert _commit(wire, group, 1) == ErrorCode.none
        with full_disk(monkeypatch, OFFSETS_LOG):
            assert _commit(wire, group, 2) == ErrorCode.not_coordinator
            alive(wire)
            response = wire.request(
                47, 0, group_id=group, topics=[{"name": "t", "partitions": [
                    {"partition_index": 0}]}],
            )  # fmt: skip
            assert response.error_code == ErrorCode.not_coordinator
            alive(wire)
            response = wire.request(42, 2, groups_names=[group])
            assert response.results[0].error_code == ErrorCode.not_coordinator
            alive(wire)
        # Nothing was half-applied: the committed offset is still 1, and the group still exists.
        fetched = wire.request(
            9, 7, group_id=group, topics=[{"name": "t", "partition_indexes": [0]}],
            require_stable=False,
        )  # fmt: skip
        assert fetched.topics[0].partitions[0].committed_offset == 1
        assert wire.request(42, 2, groups_names=[group]).results[0].error_code == ErrorCode.none


def test_txn_offset_commit_on_a_full_disk(
    broker: EmbeddedBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    txn, group = "full-disk-txn-offsets", "full-disk-txn-group"
    with Wire(broker.bootstrap) as wire:
        init = init_pid(wire, txn)
        pid, epoch = init.producer_id, init.producer_epoch
        response = wire.request(25, 3, transactional_id=txn, producer_id=pid,
                                producer_epoch=epoch, group_id=group)  # fmt: skip
        assert response.error_code == ErrorCode.none
        with full_disk(monkeypatch, OFFSETS_LOG):
            response = wire.request(
                28, 3, transactional_id=txn, group_id=group, producer_id=pid,
                producer_epoch=epoch, generation_id=-1, member_id="", group_instance_id=None,
                topics=[{"name": "t", "partitions": [
                    {"partition_index": 0, "committed_offset": 5, "committed_leader_epoch": -1,
                     "committed_metadata": None}]}],
            )  # fmt: skip
            assert response.topics[0].partitions[0].error_code == ErrorCode.not_coordinator
            alive(wire)
        assert end_txn(wire, txn, pid, epoch, commit=False) == ErrorCode.none


def test_sync_group_and_static_rejoin_on_a_full_disk(
    broker: EmbeddedBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Wire(broker.bootstrap) as wire:
        # The leader's SyncGroup stores the assignment: a failed write is NOT_COORDINATOR.
        joined = _join(wire, "full-disk-sync", instance="i-1")
        assert joined.error_code == ErrorCode.none
        with full_disk(monkeypatch, OFFSETS_LOG):
            synced = _sync(wire, "full-disk-sync", joined, instance="i-1")
            assert synced.error_code == ErrorCode.not_coordinator
            alive(wire)
        # A static member that restarts replaces its old id, which is stored.
        joined = _join(wire, "full-disk-static", instance="i-2")
        assert joined.error_code == ErrorCode.none
        deadline = time.monotonic() + 10
        while (synced := _sync(wire, "full-disk-static", joined, "i-2")).error_code:
            assert time.monotonic() < deadline, synced
            joined = _join(wire, "full-disk-static", instance="i-2")
        with full_disk(monkeypatch, OFFSETS_LOG):
            rejoined = _join(wire, "full-disk-static", instance="i-2")
            assert rejoined.error_code == ErrorCode.not_coordinator
            alive(wire)


def test_a_static_member_replacement_that_cannot_be_stored_is_reverted(
    broker: EmbeddedBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Build -> persist -> apply: when the snapshot naming the restarted instance's new member id
    cannot be written, the old member keeps the instance, as in Kafka (which reverts the
    replacement). The old code left the replacement in memory: the old id was fenced and the
    group held a member id that no durable record and no client knew."""
    group, instance = "full-disk-static-revert", "i-3"
    with Wire(broker.bootstrap) as wire:
        joined = _join(wire, group, instance)
        deadline = time.monotonic() + 10
        while (synced := _sync(wire, group, joined, instance)).error_code:
            assert time.monotonic() < deadline, synced
            joined = _join(wire, group, instance)
        with full_disk(monkeypatch, OFFSETS_LOG):
            rejoined = _join(wire, group, instance)
            assert rejoined.error_code == ErrorCode.not_coordinator
        heartbeat = wire.request(
            12, 4, group_id=group, generation_id=joined.generation_id,
            member_id=joined.member_id, group_instance_id=instance,
        )  # fmt: skip
        assert heartbeat.error_code == ErrorCode.none  # still the member: not fenced
        [described] = wire.request(
            15, 5, groups=[group], include_authorized_operations=False
        ).groups
        assert described.group_state == "Stable"
        assert [m.member_id for m in described.members] == [joined.member_id]
        # Room again: the instance restarts and takes over under a new id.
        rejoined = _join(wire, group, instance)
        assert rejoined.error_code == ErrorCode.none
        assert rejoined.member_id != joined.member_id
        [described] = wire.request(
            15, 5, groups=[group], include_authorized_operations=False
        ).groups
        assert [m.member_id for m in described.members] == [rejoined.member_id]
