from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from klamm.storage.dirlock import DataDirInUse
from klamm.storage.errors import (
    InvalidConfig,
    InvalidPartitions,
    InvalidTopicName,
    TopicExists,
    UnknownTopic,
)
from klamm.storage.log_manager import LogManager
from klamm.testing import FakeClock
from tests.storage.storage_helpers import make_batch

_opened: list[LogManager] = []


def manager(path: Path, clock: FakeClock, defaults: dict[str, str] | None = None) -> LogManager:
    """Open `path` as a new broker process would. A manager still open on it stands for a
    process that crashed: its directory lock is dropped, as the kernel drops a dead process's."""
    for earlier in _opened:
        if earlier.data_dir == path:
            earlier._dir_lock.release()
    lm = LogManager(path, clock, defaults)
    lm.load()
    _opened.append(lm)
    return lm


@pytest.fixture(autouse=True)
def _close_managers() -> Iterator[None]:
    yield
    while _opened:
        _opened.pop().close()


def test_create_persists_across_restart(tmp_path: Path, clock: FakeClock) -> None:
    lm = manager(tmp_path, clock)
    tid = uuid.uuid4()
    info = lm.create_topic("orders", 3, {"retention.ms": "1000"}, topic_id=tid)
    assert info.topic_id == tid and info.num_partitions == 3
    lm.create_topic("__consumer_offsets", 2, {"cleanup.policy": "compact"}, internal=True)
    plog = lm.log("orders", 1)
    assert plog is not None
    plog.append(make_batch(5))
    assert lm.log("orders", 3) is None
    lm.close()

    lm = manager(tmp_path, clock)
    topics = lm.topics()
    assert set(topics) == {"orders", "__consumer_offsets"}
    assert topics["orders"].topic_id == tid
    assert topics["orders"].configs == {"retention.ms": "1000"}
    assert topics["__consumer_offsets"].internal
    reopened = lm.log("orders", 1)
    assert reopened is not None and reopened.log_end_offset == 5
    assert reopened.config.retention_ms == 1000
    assert lm.log("__consumer_offsets", 0) is not None
    assert lm.log("__consumer_offsets", 0).config.compact  # type: ignore[union-attr]
    assert len(list(lm.logs())) == 5


@pytest.mark.parametrize("name", ["", ".", "..", "a" * 250, "bad name", "ümlaut", "a/b"])
def test_invalid_topic_names(tmp_path: Path, clock: FakeClock, name: str) -> None:
    with pytest.raises(InvalidTopicName):
        manager(tmp_path, clock).create_topic(name, 1)


def test_valid_edge_names(tmp_path: Path, clock: FakeClock) -> None:
    lm = manager(tmp_path, clock)
    lm.create_topic("a" * 249, 1)
    lm.create_topic("A.b_c-9", 1)
    with pytest.raises(InvalidTopicName):
        lm.create_topic("A_b_c-9", 1)  # collides with A.b_c-9


def test_create_errors(tmp_path: Path, clock: FakeClock) -> None:
    lm = manager(tmp_path, clock)
    lm.create_topic("t", 1)
    with pytest.raises(TopicExists):
        lm.create_topic("t", 1)
    with pytest.raises(InvalidPartitions):
        lm.create_topic("u", 0)
    with pytest.raises(InvalidConfig, match="Unknown topic config name: "):
        lm.create_topic("u", 1, {"retention.mss": "1"})
    with pytest.raises(InvalidConfig, match=r"retention\.ms"):
        lm.create_topic("u", 1, {"retention.ms": "soon"})
    with pytest.raises(InvalidConfig, match=r"cleanup\.policy"):
        lm.create_topic("u", 1, {"cleanup.policy": "shred"})
    assert "u" not in lm.topics()
    assert not (tmp_path / "u-0").exists()


def test_delete_topic(tmp_path: Path, clock: FakeClock) -> None:
    lm = manager(tmp_path, clock)
    lm.create_topic("t", 2)
    old = lm.log("t", 0)
    assert old is not None
    lm.delete_topic("t")
    assert lm.topics() == {} and lm.log("t", 0) is None
    assert not (tmp_path / "t-0").exists()
    with pytest.raises(UnknownTopic):
        lm.delete_topic("t")
    again = lm.create_topic("t", 1)
    assert lm.log("t", 0).log_end_offset == 0  # type: ignore[union-attr]
    lm.close()
    assert manager(tmp_path, clock).topics()["t"].topic_id == again.topic_id


