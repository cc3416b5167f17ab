"""Record batch v2 (magic 2): header parsing, produce-time validation, offset assignment, and a
builder/decoder for the few places that need records (control markers, internal logs, tests).

Batch layout (DefaultRecordBatch.java; offsets in bytes):

     0 BaseOffset i64            broker overwrites on append
     8 BatchLength i32           bytes after this field: a batch is 12 + BatchLength bytes
    12 PartitionLeaderEpoch i32  broker overwrites; NOT covered by the CRC
    16 Magic i8                  2
    17 CRC u32                   CRC-32C of bytes [21, end)
    21 Attributes i16            bits 0-2 codec, 3 LogAppendTime, 4 transactional, 5 control,
                                 6 has delete horizon
    23 LastOffsetDelta i32
    27 BaseTimestamp i64
    35 MaxTimestamp i64
    43 ProducerId i64            -1 when not idempotent
    51 ProducerEpoch i16
    53 BaseSequence i32
    57 RecordsCount i32
    61 Records                   compressed as one blob when codec != 0

Fetch touches only the 61-byte header. Produce also walks every record once (`validate_records`,
inflating a compressed batch first), because a batch whose records do not decode into exactly what
its header declares stops every consumer of the partition at its offset; the walk reads only the
varint lengths, offset and timestamp deltas and builds no objects (research/performance.md:
per-record work in Python costs ~1 µs; this walk ~0.65 µs of CPU, bench/validate.py). Runs of
records laid out alike (same key and value lengths, no headers: what most producers send) are
checked in bulk instead, column by column in C (record_runs.py): ~0.06-0.13 µs a record.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import crc32c

from klamm.protocol.compression import Compression, compress, decompress, inflate
from klamm.protocol.errors import ErrorCode, InvalidRecordBatch
from klamm.protocol.record_runs import Run, uniform_run

HEADER = struct.Struct(">qiibIhiqqqhii")
HEADER_SIZE = HEADER.size  # 61
LOG_OVERHEAD = 12  # BaseOffset + BatchLength: the bytes not counted in BatchLength
CRC_START = 21
MAGIC_V2 = 2

ATTR_CODEC_MASK = 0x07
ATTR_LOG_APPEND_TIME = 0x08
ATTR_TRANSACTIONAL = 0x10
ATTR_CONTROL = 0x20
ATTR_DELETE_HORIZON = 0x40

NO_PRODUCER_ID = -1
NO_SEQUENCE = -1

_BASE_OFFSET = struct.Struct(">q")
_LEADER_EPOCH = struct.Struct(">i")
_CRC = struct.Struct(">I")
_ATTRIBUTES = struct.Struct(">h")
_MAX_TIMESTAMP = struct.Struct(">q")
_I16 = struct.Struct(">h")
_CONTROL_VALUE = struct.Struct(">hi")


@dataclass(frozen=True, slots=True)
class BatchHeader:
    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int

    @property
    def size(self) -> int:
        """Total bytes of the batch, header included."""
        return LOG_OVERHEAD + self.batch_length

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.last_offset_delta + 1

    @property
    def compression(self) -> int:
        return self.attributes & ATTR_CODEC_MASK

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & ATTR_TRANSACTIONAL)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & ATTR_CONTROL)

    @property
    def last_sequence(self) -> int:
        if self.base_sequence < 0:
            return NO_SEQUENCE
        return (self.base_sequence + self.last_offset_delta) & 0x7FFFFFFF


def parse_header(buf: bytes | bytearray | memoryview, pos: int = 0) -> BatchHeader:
    """The header of the batch at `pos`; raises InvalidRecordBatch if fewer than 61 bytes remain."""
    if len(buf) - pos < HEADER_SIZE:
        raise InvalidRecordBatch(ErrorCode.corrupt_message, "record batch shorter than its header")
    return BatchHeader(*HEADER.unpack_from(buf, pos))


def crc_of(buf: bytes | bytearray | memoryview, pos: int, size: int) -> int:
    return int(crc32c.crc32c(memoryview(buf)[pos + CRC_START : pos + size]))


def check_batch(buf: bytes | bytearray | memoryview, pos: int = 0) -> BatchHeader:
    """Structural check of one stored batch: header, magic, length within buffer, CRC.

    Used on recovery and on produce. Raises InvalidRecordBatch(CORRUPT_MESSAGE).
    """
    header = parse_header(buf, pos)
    if header.magic != MAGIC_V2:
        raise InvalidRecordBatch(
            ErrorCode.unsupported_for_message_format, f"record batch magic {header.magic} is not 2"
        )
    if header.batch_length < HEADER_SIZE - LOG_OVERHEAD:
        raise InvalidRecordBatch(ErrorCode.corrupt_message, "batch length shorter than header")
    if pos + header.size > len(buf):
        raise InvalidRecordBatch(ErrorCode.corrupt_message, "record batch is truncated")
    if crc_of(buf, pos, header.size) != header.crc:
        raise InvalidRecordBatch(ErrorCode.corrupt_message, "record batch CRC mismatch")
    return header


def check_produced_header(records: bytes, max_message_bytes: int) -> BatchHeader:
    """The header-level checks of one partition's records in a Produce (v3+) request, as Kafka's
    ProduceRequest.validateRecords and LogValidator.validateBatch make them.

    Exactly one batch; magic 2; CRC; base offset 0; count = last offset delta + 1 > 0; no
    control batches from clients; an idempotent batch carries a sequence; a known codec; size
    within max.message.bytes. Pure: mutates nothing. `validate_records` then checks the records.
    """
    if len(records) > max_message_bytes:
        raise InvalidRecordBatch(
            ErrorCode.message_too_large,
            f"record batch of {len(records)} bytes exceeds max.message.bytes {max_message_bytes}",
        )
    header = check_batch(records)
    if header.size != len(records):
        raise InvalidRecordBatch(
            ErrorCode.invalid_record, "produce request must carry exactly one record batch"
        )
    if header.base_offset != 0:
        raise InvalidRecordBatch(ErrorCode.invalid_record, "client batch base offset must be 0")
    if header.records_count <= 0 or header.last_offset_delta + 1 != header.records_count:
        raise InvalidRecordBatch(
            ErrorCode.invalid_record,
            f"records count {header.records_count} does not match last offset delta "
            f"{header.last_offset_delta}",
        )
    if header.is_control:
        raise InvalidRecordBatch(
            ErrorCode.invalid_record, "clients are not allowed to write control records"
        )
    if header.producer_id >= 0 and header.base_sequence < 0:
        raise InvalidRecordBatch(
            ErrorCode.invalid_record, "idempotent record batch without a base sequence"
        )
    if header.compression > Compression.ZSTD:
        raise InvalidRecordBatch(
            ErrorCode.unsupported_compression_type, f"unknown codec {header.compression}"
        )
    return header


def validate_produced_batch(records: bytes, max_message_bytes: int) -> BatchHeader:
    """`check_produced_header`, then `validate_records`: everything produce checks about one
    batch before the topic's own rules (keys, timestamps). Pure: mutates nothing."""
    header = check_produced_header(records, max_message_bytes)
    validate_records(records, header)
    return header


