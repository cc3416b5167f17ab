"""Idempotent consumers: process each message once, even when Kafka delivers it twice.

Kafka consumers are at-least-once: a crash after the business write but before the offset commit
redelivers the message. `idempotent(store, process)` wraps a handler so that the dedup key and the
business writes commit in ONE database transaction: either both are there (a redelivery is then
skipped) or neither is (the redelivery processes it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from klamm.client.patterns.stores import Store
from klamm.client.payloads import EachMessagePayload

Process = Callable[[EachMessagePayload, Any], Awaitable[None]]
KeyFn = Callable[[EachMessagePayload], str]


def default_key(payload: EachMessagePayload) -> str:
    """topic:partition:offset identifies a record in Kafka exactly."""
    return f"{payload.topic}:{payload.partition}:{payload.message.offset}"


def idempotent(
    store: Store, process: Process, *, key: KeyFn | None = None
) -> Callable[[EachMessagePayload], Awaitable[None]]:
    """An each_message handler running `process(payload, tx)` at most once per dedup key.

    `tx` is the open store transaction (`await tx.execute(sql, params)`); if `process` raises,
    the transaction rolls back, the key is not recorded, and the runner's retry policy applies.
    `key=` derives the dedup key from the payload (e.g. a business id in a header) when the same
    fact may arrive as different records."""
    key_of = key or default_key

    async def handler(payload: EachMessagePayload) -> None:
        dedup_key = key_of(payload)
        async with store.transaction() as tx:
            if not await tx.claim(dedup_key):
                return  # processed before; nothing to do (the empty transaction commits)
            await process(payload, tx)

    return handler