def test_delete_interrupted_is_finished_on_load(tmp_path: Path, clock: FakeClock) -> None:
    lm = manager(tmp_path, clock)
    info = lm.create_topic("t", 2)
    lm.log("t", 0).append(make_batch(1))  # type: ignore[union-attr]
    lm.close()
    # Simulate a crash right after the metadata was moved aside.
    meta = tmp_path / "topics" / f"{info.topic_id.hex}.json"
    meta.rename(tmp_path / "topics" / f"{info.topic_id.hex}.deleted")
    (tmp_path / "t-1").rename(tmp_path / f"{info.topic_id.hex}-1.deleted")
    lm = manager(tmp_path, clock)
    assert lm.topics() == {}
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "topics"]
    assert list((tmp_path / "topics").iterdir()) == []


def test_create_partitions(tmp_path: Path, clock: FakeClock) -> None:
    lm = manager(tmp_path, clock)
    lm.create_topic("t", 2)
    with pytest.raises(InvalidPartitions):
        lm.create_partitions("t", 2)
    with pytest.raises(UnknownTopic):
        lm.create_partitions("nope", 3)
    assert lm.create_partitions("t", 5).num_partitions == 5
    assert lm.log("t", 4) is not None
    lm.close()
    lm = manager(tmp_path, clock)
    assert lm.topics()["t"].num_partitions == 5 and lm.log("t", 4) is not None


def test_alter_configs_and_defaults(tmp_path: Path, clock: FakeClock) -> None:
    lm = manager(tmp_path, clock, {"segment.bytes": "2097152", "retention.ms": "5000"})
    lm.create_topic("t", 1, {"retention.ms": "100"})
    plog = lm.log("t", 0)
    assert plog is not None
    assert (plog.config.segment_bytes, plog.config.retention_ms) == (2097152, 100)
    lm.alter_topic_configs("t", {"retention.bytes": "10"})
    assert lm.topics()["t"].configs == {"retention.bytes": "10"}
    assert (plog.config.retention_ms, plog.config.retention_bytes) == (5000, 10)
    with pytest.raises(InvalidConfig):
        lm.alter_topic_configs("t", {"segment.ms": "0"})
    assert lm.topics()["t"].configs == {"retention.bytes": "10"}
    lm.close()
    lm = manager(tmp_path, clock, {"segment.bytes": "2097152"})
    assert lm.log("t", 0).config.retention_bytes == 10  # type: ignore[union-attr]


def test_bad_broker_defaults(tmp_path: Path, clock: FakeClock) -> None:
    with pytest.raises(InvalidConfig):
        LogManager(tmp_path, clock, {"segment.bytes": "-5"})


def test_unreadable_metadata_skipped(tmp_path: Path, clock: FakeClock) -> None:
    lm = manager(tmp_path, clock)
    lm.create_topic("good", 1)
    lm.close()
    (tmp_path / "topics" / "bad.json").write_text("{not json")
    (tmp_path / "topics" / "worse.json").write_text('{"version": 1, "name": "other"}')
    (tmp_path / "topics" / "f00.json").write_bytes(b"\xff\xfe")
    lm = manager(tmp_path, clock)
    assert set(lm.topics()) == {"good"}