# --- the produce-time record walk -------------------------------------------------------------

# How many keyless records a rejection on a compacted topic lists in record_errors. Kafka lists
# every one; a batch declaring millions of records then made a response of hundreds of MiB. The
# first ones tell the producer what is wrong; the error message gives the total.
MAX_RECORD_ERRORS = 100

# A record is at least 7 bytes (length, attributes, timestamp delta, offset delta, key length,
# value length, header count: one byte each), and a header at least 2 (key length, value length).
_MIN_RECORD = 7
_MIN_HEADER = 2

# The value of every varint held in one byte, and in two (indexed by the second byte << 7 | the
# first's low 7 bits): almost every field of a real record, decoded by one list lookup.
_ZIGZAG_1 = [(raw >> 1) ^ -(raw & 1) for raw in range(1 << 7)]
_ZIGZAG_2 = [(raw >> 1) ^ -(raw & 1) for raw in range(1 << 14)]
# Start values of the smallest and largest timestamp delta, replaced by the first record's.
_NO_DELTA_LOW, _NO_DELTA_HIGH = 1 << 64, -(1 << 64)


@dataclass(frozen=True, slots=True)
class RecordsSummary:
    """What walking a batch's records found (all of it consistent with the header)."""

    min_timestamp: int  # the smallest and largest record timestamp (CreateTime)
    max_timestamp: int
    null_keys: int  # records without a key
    first_null_keys: tuple[int, ...]  # the batch indexes of the first MAX_RECORD_ERRORS of them
    size: int  # bytes of records walked (inflated, when the batch is compressed)


