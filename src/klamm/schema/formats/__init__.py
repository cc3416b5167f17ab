"""Schema types: parse a schema's text and decide compatibility, one module per type.

`parse(schema_type, text, references)` returns a `ParsedSchema` or raises InvalidSchemaError
(42201). `references` maps each name the schema imports to its already-parsed schema.
`reader.incompatibilities(writer)` lists why data written with `writer` cannot be read with
`reader` (empty: it can); compatibility.py turns that into Confluent's seven levels.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from klamm.schema.errors import InvalidSchemaError

SCHEMA_TYPES = ("JSON", "PROTOBUF", "AVRO")  # the order Confluent's /schemas/types answers


class ParsedSchema(Protocol):
    schema_type: str

    def canonical(self) -> str:
        """The text stored and served, and compared to find an already-registered schema."""
        ...

    def normalized(self) -> str:
        """The text `normalize=true` stores: equal for schemas that differ only in form."""
        ...

    def incompatibilities(self, writer: ParsedSchema) -> list[str]:
        """Why data written with `writer` cannot be read with this schema; empty if it can."""
        ...


def parse(schema_type: str, text: str, references: Mapping[str, ParsedSchema]) -> ParsedSchema:
    if schema_type == "AVRO":
        from klamm.schema.formats.avro import parse_avro

        return parse_avro(text, references)
    if schema_type == "JSON":
        from klamm.schema.formats.json_schema import parse_json

        return parse_json(text, references)
    if schema_type == "PROTOBUF":
        from klamm.schema.formats.protobuf import parse_protobuf

        return parse_protobuf(text, references)
    raise InvalidSchemaError(
        f"Unknown schema type {schema_type!r}; one of {', '.join(SCHEMA_TYPES)}"
    )
