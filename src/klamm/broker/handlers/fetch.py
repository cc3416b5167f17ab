"""Fetch (1): whole batches from each partition's fetch offset, long-polling for new data.

Limits, as Kafka's KafkaApis.handleFetchRequest and ReplicaManager.readFromLog:
  * A partition listed twice is answered once, with its last listing's offset and limit, at the
    position of its first listing (Kafka keys the request by TopicPartition in a LinkedHashMap).
  * Per partition at most `partition_max_bytes`; per response at most
    min(request max_bytes, broker `fetch.max.bytes`). The first batch of the first non-empty
    partition is returned whole even if larger (KIP-74), so a consumer is never stuck behind a
    big batch; after it, every limit is hard.
  * `min_bytes` is capped at that response limit, `max_wait` at MAX_WAIT_S.

When fewer than `min_bytes` are available the request parks one `FetchWaiter` on its partitions.
A wake-up costs arithmetic on offsets for the partitions that moved (as Kafka's DelayedFetch):
only when that cannot decide does the fetch look at the *new* batches of a moved partition, each
at most once, never re-reading what it already counted. The response is read once, when enough
is available, a partition went away, or `max_wait` passed. Fetch sessions are not offered: every
response carries session_id 0, which clients treat as "sessionless".

Authorization (KafkaApis.handleFetchRequest): a consumer needs READ on each topic, asked once per
topic; a follower (replica_id >= 0) needs CLUSTER_ACTION on the cluster. Refused partitions
answer TOPIC_AUTHORIZATION_FAILED, whether they exist or not, and take no part in the wait:
like Kafka, the fetch still waits for data on the partitions it may read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from klamm.broker.authorizer import checks
from klamm.broker.authorizer.model import Operation, ResourceType
from klamm.broker.context import RequestContext
from klamm.broker.partition import FetchWaiter, Partition
from klamm.protocol.api_versions import ApiKey
from klamm.protocol.errors import ErrorCode
from klamm.protocol.hot_responses import FIRST_VERSION, LAST_VERSION, fetch_response
from klamm.protocol.record_batch import HEADER_SIZE, iter_batches
from klamm.storage import OffsetOutOfRange, StorageError

READ_COMMITTED = 1

# A parked fetch answers after at most this long whatever max_wait it asked for. Answering
# early is always allowed (an empty response just makes the client fetch again), while a fetch
# parked for the 24 days of max_wait=2^31-1 ms holds its connection's later requests and its
# waiters that long. 30 s is Kafka's default request.timeout.ms for consumers: a default-
# configured client stops waiting for the answer then anyway.
MAX_WAIT_S = 30.0

# Every batch is at least its header (record batch v2: 61 bytes), so a partition whose end moved
# past the fetch position holds at least this many new bytes: enough to decide min_bytes=1 (every
# client's default) and other small values without looking at the data.
MIN_BATCH_BYTES = HEADER_SIZE


@dataclass(slots=True)
class _Wanted:
    """One requested partition, after duplicates were merged."""

    topic: str
    index: int
    fetch_offset: int
    max_bytes: int


@dataclass(slots=True)
class _Progress:
    """What a parked fetch knows of one partition: bytes counted from its fetch offset up to
    `position`, a batch boundary (Kafka's DelayedFetch keeps the fetch offset's position and
    sums positionDiff up to the high watermark)."""

    position: int
    counted: int
    cap: int  # partition_max_bytes: more bytes than this cannot be answered for it
    # The first read: where readable data ended, the limit it was given, what it returned
    # (until `_ParkedFetch` takes its end offset).
    upto: int = 0
    limit: int = 0
    first: bytes = b""

    @property
    def full(self) -> bool:
        return self.counted >= self.cap


def _wanted(request: Any) -> list[_Wanted]:
    """The requested partitions, each once: a later listing replaces an earlier one's offset
    and limit but keeps its place, as a LinkedHashMap.put in Kafka's FetchRequest."""
    merged: dict[tuple[str, int], _Wanted] = {}
    for topic in request.topics:
        for p in topic.partitions:
            merged[(topic.topic, p.partition)] = _Wanted(
                topic.topic, p.partition, p.fetch_offset, p.partition_max_bytes
            )
    return list(merged.values())


