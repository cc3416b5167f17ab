"""DescribeLogDirs (35): the broker's one log directory, each partition's size on disk, and the
file system's total and usable bytes (v4+).

A single node keeps every partition in `--data-dir`: one result, no future replicas, no lag.
`topics` null means every partition; otherwise the named partitions this broker hosts, and
nothing for a name or partition it does not (Kafka's answer too). Sizes come from the logs'
in-memory segment sizes, so the answer costs no disk access but one statvfs.

It needs DESCRIBE on the cluster (KafkaApis.handleDescribeLogDirsRequest): without it the answer
is CLUSTER_AUTHORIZATION_FAILED and no directory.
"""

from __future__ import annotations

import os
from typing import Any

from klamm.broker.authorizer import checks
from klamm.broker.authorizer.model import Operation
from klamm.broker.context import RequestContext
from klamm.protocol.api_versions import ApiKey
from klamm.protocol.errors import ErrorCode


def handle_describe_log_dirs(ctx: RequestContext, request: Any) -> Any:
    broker = ctx.broker
    if not checks.cluster_allowed(ctx, Operation.DESCRIBE):
        return ctx.response(
            throttle_time=0, error_code=ErrorCode.cluster_authorization_failed, results=[]
        )
    hosted = {name: info.num_partitions for name, info in broker.logs.topics().items()}
    wanted: dict[str, list[int]] = {}
    if request.topics is None:
        wanted = {name: list(range(count)) for name, count in hosted.items()}
    else:
        for topic in request.topics:
            indexes = [i for i in topic.partitions if 0 <= i < hosted.get(topic.topic, 0)]
            wanted.setdefault(topic.topic, []).extend(indexes)
    topics = []
    for name, indexes in wanted.items():
        partitions = []
        for index in dict.fromkeys(indexes):
            partition = broker.partition(name, index)
            if partition is None:  # offline: its size is unknown
                continue
            partitions.append({
                "partition_index": index, "partition_size": partition.log.size_bytes,
                "offset_lag": 0, "is_future_key": False,
            })  # fmt: skip
        if partitions:
            topics.append({"name": name, "partitions": partitions})
    data_dir = os.path.abspath(broker.config.data_dir)
    try:
        fs = os.statvfs(data_dir)
        total, usable = fs.f_blocks * fs.f_frsize, fs.f_bavail * fs.f_frsize
    except OSError:
        total = usable = -1  # Kafka's "unknown"
    result = {
        "error_code": ErrorCode.none, "log_dir": data_dir, "topics": topics,
        "total_bytes": total, "usable_bytes": usable,
    }  # fmt: skip
    return ctx.response(throttle_time=0, error_code=ErrorCode.none, results=[result])


HANDLERS = {ApiKey.DESCRIBE_LOG_DIRS: handle_describe_log_dirs}