def test_creating_a_topic_whose_metadata_was_lost_keeps_its_records(
    tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A damaged metadata file makes the topic unknown; creating it again (as auto-create does)
    must move the old records aside, never delete them. An empty leftover is just removed."""
    lm = manager(tmp_path, clock)
    info = lm.create_topic("orders", 2)
    plog = lm.log("orders", 0)
    assert plog is not None
    plog.append(make_batch(3))
    lm.close()
    segment = next((tmp_path / "orders-0").glob("*.log"))
    records = segment.read_bytes()
    meta = tmp_path / "topics" / f"{info.topic_id.hex}.json"
    meta.write_bytes(meta.read_bytes()[:20])  # torn by a disk fault

    lm = manager(tmp_path, clock)
    assert "orders" not in lm.topics()
    assert "orders-0 holds records but belongs to no topic" in caplog.text
    lm.create_topic("orders", 2)
    new_log = lm.log("orders", 0)
    assert new_log is not None and new_log.log_end_offset == 0
    [aside] = tmp_path.glob("orders-0.stray-*")
    assert (aside / segment.name).read_bytes() == records
    assert not list(tmp_path.glob("orders-1.stray-*"))  # it held nothing: removed
    lm.close()


def test_flush_and_retention(tmp_path: Path, clock: FakeClock) -> None:
    lm = manager(tmp_path, clock, {"internal.segment.bytes": "1000", "retention.ms": "1000"})
    lm.create_topic("t", 2)
    for i in range(30):
        lm.log("t", i % 2).append(make_batch(2, timestamp=clock.now_ms(), tag=i))  # type: ignore[union-attr]
    lm.flush_all()
    assert lm.enforce_retention() == 0
    clock.advance(5000)
    assert lm.enforce_retention() > 0


def test_a_second_manager_on_the_same_directory_is_refused(
    tmp_path: Path, clock: FakeClock
) -> None:
    first = manager(tmp_path, clock)
    with pytest.raises(DataDirInUse, match="in use by another klamm broker"):
        LogManager(tmp_path, clock).load()
    first.close()
    second = LogManager(tmp_path, clock)
    second.load()  # released on close
    second.close()


def _count_fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = os.fsync

    def counting(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", counting)
    return calls


def test_a_clean_restart_costs_no_fsync_per_partition(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One clean-shutdown marker for the data directory: a marker per log cost a directory
    fsync per partition at every stop and every start (minutes at 50,000 partitions)."""
    lm = manager(tmp_path, clock)
    lm.create_topic("many", 200, {})
    for p in range(200):
        plog = lm.log("many", p)
        assert plog is not None
        plog.append(make_batch(1))
    fsyncs = _count_fsyncs(monkeypatch)
    lm.close()
    assert len(fsyncs) < 10  # the marker: file and directory
    fsyncs.clear()
    lm = manager(tmp_path, clock)
    assert len(fsyncs) < 10  # the marker's removal
    assert all(lm.log("many", p).log_end_offset == 1 for p in range(200))  # type: ignore[union-attr]


def _corrupt_last_record(plog_dir: Path) -> None:
    """Flip the last byte of the active segment (inside the last record: its CRC fails, its
    framing stays valid, so only a CRC-checking recovery notices)."""
    segment = sorted(plog_dir.glob("*.log"))[-1]
    data = bytearray(segment.read_bytes())
    data[-1] ^= 0xFF
    segment.write_bytes(bytes(data))


def test_a_crash_after_a_clean_restart_recovers_every_log(tmp_path: Path, clock: FakeClock) -> None:
    lm = manager(tmp_path, clock)
    lm.create_topic("t", 2, {})
    for p in range(2):
        lm.log("t", p).append(make_batch(1))  # type: ignore[union-attr]
    lm.close()
    lm = manager(tmp_path, clock)  # clean start: the marker is consumed
    for p in range(2):
        plog = lm.log("t", p)
        assert plog is not None
        plog.append(make_batch(1))
        plog.flush()
        _corrupt_last_record(tmp_path / f"t-{p}")
    lm = manager(tmp_path, clock)  # after a crash (no close): every log is CRC-checked
    assert [lm.log("t", p).log_end_offset for p in range(2)] == [1, 1]  # type: ignore[union-attr]


def test_a_log_not_closed_by_the_manager_is_not_taken_for_clean(
    tmp_path: Path, clock: FakeClock
) -> None:
    """The marker names the logs closed cleanly: a partition offline at close, or a garbled
    marker, means the log is recovered as after a crash."""
    lm = manager(tmp_path, clock)
    lm.create_topic("t", 2, {})
    for p in range(2):
        lm.log("t", p).append(make_batch(1))  # type: ignore[union-attr]
    lm.close()
    marker = tmp_path / ".klamm_cleanshutdown"
    assert json.loads(marker.read_bytes()) == ["t-0", "t-1"]
    marker.write_text('["t-0"]')
    _corrupt_last_record(tmp_path / "t-1")
    lm = manager(tmp_path, clock)
    assert not marker.exists()
    assert lm.log("t", 1).log_end_offset == 0  # type: ignore[union-attr]
    lm.close()
    marker.write_text("{not json")
    _corrupt_last_record(tmp_path / "t-0")
    lm = manager(tmp_path, clock)
    assert lm.log("t", 0).log_end_offset == 0  # type: ignore[union-attr]


def test_opening_a_partition_lists_its_directory_once(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At start-up on a cold cache every listdir of a partition directory is a disk read (half
    of the start-up time of 10,000 partitions here); the log reads one listing, not two."""
    lm = manager(tmp_path, clock)
    lm.create_topic("many", 50, {})
    lm.close()
    listed: list[str] = []
    real = os.listdir

    def counting(path: Any = None) -> list[str]:
        listed.append(str(path))
        return real(path) if path is not None else real()

    monkeypatch.setattr(os, "listdir", counting)
    manager(tmp_path, clock)
    partition_dirs = [p for p in listed if Path(p).name.startswith("many-")]
    assert len(partition_dirs) == 50
