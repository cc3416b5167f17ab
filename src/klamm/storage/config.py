"""Kafka topic configuration: names, types, defaults and validation (Kafka 4.x `LogConfig.java`,
`TopicConfig.java`), plus `LogConfig`, the typed view the partition log uses.

Values travel as strings everywhere (CreateTopics, AlterConfigs, the topic metadata file), exactly
as Kafka does; `LogConfig.from_configs` is the one place they become typed. Layering of defaults:
this table's defaults < broker-level defaults (given to LogManager) < per-topic overrides.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from klamm.storage.errors import InvalidConfig

__all__ = [
    "TOPIC_CONFIGS",
    "ConfigDef",
    "ConfigType",
    "LogConfig",
    "parse_value",
    "validate_topic_configs",
]

LONG_MAX = 2**63 - 1  # Kafka's Long.MAX_VALUE: "never" for flush and lag settings
INT_MAX = 2**31 - 1
MIN_SEGMENT_BYTES = 1024 * 1024  # Kafka 4's minimum segment.bytes (KIP-1030)


class ConfigType(enum.Enum):
    BOOLEAN = "boolean"
    INT = "int"
    LONG = "long"
    DOUBLE = "double"
    STRING = "string"
    LIST = "list"


Value = bool | int | float | str | tuple[str, ...]
Validator = Callable[[Value], str | None]  # returns a complaint, or None when the value is fine


@dataclass(frozen=True, slots=True)
class ConfigDef:
    name: str
    type: ConfigType
    default: str
    doc: str
    validator: Validator | None = None
    # The laxer check for a value already stored in a topic's metadata when Kafka later raised
    # its floor: an existing topic must keep loading (and serving its data) after an upgrade.
    stored_validator: Validator | None = None


def parse_value(kind: ConfigType, raw: str) -> Value:
    """Parse a config string the way Kafka's ConfigDef.parseType does; raises ValueError."""
    text = raw.strip()
    if kind is ConfigType.BOOLEAN:
        lowered = text.lower()
        if lowered not in ("true", "false"):
            raise ValueError("expected true or false")
        return lowered == "true"
    if kind is ConfigType.INT or kind is ConfigType.LONG:
        value = int(text)
        limit = INT_MAX if kind is ConfigType.INT else LONG_MAX
        if not -limit - 1 <= value <= limit:
            raise ValueError(f"out of range for a {kind.value}")
        return value
    if kind is ConfigType.DOUBLE:
        return float(text)
    if kind is ConfigType.LIST:
        return tuple(item.strip() for item in text.split(",") if item.strip())
    return text


def _at_least(low: float) -> Validator:
    def check(value: Value) -> str | None:
        assert isinstance(value, int | float)
        return None if value >= low else f"Value must be at least {low}"

    return check


def _between(low: float, high: float) -> Validator:
    def check(value: Value) -> str | None:
        assert isinstance(value, int | float)
        return None if low <= value <= high else f"must be between {low} and {high}"

    return check


def _one_of(*choices: str) -> Validator:
    def check(value: Value) -> str | None:
        items = value if isinstance(value, tuple) else (value,)
        bad = [item for item in items if item not in choices]
        if bad or not items:
            return f"must be one of {', '.join(choices)}"
        return None

    return check


def _level(low: int, high: int) -> Validator:
    """Codec levels: -1 (the codec's own default, for gzip) or within [low, high]."""

    def check(value: Value) -> str | None:
        assert isinstance(value, int)
        return None if value == -1 or low <= value <= high else f"must be -1 or in [{low}, {high}]"

    return check


_B, _I, _L, _D, _S, _LS = (
    ConfigType.BOOLEAN,
    ConfigType.INT,
    ConfigType.LONG,
    ConfigType.DOUBLE,
    ConfigType.STRING,
    ConfigType.LIST,
)

