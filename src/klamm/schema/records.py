"""The `_schemas` topic's records, in Confluent Schema Registry's key/value JSON format.

A registry's whole state is the replay of this compacted, single-partition topic, so the bytes
are those Confluent's and Karapace's registries write and read; data moves between them and klamm:

- SCHEMA `{"keytype":"SCHEMA","subject":S,"version":V,"magic":1}` ->
  `{"subject","version","id","schemaType"?,"references"?,"schema","deleted"}`;
  null: that version hard-deleted.
- CONFIG `{"keytype":"CONFIG","subject":S or null,"magic":0}` -> `{"compatibilityLevel":L}`;
  null: the subject's level removed.
- MODE `{"keytype":"MODE","subject":S or null,"magic":0}` -> `{"mode":M}`; null: removed.
- DELETE_SUBJECT `{"keytype":"DELETE_SUBJECT","subject":S,"magic":0}` ->
  `{"subject":S,"version":V}`: every version <= V soft-deleted.
- CLEAR_SUBJECT `{"keytype":"CLEAR_SUBJECT","subject":S,"magic":0}` -> `{"subject":S}`: every
  soft-deleted version removed.
- NOOP `{"keytype":"NOOP","magic":0}`: ignored (Confluent's leader writes it to find the end).

`schemaType` is omitted for AVRO and `references` when empty, as Confluent writes them. Keys are
written with this field order (compaction compares key bytes, so the same logical key must always
serialize to the same bytes).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

SCHEMA = "SCHEMA"
CONFIG = "CONFIG"
MODE = "MODE"
DELETE_SUBJECT = "DELETE_SUBJECT"
CLEAR_SUBJECT = "CLEAR_SUBJECT"
NOOP = "NOOP"


@dataclass(frozen=True)
class Reference:
    """A schema reference: the name the referring schema imports, and the subject/version that
    holds it."""

    name: str
    subject: str
    version: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "subject": self.subject, "version": self.version}


@dataclass(frozen=True)
class SchemaRecord:
    subject: str
    version: int
    id: int
    schema: str
    schema_type: str = "AVRO"
    references: tuple[Reference, ...] = field(default=())
    deleted: bool = False

    def value(self) -> dict[str, Any]:
        out: dict[str, Any] = {"subject": self.subject, "version": self.version, "id": self.id}
        if self.schema_type != "AVRO":
            out["schemaType"] = self.schema_type
        if self.references:
            out["references"] = [r.to_json() for r in self.references]
        out["schema"] = self.schema
        out["deleted"] = self.deleted
        return out


def _dump(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def schema_key(subject: str, version: int) -> bytes:
    return _dump({"keytype": SCHEMA, "subject": subject, "version": version, "magic": 1})


def config_key(subject: str | None) -> bytes:
    return _dump({"keytype": CONFIG, "subject": subject, "magic": 0})


def mode_key(subject: str | None) -> bytes:
    return _dump({"keytype": MODE, "subject": subject, "magic": 0})


def delete_subject_key(subject: str) -> bytes:
    return _dump({"keytype": DELETE_SUBJECT, "subject": subject, "magic": 0})


def clear_subject_key(subject: str) -> bytes:
    return _dump({"keytype": CLEAR_SUBJECT, "subject": subject, "magic": 0})


def encode_value(value: dict[str, Any] | None) -> bytes | None:
    return None if value is None else _dump(value)


def decode(data: bytes | None) -> dict[str, Any] | None:
    """A key or value as JSON, or None for a tombstone. Raises ValueError on bytes that are not a
    JSON object (the caller logs and skips the record: one bad record must not stop a replay)."""
    if data is None:
        return None
    obj = json.loads(data)
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    return obj


def schema_record(value: dict[str, Any]) -> SchemaRecord:
    """Raises KeyError/TypeError/ValueError on a malformed value."""
    refs = tuple(
        Reference(str(r["name"]), str(r["subject"]), int(r["version"]))
        for r in value.get("references") or ()
    )
    return SchemaRecord(
        subject=str(value["subject"]),
        version=int(value["version"]),
        id=int(value["id"]),
        schema=str(value["schema"]),
        schema_type=str(value.get("schemaType") or "AVRO"),
        references=refs,
        deleted=bool(value.get("deleted", False)),
    )
