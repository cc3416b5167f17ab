"""The console's errors: ConsoleError, a request it cannot do (shown on the page as it is), and
NotAuthorized, the cluster's refusal for lack of an ACL, which names what to grant."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["AUTHORIZATION_FAILURES", "ConsoleError", "NotAuthorized", "principal_of"]

# Kafka's authorization error codes: what a broker with an authorizer answers a principal
# without the ACL a request needs (KafkaApis), and the resource kind each one is about.
TOPIC_AUTHORIZATION_FAILED = 29
GROUP_AUTHORIZATION_FAILED = 30
CLUSTER_AUTHORIZATION_FAILED = 31
TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53
AUTHORIZATION_FAILURES = {
    TOPIC_AUTHORIZATION_FAILED: "TOPIC_AUTHORIZATION_FAILED",
    GROUP_AUTHORIZATION_FAILED: "GROUP_AUTHORIZATION_FAILED",
    CLUSTER_AUTHORIZATION_FAILED: "CLUSTER_AUTHORIZATION_FAILED",
    TRANSACTIONAL_ID_AUTHORIZATION_FAILED: "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
}
# How `klamm acls add` (and kafka-acls.sh) names a resource of each kind.
_ACL_FLAGS = {"topic": "--topic", "group": "--group", "transactional id": "--transactional-id"}


class ConsoleError(Exception):
    """A request the console cannot do; shown to the user as it is."""


class NotAuthorized(ConsoleError):
    """The cluster refused the console's user a request for lack of an ACL. The message names
    the principal, the permission and the resource, and how an administrator grants it; the
    console shows it as the page (403) or beside the part of the page it concerns."""

    def __init__(self, principal: str | None, operation: str, kind: str, name: str, code: int):
        resource = "the cluster" if kind == "cluster" else f"{kind} {name!r}"
        who = principal or "the console's principal"
        flag = "--cluster" if kind == "cluster" else f"{_ACL_FLAGS[kind]} {name}"
        super().__init__(
            f"Not authorized: {who} lacks the {operation} permission on {resource} "
            f"({AUTHORIZATION_FAILURES.get(code, code)}). An administrator can grant it with "
            f"`klamm acls add --allow-principal {principal or 'PRINCIPAL'} --operation "
            f"{operation} {flag}`."
        )
        self.operation, self.kind, self.name, self.code = operation, kind, name, code


def principal_of(conf: Mapping[str, Any]) -> str | None:
    """Who the console is to an authorizer: User:<name> after a SASL login, User:ANONYMOUS on a
    PLAINTEXT connection; None when a TLS certificate decides (the broker's mapping of it)."""
    protocol = str(conf.get("security.protocol", "PLAINTEXT")).upper()
    if protocol.startswith("SASL") and conf.get("sasl.username"):
        return f"User:{conf['sasl.username']}"
    return "User:ANONYMOUS" if protocol == "PLAINTEXT" else None
