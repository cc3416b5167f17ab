"""DescribeConfigs (32), AlterConfigs (33), IncrementalAlterConfigs (44).

Topic configs use Kafka's names and defaults (klamm.storage.config). DescribeConfigs returns every
topic config with its effective value and where it comes from, as Kafka does (clients and UIs
rely on the full list: research/brokers.md §5.6). Broker resources list the broker-level settings
that users usually ask about, and the topic defaults under their broker names (log.retention.ms
...), read-only.
"""

from __future__ import annotations

from typing import Any

from klamm.broker.config import TOPIC_CONFIG_SYNONYMS
from klamm.broker.context import RequestContext
from klamm.protocol.api_versions import ApiKey
from klamm.protocol.errors import ErrorCode
from klamm.storage import TOPIC_CONFIGS, ConfigType, StorageError, validate_topic_configs

RESOURCE_TOPIC = 2
RESOURCE_BROKER = 4

# ConfigSource in DescribeConfigsResponse.
SOURCE_DYNAMIC_TOPIC = 1
SOURCE_STATIC_BROKER = 4
SOURCE_DEFAULT = 5

# ConfigType in DescribeConfigsResponse v3+.
_WIRE_TYPE = {
    ConfigType.BOOLEAN: 1,
    ConfigType.STRING: 2,
    ConfigType.INT: 3,
    ConfigType.LONG: 5,
    ConfigType.DOUBLE: 6,
    ConfigType.LIST: 7,
}

# IncrementalAlterConfigs operations.
OP_SET, OP_DELETE, OP_APPEND, OP_SUBTRACT = 0, 1, 2, 3


def describe_topic_configs(
    ctx: RequestContext, topic: str, keys: tuple[str, ...] | None, *, documentation: bool = False
) -> list[dict[str, Any]]:
    info = ctx.broker.topic(topic)
    overrides = info.configs if info is not None else {}
    broker_defaults = ctx.broker.config.topic_defaults
    out = []
    for name, definition in sorted(TOPIC_CONFIGS.items()):
        if keys is not None and name not in keys:
            continue
        synonyms = []
        if name in overrides:
            value, source = overrides[name], SOURCE_DYNAMIC_TOPIC
            synonyms.append({"name": name, "value": value, "source": SOURCE_DYNAMIC_TOPIC})
        elif name in broker_defaults:
            value, source = broker_defaults[name], SOURCE_STATIC_BROKER
        else:
            value, source = definition.default, SOURCE_DEFAULT
        if name in broker_defaults:
            synonyms.append(
                {"name": name, "value": broker_defaults[name], "source": SOURCE_STATIC_BROKER}
            )
        synonyms.append({"name": name, "value": definition.default, "source": SOURCE_DEFAULT})
        out.append(
            {
                "name": name,
                "value": value,
                "read_only": False,
                "config_source": source,
                "is_sensitive": False,
                "synonyms": synonyms,
                "config_type": _WIRE_TYPE.get(definition.type, 0),
                "documentation": definition.doc if documentation else None,
            }
        )
    return out


def _topic_defaults(ctx: RequestContext) -> dict[str, tuple[str, int]]:
    """Broker-level topic defaults: name -> (value, source)."""
    configured = ctx.broker.config.topic_defaults
    out = {}
    for topic_name, broker_name in TOPIC_CONFIG_SYNONYMS.items():
        if topic_name in configured:
            out[broker_name] = (configured[topic_name], SOURCE_STATIC_BROKER)
        else:
            out[broker_name] = (TOPIC_CONFIGS[topic_name].default, SOURCE_DEFAULT)
    retention_ms = int(out["log.retention.ms"][0])
    if retention_ms > 0 and retention_ms % 3_600_000 == 0:  # what most people look for
        out["log.retention.hours"] = (str(retention_ms // 3_600_000), out["log.retention.ms"][1])
    return out


def _describe_broker(ctx: RequestContext, keys: tuple[str, ...] | None) -> list[dict[str, Any]]:
    config = ctx.broker.config
    host, port = config.advertised
    values = {
        "node.id": str(config.node_id),
        "broker.id": str(config.node_id),
        "advertised.listeners": f"PLAINTEXT://{host}:{port}",
        "auto.create.topics.enable": "true" if config.auto_create_topics else "false",
        "num.partitions": str(config.num_partitions),
        "log.dirs": str(config.data_dir),
        "socket.request.max.bytes": str(config.max_request_bytes),
        "group.initial.rebalance.delay.ms": str(config.group_initial_rebalance_delay_ms),
        "group.min.session.timeout.ms": str(config.group_min_session_timeout_ms),
        "group.max.session.timeout.ms": str(config.group_max_session_timeout_ms),
        "transaction.max.timeout.ms": str(config.transaction_max_timeout_ms),
        "offsets.retention.minutes": str(config.offsets_retention_ms // 60_000),
    }
    entries = {name: (value, SOURCE_STATIC_BROKER) for name, value in values.items()}
    entries.update(_topic_defaults(ctx))
    return [
        {
            "name": name,
            "value": value,
            "read_only": True,
            "config_source": source,
            "is_sensitive": False,
            "synonyms": [],
            "config_type": 0,
            "documentation": None,
        }
        for name, (value, source) in sorted(entries.items())
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


def handle_describe_configs(ctx: RequestContext, request: Any) -> Any:
    results = []
    documentation = getattr(request, "include_documentation", False)
    for resource in _distinct_resources(request.resources):
        entry: dict[str, Any] = {
            "error_code": ErrorCode.none,
            "error_message": None,
            "resource_type": resource.resource_type,
            "resource_name": resource.resource_name,
            "configs": [],
        }
        keys = resource.configuration_keys
        if resource.resource_type == RESOURCE_TOPIC:
            if ctx.broker.topic(resource.resource_name) is None:
                entry["error_code"] = ErrorCode.unknown_topic_or_partition
                entry["error_message"] = f"topic {resource.resource_name!r} does not exist"
            else:
                entry["configs"] = describe_topic_configs(
                    ctx, resource.resource_name, keys, documentation=documentation
                )
        elif resource.resource_type == RESOURCE_BROKER:
            if resource.resource_name not in ("", str(ctx.broker.config.node_id)):
                entry["error_code"] = ErrorCode.invalid_request
                entry["error_message"] = f"unknown broker {resource.resource_name!r}"
            else:
                entry["configs"] = _describe_broker(ctx, keys)
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
