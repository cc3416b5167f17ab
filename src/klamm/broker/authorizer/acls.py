"""ACL bindings and binding filters, as Kafka's AclBinding and AclBindingFilter define them.

An `AclBinding` is one ACL: a resource pattern (type, name, LITERAL or PREFIXED) and an entry
(principal, host, operation, ALLOW or DENY). An `AclFilter` selects bindings for DescribeAcls
and DeleteAcls: `None` fields and the ANY codes match everything, and the pattern type MATCH
selects every pattern that would apply to the named resource (the exact literal, the `*`
wildcard, and every prefix), as Kafka's ResourcePatternFilter.matches does.

Validation follows Kafka's broker: `creation_error` is what AclApis.handleCreateAcls and
AclControlManager.validateNewAcl refuse, with their messages; `filter_error` what
AclControlManager.validateFilter refuses. Codes a newer client might send that klamm does not
know are read as UNKNOWN, as Kafka's `fromCode` reads them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TypeVar

from klamm.broker.authorizer.model import (
    CLUSTER_NAME,
    WILDCARD,
    Operation,
    PatternType,
    Permission,
    ResourceType,
)

__all__ = [
    "AclBinding",
    "AclFilter",
    "code_of",
    "creation_error",
    "filter_error",
    "principal_error",
]

_E = TypeVar("_E", bound=enum.IntEnum)


def code_of(kind: type[_E], code: int) -> _E:
    """The enum member for a wire code; UNKNOWN (0) for a code klamm does not know."""
    try:
        return kind(code)
    except ValueError:
        return kind(0)


@dataclass(frozen=True, slots=True)
class AclBinding:
    resource_type: ResourceType
    name: str
    pattern_type: PatternType
    principal: str
    host: str
    operation: Operation
    permission: Permission

    def describe(self) -> str:
        """For log lines: Kafka's `(pattern=..., entry=...)` in short."""
        return (
            f"{self.permission.name} {self.principal} from {self.host} {self.operation.name} on "
            f"{self.resource_type.name}:{self.pattern_type.name}:{self.name}"
        )


@dataclass(frozen=True, slots=True)
class AclFilter:
    resource_type: ResourceType = ResourceType.ANY
    name: str | None = None
    pattern_type: PatternType = PatternType.ANY
    principal: str | None = None
    host: str | None = None
    operation: Operation = Operation.ANY
    permission: Permission = Permission.ANY

    def matches(self, acl: AclBinding) -> bool:
        return self.matches_pattern(acl) and self.matches_entry(acl)

    def matches_pattern(self, acl: AclBinding) -> bool:
        """Kafka's ResourcePatternFilter.matches."""
        if self.resource_type not in (ResourceType.ANY, acl.resource_type):
            return False
        if self.pattern_type not in (PatternType.ANY, PatternType.MATCH, acl.pattern_type):
            return False
        if self.name is None:
            return True
        if self.pattern_type in (PatternType.ANY, acl.pattern_type):
            return self.name == acl.name
        # MATCH: the patterns that apply to a resource named `self.name`.
        if acl.pattern_type == PatternType.LITERAL:
            return self.name == acl.name or acl.name == WILDCARD
        if acl.pattern_type == PatternType.PREFIXED:
            return self.name.startswith(acl.name)
        return False

    def matches_entry(self, acl: AclBinding) -> bool:
        """Kafka's AccessControlEntryFilter.matches."""
        if self.principal is not None and self.principal != acl.principal:
            return False
        if self.host is not None and self.host != acl.host:
            return False
        if self.operation not in (Operation.ANY, acl.operation):
            return False
        return self.permission in (Permission.ANY, acl.permission)


def principal_error(principal: str) -> str | None:
    """Kafka's principal parsing (StandardAcl.parsePrincipal): `Type:name`, split at the first
    colon. Kafka stores an ACL whose principal has no colon and fails when it decides with it;
    klamm refuses it up front, in Kafka's words."""
    if ":" not in principal:
        return (
            f"Could not parse principal from `{principal}` "
            "(no colon is present separating the principal type from the principal name)"
        )
    return None


def creation_error(acl: AclBinding) -> str | None:
    """Why Kafka refuses to create `acl` (INVALID_REQUEST), or None."""
    if acl.resource_type == ResourceType.CLUSTER and acl.name != CLUSTER_NAME:
        return f"The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
    if not acl.name:
        return "Invalid empty resource name"
    if acl.resource_type in (ResourceType.UNKNOWN, ResourceType.ANY):
        return f"Invalid resourceType {acl.resource_type.name}"
    if acl.pattern_type not in (PatternType.LITERAL, PatternType.PREFIXED):
        return f"Invalid patternType {acl.pattern_type.name}"
    if acl.operation in (Operation.UNKNOWN, Operation.ANY):
        return f"Invalid operation {acl.operation.name}"
    if acl.permission not in (Permission.ALLOW, Permission.DENY):
        return f"Invalid permissionType {acl.permission.name}"
    return principal_error(acl.principal)


def filter_error(acl_filter: AclFilter) -> str | None:
    """Why Kafka refuses a filter (INVALID_REQUEST): an element it cannot read."""
    pattern = acl_filter
    if pattern.resource_type == ResourceType.UNKNOWN or pattern.pattern_type == PatternType.UNKNOWN:
        return "Unknown patternFilter."
    if acl_filter.operation == Operation.UNKNOWN or acl_filter.permission == Permission.UNKNOWN:
        return "Unknown entryFilter."
    return None
