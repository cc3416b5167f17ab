from __future__ import annotations

import pytest

from klamm.storage.config import TOPIC_CONFIGS, LogConfig, parse_value, validate_topic_configs
from klamm.storage.errors import InvalidConfig


def test_every_default_is_valid() -> None:
    defaults = {name: d.default for name, d in TOPIC_CONFIGS.items()}
    assert validate_topic_configs(defaults) == defaults
    assert LogConfig.from_configs(defaults) == LogConfig()


def test_kafka_defaults() -> None:
    c = LogConfig.from_configs({})
    assert c.segment_bytes == 1073741824 and c.segment_ms == 604800000
    assert c.retention_ms == 604800000 and c.retention_bytes == -1
    assert c.max_message_bytes == 1048588 and c.index_interval_bytes == 4096
    assert c.cleanup_policy == ("delete",) and not c.compact and c.delete
    assert c.min_insync_replicas == 1 and c.delete_retention_ms == 86400000


def test_required_names_present() -> None:
    for name in [
        "cleanup.policy",
        "compression.type",
        "delete.retention.ms",
        "file.delete.delay.ms",
        "flush.messages",
        "flush.ms",
        "index.interval.bytes",
        "max.compaction.lag.ms",
        "max.message.bytes",
        "message.timestamp.type",
        "message.timestamp.before.max.ms",
        "message.timestamp.after.max.ms",
        "min.cleanable.dirty.ratio",
        "min.compaction.lag.ms",
        "min.insync.replicas",
        "retention.bytes",
        "retention.ms",
        "segment.bytes",
        "segment.index.bytes",
        "segment.jitter.ms",
        "segment.ms",
        "unclean.leader.election.enable",
        "message.downconversion.enable",
    ]:
        assert name in TOPIC_CONFIGS
        assert TOPIC_CONFIGS[name].doc


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("nope", "1"),
        ("retention.ms", "-2"),
        ("retention.ms", "1.5"),
        ("segment.bytes", "3000000000"),
        ("segment.ms", "0"),
        ("cleanup.policy", ""),
        ("cleanup.policy", "delete,shred"),
        ("compression.type", "brotli"),
        ("message.timestamp.type", "createtime"),
        ("min.cleanable.dirty.ratio", "1.5"),
        ("unclean.leader.election.enable", "yes"),
        ("min.insync.replicas", "0"),
    ],
)
def test_invalid(name: str, value: str) -> None:
    with pytest.raises(InvalidConfig, match=name.split(".")[0]):
        validate_topic_configs({name: value})


def test_valid_values_are_normalised() -> None:
    got = validate_topic_configs({"cleanup.policy": "compact, delete", "retention.ms": " 5 "})
    assert got == {"cleanup.policy": "compact, delete", "retention.ms": "5"}
    c = LogConfig.from_configs(got)
    assert c.cleanup_policy == ("compact", "delete") and c.retention_ms == 5
    assert LogConfig.from_configs({"message.timestamp.type": "LogAppendTime"}).log_append_time
    assert parse_value(TOPIC_CONFIGS["preallocate"].type, "TRUE") is True


@pytest.mark.parametrize("value", ["14", "1048575"])
def test_segment_bytes_has_kafka_4_minimum(value: str) -> None:
    """Kafka 4 (KIP-1030) raised segment.bytes' floor from 14 to 1 MiB: tiny segments let one
    client roll a segment per batch. Kafka's own message, which admin tools show verbatim."""
    with pytest.raises(InvalidConfig) as caught:
        validate_topic_configs({"segment.bytes": value})
    assert str(caught.value) == (
        f"Invalid value {value} for configuration segment.bytes: Value must be at least 1048576"
    )
    assert validate_topic_configs({"segment.bytes": "1048576"}) == {"segment.bytes": "1048576"}


def test_stored_segment_bytes_below_the_new_minimum_still_loads() -> None:
    """A topic created before the floor was raised keeps its data served: its stored configs
    are parsed with the old floor."""
    assert LogConfig.from_configs({"segment.bytes": "2000"}).segment_bytes == 2000
    with pytest.raises(InvalidConfig):
        LogConfig.from_configs({"segment.bytes": "13"})


def test_internal_segment_bytes_overrides_for_tests() -> None:
    """Kafka's testing-only internal.segment.bytes: no 1 MiB floor, wins over segment.bytes,
    and is not listed with the documented configs."""
    configs = {"segment.bytes": "1048576", "internal.segment.bytes": "600"}
    assert LogConfig.from_configs(validate_topic_configs(configs)).segment_bytes == 600
    assert "internal.segment.bytes" not in TOPIC_CONFIGS
    with pytest.raises(InvalidConfig, match=r"internal\.segment\.bytes"):
        validate_topic_configs({"internal.segment.bytes": "0"})
