"""Request decoding and response encoding, sans-I/O.

Frame layout (after the int32 size prefix that `framing` strips):

    request header v1:  api_key i16, api_version i16, correlation_id i32, client_id nullable-string
    request header v2:  the same + tagged fields           (flexible request versions)
    response header v0: correlation_id i32
    response header v1: correlation_id i32 + tagged fields (flexible response versions)

ApiVersions responses always use response header v0, even for flexible versions, so that a client
can read the reply to a version it guessed (KIP-511). Message bodies are read and written by `kio`
(generated from Kafka's JSON schemas); nothing here hand-writes a body except the two replies that
must be sent for versions kio has no schema for.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

from kio.index import load_request_schema, load_response_schema
from kio.serial import entity_reader, entity_writer
from kio.serial.errors import DecodeError

from klamm.protocol.api_versions import ADVERTISED_ONLY, SUPPORTED, ApiKey
from klamm.protocol.bounds import checked_body
from klamm.protocol.errors import ErrorCode, MalformedFrame, UnsupportedApi
from klamm.protocol.hot_responses import EncodedResponse

_HEADER_FIXED = struct.Struct(">hhi")  # api_key, api_version, correlation_id
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")


@dataclass(frozen=True, slots=True)
class RequestHeader:
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None


@dataclass(frozen=True, slots=True)
class Request:
    """A decoded request: its header and its kio body (None when the body was not decoded)."""

    header: RequestHeader
    body: Any


@cache
def request_type(api_key: int, api_version: int) -> Any:
    return load_request_schema(api_key, api_version)


@cache
def response_type(api_key: int, api_version: int) -> Any:
    return load_response_schema(api_key, api_version)


def preload(api_keys: Iterable[int]) -> None:
    """Load the request and response schemas (with their readers and writers) of every
    version of `api_keys` served now rather than at the first request. kio imports a module per
    API version, and an import needs a file descriptor: a broker out of descriptors could not
    decode a request whose schema it had not loaded yet."""
    for api_key in api_keys:
        versions = SUPPORTED[api_key]
        advertised_only = ADVERTISED_ONLY.get(api_key, ())
        for version in range(versions.min, versions.max + 1):
            if version not in advertised_only:
                _reader(request_type(api_key, version))
                _writer(response_type(api_key, version))


@cache
def _reader(schema: Any) -> Any:
    return entity_reader(schema)


@cache
def _writer(schema: Any) -> Any:
    return entity_writer(schema)


def peek_header(frame: bytes) -> tuple[int, int, int]:
    """api_key, api_version, correlation_id: readable from any frame of at least 8 bytes."""
    if len(frame) < _HEADER_FIXED.size:
        raise MalformedFrame(f"frame of {len(frame)} bytes is shorter than a request header")
    api_key, api_version, correlation_id = _HEADER_FIXED.unpack_from(frame, 0)
    return api_key, api_version, correlation_id


def _read_uvarint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise MalformedFrame("truncated varint in request header")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 28:
            raise MalformedFrame("varint too long in request header")


def _skip_tagged_fields(buf: bytes, pos: int) -> int:
    count, pos = _read_uvarint(buf, pos)
    for _ in range(count):
        _tag, pos = _read_uvarint(buf, pos)
        size, pos = _read_uvarint(buf, pos)
        pos += size
        if pos > len(buf):
            raise MalformedFrame("truncated tagged field in request header")
    return pos


def decode_header(frame: bytes, flexible: bool) -> tuple[RequestHeader, int]:
    """Decode a request header; return it and the offset where the body starts."""
    api_key, api_version, correlation_id = peek_header(frame)
    pos = _HEADER_FIXED.size
    if pos + 2 > len(frame):
        raise MalformedFrame("truncated client_id")
    (length,) = _I16.unpack_from(frame, pos)
    pos += 2
    client_id: str | None = None
    if length >= 0:
        if pos + length > len(frame):
            raise MalformedFrame("truncated client_id")
        try:
            client_id = frame[pos : pos + length].decode()
        except UnicodeDecodeError as exc:
            raise MalformedFrame("client_id is not UTF-8") from exc
        pos += length
    if flexible:
        pos = _skip_tagged_fields(frame, pos)
    return RequestHeader(api_key, api_version, correlation_id, client_id), pos


def is_flexible_request(api_key: int, api_version: int) -> bool:
    return bool(request_type(api_key, api_version).__flexible__)


def decode_request(frame: bytes) -> Request:
    """Decode a whole request frame.

    Raises UnsupportedApi for keys or versions outside SUPPORTED (the caller decides how to
    answer: see `unsupported_version_response`), MalformedFrame for bytes that do not decode.
    For versions in ADVERTISED_ONLY the body is left undecoded (None).
    """
    api_key, api_version, _ = peek_header(frame)
    supported = SUPPORTED.get(api_key)
    if supported is None or api_version not in supported:
        raise UnsupportedApi(api_key, api_version)
    advertised_only = ADVERTISED_ONLY.get(api_key)
    if advertised_only is not None and api_version in advertised_only:
        header, _ = decode_header(frame, flexible=False)
        return Request(header, None)
    schema = request_type(api_key, api_version)
    header, pos = decode_header(frame, schema.__flexible__)
    frame = checked_body(schema, frame, pos)  # kio would trust the lengths: see bounds.py
    try:
        body, _size = _reader(schema)(frame, pos)
    except DecodeError as exc:
        raise MalformedFrame(f"cannot decode api {api_key} v{api_version}: {exc}") from exc
    except (ValueError, OverflowError, KeyError) as exc:  # bad enum values, UUIDs, tags, ...
        raise MalformedFrame(f"cannot decode api {api_key} v{api_version}: {exc}") from exc
    return Request(header, body)


def encode_response(header: RequestHeader, body: Any) -> bytes:
    """Encode a response body (a kio entity, or an EncodedResponse from hot_responses) with the
    response header its version needs, including the int32 size prefix."""
    if isinstance(body, EncodedResponse):
        head = _I32.pack(header.correlation_id) + (b"\0" if body.flexible else b"")
        size = len(head) + sum(map(len, body.parts))
        return b"".join((_I32.pack(size), head, *body.parts))
    schema: Any = type(body)
    out = io.BytesIO()
    out.write(b"\0\0\0\0")
    out.write(_I32.pack(header.correlation_id))
    if schema.__flexible__ and header.api_key != ApiKey.API_VERSIONS:
        out.write(b"\0")  # no tagged fields in the response header
    _writer(schema)(out, body)
    data = out.getbuffer()
    _I32.pack_into(data, 0, len(data) - 4)
    result = bytes(data)
    data.release()
    return result


def api_versions_error_response(
    correlation_id: int, advertised: dict[int, tuple[int, int]]
) -> bytes:
    """ApiVersions reply to a version we do not know, in the v0 body layout (KIP-511): error 35
    plus our ranges, so the client can retry with a version both sides speak."""
    body = bytearray()
    body += _I32.pack(correlation_id)
    body += _I16.pack(ErrorCode.unsupported_version)
    body += _I32.pack(len(advertised))
    for key, (lo, hi) in sorted(advertised.items()):
        body += struct.pack(">hhh", key, lo, hi)
    return _I32.pack(len(body)) + bytes(body)
