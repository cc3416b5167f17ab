"""ListOffsets (2) and OffsetForLeaderEpoch (23).

Special timestamps: -2 earliest (log start), -1 latest (high watermark, or the last stable offset
for read_committed), -3 the record with the largest timestamp (KIP-734). Any other timestamp: the
first offset whose record timestamp is >= it, or -1 when there is none (research/brokers.md §8).
Lookups by timestamp answer only offsets below that same bound.

The timestamp lookups read one stored batch's records each (PartitionLog.offset_for_timestamp),
in a worker thread: a batch of a million records costs a fraction of a second, which must not
stall every other client. A batch that cannot be decoded fails only its partition with the
batch's error (CORRUPT_MESSAGE), as Kafka's ReplicaManager.fetchOffset answers a
CorruptRecordException, and the connection stays open. Earliest and latest never read records
and are answered without the thread hop.

Both need DESCRIBE on each topic (KafkaApis.handleListOffsetRequest and
handleOffsetForLeaderEpochRequest): the partitions of a topic the principal may not describe
answer TOPIC_AUTHORIZATION_FAILED, whether it exists or not. OffsetForLeaderEpoch from a
follower (replica_id >= 0) needs CLUSTER_ACTION instead.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from klamm.broker.authorizer import checks
from klamm.broker.authorizer.model import Operation, ResourceType
from klamm.broker.context import RequestContext
from klamm.broker.handlers.metadata import LEADER_EPOCH
from klamm.broker.partition import Partition
from klamm.protocol.api_versions import ApiKey
from klamm.protocol.errors import ErrorCode, InvalidRecordBatch
from klamm.storage import StorageError

log = logging.getLogger("klamm.broker.list_offsets")

EARLIEST = -2
LATEST = -1
MAX_TIMESTAMP = -3
READ_COMMITTED = 1


def _lookup(
    ctx: RequestContext, topic: str, wanted: Any, read_committed: bool
) -> tuple[dict[str, Any], Partition | None]:
    """The entry for one partition, and the partition when its answer needs a search by
    timestamp (`_search`, then `_found`)."""
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
        return entry, None
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
        return entry, partition
    return entry, None


_Found = tuple[int, int] | None | InvalidRecordBatch | StorageError


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


def _search(partition: Partition, timestamp: int) -> _Found:
    """(offset, timestamp) for MAX_TIMESTAMP or a real timestamp, or the error reading it;
    runs in a worker thread."""
    try:
        if timestamp == MAX_TIMESTAMP:
            return partition.log.max_timestamp()
        return partition.log.offset_for_timestamp(timestamp)
    except (InvalidRecordBatch, StorageError) as exc:
        return exc


def _found(
    entry: dict[str, Any], partition: Partition, timestamp: int, found: _Found,
    read_committed: bool, topic: str,
) -> None:  # fmt: skip
    if isinstance(found, (InvalidRecordBatch, StorageError)):
        log.warning("ListOffsets for %s-%d at timestamp %d: unreadable stored batch: %s",
                    topic, partition.index, timestamp, found)  # fmt: skip
        entry["error_code"], entry["leader_epoch"] = found.code, -1
        return
    # Only what the caller may read: Kafka's Partition.fetchOffsetForTimestamp bounds the
    # answer by the last stable offset for read_committed, the high watermark otherwise.
    end = partition.last_stable_offset if read_committed else partition.high_watermark
    if found is not None and found[0] < end:
        entry["offset"], entry["timestamp"] = found


async def handle_list_offsets(ctx: RequestContext, request: Any) -> Any:
    read_committed = getattr(request, "isolation_level", 0) == READ_COMMITTED
    duplicated = _duplicated(request.topics)
    denied = checks.denied(ctx, Operation.DESCRIBE, ResourceType.TOPIC,
                           (t.name for t in request.topics))  # fmt: skip
    topics = []
    searches: list[tuple[dict[str, Any], Partition, int, str]] = []
    for topic in request.topics:
        entries = []
        for wanted in topic.partitions:
            if topic.name in denied:
                entry = _invalid(wanted)
                entry["error_code"] = ErrorCode.topic_authorization_failed
                entries.append(entry)
                continue
            if (topic.name, wanted.partition_index) in duplicated:
                entries.append(_invalid(wanted))
                continue
            entry, partition = _lookup(ctx, topic.name, wanted, read_committed)
            if partition is not None:
                searches.append((entry, partition, wanted.timestamp, topic.name))
            entries.append(entry)
        topics.append({"name": topic.name, "partitions": entries})
    if searches:
        results = await asyncio.to_thread(
            lambda: [_search(partition, ts) for _, partition, ts, _ in searches]
        )
        for (entry, partition, ts, name), found in zip(searches, results, strict=True):
            _found(entry, partition, ts, found, read_committed, name)
    return ctx.response(throttle_time=0, topics=topics)


def handle_offset_for_leader_epoch(ctx: RequestContext, request: Any) -> Any:
    """Every partition has had one leader epoch (0) since its creation, so the end offset of
    epoch 0 is the log end; a client asking about a later epoch is ahead of us."""
    names = [topic.topic for topic in request.topics]
    denied: frozenset[str]
    if getattr(request, "replica_id", -1) >= 0 and checks.enabled(ctx):  # a follower
        allowed = checks.cluster_allowed(ctx, Operation.CLUSTER_ACTION)
        denied = frozenset() if allowed else frozenset(names)
        refusal = ErrorCode.cluster_authorization_failed
    else:
        denied = checks.denied(ctx, Operation.DESCRIBE, ResourceType.TOPIC, names)
        refusal = ErrorCode.topic_authorization_failed
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
            if topic.topic in denied:
                entry["error_code"] = refusal
                entry["leader_epoch"] = -1
            elif partition is None:
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
