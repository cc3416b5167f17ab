"""Start-up with damaged files (issue 11, findings 5 and 6): an internal partition that cannot
be opened stops the start with one line naming the file and the cause; a damaged metadata file
of an internal topic keeps its log (committed offsets, transactions); a user partition that
cannot be opened is offline (KAFKA_STORAGE_ERROR) while the rest is served."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from klamm.broker.config import BrokerConfig
from klamm.broker.node import Broker, StartupError
from klamm.protocol.errors import ErrorCode
from klamm.protocol.record_batch import Record, RecordBatch, build_batch
from tests.broker.wire import Wire

OFFSETS = "__consumer_offsets"
TXNS = "__transaction_state"


def _config(data_dir: Path) -> BrokerConfig:
    return BrokerConfig(port=0, data_dir=data_dir, flush_policy="os")


async def _started(data_dir: Path) -> Broker:
    broker = Broker(_config(data_dir))
    await broker.start()
    return broker


async def _prepare(data_dir: Path) -> int:
    """A data directory with both internal topics, a committed offset and a transactional id
    (whose producer id is returned)."""
    broker = await _started(data_dir)
    try:
        broker.create_topic("t", 1)
        errors = await broker.groups.commit_offsets("g", -1, "", None, {("t", 0): (42, -1, None)})
        assert set(errors.values()) == {0}
        pid, epoch = await broker.transactions.init_producer_id("tx", 60_000)
        assert epoch == 0
    finally:
        await broker.stop()
    return int(pid)


def _metadata_file(data_dir: Path, topic: str) -> Path:
    (path,) = [p for p in (data_dir / "topics").glob("*.json") if topic.encode() in p.read_bytes()]
    return path


def _committed(broker: Broker) -> int:
    [(_, [row])] = broker.groups.fetch_offsets("g", [("t", [0])], False)
    return int(row.offset)


# --- finding 6: an internal partition that cannot be opened ----------------------------------


async def test_directory_where_an_internal_segment_should_be_refuses_start(
    tmp_path: Path,
) -> None:
    await _prepare(tmp_path)
    segment = tmp_path / f"{OFFSETS}-0" / "00000000000000000000.log"
    segment.unlink()
    segment.mkdir()
    broker = Broker(_config(tmp_path))
    with pytest.raises(StartupError) as raised:
        await broker.start()
    message = str(raised.value)
    assert f"{OFFSETS}-0" in message and str(segment) in message and "Is a directory" in message
    # The data directory is released: a fixed directory starts (no "in use" error).
    segment.rmdir()
    await (await _started(tmp_path)).stop()


async def test_unreadable_internal_segment_refuses_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _prepare(tmp_path)
    segment = str(tmp_path / f"{TXNS}-0" / "00000000000000000000.log")
    real_open = os.open

    def deny(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if str(path) == segment:  # as a read-only file would, for a non-root user
            raise PermissionError(13, "Permission denied", segment)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", deny)
    with pytest.raises(StartupError) as raised:
        await Broker(_config(tmp_path)).start()
    message = str(raised.value)
    assert f"{TXNS}-0" in message and segment in message and "Permission denied" in message


def test_cli_refuses_start_with_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    asyncio.run(_prepare(data))
    segment = data / f"{OFFSETS}-0" / "00000000000000000000.log"
    segment.unlink()
    segment.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "klamm", "broker", "--listen", "127.0.0.1:0",
         "--data-dir", str(data), "--log-level", "WARNING"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"klamm broker: internal partition {OFFSETS}-0 cannot be opened")
    assert str(segment) in lines[0] and "Is a directory" in lines[0]


async def test_user_partition_that_cannot_be_opened_is_offline_rest_served(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broker = await _started(tmp_path)
    broker.create_topic("bad", 1)
    broker.create_topic("good", 1)
    await broker.stop()
    segment = tmp_path / "bad-0" / "00000000000000000000.log"
    segment.unlink()
    segment.mkdir()
    with caplog.at_level(logging.ERROR):
        broker = await _started(tmp_path)
    try:
        assert broker.partition("bad", 0) is None
        assert any("bad-0" in r.getMessage() and str(segment) in r.getMessage()
                   for r in caplog.records)  # fmt: skip
        with Wire(f"127.0.0.1:{broker.bound_port}") as wire:
            for topic, expected in (("bad", ErrorCode.kafka_storage_error),
                                    ("good", ErrorCode.none),
                                    ("never", ErrorCode.unknown_topic_or_partition)):  # fmt: skip
                answers = await asyncio.to_thread(_ask_everything, wire, topic)
                assert answers == [expected] * 3, topic
    finally:
        await broker.stop()
    assert segment.is_dir()  # nothing was removed


def _ask_everything(wire: Wire, topic: str) -> list[int]:
    """Produce, Fetch and ListOffsets error codes for partition 0 of `topic`."""
    batch = build_batch(RecordBatch(records=[Record(0, 1_700_000_000_000, None, b"v")]))
    produced = wire.request(
        0, 8, transactional_id=None, acks=1, timeout=5000,
        topic_data=[{"name": topic, "partition_data": [{"index": 0, "records": batch}]}],
    )  # fmt: skip
    fetched = wire.request(
        1, 11, replica_id=-1, max_wait=0, min_bytes=0, max_bytes=1 << 20, isolation_level=0,
        session_id=0, session_epoch=-1, forgotten_topics_data=[], rack_id="",
        topics=[{"topic": topic, "partitions": [{"partition": 0, "current_leader_epoch": -1,
                 "fetch_offset": 0, "log_start_offset": -1, "partition_max_bytes": 1 << 20}]}],
    )  # fmt: skip
    listed = wire.request(
        2, 5, replica_id=-1, isolation_level=0,
        topics=[{"name": topic, "partitions": [{"partition_index": 0,
                 "current_leader_epoch": -1, "timestamp": -1}]}],
    )  # fmt: skip
    return [
        produced.responses[0].partition_responses[0].error_code,
        fetched.responses[0].partitions[0].error_code,
        listed.topics[0].partitions[0].error_code,
    ]


# --- finding 5 (storage half): damaged metadata of an internal topic ------------------------


@pytest.mark.parametrize("damage", ["truncate", "garbage", "delete"])
async def test_damaged_internal_metadata_keeps_offsets_and_transactions(
    tmp_path: Path, damage: str
) -> None:
    pid = await _prepare(tmp_path)
    for path in [_metadata_file(tmp_path, topic) for topic in (OFFSETS, TXNS)]:
        if damage == "truncate":
            path.write_bytes(path.read_bytes()[:40])
        elif damage == "garbage":
            path.write_bytes(b"\x00\xff" * 20)
        else:
            path.unlink()
    broker = await _started(tmp_path)
    try:
        assert _committed(broker) == 42  # the group's offset, replayed from the kept log
        meta = broker.transactions.txns.get("tx")
        assert meta is not None and (meta.producer_id, meta.producer_epoch) == (pid, 0)
        for topic in (OFFSETS, TXNS):
            info = broker.topic(topic)
            assert info is not None and info.internal
            assert info.configs.get("cleanup.policy") == "compact"
        assert not list(tmp_path.glob("*.stray-*"))  # nothing moved aside as a stray
    finally:
        await broker.stop()
    # The restored metadata is durable: the next start needs no repair.
    broker = await _started(tmp_path)
    try:
        assert _committed(broker) == 42
    finally:
        await broker.stop()
