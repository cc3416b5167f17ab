"""JSON: `jsonschema` validates the schema against its metaschema; the compatibility check is ours.

No Python library compares two JSON Schemas, so `incompatibilities` implements the rules of
Confluent's JSON Schema compatibility (its documentation's "JSON Schema" section) for the parts of
the language schemas in practice use. Reader compatible with writer means: every document the
writer schema accepts, the reader schema accepts.
- `type`: the reader's types must include the writer's (an integer writer is read by "number").
- objects: a property the writer allows that the reader constrains must resolve recursively; a
  property the reader adds is compatible only when the writer's content model is closed
  (`additionalProperties: false`) - in an open model the writer may already have sent that name
  with any value; a property the writer has and the reader drops is compatible only when the
  reader's model is open; a property newly `required` by the reader is incompatible unless the
  writer required it too; closing an open model is incompatible.
- `enum`: the reader's values must include the writer's.
- numbers and strings: the reader's bounds (minimum, maximum, minLength, maxLength, ...) may only
  widen; `pattern` and `format` must not be added or changed.
- arrays: `items` resolve recursively; `minItems`/`maxItems` may only widen.
- `$ref` to `#/definitions/...` or `#/$defs/...` is followed; composite keywords (allOf, anyOf,
  oneOf) are compared branch-for-branch when both sides have them, else treated as opaque and
  required to be equal. Documented as such in docs/schema-registry.md.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import jsonschema
import jsonschema.exceptions
import jsonschema.validators

from klamm.schema.errors import InvalidSchemaError


class JsonSchema:
    schema_type = "JSON"

    def __init__(self, raw: Any, references: Mapping[str, Any]) -> None:
        self.raw = raw
        self.references = dict(references)

    def canonical(self) -> str:
        return json.dumps(self.raw, separators=(",", ":"))

    def normalized(self) -> str:
        return json.dumps(self.raw, separators=(",", ":"), sort_keys=True)

    def validator(self) -> Any:
        """A validator for documents, resolving references to the referenced subjects' schemas."""
        from referencing import Registry, Resource

        registry: Registry[Any] = Registry()
        for name, ref in self.references.items():
            if isinstance(ref, JsonSchema):
                registry = registry.with_resource(name, Resource.from_contents(ref.raw))
        cls = jsonschema.validators.validator_for(self.raw)
        return cls(self.raw, registry=registry)

    def incompatibilities(self, writer: Any) -> list[str]:
        if not isinstance(writer, JsonSchema):
            return [f"Incompatible schema type {writer.schema_type} (reader is JSON)"]
        out: list[str] = []
        _compare(self.raw, writer.raw, self.raw, writer.raw, "#", out, 0)
        return out


def parse_json(text: str, references: Mapping[str, Any]) -> JsonSchema:
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise InvalidSchemaError(f"Invalid schema {text!r}: not JSON ({exc})") from None
    if not isinstance(raw, dict | bool):
        raise InvalidSchemaError("Invalid schema: a JSON Schema is an object or a boolean")
    try:
        jsonschema.validators.validator_for(raw).check_schema(raw)
    except jsonschema.exceptions.SchemaError as exc:
        raise InvalidSchemaError(f"Invalid schema: {exc.message}") from None
    return JsonSchema(raw, references)


MAX_DEPTH = 64  # recursive $refs: a schema deeper than this is compared no further
LOWER = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
UPPER = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")


def _resolve(node: Any, root: Any) -> Any:
    seen = 0
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and seen < MAX_DEPTH:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            return node  # a reference to another subject: compared as written
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, dict) else None
        if target is None:
            return node
        node, seen = target, seen + 1
    return node


def _types(node: dict[str, Any]) -> set[str] | None:
    t = node.get("type")
    if t is None:
        return None
    return {t} if isinstance(t, str) else set(t)


