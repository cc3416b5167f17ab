"""Request bodies whose lengths do not fit the frame are refused before kio decodes them, and
tagged fields the schema does not know are skipped, as Kafka does (KIP-482)."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from klamm.protocol.bounds import MAX_REQUEST_ELEMENTS
from klamm.protocol.errors import MalformedFrame, ProtocolError
from klamm.protocol.messages import decode_request, request_type
from tests.protocol.protocol_helpers import DECODED, NULL_ARRAY_CASES, minimal_body


def _request(api_key: int, version: int, body: bytes) -> bytes:
    header = struct.pack(">hhih", api_key, version, 7, 3) + b"cli"
    if request_type(api_key, version).__flexible__:
        header += b"\0"
    return header + body


def _compact_string(text: str) -> bytes:
    data = text.encode()
    return bytes([len(data) + 1]) + data


@pytest.mark.parametrize(
    ("version", "count"),
    [
        (9, b"\xff\xff\xff\xff\x0f"),  # compact array of 2**32 - 2: kio asked for 32 GiB
        (12, b"\x80\x80\x80\x80\x08"),
        (1, b"\x7f\xff\xff\xff"),  # legacy int32 array
    ],
)
def test_an_array_longer_than_the_frame_is_malformed(version: int, count: bytes) -> None:
    with pytest.raises(MalformedFrame, match="overruns the request"):
        decode_request(_request(3, version, count + b"\0" * 8))


def test_a_string_longer_than_the_frame_is_malformed() -> None:
    body = b"\x02" + b"\x7f" + b"orders" + b"\0\0\0\0"  # one topic whose name claims 126 bytes
    with pytest.raises(MalformedFrame, match="overruns the request"):
        decode_request(_request(3, 9, body))


def test_an_unknown_tagged_field_is_skipped() -> None:
    plain = _compact_string("klamm-test") + _compact_string("1.0") + b"\0"
    tagged = plain[:-1] + b"\x01" + b"\x05\x02hi"  # one field, tag 5, two bytes
    assert (
        decode_request(_request(18, 3, tagged)).body == decode_request(_request(18, 3, plain)).body
    )


def test_an_unknown_tagged_field_inside_an_array_element_is_skipped() -> None:
    def metadata(topic_tags: bytes) -> bytes:
        topic = b"\0" * 16 + _compact_string("orders") + topic_tags  # v12: id, name
        return b"\x02" + topic + b"\x01\x00" + b"\0"  # auto-create, no topic ops, no tags

    plain = decode_request(_request(3, 12, metadata(b"\0")))
    tagged = decode_request(_request(3, 12, metadata(b"\x02\x07\x00\x21\x01x")))
    assert tagged.body == plain.body
    assert [t.name for t in plain.body.topics] == ["orders"]


def test_a_tagged_field_overrunning_the_frame_is_malformed() -> None:
    body = _compact_string("klamm-test") + _compact_string("1.0") + b"\x01\x05\x7fhi"
    with pytest.raises(MalformedFrame, match="tagged field 5"):
        decode_request(_request(18, 3, body))


# Lengths at the edges (huge, -1, 0) and short fields, in random order.
_PIECES = st.sampled_from(
    [
        *(b"\x7f\xff\xff\xff", b"\xff\xff\xff\xff", b"\xff\xff\xff\xff\x0f", b"\0\0\0\0"),
        *(b"\x01", b"\0", b"\x02", b"\x03ab", b"\x80", b"\xff\xff"),
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(DECODED), st.lists(_PIECES, max_size=14))
def test_any_body_decodes_or_is_a_protocol_error(api: tuple[int, int], pieces: list[bytes]) -> None:
    """Never another exception, and never a native abort (which would kill this process)."""
    with contextlib.suppress(ProtocolError):
        decode_request(_request(*api, b"".join(pieces)))


# --- a null (-1) count for an array that may not be null (cases: protocol_helpers.py) --------
def test_every_api_has_an_array_case() -> None:
    """The cases below reach every API whose requests hold a non-nullable array."""
    assert len({key for key, _, _ in NULL_ARRAY_CASES}) >= 25


def test_a_null_count_for_a_non_nullable_array_is_malformed_in_every_request() -> None:
    """kio decoded it as None and the handler failed with a TypeError (a traceback per
    request); Kafka refuses to parse such a request. Every array of every version we decode."""
    for key, version, path in NULL_ARRAY_CASES:
        schema = request_type(key, version)
        # The same body with an empty array decodes: only the null count is wrong.
        decode_request(_request(key, version, minimal_body(schema, path, 0)))
        with pytest.raises(MalformedFrame, match=f"non-nullable array '{path[-1]}'"):
            decode_request(_request(key, version, minimal_body(schema, path, -1)))


def test_a_null_count_for_a_nullable_array_is_still_null() -> None:
    body = decode_request(_request(3, 1, b"\xff\xff\xff\xff")).body  # Metadata v1: all topics
    assert body.topics is None


def _describe_groups_v0(count: int) -> bytes:
    """DescribeGroups v0 naming `count` empty group ids (two bytes each)."""
    return _request(15, 0, struct.pack(">i", count) + b"\0\0" * count)


def test_a_request_may_hold_up_to_the_element_limit() -> None:
    request = decode_request(_describe_groups_v0(MAX_REQUEST_ELEMENTS))
    assert len(request.body.groups) == MAX_REQUEST_ELEMENTS


def test_more_array_elements_than_the_limit_are_refused_before_decoding() -> None:
    """A million distinct group ids fit in a few megabytes and cost the broker half a minute."""
    with pytest.raises(MalformedFrame, match="more than 100000 array elements"):
        decode_request(_describe_groups_v0(MAX_REQUEST_ELEMENTS + 1))


def test_the_element_limit_counts_every_array_of_the_request() -> None:
    """Nested arrays add up: 400 topics of 300 partitions each is 120,400 elements."""
    partition = struct.pack(">iq", 0, -1)  # ListOffsets v1: partition index, timestamp
    topic = b"\0\x01t" + struct.pack(">i", 300) + partition * 300
    body = struct.pack(">i", -1) + struct.pack(">i", 400) + topic * 400
    with pytest.raises(MalformedFrame, match="array elements"):
        decode_request(_request(2, 1, body))
