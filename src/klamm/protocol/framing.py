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
    """Accumulates bytes and yields complete frame bodies (without the size prefix).

    Memory: it keeps only the part of a frame not yet complete. Frames that arrive whole are
    cut from the bytes fed in, never buffered; a partial frame is
    copied aside and grows as its bytes arrive (never to the size its header declares before
    they do), and the buffer is released once the frame is out, so a connection that once sent
    a 100 MiB frame does not keep 100 MiB.
    """

    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        # Public: a connection lowers it until its client has authenticated.
        self.max_frame_bytes = max_frame_bytes
        self._buffer = bytearray()  # the start of a frame not yet complete

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Add received bytes; return the frames completed by them, in order. `data` is not
        kept: the caller may reuse it once this returns.

        Raises FrameTooLarge or MalformedFrame; the decoder is unusable afterwards (the stream
        has lost its framing, so the only safe thing is to close the connection).
        """
        buf = self._buffer
        if buf:
            buf += data
            with memoryview(buf) as view:
                frames, pos = self._split(view)
            del buf[:pos]  # shrinks the buffer (to nothing once no frame is partial)
            return frames
        # Nothing partial: cut the frames from one bytes copy (slicing bytes is much cheaper
        # per frame than slicing a memoryview) and keep only the incomplete rest.
        chunk = bytes(data)
        frames, pos = self._split(chunk)
        if pos < len(chunk):
            with memoryview(chunk) as view:
                buf += view[pos:]
        return frames

    def _split(self, source: bytes | memoryview) -> tuple[list[bytes], int]:
        """The complete frames at the start of `source`, and where the rest begins."""
        frames: list[bytes] = []
        pos = 0
        end = len(source)
        while end - pos >= 4:
            (size,) = _SIZE.unpack_from(source, pos)
            if size < 0:
                raise MalformedFrame(f"negative frame size {size}")
            if size > self.max_frame_bytes:
                raise FrameTooLarge(size, self.max_frame_bytes)
            if end - pos - 4 < size:
                break
            frames.append(bytes(source[pos + 4 : pos + 4 + size]))  # bytes of bytes: no copy
            pos += 4 + size
        return frames, pos

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a frame."""
        return len(self._buffer)


def frame(payload: bytes | bytearray) -> bytes:
    """Prefix a payload with its int32 size."""
    return _SIZE.pack(len(payload)) + payload
