"""The registry's state: what replaying `_schemas` (records.py) builds, and the queries on it.

Owner: `RegistryState` alone changes itself, only through `replay(key, value)`. Live writes and
start-up recovery share that one path (STYLE.md 5): the service writes records to the log and this
state learns them when the log's reader hands them back.

Concurrency contract: the log's reader thread calls `replay`; request handlers on the event loop and
the writer thread read. One lock guards every access; queries return copies or frozen records.

Invariants (checked by tests/schema/test_state.py):
1. `by_id[r.id]` holds the schema text/type/references of every live or soft-deleted SCHEMA record;
   an id is never reused for other content (a replayed record that would rebind an id is skipped
   and logged, so a foreign writer's bug cannot silently change what an id decodes to).
2. `next_id()` is greater than every id ever seen, so a hard-deleted schema's id is never reissued.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from typing import Any

from klamm.schema import records
from klamm.schema.records import Reference, SchemaRecord

log = logging.getLogger("klamm.schema")

DEFAULT_COMPATIBILITY = "BACKWARD"  # Confluent's default (schema.compatibility.level)
DEFAULT_MODE = "READWRITE"


@dataclass(frozen=True)
class SchemaContent:
    """What an id names: the same for every subject/version that registered it."""

    schema: str
    schema_type: str
    references: tuple[Reference, ...]


class RegistryState:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._subjects: dict[str, dict[int, SchemaRecord]] = {}
        self._by_id: dict[int, SchemaContent] = {}
        self._ids_by_content: dict[SchemaContent, int] = {}
        self._configs: dict[str | None, str] = {}
        self._modes: dict[str | None, str] = {}
        self._max_id = 0

    # --- replay (the only mutation) ------------------------------------------------------------

    def replay(self, key: bytes | None, value: bytes | None) -> None:
        try:
            k = records.decode(key)
            v = records.decode(value)
        except ValueError as exc:
            log.warning("_schemas: skipping a record that is not JSON: %s", exc)
            return
        if k is None:
            return
        with self._lock:
            try:
                self._apply(k, v)
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("_schemas: skipping malformed record %s: %r", k, exc)

    def _apply(self, k: dict[str, Any], v: dict[str, Any] | None) -> None:
        keytype = k.get("keytype")
        if keytype == records.SCHEMA:
            subject, version = str(k["subject"]), int(k["version"])
            if v is None:
                self._subjects.get(subject, {}).pop(version, None)
                return
            rec = records.schema_record(v)
            content = SchemaContent(rec.schema, rec.schema_type, rec.references)
            bound = self._by_id.get(rec.id)
            if bound is not None and bound != content:
                log.warning("_schemas: id %d already names another schema; skipping %s", rec.id, k)
                return
            self._by_id[rec.id] = content
            self._ids_by_content.setdefault(content, rec.id)
            self._max_id = max(self._max_id, rec.id)
            self._subjects.setdefault(subject, {})[version] = rec
        elif keytype == records.CONFIG:
            scope: str | None = k.get("subject")  # None: the global setting
            if v is None:
                self._configs.pop(scope, None)
            else:
                self._configs[scope] = str(v["compatibilityLevel"])
        elif keytype == records.MODE:
            scope = k.get("subject")
            if v is None:
                self._modes.pop(scope, None)
            else:
                self._modes[scope] = str(v["mode"])
        elif keytype == records.DELETE_SUBJECT and v is not None:
            subject, upto = str(v["subject"]), int(v["version"])
            versions = self._subjects.get(subject, {})
            for n, rec in list(versions.items()):
                if n <= upto:
                    versions[n] = replace(rec, deleted=True)
        elif keytype == records.CLEAR_SUBJECT and v is not None:
            versions = self._subjects.get(str(v["subject"]), {})
            for n, rec in list(versions.items()):
                if rec.deleted:
                    del versions[n]
        # NOOP and unknown key types: nothing to apply (a newer registry's records).

    # --- queries -------------------------------------------------------------------------------

    def subjects(self, deleted: bool = False) -> list[str]:
        with self._lock:
            return sorted(
                s
                for s, vs in self._subjects.items()
                if any(deleted or not r.deleted for r in vs.values())
            )

    def versions(self, subject: str, deleted: bool = False) -> list[SchemaRecord]:
        """The subject's versions, ascending; soft-deleted ones only when `deleted`."""
        with self._lock:
            vs = self._subjects.get(subject, {})
            return [vs[n] for n in sorted(vs) if deleted or not vs[n].deleted]

    def version(self, subject: str, version: int) -> SchemaRecord | None:
        with self._lock:
            return self._subjects.get(subject, {}).get(version)

    def schema(self, schema_id: int) -> SchemaContent | None:
        with self._lock:
            return self._by_id.get(schema_id)

    def id_of(self, content: SchemaContent) -> int | None:
        with self._lock:
            return self._ids_by_content.get(content)

    def usages(self, schema_id: int, deleted: bool = False) -> list[SchemaRecord]:
        with self._lock:
            return [
                r
                for s in sorted(self._subjects)
                for _, r in sorted(self._subjects[s].items())
                if r.id == schema_id and (deleted or not r.deleted)
            ]

    def referenced_by(self, subject: str, version: int) -> list[int]:
        with self._lock:
            return sorted(
                {
                    r.id
                    for vs in self._subjects.values()
                    for r in vs.values()
                    if not r.deleted
                    and any(
                        ref.subject == subject and ref.version == version for ref in r.references
                    )
                }
            )

    def next_id(self) -> int:
        with self._lock:
            return self._max_id + 1

    def config(self, subject: str | None) -> str | None:
        with self._lock:
            return self._configs.get(subject)

    def mode(self, subject: str | None) -> str | None:
        with self._lock:
            return self._modes.get(subject)