_TABLE: tuple[ConfigDef, ...] = (
    ConfigDef("cleanup.policy", _LS, "delete", "delete old segments, compact by key, or both",
              _one_of("delete", "compact")),
    ConfigDef("compression.type", _S, "producer", "codec of stored batches; producer keeps "
              "the producer's",
              _one_of("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer")),
    ConfigDef("compression.gzip.level", _I, "-1", "gzip level when the broker compresses",
              _level(1, 9)),
    ConfigDef("compression.lz4.level", _I, "9", "lz4 level when the broker compresses",
              _between(1, 17)),
    ConfigDef("compression.zstd.level", _I, "3", "zstd level when the broker compresses",
              _between(-131072, 22)),
    # Confluent Server's broker-side schema validation (klamm.broker.schema_validation).
    ConfigDef("confluent.key.schema.validation", _B, "false", "refuse records whose key names "
              "no schema registered under <topic>-key"),
    ConfigDef("confluent.value.schema.validation", _B, "false", "refuse records whose value "
              "names no schema registered under <topic>-value"),
    ConfigDef("delete.retention.ms", _L, "86400000", "how long tombstones are kept on compacted "
              "topics", _at_least(0)),
    ConfigDef("file.delete.delay.ms", _L, "60000", "wait before deleting a file from disk",
              _at_least(0)),
    ConfigDef("flush.messages", _L, str(LONG_MAX), "fsync after this many messages",
              _at_least(1)),
    ConfigDef("flush.ms", _L, str(LONG_MAX), "fsync after this much time", _at_least(0)),
    ConfigDef("follower.replication.throttled.replicas", _LS, "", "accepted for compatibility"),
    ConfigDef("index.interval.bytes", _I, "4096", "bytes of log between offset index entries",
              _at_least(0)),
    ConfigDef("leader.replication.throttled.replicas", _LS, "", "accepted for compatibility"),
    ConfigDef("local.retention.bytes", _L, "-2", "tiered storage; accepted for compatibility",
              _at_least(-2)),
    ConfigDef("local.retention.ms", _L, "-2", "tiered storage; accepted for compatibility",
              _at_least(-2)),
    ConfigDef("max.compaction.lag.ms", _L, str(LONG_MAX), "longest a record stays uncompacted",
              _at_least(1)),
    ConfigDef("max.message.bytes", _I, "1048588", "largest record batch accepted (1 MiB + the "
              "12-byte log overhead)", _at_least(0)),
    ConfigDef("message.downconversion.enable", _B, "true", "accepted for compatibility; klamm "
              "never down-converts"),
    # Kafka 4.0 (KIP-1030) bounds future timestamps to one hour by default; past ones unbounded.
    ConfigDef("message.timestamp.after.max.ms", _L, "3600000", "how far in the future a "
              "record's timestamp may be", _at_least(0)),
    ConfigDef("message.timestamp.before.max.ms", _L, str(LONG_MAX), "how far in the past a "
              "record's timestamp may be", _at_least(0)),
    ConfigDef("message.timestamp.type", _S, "CreateTime", "CreateTime or LogAppendTime",
              _one_of("CreateTime", "LogAppendTime")),
    ConfigDef("min.cleanable.dirty.ratio", _D, "0.5", "dirty share that triggers compaction",
              _between(0, 1)),
    ConfigDef("min.compaction.lag.ms", _L, "0", "youngest a record may be to be compacted",
              _at_least(0)),
    ConfigDef("min.insync.replicas", _I, "1", "replicas that must ack acks=all; single node: 1",
              _at_least(1)),
    ConfigDef("preallocate", _B, "false", "accepted for compatibility"),
    ConfigDef("remote.storage.enable", _B, "false", "tiered storage; accepted for compatibility"),
    ConfigDef("retention.bytes", _L, "-1", "max bytes per partition before old segments go; "
              "-1 unlimited", _at_least(-1)),
    ConfigDef("retention.ms", _L, "604800000", "age (7 days) after which segments go; -1 "
              "forever", _at_least(-1)),
    # Kafka 4's floor (KIP-1030): tiny segments cost a file (and, on Kafka, a descriptor) per
    # few batches, so one client could exhaust the broker's fds. Tests that need small
    # segments use internal.segment.bytes (below), as Kafka's own tests do.
    ConfigDef("segment.bytes", _I, "1073741824", "segment file size (1 GiB) before a roll",
              _at_least(MIN_SEGMENT_BYTES), stored_validator=_at_least(14)),
    ConfigDef("segment.index.bytes", _I, "10485760", "max size of a segment's offset index",
              _at_least(4)),
    ConfigDef("segment.jitter.ms", _L, "0", "random jitter subtracted from segment.ms",
              _at_least(0)),
    ConfigDef("segment.ms", _L, "604800000", "age (7 days) after which a segment rolls",
              _at_least(1)),
    ConfigDef("unclean.leader.election.enable", _B, "false", "accepted for compatibility"),
)  # fmt: skip

TOPIC_CONFIGS: dict[str, ConfigDef] = {d.name: d for d in _TABLE}

