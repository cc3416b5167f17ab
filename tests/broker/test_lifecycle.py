"""The broker as a process: clean shutdown on SIGTERM/SIGINT, and everything it knew (topics,
configs, records, cluster id) back after a restart on the same data directory."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from klamm.broker.config import (
    BrokerConfig,
    ConfigFileError,
    config_from_properties,
    parse_properties,
)
from klamm.protocol.errors import ErrorCode
from klamm.protocol.record_batch import Record, RecordBatch, build_batch, records_of
from klamm.testing import EmbeddedBroker
from tests.broker.wire import Wire


def _create(wire: Wire, name: str, partitions: int, configs: dict[str, str]) -> None:
    entries = [{"name": k, "value": v} for k, v in configs.items()]
    response = wire.request(
        19, 5, timeout=5000, validate_only=False,
        topics=[{"name": name, "num_partitions": partitions, "replication_factor": 1,
                 "assignments": [], "configs": entries}],
    )  # fmt: skip
    assert response.topics[0].error_code == ErrorCode.none


def _metadata(wire: Wire) -> Any:
    return wire.request(
        3, 9, topics=None, allow_auto_topic_creation=False,
        include_cluster_authorized_operations=False, include_topic_authorized_operations=False,
    )  # fmt: skip


def _produce(wire: Wire, topic: str, partition: int, value: bytes) -> int:
    batch = build_batch(RecordBatch(records=[Record(0, 1_700_000_000_000, None, value)]))
    response = wire.request(
        0, 8, transactional_id=None, acks=-1, timeout=5000,
        topic_data=[{"name": topic, "partition_data": [{"index": partition, "records": batch}]}],
    )  # fmt: skip
    result = response.responses[0].partition_responses[0]
    assert result.error_code == ErrorCode.none
    return int(result.base_offset)


def _fetch_all(wire: Wire, topic: str, partition: int) -> list[bytes | None]:
    response = wire.request(
        1, 11, replica_id=-1, max_wait=0, min_bytes=0, max_bytes=1 << 20, isolation_level=0,
        session_id=0, session_epoch=-1, forgotten_topics_data=[], rack_id="",
        topics=[{"topic": topic, "partitions": [{"partition": partition, "current_leader_epoch": -1,
                 "fetch_offset": 0, "log_start_offset": -1, "partition_max_bytes": 1 << 20}]}],
    )  # fmt: skip
    records = response.responses[0].partitions[0].records
    return [r.value for r in records_of([bytes(records)])]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly_and_restart_restores_everything(tmp_path: Path, sig: int) -> None:
    broker = EmbeddedBroker(tmp_path / "data", mode="subprocess").start()
    try:
        with Wire(broker.bootstrap) as wire:
            _create(wire, "kept", 2, {"retention.ms": "12345"})
            assert _produce(wire, "kept", 1, b"one") == 0
            assert _produce(wire, "kept", 1, b"two") == 1
            cluster_id = _metadata(wire).cluster_id
        assert broker._process is not None
        broker._process.send_signal(sig)
        assert broker._process.wait(timeout=20) == 0
        broker._process = None
        broker._close_process_output()
        assert "stopped cleanly" in broker.log_text()

        broker.start()
        with Wire(broker.bootstrap) as wire:
            metadata = _metadata(wire)
            assert metadata.cluster_id == cluster_id
            (topic,) = [t for t in metadata.topics if t.name == "kept"]
            assert len(topic.partitions) == 2
            configs = wire.request(
                32, 1, include_synonyms=False,
                resources=[{"resource_type": 2, "resource_name": "kept",
                            "configuration_keys": ["retention.ms"]}],
            )  # fmt: skip
            assert configs.results[0].configs[0].value == "12345"
            assert _fetch_all(wire, "kept", 1) == [b"one", b"two"]
            assert _produce(wire, "kept", 1, b"three") == 2
    finally:
        broker.stop()


def test_cli_reports_a_bad_config_file(tmp_path: Path) -> None:
    bad = tmp_path / "server.properties"
    bad.write_text("no.such.setting=1\n")
    result = subprocess.run(
        [sys.executable, "-m", "klamm", "broker", "--config", str(bad)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2
    assert "unknown broker setting 'no.such.setting'" in result.stderr


def test_properties_file_maps_kafka_names() -> None:
    props = parse_properties(
        "# comment\nlisteners=PLAINTEXT://127.0.0.1:19093\nnum.partitions=3\n"
        "log.retention.ms=1000\nauto.create.topics.enable=false\n"
    )
    config = config_from_properties(props, BrokerConfig())
    assert (config.host, config.port, config.num_partitions) == ("127.0.0.1", 19093, 3)
    assert config.auto_create_topics is False
    assert config.topic_defaults == {"retention.ms": "1000"}
    with pytest.raises(ConfigFileError):
        parse_properties("just words\n")


@pytest.mark.parametrize(
    ("lines", "retention_ms"),
    [
        ("log.retention.hours=24\n", "86400000"),
        ("log.retention.hours=24\nlog.retention.minutes=5\n", "300000"),
        ("log.retention.minutes=5\nlog.retention.ms=42\n", "42"),
    ],
)
def test_retention_in_hours_or_minutes_as_kafka_reads_them(lines: str, retention_ms: str) -> None:
    """Kafka's server.properties usually says log.retention.hours; ms wins over minutes, minutes
    over hours. Every topic config's broker-level name is read (log.cleaner.delete.retention.ms)."""
    props = parse_properties(lines + "log.cleaner.delete.retention.ms=1000\n")
    defaults = config_from_properties(props, BrokerConfig()).topic_defaults
    assert defaults == {"retention.ms": retention_ms, "delete.retention.ms": "1000"}