def validate_records(
    records: bytes | bytearray | memoryview, header: BatchHeader, inflate_limit: int | None = None
) -> RecordsSummary:
    """Walk every record of the batch `records` (whose header is `header`), inflating it first
    when compressed (at most `inflate_limit` bytes, default MAX_DECOMPRESSED_BYTES).

    The records must decode into exactly what the header declares, as Kafka's record iterator
    requires (DefaultRecord.readFrom, DefaultRecordBatch.RecordIterator): `records_count`
    records whose length framing is consistent and exhausts the payload, with offset deltas
    0, 1, ... in order (so `last_offset_delta` is the last record's), non-negative header counts
    and header key lengths, and key/value lengths of at least -1 (null). Raises InvalidRecordBatch:
    CORRUPT_MESSAGE when the payload does not decompress (InflatesTooFar past the limit),
    INVALID_RECORD when the records do not decode. Pure.
    """
    payload = memoryview(records)[HEADER_SIZE : header.size]
    if header.compression == Compression.NONE:
        raw: bytes | bytearray | memoryview = payload
    else:
        raw = inflate(header.compression, payload, inflate_limit)
    return scan_records(raw, header.records_count, header.base_timestamp)


def scan_records(
    raw: bytes | bytearray | memoryview, count: int, base_timestamp: int, *, bulk: bool = True
) -> RecordsSummary:
    """The record walk of `validate_records`, on the (inflated) records region `raw`.

    Runs of records laid out alike are checked in bulk (record_runs.uniform_run: the same facts,
    column by column in C); the others, and any run the bulk checks do not accept, one by one
    (`_walk`), which reports every error. `bulk=False` walks every record one by one: the
    reference the fast path is tested against."""
    if count * _MIN_RECORD > len(raw):
        # Cheap and before any loop: a header declaring millions of records in a few bytes.
        raise InvalidRecordBatch(
            ErrorCode.invalid_record,
            "Incorrect declared batch size, premature EOF reached: "
            f"{count} records cannot fit in {len(raw)} bytes",
        )
    if isinstance(raw, memoryview) and len(raw) <= _COPY_UP_TO:
        raw = raw.tobytes()  # sliced and indexed about twice as fast as a view
    walk = _Walk()
    if not bulk:
        _walk(raw, walk, count)
    slow = 1  # records to walk one by one before the next bulk attempt
    while walk.index < count:
        run = uniform_run(raw, walk.at, walk.index, count)
        if run is not None:
            walk.add_run(run)
            slow = 1
            continue
        # Irregular records: walk a few, then try again, doubling the few while no run is
        # found, so a batch without runs pays for an attempt every _MAX_SLOW records at most.
        _walk(raw, walk, min(count, walk.index + slow))
        slow = min(slow * 2, _MAX_SLOW)
    if walk.at != len(raw):
        raise InvalidRecordBatch(
            ErrorCode.invalid_record,
            f"Incorrect declared batch size, {len(raw) - walk.at} bytes remaining after "
            f"{count} records",
        )
    return RecordsSummary(
        base_timestamp + walk.low,
        base_timestamp + walk.high,
        walk.null_count,
        tuple(walk.nulls),
        len(raw),
    )


# A records region given as a view (an uncompressed batch in a request, a large inflated one)
# is copied into `bytes` first when at most this big: ~0.1 ms for 1 MiB, against ~10 µs saved
# on every run of records and the per-record walk's indexing. Larger ones (inflated into mmaps
# by compression.inflate, up to 128 MiB) are walked in place: copying one holds the GIL.
_COPY_UP_TO = 2 * 1024 * 1024

# How many records the walk takes one by one, at most, between two attempts to find a run: an
# attempt on a record that starts none costs about as much as walking two or three records.
_MAX_SLOW = 64


class _Walk:
    """Where a record walk is (record `index` starts at byte `at`) and what it found so far."""

    __slots__ = ("at", "high", "index", "low", "null_count", "nulls")

    def __init__(self) -> None:
        self.index = self.at = 0
        self.low, self.high = _NO_DELTA_LOW, _NO_DELTA_HIGH  # the timestamp deltas seen
        self.nulls: list[int] = []  # the first MAX_RECORD_ERRORS keyless records
        self.null_count = 0

    def add_run(self, run: Run) -> None:
        """Account for `run`, which starts at the current record and passed in bulk."""
        if run.keyless:
            if self.null_count < MAX_RECORD_ERRORS:
                listed = min(run.count, MAX_RECORD_ERRORS - self.null_count)
                self.nulls += range(self.index, self.index + listed)
            self.null_count += run.count
        self.low = min(self.low, run.low)
        self.high = max(self.high, run.high)
        self.index += run.count
        self.at += run.count * run.size


