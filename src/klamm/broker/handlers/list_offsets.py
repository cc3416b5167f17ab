"""ListOffsets (2) and OffsetForLeaderEpoch (23).

Special timestamps: -2 earliest (log start), -1 latest (high watermark, or the last stable offset
for read_committed), -3 the record with the largest timestamp (KIP-734). Any other timestamp: the
first offset whose record timestamp is >= it, or -1 when there is none (research/brokers.md §8).
Lookups by timestamp answer only offsets below that same bound.

The timestamp lookups decode stored batches; one that cannot be decoded fails only its partition
with the batch's error (CORRUPT_MESSAGE), as Kafka's ReplicaManager.fetchOffset answers a
CorruptRecordException, and the connection stays open.
"""

from __future__ import annotations

import logging
from typing import Any

from klamm.broker.context import RequestContext
from klamm.broker.handlers.metadata import LEADER_EPOCH
from klamm.broker.partition import Partition
from klamm.protocol.api_versions import ApiKey
from klamm.protocol.errors import ErrorCode, InvalidRecordBatch
from klamm.storage.errors import StorageError

log = logging.getLogger("klamm.broker.list_offsets")

EARLIEST = -2
LATEST = -1
MAX_TIMESTAMP = -3
READ_COMMITTED = 1


def _lookup(ctx: RequestContext, topic: str, wanted: Any, read_committed: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "partition_index": wanted.partition_index,
        "error_code": ErrorCode.none,
        "timestamp": -1,
        "offset": -1,
        "leader_epoch": LEADER_EPOCH,
    }
    partition = ctx.broker.partition(topic, wanted.partition_index)
    if partition is None:
        entry["error_code"] = ctx.broker.missing_partition_error(topic, wanted.partition_index)
        entry["leader_epoch"] = -1
        return entry
    timestamp = wanted.timestamp
    if timestamp == EARLIEST:
        entry["offset"] = partition.log.log_start_offset
    elif timestamp == LATEST:
        entry["offset"] = (
            partition.last_stable_offset if read_committed else partition.high_watermark
        )
    elif timestamp < 0 and timestamp != MAX_TIMESTAMP:
        entry["error_code"] = (
            ErrorCode.invalid_request
        )  # no other negative timestamp means anything
    else:
        try:
            found = _search(partition, timestamp)
        except (InvalidRecordBatch, StorageError) as exc:
            log.warning("ListOffsets for %s-%d at timestamp %d: unreadable stored batch: %s",
                        topic, wanted.partition_index, timestamp, exc)  # fmt: skip
            entry["error_code"], entry["leader_epoch"] = exc.code, -1
            return entry
        # Only what the caller may read: Kafka's Partition.fetchOffsetForTimestamp bounds the
        # answer by the last stable offset for read_committed, the high watermark otherwise.
        end = partition.last_stable_offset if read_committed else partition.high_watermark
        if found is not None and found[0] < end:
            entry["offset"], entry["timestamp"] = found
    return entry


def _search(partition: Partition, timestamp: int) -> tuple[int, int] | None:
    """(offset, timestamp) for MAX_TIMESTAMP or a real timestamp; both decode stored batches."""
    if timestamp == MAX_TIMESTAMP:
        return partition.log.max_timestamp()
    return partition.log.offset_for_timestamp(timestamp)


def _duplicated(topics: Any) -> set[tuple[str, int]]:
    """Partitions listed more than once. Kafka answers each of their listings INVALID_REQUEST
    (KafkaApis.handleListOffsetRequest, ListOffsetsRequest.duplicatePartitions) without
    looking anything up, so repeating a costly timestamp search multiplies nothing."""
    seen: set[tuple[str, int]] = set()
    duplicated: set[tuple[str, int]] = set()
    for topic in topics:
        for p in topic.partitions:
            key = (topic.name, p.partition_index)
            (duplicated if key in seen else seen).add(key)
    return duplicated


def _invalid(wanted: Any) -> dict[str, Any]:
    return {
        "partition_index": wanted.partition_index,
        "error_code": ErrorCode.invalid_request,
        "timestamp": -1,
        "offset": -1,
        "leader_epoch": -1,
    }


def handle_list_offsets(ctx: RequestContext, request: Any) -> Any:
    read_committed = getattr(request, "isolation_level", 0) == READ_COMMITTED
    duplicated = _duplicated(request.topics)
    return ctx.response(
        throttle_time=0,
        topics=[
            {
                "name": topic.name,
                "partitions": [
                    _invalid(p)
                    if (topic.name, p.partition_index) in duplicated
                    else _lookup(ctx, topic.name, p, read_committed)
                    for p in topic.partitions
                ],
            }
            for topic in request.topics
        ],
    )


def handle_offset_for_leader_epoch(ctx: RequestContext, request: Any) -> Any:
    """Every partition has had one leader epoch (0) since its creation, so the end offset of
    epoch 0 is the log end; a client asking about a later epoch is ahead of us."""
    topics = []
    for topic in request.topics:
        partitions = []
        for wanted in topic.partitions:
            entry = {
                "error_code": ErrorCode.none,
                "partition": wanted.partition,
                "leader_epoch": LEADER_EPOCH,
                "end_offset": -1,
            }
            partition = ctx.broker.partition(topic.topic, wanted.partition)
            if partition is None:
                entry["error_code"] = ErrorCode.unknown_topic_or_partition
                entry["leader_epoch"] = -1
            elif wanted.leader_epoch > LEADER_EPOCH:
                entry["leader_epoch"] = -1
            else:
                entry["end_offset"] = partition.high_watermark
            partitions.append(entry)
        topics.append({"topic": topic.topic, "partitions": partitions})
    return ctx.response(throttle_time=0, topics=topics)


HANDLERS = {
    ApiKey.LIST_OFFSETS: handle_list_offsets,
    ApiKey.OFFSET_FOR_LEADER_EPOCH: handle_offset_for_leader_epoch,
}
