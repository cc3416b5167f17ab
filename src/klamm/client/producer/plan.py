"""Checking a send before anything is produced: the plan (per topic, its messages, prepared or
plain) and the compression codec."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from klamm.client.errors import ConfigError
from klamm.client.messages import (
    CompressionTypes,
    Message,
    plain_messages,
    plain_types_ok,
    prepare_message,
)

# Messages per produce_batch() call: large enough to amortise the call, small enough that a huge
# send yields to the event loop between runs.
RUN_SIZE = 2_000
# librdkafka's RD_KAFKA_PARTITION_UA: let the partitioner choose.
ANY_PARTITION = -1

MessageInput = Message | Mapping[str, Any]  # a Message is a dict; any mapping is accepted

# send(compression=...) takes a CompressionTypes member, its value ("gzip"), or the number KafkaJS's
# CompressionTypes uses (src/protocol/message/compression/index.js); each is mapped to librdkafka's
# compression.type here.
_KAFKAJS_CODEC_NUMBERS = {
    0: CompressionTypes.NONE,
    1: CompressionTypes.GZIP,
    2: CompressionTypes.SNAPPY,
    3: CompressionTypes.LZ4,
    4: CompressionTypes.ZSTD,
}
_CODECS: dict[object, str] = {
    **{codec: codec.value for codec in CompressionTypes},
    **{codec.value: codec.value for codec in CompressionTypes},
    **{number: codec.value for number, codec in _KAFKAJS_CODEC_NUMBERS.items()},
}
_NO_CODEC = CompressionTypes.NONE.value

# A send, checked: per topic, its messages and whether they are all plain. Plain ones are the
# caller's own list, handed to produce_batch as it is; otherwise each message is prepared (a plain
# dict, or an OutgoingRecord for headers, a partition or a timestamp).
Plan = list[tuple[str, list[Any], bool]]


def compression_type(compression: object) -> str:
    """librdkafka's compression.type for send(compression=...); ConfigError for anything else."""
    if compression is None:
        return _NO_CODEC
    try:
        codec = _CODECS.get(compression)
    except TypeError:  # unhashable
        codec = None
    if codec is None or isinstance(compression, bool):  # True == 1 would pass for GZIP
        accepted = ", ".join(
            f"CompressionTypes.{c.name} ({c.value!r} or {n})"
            for n, c in _KAFKAJS_CODEC_NUMBERS.items()
        )
        raise ConfigError(
            f"compression must be a CompressionTypes member, its value or KafkaJS's number: "
            f"{accepted}; got {compression!r}"
        )
    return codec


def _is_list(value: object) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes | bytearray)


def prepare_send(topic_messages: Sequence[Mapping[str, Any]]) -> Plan:
    """Check everything first: a bad message fails the send before anything is produced.

    A send that fits one produce_batch call leaves the key and value type check to librdkafka,
    which refuses the whole call before enqueuing anything (see `_send`); a larger send is
    checked here, since a refused later call would come after earlier ones were enqueued."""
    plan: Plan = []
    if not _is_list(topic_messages):
        raise ConfigError(
            "topic_messages must be a list of {'topic', 'messages'} dicts, "
            f"not {topic_messages!r}"
        )
    for entry in topic_messages:
        if not isinstance(entry, Mapping):
            raise ConfigError(f"each entry must be a {{'topic', 'messages'}} dict, not {entry!r}")
        topic = entry.get("topic")
        if not isinstance(topic, str) or not topic:
            raise ConfigError(f"each entry needs a topic name, got {topic!r}")
        messages = entry.get("messages", ())
        if not _is_list(messages):
            # A str, a dict or None would be iterated as characters, keys or fail obscurely.
            raise ConfigError(
                f"messages must be a list of messages (dicts or Message), not {messages!r}"
            )
        plain = plain_messages(messages)
        if plain is not None:
            plan.append((topic, plain, True))
        else:
            plan.append((topic, [prepare_message(m) for m in messages], False))
    if len(plan) > 1 or (plan and len(plan[0][1]) > RUN_SIZE):
        plan = [
            (topic, [prepare_message(m) for m in items], False)
            if plain and not plain_types_ok(items)
            else (topic, items, plain)
            for topic, items, plain in plan
        ]
    return plan
