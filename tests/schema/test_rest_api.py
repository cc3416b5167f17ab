"""The REST API's semantics and exact error bodies, over an in-memory log (no Kafka): what
Confluent's registry answers, route by route."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.testclient import TestClient

from klamm.schema import records
from klamm.schema.log import MemoryLog

Api = tuple[TestClient, MemoryLog]
MEDIA = "application/vnd.schemaregistry.v1+json"


def avro(name: str = "R", *fields: dict[str, Any]) -> str:
    return json.dumps(
        {"type": "record", "name": name, "fields": list(fields)}, separators=(",", ":")
    )


def register(client: TestClient, subject: str, schema: str, **body: Any) -> Any:
    return client.post(f"/subjects/{subject}/versions", json={"schema": schema, **body})


def error(response: Any) -> tuple[int, int]:
    return response.status_code, response.json()["error_code"]


def test_register_is_idempotent_and_ids_are_global(memory_registry: Api) -> None:
    client, _ = memory_registry
    r = register(client, "a", avro())
    assert r.status_code == 200 and r.json() == {"id": 1}
    assert r.headers["content-type"] == MEDIA
    assert register(client, "a", avro()).json() == {"id": 1}  # no new version
    assert register(client, "b", avro()).json() == {"id": 1}  # same schema, same id
    assert client.get("/subjects/a/versions").json() == [1]
    assert client.get("/schemas/ids/1/versions").json() == [
        {"subject": "a", "version": 1},
        {"subject": "b", "version": 1},
    ]
    assert client.get("/schemas/ids/1/subjects").json() == ["a", "b"]
    assert client.get("/schemas/ids/1/schema").text == avro()


def test_records_are_confluents_format(memory_registry: Api) -> None:
    client, log = memory_registry
    register(client, "orders-value", avro())
    client.put("/config/orders-value", json={"compatibility": "FULL"})
    key, value = log.records[0]
    assert key == b'{"keytype":"SCHEMA","subject":"orders-value","version":1,"magic":1}'
    assert json.loads(value or b"") == {
        "subject": "orders-value",
        "version": 1,
        "id": 1,
        "schema": avro(),
        "deleted": False,
    }
    assert log.records[1] == (
        b'{"keytype":"CONFIG","subject":"orders-value","magic":0}',
        b'{"compatibilityLevel":"FULL"}',
    )


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("get", "/subjects/none/versions", None, 404, 40401),
        ("get", "/subjects/a/versions/7", None, 404, 40402),
        ("get", "/subjects/a/versions/zero", None, 422, 42202),
        ("get", "/schemas/ids/99", None, 404, 40403),
        ("post", "/subjects/a", {"schema": '"int"'}, 404, 40403),
        ("post", "/subjects/none", {"schema": '"int"'}, 404, 40401),
        ("post", "/subjects/a/versions", {"schema": "{not json"}, 422, 42201),
        ("post", "/subjects/a/versions", {"schema": '"x"', "schemaType": "XML"}, 422, 42201),
        ("post", "/subjects/a/versions", {"nothing": 1}, 422, 42201),
        ("put", "/config", {"compatibility": "SOMETIMES"}, 422, 42203),
        ("put", "/mode", {"mode": "WRITEONLY"}, 422, 42204),
        ("get", "/config/a", None, 404, 40408),
        ("get", "/mode/a", None, 404, 40409),
        ("delete", "/subjects/a?permanent=true", None, 404, 40405),
        ("delete", "/subjects/a/versions/1?permanent=true", None, 404, 40407),
        ("get", "/no/such/route", None, 404, 404),
    ],
)
def test_error_codes(memory_registry: Api, method: str, path: str, body: Any, status: int,
                     code: int) -> None:  # fmt: skip
    client, _ = memory_registry
    register(client, "a", avro())
    response = client.request(method.upper(), path, json=body)
    assert error(response) == (status, code), response.text


def test_soft_then_hard_delete(memory_registry: Api) -> None:
    client, _ = memory_registry
    client.put("/config", json={"compatibility": "NONE"})
    register(client, "s", avro("A"))
    register(client, "s", avro("B"))
    assert client.delete("/subjects/s/versions/1").json() == 1
    assert client.get("/subjects/s/versions").json() == [2]
    assert client.get("/subjects/s/versions?deleted=true").json() == [1, 2]
    assert error(client.get("/subjects/s/versions/1")) == (404, 40402)
    assert client.get("/subjects/s/versions/1?deleted=true").json()["id"] == 1
    assert client.get("/schemas/ids/1").status_code == 200  # ids outlive soft deletes
    assert client.delete("/subjects/s").json() == [2]
    assert client.get("/subjects").json() == []
    assert client.get("/subjects?deleted=true").json() == ["s"]
    assert error(client.delete("/subjects/s")) == (404, 40404)
    assert client.delete("/subjects/s?permanent=true").json() == [1, 2]
    assert client.get("/subjects?deleted=true").json() == []
    # A hard-deleted schema's id is never reissued to another schema.
    assert register(client, "t", avro("C")).json() == {"id": 3}


def test_config_levels_and_default_to_global(memory_registry: Api) -> None:
    client, _ = memory_registry
    assert client.get("/config").json() == {"compatibilityLevel": "BACKWARD"}
    assert client.put("/config/s", json={"compatibility": "full_transitive"}).json() == {
        "compatibility": "FULL_TRANSITIVE"
    }
    assert client.get("/config/s").json() == {"compatibilityLevel": "FULL_TRANSITIVE"}
    assert client.get("/config/other?defaultToGlobal=true").json() == {
        "compatibilityLevel": "BACKWARD"
    }
    assert client.delete("/config/s").json() == {"compatibilityLevel": "FULL_TRANSITIVE"}
    assert client.get("/config/s?defaultToGlobal=true").json() == {"compatibilityLevel": "BACKWARD"}


def test_compatibility_endpoint_verbose(memory_registry: Api) -> None:
    client, _ = memory_registry
    register(client, "s", avro("R", {"name": "a", "type": "int"}))
    breaking = avro("R", {"name": "a", "type": "int"}, {"name": "b", "type": "int"})
    path = "/compatibility/subjects/s/versions/latest"
    assert client.post(path, json={"schema": breaking}).json() == {"is_compatible": False}
    verbose = client.post(path + "?verbose=true", json={"schema": breaking}).json()
    assert verbose["is_compatible"] is False and "b" in verbose["messages"][0]
    assert error(register(client, "s", breaking)) == (409, 409)


def test_modes(memory_registry: Api) -> None:
    client, _ = memory_registry
    register(client, "s", avro("A"))
    assert client.put("/mode/s", json={"mode": "READONLY"}).json() == {"mode": "READONLY"}
    assert error(register(client, "s", avro("B"))) == (422, 42205)
    assert error(client.delete("/subjects/s")) == (422, 42205)
    assert register(client, "t", avro("B")).status_code == 200  # other subjects unaffected
    assert client.delete("/mode/s").json() == {"mode": "READONLY"}
    # IMPORT keeps ids and versions as given, and needs an empty registry (or force).
    assert error(client.put("/mode", json={"mode": "IMPORT"})) == (422, 42205)
    assert client.put("/mode?force=true", json={"mode": "IMPORT"}).json() == {"mode": "IMPORT"}
    assert register(client, "imported", avro("C"), id=100, version=7).json() == {"id": 100}
    assert client.get("/subjects/imported/versions").json() == [7]
    taken = register(client, "imported", avro("E"), id=102, version=7)
    assert error(taken) == (422, 42205)
    assert error(register(client, "other", avro("E"), id=100)) == (422, 42205)  # id names C
    client.put("/mode", json={"mode": "READWRITE"})
    assert error(register(client, "x", avro("D"), id=200)) == (422, 42205)
    assert register(client, "x", avro("D")).json() == {"id": 101}


def test_references_and_referenced_by(memory_registry: Api) -> None:
    client, _ = memory_registry
    address = json.dumps({"type": "record", "name": "Address", "namespace": "shop",
                          "fields": [{"name": "city", "type": "string"}]})  # fmt: skip
    register(client, "address", address)
    customer = avro("Customer", {"name": "home", "type": "shop.Address"})
    ref = [{"name": "shop.Address", "subject": "address", "version": 1}]
    assert register(client, "customer", customer).status_code == 422  # unresolved without refs
    assert register(client, "customer", customer, references=ref).json() == {"id": 2}
    got = client.get("/subjects/customer/versions/1").json()
    assert got["references"] == ref
    assert client.get("/subjects/address/versions/1/referencedby").json() == [2]
    assert error(client.delete("/subjects/address")) == (422, 42206)


def test_normalize_finds_reformatted_schema(memory_registry: Api) -> None:
    client, _ = memory_registry
    compact = '{"type":"record","name":"R","namespace":"n","fields":[{"name":"a","type":"int"}]}'
    spaced = json.dumps(json.loads(compact), indent=2)
    assert register(client, "s", compact, **{}).json() == {"id": 1}
    assert client.post("/subjects/s", json={"schema": spaced}).json()["id"] == 1  # compact JSON
    r = client.post("/subjects/s/versions?normalize=true", json={"schema": spaced})
    assert r.status_code == 200


def test_oversized_and_malformed_bodies(memory_registry: Api) -> None:
    client, _ = memory_registry
    bad = client.post("/subjects/s/versions", content=b"{oops", headers={"Content-Type": MEDIA})
    assert bad.status_code == 422 and bad.json()["error_code"] == 422
    assert client.get("/subjects").json() == []


def test_malformed_log_records_are_skipped(memory_registry: Api) -> None:
    client, log = memory_registry
    for key, value in [(b"not json", b"{}"), (records.schema_key("s", 1), b'{"id": "x"}'),
                       (b"[1]", None)]:  # fmt: skip
        log.state.replay(key, value)
    assert register(client, "s", avro()).json() == {"id": 1}
