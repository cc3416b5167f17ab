"""The broker checkpoints every log's flushed position every
log.flush.offset.checkpoint.interval.ms, so recovery after a crash CRC-checks what was written
since, not whole active segments (issue 17: recovery must follow unflushed data, not data held)."""

from __future__ import annotations

import time
from pathlib import Path

from klamm.broker.config import BrokerConfig, config_from_properties
from klamm.protocol.errors import ErrorCode
from klamm.testing import EmbeddedBroker
from tests.broker.broker_helpers import create_topics, one_record_batch, produce
from tests.broker.wire import Wire


def test_the_recovery_point_follows_acknowledged_writes(tmp_path: Path) -> None:
    with (
        EmbeddedBroker(tmp_path / "data", recovery_checkpoint_interval_ms=50) as broker,
        Wire(broker.bootstrap) as wire,
    ):
        create_topics(wire, "t")
        point = tmp_path / "data" / "t-0" / "recovery-point"

        def checkpointed() -> int:
            if not point.exists():
                return 0
            base, position = point.read_text().split()
            assert base == "0"  # the one segment: the position inside it moves
            return int(position)

        before = 0
        for _ in range(3):
            code, _ = produce(wire, "t", one_record_batch(b"x" * 100))  # acks=all: fsynced
            assert code == ErrorCode.none
            deadline = time.monotonic() + 10
            while checkpointed() <= before:
                assert time.monotonic() < deadline, "the recovery point did not move"
                time.sleep(0.02)
            before = checkpointed()


def test_the_checkpoint_interval_has_kafkas_name_and_default() -> None:
    assert BrokerConfig().recovery_checkpoint_interval_ms == 60_000
    config = config_from_properties(
        {"log.flush.offset.checkpoint.interval.ms": "1000"}, BrokerConfig()
    )
    assert config.recovery_checkpoint_interval_ms == 1000
