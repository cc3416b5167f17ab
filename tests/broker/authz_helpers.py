"""Helpers for the authorization tests: a broker with SASL and the authorizer on, a SASL login
on a raw connection, ACLs through CreateAcls, and the error codes anywhere in a response."""

from __future__ import annotations

import dataclasses
from typing import Any

from klamm.broker.authorizer.model import PatternType, Permission
from klamm.protocol.errors import ErrorCode
from klamm.testing import EmbeddedBroker
from tests.broker.wire import Wire

STANDARD_AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
HANDSHAKE, AUTHENTICATE, CREATE_ACLS = 17, 36, 30
# Kafka's *_AUTHORIZATION_FAILED codes.
AUTHORIZATION_ERRORS = frozenset(
    {
        ErrorCode.topic_authorization_failed,
        ErrorCode.group_authorization_failed,
        ErrorCode.cluster_authorization_failed,
        ErrorCode.transactional_id_authorization_failed,
    }
)


def authorizing_broker(users: dict[str, str]) -> EmbeddedBroker:
    """A broker with PLAIN logins for `users`, the StandardAuthorizer on and User:admin as its
    super user (use it as a context manager)."""
    return EmbeddedBroker(
        security_protocol="SASL_PLAINTEXT", sasl_users=users, sasl_mechanisms=("PLAIN",),
        authorizer_class_name=STANDARD_AUTHORIZER, super_users=("User:admin",),
    )  # fmt: skip


def login(wire: Wire, user: str, password: str) -> None:
    """SASL/PLAIN on a fresh connection; fails the test when the broker refuses."""
    assert wire.request(HANDSHAKE, 1, mechanism="PLAIN").error_code == ErrorCode.none
    token = b"\x00" + user.encode() + b"\x00" + password.encode()
    answer = wire.request(AUTHENTICATE, 2, auth_bytes=token)
    assert answer.error_code == ErrorCode.none, answer.error_message


def create_acl(
    wire: Wire,
    resource_type: int,
    name: str,
    principal: str,
    operation: int,
    *,
    permission: int = Permission.ALLOW,
    pattern: int = PatternType.LITERAL,
) -> None:
    answer = wire.request(
        CREATE_ACLS, 3,
        creations=[{"resource_type": resource_type, "resource_name": name,
                    "resource_pattern_type": pattern, "principal": principal, "host": "*",
                    "operation": operation, "permission_type": permission}],
    )  # fmt: skip
    (result,) = answer.results
    assert result.error_code == ErrorCode.none, result.error_message


def error_codes(entity: Any) -> set[ErrorCode]:
    """Every error code a response carries, at any depth."""
    found: set[ErrorCode] = set()
    if isinstance(entity, ErrorCode):
        found.add(entity)
    elif dataclasses.is_dataclass(entity) and not isinstance(entity, type):
        for field in dataclasses.fields(entity):
            found |= error_codes(getattr(entity, field.name))
    elif isinstance(entity, tuple | list):
        for item in entity:
            found |= error_codes(item)
    return found
