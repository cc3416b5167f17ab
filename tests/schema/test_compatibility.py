"""Compatibility tables per schema type, from Avro's specification ("Schema Resolution") and
Confluent's documentation of each level; each row asserts the verdict at all seven levels.

A row is (old, new, backward_ok, forward_ok): "backward" = the new schema reads old data,
"forward" = the old schema reads new data. The verdict expected at each level follows from those
two (FULL = both); the transitive levels are covered by their own test against three versions.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from klamm.schema.compatibility import LEVELS, check
from klamm.schema.errors import InvalidSchemaError
from klamm.schema.formats import parse


def avro(*fields: dict[str, Any], name: str = "R") -> str:
    return json.dumps({"type": "record", "name": name, "fields": list(fields)})


def f(name: str, type_: Any, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, **extra}


ENUM_AB = {"type": "enum", "name": "E", "symbols": ["A", "B"]}
ENUM_ABC = {"type": "enum", "name": "E", "symbols": ["A", "B", "C"]}

AVRO_ROWS = [
    (
        "field added with default",
        avro(f("a", "int")),
        avro(f("a", "int"), f("b", "string", default="x")),
        True,
        True,
    ),
    (
        "field added without default",
        avro(f("a", "int")),
        avro(f("a", "int"), f("b", "string")),
        False,
        True,
    ),
    (
        "field removed (had default)",
        avro(f("a", "int"), f("b", "int", default=0)),
        avro(f("a", "int")),
        True,
        True,
    ),
    (
        "field removed (no default)",
        avro(f("a", "int"), f("b", "int")),
        avro(f("a", "int")),
        True,
        False,
    ),
    ("int promoted to long", avro(f("a", "int")), avro(f("a", "long")), True, False),
    ("float promoted to double", avro(f("a", "float")), avro(f("a", "double")), True, False),
    ("string and bytes", avro(f("a", "string")), avro(f("a", "bytes")), True, True),
    ("long narrowed to int", avro(f("a", "long")), avro(f("a", "int")), False, True),
    ("type changed int to string", avro(f("a", "int")), avro(f("a", "string")), False, False),
    ("enum symbol added", avro(f("e", ENUM_AB)), avro(f("e", ENUM_ABC)), True, False),
    ("enum symbol removed", avro(f("e", ENUM_ABC)), avro(f("e", ENUM_AB)), False, True),
    (
        "made nullable (union)",
        avro(f("a", "int")),
        avro(f("a", ["null", "int"], default=None)),
        True,
        False,
    ),
    ("record renamed", avro(f("a", "int")), avro(f("a", "int"), name="S"), False, False),
    (
        "renamed with alias",
        avro(f("a", "int")),
        json.dumps({"type": "record", "name": "S", "aliases": ["R"], "fields": [f("a", "int")]}),
        True,
        False,
    ),
    (
        "field renamed with alias",
        avro(f("a", "int")),
        avro(f("b", "int", aliases=["a"])),
        True,
        False,
    ),
    (
        "array items promoted",
        avro(f("a", {"type": "array", "items": "int"})),
        avro(f("a", {"type": "array", "items": "long"})),
        True,
        False,
    ),
    (
        "fixed size changed",
        avro(f("x", {"type": "fixed", "name": "X", "size": 4})),
        avro(f("x", {"type": "fixed", "name": "X", "size": 8})),
        False,
        False,
    ),
]


def obj(props: dict[str, Any], *, closed: bool = False, required: list[str] | None = None) -> str:
    schema: dict[str, Any] = {"type": "object", "properties": props}
    if closed:
        schema["additionalProperties"] = False
    if required:
        schema["required"] = required
    return json.dumps(schema)


INT = {"type": "integer"}
STR = {"type": "string"}
JSON_ROWS = [
    (
        "property added, closed model",
        obj({"a": INT}, closed=True),
        obj({"a": INT, "b": STR}, closed=True),
        True,
        False,
    ),
    ("property added, open model", obj({"a": INT}), obj({"a": INT, "b": STR}), False, True),
    ("property removed, open model", obj({"a": INT, "b": STR}), obj({"a": INT}), True, False),
    (
        "property removed, closed model",
        obj({"a": INT, "b": STR}, closed=True),
        obj({"a": INT}, closed=True),
        False,
        True,
    ),
    ("required added", obj({"a": INT}), obj({"a": INT}, required=["a"]), False, True),
    ("integer widened to number", obj({"a": INT}), obj({"a": {"type": "number"}}), True, False),
    ("type changed", obj({"a": INT}), obj({"a": STR}), False, False),
    (
        "enum extended",
        json.dumps({"enum": ["x", "y"]}),
        json.dumps({"enum": ["x", "y", "z"]}),
        True,
        False,
    ),
    (
        "maxLength decreased",
        json.dumps({"type": "string", "maxLength": 10}),
        json.dumps({"type": "string", "maxLength": 5}),
        False,
        True,
    ),
    ("model closed", obj({"a": INT}), obj({"a": INT}, closed=True), False, True),
]

PROTO_HEAD = 'syntax = "proto3";\npackage shop;\n'
PROTO_ROWS = [
    (
        "field added",
        "message O { string id = 1; }",
        "message O { string id = 1; int64 n = 2; }",
        True,
        True,
    ),
    (
        "field removed",
        "message O { string id = 1; int64 n = 2; }",
        "message O { string id = 1; }",
        True,
        True,
    ),
    (
        "number reused for another type",
        "message O { string id = 1; int64 n = 2; }",
        "message O { string id = 1; string note = 2; }",
        False,
        False,
    ),
    (
        "int32 to int64 (same wire type)",
        "message O { int32 n = 1; }",
        "message O { int64 n = 1; }",
        True,
        True,
    ),
    ("string to bytes", "message O { string s = 1; }", "message O { bytes s = 1; }", True, True),
    (
        "field made repeated",
        "message O { string s = 1; }",
        "message O { repeated string s = 1; }",
        False,
        False,
    ),
    (
        "field moved into oneof",
        "message O { string s = 1; }",
        "message O { oneof k { string s = 1; } }",
        False,
        False,
    ),
    (
        "message removed",
        "message O { string s = 1; }\nmessage P { int32 x = 1; }",
        "message O { string s = 1; }",
        False,
        True,
    ),
    ("field renamed", "message O { string s = 1; }", "message O { string t = 1; }", True, True),
]


def _expected(level: str, backward: bool, forward: bool) -> bool:
    base = level.removesuffix("_TRANSITIVE")
    return {"NONE": True, "BACKWARD": backward, "FORWARD": forward, "FULL": backward and forward}[
        base
    ]


def _table(schema_type: str, rows: list[Any], head: str = "") -> list[Any]:
    return [
        pytest.param(
            schema_type,
            head + old,
            head + new,
            level,
            _expected(level, b, fw),
            id=f"{schema_type}-{name}-{level}",
        )
        for name, old, new, b, fw in rows
        for level in LEVELS
    ]


@pytest.mark.parametrize(
    ("schema_type", "old", "new", "level", "compatible"),
    _table("AVRO", AVRO_ROWS)
    + _table("JSON", JSON_ROWS)
    + _table("PROTOBUF", PROTO_ROWS, PROTO_HEAD),
)
def test_compatibility_table(
    schema_type: str, old: str, new: str, level: str, compatible: bool
) -> None:
    problems = check(level, parse(schema_type, new, {}), [parse(schema_type, old, {})])
    assert (not problems) == compatible, problems


def test_transitive_levels_compare_with_every_version() -> None:
    v1 = parse("AVRO", avro(f("a", "int")), {})
    v2 = parse("AVRO", avro(f("a", "int"), f("b", "int", default=0)), {})
    # v3 drops b's default: it reads v2's data (b present) but not v1's (b missing, no default).
    v3 = parse("AVRO", avro(f("a", "int"), f("b", "int")), {})
    assert check("BACKWARD", v3, [v1, v2]) == []
    assert check("BACKWARD_TRANSITIVE", v3, [v1, v2]) != []
    assert check("FULL", v3, [v1, v2]) == []
    assert check("FULL_TRANSITIVE", v3, [v1, v2]) != []


@pytest.mark.parametrize(
    ("schema_type", "text"),
    [
        ("AVRO", '{"type": "record", "name": "R", "fields": [{"name": "a"}]}'),
        ("AVRO", '{"type": "nope"}'),
        ("AVRO", "not json"),
        ("JSON", '{"type": 5}'),
        ("PROTOBUF", 'syntax = "proto3"; message {'),
    ],
)
def test_invalid_schemas_are_refused(schema_type: str, text: str) -> None:
    with pytest.raises(InvalidSchemaError):
        parse(schema_type, text, {})