def _end_offset(data: bytes, default: int) -> int:
    """The offset after the last batch of `data` (whole batches), or `default` when empty."""
    end = default
    for _, header in iter_batches(data):
        end = header.next_offset
    return end


def _collect(
    ctx: RequestContext,
    wanted: list[_Wanted],
    budget: int,
    read_committed: bool,
    denied: frozenset[str],
) -> tuple[list[dict[str, Any]], int, bool, dict[Partition, _Progress]]:
    """One read of the requested partitions: (topics, bytes, any error, progress per partition).
    Partitions of `denied` topics answer TOPIC_AUTHORIZATION_FAILED and are not read."""
    broker = ctx.broker
    total = 0
    errored = False
    progress: dict[Partition, _Progress] = {}
    topics: list[dict[str, Any]] = []
    for want in wanted:
        # Consecutive partitions of one topic share a topic entry, as Kafka's response builder.
        if not topics or topics[-1]["topic"] != want.topic:
            topics.append({"topic": want.topic, "partitions": []})
        partition = broker.partition(want.topic, want.index)
        entry: dict[str, Any] = {
            "partition_index": want.index,
            "error_code": ErrorCode.none,
            "high_watermark": -1,
            "last_stable_offset": -1,
            "log_start_offset": -1,
            "aborted_transactions": None,
            "preferred_read_replica": -1,
            "records": b"",
        }
        topics[-1]["partitions"].append(entry)
        if want.topic in denied:
            entry["error_code"] = ErrorCode.topic_authorization_failed
            continue
        if partition is None:
            entry["error_code"] = broker.missing_partition_error(want.topic, want.index)
            errored = True
            continue
        stable = partition.last_stable_offset
        upto = stable if read_committed else partition.high_watermark
        entry["high_watermark"] = partition.high_watermark
        entry["last_stable_offset"] = stable
        entry["log_start_offset"] = partition.log.log_start_offset
        limit = min(want.max_bytes, budget - total)
        progress[partition] = _Progress(want.fetch_offset, 0, want.max_bytes, upto, limit)
        if limit <= 0 and total > 0:
            continue
        try:
            # KIP-74: only the first batch of the response may exceed the limits.
            data = partition.read(want.fetch_offset, max(limit, 0), upto, min_one=total == 0)
        except StorageError as exc:
            # OFFSET_OUT_OF_RANGE, or KAFKA_STORAGE_ERROR when a segment file cannot be
            # (re)opened (every fd taken) or read: that partition's error, not a dropped
            # connection.
            entry["error_code"] = exc.code
            errored = True
            continue
        if data:
            entry["records"] = data
            total += len(data)
            progress[partition].counted = len(data)
            progress[partition].first = data
            if read_committed:
                entry["aborted_transactions"] = partition.aborted_transactions(
                    want.fetch_offset, upto
                )
    return topics, total, errored, progress


