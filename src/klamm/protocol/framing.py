"""Length-prefixed frames, sans-I/O.

Every Kafka request and response is `int32 size` followed by `size` bytes. `FrameDecoder` takes
bytes as they arrive and hands back each complete frame; it never touches a socket, so the broker's
transport can feed it from a `BufferedProtocol` buffer and parse every complete frame in one
callback.
"""

from __future__ import annotations

import struct

from klamm.protocol.errors import FrameTooLarge, MalformedFrame

# Kafka's socket.request.max.bytes default: 100 MiB. A larger length prefix is far more likely to
# be garbage (or TLS/HTTP bytes on a plaintext port) than a real request.
DEFAULT_MAX_FRAME_BYTES = 100 * 1024 * 1024

_SIZE = struct.Struct(">i")


class FrameDecoder:
    """Accumulates bytes and yields complete frame bodies (without the size prefix)."""

    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        # Public: a connection lowers it until its client has authenticated.
        self.max_frame_bytes = max_frame_bytes
        self._buffer = bytearray()
        self._start = 0  # consumed prefix of _buffer, compacted lazily

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Add received bytes; return the frames completed by them, in order.

        Raises FrameTooLarge or MalformedFrame; the decoder is unusable afterwards (the stream
        has lost its framing, so the only safe thing is to close the connection).
        """
        buf = self._buffer
        buf += data
        frames: list[bytes] = []
        pos = self._start
        end = len(buf)
        while end - pos >= 4:
            (size,) = _SIZE.unpack_from(buf, pos)
            if size < 0:
                raise MalformedFrame(f"negative frame size {size}")
            if size > self.max_frame_bytes:
                raise FrameTooLarge(size, self.max_frame_bytes)
            if end - pos - 4 < size:
                break
            frames.append(bytes(buf[pos + 4 : pos + 4 + size]))
            pos += 4 + size
        if pos == end:
            buf.clear()
            pos = 0
        elif pos > 65536:
            del buf[:pos]
            pos = 0
        self._start = pos
        return frames

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a frame."""
        return len(self._buffer) - self._start


def frame(payload: bytes | bytearray) -> bytes:
    """Prefix a payload with its int32 size."""
    return _SIZE.pack(len(payload)) + payload
