from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from klamm.protocol.compression import Compression, InflatesTooFar, compress
from klamm.protocol.errors import ErrorCode, InvalidRecordBatch
from klamm.protocol.record_batch import (
    CONTROL_COMMIT,
    HEADER_SIZE,
    MAX_RECORD_ERRORS,
    Record,
    RecordBatch,
    assign_offsets,
    build_batch,
    build_control_batch,
    check_batch,
    check_produced_header,
    control_type,
    crc_of,
    decode_batch,
    find_by_timestamp,
    iter_batches,
    parse_header,
    set_log_append_time,
    validate_produced_batch,
    validate_records,
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


# --- the produce-time record walk (issue 11, findings 7 and 12) ----------------------------------

ALL_CODECS = list(Compression)


def _reframe(
    records: bytes,
    *,
    count: int | None = None,
    last_delta: int | None = None,
    codec: Compression | None = None,
    payload: bytes | None = None,
) -> bytes:
    """`records` (one encoded batch) with some header fields or its payload replaced, and the CRC
    recomputed: what a client that means harm can send."""
    out = bytearray(records[:HEADER_SIZE] if payload is not None else records)
    if payload is not None:
        out += payload
        out[8:12] = (len(out) - 12).to_bytes(4, "big")
    if count is not None:
        out[57:61] = count.to_bytes(4, "big", signed=True)
    if last_delta is not None:
        out[23:27] = last_delta.to_bytes(4, "big", signed=True)
    if codec is not None:
        out[21:23] = (int.from_bytes(out[21:23], "big") & ~7 | codec).to_bytes(2, "big")
    out[17:21] = crc_of(out, 0, len(out)).to_bytes(4, "big")
    return bytes(out)


def _rejected(batch: bytes) -> InvalidRecordBatch:
    with pytest.raises(InvalidRecordBatch) as info:
        validate_produced_batch(batch, 1 << 30)
    return info.value


@pytest.mark.parametrize("codec", [Compression.GZIP, Compression.LZ4, Compression.ZSTD])
def test_a_compressed_batch_whose_payload_is_not_that_codec_is_corrupt(codec) -> None:
    """A CRC-valid batch of garbage would stop every consumer of the partition at its offset."""
    good = build_batch(RecordBatch([Record(0, 1_000, b"k", b"v" * 50)], compression=codec))
    assert validate_produced_batch(good, 1 << 20).compression == codec
    garbage = _reframe(good, payload=bytes(len(good) - HEADER_SIZE))
    assert _rejected(garbage).code == ErrorCode.corrupt_message


@pytest.mark.parametrize(
    ("codec", "payload"),
    [
        (Compression.GZIP, b"\x1f\x8b\x08\x00" + b"garbage" * 8),
        (Compression.ZSTD, b"\x28\xb5\x2f\xfd" + b"garbage" * 8),
        (Compression.LZ4, b"\x04\x22\x4d\x18" + b"garbage" * 8),
        (Compression.SNAPPY, b"\xff\xff\xff\x0fgarbage" * 8),
        (
            Compression.SNAPPY,
            b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01" + b"\x00\x00\x00\x05junk!",
        ),
    ],
    ids=["gzip-magic", "zstd-magic", "lz4-magic", "snappy-raw", "snappy-xerial"],
)
def test_codec_magic_followed_by_garbage_is_corrupt(codec, payload) -> None:
    good = build_batch(RecordBatch([Record(0, 1_000, b"k", b"v")]))
    assert _rejected(_reframe(good, codec=codec, payload=payload)).code == ErrorCode.corrupt_message


@pytest.mark.parametrize("codec", ALL_CODECS)
def test_a_negative_record_length_is_an_invalid_record(codec) -> None:
    # One record whose length varint says -1: Kafka's DefaultRecord.readFrom refuses it.
    inner = build_batch(RecordBatch([Record(0, 1_000, b"k", b"v" * 20)]))[HEADER_SIZE:]
    bad = b"\x01" + inner[1:]
    batch = _reframe(_one(), codec=codec, payload=compress(codec, bad))
    error = _rejected(batch)
    assert error.code == ErrorCode.invalid_record
    assert "record size" in str(error)


def test_the_70_byte_batch_claiming_two_billion_offsets_is_refused() -> None:
    """Finding 7: count and last_offset_delta agree (2^31-1 records), one real record: every
    append of it used to roll a segment."""
    one = _one()
    assert len(one) == 70
    forged = _reframe(one, count=2**31 - 1, last_delta=2**31 - 2)
    assert parse_header(forged).records_count - 1 == parse_header(forged).last_offset_delta
    error = _rejected(forged)
    assert error.code == ErrorCode.invalid_record
    assert "Incorrect declared batch size" in str(error)


@pytest.mark.parametrize("codec", ALL_CODECS)
def test_more_or_fewer_records_than_declared_are_refused(codec) -> None:
    three = build_batch(
        RecordBatch([Record(i, 1_000, b"k", b"v") for i in range(3)], compression=codec)
    )
    fewer = _reframe(three, count=2, last_delta=1)  # a third record trails
    assert "remaining" in str(_rejected(fewer))
    more = _reframe(three, count=4, last_delta=3)
    assert "premature EOF" in str(_rejected(more))
    assert _rejected(fewer).code == _rejected(more).code == ErrorCode.invalid_record


@pytest.mark.parametrize("codec", ALL_CODECS)
def test_offset_deltas_must_be_consecutive(codec) -> None:
    gap = build_batch(RecordBatch(
        [Record(0, 1_000, b"k", b"v"), Record(2, 1_000, b"k", b"v")],
        compression=codec, last_offset_delta=1,
    ))  # fmt: skip
    error = _rejected(gap)
    assert error.code == ErrorCode.invalid_record
    assert "offset delta" in str(error)
    swapped = build_batch(RecordBatch(
        [Record(1, 1_000, b"k", b"v"), Record(0, 1_000, b"k", b"v")],
        compression=codec, last_offset_delta=1,
    ))  # fmt: skip
    assert "offset delta" in str(_rejected(swapped))


@pytest.mark.parametrize(
    ("body", "what"),
    [
        (b"\x00\x00\x00\x01k\x03\x00", "value length"),  # value length -2
        (b"\x00\x00\x00\x03\x00\x00", "key length"),  # key length -2
        (b"\x00\x00\x00\x00\x00\x01", "record headers"),  # header count -1
        (b"\x00\x00\x00\x00\x00\x02\x01\x00", "header key"),  # header key length -1
        (b"\x00\x00\x00\x00\x00\x00\x00\x00", "record size"),  # two bytes left in the record
    ],
)
def test_inconsistent_fields_inside_a_record_are_refused(body, what) -> None:
    record = bytes([len(body) << 1]) + body
    batch = _reframe(_one(), payload=record)
    error = _rejected(batch)
    assert error.code == ErrorCode.invalid_record
    assert what in str(error)


def test_the_walk_reports_timestamps_and_bounded_keyless_records() -> None:
    count = 2 * MAX_RECORD_ERRORS + 50
    batch = build_batch(RecordBatch([
        Record(i, 5_000 + (i % 7) - 3, None if i % 2 else b"k", b"v") for i in range(count)
    ]))  # fmt: skip
    header = check_produced_header(batch, 1 << 20)
    summary = validate_records(batch, header)
    assert (summary.min_timestamp, summary.max_timestamp) == (4_997, 5_003)
    assert summary.null_keys == count // 2
    assert summary.first_null_keys == tuple(range(1, 2 * MAX_RECORD_ERRORS, 2))


def test_a_bounded_inflate_says_how_far_it_got() -> None:
    batch = build_batch(
        RecordBatch([Record(0, 1, b"k", b"v" * 100_000)], compression=Compression.ZSTD)
    )
    header = check_produced_header(batch, 1 << 20)
    with pytest.raises(InflatesTooFar):
        validate_records(batch, header, inflate_limit=50_000)
    assert validate_records(batch, header).null_keys == 0


@settings(max_examples=150, deadline=None)
@given(records=records, codec=st.sampled_from(list(Compression)), data=st.data())
def test_a_corrupted_byte_decodes_to_the_declared_records_or_is_refused(
    records, codec, data
) -> None:
    """Any single byte changed inside the records region (CRC recomputed, as a forger would):
    the batch either still decodes to exactly its declared number of records or is refused,
    never accepted with a different count."""
    base_ts = 1_700_000_000_000
    batch = build_batch(RecordBatch(
        [Record(i, base_ts + dt, key, value, tuple(headers))
         for i, (key, value, headers, dt) in enumerate(records)],
        compression=codec,
    ))  # fmt: skip
    assert validate_produced_batch(batch, 1 << 20).records_count == len(records)
    at = data.draw(st.integers(min_value=HEADER_SIZE, max_value=len(batch) - 1))
    byte = data.draw(st.integers(min_value=0, max_value=255).filter(lambda b: b != batch[at]))
    damaged = bytearray(batch)
    damaged[at] = byte
    damaged[17:21] = crc_of(damaged, 0, len(damaged)).to_bytes(4, "big")
    try:
        header = validate_produced_batch(bytes(damaged), 1 << 20)
    except InvalidRecordBatch as exc:
        assert exc.code in (ErrorCode.corrupt_message, ErrorCode.invalid_record)
        return
    decoded = decode_batch(bytes(damaged))  # what a consumer gets must decode ...
    assert len(decoded.records) == header.records_count == len(records)  # ... to the same count
    assert [r.offset for r in decoded.records] == list(range(len(records)))


def test_a_timestamp_search_reads_only_up_to_its_match() -> None:
    """ListOffsets by timestamp reads the straddling batch's records until the first match: the
    records after it are not even decoded (a stored bomb used to be decoded whole, 9 s a call)."""
    good = build_batch(RecordBatch([Record(i, 1_000 + i, b"k", b"v") for i in range(3)]))
    garbled = bytearray(good)
    garbled[-7:] = b"\xff" * 7  # the last record no longer decodes, from its timestamp on
    garbled[17:21] = crc_of(garbled, 0, len(garbled)).to_bytes(4, "big")
    assert find_by_timestamp(garbled, 1_001) == (1, 1_001)
    assert find_by_timestamp(garbled, 1_000, min_offset=1) == (1, 1_001)
    assert find_by_timestamp(good, 1_002, exact=True) == (2, 1_002)
    assert find_by_timestamp(good, 5_000) is None
    with pytest.raises(InvalidRecordBatch) as info:
        find_by_timestamp(garbled, 1_002)
    assert info.value.code == ErrorCode.corrupt_message
