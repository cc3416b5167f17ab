"""Record batch compression codecs (attributes bits 0-2), via cramjam.

The broker stores and serves batches as received; produce inflates each compressed batch once to
check that its records decode (record_batch.validate_records), as Kafka's LogValidator does.
Snappy from Java and librdkafka comes in xerial framing (`\\x82SNAPPY\\0` header, then
length-prefixed raw blocks), other producers send raw snappy: both are accepted. LZ4 is the
LZ4 *frame* format.
"""

from __future__ import annotations

import enum
import mmap
import struct
from typing import Any

import cramjam

from klamm.protocol.errors import ErrorCode, InvalidRecordBatch


class Compression(enum.IntEnum):
    NONE = 0
    GZIP = 1
    SNAPPY = 2
    LZ4 = 3
    ZSTD = 4


_XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER = _XERIAL_MAGIC + struct.pack(">ii", 1, 1)
_XERIAL_BLOCK = 32 * 1024  # the block size Java's SnappyOutputStream uses


def compress(codec: Compression, data: bytes) -> bytes:
    if codec == Compression.NONE:
        return data
    if codec == Compression.GZIP:
        return bytes(cramjam.gzip.compress(data))
    if codec == Compression.SNAPPY:
        out = bytearray(_XERIAL_HEADER)
        for start in range(0, len(data), _XERIAL_BLOCK):
            block = bytes(cramjam.snappy.compress_raw(data[start : start + _XERIAL_BLOCK]))
            out += struct.pack(">i", len(block)) + block
        return bytes(out)
    if codec == Compression.LZ4:
        return bytes(cramjam.lz4.compress(data))
    if codec == Compression.ZSTD:
        return bytes(cramjam.zstd.compress(data))
    raise InvalidRecordBatch(ErrorCode.unsupported_compression_type, f"unknown codec {codec}")


# The most a batch may inflate to. Kafka streams a compressed batch's records one at a time;
# klamm inflates a batch whole, so without a bound a 13 KB zstd batch took 400 MiB and stalled
# the event loop. Producers bound a batch by its uncompressed size (librdkafka's batch.size,
# 1 MB by default; a single record by message.max.bytes), so this is far above anything real.
MAX_DECOMPRESSED_BYTES = 128 * 1024 * 1024
# First output buffer: 8x the input (typical ratios are 2-10x), grown 4x at a time if too small.
_FIRST_RATIO, _GROWTH, _SMALLEST = 8, 4, 64 * 1024
# How cramjam says an output buffer was too small, as opposed to corrupt input.
_TOO_SMALL = ("failed to write whole buffer", "smaller than required")


class InflatesTooFar(InvalidRecordBatch):
    """The data inflates past the limit `decompress` was given (CORRUPT_MESSAGE when that limit
    is MAX_DECOMPRESSED_BYTES; a caller with a smaller budget may retry with a larger one)."""

    def __init__(self, limit: int) -> None:
        super().__init__(ErrorCode.corrupt_message, f"batch inflates past {limit} bytes")
        self.limit = limit


def decompress(codec: int, data: bytes | memoryview, limit: int | None = None) -> bytes:
    """Decompress a batch's records blob, inflating at most `limit` bytes (default and ceiling:
    MAX_DECOMPRESSED_BYTES). Raises InvalidRecordBatch: CORRUPT_MESSAGE for bad data,
    InflatesTooFar (a CORRUPT_MESSAGE) past the limit, UNSUPPORTED_COMPRESSION_TYPE for an
    unknown codec."""
    return bytes(inflate(codec, data, limit))


