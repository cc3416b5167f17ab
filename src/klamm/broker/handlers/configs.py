"""DescribeConfigs (32), AlterConfigs (33), IncrementalAlterConfigs (44).

Topic configs use Kafka's names and defaults (klamm.storage.config). DescribeConfigs returns every
topic config with its effective value and where it comes from, as Kafka does (clients and UIs
rely on the full list: research/brokers.md §5.6). Broker resources list the broker-level settings
that users usually ask about, and the topic defaults under their broker names (log.retention.ms
...), read-only.

Authorization, as Kafka's KafkaApis and ConfigAdminManager: describing a topic's configs needs
DESCRIBE_CONFIGS on the topic (TOPIC_AUTHORIZATION_FAILED), the broker's DESCRIBE_CONFIGS on the
cluster (CLUSTER_AUTHORIZATION_FAILED); altering needs ALTER_CONFIGS on the same resources. A
refused resource gets Kafka's error and message and nothing else, whether it exists or not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from klamm.broker.authorizer import checks
from klamm.broker.authorizer.model import Operation, ResourceType
from klamm.broker.config import TOPIC_CONFIG_SYNONYMS, BrokerConfig
from klamm.broker.context import RequestContext
from klamm.protocol.api_versions import ApiKey
from klamm.protocol.errors import ErrorCode
from klamm.storage import TOPIC_CONFIGS, ConfigType, StorageError, validate_topic_configs

RESOURCE_TOPIC = 2
RESOURCE_BROKER = 4

# ConfigSource in DescribeConfigsResponse (Kafka's DescribeConfigsResponse.ConfigSource).
SOURCE_TOPIC = 1  # TOPIC_CONFIG: a per-topic override
SOURCE_STATIC = 4  # STATIC_BROKER_CONFIG: set in the broker's configuration at start
SOURCE_DEFAULT = 5  # DEFAULT_CONFIG: Kafka's default

# ConfigType in DescribeConfigsResponse v3+ (Kafka's DescribeConfigsResponse.ConfigType).
TYPE_BOOLEAN, TYPE_STRING, TYPE_INT, TYPE_LONG, TYPE_DOUBLE, TYPE_LIST = 1, 2, 3, 5, 6, 7
_WIRE_TYPE = {
    ConfigType.BOOLEAN: TYPE_BOOLEAN,
    ConfigType.STRING: TYPE_STRING,
    ConfigType.INT: TYPE_INT,
    ConfigType.LONG: TYPE_LONG,
    ConfigType.DOUBLE: TYPE_DOUBLE,
    ConfigType.LIST: TYPE_LIST,
}

# IncrementalAlterConfigs operations.
OP_SET, OP_DELETE, OP_APPEND, OP_SUBTRACT = 0, 1, 2, 3


def describe_topic_configs(
    ctx: RequestContext,
    topic: str,
    keys: tuple[str, ...] | None,
    *,
    synonyms: bool = False,
    documentation: bool = False,
) -> list[dict[str, Any]]:
    """Kafka's ConfigHelper.createTopicConfigEntry: a topic override (TOPIC_CONFIG) wins over
    the broker-level setting under its broker name (log.retention.ms: STATIC_BROKER_CONFIG),
    which wins over Kafka's default (DEFAULT_CONFIG). The synonyms list every level that sets
    the config, highest first, and travel only when asked for (include_synonyms)."""
    info = ctx.broker.topic(topic)
    overrides = info.configs if info is not None else {}
    broker_defaults = ctx.broker.config.topic_defaults
    out = []
    for name, definition in sorted(TOPIC_CONFIGS.items()):
        if keys is not None and name not in keys:
            continue
        levels = []
        if name in overrides:
            levels.append({"name": name, "value": overrides[name], "source": SOURCE_TOPIC})
        broker_name = TOPIC_CONFIG_SYNONYMS.get(name)
        if broker_name is not None:
            if name in broker_defaults:
                levels.append(
                    {"name": broker_name, "value": broker_defaults[name], "source": SOURCE_STATIC}
                )
            levels.append(
                {"name": broker_name, "value": definition.default, "source": SOURCE_DEFAULT}
            )
        value = levels[0]["value"] if levels else definition.default
        out.append(
            {
                "name": name,
                "value": value,
                "read_only": False,
                "config_source": levels[0]["source"] if levels else SOURCE_DEFAULT,
                "is_sensitive": False,
                "synonyms": levels if synonyms else [],
                "config_type": _WIRE_TYPE[definition.type],
                "documentation": definition.doc if documentation else None,
            }
        )
    return out


@dataclass(frozen=True, slots=True)
class _BrokerSetting:
    """One broker config a DescribeConfigs on the broker lists (Kafka's KafkaConfig entry)."""

    type: int  # DescribeConfigsResponse ConfigType
    # Kafka's default as text; None where Kafka has none (advertised.listeners, node.id and
    # log.dirs are always written in a KRaft broker's server.properties: STATIC_BROKER_CONFIG).
    default: str | None
    doc: str
    value: Callable[[BrokerConfig], str]


def _advertised_listeners(config: BrokerConfig) -> str:
    host, port = config.advertised
    return f"{config.security_protocol}://{host}:{port}"


_BROKER_SETTINGS: dict[str, _BrokerSetting] = {
    "advertised.listeners": _BrokerSetting(
        TYPE_STRING, None, "Listeners to publish to clients.", _advertised_listeners
    ),
    "auto.create.topics.enable": _BrokerSetting(
        TYPE_BOOLEAN,
        "true",
        "Enable auto creation of topic on the server.",
        lambda c: "true" if c.auto_create_topics else "false",
    ),
    "broker.id": _BrokerSetting(
        TYPE_INT, None, "The broker id (the node.id in KRaft mode).", lambda c: str(c.node_id)
    ),
    "group.initial.rebalance.delay.ms": _BrokerSetting(
        TYPE_INT,
        "3000",
        "The time the group coordinator waits for more members to join a new group before "
        "performing the first rebalance.",
        lambda c: str(c.group_initial_rebalance_delay_ms),
    ),
    "group.max.session.timeout.ms": _BrokerSetting(
        TYPE_INT,
        "1800000",
        "The maximum allowed session timeout for registered consumers.",
        lambda c: str(c.group_max_session_timeout_ms),
    ),
    "group.min.session.timeout.ms": _BrokerSetting(
        TYPE_INT,
        "6000",
        "The minimum allowed session timeout for registered consumers.",
        lambda c: str(c.group_min_session_timeout_ms),
    ),
    "log.dirs": _BrokerSetting(
        TYPE_STRING,
        None,
        "The directories in which the log data is kept.",
        lambda c: str(c.data_dir),
    ),
    "node.id": _BrokerSetting(
        TYPE_INT,
        None,
        "The node ID associated with the roles this process is playing.",
        lambda c: str(c.node_id),
    ),
    "num.partitions": _BrokerSetting(
        TYPE_INT,
        "1",
        "The default number of log partitions per topic.",
        lambda c: str(c.num_partitions),
    ),
    "offsets.retention.minutes": _BrokerSetting(
        TYPE_INT,
        "10080",
        "For subscribed consumers, committed offset of a specific partition will be expired and "
        "discarded after this period once the group is empty.",
        lambda c: str(c.offsets_retention_ms // 60_000),
    ),
    "socket.request.max.bytes": _BrokerSetting(
        TYPE_INT,
        "104857600",
        "The maximum number of bytes in a socket request.",
        lambda c: str(c.max_request_bytes),
    ),
    "transaction.max.timeout.ms": _BrokerSetting(
        TYPE_INT,
        "900000",
        "The maximum allowed timeout for transactions.",
        lambda c: str(c.transaction_max_timeout_ms),
    ),
}


def _broker_entry(
    name: str,
    value: str,
    source: int,
    default: str | None,
    config_type: int,
    doc: str,
    *,
    synonyms: bool,
    documentation: bool,
) -> dict[str, Any]:
    """Kafka's ConfigHelper.createBrokerConfigEntry for a broker klamm cannot reconfigure
    while it runs: every entry is read-only (Kafka marks only its dynamic configs writable, and
    klamm's AlterConfigs takes topic resources only)."""
    levels = [{"name": name, "value": value, "source": source}]
    if source != SOURCE_DEFAULT and default is not None:
        levels.append({"name": name, "value": default, "source": SOURCE_DEFAULT})
    return {
        "name": name,
        "value": value,
        "read_only": True,
        "config_source": source,
        "is_sensitive": False,
        "synonyms": levels if synonyms else [],
        "config_type": config_type,
        "documentation": doc if documentation else None,
    }


def _describe_broker(
    ctx: RequestContext, keys: tuple[str, ...] | None, *, synonyms: bool, documentation: bool
) -> list[dict[str, Any]]:
    config = ctx.broker.config
    entries = {}
    for name, setting in _BROKER_SETTINGS.items():
        value = setting.value(config)
        # klamm does not keep which settings a file named; a value equal to Kafka's default
        # reads as DEFAULT_CONFIG, as it would in Kafka had the file left it out.
        source = SOURCE_DEFAULT if value == setting.default else SOURCE_STATIC
        entries[name] = (value, source, setting.default, setting.type, setting.doc)
    # The topic defaults under their broker names (log.retention.ms ...).
    for topic_name, broker_name in TOPIC_CONFIG_SYNONYMS.items():
        definition = TOPIC_CONFIGS[topic_name]
        configured = config.topic_defaults.get(topic_name)
        value = definition.default if configured is None else configured
        source = SOURCE_DEFAULT if configured is None else SOURCE_STATIC
        kind = _WIRE_TYPE[definition.type]
        entries[broker_name] = (value, source, definition.default, kind, definition.doc)
    retention_ms = int(entries["log.retention.ms"][0])
    if retention_ms > 0 and retention_ms % 3_600_000 == 0:  # what most people look for
        source = entries["log.retention.ms"][1]
        doc = "The number of hours to keep a log file before deleting it."
        entries["log.retention.hours"] = (
            str(retention_ms // 3_600_000),
            source,
            "168",
            TYPE_INT,
            doc,
        )
    return [
        _broker_entry(
            name, value, source, default, kind, doc, synonyms=synonyms, documentation=documentation
        )
        for name, (value, source, default, kind, doc) in sorted(entries.items())
        if keys is None or name in keys
    ]


def _distinct_resources(resources: Any) -> list[Any]:
    """Each (resource, requested keys) once, in request order. Kafka answers a repeated
    resource again; clients never repeat one (librdkafka refuses duplicates, the Java admin
    keys them in a map), and a topic listed 20 000 times in a 200 KB request made 600 000
    config entries and a 17 s stall."""
    seen: dict[tuple[int, str, tuple[str, ...] | None], Any] = {}
    for resource in resources:
        keys = resource.configuration_keys
        key = (
            resource.resource_type,
            resource.resource_name,
            None if keys is None else tuple(keys),
        )
        seen.setdefault(key, resource)
    return list(seen.values())


def _refusal(
    ctx: RequestContext, operation: Operation, resource_type: int, name: str
) -> tuple[ErrorCode, str] | None:
    """Kafka's error and message when the principal may not `operation` the config resource;
    None when it may (or the type is one klamm refuses anyway, with its own error)."""
    if resource_type == RESOURCE_TOPIC:
        if not checks.allowed(ctx, operation, ResourceType.TOPIC, name):
            return ErrorCode.topic_authorization_failed, checks.TOPIC_AUTHORIZATION_FAILED
    elif resource_type == RESOURCE_BROKER and not checks.cluster_allowed(ctx, operation):
        return ErrorCode.cluster_authorization_failed, checks.CLUSTER_AUTHORIZATION_FAILED
    return None


def handle_describe_configs(ctx: RequestContext, request: Any) -> Any:
    results = []
    # Both flags are absent from v0 (which always carried synonyms: none then).
    synonyms = bool(getattr(request, "include_synonyms", False))
    documentation = bool(getattr(request, "include_documentation", False))
    for resource in _distinct_resources(request.resources):
        entry: dict[str, Any] = {
            "error_code": ErrorCode.none,
            "error_message": None,
            "resource_type": resource.resource_type,
            "resource_name": resource.resource_name,
            "configs": [],
        }
        keys = resource.configuration_keys
        refusal = _refusal(
            ctx, Operation.DESCRIBE_CONFIGS, resource.resource_type, resource.resource_name
        )
        if refusal is not None:
            entry["error_code"], entry["error_message"] = refusal
        elif resource.resource_type == RESOURCE_TOPIC:
            if ctx.broker.topic(resource.resource_name) is None:
                entry["error_code"] = ErrorCode.unknown_topic_or_partition
                entry["error_message"] = f"topic {resource.resource_name!r} does not exist"
            else:
                entry["configs"] = describe_topic_configs(
                    ctx,
                    resource.resource_name,
                    keys,
                    synonyms=synonyms,
                    documentation=documentation,
                )
        elif resource.resource_type == RESOURCE_BROKER:
            if resource.resource_name not in ("", str(ctx.broker.config.node_id)):
                entry["error_code"] = ErrorCode.invalid_request
                entry["error_message"] = f"unknown broker {resource.resource_name!r}"
            else:
                entry["configs"] = _describe_broker(
                    ctx, keys, synonyms=synonyms, documentation=documentation
                )
        else:
            entry["error_code"] = ErrorCode.invalid_request
            entry["error_message"] = f"resource type {resource.resource_type} is not supported"
        results.append(entry)
    return ctx.response(throttle_time=0, results=results)


def _alter(
    ctx: RequestContext, resource: Any, new_configs: dict[str, str], validate_only: bool
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "error_code": ErrorCode.none,
        "error_message": None,
        "resource_type": resource.resource_type,
        "resource_name": resource.resource_name,
    }
    refusal = _refusal(ctx, Operation.ALTER_CONFIGS, resource.resource_type, resource.resource_name)
    if refusal is not None:
        entry["error_code"], entry["error_message"] = refusal
        return entry
    if resource.resource_type != RESOURCE_TOPIC:
        entry["error_code"] = ErrorCode.invalid_request
        entry["error_message"] = "only topic configs can be altered on a klamm broker"
        return entry
    info = ctx.broker.topic(resource.resource_name)
    if info is None:
        entry["error_code"] = ErrorCode.unknown_topic_or_partition
        return entry
    if info.internal and new_configs.get("cleanup.policy", "").replace(" ", "") != "compact":
        # The coordinators' state (committed offsets, transactions, producer id blocks) lives
        # in the internal topics and is replayed from them at start: retention must never
        # delete it. (AlterConfigs replaces every override, so dropping the key counts too.)
        entry["error_code"] = ErrorCode.policy_violation
        entry["error_message"] = f"internal topic {info.name} must keep cleanup.policy=compact"
        return entry
    try:
        validate_topic_configs(new_configs)
        if not validate_only:
            ctx.broker.logs.alter_topic_configs(resource.resource_name, new_configs)
    except StorageError as exc:
        entry["error_code"], entry["error_message"] = exc.code, str(exc)
    return entry


def handle_alter_configs(ctx: RequestContext, request: Any) -> Any:
    """AlterConfigs replaces a topic's whole override set with the given one."""
    responses = []
    for resource in request.resources:
        configs = {c.name: c.value for c in resource.configs if c.value is not None}
        responses.append(_alter(ctx, resource, configs, request.validate_only))
    return ctx.response(throttle_time=0, responses=responses)


def handle_incremental_alter_configs(ctx: RequestContext, request: Any) -> Any:
    responses = []
    for resource in request.resources:
        info = ctx.broker.topic(resource.resource_name)
        configs = dict(info.configs) if info is not None else {}
        for change in resource.configs:
            op = change.config_operation
            definition = TOPIC_CONFIGS.get(change.name)
            current = configs.get(change.name, definition.default if definition else "")
            items = [item for item in current.split(",") if item]
            if op == OP_SET and change.value is not None:
                configs[change.name] = change.value
            elif op == OP_DELETE:
                configs.pop(change.name, None)
            elif op == OP_APPEND and change.value is not None:
                configs[change.name] = ",".join(items + [v for v in change.value.split(",") if v])
            elif op == OP_SUBTRACT and change.value is not None:
                removed = set(change.value.split(","))
                configs[change.name] = ",".join(i for i in items if i not in removed)
        responses.append(_alter(ctx, resource, configs, request.validate_only))
    return ctx.response(throttle_time=0, responses=responses)


HANDLERS = {
    ApiKey.DESCRIBE_CONFIGS: handle_describe_configs,
    ApiKey.ALTER_CONFIGS: handle_alter_configs,
    ApiKey.INCREMENTAL_ALTER_CONFIGS: handle_incremental_alter_configs,
}
