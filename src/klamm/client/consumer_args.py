"""What the consumer takes and gives in KafkaJS's shapes: argument checks (a wrong type is a
ConfigError, never a raw TypeError from deep inside), the assigners librdkafka can run, and the
result shapes (`[{"topic", "partitions": [...]}]`, describeGroup's group description)."""

from __future__ import annotations

import enum
import inspect
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, cast

from klamm.client.errors import ConfigError
from klamm.client.retry import RetryPolicy

TP = tuple[str, int]
H = TypeVar("H", bound=Callable[..., Any])  # a handler: each_message or each_batch


class PartitionAssigners(enum.Enum):
    """Assignment strategies (librdkafka's names). COOPERATIVE_STICKY is KIP-429 incremental
    rebalancing, which KafkaJS lacks; it cannot be mixed with the eager two."""

    ROUND_ROBIN = "roundrobin"
    RANGE = "range"
    COOPERATIVE_STICKY = "cooperative-sticky"


def group_conf(
    conf: Mapping[str, Any],
    *,
    group_id: Any,
    partition_assigners: Any,
    session_timeout_ms: Any,
    rebalance_timeout_ms: Any,
    heartbeat_interval_ms: Any,
    metadata_max_age_ms: int,
    allow_auto_topic_creation: bool,
    max_bytes_per_partition: int,
    min_bytes: int,
    max_bytes: int,
    max_wait_time_ms: Any,
    read_uncommitted: bool,
    group_instance_id: str | None,
    rack_id: str | None,
    config: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The librdkafka configuration of a group consumer from KafkaJS's consumer options."""
    if not isinstance(group_id, str) or not group_id:
        raise ConfigError(f"consumer needs a group_id (a non-empty str), not {group_id!r}")
    for name, value in (
        ("session_timeout_ms", session_timeout_ms),
        ("rebalance_timeout_ms", rebalance_timeout_ms),
        ("heartbeat_interval_ms", heartbeat_interval_ms),
        ("max_wait_time_ms", max_wait_time_ms),
    ):
        check_int(name, value)
    if heartbeat_interval_ms >= session_timeout_ms:
        raise ConfigError("heartbeat_interval_ms must be lower than session_timeout_ms")
    strategies = assignment_strategies(partition_assigners)
    if "cooperative-sticky" in strategies and len(strategies) > 1:
        raise ConfigError("COOPERATIVE_STICKY cannot be combined with eager assigners")
    conf = dict(conf)
    conf.update(
        {
            "group.id": group_id,
            "session.timeout.ms": session_timeout_ms,
            "heartbeat.interval.ms": heartbeat_interval_ms,
            # librdkafka sends max.poll.interval.ms as the JoinGroup rebalance timeout.
            "max.poll.interval.ms": max(rebalance_timeout_ms, session_timeout_ms),
            "topic.metadata.refresh.interval.ms": metadata_max_age_ms,
            "allow.auto.create.topics": allow_auto_topic_creation,
            "max.partition.fetch.bytes": max_bytes_per_partition,
            "fetch.min.bytes": min_bytes,
            "fetch.max.bytes": max(max_bytes, max_bytes_per_partition),
            "fetch.wait.max.ms": max_wait_time_ms,
            "isolation.level": "read_uncommitted" if read_uncommitted else "read_committed",
            "partition.assignment.strategy": ",".join(strategies),
            # librdkafka postpones a partition's next fetch by this much when its local queue
            # is over the threshold; its 1 s default stalls a handler that just caught up
            # (measured: ~1 s gaps in bench/client_vs_raw.py). 10 ms keeps the queue fed.
            "fetch.queue.backoff.ms": 10,
            # We commit ourselves, after handlers resolve (KafkaJS semantics).
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
        }
    )
    if group_instance_id:
        conf["group.instance.id"] = group_instance_id
    if rack_id:
        conf["client.rack"] = rack_id
    if config:
        conf.update(config)
    return conf


def describe_consumer_group(conf: Mapping[str, Any], group_id: str, timeout_s: float) -> Any:
    """librdkafka's description of one group (blocking: run it in an executor)."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(dict(conf))  # kept until the answer is in: it serves the request
    future = admin.describe_consumer_groups([group_id])[group_id]
    return future.result(timeout=timeout_s)


def generation_of(group_metadata: Any) -> int | None:
    """The group generation from librdkafka's serialized group metadata (what
    `consumer_group_metadata()` returns: b"CGMDv2:", the generation as a native-order int32,
    then the group and member ids), which is the only place librdkafka shows it. None for any
    other layout: a later librdkafka may change it."""
    magic = b"CGMDv2:"
    if not isinstance(group_metadata, bytes) or not group_metadata.startswith(magic):
        return None
    raw = group_metadata[len(magic) : len(magic) + 4]
    return int.from_bytes(raw, sys.byteorder, signed=True) if len(raw) == 4 else None


def check_run_args(
    *,
    handler: Any,
    auto_commit: Any,
    auto_commit_interval_ms: Any,
    auto_commit_threshold: Any,
    each_batch_auto_resolve: Any,
    partitions_consumed_concurrently: Any,
    retry: Any,
    dead_letter_topic: Any,
) -> None:
    """run()'s arguments, checked before anything starts."""
    if not callable(handler):
        raise ConfigError("each_message= / each_batch= must be a function")
    for name, flag in (("auto_commit", auto_commit), ("each_batch_auto_resolve",
                                                      each_batch_auto_resolve)):  # fmt: skip
        if not isinstance(flag, bool):
            raise ConfigError(f"{name} must be True or False, not {flag!r}")
    for name, value in (
        ("auto_commit_interval_ms", auto_commit_interval_ms),
        ("auto_commit_threshold", auto_commit_threshold),
    ):
        if value is not None:
            check_int(name, value)
    check_int("partitions_consumed_concurrently", partitions_consumed_concurrently)
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise ConfigError(f"retry must be a RetryPolicy, not {type(retry).__name__}")
    if dead_letter_topic is not None and not isinstance(dead_letter_topic, str):
        raise ConfigError(f"dead_letter_topic must be a topic name, not {dead_letter_topic!r}")
    if partitions_consumed_concurrently < 1:
        raise ConfigError("partitions_consumed_concurrently must be >= 1")