def inflate(
    codec: int, data: bytes | memoryview, limit: int | None = None
) -> bytes | bytearray | memoryview:
    """`decompress` for readers that only index the result (the record walks), made to let a
    worker thread inflate a big batch while the event loop runs: cramjam inflates with the GIL
    released, but zeroing a 128 MiB bytearray and copying it into `bytes` hold the GIL for
    ~70 ms each. So large output buffers are anonymous mmaps, whose pages the kernel zeroes as
    cramjam first writes them, and the result is a view of the buffer, not a copy."""
    bound = MAX_DECOMPRESSED_BYTES if limit is None else min(limit, MAX_DECOMPRESSED_BYTES)
    if codec == Compression.NONE:
        return bytes(data)
    if codec == Compression.SNAPPY:
        return _snappy_decompress(bytes(data), bound)
    into = _DECOMPRESS_INTO.get(codec)
    if into is None:
        raise InvalidRecordBatch(ErrorCode.unsupported_compression_type, f"unknown codec {codec}")
    size = min(max(len(data) * _FIRST_RATIO, _SMALLEST), bound)
    while True:
        out = mmap.mmap(-1, size) if size >= _MMAP_FROM else bytearray(size)
        try:
            written = into(data, out)
        except cramjam.DecompressionError as exc:
            _release(out)  # before the next, larger buffer: one buffer alive at a time
            if not any(marker in str(exc) for marker in _TOO_SMALL):
                raise InvalidRecordBatch(
                    ErrorCode.corrupt_message, f"cannot decompress: {exc}"
                ) from exc
            if size == bound:
                raise InflatesTooFar(bound) from exc
            size = min(size * _GROWTH, bound)
            continue
        if isinstance(out, bytearray):
            del out[written:]
            return out
        return memoryview(out)[:written]  # keeps the mmap alive; unmapped with the last view


# Output buffers from this size on are anonymous mmaps (see `inflate`); below it, a bytearray
# costs less than a mapping and zeroes in well under a millisecond.
_MMAP_FROM = 1024 * 1024


def _release(buffer: bytearray | mmap.mmap) -> None:
    if isinstance(buffer, mmap.mmap):
        buffer.close()


_DECOMPRESS_INTO: dict[int, Any] = {
    Compression.GZIP: cramjam.gzip.decompress_into,
    Compression.LZ4: cramjam.lz4.decompress_into,
    Compression.ZSTD: cramjam.zstd.decompress_into,
}


def _snappy_decompress(data: bytes, bound: int) -> bytes | bytearray | memoryview:
    """Raw snappy, or xerial blocks of raw snappy. Raw snappy starts with its uncompressed
    length, so the bound is checked, and the one output buffer sized, before anything is
    inflated."""
    view = memoryview(data)
    if not data.startswith(_XERIAL_MAGIC):
        blocks = [view]
    else:
        if len(data) < len(_XERIAL_HEADER):
            raise InvalidRecordBatch(ErrorCode.corrupt_message, "truncated xerial snappy header")
        blocks = []
        pos = len(_XERIAL_HEADER)
        while pos < len(data):
            if pos + 4 > len(data):
                raise InvalidRecordBatch(ErrorCode.corrupt_message, "truncated xerial snappy block")
            (size,) = struct.unpack_from(">i", data, pos)
            pos += 4
            if size < 0 or pos + size > len(data):
                raise InvalidRecordBatch(ErrorCode.corrupt_message, "truncated xerial snappy block")
            blocks.append(view[pos : pos + size])
            pos += size
    lengths = [_uvarint(block)[0] for block in blocks]
    total = sum(lengths)
    if total > bound:
        raise InflatesTooFar(bound)
    out = mmap.mmap(-1, total) if total >= _MMAP_FROM else bytearray(total)
    at = 0
    for block, length in zip(blocks, lengths, strict=True):
        try:
            written = cramjam.snappy.decompress_raw_into(block, memoryview(out)[at : at + length])
        except cramjam.DecompressionError as exc:
            _release(out)
            raise InvalidRecordBatch(
                ErrorCode.corrupt_message, f"cannot decompress: {exc}"
            ) from exc
        if written != length:
            _release(out)
            raise InvalidRecordBatch(ErrorCode.corrupt_message, "snappy block shorter than said")
        at += length
    return out if isinstance(out, bytearray) else memoryview(out)


def _uvarint(data: bytes | memoryview) -> tuple[int, int]:
    value = shift = 0
    for i, byte in enumerate(data[:5]):
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, i + 1
        shift += 7
    raise InvalidRecordBatch(ErrorCode.corrupt_message, "bad snappy length")
