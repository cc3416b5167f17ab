"""The registry's operations: validate purely against the state, then write records to the log.

`Registry` owns no state of its own beyond a parse cache: `RegistryState` (state.py) holds what
`_schemas` says, and every change is a record written through the `SchemaLog`, which hands it back
to the state. `SchemaLog.write(build)` runs `build` once the state has caught up with every write
any registry made, then writes the records `build` returns; at most one writer at a time across
every registry sharing the topic (log.py says how), so the id and version `build` picks from the
state are still free when its records land.

Every method is blocking (the log is Kafka): the REST app calls them in a worker thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from klamm.schema import compatibility, errors, records
from klamm.schema.errors import NotFoundError, UnprocessableError
from klamm.schema.formats import SCHEMA_TYPES, ParsedSchema, parse
from klamm.schema.records import Reference, SchemaRecord
from klamm.schema.state import DEFAULT_COMPATIBILITY, DEFAULT_MODE, RegistryState, SchemaContent

T = TypeVar("T")
Write = list[tuple[bytes, bytes | None]]
MODES = ("READWRITE", "READONLY", "IMPORT")
MAX_REFERENCE_DEPTH = 32  # references nest; a deeper chain is refused as invalid, never a hang


class SchemaLog(Protocol):
    def write(self, build: Callable[[], tuple[Write, T]]) -> T: ...


@dataclass(frozen=True)
class NewSchema:
    """A request body's schema: what /subjects/{s}/versions, lookup and compatibility take."""

    schema: str
    schema_type: str = "AVRO"
    references: tuple[Reference, ...] = ()
    id: int | None = None
    version: int | None = None

    @classmethod
    def from_body(cls, body: Any) -> NewSchema:
        if not isinstance(body, dict) or not isinstance(body.get("schema"), str):
            raise UnprocessableError(
                'Invalid schema: the body needs a "schema" string', errors.INVALID_SCHEMA
            )
        schema_type = body.get("schemaType") or "AVRO"
        if schema_type not in SCHEMA_TYPES:
            raise UnprocessableError(f"Invalid schema type {schema_type!r}", errors.INVALID_SCHEMA)
        try:
            refs = tuple(
                Reference(str(r["name"]), str(r["subject"]), int(r["version"]))
                for r in body.get("references") or ()
            )
            sid = body.get("id")
            version = body.get("version")
            return cls(
                body["schema"],
                schema_type,
                refs,
                None if sid is None else int(sid),
                None if version is None else int(version),
            )
        except (KeyError, TypeError, ValueError):
            raise UnprocessableError(
                "Invalid schema: malformed references, id or version", errors.INVALID_SCHEMA
            ) from None


