from __future__ import annotations

import struct

import pytest

from klamm.protocol.api_versions import SUPPORTED, ApiKey
from klamm.protocol.build import build
from klamm.protocol.errors import MalformedFrame, UnsupportedApi
from klamm.protocol.messages import (
    RequestHeader,
    api_versions_error_response,
    decode_request,
    encode_response,
    request_type,
    response_type,
)


def _request(api_key: int, version: int, body: bytes, flexible: bool) -> bytes:
    header = struct.pack(">hhih", api_key, version, 7, 3) + b"cli"
    if flexible:
        header += b"\0"
    return header + body


def test_every_supported_version_has_kio_schemas() -> None:
    for key, versions in SUPPORTED.items():
        for version in range(versions.min, versions.max + 1):
            if key == ApiKey.PRODUCE and version < 3:
                continue
            assert request_type(key, version).__api_key__ == key
            assert response_type(key, version).__version__ == version


def test_flexible_and_non_flexible_metadata_requests_decode() -> None:
    v1 = decode_request(_request(3, 1, struct.pack(">i", -1), flexible=False))
    assert v1.header.client_id == "cli"
    assert v1.body.topics is None
    v12 = decode_request(_request(3, 12, b"\x01\x01\x00\x00", flexible=True))
    assert v12.body.topics == ()
    assert v12.body.allow_auto_topic_creation is True


def test_unknown_keys_and_versions_and_garbage() -> None:
    with pytest.raises(UnsupportedApi):
        decode_request(_request(3, 99, b"", flexible=False))
    with pytest.raises(UnsupportedApi):
        decode_request(_request(1000, 0, b"", flexible=False))
    with pytest.raises(MalformedFrame):
        decode_request(b"\x00\x03")
    with pytest.raises(MalformedFrame):
        decode_request(_request(3, 1, b"\x00\x00\x00\x05\x00", flexible=False))


def test_api_versions_responses_always_use_header_v0() -> None:
    body = build(
        response_type(18, 3),
        error_code=0,
        api_keys=[{"api_key": 18, "min_version": 0, "max_version": 4}],
        throttle_time=0,
    )
    data = encode_response(RequestHeader(18, 3, 9, None), body)
    # size, correlation id, then straight into the body: error code 0 (no header tag byte)
    assert data[4:8] == struct.pack(">i", 9)
    assert data[8:10] == b"\0\0"
    # and no tagged fields written at their defaults (librdkafka 2.0.2 cannot skip them)
    assert data.endswith(b"\x00\x00\x00\x00\x00")


def test_api_versions_error_reply_is_v0_layout() -> None:
    data = api_versions_error_response(5, {18: (0, 4)})
    assert data == struct.pack(">iihihhh", 16, 5, 35, 1, 18, 0, 4)
