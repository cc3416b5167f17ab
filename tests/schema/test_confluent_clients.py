"""confluent-kafka's SchemaRegistryClient and its Avro/JSON/Protobuf serializers, unchanged,
producing and consuming through klamm's broker and klamm's registry."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pool, message_factory

from klamm.schema.formats.protobuf import parse_protobuf
from tests.schema.schema_helpers import RunningRegistry

ORDER_AVRO = json.dumps(
    {
        "type": "record",
        "name": "Order",
        "namespace": "shop",
        "fields": [{"name": "id", "type": "string"}, {"name": "amount", "type": "double"}],
    }
)
ORDER_JSON = json.dumps(
    {
        "type": "object",
        "title": "Order",
        "properties": {"id": {"type": "string"}, "amount": {"type": "number"}},
        "required": ["id"],
    }
)
ORDER_PROTO = (
    'syntax = "proto3";\npackage shop;\nmessage Order { string id = 1; double amount = 2; }\n'
)


@pytest.fixture
def sr() -> Iterator[Callable[[str], SchemaRegistryClient]]:
    """SchemaRegistryClient factory; every client's HTTP session is closed at teardown."""
    made: list[SchemaRegistryClient] = []

    def make(url: str) -> SchemaRegistryClient:
        made.append(SchemaRegistryClient({"url": url}))
        return made[-1]

    yield make
    for client in made:
        client.close()


def _round_trip(
    bootstrap: str, topic: str, serialize: Any, deserialize: Any, values: list[Any]
) -> list[Any]:
    producer = Producer({"bootstrap.servers": bootstrap})
    for value in values:
        ctx = SerializationContext(topic, MessageField.VALUE)
        producer.produce(topic, value=serialize(value, ctx))
    assert producer.flush(30) == 0
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"g-{topic}", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    out: list[Any] = []
    try:
        for _ in range(200):
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            out.append(deserialize(msg.value(), SerializationContext(topic, MessageField.VALUE)))
            if len(out) == len(values):
                break
    finally:
        consumer.close()
    return out


def test_avro_serializer_round_trip(
    sr: Any, kafka_broker: Any, registry: RunningRegistry, unique: str
) -> None:
    client = sr(registry.url)
    topic = f"avro-{unique}"
    values = [{"id": "o1", "amount": 9.5}, {"id": "o2", "amount": 0.0}]
    got = _round_trip(
        kafka_broker.bootstrap,
        topic,
        AvroSerializer(client, ORDER_AVRO),
        AvroDeserializer(client),
        values,
    )
    assert got == values
    latest = client.get_latest_version(f"{topic}-value")
    assert latest.version == 1 and latest.schema.schema_type == "AVRO"


def test_avro_incompatible_schema_rejected_with_409(
    sr: Any, registry: RunningRegistry, unique: str
) -> None:
    client = sr(registry.url)
    subject = f"inc-{unique}-value"
    client.register_schema(subject, Schema(ORDER_AVRO, "AVRO"))
    broken = json.loads(ORDER_AVRO)
    broken["fields"].append({"name": "customer", "type": "string"})  # no default: BACKWARD breaks
    with pytest.raises(SchemaRegistryError) as info:
        client.register_schema(subject, Schema(json.dumps(broken), "AVRO"))
    assert info.value.http_status_code == 409 and info.value.error_code == 409
    assert client.test_compatibility(subject, Schema(json.dumps(broken), "AVRO")) is False
    client.set_compatibility(subject, "NONE")
    assert client.register_schema(subject, Schema(json.dumps(broken), "AVRO")) > 0


def test_json_serializer_round_trip(
    sr: Any, kafka_broker: Any, registry: RunningRegistry, unique: str
) -> None:
    client = sr(registry.url)
    topic = f"json-{unique}"
    values = [{"id": "o1", "amount": 1.25}, {"id": "o2"}]
    got = _round_trip(
        kafka_broker.bootstrap,
        topic,
        JSONSerializer(ORDER_JSON, client),
        JSONDeserializer(ORDER_JSON, schema_registry_client=client),
        values,
    )
    assert got == values


def test_protobuf_serializer_round_trip(
    sr: Any, kafka_broker: Any, registry: RunningRegistry, unique: str
) -> None:
    pool = descriptor_pool.DescriptorPool()
    fd = parse_protobuf(ORDER_PROTO.replace("package shop", f"package shop{unique}"), {}).descriptor
    fd.name = f"order_{unique}.proto"
    pool.Add(fd)
    order = message_factory.GetMessageClass(pool.FindMessageTypeByName(f"shop{unique}.Order"))
    client = sr(registry.url)
    topic = f"proto-{unique}"
    values = [order(id="o1", amount=2.5), order(id="o2")]
    got = _round_trip(
        kafka_broker.bootstrap,
        topic,
        ProtobufSerializer(order, client, {"use.deprecated.format": False}),
        ProtobufDeserializer(order, {"use.deprecated.format": False}, client),
        values,
    )
    assert got == values
    registered = client.get_latest_version(f"{topic}-value")
    assert registered.schema.schema_type == "PROTOBUF"