def test_json_log_format(tmp_path: Path) -> None:
    import json
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "klamm", "broker", "--listen", f"127.0.0.1:{port}",
         "--data-dir", str(tmp_path / "data"), "--log-format", "json"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    entries: list[dict[str, Any]] = []
    try:
        assert process.stderr is not None
        while not any("listening on" in e["message"] for e in entries):
            assert len(entries) < 20, entries
            entries.append(json.loads(process.stderr.readline()))  # every line is JSON
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
        if process.stderr is not None:
            process.stderr.close()
    assert all({"ts", "level", "logger", "message"} <= set(e) for e in entries)
    assert entries[-1]["logger"] == "klamm.broker" and entries[-1]["level"] == "INFO"


def test_unusable_data_dir_and_busy_port_are_one_clear_line(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    result = subprocess.run(
        [sys.executable, "-m", "klamm", "broker", "--listen", "127.0.0.1:0",
         "--data-dir", str(not_a_dir / "data")],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().startswith("klamm broker: cannot use data directory")
    assert "Traceback" not in result.stderr

    with EmbeddedBroker(tmp_path / "first") as running:
        result = subprocess.run(
            [sys.executable, "-m", "klamm", "broker", "--listen", running.bootstrap,
             "--data-dir", str(tmp_path / "second")],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    assert result.returncode == 1
    assert f"klamm broker: cannot listen on {running.bootstrap}" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_data_dir_serves_one_broker(tmp_path: Path) -> None:
    """Two brokers on one directory would append to the same files at the same offsets (and the
    second would mark the first one's logs clean on its way out): the second is refused before
    it reads anything, with one line naming the owner, as Kafka's .lock does."""
    data = tmp_path / "data"
    with EmbeddedBroker(data, mode="subprocess") as running:
        with Wire(running.bootstrap) as wire:
            _create(wire, "owned", 1, {})
            _produce(wire, "owned", 0, b"acked")
        marker_before = sorted(p.name for p in (data / "owned-0").iterdir())
        result = subprocess.run(
            [sys.executable, "-m", "klamm", "broker", "--listen", "127.0.0.1:0",
             "--data-dir", str(data)],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert result.returncode == 1
        assert f"data directory {data} is in use by another klamm broker" in result.stderr
        assert "Traceback" not in result.stderr
        assert sorted(p.name for p in (data / "owned-0").iterdir()) == marker_before
        with Wire(running.bootstrap) as wire:
            assert _fetch_all(wire, "owned", 0) == [b"acked"]
    with EmbeddedBroker(data, mode="subprocess") as restarted, Wire(restarted.bootstrap) as wire:
        assert _fetch_all(wire, "owned", 0) == [b"acked"]  # the lock went with its owner


def test_embedded_broker_rejects_an_unknown_mode() -> None:
    with pytest.raises(ValueError, match="subprocess"):
        EmbeddedBroker(mode="process")  # type: ignore[arg-type]
