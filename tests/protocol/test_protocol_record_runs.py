"""The record walk's bulk fast path (record_runs.uniform_run) finds exactly what the per-record
walk finds: the same summary for every well-formed batch, and the same error (code and message)
for every malformed one. `scan_records(..., bulk=False)` is the per-record walk alone."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from klamm.protocol.errors import InvalidRecordBatch
from klamm.protocol.record_batch import (
    HEADER_SIZE,
    MAX_RECORD_ERRORS,
    Record,
    RecordBatch,
    RecordsSummary,
    build_batch,
    parse_header,
    scan_records,
)
from klamm.protocol.record_runs import MIN_RUN, uniform_run

BASE_TS = 1_700_000_000_000


def _raw(records: list[Record]) -> bytes:
    """The records region of a batch of `records` (what scan_records walks)."""
    return build_batch(RecordBatch(records))[HEADER_SIZE:]


def _outcome(raw: bytes | memoryview, count: int, bulk: bool) -> RecordsSummary | tuple[str, ...]:
    try:
        return scan_records(raw, count, BASE_TS, bulk=bulk)
    except InvalidRecordBatch as exc:
        return ("error", str(exc.code), str(exc))


def _assert_same(raw: bytes, count: int) -> RecordsSummary | tuple[str, ...]:
    expected = _outcome(raw, count, bulk=False)
    assert _outcome(raw, count, bulk=True) == expected
    assert _outcome(memoryview(raw), count, bulk=True) == expected
    return expected


# Runs of alike records (the fast path's case) broken by odd ones: each group is `repeat`
# records with one key, value size and timestamp step; some carry headers.
groups = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=80),  # repeat
        st.one_of(st.none(), st.binary(min_size=0, max_size=12)),  # key
        st.sampled_from([None, 0, 1, 60, 63, 64, 100, 200]),  # value size
        st.sampled_from([0, 0, 1, 3, 70, -1, -70]),  # timestamp step (ms) between records
        st.booleans(),  # with a header
    ),
    min_size=1,
    max_size=6,
)


def _records(spec: list[tuple[int, bytes | None, int | None, int, bool]]) -> list[Record]:
    out: list[Record] = []
    ts = BASE_TS
    for repeat, key, size, step, header in spec:
        for _ in range(repeat):
            value = None if size is None else bytes([len(out) % 251]) * size
            headers = [("h", b"v")] if header else []
            out.append(Record(len(out), ts, key, value, headers))
            ts += step
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=groups)
def test_well_formed_batches_walk_alike(spec) -> None:
    records = _records(spec)
    summary = _assert_same(_raw(records), len(records))
    assert isinstance(summary, RecordsSummary)
    keyless = [i for i, r in enumerate(records) if r.key is None]
    assert summary.null_keys == len(keyless)
    assert summary.first_null_keys == tuple(keyless[:MAX_RECORD_ERRORS])


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=groups, data=st.data())
def test_malformed_batches_fail_alike(spec, data) -> None:
    """Bytes changed, cut, added or removed anywhere, and counts off by a few."""
    records = _records(spec)
    raw = bytearray(_raw(records))
    count = len(records) + data.draw(st.sampled_from([0, 0, 0, -1, 1, 2]))
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        kind = data.draw(st.sampled_from(["set", "cut", "insert", "delete"]))
        at = data.draw(st.integers(min_value=0, max_value=max(len(raw) - 1, 0)))
        if kind == "set" and raw:
            raw[at] = data.draw(st.integers(min_value=0, max_value=255))
        elif kind == "cut":
            del raw[at:]
        elif kind == "insert":
            raw[at:at] = data.draw(st.binary(min_size=1, max_size=3))
        elif raw:
            del raw[at]
    _assert_same(bytes(raw), max(count, 0))


@pytest.mark.parametrize("position", [0, 63, 64, 65, 8191, 8192, 8193, 9999])
@pytest.mark.parametrize("damage", ["offset", "timestamp", "length", "none"])
def test_long_batches_across_offset_widths(position, damage) -> None:
    """10,000 alike records (librdkafka's default batch.num.messages): offset deltas of one, two
    and three bytes; one record damaged at a width boundary and elsewhere."""
    records = [Record(i, BASE_TS + i // 1000, None, b"x" * 100) for i in range(10_000)]
    raw = bytearray(_raw(records))
    start = len(_raw(records[:position])) if position else 0
    # Record `position` starts at `start`: length (2 bytes here), attributes, timestamp delta.
    if damage == "offset":
        body = _raw(records[: position + 1])
        # The offset delta's last byte: before the key length (1), the value length (2), the
        # value (100) and the header count (1).
        raw[len(body) - 105] ^= 0x02
    elif damage == "timestamp":
        raw[start + 3] = 0x81  # a one-byte delta made the start of a two-byte one
    elif damage == "length":
        raw[start] ^= 0x02
    outcome = _assert_same(bytes(raw), len(records))
    assert isinstance(outcome, RecordsSummary) == (damage == "none")
    if damage == "offset":
        assert "Invalid offset delta" in outcome[2] and f"of record {position}:" in outcome[2]


def test_alike_records_are_taken_in_bulk() -> None:
    """The fast path does take the runs it is for (else the equivalence above proves little)."""
    records = [Record(i, BASE_TS, b"k", b"v" * 100) for i in range(1000)]
    run = uniform_run(_raw(records), 0, 0, len(records))
    assert run is not None and run.count == 64  # up to the first two-byte offset delta
    odd = [*records[:30], Record(30, BASE_TS, b"kk", b"v" * 100), *records[31:]]
    run = uniform_run(_raw(odd), 0, 0, len(odd))
    assert run is not None and run.count == 30
    assert uniform_run(_raw(records[: MIN_RUN - 1]), 0, 0, MIN_RUN - 1) is None


@pytest.mark.parametrize("step", [33, 70, -70, -1, 0])
def test_two_byte_timestamp_deltas_either_sign(step) -> None:
    """Deltas of two-byte varints take the interleaved-words path when none is negative and the
    per-pair one otherwise; both find the batch's smallest and largest timestamp."""
    records = [Record(i, BASE_TS + 5000 + i * step, None, b"x" * 100) for i in range(60)]
    batch = build_batch(RecordBatch(records))
    summary = _assert_same(batch[HEADER_SIZE:], len(records))
    assert isinstance(summary, RecordsSummary)
    # _outcome walks with BASE_TS as the batch's base timestamp: shift the expected stamps.
    shift = BASE_TS - parse_header(batch).base_timestamp
    stamps = [r.timestamp + shift for r in records]
    assert (summary.min_timestamp, summary.max_timestamp) == (min(stamps), max(stamps))
