"""The admin's argument checks (pure: invariant 1 of admin.py) and result shaping: a wrong
argument raises ConfigError naming it, before any request."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from klamm.client.acls import as_dict
from klamm.client.errors import ConfigError


class ResourceTypes(enum.Enum):
    """Config resource types, with Kafka's numeric codes as KafkaJS's ResourceTypes."""

    TOPIC = 2
    BROKER = 4
    GROUP = 3


# -- argument checks (pure; invariant 1) ------------------------------------------------------


def check_name(value: Any, arg: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{arg} must be a non-empty str, got {value!r}")
    return value


def check_list(value: Any, arg: str, what: str) -> list[Any]:
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise ConfigError(f"{arg} must be a list of {what}, not a {type(value).__name__}")
    return list(value)


def check_names(value: Any, arg: str, what: str, *, allow_empty: bool = False) -> list[str]:
    names = check_list(value, arg, what)
    if not names and not allow_empty:
        raise ConfigError(f"{arg} must not be empty")
    return check_unique([check_name(name, f"{arg}[{i}]") for i, name in enumerate(names)], arg)


def check_unique(names: list[str], arg: str) -> list[str]:
    # librdkafka refuses some duplicates and sends others (DeleteTopics), which then fail
    # obscurely; KafkaJS refuses them in createTopics.
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ConfigError(f"{arg} names {name!r} more than once")
        seen.add(name)
    return names


def check_entries(
    value: Any, arg: str, keys: Sequence[str], required: int, *, allow_empty: bool = False
) -> list[Mapping[str, Any]]:
    """`value` as a list of dicts with only `keys`, the first `required` of them present."""
    entries = check_list(value, arg, "dicts")
    if not entries and not allow_empty:
        raise ConfigError(f"{arg} must not be empty")
    accepted = ", ".join(keys)
    for i, entry in enumerate(entries):
        where = f"{arg}[{i}]"
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{where} must be a dict with keys {accepted}, got {entry!r}")
        for key in entry:
            if key not in keys:
                snake = re.sub(r"(?<!^)(?=[A-Z])", "_", str(key)).lower()
                hint = f" (did you mean {snake!r}?)" if snake in keys else ""
                raise ConfigError(
                    f"{where} has unknown key {key!r}{hint}; accepted keys: {accepted}"
                )
        for key in keys[:required]:
            if key not in entry:
                raise ConfigError(f"{where} is missing {key!r}")
    return entries


def check_int(value: Any, where: str, *, minimum: int) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{where} must be an int, got {value!r}")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where} must be an int, got {value!r}") from None
    if number < minimum:
        raise ConfigError(f"{where} must be >= {minimum}, got {value!r}")
    return number


def check_resource_type(value: Any, where: str) -> ResourceTypes:
    try:
        return ResourceTypes(value)
    except (TypeError, ValueError):
        codes = ", ".join(f"{t.name}={t.value}" for t in ResourceTypes)
        raise ConfigError(
            f"{where} must be a ResourceTypes member or its code ({codes}), got {value!r}"
        ) from None


def check_flag(value: Any, arg: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{arg} must be a bool, not {value!r}")
    return value


def check_metadata(value: Any, where: str) -> str | None:
    """A commit's metadata: a str (librdkafka's TopicPartition takes nothing else) or None."""
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{where} must be a str or None, not {value!r}")
    return value


def by_topic(partitions: Iterable[Any]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for tp in partitions:
        out.setdefault(tp.topic, []).append(tp.partition)
    return {topic: sorted(ps) for topic, ps in sorted(out.items())}


def config_entry(entry: Any, include_synonyms: bool) -> dict[str, Any]:
    """One librdkafka ConfigEntry as KafkaJS's describeConfigs entry (snake_case)."""
    out = {
        "config_name": entry.name,
        "config_value": entry.value,
        "read_only": entry.is_read_only,
        "is_default": entry.is_default,
        "config_source": int(entry.source),
        "is_sensitive": entry.is_sensitive,
    }
    # KafkaJS always has the list: empty unless synonyms were asked for.
    out["config_synonyms"] = []
    if include_synonyms:
        out["config_synonyms"] = [
            {
                "config_name": synonym.name,
                "config_value": synonym.value,
                "config_source": int(synonym.source),
            }
            for synonym in entry.synonyms.values()
        ]
    return out


def acl_resources(bindings: Iterable[Any]) -> list[dict[str, Any]]:
    """librdkafka's flat ACL bindings grouped by resource, as KafkaJS's describeAcls."""
    resources: dict[tuple[Any, ...], dict[str, Any]] = {}
    for acl in bindings:
        entry = as_dict(acl)
        key = (entry["resource_type"], entry["resource_name"], entry["resource_pattern_type"])
        resource = resources.setdefault(
            key,
            {
                "resource_type": key[0],
                "resource_name": key[1],
                "resource_pattern_type": key[2],
                "acls": [],
            },
        )
        resource["acls"].append(
            {k: entry[k] for k in ("principal", "host", "operation", "permission_type")}
        )
    return list(resources.values())


_CONFIG_ENTRY_KEYS = ("name", "value")


def check_config_entries(value: Any, arg: str) -> dict[str, str]:
    entries = check_entries(value, arg, _CONFIG_ENTRY_KEYS, required=2, allow_empty=True)
    return {
        check_name(e["name"], f"{arg}[{i}]['name']"): str(e["value"]) for i, e in enumerate(entries)
    }
