"""Log compaction of one PartitionLog (klamm.storage.cleaner): what is kept, what goes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from klamm.protocol.compression import Compression
from klamm.protocol.record_batch import (
    ATTR_DELETE_HORIZON,
    Record,
    RecordBatch,
    build_batch,
    decode_batch,
    parse_header,
)
from klamm.storage.cleaner import Cleaner, LogCleaner
from klamm.storage.cleaner_manager import CLEANER_OFFSET_FILE
from klamm.storage.config import LogConfig
from klamm.storage.log import PartitionLog
from klamm.storage.log_manager import LogManager
from klamm.testing import FakeClock
from tests.storage.cleaner_helpers import (
    COMPACT,
    batches,
    check_compacted_invariants,
    keyed,
    marker,
    rows,
)

Opener = Callable[..., PartitionLog]
NOW = 10_000  # every test record has a timestamp near 1_000


def updates(plog: PartitionLog, rounds: int, keys: int = 4) -> dict[bytes, tuple[int, bytes]]:
    """`rounds` single-record batches per key; returns key -> (offset, value) of the latest."""
    latest: dict[bytes, tuple[int, bytes]] = {}
    for r in range(rounds):
        for k in range(keys):
            key, value = f"k{k}".encode(), f"v{r}-{k}".encode()
            latest[key] = (plog.append(keyed([(key, value)])).base_offset, value)
    return latest


def test_keeps_the_latest_value_per_key_at_its_offset(open_log: Opener) -> None:
    plog = open_log(COMPACT)
    latest = updates(plog, 20)
    active_base = plog._segments[-1].base_offset
    active_before = [r for r in rows(plog) if r[0] >= active_base]
    end = plog.log_end_offset
    result = Cleaner().clean(plog, NOW)
    assert result is not None and result.records_removed > 0
    after = rows(plog)
    cleaned = [r for r in after if r[0] < active_base]
    # At most one record per key below the active segment, and it is that key's latest there.
    assert len({k for _, k, _ in cleaned}) == len(cleaned)
    for key, (offset, value) in latest.items():
        assert (offset, key, value) in after
        data = plog.read(offset, 1)  # a fetch at the offset returns its batch
        assert decode_batch(data).records[0].value == value
    assert [r for r in after if r[0] >= active_base] == active_before  # active untouched
    assert plog.log_end_offset == end and plog.log_start_offset == 0
    assert plog.segment_count < 20
    check_compacted_invariants(plog)
    # A consumer reading from the start walks over the gaps.
    offsets = [o for o, _, _ in after]
    assert offsets == sorted(offsets)
    plog.close()
    reopened = open_log(COMPACT)
    assert rows(reopened) == after
    check_compacted_invariants(reopened)


def test_unchanged_batches_are_byte_identical(open_log: Opener) -> None:
    plog = open_log(COMPACT)
    blobs = {}
    for k in range(30):
        appended = plog.append(keyed([(f"u{k}".encode(), b"x" * 20)]))
        blobs[appended.base_offset] = bytes(plog.read(appended.base_offset, 1))
    plog.append(keyed([(b"u0", b"new")]))  # supersedes offset 0 only
    for i in range(20):  # roll it out of the active segment
        plog.append(keyed([(f"f{i}".encode(), b"f" * 30)]))
    Cleaner().clean(plog, NOW)
    after = {parse_header(b).base_offset: b for b in batches(plog)}
    assert 0 not in after
    for offset, blob in blobs.items():
        if offset:
            assert after[offset] == blob


def test_a_second_cleaning_changes_nothing(open_log: Opener) -> None:
    plog = open_log(COMPACT)
    updates(plog, 10)
    Cleaner().clean(plog, NOW)
    first = batches(plog)
    assert (plog.directory / CLEANER_OFFSET_FILE).exists()
    result = Cleaner().clean(plog, NOW)
    assert result is not None and result.records_removed == 0
    assert batches(plog) == first


def test_tombstones_get_a_horizon_then_go(open_log: Opener) -> None:
    plog = open_log(COMPACT)
    updates(plog, 5, keys=2)
    gone = plog.append(keyed([(b"k0", None)])).base_offset
    for i in range(20):  # push the tombstone out of the active segment
        plog.append(keyed([(f"filler{i}".encode(), b"f" * 30)]))
    cleaner = Cleaner()
    cleaner.clean(plog, NOW)
    assert (gone, b"k0", None) in rows(plog)
    header = parse_header(plog.read(gone, 1))
    assert header.attributes & ATTR_DELETE_HORIZON
    assert header.base_timestamp == NOW + COMPACT.delete_retention_ms
    assert decode_batch(plog.read(gone, 1)).records[0].timestamp == 1_000  # still the record's
    # Nothing dirty, but the horizon makes the log due again once it has passed.
    assert cleaner.manager.priority(plog, NOW + 1) is None
    later = NOW + COMPACT.delete_retention_ms
    assert cleaner.manager.priority(plog, later) == float("inf")
    result = cleaner.clean(plog, later)
    assert result is not None and result.tombstones_removed == 1
    assert all(k != b"k0" for _, k, _ in rows(plog))


def test_records_without_key_are_dropped(open_log: Opener) -> None:
    plog = open_log(COMPACT)
    plog.append(keyed([(None, b"orphan"), (b"a", b"1")]))
    for i in range(20):
        plog.append(keyed([(f"f{i}".encode(), b"f" * 30)]))
    Cleaner().clean(plog, NOW)
    assert (0, None, b"orphan") not in rows(plog) and (1, b"a", b"1") in rows(plog)
    # The batch lost a record but keeps its offsets (last offset delta) and CRC is valid.
    header = parse_header(plog.read(0, 1))
    assert header.base_offset == 0 and header.last_offset == 1 and header.records_count == 1


def test_min_compaction_lag_protects_young_segments(open_log: Opener, clock: FakeClock) -> None:
    config = dataclasses.replace(COMPACT, min_compaction_lag_ms=5_000)
    plog = open_log(config)
    for r in range(10):
        for k in range(3):
            plog.append(keyed([(f"k{k}".encode(), b"v" * 20)], ts=1_000 + r * 1_000))
    before = rows(plog)
    now = 10_500  # records up to ts 5_500 are old enough
    result = Cleaner().clean(plog, now)
    assert result is not None and result.records_removed
    young = [r for r in before if r[0] >= result.cleaned_to]
    assert [r for r in rows(plog) if r[0] >= result.cleaned_to] == young
    assert any(plog.read(o, 1) and decode_batch(plog.read(o, 1)).records[0].timestamp > 5_500
               for o, _, _ in young)  # fmt: skip
    for offset, _, _ in before:
        if offset < result.cleaned_to:
            assert decode_batch(plog.read(offset, 1)).records[-1].timestamp <= 5_500


def test_priority_follows_the_dirty_ratio(open_log: Opener) -> None:
    config = dataclasses.replace(COMPACT, min_cleanable_dirty_ratio=0.5)
    plog = open_log(config)
    updates(plog, 10)
    cleaner = Cleaner()
    assert cleaner.manager.priority(plog, NOW) == 1.0  # never cleaned: all dirty
    cleaner.clean(plog, NOW)
    assert cleaner.manager.priority(plog, NOW) is None  # nothing dirty now
    delete = open_log(LogConfig(segment_bytes=600), Path(plog.directory.parent / "d-0"))
    updates(delete, 10)
    assert cleaner.manager.priority(delete, NOW) is None  # not compacted


def test_max_compaction_lag_forces_cleaning(open_log: Opener) -> None:
    config = dataclasses.replace(
        COMPACT, min_cleanable_dirty_ratio=0.99, max_compaction_lag_ms=5_000
    )
    plog = open_log(config)
    updates(plog, 10)
    cleaner = Cleaner()
    cleaner.clean(plog, NOW)
    updates(plog, 2)
    assert cleaner.manager.priority(plog, 3_000) is None
    assert cleaner.manager.priority(plog, 7_000) == float("inf")


def test_producer_last_batch_survives_as_empty_header(open_log: Opener) -> None:
    plog = open_log(COMPACT)
    pid = 7
    plog.append(keyed([(b"a", b"1")], producer_id=pid, epoch=0, sequence=0))
    plog.append(keyed([(b"b", b"1"), (b"c", b"1")], producer_id=pid, epoch=0, sequence=1))
    for i in range(20):
        plog.append(keyed([(f"f{i}".encode(), b"f" * 30)]))
        plog.append(keyed([(b"a", b"2"), (b"b", b"2"), (b"c", b"2")]))
    Cleaner().clean(plog, NOW)
    headers = [parse_header(b) for b in batches(plog)]
    assert all(h.base_offset != 0 for h in headers)  # not the producer's last: gone
    (last,) = [h for h in headers if h.producer_id == pid]
    assert (last.base_offset, last.last_offset, last.records_count) == (1, 2, 0)
    assert (last.base_sequence, last.last_sequence, last.producer_epoch) == (1, 2, 0)
    # ... unless the producer expired.
    Cleaner(producer_expiration_ms=1).clean(plog, NOW)
    assert all(parse_header(b).producer_id != pid for b in batches(plog))


def test_transactions(open_log: Opener) -> None:
    plog = open_log(COMPACT)
    ab, co, op = 1, 2, 3
    plog.append(
        keyed([(b"x", b"aborted")], producer_id=ab, epoch=0, sequence=0, transactional=True)
    )
    plog.append(marker(ab, commit=False))
    plog.append(keyed([(b"y", b"old")], producer_id=co, epoch=0, sequence=0, transactional=True))
    commit_at = plog.append(marker(co, commit=True)).base_offset
    plog.append(keyed([(b"x", b"plain")]))
    for i in range(15):
        plog.append(keyed([(f"f{i}".encode(), b"f" * 30)]))
    plog.append(keyed([(b"y", b"new")]))
    for i in range(15):
        plog.append(keyed([(f"g{i}".encode(), b"f" * 30)]))
    opened = plog.append(
        keyed([(b"z", b"open")], producer_id=op, epoch=0, sequence=0, transactional=True)
    ).base_offset
    for i in range(15):
        plog.append(keyed([(f"h{i}".encode(), b"f" * 30)]))
    cleaner = Cleaner(producer_expiration_ms=1)  # producers' last batches get no protection
    result = cleaner.clean(plog, NOW)
    assert result is not None and result.cleaned_to <= opened  # stops at the open txn
    kept = rows(plog, controls=True)
    assert all(v != b"aborted" for _, _, v in kept) and (4, b"x", b"plain") in kept
    headers = {parse_header(b).base_offset: parse_header(b) for b in batches(plog)}
    assert 1 in headers  # the ABORT marker stays (the broker's txn index still lists it)
    # The COMMIT marker lost its data: stamped with a horizon, removed after it.
    assert headers[commit_at].attributes & ATTR_DELETE_HORIZON
    result = cleaner.clean(plog, NOW + COMPACT.delete_retention_ms)
    assert result is not None and result.markers_removed == 1
    assert commit_at not in {parse_header(b).base_offset for b in batches(plog)}
    assert (opened, b"z", b"open") in rows(plog)


def test_log_cleaner_cleans_dirtiest_compacted_logs(tmp_path: Path, clock: FakeClock) -> None:
    manager = LogManager(tmp_path, clock)
    manager.load()
    small = {"internal.segment.bytes": "600"}  # Kafka's testing-only floor-free override
    manager.create_topic("state", 2, {"cleanup.policy": "compact", **small})
    manager.create_topic("plain", 1, small)
    for name, partition in (("state", 0), ("plain", 0)):
        plog = manager.log(name, partition)
        assert plog is not None
        updates(plog, 10)
    stats = LogCleaner(manager).clean_all(NOW)
    assert stats.logs_cleaned == 1 and not stats.failed
    assert stats.results[0].directory.name == "state-0"
    assert stats.bytes_reclaimed > 0 and stats.records_removed > 0
    assert LogCleaner(manager).clean_all(NOW).logs_cleaned == 0  # ratio 0 now
    manager.close()


def test_switching_policy_back_to_delete_keeps_gaps(open_log: Opener) -> None:
    plog = open_log(COMPACT)
    updates(plog, 10)
    Cleaner().clean(plog, NOW)
    after = rows(plog)
    plog._offline = "simulate a crash"  # no clean-shutdown marker: full recovery on open
    plog.discard()
    reopened = open_log(dataclasses.replace(COMPACT, cleanup_policy=("delete",)))
    assert rows(reopened) == after


def test_compressed_batch_losing_records_keeps_its_codec(open_log: Opener) -> None:
    plog = open_log(COMPACT)
    pairs = [(f"c{i}".encode(), f"old{i}".encode() * 5) for i in range(6)]
    records = [Record(i, 1_000 + i, k, v) for i, (k, v) in enumerate(pairs)]
    plog.append(bytearray(build_batch(RecordBatch(records=records, compression=Compression.GZIP))))
    plog.append(keyed([(b"c1", b"new1"), (b"c4", b"new4")]))
    for i in range(20):
        plog.append(keyed([(f"f{i}".encode(), b"f" * 30)]))
    Cleaner().clean(plog, NOW)
    header = parse_header(plog.read(0, 1))
    assert header.compression == Compression.GZIP and header.last_offset == 5
    kept = [(r.offset, r.key, r.timestamp) for r in decode_batch(plog.read(0, 1)).records]
    assert kept == [(i, f"c{i}".encode(), 1_000 + i) for i in (0, 2, 3, 5)]


def test_clean_ignores_logs_that_are_not_compacted(open_log: Opener) -> None:
    plog = open_log(dataclasses.replace(COMPACT, cleanup_policy=("delete",)))
    updates(plog, 10)
    before = batches(plog)
    assert Cleaner().clean(plog, NOW) is None
    assert batches(plog) == before
