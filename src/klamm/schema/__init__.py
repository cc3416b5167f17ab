"""klamm's Schema Registry: a Confluent-compatible REST service (state in a compacted `_schemas`
topic, reached through the Kafka client, never the broker's internals) and the client-side serdes.

Client:  `SchemaRegistry(url)` with `register`, `get_latest_schema_id`, `encode`, `decode`.
Server:  `klamm.schema.server.RegistryServer`, `klamm registry`, `klamm broker --schema-registry`.
"""

from __future__ import annotations

from klamm.schema.client import (
    Schema,
    SchemaRegistry,
    SchemaRegistryError,
    SerdeError,
    UnknownSchemaError,
)
from klamm.schema.integration import DecodedMessage, DecodedPayload, SchemaProducer
from klamm.schema.records import Reference

__all__ = [
    "DecodedMessage",
    "DecodedPayload",
    "Reference",
    "Schema",
    "SchemaProducer",
    "SchemaRegistry",
    "SchemaRegistryError",
    "SerdeError",
    "UnknownSchemaError",
]
