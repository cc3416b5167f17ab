"""The produce-time record walk's fast path: runs of records laid out alike, checked in bulk.

Most producers send batches whose records differ only in content and in their offset and
timestamp deltas: same key and value lengths, no headers (a load generator, fixed-size
events, a serialiser with a fixed schema). Records laid out alike have one size, so the walk
knows where each one starts without reading its length, and every check the per-record walk
(record_batch.scan_records) makes can be made on a *column*: the bytes at one position of every
record, cut out by one stride slice in C (`raw[start:stop:size]`). A run of n records costs a
dozen C passes over n bytes instead of n iterations of the Python loop (about 0.5 µs each).

What one record's bytes are, and what a run requires of each, given a template record (the
first of the run) that the checks below find well formed:

    length      varint   the same bytes in every record (so the same size)
    attributes  1 byte   anything (Kafka ignores record attributes; so does the walk)
    ts delta    varint   the same width (1 or 2 bytes) in every record; any value
    offset      varint   exactly the index of the record: compared with a precomputed column
    key length  varint   the same bytes in every record (>= -1; -1 counts a keyless record)
    key         bytes    anything
    value len   varint   the same bytes in every record (>= -1)
    value       bytes    anything
    headers     varint   0 in every record (records with headers take the per-record walk)

With those columns equal, every record of the run decodes exactly as the template does, so the
per-record walk would accept each one and find the same lengths: the run proves the same facts.
The fast path only ever *accepts* records; whatever it does not accept (an irregular record, a
malformed one, a run too short to pay) is left to the per-record walk, which then reports any
error exactly as without the fast path. Pure functions of bytes, like the rest of protocol/.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import cache

# A run must have at least this many records to be tried in bulk: a run costs about 10 µs
# (the template parse and a dozen slices), the per-record walk about 0.6 µs a record.
MIN_RUN = 16
# The offset deltas the precomputed columns cover (three-byte varints, 384 KiB of tables, built
# on first use): every batch a client sends by default (librdkafka's batch.num.messages: 10,000;
# Java's batch.size: 16 KiB). Records past this index take the per-record walk.
MAX_BULK_INDEX = 1 << 16


@dataclass(slots=True)
class Run:
    """`count` records, each `size` bytes, whose checks all passed in bulk."""

    count: int
    size: int
    low: int  # the smallest and largest timestamp delta in the run
    high: int
    keyless: bool  # every record of the run has a null key (none has, otherwise)


@cache
def _offset_columns(width: int) -> tuple[bytes, ...]:
    """Byte k of the zig-zag varint of every index i < MAX_BULK_INDEX whose varint has `width`
    bytes, as `width` columns indexed by i (entries for other widths are never compared).

    An index is never negative, so its zig-zag value is 2i: byte 0 holds (2i) & 0x7F, which
    repeats every 64 indexes, and byte k > 0 holds (i >> (7k - 1)) & 0x7F, each value for
    2^(7k - 1) indexes in a row; every byte but the last has the continuation bit."""
    columns = []
    for k in range(width):
        if k == 0:
            period = bytes(range(0, 128, 2))
        else:
            period = b"".join(_BYTES[v] * (1 << (7 * k - 1)) for v in range(128))
        column = (period * -(-MAX_BULK_INDEX // len(period)))[:MAX_BULK_INDEX]
        columns.append(column.translate(_CONTINUED) if k < width - 1 else column)
    return tuple(columns)


# Each byte value with the continuation bit set.
_CONTINUED = bytes(b | 0x80 for b in range(256))


def _varint(raw: bytes | bytearray | memoryview, at: int) -> tuple[int, int]:
    """The zig-zag varint at `at` and its width; width 0 when it is not 1-3 bytes within `raw`."""
    value = shift = 0
    for width in range(1, 4):
        if at >= len(raw):
            return 0, 0
        byte = raw[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (value >> 1) ^ -(value & 1), width
        shift += 7
    return 0, 0


def _template(raw: bytes | bytearray | memoryview, at: int) -> tuple[int, ...] | None:
    """The layout of the record at `at` if it can start a run: (size, length width, ts delta
    width, offset width, key length, key length width, value length, value length width), or
    None when it is malformed or not of the kind a run covers (headers, wide varints)."""
    length, lw = _varint(raw, at)
    pos = at + lw + 1  # after the attributes byte
    _, tw = _varint(raw, pos)
    if not lw or tw not in (1, 2):
        return None
    _, ow = _varint(raw, pos + tw)
    key, kw = _varint(raw, pos + tw + ow)
    if not ow or not kw or key < -1:
        return None
    value, vw = _varint(raw, pos + tw + ow + kw + max(key, 0))
    if not vw or value < -1:
        return None
    headers = pos + tw + ow + kw + max(key, 0) + vw + max(value, 0)
    if headers >= len(raw) or raw[headers] != 0 or headers + 1 - (at + lw) != length:
        return None
    return (lw + length, lw, tw, ow, key, kw, value, vw)


# Each byte value as a one-byte `bytes`: stripping a column of it counts how many of the
# column's first bytes have that value.
_BYTES = [bytes([b]) for b in range(256)]
# Bytes with the continuation bit (0x80) set become 1, the others 0: a column of varint bytes
# through it, stripped of leading zeros or ones, tells how many of its first bytes end a varint
# or continue one.
_CONTINUES = bytes(b >> 7 for b in range(256))


def uniform_run(raw: bytes | bytearray | memoryview, at: int, index: int, count: int) -> Run | None:
    """The run of records, from the one at byte `at` (record `index` of `count`) up to the first
    that differs in layout or the end of the offset width of `index`, if at least MIN_RUN records
    long and all of it passes in bulk; else None. Never raises on malformed input: reporting it
    is the per-record walk's job."""
    if index < 64:
        width, end = 1, 64  # the zig-zag varint of an index (2 x index) is one byte below 64
    elif index < 8192:
        width, end = 2, 8192
    else:
        width, end = 3, MAX_BULK_INDEX
    n = min(end, count) - index
    if n < MIN_RUN:
        return None
    # A cheap look before the template: the next record must start with the same length.
    first = raw[at]
    if first < 0x80:
        lw, size = 1, 1 + (first >> 1)  # a record's length is never negative: zigzag(l) = 2l
    elif at + 1 < len(raw) and raw[at + 1] < 0x80:
        lw, size = 2, 2 + ((raw[at + 1] << 7 | first & 0x7F) >> 1)
    else:
        return None
    prefix = raw[at : at + lw]
    last = at + (MIN_RUN - 1) * size  # and so must the last record of the shortest run
    if prefix != raw[at + size : at + size + lw] or prefix != raw[last : last + lw]:
        return None
    layout = _template(raw, at)
    if layout is None or layout[3] != width:
        return None
    size, lw, tw, ow, key, kw, _, vw = layout
    n = min(n, (len(raw) - at) // size)
    # The positions within a record of the bytes every record must share, and of the deltas.
    ts = lw + 1
    off = ts + tw
    key_at = off + ow
    value_at = key_at + kw + max(key, 0)
    stop = at + n * size
    for k in (*range(lw), *range(key_at, key_at + kw), *range(value_at, value_at + vw), size - 1):
        col = bytes(raw[at + k : stop : size])
        n = min(n, len(col) - len(col.lstrip(_BYTES[raw[at + k]])))
    # The timestamp delta: `tw` bytes, all but the last with the continuation bit.
    for k in range(tw):
        flags = bytes(raw[at + ts + k : stop : size]).translate(_CONTINUES)
        n = min(n, len(flags) - len(flags.lstrip(_BYTES[1 if k < tw - 1 else 0])))
    if n < MIN_RUN:
        return None
    stop = at + n * size
    offsets = _offset_columns(width)
    for k in range(ow):
        if bytes(raw[at + off + k : stop : size]) != offsets[k][index : index + n]:
            return None  # a wrong offset delta: the per-record walk reports it
    low, high = _ts_deltas(raw, at + ts, stop, size, tw)
    return Run(n, size, low, high, key == -1)


def _ts_deltas(
    raw: bytes | bytearray | memoryview, start: int, stop: int, size: int, width: int
) -> tuple[int, int]:
    """The smallest and largest timestamp delta of the run's records (varints of `width`
    bytes)."""
    first = bytes(raw[start:stop:size])
    if width == 1:
        deltas = {(b >> 1) ^ -(b & 1) for b in set(first)}  # at most 128 distinct bytes
        return min(deltas), max(deltas)
    second = bytes(raw[start + 1 : stop : size])
    if 1 not in first.translate(_LOW_BIT):
        # No negative delta (zig-zag: an even value is 2 x delta), so the order of the varints'
        # values is the order of the deltas: interleave the two columns into 16-bit words
        # (low 7 bits, then the high byte) and take their min and max in C.
        words = bytearray(2 * len(first))
        words[_LOW_HALF::2] = first.translate(_LOW_7)
        words[1 - _LOW_HALF :: 2] = second
        view = memoryview(words).cast("H")
        return _zigzag_word(min(view)), _zigzag_word(max(view))
    raws = {(c << 7) | (b & 0x7F) for b, c in set(zip(first, second, strict=True))}
    deltas = {(r >> 1) ^ -(r & 1) for r in raws}
    return min(deltas), max(deltas)


def _zigzag_word(word: int) -> int:
    """The delta of a two-byte varint held as (second byte << 8 | first byte's low 7 bits)."""
    raw = (word >> 8) << 7 | word & 0x7F
    return (raw >> 1) ^ -(raw & 1)


# Byte tables for bytes.translate: each byte's lowest bit (a zig-zag value's sign), and its low
# 7 bits (a varint byte's payload); and where the low byte of a native 16-bit word goes.
_LOW_BIT = bytes(b & 1 for b in range(256))
_LOW_7 = bytes(b & 0x7F for b in range(256))
_LOW_HALF = 0 if sys.byteorder == "little" else 1
