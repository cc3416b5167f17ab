"""KafkaJS's @kafkajs/confluent-schema-registry 4.1.0 (npm; tests/interop/js/registry_kafkajs.js)
against klamm's registry: registering, encoding and decoding all three types, reading what a Python
client wrote and being read by it, and the 409 of an incompatible schema."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from klamm.schema import Schema, SchemaRegistry, SerdeError
from klamm.schema.formats.protobuf import parse_protobuf
from tests.schema.schema_helpers import RunningRegistry

JS_DIR = Path(__file__).resolve().parents[1] / "interop" / "js"
PACKAGE = JS_DIR / "node_modules" / "@kafkajs" / "confluent-schema-registry"

AVRO = json.dumps({"type": "record", "name": "Order", "namespace": "shop",
                   "fields": [{"name": "id", "type": "string"},
                              {"name": "amount", "type": "double"}]})  # fmt: skip
INCOMPATIBLE = json.dumps({"type": "record", "name": "Order", "namespace": "shop",
                           "fields": [{"name": "id", "type": "string"},
                                      {"name": "amount", "type": "double"},
                                      {"name": "customer", "type": "string"}]})  # fmt: skip
JSON_SCHEMA = json.dumps({"type": "object", "properties": {"id": {"type": "string"},
                          "amount": {"type": "number"}}})  # fmt: skip


def _node() -> str:
    path = shutil.which("node")
    if path is None or not PACKAGE.is_dir():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("node or @kafkajs/confluent-schema-registry missing (npm ci in js/)")
        pytest.skip("node or @kafkajs/confluent-schema-registry is not installed")
    return path


async def test_kafkajs_registry_package(registry: RunningRegistry, unique: str) -> None:
    node = _node()
    ours = SchemaRegistry(registry.url)
    foreign_id = await ours.register(AVRO, subject=f"py-{unique}")
    foreign = await ours.encode(foreign_id, {"id": "from-python", "amount": 1.5})
    proto = (
        f'syntax = "proto3";\npackage js{unique};\n'
        "message Order { string id = 1; double amount = 2; }\n"
    )
    # What confluent-kafka's ProtobufSerializer registers: a base64 FileDescriptorProto.
    base64_proto = parse_protobuf(
        f'syntax = "proto3";\npackage b{unique};\nmessage Shipment {{ string id = 1; }}\n', {}
    ).serialized()
    proto_from_python = await ours.register(Schema(base64_proto, "PROTOBUF"), subject=f"b-{unique}")
    args = {"url": registry.url, "subject": f"js-{unique}", "avro": AVRO, "json": JSON_SCHEMA,
            "proto": proto, "incompatible": INCOMPATIBLE, "foreign": foreign.hex(),
            "protoFromPython": proto_from_python}  # fmt: skip
    proc = subprocess.run([node, str(JS_DIR / "registry_kafkajs.js")], input=json.dumps(args),
                          cwd=JS_DIR, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])

    assert out["avro"]["decoded"] == {"id": "o1", "amount": 9.5}
    assert out["latestId"] == out["avro"]["id"]
    assert out["json"]["decoded"] == {"id": "j1", "amount": 2}
    assert out["proto"]["decoded"] == {"id": "p1", "amount": 4.5}
    assert out["foreign"] == {"id": "from-python", "amount": 1.5}
    assert out["protoFromPython"] == "Shipment"  # protobufjs parsed the served .proto text
    # What KafkaJS encoded, klamm's client decodes.
    assert await ours.decode(bytes.fromhex(out["avro"]["hex"])) == {"id": "o1", "amount": 9.5}
    assert await ours.decode(bytes.fromhex(out["json"]["hex"])) == {"id": "j1", "amount": 2}
    # The package writes Protobuf payloads without Confluent's message-index list (its own
    # decode expects the same), so Confluent-conformant readers - confluent-kafka's deserializer
    # and klamm's alike - cannot read them: a clear SerdeError, not a crash or a wrong message.
    proto_payload = bytes.fromhex(out["proto"]["hex"])[5:]
    assert proto_payload.startswith(b"\n\x02p1")  # field 1 straight after the schema id
    with pytest.raises(SerdeError):
        await ours.decode(bytes.fromhex(out["proto"]["hex"]))
    assert out["incompatible"] != "registered"
    assert "incompatible" in out["incompatible"]["message"].lower()
