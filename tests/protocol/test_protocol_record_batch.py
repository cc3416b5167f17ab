from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from klamm.protocol.compression import Compression
from klamm.protocol.errors import ErrorCode, InvalidRecordBatch
from klamm.protocol.record_batch import (
    CONTROL_COMMIT,
    Record,
    RecordBatch,
    assign_offsets,
    build_batch,
    build_control_batch,
    check_batch,
    control_type,
    crc_of,
    decode_batch,
    iter_batches,
    parse_header,
    set_log_append_time,
    validate_produced_batch,
)

blobs = st.one_of(st.none(), st.binary(max_size=64))
records = st.lists(
    st.tuples(
        blobs,
        blobs,
        st.lists(st.tuples(st.text(max_size=8), blobs), max_size=3),
        st.integers(min_value=0, max_value=10_000),
    ),
    min_size=1,
    max_size=20,
)


@given(records=records, codec=st.sampled_from(list(Compression)))
def test_build_decode_round_trip(records, codec) -> None:
    base_ts = 1_700_000_000_000
    batch = RecordBatch(
        records=[
            Record(i, base_ts + dt, key, value, tuple(headers))
            for i, (key, value, headers, dt) in enumerate(records)
        ],
        compression=codec,
    )
    encoded = build_batch(batch)
    header = validate_produced_batch(encoded, 10 * 1024 * 1024)
    assert header.records_count == len(records)
    decoded = decode_batch(encoded)
    assert decoded.records == batch.records
    assert decoded.compression == codec


def _one() -> bytes:
    return build_batch(RecordBatch(records=[Record(0, 1000, b"k", b"v")]))


def test_assigning_offsets_keeps_the_crc_valid() -> None:
    batch = bytearray(_one())
    assign_offsets(batch, 42, 3)
    header = check_batch(batch)
    assert (header.base_offset, header.partition_leader_epoch) == (42, 3)


def test_log_append_time_recomputes_the_crc() -> None:
    batch = bytearray(_one())
    set_log_append_time(batch, 5555)
    check_batch(batch)
    assert decode_batch(batch).records[0].timestamp == 5555


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda b: b.__setitem__(65, b[65] ^ 0xFF), ErrorCode.corrupt_message),
        (lambda b: b.__setitem__(16, 1), ErrorCode.unsupported_for_message_format),
        (lambda b: b.__delitem__(slice(-3, None)), ErrorCode.corrupt_message),
    ],
    ids=["bad-crc", "magic-1", "truncated"],
)
def test_invalid_batches_are_rejected_with_kafkas_code(mutate, code) -> None:
    batch = bytearray(_one())
    mutate(batch)
    with pytest.raises(InvalidRecordBatch) as info:
        validate_produced_batch(bytes(batch), 1 << 20)
    assert info.value.code == code


def test_too_large_and_two_batches_and_control() -> None:
    one = _one()
    with pytest.raises(InvalidRecordBatch) as info:
        validate_produced_batch(one, len(one) - 1)
    assert info.value.code == ErrorCode.message_too_large
    with pytest.raises(InvalidRecordBatch) as info:
        validate_produced_batch(one + one, 1 << 20)
    assert info.value.code == ErrorCode.invalid_record
    marker = build_control_batch(
        commit=True, producer_id=1, producer_epoch=0, coordinator_epoch=0, timestamp_ms=1
    )
    with pytest.raises(InvalidRecordBatch) as info:
        validate_produced_batch(marker, 1 << 20)
    assert info.value.code == ErrorCode.invalid_record
    assert control_type(decode_batch(marker)) == CONTROL_COMMIT


def test_iter_batches_stops_at_a_partial_tail() -> None:
    one = _one()
    data = one + one + one[:30]
    assert [pos for pos, _ in iter_batches(data)] == [0, len(one)]
    assert parse_header(data, len(one)).records_count == 1


@pytest.mark.parametrize("codec", [Compression.GZIP, Compression.LZ4, Compression.ZSTD])
def test_a_compressed_batch_whose_payload_is_not_that_codec_is_corrupt(codec) -> None:
    """A CRC-valid batch of garbage would stop every consumer of the partition at its offset."""
    good = build_batch(RecordBatch([Record(0, 1_000, b"k", b"v" * 50)], compression=codec))
    assert validate_produced_batch(good, 1 << 20).compression == codec
    garbage = bytearray(good)
    garbage[61:] = bytes(len(garbage) - 61)
    garbage[17:21] = crc_of(garbage, 0, len(garbage)).to_bytes(4, "big")
    with pytest.raises(InvalidRecordBatch, match=r"not .* data") as info:
        validate_produced_batch(bytes(garbage), 1 << 20)
    assert info.value.code == ErrorCode.corrupt_message