class Registry:
    def __init__(self, state: RegistryState, log: SchemaLog) -> None:
        self.state = state
        self._log = log
        self._parsed: dict[SchemaContent, ParsedSchema] = {}
        self._parsed_lock = threading.Lock()

    # --- parsing -------------------------------------------------------------------------------

    def parsed(self, content: SchemaContent, depth: int = 0) -> ParsedSchema:
        with self._parsed_lock:
            hit = self._parsed.get(content)
        if hit is not None:
            return hit
        if depth > MAX_REFERENCE_DEPTH:
            raise UnprocessableError("Invalid schema: references nest too deeply")
        refs: dict[str, ParsedSchema] = {}
        for ref in content.references:
            rec = self.state.version(ref.subject, ref.version)
            if rec is None:
                raise UnprocessableError(
                    f"Invalid schema: reference {ref.name} to {ref.subject} version "
                    f"{ref.version} not found"
                )
            refs[ref.name] = self.parsed(_content(rec), depth + 1)
        result = parse(content.schema_type, content.schema, refs)
        with self._parsed_lock:
            self._parsed[content] = result
        return result

    def _prepare(self, new: NewSchema, normalize: bool) -> tuple[SchemaContent, ParsedSchema]:
        given = SchemaContent(new.schema, new.schema_type, new.references)
        parsed = self.parsed(given)
        text = parsed.normalized() if normalize else parsed.canonical()
        content = SchemaContent(text, new.schema_type, new.references)
        return content, parsed

    # --- subjects and versions -----------------------------------------------------------------

    def versions(self, subject: str, deleted: bool = False) -> list[SchemaRecord]:
        found = self.state.versions(subject, deleted)
        if not found:
            raise errors.subject_not_found(subject)
        return found

    def version(self, subject: str, version: str, deleted: bool = False) -> SchemaRecord:
        found = self.versions(subject, deleted=True)
        live = [r for r in found if deleted or not r.deleted]
        if version == "latest" or version == "-1":
            if not live:
                raise errors.subject_not_found(subject)
            return live[-1]
        n = _version_number(version)
        rec = next((r for r in live if r.version == n), None)
        if rec is None:
            raise errors.version_not_found(subject, version)
        return rec

    def register(self, subject: str, new: NewSchema, normalize: bool = False) -> int:
        content, parsed = self._prepare(new, normalize)

        def build() -> tuple[Write, int]:
            mode = self.mode(subject)
            if mode == "READONLY":
                raise UnprocessableError(
                    f"Subject {subject} is in read-only mode", errors.OPERATION_NOT_PERMITTED
                )
            if new.id is not None and mode != "IMPORT":
                raise UnprocessableError(
                    "Overwrite new schema with id is not permitted unless the mode is IMPORT",
                    errors.OPERATION_NOT_PERMITTED,
                )
            every = self.state.versions(subject, deleted=True)
            live = [r for r in every if not r.deleted]
            for rec in live:
                if _content(rec) == content:
                    return [], rec.id  # already registered under this subject
            if new.id is not None:
                bound = self.state.schema(new.id)
                if bound is not None and bound != content:
                    raise UnprocessableError(
                        f"Overwrite new schema with id {new.id} is not permitted: the id names "
                        "another schema",
                        errors.OPERATION_NOT_PERMITTED,
                    )
            taken = next((r for r in every if r.version == new.version), None)
            if taken is not None:
                raise UnprocessableError(
                    f"Overwrite new schema with version {new.version} of subject {subject} is "
                    "not permitted: it holds another schema",
                    errors.OPERATION_NOT_PERMITTED,
                )
            if mode != "IMPORT":
                previous = [self.parsed(_content(r)) for r in live]
                problems = compatibility.check(self.compatibility(subject), parsed, previous)
                if problems:
                    raise errors.IncompatibleSchemaError(
                        "Schema being registered is incompatible with an earlier schema for "
                        f'subject "{subject}", details: {problems}'
                    )
            schema_id = new.id or self.state.id_of(content) or self.state.next_id()
            version = new.version or (max((r.version for r in every), default=0) + 1)
            rec = SchemaRecord(
                subject, version, schema_id, content.schema, content.schema_type, content.references
            )
            return [
                (records.schema_key(subject, version), records.encode_value(rec.value()))
            ], schema_id

        return self._log.write(build)

    def lookup(
        self, subject: str, new: NewSchema, normalize: bool = False, deleted: bool = False
    ) -> SchemaRecord:
        every = self.state.versions(subject, deleted=True)
        if not every:
            raise errors.subject_not_found(subject)
        content, _ = self._prepare(new, normalize)
        for rec in reversed(every):
            if (deleted or not rec.deleted) and _content(rec) == content:
                return rec
        raise errors.schema_not_found()

    def delete_subject(self, subject: str, permanent: bool) -> list[int]:
        def build() -> tuple[Write, list[int]]:
            self._writable(subject)
            every = self.state.versions(subject, deleted=True)
            if not every:
                raise errors.subject_not_found(subject)
            live = [r for r in every if not r.deleted]
            for rec in live:
                self._not_referenced(subject, rec.version)
            if not permanent:
                if not live:
                    raise NotFoundError(
                        f"Subject '{subject}' was soft deleted. Set "
                        "permanent=true to delete permanently",
                        errors.SUBJECT_SOFT_DELETED,
                    )
                value = {"subject": subject, "version": live[-1].version}
                writes: Write = [
                    (
                        records.schema_key(subject, r.version),
                        records.encode_value({**r.value(), "deleted": True}),
                    )
                    for r in live
                ]
                writes.append((records.delete_subject_key(subject), records.encode_value(value)))
                return writes, [r.version for r in live]
            if live:
                raise NotFoundError(
                    f"Subject '{subject}' was not deleted first before being permanently deleted",
                    errors.SUBJECT_NOT_SOFT_DELETED,
                )
            writes = [(records.schema_key(subject, r.version), None) for r in every]
            writes.append((records.config_key(subject), None))
            return writes, [r.version for r in every]

        return self._log.write(build)

    def delete_version(self, subject: str, version: str, permanent: bool) -> int:
        def build() -> tuple[Write, int]:
            self._writable(subject)
            rec = self.version(subject, version, deleted=permanent)
            self._not_referenced(subject, rec.version)
            if not permanent:
                value = {**rec.value(), "deleted": True}
                return [
                    (records.schema_key(subject, rec.version), records.encode_value(value))
                ], rec.version
            if not rec.deleted:
                raise NotFoundError(
                    f"Subject '{subject}' Version {rec.version} was not deleted "
                    "first before being permanently deleted",
                    errors.VERSION_NOT_SOFT_DELETED,
                )
            return [(records.schema_key(subject, rec.version), None)], rec.version

        return self._log.write(build)

    def _not_referenced(self, subject: str, version: int) -> None:
        if self.state.referenced_by(subject, version):
            raise UnprocessableError(
                "One or more references exist to the schema "
                f"{{subject={subject},version={version}}}.",
                errors.REFERENCE_EXISTS,
            )

    def _writable(self, subject: str) -> None:
        if self.mode(subject) == "READONLY":
            raise UnprocessableError(
                f"Subject {subject} is in read-only mode", errors.OPERATION_NOT_PERMITTED
            )

    def check(
        self, subject: str, version: str | None, new: NewSchema, normalize: bool = False
    ) -> list[str]:
        """Confluent's /compatibility: problems of `new` against one version (or, with version
        None, against the versions its level compares with)."""
        _, parsed = self._prepare(new, normalize)
        level = self.compatibility(subject)
        if version is None:
            live = self.state.versions(subject)
            return compatibility.check(level, parsed, [self.parsed(_content(r)) for r in live])
        rec = self.version(subject, version)
        old = self.parsed(_content(rec))
        return compatibility.check(level.removesuffix("_TRANSITIVE"), parsed, [old])

    # --- config and mode -------------------------------------------------------------------------

    def compatibility(self, subject: str | None) -> str:
        if subject is not None:
            level = self.state.config(subject)
            if level is not None:
                return level
        return self.state.config(None) or DEFAULT_COMPATIBILITY

    def set_compatibility(self, subject: str | None, level: Any) -> str:
        if level not in compatibility.LEVELS:
            raise UnprocessableError(
                "Invalid compatibility level. Valid values are none, "
                "backward, forward, full, backward_transitive, "
                "forward_transitive, and full_transitive",
                errors.INVALID_COMPATIBILITY_LEVEL,
            )
        value = {"compatibilityLevel": level}
        return self._log.write(
            lambda: ([(records.config_key(subject), records.encode_value(value))], str(level))
        )

    def delete_compatibility(self, subject: str | None) -> str:
        def build() -> tuple[Write, str]:
            old = self.state.config(subject)
            if old is None and subject is not None:
                raise errors.subject_not_found(subject)
            return [(records.config_key(subject), None)], old or DEFAULT_COMPATIBILITY

        return self._log.write(build)

    def mode(self, subject: str | None) -> str:
        if subject is not None:
            mode = self.state.mode(subject)
            if mode is not None:
                return mode
        return self.state.mode(None) or DEFAULT_MODE

    def set_mode(self, subject: str | None, mode: Any, force: bool = False) -> str:
        if mode not in MODES:
            raise UnprocessableError(
                "Invalid mode. Valid values are READWRITE, READONLY, IMPORT", errors.INVALID_MODE
            )

        def build() -> tuple[Write, str]:
            if mode == "IMPORT" and not force:
                present = self.state.subjects() if subject is None else self.state.versions(subject)
                if present:
                    raise UnprocessableError(
                        "Cannot import since found existing subjects",
                        errors.OPERATION_NOT_PERMITTED,
                    )
            value = {"mode": mode}
            return [(records.mode_key(subject), records.encode_value(value))], str(mode)

        return self._log.write(build)

    def delete_mode(self, subject: str) -> str:
        def build() -> tuple[Write, str]:
            old = self.state.mode(subject)
            if old is None:
                raise errors.subject_not_found(subject)
            return [(records.mode_key(subject), None)], old

        return self._log.write(build)


def _content(rec: SchemaRecord) -> SchemaContent:
    return SchemaContent(rec.schema, rec.schema_type, rec.references)


def _version_number(version: str) -> int:
    try:
        n = int(version)
    except ValueError:
        n = 0
    if n <= 0 or n > 2**31 - 1:
        raise UnprocessableError(
            f"The specified version '{version}' is not a valid version id. Allowed values are "
            'between [1, 2^31-1] and the string "latest"',
            errors.INVALID_VERSION,
        )
    return n
