from __future__ import annotations

import itertools
import struct
import tracemalloc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from klamm.protocol.errors import FrameTooLarge, MalformedFrame
from klamm.protocol.framing import FrameDecoder, frame


@given(
    payloads=st.lists(st.binary(max_size=300), max_size=20),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=10),
)
def test_frames_survive_any_split(payloads: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(frame(p) for p in payloads)
    points = sorted({min(c, len(stream)) for c in cuts} | {0, len(stream)})
    decoder = FrameDecoder()
    out: list[bytes] = []
    for start, end in itertools.pairwise(points):
        out += decoder.feed(stream[start:end])
    assert out == payloads
    assert decoder.buffered == 0


def test_oversized_frame_is_refused_before_it_is_buffered() -> None:
    decoder = FrameDecoder(max_frame_bytes=1024)
    with pytest.raises(FrameTooLarge):
        decoder.feed(struct.pack(">i", 1025))


def test_negative_size_is_malformed() -> None:
    with pytest.raises(MalformedFrame):
        FrameDecoder().feed(struct.pack(">i", -5) + b"x")


def test_a_big_frame_costs_two_copies_at_most_and_nothing_once_out() -> None:
    """A 100 MiB request held 300 MiB at its peak (the buffer, a slice of it, then the frame);
    now the partial buffer and the frame handed back. Nothing stays once the frame is out."""
    size = 8 * 1024 * 1024
    stream = frame(b"x" * size) + b"\0\0"  # and the start of the next frame's header
    decoder = FrameDecoder()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        out: list[bytes] = []
        for start in range(0, len(stream), 256 * 1024):
            out += decoder.feed(memoryview(stream)[start : start + 256 * 1024])
        peak = tracemalloc.get_traced_memory()[1] - base
        assert [len(f) for f in out] == [size]
        assert decoder.buffered == 2
        del out
        left = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert peak < 2.3 * size, f"peak {peak / size:.1f}x the frame"
    assert left < 64 * 1024