def _walk(raw: bytes | bytearray | memoryview, walk: _Walk, stop: int) -> None:
    """Walk records `walk.index` to `stop` (excluded) one by one, checking each."""
    z1, z2 = _ZIGZAG_1, _ZIGZAG_2
    size = len(raw)
    low, high = walk.low, walk.high
    nulls = walk.nulls
    null_count = walk.null_count
    at = walk.at
    try:
        for index in range(walk.index, stop):
            # Every field read inline: one byte, two bytes, or (rarely) the general reader.
            b = raw[at]
            if b < 0x80:
                length = z1[b]
                at += 1
            else:
                c = raw[at + 1]
                if c < 0x80:
                    length = z2[(c << 7) | (b & 0x7F)]
                    at += 2
                else:
                    length, at = _walk_varint(raw, at)
            end = at + length
            if length < _MIN_RECORD - 1 or end > size:
                raise InvalidRecordBatch(
                    ErrorCode.invalid_record,
                    f"Invalid record size {length} of record {index}: "
                    f"{size - at} bytes are available",
                )
            b = raw[at + 1]  # the timestamp delta, after the (unused) attributes byte
            if b < 0x80:
                delta = z1[b]
                at += 2
            else:
                c = raw[at + 2]
                if c < 0x80:
                    delta = z2[(c << 7) | (b & 0x7F)]
                    at += 3
                else:
                    delta, at = _walk_varint(raw, at + 1)
            if delta > high:
                high = delta
            if delta < low:
                low = delta
            b = raw[at]
            if b < 0x80:
                offset_delta = z1[b]
                at += 1
            else:
                c = raw[at + 1]
                if c < 0x80:
                    offset_delta = z2[(c << 7) | (b & 0x7F)]
                    at += 2
                else:
                    offset_delta, at = _walk_varint(raw, at)
            if offset_delta != index:
                raise InvalidRecordBatch(
                    ErrorCode.invalid_record,
                    f"Invalid offset delta {offset_delta} of record {index}: offset deltas must "
                    "be 0, 1, ... in order",
                )
            b = raw[at]
            if b < 0x80:
                key = z1[b]
                at += 1
            else:
                c = raw[at + 1]
                if c < 0x80:
                    key = z2[(c << 7) | (b & 0x7F)]
                    at += 2
                else:
                    key, at = _walk_varint(raw, at)
            if key >= 0:
                at += key
            elif key == -1:
                null_count += 1
                if null_count <= MAX_RECORD_ERRORS:
                    nulls.append(index)
            else:
                raise _bad_length("key", key, index)
            b = raw[at]
            if b < 0x80:
                value = z1[b]
                at += 1
            else:
                c = raw[at + 1]
                if c < 0x80:
                    value = z2[(c << 7) | (b & 0x7F)]
                    at += 2
                else:
                    value, at = _walk_varint(raw, at)
            if value >= 0:
                at += value
            elif value != -1:
                raise _bad_length("value", value, index)
            if raw[at]:
                at = _skip_headers(raw, at, end, index)
            else:
                at += 1
            if at != end:
                raise InvalidRecordBatch(
                    ErrorCode.invalid_record,
                    f"Invalid record size: expected to read {length} bytes in record {index}, "
                    f"but read {length + at - end}",
                )
    except IndexError:
        raise InvalidRecordBatch(
            ErrorCode.invalid_record, "Incorrect declared batch size, premature EOF reached"
        ) from None
    walk.low, walk.high, walk.null_count, walk.at, walk.index = low, high, null_count, at, stop


def _walk_varint(buf: bytes | bytearray | memoryview, pos: int) -> tuple[int, int]:
    """A zig-zag varint of up to 64 bits for the record walk: IndexError past the end (the walk
    reports it as a premature end), INVALID_RECORD when longer than 10 bytes."""
    raw = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        raw |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (raw >> 1) ^ -(raw & 1), pos
        shift += 7
        if shift > 63:
            raise InvalidRecordBatch(ErrorCode.invalid_record, "Varint is too long in record")


def _bad_length(what: str, length: int, index: int) -> InvalidRecordBatch:
    return InvalidRecordBatch(
        ErrorCode.invalid_record, f"Invalid {what} length {length} in record {index}"
    )