def _compare(r: Any, w: Any, rroot: Any, wroot: Any, path: str, out: list[str], depth: int) -> None:
    if depth > MAX_DEPTH:
        return
    r, w = _resolve(r, rroot), _resolve(w, wroot)
    if r is True or r == {}:
        return  # the reader accepts anything
    if w is False:
        return  # the writer accepts nothing
    if r is False:
        out.append(f"{path}: reader accepts nothing (TYPE_NARROWED)")
        return
    if w is True or not isinstance(w, dict) or not isinstance(r, dict):
        out.append(f"{path}: reader is narrower than an unconstrained writer")
        return
    rt, wt = _types(r), _types(w)
    if rt is not None:
        if wt is None:
            out.append(f"{path}: type {sorted(rt)} added (TYPE_NARROWED)")
        else:
            widened = rt | ({"integer"} if "number" in rt else set())
            if not wt <= widened:
                out.append(f"{path}: type {sorted(wt)} read as {sorted(rt)} (TYPE_CHANGED)")
                return
    if "enum" in r and ("enum" not in w or any(v not in r["enum"] for v in w["enum"])):
        out.append(f"{path}: enum narrowed (ENUM_ARRAY_NARROWED)")
    if "const" in r and r.get("const") != w.get("const"):
        out.append(f"{path}: const changed")
    for key in LOWER:
        if key in r and (key not in w or w[key] < r[key]):
            out.append(f"{path}: {key} increased ({key.upper()}_INCREASED)")
    for key in UPPER:
        if key in r and (key not in w or w[key] > r[key]):
            out.append(f"{path}: {key} decreased ({key.upper()}_DECREASED)")
    for key in ("pattern", "format", "multipleOf"):
        if key in r and r[key] != w.get(key):
            out.append(f"{path}: {key} added or changed ({key.upper()}_CHANGED)")
    for key in ("allOf", "anyOf", "oneOf", "not"):
        if key in r or key in w:
            if key in r and key in w and isinstance(r[key], list) and len(r[key]) == len(w[key]):
                for i, (rb, wb) in enumerate(zip(r[key], w[key], strict=True)):
                    _compare(rb, wb, rroot, wroot, f"{path}/{key}/{i}", out, depth + 1)
            elif r.get(key) != w.get(key):
                out.append(f"{path}: {key} changed (COMBINED_TYPE_CHANGED)")
    if "items" in r and isinstance(r["items"], dict | bool):
        _compare(r["items"], w.get("items", True), rroot, wroot, f"{path}/items", out, depth + 1)
    _compare_objects(r, w, rroot, wroot, path, out, depth)


def _compare_objects(
    r: dict[str, Any],
    w: dict[str, Any],
    rroot: Any,
    wroot: Any,
    path: str,
    out: list[str],
    depth: int,
) -> None:
    rprops: dict[str, Any] = r.get("properties", {})
    wprops: dict[str, Any] = w.get("properties", {})
    r_extra = r.get("additionalProperties", True)
    w_extra = w.get("additionalProperties", True)
    w_open = w_extra is not False
    r_open = r_extra is not False
    if w_open and not r_open:
        out.append(f"{path}: content model closed (ADDITIONAL_PROPERTIES_REMOVED)")
    for name, rp in rprops.items():
        if name in wprops:
            _compare(rp, wprops[name], rroot, wroot, f"{path}/properties/{name}", out, depth + 1)
        elif w_open:
            if isinstance(w_extra, dict):
                _compare(rp, w_extra, rroot, wroot, f"{path}/properties/{name}", out, depth + 1)
            elif _resolve(rp, rroot) not in (True, {}):
                out.append(
                    f"{path}/properties/{name}: property added to an open content model "
                    "(PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL)"
                )
    for name, wp in wprops.items():
        if name not in rprops:
            if not r_open:
                out.append(
                    f"{path}/properties/{name}: property removed from a closed content model "
                    "(PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL)"
                )
            elif isinstance(r_extra, dict):
                _compare(r_extra, wp, rroot, wroot, f"{path}/properties/{name}", out, depth + 1)
    added = set(r.get("required", [])) - set(w.get("required", []))
    for name in sorted(added):
        out.append(f"{path}: property {name} newly required (REQUIRED_PROPERTY_ADDED)")
