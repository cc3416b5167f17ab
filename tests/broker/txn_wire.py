"""Raw-wire helpers for transaction tests: one request each, answering the partition's error
or offset. Topic `t`, partition 0 unless told otherwise."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from klamm.protocol.errors import ErrorCode
from klamm.protocol.record_batch import Record, RecordBatch, build_batch
from tests.broker.wire import Wire

TXN_TOPIC = "__transaction_state"


def lose_transaction_state(data_dir: Path) -> None:
    """Remove the transaction coordinator's log and its topic metadata (a stopped broker):
    the coordinator starts empty and every open transaction is unknown to it."""
    shutil.rmtree(data_dir / f"{TXN_TOPIC}-0")
    for meta in (data_dir / "topics").glob("*.json"):
        if f'"name": "{TXN_TOPIC}"' in meta.read_text():
            meta.unlink()


def create_topic(wire: Wire, name: str = "t") -> None:
    response = wire.request(
        19, 4, timeout=5000, validate_only=False,
        topics=[{"name": name, "num_partitions": 1, "replication_factor": 1,
                 "assignments": [], "configs": []}],
    )  # fmt: skip
    assert response.topics[0].error_code == ErrorCode.none


def init_pid(wire: Wire, txn_id: str | None, timeout_ms: int = 60_000) -> Any:
    return wire.request(22, 4, transactional_id=txn_id, transaction_timeout=timeout_ms,
                        producer_id=-1, producer_epoch=-1)  # fmt: skip


def add_partitions(wire: Wire, txn_id: str, pid: int, epoch: int) -> ErrorCode:
    response = wire.request(
        24, 3, v3_and_below_transactional_id=txn_id, v3_and_below_producer_id=pid,
        v3_and_below_producer_epoch=epoch,
        v3_and_below_topics=[{"name": "t", "partitions": [0]}],
    )  # fmt: skip
    code: ErrorCode = (
        response.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code
    )
    return code


def end_txn(wire: Wire, txn_id: str, pid: int, epoch: int, commit: bool) -> ErrorCode:
    response = wire.request(26, 3, transactional_id=txn_id, producer_id=pid,
                            producer_epoch=epoch, committed=commit)  # fmt: skip
    code: ErrorCode = response.error_code
    return code


def produce_txn(
    wire: Wire, txn_id: str | None, pid: int, epoch: int, seq: int, value: bytes = b"v"
) -> ErrorCode:
    """One record; transactional when `txn_id` is given, plain (pid -1) otherwise."""
    batch = build_batch(RecordBatch(
        records=[Record(0, 1_700_000_000_000, b"k", value)], transactional=txn_id is not None,
        producer_id=pid, producer_epoch=epoch, base_sequence=seq,
    ))  # fmt: skip
    response = wire.request(
        0, 7, transactional_id=txn_id, acks=-1, timeout=5000,
        topic_data=[{"name": "t", "partition_data": [{"index": 0, "records": batch}]}],
    )  # fmt: skip
    code: ErrorCode = response.responses[0].partition_responses[0].error_code
    return code


def stable_offset(wire: Wire) -> int:
    """The last stable offset of t-0 (ListOffsets latest, read_committed)."""
    response = wire.request(
        2, 7, replica_id=-1, isolation_level=1,
        topics=[{"name": "t", "partitions": [
            {"partition_index": 0, "current_leader_epoch": -1, "timestamp": -1}]}],
    )  # fmt: skip
    offset: int = response.topics[0].partitions[0].offset
    return offset


def high_watermark(wire: Wire) -> int:
    response = wire.request(
        2, 7, replica_id=-1, isolation_level=0,
        topics=[{"name": "t", "partitions": [
            {"partition_index": 0, "current_leader_epoch": -1, "timestamp": -1}]}],
    )  # fmt: skip
    offset: int = response.topics[0].partitions[0].offset
    return offset


def write_marker(
    wire: Wire, pid: int, epoch: int, coordinator_epoch: int, *, commit: bool = False,
    topic: str = "t", partition: int = 0, version: int = 1,
) -> ErrorCode:  # fmt: skip
    """WriteTxnMarkers (v1, or v2 with transaction version 0) for one partition: its error."""
    response = wire.request(
        27, version, markers=[{"transaction_version": 0,
            "producer_id": pid, "producer_epoch": epoch, "transaction_result": commit,
            "coordinator_epoch": coordinator_epoch,
            "topics": [{"name": topic, "partition_indexes": [partition]}],
        }],
    )  # fmt: skip
    code: ErrorCode = response.markers[0].topics[0].partitions[0].error_code
    return code


def open_transactions(wire: Wire) -> list[Any]:
    """DescribeProducers of t-0: the producers with an open transaction there."""
    response = wire.request(61, 0, topics=[{"name": "t", "partition_indexes": [0]}])
    partition = response.topics[0].partitions[0]
    assert partition.error_code == ErrorCode.none
    return [p for p in partition.active_producers if p.current_txn_start_offset >= 0]
