from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from klamm import CompressionTypes, ConfigError, Message
from klamm.client.messages import (
    normalise_headers,
    normalise_message,
    plain_messages,
    plain_types_ok,
)


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


def test_a_message_is_a_plain_dict_like_kafkajs() -> None:
    message = Message(key=b"c1", value=b"v")
    assert type(message) is dict
    assert message == {"key": b"c1", "value": b"v"}


def test_plain_messages_go_to_librdkafka_as_they_are() -> None:
    messages = [Message(value=b"a"), {"key": "k", "value": "v"}, {}]
    assert plain_messages(messages) is messages
    assert plain_messages(tuple(messages)) == messages


@pytest.mark.parametrize(
    "message",
    [
        Message(value=b"x", headers={"h": b"1"}),
        Message(value=b"x", partition=1),
        Message(value=b"x", timestamp=5),
        {"value": b"x", "colour": "red"},
        ["not", "a", "message"],
    ],
)
def test_anything_else_is_normalised(message: object) -> None:
    assert plain_messages([{"value": b"ok"}, message]) is None


def test_plain_type_check_for_sends_spanning_several_produce_calls() -> None:
    assert plain_types_ok([{"value": b"a", "key": "k"}, {"value": None}, {}])
    assert not plain_types_ok([{"value": b"a"}, {"value": 12}])
    assert not plain_types_ok([{"value": b"a"}, {"key": bytearray(b"k")}])


def test_distinct_dicts_held_elsewhere_too_still_go_as_they_are() -> None:
    messages = [{"value": b"a"}, {"value": b"b"}]
    elsewhere = list(messages)  # more references than the list's, but no repeats
    assert plain_messages(messages) is messages
    assert elsewhere == messages


def test_one_dict_given_twice_gets_a_copy_per_occurrence() -> None:
    message = {"value": b"x"}
    plain = plain_messages([message, message])
    assert plain == [message, message]
    assert plain is not None and plain[0] is not plain[1]


def test_a_sequence_handing_out_one_dict_twice_gets_copies_too() -> None:
    class Twice(Sequence[dict[str, bytes]]):  # each iteration hands out one new dict, twice
        def __len__(self) -> int:
            return 2

        def __getitem__(self, index: Any) -> Any:
            return next(iter(self))

        def __iter__(self) -> Iterator[dict[str, bytes]]:
            return itertools.repeat({"value": b"x"}, 2)

    plain = plain_messages(Twice())
    assert plain is not None and plain[0] is not plain[1]
