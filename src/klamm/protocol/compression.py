"""Record batch compression codecs (attributes bits 0-2), via cramjam.

Only used off the hot path: the broker stores and serves batches as received and decompresses only
to inspect records when a topic demands it (compacted topics need keys). Snappy from Java and
librdkafka comes in xerial framing (`\\x82SNAPPY\\0` header, then length-prefixed raw blocks), other
producers send raw snappy: both are accepted. LZ4 is the LZ4 *frame* format.
"""

from __future__ import annotations

import enum
import struct

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


def decompress(codec: int, data: bytes | memoryview) -> bytes:
    """Decompress a batch's records blob; raises InvalidRecordBatch(CORRUPT_MESSAGE) on bad data."""
    try:
        if codec == Compression.NONE:
            return bytes(data)
        if codec == Compression.GZIP:
            return bytes(cramjam.gzip.decompress(data))
        if codec == Compression.SNAPPY:
            return _snappy_decompress(bytes(data))
        if codec == Compression.LZ4:
            return bytes(cramjam.lz4.decompress(data))
        if codec == Compression.ZSTD:
            return bytes(cramjam.zstd.decompress(data))
    except cramjam.DecompressionError as exc:
        raise InvalidRecordBatch(ErrorCode.corrupt_message, f"cannot decompress: {exc}") from exc
    raise InvalidRecordBatch(ErrorCode.unsupported_compression_type, f"unknown codec {codec}")


def _snappy_decompress(data: bytes) -> bytes:
    if not data.startswith(_XERIAL_MAGIC):
        return bytes(cramjam.snappy.decompress_raw(data))
    out = bytearray()
    pos = len(_XERIAL_HEADER)
    while pos < len(data):
        if pos + 4 > len(data):
            raise InvalidRecordBatch(ErrorCode.corrupt_message, "truncated xerial snappy block")
        (size,) = struct.unpack_from(">i", data, pos)
        pos += 4
        if size < 0 or pos + size > len(data):
            raise InvalidRecordBatch(ErrorCode.corrupt_message, "truncated xerial snappy block")
        out += cramjam.snappy.decompress_raw(data[pos : pos + size])
        pos += size
    return bytes(out)
