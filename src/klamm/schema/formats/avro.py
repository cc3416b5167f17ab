"""AVRO: fastavro parses and validates; the compatibility check is ours.

fastavro (like every Python Avro library) has no schema-compatibility checker, so
`incompatibilities` implements the schema-resolution rules of the Avro specification
("Schema Resolution"), which are what Apache Avro's SchemaCompatibility.java and Confluent's
registry apply: a reader can read a writer's data when
- both are the same primitive, or the writer's type promotes to the reader's (int -> long, float,
  double; long -> float, double; float -> double; string <-> bytes);
- records have the same (full or aliased) name, every reader field is in the writer or has a
  default, and each shared field's types resolve (fields the reader lacks are skipped);
- enums have the same name and every writer symbol is a reader symbol (or the reader has a default);
- fixed have the same name and size; arrays' items and maps' values resolve;
- a writer union resolves when each of its branches does; a reader union when one branch matches
  the (non-union) writer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import fastavro
from fastavro.schema import SchemaParseException, UnknownType

from klamm.schema.errors import InvalidSchemaError

PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
PROMOTIONS = {
    ("int", "long"),
    ("int", "float"),
    ("int", "double"),
    ("long", "float"),
    ("long", "double"),
    ("float", "double"),
    ("string", "bytes"),
    ("bytes", "string"),
}  # (writer, reader) pairs of the spec's promotion table


class AvroSchema:
    schema_type = "AVRO"

    def __init__(self, raw: Any, parsed: Any, named: dict[str, Any]) -> None:
        self.raw = raw  # the JSON as given (canonical() serializes it)
        self.parsed = parsed  # fastavro's parse: full names, named types referenced by name
        self.named = named  # full name -> definition, including referenced schemas' types

    def canonical(self) -> str:
        return json.dumps(self.raw, separators=(",", ":"))

    def normalized(self) -> str:
        # Confluent's normalisation makes names fully qualified and drops formatting; fastavro's
        # parse already qualifies every name. Its own bookkeeping keys ("__fastavro_parsed", ...)
        # are dropped.
        return json.dumps(_strip(self.parsed), separators=(",", ":"))

    def incompatibilities(self, writer: Any) -> list[str]:
        if not isinstance(writer, AvroSchema):
            return [f"Incompatible schema type {writer.schema_type} (reader is AVRO)"]
        problems: list[str] = []
        _Resolver(self.named, writer.named, problems).check(self.parsed, writer.parsed, "/")
        return problems


def parse_avro(text: str, references: Mapping[str, Any]) -> AvroSchema:
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise InvalidSchemaError(f"Invalid schema {text!r}: not JSON ({exc})") from None
    named: dict[str, Any] = {}
    for ref in references.values():
        if isinstance(ref, AvroSchema):
            named.update(ref.named)
    try:
        parsed = fastavro.parse_schema(raw, named_schemas=named, _write_hint=False)
    except (
        SchemaParseException,
        UnknownType,
        TypeError,
        ValueError,
        KeyError,
        AttributeError,
    ) as exc:
        raise InvalidSchemaError(f"Invalid schema: {exc}") from None
    return AvroSchema(raw, parsed, named)


def _strip(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip(v) for k, v in node.items() if not k.startswith("__")}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


def _type_name(node: Any) -> str:
    if isinstance(node, str):
        return node
    if isinstance(node, list):
        return "union"
    t = node.get("type")
    return t if isinstance(t, str) else _type_name(t)


class _Resolver:
    def __init__(self, reader_names: dict[str, Any], writer_names: dict[str, Any], out: list[str]):
        self.rn, self.wn, self.out = reader_names, writer_names, out
        self.seen: set[tuple[str, str]] = set()  # named pairs in progress: recursive types

    def _deref(self, node: Any, names: dict[str, Any]) -> Any:
        while isinstance(node, str) and node not in PRIMITIVES:
            node = names[node]
        if isinstance(node, dict) and node.get("type") in PRIMITIVES and "logicalType" in node:
            return node["type"]  # logical types resolve as their underlying type
        if (
            isinstance(node, dict)
            and isinstance(node.get("type"), str | list)
            and (node["type"] not in ("record", "error", "enum", "fixed", "array", "map"))
        ):
            return self._deref(node["type"], names)
        return node

    def check(self, reader: Any, writer: Any, path: str) -> bool:
        before = len(self.out)
        r, w = self._deref(reader, self.rn), self._deref(writer, self.wn)
        if isinstance(w, list):
            for i, branch in enumerate(w):
                if not self._matches(r, branch):
                    self.out.append(
                        f"{path}: reader type {_type_name(r)} cannot read writer union branch "
                        f"{i} ({_type_name(self._deref(branch, self.wn))})"
                    )
                else:
                    self.check(r, branch, path)
            return len(self.out) == before
        if isinstance(r, list):
            for branch in r:
                if self._matches(branch, w):
                    return self.check(branch, w, path)
            self.out.append(
                f"{path}: writer type {_type_name(w)} matches no branch of reader union"
            )
            return False
        rt, wt = _type_name(r), _type_name(w)
        if rt != wt:
            if (wt, rt) not in PROMOTIONS:
                self.out.append(f"{path}: reader type {rt} not compatible with writer type {wt}")
            return len(self.out) == before
        if rt == "record" or rt == "error":
            self._record(r, w, path)
        elif rt == "enum":
            self._named_match(r, w, path)
            symbols = set(r.get("symbols", []))
            missing = [s for s in w.get("symbols", []) if s not in symbols]
            if missing and "default" not in r:
                self.out.append(f"{path}: reader enum {r['name']} lacks writer symbols {missing}")
        elif rt == "fixed":
            self._named_match(r, w, path)
            if r.get("size") != w.get("size"):
                self.out.append(f"{path}: fixed size {w.get('size')} read as size {r.get('size')}")
        elif rt == "array":
            self.check(r["items"], w["items"], f"{path}items/")
        elif rt == "map":
            self.check(r["values"], w["values"], f"{path}values/")
        return len(self.out) == before

    def _matches(self, reader: Any, writer: Any) -> bool:
        """The spec's first-match rule for unions: same kind (and name for named types), or a
        promotion; the full check of the match runs afterwards."""
        r, w = self._deref(reader, self.rn), self._deref(writer, self.wn)
        if isinstance(r, list):
            return any(self._matches(b, w) for b in r)
        if isinstance(w, list):
            return all(self._matches(r, b) for b in w)
        rt, wt = _type_name(r), _type_name(w)
        if rt != wt:
            return (wt, rt) in PROMOTIONS
        if rt in ("record", "error", "enum", "fixed"):
            return self._same_name(r, w)
        return True

    @staticmethod
    def _same_name(r: dict[str, Any], w: dict[str, Any]) -> bool:
        def short(n: str) -> str:
            return n.rsplit(".", 1)[-1]

        aliases = {a for a in r.get("aliases", [])} | {short(a) for a in r.get("aliases", [])}
        return (
            short(r["name"]) == short(w["name"])
            or w["name"] in aliases
            or short(w["name"]) in aliases
        )

    def _named_match(self, r: dict[str, Any], w: dict[str, Any], path: str) -> None:
        if not self._same_name(r, w):
            self.out.append(f"{path}: name mismatch, reader {r['name']} writer {w['name']}")

    def _record(self, r: dict[str, Any], w: dict[str, Any], path: str) -> None:
        self._named_match(r, w, path)
        pair = (r["name"], w["name"])
        if pair in self.seen:
            return
        self.seen.add(pair)
        by_name = {f["name"]: f for f in w.get("fields", [])}
        for field in r.get("fields", []):
            names = [field["name"], *field.get("aliases", [])]
            wf = next((by_name[n] for n in names if n in by_name), None)
            if wf is None:
                if "default" not in field:
                    self.out.append(
                        f"{path}{field['name']}: reader field has no default and the writer "
                        "lacks it (READER_FIELD_MISSING_DEFAULT_VALUE)"
                    )
                continue
            self.check(field["type"], wf["type"], f"{path}{field['name']}/")
        self.seen.discard(pair)
