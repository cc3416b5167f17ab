"""A minimal raw Kafka-protocol client for tests: send exact bytes, read exact responses."""

from __future__ import annotations

import io
import socket
import struct
from typing import Any

from kio.serial import entity_reader, entity_writer

from klamm.protocol.build import build
from klamm.protocol.messages import request_type, response_type


class Wire:
    def __init__(self, bootstrap: str, timeout: float = 5.0) -> None:
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self._correlation = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Wire:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send_raw(self, payload: bytes) -> None:
        self.sock.sendall(struct.pack(">i", len(payload)) + payload)

    def recv_frame(self) -> bytes:
        size = struct.unpack(">i", self._recv_exact(4))[0]
        return self._recv_exact(size)

    def _recv_exact(self, n: int) -> bytes:
        data = bytearray()
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("connection closed by broker")
            data += chunk
        return bytes(data)

    def is_closed(self) -> bool:
        """True when the broker closed the connection (read returns EOF or reset)."""
        try:
            self.sock.settimeout(2.0)
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False

    def header(self, api_key: int, version: int) -> bytes:
        self._correlation += 1
        head = struct.pack(">hhih", api_key, version, self._correlation, 4) + b"test"
        if request_type(api_key, version).__flexible__:
            head += b"\0"
        return head

    def request(self, api_key: int, version: int, **fields: Any) -> Any:
        self.send(api_key, version, **fields)
        return self.read_response(api_key, version)

    def send(self, api_key: int, version: int, **fields: Any) -> int:
        """Send a request without waiting for its response (pipelining, or acks=0); returns its
        correlation id."""
        cls = request_type(api_key, version)
        body = io.BytesIO()
        entity_writer(cls)(body, build(cls, **fields))
        self.send_raw(self.header(api_key, version) + body.getvalue())
        return self._correlation

    def read_response(self, api_key: int, version: int) -> Any:
        frame = self.recv_frame()
        correlation = struct.unpack_from(">i", frame, 0)[0]
        assert correlation == self._correlation
        cls = response_type(api_key, version)
        offset = 4 + (1 if cls.__flexible__ and api_key != 18 else 0)
        value, _ = entity_reader(cls)(frame, offset)
        return value