# Kafka's internal (undocumented, testing-only) topic configs (LogConfig.defineInternal): accepted
# where topic configs are, never listed by DescribeConfigs, no default.
# internal.segment.bytes wins over segment.bytes and has Kafka 3's floor (a v0 record's
# overhead), so tests can roll segments every few batches.
INTERNAL_TOPIC_CONFIGS: dict[str, ConfigDef] = {
    d.name: d
    for d in (
        ConfigDef("internal.segment.bytes", _I, "", "segment file size before a roll; for "
                  "tests only, overrides segment.bytes", _at_least(14)),
    )
}  # fmt: skip


def validate_topic_configs(configs: Mapping[str, str], *, stored: bool = False) -> dict[str, str]:
    """Check names and values; returns the configs normalised (stripped strings). Pure.

    `stored`: the configs come from an existing topic's metadata, so values that met an older
    floor (see ConfigDef.stored_validator) still pass. New values (CreateTopics, AlterConfigs,
    broker defaults) never use it.

    Raises InvalidConfig naming the first offending entry (Kafka reports one too).
    """
    out: dict[str, str] = {}
    for name, raw in configs.items():
        definition = TOPIC_CONFIGS.get(name) or INTERNAL_TOPIC_CONFIGS.get(name)
        if definition is None:
            # Kafka's words (LogConfig.validateNames), which frameworks' own tests look for.
            raise InvalidConfig(f"Unknown topic config name: {name}")
        if raw is None:
            raise InvalidConfig(f"config {name!r} has no value")
        try:
            value = parse_value(definition.type, raw)
        except ValueError as exc:
            raise InvalidConfig(
                f"invalid value {raw!r} for {name} (a {definition.type.value}): {exc}"
            ) from None
        validator = definition.validator
        if stored and definition.stored_validator is not None:
            validator = definition.stored_validator
        if validator is not None:
            complaint = validator(value)
            if complaint is not None:
                # Kafka's ConfigException wording, which admin tools show as it is.
                raise InvalidConfig(f"Invalid value {raw.strip()} for configuration {name}: "
                                    f"{complaint}")  # fmt: skip
        out[name] = raw.strip()
    return out


@dataclass(frozen=True, slots=True)
class LogConfig:
    """The typed settings a PartitionLog acts on. Defaults are Kafka's."""

    segment_bytes: int = 1073741824
    segment_ms: int = 604800000
    segment_jitter_ms: int = 0
    index_interval_bytes: int = 4096
    segment_index_bytes: int = 10485760
    retention_bytes: int = -1
    retention_ms: int = 604800000
    max_message_bytes: int = 1048588
    cleanup_policy: tuple[str, ...] = ("delete",)
    compression_type: str = "producer"
    message_timestamp_type: str = "CreateTime"
    message_timestamp_before_max_ms: int = LONG_MAX
    message_timestamp_after_max_ms: int = 3600000
    min_insync_replicas: int = 1
    delete_retention_ms: int = 86400000
    min_compaction_lag_ms: int = 0
    max_compaction_lag_ms: int = LONG_MAX
    min_cleanable_dirty_ratio: float = 0.5
    flush_messages: int = LONG_MAX
    flush_ms: int = LONG_MAX
    file_delete_delay_ms: int = 60000
    confluent_key_schema_validation: bool = False
    confluent_value_schema_validation: bool = False

    @property
    def compact(self) -> bool:
        return "compact" in self.cleanup_policy

    @property
    def delete(self) -> bool:
        return "delete" in self.cleanup_policy

    @property
    def log_append_time(self) -> bool:
        return self.message_timestamp_type == "LogAppendTime"

    @classmethod
    def from_configs(cls, configs: Mapping[str, str]) -> LogConfig:
        """Typed config from string configs (validated as stored ones: a topic created before
        a floor was raised keeps working); absent names take the table default."""
        checked = validate_topic_configs(configs, stored=True)
        merged = {name: d.default for name, d in TOPIC_CONFIGS.items()} | checked

        def get(name: str) -> Value:
            return parse_value(TOPIC_CONFIGS[name].type, merged[name])

        fields: dict[str, Value] = {}
        for field in cls.__dataclass_fields__:
            name = field.replace("_", ".")
            fields[field] = get(name)
        internal = checked.get("internal.segment.bytes")
        if internal is not None:
            fields["segment_bytes"] = parse_value(ConfigType.INT, internal)
        return cls(**fields)  # type: ignore[arg-type]
