"""File descriptors: no client can make the broker run out of them (issue 11, finding 7).

* segment.bytes has Kafka 4's 1 MiB floor on every path a client or operator sets it;
* sealed segments are opened on demand through a bounded cache, so a broker with thousands of
  segments under a 512-fd limit keeps serving, old data included, also after a restart;
* the soft RLIMIT_NOFILE is raised to the hard limit at start;
* accept errors (EMFILE) are logged, and the listener accepts again once fds are free.
"""

from __future__ import annotations

from typing import Any

import pytest

from klamm.broker.config import BrokerConfig, ConfigFileError, config_from_properties
from klamm.protocol.errors import ErrorCode
from klamm.testing import EmbeddedBroker
from tests.broker.wire import Wire

RESOURCE_TOPIC = 2
OP_SET = 0
TOO_SMALL = "14"  # the value: every batch rolled a segment
KAFKA_MESSAGE = "Invalid value 14 for configuration segment.bytes: Value must be at least 1048576"


@pytest.fixture(scope="module")
def broker():
    with EmbeddedBroker() as b:
        yield b


def _create(wire: Wire, name: str, configs: dict[str, str], validate_only: bool = False) -> Any:
    response = wire.request(
        19, 4, timeout=5000, validate_only=validate_only,
        topics=[{"name": name, "num_partitions": 1, "replication_factor": 1, "assignments": [],
                 "configs": [{"name": k, "value": v} for k, v in configs.items()]}],
    )  # fmt: skip
    return response.topics[0]


def _alter(wire: Wire, name: str, configs: dict[str, str]) -> Any:
    response = wire.request(
        33, 1, validate_only=False,
        resources=[{"resource_type": RESOURCE_TOPIC, "resource_name": name,
                    "configs": [{"name": k, "value": v} for k, v in configs.items()]}],
    )  # fmt: skip
    return response.responses[0]


def _incremental(wire: Wire, name: str, configs: dict[str, str]) -> Any:
    response = wire.request(
        44, 1, validate_only=False,
        resources=[{"resource_type": RESOURCE_TOPIC, "resource_name": name,
                    "configs": [{"name": k, "config_operation": OP_SET, "value": v}
                                for k, v in configs.items()]}],
    )  # fmt: skip
    return response.responses[0]


@pytest.mark.parametrize("validate_only", [False, True])
def test_create_topics_refuses_segment_bytes_below_kafka_4_minimum(
    broker: EmbeddedBroker, validate_only: bool
) -> None:
    with Wire(broker.bootstrap) as wire:
        name = f"tiny-segments-{validate_only}"
        topic = _create(wire, name, {"segment.bytes": TOO_SMALL}, validate_only)
        assert topic.error_code == ErrorCode.invalid_config
        assert topic.error_message == KAFKA_MESSAGE
        assert _create(wire, name, {"segment.bytes": "1048576"}).error_code == ErrorCode.none


@pytest.mark.parametrize("alter", [_alter, _incremental])
def test_alter_configs_refuses_segment_bytes_below_kafka_4_minimum(
    broker: EmbeddedBroker, alter: Any
) -> None:
    name = f"alter-{alter.__name__.strip('_')}"
    with Wire(broker.bootstrap) as wire:
        assert _create(wire, name, {}).error_code == ErrorCode.none
        entry = alter(wire, name, {"segment.bytes": TOO_SMALL})
        assert entry.error_code == ErrorCode.invalid_config
        assert entry.error_message == KAFKA_MESSAGE
        assert alter(wire, name, {"segment.bytes": "1048576"}).error_code == ErrorCode.none


def test_broker_default_segment_bytes_below_minimum_is_a_config_error() -> None:
    """log.segment.bytes in server.properties: Kafka refuses to start with it below 1 MiB;
    so does klamm, naming the broker setting."""
    with pytest.raises(ConfigFileError) as caught:
        config_from_properties({"log.segment.bytes": TOO_SMALL}, BrokerConfig())
    assert str(caught.value) == KAFKA_MESSAGE.replace("segment.bytes", "log.segment.bytes")
    config = config_from_properties({"log.segment.bytes": "1048576"}, BrokerConfig())
    assert config.topic_defaults == {"segment.bytes": "1048576"}