def group_description(d: Any) -> dict[str, Any]:
    """librdkafka's ConsumerGroupDescription as KafkaJS's describeGroup() result."""
    return {
        "group_id": d.group_id,
        "error_code": 0,
        "state": _GROUP_STATES.get(d.state.name, d.state.name),
        "protocol": d.partition_assignor or "",
        "protocol_type": "" if d.is_simple_consumer_group else "consumer",
        "members": [
            {
                "member_id": m.member_id,
                "client_id": m.client_id,
                "client_host": m.host,
                "member_assignment": by_topic(
                    {(tp.topic, tp.partition) for tp in m.assignment.topic_partitions}
                ),
            }
            for m in d.members
        ],
    }


# Kafka's group state names (DescribeGroups), as KafkaJS shows them, for librdkafka's enum.
_GROUP_STATES = {
    "UNKNOWN": "Unknown",
    "PREPARING_REBALANCING": "PreparingRebalance",
    "COMPLETING_REBALANCING": "CompletingRebalance",
    "STABLE": "Stable",
    "DEAD": "Dead",
    "EMPTY": "Empty",
}


def original_cause(error: BaseException) -> BaseException:
    """KafkaJS's getOriginalCause: follow the cause chain to its end."""
    seen = {id(error)}
    while error.__cause__ is not None and id(error.__cause__) not in seen:
        error = error.__cause__
        seen.add(id(error))
    return error


def check_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an int, not {value!r}")


def assignment_strategies(assigners: Any) -> list[str]:
    if isinstance(assigners, str | bytes) or not isinstance(assigners, Sequence):
        raise ConfigError(
            f"partition_assigners must be a list of PartitionAssigners: {assigners!r}"
        )
    strategies = []
    for a in assigners:
        try:
            strategies.append(PartitionAssigners(a).value)
        except ValueError:
            raise ConfigError(
                f"unsupported partition assigner {a!r}: librdkafka runs the assignment itself and "
                "cannot call a custom assigner; use PartitionAssigners.ROUND_ROBIN, RANGE or "
                "COOPERATIVE_STICKY"
            ) from None
    if not strategies:
        raise ConfigError("partition_assigners must not be empty")
    return strategies


