"""Damaged topic metadata (issue 11, finding 5, storage half): an internal topic is recognised
by name and its log kept and opened; a user topic is set aside loudly with its data kept, and
the other topics are served."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from klamm.storage.errors import KafkaStorageError
from klamm.storage.log_manager import InternalTopic, LogManager
from klamm.testing import FakeClock
from tests.storage.storage_helpers import make_batch

OFFSETS = "__consumer_offsets"
INTERNAL = {OFFSETS: InternalTopic(1, {"cleanup.policy": "compact"})}


def open_manager(path: Path, clock: FakeClock) -> LogManager:
    lm = LogManager(path, clock, internal_topics=INTERNAL)
    lm.load()
    return lm


def metadata_of(path: Path, name: str) -> Path:
    (found,) = [p for p in (path / "topics").glob("*.json") if name.encode() in p.read_bytes()]
    return found


def populate(path: Path, clock: FakeClock) -> None:
    lm = open_manager(path, clock)
    lm.create_topic(OFFSETS, 1, {"cleanup.policy": "compact"}, internal=True)
    lm.create_topic("orders", 2, {"retention.ms": "-1"})
    lm.create_topic("other", 1)
    for name, partition in ((OFFSETS, 0), ("orders", 1), ("other", 0)):
        plog = lm.log(name, partition)
        assert plog is not None
        plog.append(make_batch(3))
    lm.close()


def test_damaged_user_topic_metadata_is_set_aside_and_the_rest_served(
    tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    populate(tmp_path, clock)
    meta = metadata_of(tmp_path, '"orders"')
    meta.write_bytes(meta.read_bytes()[:-30])  # torn: not JSON any more, the name still there
    with caplog.at_level(logging.ERROR, "klamm.storage"):
        lm = open_manager(tmp_path, clock)
    try:
        assert set(lm.topics()) == {OFFSETS, "other"}
        other = lm.log("other", 0)
        assert other is not None and other.log_end_offset == 3
        # Nothing deleted: the damaged file is beside its old name, the data where it was.
        assert not meta.exists()
        (aside,) = (tmp_path / "topics").glob(meta.name + ".damaged-*")
        assert aside.read_bytes().startswith(b"{")
        assert (tmp_path / "orders-1" / "00000000000000000000.log").stat().st_size > 0
        messages = [r.getMessage() for r in caplog.records]
        assert any("'orders'" in m and str(aside) in m and "orders-1" in m for m in messages)
    finally:
        lm.close()


@pytest.mark.parametrize("damage", [b"", b"{not json", b"\xff" * 50, b'{"version": 1}'])
def test_damaged_internal_topic_metadata_is_restored_with_its_log(
    tmp_path: Path, clock: FakeClock, damage: bytes
) -> None:
    populate(tmp_path, clock)
    meta = metadata_of(tmp_path, f'"{OFFSETS}"')
    topic_id = json.loads(meta.read_bytes())["topic_id"]
    meta.write_bytes(damage)
    lm = open_manager(tmp_path, clock)
    try:
        info = lm.topic(OFFSETS)
        assert info is not None and info.internal and info.num_partitions == 1
        assert info.configs == {"cleanup.policy": "compact"}
        plog = lm.log(OFFSETS, 0)
        assert plog is not None and plog.log_end_offset == 3  # the records are still there
        assert not list(tmp_path.glob("*.stray-*"))
    finally:
        lm.close()
    # Written back: the next start finds valid metadata and repairs nothing.
    assert metadata_of(tmp_path, f'"{OFFSETS}"').exists()
    again = open_manager(tmp_path, clock)
    try:
        info = again.topic(OFFSETS)
        assert info is not None and str(info.topic_id) != topic_id  # name illegible: new id
    finally:
        again.close()


def test_legible_internal_topic_name_keeps_its_topic_id(tmp_path: Path, clock: FakeClock) -> None:
    populate(tmp_path, clock)
    meta = metadata_of(tmp_path, f'"{OFFSETS}"')
    topic_id = json.loads(meta.read_bytes())["topic_id"]
    meta.write_bytes(meta.read_bytes()[:-20])  # torn after the name
    lm = open_manager(tmp_path, clock)
    try:
        info = lm.topic(OFFSETS)
        assert info is not None and str(info.topic_id) == topic_id
        plog = lm.log(OFFSETS, 0)
        assert plog is not None and plog.log_end_offset == 3
    finally:
        lm.close()


def test_internal_topic_with_metadata_lost_is_restored_from_its_directory(
    tmp_path: Path, clock: FakeClock
) -> None:
    populate(tmp_path, clock)
    metadata_of(tmp_path, f'"{OFFSETS}"').unlink()
    lm = open_manager(tmp_path, clock)
    try:
        plog = lm.log(OFFSETS, 0)
        assert plog is not None and plog.log_end_offset == 3
    finally:
        lm.close()


def test_unreadable_metadata_file_stops_the_load(tmp_path: Path, clock: FakeClock) -> None:
    populate(tmp_path, clock)
    meta = metadata_of(tmp_path, '"other"')
    meta.unlink()
    meta.mkdir()  # reading it fails with an OSError, as EIO or EACCES would
    lm = LogManager(tmp_path, clock, internal_topics=INTERNAL)
    with pytest.raises(KafkaStorageError, match=str(meta)):
        lm.load()
    lm.close()
    assert meta.is_dir()


def test_metadata_with_configs_invalid_today_is_kept_in_place(
    tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    populate(tmp_path, clock)
    meta = metadata_of(tmp_path, '"other"')
    raw = json.loads(meta.read_bytes())
    raw["configs"] = {"retention.ms": "soon"}
    meta.write_text(json.dumps(raw))
    with caplog.at_level(logging.ERROR, "klamm.storage"):
        lm = open_manager(tmp_path, clock)
    try:
        assert lm.topic("other") is None
        assert meta.exists()  # an intact file is never moved
        assert any("other" in r.getMessage() and "configs" in r.getMessage()
                   for r in caplog.records)  # fmt: skip
    finally:
        lm.close()


def test_impossible_partition_count_is_damage_not_a_billion_directories(
    tmp_path: Path, clock: FakeClock
) -> None:
    populate(tmp_path, clock)
    meta = metadata_of(tmp_path, '"other"')
    raw = json.loads(meta.read_bytes())
    raw["num_partitions"] = 10**9
    meta.write_text(json.dumps(raw))
    lm = open_manager(tmp_path, clock)
    try:
        assert lm.topic("other") is None
        assert not (tmp_path / "other-1").exists()
        assert list((tmp_path / "topics").glob(meta.name + ".damaged-*"))
        assert lm.topic("orders") is not None
    finally:
        lm.close()


def test_leftover_directories_with_records_are_moved_aside_not_deleted(
    tmp_path: Path, clock: FakeClock
) -> None:
    populate(tmp_path, clock)
    # A directory where create_partitions will put partition 1 of "other", holding records;
    # and one where a new topic goes whose only data is what recovery set aside.
    stale = tmp_path / "other-1"
    stale.mkdir()
    (stale / "00000000000000000000.log").write_bytes(b"x" * 100)
    aside_only = tmp_path / "fresh-0"
    (aside_only / "damaged").mkdir(parents=True)
    (aside_only / "damaged" / "00000000000000000000.log.0-9.1.damaged").write_bytes(b"x" * 9)
    lm = open_manager(tmp_path, clock)
    try:
        lm.create_partitions("other", 2)
        lm.create_topic("fresh", 1)
    finally:
        lm.close()
    (moved,) = tmp_path.glob("other-1.stray-*")
    assert (moved / "00000000000000000000.log").read_bytes() == b"x" * 100
    (moved,) = tmp_path.glob("fresh-0.stray-*")
    assert (moved / "damaged").exists()
