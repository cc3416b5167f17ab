"""klamm.testing: FakeClock (time that moves only when told) and EmbeddedBroker.call."""

from __future__ import annotations

from pathlib import Path

import pytest

from klamm.storage.config import LogConfig
from klamm.storage.log import PartitionLog
from klamm.testing import EmbeddedBroker, FakeClock
from tests.storage.storage_helpers import make_batch


def test_time_moves_only_in_advance() -> None:
    clock = FakeClock(start_ms=5_000)
    assert clock.now_ms() == clock() == 5_000
    clock.advance(250)
    assert clock.now_ms() == 5_250
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)
    assert clock() == 5_250


def test_a_log_sees_the_fake_time(tmp_path: Path) -> None:
    """Retention measured against the clock a log was given, not the wall clock."""
    clock = FakeClock()
    config = LogConfig(retention_ms=1_000, segment_bytes=1024)
    log = PartitionLog.open(tmp_path / "t-0", config, clock)
    try:
        for _ in range(20):  # several segments, each record timestamped "now"
            log.append(make_batch(5, timestamp=clock.now_ms(), value_size=100))
        assert log.enforce_retention(clock.now_ms()) == 0
        clock.advance(1_001 + 20 * 5)
        assert log.enforce_retention(clock.now_ms()) > 0
    finally:
        log.close()


def test_call_runs_on_the_broker_loop() -> None:
    with EmbeddedBroker() as broker:
        assert broker.call(lambda: broker.broker.config.node_id) == broker.broker.config.node_id
    with pytest.raises(RuntimeError, match="running broker"):
        broker.call(lambda: None)


def test_a_subprocess_broker_takes_the_partition_limit() -> None:
    """Subprocess mode passes max.broker.partitions on (it used to run with the default, so a
    benchmark asking for more partitions was refused)."""
    from confluent_kafka.admin import AdminClient, NewTopic

    with EmbeddedBroker(mode="subprocess", max_broker_partitions=3) as broker:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        with pytest.raises(Exception, match=r"max\.broker\.partitions is 3"):
            admin.create_topics([NewTopic("four", 4, 1)])["four"].result(timeout=30)
        assert broker.pid is not None
    assert broker.pid is None