def topic_name(topic: Any) -> str:
    """A subscription entry: a name, a "^" regex, or a compiled pattern (KafkaJS's RegExp)."""
    if isinstance(topic, re.Pattern):
        if not isinstance(topic.pattern, str) or topic.flags & ~re.UNICODE:
            raise ConfigError(
                f"topic pattern {topic.pattern!r}: librdkafka takes the regex text only, "
                "without flags (re.IGNORECASE, ...)"
            )
        # librdkafka treats a name starting with "^" as a regex; KafkaJS's RegExp.test searches
        # anywhere in the name, so an unanchored pattern may start anywhere.
        return topic.pattern if topic.pattern.startswith("^") else "^.*" + topic.pattern
    if not isinstance(topic, str) or not topic:
        raise ConfigError(f"a topic is a non-empty name or a re.Pattern, not {topic!r}")
    return topic


def commit_spec(offsets: Any) -> dict[TP, tuple[int, str | None]]:
    """commit_offsets()'s three shapes, checked: offset and optional metadata per partition."""
    rows: list[Mapping[str, Any]] = []
    try:
        if isinstance(offsets, Mapping) and "topics" in offsets:
            for entry in offsets["topics"]:
                for p in entry["partitions"]:
                    rows.append({**p, "topic": entry["topic"]})
        elif isinstance(offsets, Mapping):
            rows = [{"topic": t, "partition": p, "offset": o} for (t, p), o in offsets.items()]
        elif isinstance(offsets, Sequence) and not isinstance(offsets, str | bytes):
            rows = list(offsets)
        else:
            raise TypeError
        spec: dict[TP, tuple[int, str | None]] = {}
        for row in rows:
            topic, partition, metadata = row["topic"], row["partition"], row.get("metadata")
            if not isinstance(topic, str) or isinstance(partition, bool):
                raise TypeError
            if metadata is not None and not isinstance(metadata, str):
                raise TypeError
            offset = int(row["offset"])  # KafkaJS passes offsets as strings
            if offset < 0:
                raise ConfigError(f"cannot commit a negative offset: {row!r}")
            spec[(topic, int(partition))] = (offset, metadata)
    except (TypeError, ValueError, KeyError, AttributeError):
        raise ConfigError(
            "commit_offsets() takes [{'topic', 'partition', 'offset', 'metadata'?}], "
            f"{{'topics': [...]}} or {{(topic, partition): offset}}, not {offsets!r}"
        ) from None
    return spec


def topics_shape(offsets: Mapping[TP, int]) -> list[dict[str, Any]]:
    """KafkaJS's `[{"topic", "partitions": [{"partition", "offset"}]}]`."""
    by_topic: dict[str, list[dict[str, int]]] = {}
    for (t, p), o in sorted(offsets.items()):
        by_topic.setdefault(t, []).append({"partition": p, "offset": o})
    return [{"topic": t, "partitions": ps} for t, ps in by_topic.items()]


def by_topic(tps: set[TP]) -> dict[str, list[int]]:
    by_topic: dict[str, list[int]] = {}
    for t, p in sorted(tps):
        by_topic.setdefault(t, []).append(p)
    return by_topic


def awaitable(handler: H | None) -> H | None:
    """KafkaJS awaits whatever a handler returns, so a plain function is a handler too; it runs
    on the event loop. Async handlers (the usual case) are used as they are: nothing per message."""
    if handler is None or _is_async(handler):
        return handler
    call = handler

    async def awaiting(payload: Any) -> None:
        result = call(payload)
        if inspect.isawaitable(result):
            await result

    return cast(H, awaiting)


def _is_async(handler: Callable[..., Any]) -> bool:
    # An object with `async def __call__` counts too: the method is on its type.
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        type(handler).__call__
    )


# librdkafka's logical offsets, which KafkaJS's seek() also accepts as "-1" and "-2".
OFFSET_END, OFFSET_BEGINNING = -1, -2


def seek_offset(offset: Any) -> int:
    try:
        value = int(offset)
    except (TypeError, ValueError):
        raise ConfigError(f"invalid offset {offset!r}: expected an integer") from None
    if value < 0 and value not in (OFFSET_END, OFFSET_BEGINNING):
        raise ConfigError(
            f"offset must not be negative, except -1 (the end) and -2 (the beginning): {value}"
        )
    return value
