"""The dedup store conformance suite: SQLite and PostgreSQL must behave the same."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from klamm.patterns import PostgresStore, SQLiteStore, idempotent


class FakeMessage:
    def __init__(self, offset: int, value: bytes) -> None:
        self.offset = offset
        self.value = value


class FakePayload:
    def __init__(self, offset: int, value: bytes = b"v") -> None:
        self.topic = "payments"
        self.partition = 1
        self.message = FakeMessage(offset, value)


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[Any]:
    table = "processed_" + uuid.uuid4().hex[:8]
    if request.param == "sqlite":
        s: Any = SQLiteStore(str(tmp_path / "dedup.db"), table=table)
        ph = "?"
    else:
        s = PostgresStore(request.getfixturevalue("postgres_dsn"), table=table)
        ph = "%s"
    s.placeholder = ph
    s.business = "business_" + uuid.uuid4().hex[:8]
    async with s.transaction() as tx:
        await tx.execute(f"CREATE TABLE {s.business} (id TEXT, amount INTEGER)")
    yield s
    await s.close()


async def rows(store: Any) -> list[tuple[Any, ...]]:
    async with store.transaction() as tx:
        return await tx.execute(f"SELECT id, amount FROM {store.business} ORDER BY id")


async def test_claim_is_true_once(store: Any) -> None:
    async with store.transaction() as tx:
        assert await tx.claim("k1")
        assert not await tx.claim("k1")
    async with store.transaction() as tx:
        assert not await tx.claim("k1")
        assert await tx.claim("k2")
    assert await store.is_processed("k1")
    assert not await store.is_processed("k3")


async def test_rollback_forgets_key_and_business_rows(store: Any) -> None:
    ph = store.placeholder
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            assert await tx.claim("k1")
            await tx.execute(f"INSERT INTO {store.business} VALUES ({ph}, {ph})", ("a", 1))
            raise RuntimeError("crash mid-processing")
    assert not await store.is_processed("k1")
    assert await rows(store) == []


async def test_idempotent_handler_processes_each_message_once(store: Any) -> None:
    ph = store.placeholder
    calls = 0

    async def process(payload: Any, tx: Any) -> None:
        nonlocal calls
        calls += 1
        await tx.execute(
            f"INSERT INTO {store.business} VALUES ({ph}, {ph})",
            (f"o{payload.message.offset}", payload.message.offset * 10),
        )

    handler = idempotent(store, process)
    for offset in (0, 1, 0, 2, 1):  # redeliveries of 0 and 1
        await handler(FakePayload(offset))  # type: ignore[arg-type]
    assert calls == 3
    assert await rows(store) == [("o0", 0), ("o1", 10), ("o2", 20)]
    assert await store.is_processed("payments:1:2")


async def test_failed_processing_is_retried_not_skipped(store: Any) -> None:
    attempts = 0

    async def flaky(payload: Any, tx: Any) -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ValueError("db hiccup")

    handler = idempotent(store, flaky)
    with pytest.raises(ValueError):
        await handler(FakePayload(5))  # type: ignore[arg-type]
    await handler(FakePayload(5))  # type: ignore[arg-type]
    await handler(FakePayload(5))  # type: ignore[arg-type]
    assert attempts == 2


async def test_custom_key(store: Any) -> None:
    seen = []

    async def process(payload: Any, tx: Any) -> None:
        seen.append(payload.message.offset)

    handler = idempotent(store, process, key=lambda p: p.message.value.decode())
    await handler(FakePayload(1, b"order-7"))  # type: ignore[arg-type]
    await handler(FakePayload(2, b"order-7"))  # type: ignore[arg-type]
    assert seen == [1]


def test_table_names_are_checked() -> None:
    from klamm import ConfigError

    with pytest.raises(ConfigError):
        SQLiteStore(":memory:", table="x; DROP TABLE y")
