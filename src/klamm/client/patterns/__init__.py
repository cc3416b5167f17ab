"""Production patterns built on the client: dead-letter records and idempotent consumers."""

from __future__ import annotations

from klamm.client.patterns.dlq import DLQ_HEADERS, dead_letter_headers
from klamm.client.patterns.idempotent import idempotent
from klamm.client.patterns.stores import PostgresStore, SQLiteStore, Store, StoreTransaction

__all__ = [
    "DLQ_HEADERS",
    "PostgresStore",
    "SQLiteStore",
    "Store",
    "StoreTransaction",
    "dead_letter_headers",
    "idempotent",
]
