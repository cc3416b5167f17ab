"""Codecs: round trips at any ratio, and a bound on how far a batch may inflate."""

from __future__ import annotations

import pytest

from klamm.protocol import compression
from klamm.protocol.compression import Compression, compress, decompress
from klamm.protocol.errors import ErrorCode, InvalidRecordBatch

CODECS = [Compression.GZIP, Compression.SNAPPY, Compression.LZ4, Compression.ZSTD]


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("data", [b"", b"klamm", bytes(range(256)) * 64, b"x" * 3_000_000])
def test_round_trip_at_any_ratio(codec: Compression, data: bytes) -> None:
    # 3 MB of one byte compresses well past the first output guess (8x), so it must grow.
    assert decompress(codec, compress(codec, data)) == data


@pytest.mark.parametrize("codec", CODECS)
def test_a_batch_inflating_past_the_bound_is_corrupt(
    codec: Compression, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compression, "MAX_DECOMPRESSED_BYTES", 1 << 20)
    bomb = compress(codec, b"\0" * ((1 << 20) + 1))
    assert decompress(codec, compress(codec, b"\0" * (1 << 20))) == b"\0" * (1 << 20)
    with pytest.raises(InvalidRecordBatch, match="inflates past") as caught:
        decompress(codec, bomb)
    assert caught.value.code == ErrorCode.corrupt_message


@pytest.mark.parametrize("codec", CODECS)
def test_garbage_is_corrupt(codec: Compression) -> None:
    with pytest.raises(InvalidRecordBatch, match=r"cannot decompress|snappy") as caught:
        decompress(codec, b"\x82SNAPPY\0garbage" if codec == Compression.SNAPPY else b"garbage!")
    assert caught.value.code == ErrorCode.corrupt_message