def _skip_headers(raw: bytes | bytearray | memoryview, at: int, end: int, index: int) -> int:
    """Position after the header count at `at` and the headers it announces."""
    count, at = _walk_varint(raw, at)
    if count < 0 or count * _MIN_HEADER > end - at:
        raise InvalidRecordBatch(
            ErrorCode.invalid_record, f"Found invalid number of record headers {count}"
        )
    for _ in range(count):
        key, at = _walk_varint(raw, at)
        if key < 0:
            raise InvalidRecordBatch(
                ErrorCode.invalid_record, f"Invalid negative header key size {key}"
            )
        value, at = _walk_varint(raw, at + key)
        if value >= 0:
            at += value
        elif value != -1:
            raise _bad_length("header value", value, index)
    return at


def assign_offsets(batch: bytearray | memoryview, base_offset: int, leader_epoch: int) -> None:
    """Rewrite base offset and partition leader epoch in place; neither is covered by the CRC."""
    _BASE_OFFSET.pack_into(batch, 0, base_offset)
    _LEADER_EPOCH.pack_into(batch, 12, leader_epoch)


def set_max_timestamp(batch: bytearray, timestamp_ms: int) -> None:
    """Correct a CreateTime batch's MaxTimestamp to its records' largest timestamp, recomputing
    the CRC, as Kafka's LogValidator does (setMaxTimestamp) when a producer got it wrong: the
    time index, retention and ListOffsets trust the header."""
    _MAX_TIMESTAMP.pack_into(batch, 35, timestamp_ms)
    _CRC.pack_into(batch, 17, crc_of(batch, 0, len(batch)))


def set_log_append_time(batch: bytearray, timestamp_ms: int) -> None:
    """Stamp a batch with LogAppendTime (message.timestamp.type=LogAppendTime): sets the
    attribute bit and MaxTimestamp, then recomputes the CRC they are covered by."""
    (attributes,) = _ATTRIBUTES.unpack_from(batch, 21)
    _ATTRIBUTES.pack_into(batch, 21, attributes | ATTR_LOG_APPEND_TIME)
    _MAX_TIMESTAMP.pack_into(batch, 35, timestamp_ms)
    _CRC.pack_into(batch, 17, crc_of(batch, 0, len(batch)))


def iter_batches(buf: bytes | bytearray | memoryview) -> Iterator[tuple[int, BatchHeader]]:
    """(position, header) of each complete batch; stops quietly at a trailing partial batch."""
    pos = 0
    end = len(buf)
    while end - pos >= HEADER_SIZE:
        header = BatchHeader(*HEADER.unpack_from(buf, pos))
        if header.batch_length < HEADER_SIZE - LOG_OVERHEAD or pos + header.size > end:
            return
        yield pos, header
        pos += header.size


# --- records: only off the hot path ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Record:
    """One record as a client sees it (offset and timestamp absolute)."""

    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()


@dataclass(slots=True)
class RecordBatch:
    """A decoded batch; produced by `decode_batch`, consumed by `build_batch`."""

    records: list[Record]
    base_offset: int = 0
    partition_leader_epoch: int = -1
    compression: Compression = Compression.NONE
    log_append_time: bool = False
    transactional: bool = False
    control: bool = False
    producer_id: int = NO_PRODUCER_ID
    producer_epoch: int = -1
    base_sequence: int = NO_SEQUENCE
    last_offset_delta: int | None = None  # None: len(records) - 1
    # None: the largest record timestamp. Set to keep a header's own value (LogAppendTime
    # batches, and the empty batches compaction leaves behind).
    max_timestamp: int | None = None
    # KIP-534: set by log compaction on batches holding tombstones or markers; BaseTimestamp then
    # carries the horizon after which they may be removed, record timestamps relative to it.
    delete_horizon_ms: int | None = None


def _zigzag(value: int) -> int:
    return (value << 1) ^ (value >> 63)


