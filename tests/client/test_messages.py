from __future__ import annotations

import pytest

from klamm import CompressionTypes, ConfigError, Message
from klamm.client.messages import normalise_headers, normalise_message


def test_message_and_dict_normalise_the_same() -> None:
    a = normalise_message(Message(key="c1", value=b"v", headers={"h": "x"}, partition=2))
    b = normalise_message({"key": b"c1", "value": "v", "headers": {"h": b"x"}, "partition": 2})
    assert a == b
    assert a.key == b"c1" and a.value == b"v" and a.headers == [("h", b"x")]
    assert a.partition == 2 and a.timestamp is None


def test_strings_are_utf8() -> None:
    rec = normalise_message({"value": "grüße"})
    assert rec.value == "grüße".encode()
    assert rec.key is None


def test_repeated_headers_from_lists_and_pairs() -> None:
    assert normalise_headers({"a": [b"1", "2"], "b": None}) == [
        ("a", b"1"),
        ("a", b"2"),
        ("b", None),
    ]
    assert normalise_headers([("a", "1"), ("a", b"2")]) == [("a", b"1"), ("a", b"2")]
    assert normalise_headers({}) is None


def test_timestamp_accepts_kafkajs_string_millis() -> None:
    assert (
        normalise_message({"value": b"", "timestamp": "1700000000000"}).timestamp == 1700000000000
    )


@pytest.mark.parametrize(
    "bad",
    [
        {"value": 12},
        {"value": b"x", "partition": -1},
        {"value": b"x", "timestamp": "yesterday"},
        {"value": b"x", "colour": "red"},
        {"value": b"x", "headers": {1: b"x"}},
        ["not", "a", "message"],
    ],
)
def test_bad_messages_are_config_errors(bad: object) -> None:
    with pytest.raises(ConfigError):
        normalise_message(bad)  # type: ignore[arg-type]


def test_compression_names_are_librdkafkas() -> None:
    assert [c.value for c in CompressionTypes] == ["none", "gzip", "snappy", "lz4", "zstd"]
