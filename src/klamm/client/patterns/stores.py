"""Dedup stores for idempotent consumers: the business write and the dedup key commit together.

One narrow interface, two implementations:

    store.transaction()  -> async context manager yielding a StoreTransaction; commits on normal
                            exit, rolls back on error
    tx.claim(key)        -> True the first time `key` is claimed (inserts it in THIS transaction),
                            False when it was already committed: the message was processed before
    tx.execute(sql, params) -> rows; the handler's business writes, in the same transaction
    tx.connection        -> the driver connection, for anything else

Table: `<table>(key TEXT PRIMARY KEY, processed_at ...)`, created by `setup()` (called lazily).
SQL is handed to the driver unchanged, so placeholders follow the driver: `?` for sqlite3,
`%s` for psycopg.

Concurrency: SQLiteStore owns one connection used from one dedicated thread (sqlite3 blocks;
it must not run on the event loop) and serialises transactions with an asyncio.Lock.
PostgresStore uses one psycopg AsyncConnection, also one transaction at a time; use one store per
consumer, or several stores, when partitions are consumed concurrently.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar

from klamm.client.errors import ConfigError

T = TypeVar("T")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
DEFAULT_TABLE = "klamm_processed_messages"


def _check_table(table: str) -> str:
    # The table name is spliced into SQL, so only plain identifiers are accepted.
    if not _IDENTIFIER.match(table):
        raise ConfigError(f"invalid table name {table!r}")
    return table


class StoreTransaction(Protocol):
    connection: Any

    async def claim(self, key: str) -> bool: ...

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...


class Store(Protocol):
    def transaction(self) -> Any: ...  # an async context manager yielding a StoreTransaction

    async def is_processed(self, key: str) -> bool: ...

    async def close(self) -> None: ...


# -- SQLite ------------------------------------------------------------------------------------


class _SQLiteTransaction:
    def __init__(self, store: SQLiteStore, connection: sqlite3.Connection) -> None:
        self._store = store
        self.connection = connection

    async def claim(self, key: str) -> bool:
        sql = f"INSERT OR IGNORE INTO {self._store.table} (key, processed_at) VALUES (?, ?)"
        cursor = await self._store._run(self.connection.execute, sql, (key, time.time()))
        return bool(cursor.rowcount == 1)

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        def run() -> list[tuple[Any, ...]]:
            return list(self.connection.execute(sql, tuple(params)).fetchall())

        return await self._store._run(run)


class SQLiteStore:
    """Dedup store in a SQLite file (stdlib sqlite3). `SQLiteStore(":memory:")` works too."""

    def __init__(self, path: str, *, table: str = DEFAULT_TABLE) -> None:
        self.path = path
        self.table = _check_table(table)
        self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="klamm-sqlite")
        self._conn: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    async def setup(self) -> None:
        if self._conn is not None:
            return

        def open_db() -> sqlite3.Connection:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, so the dedup key and the
            # business rows are in exactly one transaction.
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table} "
                "(key TEXT PRIMARY KEY, processed_at REAL NOT NULL)"
            )
            return conn

        self._conn = await self._run(open_db)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_SQLiteTransaction]:
        await self.setup()
        conn = self._conn
        assert conn is not None
        async with self._lock:
            await self._run(conn.execute, "BEGIN IMMEDIATE")
            try:
                yield _SQLiteTransaction(self, conn)
            except BaseException:
                await self._run(conn.execute, "ROLLBACK")
                raise
            await self._run(conn.execute, "COMMIT")

    async def is_processed(self, key: str) -> bool:
        await self.setup()
        assert self._conn is not None
        sql = f"SELECT 1 FROM {self.table} WHERE key = ?"
        rows = await self._run(lambda: self._conn.execute(sql, (key,)).fetchall())  # type: ignore[union-attr]
        return bool(rows)

    async def close(self) -> None:
        if self._conn is not None:
            await self._run(self._conn.close)
            self._conn = None
        self._thread.shutdown(wait=True)


# -- PostgreSQL --------------------------------------------------------------------------------


class _PostgresTransaction:
    def __init__(self, store: PostgresStore, connection: Any) -> None:
        self._store = store
        self.connection = connection

    async def claim(self, key: str) -> bool:
        sql = (
            f"INSERT INTO {self._store.table} (key, processed_at) VALUES (%s, now()) "
            "ON CONFLICT (key) DO NOTHING"
        )
        cursor = await self.connection.execute(sql, (key,))
        return bool(cursor.rowcount == 1)

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cursor = await self.connection.execute(sql, tuple(params))
        if cursor.description is None:
            return []
        return list(await cursor.fetchall())


class PostgresStore:
    """Dedup store in PostgreSQL through psycopg 3 (`pip install klamm[postgres]`)."""

    def __init__(self, dsn: str, *, table: str = DEFAULT_TABLE) -> None:
        self.dsn = dsn
        self.table = _check_table(table)
        self._conn: Any = None
        self._lock = asyncio.Lock()

    async def setup(self) -> None:
        if self._conn is not None:
            return
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ConfigError("PostgresStore needs psycopg: pip install 'klamm[postgres]'") from exc
        conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {self.table} "
            "(key TEXT PRIMARY KEY, processed_at TIMESTAMPTZ NOT NULL)"
        )
        self._conn = conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_PostgresTransaction]:
        await self.setup()
        async with self._lock, self._conn.transaction():
            # psycopg commits when this block exits normally and rolls back on an exception.
            yield _PostgresTransaction(self, self._conn)

    async def is_processed(self, key: str) -> bool:
        await self.setup()
        async with self._lock:
            cursor = await self._conn.execute(f"SELECT 1 FROM {self.table} WHERE key = %s", (key,))
            return (await cursor.fetchone()) is not None

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
