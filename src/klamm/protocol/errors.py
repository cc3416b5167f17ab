"""Errors raised by the sans-I/O protocol layer.

    ProtocolError                 the peer sent bytes we cannot accept
    ├── FrameTooLarge             a frame's length prefix exceeds socket.request.max.bytes
    ├── MalformedFrame            a frame or header that cannot be decoded
    ├── UnsupportedApi            an API key or version we do not serve
    └── InvalidRecordBatch        a record batch that fails validation (carries Kafka's error code)

Kafka's wire error codes are `kio.schema.errors.ErrorCode`, re-exported here so that other layers
need only this module.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

__all__ = [
    "ErrorCode",
    "FrameTooLarge",
    "InvalidRecordBatch",
    "MalformedFrame",
    "ProtocolError",
    "UnsupportedApi",
]


class ProtocolError(Exception):
    """The peer sent something that does not follow the Kafka protocol."""


class FrameTooLarge(ProtocolError):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"frame of {size} bytes exceeds the limit of {limit} bytes")
        self.size = size
        self.limit = limit


class MalformedFrame(ProtocolError):
    """A frame whose header or body cannot be decoded."""


class UnsupportedApi(ProtocolError):
    def __init__(self, api_key: int, api_version: int) -> None:
        super().__init__(f"unsupported api key {api_key} version {api_version}")
        self.api_key = api_key
        self.api_version = api_version


class InvalidRecordBatch(ProtocolError):
    """A record batch rejected on produce; `code` is the error Kafka returns for it."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
