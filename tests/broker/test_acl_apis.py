"""CreateAcls (30), DescribeAcls (29), DeleteAcls (31) on the wire, answered as Kafka's AclApis
answers them; the ACLs survive a SIGKILL; the authorizer's settings as Kafka names them.

A PLAINTEXT connection is User:ANONYMOUS, so these tests grant it (super user, or
allow.everyone.if.no.acl.found) what they need."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from klamm.broker.authorizer.acls import AclBinding
from klamm.broker.authorizer.model import (
    CLUSTER_NAME,
    Operation,
    PatternType,
    Permission,
    ResourceType,
)
from klamm.broker.authorizer.store import AclRecordSerde
from klamm.broker.config import (
    AUTHORIZER_CLASSES,
    BrokerConfig,
    ConfigFileError,
    config_from_properties,
)
from klamm.broker.coordinator_runtime import UnreadableRecord
from klamm.protocol.errors import ErrorCode
from klamm.storage.errors import KafkaStorageError
from klamm.storage.log import PartitionLog
from klamm.testing import EmbeddedBroker
from tests.broker.wire import Wire

DESCRIBE_ACLS, CREATE_ACLS, DELETE_ACLS = 29, 30, 31
TOPIC, GROUP, CLUSTER = 2, 3, 4
ANY, MATCH, LITERAL, PREFIXED = 1, 2, 3, 4
ALL, READ, WRITE, ALTER, DESCRIBE = 2, 3, 4, 7, 8
DENY, ALLOW = 2, 3
STANDARD = AUTHORIZER_CLASSES[0]
ONLY_CLUSTER = f"The only valid name for the CLUSTER resource is {CLUSTER_NAME}"


def creation(
    name: str = "t", op: int = READ, permission: int = ALLOW, principal: str = "User:alice",
    *, rtype: int = TOPIC, pattern: int = LITERAL, host: str = "*",
) -> dict[str, Any]:  # fmt: skip
    return {
        "resource_type": rtype, "resource_name": name, "resource_pattern_type": pattern,
        "principal": principal, "host": host, "operation": op, "permission_type": permission,
    }  # fmt: skip


def describe_filter(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "resource_type_filter": ANY, "resource_name_filter": None, "pattern_type_filter": ANY,
        "principal_filter": None, "host_filter": None, "operation": ANY, "permission_type": ANY,
    }  # fmt: skip
    return {**base, **fields}


def create(wire: Wire, *creations: dict[str, Any], version: int = 3) -> list[tuple[int, Any]]:
    response = wire.request(CREATE_ACLS, version, creations=list(creations))
    return [(r.error_code, r.error_message) for r in response.results]


def describe(wire: Wire, version: int = 3, **fields: Any) -> Any:
    return wire.request(DESCRIBE_ACLS, version, **describe_filter(**fields))


def described(wire: Wire, **fields: Any) -> set[tuple[Any, ...]]:
    response = describe(wire, **fields)
    assert response.error_code == ErrorCode.none, response.error_message
    return {
        (r.resource_type, r.resource_name, r.pattern_type, a.principal, a.host, a.operation,
         a.permission_type)
        for r in response.resources for a in r.acls
    }  # fmt: skip


def delete(wire: Wire, *filters: dict[str, Any], version: int = 3) -> Any:
    return wire.request(DELETE_ACLS, version, filters=list(filters)).filter_results


@pytest.fixture(scope="module")
def secured() -> Iterator[EmbeddedBroker]:
    config = BrokerConfig(authorizer_class_name=STANDARD, super_users=("User:ANONYMOUS",))
    with EmbeddedBroker(config=config) as broker:
        yield broker


@pytest.fixture
def wire(secured: EmbeddedBroker) -> Iterator[Wire]:
    with Wire(secured.bootstrap) as w:
        yield w
        delete(w, describe_filter())  # each test starts without ACLs


def test_without_an_authorizer_every_acl_api_says_security_disabled() -> None:
    with EmbeddedBroker() as broker, Wire(broker.bootstrap) as w:
        for version in (1, 2, 3):
            assert (
                create(w, creation(), creation("u"), version=version)
                == [(ErrorCode.security_disabled, "No Authorizer is configured.")] * 2
            )
            response = describe(w, version)
            assert (response.error_code, response.error_message, response.resources) == (
                ErrorCode.security_disabled, "No Authorizer is configured on the broker", (),
            )  # fmt: skip
            (result,) = delete(w, describe_filter(), version=version)
            assert (result.error_code, result.error_message, result.matching_acls) == (
                ErrorCode.security_disabled, "No Authorizer is configured.", (),
            )  # fmt: skip
        # Nothing was made for ACLs on a broker without an authorizer.
        assert broker.call(lambda: broker.broker.topic("__klamm_acls")) is None


@pytest.mark.parametrize("version", [1, 2, 3])
def test_create_describe_delete_round_trip(wire: Wire, version: int) -> None:
    assert create(
        wire, creation("t", READ), creation("t", WRITE, DENY, "User:*"),
        creation("orders-", WRITE, pattern=PREFIXED), creation("g", ALL, rtype=GROUP),
        creation("kafka-cluster", ALTER, principal="User:admin", rtype=CLUSTER, host="10.0.0.1"),
        version=version,
    ) == [(ErrorCode.none, None)] * 5  # fmt: skip
    everything = {
        (TOPIC, "t", LITERAL, "User:alice", "*", READ, ALLOW),
        (TOPIC, "t", LITERAL, "User:*", "*", WRITE, DENY),
        (TOPIC, "orders-", PREFIXED, "User:alice", "*", WRITE, ALLOW),
        (GROUP, "g", LITERAL, "User:alice", "*", ALL, ALLOW),
        (CLUSTER, "kafka-cluster", LITERAL, "User:admin", "10.0.0.1", ALTER, ALLOW),
    }
    assert described(wire) == everything
    response = describe(wire, version, resource_type_filter=TOPIC, resource_name_filter="t",
                        pattern_type_filter=LITERAL)  # fmt: skip
    (resource,) = response.resources  # one resource, its ACLs together
    assert (resource.resource_type, resource.resource_name, len(resource.acls)) == (TOPIC, "t", 2)
    # MATCH: what applies to topic orders-eu (the prefix), not the literal "t".
    assert described(wire, resource_type_filter=TOPIC, resource_name_filter="orders-eu",
                     pattern_type_filter=MATCH) == {
        (TOPIC, "orders-", PREFIXED, "User:alice", "*", WRITE, ALLOW)
    }  # fmt: skip
    assert described(wire, principal_filter="User:*", permission_type=DENY) == {
        (TOPIC, "t", LITERAL, "User:*", "*", WRITE, DENY)
    }
    # Delete: per filter, what it matched; an ACL two filters match is in both results.
    by_alice, on_t, nothing = delete(
        wire, describe_filter(principal_filter="User:alice"),
        describe_filter(resource_name_filter="t", pattern_type_filter=LITERAL),
        describe_filter(principal_filter="User:nobody"), version=version,
    )  # fmt: skip
    assert {(m.resource_name, m.operation) for m in by_alice.matching_acls} == {
        ("t", READ), ("orders-", WRITE), ("g", ALL)
    }  # fmt: skip
    assert {(m.principal, m.operation) for m in on_t.matching_acls} == {
        ("User:alice", READ), ("User:*", WRITE)
    }  # fmt: skip
    assert all(m.error_code == ErrorCode.none for m in by_alice.matching_acls)
    assert (nothing.error_code, nothing.matching_acls) == (ErrorCode.none, ())
    assert described(wire) == {
        (CLUSTER, "kafka-cluster", LITERAL, "User:admin", "10.0.0.1", ALTER, ALLOW)
    }


def test_invalid_acls_get_kafkas_errors_and_the_valid_ones_are_created(wire: Wire) -> None:
    results = create(
        wire, creation("t"), creation("other-cluster", ALTER, rtype=CLUSTER), creation(""),
        creation(rtype=ANY), creation(rtype=99), creation(pattern=MATCH), creation(op=ANY),
        creation(op=0), creation(permission=ANY), creation(principal="alice"), creation("u"),
    )  # fmt: skip
    assert results == [
        (ErrorCode.none, None),
        (ErrorCode.invalid_request, ONLY_CLUSTER),
        (ErrorCode.invalid_request, "Invalid empty resource name"),
        (ErrorCode.invalid_request, "Invalid resourceType ANY"),
        (ErrorCode.invalid_request, "Invalid resourceType UNKNOWN"),  # a code Kafka lacks
        (ErrorCode.invalid_request, "Invalid patternType MATCH"),
        (ErrorCode.invalid_request, "Invalid operation ANY"),
        (ErrorCode.invalid_request, "Invalid operation UNKNOWN"),
        (ErrorCode.invalid_request, "Invalid permissionType ANY"),
        (ErrorCode.invalid_request, "Could not parse principal from `alice` (no colon is "
         "present separating the principal type from the principal name)"),
        (ErrorCode.none, None),
    ]  # fmt: skip
    assert {name for _, name, *_ in described(wire)} == {"t", "u"}
    # The same ACL twice (in one request or two) is one ACL, and a success each time.
    assert create(wire, creation("t"), creation("t")) == [(ErrorCode.none, None)] * 2
    assert len(described(wire)) == 2


def test_unknown_filter_elements_are_refused(wire: Wire) -> None:
    create(wire, creation("t"))
    response = describe(wire, operation=0)
    assert response.error_code == ErrorCode.invalid_request
    assert response.error_message == "Filter contain UNKNOWN elements"
    bad, good = delete(wire, describe_filter(pattern_type_filter=0), describe_filter(operation=77))
    assert (bad.error_code, bad.error_message) == (
        ErrorCode.invalid_request,
        "Unknown patternFilter.",
    )
    assert (good.error_code, good.error_message) == (
        ErrorCode.invalid_request,
        "Unknown entryFilter.",
    )
    assert len(described(wire)) == 1  # nothing was deleted


def test_acl_apis_need_alter_or_describe_on_the_cluster() -> None:
    """Kafka's AclApis: ALTER on the cluster to create or delete, DESCRIBE to describe;
    CLUSTER_AUTHORIZATION_FAILED for every entry otherwise."""
    config = BrokerConfig(authorizer_class_name=STANDARD, allow_everyone_if_no_acl_found=True)
    with EmbeddedBroker(config=config) as broker, Wire(broker.bootstrap) as w:

        def on_cluster(op: int, permission: int) -> dict[str, Any]:
            return creation("kafka-cluster", op, permission, "User:ANONYMOUS", rtype=CLUSTER)

        # No ACL on the cluster yet: allow.everyone.if.no.acl.found lets ANONYMOUS in.
        assert create(w, on_cluster(ALTER, ALLOW)) == [(ErrorCode.none, None)]
        assert len(described(w)) == 1  # ALTER implies DESCRIBE
        assert create(w, on_cluster(DESCRIBE, DENY)) == [(ErrorCode.none, None)]
        denied = (ErrorCode.cluster_authorization_failed, "Cluster authorization failed.")
        response = describe(w)
        assert (response.error_code, response.error_message, response.resources) == (*denied, ())
        assert create(w, on_cluster(ALTER, DENY)) == [(ErrorCode.none, None)]
        assert create(w, creation("t"), creation("u")) == [denied] * 2
        (result,) = delete(w, describe_filter())
        assert (result.error_code, result.error_message, result.matching_acls) == (*denied, ())
        assert broker.call(lambda: len(broker.broker.authorizer)) == 3  # nothing deleted


def _binding(c: dict[str, Any]) -> AclBinding:
    return AclBinding(
        ResourceType(c["resource_type"]), c["resource_name"],
        PatternType(c["resource_pattern_type"]), c["principal"], c["host"],
        Operation(c["operation"]), Permission(c["permission_type"]),
    )  # fmt: skip


def test_acls_and_their_deletion_survive_a_sigkill(tmp_path: Path) -> None:
    config = BrokerConfig(authorizer_class_name=STANDARD, allow_everyone_if_no_acl_found=True)
    with EmbeddedBroker(tmp_path / "data", mode="subprocess", config=config) as broker:
        with Wire(broker.bootstrap) as w:
            kept = creation("t", ALL, principal="User:ANONYMOUS")
            assert (
                create(w, kept, creation("x", READ, principal="User:bob"))
                == [(ErrorCode.none, None)] * 2
            )
            (deleted,) = delete(w, describe_filter(principal_filter="User:bob"))
            assert len(deleted.matching_acls) == 1
            # Last: ANONYMOUS may now describe the cluster, and nothing more there.
            grant = creation("kafka-cluster", DESCRIBE, principal="User:ANONYMOUS", rtype=CLUSTER)
            assert create(w, grant) == [(ErrorCode.none, None)]
        broker.kill()
        broker.start()
        with Wire(broker.bootstrap) as w:
            assert described(w) == {
                (TOPIC, "t", LITERAL, "User:ANONYMOUS", "*", ALL, ALLOW),
                (CLUSTER, "kafka-cluster", LITERAL, "User:ANONYMOUS", "*", DESCRIBE, ALLOW),
            }
            # Enforced after the restart: without ALTER on the cluster, no creation.
            assert create(w, creation("y")) == [
                (ErrorCode.cluster_authorization_failed, "Cluster authorization failed.")
            ]


def test_acl_records_that_cannot_be_read_are_refused_by_the_serde() -> None:
    serde = AclRecordSerde()
    acl = _binding(creation("t"))
    key, value = serde.serialize((acl, True))
    assert serde.deserialize(key, value) == (acl, True)
    assert serde.deserialize(key, None) == (acl, False)
    for bad in (
        b"not json",
        b"{}",
        key.replace(b'"v":0', b'"v":1'),
        key.replace(b'"operation":3', b'"operation":99'),
    ):
        with pytest.raises(UnreadableRecord):
            serde.deserialize(bad, b"{}")


# --- settings ----------------------------------------------------------------------------------


def test_authorizer_settings_use_kafkas_names() -> None:
    base = BrokerConfig()
    assert not base.authorizer_enabled
    for name in AUTHORIZER_CLASSES:
        config = config_from_properties(
            {"authorizer.class.name": name, "super.users": "User:admin; User:ops",
             "allow.everyone.if.no.acl.found": "TRUE"}, base,
        )  # fmt: skip
        assert config.authorizer_enabled
        assert config.super_users == ("User:admin", "User:ops")
        assert config.allow_everyone_if_no_acl_found
    assert not config_from_properties({"authorizer.class.name": ""}, base).authorizer_enabled
    with pytest.raises(ConfigFileError, match=r"klamm has no authorizer 'com\.example\.Mine'"):
        config_from_properties({"authorizer.class.name": "com.example.Mine"}, base)
    with pytest.raises(ConfigFileError, match=r"super\.users: 'admin' is not a principal"):
        config_from_properties({"super.users": "admin"}, base)
    with pytest.raises(ConfigFileError, match=r"allow\.everyone\.if\.no\.acl\.found"):
        config_from_properties({"allow.everyone.if.no.acl.found": "yes"}, base)


def test_klamm_broker_flags_turn_the_authorizer_on() -> None:
    from klamm.cli.broker import build_config
    from klamm.cli.main import build_parser

    args: argparse.Namespace = build_parser().parse_args(
        ["broker", "--authorizer", "--super-users", "User:admin;User:ops"]
    )
    config = build_config(args)
    assert config.authorizer_class_name == STANDARD
    assert config.super_users == ("User:admin", "User:ops")
    assert not build_config(build_parser().parse_args(["broker"])).authorizer_enabled


def test_a_write_the_disk_refuses_answers_storage_error_and_changes_nothing(
    wire: Wire, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert create(wire, creation("kept")) == [(ErrorCode.none, None)]
    real_append = PartitionLog.append

    def append(self: PartitionLog, batch: bytearray, leader_epoch: int = 0) -> Any:
        if self.directory.name == "__klamm_acls-0":
            raise KafkaStorageError(f"cannot append to {self.directory}: No space left on device")
        return real_append(self, batch, leader_epoch)

    with monkeypatch.context() as patch:
        patch.setattr(PartitionLog, "append", append)
        ((code, message),) = create(wire, creation("lost"))
        assert code == ErrorCode.kafka_storage_error and "No space left on device" in message
        (result,) = delete(wire, describe_filter())
        assert result.error_code == ErrorCode.kafka_storage_error and not result.matching_acls
        assert {name for _, name, *_ in described(wire)} == {"kept"}
    assert create(wire, creation("now")) == [(ErrorCode.none, None)]
    assert {name for _, name, *_ in described(wire)} == {"kept", "now"}


def test_an_authorizer_nobody_can_use_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="klamm.broker"):
        with EmbeddedBroker(authorizer_class_name=STANDARD):
            pass
        with EmbeddedBroker(super_users=("User:admin",)):
            pass
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("no ACLs and no super.users" in w for w in warnings), warnings
    assert any("no authorizer is configured: it has no effect" in w for w in warnings), warnings
