"""Production patterns: `idempotent(store, process)` with SQLiteStore or PostgresStore."""

from __future__ import annotations

from klamm.client.patterns import PostgresStore, SQLiteStore, Store, StoreTransaction, idempotent

__all__ = ["PostgresStore", "SQLiteStore", "Store", "StoreTransaction", "idempotent"]
