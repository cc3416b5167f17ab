"""Principals x operations x resources through real clients (issue 13): confluent-kafka,
kafka-python and KafkaJS against a SASL broker with the StandardAuthorizer, ACLs created
through confluent-kafka's admin API by a super user.

    alice  READ topic t, READ groups alice-*       -> reads t, cannot write it
           READ+WRITE PREFIXED app-                 -> produces and consumes app-orders
           DENY READ app-secret (beats the prefix)  -> cannot read app-secret
           WRITE transactional id alice-tx          -> transactions as alice-tx only
    bob    nothing                                  -> denied everywhere, t not listed
    admin  super user                               -> everything
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from klamm.testing import EmbeddedBroker
from tests.broker.authz_helpers import STANDARD_AUTHORIZER
from tests.interop.auth_support import FAST_GROUPS
from tests.interop.interop_helpers import NodeRunner

pytestmark = pytest.mark.timeout(90)

USERS = {"admin": "admin-pw", "alice": "alice-pw", "bob": "bob-pw"}
COUNT = 5
VALUES = [f"v{i}" for i in range(COUNT)]
TOPIC_AUTHORIZATION_FAILED, GROUP_AUTHORIZATION_FAILED = 29, 30
TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53


def _group() -> str:
    """A group of alice's (each consumer starts from the beginning)."""
    return f"alice-{uuid.uuid4().hex[:8]}"


def _conf(broker: EmbeddedBroker, user: str) -> dict[str, Any]:
    return {
        "bootstrap.servers": broker.bootstrap, "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "PLAIN", "sasl.username": user, "sasl.password": USERS[user],
    }  # fmt: skip


def _acls(broker: EmbeddedBroker) -> None:
    from confluent_kafka.admin import (
        AclBinding,
        AclOperation,
        AclPermissionType,
        AdminClient,
        NewTopic,
        ResourcePatternType,
        ResourceType,
    )

    admin = AdminClient(_conf(broker, "admin"))
    literal, prefixed = ResourcePatternType.LITERAL, ResourcePatternType.PREFIXED
    allow, deny = AclPermissionType.ALLOW, AclPermissionType.DENY
    read, write = AclOperation.READ, AclOperation.WRITE
    alice = "User:alice"
    bindings = [
        AclBinding(ResourceType.TOPIC, "t", literal, alice, "*", read, allow),
        AclBinding(ResourceType.GROUP, "alice-", prefixed, alice, "*", read, allow),
        AclBinding(ResourceType.TOPIC, "app-", prefixed, alice, "*", read, allow),
        AclBinding(ResourceType.TOPIC, "app-", prefixed, alice, "*", write, allow),
        AclBinding(ResourceType.TOPIC, "app-secret", literal, alice, "*", read, deny),
        AclBinding(ResourceType.TRANSACTIONAL_ID, "alice-tx", literal, alice, "*", write, allow),
    ]
    for future in admin.create_acls(bindings, request_timeout=10).values():
        assert future.result(timeout=10) is None
    topics = [NewTopic(name, 1, 1) for name in ("t", "app-orders", "app-secret")]
    for future in admin.create_topics(topics, operation_timeout=10).values():
        future.result(timeout=10)


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(
        security_protocol="SASL_PLAINTEXT", sasl_users=USERS, sasl_mechanisms=("PLAIN",),
        authorizer_class_name=STANDARD_AUTHORIZER, super_users=("User:admin",), **FAST_GROUPS,
    ) as b:  # fmt: skip
        _acls(b)
        for topic in ("t", "app-secret"):
            assert _produce(b, "admin", topic) == []
        yield b


# --- confluent-kafka ------------------------------------------------------------------------------


def _produce(broker: EmbeddedBroker, user: str, topic: str, **conf: Any) -> list[int]:
    """The error codes of `COUNT` deliveries to `topic` ([] when all were delivered)."""
    from confluent_kafka import Producer

    errors: list[int] = []
    producer = Producer({**_conf(broker, user), "message.timeout.ms": 10_000, **conf})
    for value in VALUES:
        producer.produce(
            topic, value.encode(), callback=lambda err, _: err and errors.append(err.code())
        )
    assert producer.flush(20) == 0
    return errors


def _consume(
    broker: EmbeddedBroker, user: str, topic: str, group: str
) -> tuple[list[str], set[int]]:
    """(values read, error codes seen) until COUNT values or the first error, at most 20 s."""
    from confluent_kafka import Consumer

    consumer = Consumer({**_conf(broker, user), "group.id": group,
                         "auto.offset.reset": "earliest"})  # fmt: skip
    values: list[str] = []
    errors: set[int] = set()
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(values) < COUNT and not errors:
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error():
                errors.add(message.error().code())
            else:
                values.append(message.value().decode())
    finally:
        consumer.close()
    return values, errors


def _topics(broker: EmbeddedBroker, user: str) -> set[str]:
    from confluent_kafka.admin import AdminClient

    listed = AdminClient(_conf(broker, user)).list_topics(timeout=10).topics
    return {name for name in listed if not name.startswith("__")}


def test_confluent_alice_reads_t_but_cannot_write_it(broker: EmbeddedBroker) -> None:
    assert set(_produce(broker, "alice", "t")) == {TOPIC_AUTHORIZATION_FAILED}
    assert _consume(broker, "alice", "t", _group()) == (VALUES, set())


