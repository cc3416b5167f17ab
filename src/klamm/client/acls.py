"""ACL arguments for the admin's create_acls / describe_acls / delete_acls, as KafkaJS takes them.

KafkaJS's enums (AclResourceTypes, AclOperationTypes, AclPermissionTypes, ResourcePatternTypes)
carry Kafka's numeric codes, which librdkafka's enums share; a KafkaJS user's numbers, these
enums' members or librdkafka's names ("TOPIC", "READ") are all accepted and checked here, before
any request (ConfigError naming the field).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from confluent_kafka import admin as _rd_admin

from klamm.client.errors import ConfigError

rd_admin: Any = _rd_admin


class AclResourceTypes(enum.IntEnum):
    UNKNOWN = 0
    ANY = 1
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4
    TRANSACTIONAL_ID = 5
    DELEGATION_TOKEN = 6


class AclOperationTypes(enum.IntEnum):
    UNKNOWN = 0
    ANY = 1
    ALL = 2
    READ = 3
    WRITE = 4
    CREATE = 5
    DELETE = 6
    ALTER = 7
    DESCRIBE = 8
    CLUSTER_ACTION = 9
    DESCRIBE_CONFIGS = 10
    ALTER_CONFIGS = 11
    IDEMPOTENT_WRITE = 12


class AclPermissionTypes(enum.IntEnum):
    UNKNOWN = 0
    ANY = 1
    DENY = 2
    ALLOW = 3


class ResourcePatternTypes(enum.IntEnum):
    UNKNOWN = 0
    ANY = 1
    MATCH = 2
    LITERAL = 3
    PREFIXED = 4


# An ACL entry's fields (KafkaJS's, snake_case): our enum, librdkafka's enum, and for a filter
# whether None ("any") is allowed.
_FIELDS: dict[str, tuple[type[enum.IntEnum] | None, Any]] = {
    "resource_type": (AclResourceTypes, rd_admin.ResourceType),
    "resource_name": (None, None),
    "resource_pattern_type": (ResourcePatternTypes, rd_admin.ResourcePatternType),
    "principal": (None, None),
    "host": (None, None),
    "operation": (AclOperationTypes, rd_admin.AclOperation),
    "permission_type": (AclPermissionTypes, rd_admin.AclPermissionType),
}
ACL_KEYS = tuple(_FIELDS)


def _code(ours: type[enum.IntEnum], value: Any, where: str) -> int:
    if isinstance(value, str):
        member = ours.__members__.get(value.upper())
        if member is not None:
            return int(member)
    elif isinstance(value, int) and not isinstance(value, bool):
        try:
            return int(ours(value))
        except ValueError:
            pass
    elif isinstance(value, enum.Enum) and isinstance(value.value, int):
        return _code(ours, value.value, where)
    names = ", ".join(ours.__members__)
    raise ConfigError(
        f"{where} must be a {ours.__name__} member or its code ({names}), not {value!r}"
    )


def binding(entry: Mapping[str, Any], where: str, *, is_filter: bool) -> Any:
    """A librdkafka AclBinding (or AclBindingFilter) from KafkaJS's ACL dict."""
    args: list[Any] = []
    for key, (ours, theirs) in _FIELDS.items():
        value = entry.get(key)
        if ours is None:
            if value is None and is_filter:
                args.append(None)  # matches any
                continue
            if not isinstance(value, str) or (not value and not is_filter):
                raise ConfigError(f"{where}['{key}'] must be a str, not {value!r}")
            args.append(value)
            continue
        if value is None and is_filter:
            value = ours.ANY  # type: ignore[attr-defined]
        args.append(theirs(_code(ours, value, f"{where}['{key}']")))
    cls = rd_admin.AclBindingFilter if is_filter else rd_admin.AclBinding
    try:
        return cls(*args)
    except (TypeError, ValueError) as exc:  # librdkafka's own checks (e.g. ANY in a binding)
        raise ConfigError(f"{where}: {exc}") from None


def as_dict(acl: Any) -> dict[str, Any]:
    """A librdkafka AclBinding as KafkaJS's ACL dict (codes as our enums)."""
    return {
        "resource_type": AclResourceTypes(acl.restype.value),
        "resource_name": acl.name,
        "resource_pattern_type": ResourcePatternTypes(acl.resource_pattern_type.value),
        "principal": acl.principal,
        "host": acl.host,
        "operation": AclOperationTypes(acl.operation.value),
        "permission_type": AclPermissionTypes(acl.permission_type.value),
    }