def _write_varint(out: bytearray, value: int) -> None:
    value = _zigzag(value) & 0xFFFFFFFFFFFFFFFF
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _read_varint(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    raw = shift = 0
    while True:
        if pos >= len(buf):
            raise InvalidRecordBatch(ErrorCode.corrupt_message, "truncated varint in record")
        byte = buf[pos]
        pos += 1
        raw |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
        if shift > 63:
            raise InvalidRecordBatch(ErrorCode.corrupt_message, "varint too long in record")
    return (raw >> 1) ^ -(raw & 1), pos


def _read_bytes(buf: bytes, pos: int) -> tuple[bytes | None, int]:
    length, pos = _read_varint(buf, pos)
    if length < 0:
        return None, pos
    if pos + length > len(buf):
        raise InvalidRecordBatch(ErrorCode.corrupt_message, "truncated field in record")
    return buf[pos : pos + length], pos + length


def _encode_record(out: bytearray, record: Record, base_offset: int, base_timestamp: int) -> None:
    body = bytearray(b"\0")  # attributes: unused
    _write_varint(body, record.timestamp - base_timestamp)
    _write_varint(body, record.offset - base_offset)
    for blob in (record.key, record.value):
        if blob is None:
            _write_varint(body, -1)
        else:
            _write_varint(body, len(blob))
            body += blob
    _write_varint(body, len(record.headers))
    for name, value in record.headers:
        encoded = name.encode("utf-8", "surrogateescape")
        _write_varint(body, len(encoded))
        body += encoded
        if value is None:
            _write_varint(body, -1)
        else:
            _write_varint(body, len(value))
            body += value
    _write_varint(out, len(body))
    out += body


def build_batch(batch: RecordBatch) -> bytes:
    """Encode a batch with a valid CRC. Record offsets and timestamps are absolute."""
    records = batch.records
    base_offset = batch.base_offset
    max_timestamp = batch.max_timestamp
    if max_timestamp is None:
        max_timestamp = max((r.timestamp for r in records), default=-1)
    base_timestamp = min((r.timestamp for r in records), default=max_timestamp)
    if batch.delete_horizon_ms is not None:
        base_timestamp = batch.delete_horizon_ms
    payload = bytearray()
    for record in records:
        _encode_record(payload, record, base_offset, base_timestamp)
    blob = compress(batch.compression, bytes(payload))
    attributes = int(batch.compression)
    if batch.log_append_time:
        attributes |= ATTR_LOG_APPEND_TIME
    if batch.transactional:
        attributes |= ATTR_TRANSACTIONAL
    if batch.control:
        attributes |= ATTR_CONTROL
    if batch.delete_horizon_ms is not None:
        attributes |= ATTR_DELETE_HORIZON
    last_delta = batch.last_offset_delta
    if last_delta is None:
        last_delta = (records[-1].offset - base_offset) if records else 0
    out = bytearray(HEADER_SIZE)
    out += blob
    HEADER.pack_into(
        out, 0, base_offset, len(out) - LOG_OVERHEAD, batch.partition_leader_epoch, MAGIC_V2, 0,
        attributes, last_delta, base_timestamp, max_timestamp, batch.producer_id,
        batch.producer_epoch, batch.base_sequence, len(records),
    )  # fmt: skip
    _CRC.pack_into(out, 17, crc_of(out, 0, len(out)))
    return bytes(out)


def decode_batch(buf: bytes | bytearray | memoryview, pos: int = 0) -> RecordBatch:
    """Decode one batch and its records (decompressing); validates the CRC first."""
    header = check_batch(buf, pos)
    raw = decompress(header.compression, memoryview(buf)[pos + HEADER_SIZE : pos + header.size])
    records: list[Record] = []
    at = 0
    for _ in range(header.records_count):
        length, at = _read_varint(raw, at)
        end = at + length
        if length < 0 or end > len(raw):
            raise InvalidRecordBatch(ErrorCode.corrupt_message, "record length out of bounds")
        at += 1  # attributes
        ts_delta, at = _read_varint(raw, at)
        offset_delta, at = _read_varint(raw, at)
        key, at = _read_bytes(raw, at)
        value, at = _read_bytes(raw, at)
        count, at = _read_varint(raw, at)
        headers: list[tuple[str, bytes | None]] = []
        for _ in range(count):
            name, at = _read_bytes(raw, at)
            hvalue, at = _read_bytes(raw, at)
            # Kafka reads a header key as UTF-8 without refusing bad bytes; surrogateescape keeps
            # them, so a batch re-encoded by compaction carries the producer's exact bytes.
            headers.append(((name or b"").decode("utf-8", "surrogateescape"), hvalue))
        if at != end:
            raise InvalidRecordBatch(ErrorCode.corrupt_message, "record length mismatch")
        timestamp = (
            header.max_timestamp
            if header.attributes & ATTR_LOG_APPEND_TIME
            else header.base_timestamp + ts_delta
        )
        records.append(
            Record(header.base_offset + offset_delta, timestamp, key, value, tuple(headers))
        )
    return batch_with_header(header, records)


def find_by_timestamp(
    buf: bytes | bytearray | memoryview, timestamp: int, *, exact: bool = False, min_offset: int = 0
) -> tuple[int, int] | None:
    """(offset, timestamp) of the first record of the stored batch `buf` at or after
    `min_offset` whose timestamp is >= `timestamp` (== with `exact`); None if there is none.

    For ListOffsets by timestamp: reads only each record's length, timestamp and offset deltas,
    builds nothing, and stops at the first match, so a batch of millions of records costs a
    fraction of `decode_batch` (which built every record). Raises InvalidRecordBatch
    (CORRUPT_MESSAGE) for a batch that does not decode."""
    header = check_batch(buf)
    if header.attributes & ATTR_LOG_APPEND_TIME:  # every record carries MaxTimestamp
        found = header.max_timestamp == timestamp if exact else header.max_timestamp >= timestamp
        offset = max(header.base_offset, min_offset)
        return (offset, header.max_timestamp) if found and offset <= header.last_offset else None
    raw = inflate(header.compression, memoryview(buf)[HEADER_SIZE : header.size])
    base_offset, base_timestamp = header.base_offset, header.base_timestamp
    at = 0
    try:
        for _ in range(header.records_count):
            length, at = _walk_varint(raw, at)
            end = at + length
            delta, after = _walk_varint(raw, at + 1)  # after the attributes byte
            offset_delta, _ = _walk_varint(raw, after)
            record_ts = base_timestamp + delta
            if base_offset + offset_delta >= min_offset and (
                record_ts == timestamp if exact else record_ts >= timestamp
            ):
                return base_offset + offset_delta, record_ts
            at = end
    except (IndexError, InvalidRecordBatch):
        raise InvalidRecordBatch(
            ErrorCode.corrupt_message, "record batch does not decode"
        ) from None
    return None


def batch_with_header(header: BatchHeader, records: list[Record]) -> RecordBatch:
    """`records` with everything `header` says about its batch: offsets, producer fields,
    leader epoch, codec, timestamp type, transactional/control flags and delete horizon."""
    return RecordBatch(
        records=records,
        base_offset=header.base_offset,
        partition_leader_epoch=header.partition_leader_epoch,
        compression=Compression(header.compression),
        log_append_time=bool(header.attributes & ATTR_LOG_APPEND_TIME),
        transactional=header.is_transactional,
        control=header.is_control,
        producer_id=header.producer_id,
        producer_epoch=header.producer_epoch,
        base_sequence=header.base_sequence,
        last_offset_delta=header.last_offset_delta,
        delete_horizon_ms=(
            header.base_timestamp if header.attributes & ATTR_DELETE_HORIZON else None
        ),
    )


# --- control records (transaction markers) ---------------------------------------------------

CONTROL_ABORT = 0
CONTROL_COMMIT = 1


def build_control_batch(
    *,
    commit: bool,
    producer_id: int,
    producer_epoch: int,
    coordinator_epoch: int,
    timestamp_ms: int,
) -> bytes:
    """A COMMIT or ABORT marker batch: control + transactional, one record whose key is
    (version 0, type) and value (version 0, coordinator epoch)."""
    key = _I16.pack(0) + _I16.pack(CONTROL_COMMIT if commit else CONTROL_ABORT)
    value = _CONTROL_VALUE.pack(0, coordinator_epoch)
    return build_batch(
        RecordBatch(
            records=[Record(0, timestamp_ms, key, value)],
            transactional=True,
            control=True,
            producer_id=producer_id,
            producer_epoch=producer_epoch,
        )
    )


def control_type(batch: RecordBatch) -> int:
    """CONTROL_COMMIT or CONTROL_ABORT for a decoded control batch."""
    key = batch.records[0].key
    if not batch.control or key is None or len(key) < 4:
        raise InvalidRecordBatch(ErrorCode.corrupt_message, "not a control batch")
    return int(_I16.unpack_from(key, 2)[0])


def records_of(batches: Sequence[bytes]) -> list[Record]:
    """All records of several encoded batches (test and tooling helper)."""
    out: list[Record] = []
    for blob in batches:
        for pos, _ in iter_batches(blob):
            out.extend(decode_batch(blob, pos).records)
    return out