def test_confluent_consumer_group_needs_group_read(broker: EmbeddedBroker) -> None:
    values, errors = _consume(broker, "alice", "t", f"other-{uuid.uuid4().hex[:6]}")
    assert (values, errors) == ([], {GROUP_AUTHORIZATION_FAILED})


def test_confluent_bob_is_denied_everywhere(broker: EmbeddedBroker) -> None:
    assert _topics(broker, "bob") == set()
    assert set(_produce(broker, "bob", "t")) == {TOPIC_AUTHORIZATION_FAILED}
    values, errors = _consume(broker, "bob", "t", _group())
    assert values == [] and errors <= {TOPIC_AUTHORIZATION_FAILED, GROUP_AUTHORIZATION_FAILED}
    assert errors


def test_confluent_prefixed_acl_grants_app_orders(broker: EmbeddedBroker) -> None:
    assert _topics(broker, "alice") == {"t", "app-orders", "app-secret"}
    assert _produce(broker, "alice", "app-orders") == []
    assert _consume(broker, "alice", "app-orders", _group()) == (VALUES, set())


def test_confluent_deny_beats_allow(broker: EmbeddedBroker) -> None:
    values, errors = _consume(broker, "alice", "app-secret", _group())
    assert (values, errors) == ([], {TOPIC_AUTHORIZATION_FAILED})
    assert _produce(broker, "alice", "app-secret") == []  # only READ is denied


def test_confluent_super_user_does_everything(broker: EmbeddedBroker) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    name = f"admin-{uuid.uuid4().hex[:6]}"
    admin = AdminClient(_conf(broker, "admin"))
    admin.create_topics([NewTopic(name, 1, 1)], operation_timeout=10)[name].result(timeout=10)
    assert _produce(broker, "admin", name) == []
    assert _consume(broker, "admin", name, f"any-{name}") == (VALUES, set())
    admin.delete_topics([name], operation_timeout=10)[name].result(timeout=10)


def test_confluent_transactional_producer_needs_transactional_id_write(
    broker: EmbeddedBroker,
) -> None:
    from confluent_kafka import KafkaException, Producer

    producer = Producer({**_conf(broker, "alice"), "transactional.id": "alice-tx"})
    producer.init_transactions(10)
    producer.begin_transaction()
    producer.produce("app-orders", b"in-a-transaction")
    producer.commit_transaction(10)
    refused = Producer({**_conf(broker, "alice"), "transactional.id": "someone-elses-tx"})
    with pytest.raises(KafkaException) as failure:
        refused.init_transactions(10)
    assert failure.value.args[0].code() == TRANSACTIONAL_ID_AUTHORIZATION_FAILED


# --- kafka-python ---------------------------------------------------------------------------------


def _kp(user: str) -> dict[str, Any]:
    return {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN",
            "sasl_plain_username": user, "sasl_plain_password": USERS[user]}  # fmt: skip


def test_kafka_python_matrix(broker: EmbeddedBroker) -> None:
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.errors import TopicAuthorizationFailedError

    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, retries=0, **_kp("alice"))
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            producer.send("t", b"nope").get(timeout=10)
        assert producer.send("app-orders", b"yes").get(timeout=10).offset >= 0
    finally:
        producer.close()
    consumer = KafkaConsumer(
        "t", bootstrap_servers=broker.bootstrap, group_id=_group(), auto_offset_reset="earliest",
        enable_auto_commit=False, consumer_timeout_ms=10_000, **_kp("alice"),
    )  # fmt: skip
    try:
        values = []
        for message in consumer:
            values.append(message.value.decode())
            if len(values) == COUNT:
                break
    finally:
        consumer.close()
    assert values == VALUES
    bob = KafkaConsumer(bootstrap_servers=broker.bootstrap, **_kp("bob"))
    try:
        assert {t for t in bob.topics() if not t.startswith("__")} == set()
    finally:
        bob.close()


# --- KafkaJS --------------------------------------------------------------------------------------


def _js(node: NodeRunner, broker: EmbeddedBroker, user: str, action: str, **args: Any) -> Any:
    sasl = {"mechanism": "plain", "username": user, "password": USERS[user]}
    return node("acl_matrix.js", {"brokers": [broker.bootstrap], "sasl": sasl, "action": action,
                                  "count": COUNT, **args})  # fmt: skip


def test_kafkajs_matrix(node: NodeRunner, broker: EmbeddedBroker) -> None:
    refused = _js(node, broker, "alice", "produce", topic="t")
    assert refused["type"] == "TOPIC_AUTHORIZATION_FAILED", refused
    assert _js(node, broker, "alice", "consume", topic="t", groupId=_group()) == {"values": VALUES}
    other = _js(node, broker, "alice", "consume", topic="t", groupId="js-other-g")
    # FindCoordinator answers GROUP_AUTHORIZATION_FAILED (tests/broker/test_authorization_apis.py);
    # KafkaJS tries every broker and reports that none coordinates the group, as it does
    # against Kafka (cluster.findGroupCoordinatorMetadata drops each broker's error).
    assert other["error"] == "KafkaJSGroupCoordinatorNotFound", other
    assert _js(node, broker, "alice", "produce", topic="app-orders") == {"ok": True}
    assert _js(node, broker, "bob", "topics") == {"topics": []}
    assert _js(node, broker, "bob", "produce", topic="t")["type"] == "TOPIC_AUTHORIZATION_FAILED"
