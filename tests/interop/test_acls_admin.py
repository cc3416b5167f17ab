"""Every client's admin ACL calls against klamm's authorizer (issue 13): confluent-kafka's
(librdkafka), kafka-python's, KafkaJS's (js/acls_admin.js) and klamm's own client create,
describe (MATCH, LITERAL, PREFIXED filters) and delete ACLs; without an authorizer they get
Kafka's SECURITY_DISABLED; over SASL only a principal with ALTER on the cluster creates ACLs.

The secured broker's PLAINTEXT connections are User:ANONYMOUS, a super user there; each test
works on ACLs of its own principal, so tests sharing the broker do not see each other's."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)

with warnings.catch_warnings():  # kafka-python 3.0.12: see test_core_kafka_python.py
    warnings.simplefilter("ignore", DeprecationWarning)
    import kafka.admin as kp
    from kafka.errors import ClusterAuthorizationFailedError, NoError, SecurityDisabledError

from klamm import Kafka
from klamm.broker.config import AUTHORIZER_CLASSES
from klamm.client.errors import RequestError
from klamm.testing import EmbeddedBroker
from tests.interop.auth_support import USERS, librdkafka_conf, sasl_settings
from tests.interop.interop_helpers import NodeRunner

pytestmark = pytest.mark.timeout(60)

AUTHORIZER = AUTHORIZER_CLASSES[0]
TOPIC, LITERAL, PREFIXED = (
    ResourceType.TOPIC,
    ResourcePatternType.LITERAL,
    ResourcePatternType.PREFIXED,
)
READ, WRITE, ALLOW, DENY = (AclOperation.READ, AclOperation.WRITE, AclPermissionType.ALLOW,
                            AclPermissionType.DENY)  # fmt: skip


@pytest.fixture(scope="module")
def secured() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(authorizer_class_name=AUTHORIZER, super_users=("User:ANONYMOUS",)) as b:
        yield b


def rd_admin(bootstrap: str, **extra: Any) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap, **extra})


def rd_filter(principal: str, name: str | None, pattern: ResourcePatternType) -> AclBindingFilter:
    return AclBindingFilter(TOPIC, name, pattern, principal, None, AclOperation.ANY,
                            AclPermissionType.ANY)  # fmt: skip


def rd_rows(bindings: list[AclBinding]) -> list[tuple[str, str, str, str]]:
    return sorted(
        (b.name, b.resource_pattern_type.name, b.operation.name, b.permission_type.name)
        for b in bindings
    )


def test_confluent_create_describe_delete_with_filters(
    secured: EmbeddedBroker, unique: str
) -> None:
    principal, p = f"User:cf-{unique}", f"cf{unique}-"
    admin = rd_admin(secured.bootstrap)
    acls = [
        AclBinding(TOPIC, f"{p}orders", LITERAL, principal, "*", READ, ALLOW),
        AclBinding(TOPIC, f"{p}ord", PREFIXED, principal, "*", WRITE, ALLOW),
        AclBinding(TOPIC, f"{p}orders", LITERAL, principal, "*", WRITE, DENY),
        AclBinding(TOPIC, "*", LITERAL, principal, "10.1.1.1", READ, ALLOW),
    ]
    for future in admin.create_acls(acls).values():
        assert future.result(timeout=15) is None

    def described(name: str | None, pattern: ResourcePatternType) -> list[tuple[str, ...]]:
        return rd_rows(admin.describe_acls(rd_filter(principal, name, pattern)).result(timeout=15))

    # MATCH: every pattern that applies to the topic, the `*` wildcard included.
    assert described(f"{p}orders", ResourcePatternType.MATCH) == [
        ("*", "LITERAL", "READ", "ALLOW"),
        (f"{p}ord", "PREFIXED", "WRITE", "ALLOW"),
        (f"{p}orders", "LITERAL", "READ", "ALLOW"),
        (f"{p}orders", "LITERAL", "WRITE", "DENY"),
    ]
    assert described(f"{p}orders", LITERAL) == [
        (f"{p}orders", "LITERAL", "READ", "ALLOW"),
        (f"{p}orders", "LITERAL", "WRITE", "DENY"),
    ]
    assert described(None, PREFIXED) == [(f"{p}ord", "PREFIXED", "WRITE", "ALLOW")]
    assert described(f"{p}orders", PREFIXED) == []  # PREFIXED names the pattern exactly
    deleted = admin.delete_acls([rd_filter(principal, f"{p}orders", LITERAL)])
    (gone,) = deleted.values()
    assert rd_rows(gone.result(timeout=15)) == [
        (f"{p}orders", "LITERAL", "READ", "ALLOW"),
        (f"{p}orders", "LITERAL", "WRITE", "DENY"),
    ]
    assert described(None, ResourcePatternType.ANY) == [
        ("*", "LITERAL", "READ", "ALLOW"),
        (f"{p}ord", "PREFIXED", "WRITE", "ALLOW"),
    ]


def test_confluent_invalid_acl_is_refused_with_kafkas_message(secured: EmbeddedBroker) -> None:
    admin = rd_admin(secured.bootstrap)
    bad = AclBinding(ResourceType.BROKER, "other", LITERAL, "User:x", "*", READ, ALLOW)
    # librdkafka names the CLUSTER resource BROKER (code 4).
    (future,) = admin.create_acls([bad]).values()
    with pytest.raises(KafkaException) as failed:
        future.result(timeout=15)
    error = failed.value.args[0]
    assert error.code() == KafkaError.INVALID_REQUEST
    assert "The only valid name for the CLUSTER resource is kafka-cluster" in error.str()


def test_kafka_python_create_describe_delete_with_filters(
    secured: EmbeddedBroker, unique: str
) -> None:
    principal, p = f"User:kp-{unique}", f"kp{unique}-"
    admin = kp.KafkaAdminClient(bootstrap_servers=secured.bootstrap, request_timeout_ms=10_000)
    try:
        acls = [
            kp.ACL(principal, "*", kp.ACLOperation.READ, kp.ACLPermissionType.ALLOW,
                   kp.ResourcePattern(kp.ResourceType.TOPIC, f"{p}orders")),
            kp.ACL(principal, "*", kp.ACLOperation.WRITE, kp.ACLPermissionType.ALLOW,
                   kp.ResourcePattern(kp.ResourceType.TOPIC, f"{p}ord",
                                      kp.ACLResourcePatternType.PREFIXED)),
        ]  # fmt: skip
        created = admin.create_acls(acls)
        assert (len(created["succeeded"]), created["failed"]) == (2, [])

        def described(name: str | None, pattern: Any) -> list[tuple[str, str]]:
            found, error = admin.describe_acls(
                kp.ACLFilter(principal, None, kp.ACLOperation.ANY, kp.ACLPermissionType.ANY,
                             kp.ResourcePatternFilter(kp.ResourceType.TOPIC, name, pattern))
            )  # fmt: skip
            assert error is NoError
            return sorted((a.resource_pattern.resource_name, a.resource_pattern.pattern_type.name)
                          for a in found)  # fmt: skip

        assert described(f"{p}orders", kp.ACLResourcePatternType.MATCH) == [
            (f"{p}ord", "PREFIXED"), (f"{p}orders", "LITERAL"),
        ]  # fmt: skip
        assert described(f"{p}orders", kp.ACLResourcePatternType.LITERAL) == [
            (f"{p}orders", "LITERAL")
        ]
        assert described(None, kp.ACLResourcePatternType.PREFIXED) == [(f"{p}ord", "PREFIXED")]
        ((_, matching, error),) = admin.delete_acls([
            kp.ACLFilter(principal, None, kp.ACLOperation.ANY, kp.ACLPermissionType.ANY,
                         kp.ResourcePatternFilter(kp.ResourceType.ANY, None,
                                                  kp.ACLResourcePatternType.ANY))
        ])  # fmt: skip
        assert error.errno == 0
        assert len(matching) == 2
        assert described(None, kp.ACLResourcePatternType.ANY) == []
    finally:
        admin.close()


def test_kafkajs_create_describe_delete_with_filters(
    secured: EmbeddedBroker, node: NodeRunner, unique: str
) -> None:
    prefix = f"kjs{unique}-"
    out = node("acls_admin.js", {"bootstrap": secured.bootstrap, "principal": f"User:kjs-{unique}",
                                 "prefix": prefix})  # fmt: skip
    assert "error" not in out, out
    assert out["created"] is True
    # Rows: [name, pattern type, operation, permission] with Kafka's codes.
    assert out["match"] == sorted([
        [f"{prefix}ord", 4, 4, 3], [f"{prefix}orders", 3, 3, 3], [f"{prefix}orders", 3, 4, 2],
    ])  # fmt: skip
    assert out["literal"] == sorted([[f"{prefix}orders", 3, 3, 3], [f"{prefix}orders", 3, 4, 2]])
    assert out["prefixed"] == [[f"{prefix}ord", 4, 4, 3]]
    assert out["deleted"] == [{"errorCode": 0, "matching": [[f"{prefix}ord", 4, 4]]}]
    assert out["after"] == sorted([[f"{prefix}orders", 3, 3, 3], [f"{prefix}orders", 3, 4, 2]])


def test_klamm_client_create_describe_delete(secured: EmbeddedBroker, unique: str) -> None:
    principal = f"User:klamm-{unique}"

    async def run() -> tuple[Any, Any, Any]:
        async with Kafka(brokers=[secured.bootstrap]).admin() as admin:
            await admin.create_acls(acl=[{
                "resource_type": "TOPIC", "resource_name": f"k{unique}", "resource_pattern_type":
                "PREFIXED", "principal": principal, "host": "*", "operation": "READ",
                "permission_type": "ALLOW",
            }])  # fmt: skip
            found = await admin.describe_acls(
                resource_type="TOPIC", resource_name=f"k{unique}-orders",
                resource_pattern_type="MATCH", principal=principal,
            )  # fmt: skip
            deleted = await admin.delete_acls(filters=[{"principal": principal}])
            after = await admin.describe_acls(principal=principal)
            return found, deleted, after

    found, deleted, after = asyncio.run(run())
    (resource,) = found["resources"]
    assert (resource["resource_name"], int(resource["resource_pattern_type"])) == (f"k{unique}", 4)
    assert [int(a["operation"]) for a in resource["acls"]] == [3]
    assert len(deleted["filter_responses"][0]["match_acls"]) == 1
    assert after == {"resources": []}


# --- without an authorizer: SECURITY_DISABLED, as Kafka answers ---------------------------------


def test_every_client_hears_security_disabled_without_an_authorizer(
    bootstrap: str, node: NodeRunner
) -> None:
    binding = AclBinding(TOPIC, "t", LITERAL, "User:a", "*", READ, ALLOW)
    rd = rd_admin(bootstrap)  # held: librdkafka fails a destroyed handle's futures
    (future,) = rd.create_acls([binding]).values()
    with pytest.raises(KafkaException) as failed:
        future.result(timeout=15)
    assert failed.value.args[0].code() == KafkaError.SECURITY_DISABLED
    admin = kp.KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        with pytest.raises(SecurityDisabledError):
            admin.describe_acls(
                kp.ACLFilter(None, None, kp.ACLOperation.ANY, kp.ACLPermissionType.ANY,
                             kp.ResourcePatternFilter(kp.ResourceType.ANY, None,
                                                      kp.ACLResourcePatternType.ANY))
            )  # fmt: skip
    finally:
        admin.close()
    out = node("acls_admin.js", {"bootstrap": bootstrap, "principal": "User:a", "prefix": "x",
                                 "disabled": True})  # fmt: skip
    assert out["error"]["type"] == "SECURITY_DISABLED", out


# --- over SASL: who may manage ACLs -------------------------------------------------------------


@pytest.fixture(scope="module")
def sasl_secured() -> Iterator[EmbeddedBroker]:
    settings = sasl_settings()
    with EmbeddedBroker(**settings, authorizer_class_name=AUTHORIZER,
                        super_users=("User:alice",)) as broker:  # fmt: skip
        yield broker


def test_only_a_principal_with_alter_on_the_cluster_creates_acls(
    sasl_secured: EmbeddedBroker,
) -> None:
    def admin_as(user: str) -> AdminClient:
        conf = librdkafka_conf(sasl_secured.bootstrap, "SASL_PLAINTEXT", "PLAIN", user)
        return AdminClient(conf)

    binding = AclBinding(TOPIC, "payments", LITERAL, "User:bob", "*", READ, ALLOW)
    bob, alice = admin_as("bob"), admin_as("alice")  # held until their answers are in
    (as_bob,) = bob.create_acls([binding]).values()
    with pytest.raises(KafkaException) as failed:
        as_bob.result(timeout=15)
    assert failed.value.args[0].code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED
    (as_alice,) = alice.create_acls([binding]).values()  # a super user
    assert as_alice.result(timeout=15) is None
    kp_bob = kp.KafkaAdminClient(
        bootstrap_servers=sasl_secured.bootstrap, security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN", sasl_plain_username="bob", sasl_plain_password=USERS["bob"],
        request_timeout_ms=10_000,
    )  # fmt: skip
    try:
        with pytest.raises(ClusterAuthorizationFailedError):
            kp_bob.describe_acls(
                kp.ACLFilter(None, None, kp.ACLOperation.ANY, kp.ACLPermissionType.ANY,
                             kp.ResourcePatternFilter(kp.ResourceType.ANY, None,
                                                      kp.ACLResourcePatternType.ANY))
            )  # fmt: skip
    finally:
        kp_bob.close()


def test_klamm_client_reports_refused_creations(secured: EmbeddedBroker) -> None:
    async def run() -> None:
        async with Kafka(brokers=[secured.bootstrap]).admin() as admin:
            await admin.create_acls(acl=[{
                "resource_type": "CLUSTER", "resource_name": "not-the-cluster",
                "resource_pattern_type": "LITERAL", "principal": "User:x", "host": "*",
                "operation": "ALTER", "permission_type": "ALLOW",
            }])  # fmt: skip

    with pytest.raises(RequestError, match="INVALID_REQUEST"):
        asyncio.run(run())
