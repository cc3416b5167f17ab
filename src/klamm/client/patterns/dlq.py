"""Dead-letter records: the failed message's key, value and headers, plus where and why it failed.

The metadata header names are the seed's (hand-written there, built in here):
`original-topic`, `original-partition`, `original-offset`, `error`, `failed-at` (ISO 8601, UTC),
`retry-count`. Values are UTF-8 text so any tool (kcat, the Kafka console) can read them. When a
dead-lettered message is dead-lettered again, the old metadata is replaced, not repeated.
"""

from __future__ import annotations

import datetime as dt

from klamm.client.messages import HeaderList

DLQ_HEADERS = (
    "original-topic",
    "original-partition",
    "original-offset",
    "error",
    "failed-at",
    "retry-count",
)
# Error texts can be long (tracebacks in messages); a header is not the place for megabytes.
_MAX_ERROR_BYTES = 4_096


def describe_error(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}"
    encoded = text.encode()
    if len(encoded) > _MAX_ERROR_BYTES:
        text = encoded[:_MAX_ERROR_BYTES].decode(errors="ignore") + "…"
    return text


def dead_letter_headers(
    original: HeaderList,
    *,
    topic: str,
    partition: int,
    offset: int,
    error: BaseException,
    retry_count: int,
    failed_at_ms: int,
) -> HeaderList:
    """The headers of the dead-letter record: original ones first, then the metadata."""
    failed_at = dt.datetime.fromtimestamp(failed_at_ms / 1000, tz=dt.UTC)
    kept = [(name, value) for name, value in original if name not in DLQ_HEADERS]
    return [
        *kept,
        ("original-topic", topic.encode()),
        ("original-partition", str(partition).encode()),
        ("original-offset", str(offset).encode()),
        ("error", describe_error(error).encode()),
        ("failed-at", failed_at.isoformat(timespec="milliseconds").encode()),
        ("retry-count", str(retry_count).encode()),
    ]