def test_registry_state_survives_a_restart(sr: Any, kafka_broker: Any, unique: str) -> None:
    topic = f"_schemas-{unique}"
    with RunningRegistry(kafka_broker.bootstrap, topic) as first:
        client = sr(first.url)
        sid = client.register_schema(f"s-{unique}", Schema(ORDER_AVRO, "AVRO"))
        client.set_compatibility(f"s-{unique}", "FULL")
    with RunningRegistry(kafka_broker.bootstrap, topic) as second:
        client = sr(second.url)
        assert client.get_schema(sid).schema_str == json.dumps(
            json.loads(ORDER_AVRO), separators=(",", ":")
        )
        assert client.get_compatibility(f"s-{unique}") == "FULL"
        # The next id continues after the replayed ones.
        other = json.dumps({"type": "record", "name": "Other", "fields": []})
        assert client.register_schema(f"t-{unique}", Schema(other, "AVRO")) == sid + 1


def test_two_registries_on_one_topic_never_share_an_id(
    sr: Any, kafka_broker: Any, unique: str
) -> None:
    """Both registries allocate from the same state: a write by one fences the other, which then
    re-reads the log before choosing an id (log.py's concurrency contract)."""
    topic = f"_schemas-{unique}"
    with (
        RunningRegistry(kafka_broker.bootstrap, topic) as a,
        RunningRegistry(kafka_broker.bootstrap, topic) as b,
    ):
        clients = [sr(a.url), sr(b.url)]
        ids = {}
        for i in range(6):
            schema = json.dumps({"type": "record", "name": f"R{i}", "fields": []})
            ids[i] = clients[i % 2].register_schema(f"subject-{i}", Schema(schema, "AVRO"))
        assert sorted(ids.values()) == list(range(1, 7))
        for i, sid in ids.items():
            for client in clients:
                assert json.loads(client.get_schema(sid).schema_str)["name"] == f"R{i}"


async def test_registry_that_cannot_listen_raises_oserror(kafka_broker: Any, sr: Any) -> None:
    import socket

    from klamm.schema.server import RegistryServer

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        server = RegistryServer(kafka_broker.bootstrap, "127.0.0.1", busy.getsockname()[1])
        with pytest.raises(OSError, match="cannot listen"):
            await server.start()


def test_concurrent_registrations_on_two_registries_get_distinct_ids(
    sr: Any, kafka_broker: Any, unique: str
) -> None:
    """Registrations racing on two registries that share `_schemas`: every schema gets its own
    id, and both registries agree on what each id names."""
    import concurrent.futures

    topic = f"_schemas-race-{unique}"
    with (
        RunningRegistry(kafka_broker.bootstrap, topic) as a,
        RunningRegistry(kafka_broker.bootstrap, topic) as b,
    ):
        clients = [sr(a.url), sr(b.url)]
        clients[1].set_compatibility(level="NONE")  # distinct records share subjects here

        def register(i: int) -> tuple[int, int]:
            schema = json.dumps({"type": "record", "name": f"Race{i}", "fields": []})
            return i, clients[i % 2].register_schema(f"race-{i % 3}", Schema(schema, "AVRO"))

        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            ids = dict(pool.map(register, range(12)))
        assert len(set(ids.values())) == 12
        for i, sid in ids.items():
            for client in clients:
                assert json.loads(client.get_schema(sid).schema_str)["name"] == f"Race{i}"
        # Versions are dense per subject too: no two registrations took the same version.
        for subject in ("race-0", "race-1", "race-2"):
            assert clients[0].get_versions(subject) == [1, 2, 3, 4]


async def test_a_schemas_topic_with_several_partitions_is_refused(
    sr: Any, kafka_broker: Any, unique: str
) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    from klamm.schema.errors import StoreError
    from klamm.schema.server import RegistryServer

    topic = f"_schemas-split-{unique}"
    admin = AdminClient({"bootstrap.servers": kafka_broker.bootstrap})
    admin.create_topics([NewTopic(topic, 3)])[topic].result(30)
    server = RegistryServer(kafka_broker.bootstrap, "127.0.0.1", 0, topic=topic)
    with pytest.raises(StoreError, match="has 3 partitions"):
        await server.start()


def test_keep_alive_requests_do_not_wait_for_delayed_acks(
    sr: Any, registry: RunningRegistry
) -> None:
    """uvicorn writes a response's head and body separately; without TCP_NODELAY on the accepted
    socket the body waits for the client's delayed ACK, 40 ms a request on Linux. 20 requests on
    one connection take ~20 ms with it and >= 800 ms without; the bound is generous both ways."""
    import http.client
    import time
    from urllib.parse import urlsplit

    address = urlsplit(registry.url)
    conn = http.client.HTTPConnection(address.hostname or "", address.port, timeout=10)
    try:
        start = time.perf_counter()
        for _ in range(20):
            conn.request("GET", "/schemas/types")
            assert conn.getresponse().read() == b'["JSON", "PROTOBUF", "AVRO"]'
        elapsed = time.perf_counter() - start
    finally:
        conn.close()
    assert elapsed < 0.4, f"20 keep-alive requests took {elapsed * 1000:.0f} ms"
