"""Fetch (1): whole batches from each partition's fetch offset, long-polling for new data.

Per partition at most `partition_max_bytes`, per response at most `max_bytes`, except that the
first batch found is always returned whole even if larger (KIP-74), so a consumer can never be
stuck behind a big batch. When fewer than `min_bytes` are available the request parks on every
requested partition and wakes the moment one of their high watermarks advances (that is what
keeps end-to-end latency low), or at `max_wait`. Fetch sessions are not offered: every response
carries session_id 0, which clients treat as "sessionless".
"""

from __future__ import annotations

import asyncio
from typing import Any

from klamm.broker.context import RequestContext
from klamm.broker.partition import Partition
from klamm.protocol.api_versions import ApiKey
from klamm.protocol.errors import ErrorCode
from klamm.storage.errors import OffsetOutOfRange

READ_COMMITTED = 1


def _collect(
    ctx: RequestContext, request: Any
) -> tuple[list[dict[str, Any]], int, bool, list[Partition]]:
    """One pass over the requested partitions: (topics, bytes, any error, partitions)."""
    broker = ctx.broker
    budget = request.max_bytes if request.max_bytes > 0 else 2**31 - 1
    read_committed = request.isolation_level == READ_COMMITTED
    total = 0
    errored = False
    watched: list[Partition] = []
    topics: list[dict[str, Any]] = []
    for topic in request.topics:
        partitions = []
        for wanted in topic.partitions:
            partition = broker.partition(topic.topic, wanted.partition)
            entry: dict[str, Any] = {
                "partition_index": wanted.partition,
                "error_code": ErrorCode.none,
                "high_watermark": -1,
                "last_stable_offset": -1,
                "log_start_offset": -1,
                "aborted_transactions": None,
                "preferred_read_replica": -1,
                "records": b"",
            }
            partitions.append(entry)
            if partition is None:
                entry["error_code"] = broker.missing_partition_error(topic.topic, wanted.partition)
                errored = True
                continue
            watched.append(partition)
            stable = partition.last_stable_offset
            upto = stable if read_committed else partition.high_watermark
            entry["high_watermark"] = partition.high_watermark
            entry["last_stable_offset"] = stable
            entry["log_start_offset"] = partition.log.log_start_offset
            limit = min(wanted.partition_max_bytes, budget - total)
            if limit <= 0 and total > 0:
                continue
            try:
                # KIP-74: only the first batch of the response may exceed the limits.
                data = partition.read(wanted.fetch_offset, max(limit, 0), upto, min_one=total == 0)
            except OffsetOutOfRange:
                entry["error_code"] = ErrorCode.offset_out_of_range
                errored = True
                continue
            if data:
                entry["records"] = data
                total += len(data)
                if read_committed:
                    entry["aborted_transactions"] = partition.aborted_transactions(
                        wanted.fetch_offset, upto
                    )
        topics.append({"topic": topic.topic, "partitions": partitions})
    return topics, total, errored, watched


async def handle_fetch(ctx: RequestContext, request: Any) -> Any:
    loop = asyncio.get_running_loop()
    max_wait = request.max_wait.total_seconds()
    deadline = loop.time() + max_wait
    min_bytes = max(request.min_bytes, 1)
    while True:
        topics, total, errored, watched = _collect(ctx, request)
        remaining = deadline - loop.time()
        if total >= min_bytes or errored or remaining <= 0 or not watched:
            break
        waiter: asyncio.Future[None] = loop.create_future()
        for partition in watched:
            partition.add_waiter(waiter)
        try:
            await asyncio.wait_for(waiter, remaining)
        except TimeoutError:
            pass
        finally:
            for partition in watched:
                partition.remove_waiter(waiter)
    return ctx.response(
        throttle_time=0,
        error_code=ErrorCode.none,
        session_id=0,
        responses=topics,
    )


HANDLERS = {ApiKey.FETCH: handle_fetch}