class _ParkedFetch:
    """Decides, from what woke it, whether a parked fetch can answer (Kafka's
    DelayedFetch.tryComplete), counting each new batch at most once."""

    def __init__(
        self,
        ctx: RequestContext,
        progress: dict[Partition, _Progress],
        counted: int,
        min_bytes: int,
        read_committed: bool,
    ) -> None:
        self._ctx = ctx
        self._progress = progress
        self._counted = counted
        self._min_bytes = min_bytes
        self._read_committed = read_committed
        # Counting starts after what the first read returned (parsed here, not in `_collect`:
        # only a fetch that parks needs it). A read that stopped before the readable end was
        # cut by a limit: the next batch did not fit. Cut by the response limit, more than
        # that limit (>= min_bytes) is available: Kafka's first tryComplete would answer.
        # Cut by the partition limit, the partition counts as full.
        self.ready = False
        for state in progress.values():
            state.position = _end_offset(state.first, state.position)
            state.first = b""
            if state.position < state.upto:
                if state.limit < state.cap:
                    self.ready = True
                state.counted = state.cap

    def satisfied(self, woken: set[Partition]) -> bool:
        broker = self._ctx.broker
        moved: list[tuple[Partition, _Progress, int]] = []
        for partition in woken:
            state = self._progress[partition]
            if broker.partition(partition.topic, partition.index) is not partition:
                return True  # deleted (or re-created): answer UNKNOWN_TOPIC_OR_PARTITION now
            end = partition.last_stable_offset if self._read_committed else partition.high_watermark
            if end < state.position:
                return True  # truncated under us: answer now (Kafka's case A)
            if end > state.position and not state.full:
                moved.append((partition, state, end))
        if not moved:
            return False
        if self._counted + MIN_BATCH_BYTES * len(moved) >= self._min_bytes:
            return True
        for partition, state, end in moved:
            need = min(state.cap - state.counted, self._min_bytes - self._counted)
            try:
                new = len(partition.read(state.position, need, end, min_one=True))
            except (OffsetOutOfRange, StorageError):
                return True  # the read at answer time reports what went wrong
            state.counted += new
            self._counted += new
            # With fewer than `need` bytes the read reached `end`; otherwise this partition is
            # full or the fetch is satisfied, and its position no longer matters.
            state.position = end
            if self._counted >= self._min_bytes:
                return True
        return False


async def _wait(parked: _ParkedFetch, partitions: Collection[Partition], max_wait: float) -> None:
    """Until `parked` is satisfied or `max_wait` seconds passed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max_wait
    waiter = FetchWaiter()
    for partition in partitions:
        partition.add_waiter(waiter)
    try:
        while (remaining := deadline - loop.time()) > 0:
            woken = await waiter.wait(remaining)
            if woken and parked.satisfied(woken):
                return
    finally:
        for partition in partitions:
            partition.remove_waiter(waiter)


def _denied(ctx: RequestContext, request: Any, wanted: list[_Wanted]) -> frozenset[str]:
    """The requested topics this fetch may not read (nothing without an authorizer)."""
    if not checks.enabled(ctx):
        return frozenset()
    names = {want.topic for want in wanted}
    if request.replica_id >= 0:  # a follower: all or nothing, on the cluster
        return (
            frozenset()
            if checks.cluster_allowed(ctx, Operation.CLUSTER_ACTION)
            else frozenset(names)
        )
    return checks.denied(ctx, Operation.READ, ResourceType.TOPIC, names)


async def handle_fetch(ctx: RequestContext, request: Any) -> Any:
    requested_max = request.max_bytes if request.max_bytes > 0 else 2**31 - 1
    budget = min(requested_max, ctx.broker.config.fetch_max_bytes)
    min_bytes = min(max(request.min_bytes, 1), budget)
    max_wait = min(request.max_wait.total_seconds(), MAX_WAIT_S)
    read_committed = request.isolation_level == READ_COMMITTED
    wanted = _wanted(request)
    denied = _denied(ctx, request, wanted)
    topics, total, errored, progress = _collect(ctx, wanted, budget, read_committed, denied)
    if not (total >= min_bytes or errored or max_wait <= 0 or not progress):
        parked = _ParkedFetch(ctx, progress, total, min_bytes, read_committed)
        if not parked.ready:
            del topics  # not held while parked: the answer is read again when the wait ends
            await _wait(parked, progress, max_wait)
            topics, _, _, _ = _collect(ctx, wanted, budget, read_committed, denied)
    version = ctx.header.api_version
    if FIRST_VERSION <= version <= LAST_VERSION:
        # Encoded here, not through kio (protocol/hot_responses.py: ~1.5 µs a partition less).
        return fetch_response(version, 0, ErrorCode.none, 0, topics)
    return ctx.response(throttle_time=0, error_code=ErrorCode.none, session_id=0, responses=topics)


HANDLERS = {ApiKey.FETCH: handle_fetch}
